//! The I/O-free half of the webmail's IMAP client: bytes in, complete responses out (RFC 9051
//! 7, with literals and literal8 counted, never scanned, and a cap on each response).

use super::*;

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
    pub(super) buf: Vec<u8>,
    /// Where the current response starts in `buf` (bytes before it are consumed).
    pub(super) start: usize,
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
