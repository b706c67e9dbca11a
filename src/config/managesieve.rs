//! The keys of buzon.conf(5)'s "ManageSieve" section: the RFC 5804 listener (port 4190) where
//! users edit their Sieve scripts, and the per-user limits on those scripts.

use std::net::SocketAddr;
use std::time::Duration;

use super::values::{parse_count, parse_duration, parse_listen, parse_size};

#[derive(Clone, Debug)]
pub struct ManageSieve {
    /// Listeners (STARTTLS with the configured certificate; RFC 5804 has no implicit-TLS port).
    pub listen: Vec<SocketAddr>,
    /// Scripts a user may keep (RFC 5804 1.3 QUOTA/MAXSCRIPTS).
    pub max_scripts: usize,
    /// The largest script in octets (RFC 5804 1.3 QUOTA/MAXSIZE).
    pub max_script_size: u64,
    /// Failed commands after which the session is closed with BYE.
    pub max_errors: usize,
    /// A logged-in session idle this long is closed (before login, `login_timeout` applies).
    pub timeout: Duration,
}

pub const KEYS: &[&str] = &[
    "managesieve.listen",
    "managesieve.max_scripts",
    "managesieve.max_script_size",
    "managesieve.max_errors",
    "managesieve.timeout",
];

impl Default for ManageSieve {
    fn default() -> ManageSieve {
        ManageSieve {
            listen: Vec::new(),
            max_scripts: 20,
            max_script_size: 256 * 1024,
            max_errors: 10,
            timeout: Duration::from_secs(30 * 60),
        }
    }
}

impl ManageSieve {
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        match key {
            "managesieve.listen" => self.listen = parse_listen(value)?,
            "managesieve.max_scripts" => self.max_scripts = parse_count(value, 1, 10_000)?,
            "managesieve.max_script_size" => {
                let n = parse_size(value)?;
                if n > 16 * 1024 * 1024 {
                    return Err("at most 16M".into());
                }
                self.max_script_size = n
            }
            "managesieve.max_errors" => self.max_errors = parse_count(value, 1, 10_000)?,
            "managesieve.timeout" => {
                let d = parse_duration(value)?;
                if d < Duration::from_secs(60) {
                    return Err("at least 1m".into());
                }
                self.timeout = d
            }
            _ => return Err(format!("`{key}` is not a managesieve key")),
        }
        Ok(())
    }

    pub fn print(&self, kv: &mut dyn FnMut(&str, String)) {
        let addrs = |v: &[SocketAddr]| v.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(" ");
        kv("managesieve.listen", addrs(&self.listen));
        kv("managesieve.max_scripts", self.max_scripts.to_string());
        kv("managesieve.max_script_size", self.max_script_size.to_string());
        kv("managesieve.max_errors", self.max_errors.to_string());
        kv("managesieve.timeout", format!("{}s", self.timeout.as_secs()));
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn keys_defaults_and_errors() {
        let c = Config::parse("managesieve.listen = 127.0.0.1:4190\n", "t.conf").unwrap();
        assert_eq!(c.managesieve.listen, vec!["127.0.0.1:4190".parse().unwrap()]);
        assert_eq!((c.managesieve.max_scripts, c.managesieve.max_script_size), (20, 256 * 1024));
        let c = Config::parse(
            "smtp.listen = 127.0.0.1:25\nmanagesieve.max_scripts = 5\nmanagesieve.max_script_size = 64K\n",
            "t.conf",
        )
        .unwrap();
        assert_eq!((c.managesieve.max_scripts, c.managesieve.max_script_size), (5, 64 * 1024));
        assert!(c.render().contains("managesieve.max_script_size = 65536\n"));
        assert_eq!(Config::parse(&c.render(), "again").unwrap().render(), c.render());
        for (t, want) in [
            ("managesieve.listen = 4190", "ADDR:PORT"),
            ("managesieve.max_scripts = 0", "from 1"),
            ("managesieve.max_script_size = 1G", "at most 16M"),
            ("managesieve.scripts = 3", "unknown key"),
            ("managesieve.timeout = 5s", "at least 1m"),
            ("managesieve.max_errors = none", "whole number"),
        ] {
            let e = Config::parse(&format!("smtp.listen = 127.0.0.1:25\n{t}\n"), "t.conf").unwrap_err();
            assert_eq!(e.line, 2, "{t}");
            assert!(e.message.contains(want), "{t}: {e}");
        }
    }
}
