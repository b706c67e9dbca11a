//! Brute-force defence for AUTH (RFC 4954 14: a server should limit password guessing): failed
//! logins are counted per client (an IPv4 address, an IPv6 /64) over a window; each failure slows
//! the next answer down, and after `max_failures` the client may not try again for `block_time`.
//! One limiter outlives SIGHUP reloads (they only change its limits). With a table file
//! (`data_dir/auth-failures`) every process on the data_dir shares the counts, so one connection
//! per inetd-run process counts as well; the table is bounded in memory and on disk.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::net::{IpAddr, Ipv6Addr};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Clients remembered at most; past this the least recently failed are forgotten.
const MAX_ENTRIES: usize = 4096;
/// A table file larger than this is not ours (MAX_ENTRIES lines are well below it).
const MAX_FILE: u64 = 512 * 1024;
/// The longest a failed login's answer is held back.
const MAX_DELAY: Duration = Duration::from_secs(5);
/// The table file could not be used once already (logged once per process).
static FILE_FAILED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
/// First line of the table file.
const MAGIC: &str = "buzon-auth-failures 1";

/// The limits, from the configuration (replaced at SIGHUP).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub max_failures: u32,
    pub window: Duration,
    pub block_time: Duration,
}

/// Who is counted: an IPv4 address, or the /64 of an IPv6 one (a host is given a whole /64 by
/// SLAAC, RFC 4291 2.5.1, and may use any address in it). IPv4-mapped IPv6 is IPv4.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !((1u128 << 64) - 1))),
        },
    }
}

/// Seconds since the epoch: the table is shared between processes, so times are wall-clock.
fn secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Entry {
    failures: u32,
    /// The first failure counted in this window.
    first: u64,
    /// The last failure (the least recent go first when the table is full).
    last: u64,
    /// 0: not blocked.
    blocked_until: u64,
}

type Table = HashMap<IpAddr, Entry>;

/// What a failure led to.
#[derive(Debug, PartialEq, Eq)]
pub struct Verdict {
    /// How long to wait before answering.
    pub delay: Duration,
    /// The client is now blocked.
    pub blocked: bool,
    pub failures: u32,
}

pub struct Limiter {
    limits: Mutex<Limits>,
    table: Mutex<Table>,
    /// The shared table file; None: this process's memory only.
    file: Option<PathBuf>,
}

impl Limiter {
    /// A limiter whose table lives in this process only.
    pub fn new(limits: Limits) -> Limiter {
        Limiter { limits: Mutex::new(limits), table: Mutex::new(HashMap::new()), file: None }
    }

    /// A limiter whose table is `path`, read and rewritten (atomically: temp file and rename) under
    /// an flock(2) on `path.lock`, so every process using it shares the counts. When the file
    /// cannot be used, the process keeps counting in memory (logged).
    pub fn shared(limits: Limits, path: PathBuf) -> Limiter {
        Limiter { file: Some(path), ..Limiter::new(limits) }
    }

    /// SIGHUP: new limits; the counts stay.
    pub fn set_limits(&self, limits: Limits) {
        *self.limits.lock().unwrap_or_else(|p| p.into_inner()) = limits;
    }

    fn limits(&self) -> Limits {
        *self.limits.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on the current table; with a file, under its lock, loaded first and saved after
    /// when `f` says it changed something.
    fn with_table<R>(&self, f: impl FnOnce(&mut Table) -> (R, bool)) -> R {
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        let Some(path) = &self.file else { return f(&mut table).0 };
        // Unusable (no lock, unreadable): this process goes on with the table it has in memory.
        let unusable = |e: io::Error| {
            if !FILE_FAILED.swap(true, std::sync::atomic::Ordering::Relaxed) {
                log::warn!("event=auth_table_error file={} error=\"{e}\" action=memory", path.display());
            }
        };
        let lock = lock_file(path).map_err(unusable).ok();
        let mut repair = false;
        let shared = lock.is_some()
            && match load(path) {
                Ok(t) => {
                    *table = t;
                    true
                }
                Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                    log::warn!(
                        "event=auth_table_corrupt file={} error=\"{e}\" action=ignored",
                        path.display()
                    );
                    table.clear();
                    repair = true; // rewritten now, so the line is logged once
                    true
                }
                Err(e) => {
                    unusable(e);
                    false
                }
            };
        let (r, changed) = f(&mut table);
        if (changed || repair)
            && shared
            && let Err(e) = save(path, &table)
        {
            unusable(e);
        }
        r
    }

    /// Counts a failed login from `ip`.
    pub fn failed(&self, ip: IpAddr, now: SystemTime) -> Verdict {
        let limits = self.limits();
        let (key, now) = (client_key(ip), secs(now));
        self.with_table(|t| {
            let e = t.entry(key).or_insert(Entry { failures: 0, first: now, last: now, blocked_until: 0 });
            if now.saturating_sub(e.first) >= limits.window.as_secs() && e.blocked_until <= now {
                *e = Entry { failures: 0, first: now, last: now, blocked_until: 0 };
            }
            e.failures = e.failures.saturating_add(1);
            e.last = now;
            let blocked = e.failures >= limits.max_failures;
            if blocked {
                e.blocked_until = now.saturating_add(limits.block_time.as_secs());
            }
            let v = Verdict {
                delay: (Duration::from_secs(1) * e.failures).min(MAX_DELAY),
                blocked,
                failures: e.failures,
            };
            prune(t, &limits, now);
            (v, true)
        })
    }

    /// Whether `ip` may not try to log in now.
    pub fn blocked(&self, ip: IpAddr, now: SystemTime) -> bool {
        let (key, now) = (client_key(ip), secs(now));
        self.with_table(|t| (t.get(&key).is_some_and(|e| e.blocked_until > now), false))
    }

    /// A successful login forgets earlier failures of the client (not a block).
    pub fn succeeded(&self, ip: IpAddr) {
        let key = client_key(ip);
        self.with_table(|t| {
            let forget = t.get(&key).is_some_and(|e| e.blocked_until == 0);
            if forget {
                t.remove(&key);
            }
            ((), forget)
        })
    }
}

/// Drops what no longer counts (window and block over), then, past MAX_ENTRIES, the clients not
/// blocked whose last failure is oldest, then the blocks that end first.
fn prune(t: &mut Table, limits: &Limits, now: u64) {
    let window = limits.window.as_secs();
    t.retain(|_, e| now.saturating_sub(e.first) < window || e.blocked_until > now);
    if t.len() > MAX_ENTRIES {
        let mut rank: Vec<(u64, u64, IpAddr)> =
            t.iter().map(|(k, e)| (e.blocked_until, e.last, *k)).collect();
        rank.sort_unstable_by(|a, b| b.cmp(a));
        for (_, _, k) in &rank[MAX_ENTRIES..] {
            t.remove(k);
        }
    }
}

/// An exclusive flock(2) on `<path>.lock`, released when the file is dropped.
fn lock_file(path: &Path) -> io::Result<File> {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    let f = OpenOptions::new().write(true).create(true).truncate(false).mode(0o600).open(name)?;
    loop {
        // SAFETY: flock on a descriptor we own; no memory is involved.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } == 0 {
            return Ok(f);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

fn corrupt(line: usize, what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("line {line}: {what}"))
}

/// The table in the file; empty when there is none. InvalidData when it is not one of ours.
fn load(path: &Path) -> io::Result<Table> {
    let f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(HashMap::new()),
        Err(e) => return Err(e),
    };
    let mut bytes = Vec::new();
    f.take(MAX_FILE + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_FILE {
        return Err(corrupt(0, "too large"));
    }
    let text = String::from_utf8(bytes).map_err(|_| corrupt(0, "not UTF-8"))?;
    let mut lines = text.lines().enumerate();
    if lines.next().map(|(_, l)| l) != Some(MAGIC) {
        return Err(corrupt(1, "not an auth-failures table"));
    }
    let mut t = HashMap::new();
    for (i, line) in lines {
        let f: Vec<&str> = line.split(' ').collect();
        let [ip, failures, first, last, until] = f[..] else { return Err(corrupt(i + 1, "5 fields wanted")) };
        let num = |s: &str| s.parse::<u64>().map_err(|_| corrupt(i + 1, "bad number"));
        let ip: IpAddr = ip.parse().map_err(|_| corrupt(i + 1, "bad address"))?;
        let failures = u32::try_from(num(failures)?).map_err(|_| corrupt(i + 1, "bad count"))?;
        let e = Entry { failures, first: num(first)?, last: num(last)?, blocked_until: num(until)? };
        t.insert(client_key(ip), e);
        if t.len() > MAX_ENTRIES {
            return Err(corrupt(i + 1, "too many entries"));
        }
    }
    Ok(t)
}

/// Writes the table durably (durable.rs: temp file, fsync, rename over, fsync the directory):
/// readers see the old or the new table, never half of one.
fn save(path: &Path, t: &Table) -> io::Result<()> {
    use std::fmt::Write as _;
    let mut text = format!("{MAGIC}\n");
    for (ip, e) in t {
        let _ = writeln!(text, "{ip} {} {} {} {}", e.failures, e.first, e.last, e.blocked_until);
    }
    crate::durable::write(path, crate::durable::Place::Replace, 0o600, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn limits(max: u32, window: u64, block: u64) -> Limits {
        Limits {
            max_failures: max,
            window: Duration::from_secs(window),
            block_time: Duration::from_secs(block),
        }
    }

    fn at(t0: SystemTime, s: u64) -> SystemTime {
        t0 + Duration::from_secs(s)
    }

    #[test]
    fn blocks_after_max_failures_then_forgives() {
        let l = Limiter::new(limits(3, 600, 900));
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        let t0 = SystemTime::now();
        assert_eq!(l.failed(ip, t0), Verdict { delay: Duration::from_secs(1), blocked: false, failures: 1 });
        assert_eq!(l.failed(ip, t0).delay, Duration::from_secs(2));
        assert!(!l.blocked(ip, t0));
        assert!(l.failed(ip, t0).blocked);
        assert!(l.blocked(ip, at(t0, 899)));
        assert!(!l.blocked(other, t0), "IPv4 counts per address");
        assert!(!l.blocked(ip, at(t0, 901)));
        // After the block and the window, counting starts again.
        assert_eq!(l.failed(ip, at(t0, 1000)).failures, 1);
    }

    #[test]
    fn success_resets_and_the_window_slides() {
        let l = Limiter::new(limits(3, 60, 60));
        let ip: IpAddr = "2001:db8::1".parse().unwrap();
        let t0 = SystemTime::now();
        l.failed(ip, t0);
        l.failed(ip, t0);
        l.succeeded(ip);
        assert_eq!(l.failed(ip, t0).failures, 1);
        assert_eq!(l.failed(ip, at(t0, 61)).failures, 1, "old failures expire");
        assert!(l.failed(ip, at(t0, 100)).delay <= MAX_DELAY);
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(client_key(ip("2001:db8:1:2:aaaa::1")), ip("2001:db8:1:2::"));
        assert_eq!(client_key(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(client_key(ip("192.0.2.7")), ip("192.0.2.7"));
        let l = Limiter::new(limits(3, 600, 900));
        let t0 = SystemTime::now();
        // Three addresses of one /64 are one client: blocked together.
        l.failed(ip("2001:db8:1:2::1"), t0);
        l.failed(ip("2001:db8:1:2::2"), t0);
        assert!(l.failed(ip("2001:db8:1:2:ffff:ffff:ffff:ffff"), t0).blocked);
        assert!(l.blocked(ip("2001:db8:1:2:1234::9"), t0));
        assert!(!l.blocked(ip("2001:db8:1:3::1"), t0), "the next /64 is another client");
        // A mapped address is the IPv4 client.
        for _ in 0..3 {
            l.failed(ip("::ffff:198.51.100.1"), t0);
        }
        assert!(l.blocked(ip("198.51.100.1"), t0));
        assert!(!l.blocked(ip("198.51.100.2"), t0));
    }

    #[test]
    fn new_limits_keep_the_counts() {
        let l = Limiter::new(limits(5, 600, 900));
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let t0 = SystemTime::now();
        l.failed(ip, t0);
        l.failed(ip, t0);
        l.set_limits(limits(3, 600, 60));
        let v = l.failed(ip, t0);
        assert_eq!((v.failures, v.blocked), (3, true));
        assert!(l.blocked(ip, at(t0, 59)));
        assert!(!l.blocked(ip, at(t0, 61)), "the new block_time");
    }

    #[test]
    fn the_file_is_shared_by_two_limiters() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("auth-failures");
        // Two processes (inetd connections), each with its own limiter over the same file.
        let a = Limiter::shared(limits(3, 600, 900), path.clone());
        let b = Limiter::shared(limits(3, 600, 900), path.clone());
        let ip: IpAddr = "192.0.2.9".parse().unwrap();
        let t0 = SystemTime::now();
        assert_eq!(a.failed(ip, t0).failures, 1);
        assert_eq!(b.failed(ip, t0).failures, 2);
        assert!(Limiter::shared(limits(3, 600, 900), path.clone()).failed(ip, t0).blocked);
        assert!(a.blocked(ip, t0) && b.blocked(ip, t0));
        assert!(!b.blocked("192.0.2.10".parse().unwrap(), t0));
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.starts_with(MAGIC), "{text}");
        // No temp file is left beside it.
        let mut names: Vec<String> =
            fs::read_dir(d.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        names.sort();
        assert_eq!(names, ["auth-failures", "auth-failures.lock"]);
        // A success elsewhere before a block forgets the count everywhere.
        let ip2: IpAddr = "192.0.2.11".parse().unwrap();
        a.failed(ip2, t0);
        b.succeeded(ip2);
        assert_eq!(a.failed(ip2, t0).failures, 1);
    }

    #[test]
    fn a_corrupt_or_foreign_file_is_ignored_and_replaced() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("auth-failures");
        let ip: IpAddr = "192.0.2.9".parse().unwrap();
        let t0 = SystemTime::now();
        for bad in [
            "garbage\n".to_string(),
            format!("{MAGIC}\n192.0.2.9 3 1 1\n"),
            format!("{MAGIC}\nnot-an-ip 3 1 1 99999999999\n"),
            format!("{MAGIC}\n192.0.2.9 x 1 1 99999999999\n"),
        ] {
            fs::write(&path, &bad).unwrap();
            let l = Limiter::shared(limits(3, 600, 900), path.clone());
            assert!(!l.blocked(ip, t0), "{bad:?}");
            assert_eq!(l.failed(ip, t0).failures, 1, "{bad:?}");
            assert!(fs::read_to_string(&path).unwrap().starts_with(MAGIC));
        }
        fs::write(&path, vec![b'x'; MAX_FILE as usize + 10]).unwrap();
        assert_eq!(Limiter::shared(limits(3, 600, 900), path.clone()).failed(ip, t0).failures, 1);
        // A file that cannot be used at all (a directory in its place): counting goes on in memory.
        fs::remove_file(&path).unwrap();
        fs::create_dir(&path).unwrap();
        let l = Limiter::shared(limits(2, 600, 900), path.clone());
        l.failed(ip, t0);
        assert!(l.failed(ip, t0).blocked);
    }

    #[test]
    fn the_table_stays_bounded() {
        let l = limits(3, 600, 900);
        let now = 1_000_000;
        let mut t: Table = HashMap::new();
        let blocked: IpAddr = "198.51.100.1".parse().unwrap();
        t.insert(blocked, Entry { failures: 3, first: now - 5, last: now - 5, blocked_until: now + 900 });
        t.insert("198.51.100.2".parse().unwrap(), Entry { failures: 1, first: 1, last: 1, blocked_until: 0 });
        for i in 0..(MAX_ENTRIES as u32 + 50) {
            let ip = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            t.insert(
                ip,
                Entry { failures: 1, first: now - 10, last: now - u64::from(i % 100), blocked_until: 0 },
            );
        }
        prune(&mut t, &l, now);
        assert_eq!(t.len(), MAX_ENTRIES);
        assert!(t.contains_key(&blocked), "a block outlives counts");
        assert!(!t.contains_key(&"198.51.100.2".parse().unwrap()), "expired");
        assert!(t.values().filter(|e| e.blocked_until == 0).all(|e| e.last > now - 100));
        // The file of a full table stays under the size a reader accepts, and more is refused.
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("auth-failures");
        save(&path, &t).unwrap();
        assert!(fs::metadata(&path).unwrap().len() < MAX_FILE);
        assert_eq!(load(&path).unwrap(), t);
        let mut more = fs::read_to_string(&path).unwrap();
        more.push_str("2001:db8:: 1 1 1 0\n");
        fs::write(&path, more).unwrap();
        assert!(load(&path).is_err());
    }
}
