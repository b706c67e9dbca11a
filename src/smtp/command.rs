//! SMTP command parsing: one line (CRLF already stripped) to a [`Command`], without judging whether the
//! command is allowed now (that is the session's job). RFC 5321 4.1.1 commands and 4.1.2 syntax,
//! RFC 1870 SIZE, RFC 6152 BODY=8BITMIME, RFC 6531 SMTPUTF8, RFC 3030 BDAT.

use std::fmt;

use crate::addr::{self, AddrError, Address};
use crate::smtp::reply::Reply;

/// A parsed command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Helo(String),
    Ehlo(String),
    /// `from: None` is the null reverse-path `<>` (RFC 5321 4.5.5).
    Mail {
        from: Option<Address>,
        params: MailParams,
    },
    Rcpt {
        to: RcptTo,
        params: RcptParams,
    },
    Data,
    /// RFC 3030 2: `BDAT chunk-size [LAST]`.
    Bdat {
        size: u64,
        last: bool,
    },
    Rset,
    Noop,
    Quit,
    Vrfy(String),
    Help(Option<String>),
    Expn(String),
    StartTls,
    /// `AUTH mechanism [initial-response]`, the arguments as sent.
    Auth(String),
}

/// The forward-path of RCPT.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RcptTo {
    Address(Address),
    /// RFC 5321 4.1.1.3: `<Postmaster>` without a domain, matched case-insensitively.
    Postmaster,
}

/// RFC 6152 BODY values (BINARYMIME is not offered).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Body {
    SevenBit,
    EightBitMime,
}

/// MAIL parameters we understand.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MailParams {
    /// RFC 1870 SIZE=n (saturates at u64::MAX, which is over any limit).
    pub size: Option<u64>,
    pub body: Option<Body>,
    /// RFC 6531 3.4: SMTPUTF8.
    pub smtputf8: bool,
    /// RFC 4954 5: AUTH=<mailbox> or AUTH=<>, as xtext; recorded, and not trusted.
    pub auth: Option<String>,
}

/// RCPT parameters: none are offered yet, so any parameter is refused with 555.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RcptParams {}

/// The command verbs, for the dispatch table and error texts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verb {
    Helo,
    Ehlo,
    Mail,
    Rcpt,
    Data,
    Bdat,
    Rset,
    Noop,
    Quit,
    Vrfy,
    Help,
    Expn,
    StartTls,
    Auth,
}

const VERBS: &[(&str, Verb)] = &[
    ("HELO", Verb::Helo),
    ("EHLO", Verb::Ehlo),
    ("MAIL", Verb::Mail),
    ("RCPT", Verb::Rcpt),
    ("DATA", Verb::Data),
    ("BDAT", Verb::Bdat),
    ("RSET", Verb::Rset),
    ("NOOP", Verb::Noop),
    ("QUIT", Verb::Quit),
    ("VRFY", Verb::Vrfy),
    ("HELP", Verb::Help),
    ("EXPN", Verb::Expn),
    ("STARTTLS", Verb::StartTls),
    ("AUTH", Verb::Auth),
];

impl Verb {
    pub fn name(self) -> &'static str {
        VERBS.iter().find(|(_, v)| *v == self).map_or("?", |(n, _)| n)
    }

    /// The usage line shown in a 501 reply.
    fn usage(self) -> &'static str {
        match self {
            Verb::Helo => "Syntax: HELO hostname",
            Verb::Ehlo => "Syntax: EHLO hostname",
            Verb::Mail => "Syntax: MAIL FROM:<address>",
            Verb::Rcpt => "Syntax: RCPT TO:<address>",
            Verb::Data => "Syntax: DATA",
            Verb::Bdat => "Syntax: BDAT count [LAST]",
            Verb::Rset => "Syntax: RSET",
            Verb::Noop => "Syntax: NOOP",
            Verb::Quit => "Syntax: QUIT",
            Verb::Vrfy => "Syntax: VRFY address",
            Verb::Help => "Syntax: HELP [topic]",
            Verb::Expn => "Syntax: EXPN mailing-list",
            Verb::StartTls => "Syntax: STARTTLS",
            Verb::Auth => "Syntax: AUTH mechanism",
        }
    }
}

impl Command {
    pub fn verb(&self) -> Verb {
        match self {
            Command::Helo(_) => Verb::Helo,
            Command::Ehlo(_) => Verb::Ehlo,
            Command::Mail { .. } => Verb::Mail,
            Command::Rcpt { .. } => Verb::Rcpt,
            Command::Data => Verb::Data,
            Command::Bdat { .. } => Verb::Bdat,
            Command::Rset => Verb::Rset,
            Command::Noop => Verb::Noop,
            Command::Quit => Verb::Quit,
            Command::Vrfy(_) => Verb::Vrfy,
            Command::Help(_) => Verb::Help,
            Command::Expn(_) => Verb::Expn,
            Command::StartTls => Verb::StartTls,
            Command::Auth(_) => Verb::Auth,
        }
    }
}

/// Why a line is not a usable command; [`CommandError::reply`] gives the answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommandError {
    /// Empty (or all-blank) line.
    Empty,
    /// Not UTF-8 (RFC 6531 allows UTF-8 in addresses only; anything else is garbage).
    NotUtf8,
    /// A control character (NUL, bare CR, ...) in the line.
    BadCharacter,
    /// The verb is not one we know.
    Unknown,
    /// The arguments of a known verb do not fit its syntax.
    Syntax(Verb),
    /// MAIL with a reverse-path that is not a mailbox.
    BadSender(AddrError),
    /// RCPT with a forward-path that is not a mailbox.
    BadRecipient(AddrError),
    /// RFC 5321 4.1.1.11 / 4.2.3: an ESMTP parameter we do not support (555).
    UnknownParam(Verb, String),
    /// A supported parameter with a bad or repeated value.
    BadParam(Verb, String),
}

impl CommandError {
    /// The verb, when the line had a recognised one.
    pub fn verb(&self) -> Option<Verb> {
        match self {
            CommandError::Syntax(v) | CommandError::UnknownParam(v, _) | CommandError::BadParam(v, _) => {
                Some(*v)
            }
            CommandError::BadSender(_) => Some(Verb::Mail),
            CommandError::BadRecipient(_) => Some(Verb::Rcpt),
            _ => None,
        }
    }

    pub fn reply(&self) -> Reply {
        match self {
            CommandError::Empty => Reply::new(500, "5.5.2", "Error: bad syntax"),
            CommandError::NotUtf8 => Reply::new(500, "5.5.2", "Error: bad UTF-8 syntax"),
            CommandError::BadCharacter => Reply::new(500, "5.5.2", "Error: bad character in command"),
            CommandError::Unknown => Reply::not_recognized(),
            CommandError::Syntax(v) => Reply::syntax(v.usage()),
            // RFC 3463 X.1.7: bad sender's mailbox address syntax.
            CommandError::BadSender(e) => Reply::new(501, "5.1.7", format!("Bad sender address syntax: {e}")),
            // RFC 3463 X.1.3: bad destination mailbox address syntax.
            CommandError::BadRecipient(e) => {
                Reply::new(501, "5.1.3", format!("Bad recipient address syntax: {e}"))
            }
            CommandError::UnknownParam(_, p) => Reply::new(555, "5.5.4", format!("Unsupported option: {p}")),
            CommandError::BadParam(_, p) => Reply::new(501, "5.5.4", format!("Bad {p} parameter syntax")),
        }
    }
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.reply())
    }
}

fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// Parses one command line (without its CRLF).
pub fn parse(line: &[u8]) -> Result<Command, CommandError> {
    let line = std::str::from_utf8(line).map_err(|_| CommandError::NotUtf8)?;
    // RFC 5321 2.3.8: CR and LF only as the line end; other controls have no place in a command.
    if line.chars().any(|c| c.is_control() && c != '\t') {
        return Err(CommandError::BadCharacter);
    }
    let line = line.trim_matches(is_blank);
    if line.is_empty() {
        return Err(CommandError::Empty);
    }
    let (word, args) = match line.split_once(is_blank) {
        Some((w, a)) => (w, a.trim_start_matches(is_blank)),
        None => (line, ""),
    };
    let verb = VERBS
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(word))
        .map(|(_, v)| *v)
        .ok_or(CommandError::Unknown)?;
    let no_args = |cmd: Command| if args.is_empty() { Ok(cmd) } else { Err(CommandError::Syntax(verb)) };
    let required = || if args.is_empty() { Err(CommandError::Syntax(verb)) } else { Ok(args.to_string()) };
    match verb {
        // RFC 5321 4.1.1.1: the argument is a domain or address literal; it is recorded, not verified.
        Verb::Helo | Verb::Ehlo => {
            let name = args.split(is_blank).next().unwrap_or("");
            if name.is_empty() {
                return Err(CommandError::Syntax(verb));
            }
            Ok(if verb == Verb::Helo {
                Command::Helo(name.to_string())
            } else {
                Command::Ehlo(name.to_string())
            })
        }
        Verb::Mail => parse_mail(args),
        Verb::Rcpt => parse_rcpt(args),
        Verb::Data => no_args(Command::Data),
        Verb::Bdat => parse_bdat(args),
        Verb::Rset => no_args(Command::Rset),
        // RFC 5321 4.1.1.9: NOOP [ SP String ]; the string is ignored.
        Verb::Noop => Ok(Command::Noop),
        Verb::Quit => no_args(Command::Quit),
        Verb::Vrfy => required().map(Command::Vrfy),
        Verb::Expn => required().map(Command::Expn),
        Verb::Help => Ok(Command::Help(if args.is_empty() { None } else { Some(args.to_string()) })),
        Verb::StartTls => no_args(Command::StartTls),
        Verb::Auth => required().map(Command::Auth),
    }
}

/// Strips a case-insensitive keyword such as `FROM:` and any blanks after it (the common, non-RFC
/// `MAIL FROM: <a@b>` is accepted, as Postfix does).
fn strip_keyword<'a>(args: &'a str, keyword: &str) -> Option<&'a str> {
    let head = args.get(..keyword.len())?;
    head.eq_ignore_ascii_case(keyword).then(|| args[keyword.len()..].trim_start_matches(is_blank))
}

/// Splits `<path> params` or `bare@address params`; returns the path text without brackets and the
/// parameter text. The closing `>` is found outside quoted strings.
fn split_path(s: &str) -> Option<(&str, &str)> {
    let (path, rest) = if let Some(inner) = s.strip_prefix('<') {
        let mut in_quote = false;
        let mut escaped = false;
        let end = inner.char_indices().find_map(|(i, c)| {
            match (in_quote, escaped, c) {
                (true, true, _) => escaped = false,
                (true, false, '\\') => escaped = true,
                (_, _, '"') => in_quote = !in_quote,
                (false, _, '>') => return Some(i),
                _ => {}
            }
            None
        })?;
        (&inner[..end], &inner[end + 1..])
    } else {
        // Postfix-style leniency: an address without brackets, up to the first blank.
        let end = s.find(is_blank).unwrap_or(s.len());
        if end == 0 {
            return None;
        }
        (&s[..end], &s[end..])
    };
    // Parameters must be separated from the path by a blank.
    if !rest.is_empty() && !rest.starts_with(is_blank) {
        return None;
    }
    Some((path, rest))
}

/// RFC 5321 4.1.2: drops a source route `@a,@b:` (A-d-l), which 4.1.1.3 says to accept and ignore.
fn strip_source_route(path: &str) -> Option<&str> {
    if !path.starts_with('@') {
        return Some(path);
    }
    let (route, mailbox) = path.split_once(':')?;
    let ok = route.split(',').all(|hop| hop.strip_prefix('@').is_some_and(|d| addr::parse_domain(d).is_ok()));
    ok.then_some(mailbox)
}

/// Splits `KEY[=VALUE]` parameters (RFC 5321 4.1.2 esmtp-param), rejecting bad keyword syntax.
fn params(verb: Verb, s: &str) -> Result<Vec<(&str, Option<&str>)>, CommandError> {
    s.split(is_blank)
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = match p.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (p, None),
            };
            // esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-"); esmtp-value = 1*(%d33-60 / %d62-126)
            // (RFC 6531 3.3 adds UTF-8).
            let key_ok = k.starts_with(|c: char| c.is_ascii_alphanumeric())
                && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
            let value_ok = v.is_none_or(|v| !v.is_empty() && !v.contains('='));
            if key_ok && value_ok { Ok((k, v)) } else { Err(CommandError::Syntax(verb)) }
        })
        .collect()
}

fn parse_mail(args: &str) -> Result<Command, CommandError> {
    let syntax = CommandError::Syntax(Verb::Mail);
    let rest = strip_keyword(args, "FROM:").ok_or(syntax.clone())?;
    let (path, param_text) = split_path(rest).ok_or(syntax.clone())?;
    let from = if path.is_empty() {
        None
    } else {
        let mailbox = strip_source_route(path).ok_or(syntax)?;
        Some(Address::parse(mailbox).map_err(CommandError::BadSender)?)
    };
    let mut p = MailParams::default();
    let bad = |name: &str| CommandError::BadParam(Verb::Mail, name.to_string());
    for (key, value) in params(Verb::Mail, param_text)? {
        match key.to_ascii_uppercase().as_str() {
            // RFC 1870 4: size-value = 1*20DIGIT.
            "SIZE" => {
                let v = value.filter(|v| v.len() <= 20 && v.bytes().all(|b| b.is_ascii_digit()));
                match (v, p.size) {
                    (Some(v), None) => p.size = Some(v.parse().unwrap_or(u64::MAX)),
                    _ => return Err(bad("SIZE")),
                }
            }
            // RFC 6152 2 / RFC 1652: BODY=7BIT / 8BITMIME.
            "BODY" => {
                let body = match value.map(str::to_ascii_uppercase).as_deref() {
                    Some("7BIT") => Body::SevenBit,
                    Some("8BITMIME") => Body::EightBitMime,
                    _ => return Err(bad("BODY")),
                };
                if p.body.replace(body).is_some() {
                    return Err(bad("BODY"));
                }
            }
            // RFC 6531 3.4: SMTPUTF8 takes no value.
            "SMTPUTF8" => {
                if value.is_some() || p.smtputf8 {
                    return Err(bad("SMTPUTF8"));
                }
                p.smtputf8 = true;
            }
            // RFC 4954 5: AUTH=xtext; "<>" when the submitter is unknown.
            "AUTH" => {
                let v = value.filter(|v| !v.is_empty() && v.bytes().all(|b| (b'!'..=b'~').contains(&b)));
                match (v, &p.auth) {
                    (Some(v), None) => p.auth = Some(v.to_string()),
                    _ => return Err(bad("AUTH")),
                }
            }
            _ => return Err(CommandError::UnknownParam(Verb::Mail, key.to_string())),
        }
    }
    Ok(Command::Mail { from, params: p })
}

fn parse_rcpt(args: &str) -> Result<Command, CommandError> {
    let syntax = CommandError::Syntax(Verb::Rcpt);
    let rest = strip_keyword(args, "TO:").ok_or(syntax.clone())?;
    let (path, param_text) = split_path(rest).ok_or(syntax.clone())?;
    let to = if path.eq_ignore_ascii_case("postmaster") {
        RcptTo::Postmaster
    } else if path.is_empty() {
        // The null path is for MAIL only (RFC 5321 4.1.1.3).
        return Err(CommandError::BadRecipient(AddrError::Empty));
    } else {
        let mailbox = strip_source_route(path).ok_or(syntax)?;
        RcptTo::Address(Address::parse(mailbox).map_err(CommandError::BadRecipient)?)
    };
    if let Some((key, _)) = params(Verb::Rcpt, param_text)?.first() {
        return Err(CommandError::UnknownParam(Verb::Rcpt, key.to_string()));
    }
    Ok(Command::Rcpt { to, params: RcptParams {} })
}

/// RFC 3030 2: bdat-cmd = "BDAT" SP chunk-size [ SP end-marker ]; chunk-size = 1*DIGIT; end-marker = "LAST".
fn parse_bdat(args: &str) -> Result<Command, CommandError> {
    let syntax = CommandError::Syntax(Verb::Bdat);
    let mut words = args.split(is_blank).filter(|w| !w.is_empty());
    let size_text = words.next().ok_or(syntax.clone())?;
    if !size_text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(syntax);
    }
    let size: u64 = size_text.parse().map_err(|_| syntax.clone())?;
    let last = match words.next() {
        None => false,
        Some(w) if w.eq_ignore_ascii_case("LAST") => true,
        Some(_) => return Err(syntax),
    };
    if words.next().is_some() {
        return Err(syntax);
    }
    Ok(Command::Bdat { size, last })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> Address {
        Address::parse(s).unwrap()
    }

    fn mail(from: Option<&str>, params: MailParams) -> Command {
        Command::Mail { from: from.map(a), params }
    }

    fn rcpt(to: &str) -> Command {
        Command::Rcpt { to: RcptTo::Address(a(to)), params: RcptParams {} }
    }

    #[test]
    fn valid_commands() {
        let p = MailParams::default();
        let cases: Vec<(&str, Command)> = vec![
            ("HELO client.example", Command::Helo("client.example".into())),
            ("helo client.example", Command::Helo("client.example".into())),
            ("EHLO [192.0.2.1]", Command::Ehlo("[192.0.2.1]".into())),
            ("EhLo  x  extra", Command::Ehlo("x".into())),
            ("MAIL FROM:<a@b.c>", mail(Some("a@b.c"), p.clone())),
            ("mail from:<a@b.c>", mail(Some("a@b.c"), p.clone())),
            ("MAIL FROM: <a@b.c>", mail(Some("a@b.c"), p.clone())),
            ("MAIL FROM:a@b.c", mail(Some("a@b.c"), p.clone())),
            ("MAIL FROM:<>", mail(None, p.clone())),
            ("MAIL FROM:<@r1.example,@r2.example:u@d.example>", mail(Some("u@d.example"), p.clone())),
            ("MAIL FROM:<\"a>b\"@x>", mail(Some("\"a>b\"@x"), p.clone())),
            ("MAIL FROM:<\"a\\\">\"@x>", mail(Some("\"a\\\">\"@x"), p.clone())),
            (
                "MAIL FROM:<jörg@bücher.de> SMTPUTF8",
                mail(Some("jörg@bücher.de"), MailParams { smtputf8: true, ..p.clone() }),
            ),
            (
                "MAIL FROM:<a@b> SIZE=1000 BODY=8BITMIME",
                mail(
                    Some("a@b"),
                    MailParams {
                        size: Some(1000),
                        body: Some(Body::EightBitMime),
                        smtputf8: false,
                        auth: None,
                    },
                ),
            ),
            (
                "MAIL FROM:<a@b> body=7bit",
                mail(Some("a@b"), MailParams { body: Some(Body::SevenBit), ..p.clone() }),
            ),
            (
                "MAIL FROM:<a@b> SIZE=99999999999999999999",
                mail(Some("a@b"), MailParams { size: Some(u64::MAX), ..p.clone() }),
            ),
            ("RCPT TO:<u@d.example>", rcpt("u@d.example")),
            ("rcpt to: <u@d.example>", rcpt("u@d.example")),
            ("RCPT TO:<@hop:u@d.example>", rcpt("u@d.example")),
            ("RCPT TO:<Postmaster>", Command::Rcpt { to: RcptTo::Postmaster, params: RcptParams {} }),
            ("RCPT TO:<postMASTER>", Command::Rcpt { to: RcptTo::Postmaster, params: RcptParams {} }),
            ("DATA", Command::Data),
            ("data ", Command::Data),
            ("BDAT 100", Command::Bdat { size: 100, last: false }),
            ("BDAT 0 LAST", Command::Bdat { size: 0, last: true }),
            ("bdat 5 last", Command::Bdat { size: 5, last: true }),
            ("RSET", Command::Rset),
            ("NOOP", Command::Noop),
            ("NOOP anything at all", Command::Noop),
            ("QUIT", Command::Quit),
            ("VRFY postmaster", Command::Vrfy("postmaster".into())),
            ("EXPN staff", Command::Expn("staff".into())),
            ("HELP", Command::Help(None)),
            ("HELP MAIL", Command::Help(Some("MAIL".into()))),
            ("STARTTLS", Command::StartTls),
            ("AUTH PLAIN AGFAAGI=", Command::Auth("PLAIN AGFAAGI=".into())),
        ];
        for (line, want) in cases {
            assert_eq!(parse(line.as_bytes()), Ok(want), "{line}");
        }
    }

    #[test]
    fn errors_and_their_replies() {
        let cases: Vec<(&[u8], &str)> = vec![
            (b"", "500 5.5.2"),
            (b"   ", "500 5.5.2"),
            (b"FOO bar", "500 5.5.2 Error: command not recognized"),
            (b"MAILFROM:<a@b>", "500 5.5.2 Error: command not recognized"),
            (b"\xff\xfe", "500 5.5.2 Error: bad UTF-8 syntax"),
            (b"NOOP \0", "500 5.5.2 Error: bad character in command"),
            (b"NOOP a\rb", "500 5.5.2 Error: bad character in command"),
            (b"HELO", "501 5.5.4 Syntax: HELO hostname"),
            (b"EHLO ", "501 5.5.4 Syntax: EHLO hostname"),
            (b"MAIL", "501 5.5.4 Syntax: MAIL FROM:<address>"),
            (b"MAIL TO:<a@b>", "501 5.5.4 Syntax: MAIL FROM:<address>"),
            (b"MAIL FROM:", "501 5.5.4 Syntax: MAIL FROM:<address>"),
            (b"MAIL FROM:<a@b", "501 5.5.4 Syntax: MAIL FROM:<address>"),
            (b"MAIL FROM:<a@b>SIZE=1", "501 5.5.4 Syntax: MAIL FROM:<address>"),
            (b"MAIL FROM:<@bad..route:a@b>", "501 5.5.4 Syntax: MAIL FROM:<address>"),
            (b"MAIL FROM:<a@b> =x", "501 5.5.4 Syntax: MAIL FROM:<address>"),
            (b"MAIL FROM:<a@b> SIZE=", "501 5.5.4 Syntax: MAIL FROM:<address>"),
            (b"MAIL FROM:<postmaster>", "501 5.1.7 Bad sender address syntax"),
            (b"MAIL FROM:<a@-b>", "501 5.1.7 Bad sender address syntax"),
            (b"MAIL FROM:<a b@c>", "501 5.1.7 Bad sender address syntax"),
            (b"MAIL FROM:<a@b> SIZE=abc", "501 5.5.4 Bad SIZE parameter syntax"),
            (b"MAIL FROM:<a@b> SIZE=1 SIZE=2", "501 5.5.4 Bad SIZE parameter syntax"),
            (b"MAIL FROM:<a@b> SIZE", "501 5.5.4 Bad SIZE parameter syntax"),
            (b"MAIL FROM:<a@b> BODY=BINARYMIME", "501 5.5.4 Bad BODY parameter syntax"),
            (b"MAIL FROM:<a@b> SMTPUTF8=yes", "501 5.5.4 Bad SMTPUTF8 parameter syntax"),
            (b"MAIL FROM:<a@b> AUTH=", "501 5.5.4 Syntax: MAIL FROM:<address>"),
            (b"MAIL FROM:<a@b> AUTH=<> AUTH=<>", "501 5.5.4 Bad AUTH parameter syntax"),
            (b"MAIL FROM:<a@b> RET=HDRS", "555 5.5.4 Unsupported option: RET"),
            (b"RCPT TO:<>", "501 5.1.3 Bad recipient address syntax"),
            (b"RCPT TO:<a@b..c>", "501 5.1.3 Bad recipient address syntax"),
            (b"RCPT TO:<a@b> NOTIFY=NEVER", "555 5.5.4 Unsupported option: NOTIFY"),
            (b"RCPT FROM:<a@b>", "501 5.5.4 Syntax: RCPT TO:<address>"),
            (b"DATA x", "501 5.5.4 Syntax: DATA"),
            (b"QUIT now", "501 5.5.4 Syntax: QUIT"),
            (b"RSET x", "501 5.5.4 Syntax: RSET"),
            (b"VRFY", "501 5.5.4 Syntax: VRFY address"),
            (b"EXPN", "501 5.5.4 Syntax: EXPN mailing-list"),
            (b"BDAT", "501 5.5.4 Syntax: BDAT count [LAST]"),
            (b"BDAT x", "501 5.5.4 Syntax: BDAT count [LAST]"),
            (b"BDAT -1", "501 5.5.4 Syntax: BDAT count [LAST]"),
            (b"BDAT +1", "501 5.5.4 Syntax: BDAT count [LAST]"),
            (b"BDAT 1 FIRST", "501 5.5.4 Syntax: BDAT count [LAST]"),
            (b"BDAT 1 LAST x", "501 5.5.4 Syntax: BDAT count [LAST]"),
            (b"BDAT 99999999999999999999999", "501 5.5.4 Syntax: BDAT count [LAST]"),
        ];
        for (line, want) in cases {
            let err = parse(line).expect_err(&String::from_utf8_lossy(line));
            let got = err.reply().to_string();
            assert!(got.starts_with(want), "{:?}: got {got:?}, want {want:?}", String::from_utf8_lossy(line));
        }
    }

    #[test]
    fn error_verbs() {
        assert_eq!(parse(b"BDAT x").unwrap_err().verb(), Some(Verb::Bdat));
        assert_eq!(parse(b"MAIL FROM:<x>").unwrap_err().verb(), Some(Verb::Mail));
        assert_eq!(parse(b"RCPT TO:<x>").unwrap_err().verb(), Some(Verb::Rcpt));
        assert_eq!(parse(b"XYZZY").unwrap_err().verb(), None);
        assert_eq!(Verb::StartTls.name(), "STARTTLS");
    }
}
