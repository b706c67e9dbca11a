//! Parser for the parts of /etc/resolv.conf a mail stub resolver uses: `nameserver`, and
//! `options timeout:N attempts:N ndots:N` (resolv.conf(5); `search`/`domain` are ignored because
//! mail lookups are always absolute, RFC 5321 5.1).

use std::net::{IpAddr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::time::Duration;

/// glibc's MAXNS: later nameserver lines are ignored.
const MAX_NAMESERVERS: usize = 3;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvConf {
    /// Port 53, in file order, at most three.
    pub nameservers: Vec<SocketAddr>,
    /// resolv.conf(5): default 5 s, capped at 30.
    pub timeout: Duration,
    /// resolv.conf(5): default 2, capped at 5.
    pub attempts: u32,
    /// resolv.conf(5): default 1, capped at 15. Parsed for completeness; unused for mail.
    pub ndots: u32,
}

impl Default for ResolvConf {
    fn default() -> ResolvConf {
        ResolvConf { nameservers: Vec::new(), timeout: Duration::from_secs(5), attempts: 2, ndots: 1 }
    }
}

/// Parses resolv.conf text. Unknown keywords, bad addresses and bad option values are skipped as
/// the C library does; a line starting with `#` or `;` is a comment.
pub fn parse(text: &str) -> ResolvConf {
    let mut rc = ResolvConf::default();
    for line in text.lines() {
        let line = line.split(['#', ';']).next().unwrap_or("");
        let mut words = line.split_whitespace();
        match words.next() {
            Some("nameserver") => {
                if let Some(addr) = words.next().and_then(parse_nameserver)
                    && rc.nameservers.len() < MAX_NAMESERVERS
                {
                    rc.nameservers.push(addr);
                }
            }
            Some("options") => {
                for opt in words {
                    let Some((key, value)) = opt.split_once(':') else { continue };
                    let Ok(n) = value.parse::<u32>() else { continue };
                    match key {
                        "timeout" => rc.timeout = Duration::from_secs(u64::from(n.clamp(1, 30))),
                        "attempts" => rc.attempts = n.clamp(1, 5),
                        "ndots" => rc.ndots = n.min(15),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    rc
}

/// An IPv4 or IPv6 address, the latter optionally with a `%scope` (numeric or interface name).
fn parse_nameserver(word: &str) -> Option<SocketAddr> {
    if let Ok(ip) = word.parse::<IpAddr>() {
        return Some(SocketAddr::new(ip, 53));
    }
    let (addr, scope) = word.split_once('%')?;
    let ip: Ipv6Addr = addr.parse().ok()?;
    let scope_id = match scope.parse::<u32>() {
        Ok(n) => n,
        Err(_) => {
            let c = std::ffi::CString::new(scope).ok()?;
            // SAFETY: `c` is a valid NUL-terminated string for the duration of the call.
            let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
            if idx == 0 {
                return None;
            }
            idx
        }
    };
    Some(SocketAddr::V6(SocketAddrV6::new(ip, 53, 0, scope_id)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_servers_and_options() {
        let text = "# generated\n\
                    search example.org\n\
                    nameserver 192.0.2.1\n\
                    nameserver   2001:db8::53  # v6\n\
                    ; nameserver 192.0.2.9\n\
                    nameserver not-an-address\n\
                    nameserver fe80::1%7\n\
                    nameserver 192.0.2.4\n\
                    options rotate timeout:3 attempts:4 ndots:2 bogus:x\n";
        let rc = parse(text);
        let want: Vec<SocketAddr> = vec![
            "192.0.2.1:53".parse().unwrap(),
            "[2001:db8::53]:53".parse().unwrap(),
            SocketAddr::V6(SocketAddrV6::new("fe80::1".parse().unwrap(), 53, 0, 7)),
        ];
        assert_eq!(rc.nameservers, want, "at most three, bad lines skipped");
        assert_eq!(rc.timeout, Duration::from_secs(3));
        assert_eq!(rc.attempts, 4);
        assert_eq!(rc.ndots, 2);
    }

    #[test]
    fn defaults_and_clamps() {
        let table: &[(&str, u64, u32, u32)] = &[
            ("", 5, 2, 1),
            ("options timeout:0 attempts:0", 1, 1, 1),
            ("options timeout:99 attempts:99 ndots:99", 30, 5, 15),
            ("options timeout:-1 attempts:", 5, 2, 1),
            ("options timeout:2\noptions attempts:3", 2, 3, 1),
        ];
        for (text, timeout, attempts, ndots) in table {
            let rc = parse(text);
            assert!(rc.nameservers.is_empty());
            assert_eq!(
                (rc.timeout.as_secs(), rc.attempts, rc.ndots),
                (*timeout, *attempts, *ndots),
                "{text}"
            );
        }
    }

    #[test]
    fn unknown_scope_is_skipped() {
        assert_eq!(parse("nameserver fe80::1%no-such-if0\n").nameservers, vec![]);
    }
}
