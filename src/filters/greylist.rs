//! Greylisting (RFC 6647): the first message of a (client network, sender, recipient) triplet is
//! deferred with a 4xx; a retry after `delay` passes, and the triplet then passes for 35 days from
//! its last message. Real MTAs retry; most spam engines do not. The triplets live in memory and in
//! `data_dir/greylist` (one `key first last passed` line each, rewritten durably at most once a
//! minute and when a triplet first passes), so a restart does not defer everyone again.
//! Clients are grouped by /24 (IPv4) and /64 (IPv6), as postgrey does, since big senders retry from
//! another address of the same pool.

use std::collections::HashMap;
use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use crate::durable::{self, Place};

/// How long a triplet that passed stays known after its last message (RFC 6647 4.2: weeks).
const PASSED_LIFETIME: u64 = 35 * 86400;
/// How long a first attempt waits for its retry before it is forgotten.
const RETRY_WINDOW: u64 = 2 * 86400;
/// The most triplets kept; beyond it, the oldest are dropped.
const MAX_ENTRIES: usize = 200_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Entry {
    first: u64,
    last: u64,
    passed: bool,
}

/// The verdict on one RCPT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Grey {
    Pass,
    /// Deferred: seconds until a retry passes.
    Wait(u64),
}

pub struct Greylist {
    path: PathBuf,
    delay: u64,
    state: Mutex<State>,
}

struct State {
    entries: HashMap<String, Entry>,
    saved: u64,
    dirty: bool,
}

/// The client's network and the two addresses, lowercased.
fn key(ip: IpAddr, sender: &str, rcpt: &str) -> String {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    };
    let net = match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.0/24", o[0], o[1], o[2])
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    };
    // Spaces cannot occur in the file's fields.
    let clean = |a: &str| a.to_ascii_lowercase().replace(|c: char| c.is_whitespace(), "_");
    format!("{net}|{}|{}", clean(sender), clean(rcpt))
}

impl Greylist {
    /// Loads the triplets kept in `path` (a missing or unreadable file starts empty; bad lines are
    /// skipped).
    pub fn open(path: PathBuf, delay: Duration) -> Greylist {
        let mut entries = HashMap::new();
        if let Ok(text) = std::fs::read_to_string(&path) {
            for line in text.lines() {
                let mut f = line.split(' ');
                let (Some(k), Some(first), Some(last), Some(passed)) =
                    (f.next(), f.next(), f.next(), f.next())
                else {
                    continue;
                };
                if let (Ok(first), Ok(last)) = (first.parse(), last.parse()) {
                    entries.insert(k.to_string(), Entry { first, last, passed: passed == "1" });
                }
            }
        }
        Greylist {
            path,
            delay: delay.as_secs(),
            state: Mutex::new(State { entries, saved: 0, dirty: false }),
        }
    }

    /// The verdict on a message from `ip`, `sender` to `rcpt` at `now` (Unix seconds).
    pub fn check(&self, now: u64, ip: IpAddr, sender: &str, rcpt: &str) -> Grey {
        let k = key(ip, sender, rcpt);
        let Ok(mut st) = self.state.lock() else { return Grey::Pass };
        let live = |e: &Entry| {
            if e.passed {
                now.saturating_sub(e.last) < PASSED_LIFETIME
            } else {
                now.saturating_sub(e.first) < RETRY_WINDOW
            }
        };
        let verdict = match st.entries.get_mut(&k) {
            Some(e) if live(e) && e.passed => {
                e.last = now;
                Grey::Pass
            }
            Some(e) if live(e) && now >= e.first + self.delay => {
                e.passed = true;
                e.last = now;
                st.dirty = true;
                st.saved = 0; // a triplet that passes is saved at once
                Grey::Pass
            }
            Some(e) if live(e) => Grey::Wait(e.first + self.delay - now),
            _ => {
                st.entries.insert(k, Entry { first: now, last: now, passed: false });
                st.dirty = true;
                Grey::Wait(self.delay)
            }
        };
        if st.dirty && now >= st.saved + 60 {
            st.entries.retain(|_, e| live(e));
            if st.entries.len() > MAX_ENTRIES {
                let mut lasts: Vec<u64> = st.entries.values().map(|e| e.last).collect();
                lasts.sort_unstable();
                let cut = lasts[lasts.len() - MAX_ENTRIES];
                st.entries.retain(|_, e| e.last >= cut);
            }
            let mut text = Vec::new();
            for (k, e) in &st.entries {
                let _ = writeln!(text, "{k} {} {} {}", e.first, e.last, u8::from(e.passed));
            }
            match durable::write(&self.path, Place::Replace, 0o600, &text) {
                Ok(()) => {
                    st.dirty = false;
                    st.saved = now;
                }
                Err(e) => log::warn!("event=greylist_save_failed path={} error=\"{e}\"", self.path.display()),
            }
        }
        verdict
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_deferred_retry_passes_and_is_remembered() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("greylist");
        let g = Greylist::open(path.clone(), Duration::from_secs(300));
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(g.check(1000, ip, "a@x.example", "b@y.example"), Grey::Wait(300));
        assert_eq!(g.check(1100, ip, "A@X.example", "b@y.example"), Grey::Wait(200));
        // Another address of the same /24 retries: the same triplet.
        let other: IpAddr = "192.0.2.200".parse().unwrap();
        assert_eq!(g.check(1300, other, "a@x.example", "b@y.example"), Grey::Pass);
        assert_eq!(g.check(1301, ip, "a@x.example", "c@y.example"), Grey::Wait(300));
        // Kept across a restart.
        let g2 = Greylist::open(path, Duration::from_secs(300));
        assert_eq!(g2.check(2000, ip, "a@x.example", "b@y.example"), Grey::Pass);
        // Forgotten after the lifetime.
        assert_eq!(g2.check(2000 + PASSED_LIFETIME + 1, ip, "a@x.example", "b@y.example"), Grey::Wait(300));
    }
}
