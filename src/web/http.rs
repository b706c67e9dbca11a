//! The web listener's HTTP/1.1 codec, free of I/O: `parse` frames one request from the bytes a
//! driver has read (the head through `httparse`, then RFC 9112 6.3 body framing by Content-Length
//! only) and `Response::write_to` serialises the answer. Beside them: cookies (RFC 6265 5.4), query
//! strings and form bodies (application/x-www-form-urlencoded, percent-encoding of RFC 3986 2.1),
//! multipart/form-data uploads (RFC 7578 over RFC 2046 5.1, filename* of RFC 8187) and the
//! IMF-fixdate of the Date field (RFC 9110 5.6.7). Semantics are RFC 9110, syntax RFC 9112.

use crate::timefmt;
use std::time::{SystemTime, UNIX_EPOCH};

/// What one request may take; over them the request is answered with an error and the connection closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Request line and header section, with the empty line (over it: 431).
    pub max_head: usize,
    /// Content-Length (over it: 413).
    pub max_body: usize,
    /// Header field lines (over it: 431).
    pub max_headers: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_head: 16 * 1024, max_body: 1024 * 1024, max_headers: 64 }
    }
}

/// The request method (RFC 9110 9.1: case-sensitive, so `get` is `Other`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Other(String),
}

/// One framed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    /// The target's path, percent-decoded; always starts with '/'.
    pub path: String,
    /// The raw query after '?', without it.
    pub query: String,
    /// HTTP/1.x minor version: 0 or 1.
    pub minor: u8,
    /// Field lines in order, names lowercased. For an absolute-form target the Host field holds the
    /// target's authority (RFC 9112 3.2.2).
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

/// What `parse` made of the buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// A whole request and the bytes it took from the front of the buffer; pipelined requests
    /// behind it stay there.
    Complete(Request, usize),
    /// More bytes are needed.
    Partial,
    /// Answer with this status, then close the connection.
    Error(u16),
}

/// Frames the request at the start of `buf`.
pub fn parse(buf: &[u8], limits: &Limits) -> Parsed {
    match parse_request(buf, limits) {
        Ok(Some((request, consumed))) => Parsed::Complete(request, consumed),
        Ok(None) => Parsed::Partial,
        Err(status) => Parsed::Error(status),
    }
}

/// Whether `buf` begins with a complete HTTP/1.1 request head that asks for `100 Continue` before
/// it sends its body (RFC 9110 10.1.1); the caller answers it once, while the body is awaited.
pub fn expects_continue(buf: &[u8], limits: &Limits) -> bool {
    let window = &buf[..buf.len().min(limits.max_head)];
    let mut slots = vec![httparse::EMPTY_HEADER; limits.max_headers];
    let mut head = httparse::Request::new(&mut slots);
    match head.parse(window) {
        Ok(httparse::Status::Complete(_)) if head.version == Some(1) => head
            .headers
            .iter()
            .any(|h| h.name.eq_ignore_ascii_case("expect") && h.value.eq_ignore_ascii_case(b"100-continue")),
        _ => false,
    }
}

fn parse_request(buf: &[u8], limits: &Limits) -> Result<Option<(Request, usize)>, u16> {
    let window = &buf[..buf.len().min(limits.max_head)];
    let mut slots = vec![httparse::EMPTY_HEADER; limits.max_headers];
    let mut head = httparse::Request::new(&mut slots);
    // RFC 9112 2.2: httparse skips empty lines before the request line, and takes a bare LF as a
    // line end; it refuses obs-fold in requests (RFC 9112 5.2) and whitespace before a field
    // name's colon (RFC 9112 5.1).
    let head_len = match head.parse(window) {
        Ok(httparse::Status::Complete(n)) => n,
        // RFC 6585 5: a head that does not fit is 431.
        Ok(httparse::Status::Partial) if buf.len() >= limits.max_head => return Err(431),
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(431),
        Err(httparse::Error::Version) => return Err(version_status(window)),
        Err(_) => return Err(400),
    };
    let (Some(method), Some(target), Some(minor)) = (head.method, head.path, head.version) else {
        return Err(400);
    };
    let method = match method {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "POST" => Method::Post,
        other => Method::Other(other.to_string()),
    };
    let mut headers: Vec<(String, Vec<u8>)> =
        head.headers.iter().map(|h| (h.name.to_ascii_lowercase(), h.value.to_vec())).collect();

    // RFC 9112 3.2: 400 for an HTTP/1.1 request without a Host field, for more than one, and for
    // an invalid value.
    let hosts: Vec<&[u8]> = field_values(&headers, "host").collect();
    if hosts.len() > 1 || (minor == 1 && hosts.is_empty()) {
        return Err(400);
    }
    if hosts.iter().any(|h| !std::str::from_utf8(h).is_ok_and(|h| authority_ok(h.trim(), true))) {
        return Err(400);
    }
    let (path, query, authority) = parse_target(target)?;
    if let Some(authority) = authority {
        // RFC 9112 3.2.2: the target's authority replaces the Host field.
        match headers.iter_mut().find(|(n, _)| n == "host") {
            Some((_, value)) => *value = authority.as_bytes().to_vec(),
            None => headers.push(("host".to_string(), authority.as_bytes().to_vec())),
        }
    }

    // RFC 9112 6.3: Transfer-Encoding with Content-Length is a smuggling attempt (400); no browser
    // sends a chunked request body, so one is refused as 411 Length Required.
    if field_values(&headers, "transfer-encoding").next().is_some() {
        let with_length = field_values(&headers, "content-length").next().is_some();
        return Err(if with_length { 400 } else { 411 });
    }
    // RFC 9112 6.3 item 7: a request with neither has no body.
    let length = content_length(&headers, limits.max_body)?.unwrap_or(0);
    let Some(end) = head_len.checked_add(length) else { return Err(413) };
    if buf.len() < end {
        return Ok(None);
    }
    let body = buf[head_len..end].to_vec();
    Ok(Some((Request { method, path, query, minor, headers, body }, end)))
}

/// The values of every field line named `name` (lowercase).
fn field_values<'a>(headers: &'a [(String, Vec<u8>)], name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
    headers.iter().filter(move |(n, _)| n == name).map(|(_, v)| v.as_slice())
}

/// RFC 9110 6.6.2 / RFC 9112 2.3: an HTTP-version other than 1.0 and 1.1 is 505; anything that is
/// not an HTTP-version at all is a malformed request line.
fn version_status(head: &[u8]) -> u16 {
    let start = head.iter().position(|&b| b != b'\r' && b != b'\n').unwrap_or(0);
    let line = &head[start..];
    let line = &line[..line.iter().position(|&b| b == b'\r' || b == b'\n').unwrap_or(line.len())];
    let version = line.rsplit(|&b| b == b' ').next().unwrap_or(b"");
    match version.strip_prefix(b"HTTP/") {
        Some(v) if v.first().is_some_and(u8::is_ascii_digit) => 505,
        _ => 400,
    }
}

/// RFC 9112 3.2: splits a request-target into (decoded path, raw query, authority of the absolute
/// form).
fn parse_target(target: &str) -> Result<(String, String, Option<&str>), u16> {
    // RFC 3986 2: only visible ASCII; a fragment is not part of a request-target (RFC 9112 3.2).
    if !target.bytes().all(|b| b.is_ascii_graphic() && b != b'#') {
        return Err(400);
    }
    let (authority, rest) = if target.starts_with('/') {
        (None, target)
    } else {
        // RFC 9112 3.2.2: absolute-form; the scheme is case-insensitive (RFC 3986 3.1). The
        // asterisk form (OPTIONS *) and the authority form (CONNECT) are not served here.
        let lower = target.get(..8).unwrap_or(target).to_ascii_lowercase();
        let skip = if lower.starts_with("http://") {
            7
        } else if lower.starts_with("https://") {
            8
        } else {
            return Err(400);
        };
        let after = &target[skip..];
        let end = after.find(['/', '?']).unwrap_or(after.len());
        let authority = &after[..end];
        // RFC 9110 4.2.1: an empty host is invalid; 4.2.4: userinfo is an error.
        if !authority_ok(authority, false) {
            return Err(400);
        }
        (Some(authority), &after[end..])
    };
    let (raw_path, query) = rest.split_once('?').unwrap_or((rest, ""));
    // RFC 9110 4.2.3: an empty path is "/".
    let raw_path = if raw_path.is_empty() { "/" } else { raw_path };
    let decoded = percent_decode_strict(raw_path.as_bytes()).ok_or(400u16)?;
    let path = String::from_utf8(decoded).map_err(|_| 400u16)?;
    if path.contains('\0') {
        return Err(400);
    }
    Ok((path, query.to_string(), authority))
}

/// RFC 9110 7.2 / RFC 3986 3.2.2: `uri-host [ ":" port ]`, the host a reg-name or an IP literal.
fn authority_ok(s: &str, empty_ok: bool) -> bool {
    let port_ok = |p: &str| p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit());
    if let Some(rest) = s.strip_prefix('[') {
        let Some((literal, after)) = rest.split_once(']') else { return false };
        let literal_ok =
            !literal.is_empty() && literal.bytes().all(|b| b.is_ascii_hexdigit() || b":.".contains(&b));
        return literal_ok && (after.is_empty() || after.strip_prefix(':').is_some_and(port_ok));
    }
    let (host, port) = s.rsplit_once(':').unwrap_or((s, ""));
    let reg_name = |b: u8| b.is_ascii_alphanumeric() || b"-._~%!$&'()*+,;=".contains(&b);
    (empty_ok || !host.is_empty()) && host.bytes().all(reg_name) && port_ok(port)
}

/// RFC 9110 8.6: the Content-Length, if any. Repeated lines or a list are accepted when every
/// value is the same; different or non-numeric values are 400 (RFC 9112 6.3 item 5), a value over
/// `max` is 413 before any body is read.
fn content_length(headers: &[(String, Vec<u8>)], max: usize) -> Result<Option<usize>, u16> {
    let mut seen: Option<&[u8]> = None;
    for value in field_values(headers, "content-length") {
        for item in value.split(|&b| b == b',') {
            let item = trim_ows(item);
            if item.is_empty() || !item.iter().all(u8::is_ascii_digit) {
                return Err(400);
            }
            let digits = match item.iter().position(|&b| b != b'0') {
                Some(i) => &item[i..],
                None => b"0",
            };
            match seen {
                Some(previous) if previous != digits => return Err(400),
                _ => seen = Some(digits),
            }
        }
    }
    let Some(digits) = seen else { return Ok(None) };
    let mut n: usize = 0;
    for &d in digits {
        n = n.checked_mul(10).and_then(|n| n.checked_add(usize::from(d - b'0'))).ok_or(413u16)?;
    }
    if n > max { Err(413) } else { Ok(Some(n)) }
}

/// RFC 9110 5.6.3: strips optional whitespace (SP, HTAB) from both ends.
fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

impl Request {
    /// The first field named `name` (case-insensitive), trimmed, if it is valid UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        let (_, value) = self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name))?;
        std::str::from_utf8(trim_ows(value)).ok()
    }

    /// RFC 9112 9.3: HTTP/1.1 stays open unless a Connection field says `close`; HTTP/1.0 only
    /// with `keep-alive` (RFC 9112 C.2.2).
    pub fn keep_alive(&self) -> bool {
        let (mut close, mut keep) = (false, false);
        for value in field_values(&self.headers, "connection") {
            for option in value.split(|&b| b == b',').map(trim_ows) {
                close |= option.eq_ignore_ascii_case(b"close");
                keep |= option.eq_ignore_ascii_case(b"keep-alive");
            }
        }
        !close && (self.minor >= 1 || keep)
    }

    /// RFC 6265 5.4: the value of the first cookie named `name` (case-sensitive) in the Cookie
    /// field(s), `a=b; c=d`; a quoted value keeps its quotes, as the user agent stored it.
    pub fn cookie(&self, name: &str) -> Option<&str> {
        for value in field_values(&self.headers, "cookie") {
            let Ok(value) = std::str::from_utf8(value) else { continue };
            for pair in value.split(';') {
                if let Some((n, v)) = pair.split_once('=')
                    && n.trim() == name
                {
                    return Some(v.trim());
                }
            }
        }
        None
    }

    /// The first value of `name` in the query string, decoded ('+' is a space).
    pub fn query_param(&self, name: &str) -> Option<String> {
        pairs(self.query.as_bytes()).find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// The pairs of an application/x-www-form-urlencoded body, decoded; empty when the
    /// Content-Type is another one.
    pub fn form(&self) -> Vec<(String, String)> {
        let media = self.header("content-type").map(|ct| split_parameters(ct).0);
        match media {
            Some(m) if m.eq_ignore_ascii_case("application/x-www-form-urlencoded") => {
                pairs(&self.body).collect()
            }
            _ => Vec::new(),
        }
    }

    /// The Host field (the target's authority for an absolute-form target), if not empty.
    pub fn host(&self) -> Option<&str> {
        self.header("host").filter(|h| !h.is_empty())
    }
}

/// `a=1&b=2` decoded; empty pairs skipped, a name without '=' has an empty value.
fn pairs(s: &[u8]) -> impl Iterator<Item = (String, String)> + '_ {
    s.split(|&b| b == b'&').filter(|p| !p.is_empty()).map(|p| {
        let (n, v) = match p.iter().position(|&b| b == b'=') {
            Some(i) => (&p[..i], &p[i + 1..]),
            None => (p, &[][..]),
        };
        (decode_lossy(n), decode_lossy(v))
    })
}

fn decode_lossy(s: &[u8]) -> String {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match (s[i], hex_pair(&s[i..])) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
                continue;
            }
            (b'+', _) => out.push(b' '),
            (b, _) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The byte of `%XX` at the start of `s`.
fn hex_pair(s: &[u8]) -> Option<u8> {
    let hex = |b: u8| (b as char).to_digit(16);
    match s {
        [b'%', hi, lo, ..] => Some((hex(*hi)? * 16 + hex(*lo)?) as u8),
        _ => None,
    }
}

/// RFC 3986 2.1: `%XX` decoded; a '%' not followed by two hex digits is an error.
fn percent_decode_strict(s: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%' {
            out.push(hex_pair(&s[i..])?);
            i += 3;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    Some(out)
}

/// A query or form value decoded: '+' is a space, `%XX` a byte (a stray '%' is kept), invalid
/// UTF-8 replaced.
pub fn url_decode(s: &str) -> String {
    decode_lossy(s.as_bytes())
}

/// RFC 3986 2.3: unreserved characters kept, every other byte of the UTF-8 as `%XX`.
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// RFC 9110 5.6.6: `type/subtype; name=value; name="quoted"` as the first item and the parameters,
/// names lowercased, quoted-strings unescaped (RFC 9110 5.6.4).
fn split_parameters(s: &str) -> (&str, Vec<(String, String)>) {
    let (first, mut rest) = s.split_once(';').unwrap_or((s, ""));
    let mut params = Vec::new();
    loop {
        rest = rest.trim_start_matches([' ', '\t', ';']);
        if rest.is_empty() {
            break;
        }
        let end = rest.find(['=', ';']).unwrap_or(rest.len());
        let name = rest[..end].trim().to_ascii_lowercase();
        rest = &rest[end..];
        let mut value = String::new();
        if let Some(after) = rest.strip_prefix('=') {
            let after = after.trim_start_matches([' ', '\t']);
            if let Some(quoted) = after.strip_prefix('"') {
                let mut chars = quoted.char_indices();
                rest = "";
                while let Some((i, c)) = chars.next() {
                    match c {
                        '"' => {
                            rest = &quoted[i + 1..];
                            break;
                        }
                        '\\' => value.extend(chars.next().map(|(_, c)| c)),
                        c => value.push(c),
                    }
                }
            } else {
                let end = after.find(';').unwrap_or(after.len());
                value = after[..end].trim().to_string();
                rest = &after[end..];
            }
        }
        params.push((name, value));
    }
    (first.trim(), params)
}

/// An answer to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    /// Fields besides Date, Content-Length and Connection, which `write_to` adds.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn new(status: u16) -> Response {
        Response { status, headers: Vec::new(), body: Vec::new() }
    }

    pub fn html(status: u16, body: String) -> Response {
        Response { body: body.into_bytes(), ..Response::new(status) }
            .with("Content-Type", "text/html; charset=utf-8")
    }

    pub fn text(status: u16, body: &str) -> Response {
        Response { body: body.as_bytes().to_vec(), ..Response::new(status) }
            .with("Content-Type", "text/plain; charset=utf-8")
    }

    /// RFC 9110 15.4.4: 303 See Other, the answer to a POST that worked.
    pub fn redirect(location: &str) -> Response {
        Response::new(303).with("Location", location)
    }

    /// Adds a field. A name that is not a token or a value with a control character (CR, LF, NUL:
    /// a header injection) is dropped; callers check values that come from a peer with [`field_ok`].
    pub fn with(mut self, name: &str, value: &str) -> Response {
        let ok = field_ok(name, value);
        debug_assert!(ok, "header injection refused: {name:?}: {value:?}");
        if ok {
            self.headers.push((name.to_string(), value.to_string()));
        }
        self
    }

    /// The status line, the fields, Date, Content-Length, `Connection: close` unless `keep_alive`,
    /// then the body unless `head_only` (the answer to HEAD, RFC 9110 9.3.2).
    pub fn write_to(&self, out: &mut Vec<u8>, head_only: bool, keep_alive: bool) {
        let status = if (100..=999).contains(&self.status) { self.status } else { 500 };
        let mut head = format!("HTTP/1.1 {status} {}\r\n", reason(status));
        let ours = |n: &str| {
            ["content-length", "connection", "transfer-encoding"].iter().any(|o| n.eq_ignore_ascii_case(o))
        };
        for (name, value) in &self.headers {
            // The fields are public: one added without `with` is checked here too.
            if field_ok(name, value) && !ours(name) {
                head.push_str(&format!("{name}: {value}\r\n"));
            }
        }
        // RFC 9110 6.6.1: an origin server with a clock sends Date.
        if !self.headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("date")) {
            head.push_str(&format!("Date: {}\r\n", http_date(SystemTime::now())));
        }
        // RFC 9110 8.6 and RFC 9112 6.3: 1xx, 204 and 304 carry no body and no Content-Length.
        let bodyless = status < 200 || status == 204 || status == 304;
        if !bodyless {
            head.push_str(&format!("Content-Length: {}\r\n", self.body.len()));
        }
        if !keep_alive {
            head.push_str("Connection: close\r\n");
        }
        head.push_str("\r\n");
        out.extend_from_slice(head.as_bytes());
        if !head_only && !bodyless {
            out.extend_from_slice(&self.body);
        }
    }
}

/// RFC 9110 5.1 / 5.5: a token for a name; a value without control characters other than HTAB.
pub fn field_ok(name: &str, value: &str) -> bool {
    let tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    !name.is_empty()
        && name.bytes().all(tchar)
        && value.bytes().all(|b| b == b'\t' || !(b.is_ascii_control()))
}

/// RFC 9110 5.6.7: IMF-fixdate, `Sun, 06 Nov 1994 08:49:37 GMT`.
pub fn http_date(t: SystemTime) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = (secs / 86_400) as i64;
    let (year, month, day) = timefmt::civil_from_days(days);
    let s = secs % 86_400;
    format!(
        "{}, {day:02} {} {year} {:02}:{:02}:{:02} GMT",
        DAYS[(days % 7) as usize],
        MONTHS[(month as usize).clamp(1, 12) - 1],
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// RFC 9110 15: the reason phrase of the status codes this server uses; empty for others (RFC 9112 4).
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

/// One part of a multipart/form-data body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub name: String,
    pub filename: Option<String>,
    pub content_type: Option<String>,
    pub data: Vec<u8>,
}

/// RFC 7578: the parts of a multipart/form-data body, the boundary taken from `content_type`.
pub fn multipart(content_type: &str, body: &[u8], max_parts: usize) -> Result<Vec<Part>, String> {
    let (media, params) = split_parameters(content_type);
    if !media.eq_ignore_ascii_case("multipart/form-data") {
        return Err(format!("not multipart/form-data: {media:?}"));
    }
    let boundary = params.iter().find(|(n, _)| n == "boundary").map(|(_, v)| v.as_bytes());
    // RFC 2046 5.1.1: a boundary is 1 to 70 characters.
    let boundary = boundary.filter(|b| (1..=70).contains(&b.len())).ok_or("no boundary parameter")?;
    // RFC 2046 5.1.1: the delimiter is CRLF "--" boundary; the first one may open the body.
    let delimiter = [b"\r\n--", boundary].concat();
    let (mut at, mut closed) = match body.strip_prefix(&delimiter[2..]).and_then(delimiter_end) {
        Some((n, closed)) => (delimiter.len() - 2 + n, closed),
        None => next_delimiter(body, 0, &delimiter)
            .map(|(_, end, c)| (end, c))
            .ok_or("no boundary in the body")?,
    };
    let mut parts = Vec::new();
    while !closed {
        if parts.len() == max_parts {
            return Err(format!("more than {max_parts} parts"));
        }
        let (start, end, c) = next_delimiter(body, at, &delimiter).ok_or("no closing delimiter")?;
        parts.push(part(&body[at..start])?);
        (at, closed) = (end, c);
    }
    Ok(parts)
}

/// RFC 2046 5.1.1: after a delimiter, "--" closes the body; otherwise transport padding and CRLF
/// end its line. Returns the length of that and whether it closes; None: not a delimiter.
fn delimiter_end(rest: &[u8]) -> Option<(usize, bool)> {
    if rest.starts_with(b"--") {
        return Some((2, true));
    }
    let padding = rest.iter().take_while(|&&b| b == b' ' || b == b'\t').count();
    rest[padding..].starts_with(b"\r\n").then_some((padding + 2, false))
}

/// The next delimiter at or after `from`: (its start, the end of its line, whether it closes).
/// Text that starts like one but goes on otherwise is content.
fn next_delimiter(body: &[u8], mut from: usize, delimiter: &[u8]) -> Option<(usize, usize, bool)> {
    while let Some(i) = body.get(from..)?.windows(delimiter.len()).position(|w| w == delimiter) {
        let start = from + i;
        let after = start + delimiter.len();
        if let Some((n, closed)) = delimiter_end(&body[after..]) {
            return Some((start, after + n, closed));
        }
        from = start + 1;
    }
    None
}

/// One body part: header fields, an empty line, the data (binary, as it is).
fn part(raw: &[u8]) -> Result<Part, String> {
    let (head, data) = match raw.strip_prefix(b"\r\n") {
        Some(data) => (&[][..], data),
        None => {
            let i = raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or("a part without an empty line")?;
            (&raw[..i], &raw[i + 4..])
        }
    };
    let (mut disposition, mut content_type) = (None, None);
    for line in head.split(|&b| b == b'\n') {
        let line = String::from_utf8_lossy(line.strip_suffix(b"\r").unwrap_or(line));
        let (name, value) = line.split_once(':').ok_or("a part header without ':'")?;
        if name.is_empty() || name.starts_with([' ', '\t']) {
            return Err("a malformed part header".to_string());
        }
        if name.trim().eq_ignore_ascii_case("content-disposition") {
            disposition.get_or_insert_with(|| value.trim().to_string());
        } else if name.trim().eq_ignore_ascii_case("content-type") {
            content_type.get_or_insert_with(|| value.trim().to_string());
        }
    }
    // RFC 7578 4.2: every part has `Content-Disposition: form-data; name=...`.
    let disposition = disposition.ok_or("a part without Content-Disposition")?;
    let (kind, params) = split_parameters(&disposition);
    if !kind.eq_ignore_ascii_case("form-data") {
        return Err(format!("a part's disposition is {kind:?}"));
    }
    let param = |n: &str| params.iter().find(|(name, _)| name == n).map(|(_, v)| v.as_str());
    let name = param("name").ok_or("a part without a name")?.to_string();
    // RFC 6266 4.3: filename* (RFC 8187) before filename.
    let filename = param("filename*").and_then(ext_value).or_else(|| param("filename").map(str::to_string));
    Ok(Part { name, filename, content_type, data: data.to_vec() })
}

/// RFC 8187 3.2: `charset'[language]'value-chars`, UTF-8 or ISO-8859-1.
fn ext_value(s: &str) -> Option<String> {
    let mut fields = s.splitn(3, '\'');
    let (charset, _language, value) = (fields.next()?, fields.next()?, fields.next()?);
    let bytes = percent_decode_strict(value.as_bytes())?;
    if charset.eq_ignore_ascii_case("utf-8") {
        String::from_utf8(bytes).ok()
    } else if charset.eq_ignore_ascii_case("iso-8859-1") {
        Some(bytes.iter().map(|&b| char::from(b)).collect())
    } else {
        None
    }
}

// The tests are many; they live beside this file to keep it readable.
#[cfg(test)]
mod tests;
