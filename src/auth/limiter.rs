//! Brute-force defence for AUTH: failed logins are counted per client
//! address over a sliding window; each failure slows the next answer down,
//! and after `max_failures` the address may not try again for `block_time`.
//! The table is bounded: old entries are dropped when it grows.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Entries kept before stale ones are swept.
const MAX_ENTRIES: usize = 10_000;
/// The longest a failed login's answer is held back.
const MAX_DELAY: Duration = Duration::from_secs(5);

pub struct Limiter {
    max_failures: u32,
    window: Duration,
    block_time: Duration,
    table: Mutex<HashMap<IpAddr, Entry>>,
}

#[derive(Clone, Copy)]
struct Entry {
    failures: u32,
    first: Instant,
    blocked_until: Option<Instant>,
}

/// What a failure led to.
#[derive(Debug, PartialEq, Eq)]
pub struct Verdict {
    /// How long to wait before answering.
    pub delay: Duration,
    /// The address is now blocked.
    pub blocked: bool,
    pub failures: u32,
}

impl Limiter {
    pub fn new(max_failures: u32, window: Duration, block_time: Duration) -> Limiter {
        Limiter { max_failures, window, block_time, table: Mutex::new(HashMap::new()) }
    }

    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Entry>> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts a failed login from `ip`.
    pub fn failed(&self, ip: IpAddr, now: Instant) -> Verdict {
        let mut t = self.table();
        if t.len() >= MAX_ENTRIES {
            let (window, block) = (self.window, self.block_time);
            t.retain(|_, e| now.duration_since(e.first) < window.max(block));
        }
        let e = t.entry(ip).or_insert(Entry { failures: 0, first: now, blocked_until: None });
        if now.duration_since(e.first) >= self.window && e.blocked_until.is_none_or(|b| b <= now) {
            *e = Entry { failures: 0, first: now, blocked_until: None };
        }
        e.failures += 1;
        let blocked = e.failures >= self.max_failures;
        if blocked {
            e.blocked_until = Some(now + self.block_time);
        }
        Verdict { delay: (Duration::from_secs(1) * e.failures).min(MAX_DELAY), blocked, failures: e.failures }
    }

    /// Whether `ip` may not try to log in now.
    pub fn blocked(&self, ip: IpAddr, now: Instant) -> bool {
        self.table().get(&ip).and_then(|e| e.blocked_until).is_some_and(|b| b > now)
    }

    /// A successful login forgets earlier failures of the address.
    pub fn succeeded(&self, ip: IpAddr) {
        let mut t = self.table();
        if t.get(&ip).is_some_and(|e| e.blocked_until.is_none()) {
            t.remove(&ip);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_max_failures_then_forgives() {
        let l = Limiter::new(3, Duration::from_secs(600), Duration::from_secs(900));
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        let t0 = Instant::now();
        assert_eq!(l.failed(ip, t0), Verdict { delay: Duration::from_secs(1), blocked: false, failures: 1 });
        assert_eq!(l.failed(ip, t0).delay, Duration::from_secs(2));
        assert!(!l.blocked(ip, t0));
        assert!(l.failed(ip, t0).blocked);
        assert!(l.blocked(ip, t0 + Duration::from_secs(899)));
        assert!(!l.blocked(other, t0));
        assert!(!l.blocked(ip, t0 + Duration::from_secs(901)));
        // After the block and the window, counting starts again.
        assert_eq!(l.failed(ip, t0 + Duration::from_secs(1000)).failures, 1);
    }

    #[test]
    fn success_resets_and_the_window_slides() {
        let l = Limiter::new(3, Duration::from_secs(60), Duration::from_secs(60));
        let ip: IpAddr = "2001:db8::1".parse().unwrap();
        let t0 = Instant::now();
        l.failed(ip, t0);
        l.failed(ip, t0);
        l.succeeded(ip);
        assert_eq!(l.failed(ip, t0).failures, 1);
        assert_eq!(l.failed(ip, t0 + Duration::from_secs(61)).failures, 1, "old failures expire");
        assert!(l.failed(ip, t0 + Duration::from_secs(100)).delay <= MAX_DELAY);
    }
}
