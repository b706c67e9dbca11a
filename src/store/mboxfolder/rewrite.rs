//! Writing the mbox for the IMAP folder, always under the mail lock: the write-back (status headers,
//! X-UIDs, expunge) through a temp file in the spool directory + fsync + rename + directory fsync,
//! keeping owner, group and mode (or, when the directory is not writable, in place as mutt does),
//! and APPEND at the end in the mboxrd form delivery writes (RFC 4155, store/mbox.rs).

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use super::lock::{Locked, io_error};
use super::scan::{BUF, Field, HeaderLine, ImapBase, Loc, classify};
use crate::store::folder::{ANSWERED, DELETED, DRAFT, FLAGGED, Flags, FolderError, SEEN, Uid};
use crate::store::fsync_dir;
use crate::store::mbox::{Quoter, from_line};

/// What the write-back does with one message.
pub(super) enum Act {
    /// Copied byte for byte.
    Keep,
    /// Its status headers replaced by these lines; everything else copied byte for byte.
    Rewrite(String),
    /// Left out (expunged).
    Drop,
}

/// The status header lines of a message, in the order buzon writes them (after the other headers).
/// `old` adds `O` to Status (seen by a session, no longer \Recent).
pub(super) fn status_headers(base: Option<&ImapBase>, flags: &Flags, old: bool, uid: Option<Uid>) -> String {
    let mut s = String::new();
    if let Some(b) = base {
        s.push_str(&format!("X-IMAPbase: {} {}", b.validity, b.uidnext));
        for k in &b.keywords {
            s.push(' ');
            s.push_str(k);
        }
        s.push('\n');
    }
    let status: String =
        [(flags.system & SEEN != 0, 'R'), (old, 'O')].iter().filter(|(on, _)| *on).map(|(_, c)| *c).collect();
    if !status.is_empty() {
        s.push_str(&format!("Status: {status}\n"));
    }
    let x: String = [(ANSWERED, 'A'), (DELETED, 'D'), (FLAGGED, 'F'), (DRAFT, 'T')]
        .iter()
        .filter(|(bit, _)| flags.system & bit != 0)
        .map(|(_, c)| *c)
        .collect();
    if !x.is_empty() {
        s.push_str(&format!("X-Status: {x}\n"));
    }
    if !flags.keywords.is_empty() {
        s.push_str(&format!("X-Keywords: {}\n", flags.keywords.join(" ")));
    }
    if let Some(u) = uid {
        s.push_str(&format!("X-UID: {u}\n"));
    }
    s
}

/// The result of a write-back.
pub(super) struct Written {
    /// The file the path now names (the new one after a rename, the same one in place).
    pub file: File,
    /// New location of each item (None: dropped), in the order given.
    pub locs: Vec<Option<Loc>>,
    /// Bytes found after what was indexed (a writer that ignored the lock) were copied along:
    /// the caller must reparse.
    pub extra: bool,
}

/// Rewrites the locked mbox: the bytes before `first_from`, then `items` (in file order), then
/// anything past `indexed_len`. `in_place` forces the in-place method (tests).
pub(super) fn write_back(
    path: &Path,
    lk: &Locked,
    items: &[(Loc, Act)],
    first_from: u64,
    indexed_len: u64,
    in_place: bool,
) -> Result<Written, FolderError> {
    let meta = lk.file.metadata().map_err(|e| io_error("cannot stat", path, &e))?;
    let extra = meta.len() > indexed_len;
    if !in_place && let Some((file, locs)) = by_rename(path, lk, items, first_from, indexed_len, &meta)? {
        return Ok(Written { file, locs, extra });
    }
    let locs = in_place_rewrite(path, lk, items, first_from, indexed_len, meta.len())?;
    let file = lk.file.try_clone().map_err(|e| io_error("cannot dup", path, &e))?;
    Ok(Written { file, locs, extra })
}

fn spool_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The new file and the items' new locations.
type Renamed = (File, Vec<Option<Loc>>);

/// Temp file + fsync + rename + fsync dir. `Ok(None)`: the directory does not let us (EACCES,
/// EPERM: a /var/mail we may not write to); the caller rewrites in place.
fn by_rename(
    path: &Path,
    lk: &Locked,
    items: &[(Loc, Act)],
    first_from: u64,
    indexed_len: u64,
    meta: &fs::Metadata,
) -> Result<Option<Renamed>, FolderError> {
    let dir = spool_dir(path);
    let mut name = OsString::from(".");
    name.push(path.file_name().unwrap_or_default());
    name.push(format!(".buzon-imap-{}", std::process::id()));
    let tmp = dir.join(name);
    let denied = |e: &io::Error| matches!(e.raw_os_error(), Some(libc::EACCES | libc::EPERM));
    let open = || {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp)
    };
    let out = match open() {
        Ok(f) => f,
        // Left by a crashed session of ours: we hold the lock, so it is stale.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            let _ = fs::remove_file(&tmp);
            open().map_err(|e| io_error("cannot create", &tmp, &e))?
        }
        Err(e) if denied(&e) => {
            log::info!(
                "imap: cannot create temp file, rewriting mbox in place path={} error={e}",
                path.display()
            );
            return Ok(None);
        }
        Err(e) => return Err(io_error("cannot create", &tmp, &e)),
    };
    let fail = |what: &str, e: &io::Error| {
        let _ = fs::remove_file(&tmp);
        io_error(what, &tmp, e)
    };
    // Same owner, group and mode as the mbox (Debian: user:mail 0660). chown works as root, or as
    // the owner to a group it is in; otherwise the file is ours anyway.
    if let Err(e) = std::os::unix::fs::fchown(&out, Some(meta.uid()), Some(meta.gid())) {
        log::debug!("imap: cannot chown path={} error={e}", tmp.display());
    }
    if let Err(e) = out.set_permissions(fs::Permissions::from_mode(meta.mode() & 0o7777)) {
        return Err(fail("cannot chmod", &e));
    }
    let mut w = Out::new(&out, 0, 0);
    let result = copy_range(&lk.file, 0, first_from, &mut w)
        .and_then(|()| emit(&lk.file, items, indexed_len, meta.len(), &mut w))
        .and_then(|locs| w.flush().map(|()| locs))
        .and_then(|locs| out.sync_all().map(|()| locs));
    let locs = match result {
        Ok(l) => l,
        Err(e) => return Err(fail("cannot write", &e)),
    };
    if let Err(e) = fs::rename(&tmp, path) {
        let _ = fs::remove_file(&tmp);
        if denied(&e) {
            log::info!("imap: cannot rename, rewriting mbox in place path={} error={e}", path.display());
            return Ok(None);
        }
        return Err(io_error("cannot rename over", path, &e));
    }
    fsync_dir(&dir).map_err(|e| FolderError::Temp(e.message))?;
    Ok(Some((out, locs)))
}

/// mutt's way when the spool directory is not ours: the part from the first changed message on
/// goes to an unlinked temp file in $TMPDIR, then back over the mbox, which is truncated and
/// fsynced. Not atomic: a crash in the copy-back can damage the mbox (as with mutt); used only
/// when the rename is impossible.
fn in_place_rewrite(
    path: &Path,
    lk: &Locked,
    items: &[(Loc, Act)],
    first_from: u64,
    indexed_len: u64,
    file_len: u64,
) -> Result<Vec<Option<Loc>>, FolderError> {
    let k = items.iter().position(|(_, a)| !matches!(a, Act::Keep)).unwrap_or(items.len());
    let mut locs: Vec<Option<Loc>> = items[..k].iter().map(|(l, _)| Some(*l)).collect();
    let start = items.get(k).map_or(indexed_len.max(first_from), |(l, _)| l.from);
    if k == items.len() {
        return Ok(locs); // nothing changes
    }
    let tmp =
        anonymous_temp().map_err(|e| io_error("cannot create temp file in", &std::env::temp_dir(), &e))?;
    let mut w = Out::new(&tmp, start, 0);
    let tail = emit(&lk.file, &items[k..], indexed_len, file_len, &mut w)
        .and_then(|l| w.flush().map(|()| l))
        .map_err(|e| io_error("cannot write temp copy of", path, &e))?;
    let new_len = w.pos;
    // Copy back.
    let mut buf = vec![0u8; BUF];
    let mut pos = start;
    let copy = (|| -> io::Result<()> {
        while pos < new_len {
            let want = usize::try_from(new_len - pos).unwrap_or(BUF).min(BUF);
            let n = tmp.read_at(&mut buf[..want], pos - start)?;
            if n == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "temp copy shrank"));
            }
            lk.file.write_all_at(&buf[..n], pos)?;
            pos += n as u64;
        }
        lk.file.set_len(new_len)?;
        lk.file.sync_all()
    })();
    copy.map_err(|e| io_error("cannot rewrite in place", path, &e))?;
    locs.extend(tail);
    Ok(locs)
}

/// A 0600 file in $TMPDIR, unlinked at once.
fn anonymous_temp() -> io::Result<File> {
    let dir = std::env::temp_dir();
    for i in 0..100u32 {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        let p = dir.join(format!(".buzon-mbox-{}-{nanos}-{i}", std::process::id()));
        match OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&p)
        {
            Ok(f) => {
                fs::remove_file(&p)?;
                return Ok(f);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(io::ErrorKind::AlreadyExists, "no free temp name"))
}

/// A buffered writer that knows both the offset in the mbox being made and where in `file` the
/// next bytes go.
struct Out<'a> {
    file: &'a File,
    buf: Vec<u8>,
    /// Offset in the mbox being made of the next byte.
    pos: u64,
    /// Offset in `file` where the buffer goes.
    at: u64,
    /// The last two bytes put.
    last2: [u8; 2],
}

impl<'a> Out<'a> {
    fn new(file: &'a File, pos: u64, at: u64) -> Out<'a> {
        Out { file, buf: Vec::with_capacity(BUF), pos, at, last2: [0, 0] }
    }
    fn put(&mut self, b: &[u8]) -> io::Result<()> {
        self.buf.extend_from_slice(b);
        self.pos += b.len() as u64;
        match b {
            [.., x, y] => self.last2 = [*x, *y],
            [y] => self.last2 = [self.last2[1], *y],
            [] => {}
        }
        if self.buf.len() >= BUF {
            self.flush()?;
        }
        Ok(())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.write_all_at(&self.buf, self.at)?;
        self.at += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }
}

fn copy_range(src: &File, start: u64, end: u64, out: &mut Out) -> io::Result<()> {
    let mut buf = vec![0u8; BUF.min(usize::try_from(end.saturating_sub(start)).unwrap_or(BUF))];
    let mut pos = start;
    while pos < end {
        let want = usize::try_from(end - pos).unwrap_or(BUF).min(buf.len());
        let n = src.read_at(&mut buf[..want], pos)?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "mbox shrank under the lock"));
        }
        out.put(&buf[..n])?;
        pos += n as u64;
    }
    Ok(())
}

/// Writes the items and whatever follows `indexed_len`; returns their new locations.
fn emit(
    src: &File,
    items: &[(Loc, Act)],
    indexed_len: u64,
    file_len: u64,
    out: &mut Out,
) -> io::Result<Vec<Option<Loc>>> {
    let mut locs = Vec::with_capacity(items.len());
    for (loc, act) in items {
        let from = out.pos;
        match act {
            Act::Drop => {
                locs.push(None);
                continue;
            }
            Act::Keep => copy_range(src, loc.from, loc.end, out)?,
            Act::Rewrite(headers) => {
                copy_range(src, loc.from, loc.hdr, out)?;
                let end = copy_header(src, loc.hdr, loc.hdr_end, out)?;
                if end == LineEnd::None {
                    out.put(b"\n")?;
                }
                // Ours in the line ends the message's header uses.
                if end == LineEnd::Crlf {
                    out.put(headers.replace('\n', "\r\n").as_bytes())?;
                } else {
                    out.put(headers.as_bytes())?;
                }
                let hdr_end = out.pos;
                copy_range(src, loc.hdr_end, loc.end, out)?;
                let mut l = loc.moved_to(from);
                l.hdr_end = hdr_end;
                // A message that ended in a blank line right after its From_ line ("From x\n\n")
                // now ends in "\n\n", which readers take for the separator: add one.
                if !l.sep && out.last2 == *b"\n\n" {
                    out.put(b"\n")?;
                    l.sep = true;
                }
                l.end = out.pos;
                locs.push(Some(l));
                continue;
            }
        }
        locs.push(Some(loc.moved_to(from)));
    }
    copy_range(src, indexed_len, file_len, out)?;
    Ok(locs)
}

/// How the last header line copied ended.
#[derive(Clone, Copy, PartialEq, Eq)]
enum LineEnd {
    Lf,
    Crlf,
    /// Without a line end (the file ends there).
    None,
}

/// Copies the header lines in [start, end) except the status headers buzon writes itself (and
/// their continuation lines). Returns how the last line copied ended (Lf when none was).
fn copy_header(src: &File, start: u64, end: u64, out: &mut Out) -> io::Result<LineEnd> {
    let mut f = src;
    f.seek(SeekFrom::Start(start))?;
    let cap = BUF.min(usize::try_from(end - start).unwrap_or(BUF).max(1));
    let mut rd = BufReader::with_capacity(cap, f.take(end - start));
    let mut frag: Vec<u8> = Vec::with_capacity(256);
    let mut at_start = true;
    let mut skip = false;
    let mut last = LineEnd::Lf;
    loop {
        frag.clear();
        if (&mut rd).take(BUF as u64).read_until(b'\n', &mut frag)? == 0 {
            break;
        }
        if at_start {
            match classify(&frag) {
                HeaderLine::Continuation => {}
                HeaderLine::Field(f) => skip = f.is_some_and(|f| f != Field::ContentLength),
                HeaderLine::Blank => skip = false,
            }
        }
        at_start = frag.last() == Some(&b'\n');
        if !skip {
            out.put(&frag)?;
            last = if frag.ends_with(b"\r\n") {
                LineEnd::Crlf
            } else if at_start {
                LineEnd::Lf
            } else {
                LineEnd::None
            };
        }
    }
    Ok(last)
}

/// Appends `message` (CRLF or LF) at the end of the locked mbox as delivery does (separator, a
/// From_ line, mboxrd quoting, a final newline and a blank line), with `headers` in place of any
/// status headers it carried. fsyncs; on failure truncates back.
pub(super) fn append_message(
    path: &Path,
    lk: &Locked,
    headers: &str,
    date: i64,
    message: &mut dyn BufRead,
) -> Result<(), FolderError> {
    let orig = lk.file.metadata().map_err(|e| io_error("cannot stat", path, &e))?.len();
    let result = write_appended(&lk.file, orig, headers, date, message).and_then(|()| lk.file.sync_all());
    if let Err(e) = result {
        if let Err(u) = lk.file.set_len(orig).and_then(|()| lk.file.sync_all()) {
            log::error!("imap: cannot truncate back path={} len={orig} error={u}", path.display());
        }
        return Err(io_error("cannot append to", path, &e));
    }
    if lk.created {
        fsync_dir(&spool_dir(path)).map_err(|e| FolderError::Temp(e.message))?;
    }
    Ok(())
}

/// The longest piece of a line read at once; a longer line goes in pieces (its first decides).
const MAX_PIECE: u64 = 1 << 20;

fn write_appended(
    file: &File,
    orig: u64,
    headers: &str,
    date: i64,
    message: &mut dyn BufRead,
) -> io::Result<()> {
    let mut out = Out::new(file, orig, orig);
    // mutt-compatible: a From_ line follows a blank line (or starts the file).
    if orig > 0 {
        let n = orig.min(2);
        let mut tail = [0u8; 2];
        file.read_exact_at(&mut tail[..n as usize], orig - n)?;
        let tail = &tail[..n as usize];
        if tail != b"\n\n" {
            out.put(b"\n")?;
            if tail.last() != Some(&b'\n') {
                out.put(b"\n")?;
            }
        }
    }
    let when = UNIX_EPOCH + std::time::Duration::from_secs(u64::try_from(date).unwrap_or(0));
    out.put(from_line("", when).as_bytes())?;
    let mut quoter = Quoter::default();
    let mut q: Vec<u8> = Vec::with_capacity(BUF);
    let mut in_header = true;
    let mut skip = false;
    // The message is read a line at a time (a piece of at most MAX_PIECE), never whole.
    let mut piece: Vec<u8> = Vec::with_capacity(256);
    let mut last = None; // the last octet of the message
    let mut mid_line = false; // the previous piece ended inside a line
    loop {
        piece.clear();
        if message.take(MAX_PIECE).read_until(b'\n', &mut piece)? == 0 {
            break;
        }
        last = piece.last().copied();
        let line = &piece[..];
        let continued = std::mem::replace(&mut mid_line, line.last() != Some(&b'\n'));
        let body = line.strip_suffix(b"\n").map(|l| l.strip_suffix(b"\r").unwrap_or(l));
        if in_header && continued {
            // The rest of a long header line: as its start was.
            if skip {
                continue;
            }
        } else if in_header {
            match classify(line) {
                HeaderLine::Blank => {
                    in_header = false;
                    skip = false;
                    quoter.feed(headers.as_bytes(), &mut q);
                }
                HeaderLine::Continuation => {}
                HeaderLine::Field(f) => skip = f.is_some(),
            }
            if skip {
                continue;
            }
        }
        match body {
            Some(b) => {
                quoter.feed(b, &mut q);
                quoter.feed(b"\n", &mut q);
            }
            None => quoter.feed(line, &mut q),
        }
        if q.len() >= BUF {
            out.put(&q)?;
            q.clear();
        }
    }
    quoter.finish(&mut q);
    if last.is_some_and(|b| b != b'\n') {
        q.push(b'\n');
    }
    if in_header {
        // A message that is all header: ours go at its end.
        q.extend_from_slice(headers.as_bytes());
    }
    q.push(b'\n');
    out.put(&q)?;
    out.flush()
}
