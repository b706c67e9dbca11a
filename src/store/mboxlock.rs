//! The mail lock mbox writers and readers share, in the order mail(1) and
//! mutt take it: a dotlock (`<mbox>.lock`, O_EXCL, stale after 5 minutes),
//! then an fcntl write lock (open-file-description lock on Linux). Used by
//! mbox delivery and by the POP3 maildrop, which hold it for a whole session.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// Why a lock was not taken.
#[derive(Debug)]
pub(crate) enum LockError {
    /// Someone else holds it past the deadline.
    Busy(String),
    /// The lock could not be taken for another reason.
    Io { what: &'static str, path: PathBuf, err: io::Error },
}

/// A dotlock older than this is stale and removed (as liblockfile's dotlockfile and mutt do).
const STALE_DOTLOCK: Duration = Duration::from_secs(5 * 60);
const FIRST_PAUSE: Duration = Duration::from_millis(10);
const MAX_PAUSE: Duration = Duration::from_millis(200);

/// `<mbox>.lock`, created with O_EXCL; removed on drop.
pub(crate) struct Dotlock {
    path: PathBuf,
}

impl Drop for Dotlock {
    fn drop(&mut self) {
        if let Err(e) = fs::remove_file(&self.path) {
            log::warn!("store: cannot remove dotlock path={} error={e}", self.path.display());
        }
    }
}

/// Sleeps a growing short while before the next lock attempt; false once `deadline` has passed.
fn pause(deadline: Instant, step: &mut Duration) -> bool {
    let now = Instant::now();
    if now >= deadline {
        return false;
    }
    std::thread::sleep((*step).min(deadline - now));
    *step = (*step * 2).min(MAX_PAUSE);
    true
}

pub(crate) fn take_dotlock(mbox: &Path, deadline: Instant) -> Result<Option<Dotlock>, LockError> {
    let mut name = OsString::from(mbox.as_os_str());
    name.push(".lock");
    let path = PathBuf::from(name);
    let mut step = FIRST_PAUSE;
    loop {
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC)
            .open(&path)
        {
            Ok(mut f) => {
                // liblockfile writes the pid; purely informative.
                let _ = writeln!(f, "{}", std::process::id());
                return Ok(Some(Dotlock { path }));
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                if remove_stale(&path) {
                    continue;
                }
            }
            // A spool directory we may not write to (Debian's /var/mail is root:mail 2775): like
            // Postfix's MBOX_DOT_LOCK_MAY_FAIL, go on with the kernel lock alone.
            Err(e) if matches!(e.raw_os_error(), Some(libc::EACCES | libc::EPERM)) => {
                log::warn!("store: no dotlock, fcntl lock only path={} error={e}", path.display());
                return Ok(None);
            }
            Err(err) => return Err(LockError::Io { what: "cannot create dotlock", path, err }),
        }
        if !pause(deadline, &mut step) {
            return Err(LockError::Busy(format!("mailbox is locked: {} exists", path.display())));
        }
    }
}

/// Removes a dotlock older than STALE_DOTLOCK; true if it did. Re-checks the inode just before
/// unlinking so a lock that another process replaced meanwhile is not removed (narrows the race
/// every dotlock implementation has).
fn remove_stale(path: &Path) -> bool {
    let Ok(m) = fs::symlink_metadata(path) else { return false };
    let old = m.modified().ok().and_then(|t| SystemTime::now().duration_since(t).ok());
    if old.is_none_or(|age| age <= STALE_DOTLOCK) {
        return false;
    }
    match fs::symlink_metadata(path) {
        Ok(again) if again.ino() == m.ino() && again.dev() == m.dev() => {}
        _ => return false,
    }
    log::warn!("store: removing stale dotlock path={}", path.display());
    fs::remove_file(path).is_ok()
}

/// How the fcntl lock was taken. Linux: an open-file-description lock, which conflicts with the
/// classic POSIX locks of mutt/procmail/Python but, unlike them, also excludes other threads of this
/// process and is not dropped when some other fd of the file is closed here.
#[derive(Clone, Copy)]
pub(crate) struct LockCmd(libc::c_int);

pub(crate) fn fcntl_lock(file: &File, cmd: LockCmd, kind: libc::c_int) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: an all-zero flock is a valid value (whole file from offset 0, l_pid 0 as OFD requires).
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = kind as _;
    fl.l_whence = libc::SEEK_SET as _;
    loop {
        // SAFETY: the fd is open for the lifetime of `file`; `fl` is a valid flock.
        if unsafe { libc::fcntl(file.as_raw_fd(), cmd.0, &fl) } == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

pub(crate) fn take_fcntl_lock(file: &File, path: &Path, deadline: Instant) -> Result<LockCmd, LockError> {
    #[cfg(target_os = "linux")]
    let mut cmd = LockCmd(libc::F_OFD_SETLK);
    #[cfg(not(target_os = "linux"))]
    let mut cmd = LockCmd(libc::F_SETLK);
    let mut step = FIRST_PAUSE;
    loop {
        match fcntl_lock(file, cmd, libc::F_WRLCK) {
            Ok(()) => return Ok(cmd),
            Err(e) if matches!(e.raw_os_error(), Some(libc::EAGAIN | libc::EACCES)) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) && cmd.0 != libc::F_SETLK => {
                cmd = LockCmd(libc::F_SETLK); // kernel before 3.15
                continue;
            }
            Err(err) => return Err(LockError::Io { what: "cannot lock", path: path.to_path_buf(), err }),
        }
        if !pause(deadline, &mut step) {
            return Err(LockError::Busy(format!("mailbox is locked (fcntl): {}", path.display())));
        }
    }
}
