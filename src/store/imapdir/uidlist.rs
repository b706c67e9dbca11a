//! Dovecot's per-folder state files, read and written in Dovecot's own formats so that a Dovecot
//! user's Maildir keeps its UIDs and keywords: `dovecot-uidlist` (version 3, "3 V<uidvalidity>
//! N<uidnext>" then "<uid> [W<crlfsize>] :<base name>"; version 1 is read too), `dovecot-keywords`
//! ("<index> <keyword>", index 0 = letter a) and the root's `dovecot-uidvalidity` (hex counter).
//! RFC 3501 2.3.1.1: UIDs strictly ascend and are never reused within one UIDVALIDITY.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use super::msgfile::{MAX_KEYWORDS, base_of, temp, write_durably};
use crate::store::folder::{FolderError, Uid};

pub const UIDLIST: &str = "dovecot-uidlist";
const UIDLIST_TMP: &str = "dovecot-uidlist.buzon-tmp";
pub const KEYWORDS: &str = "dovecot-keywords";
const KEYWORDS_TMP: &str = "dovecot-keywords.buzon-tmp";
const UIDVALIDITY: &str = "dovecot-uidvalidity";
/// Longest uidlist line accepted (a file name is at most 255 bytes; extensions are short).
const MAX_LINE: u64 = 4096;

/// One message the list knows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub uid: Uid,
    /// The file name up to the first ':'.
    pub base: String,
    /// The CRLF size (`W` extension), when recorded.
    pub w: Option<u64>,
}

/// A folder's uidlist.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UidList {
    pub validity: u32,
    /// The next UID to give: the header's N, or one past the last entry if that is higher
    /// (entries are appended without rewriting the header, as Dovecot does).
    pub next: Uid,
    /// Header fields other than V and N (Dovecot's G<guid>...), kept as they were.
    pub extra: String,
    pub entries: Vec<Entry>,
    /// The last UID listed (0: none).
    pub last_uid: Uid,
    /// The file must be rewritten rather than appended to (torn last line, old version, fields
    /// dropped).
    pub rewrite: bool,
}

/// What reading the list found.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadList {
    Ok(UidList),
    Missing,
    /// Unusable; the UIDVALIDITY it had, when the header could still be read.
    Corrupt(Option<u32>),
}

/// Reads `<dir>/dovecot-uidlist`. Without `keep_entries` only the header and the last UID are kept
/// (APPEND needs no more), but every line is still checked.
pub fn read(dir: &Path, keep_entries: bool) -> Result<ReadList, FolderError> {
    let path = dir.join(UIDLIST);
    let f = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(ReadList::Missing),
        Err(e) => return Err(temp("cannot open", &path, &e)),
    };
    let mut r = BufReader::new(f);
    let mut line = Vec::new();
    let io_err = |e: io::Error| temp("cannot read", &path, &e);
    if !read_line(&mut r, &mut line).map_err(io_err)? {
        return Ok(ReadList::Corrupt(None));
    }
    let Some(mut list) = std::str::from_utf8(&line).ok().and_then(parse_header) else {
        log::warn!("imap: corrupt uidlist header path={}", path.display());
        return Ok(ReadList::Corrupt(None));
    };
    let v1 = list.rewrite; // parse_header marks version 1 for rewriting
    loop {
        line.clear();
        let complete = match (&mut r).take(MAX_LINE).read_until(b'\n', &mut line) {
            Ok(0) => break,
            Ok(_) => line.last() == Some(&b'\n'),
            Err(e) => return Err(io_err(e)),
        };
        if !complete {
            // A torn append (crash mid-write) or an absurd line: nothing after it is trusted.
            if line.len() as u64 >= MAX_LINE {
                return Ok(ReadList::Corrupt(Some(list.validity)));
            }
            log::warn!("imap: incomplete last line in uidlist path={}", path.display());
            list.rewrite = true;
            break;
        }
        line.pop();
        let Ok(text) = std::str::from_utf8(&line) else {
            // A file name that is not UTF-8: such files are skipped, so is their line.
            list.rewrite = true;
            continue;
        };
        let Some((entry, dropped)) = parse_entry(text, v1) else {
            log::warn!("imap: corrupt uidlist line path={} line={text:?}", path.display());
            return Ok(ReadList::Corrupt(Some(list.validity)));
        };
        if entry.uid <= list.last_uid {
            log::warn!("imap: uidlist UIDs not ascending path={} uid={}", path.display(), entry.uid);
            return Ok(ReadList::Corrupt(Some(list.validity)));
        }
        list.rewrite |= dropped;
        list.last_uid = entry.uid;
        if keep_entries {
            list.entries.push(entry);
        }
    }
    if list.last_uid == Uid::MAX {
        return Ok(ReadList::Corrupt(Some(list.validity)));
    }
    list.next = list.next.max(list.last_uid + 1);
    Ok(ReadList::Ok(list))
}

/// A line of at most MAX_LINE bytes; false at end of file.
fn read_line(r: &mut impl BufRead, line: &mut Vec<u8>) -> io::Result<bool> {
    line.clear();
    let n = r.take(MAX_LINE).read_until(b'\n', line)?;
    if line.last() == Some(&b'\n') {
        line.pop();
    }
    Ok(n > 0)
}

/// "3 V<validity> N<next> [more]" or version 1's "1 <validity> <next>".
fn parse_header(s: &str) -> Option<UidList> {
    let mut it = s.split(' ');
    let mut list = UidList { next: 1, ..UidList::default() };
    match it.next()? {
        "3" => {
            for field in it.filter(|f| !f.is_empty()) {
                let mut chars = field.chars();
                let key = chars.next();
                let value = chars.as_str();
                match key {
                    Some('V') => list.validity = value.parse().ok()?,
                    Some('N') => list.next = value.parse().ok()?,
                    _ => {
                        list.extra.push(' ');
                        list.extra.push_str(field);
                    }
                }
            }
        }
        "1" => {
            list.validity = it.next()?.parse().ok()?;
            list.next = it.next()?.parse().ok()?;
            list.rewrite = true;
        }
        _ => return None,
    }
    (list.validity != 0 && list.next != 0).then_some(list)
}

/// "<uid> [<key><value> ...] :<file name>" (version 3) or "<uid> <file name>" (version 1); the
/// bool says that extension fields were dropped.
fn parse_entry(s: &str, v1: bool) -> Option<(Entry, bool)> {
    let (uid, mut rest) = s.split_once(' ')?;
    let uid: Uid = uid.parse().ok().filter(|&u| u != 0)?;
    let mut w = None;
    let mut dropped = false;
    let name = if v1 {
        rest
    } else {
        loop {
            rest = rest.trim_start_matches(' ');
            if let Some(name) = rest.strip_prefix(':') {
                break name;
            }
            let (field, more) = rest.split_once(' ').unwrap_or((rest, ""));
            let mut chars = field.chars();
            match chars.next() {
                Some('W') => w = Some(chars.as_str().parse().ok()?),
                Some(c) if c.is_ascii_uppercase() => dropped = true,
                _ => return None,
            }
            rest = more;
        }
    };
    if name.is_empty() || name.contains('/') {
        return None;
    }
    Some((Entry { uid, base: base_of(name).to_string(), w }, dropped))
}

fn header_line(list: &UidList) -> String {
    format!("3 V{} N{}{}\n", list.validity, list.next, list.extra)
}

fn entry_line(e: &Entry, out: &mut String) {
    use std::fmt::Write as _;
    let _ = match e.w {
        Some(w) => writeln!(out, "{} W{w} :{}", e.uid, e.base),
        None => writeln!(out, "{} :{}", e.uid, e.base),
    };
}

/// Rewrites the whole list durably (temp file, fsync, rename, fsync the directory).
pub fn write(dir: &Path, list: &UidList) -> Result<(), FolderError> {
    let mut s = header_line(list);
    for e in &list.entries {
        entry_line(e, &mut s);
    }
    write_durably(dir, UIDLIST, UIDLIST_TMP, s.as_bytes())
}

/// Appends entries to an existing, intact list and fsyncs it (the caller holds the lock; readers
/// take the lock too, so none sees a half-written line).
pub fn append(dir: &Path, entries: &[Entry]) -> Result<(), FolderError> {
    let path = dir.join(UIDLIST);
    let mut s = String::new();
    for e in entries {
        entry_line(e, &mut s);
    }
    let r = OpenOptions::new()
        .append(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&path)
        .and_then(|mut f| f.write_all(s.as_bytes()).and_then(|()| f.sync_data()));
    r.map_err(|e| temp("cannot append to", &path, &e))
}

/// The entries appended to the list between byte offsets `from` and `to`, read without the lock
/// (the quick sync, folder/quick.rs): None unless the file is still inode `ino`, at least `to`
/// bytes long, and the range is whole version 3 entry lines with ascending UIDs (a line still
/// being written, a list rewritten, anything odd: the caller scans under the lock instead).
pub fn read_appended(dir: &Path, ino: u64, from: u64, to: u64) -> Result<Option<Vec<Entry>>, FolderError> {
    use std::io::{Seek, SeekFrom};
    use std::os::unix::fs::MetadataExt;
    let path = dir.join(UIDLIST);
    let io_err = |e: io::Error| temp("cannot read", &path, &e);
    let mut f = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(e)),
    };
    let meta = f.metadata().map_err(io_err)?;
    if meta.ino() != ino || meta.len() < to || to < from || to - from > 1 << 20 {
        return Ok(None);
    }
    f.seek(SeekFrom::Start(from)).map_err(io_err)?;
    let mut bytes = Vec::new();
    f.take(to - from).read_to_end(&mut bytes).map_err(io_err)?;
    if bytes.len() as u64 != to - from || bytes.last().is_some_and(|&b| b != b'\n') {
        return Ok(None);
    }
    let Ok(text) = std::str::from_utf8(&bytes) else { return Ok(None) };
    let mut out: Vec<Entry> = Vec::new();
    for line in text.lines() {
        let Some((entry, false)) = parse_entry(line, false) else { return Ok(None) };
        if out.last().is_some_and(|l| l.uid >= entry.uid) {
            return Ok(None);
        }
        out.push(entry);
    }
    Ok(Some(out))
}

/// `<dir>/dovecot-keywords` as a list indexed by letter (`""` for unused indexes).
pub fn read_keywords(dir: &Path) -> Result<Vec<String>, FolderError> {
    let path = dir.join(KEYWORDS);
    let text = match fs::File::open(&path) {
        Ok(f) => {
            let mut s = String::new();
            f.take(64 * 1024).read_to_string(&mut s).map_err(|e| temp("cannot read", &path, &e))?;
            s
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(temp("cannot open", &path, &e)),
    };
    let mut out: Vec<String> = Vec::new();
    for line in text.lines() {
        let Some((idx, name)) = line.split_once(' ') else { continue };
        let Ok(idx) = idx.parse::<usize>() else { continue };
        if idx >= MAX_KEYWORDS || !valid_keyword(name) || out.iter().any(|k| k.eq_ignore_ascii_case(name)) {
            continue;
        }
        if out.len() <= idx {
            out.resize(idx + 1, String::new());
        }
        if let Some(slot) = out.get_mut(idx) {
            *slot = name.to_string();
        }
    }
    Ok(out)
}

/// An IMAP flag-keyword atom (RFC 3501 9: atom, no '\\' at the start).
pub fn valid_keyword(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= 255
        && !k.starts_with('\\')
        && k.bytes().all(|b| b > 0x20 && b < 0x7f && !b"(){%*\"\\]".contains(&b))
}

pub fn write_keywords(dir: &Path, keywords: &[String]) -> Result<(), FolderError> {
    let mut s = String::new();
    for (i, k) in keywords.iter().enumerate().filter(|(_, k)| !k.is_empty()) {
        s.push_str(&format!("{i} {k}\n"));
    }
    write_durably(dir, KEYWORDS, KEYWORDS_TMP, s.as_bytes())
}

/// A fresh UIDVALIDITY: the current time, but above every value this root gave before (so a
/// folder deleted and created again within one second still changes it, RFC 3501 2.3.1.1) and
/// above `above`. Kept in `<root>/dovecot-uidvalidity` in hex, as Dovecot does.
pub fn next_uidvalidity(root: &Path, above: u32) -> u32 {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(1);
    let now = u32::try_from(now).unwrap_or(u32::MAX - 1);
    let last = fs::read_to_string(root.join(UIDVALIDITY))
        .ok()
        .and_then(|s| u32::from_str_radix(s.trim(), 16).ok())
        .unwrap_or(0);
    let v = now.max(last.saturating_add(1)).max(above.saturating_add(1)).max(1);
    let tmp = format!("{UIDVALIDITY}.buzon-tmp.{}", std::process::id());
    if let Err(e) = write_durably(root, UIDVALIDITY, &tmp, format!("{v:08x}").as_bytes()) {
        log::warn!("imap: cannot record uidvalidity root={} error={e}", root.display());
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(uid: Uid, base: &str, w: Option<u64>) -> Entry {
        Entry { uid, base: base.into(), w }
    }

    #[test]
    fn reads_dovecot_written_list() {
        let d = tempfile::tempdir().unwrap();
        // As Dovecot 2.3 writes it: full names with flags on some lines, extension fields.
        fs::write(
            d.path().join(UIDLIST),
            "3 V1275660208 N25022 G3085f01b7f11094c501100008c4a11c1\n\
             25006 :1276528487.M364837P9451.kurkku,S=1355,W=1394:2,\n\
             25017 W2481 :1276533073.M242911P3632.kurkku:2,F\n\
             25018 S100 W120 :1276533074.M1P1.kurkku\n",
        )
        .unwrap();
        let ReadList::Ok(l) = read(d.path(), true).unwrap() else { panic!() };
        assert_eq!(l.validity, 1_275_660_208);
        assert_eq!(l.next, 25022);
        assert_eq!(l.extra, " G3085f01b7f11094c501100008c4a11c1");
        assert_eq!(
            l.entries,
            vec![
                entry(25006, "1276528487.M364837P9451.kurkku,S=1355,W=1394", None),
                entry(25017, "1276533073.M242911P3632.kurkku", Some(2481)),
                entry(25018, "1276533074.M1P1.kurkku", Some(120)),
            ]
        );
        assert!(l.rewrite, "S field dropped: rewrite");
        write(d.path(), &l).unwrap();
        let text = fs::read_to_string(d.path().join(UIDLIST)).unwrap();
        assert!(text.starts_with("3 V1275660208 N25022 G3085f01b7f11094c501100008c4a11c1\n25006 :"));
        assert!(text.contains("\n25017 W2481 :1276533073.M242911P3632.kurkku\n"));
    }

    #[test]
    fn version1_next_from_entries_and_append() {
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join(UIDLIST), "1 1000 3\n1 a:2,S\n2 b\n").unwrap();
        let ReadList::Ok(l) = read(d.path(), true).unwrap() else { panic!() };
        assert_eq!((l.validity, l.next, l.entries.len()), (1000, 3, 2));
        assert!(l.rewrite);
        write(d.path(), &l).unwrap();
        append(d.path(), &[entry(7, "c", Some(5))]).unwrap();
        let ReadList::Ok(l) = read(d.path(), false).unwrap() else { panic!() };
        assert_eq!((l.next, l.last_uid, l.entries.len(), l.rewrite), (8, 7, 0, false));
    }

    #[test]
    fn corrupt_and_torn_lists() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join(UIDLIST);
        assert_eq!(read(d.path(), true).unwrap(), ReadList::Missing);
        let cases: [(&str, ReadList); 6] = [
            ("", ReadList::Corrupt(None)),
            ("garbage\n", ReadList::Corrupt(None)),
            ("3 V0 N1\n", ReadList::Corrupt(None)),
            ("3 V5 N9\n2 :a\n1 :b\n", ReadList::Corrupt(Some(5))),
            ("3 V5 N9\n2 a\n", ReadList::Corrupt(Some(5))),
            ("3 V5 N9\n2 :x/y\n", ReadList::Corrupt(Some(5))),
        ];
        for (text, want) in cases {
            fs::write(&p, text).unwrap();
            assert_eq!(read(d.path(), true).unwrap(), want, "{text:?}");
        }
        fs::write(&p, "3 V5 N2\n1 :a\n2 :b").unwrap();
        let ReadList::Ok(l) = read(d.path(), true).unwrap() else { panic!() };
        assert_eq!((l.entries.len(), l.next, l.rewrite), (1, 2, true));
    }

    #[test]
    fn keywords_file() {
        let d = tempfile::tempdir().unwrap();
        assert!(read_keywords(d.path()).unwrap().is_empty());
        fs::write(d.path().join(KEYWORDS), "0 $Forwarded\n2 Work\nbad line\n30 x\n1 \\Seen\n").unwrap();
        let k = read_keywords(d.path()).unwrap();
        assert_eq!(k, vec!["$Forwarded", "", "Work"]);
        write_keywords(d.path(), &k).unwrap();
        assert_eq!(fs::read_to_string(d.path().join(KEYWORDS)).unwrap(), "0 $Forwarded\n2 Work\n");
    }

    #[test]
    fn uidvalidity_always_grows() {
        let d = tempfile::tempdir().unwrap();
        let a = next_uidvalidity(d.path(), 0);
        let b = next_uidvalidity(d.path(), 0);
        let c = next_uidvalidity(d.path(), u32::MAX - 10);
        assert!(b > a && c == u32::MAX - 9);
        assert_eq!(fs::read_to_string(d.path().join(UIDVALIDITY)).unwrap(), format!("{c:08x}"));
    }
}
