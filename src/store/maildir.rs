//! Maildir delivery (https://cr.yp.to/proto/maildir.html, with Dovecot's ",S=<size>" suffix): the
//! message is put into tmp/<unique> (a hard link to the spool file when possible, else a fsynced
//! copy), then commit moves it into new/ without ever replacing a file, and fsyncs new/.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Seek};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use super::{Message, StoreError, ensure_dir, fsync_dir};

/// Attempts at finding a free unique name before giving up (temporarily).
const NAME_ATTEMPTS: u32 = 20;

/// Deliveries made by this process: the "Q<n>" of unique names, so two sessions (threads) of one
/// process in the same microsecond still differ. The only process-wide state here, and it has to be:
/// uniqueness is a property of the process.
static DELIVERIES: AtomicU64 = AtomicU64::new(0);

/// A message sitting in tmp/, not yet visible to readers. Dropping it removes the tmp file.
pub struct Prepared {
    maildir: PathBuf,
    tmp: PathBuf,
    size: u64,
    /// The size with CRLF line ends, for Dovecot's ",W=" (IMAP and POP3 then need not count it).
    crlf: Option<u64>,
    /// The tmp file exists and is ours to remove.
    pending: bool,
}

/// Maildir spec: escape '/' and ':' in the host part as \057 and \072 (and ',' as \054, since
/// Dovecot reads ",S=" after it).
pub fn escape_host(host: &str) -> String {
    let mut out = String::with_capacity(host.len());
    for c in host.chars() {
        match c {
            '/' => out.push_str("\\057"),
            ':' => out.push_str("\\072"),
            ',' => out.push_str("\\054"),
            c => out.push(c),
        }
    }
    out
}

/// "<secs>.M<usecs>P<pid>Q<counter>.<host>,S=<size>": time, pid and a per-process counter make it
/// unique on this host; the host part makes it unique across hosts sharing the Maildir over NFS.
pub fn unique_name(now: SystemTime, host: &str, size: u64) -> String {
    let t = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let q = DELIVERIES.fetch_add(1, Ordering::Relaxed) + 1;
    format!(
        "{}.M{}P{}Q{}.{},S={}",
        t.as_secs(),
        t.subsec_micros(),
        std::process::id(),
        q,
        escape_host(host),
        size
    )
}

/// Dovecot's ",W=<size with CRLF line ends>" after the name's ",S=", when known (Dovecot and
/// Courier read it; buzon's IMAP and POP3 use it instead of reading the file).
fn with_crlf_size(name: String, crlf: Option<u64>) -> String {
    match crlf {
        Some(w) => format!("{name},W={w}"),
        None => name,
    }
}

/// The size the message has with CRLF line ends, read once from the spool file (in the page cache:
/// it was just written); None when it cannot be read, and the name goes without ",W=".
fn crlf_size(src: &mut File) -> Option<u64> {
    use std::io::Read;
    src.rewind().ok()?;
    let mut counter = super::imapdir::CrlfCounter::default();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match src.read(&mut buf) {
            Ok(0) => return Some(counter.size),
            Ok(n) => counter.feed(buf.get(..n).unwrap_or_default()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
}

/// Puts the message into `maildir`/tmp (creating the Maildir, mode 0700, on first delivery).
pub fn prepare(maildir: &Path, msg: &Message) -> Result<Prepared, StoreError> {
    ensure_dir(maildir)?;
    for sub in ["tmp", "new", "cur"] {
        ensure_dir(&maildir.join(sub))?;
    }
    let spool_err =
        |what: &str, e: io::Error| StoreError::temporary(format!("{what} {}: {e}", msg.path.display()));
    let mut src = super::open_source(msg)?;
    let meta = src.metadata().map_err(|e| spool_err("cannot stat message", e))?;
    if !meta.is_file() {
        return Err(StoreError::temporary(format!("{} is not a regular file", msg.path.display())));
    }
    let size = meta.len();
    if size != msg.size {
        log::warn!("store: message size mismatch path={} said={} real={size}", msg.path.display(), msg.size);
    }
    // Sharing the inode is only right when the spool file already looks like a mailbox file:
    // ours and private. Otherwise (and on EXDEV, EPERM from protected_hardlinks, EMLINK, file
    // systems without links...) copy.
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    let mut try_link = meta.uid() == euid && meta.mode() & 0o077 == 0;

    let crlf = crlf_size(&mut src);
    let host = crate::config::system_hostname();
    let tmpdir = maildir.join("tmp");
    for _ in 0..NAME_ATTEMPTS {
        let tmp = tmpdir.join(with_crlf_size(unique_name(SystemTime::now(), &host, size), crlf));
        if try_link {
            match fs::hard_link(msg.path, &tmp) {
                Ok(()) => {
                    return Ok(Prepared { maildir: maildir.to_path_buf(), tmp, size, crlf, pending: true });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    log::debug!("store: hard link failed, copying path={} error={e}", tmp.display());
                    try_link = false;
                }
            }
        }
        match copy_into(&mut src, &tmp, size) {
            Ok(true) => {
                return Ok(Prepared { maildir: maildir.to_path_buf(), tmp, size, crlf, pending: true });
            }
            Ok(false) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(StoreError::temporary(format!("no unique file name free in {}", tmpdir.display())))
}

/// Copies `src` into a new file `dst` (O_EXCL, 0600) and fsyncs it. Ok(false): the name is taken.
fn copy_into(src: &mut File, dst: &Path, size: u64) -> Result<bool, StoreError> {
    let mut out = match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(dst)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(false),
        Err(e) => return Err(StoreError::from_io("cannot create", dst, &e)),
    };
    // io::copy between files uses copy_file_range/sendfile on Linux, else a bounded buffer.
    let copied = src.rewind().and_then(|()| io::copy(src, &mut out)).and_then(|n| {
        if n == size {
            Ok(())
        } else {
            Err(io::Error::other(format!("copied {n} bytes of {size}: message changed")))
        }
    });
    let result = copied.and_then(|()| out.sync_all());
    if let Err(e) = result {
        drop(out);
        if let Err(e2) = fs::remove_file(dst) {
            log::warn!("store: cannot remove partial copy path={} error={e2}", dst.display());
        }
        return Err(StoreError::from_io("cannot write", dst, &e));
    }
    Ok(true)
}

impl Prepared {
    /// The file in tmp/ (for tests and logs).
    pub fn tmp_path(&self) -> &Path {
        &self.tmp
    }

    /// Moves tmp/<name> to new/<name> (a fresh name if taken: never overwrite) and fsyncs new/.
    pub fn commit(mut self) -> Result<PathBuf, StoreError> {
        let newdir = self.maildir.join("new");
        let mut name = self.tmp.file_name().map(|n| n.to_os_string()).unwrap_or_default();
        let host = crate::config::system_hostname();
        for _ in 0..NAME_ATTEMPTS {
            let dst = newdir.join(&name);
            match crate::durable::move_noreplace(&self.tmp, &dst) {
                Ok(()) => {
                    self.pending = false;
                    if let Err(e) = fsync_dir(&newdir) {
                        // Not durable, so not delivered: take it back rather than half-deliver.
                        if let Err(e2) = fs::remove_file(&dst) {
                            log::error!("store: cannot withdraw path={} error={e2}", dst.display());
                        }
                        return Err(e);
                    }
                    return Ok(dst);
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    name = with_crlf_size(unique_name(SystemTime::now(), &host, self.size), self.crlf).into();
                }
                Err(e) => return Err(StoreError::from_io("cannot move into", &dst, &e)),
            }
        }
        Err(StoreError::temporary(format!("no unique file name free in {}", newdir.display())))
    }

    /// Removes the tmp file.
    pub fn abort(self) {
        drop(self); // Drop removes it.
    }
}

impl Drop for Prepared {
    fn drop(&mut self) {
        if self.pending {
            self.pending = false;
            if let Err(e) = fs::remove_file(&self.tmp) {
                log::warn!("store: cannot remove tmp file path={} error={e}", self.tmp.display());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::{BODY, msg, spool};
    use std::os::unix::fs::PermissionsExt;

    fn count(dir: &Path) -> usize {
        fs::read_dir(dir).map(|r| r.count()).unwrap_or(0)
    }

    #[test]
    fn deliver_byte_for_byte_with_hard_link() {
        let d = tempfile::tempdir().unwrap();
        let src = spool(d.path(), BODY);
        let md = d.path().join("home/u/Maildir");
        let p = prepare(&md, &msg(&src, BODY.len() as u64)).unwrap();
        let tmp = p.tmp_path().to_path_buf();
        assert_eq!(tmp.parent().unwrap(), md.join("tmp"));
        // One inode shared with the spool file.
        let (s, t) = (fs::metadata(&src).unwrap(), fs::metadata(&tmp).unwrap());
        assert_eq!((s.dev(), s.ino()), (t.dev(), t.ino()));
        assert_eq!(t.nlink(), 2);
        assert_eq!(count(&md.join("new")), 0);

        let at = p.commit().unwrap();
        assert_eq!(at.parent().unwrap(), md.join("new"));
        assert!(!tmp.exists());
        assert_eq!(fs::read(&at).unwrap(), BODY);
        assert_eq!(fs::metadata(&at).unwrap().ino(), s.ino());
        assert_eq!(fs::metadata(&at).unwrap().mode() & 0o777, 0o600);
        for sub in ["", "tmp", "new", "cur"] {
            let m = fs::metadata(md.join(sub)).unwrap();
            assert_eq!(m.mode() & 0o777, 0o700, "{sub}");
        }
        assert_eq!(fs::metadata(d.path().join("home/u")).unwrap().mode() & 0o777, 0o700);
        let name = at.file_name().unwrap().to_str().unwrap().to_string();
        // ",S=" the stored size, ",W=" the size with CRLF line ends (one more octet per LF).
        let lfs = BODY.iter().filter(|&&b| b == b'\n').count();
        assert!(name.ends_with(&format!(",S={},W={}", BODY.len(), BODY.len() + lfs)), "{name}");
        assert!(name.contains(&format!("P{}Q", std::process::id())), "{name}");
    }

    #[test]
    fn copies_when_spool_file_is_not_private() {
        let d = tempfile::tempdir().unwrap();
        let src = spool(d.path(), BODY);
        fs::set_permissions(&src, fs::Permissions::from_mode(0o644)).unwrap();
        let md = d.path().join("Maildir");
        let at = prepare(&md, &msg(&src, BODY.len() as u64)).unwrap().commit().unwrap();
        let (s, t) = (fs::metadata(&src).unwrap(), fs::metadata(&at).unwrap());
        assert_ne!(s.ino(), t.ino());
        assert_eq!(t.nlink(), 1);
        assert_eq!(t.mode() & 0o777, 0o600);
        assert_eq!(fs::read(&at).unwrap(), BODY);
    }

    #[test]
    fn copies_across_file_systems() {
        // /dev/shm is usually a tmpfs apart from the temp dir: link gives EXDEV there.
        let shm = Path::new("/dev/shm");
        let d = tempfile::tempdir().unwrap();
        let Ok(other) = tempfile::tempdir_in(shm) else {
            println!("note: /dev/shm not usable, EXDEV case skipped");
            return;
        };
        if fs::metadata(d.path()).unwrap().dev() == fs::metadata(other.path()).unwrap().dev() {
            println!("note: /dev/shm on the same file system, EXDEV case skipped");
            return;
        }
        let src = spool(d.path(), BODY);
        let at =
            prepare(&other.path().join("Maildir"), &msg(&src, BODY.len() as u64)).unwrap().commit().unwrap();
        assert_eq!(fs::read(&at).unwrap(), BODY);
        assert_eq!(fs::metadata(&at).unwrap().mode() & 0o777, 0o600);
    }

    #[test]
    fn abort_and_drop_leave_nothing() {
        let d = tempfile::tempdir().unwrap();
        let src = spool(d.path(), BODY);
        let md = d.path().join("Maildir");
        let m = msg(&src, BODY.len() as u64);
        prepare(&md, &m).unwrap().abort();
        drop(prepare(&md, &m).unwrap());
        for sub in ["tmp", "new", "cur"] {
            assert_eq!(count(&md.join(sub)), 0, "{sub}");
        }
        assert_eq!(fs::metadata(&src).unwrap().nlink(), 1);
        assert_eq!(fs::read(&src).unwrap(), BODY);
    }

    #[test]
    fn unique_names_differ_and_never_overwrite() {
        let d = tempfile::tempdir().unwrap();
        let src = spool(d.path(), BODY);
        let md = d.path().join("Maildir");
        let m = msg(&src, BODY.len() as u64);
        let a = prepare(&md, &m).unwrap().commit().unwrap();
        let b = prepare(&md, &m).unwrap().commit().unwrap();
        assert_ne!(a, b);

        // A file already sitting at the target name in new/ is kept; the message gets a new name.
        let p = prepare(&md, &m).unwrap();
        let taken = md.join("new").join(p.tmp_path().file_name().unwrap());
        fs::write(&taken, b"somebody else's").unwrap();
        let c = p.commit().unwrap();
        assert_ne!(c, taken);
        assert_eq!(fs::read(&taken).unwrap(), b"somebody else's");
        assert_eq!(fs::read(&c).unwrap(), BODY);
        assert_eq!(count(&md.join("new")), 4);
        assert_eq!(count(&md.join("tmp")), 0);
    }

    #[test]
    fn bad_paths_are_permanent() {
        let d = tempfile::tempdir().unwrap();
        let src = spool(d.path(), BODY);
        let m = msg(&src, BODY.len() as u64);
        let file = d.path().join("file");
        fs::write(&file, b"x").unwrap();
        let half = d.path().join("half");
        fs::create_dir(&half).unwrap();
        fs::write(half.join("new"), b"x").unwrap();
        let looped = d.path().join("loop");
        std::os::unix::fs::symlink(&looped, &looped).unwrap();
        for bad in [file.clone(), file.join("Maildir"), half, looped.join("Maildir")] {
            let e = prepare(&bad, &m).err().unwrap();
            assert!(e.permanent, "{}: {e}", bad.display());
        }
    }

    #[test]
    fn host_escaping() {
        let cases =
            [("mail.example", "mail.example"), ("a/b", "a\\057b"), ("a:b", "a\\072b"), ("a,b", "a\\054b")];
        for (host, want) in cases {
            assert_eq!(escape_host(host), want);
        }
        let t = UNIX_EPOCH + std::time::Duration::new(1_795_837_688, 123_456_000);
        let n = unique_name(t, "h:x", 42);
        let pid = std::process::id();
        assert!(n.starts_with(&format!("1795837688.M123456P{pid}Q")), "{n}");
        assert!(n.ends_with(".h\\072x,S=42"), "{n}");
    }
}
