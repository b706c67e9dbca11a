//! ManageSieve commands (RFC 5804 4 formal syntax), parsed from one complete command: its line
//! with every string literal already read and inline (`{n+}` CRLF octets, as the IMAP command
//! assembler gathers them; RFC 5804 4 `literal-c2s`, and `{n}` too, which clients still send).
//! Command names are case-insensitive (RFC 5804 4: "Commands ... are case-insensitive"); strings
//! are quoted (RFC 5804 4 `quoted`: `\"` and `\\` escapes only) or literals.

/// One command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// RFC 5804 2.1: `AUTHENTICATE mechanism [initial-response]` (the response still base64).
    Authenticate {
        mechanism: String,
        initial: Option<Vec<u8>>,
    },
    StartTls,
    Logout,
    Capability,
    HaveSpace {
        name: String,
        size: u64,
    },
    PutScript {
        name: String,
        script: Vec<u8>,
    },
    ListScripts,
    /// An empty name deactivates (RFC 5804 2.8).
    SetActive(String),
    GetScript(String),
    DeleteScript(String),
    RenameScript {
        old: String,
        new: String,
    },
    CheckScript(Vec<u8>),
    /// RFC 5804 2.13: the optional string is echoed in a TAG response code.
    Noop(Option<Vec<u8>>),
    Unauthenticate,
}

/// Why a command does not parse; the text goes to the client in a `NO`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError(pub String);

impl Command {
    /// The command's name as RFC 5804 spells it (for the log).
    pub fn name(&self) -> &'static str {
        match self {
            Command::Authenticate { .. } => "AUTHENTICATE",
            Command::StartTls => "STARTTLS",
            Command::Logout => "LOGOUT",
            Command::Capability => "CAPABILITY",
            Command::HaveSpace { .. } => "HAVESPACE",
            Command::PutScript { .. } => "PUTSCRIPT",
            Command::ListScripts => "LISTSCRIPTS",
            Command::SetActive(_) => "SETACTIVE",
            Command::GetScript(_) => "GETSCRIPT",
            Command::DeleteScript(_) => "DELETESCRIPT",
            Command::RenameScript { .. } => "RENAMESCRIPT",
            Command::CheckScript(_) => "CHECKSCRIPT",
            Command::Noop(_) => "NOOP",
            Command::Unauthenticate => "UNAUTHENTICATE",
        }
    }
}

/// The largest number RFC 5804 4 allows (`number`: 0..4294967295).
const MAX_NUMBER: u64 = u32::MAX as u64;

struct Lexer<'a> {
    buf: &'a [u8],
    at: usize,
}

fn err<T>(m: &str) -> Result<T, ParseError> {
    Err(ParseError(m.to_string()))
}

impl<'a> Lexer<'a> {
    fn peek(&self) -> Option<u8> {
        self.buf.get(self.at).copied()
    }

    fn done(&self) -> bool {
        self.at >= self.buf.len()
    }

    /// The command name: letters up to a space or the end.
    fn word(&mut self) -> &'a [u8] {
        let start = self.at;
        while self.peek().is_some_and(|b| b.is_ascii_alphabetic()) {
            self.at += 1;
        }
        self.buf.get(start..self.at).unwrap_or_default()
    }

    fn space(&mut self) -> Result<(), ParseError> {
        if self.peek() != Some(b' ') {
            return err("Expected a space");
        }
        self.at += 1;
        Ok(())
    }

    fn end(&self) -> Result<(), ParseError> {
        if !self.done() {
            return err("Too many arguments");
        }
        Ok(())
    }

    /// RFC 5804 4 `string`: a quoted string or a literal.
    fn string(&mut self) -> Result<Vec<u8>, ParseError> {
        match self.peek() {
            Some(b'"') => self.quoted(),
            Some(b'{') => self.literal(),
            _ => err("Expected a string"),
        }
    }

    /// RFC 5804 4 `quoted`: no CR, LF or NUL inside; `\` escapes only `"` and `\`.
    fn quoted(&mut self) -> Result<Vec<u8>, ParseError> {
        self.at += 1;
        let mut out = Vec::new();
        loop {
            let Some(b) = self.peek() else { return err("Unterminated quoted string") };
            self.at += 1;
            match b {
                b'"' => return Ok(out),
                b'\\' => match self.peek() {
                    Some(c @ (b'"' | b'\\')) => {
                        self.at += 1;
                        out.push(c);
                    }
                    _ => return err("Bad escape in quoted string (only \\\" and \\\\)"),
                },
                0 | b'\r' | b'\n' => return err("Bad character in quoted string"),
                _ => out.push(b),
            }
        }
    }

    /// RFC 5804 4 `literal-c2s`: `{n+}` CRLF and n octets (`{n}` accepted as well).
    fn literal(&mut self) -> Result<Vec<u8>, ParseError> {
        self.at += 1;
        let n = self.number()?;
        if self.peek() == Some(b'+') {
            self.at += 1;
        }
        if self.buf.get(self.at..self.at + 3) != Some(b"}\r\n") {
            return err("Bad literal");
        }
        self.at += 3;
        let len = usize::try_from(n).map_err(|_| ParseError("Literal too big".into()))?;
        let Some(data) = self.buf.get(self.at..self.at.saturating_add(len)) else {
            return err("Literal shorter than announced");
        };
        self.at += len;
        Ok(data.to_vec())
    }

    /// RFC 5804 4 `number`.
    fn number(&mut self) -> Result<u64, ParseError> {
        let start = self.at;
        let mut v: u64 = 0;
        while let Some(d) = self.peek().filter(u8::is_ascii_digit) {
            v = v * 10 + u64::from(d - b'0');
            if v > MAX_NUMBER {
                return err("Number too big");
            }
            self.at += 1;
        }
        if self.at == start {
            return err("Expected a number");
        }
        Ok(v)
    }

    /// A script name: a UTF-8 string (RFC 5804 1.6; further rules in scripts.rs).
    fn name(&mut self) -> Result<String, ParseError> {
        String::from_utf8(self.string()?).map_err(|_| ParseError("Script name is not UTF-8".into()))
    }
}

/// Parses one complete command (CRLF of its last line stripped).
pub fn parse(buf: &[u8]) -> Result<Command, ParseError> {
    let mut l = Lexer { buf, at: 0 };
    let word = l.word().to_ascii_uppercase();
    if word.is_empty() {
        return err("Expected a command");
    }
    // RFC 5804 4: one SP between arguments, none after the last.
    let cmd = match word.as_slice() {
        b"AUTHENTICATE" => {
            l.space()?;
            let mech = String::from_utf8(l.string()?).map_err(|_| ParseError("Bad mechanism name".into()))?;
            let initial = if l.done() {
                None
            } else {
                l.space()?;
                Some(l.string()?)
            };
            Command::Authenticate { mechanism: mech, initial }
        }
        b"STARTTLS" => Command::StartTls,
        b"LOGOUT" => Command::Logout,
        b"CAPABILITY" => Command::Capability,
        b"HAVESPACE" => {
            l.space()?;
            let name = l.name()?;
            l.space()?;
            Command::HaveSpace { name, size: l.number()? }
        }
        b"PUTSCRIPT" => {
            l.space()?;
            let name = l.name()?;
            l.space()?;
            Command::PutScript { name, script: l.string()? }
        }
        b"LISTSCRIPTS" => Command::ListScripts,
        b"SETACTIVE" => {
            l.space()?;
            Command::SetActive(l.name()?)
        }
        b"GETSCRIPT" => {
            l.space()?;
            Command::GetScript(l.name()?)
        }
        b"DELETESCRIPT" => {
            l.space()?;
            Command::DeleteScript(l.name()?)
        }
        b"RENAMESCRIPT" => {
            l.space()?;
            let old = l.name()?;
            l.space()?;
            Command::RenameScript { old, new: l.name()? }
        }
        b"CHECKSCRIPT" => {
            l.space()?;
            Command::CheckScript(l.string()?)
        }
        b"NOOP" => {
            if l.done() {
                Command::Noop(None)
            } else {
                l.space()?;
                Command::Noop(Some(l.string()?))
            }
        }
        b"UNAUTHENTICATE" => Command::Unauthenticate,
        _ => return err("Unknown command"),
    };
    l.end()?;
    Ok(cmd)
}

/// A SASL response line (RFC 5804 2.1: the client answers a challenge with a `string`).
pub fn parse_response(buf: &[u8]) -> Result<Vec<u8>, ParseError> {
    let mut l = Lexer { buf, at: 0 };
    let s = l.string()?;
    l.end()?;
    Ok(s)
}

/// `s` as an RFC 5804 4 `quoted` string when it can be one, else as a literal (`literal-s2c`).
pub fn string(s: &[u8]) -> Vec<u8> {
    let quotable = s.len() <= 1024 && !s.iter().any(|&b| matches!(b, 0 | b'\r' | b'\n'));
    if !quotable {
        let mut out = format!("{{{}}}\r\n", s.len()).into_bytes();
        out.extend_from_slice(s);
        return out;
    }
    let mut out = Vec::with_capacity(s.len() + 2);
    out.push(b'"');
    for &b in s {
        if b == b'"' || b == b'\\' {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'"');
    out
}
