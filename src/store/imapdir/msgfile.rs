//! One Maildir message file: its name (cr.yp.to/proto/maildir.html: `<base>:2,<flags>`, Dovecot's
//! `,S=`/`,W=` sizes and `a..z` keyword letters), LF<->CRLF conversion and CRLF sizes (RFC 3501
//! RFC822.SIZE counts CRLF octets), and durable small-file writes.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::store::folder::{ANSWERED, DELETED, DRAFT, FLAGGED, Flags, FolderError, SEEN};

/// Streaming buffer for reading message files.
const BUF: usize = 64 * 1024;

/// Keyword letters a folder can map (Dovecot: `a`..`z`, index 0 = `a`).
pub const MAX_KEYWORDS: usize = 26;

/// System flags and their Maildir letters, in ASCII order (the order names carry them).
const LETTERS: [(char, u8); 5] = [('D', DRAFT), ('F', FLAGGED), ('R', ANSWERED), ('S', SEEN), ('T', DELETED)];

/// An I/O error as a FolderError, with what failed and where (for the log).
pub fn temp(what: &str, path: &Path, e: &io::Error) -> FolderError {
    FolderError::Temp(format!("{what} {}: {e}", path.display()))
}

/// The base name: everything before the first ':' (what the uidlist keys on).
pub fn base_of(name: &str) -> &str {
    name.split(':').next().unwrap_or(name)
}

/// The flag letters after ":2,", if the name has an info part of version 2.
pub fn info_of(name: &str) -> Option<&str> {
    name.find(":2,").map(|i| &name[i + 3..])
}

/// Dovecot's ",W=<n>" (the CRLF size) in a base name.
pub fn w_size(name: &str) -> Option<u64> {
    base_of(name).split(',').skip(1).find_map(|f| f.strip_prefix("W=")).and_then(|n| n.parse().ok())
}

/// RFC 2180 4.1.1: an expunged message's file waits in tmp/ under this suffix, readable by the
/// sessions not yet told of the expunge, for [`HOLD_EXPUNGED`]; every Maildir reader ignores tmp/.
pub const HELD_SUFFIX: &str = ":expunged";
/// How long an expunged message stays readable (the sweep after an expunge or a SELECT removes it
/// after that). A session told of the expunge never asks again; one that has not been told for
/// this long (no NOOP, no IDLE, no command that may announce it) gets NO [EXPUNGEISSUED].
pub const HOLD_EXPUNGED: std::time::Duration = std::time::Duration::from_secs(10 * 60);

/// Where the expunged message with base name `base` waits.
pub fn held_path(dir: &Path, base: &str) -> std::path::PathBuf {
    dir.join("tmp").join(format!("{base}{HELD_SUFFIX}"))
}

/// Expunges the file at `path` (base name `base`) of the Maildir `dir`: it moves to tmp/ (a
/// rename: one directory entry written, as an unlink) and is removed by [`sweep_held`] later.
/// Where it cannot move (tmp/ missing), it is removed at once.
pub fn expunge_file(dir: &Path, path: &Path, base: &str) -> io::Result<()> {
    match fs::rename(path, held_path(dir, base)) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound && path.exists() => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(e),
        Err(_) => fs::remove_file(path),
    }
}

/// Removes the expunged files of `dir` held for longer than `hold` (their ctime is the time of
/// the move); returns how many.
pub fn sweep_held(dir: &Path, hold: std::time::Duration) -> usize {
    use std::os::unix::fs::MetadataExt;
    let tmp = dir.join("tmp");
    let Ok(entries) = fs::read_dir(&tmp) else { return 0 };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let limit = i64::try_from(hold.as_secs()).unwrap_or(i64::MAX);
    let mut n = 0;
    for e in entries.flatten() {
        let name = e.file_name();
        if !name.to_str().is_some_and(|s| s.ends_with(HELD_SUFFIX)) {
            continue;
        }
        let Ok(meta) = e.metadata() else { continue };
        if now.saturating_sub(meta.ctime()) >= limit && fs::remove_file(e.path()).is_ok() {
            n += 1;
        }
    }
    n
}

/// Dovecot's ",S=<n>" (the size on disk) in a base name.
pub fn s_size(name: &str) -> Option<u64> {
    base_of(name).split(',').skip(1).find_map(|f| f.strip_prefix("S=")).and_then(|n| n.parse().ok())
}

/// A file stored as it came, CRLF and all, not with LF line ends: its name says so with equal
/// ",S=" and ",W=" sizes (which is also true of a file with no line end at all, where the two
/// readings are the same). buzon stores so a message APPENDed as a literal8 (RFC 3516 4.4) that
/// has a bare LF, which LF storage cannot give back; Dovecot's `mail_save_crlf = yes` files are
/// read the same way.
pub fn stored_raw(name: &str) -> bool {
    matches!((s_size(name), w_size(name)), (Some(s), Some(w)) if s == w)
}

/// The leading decimal number of a name (delivery time in seconds), for arrival order.
pub fn leading_number(name: &str) -> u64 {
    let digits = name.bytes().take_while(u8::is_ascii_digit).count();
    name.get(..digits).and_then(|d| d.parse().ok()).unwrap_or(u64::MAX)
}

/// The order files were delivered in, from a Maildir name `<secs>.M<usecs>P<pid>Q<n>.<host>` (and the
/// older `<secs>.<pid>_<n>.<host>`): seconds, then microseconds and the counter as numbers (they
/// carry no leading zeros, so text order would put M99999 after M100000), then the name.
pub fn delivery_key(name: &str) -> (u64, u64, u64) {
    let secs = leading_number(name);
    let Some((_, rest)) = name.split_once('.') else { return (secs, 0, 0) };
    let unique = rest.split('.').next().unwrap_or("");
    let num_after = |tag: char| -> u64 {
        unique
            .find(tag)
            .map(|i| &unique[i + 1..])
            .map(|t| {
                t.bytes()
                    .take_while(u8::is_ascii_digit)
                    .fold(0u64, |n, d| n.saturating_mul(10).saturating_add(u64::from(d - b'0')))
            })
            .unwrap_or(0)
    };
    (secs, num_after('M'), num_after('Q'))
}

/// A name we can keep in a uidlist line and a Rust string: no dot file, no control characters.
pub fn usable_name(name: &str) -> bool {
    !name.is_empty() && !name.starts_with('.') && !name.chars().any(|c| c.is_control())
}

/// Flags from a file name's info letters; `keywords[i]` is letter `a + i`. Letters we do not model
/// (`P` passed, keywords without a mapping) are left out.
pub fn flags_from_name(name: &str, keywords: &[String]) -> Flags {
    let mut f = Flags::default();
    let Some(info) = info_of(name) else { return f };
    for c in info.chars() {
        if let Some(&(_, bit)) = LETTERS.iter().find(|(l, _)| *l == c) {
            f.system |= bit;
        } else if c.is_ascii_lowercase()
            && let Some(k) = keywords.get(usize::from(c as u8 - b'a')).filter(|k| !k.is_empty())
        {
            f.keywords.push(k.clone());
        }
    }
    f.keywords.sort();
    f.keywords.dedup();
    f
}

/// Info letters not modelled by [`Flags`] (kept on rename): uppercase other than DFRST, and
/// lowercase letters without a keyword.
pub fn extra_letters(name: &str, keywords: &[String]) -> String {
    let Some(info) = info_of(name) else { return String::new() };
    info.chars()
        .filter(|&c| {
            (c.is_ascii_uppercase() && !LETTERS.iter().any(|(l, _)| *l == c))
                || (c.is_ascii_lowercase()
                    && keywords.get(usize::from(c as u8 - b'a')).is_none_or(|k| k.is_empty()))
        })
        .collect()
}

/// Index of a keyword in the folder's list (IMAP keywords compare case-insensitively here, so
/// `$Junk` and `$junk` share a letter).
pub fn keyword_index(keywords: &[String], k: &str) -> Option<usize> {
    keywords.iter().position(|x| x.eq_ignore_ascii_case(k))
}

/// The file name for `base` with `flags` (all keywords must be mapped) plus `extra` letters: the
/// letters sorted in ASCII order, as Dovecot writes them.
pub fn name_with_flags(base: &str, flags: &Flags, keywords: &[String], extra: &str) -> String {
    let mut letters: Vec<char> = extra.chars().collect();
    for (l, bit) in LETTERS {
        if flags.system & bit != 0 {
            letters.push(l);
        }
    }
    for k in &flags.keywords {
        if let Some(i) = keyword_index(keywords, k).and_then(|i| u8::try_from(i).ok()) {
            letters.push(char::from(b'a' + i));
        }
    }
    letters.sort_unstable();
    letters.dedup();
    let mut out = String::with_capacity(base.len() + 3 + letters.len());
    out.push_str(base);
    out.push_str(":2,");
    out.extend(letters);
    out
}

/// Applies a STORE operation.
pub fn apply(op: crate::store::folder::FlagOp, old: &Flags, arg: &Flags) -> Flags {
    use crate::store::folder::FlagOp;
    let mut f = match op {
        FlagOp::Replace => arg.clone(),
        FlagOp::Add => {
            let mut f = old.clone();
            f.system |= arg.system;
            for k in &arg.keywords {
                if !f.keywords.iter().any(|x| x.eq_ignore_ascii_case(k)) {
                    f.keywords.push(k.clone());
                }
            }
            f
        }
        FlagOp::Remove => {
            let mut f = old.clone();
            f.system &= !arg.system;
            f.keywords.retain(|x| !arg.keywords.iter().any(|k| k.eq_ignore_ascii_case(x)));
            f
        }
    };
    f.keywords.sort();
    f.keywords.dedup();
    f
}

/// Counts the CRLF size of stored bytes: every LF not already after a CR gains one.
#[derive(Default)]
pub struct CrlfCounter {
    pub size: u64,
    prev_cr: bool,
}

impl CrlfCounter {
    pub fn feed(&mut self, buf: &[u8]) {
        self.size += buf.len() as u64;
        for &b in buf {
            if b == b'\n' && !self.prev_cr {
                self.size += 1;
            }
            self.prev_cr = b == b'\r';
        }
    }
}

/// The CRLF size of a stored message file (read once, streaming).
pub fn crlf_size(path: &Path) -> io::Result<u64> {
    let mut f = File::open(path)?;
    let mut buf = vec![0u8; BUF];
    let mut c = CrlfCounter::default();
    loop {
        let n = match f.read(&mut buf) {
            Ok(0) => return Ok(c.size),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        c.feed(buf.get(..n).unwrap_or_default());
    }
}

/// Reads a message file with CRLF line ends: an LF gains a CR unless one is already there; a bare
/// CR stays as it is. `header_only`: stop after the blank line ending the header.
pub fn read_crlf(path: &Path, header_only: bool) -> io::Result<Vec<u8>> {
    let raw = path.file_name().and_then(|n| n.to_str()).is_some_and(stored_raw);
    let f = File::open(path)?;
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let cap = if header_only { len.min(8192) } else { len + len / 32 };
    let mut out = Vec::with_capacity(usize::try_from(cap).unwrap_or(0));
    let mut r = BufReader::with_capacity(BUF.min(usize::try_from(len).unwrap_or(BUF).max(512)), f);
    let mut line = Vec::new();
    let mut prev_cr = false;
    loop {
        line.clear();
        // Bounded fragments: a line without LF is read in pieces of at most BUF.
        let n = (&mut r).take(BUF as u64).read_until(b'\n', &mut line)?;
        if n == 0 {
            return Ok(out);
        }
        let at_line_start = out.is_empty() || out.last() == Some(&b'\n');
        if let Some(body) = line.strip_suffix(b"\n") {
            out.extend_from_slice(body);
            let cr_before = match body.last() {
                Some(&b) => b == b'\r',
                None => prev_cr,
            };
            if !cr_before && !raw {
                out.push(b'\r');
            }
            out.push(b'\n');
            prev_cr = false;
            if header_only && at_line_start && (body.is_empty() || body == b"\r") {
                return Ok(out);
            }
        } else {
            out.extend_from_slice(&line);
            prev_cr = line.last() == Some(&b'\r');
        }
    }
}

/// A stored message read with CRLF line ends, as [`read_crlf`] gives it, in pieces: an LF gains
/// a CR unless one is already there; a bare CR stays as it is.
pub struct CrlfReader<R> {
    inner: R,
    /// The file is stored as it came ([`stored_raw`]): passed through.
    raw: bool,
    buf: Vec<u8>,
    prev_cr: bool,
    /// A CR was sent and its LF did not fit.
    pending_lf: bool,
}

impl<R: Read> CrlfReader<R> {
    pub fn new(inner: R) -> Self {
        CrlfReader { inner, raw: false, buf: vec![0; BUF / 2], prev_cr: false, pending_lf: false }
    }

    /// The reader for the message file at `path` (raw when its name says so).
    pub fn for_file(inner: R, path: &Path) -> Self {
        let raw = path.file_name().and_then(|n| n.to_str()).is_some_and(stored_raw);
        CrlfReader { raw, ..Self::new(inner) }
    }
}

impl<R: Read> Read for CrlfReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.raw {
            return self.inner.read(buf);
        }
        let mut n = 0;
        if self.pending_lf {
            let Some(b) = buf.first_mut() else { return Ok(0) };
            *b = b'\n';
            self.pending_lf = false;
            n = 1;
        }
        // Each stored octet becomes at most two: read no more than half the room (at least one).
        let want = (buf.len().saturating_sub(n) / 2).clamp(1, self.buf.len());
        if n == buf.len() {
            return Ok(n);
        }
        let got = match self.inner.read(self.buf.get_mut(..want).unwrap_or_default()) {
            Ok(g) => g,
            Err(e) if n > 0 && e.kind() == io::ErrorKind::Interrupted => 0,
            Err(e) => return Err(e),
        };
        for &b in self.buf.get(..got).unwrap_or_default() {
            if b == b'\n' && !self.prev_cr {
                if let Some(slot) = buf.get_mut(n) {
                    *slot = b'\r';
                    n += 1;
                }
                match buf.get_mut(n) {
                    Some(slot) => {
                        *slot = b'\n';
                        n += 1;
                    }
                    None => self.pending_lf = true,
                }
            } else if let Some(slot) = buf.get_mut(n) {
                *slot = b;
                n += 1;
            }
            self.prev_cr = b == b'\r';
        }
        Ok(n)
    }
}

/// Converts a message for storage with LF line ends: CRLF becomes LF, except after another CR
/// (that CR pair is kept as it is, so [`read_crlf`] gives the same bytes back); bare LF and bare CR
/// stay. Calls `out` with consecutive pieces.
pub fn to_lf(msg: &[u8], mut out: impl FnMut(&[u8]) -> io::Result<()>) -> io::Result<()> {
    let mut start = 0;
    let mut i = 0;
    while let Some(off) = msg.get(i..).and_then(|s| s.iter().position(|&b| b == b'\n')) {
        let lf = i + off;
        // msg[lf-1] == '\r' and msg[lf-2] != '\r': drop that CR.
        let drop_cr =
            lf >= 1 && msg.get(lf - 1) == Some(&b'\r') && (lf < 2 || msg.get(lf - 2) != Some(&b'\r'));
        if drop_cr {
            out(msg.get(start..lf - 1).unwrap_or_default())?;
            start = lf;
        }
        i = lf + 1;
    }
    out(msg.get(start..).unwrap_or_default())
}

/// LF size and CRLF size of `msg` once stored by [`to_lf`].
pub fn stored_sizes(msg: &[u8]) -> (u64, u64) {
    let mut lf = 0u64;
    let mut c = CrlfCounter::default();
    let _ = to_lf(msg, |p| {
        lf += p.len() as u64;
        c.feed(p);
        Ok(())
    });
    (lf, c.size)
}

/// Creates `path` (O_EXCL, 0600) with `msg` stored with LF line ends, fsynced, mtime `date`.
pub fn write_message(path: &Path, msg: &[u8], date: Option<i64>) -> io::Result<()> {
    let f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)?;
    let result = (|| {
        let mut w = io::BufWriter::with_capacity(BUF, &f);
        to_lf(msg, |p| w.write_all(p))?;
        w.flush()?;
        drop(w);
        if let Some(t) = date.and_then(epoch_time) {
            f.set_modified(t)?;
        }
        f.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(path);
    }
    result
}

/// Seconds since the epoch as a SystemTime (None when out of range).
pub fn epoch_time(secs: i64) -> Option<std::time::SystemTime> {
    let d = std::time::Duration::from_secs(secs.unsigned_abs());
    if secs >= 0 { std::time::UNIX_EPOCH.checked_add(d) } else { std::time::UNIX_EPOCH.checked_sub(d) }
}

/// Durable replacement of a small file: `<dir>/<tmp>` written, fsynced, renamed to `<dir>/<name>`,
/// directory fsynced.
pub fn write_durably(dir: &Path, name: &str, tmp: &str, contents: &[u8]) -> Result<(), FolderError> {
    let path = dir.join(name);
    crate::durable::write_via(&dir.join(tmp), &path, crate::durable::Place::Replace, 0o600, |f| {
        f.write_all(contents)
    })
    .map_err(|e| temp("cannot write", &path, &e))
}

/// fsync a directory so that entries created, renamed or removed in it are on disk.
pub fn fsync_dir(dir: &Path) -> Result<(), FolderError> {
    crate::durable::fsync_dir(dir).map_err(|e| temp("cannot fsync directory", dir, &e))
}

/// Moves `from` to `to` without replacing an existing `to` (durable.rs).
pub fn move_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    crate::durable::move_noreplace(from, to)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::folder::FlagOp;

    fn crlf_of(stored: &[u8]) -> Vec<u8> {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("m");
        fs::write(&p, stored).unwrap();
        let r = read_crlf(&p, false).unwrap();
        assert_eq!(crlf_size(&p).unwrap(), r.len() as u64, "{stored:?}");
        r
    }

    #[test]
    fn crlf_reader_matches_read_crlf() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m");
        let mut m: Vec<u8> = Vec::new();
        for i in 0..20_000u32 {
            m.extend_from_slice(format!("line {i}").as_bytes());
            m.extend_from_slice(match i % 4 {
                0 => b"\n",
                1 => b"\r\n",
                2 => b"\r",
                _ => b"\n\n",
            });
        }
        fs::write(&p, &m).unwrap();
        let want = read_crlf(&p, false).unwrap();
        // Any read size, down to one octet at a time (the CR of a CRLF may end a read).
        for size in [1, 2, 3, 7, 4096, 1 << 20] {
            let mut r = CrlfReader::new(File::open(&p).unwrap());
            let mut got = Vec::new();
            let mut buf = vec![0u8; size];
            loop {
                let n = r.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
            assert!(got == want, "read size {size}");
        }
    }

    #[test]
    fn crlf_conversion_table() {
        let cases: [(&[u8], &[u8]); 8] = [
            (b"a\nb\n", b"a\r\nb\r\n"),
            (b"a\r\nb\r\n", b"a\r\nb\r\n"),
            (b"a\rb\n", b"a\rb\r\n"),
            (b"a\r\r\n", b"a\r\r\n"),
            (b"no end", b"no end"),
            (b"\n\n", b"\r\n\r\n"),
            (b"", b""),
            (b"mixed\r\nlf\nend", b"mixed\r\nlf\r\nend"),
        ];
        for (stored, want) in cases {
            assert_eq!(crlf_of(stored), want, "{stored:?}");
        }
    }

    #[test]
    fn long_lines_split_across_fragments_keep_cr() {
        let mut m = vec![b'x'; BUF - 1];
        m.extend_from_slice(b"\r\nnext\n");
        let r = crlf_of(&m);
        assert!(r.ends_with(b"x\r\nnext\r\n"));
        assert_eq!(r.len(), m.len() + 1);
    }

    #[test]
    fn header_only_stops_at_blank_line() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("m");
        fs::write(&p, b"A: 1\nB: 2\n\nbody\n\nmore\n").unwrap();
        assert_eq!(read_crlf(&p, true).unwrap(), b"A: 1\r\nB: 2\r\n\r\n");
        fs::write(&p, b"A: 1\r\n\r\nbody").unwrap();
        assert_eq!(read_crlf(&p, true).unwrap(), b"A: 1\r\n\r\n");
        fs::write(&p, b"A: 1").unwrap();
        assert_eq!(read_crlf(&p, true).unwrap(), b"A: 1");
    }

    #[test]
    fn store_and_read_back_round_trip() {
        let d = tempfile::tempdir().unwrap();
        let cases: [&[u8]; 5] =
            [b"A: b\r\n\r\nbody\r\n", b"x\r\r\n", b"\r\nstart", b"cr only\r", b"a\r\nb\r\r\r\nc\r\n"];
        for (i, m) in cases.iter().enumerate() {
            let p = d.path().join(format!("m{i}"));
            write_message(&p, m, Some(1_000_000_000)).unwrap();
            let (lf, crlf) = stored_sizes(m);
            assert_eq!(fs::metadata(&p).unwrap().len(), lf);
            assert_eq!(read_crlf(&p, false).unwrap(), *m, "{m:?}");
            assert_eq!(crlf, m.len() as u64);
            let mtime = fs::metadata(&p).unwrap().modified().unwrap();
            assert_eq!(mtime, epoch_time(1_000_000_000).unwrap());
        }
        assert_eq!(fs::read(d.path().join("m0")).unwrap(), b"A: b\n\nbody\n");
    }

    #[test]
    fn names_and_flags() {
        let kw = vec!["$Forwarded".to_string(), "work".to_string()];
        let n = "1700000000.M1P2Q3.host,S=10,W=12:2,FPSab";
        assert_eq!(base_of(n), "1700000000.M1P2Q3.host,S=10,W=12");
        assert_eq!(w_size(n), Some(12));
        assert_eq!(w_size("1.x,S=3:2,S"), None);
        let f = flags_from_name(n, &kw);
        assert_eq!(f.system, FLAGGED | SEEN);
        assert_eq!(f.keywords, vec!["$Forwarded", "work"]);
        assert_eq!(extra_letters(n, &kw), "P");
        assert_eq!(extra_letters("x:2,Sc", &kw), "c");
        let f2 = apply(FlagOp::Add, &f, &Flags { system: DELETED, keywords: vec![] });
        assert_eq!(name_with_flags(base_of(n), &f2, &kw, "P"), "1700000000.M1P2Q3.host,S=10,W=12:2,FPSTab");
        let f3 = apply(FlagOp::Remove, &f2, &Flags { system: SEEN, keywords: vec!["WORK".into()] });
        assert_eq!(f3.keywords, vec!["$Forwarded"]);
        assert_eq!(name_with_flags("b", &f3, &kw, ""), "b:2,FTa");
        assert_eq!(flags_from_name("b", &kw), Flags::default());
        assert_eq!(leading_number("123.abc"), 123);
        assert_eq!(leading_number("abc"), u64::MAX);
        assert!(!usable_name(".x") && !usable_name("a\nb") && usable_name("1.a b"));
    }

    #[test]
    fn a_file_named_with_equal_sizes_is_read_as_it_is() {
        let d = tempfile::tempdir().unwrap();
        let msg: &[u8] = b"A: 1\r\n\r\nab\ncd\nx\r\n";
        let name = format!("1.M1P1.h,S={},W={}:2,S", msg.len(), msg.len());
        assert!(stored_raw(&name));
        assert!(!stored_raw("1.M1P1.h,S=10,W=12:2,S") && !stored_raw("1.M1P1.h:2,"));
        let p = d.path().join(&name);
        fs::write(&p, msg).unwrap();
        assert_eq!(read_crlf(&p, false).unwrap(), msg);
        assert_eq!(read_crlf(&p, true).unwrap(), b"A: 1\r\n\r\n");
        let mut got = Vec::new();
        CrlfReader::for_file(File::open(&p).unwrap(), &p).read_to_end(&mut got).unwrap();
        assert_eq!(got, msg);
    }
}

#[cfg(test)]
mod order_tests {
    use super::delivery_key;

    #[test]
    fn delivery_order_is_numeric() {
        let mut names = vec![
            "1700000010.M1P7Q11.h",
            "1700000001.M10P7Q10.h",
            "1700000000.M100000P7Q2.h",
            "1700000001.M5P7Q3.h",
            "1700000000.M99999P7Q1.h",
        ];
        names.sort_by_key(|n| (delivery_key(n), n.to_string()));
        assert_eq!(
            names,
            [
                "1700000000.M99999P7Q1.h",
                "1700000000.M100000P7Q2.h",
                "1700000001.M5P7Q3.h",
                "1700000001.M10P7Q10.h",
                "1700000010.M1P7Q11.h"
            ]
        );
        assert_eq!(delivery_key("garbage"), (u64::MAX, 0, 0));
    }
}
