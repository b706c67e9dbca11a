//! Per-client rate limits (as Postfix's anvil: smtpd_client_connection_rate_limit and
//! smtpd_client_message_rate_limit): events a client address may cause a minute, counted in
//! fixed one-minute windows. IPv6 clients count by /64, since one host holds a whole /64.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(60);
/// Past this many tracked addresses, those whose window is over are forgotten.
const PRUNE_AT: usize = 10_000;

#[derive(Default)]
pub struct Rate {
    counts: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

fn key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
        v4 => v4,
    }
}

impl Rate {
    /// Counts one event of `ip` at `now`; false when it is over `limit` a minute (0: no limit).
    pub fn allow(&self, ip: IpAddr, now: Instant, limit: u32) -> bool {
        if limit == 0 {
            return true;
        }
        let Ok(mut counts) = self.counts.lock() else { return true };
        if counts.len() >= PRUNE_AT {
            counts.retain(|_, (start, _)| now.duration_since(*start) < WINDOW);
        }
        let entry = counts.entry(key(ip)).or_insert((now, 0));
        if now.duration_since(entry.0) >= WINDOW {
            *entry = (now, 0);
        }
        entry.1 = entry.1.saturating_add(1);
        entry.1 <= limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_minute_and_per_v6_prefix() {
        let r = Rate::default();
        let t = Instant::now();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        assert!((0..3).all(|_| r.allow(a, t, 3)));
        assert!(!r.allow(a, t, 3));
        assert!(r.allow("192.0.2.2".parse().unwrap(), t, 3), "another address has its own count");
        assert!(r.allow(a, t + WINDOW, 3), "a new minute starts afresh");
        assert!(r.allow(a, t, 0), "0 is no limit");
        let v6a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let v6b: IpAddr = "2001:db8:1:2::ffff".parse().unwrap();
        assert!(r.allow(v6a, t, 1));
        assert!(!r.allow(v6b, t, 1), "one /64, one count");
    }
}
