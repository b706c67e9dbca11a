//! What SORT and THREAD need of each message (RFC 5256 2.2 sent date, 2.1 base subject, 3 the
//! first address's mailbox, RFC 5957 display names, RFC 5256 3 REFERENCES message-ids), taken
//! from one read of its header, and the per-folder cache that keeps them by UID so that a
//! repeated SORT or THREAD reads no file again.

use std::collections::HashMap;

use super::subject::base_subject;
use crate::imap::message::{self, Addr, MISSING_DOMAIN, MISSING_MAILBOX};
use crate::store::folder::{Folder, FolderError, MessageInfo, Uid};
use crate::timefmt::days_from_civil;

/// At most this many message-ids of a References field are kept (the last ones: the nearest
/// ancestors), so a hostile header costs a bounded amount of threading work.
pub const MAX_REFERENCES: usize = 64;
/// A message-id longer than this is not valid.
const MAX_ID: usize = 512;
/// Strings compared by SORT are cut to this many octets.
const MAX_TEXT: usize = 1024;
/// The cache stops growing past about this many octets.
const CACHE_BYTES: usize = 32 * 1024 * 1024;

/// The sort and thread keys of one message. Strings are ASCII upper-cased, so comparing their
/// octets is RFC 4790's i;ascii-casemap, the comparator RFC 5256 asks for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Keys {
    /// RFC 5256 2.2: the Date: field in UTC seconds, None when missing or invalid.
    pub sent: Option<i64>,
    /// RFC 5256 2.1 base subject.
    pub subject: Box<str>,
    /// The base subject was found by removing a reply or forward marker.
    pub refwd: bool,
    /// RFC 5256 3: the mailbox (local part) of the first From, To and Cc address.
    pub from: Box<str>,
    pub to: Box<str>,
    pub cc: Box<str>,
    /// RFC 5957: the display name of the first From and To address, or its addr-spec.
    pub display_from: Box<str>,
    pub display_to: Box<str>,
    /// The first valid message-id of Message-ID (case kept: RFC 5256 3 compares them exactly).
    pub message_id: Option<Box<str>>,
    /// RFC 5256 3 (1): the message-ids of References, or else the first of In-Reply-To.
    pub references: Vec<Box<str>>,
}

impl Keys {
    /// The keys of a message header (through its blank line).
    pub fn from_header(header: &[u8]) -> Keys {
        let mut k = Keys::default();
        let (mut date, mut subject, mut refs, mut in_reply_to) = (None, None, None, None);
        let (mut from, mut to, mut cc, mut id) = (None, None, None, None);
        // The first field of each name counts.
        for f in message::fields(header) {
            let slot = match f.name.to_ascii_lowercase().as_slice() {
                b"date" => &mut date,
                b"subject" => &mut subject,
                b"references" => &mut refs,
                b"in-reply-to" => &mut in_reply_to,
                b"from" => &mut from,
                b"to" => &mut to,
                b"cc" => &mut cc,
                b"message-id" => &mut id,
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(f);
            }
        }
        k.sent = date.and_then(|f| parse_date(&String::from_utf8_lossy(f.value)));
        if let Some(f) = subject {
            // RFC 5256 2.1 (1): encoded words decoded to UTF-8 first.
            let (base, refwd) = base_subject(&message::decode_field(f.raw));
            k.subject = upper(&base);
            k.refwd = refwd;
        }
        let first = |f: Option<message::Field<'_>>| f.and_then(|f| first_mailbox(f.value));
        let (from, to) = (first(from), first(to));
        k.from = from.as_ref().map(|m| upper(&m.local)).unwrap_or_default();
        k.to = to.as_ref().map(|m| upper(&m.local)).unwrap_or_default();
        k.cc = first(cc).map(|m| upper(&m.local)).unwrap_or_default();
        k.display_from = from.as_ref().map(display).unwrap_or_default();
        k.display_to = to.as_ref().map(display).unwrap_or_default();
        k.message_id = id.and_then(|f| message_ids(f.value).into_iter().next());
        let mut refs = refs.map(|f| message_ids(f.value)).unwrap_or_default();
        if refs.is_empty() {
            // RFC 5256 3 (1): without valid References, the first valid id of In-Reply-To.
            refs = in_reply_to.and_then(|f| message_ids(f.value).into_iter().next()).into_iter().collect();
        }
        if refs.len() > MAX_REFERENCES {
            refs.drain(..refs.len() - MAX_REFERENCES);
        }
        k.references = refs;
        k
    }

    /// About how many octets the keys hold.
    fn weight(&self) -> usize {
        let s = self.subject.len() + self.from.len() + self.to.len() + self.cc.len();
        let d = self.display_from.len() + self.display_to.len();
        let ids: usize = self.references.iter().map(|r| r.len() + 16).sum();
        128 + s + d + ids + self.message_id.as_ref().map_or(0, |m| m.len())
    }
}

/// ASCII upper case, cut to [`MAX_TEXT`] octets (at a character boundary).
fn upper(s: &str) -> Box<str> {
    let mut end = s.len().min(MAX_TEXT);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or_default().to_ascii_uppercase().into_boxed_str()
}

/// The first mailbox of an address list (groups skipped into: their first member counts).
struct Mailbox {
    name: Option<String>,
    local: String,
    domain: String,
}

fn first_mailbox(value: &[u8]) -> Option<Mailbox> {
    message::addresses(value).into_iter().find_map(|a| match a {
        Addr::Mailbox { name, mailbox, host, .. } => {
            let text = |b: Vec<u8>, missing: &[u8]| {
                if b == missing { String::new() } else { String::from_utf8_lossy(&b).into_owned() }
            };
            Some(Mailbox {
                // RFC 5957 3: the display name is decoded (RFC 2047) before it is compared.
                name: name.map(|n| decode_words(&n)).filter(|n| !n.trim().is_empty()),
                local: text(mailbox, MISSING_MAILBOX),
                domain: text(host, MISSING_DOMAIN),
            })
        }
        _ => None,
    })
}

/// A phrase with its RFC 2047 encoded words decoded.
fn decode_words(raw: &[u8]) -> String {
    let mut field = b"X: ".to_vec();
    field.extend_from_slice(raw);
    message::decode_field(&field)
}

/// RFC 5957 3: the display name, or the addr-spec when there is none (`local@` when the
/// domain is missing, as Dovecot writes it).
fn display(m: &Mailbox) -> Box<str> {
    match &m.name {
        Some(n) => upper(n.trim()),
        None if m.local.is_empty() && m.domain.is_empty() => Box::from(""),
        None => upper(&format!("{}@{}", m.local, m.domain)),
    }
}

/// The message-ids of a field (RFC 5322 3.6.4 msg-id: `<left@right>`): each `<...>` that holds
/// an `@` and no `<`, with folding white space inside removed; anything between them (phrases,
/// comments of old mailers) is ignored.
pub fn message_ids(value: &[u8]) -> Vec<Box<str>> {
    let mut out = Vec::new();
    let mut rest = value;
    while let Some(open) = rest.iter().position(|&b| b == b'<') {
        rest = rest.get(open + 1..).unwrap_or_default();
        let Some(close) = rest.iter().position(|&b| b == b'<' || b == b'>') else { break };
        let inner = rest.get(..close).unwrap_or_default();
        if rest.get(close) == Some(&b'>') {
            let id: Vec<u8> = inner.iter().copied().filter(|b| !b.is_ascii_whitespace()).collect();
            if id.contains(&b'@') && id.len() <= MAX_ID && !id.starts_with(b"@") && !id.ends_with(b"@") {
                out.push(String::from_utf8_lossy(&id).into());
            }
            rest = rest.get(close + 1..).unwrap_or_default();
        } else {
            rest = rest.get(close..).unwrap_or_default();
        }
    }
    out
}

/// RFC 5322 3.3 date-time (with the obsolete forms of 4.3: two- and three-digit years, named
/// zones, no seconds) as UTC seconds since the epoch; None when it is not a valid date.
pub fn parse_date(value: &str) -> Option<i64> {
    let value = without_comments(value);
    let mut words = value
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| !w.is_empty())
        // A leading day name is optional.
        .skip_while(|w| !w.starts_with(|c: char| c.is_ascii_digit()));
    let day: i64 = words.next()?.parse().ok()?;
    let month = month(words.next()?)?;
    let year: i64 = words.next()?.parse().ok()?;
    let year = match year {
        // RFC 5322 4.3: 00-49 are 2000-2049, 50-999 add 1900.
        0..=49 => year + 2000,
        50..=999 => year + 1900,
        1000..=9999 => year,
        _ => return None,
    };
    let hms: Vec<&str> = words.next()?.split(':').collect();
    let part = |i: usize, max: i64| -> Option<i64> {
        let p = hms.get(i)?;
        let v: i64 = p.parse().ok()?;
        (p.len() <= 2 && (0..=max).contains(&v)).then_some(v)
    };
    // Seconds are optional, but when there they must be valid.
    let (h, m, s) = match hms.len() {
        2 => (part(0, 23)?, part(1, 59)?, 0),
        3 => (part(0, 23)?, part(1, 59)?, part(2, 60)?),
        _ => return None,
    };
    if !(1..=31).contains(&day) {
        return None;
    }
    let zone = match words.next() {
        None => 0,
        Some(z) => zone_minutes(z)?,
    };
    let days = days_from_civil(year, i64::from(month), day);
    Some(days * 86_400 + h * 3600 + m * 60 + s - zone * 60)
}

/// `Jan`..`Dec` (any case, longer names allowed) as 1..=12.
fn month(s: &str) -> Option<u8> {
    const MONTHS: [&str; 12] =
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
    let p = s.get(..3)?.to_ascii_lowercase();
    MONTHS.iter().position(|m| *m == p).map(|i| i as u8 + 1)
}

/// A zone as minutes east of UTC: `+hhmm`/`-hhmm`, or RFC 5322 4.3's names (military zones
/// and unknown names are -0000, i.e. UTC).
fn zone_minutes(z: &str) -> Option<i64> {
    if let Some(d) = z.strip_prefix('+').map(|d| (1, d)).or_else(|| z.strip_prefix('-').map(|d| (-1, d))) {
        let (sign, digits) = d;
        if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let v: i64 = digits.parse().ok()?;
        let (hh, mm) = (v / 100, v % 100);
        return (mm < 60).then_some(sign * (hh * 60 + mm));
    }
    if !z.bytes().all(|b| b.is_ascii_alphabetic()) {
        return None;
    }
    Some(match z.to_ascii_uppercase().as_str() {
        "EDT" => -4 * 60,
        "EST" | "CDT" => -5 * 60,
        "CST" | "MDT" => -6 * 60,
        "MST" | "PDT" => -7 * 60,
        "PST" => -8 * 60,
        _ => 0,
    })
}

/// RFC 5322 3.2.2: comments (nested, with quoted pairs) removed.
fn without_comments(s: &str) -> String {
    let (mut out, mut depth, mut escaped) = (String::with_capacity(s.len()), 0usize, false);
    for c in s.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' if depth > 0 => escaped = true,
            '(' => depth += 1,
            ')' if depth > 0 => {
                depth -= 1;
                out.push(' ');
            }
            c if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

/// How much of a header is read for its keys.
const MAX_HEADER: usize = 256 * 1024;

/// The header `rd` starts with, through its blank line, or its first [`MAX_HEADER`] octets.
fn bounded_header(rd: Box<dyn std::io::Read>) -> std::io::Result<Vec<u8>> {
    use std::io::{BufRead, Read};
    let mut rd = std::io::BufReader::new(rd.take(MAX_HEADER as u64));
    let mut out = Vec::new();
    loop {
        let start = out.len();
        if rd.read_until(b'\n', &mut out)? == 0 || matches!(out.get(start..), Some(b"\n" | b"\r\n")) {
            return Ok(out);
        }
    }
}

/// The keys of a selected folder's messages by UID (UIDs are never reused within a
/// UIDVALIDITY, and a new UIDVALIDITY ends the session, so an entry never goes stale).
#[derive(Default)]
pub struct KeyCache {
    map: HashMap<Uid, Keys>,
    bytes: usize,
}

impl KeyCache {
    /// Reads the header of each of `indexes` (0-based, into the folder's view) whose keys are not
    /// cached yet, once each. A message expunged by someone else meanwhile gets empty keys.
    pub fn load(&mut self, folder: &mut dyn Folder, indexes: &[usize]) -> Result<(), FolderError> {
        self.prune(folder.messages());
        for &i in indexes {
            let Some((uid, size)) = folder.messages().get(i).map(|m| (m.uid, m.size)) else { continue };
            if self.map.contains_key(&uid) {
                continue;
            }
            // A large message's header is read through a bounded reader: at most MAX_HEADER
            // octets of it are ever in memory (the fields SORT needs come first in practice).
            let header = if size > MAX_HEADER as u64 {
                folder
                    .reader(i)
                    .and_then(|rd| bounded_header(rd).map_err(|e| FolderError::Temp(e.to_string())))
            } else {
                folder.read_header(i)
            };
            let keys = match header {
                Ok(h) => Keys::from_header(message::header(&h)),
                Err(FolderError::Expunged) => Keys::default(),
                Err(e) => return Err(e),
            };
            self.bytes += keys.weight();
            self.map.insert(uid, keys);
        }
        Ok(())
    }

    /// The keys of a message [`KeyCache::load`] saw (empty ones otherwise).
    pub fn get(&self, uid: Uid) -> &Keys {
        static EMPTY: std::sync::OnceLock<Keys> = std::sync::OnceLock::new();
        self.map.get(&uid).unwrap_or_else(|| EMPTY.get_or_init(Keys::default))
    }

    /// Forgets expunged messages once they are a good share of the cache, and everything when
    /// the cache has grown past its bound (the next command reads the headers again).
    fn prune(&mut self, messages: &[MessageInfo]) {
        if self.bytes > CACHE_BYTES {
            self.map.clear();
            self.bytes = 0;
        } else if self.map.len() > messages.len() + messages.len() / 4 + 64 {
            self.map.retain(|uid, _| messages.binary_search_by_key(uid, |m| m.uid).is_ok());
            self.bytes = self.map.values().map(Keys::weight).sum();
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests;
