//! FETCH responses (RFC 3501 6.4.5 and 7.4.2, RFC 9051 6.4.5 and 7.5.2, RFC 3516 BINARY): one
//! `* n FETCH (...)` line per message, reading no more of the message than the items need, sending
//! the whole message or its text as literals streamed from the store, and setting `\Seen` as a
//! side effect of a non-peek body fetch.

use std::io::{self, Write};
use std::ops::Range;

use crate::imap::encode;
use crate::imap::message::{self, BinaryError, Parsed, Piece};
use crate::imap::types::{FetchAtt, Partial, Section, SectionText};
use crate::store::folder::{ANSWERED, DELETED, DRAFT, FLAGGED, Flags, Folder, FolderError, SEEN};
use crate::timefmt::civil_from_days;

mod stream;
#[cfg(test)]
pub(crate) mod tests;

pub use stream::dedup;
use stream::{Span, measure, read_header, write_spans};

#[derive(Clone, Copy, Debug, Default)]
pub struct FetchOpts {
    /// UID FETCH: UID is always in the response (RFC 3501 6.4.8).
    pub uid: bool,
    /// UTF8=ACCEPT or IMAP4rev2 is enabled (strings may be UTF-8).
    pub utf8: bool,
    /// IMAP4rev2 is enabled (no \Recent, RFC 9051 changes).
    pub rev2: bool,
}

#[derive(Debug)]
pub enum FetchError {
    Folder(FolderError),
    Io(io::Error),
}

/// The text of the `FolderError::Cannot` that BINARY of a part with an unknown
/// Content-Transfer-Encoding gives (RFC 3516 4.3: the answer should be `NO [UNKNOWN-CTE]`; the
/// session can tell it by [`is_unknown_cte`]). Nothing was written for the message.
pub const UNKNOWN_CTE: &str = "Unknown Content-Transfer-Encoding";

/// True for the error [`fetch`] gives for BINARY of an unknown encoding (`NO [UNKNOWN-CTE]`).
pub fn is_unknown_cte(e: &FetchError) -> bool {
    matches!(e, FetchError::Folder(FolderError::Cannot(s)) if s == UNKNOWN_CTE)
}

fn unknown_cte(_: BinaryError) -> FetchError {
    FetchError::Folder(FolderError::Cannot(UNKNOWN_CTE.to_string()))
}

impl From<FolderError> for FetchError {
    fn from(e: FolderError) -> Self {
        FetchError::Folder(e)
    }
}

/// A FETCH being answered, one message at a time: the caller (the connection's driver) calls
/// [`FetchJob::step`] until it returns false, writing each message's response to the client as
/// fast as the client reads, and may wait between two messages; the session then completes the
/// command with [`FetchJob::end`]. Holds the resolved message ranges, not the responses.
#[derive(Debug)]
pub struct FetchJob {
    tag: String,
    uid: bool,
    items: Vec<FetchAtt>,
    opts: FetchOpts,
    ranges: std::vec::IntoIter<Range<usize>>,
    current: Range<usize>,
    expunged: bool,
    stopped: Option<FolderError>,
}

/// How a [`FetchJob`] ended, for the session's tagged completion.
#[derive(Debug)]
pub struct FetchEnd {
    pub tag: String,
    pub uid: bool,
    /// Some messages were expunged by another session before they could be sent (skipped).
    pub expunged: bool,
    /// The error that stopped the FETCH before its last message (nothing of that message was sent).
    pub stopped: Option<FolderError>,
}

impl FetchJob {
    /// `ranges` are message indexes (as [`crate::imap::search::resolve_ranges`] gives them);
    /// `items` without repeats ([`dedup`]).
    pub fn new(tag: String, items: Vec<FetchAtt>, opts: FetchOpts, ranges: Vec<Range<usize>>) -> FetchJob {
        FetchJob {
            tag,
            uid: opts.uid,
            items,
            opts,
            ranges: ranges.into_iter(),
            current: 0..0,
            expunged: false,
            stopped: None,
        }
    }

    /// Writes the next message's `* n FETCH (...)`; false once there is none left (or an error
    /// stopped the command: [`FetchJob::end`] tells). An `Err` (reading the message or writing to
    /// the client failed in the middle of a response) leaves the connection unusable.
    pub fn step(&mut self, folder: &mut dyn Folder, out: &mut dyn Write) -> io::Result<bool> {
        if self.stopped.is_some() {
            return Ok(false);
        }
        let index = loop {
            if let Some(i) = self.current.next() {
                break i;
            }
            match self.ranges.next() {
                Some(r) => self.current = r,
                None => return Ok(false),
            }
        };
        match fetch(out, folder, index, &self.items, self.opts) {
            Ok(()) => {}
            Err(FetchError::Folder(FolderError::Expunged)) => self.expunged = true,
            Err(FetchError::Folder(e)) => {
                self.stopped = Some(e);
                return Ok(false);
            }
            Err(FetchError::Io(e)) => return Err(e),
        }
        Ok(true)
    }

    pub fn end(self) -> FetchEnd {
        FetchEnd { tag: self.tag, uid: self.uid, expunged: self.expunged, stopped: self.stopped }
    }
}

/// `which` values of [`Folder::cached`].
const CACHE_ENVELOPE: u8 = 0;
const CACHE_BODYSTRUCTURE: u8 = 1;

/// Messages larger than this are parsed as they are read, in bounded memory, for BODYSTRUCTURE,
/// body parts and BINARY (their literals then streamed from the store); smaller ones are read
/// whole, once for all the items.
pub(crate) const STREAM_ABOVE: u64 = 4 * 1024 * 1024;
/// The header of a large message is read whole up to this size; a longer one (or a message
/// without a blank line) is taken from the parsed message: its octets streamed, its fields from
/// the first 64 KiB.
const HEADER_MAX: usize = 64 * 1024;

/// What the items need of the message.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Need {
    Nothing,
    Header,
    Whole,
}

/// Writes `* n FETCH (...)\r\n` for the message at `index` (n = index + 1).
pub fn fetch(
    out: &mut dyn Write,
    folder: &mut dyn Folder,
    index: usize,
    items: &[FetchAtt],
    opts: FetchOpts,
) -> Result<(), FetchError> {
    fetch_with(out, folder, index, items, opts, STREAM_ABOVE)
}

/// [`fetch`], parsing messages larger than `stream_above` octets as they are read.
fn fetch_with(
    out: &mut dyn Write,
    folder: &mut dyn Folder,
    index: usize,
    items: &[FetchAtt],
    opts: FetchOpts,
    stream_above: u64,
) -> Result<(), FetchError> {
    let Some((before, size)) = folder.messages().get(index).map(|m| (m.flags.clone(), m.size)) else {
        return Err(FetchError::Folder(FolderError::Expunged));
    };
    let mut need = Need::Nothing;
    let mut header_too = false;
    let mut sets_seen = false;
    for item in items {
        let (n, seen) = match item {
            FetchAtt::Flags
            | FetchAtt::Uid
            | FetchAtt::Rfc822Size
            | FetchAtt::InternalDate
            | FetchAtt::ModSeq => (Need::Nothing, false),
            FetchAtt::Envelope if folder.cached(index, CACHE_ENVELOPE).is_some() => (Need::Nothing, false),
            FetchAtt::BodyStructure if folder.cached(index, CACHE_BODYSTRUCTURE).is_some() => {
                (Need::Nothing, false)
            }
            FetchAtt::Envelope | FetchAtt::Rfc822Header => (Need::Header, false),
            FetchAtt::BodyStructure | FetchAtt::Body | FetchAtt::BinarySize { .. } => (Need::Whole, false),
            // Streamed: the text starts where the header ends.
            FetchAtt::Rfc822 => (Need::Nothing, true),
            FetchAtt::Rfc822Text => (Need::Header, true),
            FetchAtt::BodySection { peek, section, .. } => {
                let n = match streamed(section) {
                    Some(false) => Need::Nothing,
                    Some(true) => Need::Header,
                    None if message::header_only(section) => Need::Header,
                    None => Need::Whole,
                };
                (n, !peek)
            }
            FetchAtt::Binary { peek, .. } => (Need::Whole, !peek),
        };
        need = need.max(n);
        header_too |= n == Need::Header;
        sets_seen |= seen;
    }
    // Read once, as little as the items need; a large message is parsed as it is read instead,
    // its header read apart when an item wants it.
    let big = size > stream_above;
    let mut parsed = match need == Need::Whole && big {
        true => Some(Parsed::read(folder.reader(index)?).map_err(FetchError::Io)?),
        false => None,
    };
    let mut long_header = false;
    let data = if need == Need::Nothing || (parsed.is_some() && !header_too) {
        Vec::new()
    } else if big {
        match read_header(folder.reader(index)?, HEADER_MAX).map_err(FetchError::Io)? {
            Some(h) => h,
            None => {
                long_header = true;
                let p = match parsed.take() {
                    Some(p) => p,
                    None => Parsed::read(folder.reader(index)?).map_err(FetchError::Io)?,
                };
                let head = p.header().1.to_vec();
                parsed = Some(p);
                head
            }
        }
    } else if need == Need::Header {
        folder.read_header(index)?
    } else {
        folder.read(index)?
    };
    let in_memory = need == Need::Whole && parsed.is_none();
    // RFC 3501 6.4.5: BODY[...] (not PEEK), RFC822, RFC822.TEXT and BINARY set \Seen; when that
    // changes the flags they are sent too.
    if sets_seen && before.system & SEEN == 0 {
        folder.mark_seen(index)?;
    }
    let Some(info) = folder.messages().get(index).cloned() else {
        return Err(FetchError::Folder(FolderError::Expunged));
    };
    // Streamed literals are cut from the message held in memory when it was read whole anyway,
    // otherwise from the store's reader; either way the whole message is `total` octets.
    let total = if in_memory { data.len() as u64 } else { info.size };
    let text_at = match &parsed {
        Some(p) if long_header => p.header().0.end,
        _ if need >= Need::Header => message::header(&data).len() as u64,
        _ => 0,
    };
    let recent = info.recent && !opts.rev2;
    let mut spans: Vec<Span> = Vec::new();
    let mut r = Vec::with_capacity(128);
    r.extend_from_slice(format!("* {} FETCH (", index + 1).as_bytes());
    let mut first = true;
    let mut sep = |r: &mut Vec<u8>| {
        if !std::mem::take(&mut first) {
            r.push(b' ');
        }
    };
    // RFC 3501 6.4.8: UID FETCH always includes UID (first, by custom).
    if opts.uid {
        sep(&mut r);
        r.extend_from_slice(format!("UID {}", info.uid).as_bytes());
    }
    for item in items {
        match item {
            FetchAtt::Uid if opts.uid => continue,
            _ => sep(&mut r),
        }
        match item {
            FetchAtt::Uid => r.extend_from_slice(format!("UID {}", info.uid).as_bytes()),
            FetchAtt::Flags => {
                r.extend_from_slice(b"FLAGS ");
                write_flags(&mut r, &info.flags, recent);
            }
            FetchAtt::InternalDate => {
                r.extend_from_slice(b"INTERNALDATE \"");
                r.extend_from_slice(internal_date(info.internal_date).as_bytes());
                r.push(b'"');
            }
            FetchAtt::Rfc822Size => r.extend_from_slice(format!("RFC822.SIZE {}", info.size).as_bytes()),
            // RFC 7162 3.1.4.1.
            FetchAtt::ModSeq => r.extend_from_slice(format!("MODSEQ ({})", info.modseq).as_bytes()),
            FetchAtt::Envelope => {
                r.extend_from_slice(b"ENVELOPE ");
                r.extend_from_slice(&envelope(folder, index, &data, opts.utf8));
            }
            FetchAtt::BodyStructure => {
                r.extend_from_slice(b"BODYSTRUCTURE ");
                match folder.cached(index, CACHE_BODYSTRUCTURE) {
                    Some(c) => r.extend_from_slice(c.as_bytes()),
                    None => {
                        let bs = match &parsed {
                            Some(p) => p.body_structure(true),
                            None => message::body_structure(&data, true),
                        };
                        if let Ok(s) = std::str::from_utf8(&bs) {
                            folder.cache(index, CACHE_BODYSTRUCTURE, s.to_string());
                        }
                        r.extend_from_slice(&bs);
                    }
                }
            }
            FetchAtt::Body => {
                r.extend_from_slice(b"BODY ");
                r.extend_from_slice(&match &parsed {
                    Some(p) => p.body_structure(false),
                    None => message::body_structure(&data, false),
                });
            }
            FetchAtt::Rfc822 => {
                r.extend_from_slice(b"RFC822 ");
                spans.push(Span::literal(&mut r, 0, total));
            }
            FetchAtt::Rfc822Header => {
                r.extend_from_slice(b"RFC822.HEADER ");
                match &parsed {
                    Some(p) if long_header => {
                        let h = p.header().0;
                        spans.push(Span::literal(&mut r, h.start, h.end.saturating_sub(h.start)));
                    }
                    _ => text_literal(&mut r, message::header(&data)),
                }
            }
            FetchAtt::Rfc822Text => {
                r.extend_from_slice(b"RFC822.TEXT ");
                spans.push(Span::literal(&mut r, text_at, total - text_at.min(total)));
            }
            FetchAtt::BodySection { section, partial, .. } => {
                // RFC 3501 7.4.2: the response says BODY[...] for BODY.PEEK too, and <origin> only.
                r.extend_from_slice(b"BODY[");
                r.extend_from_slice(section_name(section).as_bytes());
                r.push(b']');
                if let Some(after_header) = streamed(section) {
                    let from = if after_header { text_at.min(total) } else { 0 };
                    let (start, len) = window(&mut r, total - from, *partial);
                    r.push(b' ');
                    spans.push(Span::literal(&mut r, from + start, len));
                    continue;
                }
                let bytes = match &parsed {
                    Some(p) if long_header || !message::header_only(section) => match p.section(section) {
                        Piece::Range(rg) => {
                            let (start, len) = window(&mut r, rg.end.saturating_sub(rg.start), *partial);
                            r.push(b' ');
                            spans.push(Span::literal(&mut r, rg.start + start, len));
                            continue;
                        }
                        Piece::Bytes(b) => b,
                    },
                    _ => message::section(&data, section),
                };
                let slice = origin(&mut r, &bytes, *partial);
                r.push(b' ');
                text_literal(&mut r, slice);
            }
            FetchAtt::Binary { part, partial, .. } if parsed.is_some() => {
                let Some(p) = &parsed else { continue };
                let (raw, cte) = p.binary(part).map_err(unknown_cte)?;
                let (o, l) = partial.map_or((0, u64::MAX), |p| (u64::from(p.origin), u64::from(p.length)));
                let (n, nul) = measure(folder, index, raw.clone(), cte, o, l)?;
                r.extend_from_slice(b"BINARY[");
                r.extend_from_slice(part_name(part).as_bytes());
                r.push(b']');
                let (start, len) = window(&mut r, n, *partial);
                r.push(b' ');
                // RFC 3516 4.2: literal8 only when the data holds NUL.
                if nul {
                    r.push(b'~');
                }
                spans.push(Span::decoded(&mut r, raw, cte, start, len));
            }
            FetchAtt::Binary { part, partial, .. } => {
                let bytes = message::binary(&data, part).map_err(unknown_cte)?;
                r.extend_from_slice(b"BINARY[");
                r.extend_from_slice(part_name(part).as_bytes());
                r.push(b']');
                let slice = origin(&mut r, &bytes, *partial);
                r.push(b' ');
                // RFC 3516 4.2: literal8 only when the data holds NUL.
                if slice.contains(&0) {
                    r.push(b'~');
                }
                encode::literal(&mut r, slice);
            }
            FetchAtt::BinarySize { part } => {
                let n = match &parsed {
                    Some(p) => {
                        let (raw, cte) = p.binary(part).map_err(unknown_cte)?;
                        measure(folder, index, raw, cte, 0, 0)?.0
                    }
                    None => message::binary(&data, part).map_err(unknown_cte)?.len() as u64,
                };
                r.extend_from_slice(format!("BINARY.SIZE[{}] {n}", part_name(part)).as_bytes());
            }
        }
    }
    if info.flags != before && !items.contains(&FetchAtt::Flags) {
        sep(&mut r);
        r.extend_from_slice(b"FLAGS ");
        write_flags(&mut r, &info.flags, recent);
    }
    r.extend_from_slice(b")\r\n");
    let whole = in_memory.then_some(data.as_slice());
    write_spans(out, &r, &spans, whole, folder, index)
}

/// Sections sent straight from the message: `Some(false)` for the whole message (BODY[]),
/// `Some(true)` for its text (BODY[TEXT]); None for the others (parts, headers).
fn streamed(section: &Section) -> Option<bool> {
    match (section.part.is_empty(), &section.text) {
        (true, None) => Some(false),
        (true, Some(SectionText::Text)) => Some(true),
        _ => None,
    }
}

/// The ENVELOPE, from the cache when there. The cache holds the IMAP4rev1 form (8-bit text in
/// literals), valid in every session; a fresh one for a UTF-8 session may quote UTF-8 instead.
fn envelope(folder: &mut dyn Folder, index: usize, data: &[u8], utf8: bool) -> Vec<u8> {
    if let Some(c) = folder.cached(index, CACHE_ENVELOPE) {
        return c.into_bytes();
    }
    let header = message::header(data);
    let env = message::envelope(header, false);
    if let Ok(s) = std::str::from_utf8(&env) {
        folder.cache(index, CACHE_ENVELOPE, s.to_string());
    }
    if utf8 { message::envelope(header, true) } else { env }
}

/// A literal of message text. RFC 3501 4.3 and 9 (CHAR8) forbid NUL in a literal; only BINARY's
/// literal8 may carry it (RFC 3516). Dovecot sends each NUL as 0x80, and so does buzon; the size
/// stays the same.
fn text_literal(r: &mut Vec<u8>, bytes: &[u8]) {
    if !bytes.contains(&0) {
        encode::literal(r, bytes);
        return;
    }
    let clean: Vec<u8> = bytes.iter().map(|&b| if b == 0 { 0x80 } else { b }).collect();
    encode::literal(r, &clean);
}

/// RFC 3501 6.4.5 partial: `<origin>` in the response name and the bytes from there (empty when
/// the origin is past the end).
fn origin<'a>(r: &mut Vec<u8>, bytes: &'a [u8], partial: Option<Partial>) -> &'a [u8] {
    let (start, len) = window(r, bytes.len() as u64, partial);
    let (start, len) = (start as usize, len as usize);
    bytes.get(start..start + len).unwrap_or_default()
}

/// The (offset, length) of a partial fetch within `len` octets, after writing its `<origin>`.
fn window(r: &mut Vec<u8>, len: u64, partial: Option<Partial>) -> (u64, u64) {
    let Some(p) = partial else { return (0, len) };
    r.extend_from_slice(format!("<{}>", p.origin).as_bytes());
    let start = u64::from(p.origin).min(len);
    let end = start.saturating_add(u64::from(p.length)).min(len);
    (start, end - start)
}

fn part_name(part: &[u32]) -> String {
    part.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(".")
}

/// The section as the response names it (RFC 3501 7.4.2 BODY[<section>]); HEADER.FIELDS names
/// upper-cased (types.rs).
pub fn section_name(section: &Section) -> String {
    let mut s = part_name(&section.part);
    let Some(text) = &section.text else { return s };
    if !s.is_empty() {
        s.push('.');
    }
    let fields = |s: &mut String, names: &[String]| {
        s.push_str(" (");
        for (i, n) in names.iter().enumerate() {
            if i > 0 {
                s.push(' ');
            }
            let mut v = Vec::new();
            encode::astring(&mut v, n.to_ascii_uppercase().as_bytes());
            s.push_str(&String::from_utf8_lossy(&v));
        }
        s.push(')');
    };
    match text {
        SectionText::Header => s.push_str("HEADER"),
        SectionText::Text => s.push_str("TEXT"),
        SectionText::Mime => s.push_str("MIME"),
        SectionText::HeaderFields(names) => {
            s.push_str("HEADER.FIELDS");
            fields(&mut s, names);
        }
        SectionText::HeaderFieldsNot(names) => {
            s.push_str("HEADER.FIELDS.NOT");
            fields(&mut s, names);
        }
    }
    s
}

/// RFC 3501 9 date-time of an INTERNALDATE, in UTC: `"17-Jul-1996 02:44:25 +0000"` without the
/// quotes (the day is space-padded: date-day-fixed).
pub fn internal_date(unix: i64) -> String {
    const MONTHS: [&str; 12] =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let (y, m, d) = civil_from_days(unix.div_euclid(86_400));
    let secs = unix.rem_euclid(86_400);
    let month = MONTHS.get((m - 1).clamp(0, 11) as usize).copied().unwrap_or("Jan");
    format!("{d:2}-{month}-{y:04} {:02}:{:02}:{:02} +0000", secs / 3600, secs / 60 % 60, secs % 60)
}

/// Appends `(\Seen \Flagged kw ...)`, with `\Recent` when `recent`.
pub fn write_flags(out: &mut Vec<u8>, flags: &Flags, recent: bool) {
    out.push(b'(');
    let mut first = true;
    let system = [
        (SEEN, "\\Seen"),
        (ANSWERED, "\\Answered"),
        (FLAGGED, "\\Flagged"),
        (DELETED, "\\Deleted"),
        (DRAFT, "\\Draft"),
    ];
    let names = system
        .iter()
        .filter(|(bit, _)| flags.system & bit != 0)
        .map(|(_, name)| *name)
        .chain(flags.keywords.iter().map(String::as_str))
        .chain(recent.then_some("\\Recent"));
    for name in names {
        if !std::mem::take(&mut first) {
            out.push(b' ');
        }
        out.extend_from_slice(name.as_bytes());
    }
    out.push(b')');
}
