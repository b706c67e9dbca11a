//! The keys of buzon.conf(5)'s "Webmail and client setup" section: the HTTP listeners that serve
//! the webmail and the self-configuration documents (autoconfig, autodiscover, mobileconfig).

use std::net::SocketAddr;
use std::time::Duration;

use super::values::{parse_bool, parse_duration, parse_listen, parse_size};

#[derive(Clone, Debug)]
pub struct Web {
    /// Plain HTTP listeners: loopback clients only unless `behind_proxy`.
    pub listen: Vec<SocketAddr>,
    /// HTTPS listeners (the configured certificate).
    pub tls_listen: Vec<SocketAddr>,
    /// A reverse proxy on this host terminates TLS: plain HTTP from any client is served, and
    /// cookies are marked Secure as if the request had come over HTTPS.
    pub behind_proxy: bool,
    /// A web session unused this long is logged out.
    pub session_timeout: Duration,
    /// The largest request body (a message with its attachments, as a form upload).
    pub max_body: u64,
    /// How long a request may take to arrive, from its first byte, and how long a keep-alive
    /// connection may wait for its next request.
    pub timeout: Duration,
}

pub const KEYS: &[&str] = &[
    "web.listen",
    "web.tls_listen",
    "web.behind_proxy",
    "web.session_timeout",
    "web.max_body",
    "web.timeout",
];

impl Default for Web {
    fn default() -> Web {
        Web {
            listen: Vec::new(),
            tls_listen: Vec::new(),
            behind_proxy: false,
            session_timeout: Duration::from_secs(30 * 60),
            max_body: 0,
            timeout: Duration::from_secs(30),
        }
    }
}

impl Web {
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        match key {
            "web.listen" => self.listen = parse_listen(value)?,
            "web.tls_listen" => self.tls_listen = parse_listen(value)?,
            "web.behind_proxy" => self.behind_proxy = parse_bool(value)?,
            "web.session_timeout" => {
                let d = parse_duration(value)?;
                if d < Duration::from_secs(60) {
                    return Err("at least 1m".into());
                }
                self.session_timeout = d
            }
            "web.max_body" => self.max_body = if value == "0" { 0 } else { parse_size(value)? },
            "web.timeout" => {
                let d = parse_duration(value)?;
                if d.is_zero() {
                    return Err("must be more than 0s".into());
                }
                self.timeout = d
            }
            _ => return Err(format!("`{key}` is not a web key")),
        }
        Ok(())
    }

    /// The largest request body: `web.max_body`, or the message size limit and a third more for
    /// base64 and the form's own fields.
    pub fn max_body(&self, message_size_limit: u64) -> u64 {
        match self.max_body {
            0 => message_size_limit.saturating_add(message_size_limit / 3).saturating_add(64 * 1024),
            n => n,
        }
    }

    pub fn print(&self, kv: &mut dyn FnMut(&str, String)) {
        let addrs = |v: &[SocketAddr]| v.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(" ");
        kv("web.listen", addrs(&self.listen));
        kv("web.tls_listen", addrs(&self.tls_listen));
        kv("web.behind_proxy", if self.behind_proxy { "yes" } else { "no" }.into());
        kv("web.session_timeout", format!("{}s", self.session_timeout.as_secs()));
        kv("web.max_body", self.max_body.to_string());
        kv("web.timeout", format!("{}s", self.timeout.as_secs()));
    }
}
