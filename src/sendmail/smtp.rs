//! `sendmail -bs`: an SMTP session (RFC 5321) on standard input and output, for mail programs that
//! speak SMTP to a local command. Commands are parsed by the server's own parser (smtp/command.rs);
//! each accepted message goes into the maildrop like any other submission, with the MAIL FROM
//! address as its sender (as `-f` would give it). No AUTH and no STARTTLS: the session runs as the
//! invoking user, whom the pickup knows by the file's owner.

use std::io::{self, BufRead, Write};
use std::path::Path;

use super::header::read_piece;
use super::maildrop::{MAX_RCPTS, Submission};
use super::submit::{self, Dots, SubmitError};
use crate::smtp::command::{self, Command, RcptTo};
use crate::smtp::reply::Reply;

/// RFC 5321 4.5.3.1.4: a command line is at most 512 octets; be generous with extensions.
const MAX_COMMAND: usize = 4096;

/// Runs the session until QUIT or the end of input.
pub fn session<R: BufRead, W: Write>(
    input: &mut R,
    out: &mut W,
    hostname: &str,
    maildrop: &Path,
    wake: &Path,
    limit: u64,
) -> io::Result<()> {
    let send = |out: &mut W, r: Reply| -> io::Result<()> {
        let mut b = Vec::new();
        r.write_to(&mut b);
        out.write_all(&b)?;
        out.flush()
    };
    send(out, Reply::new(220, "", format!("{hostname} ESMTP buzon (sendmail -bs)")))?;
    let mut sub: Option<Submission> = None;
    let mut line = Vec::with_capacity(256);
    loop {
        if !read_piece(input, MAX_COMMAND + 2, &mut line)? {
            return Ok(());
        }
        if line.last() != Some(&b'\n') {
            // Too long (or cut by the end of input): skip the rest of the line.
            while line.last() != Some(&b'\n') && read_piece(input, MAX_COMMAND, &mut line)? {}
            send(out, Reply::new(500, "5.5.2", "Error: line too long"))?;
            continue;
        }
        let text = line.strip_suffix(b"\n").unwrap_or(&line);
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        let reply = match command::parse(text) {
            Err(e) => e.reply(),
            Ok(Command::Helo(_)) => Reply::new(250, "", hostname.to_string()),
            Ok(Command::Ehlo(_)) => Reply::lines(
                250,
                "",
                vec![
                    hostname.to_string(),
                    "8BITMIME".into(),
                    format!("SIZE {limit}"),
                    "ENHANCEDSTATUSCODES".into(),
                ],
            ),
            Ok(Command::Mail { from, params }) => {
                if sub.is_some() {
                    Reply::new(503, "5.5.1", "Error: nested MAIL command")
                } else if params.size.is_some_and(|s| s > limit) {
                    Reply::new(552, "5.3.4", "Error: message size exceeds fixed limit")
                } else {
                    sub = Some(Submission {
                        sender: Some(from.map(|a| a.to_string()).unwrap_or_default()),
                        ..Submission::default()
                    });
                    Reply::new(250, "2.1.0", "Ok")
                }
            }
            Ok(Command::Rcpt { to, .. }) => match &mut sub {
                None => Reply::new(503, "5.5.1", "Error: need MAIL command"),
                Some(s) if s.recipients.len() >= MAX_RCPTS => {
                    Reply::new(452, "4.5.3", "Error: too many recipients")
                }
                Some(s) => {
                    s.recipients.push(match to {
                        RcptTo::Address(a) => a.to_string(),
                        RcptTo::Postmaster => "postmaster".into(),
                    });
                    Reply::new(250, "2.1.5", "Ok")
                }
            },
            Ok(Command::Data) => match sub.take() {
                Some(s) if !s.recipients.is_empty() => {
                    send(out, Reply::new(354, "", "End data with <CR><LF>.<CR><LF>"))?;
                    match submit::submit(maildrop, &s, input, Dots::Smtp, limit) {
                        Ok(done) => {
                            submit::wake(wake);
                            Reply::new(250, "2.0.0", format!("Ok: queued as {}", done.name))
                        }
                        Err(SubmitError::Aborted) => return Ok(()),
                        Err(SubmitError::Data(m)) => Reply::new(554, "5.6.0", format!("Error: {m}")),
                        Err(e) => Reply::new(451, "4.3.0", format!("Error: {e}")),
                    }
                }
                other => {
                    sub = other;
                    Reply::new(503, "5.5.1", "Error: need RCPT command")
                }
            },
            Ok(Command::Rset) => {
                sub = None;
                Reply::new(250, "2.0.0", "Ok")
            }
            Ok(Command::Noop) => Reply::new(250, "2.0.0", "Ok"),
            Ok(Command::Vrfy(_)) => Reply::new(252, "2.0.0", "Send some mail, I'll try my best"),
            Ok(Command::Quit) => {
                send(out, Reply::new(221, "2.0.0", "Bye"))?;
                return Ok(());
            }
            Ok(_) => Reply::new(502, "5.5.1", "Error: command not implemented"),
        };
        send(out, reply)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(input: &str) -> (String, tempfile::TempDir) {
        let d = tempfile::tempdir().unwrap();
        let mut out = Vec::new();
        session(&mut input.as_bytes(), &mut out, "host.test", d.path(), &d.path().join("sock"), 1000)
            .unwrap();
        (String::from_utf8(out).unwrap(), d)
    }

    #[test]
    fn transcript() {
        let (out, d) = run(
            "EHLO me\r\nDATA\r\nMAIL FROM:<joe@x.test>\r\nRCPT TO:<alice@example.test>\r\nRCPT TO:<Postmaster>\r\n\
             DATA\r\nSubject: s\r\n\r\n..dot\r\n.\r\nQUIT\r\n",
        );
        let codes: Vec<&str> = out.lines().map(|l| l.get(..4).unwrap_or(l)).collect();
        assert_eq!(
            codes,
            ["220 ", "250-", "250-", "250-", "250 ", "503 ", "250 ", "250 ", "250 ", "354 ", "250 ", "221 "],
            "{out}"
        );
        let files: Vec<_> = std::fs::read_dir(d.path()).unwrap().map(|e| e.unwrap().path()).collect();
        assert_eq!(files.len(), 1);
        let text = std::fs::read_to_string(&files[0]).unwrap();
        assert_eq!(
            text,
            "buzon-maildrop 1\nsender joe@x.test\nextract-recipients no\nrcpt alice@example.test\n\
             rcpt postmaster\n\nSubject: s\n\n.dot\n"
        );
    }

    #[test]
    fn errors_and_abandoned_data() {
        let (out, d) = run(
            "MAIL FROM:<>\r\nMAIL FROM:<>\r\nRCPT TO:<a b>\r\nBDAT 1 LAST\r\nRCPT TO:<a@x.test>\r\nDATA\r\npartial\r\n",
        );
        assert!(out.contains("\r\n503 5.5.1 Error: nested"), "{out}");
        assert!(out.contains("\r\n501 5.1.3"), "{out}");
        assert!(out.contains("\r\n502 5.5.1"), "{out}");
        assert!(out.ends_with("354 End data with <CR><LF>.<CR><LF>\r\n"), "{out}");
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 0);
    }
}
