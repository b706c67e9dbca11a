//! A small TTL-respecting cache of DNS lookup outcomes keyed by (name, type), shared by threads
//! behind a Mutex (RFC 1035 7.4, RFC 2181 8, RFC 2308 5 negative caching).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// No entry, positive or negative, is kept longer than this (RFC 2308 5 suggests 1–3 hours
/// for negative answers; one hour for everything keeps a stub honest).
pub const MAX_TTL: u32 = 3600;
/// Entries kept at most; beyond that the expired and then the soonest-expiring ones go.
pub const MAX_ENTRIES: usize = 1000;

pub struct Cache<V> {
    map: Mutex<HashMap<(String, u16), (Instant, V)>>,
    capacity: usize,
}

impl<V: Clone> Cache<V> {
    pub fn new(capacity: usize) -> Cache<V> {
        Cache { map: Mutex::new(HashMap::new()), capacity }
    }

    /// The cached value for (name, rtype) if it has not expired at `now`.
    pub fn get(&self, name: &str, rtype: u16, now: Instant) -> Option<V> {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let key = (name.to_string(), rtype);
        match map.get(&key) {
            Some((expires, v)) if *expires > now => Some(v.clone()),
            Some(_) => {
                map.remove(&key);
                None
            }
            None => None,
        }
    }

    /// Stores a value for `ttl` seconds (capped at one hour); a zero TTL is not cached
    /// (RFC 1035 3.2.1: zero means use only for the transaction in progress).
    pub fn insert(&self, name: &str, rtype: u16, value: V, ttl: u32, now: Instant) {
        let ttl = ttl.min(MAX_TTL);
        if ttl == 0 || self.capacity == 0 {
            return;
        }
        let expires = now + Duration::from_secs(u64::from(ttl));
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let key = (name.to_string(), rtype);
        if !map.contains_key(&key) && map.len() >= self.capacity {
            map.retain(|_, (e, _)| *e > now);
            // Still full: drop the entry that would expire first. O(n) over at most 1000 entries,
            // only when the cache is full of live entries.
            if map.len() >= self.capacity
                && let Some(k) = map.iter().min_by_key(|(_, (e, _))| *e).map(|(k, _)| k.clone())
            {
                map.remove(&k);
            }
        }
        map.insert(key, (expires, value));
    }

    pub fn len(&self) -> usize {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_by_ttl() {
        let c = Cache::new(10);
        let t0 = Instant::now();
        c.insert("a.example", 15, 1u32, 60, t0);
        c.insert("a.example", 1, 2u32, 10, t0);
        c.insert("z.example", 1, 3u32, 0, t0);
        assert_eq!(c.get("a.example", 15, t0), Some(1));
        assert_eq!(c.get("a.example", 1, t0 + Duration::from_secs(9)), Some(2));
        assert_eq!(c.get("a.example", 1, t0 + Duration::from_secs(10)), None, "expired at TTL");
        assert_eq!(c.get("a.example", 15, t0 + Duration::from_secs(59)), Some(1));
        assert_eq!(c.get("a.example", 15, t0 + Duration::from_secs(61)), None);
        assert_eq!(c.get("z.example", 1, t0), None, "TTL 0 is not cached");
        assert!(c.is_empty(), "expired entries are dropped on lookup");
    }

    #[test]
    fn ttl_is_capped_at_one_hour() {
        let c = Cache::new(10);
        let t0 = Instant::now();
        c.insert("a", 1, (), 86_400, t0);
        assert_eq!(c.get("a", 1, t0 + Duration::from_secs(3599)), Some(()));
        assert_eq!(c.get("a", 1, t0 + Duration::from_secs(3600)), None);
    }

    #[test]
    fn full_cache_evicts_expired_then_soonest() {
        let c = Cache::new(3);
        let t0 = Instant::now();
        c.insert("short", 1, 1, 5, t0);
        c.insert("mid", 1, 2, 50, t0);
        c.insert("long", 1, 3, 500, t0);
        // "short" has expired at t0+10: it goes first.
        c.insert("new", 1, 4, 100, t0 + Duration::from_secs(10));
        assert_eq!(c.len(), 3);
        assert_eq!(c.get("mid", 1, t0), Some(2));
        // Nothing expired: the soonest to expire ("mid") goes.
        c.insert("newer", 1, 5, 100, t0 + Duration::from_secs(11));
        assert_eq!(c.len(), 3);
        assert_eq!(c.get("mid", 1, t0), None);
        assert_eq!(c.get("long", 1, t0), Some(3));
        // Replacing an existing key does not evict.
        c.insert("long", 1, 6, 500, t0);
        assert_eq!(c.len(), 3);
        assert_eq!(c.get("long", 1, t0), Some(6));
    }
}
