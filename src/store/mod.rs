//! Durable local delivery into Maildir and mbox, two-phase (prepare, then commit or abort) so that a
//! message for several recipients is delivered all-or-nothing; files and commands named by aliases(5)
//! (file.rs, pipe.rs). Formats: cr.yp.to/proto/maildir.html, mboxrd (RFC 4155 describes the mbox
//! family); the 250 is said only after commit (RFC 5321 6.1).

pub mod file;
pub mod folder;
pub mod imapdir;
pub mod maildir;
pub mod maildrop;
pub mod mbox;
pub mod mboxfolder;
mod mboxlock;
pub mod owner;
pub mod pipe;

use std::fmt;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::config::MailboxKind;
pub use owner::Owner;

/// The message to store, already complete on disk.
pub struct Message<'a> {
    /// The complete message file as it must be stored: Unix LF line ends, headers already include
    /// Return-Path and Received; fsynced by the caller; lives under the server's data_dir. Maildir
    /// delivery may hard-link it, so the caller must never modify it in place afterwards.
    pub path: &'a Path,
    /// The same file, opened for reading by the caller: deliveries made as the mailbox owner
    /// read it through this handle, since the owner may not reach the spool by its path.
    pub file: &'a std::fs::File,
    /// Envelope sender, "" for the null sender <>.
    pub sender: &'a str,
    pub arrival: SystemTime,
    /// Bytes of the file (the file's real size wins if they differ; a warning is logged).
    pub size: u64,
}

#[derive(Clone)]
pub struct StoreOptions {
    /// How long to wait for mbox locks (dotlock and fcntl together).
    pub lock_timeout: Duration,
    /// The privileged helper that writes other users' mailboxes for a server that dropped root.
    pub privileged: Option<std::sync::Arc<dyn Privileged>>,
}

/// Delivery by a process that may act as the mailbox owners (server/helper.rs): the server, having
/// dropped root, names accounts and passes the message file; the helper finds their mailboxes.
pub trait Privileged: Send + Sync {
    /// Delivers `file` to the mailboxes of `accounts`, all or nothing; Err names the failing index.
    fn deliver(
        &self,
        sender: &str,
        arrival: SystemTime,
        accounts: &[String],
        file: &std::fs::File,
    ) -> Result<Vec<PathBuf>, (usize, StoreError)>;
}

/// A delivery failure; `permanent` means retrying cannot help (5xx), otherwise 4xx.
#[derive(Debug)]
pub struct StoreError {
    pub message: String,
    pub permanent: bool,
}

impl StoreError {
    pub fn temporary(message: impl Into<String>) -> StoreError {
        StoreError { message: message.into(), permanent: false }
    }

    pub fn permanent(message: impl Into<String>) -> StoreError {
        StoreError { message: message.into(), permanent: true }
    }

    /// Classifies an I/O error on a mailbox path: a path that cannot be a mailbox (not a directory,
    /// symlink loop, no permission, too long) is permanent; everything else (ENOSPC, EDQUOT, EIO,
    /// EROFS...) may heal, so it is temporary and the mail stays queued with the client.
    pub fn from_io(what: &str, path: &Path, e: &io::Error) -> StoreError {
        let permanent = matches!(
            e.raw_os_error(),
            Some(libc::ENOTDIR | libc::ELOOP | libc::EACCES | libc::EISDIR | libc::ENAMETOOLONG)
        );
        StoreError { message: format!("{what} {}: {e}", path.display()), permanent }
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.permanent { "permanent" } else { "temporary" };
        write!(f, "{} ({kind})", self.message)
    }
}

impl std::error::Error for StoreError {}

/// A private read handle on the message, positioned at its start.
pub(crate) fn open_source(msg: &Message) -> Result<std::fs::File, StoreError> {
    use std::io::Seek;
    let mut f = msg
        .file
        .try_clone()
        .map_err(|e| StoreError::temporary(format!("cannot open message {}: {e}", msg.path.display())))?;
    f.seek(io::SeekFrom::Start(0))
        .map_err(|e| StoreError::temporary(format!("cannot read message {}: {e}", msg.path.display())))?;
    Ok(f)
}

/// A delivery written but not yet visible (Maildir: in tmp/) or not yet released (mbox: appended
/// and still locked). Dropping it without `commit` aborts it.
pub struct Prepared {
    inner: Inner,
    owner: Option<Owner>,
    group: Option<u32>,
}

/// One mailbox to deliver to, and whose it is.
#[derive(Clone, Debug)]
pub struct Dest {
    pub kind: MailboxKind,
    pub path: PathBuf,
    /// Written as this user when the server runs as root (see owner.rs).
    pub owner: Option<Owner>,
    /// The account whose own mailbox this is (as the user database names it), when it is one: a
    /// server that dropped root has the privileged helper deliver it.
    pub account: Option<String>,
}

impl From<(MailboxKind, PathBuf)> for Dest {
    fn from((kind, path): (MailboxKind, PathBuf)) -> Dest {
        Dest { kind, path, owner: None, account: None }
    }
}

/// Whether writing `d` needs another user's rights than this process has.
fn needs_helper(d: &Dest) -> bool {
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    me != 0 && d.account.is_some() && d.owner.is_some_and(|o| o.uid != me)
}

enum Inner {
    Maildir(maildir::Prepared),
    Mbox(mbox::Prepared),
}

/// First phase: writes the message into the mailbox at `path` without making it visible/final.
pub fn prepare(dest: &Dest, msg: &Message, opts: &StoreOptions) -> Result<Prepared, StoreError> {
    let group = match dest.kind {
        MailboxKind::Mbox if dest.owner.is_some() => owner::spool_group(&dest.path),
        _ => None,
    };
    let _as = owner::become_owner(dest.owner, group).map_err(StoreError::temporary)?;
    let inner = match dest.kind {
        MailboxKind::Maildir => Inner::Maildir(maildir::prepare(&dest.path, msg)?),
        MailboxKind::Mbox => Inner::Mbox(mbox::prepare(&dest.path, msg, opts)?),
    };
    Ok(Prepared { inner, owner: dest.owner, group })
}

impl Prepared {
    /// Second phase: makes the delivery final; returns where the mail now is.
    pub fn commit(self) -> Result<PathBuf, StoreError> {
        let _as = owner::become_owner(self.owner, self.group).map_err(StoreError::temporary)?;
        match self.inner {
            Inner::Maildir(p) => p.commit(),
            Inner::Mbox(p) => p.commit(),
        }
    }

    /// Undoes the delivery: nothing of it stays in the mailbox.
    pub fn abort(self) {
        let _as = owner::become_owner(self.owner, self.group);
        match self.inner {
            Inner::Maildir(p) => p.abort(),
            Inner::Mbox(p) => p.abort(),
        }
    }

    /// True when commit cannot fail any more (mbox: data already fsynced, commit only unlocks).
    fn commit_is_infallible(&self) -> bool {
        matches!(self.inner, Inner::Mbox(_))
    }
}

/// The mailboxes of other users go through the privileged helper first (all or nothing among
/// them), then the rest as usual. A failure after the helper's part leaves those copies delivered:
/// the message is retried whole, so they may get it twice, but nobody loses it.
fn deliver_with_helper(
    helper: &dyn Privileged,
    via: &[usize],
    dests: &[Dest],
    msg: &Message,
    opts: &StoreOptions,
    before_commit: impl FnOnce() -> Result<(), StoreError>,
) -> Result<Vec<PathBuf>, (usize, StoreError)> {
    let accounts: Vec<String> = via.iter().filter_map(|&i| dests[i].account.clone()).collect();
    let done = helper
        .deliver(msg.sender, msg.arrival, &accounts, msg.file)
        .map_err(|(k, e)| (via.get(k).copied().unwrap_or(0), e))?;
    let rest: Vec<usize> = (0..dests.len()).filter(|i| !via.contains(i)).collect();
    let local: Vec<Dest> = rest.iter().map(|&i| dests[i].clone()).collect();
    let no_helper = StoreOptions { privileged: None, ..opts.clone() };
    let stored = deliver_all_then(&local, msg, &no_helper, before_commit)
        .map_err(|(k, e)| (rest.get(k).copied().unwrap_or(dests.len()), e))?;
    let mut out = vec![PathBuf::new(); dests.len()];
    for (k, &i) in via.iter().enumerate() {
        out[i] = done.get(k).cloned().unwrap_or_default();
    }
    for (k, &i) in rest.iter().enumerate() {
        out[i] = stored.get(k).cloned().unwrap_or_default();
    }
    Ok(out)
}

/// Identity of a destination for deduplication: the (device, inode) of an existing mailbox, so two
/// spellings of one mailbox (symlinks, "a/./b") are one delivery and never lock against each other;
/// the lexical path for a mailbox that does not exist yet.
#[derive(PartialEq, Eq)]
enum DestKey {
    File(u64, u64),
    Path(PathBuf),
}

fn dest_key(path: &Path) -> DestKey {
    match std::fs::metadata(path) {
        Ok(m) => DestKey::File(m.dev(), m.ino()),
        Err(_) => DestKey::Path(path.to_path_buf()),
    }
}

/// Prepares all destinations (deduplicated; mbox locks taken in sorted path order so two sessions
/// cannot deadlock), aborts all if one fails (Err carries the index into `dests` of the failing one),
/// else commits all and returns the stored locations in `dests` order.
///
/// Commit order: Maildir renames first (they can still fail), mbox unlocks last (they cannot). If a
/// Maildir commit fails after another destination was committed, the rest is aborted and the error
/// returned: the client retries, so a recipient may get a duplicate but never loses the message.
pub fn deliver_all(
    dests: &[Dest],
    msg: &Message,
    opts: &StoreOptions,
) -> Result<Vec<PathBuf>, (usize, StoreError)> {
    deliver_all_then(dests, msg, opts, || Ok(()))
}

/// [`deliver_all`] with a step between the two phases: `before_commit` runs when every destination
/// is prepared (written, fsynced, locked) and before any is committed. If it fails, everything is
/// aborted and the error comes back with the index `dests.len()`. The caller uses it to make the
/// rest of the message's fate durable (queue the remote part) or to run what cannot be undone
/// (commands), so that the mailboxes get the message exactly when that step succeeded.
pub fn deliver_all_then(
    dests: &[Dest],
    msg: &Message,
    opts: &StoreOptions,
    before_commit: impl FnOnce() -> Result<(), StoreError>,
) -> Result<Vec<PathBuf>, (usize, StoreError)> {
    if let Some(helper) = &opts.privileged {
        let (via, _): (Vec<usize>, Vec<usize>) = (0..dests.len()).partition(|&i| needs_helper(&dests[i]));
        if !via.is_empty() {
            return deliver_with_helper(helper.as_ref(), &via, dests, msg, opts, before_commit);
        }
    }
    // unique[i] = index into dests of the first occurrence; slot[j] = index into unique for dests[j].
    let mut unique: Vec<usize> = Vec::new();
    let mut keys: Vec<DestKey> = Vec::new();
    let mut slot: Vec<usize> = Vec::with_capacity(dests.len());
    for (j, Dest { kind, path, .. }) in dests.iter().enumerate() {
        let key = dest_key(path);
        match keys.iter().position(|k| *k == key) {
            Some(u) => {
                if dests[unique[u]].kind != *kind {
                    let e = StoreError::permanent(format!(
                        "{} is configured both as a Maildir and as an mbox",
                        path.display()
                    ));
                    return Err((j, e));
                }
                slot.push(u);
            }
            None => {
                slot.push(unique.len());
                unique.push(j);
                keys.push(key);
            }
        }
    }

    // Lock order: sorted by path, the same order in every session.
    let mut order: Vec<usize> = (0..unique.len()).collect();
    order.sort_by(|&a, &b| dests[unique[a]].path.cmp(&dests[unique[b]].path));

    let mut prepared: Vec<Option<Prepared>> = (0..unique.len()).map(|_| None).collect();
    for &u in &order {
        match prepare(&dests[unique[u]], msg, opts) {
            Ok(p) => prepared[u] = Some(p),
            Err(e) => {
                abort_all(&mut prepared);
                return Err((unique[u], e));
            }
        }
    }

    if let Err(e) = before_commit() {
        abort_all(&mut prepared);
        return Err((dests.len(), e));
    }

    let mut stored: Vec<PathBuf> = vec![PathBuf::new(); unique.len()];
    let mut fallible: Vec<usize> = Vec::new();
    let mut infallible: Vec<usize> = Vec::new();
    for (u, p) in prepared.iter().enumerate() {
        match p {
            Some(p) if p.commit_is_infallible() => infallible.push(u),
            _ => fallible.push(u),
        }
    }
    for u in fallible.into_iter().chain(infallible) {
        let Some(p) = prepared[u].take() else { continue };
        match p.commit() {
            Ok(at) => stored[u] = at,
            Err(e) => {
                abort_all(&mut prepared);
                return Err((unique[u], e));
            }
        }
    }
    Ok(slot.into_iter().map(|u| stored[u].clone()).collect())
}

fn abort_all(prepared: &mut [Option<Prepared>]) {
    for p in prepared.iter_mut() {
        if let Some(p) = p.take() {
            p.abort();
        }
    }
}

/// Creates `dir` and its missing parents with mode 0700, fsyncing each parent after a mkdir so the
/// new entry survives a crash. An existing non-directory is a permanent error.
pub(crate) fn ensure_dir(dir: &Path) -> Result<(), StoreError> {
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => return Ok(()),
        Ok(_) => {
            return Err(StoreError::permanent(format!("{} exists and is not a directory", dir.display())));
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(StoreError::from_io("cannot stat", dir, &e)),
    }
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    ensure_dir(parent)?;
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => fsync_dir(parent),
        // Another session made it meanwhile.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) => Err(StoreError::from_io("cannot create directory", dir, &e)),
    }
}

/// fsync a directory so entries created, renamed or removed in it are on disk.
pub(crate) fn fsync_dir(dir: &Path) -> Result<(), StoreError> {
    crate::durable::fsync_dir(dir).map_err(|e| StoreError::from_io("cannot fsync directory", dir, &e))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;
    use std::time::UNIX_EPOCH;

    fn to_dests(v: &[(MailboxKind, PathBuf)]) -> Vec<Dest> {
        v.iter().cloned().map(Dest::from).collect()
    }

    pub(crate) const BODY: &[u8] =
        b"Return-Path: <a@b.example>\nSubject: hi\n\nFrom here on\n>From there\nbye\n";

    /// Writes a spool file the way the SMTP side does (mode 0600) in `dir`.
    pub(crate) fn spool(dir: &Path, body: &[u8]) -> PathBuf {
        let p = dir.join("spool-msg");
        fs::write(&p, body).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
        p
    }

    pub(crate) fn msg<'a>(path: &'a Path, size: u64) -> Message<'a> {
        // Sat Nov 28 03:48:08 2026 UTC
        // Leaked on purpose: a test-only handle that must outlive the borrowed Message.
        let file: &'static fs::File = Box::leak(Box::new(fs::File::open(path).unwrap()));
        Message {
            path,
            file,
            sender: "a@b.example",
            arrival: UNIX_EPOCH + Duration::from_secs(1_795_837_688),
            size,
        }
    }

    pub(crate) fn opts() -> StoreOptions {
        StoreOptions { lock_timeout: Duration::from_millis(300), privileged: None }
    }

    fn files_in(dir: &Path) -> Vec<PathBuf> {
        fs::read_dir(dir).map(|r| r.map(|e| e.unwrap().path()).collect()).unwrap_or_default()
    }

    #[test]
    fn deliver_all_to_maildir_and_mbox() {
        let d = tempfile::tempdir().unwrap();
        let src = spool(d.path(), BODY);
        let m = msg(&src, BODY.len() as u64);
        let md = d.path().join("u1/Maildir");
        let mb = d.path().join("mail/u2");
        let dests = vec![(MailboxKind::Maildir, md.clone()), (MailboxKind::Mbox, mb.clone())];
        let at = deliver_all(&to_dests(&dests), &m, &opts()).unwrap();
        assert_eq!(at.len(), 2);
        assert_eq!(at[0].parent().unwrap(), md.join("new"));
        assert_eq!(fs::read(&at[0]).unwrap(), BODY);
        assert_eq!(at[1], mb);
        let mbox = fs::read(&mb).unwrap();
        assert!(mbox.starts_with(b"From a@b.example Sat Nov 28 03:48:08 2026\nReturn-Path:"));
        assert!(!mb.with_extension("lock").exists());
    }

    #[test]
    fn deliver_all_second_fails_first_untouched() {
        let d = tempfile::tempdir().unwrap();
        let src = spool(d.path(), BODY);
        let m = msg(&src, BODY.len() as u64);
        let md = d.path().join("a-Maildir");
        let mb = d.path().join("b-mbox");
        fs::write(&mb, b"From x Thu Jan  1 00:00:00 1970\nold\n\n").unwrap();
        let before = fs::read(&mb).unwrap();
        let plain = d.path().join("plainfile");
        fs::write(&plain, b"x").unwrap();
        for bad_kind in [MailboxKind::Maildir, MailboxKind::Mbox] {
            let dests = vec![
                (MailboxKind::Maildir, md.clone()),
                (bad_kind, plain.join("under/a/file")),
                (MailboxKind::Mbox, mb.clone()),
            ];
            let (idx, e) = deliver_all(&to_dests(&dests), &m, &opts()).unwrap_err();
            assert_eq!(idx, 1, "{e}");
            assert!(e.permanent, "{e}");
            assert!(files_in(&md.join("tmp")).is_empty());
            assert!(files_in(&md.join("new")).is_empty());
            assert_eq!(fs::read(&mb).unwrap(), before);
            assert!(!d.path().join("b-mbox.lock").exists());
        }
    }

    #[test]
    fn deliver_all_deduplicates_same_mailbox() {
        let d = tempfile::tempdir().unwrap();
        let src = spool(d.path(), BODY);
        let m = msg(&src, BODY.len() as u64);
        let md = d.path().join("Maildir");
        let mb = d.path().join("mbox");
        fs::create_dir(d.path().join("sub")).unwrap();
        let dests = vec![
            (MailboxKind::Mbox, mb.clone()),
            (MailboxKind::Maildir, md.clone()),
            (MailboxKind::Mbox, mb.clone()),
            (MailboxKind::Maildir, md.clone()),
        ];
        let at = deliver_all(&to_dests(&dests), &m, &opts()).unwrap();
        assert_eq!(at[0], at[2]);
        assert_eq!(at[1], at[3]);
        assert_eq!(files_in(&md.join("new")).len(), 1);
        let text = fs::read(&mb).unwrap();
        assert_eq!(text.windows(16).filter(|w| *w == b"From a@b.example").count(), 1);

        // A second spelling of an existing mbox is the same mailbox, delivered once and not
        // deadlocked against its own dotlock.
        let other = d.path().join("sub/../mbox");
        let dests = vec![(MailboxKind::Mbox, mb.clone()), (MailboxKind::Mbox, other)];
        let at = deliver_all(&to_dests(&dests), &m, &opts()).unwrap();
        assert_eq!(at[0], at[1]);
        let text = fs::read(&mb).unwrap();
        assert_eq!(text.windows(16).filter(|w| *w == b"From a@b.example").count(), 2);
    }

    #[test]
    fn deliver_all_conflicting_kinds_on_one_path() {
        let d = tempfile::tempdir().unwrap();
        let src = spool(d.path(), BODY);
        let m = msg(&src, BODY.len() as u64);
        let p = d.path().join("box");
        let dests = vec![(MailboxKind::Mbox, p.clone()), (MailboxKind::Maildir, p.clone())];
        let (idx, e) = deliver_all(&to_dests(&dests), &m, &opts()).unwrap_err();
        assert_eq!(idx, 1);
        assert!(e.permanent);
        assert!(!p.exists());
    }

    #[test]
    fn lock_timeout_in_deliver_all_is_temporary_and_aborts_others() {
        let d = tempfile::tempdir().unwrap();
        let src = spool(d.path(), BODY);
        let m = msg(&src, BODY.len() as u64);
        let md = d.path().join("Maildir");
        let mb = d.path().join("mbox");
        fs::write(d.path().join("mbox.lock"), b"").unwrap();
        let dests = vec![(MailboxKind::Maildir, md.clone()), (MailboxKind::Mbox, mb.clone())];
        let (idx, e) = deliver_all(&to_dests(&dests), &m, &opts()).unwrap_err();
        assert_eq!(idx, 1);
        assert!(!e.permanent, "{e}");
        assert!(files_in(&md.join("tmp")).is_empty());
        assert!(files_in(&md.join("new")).is_empty());
        assert_eq!(fs::read(&mb).unwrap_or_default(), b"");
    }

    #[test]
    fn a_failing_step_between_the_phases_aborts_everything() {
        let d = tempfile::tempdir().unwrap();
        let src = spool(d.path(), BODY);
        let m = msg(&src, BODY.len() as u64);
        let md = d.path().join("Maildir");
        let mb = d.path().join("mbox");
        let dests = to_dests(&[(MailboxKind::Maildir, md.clone()), (MailboxKind::Mbox, mb.clone())]);
        let (idx, e) =
            deliver_all_then(&dests, &m, &opts(), || Err(StoreError::temporary("queue full"))).unwrap_err();
        assert_eq!((idx, e.permanent), (2, false));
        assert!(files_in(&md.join("new")).is_empty() && files_in(&md.join("tmp")).is_empty());
        assert_eq!(fs::read(&mb).unwrap_or_default(), b"");
        // The step sees the prepared state: the mbox is locked, the Maildir file still in tmp/.
        let at = deliver_all_then(&dests, &m, &opts(), || {
            assert!(d.path().join("mbox.lock").exists());
            assert_eq!(files_in(&md.join("tmp")).len(), 1);
            Ok(())
        })
        .unwrap();
        assert_eq!(at.len(), 2);
        assert_eq!(files_in(&md.join("new")).len(), 1);
    }

    #[test]
    fn error_classification() {
        let cases = [
            (libc::ENOTDIR, true),
            (libc::ELOOP, true),
            (libc::EACCES, true),
            (libc::ENOSPC, false),
            (libc::EDQUOT, false),
            (libc::EIO, false),
            (libc::EROFS, false),
        ];
        for (errno, permanent) in cases {
            let e = StoreError::from_io("x", Path::new("/p"), &io::Error::from_raw_os_error(errno));
            assert_eq!(e.permanent, permanent, "errno {errno}");
        }
    }

    #[test]
    fn ensure_dir_makes_parents_0700() {
        let d = tempfile::tempdir().unwrap();
        let deep = d.path().join("a/b/c");
        ensure_dir(&deep).unwrap();
        for p in [d.path().join("a"), d.path().join("a/b"), deep.clone()] {
            assert_eq!(fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o700, "{}", p.display());
        }
        ensure_dir(&deep).unwrap();
        fs::write(d.path().join("f"), b"").unwrap();
        assert!(ensure_dir(&d.path().join("f")).unwrap_err().permanent);
        assert!(ensure_dir(&d.path().join("f/x")).unwrap_err().permanent);
    }
}
