//! POP3 command-line parser (RFC 1939 3 and 7, RFC 2449 4 line length, RFC 2595 4 STLS, RFC 5034 4
//! AUTH). A line arrives with its CRLF stripped; keywords are case-insensitive.

/// RFC 2449 4: a command is at most 255 octets, including the terminating CRLF.
pub const MAX_COMMAND_LINE: usize = 255;

/// The command keywords this server knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verb {
    User,
    Pass,
    Auth,
    Capa,
    Stls,
    Quit,
    Stat,
    List,
    Retr,
    Dele,
    Noop,
    Rset,
    Top,
    Uidl,
    Apop,
}

impl Verb {
    const ALL: [(&'static str, Verb); 15] = [
        ("USER", Verb::User),
        ("PASS", Verb::Pass),
        ("AUTH", Verb::Auth),
        ("CAPA", Verb::Capa),
        ("STLS", Verb::Stls),
        ("QUIT", Verb::Quit),
        ("STAT", Verb::Stat),
        ("LIST", Verb::List),
        ("RETR", Verb::Retr),
        ("DELE", Verb::Dele),
        ("NOOP", Verb::Noop),
        ("RSET", Verb::Rset),
        ("TOP", Verb::Top),
        ("UIDL", Verb::Uidl),
        ("APOP", Verb::Apop),
    ];

    pub fn name(self) -> &'static str {
        Verb::ALL.iter().find(|(_, v)| *v == self).map(|(n, _)| *n).unwrap_or("")
    }
}

/// One parsed command. Message numbers are 1-based as on the wire (RFC 1939 5), not yet checked
/// against the maildrop.
#[derive(Clone, PartialEq, Eq)]
pub enum Command {
    User(String),
    /// RFC 1939 7: `APOP name digest`, digest = MD5(timestamp of the greeting + password) in hex.
    Apop {
        name: String,
        digest: String,
    },
    /// RFC 1939 7: the password is the rest of the line and may contain spaces; kept as octets.
    Pass(Vec<u8>),
    /// RFC 5034 4: `AUTH mechanism [initial-response]`; `None` lists the mechanisms (RFC 1734 usage).
    Auth {
        mechanism: Option<String>,
        initial: Option<String>,
    },
    Capa,
    Stls,
    Quit,
    Stat,
    List(Option<usize>),
    Retr(usize),
    Dele(usize),
    Noop,
    Rset,
    Top {
        n: usize,
        lines: u64,
    },
    Uidl(Option<usize>),
}

impl Command {
    pub fn verb(&self) -> Verb {
        match self {
            Command::User(_) => Verb::User,
            Command::Apop { .. } => Verb::Apop,
            Command::Pass(_) => Verb::Pass,
            Command::Auth { .. } => Verb::Auth,
            Command::Capa => Verb::Capa,
            Command::Stls => Verb::Stls,
            Command::Quit => Verb::Quit,
            Command::Stat => Verb::Stat,
            Command::List(_) => Verb::List,
            Command::Retr(_) => Verb::Retr,
            Command::Dele(_) => Verb::Dele,
            Command::Noop => Verb::Noop,
            Command::Rset => Verb::Rset,
            Command::Top { .. } => Verb::Top,
            Command::Uidl(_) => Verb::Uidl,
        }
    }
}

// Hand-written so a password never reaches a log through `{:?}`.
impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Command::Pass(_) => f.write_str("Pass(<hidden>)"),
            Command::Auth { mechanism, initial } => f
                .debug_struct("Auth")
                .field("mechanism", mechanism)
                .field("initial", &initial.as_ref().map(|_| "<hidden>"))
                .finish(),
            Command::User(u) => f.debug_tuple("User").field(u).finish(),
            Command::Apop { name, .. } => f.debug_struct("Apop").field("name", name).finish_non_exhaustive(),
            Command::List(n) => f.debug_tuple("List").field(n).finish(),
            Command::Retr(n) => f.debug_tuple("Retr").field(n).finish(),
            Command::Dele(n) => f.debug_tuple("Dele").field(n).finish(),
            Command::Top { n, lines } => f.debug_struct("Top").field("n", n).field("lines", lines).finish(),
            Command::Uidl(n) => f.debug_tuple("Uidl").field(n).finish(),
            other => f.write_str(other.verb().name()),
        }
    }
}

/// Why a line is not a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommandError {
    /// Over [`MAX_COMMAND_LINE`] octets.
    TooLong,
    /// Not a keyword we know.
    Unknown,
    /// A known keyword with bad or missing arguments.
    Syntax(Verb),
}

impl CommandError {
    /// The `-ERR` text (never echoes client data).
    pub fn text(self) -> &'static str {
        match self {
            CommandError::TooLong => "Line too long",
            CommandError::Unknown => "Unknown command",
            CommandError::Syntax(Verb::Pass) => "PASS needs a password",
            CommandError::Syntax(Verb::Apop) => "APOP needs a name and an MD5 digest in hex",
            CommandError::Syntax(Verb::User) => "USER needs a user name",
            CommandError::Syntax(_) => "Invalid arguments",
        }
    }
}

/// Parses one command line (CRLF already stripped).
pub fn parse(line: &[u8]) -> Result<Command, CommandError> {
    if line.len() + 2 > MAX_COMMAND_LINE {
        return Err(CommandError::TooLong);
    }
    let (keyword, rest) = match line.iter().position(|&b| b == b' ') {
        Some(i) => (&line[..i], Some(&line[i + 1..])),
        None => (line, None),
    };
    let verb = Verb::ALL
        .iter()
        .find(|(name, _)| name.as_bytes().eq_ignore_ascii_case(keyword))
        .map(|(_, v)| *v)
        .ok_or(CommandError::Unknown)?;
    let syntax = CommandError::Syntax(verb);
    // RFC 1939 7: PASS takes the rest of the line, spaces included.
    if verb == Verb::Pass {
        return match rest {
            Some(p) if !p.is_empty() => Ok(Command::Pass(p.to_vec())),
            _ => Err(syntax),
        };
    }
    // RFC 1939 3: arguments are printable ASCII separated by single spaces; a few clients double the
    // space or add a trailing one, which is harmless to accept.
    let rest = rest.unwrap_or(b"");
    if rest.iter().any(|b| !b.is_ascii_graphic() && *b != b' ') {
        // USER names may be UTF-8 (RFC 6856 leaves it to the server); everything else is ASCII.
        if verb != Verb::User || std::str::from_utf8(rest).is_err() || rest.iter().any(u8::is_ascii_control) {
            return Err(syntax);
        }
    }
    let text = std::str::from_utf8(rest).map_err(|_| syntax)?;
    let args: Vec<&str> = text.split(' ').filter(|a| !a.is_empty()).collect();
    let cmd = match (verb, args.as_slice()) {
        (Verb::User, [name]) => Command::User((*name).to_string()),
        (Verb::Apop, [name, digest])
            if digest.len() == 32 && digest.bytes().all(|b| b.is_ascii_hexdigit()) =>
        {
            Command::Apop { name: (*name).to_string(), digest: digest.to_ascii_lowercase() }
        }
        (Verb::Auth, []) => Command::Auth { mechanism: None, initial: None },
        (Verb::Auth, [m]) => Command::Auth { mechanism: Some((*m).to_string()), initial: None },
        (Verb::Auth, [m, i]) => {
            Command::Auth { mechanism: Some((*m).to_string()), initial: Some((*i).to_string()) }
        }
        (Verb::Capa, []) => Command::Capa,
        (Verb::Stls, []) => Command::Stls,
        (Verb::Quit, []) => Command::Quit,
        (Verb::Stat, []) => Command::Stat,
        (Verb::Noop, []) => Command::Noop,
        (Verb::Rset, []) => Command::Rset,
        (Verb::List, []) => Command::List(None),
        (Verb::List, [n]) => Command::List(Some(msg_number(n).ok_or(syntax)?)),
        (Verb::Uidl, []) => Command::Uidl(None),
        (Verb::Uidl, [n]) => Command::Uidl(Some(msg_number(n).ok_or(syntax)?)),
        (Verb::Retr, [n]) => Command::Retr(msg_number(n).ok_or(syntax)?),
        (Verb::Dele, [n]) => Command::Dele(msg_number(n).ok_or(syntax)?),
        (Verb::Top, [n, l]) => {
            Command::Top { n: msg_number(n).ok_or(syntax)?, lines: number(l).ok_or(syntax)? }
        }
        _ => return Err(syntax),
    };
    Ok(cmd)
}

/// Decimal digits only (no sign, no spaces), at most what fits.
fn number(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// RFC 1939 5: message numbers start at 1.
fn msg_number(s: &str) -> Option<usize> {
    number(s).and_then(|n| usize::try_from(n).ok()).filter(|&n| n >= 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_commands() {
        let cases: &[(&[u8], Command)] = &[
            (b"USER mrose", Command::User("mrose".into())),
            (b"user mrose", Command::User("mrose".into())),
            (b"USER j\xc3\xb6rg", Command::User("jörg".into())),
            (b"PASS secret with  spaces ", Command::Pass(b"secret with  spaces ".to_vec())),
            (b"PASS \xff", Command::Pass(b"\xff".to_vec())),
            (b"AUTH", Command::Auth { mechanism: None, initial: None }),
            (b"AUTH PLAIN", Command::Auth { mechanism: Some("PLAIN".into()), initial: None }),
            (b"AUTH PLAIN =", Command::Auth { mechanism: Some("PLAIN".into()), initial: Some("=".into()) }),
            (b"CAPA", Command::Capa),
            (b"stls", Command::Stls),
            (b"QUIT", Command::Quit),
            (b"STAT", Command::Stat),
            (b"NOOP", Command::Noop),
            (b"RSET", Command::Rset),
            (b"LIST", Command::List(None)),
            (b"LIST 2", Command::List(Some(2))),
            (b"LIST 2 ", Command::List(Some(2))),
            (b"UIDL", Command::Uidl(None)),
            (b"UIDL 17", Command::Uidl(Some(17))),
            (b"RETR 1", Command::Retr(1)),
            (b"DELE 3", Command::Dele(3)),
            (b"TOP 1 10", Command::Top { n: 1, lines: 10 }),
            (b"TOP 1 0", Command::Top { n: 1, lines: 0 }),
        ];
        for (line, want) in cases {
            assert_eq!(parse(line).as_ref(), Ok(want), "{:?}", String::from_utf8_lossy(line));
        }
    }

    #[test]
    fn refuses_bad_lines() {
        let cases: &[(&[u8], CommandError)] = &[
            (b"", CommandError::Unknown),
            (b"XTND XMIT", CommandError::Unknown),
            (b"APOP mrose c4c9334bac56", CommandError::Syntax(Verb::Apop)),
            (b"RETRX 1", CommandError::Unknown),
            (b" RETR 1", CommandError::Unknown),
            (b"USER", CommandError::Syntax(Verb::User)),
            (b"USER a b", CommandError::Syntax(Verb::User)),
            (b"USER a\x01", CommandError::Syntax(Verb::User)),
            (b"USER \xff", CommandError::Syntax(Verb::User)),
            (b"PASS", CommandError::Syntax(Verb::Pass)),
            (b"PASS ", CommandError::Syntax(Verb::Pass)),
            (b"RETR", CommandError::Syntax(Verb::Retr)),
            (b"RETR 0", CommandError::Syntax(Verb::Retr)),
            (b"RETR -1", CommandError::Syntax(Verb::Retr)),
            (b"RETR +1", CommandError::Syntax(Verb::Retr)),
            (b"RETR x", CommandError::Syntax(Verb::Retr)),
            (b"RETR 1 2", CommandError::Syntax(Verb::Retr)),
            (b"RETR 99999999999999999999999", CommandError::Syntax(Verb::Retr)),
            (b"DELE \xc3\xa9", CommandError::Syntax(Verb::Dele)),
            (b"TOP 1", CommandError::Syntax(Verb::Top)),
            (b"TOP 1 -1", CommandError::Syntax(Verb::Top)),
            (b"LIST 0", CommandError::Syntax(Verb::List)),
            (b"UIDL 1 2", CommandError::Syntax(Verb::Uidl)),
            (b"STAT 1", CommandError::Syntax(Verb::Stat)),
            (b"QUIT now", CommandError::Syntax(Verb::Quit)),
            (b"AUTH PLAIN a b", CommandError::Syntax(Verb::Auth)),
            (b"NOOP\t", CommandError::Unknown),
            (b"NOOP \t", CommandError::Syntax(Verb::Noop)),
        ];
        for (line, want) in cases {
            assert_eq!(parse(line).err(), Some(*want), "{:?}", String::from_utf8_lossy(line));
        }
    }

    #[test]
    fn line_length_limit() {
        // RFC 2449 4: 255 octets including CRLF, so 253 without.
        let ok = format!("USER {}", "a".repeat(248));
        assert_eq!(ok.len(), 253);
        assert!(parse(ok.as_bytes()).is_ok());
        let long = format!("USER {}", "a".repeat(249));
        assert_eq!(parse(long.as_bytes()), Err(CommandError::TooLong));
    }

    #[test]
    fn debug_hides_secrets() {
        let d = format!("{:?}", parse(b"PASS hunter2").unwrap());
        assert!(!d.contains("hunter2"));
        let d = format!("{:?}", parse(b"AUTH PLAIN AGZvbwBiYXI=").unwrap());
        assert!(!d.contains("AGZvbwBiYXI="));
    }
}
