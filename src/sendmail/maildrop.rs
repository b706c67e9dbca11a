//! The maildrop file format: what `buzon sendmail` leaves in `data_dir/maildrop/` for the server's
//! pickup. Any local user can write such a file, so the parser is as strict and bounded as a
//! network parser: it never panics, reads at most [`MAX_HEADER`] bytes before the message, and
//! refuses anything it does not know.
//!
//! ```text
//! buzon-maildrop 1
//! sender alice@example.org          (only with -f/-r; "sender -" is the null sender <>)
//! full-name Alice%20Liddell          (only with -F)
//! extract-recipients no              (yes with -t)
//! rcpt bob@example.net               (zero or more, in order; a bare name is allowed)
//! rcpt carol
//!                                    (one empty line)
//! From: ...                          (the message, LF line ends, as read from standard input)
//! ```
//!
//! Each line is a key and one field separated by one space, ended by LF. Fields are tokens as in the
//! queue's envelope files (queue/envelope.rs): bytes 0x21..=0x7E other than `%` stand for themselves,
//! anything else is `%XX`, `-` is the empty string. `buzon-maildrop 1` comes first; every key but
//! `rcpt` appears at most once; `extract-recipients` must appear. Lines are at most [`MAX_LINE`]
//! bytes, recipients at most [`MAX_RCPTS`]. The submitting user is not written: the server takes it
//! from the file's owner.

use std::fmt;
use std::io::{self, BufRead};

use super::header::{check_recipient, read_piece};
use crate::queue::envelope::{decode_token, encode_token};

pub const MAGIC: &str = "buzon-maildrop 1";
/// Longest line before the message.
pub const MAX_LINE: usize = 4096;
/// Most bytes before the message.
pub const MAX_HEADER: usize = 1024 * 1024;
/// Most recipients of one submission (arguments and `-t` together).
pub const MAX_RCPTS: usize = 1000;
/// Longest full name, in bytes.
pub const MAX_NAME: usize = 256;

/// What the submitter asked for; the message follows in the file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Submission {
    /// `-f`: the envelope sender; `Some("")` is the null sender. None: the submitting user.
    pub sender: Option<String>,
    /// `-F`: the full name for a From: field the server adds.
    pub full_name: Option<String>,
    /// `-t`: add the recipients of the To/Cc/Bcc fields.
    pub extract: bool,
    /// Recipients from the command line (bare names allowed).
    pub recipients: Vec<String>,
}

/// Why a maildrop file was refused.
#[derive(Debug)]
pub enum FormatError {
    /// The file is malformed: set it aside, never retry.
    Malformed(String),
    /// Reading failed: try again later.
    Io(io::Error),
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FormatError::Malformed(m) => f.write_str(m),
            FormatError::Io(e) => write!(f, "{e}"),
        }
    }
}

/// Checks what a file may carry; the writer calls it too, so a file it writes always parses.
pub fn validate(s: &Submission) -> Result<(), String> {
    if let Some(sender) = s.sender.as_deref().filter(|s| !s.is_empty()) {
        check_recipient(sender).map_err(|e| format!("sender {e}"))?;
    }
    if let Some(name) = &s.full_name
        && (name.len() > MAX_NAME || name.chars().any(char::is_control))
    {
        return Err(format!("full name longer than {MAX_NAME} bytes or with control characters"));
    }
    if s.recipients.len() > MAX_RCPTS {
        return Err(format!("more than {MAX_RCPTS} recipients"));
    }
    for r in &s.recipients {
        check_recipient(r)?;
    }
    Ok(())
}

/// The text before the message, ending with the empty line.
pub fn render(s: &Submission) -> String {
    let mut out = format!("{MAGIC}\n");
    if let Some(sender) = &s.sender {
        out.push_str(&format!("sender {}\n", encode_token(sender)));
    }
    if let Some(name) = &s.full_name {
        out.push_str(&format!("full-name {}\n", encode_token(name)));
    }
    out.push_str(&format!("extract-recipients {}\n", if s.extract { "yes" } else { "no" }));
    for r in &s.recipients {
        out.push_str(&format!("rcpt {}\n", encode_token(r)));
    }
    out.push('\n');
    out
}

/// Reads the part before the message, leaving `r` at the message's first byte.
pub fn read_header<R: BufRead>(r: &mut R) -> Result<Submission, FormatError> {
    let bad = |n: usize, m: String| FormatError::Malformed(format!("line {n}: {m}"));
    let mut s = Submission::default();
    let mut extract = None;
    let mut line = Vec::with_capacity(256);
    let mut total = 0usize;
    for n in 1.. {
        if !read_piece(r, MAX_LINE + 1, &mut line).map_err(FormatError::Io)? {
            return Err(bad(n, "truncated: no empty line before the message".into()));
        }
        total += line.len();
        if total > MAX_HEADER {
            return Err(bad(n, format!("more than {MAX_HEADER} bytes before the message")));
        }
        let Some(text) = line.strip_suffix(b"\n") else {
            return Err(bad(
                n,
                match line.len() > MAX_LINE {
                    true => format!("line longer than {MAX_LINE} bytes"),
                    false => "truncated: no empty line before the message".into(),
                },
            ));
        };
        let text = std::str::from_utf8(text).map_err(|_| bad(n, "not ASCII".into()))?;
        if n == 1 {
            if text != MAGIC {
                return Err(bad(n, format!("not a maildrop file (want {MAGIC:?})")));
            }
            continue;
        }
        if text.is_empty() {
            break;
        }
        let Some((key, value)) = text.split_once(' ') else {
            return Err(bad(n, format!("want \"key value\", got {text:?}")));
        };
        if value.is_empty() || value.contains(' ') {
            return Err(bad(n, format!("{key}: takes one field")));
        }
        let decoded = decode_token(value).map_err(|e| bad(n, format!("{key}: {e}")))?;
        let once = |present: bool| if present { Err(bad(n, format!("{key} repeated"))) } else { Ok(()) };
        match key {
            "sender" => {
                once(s.sender.is_some())?;
                s.sender = Some(decoded);
            }
            "full-name" => {
                once(s.full_name.is_some())?;
                s.full_name = Some(decoded);
            }
            "extract-recipients" => {
                once(extract.is_some())?;
                extract = Some(match decoded.as_str() {
                    "yes" => true,
                    "no" => false,
                    _ => return Err(bad(n, format!("extract-recipients: want yes or no, got {decoded:?}"))),
                });
            }
            "rcpt" => {
                if s.recipients.len() >= MAX_RCPTS {
                    return Err(bad(n, format!("more than {MAX_RCPTS} recipients")));
                }
                s.recipients.push(decoded);
            }
            _ => return Err(bad(n, format!("unknown key {key:?}"))),
        }
    }
    s.extract = extract.ok_or_else(|| FormatError::Malformed("missing extract-recipients".into()))?;
    validate(&s).map_err(FormatError::Malformed)?;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn sample() -> Submission {
        Submission {
            sender: Some("root@example.test".into()),
            full_name: Some("Cron Dæmon, 100%".into()),
            extract: true,
            recipients: vec!["alice".into(), "bob@example.test".into(), "\"odd one\"@x.test".into()],
        }
    }

    fn parse(text: &[u8]) -> Result<(Submission, Vec<u8>), String> {
        let mut r = text;
        let s = read_header(&mut r).map_err(|e| e.to_string())?;
        let mut rest = Vec::new();
        r.read_to_end(&mut rest).unwrap();
        Ok((s, rest))
    }

    #[test]
    fn round_trip() {
        for s in [sample(), Submission::default(), Submission { sender: Some(String::new()), ..sample() }] {
            let mut text = render(&s).into_bytes();
            assert!(text.is_ascii());
            text.extend_from_slice(b"Subject: x\n\nbody\n");
            let (got, rest) = parse(&text).unwrap();
            assert_eq!(got, s);
            assert_eq!(rest, b"Subject: x\n\nbody\n");
        }
        let text = render(&sample());
        assert!(text.starts_with("buzon-maildrop 1\nsender root@example.test\n"), "{text}");
        assert!(text.contains("full-name Cron%20D%C3%A6mon,%20100%25\n"), "{text}");
        assert!(text.contains("rcpt \"odd%20one\"@x.test\n"), "{text}");
        assert!(render(&Submission { sender: Some(String::new()), ..sample() }).contains("\nsender -\n"));
        assert!(text.ends_with("\n\n"));
    }

    #[test]
    fn truncated_at_every_byte() {
        let text = render(&sample());
        for i in 0..text.len() {
            let e = parse(&text.as_bytes()[..i]).unwrap_err();
            assert!(e.contains("truncated") || e.contains("not a maildrop"), "{i}: {e}");
        }
    }

    #[test]
    fn garbage_is_refused() {
        let good = render(&sample());
        let cases: Vec<(String, &str)> = vec![
            ("".into(), "truncated"),
            ("hello\n\n".into(), "not a maildrop"),
            ("buzon-maildrop 2\n\n".into(), "not a maildrop"),
            ("buzon-maildrop 1\n\n".into(), "missing extract-recipients"),
            (good.replace("extract-recipients yes", "extract-recipients maybe"), "yes or no"),
            (good.replace("rcpt alice", "rcpt alice x"), "one field"),
            (good.replace("rcpt alice", "rcpt  alice"), "one field"),
            (good.replace("rcpt alice", "rcpt"), "key value"),
            (good.replace("rcpt alice", "rcpt a%zz"), "escape"),
            (good.replace("rcpt alice", "rcpt a%20b"), "bad local part"),
            (good.replace("rcpt alice", "colour blue"), "unknown key"),
            (good.replace("sender root@example.test", "sender @@"), "sender"),
            (good.replace("full-name ", "sender x@y\nfull-name "), "repeated"),
            (good.replace("full-name Cron", "full-name %0ACron"), "control"),
            (good.replace("rcpt alice", "rcpt \u{e9}"), "must be %-encoded"),
            (good.replacen('\n', "\r\n", 1), "not a maildrop"),
        ];
        for (text, want) in cases {
            let e = parse(text.as_bytes()).expect_err(&text);
            assert!(e.contains(want), "{text:?}: {e} (want {want})");
        }
        assert!(parse(b"buzon-maildrop 1\n\xff\n\n").is_err());
    }

    #[test]
    fn limits() {
        let long = format!("{MAGIC}\nrcpt {}\n\n", "a".repeat(MAX_LINE + 10));
        assert!(parse(long.as_bytes()).unwrap_err().contains("longer than"));
        let mut many = format!("{MAGIC}\nextract-recipients no\n");
        for i in 0..=MAX_RCPTS {
            many.push_str(&format!("rcpt u{i}\n"));
        }
        many.push('\n');
        assert!(parse(many.as_bytes()).unwrap_err().contains("recipients"));
        // A huge file without the empty line stops at MAX_HEADER, not at the end of the file.
        let mut endless = format!("{MAGIC}\nextract-recipients no\n").into_bytes();
        while endless.len() <= MAX_HEADER + 100 {
            endless.extend_from_slice(b"rcpt x\n");
        }
        assert!(parse(&endless).is_err());
        let s = Submission { full_name: Some("x".repeat(MAX_NAME + 1)), ..Submission::default() };
        assert!(validate(&s).is_err());
    }
}
