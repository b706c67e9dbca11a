//! Reading an mbox for the IMAP folder: message boundaries (mboxrd From_ lines, RFC 4155), the status
//! headers mutt, UW-IMAP and Dovecot keep (Status, X-Status, X-Keywords, X-UID, X-IMAPbase), and the
//! conversion to what a client sees (RFC 3501 2.3.4: CRLF line ends; the status headers, the From_
//! line and Content-Length hidden as Dovecot hides them; `>From` unquoted).
//!
//! Everything streams in line fragments of at most [`BUF`] bytes: a message is never held whole
//! while scanning. The same [`Lines`] code sizes a message during the scan and produces it in
//! `read`, so RFC822.SIZE and the bytes sent always agree.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;

use crate::store::folder::{ANSWERED, DELETED, DRAFT, FLAGGED, Flags, SEEN, Uid};

/// Streaming buffer size, and the longest line fragment looked at for "From " and header names.
pub(super) const BUF: usize = 64 * 1024;
/// The most bytes kept of one status header's value (with its continuation lines).
const MAX_FIELD: usize = 8 * 1024;
/// The most bytes of a From_ line kept for its date.
const MAX_FROM_LINE: usize = 1024;

/// Where one message is in the file. Offsets are absolute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Loc {
    /// Start of the From_ line.
    pub from: u64,
    /// Just after the From_ line: the message's first header line.
    pub hdr: u64,
    /// Start of the blank line that ends the header (or the content end when there is none).
    pub hdr_end: u64,
    /// The next From_ line, or the end of the file.
    pub end: u64,
    /// The last byte before `end` is the blank line separating messages (not part of the message).
    pub sep: bool,
}

impl Loc {
    /// End of the message's own bytes (without the separating blank line).
    pub fn content_end(&self) -> u64 {
        self.end - u64::from(self.sep)
    }

    /// The same message moved by `new_from - from` bytes.
    pub fn moved_to(&self, new_from: u64) -> Loc {
        let at = |x: u64| new_from + (x - self.from);
        Loc { from: new_from, hdr: at(self.hdr), hdr_end: at(self.hdr_end), end: at(self.end), sep: self.sep }
    }
}

/// `X-IMAPbase: <uidvalidity> <uidnext> [keywords...]` of the first message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct ImapBase {
    pub validity: u32,
    pub uidnext: Uid,
    pub keywords: Vec<String>,
}

/// One message as found in the file.
#[derive(Clone, Debug)]
pub(super) struct Parsed {
    pub loc: Loc,
    /// FNV-1a of the From_ line and the visible header lines: identifies a message whose X-UID is
    /// not (yet) in the file, and detects a file rewritten under a reader.
    pub fp: u64,
    pub uid: Option<Uid>,
    pub flags: Flags,
    /// `O` in Status: some session has seen it, so it is not \Recent.
    pub old: bool,
    /// CRLF size of what `read` returns.
    pub size: u64,
    /// The From_ line's date (UTC asctime), if it has one.
    pub date: Option<i64>,
    pub base: Option<ImapBase>,
}

/// The headers buzon manages. `Content-Length` is only hidden (buzon never changes a body).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Field {
    Status = 0,
    XStatus = 1,
    XKeywords = 2,
    XUid = 3,
    XImapBase = 4,
    ContentLength = 5,
}

fn field_kind(name: &[u8]) -> Option<Field> {
    const NAMES: [(&[u8], Field); 6] = [
        (b"status", Field::Status),
        (b"x-status", Field::XStatus),
        (b"x-keywords", Field::XKeywords),
        (b"x-uid", Field::XUid),
        (b"x-imapbase", Field::XImapBase),
        (b"content-length", Field::ContentLength),
    ];
    NAMES.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, f)| *f)
}

/// What a header line that starts with `frag` is.
pub(super) enum HeaderLine {
    /// The empty line ending the header.
    Blank,
    /// A folded continuation (RFC 5322 2.2.3) of the previous field.
    Continuation,
    /// A field; `Some` when it is one of ours.
    Field(Option<Field>),
}

pub(super) fn classify(frag: &[u8]) -> HeaderLine {
    match frag.first() {
        None | Some(b'\n') => HeaderLine::Blank,
        Some(b'\r') if frag.get(1) == Some(&b'\n') => HeaderLine::Blank,
        Some(b' ' | b'\t') => HeaderLine::Continuation,
        _ => HeaderLine::Field(
            frag.iter().position(|&b| b == b':').and_then(|i| field_kind(frag[..i].trim_ascii())),
        ),
    }
}

/// 64-bit FNV-1a: cheap, streaming, and the same whatever the fragment boundaries.
#[derive(Clone, Copy)]
pub(super) struct Fnv(pub u64);

impl Fnv {
    pub fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    pub fn update(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// Where converted bytes go: a buffer (read) or a counter (sizes).
pub(super) trait Sink {
    fn put(&mut self, bytes: &[u8]);
}

impl Sink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

/// Counts bytes only.
pub(super) struct Count(pub u64);

impl Sink for Count {
    fn put(&mut self, bytes: &[u8]) {
        self.0 += bytes.len() as u64;
    }
}

/// One message's stored lines (after the From_ line) to what IMAP shows, fed in fragments: CRLF
/// line ends (a CR already before the LF is kept, not doubled; a last line without one gets one),
/// one '>' less on `^>+From ` lines (mboxrd), our status headers and Content-Length left out.
/// Blank lines are held back so that the scanner, which learns only at the end whether the last
/// one is the separator between messages, sizes the message exactly as `read` produces it.
pub(super) struct Lines {
    in_header: bool,
    /// The managed field the current header line belongs to.
    field: Option<Field>,
    at_start: bool,
    held_cr: bool,
    held_blank: u64,
    fp: Fnv,
    /// Values of the managed fields (scan only), first occurrence of each.
    values: Option<[Option<Vec<u8>>; 5]>,
}

impl Lines {
    /// `fp` already holds the From_ line; `collect` keeps the managed fields' values.
    pub fn new(fp: Fnv, collect: bool) -> Lines {
        Lines {
            in_header: true,
            field: None,
            at_start: true,
            held_cr: false,
            held_blank: 0,
            fp,
            values: collect.then(Default::default),
        }
    }

    /// Feeds a fragment (a line, or part of one ending where the line does). True when it is the
    /// blank line that ends the header.
    pub fn feed(&mut self, frag: &[u8], out: &mut impl Sink) -> bool {
        let start = self.at_start;
        self.at_start = frag.last() == Some(&b'\n');
        let mut header_ends = false;
        let mut new_field = false;
        if start && self.in_header {
            match classify(frag) {
                HeaderLine::Blank => {
                    self.in_header = false;
                    self.field = None;
                    header_ends = true;
                }
                HeaderLine::Continuation => {}
                HeaderLine::Field(f) => {
                    self.field = f;
                    new_field = true;
                }
            }
        }
        if self.in_header {
            if let Some(f) = self.field {
                self.collect(f, frag, new_field);
                return false;
            }
            self.fp.update(frag);
        }
        if start && (frag == b"\n") {
            self.held_blank += 1;
            return header_ends;
        }
        self.flush_blanks(out);
        let mut line = frag;
        if start && is_quoted_from(line) {
            line = &line[1..];
        }
        if self.held_cr {
            self.held_cr = false;
            if line.first() != Some(&b'\n') {
                out.put(b"\r");
            }
        }
        if let Some(body) = line.strip_suffix(b"\n") {
            out.put(body.strip_suffix(b"\r").unwrap_or(body));
            out.put(b"\r\n");
        } else if let Some(body) = line.strip_suffix(b"\r") {
            out.put(body);
            self.held_cr = true;
        } else {
            out.put(line);
        }
        header_ends
    }

    fn flush_blanks(&mut self, out: &mut impl Sink) {
        for _ in 0..self.held_blank {
            out.put(b"\r\n");
        }
        self.held_blank = 0;
    }

    fn collect(&mut self, f: Field, frag: &[u8], new_field: bool) {
        let Some(values) = self.values.as_mut() else { return };
        let Some(slot) = values.get_mut(f as usize) else { return }; // Content-Length: not kept
        let part = if new_field {
            // Only the first occurrence of a field counts: a repeat (and its continuations) is
            // hidden but not read.
            if slot.is_some() {
                self.field = Some(Field::ContentLength);
                return;
            }
            match frag.iter().position(|&b| b == b':') {
                Some(i) => &frag[i + 1..],
                None => return,
            }
        } else {
            frag
        };
        let v = slot.get_or_insert_with(Vec::new);
        let room = MAX_FIELD.saturating_sub(v.len());
        v.extend_from_slice(&part[..part.len().min(room)]);
        v.push(b' ');
    }

    /// Ends the message; `sep` drops the last held blank line (the separator before the next
    /// From_ line). Returns the fingerprint and the managed fields' values.
    pub fn finish(mut self, sep: bool, out: &mut impl Sink) -> (u64, Option<[Option<Vec<u8>>; 5]>) {
        if sep {
            self.held_blank = self.held_blank.saturating_sub(1);
        }
        self.flush_blanks(out);
        if self.held_cr || !self.at_start {
            out.put(b"\r\n");
        }
        (self.fp.0, self.values)
    }
}

/// ^>+From (mboxrd quoting of a line that said ">*From ").
fn is_quoted_from(line: &[u8]) -> bool {
    let gt = line.iter().take_while(|&&b| b == b'>').count();
    gt > 0 && line[gt..].starts_with(b"From ")
}

/// What a scan found.
pub(super) struct Scanned {
    /// Offset of the first From_ line (or where the scan ended): bytes before it are not a message.
    pub first_from: u64,
    pub msgs: Vec<Parsed>,
    /// Where the scan ended (the file length it saw).
    pub len: u64,
}

/// The message being scanned.
struct Cur {
    from: u64,
    from_line: Vec<u8>,
    fp: Fnv,
    /// Set once the From_ line is complete.
    hdr: Option<u64>,
    hdr_end: Option<u64>,
    lines: Lines,
    size: Count,
    last2: [u8; 2],
}

impl Cur {
    fn new(from: u64) -> Cur {
        Cur {
            from,
            from_line: Vec::new(),
            fp: Fnv::new(),
            hdr: None,
            hdr_end: None,
            lines: Lines::new(Fnv::new(), true),
            size: Count(0),
            last2: [0, 0],
        }
    }

    fn feed(&mut self, frag: &[u8], off: u64, n: u64) {
        let Some(_) = self.hdr else {
            self.fp.update(frag);
            let room = MAX_FROM_LINE.saturating_sub(self.from_line.len());
            self.from_line.extend_from_slice(&frag[..frag.len().min(room)]);
            if frag.last() == Some(&b'\n') {
                self.hdr = Some(off + n);
                self.lines = Lines::new(self.fp, true);
            }
            return;
        };
        if self.lines.feed(frag, &mut self.size) && self.hdr_end.is_none() {
            self.hdr_end = Some(off);
        }
        match frag {
            [.., a, b] => self.last2 = [*a, *b],
            [b] => self.last2 = [self.last2[1], *b],
            [] => {}
        }
    }

    fn finish(mut self, end: u64) -> Parsed {
        let hdr = self.hdr.unwrap_or(end);
        let sep = end - hdr >= 2 && self.last2 == *b"\n\n";
        let (fp, values) = self.lines.finish(sep, &mut self.size);
        let content_end = end - u64::from(sep);
        let loc = Loc { from: self.from, hdr, hdr_end: self.hdr_end.unwrap_or(content_end), end, sep };
        let mut p = Parsed {
            loc,
            fp: if self.hdr.is_some() { fp } else { self.fp.0 },
            uid: None,
            flags: Flags::default(),
            old: false,
            size: self.size.0,
            date: from_line_date(&self.from_line),
            base: None,
        };
        let [status, xstatus, keywords, uid, base] = values.unwrap_or_default();
        for &b in status.as_deref().unwrap_or_default() {
            match b {
                b'R' => p.flags.system |= SEEN,
                b'O' => p.old = true,
                _ => {}
            }
        }
        for &b in xstatus.as_deref().unwrap_or_default() {
            p.flags.system |= match b {
                b'A' => ANSWERED,
                b'D' => DELETED,
                b'F' => FLAGGED,
                b'T' => DRAFT,
                _ => 0,
            };
        }
        p.flags.keywords = keyword_list(keywords.as_deref().unwrap_or_default());
        p.uid = uid.as_deref().and_then(parse_number).filter(|&u| u > 0);
        p.base = base.as_deref().and_then(parse_base);
        p
    }
}

/// Scans `file` from `start` (which must be at a line start) to its end.
pub(super) fn scan(file: &File, start: u64) -> io::Result<Scanned> {
    let mut f = file;
    f.seek(SeekFrom::Start(start))?;
    let mut rd = BufReader::with_capacity(BUF, f);
    let mut frag: Vec<u8> = Vec::with_capacity(256);
    let mut off = start;
    let mut at_start = true;
    let mut first_from = None;
    let mut msgs = Vec::new();
    let mut cur: Option<Cur> = None;
    loop {
        frag.clear();
        let n = (&mut rd).take(BUF as u64).read_until(b'\n', &mut frag)? as u64;
        if n == 0 {
            break;
        }
        if at_start && frag.starts_with(b"From ") {
            if let Some(c) = cur.take() {
                msgs.push(c.finish(off));
            }
            first_from.get_or_insert(off);
            cur = Some(Cur::new(off));
        }
        if let Some(c) = cur.as_mut() {
            c.feed(&frag, off, n);
        }
        at_start = frag.last() == Some(&b'\n');
        off += n;
    }
    if let Some(c) = cur.take() {
        msgs.push(c.finish(off));
    }
    Ok(Scanned { first_from: first_from.unwrap_or(off), msgs, len: off })
}

/// One message as the client sees it, and the fingerprint of what was read (to check that the file
/// still holds the message the index says it does).
pub(super) fn read_message(file: &File, loc: &Loc) -> io::Result<(Vec<u8>, u64)> {
    let Some(fp) = from_line(file, loc)? else {
        return Ok((Vec::new(), 0)); // not where a message starts any more
    };
    let len = loc.content_end().saturating_sub(loc.hdr);
    let cap = usize::try_from(len).unwrap_or(0);
    let mut out = Vec::with_capacity(cap.saturating_add(cap / 32));
    let mut f = file;
    f.seek(SeekFrom::Start(loc.hdr))?;
    let mut rd = BufReader::with_capacity(BUF, f.take(len));
    let mut lines = Lines::new(fp, false);
    let mut frag: Vec<u8> = Vec::with_capacity(256);
    loop {
        frag.clear();
        if (&mut rd).take(BUF as u64).read_until(b'\n', &mut frag)? == 0 {
            break;
        }
        lines.feed(&frag, &mut out);
    }
    let (fp, _) = lines.finish(false, &mut out);
    Ok((out, fp))
}

/// The fingerprint of the message's From_ line, or None when `loc` no longer starts a message.
fn from_line(file: &File, loc: &Loc) -> io::Result<Option<Fnv>> {
    let mut fp = Fnv::new();
    let mut buf = vec![0u8; usize::try_from(loc.hdr - loc.from).unwrap_or(BUF).min(BUF)];
    let mut pos = loc.from;
    while pos < loc.hdr {
        let want = usize::try_from(loc.hdr - pos).unwrap_or(BUF).min(buf.len());
        file.read_exact_at(&mut buf[..want], pos)?;
        if pos == loc.from && !buf.starts_with(b"From ") {
            return Ok(None);
        }
        fp.update(&buf[..want]);
        pos += want as u64;
    }
    Ok(Some(fp))
}

/// [`read_message`] as a stream, for FETCH and SEARCH of a large message: the same octets in pieces.
/// None when the message is no longer where the index says. At the end the fingerprint and size
/// are checked against the index's; a message that changed underneath ends in an error, so a
/// literal whose length was promised is never finished with other bytes.
pub(super) fn message_reader(
    file: &File,
    loc: &Loc,
    fp: u64,
    size: u64,
) -> io::Result<Option<MessageReader>> {
    let Some(hash) = from_line(file, loc)? else { return Ok(None) };
    let end = loc.content_end().max(loc.hdr);
    let src = At { file: file.try_clone()?, pos: loc.hdr, end };
    Ok(Some(MessageReader {
        rd: BufReader::with_capacity(BUF, src),
        lines: Some(Lines::new(hash, false)),
        out: Vec::new(),
        taken: 0,
        sent: 0,
        fp,
        size,
    }))
}

/// Reads a range of the mbox by position (pread), so the folder's own handle keeps its offset.
struct At {
    file: File,
    pos: u64,
    end: u64,
}

impl Read for At {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = usize::try_from(self.end.saturating_sub(self.pos)).unwrap_or(usize::MAX);
        let want = buf.len().min(left);
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// See [`message_reader`].
pub(super) struct MessageReader {
    rd: BufReader<At>,
    /// None once the message has ended and been checked.
    lines: Option<Lines>,
    out: Vec<u8>,
    /// Of `out`, already given to the caller.
    taken: usize,
    sent: u64,
    fp: u64,
    size: u64,
}

impl Read for MessageReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.taken == self.out.len() {
            self.out.clear();
            self.taken = 0;
            let Some(lines) = self.lines.as_mut() else { return Ok(0) };
            let mut frag = Vec::with_capacity(256);
            if (&mut self.rd).take(BUF as u64).read_until(b'\n', &mut frag)? > 0 {
                lines.feed(&frag, &mut self.out);
                continue;
            }
            let (fp, _) = self.lines.take().map(|l| l.finish(false, &mut self.out)).unwrap_or((0, None));
            let total = self.sent + self.out.len() as u64;
            if fp != self.fp || total != self.size {
                return Err(io::Error::other("the mbox changed while the message was being read"));
            }
        }
        let n = buf.len().min(self.out.len() - self.taken);
        buf[..n].copy_from_slice(&self.out[self.taken..self.taken + n]);
        self.taken += n;
        self.sent += n as u64;
        Ok(n)
    }
}

fn parse_number(v: &[u8]) -> Option<u32> {
    std::str::from_utf8(v).ok()?.trim().parse().ok()
}

fn parse_base(v: &[u8]) -> Option<ImapBase> {
    let s = String::from_utf8_lossy(v);
    let mut it = s.split_ascii_whitespace();
    let validity: u32 = it.next()?.parse().ok().filter(|&v| v > 0)?;
    let uidnext: u32 = it.next()?.parse().ok()?;
    let keywords = keyword_list(it.collect::<Vec<_>>().join(" ").as_bytes());
    Some(ImapBase { validity, uidnext: uidnext.max(1), keywords })
}

/// Keywords from an X-Keywords value (space or comma separated), sorted, valid atoms only.
pub(super) fn keyword_list(v: &[u8]) -> Vec<String> {
    let s = String::from_utf8_lossy(v);
    let mut k: Vec<String> =
        s.split([' ', '\t', ',', '\r', '\n']).filter(|w| is_keyword(w)).map(str::to_owned).collect();
    k.sort();
    k.dedup();
    k
}

/// RFC 3501 9 flag-keyword: an atom (no specials), not a system flag.
pub(super) fn is_keyword(w: &str) -> bool {
    !w.is_empty()
        && w.len() <= 128
        && !w.starts_with('\\')
        && w.bytes().all(|b| (0x21..0x7f).contains(&b) && !b"(){%*\"\\]".contains(&b))
}

/// The UTC asctime date of a From_ line ("From sender Sat Nov 28 03:48:08 2026", a zone between
/// the time and the year tolerated).
pub(super) fn from_line_date(line: &[u8]) -> Option<i64> {
    const MONTHS: [&str; 12] =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let s = String::from_utf8_lossy(line);
    let toks: Vec<&str> = s.split_ascii_whitespace().skip(2).collect();
    for (i, t) in toks.iter().enumerate() {
        let Some(m) = MONTHS.iter().position(|m| m.eq_ignore_ascii_case(t)) else { continue };
        let day: i64 = toks.get(i + 1)?.parse().ok().filter(|d| (1..=31).contains(d))?;
        let mut hms = toks.get(i + 2)?.split(':').map(|x| x.parse::<i64>().ok());
        let (h, mi, sec) = (hms.next()??, hms.next()??, hms.next().flatten().unwrap_or(0));
        if h > 23 || mi > 59 || sec > 60 {
            return None;
        }
        let year: i64 =
            toks.get(i + 3..)?.iter().take(2).find_map(|y| y.parse().ok().filter(|y| *y >= 1970))?;
        let days = crate::timefmt::days_from_civil(year, m as i64 + 1, day);
        return Some(days * 86_400 + h * 3600 + mi * 60 + sec);
    }
    None
}
