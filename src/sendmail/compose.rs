//! Turning a maildrop file into the queued message (the pickup's work without its I/O): the
//! envelope sender and recipients (arguments, `-t`, bare names put in the origin domain), the
//! `Return-Path:` line that only final delivery keeps, a `Received:` trace field (RFC 5321 4.4), and
//! the header section completed with what RFC 5322 3.6 requires (Date, From) and recommends
//! (Message-ID), Bcc removed. Everything read is bounded: the maildrop header by maildrop.rs, the
//! header section by header.rs, the message by the size limit.

use std::io::{self, BufRead, Read, Write};

use super::header::{self, Completion, Fed, HeaderSection, mailbox, qualify};
use super::maildrop::{self, FormatError, MAX_RCPTS};

/// Who submitted the message: the file's owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submitter {
    pub uid: u32,
    /// The login name (getpwuid), or `uid<N>` for a uid without a passwd entry.
    pub login: String,
    /// From the GECOS field, used when -F gave none.
    pub full_name: Option<String>,
}

/// What the pickup knows besides the file.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    pub hostname: &'a str,
    /// The domain of bare names (see `sendmail::origin_domain`).
    pub domain: &'a str,
    /// The queue id the message gets.
    pub id: &'a str,
    /// RFC 5322 date-time of the submission (a missing Date: field gets it).
    pub submitted: &'a str,
    /// RFC 5322 date-time of now (the Received: field).
    pub now: &'a str,
    pub submitter: &'a Submitter,
    /// message_size_limit.
    pub size_limit: u64,
}

/// The envelope of the composed message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Composed {
    /// "" for the null sender.
    pub sender: String,
    pub recipients: Vec<String>,
    /// Length of the `Return-Path:` line at the start of the output.
    pub body_offset: u64,
    /// RFC 6531: an address is not ASCII.
    pub smtputf8: bool,
    /// The message has bytes above 0x7F.
    pub eight_bit: bool,
    /// Message bytes read (the size limit applies to these).
    pub size: u64,
    /// Header fields that were added.
    pub added: Vec<&'static str>,
}

/// Why a file was not composed.
#[derive(Debug)]
pub enum ComposeError {
    /// Set the file aside; it will never do.
    Malformed(String),
    /// Reading or writing failed: try again later.
    Io(io::Error),
}

impl std::fmt::Display for ComposeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ComposeError::Malformed(m) => f.write_str(m),
            ComposeError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl From<FormatError> for ComposeError {
    fn from(e: FormatError) -> ComposeError {
        match e {
            FormatError::Malformed(m) => ComposeError::Malformed(m),
            FormatError::Io(e) => ComposeError::Io(e),
        }
    }
}

/// The last part of a GECOS field that names a person: up to the first comma, `&` standing for the
/// capitalised login (the BSD convention).
pub fn gecos_name(gecos: &str, login: &str) -> Option<String> {
    let first = gecos.split(',').next().unwrap_or("");
    let mut cap = login.to_string();
    if let Some(c) = cap.get(..1) {
        let upper = c.to_ascii_uppercase();
        cap.replace_range(..1, &upper);
    }
    let name = first.replace('&', &cap).trim().to_string();
    (!name.is_empty() && !name.chars().any(char::is_control)).then_some(name)
}

/// Reads a whole maildrop file from `r` and writes the message to store to `w`.
pub fn compose<R: BufRead, W: Write>(
    r: &mut R,
    w: &mut W,
    cx: &Context<'_>,
) -> Result<Composed, ComposeError> {
    let bad = ComposeError::Malformed;
    let sub = maildrop::read_header(r)?;
    // The message's header section, in memory (bounded by header::MAX_SECTION).
    let mut section = HeaderSection::new();
    let mut piece = Vec::with_capacity(1024);
    let mut size = 0u64;
    let mut eight_bit = false;
    let mut first_body_line: Option<Vec<u8>> = None;
    loop {
        if !header::read_piece(r, header::MAX_LINE + 1, &mut piece).map_err(ComposeError::Io)? {
            break;
        }
        size += piece.len() as u64;
        eight_bit |= !piece.is_ascii();
        match section.feed(&piece).map_err(|e| bad(e.to_string()))? {
            Fed::Field | Fed::Dropped => {}
            Fed::End => break,
            Fed::Body => {
                first_body_line = Some(std::mem::take(&mut piece));
                break;
            }
        }
    }
    let user_addr = format!("{}@{}", cx.submitter.login, cx.domain);
    let sender = match sub.sender.as_deref() {
        None => qualify(&user_addr, cx.domain).unwrap_or(user_addr.clone()),
        Some("") => String::new(),
        Some(s) => qualify(s, cx.domain).map_err(|e| bad(format!("sender {e}")))?,
    };
    let mut recipients: Vec<String> = Vec::new();
    let mut wanted = sub.recipients.clone();
    if sub.extract {
        wanted.extend(section.recipients().map_err(bad)?);
    }
    for r in &wanted {
        let q = qualify(r, cx.domain).map_err(|e| bad(format!("recipient {e}")))?;
        if !recipients.contains(&q) {
            recipients.push(q);
        }
    }
    if recipients.is_empty() {
        return Err(bad("no recipients".into()));
    }
    if recipients.len() > MAX_RCPTS {
        return Err(bad(format!("more than {MAX_RCPTS} recipients")));
    }
    let smtputf8 = !sender.is_ascii() || recipients.iter().any(|r| !r.is_ascii());
    let return_path = format!("Return-Path: <{sender}>\n");
    let for_clause = match recipients.as_slice() {
        [one] => format!("\n\tfor <{one}>"),
        _ => String::new(),
    };
    let mut head = Vec::with_capacity(4096);
    head.extend_from_slice(return_path.as_bytes());
    // RFC 5321 4.4: a trace field for local submission names no client host: "by" only.
    head.extend_from_slice(
        format!(
            "Received: by {} (buzon sendmail, uid {})\n\tid {}{for_clause};\n\t{}\n",
            cx.hostname, cx.submitter.uid, cx.id, cx.now
        )
        .as_bytes(),
    );
    let name = sub.full_name.as_deref().or(cx.submitter.full_name.as_deref());
    let from_addr =
        if sender.is_empty() { qualify(&user_addr, cx.domain).unwrap_or(user_addr) } else { sender.clone() };
    let from = mailbox(name, &from_addr);
    let message_id = format!("<{}@{}>", cx.id, cx.hostname);
    let added = section
        .write_completed(&Completion { date: cx.submitted, from: &from, message_id: &message_id }, &mut head);
    if let Some(line) = &first_body_line {
        head.extend_from_slice(line);
    }
    w.write_all(&head).map_err(ComposeError::Io)?;
    // The body, streamed; one byte past the limit is enough to know.
    let mut buf = [0u8; 16 * 1024];
    let mut limited = r.take(cx.size_limit.saturating_sub(size).saturating_add(1));
    loop {
        let n = match limited.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(ComposeError::Io(e)),
        };
        let chunk = buf.get(..n).unwrap_or_default();
        size += n as u64;
        eight_bit |= !chunk.is_ascii();
        w.write_all(chunk).map_err(ComposeError::Io)?;
    }
    if size > cx.size_limit {
        return Err(bad(format!("message larger than message_size_limit ({} bytes)", cx.size_limit)));
    }
    Ok(Composed {
        sender,
        recipients,
        body_offset: return_path.len() as u64,
        smtputf8,
        eight_bit,
        size,
        added,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sendmail::maildrop::{Submission, render};

    fn user() -> Submitter {
        Submitter { uid: 1000, login: "alice".into(), full_name: Some("Alice Liddell".into()) }
    }

    fn run(file: &str, limit: u64) -> Result<(Composed, String), String> {
        let u = user();
        let cx = Context {
            hostname: "mx.example.test",
            domain: "example.test",
            id: "0123456789ABCDEF",
            submitted: "Mon, 1 Jan 2029 10:00:00 +0000",
            now: "Mon, 1 Jan 2029 10:00:05 +0000",
            submitter: &u,
            size_limit: limit,
        };
        let mut out = Vec::new();
        let c = compose(&mut file.as_bytes(), &mut out, &cx).map_err(|e| e.to_string())?;
        Ok((c, String::from_utf8(out).unwrap()))
    }

    fn file(sub: &Submission, msg: &str) -> String {
        format!("{}{msg}", render(sub))
    }

    #[test]
    fn bare_body_gets_every_field() {
        let sub = Submission { recipients: vec!["bob".into()], ..Submission::default() };
        let (c, out) = run(&file(&sub, "just a body\n"), 1000).unwrap();
        assert_eq!(c.sender, "alice@example.test");
        assert_eq!(c.recipients, ["bob@example.test"]);
        assert_eq!(c.added, ["Date", "From", "Message-ID"]);
        assert_eq!(
            out,
            "Return-Path: <alice@example.test>\n\
             Received: by mx.example.test (buzon sendmail, uid 1000)\n\tid 0123456789ABCDEF\n\
             \tfor <bob@example.test>;\n\tMon, 1 Jan 2029 10:00:05 +0000\n\
             Date: Mon, 1 Jan 2029 10:00:00 +0000\n\
             From: Alice Liddell <alice@example.test>\n\
             Message-ID: <0123456789ABCDEF@mx.example.test>\n\njust a body\n"
        );
        assert_eq!(c.body_offset, "Return-Path: <alice@example.test>\n".len() as u64);
        assert!(!c.eight_bit && !c.smtputf8);
    }

    #[test]
    fn extract_recipients_and_drop_bcc() {
        let sub = Submission {
            sender: Some("cron@example.test".into()),
            full_name: Some("Cron Daemon".into()),
            extract: true,
            recipients: vec!["carol@x.test".into()],
        };
        let msg =
            "To: bob, Carol <carol@x.test>\nCc: dave@y.test\nBcc: secret@z.test\nSubject: ünï\n\nbody\n";
        let (c, out) = run(&file(&sub, msg), 1000).unwrap();
        assert_eq!(c.recipients, ["carol@x.test", "bob@example.test", "dave@y.test", "secret@z.test"]);
        assert_eq!(c.sender, "cron@example.test");
        assert!(!out.contains("Bcc") && !out.contains("secret"), "{out}");
        assert!(out.contains("From: Cron Daemon <cron@example.test>\n"), "{out}");
        assert!(!out.contains("\tfor <"), "{out}");
        assert!(c.eight_bit);
        assert!(out.ends_with("Subject: ünï\nDate: Mon, 1 Jan 2029 10:00:00 +0000\nFrom: Cron Daemon <cron@example.test>\nMessage-ID: <0123456789ABCDEF@mx.example.test>\n\nbody\n"), "{out}");
    }

    #[test]
    fn kept_fields_and_null_sender() {
        let sub = Submission {
            sender: Some(String::new()),
            recipients: vec!["b@x.test".into()],
            ..Default::default()
        };
        let msg = "From: Someone <s@x.test>\nDate: Tue, 2 Jan 2029 00:00:00 +0000\nMessage-ID: <m@x>\n\nhi\n";
        let (c, out) = run(&file(&sub, msg), 1000).unwrap();
        assert_eq!(c.sender, "");
        assert!(c.added.is_empty());
        assert!(out.starts_with("Return-Path: <>\n"));
        assert!(out.ends_with(&format!("\n{msg}")), "{out}");
    }

    #[test]
    fn refusals() {
        let none = Submission { extract: true, ..Submission::default() };
        assert!(run(&file(&none, "Subject: x\n\n"), 1000).unwrap_err().contains("no recipients"));
        let one = Submission { recipients: vec!["b".into()], ..Submission::default() };
        assert!(
            run(&file(&one, &format!("Subject: x\n\n{}\n", "y".repeat(2000))), 1000)
                .unwrap_err()
                .contains("size")
        );
        assert!(run(&file(&one, &"x".repeat(999)), 1000).is_ok());
        assert!(run(&file(&one, &"x".repeat(1001)), 1000).is_err());
        assert!(run("garbage\n\n", 1000).unwrap_err().contains("not a maildrop"));
        let bad_to = Submission { extract: true, ..Submission::default() };
        assert!(run(&file(&bad_to, "To: a b c\n\n"), 1000).is_err());
        let big_header = format!("X: {}\n\n", "y".repeat(header::MAX_LINE + 1));
        assert!(run(&file(&one, &big_header), 1 << 30).unwrap_err().contains("header line"));
    }

    #[test]
    fn gecos() {
        assert_eq!(gecos_name("Alice Liddell,Room 1,,", "alice").as_deref(), Some("Alice Liddell"));
        assert_eq!(gecos_name("& Smith", "bob").as_deref(), Some("Bob Smith"));
        assert_eq!(gecos_name(",,,", "x"), None);
        assert_eq!(gecos_name("", "x"), None);
    }
}
