//! The mail lock around one IMAP operation on the mbox: dotlock then fcntl (store/mboxlock.rs, the
//! order mbox delivery, mail(1) and mutt use), taken for the operation only and released on drop.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::store::folder::FolderError;
use crate::store::mboxlock::{Dotlock, LockCmd, LockError, fcntl_lock, take_dotlock, take_fcntl_lock};

/// How the mbox is opened.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// Read and maybe rewrite; a missing file is `None`.
    Write,
    /// Only read (EXAMINE, STATUS): a file the user may only read is read under the dotlock alone.
    Read,
    /// APPEND: create the file if missing (0600, as delivery does).
    Create,
}

/// The locked mbox. Field order is release order: the fcntl lock (in Drop), the file, the dotlock.
pub(super) struct Locked {
    pub file: File,
    cmd: Option<LockCmd>,
    /// The file did not exist and was made by this lock.
    pub created: bool,
    deadline: Instant,
    _dotlock: Option<Dotlock>,
}

impl Drop for Locked {
    fn drop(&mut self) {
        if let Some(cmd) = self.cmd
            && let Err(e) = fcntl_lock(&self.file, cmd, libc::F_UNLCK)
        {
            log::warn!("imap: cannot unlock mbox error={e}");
        }
    }
}

impl Locked {
    /// After a rewrite by rename the path names `file`: move the fcntl lock onto it (the dotlock
    /// stays held throughout, so no writer that honours it got in between).
    pub fn relock(&mut self, file: File, path: &Path) -> Result<(), FolderError> {
        if let Some(cmd) = self.cmd.take() {
            let _ = fcntl_lock(&self.file, cmd, libc::F_UNLCK);
            self.cmd = Some(take_fcntl_lock(&file, path, self.deadline).map_err(lock_error)?);
        }
        self.file = file;
        Ok(())
    }
}

pub(super) fn lock_error(e: LockError) -> FolderError {
    match e {
        LockError::Busy(m) => FolderError::Temp(m),
        LockError::Io { what, path, err } => io_error(what, &path, &err),
    }
}

pub(super) fn io_error(what: &str, path: &Path, e: &io::Error) -> FolderError {
    FolderError::Temp(format!("{what} {}: {e}", path.display()))
}

/// Takes the lock on the mbox at `path`, waiting up to `timeout` (then `Temp`). `None`: there is
/// no mbox (only in modes other than Create).
pub(super) fn lock(path: &Path, timeout: Duration, mode: Mode) -> Result<Option<Locked>, FolderError> {
    let deadline = Instant::now() + timeout;
    loop {
        if mode != Mode::Create {
            match fs::symlink_metadata(path) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(io_error("cannot stat", path, &e)),
            }
        }
        // Lock order: dotlock, then fcntl (as delivery, mutt and Python's mailbox do).
        let dotlock = take_dotlock(path, deadline).map_err(lock_error)?;
        let flags = libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK;
        let mut opts = OpenOptions::new();
        opts.read(true).write(true).mode(0o600).custom_flags(flags);
        let (file, created, writable) = match opts.clone().create_new(mode == Mode::Create).open(path) {
            Ok(f) => (f, mode == Mode::Create, true),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                (opts.open(path).map_err(|e| io_error("cannot open", path, &e))?, false, true)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound && mode != Mode::Create => return Ok(None),
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied && mode == Mode::Read => {
                let f = OpenOptions::new()
                    .read(true)
                    .custom_flags(flags)
                    .open(path)
                    .map_err(|e| io_error("cannot open", path, &e))?;
                (f, false, false)
            }
            Err(e) => return Err(io_error("cannot open", path, &e)),
        };
        let meta = file.metadata().map_err(|e| io_error("cannot stat", path, &e))?;
        if !meta.is_file() {
            return Err(FolderError::Temp(format!("{} is not a regular file", path.display())));
        }
        // As delivery: a hard link may point a rewrite or an append at someone else's file.
        if meta.nlink() > 1 {
            return Err(FolderError::Temp(format!("{} has {} hard links", path.display(), meta.nlink())));
        }
        let cmd =
            if writable { Some(take_fcntl_lock(&file, path, deadline).map_err(lock_error)?) } else { None };
        let locked = Locked { file, cmd, created, deadline, _dotlock: dotlock };
        // Someone rewrote the mbox by rename while we waited: our fd is a dead file; again.
        let same = fs::symlink_metadata(path)
            .ok()
            .zip(locked.file.metadata().ok())
            .is_some_and(|(a, b)| a.dev() == b.dev() && a.ino() == b.ino());
        if same {
            return Ok(Some(locked));
        }
        if Instant::now() >= deadline {
            return Err(FolderError::Temp(format!("{} keeps being replaced", path.display())));
        }
    }
}
