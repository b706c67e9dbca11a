//! Mailbox-change watcher: one Linux inotify instance that tells the event loop which IMAP IDLE
//! sessions (keys) have a mailbox that just changed, whether buzon or another process changed it.
//!
//! What each change looks like to inotify (all of them are watched):
//! - Maildir delivery: rename tmp/ → new/ = `IN_MOVED_TO` on new/ (link + unlink = `IN_CREATE`);
//!   a writer that creates in new/ directly adds `IN_CREATE`, `IN_MODIFY`, `IN_CLOSE_WRITE`;
//! - flag change: rename within cur/ = `IN_MOVED_FROM` + `IN_MOVED_TO` on cur/; new/ → cur/ the same
//!   pair on the two directories;
//! - expunge: unlink = `IN_DELETE`; a `utime`/`chmod` on a message = `IN_ATTRIB`;
//! - mbox: an append in place = `IN_MODIFY` (+ `IN_CLOSE_WRITE`) on the file; a rewrite by rename
//!   over it = `IN_ATTRIB` (link count) then `IN_DELETE_SELF` and `IN_IGNORED` on the old inode,
//!   which is why a caller may watch the mbox's directory as well. `IN_DELETE_SELF` and
//!   `IN_MOVE_SELF` are watched too, so a watched directory or file that vanishes wakes its keys.
//!
//! The kernel gives one watch descriptor (wd) per inode and instance, so 1,000 sessions on one
//! mailbox share a wd: the tables keep the keys per wd and remove the watch when the last goes.
//! Every syscall that changes watches runs under the table lock, so table and kernel agree.

use std::collections::{HashMap, HashSet};
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

/// The events that mean "this mailbox may have changed".
const MASK: u32 = libc::IN_CREATE
    | libc::IN_MOVED_TO
    | libc::IN_MOVED_FROM
    | libc::IN_DELETE
    | libc::IN_ATTRIB
    | libc::IN_CLOSE_WRITE
    | libc::IN_MODIFY
    | libc::IN_DELETE_SELF
    | libc::IN_MOVE_SELF;

/// Size of the fixed part of one event record (wd, mask, cookie, len).
const HEADER: usize = std::mem::size_of::<libc::inotify_event>();

/// The read buffer: room for many records, aligned as `inotify_event` asks (man 7 inotify).
#[repr(C, align(8))]
struct EventBuf([u8; 4096]);

// One event with the longest name (NAME_MAX = 255) must fit, or read(2) fails with EINVAL.
const _: () = assert!(std::mem::size_of::<EventBuf>() >= HEADER + 256);
const _: () = assert!(std::mem::align_of::<EventBuf>() >= std::mem::align_of::<libc::inotify_event>());

#[derive(Default)]
struct Tables {
    /// wd → the keys watching it; the set's size is the wd's reference count.
    by_wd: HashMap<i32, HashSet<u64>>,
    /// key → the wds it watches.
    by_key: HashMap<u64, HashSet<i32>>,
}

impl Tables {
    /// Removes `key` from `wd`; when no key is left the watch is removed from the kernel too.
    fn drop_key_from_wd(&mut self, fd: RawFd, key: u64, wd: i32) {
        let Some(keys) = self.by_wd.get_mut(&wd) else { return };
        keys.remove(&key);
        if keys.is_empty() {
            self.by_wd.remove(&wd);
            // SAFETY: plain syscall on our own inotify descriptor; an unknown wd only gives EINVAL
            // (the kernel may have removed it already), which is of no interest here.
            unsafe { libc::inotify_rm_watch(fd, wd) };
        }
    }

    /// The kernel removed `wd` (IN_IGNORED): forget it without calling inotify_rm_watch.
    fn forget_wd(&mut self, wd: i32) {
        for key in self.by_wd.remove(&wd).unwrap_or_default() {
            if let Some(wds) = self.by_key.get_mut(&key) {
                wds.remove(&wd);
                if wds.is_empty() {
                    self.by_key.remove(&key);
                }
            }
        }
    }
}

/// One inotify instance for the whole server. Non-blocking, close-on-exec.
pub struct Notifier {
    fd: OwnedFd,
    tables: Mutex<Tables>,
}

impl Notifier {
    pub fn new() -> io::Result<Notifier> {
        // SAFETY: inotify_init1 takes only flags and returns a new descriptor or -1.
        let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just returned by the kernel, is open, and nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Notifier { fd, tables: Mutex::new(Tables::default()) })
    }

    /// The descriptor the event loop registers for readability (mio::unix::SourceFd).
    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    fn lock(&self) -> MutexGuard<'_, Tables> {
        // The tables are changed together with their syscall under the lock; a panic elsewhere
        // cannot leave them half-updated, so poisoning is ignored.
        self.tables.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Watches `paths` (directories: a Maildir's new/ and cur/; or an mbox file itself, or its
    /// directory) on behalf of `key`. Several keys may share one path (one wd per inode).
    ///
    /// Called from a worker thread that has taken the mailbox owner's file-system identity
    /// (setfsuid), so the kernel checks permission as that user: that is intended.
    ///
    /// All or nothing: if one path fails (ENOSPC = too many watches, EACCES, ENOENT, ENOTDIR when a
    /// directory was replaced), what this call added for `key` is undone and the error returned;
    /// the caller then polls that session. Watches `key` had before the call are kept.
    pub fn watch(&self, key: u64, paths: &[PathBuf]) -> io::Result<()> {
        let fd = self.fd();
        let mut t = self.lock();
        let mut added: Vec<i32> = Vec::new();
        for path in paths {
            match add_watch(fd, path) {
                Ok(wd) => {
                    if t.by_wd.entry(wd).or_default().insert(key) {
                        added.push(wd);
                    }
                    t.by_key.entry(key).or_default().insert(wd);
                }
                Err(e) => {
                    for wd in added {
                        if let Some(wds) = t.by_key.get_mut(&key) {
                            wds.remove(&wd);
                            if wds.is_empty() {
                                t.by_key.remove(&key);
                            }
                        }
                        t.drop_key_from_wd(fd, key, wd);
                    }
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// Drops every watch of `key` (inotify_rm_watch when a wd's count reaches zero). Never fails;
    /// an unknown key is fine.
    pub fn unwatch(&self, key: u64) {
        let fd = self.fd();
        let mut t = self.lock();
        for wd in t.by_key.remove(&key).unwrap_or_default() {
            t.drop_key_from_wd(fd, key, wd);
        }
    }

    /// Reads all pending inotify events (until EAGAIN) and returns the keys whose watched paths
    /// changed, each once. IN_Q_OVERFLOW returns every watching key. IN_IGNORED (the kernel
    /// removed the watch: directory deleted, file system unmounted) forgets that wd and reports
    /// its keys, so their sessions look again (and find the mailbox gone or re-watch it).
    pub fn read_events(&self) -> Vec<u64> {
        let mut changed: HashSet<i32> = HashSet::new();
        let mut ignored: Vec<i32> = Vec::new();
        let mut overflow = false;
        let mut buf = EventBuf([0; 4096]);
        loop {
            // SAFETY: the pointer and length describe `buf`, which is writable and lives for
            // the whole call; the kernel writes at most `len` bytes.
            let n = unsafe { libc::read(self.fd(), buf.0.as_mut_ptr().cast::<libc::c_void>(), buf.0.len()) };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                if e.kind() != io::ErrorKind::WouldBlock {
                    log::warn!("notify: read error={e}");
                }
                break;
            }
            let n = usize::try_from(n).unwrap_or(0).min(buf.0.len());
            if n == 0 {
                break;
            }
            for (wd, mask) in parse(&buf.0[..n]) {
                if mask & libc::IN_Q_OVERFLOW != 0 {
                    overflow = true;
                } else if mask & libc::IN_IGNORED != 0 {
                    ignored.push(wd);
                    changed.insert(wd);
                } else {
                    changed.insert(wd);
                }
            }
        }
        let mut t = self.lock();
        let keys: HashSet<u64> = if overflow {
            t.by_key.keys().copied().collect()
        } else {
            changed.iter().filter_map(|wd| t.by_wd.get(wd)).flatten().copied().collect()
        };
        for wd in ignored {
            t.forget_wd(wd);
        }
        keys.into_iter().collect()
    }
}

/// Adds (or joins) the watch on one path. IN_ONLYDIR when the path is a directory now, so a
/// directory swapped for something else in between fails with ENOTDIR instead of being watched.
fn add_watch(fd: RawFd, path: &Path) -> io::Result<i32> {
    let is_dir = std::fs::metadata(path)?.is_dir();
    let mask = if is_dir { MASK | libc::IN_ONLYDIR } else { MASK };
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))?;
    // SAFETY: `c` is a NUL-terminated string that outlives the call; `fd` is our inotify fd.
    let wd = unsafe { libc::inotify_add_watch(fd, c.as_ptr(), mask) };
    if wd < 0 { Err(io::Error::last_os_error()) } else { Ok(wd) }
}

/// Walks a buffer of variable-length `inotify_event` records: (wd, mask) of each whole record.
/// Bounds are checked at every step; a truncated record ends the walk.
fn parse(buf: &[u8]) -> Vec<(i32, u32)> {
    let field = |at: usize| -> Option<[u8; 4]> { buf.get(at..at + 4)?.try_into().ok() };
    let mut out = Vec::new();
    let mut at = 0usize;
    while let (Some(wd), Some(mask), Some(len)) = (field(at), field(at + 4), field(at + 12)) {
        let len = usize::try_from(u32::from_ne_bytes(len)).unwrap_or(usize::MAX);
        let Some(next) = at.checked_add(HEADER).and_then(|h| h.checked_add(len)) else { break };
        if next > buf.len() {
            break;
        }
        out.push((i32::from_ne_bytes(wd), u32::from_ne_bytes(mask)));
        at = next;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::io::Write;

    fn maildir(root: &Path) -> (PathBuf, PathBuf, PathBuf) {
        let (tmp, new, cur) = (root.join("tmp"), root.join("new"), root.join("cur"));
        for d in [&tmp, &new, &cur] {
            fs::create_dir_all(d).unwrap();
        }
        (tmp, new, cur)
    }

    fn sorted(mut v: Vec<u64>) -> Vec<u64> {
        v.sort_unstable();
        v
    }

    fn wd_count(n: &Notifier) -> usize {
        n.lock().by_wd.len()
    }

    #[test]
    fn notify_delivery_into_new_reports_key() {
        let dir = tempfile::tempdir().unwrap();
        let (tmp, new, cur) = maildir(dir.path());
        let n = Notifier::new().unwrap();
        n.watch(7, &[new.clone(), cur]).unwrap();
        assert!(n.read_events().is_empty());
        fs::write(tmp.join("1.a.host"), b"Subject: x\r\n\r\nhi\r\n").unwrap();
        assert!(n.read_events().is_empty(), "tmp/ is not watched");
        fs::rename(tmp.join("1.a.host"), new.join("1.a.host")).unwrap();
        assert_eq!(n.read_events(), vec![7]);
        assert!(n.read_events().is_empty(), "drained");
    }

    #[test]
    fn notify_two_keys_share_one_wd() {
        let dir = tempfile::tempdir().unwrap();
        let (tmp, new, cur) = maildir(dir.path());
        let n = Notifier::new().unwrap();
        n.watch(1, &[new.clone(), cur.clone()]).unwrap();
        n.watch(2, &[new.clone(), cur.clone()]).unwrap();
        assert_eq!(wd_count(&n), 2, "one wd per directory, not per key");
        fs::write(tmp.join("m1"), b"x").unwrap();
        fs::rename(tmp.join("m1"), new.join("m1")).unwrap();
        assert_eq!(sorted(n.read_events()), vec![1, 2]);

        n.unwatch(1);
        assert_eq!(wd_count(&n), 2, "key 2 still holds both wds");
        fs::write(tmp.join("m2"), b"x").unwrap();
        fs::rename(tmp.join("m2"), new.join("m2")).unwrap();
        assert_eq!(n.read_events(), vec![2]);

        n.unwatch(2);
        n.unwatch(2);
        n.unwatch(99);
        assert_eq!(wd_count(&n), 0);
        assert!(n.lock().by_key.is_empty());
        // Only the IN_IGNORED records of the removed watches are left: no key is reported.
        assert!(n.read_events().is_empty());
        fs::write(tmp.join("m3"), b"x").unwrap();
        fs::rename(tmp.join("m3"), new.join("m3")).unwrap();
        assert!(n.read_events().is_empty(), "the kernel watch is gone");
    }

    #[test]
    fn notify_flag_rename_and_unlink_in_cur() {
        let dir = tempfile::tempdir().unwrap();
        let (_tmp, new, cur) = maildir(dir.path());
        fs::write(cur.join("1.a.host:2,"), b"x").unwrap();
        let n = Notifier::new().unwrap();
        n.watch(3, &[new, cur.clone()]).unwrap();
        fs::rename(cur.join("1.a.host:2,"), cur.join("1.a.host:2,S")).unwrap();
        assert_eq!(n.read_events(), vec![3]);
        fs::remove_file(cur.join("1.a.host:2,S")).unwrap();
        assert_eq!(n.read_events(), vec![3]);
    }

    #[test]
    fn notify_mbox_append() {
        let dir = tempfile::tempdir().unwrap();
        let mbox = dir.path().join("inbox");
        fs::write(&mbox, b"From a@b Mon Dec  7 04:00:00 2026\nSubject: 1\n\nx\n\n").unwrap();
        let n = Notifier::new().unwrap();
        n.watch(4, std::slice::from_ref(&mbox)).unwrap();
        let mut f = fs::OpenOptions::new().append(true).open(&mbox).unwrap();
        f.write_all(b"From c@d Mon Dec  7 04:01:00 2026\nSubject: 2\n\ny\n\n").unwrap();
        assert_eq!(n.read_events(), vec![4], "IN_MODIFY while still open");
        drop(f);
        assert_eq!(n.read_events(), vec![4], "IN_CLOSE_WRITE");
        // A directory-only path list entry for the file's directory works alongside.
        n.watch(5, &[dir.path().to_path_buf()]).unwrap();
        fs::write(dir.path().join("other"), b"z").unwrap();
        assert_eq!(n.read_events(), vec![5]);
    }

    #[test]
    fn notify_nothing_pending_does_not_block() {
        let n = Notifier::new().unwrap();
        let t = std::time::Instant::now();
        assert!(n.read_events().is_empty());
        let dir = tempfile::tempdir().unwrap();
        n.watch(1, &[dir.path().to_path_buf()]).unwrap();
        assert!(n.read_events().is_empty());
        assert!(t.elapsed() < std::time::Duration::from_secs(1));
        // SAFETY: fcntl(F_GETFD/F_GETFL) on our own open descriptor only reads its flags.
        let (fdf, fl) = unsafe { (libc::fcntl(n.fd(), libc::F_GETFD), libc::fcntl(n.fd(), libc::F_GETFL)) };
        assert!(fdf & libc::FD_CLOEXEC != 0 && fl & libc::O_NONBLOCK != 0);
    }

    #[test]
    fn notify_removed_directory_is_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let (_tmp, new, cur) = maildir(dir.path());
        let n = Notifier::new().unwrap();
        n.watch(6, &[new.clone(), cur.clone()]).unwrap();
        n.watch(8, std::slice::from_ref(&new)).unwrap();
        fs::remove_dir(&new).unwrap();
        assert_eq!(sorted(n.read_events()), vec![6, 8], "IN_DELETE_SELF / IN_IGNORED wake the keys");
        {
            let t = n.lock();
            assert_eq!(t.by_wd.len(), 1, "new/'s wd forgotten, cur/'s kept");
            assert!(!t.by_key.contains_key(&8), "key 8 watched only new/");
            assert_eq!(t.by_key.get(&6).map(HashSet::len), Some(1));
        }
        fs::write(cur.join("m"), b"x").unwrap();
        assert_eq!(n.read_events(), vec![6]);
        n.unwatch(8);
        n.unwatch(6);
        assert_eq!(wd_count(&n), 0);
        // A new watch after all that still works; a path that is gone is an error, not a panic.
        fs::create_dir(&new).unwrap();
        n.watch(9, std::slice::from_ref(&new)).unwrap();
        fs::write(new.join("m"), b"x").unwrap();
        assert_eq!(n.read_events(), vec![9]);
        let err = n.watch(10, &[cur.clone(), dir.path().join("missing")]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(!n.lock().by_key.contains_key(&10), "a failed watch is undone");
        assert_eq!(wd_count(&n), 1);
    }

    #[test]
    fn notify_parse_bounds() {
        let mut rec = Vec::new();
        for (wd, mask, len) in [(1i32, libc::IN_CREATE, 16u32), (2, libc::IN_DELETE, 0)] {
            rec.extend_from_slice(&wd.to_ne_bytes());
            rec.extend_from_slice(&mask.to_ne_bytes());
            rec.extend_from_slice(&0u32.to_ne_bytes());
            rec.extend_from_slice(&len.to_ne_bytes());
            rec.extend(std::iter::repeat_n(0u8, len as usize));
        }
        assert_eq!(parse(&rec), vec![(1, libc::IN_CREATE), (2, libc::IN_DELETE)]);
        for cut in 0..rec.len() {
            let _ = parse(&rec[..cut]);
        }
        assert_eq!(parse(&rec[..HEADER + 15]), vec![]);
        let mut huge = rec[..HEADER].to_vec();
        huge[12..16].copy_from_slice(&u32::MAX.to_ne_bytes());
        assert_eq!(parse(&huge), vec![]);
    }
}
