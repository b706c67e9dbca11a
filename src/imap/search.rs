//! SEARCH evaluation (RFC 3501 6.4.4, RFC 9051 6.4.4) and sequence sets (RFC 3501 6.4.8 and 9,
//! RFC 5182 `$`). Keys are compiled once (sets resolved, strings folded, cheap keys first) and then
//! run over the messages; a message is read only when a key that needs its text is reached, and
//! then only its header unless some key needs the body. A message over [`STREAM_ABOVE`] is never
//! read whole: its text is made and matched as it is read (message/searchstream.rs).

use std::io::{BufRead, BufReader, Read};
use std::ops::Range;

use crate::imap::fetch::STREAM_ABOVE;
use crate::imap::message::{self, Parsed};
use crate::imap::types::{Date, SearchKey, SeqNum, SeqSet};
use crate::store::folder::{ANSWERED, DELETED, DRAFT, FLAGGED, Folder, FolderError, MessageInfo, SEEN, Uid};
use crate::timefmt::civil_from_days;

#[cfg(test)]
mod tests;

/// 0-based indexes of the messages a sequence set names, ascending, without duplicates (see
/// [`resolve_ranges`]; the list is as long as the messages named, never longer).
pub fn resolve(set: &SeqSet, messages: &[MessageInfo], uid: bool, saved: &[Uid]) -> Vec<usize> {
    resolve_ranges(set, messages, uid, saved).into_iter().flatten().collect()
}

/// The messages a sequence set names as 0-based index ranges: ascending, disjoint and never
/// touching (`1:*,1:*,...` is one range however often it is repeated, RFC 3501 9 allows any
/// order and overlap). Message numbers out of range are ignored; with `uid`, `*` is the largest
/// UID in use and a range `n:*` always includes it (RFC 3501 6.4.8); `$` is `saved` (UIDs,
/// RFC 5182).
pub fn resolve_ranges(set: &SeqSet, messages: &[MessageInfo], uid: bool, saved: &[Uid]) -> Vec<Range<usize>> {
    let mut out: Vec<Range<usize>> = Vec::new();
    match set {
        SeqSet::Saved => {
            out.extend(
                saved
                    .iter()
                    .filter_map(|u| messages.binary_search_by_key(u, |m| m.uid).ok())
                    .map(|i| i..i + 1),
            );
        }
        SeqSet::Ranges(ranges) => {
            let Some(last) = messages.last() else { return out };
            for r in ranges {
                let value = |n: SeqNum| match n {
                    SeqNum::Value(v) => v,
                    SeqNum::Star if uid => last.uid,
                    SeqNum::Star => u32::try_from(messages.len()).unwrap_or(u32::MAX),
                };
                let (a, b) = (value(r.start), value(r.end));
                let (lo, hi) = (a.min(b), a.max(b));
                let range = if uid {
                    let start = messages.partition_point(|m| m.uid < lo);
                    let end = messages.partition_point(|m| m.uid <= hi);
                    start..end.max(start)
                } else {
                    let lo = (lo.max(1) as usize).min(messages.len() + 1);
                    let hi = (hi as usize).min(messages.len());
                    lo - 1..hi.max(lo - 1)
                };
                if !range.is_empty() {
                    out.push(range);
                }
            }
        }
    }
    merge(out)
}

/// Sorts ranges and joins those that overlap or touch.
fn merge(mut ranges: Vec<Range<usize>>) -> Vec<Range<usize>> {
    ranges.sort_unstable_by_key(|r| r.start);
    let mut out: Vec<Range<usize>> = Vec::with_capacity(ranges.len().min(16));
    for r in ranges {
        match out.last_mut() {
            Some(prev) if r.start <= prev.end => prev.end = prev.end.max(r.end),
            _ => out.push(r),
        }
    }
    out
}

/// 0-based indexes of the messages matching `key`, ascending. Messages expunged by others while
/// the search runs do not match.
pub fn search(folder: &mut dyn Folder, key: &SearchKey, saved: &[Uid]) -> Result<Vec<usize>, FolderError> {
    let key = compile(key, folder.messages(), saved);
    let whole = key.cost() == Cost::Body;
    let mut found = Vec::new();
    for index in 0..folder.messages().len() {
        let Some(info) = folder.messages().get(index).cloned() else { break };
        let large = info.size > STREAM_ABOVE;
        let mut msg = Msg {
            folder: &mut *folder,
            index,
            info,
            whole,
            large,
            data: None,
            body_text: None,
            parsed: None,
        };
        match key.eval(&mut msg) {
            Ok(true) => found.push(index),
            Ok(false) | Err(Stop::Expunged) => {}
            Err(Stop::Failed(e)) => return Err(e),
        }
    }
    Ok(found)
}

/// What a key needs of the message, cheapest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Cost {
    Info,
    Header,
    Body,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cmp {
    Before,
    On,
    Since,
}

impl Cmp {
    /// RFC 3501 6.4.4: BEFORE is earlier than the date, ON the same date, SINCE that date or later.
    fn test(self, d: Date, key: Date) -> bool {
        match self {
            Cmp::Before => d < key,
            Cmp::On => d == key,
            Cmp::Since => d >= key,
        }
    }
}

/// A compiled search key.
#[derive(Debug)]
enum Key {
    Const(bool),
    /// A system flag bit, set (`true`) or not.
    Flag(u8, bool),
    Keyword(String, bool),
    Recent(bool),
    New,
    InternalDate(Cmp, Date),
    Larger(u64),
    Smaller(u64),
    /// RFC 7162 3.1.5: mod-sequence at least this.
    ModSeq(u64),
    /// Sorted 0-based indexes.
    Set(Vec<usize>),
    /// Field name and folded needle.
    Header(String, String),
    Sent(Cmp, Date),
    Body(String),
    Text(String),
    Not(Box<Key>),
    Or(Box<Key>, Box<Key>),
    And(Vec<Key>),
}

fn compile(key: &SearchKey, messages: &[MessageInfo], saved: &[Uid]) -> Key {
    let header = |name: &str, s: &str| Key::Header(name.to_string(), message::fold(s));
    match key {
        SearchKey::All => Key::Const(true),
        SearchKey::Answered => Key::Flag(ANSWERED, true),
        SearchKey::Deleted => Key::Flag(DELETED, true),
        SearchKey::Draft => Key::Flag(DRAFT, true),
        SearchKey::Flagged => Key::Flag(FLAGGED, true),
        SearchKey::Seen => Key::Flag(SEEN, true),
        SearchKey::Unanswered => Key::Flag(ANSWERED, false),
        SearchKey::Undeleted => Key::Flag(DELETED, false),
        SearchKey::Undraft => Key::Flag(DRAFT, false),
        SearchKey::Unflagged => Key::Flag(FLAGGED, false),
        SearchKey::Unseen => Key::Flag(SEEN, false),
        SearchKey::Keyword(k) => Key::Keyword(k.clone(), true),
        SearchKey::Unkeyword(k) => Key::Keyword(k.clone(), false),
        SearchKey::Recent => Key::Recent(true),
        SearchKey::Old => Key::Recent(false),
        SearchKey::New => Key::New,
        SearchKey::Before(d) => Key::InternalDate(Cmp::Before, *d),
        SearchKey::On(d) => Key::InternalDate(Cmp::On, *d),
        SearchKey::Since(d) => Key::InternalDate(Cmp::Since, *d),
        SearchKey::SentBefore(d) => Key::Sent(Cmp::Before, *d),
        SearchKey::SentOn(d) => Key::Sent(Cmp::On, *d),
        SearchKey::SentSince(d) => Key::Sent(Cmp::Since, *d),
        SearchKey::Larger(n) => Key::Larger(*n),
        SearchKey::ModSeq(n) => Key::ModSeq(*n),
        SearchKey::Smaller(n) => Key::Smaller(*n),
        SearchKey::Seq(set) => Key::Set(resolve(set, messages, false, saved)),
        SearchKey::Uid(set) => Key::Set(resolve(set, messages, true, saved)),
        SearchKey::From(s) => header("From", s),
        SearchKey::To(s) => header("To", s),
        SearchKey::Cc(s) => header("Cc", s),
        SearchKey::Bcc(s) => header("Bcc", s),
        SearchKey::Subject(s) => header("Subject", s),
        SearchKey::Header(name, s) => header(name, s),
        SearchKey::Body(s) => Key::Body(message::fold(s)),
        SearchKey::Text(s) => Key::Text(message::fold(s)),
        SearchKey::Not(k) => Key::Not(Box::new(compile(k, messages, saved))),
        SearchKey::Or(a, b) => {
            let (a, b) = (compile(a, messages, saved), compile(b, messages, saved));
            // The cheaper side first: when it matches, the other is never evaluated.
            if a.cost() <= b.cost() {
                Key::Or(Box::new(a), Box::new(b))
            } else {
                Key::Or(Box::new(b), Box::new(a))
            }
        }
        SearchKey::And(keys) => {
            let mut keys: Vec<Key> = keys.iter().map(|k| compile(k, messages, saved)).collect();
            keys.sort_by_key(Key::cost);
            Key::And(keys)
        }
    }
}

/// Why evaluation stopped for a message.
enum Stop {
    /// Removed by someone else: the message does not match.
    Expunged,
    Failed(FolderError),
}

/// One message while a key is evaluated: its text is read on first need and kept.
struct Msg<'f> {
    folder: &'f mut dyn Folder,
    index: usize,
    info: MessageInfo,
    /// Read the whole message (some key needs the body), not only the header.
    whole: bool,
    data: Option<Vec<u8>>,
    /// The decoded, folded body text (BODY and TEXT share it).
    body_text: Option<String>,
    /// Over [`STREAM_ABOVE`]: `data` is only the header, when it is at most [`HEADER_MAX`]
    /// (empty otherwise), and the rest is read as a stream for each key.
    large: bool,
    /// A large message's MIME tree.
    parsed: Option<Parsed>,
}

/// A large message's header is kept when it is at most this long; a longer one is read field by
/// field for each key.
const HEADER_MAX: u64 = 64 * 1024;

fn stop(e: FolderError) -> Stop {
    if e == FolderError::Expunged { Stop::Expunged } else { Stop::Failed(e) }
}

fn io(e: std::io::Error) -> Stop {
    Stop::Failed(FolderError::Temp(format!("reading a message: {e}")))
}

impl Msg<'_> {
    fn data(&mut self) -> Result<&[u8], Stop> {
        if self.large && self.data.is_none() {
            self.data = Some(self.short_header()?);
        }
        if self.data.is_none() {
            let r =
                if self.whole { self.folder.read(self.index) } else { self.folder.read_header(self.index) };
            self.data = Some(
                r.map_err(|e| if e == FolderError::Expunged { Stop::Expunged } else { Stop::Failed(e) })?,
            );
        }
        Ok(self.data.as_deref().unwrap_or_default())
    }

    fn header(&mut self) -> Result<&[u8], Stop> {
        Ok(message::header(self.data()?))
    }

    /// A large message's header through its blank line, or nothing when it is longer than
    /// [`HEADER_MAX`] (or has no blank line).
    fn short_header(&mut self) -> Result<Vec<u8>, Stop> {
        let rd = self.folder.reader(self.index).map_err(stop)?;
        let mut rd = BufReader::new(rd.take(HEADER_MAX + 1));
        let mut h = Vec::new();
        loop {
            let start = h.len();
            if rd.read_until(b'\n', &mut h).map_err(io)? == 0 {
                // The end of the message, or past HEADER_MAX.
                return Ok(if h.len() as u64 <= HEADER_MAX && (h.len() as u64) < self.info.size {
                    h
                } else {
                    Vec::new()
                });
            }
            if matches!(h.get(start..), Some(b"\n" | b"\r\n")) {
                return Ok(h);
            }
        }
    }

    /// A large message's header is not kept: its fields are read from the store.
    fn long_header(&mut self) -> Result<bool, Stop> {
        Ok(self.large && self.data()?.is_empty())
    }

    /// Calls `f` with each field of a long header (a block of one field) until it returns true.
    fn each_field(&mut self, f: impl FnMut(&[u8]) -> bool) -> Result<bool, Stop> {
        let rd = self.folder.reader(self.index).map_err(stop)?;
        message::stream_header_fields(rd, f).map_err(io)
    }

    /// RFC 3501 6.4.4 BODY: `needle` (folded) is in the body text.
    fn body_has(&mut self, needle: &str) -> Result<bool, Stop> {
        if !self.large {
            return Ok(self.body_text()?.contains(needle));
        }
        if self.parsed.is_none() {
            let rd = self.folder.reader(self.index).map_err(stop)?;
            self.parsed = Some(Parsed::read(rd).map_err(io)?);
        }
        let rd = self.folder.reader(self.index).map_err(stop)?;
        match &self.parsed {
            Some(p) => message::body_contains(p, rd, needle).map_err(io),
            None => Ok(false),
        }
    }

    /// TEXT, header side: `needle` is in the header text.
    fn header_has(&mut self, needle: &str) -> Result<bool, Stop> {
        if self.long_header()? {
            let rd = self.folder.reader(self.index).map_err(stop)?;
            return message::header_contains(rd, needle).map_err(io);
        }
        Ok(message::contains(&message::header_text(self.header()?), needle))
    }

    fn body_text(&mut self) -> Result<&str, Stop> {
        if self.body_text.is_none() {
            let text = message::fold(&message::body_text(self.data()?));
            self.body_text = Some(text);
        }
        Ok(self.body_text.as_deref().unwrap_or_default())
    }
}

impl Key {
    fn cost(&self) -> Cost {
        match self {
            Key::Header(..) | Key::Sent(..) => Cost::Header,
            Key::Body(_) | Key::Text(_) => Cost::Body,
            Key::Not(k) => k.cost(),
            Key::Or(a, b) => a.cost().max(b.cost()),
            Key::And(keys) => keys.iter().map(Key::cost).max().unwrap_or(Cost::Info),
            _ => Cost::Info,
        }
    }

    fn eval(&self, m: &mut Msg<'_>) -> Result<bool, Stop> {
        let info = &m.info;
        Ok(match self {
            Key::Const(b) => *b,
            Key::Flag(bit, set) => (info.flags.system & bit != 0) == *set,
            Key::Keyword(k, set) => info.flags.keywords.iter().any(|x| x.eq_ignore_ascii_case(k)) == *set,
            Key::Recent(r) => info.recent == *r,
            // RFC 3501 6.4.4: NEW is RECENT UNSEEN.
            Key::New => info.recent && info.flags.system & SEEN == 0,
            // Date only, disregarding time and zone (INTERNALDATE is kept in UTC).
            Key::InternalDate(cmp, d) => cmp.test(utc_date(info.internal_date), *d),
            Key::Larger(n) => info.size > *n,
            Key::ModSeq(n) => info.modseq >= *n,
            Key::Smaller(n) => info.size < *n,
            Key::Set(set) => set.binary_search(&m.index).is_ok(),
            // RFC 3501 6.4.4 HEADER: an empty string matches every message with the field.
            Key::Header(name, needle) => {
                let has =
                    |h: &[u8]| message::search_values(h, name).iter().any(|v| message::contains(v, needle));
                if m.long_header()? { m.each_field(has)? } else { has(m.header()?) }
            }
            // A message without a valid Date: was sent on 1 Jan 1970 (Dovecot: date 0), so
            // SENTBEFORE finds it and SENTSINCE does not.
            Key::Sent(cmp, d) => {
                let date = if m.long_header()? {
                    // The first Date: field decides, valid or not.
                    let mut date = None;
                    m.each_field(|h| {
                        let is_date = !message::header_values(h, "Date").is_empty();
                        if is_date {
                            date = message::sent_date(h);
                        }
                        is_date
                    })?;
                    date
                } else {
                    message::sent_date(m.header()?)
                };
                cmp.test(date.unwrap_or(NO_DATE), *d)
            }
            Key::Body(needle) => m.body_has(needle)?,
            Key::Text(needle) => m.header_has(needle)? || m.body_has(needle)?,
            Key::Not(k) => !k.eval(m)?,
            Key::Or(a, b) => a.eval(m)? || b.eval(m)?,
            Key::And(keys) => {
                for k in keys {
                    if !k.eval(m)? {
                        return Ok(false);
                    }
                }
                true
            }
        })
    }
}

/// The sent date of a message without a valid Date: field.
const NO_DATE: Date = Date { year: 1970, month: 1, day: 1 };

fn utc_date(unix: i64) -> Date {
    let (y, m, d) = civil_from_days(unix.div_euclid(86_400));
    Date { year: y.clamp(0, 9999) as u16, month: m as u8, day: d as u8 }
}
