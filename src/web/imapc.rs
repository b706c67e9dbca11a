//! The webmail's IMAP client: a blocking [`Client`] over any byte stream (in buzon, a socketpair to
//! the user's own IMAP session, already logged in and sending no greeting), built on [`Reader`], an
//! I/O-free response reader fed bytes that yields whole responses. It follows RFC 9051 / RFC 3501
//! (7 responses, 4.3 strings and literals, 5.1.3 modified UTF-7 mailbox names, 9 grammar), RFC 7888
//! LITERAL+ (its literals need no `+`, but for text past LITERAL-'s 4096 octets), RFC 3516 literal8,
//! RFC 4315 UIDPLUS (APPENDUID, UID EXPUNGE), RFC 6851 MOVE, RFC 6154 SPECIAL-USE, RFC 5258
//! LIST-EXTENDED and RFC 4731 ESEARCH.
//!
//! Nothing the server sends can panic the reader or make it allocate past the response cap given
//! at construction; a response it does not know is [`Untagged::Other`], never an error.

use std::collections::HashMap;
use std::fmt;
use std::io::{self, Read, Write};

use crate::imap::mutf7;

/// The cap on one response, literals included, for [`Client::new`]: a FETCH of a whole message
/// must fit (the server's message size limit is 25 MiB by default).
pub const DEFAULT_MAX_RESPONSE: usize = 64 << 20;

/// The longest string sent quoted; longer ones go as literals.
const MAX_QUOTED: usize = 1000;

/// The longest string sent as a non-synchronizing literal (RFC 7888 4 LITERAL-).
const MAX_NONSYNC: usize = 4096;

/// How deep parenthesized lists may nest in a response (BODYSTRUCTURE nests with the MIME tree).
const MAX_DEPTH: usize = 100;

/// The special-use attributes a [`Mailbox`] is known by (RFC 6154 2).
const SPECIAL_USES: [&str; 5] = ["\\Sent", "\\Drafts", "\\Trash", "\\Junk", "\\Archive"];

pub type Result<T> = std::result::Result<T, Error>;

/// What went wrong, in words a web page can show ([`fmt::Display`]).
#[derive(Debug)]
pub enum Error {
    /// Reading or writing failed, the connection was closed, or a read timed out.
    Io(io::Error),
    /// The command failed: the server's text, as sent (RFC 9051 7.1.2).
    No(String),
    /// The server did not accept the command: its text (RFC 9051 7.1.3).
    Bad(String),
    /// The server ended the session: its text (RFC 9051 7.1.5).
    Bye(String),
    /// The server's answer could not be read: malformed, or larger than the cap.
    Protocol(String),
    /// An argument the client will not send (an atom that would break the command line).
    Argument(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(e) => match e.kind() {
                io::ErrorKind::UnexpectedEof => f.write_str("The mail server closed the connection"),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                    f.write_str("The mail server took too long to answer")
                }
                _ => write!(f, "Could not talk to the mail server: {e}"),
            },
            Error::No(t) if t.is_empty() => f.write_str("The mail server refused"),
            Error::No(t) => f.write_str(t),
            Error::Bad(t) => write!(f, "The mail server did not accept the request: {t}"),
            Error::Bye(t) => write!(f, "The mail server ended the session: {t}"),
            Error::Protocol(t) => write!(f, "The mail server sent an answer that could not be read: {t}"),
            Error::Argument(t) => write!(f, "The request cannot be sent: {t}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Error {
        Error::Io(e)
    }
}

/// The status of a tagged response (RFC 9051 7.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Ok,
    No,
    Bad,
}

/// One whole server response (RFC 9051 2.2.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    /// A command's completion; `code` is the response code without its brackets (RFC 9051 7.1).
    Tagged {
        tag: String,
        status: Status,
        code: Option<String>,
        text: String,
    },
    Untagged(Untagged),
    /// A command continuation request `+ text` (RFC 9051 7.5).
    Continue(String),
}

/// The untagged responses the client reads; the rest are [`Untagged::Other`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Untagged {
    Ok {
        code: Option<String>,
        text: String,
    },
    No {
        code: Option<String>,
        text: String,
    },
    Bad {
        code: Option<String>,
        text: String,
    },
    Bye {
        code: Option<String>,
        text: String,
    },
    /// RFC 9051 7.2.2, names upper-cased.
    Capability(Vec<String>),
    /// RFC 9051 7.4.1.
    Exists(u32),
    /// RFC 9051 7.5.1.
    Expunge(u32),
    /// RFC 9051 7.4.6.
    Flags(Vec<String>),
    /// RFC 9051 7.3.1; the name decoded from modified UTF-7 (RFC 3501 5.1.3), or taken as UTF-8
    /// when it is not valid modified UTF-7 (a server in UTF-8 mode, RFC 6855 3).
    List {
        flags: Vec<String>,
        delimiter: Option<char>,
        name: String,
    },
    /// RFC 9051 7.3.4, item names upper-cased.
    Status {
        name: String,
        items: Vec<(String, u64)>,
    },
    /// `* SEARCH` (RFC 3501 7.2.5), or the ALL of `* ESEARCH` (RFC 4731 3.1).
    Search(Vec<u32>),
    /// RFC 9051 7.5.2.
    Fetch {
        seq: u32,
        items: FetchData,
    },
    /// Anything else, as received (CRLF stripped).
    Other(Vec<u8>),
}

/// The data items of a FETCH response the client reads (RFC 9051 7.5.2).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FetchData {
    pub uid: Option<u32>,
    pub flags: Option<Vec<String>>,
    pub size: Option<u64>,
    pub internaldate: Option<String>,
    /// Body sections (BODY[...], BINARY[...], RFC822*) by [`section_key`], e.g. `BODY[]` or
    /// `BODY[HEADER.FIELDS (FROM SUBJECT)]`; NIL is empty.
    pub sections: Vec<(String, Vec<u8>)>,
}

impl FetchData {
    /// The section a request named (`BODY.PEEK[HEADER]` finds `BODY[HEADER]`).
    pub fn section(&self, name: &str) -> Option<&[u8]> {
        let key = section_key(name.as_bytes());
        self.sections.iter().find(|(k, _)| *k == key).map(|(_, v)| v.as_slice())
    }

    /// Adds what a later response for the same message says.
    fn merge(&mut self, more: FetchData) {
        self.uid = self.uid.or(more.uid);
        self.flags = more.flags.or(self.flags.take());
        self.size = more.size.or(self.size);
        self.internaldate = more.internaldate.or(self.internaldate.take());
        for (k, v) in more.sections {
            self.sections.retain(|(old, _)| *old != k);
            self.sections.push((k, v));
        }
    }
}

/// A section name as [`FetchData::sections`] keys it: upper case, `.PEEK` dropped, no quotes,
/// single spaces and none inside parentheses' edges, a partial's `<origin.length>` as `<origin>`
/// (RFC 9051 7.5.2: the response names `BODY[section]<origin>`).
pub fn section_key(name: &[u8]) -> String {
    let upper = String::from_utf8_lossy(name).to_ascii_uppercase();
    let mut s = upper.trim();
    let mut out = String::with_capacity(s.len());
    for (peek, plain) in [("BODY.PEEK[", "BODY["), ("BINARY.PEEK[", "BINARY[")] {
        if let Some(rest) = s.strip_prefix(peek) {
            out.push_str(plain);
            s = rest;
        }
    }
    let (body, partial) = s.split_at(s.rfind(']').map_or(s.len(), |i| i + 1));
    let mut space = false;
    for c in body.chars() {
        if c == '"' {
            continue;
        }
        if c.is_whitespace() {
            space = true;
            continue;
        }
        if space && !out.is_empty() && !out.ends_with(['(', '[']) && c != ')' && c != ']' {
            out.push(' ');
        }
        space = false;
        out.push(c);
    }
    match partial.strip_prefix('<') {
        Some(p) => {
            out.push('<');
            out.push_str(p.split(['.', '>']).next().unwrap_or(""));
            out.push('>');
        }
        None => out.push_str(partial),
    }
    out
}

/// The I/O-free response reader: [`Reader::feed`] it bytes, then call [`Reader::next`] until it
/// returns `Ok(None)`. Literals `{n}` and `~{n}` (RFC 9051 4.3, RFC 3516 4.1) at the end of a
/// line are counted, never scanned. After an error the reader stays failed.
pub struct Reader {
    buf: Vec<u8>,
    /// Where the current response starts in `buf` (bytes before it are consumed).
    start: usize,
    /// Where the current line starts (after the last literal).
    line: usize,
    /// Where to go on looking for the line's LF.
    scan: usize,
    /// Where the literal being received ends.
    literal_end: Option<usize>,
    max: usize,
    failed: bool,
}

impl Reader {
    /// A reader refusing any response (literals included) longer than `max_response` octets.
    pub fn new(max_response: usize) -> Reader {
        Reader {
            buf: Vec::new(),
            start: 0,
            line: 0,
            scan: 0,
            literal_end: None,
            max: max_response,
            failed: false,
        }
    }

    /// Adds received bytes (nothing, once the reader failed).
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.failed {
            return;
        }
        if self.start > 0 {
            let s = self.start;
            self.buf.drain(..s);
            self.line -= s;
            self.scan -= s;
            self.literal_end = self.literal_end.map(|e| e - s);
            self.start = 0;
            // A large response is not held on to once it is read.
            if self.buf.capacity() > 1 << 20 && self.buf.len() < 1 << 16 {
                self.buf.shrink_to(1 << 16);
            }
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole response, if one has arrived.
    #[allow(clippy::should_implement_trait)] // fallible, so not an Iterator
    pub fn next(&mut self) -> Result<Option<Response>> {
        if self.failed {
            return Err(Error::Protocol("the response reader stopped after an error".into()));
        }
        let r = self.frame();
        if r.is_err() {
            // Nothing more is read: what was held is let go.
            *self = Reader { failed: true, ..Reader::new(self.max) };
        }
        r
    }

    fn frame(&mut self) -> Result<Option<Response>> {
        loop {
            if let Some(end) = self.literal_end {
                if self.buf.len() < end {
                    return Ok(None);
                }
                self.literal_end = None;
                self.line = end;
                self.scan = end;
            }
            let rest = self.buf.get(self.scan..).unwrap_or(&[]);
            let Some(lf) = rest.iter().position(|&b| b == b'\n').map(|k| self.scan + k) else {
                self.scan = self.buf.len();
                if self.buf.len() - self.start > self.max {
                    return Err(self.too_big());
                }
                return Ok(None);
            };
            let so_far = lf + 1 - self.start;
            if so_far > self.max {
                return Err(self.too_big());
            }
            let line = self.buf.get(self.line..lf).unwrap_or(&[]);
            if let Some(len) = literal_at_end(line) {
                // The cap is checked before the literal is awaited, so nothing is held for it.
                let len = usize::try_from(len).unwrap_or(usize::MAX);
                if len > self.max - so_far {
                    return Err(self.too_big());
                }
                self.literal_end = Some(lf + 1 + len);
                continue;
            }
            let raw = self.buf.get(self.start..lf + 1).unwrap_or(&[]);
            let r = parse(raw, self.max);
            self.start = lf + 1;
            self.line = self.start;
            self.scan = self.start;
            return r.map(Some);
        }
    }

    fn too_big(&self) -> Error {
        Error::Protocol(format!("a response is larger than {} octets", self.max))
    }
}

/// The length of the literal a line announces at its end: `{n}`, `{n+}` or `~{n}` before the
/// CRLF (RFC 9051 4.3, 9 literal; RFC 7888; RFC 3516 literal8). Too many digits read as too big.
fn literal_at_end(line: &[u8]) -> Option<u64> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let inner = line.strip_suffix(b"}")?;
    let open = inner.iter().rposition(|&b| b == b'{')?;
    let digits = inner.get(open + 1..)?;
    let digits = digits.strip_suffix(b"+").unwrap_or(digits);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    if digits.len() > 19 {
        return Some(u64::MAX);
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// One framed response (its final line end included) as a [`Response`].
fn parse(raw: &[u8], max: usize) -> Result<Response> {
    let line = raw.strip_suffix(b"\n").unwrap_or(raw);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut p = Cur { s: line, i: 0 };
    if p.eat(b'+') {
        p.eat(b' ');
        return Ok(Response::Continue(p.rest_text()));
    }
    if p.eat(b'*') {
        let u = if p.eat(b' ') { untagged(&mut p, max)? } else { None };
        return Ok(Response::Untagged(u.unwrap_or_else(|| Untagged::Other(line.to_vec()))));
    }
    // RFC 9051 9: tag SP resp-cond-state; a tag is ASTRING-CHAR except "+".
    let malformed = || Error::Protocol(format!("malformed response line {}", show(line)));
    let tag =
        p.atom().filter(|t| t.iter().all(|&b| b != b'+' && b != b'"' && b != b'\\')).ok_or_else(malformed)?;
    let tag = String::from_utf8_lossy(tag).into_owned();
    if !p.eat(b' ') {
        return Err(malformed());
    }
    let status = match p.atom().map(<[u8]>::to_ascii_uppercase).as_deref() {
        Some(b"OK") => Status::Ok,
        Some(b"NO") => Status::No,
        Some(b"BAD") => Status::Bad,
        _ => return Err(malformed()),
    };
    let (code, text) = p.resp_text();
    Ok(Response::Tagged { tag, status, code, text })
}

/// A response line shown in an error message: bounded, printable.
fn show(b: &[u8]) -> String {
    let s: String = String::from_utf8_lossy(b).chars().take(80).collect();
    format!("{:?}", s)
}

/// The untagged responses after `* `; `Ok(None)` for an unknown or malformed one.
fn untagged(p: &mut Cur, max: usize) -> Result<Option<Untagged>> {
    let Some(word) = p.atom() else { return Ok(None) };
    let word = word.to_ascii_uppercase();
    if word.iter().all(u8::is_ascii_digit) {
        // RFC 9051 7.4-7.5: message-data = nz-number SP ("EXPUNGE" / ("FETCH" SP msg-att)).
        let Some(n) = std::str::from_utf8(&word).ok().and_then(|w| w.parse::<u32>().ok()) else {
            return Ok(None);
        };
        if !p.eat(b' ') {
            return Ok(None);
        }
        let what = p.atom().map(<[u8]>::to_ascii_uppercase);
        return Ok(match what.as_deref() {
            Some(b"EXISTS") => Some(Untagged::Exists(n)),
            Some(b"EXPUNGE") => Some(Untagged::Expunge(n)),
            Some(b"FETCH") if p.eat(b' ') => p.fetch().map(|items| Untagged::Fetch { seq: n, items }),
            _ => None,
        });
    }
    let u = match word.as_slice() {
        b"OK" | b"NO" | b"BAD" | b"BYE" => {
            let (code, text) = p.resp_text();
            Some(match word.as_slice() {
                b"OK" => Untagged::Ok { code, text },
                b"NO" => Untagged::No { code, text },
                b"BAD" => Untagged::Bad { code, text },
                _ => Untagged::Bye { code, text },
            })
        }
        b"CAPABILITY" => {
            let mut caps = Vec::new();
            while p.eat(b' ') {
                caps.extend(p.atom().map(|a| String::from_utf8_lossy(a).to_ascii_uppercase()));
            }
            Some(Untagged::Capability(caps))
        }
        b"FLAGS" if p.eat(b' ') => p.flag_list().map(Untagged::Flags),
        b"LIST" if p.eat(b' ') => p.mailbox_list(),
        b"STATUS" if p.eat(b' ') => p.status(),
        b"SEARCH" => p.search().map(Untagged::Search),
        b"ESEARCH" => p.esearch(max)?.map(Untagged::Search),
        _ => None,
    };
    Ok(u)
}

/// A cursor over one response (its final CRLF stripped, literals inline).
struct Cur<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Cur<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        let hit = self.peek() == Some(b);
        if hit {
            self.i += 1;
        }
        hit
    }

    fn at_end(&self) -> bool {
        self.i >= self.s.len()
    }

    fn rest(&mut self) -> &'a [u8] {
        let r = self.s.get(self.i..).unwrap_or(&[]);
        self.i = self.s.len();
        r
    }

    fn rest_text(&mut self) -> String {
        String::from_utf8_lossy(self.rest()).into_owned()
    }

    /// Bytes up to a space, parenthesis, quote or control character; None when empty.
    fn atom(&mut self) -> Option<&'a [u8]> {
        let start = self.i;
        while let Some(b) = self.peek() {
            if b <= b' ' || b == 0x7f || matches!(b, b'(' | b')' | b'"') {
                break;
            }
            self.i += 1;
        }
        self.s.get(start..self.i).filter(|a| !a.is_empty())
    }

    /// RFC 9051 9 number / number64.
    fn number(&mut self) -> Option<u64> {
        let a = self.atom()?;
        if a.len() > 20 || !a.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(a).ok()?.parse().ok()
    }

    fn nz_number(&mut self) -> Option<u32> {
        self.number().and_then(|n| u32::try_from(n).ok()).filter(|&n| n > 0)
    }

    /// RFC 9051 9 string: quoted, literal or literal8.
    fn string(&mut self) -> Option<Vec<u8>> {
        if self.eat(b'"') {
            let mut out = Vec::new();
            loop {
                match self.peek()? {
                    b'"' => {
                        self.i += 1;
                        return Some(out);
                    }
                    b'\\' => {
                        self.i += 1;
                        out.push(self.peek()?);
                    }
                    b'\r' | b'\n' => return None,
                    b => out.push(b),
                }
                self.i += 1;
            }
        }
        self.eat(b'~');
        if !self.eat(b'{') {
            return None;
        }
        let start = self.i;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.i += 1;
        }
        let len: usize = std::str::from_utf8(self.s.get(start..self.i)?).ok()?.parse().ok()?;
        self.eat(b'+');
        if !self.eat(b'}') {
            return None;
        }
        self.eat(b'\r');
        if !self.eat(b'\n') {
            return None;
        }
        let v = self.s.get(self.i..self.i.checked_add(len)?)?;
        self.i += len;
        Some(v.to_vec())
    }

    /// Whether a quoted string, literal or literal8 starts here.
    fn at_string(&self) -> bool {
        match self.peek() {
            Some(b'"' | b'{') => true,
            Some(b'~') => self.s.get(self.i + 1) == Some(&b'{'),
            _ => false,
        }
    }

    /// RFC 9051 9 astring: an atom or a string.
    fn astring(&mut self) -> Option<Vec<u8>> {
        if self.at_string() { self.string() } else { self.atom().map(<[u8]>::to_vec) }
    }

    /// RFC 9051 9 nstring: NIL is None.
    fn nstring(&mut self) -> Option<Option<Vec<u8>>> {
        if self.at_string() {
            return self.string().map(Some);
        }
        self.atom().filter(|a| a.eq_ignore_ascii_case(b"NIL")).map(|_| None)
    }

    /// `(` items separated by spaces `)`.
    fn list<T>(&mut self, mut item: impl FnMut(&mut Self) -> Option<T>) -> Option<Vec<T>> {
        if !self.eat(b'(') {
            return None;
        }
        let mut out = Vec::new();
        if self.eat(b')') {
            return Some(out);
        }
        loop {
            out.push(item(self)?);
            if self.eat(b')') {
                return Some(out);
            }
            if !self.eat(b' ') {
                return None;
            }
        }
    }

    /// RFC 9051 9 flag-list (also mbx-list-flags).
    fn flag_list(&mut self) -> Option<Vec<String>> {
        self.list(|p| p.atom().map(|a| String::from_utf8_lossy(a).into_owned()))
    }

    /// Skips one value of any kind (atom, string, NIL, list), nested at most MAX_DEPTH deep.
    fn skip(&mut self, depth: usize) -> Option<()> {
        match self.peek()? {
            b'(' if depth < MAX_DEPTH => self.list(|p| p.skip(depth + 1)).map(|_| ()),
            _ if self.at_string() => self.string().map(|_| ()),
            _ => self.att_name().map(|_| ()),
        }
    }

    /// An atom that may hold a bracketed part with spaces: `BODY[HEADER.FIELDS (A B)]<0>`.
    fn att_name(&mut self) -> Option<&'a [u8]> {
        let start = self.i;
        while let Some(b) = self.peek() {
            if b == b'[' {
                let close = self.s.get(self.i..)?.iter().position(|&c| c == b']')?;
                self.i += close + 1;
                continue;
            }
            if b <= b' ' || b == 0x7f || matches!(b, b'(' | b')' | b'"') {
                break;
            }
            self.i += 1;
        }
        self.s.get(start..self.i).filter(|a| !a.is_empty())
    }

    /// RFC 9051 9 resp-text after a status word: `[code]` (RFC 9051 7.1) and the text.
    fn resp_text(&mut self) -> (Option<String>, String) {
        if !self.eat(b' ') {
            return (None, self.rest_text());
        }
        let mut code = None;
        if self.peek() == Some(b'[')
            && let Some(close) = self.s.get(self.i..).and_then(|r| r.iter().position(|&c| c == b']'))
        {
            let inner = self.s.get(self.i + 1..self.i + close).unwrap_or(&[]);
            code = Some(String::from_utf8_lossy(inner).into_owned());
            self.i += close + 1;
            self.eat(b' ');
        }
        (code, self.rest_text())
    }

    /// RFC 9051 7.3.1 mailbox-list, after `LIST `.
    fn mailbox_list(&mut self) -> Option<Untagged> {
        let flags = self.flag_list()?;
        if !self.eat(b' ') {
            return None;
        }
        let delimiter = match self.nstring()? {
            Some(d) if d.len() == 1 => d.first().map(|&b| char::from(b)),
            Some(_) => return None,
            None => None,
        };
        if !self.eat(b' ') {
            return None;
        }
        let name = mailbox_name(self.astring()?);
        // RFC 5258 mbox-list-extended follows; not needed.
        Some(Untagged::List { flags, delimiter, name })
    }

    /// RFC 9051 7.3.4, after `STATUS `.
    fn status(&mut self) -> Option<Untagged> {
        let name = mailbox_name(self.astring()?);
        if !self.eat(b' ') {
            return None;
        }
        let pairs = self.list(|p| {
            let item = String::from_utf8_lossy(p.atom()?).to_ascii_uppercase();
            if !p.eat(b' ') {
                return None;
            }
            let at = p.i;
            match p.number() {
                Some(n) => Some(Some((item, n))),
                None => {
                    p.i = at;
                    p.skip(0).map(|()| None)
                }
            }
        })?;
        Some(Untagged::Status { name, items: pairs.into_iter().flatten().collect() })
    }

    /// RFC 3501 7.2.5, after `SEARCH`: numbers, then perhaps RFC 7162's `(MODSEQ n)`.
    fn search(&mut self) -> Option<Vec<u32>> {
        let mut out = Vec::new();
        while self.eat(b' ') {
            if self.at_end() || self.peek() == Some(b'(') {
                break;
            }
            out.push(self.nz_number()?);
        }
        Some(out)
    }

    /// RFC 4731 3.1, after `ESEARCH`: `[(TAG "x")] [UID] *(name SP value)`; the ALL set is
    /// expanded, to at most a quarter of the response cap in numbers (an error past it).
    fn esearch(&mut self, max: usize) -> Result<Option<Vec<u32>>> {
        let mut out = Vec::new();
        if self.eat(b' ') && self.peek() == Some(b'(') {
            if self.skip(0).is_none() {
                return Ok(None);
            }
            self.eat(b' ');
        }
        while !self.at_end() {
            let Some(name) = self.atom().map(<[u8]>::to_ascii_uppercase) else { return Ok(None) };
            if name != b"UID" {
                if !self.eat(b' ') {
                    return Ok(None);
                }
                if name == b"ALL" {
                    let Some(set) = self.atom() else { return Ok(None) };
                    match expand_set(set, max / 4) {
                        Some(Ok(v)) => out = v,
                        Some(Err(())) => return Err(Error::Protocol("a search result is too large".into())),
                        None => return Ok(None),
                    }
                } else if self.skip(0).is_none() {
                    return Ok(None);
                }
            }
            if !self.eat(b' ') && !self.at_end() {
                return Ok(None);
            }
        }
        Ok(Some(out))
    }

    /// RFC 9051 7.5.2 msg-att after `FETCH `.
    fn fetch(&mut self) -> Option<FetchData> {
        let mut d = FetchData::default();
        let _: Vec<()> = self.list(|p| {
            let name = p.att_name()?;
            if !p.eat(b' ') {
                return None;
            }
            let upper = name.to_ascii_uppercase();
            match upper.as_slice() {
                b"UID" => d.uid = Some(p.nz_number()?),
                b"FLAGS" => d.flags = Some(p.flag_list()?),
                b"RFC822.SIZE" => d.size = Some(p.number()?),
                b"INTERNALDATE" => {
                    d.internaldate = p.nstring()?.map(|v| String::from_utf8_lossy(&v).into_owned())
                }
                n if n.starts_with(b"BODY[") || n.starts_with(b"BINARY[") || n.starts_with(b"RFC822") => {
                    let v = p.nstring()?.unwrap_or_default();
                    d.sections.push((section_key(name), v));
                }
                _ => p.skip(0)?,
            }
            Some(())
        })?;
        Some(d)
    }
}

/// A mailbox name from the server: modified UTF-7 (RFC 3501 5.1.3), else UTF-8 (RFC 6855 3).
fn mailbox_name(raw: Vec<u8>) -> String {
    match mutf7::decode(&raw) {
        Some(s) => s,
        None => String::from_utf8(raw).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
    }
}

/// A sequence set of numbers (RFC 9051 9 sequence-set, no `*`): None when malformed,
/// `Some(Err(()))` when it holds more than `limit` numbers.
fn expand_set(set: &[u8], limit: usize) -> Option<std::result::Result<Vec<u32>, ()>> {
    let num = |s: &str| s.parse::<u32>().ok().filter(|&n| n > 0);
    let text = std::str::from_utf8(set).ok()?;
    let mut out = Vec::new();
    for part in text.split(',') {
        let (a, b) = match part.split_once(':') {
            Some((a, b)) => (num(a)?, num(b)?),
            None => (num(part)?, num(part)?),
        };
        let (lo, hi) = (a.min(b), a.max(b));
        if out.len() + (hi - lo) as usize >= limit {
            return Some(Err(()));
        }
        out.extend(lo..=hi);
    }
    Some(Ok(out))
}

/// A command argument.
#[derive(Clone, Copy, Debug)]
pub enum Arg<'a> {
    /// Sent as it is (a keyword, a set, a parenthesized item list); refused when it holds a
    /// control character, 8-bit byte, or ends in `}` (it would read as a literal).
    Atom(&'a str),
    /// A string: quoted when short 7-bit text without CR or LF, else a LITERAL+ literal (RFC 9051
    /// 4.3, RFC 7888), past 4096 octets a synchronizing one; so no text can break the command.
    /// Text with NUL is refused (no IMAP string holds it).
    Str(&'a str),
    /// A mailbox name in UTF-8, sent in modified UTF-7 (RFC 3501 5.1.3) as a string.
    Mailbox(&'a str),
    /// Always a LITERAL+ literal (an APPEND's message); a literal8 when it holds NUL (RFC 3516 4.4).
    Bytes(&'a [u8]),
}

/// A mailbox from LIST.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mailbox {
    pub name: String,
    pub delimiter: Option<char>,
    pub flags: Vec<String>,
    /// `\Sent`, `\Drafts`, `\Trash`, `\Junk` or `\Archive` when the flags have it (RFC 6154 2).
    pub special: Option<String>,
}

/// STATUS figures (RFC 9051 6.3.11); an item the server left out is 0.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MailboxStatus {
    pub messages: u32,
    pub unseen: u32,
    pub uidnext: u32,
    pub uidvalidity: u32,
}

/// What SELECT or EXAMINE said (RFC 9051 6.3.2); an item the server left out is 0.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Selected {
    pub exists: u32,
    pub uidvalidity: u32,
    pub uidnext: u32,
}

/// A command's responses so far.
struct Collected {
    tag: String,
    logout: bool,
    untagged: Vec<Untagged>,
    bye: bool,
}

/// A completed command: its untagged responses and the tagged OK's response code.
struct Done {
    untagged: Vec<Untagged>,
    code: Option<String>,
}

/// A blocking IMAP client, one command at a time, tagged `a1`, `a2`, ... A read timeout is set by
/// the caller on the stream; a timeout, EOF, I/O error, unreadable response or BYE ends the
/// client (later commands fail with [`Error::Io`] without writing).
pub struct Client<S> {
    stream: S,
    reader: Reader,
    tags: u64,
    caps: Option<Vec<String>>,
    closed: bool,
}

impl<S: Read + Write> Client<S> {
    /// A client over a logged-in connection whose greeting, if any, was read.
    pub fn new(stream: S) -> Client<S> {
        Client::with_max_response(stream, DEFAULT_MAX_RESPONSE)
    }

    /// A client refusing any single response larger than `max_response` octets.
    pub fn with_max_response(stream: S, max_response: usize) -> Client<S> {
        Client { stream, reader: Reader::new(max_response), tags: 0, caps: None, closed: false }
    }

    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    pub fn get_mut(&mut self) -> &mut S {
        &mut self.stream
    }

    pub fn into_inner(self) -> S {
        self.stream
    }

    /// Sends one command (the tag is added) and returns its untagged responses once the tagged
    /// OK has come; NO, BAD and BYE are errors.
    pub fn command(&mut self, parts: &[Arg]) -> Result<Vec<Untagged>> {
        self.run(parts, false).map(|d| d.untagged)
    }

    /// The server's capabilities, upper-cased (asked once, RFC 9051 6.1.1; kept up to date from
    /// CAPABILITY responses and codes).
    pub fn capabilities(&mut self) -> Result<Vec<String>> {
        if self.caps.is_none() {
            self.run(&[Arg::Atom("CAPABILITY")], false)?;
        }
        Ok(self.caps.clone().unwrap_or_default())
    }

    pub fn has_capability(&mut self, name: &str) -> Result<bool> {
        Ok(self.capabilities()?.iter().any(|c| c.eq_ignore_ascii_case(name)))
    }

    /// Every mailbox: `LIST "" "*"`, with `RETURN (SPECIAL-USE)` when offered (RFC 6154 5.1,
    /// RFC 5258 3.2); a plain LIST may carry the attributes too (RFC 6154 2).
    pub fn list(&mut self) -> Result<Vec<Mailbox>> {
        let mut args = vec![Arg::Atom("LIST"), Arg::Str(""), Arg::Str("*")];
        if self.has_capability("SPECIAL-USE")? && self.has_capability("LIST-EXTENDED")? {
            args.extend([Arg::Atom("RETURN"), Arg::Atom("(SPECIAL-USE)")]);
        }
        let done = self.run(&args, false)?;
        Ok(done
            .untagged
            .into_iter()
            .filter_map(|u| match u {
                Untagged::List { flags, delimiter, name } => {
                    let special = flags
                        .iter()
                        .find_map(|f| SPECIAL_USES.iter().find(|s| s.eq_ignore_ascii_case(f)))
                        .map(|s| s.to_string());
                    Some(Mailbox { name, delimiter, flags, special })
                }
                _ => None,
            })
            .collect())
    }

    /// RFC 9051 6.3.11: MESSAGES UNSEEN UIDNEXT UIDVALIDITY.
    pub fn status(&mut self, mailbox: &str) -> Result<MailboxStatus> {
        let items = Arg::Atom("(MESSAGES UNSEEN UIDNEXT UIDVALIDITY)");
        let done = self.run(&[Arg::Atom("STATUS"), Arg::Mailbox(mailbox), items], false)?;
        let mut found = None;
        for u in done.untagged {
            if let Untagged::Status { name, items } = u {
                let exact = name == mailbox;
                if exact || found.is_none() {
                    found = Some(items);
                }
                if exact {
                    break;
                }
            }
        }
        let items = found.ok_or_else(|| Error::Protocol("no STATUS response".into()))?;
        let get = |k: &str| {
            items.iter().find(|(n, _)| n == k).map_or(0, |&(_, v)| u32::try_from(v).unwrap_or(u32::MAX))
        };
        Ok(MailboxStatus {
            messages: get("MESSAGES"),
            unseen: get("UNSEEN"),
            uidnext: get("UIDNEXT"),
            uidvalidity: get("UIDVALIDITY"),
        })
    }

    /// SELECT, or EXAMINE when `read_only` (RFC 9051 6.3.2-3).
    pub fn select(&mut self, mailbox: &str, read_only: bool) -> Result<Selected> {
        let verb = if read_only { "EXAMINE" } else { "SELECT" };
        let done = self.run(&[Arg::Atom(verb), Arg::Mailbox(mailbox)], false)?;
        let mut s = Selected::default();
        for u in done.untagged {
            match u {
                Untagged::Exists(n) => s.exists = n,
                Untagged::Ok { code: Some(code), .. } => {
                    let (name, value) = code.split_once(' ').unwrap_or((&code, ""));
                    let value = value.trim().parse().unwrap_or(0);
                    match name.to_ascii_uppercase().as_str() {
                        "UIDVALIDITY" => s.uidvalidity = value,
                        "UIDNEXT" => s.uidnext = value,
                        _ => {}
                    }
                }
                _ => {}
            }
        }
        Ok(s)
    }

    /// UID SEARCH (RFC 9051 6.4.4): the UIDs, ascending. `CHARSET UTF-8` when a string is not
    /// ASCII; `RETURN (ALL)` when ESEARCH is offered (RFC 4731), for a compact answer.
    pub fn uid_search(&mut self, criteria: &[Arg]) -> Result<Vec<u32>> {
        let utf8 = criteria.iter().any(|a| match a {
            Arg::Str(s) => !s.is_ascii(),
            Arg::Bytes(b) => !b.is_ascii(),
            _ => false,
        });
        let mut args = vec![Arg::Atom("UID"), Arg::Atom("SEARCH")];
        if self.has_capability("ESEARCH")? {
            args.extend([Arg::Atom("RETURN"), Arg::Atom("(ALL)")]);
        }
        if utf8 {
            args.extend([Arg::Atom("CHARSET"), Arg::Atom("UTF-8")]);
        }
        args.extend_from_slice(criteria);
        let done = self.run(&args, false)?;
        let mut uids: Vec<u32> = done
            .untagged
            .into_iter()
            .flat_map(|u| match u {
                Untagged::Search(v) => v,
                _ => Vec::new(),
            })
            .collect();
        uids.sort_unstable();
        uids.dedup();
        Ok(uids)
    }

    /// UID FETCH (RFC 9051 6.4.9) of `items` (e.g. `(UID FLAGS BODY.PEEK[])`) for the UID set
    /// `uids`: one [`FetchData`] per message that came with a UID, by UID ascending, its responses
    /// merged (unsolicited flag updates without a UID are left out).
    pub fn uid_fetch(&mut self, uids: &str, items: &str) -> Result<Vec<FetchData>> {
        check_set(uids)?;
        let done =
            self.run(&[Arg::Atom("UID"), Arg::Atom("FETCH"), Arg::Atom(uids), Arg::Atom(items)], false)?;
        let mut out: Vec<FetchData> = Vec::new();
        let mut at: HashMap<u32, usize> = HashMap::new();
        for u in done.untagged {
            let Untagged::Fetch { items, .. } = u else { continue };
            let Some(uid) = items.uid else { continue };
            match at.get(&uid).and_then(|&i| out.get_mut(i)) {
                Some(d) => d.merge(items),
                None => {
                    at.insert(uid, out.len());
                    out.push(items);
                }
            }
        }
        out.sort_by_key(|d| d.uid);
        Ok(out)
    }

    /// UID STORE (RFC 9051 6.4.6): `op` is `FLAGS`, `+FLAGS`, `-FLAGS`, with `.SILENT` or not.
    pub fn uid_store(&mut self, uids: &str, op: &str, flags: &[&str]) -> Result<()> {
        check_set(uids)?;
        let list = flag_list(flags)?;
        self.run(
            &[Arg::Atom("UID"), Arg::Atom("STORE"), Arg::Atom(uids), Arg::Atom(op), Arg::Atom(&list)],
            false,
        )?;
        Ok(())
    }

    /// UID MOVE (RFC 6851 3.2); without MOVE, UID COPY, `\Deleted` and UID EXPUNGE (RFC 4315 2.1).
    pub fn uid_move(&mut self, uids: &str, to: &str) -> Result<()> {
        check_set(uids)?;
        if self.has_capability("MOVE")? {
            self.run(&[Arg::Atom("UID"), Arg::Atom("MOVE"), Arg::Atom(uids), Arg::Mailbox(to)], false)?;
            return Ok(());
        }
        self.uid_copy(uids, to)?;
        self.uid_store(uids, "+FLAGS.SILENT", &["\\Deleted"])?;
        self.uid_expunge(uids)
    }

    /// UID COPY (RFC 9051 6.4.7).
    pub fn uid_copy(&mut self, uids: &str, to: &str) -> Result<()> {
        check_set(uids)?;
        self.run(&[Arg::Atom("UID"), Arg::Atom("COPY"), Arg::Atom(uids), Arg::Mailbox(to)], false)?;
        Ok(())
    }

    /// UID EXPUNGE (RFC 4315 2.1, RFC 9051 6.4.9): only these messages, if `\Deleted`.
    pub fn uid_expunge(&mut self, uids: &str) -> Result<()> {
        check_set(uids)?;
        self.run(&[Arg::Atom("UID"), Arg::Atom("EXPUNGE"), Arg::Atom(uids)], false)?;
        Ok(())
    }

    /// APPEND (RFC 9051 6.3.12) with a LITERAL+ literal: the new message's UID when the server
    /// gives APPENDUID (RFC 4315 3).
    pub fn append(&mut self, mailbox: &str, flags: &[&str], message: &[u8]) -> Result<Option<u32>> {
        let list = flag_list(flags)?;
        let mut args = vec![Arg::Atom("APPEND"), Arg::Mailbox(mailbox)];
        if !flags.is_empty() {
            args.push(Arg::Atom(&list));
        }
        args.push(Arg::Bytes(message));
        let done = self.run(&args, false)?;
        // RFC 4315 3: resp-code-apnd = "APPENDUID" SP nz-number SP append-uid.
        let uid = done.code.as_deref().and_then(|c| {
            let mut w = c.split_ascii_whitespace();
            let _ = w.next().filter(|n| n.eq_ignore_ascii_case("APPENDUID"))?;
            let _ = w.next()?;
            w.next()?.parse::<u32>().ok()
        });
        Ok(uid)
    }

    /// CREATE (RFC 9051 6.3.4).
    pub fn create(&mut self, mailbox: &str) -> Result<()> {
        self.run(&[Arg::Atom("CREATE"), Arg::Mailbox(mailbox)], false)?;
        Ok(())
    }

    /// NOOP (RFC 9051 6.1.2): the updates it brings (EXISTS, EXPUNGE, FETCH FLAGS).
    pub fn noop(&mut self) -> Result<Vec<Untagged>> {
        self.command(&[Arg::Atom("NOOP")])
    }

    /// LOGOUT (RFC 9051 6.1.3): BYE, then the tagged OK; the server closing after BYE is fine.
    pub fn logout(&mut self) -> Result<()> {
        self.run(&[Arg::Atom("LOGOUT")], true).map(|_| ())
    }

    /// Sends a command and reads up to its tagged response. A command with synchronizing
    /// literals goes in pieces, each after the server's `+` (RFC 9051 7.5); a completion instead
    /// of the `+` ends the command there.
    fn run(&mut self, parts: &[Arg], logout: bool) -> Result<Done> {
        if self.closed {
            return Err(Error::Io(io::Error::new(
                io::ErrorKind::NotConnected,
                "the IMAP connection is closed",
            )));
        }
        self.tags += 1;
        let tag = format!("a{}", self.tags);
        let mut pieces = vec![tag.clone().into_bytes()];
        for p in parts {
            if let Some(last) = pieces.last_mut() {
                last.push(b' ');
            }
            encode_arg(&mut pieces, p)?;
        }
        if let Some(last) = pieces.last_mut() {
            last.extend_from_slice(b"\r\n");
        }
        let mut got = Collected { tag, logout, untagged: Vec::new(), bye: false };
        let count = pieces.len();
        for (i, piece) in pieces.iter().enumerate() {
            if let Err(e) = self.stream.write_all(piece).and_then(|()| self.stream.flush()) {
                self.closed = true;
                return Err(Error::Io(e));
            }
            if let Some(done) = self.collect(&mut got, i + 1 < count)? {
                return Ok(done);
            }
        }
        Err(Error::Protocol("the command was not completed".into()))
    }

    /// Reads responses until the command's completion, or (`until_continue`) a continuation
    /// request, which gives `Ok(None)`.
    fn collect(&mut self, got: &mut Collected, until_continue: bool) -> Result<Option<Done>> {
        loop {
            let r = match self.read_response() {
                Ok(r) => r,
                Err(_) if got.bye && got.logout => {
                    return Ok(Some(Done { untagged: std::mem::take(&mut got.untagged), code: None }));
                }
                Err(e) => {
                    self.closed = true;
                    return Err(e);
                }
            };
            match r {
                Response::Tagged { tag, status, code, text } if tag == got.tag => {
                    self.closed |= got.logout;
                    return match status {
                        Status::Ok => {
                            self.note_caps(code.as_deref());
                            Ok(Some(Done { untagged: std::mem::take(&mut got.untagged), code }))
                        }
                        Status::No => Err(Error::No(text)),
                        Status::Bad => Err(Error::Bad(text)),
                    };
                }
                // Another command's completion cannot come (one command at a time).
                Response::Tagged { .. } => {}
                Response::Continue(_) if until_continue => return Ok(None),
                // RFC 7888 4: a LITERAL+ literal needs no `+`; one that comes anyway asks nothing.
                Response::Continue(_) => {}
                Response::Untagged(Untagged::Bye { text, .. }) => {
                    self.closed = true;
                    if !got.logout {
                        return Err(Error::Bye(text));
                    }
                    got.bye = true;
                }
                Response::Untagged(u) => {
                    match &u {
                        Untagged::Capability(c) => self.caps = Some(c.clone()),
                        Untagged::Ok { code, .. } => self.note_caps(code.as_deref()),
                        _ => {}
                    }
                    got.untagged.push(u);
                }
            }
        }
    }

    /// RFC 9051 7.1: a `[CAPABILITY ...]` response code updates what is known.
    fn note_caps(&mut self, code: Option<&str>) {
        let Some(code) = code else { return };
        let mut w = code.split_ascii_whitespace();
        if w.next().is_some_and(|n| n.eq_ignore_ascii_case("CAPABILITY")) {
            self.caps = Some(w.map(str::to_ascii_uppercase).collect());
        }
    }

    fn read_response(&mut self) -> Result<Response> {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            if let Some(r) = self.reader.next()? {
                return Ok(r);
            }
            let n = loop {
                match self.stream.read(&mut chunk) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(Error::Io(e)),
                }
            };
            if n == 0 {
                return Err(Error::Io(io::ErrorKind::UnexpectedEof.into()));
            }
            self.reader.feed(chunk.get(..n).unwrap_or(&[]));
        }
    }
}

/// Appends one argument to the last piece of a command (RFC 9051 4.3 strings); a synchronizing
/// literal ends a piece, its octets start the next.
fn encode_arg(pieces: &mut Vec<Vec<u8>>, arg: &Arg) -> Result<()> {
    let mut next = None;
    let Some(out) = pieces.last_mut() else { return Ok(()) };
    match *arg {
        Arg::Atom(a) => {
            if a.is_empty() || a.ends_with('}') || a.bytes().any(|b| !(0x20..0x7f).contains(&b)) {
                return Err(Error::Argument(format!("{a:?} is not an atom")));
            }
            out.extend_from_slice(a.as_bytes());
        }
        Arg::Str(s) => next = string(out, s.as_bytes())?,
        Arg::Mailbox(m) => next = string(out, mutf7::encode(m).as_bytes())?,
        // RFC 3516 4.4: a message with NUL can only go as a literal8.
        Arg::Bytes(b) => {
            let eight = if b.contains(&0) { "~" } else { "" };
            out.extend_from_slice(format!("{eight}{{{}+}}\r\n", b.len()).as_bytes());
            out.extend_from_slice(b);
        }
    }
    pieces.extend(next);
    Ok(())
}

/// RFC 9051 4.3: quoted when short 7-bit text without CR or LF (`"` and `\` escaped), else a
/// LITERAL+ literal (RFC 7888 3), or a synchronizing one past LITERAL-'s 4096 octets (RFC 7888 4),
/// which a server may refuse without ending the session; then the octets are returned, to go after
/// the `+`. No string form holds NUL (RFC 9051 9 CHAR8).
fn string(out: &mut Vec<u8>, s: &[u8]) -> Result<Option<Vec<u8>>> {
    if s.contains(&0) {
        return Err(Error::Argument("text with a NUL character".into()));
    }
    if s.len() > MAX_NONSYNC {
        out.extend_from_slice(format!("{{{}}}\r\n", s.len()).as_bytes());
        return Ok(Some(s.to_vec()));
    }
    if s.len() > MAX_QUOTED || s.iter().any(|&b| b == b'\r' || b == b'\n' || b >= 0x80) {
        out.extend_from_slice(format!("{{{}+}}\r\n", s.len()).as_bytes());
        out.extend_from_slice(s);
        return Ok(None);
    }
    out.push(b'"');
    for &b in s {
        if b == b'"' || b == b'\\' {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'"');
    Ok(None)
}

/// A UID set as sent: digits, `:`, `,`, `*` (RFC 9051 9 sequence-set) or `$` (RFC 5182).
fn check_set(set: &str) -> Result<()> {
    if set.is_empty() || !set.bytes().all(|b| b.is_ascii_digit() || matches!(b, b':' | b',' | b'*' | b'$')) {
        return Err(Error::Argument(format!("{set:?} is not a UID set")));
    }
    Ok(())
}

/// `(flag ...)` with each flag checked (RFC 9051 9 flag: `\` atom, or a keyword atom).
fn flag_list(flags: &[&str]) -> Result<String> {
    for f in flags {
        let word = f.strip_prefix('\\').unwrap_or(f);
        let atom_char = |b: u8| {
            b > b' ' && b < 0x7f && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']')
        };
        if word.is_empty() || !word.bytes().all(atom_char) {
            return Err(Error::Argument(format!("{f:?} is not a flag")));
        }
    }
    Ok(format!("({})", flags.join(" ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAP: usize = 1 << 16;

    /// The responses of `parts` fed one after another, or the reader's error as text.
    fn read(parts: &[&[u8]], max: usize) -> std::result::Result<Vec<Response>, String> {
        let mut r = Reader::new(max);
        let mut out = Vec::new();
        for p in parts {
            r.feed(p);
            while let Some(x) = r.next().map_err(|e| e.to_string())? {
                out.push(x);
            }
        }
        Ok(out)
    }

    /// Feeds `input` split at every pair of points, and byte by byte: the same responses each
    /// time, all of the input consumed.
    fn all_splits(input: &[u8]) -> Vec<Response> {
        let whole = read(&[input], CAP).unwrap();
        for i in 0..=input.len() {
            for j in i..=input.len() {
                let got = read(&[&input[..i], &input[i..j], &input[j..]], CAP).unwrap();
                assert_eq!(got, whole, "split at {i},{j} of {:?}", String::from_utf8_lossy(input));
            }
        }
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(read(&bytes, CAP).unwrap(), whole);
        whole
    }

    fn u(x: Untagged) -> Response {
        Response::Untagged(x)
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn tagged(tag: &str, status: Status, code: Option<&str>, text: &str) -> Response {
        Response::Tagged { tag: tag.into(), status, code: code.map(String::from), text: text.into() }
    }

    #[test]
    fn select_transcript() {
        // RFC 9051 6.3.2.
        let t = b"* 172 EXISTS\r\n* OK [UIDVALIDITY 3857529045] UIDs valid\r\n\
            * OK [UIDNEXT 4392] Predicted next UID\r\n* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n\
            * OK [PERMANENTFLAGS (\\Deleted \\Seen \\*)] Limited\r\n* LIST () \"/\" INBOX\r\n\
            A142 OK [READ-WRITE] SELECT completed\r\n";
        let ok = |code: &str, text: &str| u(Untagged::Ok { code: Some(code.into()), text: text.into() });
        assert_eq!(
            all_splits(t),
            vec![
                u(Untagged::Exists(172)),
                ok("UIDVALIDITY 3857529045", "UIDs valid"),
                ok("UIDNEXT 4392", "Predicted next UID"),
                u(Untagged::Flags(strings(&["\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft"]))),
                ok("PERMANENTFLAGS (\\Deleted \\Seen \\*)", "Limited"),
                u(Untagged::List { flags: vec![], delimiter: Some('/'), name: "INBOX".into() }),
                tagged("A142", Status::Ok, Some("READ-WRITE"), "SELECT completed"),
            ]
        );
    }

    #[test]
    fn list_transcript() {
        // RFC 9051 6.3.9, RFC 3501 5.1.3, RFC 5258 (extended data), RFC 6154 (special use).
        let t = b"* LIST (\\Noselect) \"/\" ~/Mail/foo\r\n* LIST () \".\" #news.comp.mail.misc\r\n\
            * LIST (\\HasNoChildren \\Sent) \"/\" Sent\r\n* LIST () \"/\" \"~peter/mail/&U,BTFw-/&ZeVnLIqe-\"\r\n\
            * LIST () NIL {7}\r\nmy \"box\r\n* LIST (\\Marked) \"\\\\\" \"a\\\\b\"\r\n\
            * LIST () \"/\" \"Foo\" (\"CHILDINFO\" (\"SUBSCRIBED\"))\r\n* LIST () \"/\" Entw&APw-rfe\r\n\
            * LIST () \"/\" \"caf\xc3\xa9\"\r\nA101 OK LIST Completed\r\n";
        let l = |flags: &[&str], d: Option<char>, name: &str| {
            u(Untagged::List { flags: strings(flags), delimiter: d, name: name.into() })
        };
        assert_eq!(
            all_splits(t),
            vec![
                l(&["\\Noselect"], Some('/'), "~/Mail/foo"),
                l(&[], Some('.'), "#news.comp.mail.misc"),
                l(&["\\HasNoChildren", "\\Sent"], Some('/'), "Sent"),
                l(&[], Some('/'), "~peter/mail/台北/日本語"),
                l(&[], None, "my \"box"),
                l(&["\\Marked"], Some('\\'), "a\\b"),
                l(&[], Some('/'), "Foo"),
                l(&[], Some('/'), "Entwürfe"),
                l(&[], Some('/'), "café"),
                tagged("A101", Status::Ok, None, "LIST Completed"),
            ]
        );
    }

    #[test]
    fn status_and_search_transcripts() {
        // RFC 9051 6.3.11, RFC 3501 7.2.5, RFC 4731 3.1.
        let t = b"* STATUS blurdybloop (MESSAGES 231 UIDNEXT 44292)\r\n\
            * STATUS \"Entw&APw-rfe\" (UIDVALIDITY 7 X-FOO (1 2) SIZE 12345678901)\r\n\
            * SEARCH 2 84 882\r\n* SEARCH\r\n* SEARCH \r\n* SEARCH 5 (MODSEQ 917162500)\r\n\
            * ESEARCH (TAG \"a5\") UID ALL 1:3,5,9:8 COUNT 6\r\n* ESEARCH (TAG \"a6\") UID COUNT 0\r\n\
            * ESEARCH ALL 4\r\n* ESEARCH\r\n";
        let st = |name: &str, items: &[(&str, u64)]| {
            let items = items.iter().map(|&(k, v)| (k.to_string(), v)).collect();
            u(Untagged::Status { name: name.into(), items })
        };
        let search = |v: &[u32]| u(Untagged::Search(v.to_vec()));
        assert_eq!(
            all_splits(t),
            vec![
                st("blurdybloop", &[("MESSAGES", 231), ("UIDNEXT", 44292)]),
                st("Entwürfe", &[("UIDVALIDITY", 7), ("SIZE", 12_345_678_901)]),
                search(&[2, 84, 882]),
                search(&[]),
                search(&[]),
                search(&[5]),
                search(&[1, 2, 3, 5, 8, 9]),
                search(&[]),
                search(&[4]),
                search(&[]),
            ]
        );
    }

    #[test]
    fn fetch_transcript_with_literals_nil_and_unsolicited_exists() {
        let header = b"From: a@b\r\nSubject: {3}\r\nhi\r\n\r\n";
        let mut t = b"* 12 FETCH (FLAGS (\\Seen) INTERNALDATE \"17-Jul-1996 02:44:25 -0700\" RFC822.SIZE 4286 \
            ENVELOPE (\"Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\" \"IMAP4rev1 WG mtg summary and minutes\" \
            ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) NIL NIL NIL \"<B27397-0100000@cac.washington.edu>\") \
            BODY (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 3028 92))\r\n"
            .to_vec();
        // Two transcripts, each fed at every pair of split points (the cost grows with the cube).
        let mut got = all_splits(&t);
        t.clear();
        t.extend_from_slice(
            format!("* 2 FETCH (UID 7 BODY[HEADER.FIELDS (\"From\" SUBJECT)] {{{}}}\r\n", header.len())
                .as_bytes(),
        );
        t.extend_from_slice(header);
        t.extend_from_slice(b" BODY[TEXT] NIL)\r\n* 4 EXISTS\r\n");
        t.extend_from_slice(b"* 3 FETCH (UID 9 BODY[]<0> \"sh\\\"ort\" BINARY[1] ~{3}\r\n\0\x01\x02 MODSEQ (12345) FLAGS ())\r\n");
        t.extend_from_slice(
            b"* 2 EXPUNGE\r\n* 4 FETCH (FLAGS (\\Seen $Forwarded))\r\na7 OK [EXPUNGEISSUED] done\r\n",
        );
        got.extend(all_splits(&t));
        let f = |seq: u32, items: FetchData| u(Untagged::Fetch { seq, items });
        assert_eq!(
            got,
            vec![
                f(
                    12,
                    FetchData {
                        flags: Some(strings(&["\\Seen"])),
                        internaldate: Some("17-Jul-1996 02:44:25 -0700".into()),
                        size: Some(4286),
                        ..FetchData::default()
                    }
                ),
                f(
                    2,
                    FetchData {
                        uid: Some(7),
                        sections: vec![
                            ("BODY[HEADER.FIELDS (FROM SUBJECT)]".into(), header.to_vec()),
                            ("BODY[TEXT]".into(), vec![]),
                        ],
                        ..FetchData::default()
                    }
                ),
                u(Untagged::Exists(4)),
                f(
                    3,
                    FetchData {
                        uid: Some(9),
                        flags: Some(vec![]),
                        sections: vec![
                            ("BODY[]<0>".into(), b"sh\"ort".to_vec()),
                            ("BINARY[1]".into(), vec![0, 1, 2])
                        ],
                        ..FetchData::default()
                    }
                ),
                u(Untagged::Expunge(2)),
                f(4, FetchData { flags: Some(strings(&["\\Seen", "$Forwarded"])), ..FetchData::default() }),
                tagged("a7", Status::Ok, Some("EXPUNGEISSUED"), "done"),
            ]
        );
        let Response::Untagged(Untagged::Fetch { items, .. }) = &got[1] else { panic!() };
        assert_eq!(items.section("body.peek[header.fields (from subject)]"), Some(&header[..]));
    }

    #[test]
    fn completions_continuations_bye_and_unknown_responses() {
        let t = b"+ Ready for literal data\r\n+\r\na3 NO [TRYCREATE] Mailbox does not exist\r\n\
            a4 BAD Unknown command\r\na5 ok fine\r\n* NAMESPACE ((\"\" \"/\")) NIL NIL\r\n* 5 RECENT\r\n\
            * CAPABILITY IMAP4rev1 LITERAL+ Move\r\n* NO [ALERT] Disk full\r\n* BYE Autologout; idle for too long\r\n\
            * PREAUTH {2}\r\nhi\r\n*\r\n* 1 FETCH (UID)\r\n* LIST (\\Noselect \"/\" x\r\n* ESEARCH ALL 1:*\r\n\
            * 99999999999 EXISTS\r\n";
        let other = |s: &[u8]| u(Untagged::Other(s.to_vec()));
        assert_eq!(
            all_splits(t),
            vec![
                Response::Continue("Ready for literal data".into()),
                Response::Continue(String::new()),
                tagged("a3", Status::No, Some("TRYCREATE"), "Mailbox does not exist"),
                tagged("a4", Status::Bad, None, "Unknown command"),
                tagged("a5", Status::Ok, None, "fine"),
                other(b"* NAMESPACE ((\"\" \"/\")) NIL NIL"),
                other(b"* 5 RECENT"),
                u(Untagged::Capability(strings(&["IMAP4REV1", "LITERAL+", "MOVE"]))),
                u(Untagged::No { code: Some("ALERT".into()), text: "Disk full".into() }),
                u(Untagged::Bye { code: None, text: "Autologout; idle for too long".into() }),
                other(b"* PREAUTH {2}\r\nhi"),
                other(b"*"),
                other(b"* 1 FETCH (UID)"),
                other(b"* LIST (\\Noselect \"/\" x"),
                other(b"* ESEARCH ALL 1:*"),
                other(b"* 99999999999 EXISTS"),
            ]
        );
    }

    #[test]
    fn malformed_completions_are_errors_and_the_reader_stays_failed() {
        for bad in [&b"a1 MAYBE hi\r\n"[..], b"\r\n", b"a+1 OK x\r\n", b"a1\r\n", b"(x) OK\r\n"] {
            let mut r = Reader::new(CAP);
            r.feed(bad);
            assert!(matches!(r.next(), Err(Error::Protocol(_))), "{:?}", String::from_utf8_lossy(bad));
            r.feed(b"a1 OK fine\r\n");
            assert!(r.next().is_err());
        }
    }

    #[test]
    fn the_cap_holds_before_anything_is_allocated() {
        // A literal past the cap is refused on its announcement, before its octets come.
        for head in
            [&b"* 1 FETCH (BODY[] {4000000000}\r\n"[..], b"* 1 FETCH (BODY[] ~{99999999999999999999999}\r\n"]
        {
            assert!(read(&[head], 1000).unwrap_err().contains("larger than 1000"));
        }
        // A line without an end, past the cap.
        assert!(read(&[&[b'x'; 1001][..]], 1000).is_err());
        assert_eq!(read(&[&[b'x'; 1000][..]], 1000), Ok(vec![]));
        // Exactly at the cap, literal included, then one more octet.
        let at = |n: usize| {
            let mut t = format!("* 1 FETCH (BODY[] {{{n}}}\r\n").into_bytes();
            t.extend(std::iter::repeat_n(b'a', n));
            t.extend_from_slice(b")\r\n");
            t
        };
        let len = at(10).len();
        assert_eq!(read(&[&at(10)], len).map(|v| v.len()), Ok(1));
        assert!(read(&[&at(11)], len).is_err());
        // An ESEARCH result set of more numbers than a quarter of the cap.
        assert!(read(&[b"* ESEARCH ALL 1:4294967295\r\n"], 1000).is_err());
        assert_eq!(read(&[b"* ESEARCH ALL 1:249\r\n"], 1000).map(|v| v.len()), Ok(1));
    }

    #[test]
    fn section_keys() {
        for (name, key) in [
            ("BODY.PEEK[HEADER.FIELDS (From  Subject)]", "BODY[HEADER.FIELDS (FROM SUBJECT)]"),
            ("body[header.fields ( \"to\" )]", "BODY[HEADER.FIELDS (TO)]"),
            ("BODY.PEEK[]<0.100>", "BODY[]<0>"),
            ("BODY[1.2.MIME]", "BODY[1.2.MIME]"),
            ("binary.peek[1]", "BINARY[1]"),
            ("RFC822.HEADER", "RFC822.HEADER"),
        ] {
            assert_eq!(section_key(name.as_bytes()), key, "{name}");
        }
    }

    /// An argument as sent, pieces joined by `|`.
    fn encoded(arg: Arg) -> std::result::Result<String, String> {
        let mut out = vec![Vec::new()];
        encode_arg(&mut out, &arg).map_err(|e| e.to_string())?;
        Ok(out.iter().map(|p| String::from_utf8_lossy(p)).collect::<Vec<_>>().join("|"))
    }

    #[test]
    fn user_text_never_breaks_the_command() {
        assert_eq!(encoded(Arg::Str("say \"hi\" \\o/")).unwrap(), "\"say \\\"hi\\\" \\\\o/\"");
        assert_eq!(encoded(Arg::Str("")).unwrap(), "\"\"");
        assert_eq!(encoded(Arg::Str("a\r\nb")).unwrap(), "{4+}\r\na\r\nb");
        assert_eq!(encoded(Arg::Str("Grüße")).unwrap(), "{7+}\r\nGrüße");
        assert!(encoded(Arg::Str("nul\0")).is_err());
        assert!(encoded(Arg::Str(&"x".repeat(2000))).unwrap().starts_with("{2000+}\r\nxxx"));
        assert_eq!(
            encoded(Arg::Str(&"x".repeat(4097))).unwrap(),
            format!("{{4097}}\r\n|{}", "x".repeat(4097))
        );
        assert_eq!(encoded(Arg::Bytes(b"a\0")).unwrap(), "~{2+}\r\na\0");
        assert_eq!(encoded(Arg::Mailbox("Entwürfe")).unwrap(), "\"Entw&APw-rfe\"");
        assert_eq!(encoded(Arg::Mailbox("a\"b\r\nc")).unwrap(), "\"a\\\"b&AA0ACg-c\"");
        assert_eq!(encoded(Arg::Bytes(b"x")).unwrap(), "{1+}\r\nx");
        for bad in ["", "a\r\nb", "caf\u{e9}", "{5}", "a\tb"] {
            assert!(encoded(Arg::Atom(bad)).is_err(), "{bad:?}");
        }
        assert!(flag_list(&["\\Seen", "$Label1"]).is_ok());
        for bad in ["\\", "a b", "x)", "\\Seen\r\n"] {
            assert!(flag_list(&[bad]).is_err(), "{bad:?}");
        }
        assert!(check_set("1:5,9,*").is_ok());
        assert!(check_set("1 OR").is_err() && check_set("").is_err());
    }

    #[test]
    fn pseudo_random_bytes_never_panic() {
        const PIECES: [&[u8]; 30] = [
            b"* ",
            b"a1 ",
            b"+ ",
            b"OK ",
            b"NO ",
            b"BYE ",
            b"FETCH ",
            b"LIST ",
            b"STATUS ",
            b"ESEARCH ",
            b"SEARCH ",
            b"UID ",
            b"ALL ",
            b"BODY[",
            b"]",
            b"<0>",
            b"(",
            b")",
            b"\"",
            b"\\",
            b"{3}\r\n",
            b"~{2}\r\n",
            b"{99999}\r\n",
            b"NIL",
            b"17",
            b"1:4,9",
            b"\r\n",
            b"\n",
            b"&U,BTFw-",
            b"\xff\0",
        ];
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..4000 {
            let mut input = Vec::new();
            for _ in 0..next() % 40 {
                match next() % 4 {
                    0 => input.push((next() & 0xff) as u8),
                    _ => input.extend_from_slice(PIECES[(next() % PIECES.len() as u64) as usize]),
                }
            }
            let max = 16 + (next() % 200) as usize;
            let mut r = Reader::new(max);
            let mut rest = &input[..];
            while !rest.is_empty() {
                let (now, later) = rest.split_at(1 + (next() as usize) % rest.len());
                rest = later;
                r.feed(now);
                while let Ok(Some(_)) = r.next() {}
                assert!(r.buf.len() - r.start <= max + now.len(), "held past the cap");
            }
        }
    }
}
