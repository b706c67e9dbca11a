//! Dovecot-style dot-locks (`dovecot-uidlist.lock`, `subscriptions.lock`): a file created with
//! O_CREAT|O_EXCL, holding "<pid>:<host>", removed on release. Works between the threads of one
//! process and between processes (an inetd-run imapd, Dovecot itself), which fcntl locks do not
//! (they are per process). A lock older than [`STALE`] (Dovecot's uidlist stale timeout), or left by
//! a dead process of this host, is broken.

use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use super::msgfile::temp;
use crate::store::folder::FolderError;

/// A lock not touched for this long is taken to be left over from a crash.
pub const STALE: Duration = Duration::from_secs(120);
/// How long a session waits for a lock before failing (temporarily).
pub const WAIT: Duration = Duration::from_secs(30);
/// A holder refreshes its lock's mtime this often during long work (size counting).
const TOUCH: Duration = Duration::from_secs(20);

/// The longest nap between two tries for a held lock (plus up to as much again of jitter).
const MAX_NAP: Duration = Duration::from_millis(8);

/// Up to `d` of jitter, from the clock's nanoseconds and the thread (no randomness needed).
fn jitter(d: Duration) -> Duration {
    use std::hash::{BuildHasher, Hash, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    std::thread::current().id().hash(&mut h);
    SystemTime::now().hash(&mut h);
    let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX).max(1);
    Duration::from_nanos(h.finish() % nanos)
}

/// A held dot-lock; dropping it releases it.
#[derive(Debug)]
pub struct DotLock {
    path: PathBuf,
    ino: u64,
    touched: Instant,
}

impl DotLock {
    /// Takes `<target>.lock`, waiting up to [`WAIT`].
    pub fn acquire(target: &Path) -> Result<DotLock, FolderError> {
        Self::acquire_within(target, WAIT)
    }

    pub fn acquire_within(target: &Path, wait: Duration) -> Result<DotLock, FolderError> {
        let mut name = target.file_name().unwrap_or_default().to_os_string();
        name.push(".lock");
        let path = target.with_file_name(name);
        let start = Instant::now();
        let mut delay = Duration::from_millis(1);
        loop {
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(&path)
            {
                Ok(mut f) => {
                    let ino = f.metadata().map(|m| m.ino()).unwrap_or(0);
                    // Informational (and for the dead-holder check): no fsync needed for a lock.
                    let _ = write!(f, "{}:{}", std::process::id(), crate::config::system_hostname());
                    return Ok(DotLock { path, ino, touched: Instant::now() });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    if break_stale(&path) {
                        continue;
                    }
                }
                // The folder itself is gone (deleted or renamed by another session).
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(FolderError::NotFound),
                Err(e) => return Err(temp("cannot create lock", &path, &e)),
            }
            if start.elapsed() >= wait {
                return Err(FolderError::Temp(format!("timed out waiting for lock {}", path.display())));
            }
            // Short naps with jitter: the lock is held for milliseconds, and waiters that wake
            // in step would only collide again.
            std::thread::sleep(delay + jitter(delay));
            delay = (delay * 2).min(MAX_NAP);
        }
    }

    /// Refreshes the lock's mtime when it has not been done for a while, so that long work under
    /// the lock is not mistaken for a crash.
    pub fn touch(&mut self) {
        if self.touched.elapsed() < TOUCH {
            return;
        }
        self.touched = Instant::now();
        if let Ok(f) = OpenOptions::new().write(true).custom_flags(libc::O_NOFOLLOW).open(&self.path) {
            let _ = f.set_modified(SystemTime::now());
        }
    }
}

impl Drop for DotLock {
    fn drop(&mut self) {
        // Only our own lock file: if it was broken as stale and retaken, it is someone else's now.
        match fs::symlink_metadata(&self.path) {
            Ok(m) if m.ino() == self.ino => {
                if let Err(e) = fs::remove_file(&self.path) {
                    log::warn!("imap: cannot remove lock path={} error={e}", self.path.display());
                }
            }
            Ok(_) => log::warn!("imap: lock was taken over path={}", self.path.display()),
            Err(_) => {}
        }
    }
}

/// Removes `path` when it is stale; true when the caller should try again at once.
fn break_stale(path: &Path) -> bool {
    let Ok(meta) = fs::symlink_metadata(path) else { return true };
    let age = meta.modified().ok().and_then(|t| SystemTime::now().duration_since(t).ok()).unwrap_or_default();
    if age < STALE && !holder_is_dead(path) {
        return false;
    }
    // Move it aside first and check that it is the file we judged: a lock taken in between by
    // someone else is put back (link fails if yet another one exists, which then stands).
    let aside = path.with_file_name(format!(
        "{}.stale.{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("lock"),
        crate::store::maildir::unique_name(SystemTime::now(), "x", 0)
    ));
    if fs::rename(path, &aside).is_err() {
        return true;
    }
    match fs::symlink_metadata(&aside) {
        Ok(m) if m.ino() == meta.ino() => {
            log::warn!("imap: broke stale lock path={} age={}s", path.display(), age.as_secs());
        }
        _ => {
            let _ = fs::hard_link(&aside, path);
        }
    }
    let _ = fs::remove_file(&aside);
    true
}

/// The lock says "<pid>:<host>" with our host name and that process no longer exists.
fn holder_is_dead(path: &Path) -> bool {
    let mut s = String::new();
    let Ok(f) = fs::File::open(path) else { return false };
    if f.take(256).read_to_string(&mut s).is_err() {
        return false;
    }
    let Some((pid, host)) = s.trim().split_once(':') else { return false };
    let Ok(pid) = pid.parse::<i32>() else { return false };
    if pid <= 0 || host != crate::config::system_hostname() {
        return false;
    }
    // SAFETY: kill with signal 0 sends nothing; it only checks that the process exists.
    let r = unsafe { libc::kill(pid, 0) };
    r == -1 && io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excludes_then_releases() {
        let d = tempfile::tempdir().unwrap();
        let target = d.path().join("dovecot-uidlist");
        let l = DotLock::acquire(&target).unwrap();
        assert!(d.path().join("dovecot-uidlist.lock").exists());
        let e = DotLock::acquire_within(&target, Duration::from_millis(50)).unwrap_err();
        assert!(matches!(e, FolderError::Temp(_)), "{e:?}");
        drop(l);
        assert!(!d.path().join("dovecot-uidlist.lock").exists());
        let _l = DotLock::acquire_within(&target, Duration::from_millis(50)).unwrap();
    }

    #[test]
    fn breaks_old_and_dead_locks() {
        let d = tempfile::tempdir().unwrap();
        let target = d.path().join("dovecot-uidlist");
        let lock = d.path().join("dovecot-uidlist.lock");
        // Old: mtime three minutes ago, holder unknown.
        fs::write(&lock, b"").unwrap();
        let f = fs::File::options().write(true).open(&lock).unwrap();
        f.set_modified(SystemTime::now() - Duration::from_secs(180)).unwrap();
        drop(DotLock::acquire_within(&target, Duration::from_millis(50)).unwrap());
        // Fresh but its process is gone (pid far above pid_max on this host).
        fs::write(&lock, format!("999999999:{}", crate::config::system_hostname())).unwrap();
        drop(DotLock::acquire_within(&target, Duration::from_millis(50)).unwrap());
        // Fresh and held by a live process (us): not broken.
        fs::write(&lock, format!("{}:{}", std::process::id(), crate::config::system_hostname())).unwrap();
        assert!(DotLock::acquire_within(&target, Duration::from_millis(50)).is_err());
        assert!(lock.exists());
        // Leftovers from moving aside are cleaned.
        let names: Vec<_> = fs::read_dir(d.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }
}
