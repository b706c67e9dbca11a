//! Outbound SMTP, no I/O: the server-reply parser (RFC 5321 4.2 reply syntax, 4.2.1 multi-line replies,
//! 4.5.3.1.5 reply line length; RFC 2034 / RFC 3463 enhanced status codes) and the EHLO capability parser
//! (RFC 5321 4.1.1.1, RFC 1870 SIZE, RFC 2920 PIPELINING, RFC 3207 STARTTLS, RFC 6152 8BITMIME,
//! RFC 6531 SMTPUTF8, RFC 4954 AUTH).

use std::fmt;

/// Longest reply line accepted, CRLF included. RFC 5321 4.5.3.1.5 sets 512 as the minimum a client must
/// take; real servers send longer lines, so buzon takes up to 4096 and calls anything longer an error.
pub const MAX_LINE: usize = 4096;
/// Most lines in one reply (an EHLO reply has one per extension).
pub const MAX_LINES: usize = 100;

/// One reply from the server, possibly multi-line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerReply {
    pub code: u16,
    /// RFC 3463 class.subject.detail from the first line, when its class matches the reply code's.
    pub enhanced: Option<(u8, u16, u16)>,
    /// The text after `DDD-`/`DDD ` of each line, control characters replaced by `?`.
    pub lines: Vec<String>,
}

impl ServerReply {
    pub fn is_positive(&self) -> bool {
        (200..400).contains(&self.code)
    }

    /// 4xx: try again later.
    pub fn is_temporary(&self) -> bool {
        (400..500).contains(&self.code)
    }

    /// 5xx: give up.
    pub fn is_permanent(&self) -> bool {
        self.code >= 500
    }
}

/// `550 5.1.1 <a@b>: no such user more text`: lines joined by a space, the enhanced code (repeated on
/// every line per RFC 2034 3) kept once. This is the form logs and bounces show.
impl fmt::Display for ServerReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:03}", self.code)?;
        for (i, line) in self.lines.iter().enumerate() {
            let mut text = line.as_str();
            if i > 0
                && let Some((rest, _)) = split_enhanced(text, self.code)
            {
                text = rest;
            }
            if !text.is_empty() {
                write!(f, " {text}")?;
            }
        }
        Ok(())
    }
}

/// Why the server's bytes are not a reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReplyError {
    /// A line longer than [`MAX_LINE`].
    LineTooLong,
    /// More than [`MAX_LINES`] lines.
    TooManyLines,
    /// Not `DDD`, `DDD-text` or `DDD text`, or the code changed between lines (RFC 5321 4.2.1).
    Malformed(String),
}

impl fmt::Display for ReplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplyError::LineTooLong => write!(f, "reply line longer than {MAX_LINE} octets"),
            ReplyError::TooManyLines => write!(f, "reply longer than {MAX_LINES} lines"),
            ReplyError::Malformed(l) => write!(f, "malformed reply: {l}"),
        }
    }
}

/// Incremental reply parser. Feed it whatever the socket gave; it consumes complete lines and returns a
/// reply once its last line has arrived. It holds at most [`MAX_LINES`] lines of at most [`MAX_LINE`].
#[derive(Default)]
pub struct ReplyParser {
    code: Option<u16>,
    lines: Vec<String>,
}

impl ReplyParser {
    pub fn new() -> Self {
        ReplyParser::default()
    }

    /// Consumes complete lines from `buf` up to the end of one reply. Returns how many bytes were
    /// consumed and the reply if it is complete; the caller keeps the rest of `buf` for the next call.
    /// A partial line is left unconsumed unless it is already too long. After an error the parser is
    /// reset, but the connection should be dropped: the stream is no longer in step.
    pub fn feed(&mut self, buf: &[u8]) -> Result<(usize, Option<ServerReply>), ReplyError> {
        let mut used = 0;
        while let Some(pos) = buf[used..].iter().position(|&b| b == b'\n') {
            let raw = &buf[used..used + pos];
            used += pos + 1;
            if raw.len() + 1 > MAX_LINE {
                *self = ReplyParser::default();
                return Err(ReplyError::LineTooLong);
            }
            // RFC 5321 2.3.8: lines end in CRLF; a bare LF is tolerated on input.
            let line = raw.strip_suffix(b"\r").unwrap_or(raw);
            match self.line(line) {
                Ok(Some(r)) => return Ok((used, Some(r))),
                Ok(None) => {}
                Err(e) => {
                    *self = ReplyParser::default();
                    return Err(e);
                }
            }
        }
        if buf.len() - used >= MAX_LINE {
            *self = ReplyParser::default();
            return Err(ReplyError::LineTooLong);
        }
        Ok((used, None))
    }

    /// One line without its line end.
    fn line(&mut self, line: &[u8]) -> Result<Option<ServerReply>, ReplyError> {
        let bad = || ReplyError::Malformed(printable(&line[..line.len().min(80)]));
        // RFC 5321 4.2: Reply-code = %x32-35 %x30-35 %x30-39
        let code = match line {
            [a @ b'2'..=b'5', b @ b'0'..=b'5', c @ b'0'..=b'9', ..] => {
                u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0')
            }
            _ => return Err(bad()),
        };
        let (last, text) = match line.get(3) {
            None => (true, &line[3..]),
            Some(b' ') => (true, &line[4..]),
            Some(b'-') => (false, &line[4..]),
            Some(_) => return Err(bad()),
        };
        // RFC 5321 4.2.1: every line of a multi-line reply carries the same code.
        if self.code.is_some_and(|c| c != code) {
            return Err(bad());
        }
        if self.lines.len() >= MAX_LINES {
            return Err(ReplyError::TooManyLines);
        }
        self.code = Some(code);
        self.lines.push(printable(text));
        if !last {
            return Ok(None);
        }
        let lines = std::mem::take(&mut self.lines);
        self.code = None;
        let enhanced = lines.first().and_then(|l| split_enhanced(l, code)).map(|(_, e)| e);
        Ok(Some(ServerReply { code, enhanced, lines }))
    }
}

/// Text as UTF-8 where it is, `?` for control characters and invalid bytes (RFC 6531 3.7.3 allows UTF-8
/// reply text; nothing else is trusted into logs or bounces).
fn printable(b: &[u8]) -> String {
    String::from_utf8_lossy(b)
        .chars()
        .map(|c| if c.is_control() || c == '\u{fffd}' { '?' } else { c })
        .collect()
}

/// RFC 2034 4: `status-code SP text` where the class equals the reply code's first digit.
/// Returns the text after it and the code.
fn split_enhanced(text: &str, code: u16) -> Option<(&str, (u8, u16, u16))> {
    let (word, rest) = match text.split_once(' ') {
        Some((w, r)) => (w, r),
        None => (text, ""),
    };
    let mut parts = word.split('.');
    let (class, subject, detail) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let digits =
        |s: &str, max: usize| !s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_digit());
    if !(digits(class, 1) && digits(subject, 3) && digits(detail, 3)) {
        return None;
    }
    let class: u8 = class.parse().ok()?;
    if u16::from(class) != code / 100 {
        return None;
    }
    Some((rest, (class, subject.parse().ok()?, detail.parse().ok()?)))
}

/// What the server said it supports in its EHLO reply.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Capabilities {
    pub pipelining: bool,
    pub starttls: bool,
    pub eight_bit_mime: bool,
    pub smtputf8: bool,
    /// RFC 1870 6: `SIZE n`; `Some(0)` or a bare `SIZE` means no fixed limit.
    pub size: Option<u64>,
    /// SASL mechanisms, upper case (RFC 4954 3; also the old `AUTH=` form).
    pub auth: Vec<String>,
}

impl Capabilities {
    /// From an EHLO reply: the first line is the server's name, each further line `keyword [params]`
    /// (RFC 5321 4.1.1.1). Unknown keywords are ignored. A HELO reply gives no capabilities.
    pub fn parse(reply: &ServerReply) -> Capabilities {
        let mut caps = Capabilities::default();
        for line in reply.lines.iter().skip(1) {
            let mut words = line.split([' ', '=']).filter(|w| !w.is_empty());
            let Some(keyword) = words.next() else { continue };
            match keyword.to_ascii_uppercase().as_str() {
                "PIPELINING" => caps.pipelining = true,
                "STARTTLS" => caps.starttls = true,
                "8BITMIME" => caps.eight_bit_mime = true,
                "SMTPUTF8" => caps.smtputf8 = true,
                "SIZE" => caps.size = Some(words.next().and_then(|n| n.parse().ok()).unwrap_or(0)),
                "AUTH" => {
                    for m in words {
                        let m = m.to_ascii_uppercase();
                        if !caps.auth.contains(&m) && caps.auth.len() < 32 {
                            caps.auth.push(m);
                        }
                    }
                }
                _ => {}
            }
        }
        caps
    }
}

/// Parses every complete reply in `bytes` (tests and the fuzz target).
pub fn parse_all(bytes: &[u8]) -> Result<Vec<ServerReply>, ReplyError> {
    let mut parser = ReplyParser::new();
    let mut out = Vec::new();
    let mut at = 0;
    loop {
        let (used, reply) = parser.feed(&bytes[at..])?;
        at += used;
        match reply {
            Some(r) => out.push(r),
            None => return Ok(out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(bytes: &[u8]) -> Result<ServerReply, ReplyError> {
        let mut v = parse_all(bytes)?;
        assert_eq!(v.len(), 1, "{bytes:?}");
        Ok(v.remove(0))
    }

    #[test]
    fn replies_table() {
        // (input, code, enhanced, display)
        type Case = (&'static [u8], u16, Option<(u8, u16, u16)>, &'static str);
        let cases: &[Case] = &[
            (b"220 mx.example ESMTP\r\n", 220, None, "220 mx.example ESMTP"),
            (b"250 2.1.0 Ok\r\n", 250, Some((2, 1, 0)), "250 2.1.0 Ok"),
            (b"250\r\n", 250, None, "250"),
            (b"250 \r\n", 250, None, "250"),
            (b"354 End data with <CR><LF>.<CR><LF>\n", 354, None, "354 End data with <CR><LF>.<CR><LF>"),
            (
                b"550-5.1.1 <a@b>: no such user\r\n550 5.1.1 see the docs\r\n",
                550,
                Some((5, 1, 1)),
                "550 5.1.1 <a@b>: no such user see the docs",
            ),
            // Class must match the code: 4.x.x on a 5xx is only text.
            (b"550 4.1.1 odd\r\n", 550, None, "550 4.1.1 odd"),
            (b"451 4.3.0\r\n", 451, Some((4, 3, 0)), "451 4.3.0"),
            (b"250-\r\n250 last\r\n", 250, None, "250 last"),
            (b"421 bye \x01\x1b[31m red\r\n", 421, None, "421 bye ??[31m red"),
            (b"550 \xff\xfe bytes\r\n", 550, None, "550 ?? bytes"),
            (
                "550 5.1.1 usuario desconocido ñ\r\n".as_bytes(),
                550,
                Some((5, 1, 1)),
                "550 5.1.1 usuario desconocido ñ",
            ),
        ];
        for (input, code, enh, shown) in cases {
            let r = one(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
            assert_eq!(r.code, *code, "{input:?}");
            assert_eq!(r.enhanced, *enh, "{input:?}");
            assert_eq!(r.to_string(), *shown, "{input:?}");
        }
    }

    #[test]
    fn garbage_table() {
        let cases: &[&[u8]] = &[
            b"hello\r\n",
            b"25\r\n",
            b"2500 x\r\n",
            b"250x\r\n",
            b"650 no\r\n",
            b"160 no\r\n",
            b"260 no\r\n",
            b"\r\n",
            b"250-a\r\n251 b\r\n",
            b"250-a\r\n\r\n",
            b"+OK pop3\r\n",
        ];
        for input in cases {
            assert!(matches!(parse_all(input), Err(ReplyError::Malformed(_))), "{input:?}");
        }
    }

    #[test]
    fn line_limits() {
        // 4096 octets with CRLF is fine, 4097 is not.
        let mut ok = b"250 ".to_vec();
        ok.resize(MAX_LINE - 2, b'x');
        ok.extend_from_slice(b"\r\n");
        assert_eq!(one(&ok).map(|r| r.code), Ok(250));
        let mut long = b"250 ".to_vec();
        long.resize(MAX_LINE - 1, b'x');
        long.extend_from_slice(b"\r\n");
        assert_eq!(parse_all(&long), Err(ReplyError::LineTooLong));
        // A partial line at the limit is an error before its end arrives.
        let mut p = ReplyParser::new();
        assert_eq!(p.feed(&vec![b'2'; MAX_LINE - 1]), Ok((0, None)));
        assert_eq!(p.feed(&vec![b'2'; MAX_LINE]), Err(ReplyError::LineTooLong));
        // 100 lines are fine, 101 are not.
        let mut many = b"250-x\r\n".repeat(MAX_LINES - 1);
        many.extend_from_slice(b"250 x\r\n");
        assert_eq!(one(&many).map(|r| r.lines.len()), Ok(MAX_LINES));
        let mut too_many = b"250-x\r\n".repeat(MAX_LINES);
        too_many.extend_from_slice(b"250 x\r\n");
        assert_eq!(parse_all(&too_many), Err(ReplyError::TooManyLines));
    }

    #[test]
    fn incremental_and_pipelined() {
        let wire = b"250-mx\r\n250 PIPELINING\r\n250 2.1.0 Ok\r\n550 5.1.1 no\r\n354 go";
        let mut p = ReplyParser::new();
        // Byte by byte: no reply until its last line is whole.
        let mut buf = Vec::new();
        let mut got = Vec::new();
        for &b in wire.iter() {
            buf.push(b);
            let (used, r) = p.feed(&buf).expect("valid");
            buf.drain(..used);
            got.extend(r);
        }
        let codes: Vec<u16> = got.iter().map(|r| r.code).collect();
        assert_eq!(codes, [250, 250, 550]);
        assert_eq!(buf, b"354 go");
        // All at once: one reply per call, the rest left.
        let mut p = ReplyParser::new();
        let (used, r) = p.feed(wire).expect("valid");
        assert_eq!(used, 24);
        assert_eq!(r.map(|r| r.lines), Some(vec!["mx".to_string(), "PIPELINING".to_string()]));
    }

    #[test]
    fn capabilities_table() {
        let ehlo = one(
            b"250-mx.example.test Hello\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-starttls\r\n\
              250-AUTH PLAIN login\r\n250-AUTH=PLAIN LOGIN CRAM-MD5\r\n250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n\
              250 SMTPUTF8\r\n",
        )
        .expect("valid");
        let caps = Capabilities::parse(&ehlo);
        assert_eq!(
            caps,
            Capabilities {
                pipelining: true,
                starttls: true,
                eight_bit_mime: true,
                smtputf8: true,
                size: Some(10_240_000),
                auth: vec!["PLAIN".into(), "LOGIN".into(), "CRAM-MD5".into()],
            }
        );
        let cases: &[(&[u8], Option<u64>)] = &[
            (b"250-mx\r\n250 SIZE\r\n", Some(0)),
            (b"250-mx\r\n250 SIZE junk\r\n", Some(0)),
            (b"250-mx\r\n250 SIZE 0\r\n", Some(0)),
            (b"250 mx\r\n", None),
            // The greeting line is the server's name, never a keyword.
            (b"250 SIZE 5\r\n", None),
        ];
        for (input, size) in cases {
            assert_eq!(Capabilities::parse(&one(input).expect("valid")).size, *size, "{input:?}");
        }
    }
}
