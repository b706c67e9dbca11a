//! A POP3 maildrop snapshot (RFC 1939) over a Maildir (cr.yp.to/proto/maildir.html) or an mbox
//! (mboxrd, RFC 4155): exclusive lock for the session, message list with stable UIDLs and CRLF sizes,
//! message streaming with CRLF line ends and dot-stuffing (RFC 1939 3), expunge at QUIT (RFC 1939 6).

mod mboxdrop;

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::Duration;

use sha2::Digest;

use super::fsync_dir;
use super::imapdir::delivery_key;

/// Streaming buffer size: a 50 MiB message costs this, not 50 MiB. Also the longest line fragment
/// looked at for "From " / '.' at a line start (see `Pop3Lines`).
const BUF: usize = 64 * 1024;
/// RFC 1939 7 (UIDL): 1 to 70 characters in the range 0x21 to 0x7E.
const MAX_UID: usize = 70;
/// Name of the session lock file inside a Maildir.
const MAILDIR_LOCK: &str = ".buzon-pop3.lock";

/// Why a maildrop could not be opened or expunged. A mailbox that does not exist yet is not an
/// error: it opens as an empty drop.
#[derive(Debug, PartialEq, Eq)]
pub enum DropError {
    /// Another session (or, for mbox, a delivery or mail reader) holds the lock: RFC 1939 4 says to
    /// answer "-ERR" to PASS and not enter TRANSACTION state; the client may retry later.
    InUse,
    /// An I/O failure, with what failed and on which path.
    Io(String),
}

impl DropError {
    fn io(what: &str, path: &Path, e: &io::Error) -> DropError {
        DropError::Io(format!("{what} {}: {e}", path.display()))
    }
}

impl fmt::Display for DropError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DropError::InUse => f.write_str("maildrop is in use"),
            DropError::Io(s) => f.write_str(s),
        }
    }
}

impl std::error::Error for DropError {}

/// A Maildir subdirectory a message file is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sub {
    Cur,
    New,
}

impl Sub {
    /// This subdirectory's descriptor, of cur/'s and new/'s.
    fn pick<'a>(self, cur: &'a Option<File>, new: &'a Option<File>) -> Option<&'a File> {
        match self {
            Sub::Cur => cur.as_ref(),
            Sub::New => new.as_ref(),
        }
    }
}

/// Where one message's bytes are.
#[derive(Debug)]
enum Loc {
    /// A Maildir file by name (in cur/, or in new/ if it could not be moved), opened relative to
    /// the directory descriptor taken at open, never by path: a directory swapped for a symlink
    /// after the listing cannot lead a read or an unlink elsewhere.
    File { sub: Sub, name: String },
    /// mbox: the message's own bytes (after its From_ line, before the separating blank line).
    Range { start: u64, len: u64 },
}

#[derive(Debug)]
struct Msg {
    uid: String,
    size: u64,
    loc: Loc,
}

enum Backend {
    /// No mailbox on disk: nothing to lock, nothing to delete.
    Empty,
    /// The flock'ed lock file (closing it releases the lock) and cur/ and new/ as opened at the
    /// start of the session (O_NOFOLLOW; None when missing).
    Maildir {
        _lock: File,
        cur: Option<File>,
        new: Option<File>,
    },
    Mbox(mboxdrop::Locked),
}

/// A locked snapshot of one maildrop for one POP3 session. Dropping it releases the lock without
/// deleting anything (RFC 1939 6: a session that ends without QUIT must not expunge).
pub struct Maildrop {
    msgs: Vec<Msg>,
    backend: Backend,
}

impl Maildrop {
    /// Opens a Maildir for POP3: lists new/ and cur/ (not tmp/, not dot files), moves new/ messages
    /// to cur/ with ":2," appended (as Dovecot does once a client has seen them), and takes an
    /// exclusive session lock (flock on `<maildir>/.buzon-pop3.lock`; held: `InUse`).
    ///
    /// UIDL: the file name up to the first ':' or ',' ("<secs>.M<usec>P<pid>Q<n>.<host>"), which the
    /// Maildir spec makes unique and which moves and flag changes keep; a name that is not 1-70
    /// printable characters is replaced by a hex SHA-256 digest of it.
    ///
    /// Size: the CRLF size (RFC 1939 LIST), taken from Dovecot's ",W=<n>" when the name has it,
    /// else counted by reading the file once (",S=" is the LF size, so it cannot spare the read).
    pub fn open_maildir(path: &Path) -> Result<Maildrop, DropError> {
        match fs::metadata(path) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err(DropError::Io(format!("{} is not a directory", path.display()))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Maildrop::empty()),
            Err(e) => return Err(DropError::io("cannot stat", path, &e)),
        }
        let lock = lock_maildir(path)?;
        let cur = path.join("cur");
        let new = path.join("new");
        let (mut cur_fd, new_fd) = (open_dir(&cur)?, open_dir(&new)?);
        let mut files: Vec<(String, Sub)> = Vec::new();
        for name in list(&cur)? {
            files.push((name, Sub::Cur));
        }
        let mut moved = false;
        for name in list(&new)? {
            let from = new.join(&name);
            let seen = if name.contains(':') { name.clone() } else { format!("{name}:2,") };
            match move_to_cur(&from, &cur.join(&seen)) {
                Ok(()) => {
                    moved = true;
                    files.push((seen, Sub::Cur));
                }
                Err(e) => {
                    // Still readable where it is; the next session retries the move.
                    log::warn!("pop3: cannot move to cur/ path={} error={e}", from.display());
                    files.push((name, Sub::New));
                }
            }
        }
        if moved {
            fsync_dir(&cur).map_err(|e| DropError::Io(e.message))?;
            fsync_dir(&new).map_err(|e| DropError::Io(e.message))?;
            if cur_fd.is_none() {
                cur_fd = open_dir(&cur)?;
            }
        }
        // Arrival order, as IMAP numbers them: seconds, microseconds and counter as numbers (two
        // deliveries in one second compared as strings could swap), then the name.
        files.sort_by(|a, b| (delivery_key(&a.0), &a.0).cmp(&(delivery_key(&b.0), &b.0)));
        let mut msgs = Vec::with_capacity(files.len());
        for (name, sub) in files {
            let dir = sub.pick(&cur_fd, &new_fd);
            let size = match w_size(&name) {
                Some(n) => n,
                None => match dir.map_or(Err(io::ErrorKind::NotFound.into()), |d| open_in(d, &name)) {
                    Ok(f) => crlf_size(f, false)
                        .map_err(|e| DropError::io("cannot read", &path.join(&name), &e))?,
                    // Removed by another agent (an IMAP server) since we listed it: not in the drop.
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(DropError::io("cannot open", &path.join(&name), &e)),
                },
            };
            let base = name.split([':', ',']).next().unwrap_or_default();
            msgs.push(Msg { uid: uid_from(base.as_bytes()), size, loc: Loc::File { sub, name } });
        }
        dedupe_uids(&mut msgs);
        Ok(Maildrop { msgs, backend: Backend::Maildir { _lock: lock, cur: cur_fd, new: new_fd } })
    }

    /// Opens an mbox: takes the mail lock (dotlock then fcntl, as mbox delivery does) for the whole
    /// session, waiting up to `lock_timeout` (then `InUse`), and parses the messages. See mboxdrop.rs
    /// for the UIDL choice and its limits.
    pub fn open_mbox(path: &Path, lock_timeout: Duration) -> Result<Maildrop, DropError> {
        match mboxdrop::open(path, lock_timeout)? {
            None => Ok(Maildrop::empty()),
            Some((locked, mut msgs)) => {
                dedupe_uids(&mut msgs);
                Ok(Maildrop { msgs, backend: Backend::Mbox(locked) })
            }
        }
    }

    fn empty() -> Maildrop {
        Maildrop { msgs: Vec::new(), backend: Backend::Empty }
    }

    /// Number of messages (RFC 1939 STAT).
    pub fn count(&self) -> usize {
        self.msgs.len()
    }

    /// Sum of all CRLF sizes (RFC 1939 STAT).
    pub fn total_size(&self) -> u64 {
        self.msgs.iter().map(|m| m.size).sum()
    }

    fn msg(&self, n: usize) -> Option<&Msg> {
        n.checked_sub(1).and_then(|i| self.msgs.get(i))
    }

    /// CRLF size of message `n` (1-based), None if there is no such message.
    pub fn size(&self, n: usize) -> Option<u64> {
        self.msg(n).map(|m| m.size)
    }

    /// UIDL of message `n` (1-based): 1-70 characters 0x21-0x7E, stable across sessions.
    pub fn uid(&self, n: usize) -> Option<&str> {
        self.msg(n).map(|m| m.uid.as_str())
    }

    /// Streams message `n` (1-based) as RFC 1939 3 wants it: CRLF line ends (a CR already before
    /// an LF is kept, not doubled), lines starting with '.' get one more, a last line without a line
    /// end gets one. With `top_lines` (TOP), only the header, the blank line and that many body
    /// lines. Without the final ".\r\n" (the caller adds it). InvalidInput if there is no such message.
    pub fn write_message(&self, n: usize, top_lines: Option<u64>, out: &mut dyn Write) -> io::Result<()> {
        let Some(m) = self.msg(n) else {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "no such message"));
        };
        let mut lines = Pop3Lines::new(false, true, top_lines);
        let mut w = BufWriter::with_capacity(BUF, out);
        match (&m.loc, &self.backend) {
            (Loc::File { sub, name }, Backend::Maildir { cur, new, .. }) => {
                let dir = sub.pick(cur, new);
                let f = open_in(dir.ok_or(io::ErrorKind::NotFound)?, name)?;
                lines.run(&mut BufReader::with_capacity(BUF, f), &mut w)?;
            }
            (Loc::File { .. }, _) => return Err(io::Error::other("Maildir message without its Maildir")),
            (Loc::Range { start, len }, Backend::Mbox(l)) => {
                let mut f = l.file();
                f.seek(SeekFrom::Start(*start))?;
                lines.unquote = true;
                lines.run(&mut BufReader::with_capacity(BUF, f.take(*len)), &mut w)?;
            }
            (Loc::Range { .. }, _) => return Err(io::Error::other("mbox message without its mbox")),
        }
        w.flush()
    }

    /// QUIT in UPDATE state (RFC 1939 6): deletes messages `deleted` (1-based; duplicates are fine),
    /// durably, then releases the lock. Maildir: unlink, fsync cur/ (and new/). mbox: rewritten
    /// without them by temp file + fsync + rename + fsync dir, all under the lock. Numbers out of
    /// range are an error and nothing is deleted.
    pub fn expunge(self, deleted: &[usize]) -> Result<(), DropError> {
        let mut gone = vec![false; self.msgs.len()];
        for &n in deleted {
            match n.checked_sub(1).and_then(|i| gone.get_mut(i)) {
                Some(g) => *g = true,
                None => return Err(DropError::Io(format!("no message {n} to delete"))),
            }
        }
        if !gone.contains(&true) {
            return Ok(());
        }
        match &self.backend {
            Backend::Empty => Ok(()),
            Backend::Maildir { cur, new, .. } => {
                let mut synced = [false, false];
                for (m, _) in self.msgs.iter().zip(&gone).filter(|(_, g)| **g) {
                    let Loc::File { sub, name } = &m.loc else { continue };
                    let Some(dir) = sub.pick(cur, new) else { continue };
                    match unlink_in(dir, name) {
                        Ok(()) => {}
                        // Already removed by another agent: the goal is met.
                        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                        Err(e) => return Err(DropError::Io(format!("cannot delete {name}: {e}"))),
                    }
                    synced[*sub as usize] = true;
                }
                for (dir, _) in [cur, new].into_iter().zip(synced).filter(|(_, s)| *s) {
                    if let Some(d) = dir {
                        d.sync_all().map_err(|e| DropError::Io(format!("cannot sync the Maildir: {e}")))?;
                    }
                }
                Ok(())
            }
            Backend::Mbox(l) => {
                let keep: Vec<bool> = gone.iter().map(|g| !g).collect();
                l.rewrite(&keep)
            }
        }
        // `self` drops here: lock file closed / mbox unlocked.
    }
}

/// Opens (creating) `<maildir>/.buzon-pop3.lock` and flocks it exclusively without waiting.
fn lock_maildir(dir: &Path) -> Result<File, DropError> {
    let path = dir.join(MAILDIR_LOCK);
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&path)
        .map_err(|e| DropError::io("cannot open lock", &path, &e))?;
    loop {
        // SAFETY: the fd is open for the lifetime of `f`.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            return Ok(f);
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EWOULDBLOCK) => return Err(DropError::InUse),
            _ => return Err(DropError::io("cannot lock", &path, &e)),
        }
    }
}

/// Opens a Maildir subdirectory for the session, refusing a symlink; None when it does not exist.
fn open_dir(dir: &Path) -> Result<Option<File>, DropError> {
    match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(dir)
    {
        Ok(f) => Ok(Some(f)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(DropError::io("cannot open", dir, &e)),
    }
}

fn c_name(name: &str) -> io::Result<std::ffi::CString> {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a file name"));
    }
    std::ffi::CString::new(name)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in a file name"))
}

/// Opens the regular file `name` in `dir` for reading: never through a symlink, never a FIFO or
/// a device (O_NONBLOCK so that opening one cannot block; then fstat).
fn open_in(dir: &File, name: &str) -> io::Result<File> {
    let c = c_name(name)?;
    let flags = libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NOCTTY | libc::O_NONBLOCK;
    // SAFETY: a valid directory descriptor and a NUL-terminated name; the result is checked.
    let fd = unsafe { libc::openat(dir.as_raw_fd(), c.as_ptr(), flags) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: openat returned a new descriptor that nothing else owns.
    let f = unsafe { <File as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    if !f.metadata()?.is_file() {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "not a regular file"));
    }
    Ok(f)
}

/// Removes the file `name` from `dir`.
fn unlink_in(dir: &File, name: &str) -> io::Result<()> {
    let c = c_name(name)?;
    // SAFETY: a valid directory descriptor and a NUL-terminated name.
    if unsafe { libc::unlinkat(dir.as_raw_fd(), c.as_ptr(), 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Names of the regular files in `dir`, without dot files; a missing directory is empty.
fn list(dir: &Path) -> Result<Vec<String>, DropError> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(DropError::io("cannot list", dir, &e)),
    };
    let mut out = Vec::new();
    for ent in rd {
        let ent = ent.map_err(|e| DropError::io("cannot list", dir, &e))?;
        let Ok(name) = ent.file_name().into_string() else {
            log::warn!("pop3: skipping non-UTF-8 name in {}", dir.display());
            continue;
        };
        if name.starts_with('.') || !ent.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        out.push(name);
    }
    Ok(out)
}

/// Moves new/<x> to cur/<x>:2, without ever replacing a file.
fn move_to_cur(from: &Path, to: &Path) -> io::Result<()> {
    crate::durable::move_noreplace(from, to)
}

/// Dovecot's ",W=<n>" (the CRLF size) from the part of a Maildir name before ':'.
fn w_size(name: &str) -> Option<u64> {
    let base = name.split(':').next()?;
    base.split(',').skip(1).find_map(|f| f.strip_prefix("W=")).and_then(|n| n.parse().ok())
}

/// `raw` as a UIDL if it is 1-70 printable characters (RFC 1939 7), else a hex digest of it.
fn uid_from(raw: &[u8]) -> String {
    if !raw.is_empty() && raw.len() <= MAX_UID && raw.iter().all(|b| (0x21..=0x7e).contains(b)) {
        return String::from_utf8_lossy(raw).into_owned();
    }
    hex_digest(&sha2::Sha256::digest(raw)[..20])
}

fn hex_digest(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Makes UIDLs unique within the drop: the 2nd, 3rd... holder of one UIDL gets "-2", "-3"...
/// (RFC 1939 7: unique within the maildrop). Only for byte-identical mbox messages or a Maildir
/// file present twice, where no better stable identity exists.
fn dedupe_uids(msgs: &mut [Msg]) {
    let mut seen: std::collections::HashMap<String, u32> = std::collections::HashMap::new();
    for m in msgs.iter_mut() {
        let k = seen.entry(m.uid.clone()).or_insert(0);
        *k += 1;
        if *k > 1 {
            let suffix = format!("-{k}");
            m.uid.truncate(MAX_UID - suffix.len());
            m.uid.push_str(&suffix);
        }
    }
}

/// The CRLF size of a stored message: what `write_message` sends, without dot-stuffing (sizes in
/// RFC 1939 count the message, not its transfer encoding).
fn crlf_size(src: impl Read, unquote: bool) -> io::Result<u64> {
    let mut count = Counter(0);
    Pop3Lines::new(unquote, false, None).run(&mut BufReader::with_capacity(BUF, src), &mut count)?;
    Ok(count.0)
}

/// A Write that only counts.
struct Counter(u64);

impl Write for Counter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// LF (or CRLF) stored lines to POP3's CRLF lines, streaming. Lines are read as fragments of at
/// most BUF bytes; ">From " un-quoting and '.' doubling look at the first fragment of a line, so
/// a line with more than BUF leading '>' is not un-quoted (the size agrees, as both use this).
struct Pop3Lines {
    /// mboxrd: a line matching ^>+From loses one '>'.
    unquote: bool,
    /// RFC 1939 3: a line starting with '.' gets one more.
    dot_stuff: bool,
    /// TOP: body lines still to send once the header is done; None is the whole message.
    top: Option<u64>,
    in_header: bool,
}

impl Pop3Lines {
    fn new(unquote: bool, dot_stuff: bool, top: Option<u64>) -> Pop3Lines {
        Pop3Lines { unquote, dot_stuff, top, in_header: true }
    }

    fn run(&mut self, src: &mut impl BufRead, out: &mut impl Write) -> io::Result<()> {
        let mut frag: Vec<u8> = Vec::with_capacity(BUF);
        let mut at_start = true;
        // A CR ending a fragment: kept back until we know whether an LF follows.
        let mut held_cr = false;
        loop {
            frag.clear();
            let n = (&mut *src).take(BUF as u64).read_until(b'\n', &mut frag)?;
            if n == 0 {
                break;
            }
            let mut line: &[u8] = &frag;
            if at_start {
                if !self.in_header {
                    match &mut self.top {
                        Some(0) => return Ok(()),
                        Some(k) => *k -= 1,
                        None => {}
                    }
                } else if line == b"\n" || line == b"\r\n" {
                    self.in_header = false;
                }
                if self.unquote && is_quoted_from(line) {
                    line = &line[1..];
                }
                if self.dot_stuff && line.first() == Some(&b'.') {
                    out.write_all(b".")?;
                }
            }
            if held_cr {
                held_cr = false;
                if line.first() != Some(&b'\n') {
                    out.write_all(b"\r")?;
                }
            }
            at_start = line.last() == Some(&b'\n');
            if at_start {
                let body = &line[..line.len() - 1];
                out.write_all(body.strip_suffix(b"\r").unwrap_or(body))?;
                out.write_all(b"\r\n")?;
            } else if let Some(body) = line.strip_suffix(b"\r") {
                out.write_all(body)?;
                held_cr = true;
            } else {
                out.write_all(line)?;
            }
        }
        // RFC 1939 3: the message ends with CRLF before the terminating ".".
        if held_cr || !at_start {
            out.write_all(b"\r\n")?;
        }
        Ok(())
    }
}

/// ^>+From (mboxrd quoting of a line that said ">*From ").
fn is_quoted_from(line: &[u8]) -> bool {
    let gt = line.iter().take_while(|&&b| b == b'>').count();
    gt > 0 && line[gt..].starts_with(b"From ")
}

#[cfg(test)]
mod tests;
