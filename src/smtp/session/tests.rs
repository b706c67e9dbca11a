//! Unit tests of the SMTP session state machine: transcripts in, replies out.

use super::*;
use std::cell::RefCell;

/// example.org has alice, bob and postmaster; tmp@ fails temporarily, perm@ permanently.
#[derive(Default)]
struct Users {
    asked: RefCell<Vec<String>>,
}

/// No logins here.
impl Login for Users {
    fn credentials(&self) -> Option<&dyn crate::auth::sasl::Credentials> {
        None
    }
    fn random(&self, _: &mut [u8]) {}
    fn auth_failed(&self, _: &str) {}
    fn auth_blocked(&self) -> bool {
        false
    }
}

impl Backend for Users {
    fn check_rcpt(&self, rcpt: &Address) -> RcptCheck {
        self.asked.borrow_mut().push(rcpt.to_string());
        if rcpt.domain() != "example.org" && rcpt.domain() != "mx.example.org" {
            return RcptCheck::NotLocal;
        }
        match rcpt.local() {
            "alice" | "bob" | "postmaster" | "jörg" => RcptCheck::Accept,
            "tmp" => RcptCheck::Temp("Temporary lookup failure".into()),
            "perm" => RcptCheck::Perm("Mailbox disabled".into()),
            _ => RcptCheck::UnknownUser,
        }
    }
}

fn params(max_errors: usize) -> Arc<Params> {
    Arc::new(Params {
        hostname: "mx.example.org".into(),
        message_size_limit: 1000,
        max_recipients: 3,
        max_errors,
        starttls: false,
        auth_mechanisms: Vec::new(),
        require_auth: false,
        min_free: 0,
        junk_limit: 100,
    })
}

fn session_with(relay: bool, max_errors: usize) -> Session {
    let peer =
        Peer { ip: "192.0.2.7".parse().unwrap(), port: 40000, relay_allowed: relay, cleartext_auth: false };
    Session::new(params(max_errors), peer)
}

fn session() -> Session {
    session_with(false, 100)
}

fn wire(step: &Step) -> String {
    step.reply.as_ref().map(|r| String::from_utf8(r.to_bytes()).unwrap()).unwrap_or_default()
}

/// Feeds lines and checks each reply starts with the expected text; returns the last step.
fn script(s: &mut Session, users: &Users, lines: &[(&str, &str)]) -> Step {
    let mut last = Step { reply: None, next: Next::Command };
    for (line, want) in lines {
        last = s.on_line(line.as_bytes(), users);
        let got = wire(&last);
        assert!(got.starts_with(want), "{line:?}: got {got:?}, want {want:?}");
    }
    last
}

fn chunk(size: u64, last: bool, discard: bool) -> Next {
    Next::Chunk { size, last, discard }
}

#[test]
fn full_transaction_like_rfc5321_appendix_d() {
    let (mut s, users) = (session(), Users::default());
    assert_eq!(s.greeting().to_string(), "220 mx.example.org ESMTP buzon");
    let ehlo = s.on_line(b"EHLO bar.example.com", &users);
    assert_eq!(
        wire(&ehlo),
        "250-mx.example.org\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250-8BITMIME\r\n\
         250-ENHANCEDSTATUSCODES\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n"
    );
    assert_eq!(s.protocol(), "ESMTP");
    let step = script(
        &mut s,
        &users,
        &[
            ("MAIL FROM:<Smith@bar.example.com>", "250 2.1.0 Ok\r\n"),
            ("RCPT TO:<Jones@example.org>", "550 5.1.1 <Jones@example.org>: Recipient address rejected"),
            ("RCPT TO:<alice@Example.ORG>", "250 2.1.5 Ok\r\n"),
            ("RCPT TO:<bob@example.org>", "250 2.1.5 Ok\r\n"),
            ("DATA", "354 End data with <CR><LF>.<CR><LF>\r\n"),
        ],
    );
    assert_eq!(step.next, Next::Data);
    let t = s.transaction().unwrap();
    assert_eq!(t.sender.as_ref().unwrap().to_string(), "Smith@bar.example.com");
    let rcpts: Vec<String> = t.recipients.iter().map(|a| a.to_string()).collect();
    assert_eq!(rcpts, ["alice@example.org", "bob@example.org"]);
    assert_eq!(s.helo_name(), Some("bar.example.com"));
    let done = s.on_message(MessageResult::Stored { queue_id: "4Xq1".into() });
    assert_eq!(wire(&done), "250 2.0.0 Ok: queued as 4Xq1\r\n");
    assert_eq!(done.next, Next::Command);
    assert!(s.transaction().is_none());
    let quit = script(&mut s, &users, &[("QUIT", "221 2.0.0 Bye\r\n")]);
    assert_eq!(quit.next, Next::Close);
    assert_eq!(s.on_line(b"NOOP", &users), Step { reply: None, next: Next::Close });
}

#[test]
fn helo_and_protocol_names() {
    let (mut s, users) = (session(), Users::default());
    assert_eq!(wire(&s.on_line(b"HELO client", &users)), "250 mx.example.org\r\n");
    assert_eq!(s.protocol(), "SMTP");
    script(&mut s, &users, &[("EHLO client", "250-"), ("MAIL FROM:<a@b.c> SMTPUTF8", "250 2.1.0")]);
    assert_eq!(s.protocol(), "UTF8SMTP");
    script(&mut s, &users, &[("RSET", "250 2.0.0 Ok")]);
    assert_eq!(s.protocol(), "ESMTP");
}

#[test]
fn pipelined_group_with_rejections() {
    // RFC 2920 3.1: MAIL, RCPTs and DATA sent together; each gets its own reply, in order.
    let (mut s, users) = (session(), Users::default());
    let step = script(
        &mut s,
        &users,
        &[
            ("EHLO c", "250-"),
            ("MAIL FROM:<> BODY=8BITMIME SIZE=500", "250 2.1.0"),
            ("RCPT TO:<nobody@example.org>", "550 5.1.1"),
            ("RCPT TO:<x@elsewhere.net>", "554 5.7.1 <x@elsewhere.net>: Relay access denied"),
            ("DATA", "503 5.5.1 Error: no valid recipients"),
            ("RCPT TO:<alice@example.org>", "250 2.1.5"),
            ("DATA", "354 "),
        ],
    );
    assert_eq!(step.next, Next::Data);
    let t = s.transaction().unwrap();
    assert_eq!((t.sender.clone(), t.eight_bit, t.declared_size), (None, true, Some(500)));
    assert_eq!(s.errors(), 3);
}

#[test]
fn sequence_and_syntax_errors() {
    // (prelude, line, reply)
    let cases: &[(&[&str], &str, &str)] = &[
        (&[], "MAIL FROM:<a@b.c>", "503 5.5.1 Error: send HELO/EHLO first"),
        (&[], "RCPT TO:<alice@example.org>", "503 5.5.1 Error: need MAIL command"),
        (&[], "DATA", "503 5.5.1 Error: need RCPT command"),
        (&[], "HELO", "501 5.5.4 Syntax: HELO hostname"),
        (&[], "EHLO", "501 5.5.4 Syntax: EHLO hostname"),
        (&[], "", "500 5.5.2"),
        (&[], "XYZZY", "500 5.5.2 Error: command not recognized"),
        (&[], "STARTTLS", "502 5.5.1"),
        (&[], "AUTH PLAIN", "502 5.5.1"),
        (&[], "EXPN staff", "502 5.5.1"),
        (&[], "VRFY alice", "252 2.0.0 Send some mail, I'll try my best"),
        (&[], "HELP", "214 2.0.0"),
        (&[], "NOOP", "250 2.0.0 Ok"),
        (&[], "RSET", "250 2.0.0 Ok"),
        (&["EHLO c"], "RCPT TO:<alice@example.org>", "503 5.5.1 Error: need MAIL command"),
        (&["EHLO c"], "DATA", "503 5.5.1 Error: need RCPT command"),
        (&["EHLO c"], "MAIL FROM:<a@b.c> SIZE=1001", "552 5.3.4 Message size exceeds fixed limit"),
        (&["EHLO c"], "MAIL FROM:<a@-b.c>", "501 5.1.7"),
        (&["EHLO c"], "MAIL FROM:<a@b.c> FOO=1", "555 5.5.4 Unsupported option: FOO"),
        (&["EHLO c"], "MAIL FROM:<jörg@b.c>", "553 5.6.7"),
        (&["EHLO c"], "MAIL FROM:<a@b.c> SMTPUTF8 SIZE=1000", "250 2.1.0"),
        (&["EHLO c", "MAIL FROM:<a@b.c>"], "MAIL FROM:<a@b.c>", "503 5.5.1 Error: nested MAIL command"),
        (&["EHLO c", "MAIL FROM:<a@b.c>"], "DATA", "503 5.5.1 Error: no valid recipients"),
        (&["EHLO c", "MAIL FROM:<a@b.c>"], "RCPT TO:<>", "501 5.1.3"),
        (&["EHLO c", "MAIL FROM:<a@b.c>"], "RCPT TO:<a@b.c> NOTIFY=NEVER", "555 5.5.4"),
        (&["EHLO c", "MAIL FROM:<a@b.c>"], "RCPT TO:<jörg@example.org>", "553 5.6.7"),
        (&["EHLO c", "MAIL FROM:<a@b.c> SMTPUTF8"], "RCPT TO:<jörg@example.org>", "250 2.1.5"),
        (&["EHLO c", "MAIL FROM:<a@b.c>"], "RCPT TO:<tmp@example.org>", "451 4.3.0 <tmp@example.org>: Temp"),
        (
            &["EHLO c", "MAIL FROM:<a@b.c>"],
            "RCPT TO:<perm@example.org>",
            "550 5.1.1 <perm@example.org>: Mail",
        ),
        (
            &["EHLO c", "MAIL FROM:<a@b.c>"],
            "RCPT TO:<u@other.net>",
            "554 5.7.1 <u@other.net>: Relay access denied",
        ),
        (&["EHLO c", "MAIL FROM:<a@b.c>", "RCPT TO:<bob@example.org>"], "DATA x", "501 5.5.4 Syntax: DATA"),
    ];
    for (prelude, line, want) in cases {
        let (mut s, users) = (session(), Users::default());
        for p in *prelude {
            let r = s.on_line(p.as_bytes(), &users);
            assert!(!r.reply.as_ref().unwrap().is_error(), "prelude {p}");
        }
        let got = wire(&s.on_line(line.as_bytes(), &users));
        assert!(got.starts_with(want), "{prelude:?} {line:?}: got {got:?}, want {want:?}");
        let is_error = want.starts_with('4') || want.starts_with('5');
        assert_eq!(s.errors(), usize::from(is_error), "{line}");
    }
}

#[test]
fn non_utf8_and_too_long_lines() {
    let (mut s, users) = (session(), Users::default());
    assert!(wire(&s.on_line(b"HELO \xff", &users)).starts_with("500 5.5.2 Error: bad UTF-8 syntax"));
    assert_eq!(wire(&s.on_line_too_long()), "500 5.5.2 Line too long\r\n");
    assert_eq!(s.errors(), 2);
}

#[test]
fn relay_allowed_for_trusted_clients() {
    let (mut s, users) = (session_with(true, 100), Users::default());
    script(
        &mut s,
        &users,
        &[("EHLO c", "250-"), ("MAIL FROM:<a@b.c>", "250"), ("RCPT TO:<u@other.net>", "250 2.1.5 Ok")],
    );
}

#[test]
fn postmaster_and_duplicates() {
    let (mut s, users) = (session(), Users::default());
    script(
        &mut s,
        &users,
        &[
            ("EHLO c", "250-"),
            ("MAIL FROM:<>", "250 2.1.0"),
            ("RCPT TO:<PostMaster>", "250 2.1.5"),
            ("RCPT TO:<@relay.example:alice@example.org>", "250 2.1.5"),
            ("RCPT TO:<alice@EXAMPLE.org>", "250 2.1.5"),
        ],
    );
    assert_eq!(
        *users.asked.borrow(),
        ["postmaster@mx.example.org", "alice@example.org", "alice@example.org"]
    );
    let got: Vec<String> = s.transaction().unwrap().recipients.iter().map(|a| a.to_string()).collect();
    assert_eq!(got, ["postmaster@mx.example.org", "alice@example.org"]);
}

#[test]
fn too_many_recipients() {
    let (mut s, users) = (session(), Users::default());
    script(
        &mut s,
        &users,
        &[
            ("EHLO c", "250-"),
            ("MAIL FROM:<a@b.c>", "250"),
            ("RCPT TO:<alice@example.org>", "250"),
            ("RCPT TO:<bob@example.org>", "250"),
            ("RCPT TO:<postmaster@example.org>", "250"),
            ("RCPT TO:<jones@example.org>", "452 4.5.3 Error: too many recipients"),
        ],
    );
    assert_eq!(s.errors(), 0, "a bounded overshoot is not an error");
    assert_eq!(s.transaction().unwrap().recipients.len(), 3);
}

#[test]
fn too_many_errors_closes() {
    let (mut s, users) = (session_with(false, 3), Users::default());
    script(&mut s, &users, &[("EHLO c", "250-"), ("FOO", "500"), ("BAR", "500"), ("MAIL FROM:<x>", "501")]);
    let step = s.on_line(b"NOOP", &users);
    assert_eq!(wire(&step), "421 4.7.0 mx.example.org Error: too many errors\r\n");
    assert_eq!(step.next, Next::Close);
    // Likewise for an over-long line once the limit is reached.
    let mut s = session_with(false, 1);
    s.on_line_too_long();
    assert_eq!(s.on_line_too_long().next, Next::Close);
}

#[test]
fn message_results() {
    let cases = [
        (MessageResult::TooBig, "552 5.3.4 Message size exceeds fixed limit\r\n", 1),
        (MessageResult::Temp("Error: queue file write error".into()), "451 4.3.0 Error: queue file", 0),
        (MessageResult::Perm("Error: message rejected".into()), "554 5.3.0 Error: message rejected", 0),
    ];
    for (result, want, errors) in cases {
        let (mut s, users) = (session(), Users::default());
        let lines = [("EHLO c", "250-"), ("MAIL FROM:<a@b.c>", "250"), ("RCPT TO:<bob@example.org>", "250")];
        script(&mut s, &users, &lines);
        assert_eq!(s.on_line(b"DATA", &users).next, Next::Data);
        let step = s.on_message(result);
        assert!(wire(&step).starts_with(want), "{}", wire(&step));
        assert_eq!(s.errors(), errors);
        assert!(s.transaction().is_none());
        // The session is ready for the next transaction.
        script(&mut s, &users, &lines[1..]);
    }
}

#[test]
fn bdat_transaction() {
    let (mut s, users) = (session(), Users::default());
    script(
        &mut s,
        &users,
        &[("EHLO c", "250-"), ("MAIL FROM:<a@b.c>", "250"), ("RCPT TO:<bob@example.org>", "250")],
    );
    let step = s.on_line(b"BDAT 400", &users);
    assert_eq!(step, Step { reply: None, next: chunk(400, false, false) });
    assert_eq!(wire(&s.on_chunk(400, false)), "250 2.0.0 400 octets received\r\n");
    script(
        &mut s,
        &users,
        &[("DATA", "503 5.5.1 Error: DATA after BDAT"), ("RCPT TO:<alice@example.org>", "503 5.5.1")],
    );
    let step = s.on_line(b"BDAT 600 LAST", &users);
    assert_eq!(step, Step { reply: None, next: chunk(600, true, false) });
    // A LAST chunk is answered by on_message only.
    assert_eq!(s.on_chunk(600, false).next, Next::Close);
}

#[test]
fn bdat_last_stores() {
    let (mut s, users) = (session(), Users::default());
    script(
        &mut s,
        &users,
        &[("EHLO c", "250-"), ("MAIL FROM:<a@b.c>", "250"), ("RCPT TO:<bob@example.org>", "250")],
    );
    assert_eq!(s.on_line(b"BDAT 0 LAST", &users).next, chunk(0, true, false));
    assert_eq!(
        wire(&s.on_message(MessageResult::Stored { queue_id: "Q1".into() })),
        "250 2.0.0 Ok: queued as Q1\r\n"
    );
    script(&mut s, &users, &[("MAIL FROM:<a@b.c>", "250 2.1.0")]);
}

#[test]
fn bdat_refused_octets_are_still_read() {
    // RFC 3030 2: the chunk is read and discarded before the error reply.
    let cases: &[(&[&str], &str, &str)] = &[
        (&[], "BDAT 10", "503 5.5.1 Error: need MAIL command"),
        (&["EHLO c"], "BDAT 10 LAST", "503 5.5.1 Error: need MAIL command"),
        (&["EHLO c", "MAIL FROM:<a@b.c>"], "BDAT 10", "503 5.5.1 Error: no valid recipients"),
    ];
    for (prelude, line, want) in cases {
        let (mut s, users) = (session(), Users::default());
        for p in *prelude {
            s.on_line(p.as_bytes(), &users);
        }
        let step = s.on_line(line.as_bytes(), &users);
        assert!(wire(&step).starts_with(want), "{line}: {}", wire(&step));
        assert!(matches!(step.next, Next::Chunk { size: 10, discard: true, .. }), "{line}");
        assert_eq!(s.errors(), 1);
        // The caller may report the discarded chunk; that answers nothing and changes nothing.
        let confirm = if line.ends_with("LAST") {
            s.on_message(MessageResult::Perm("discarded".into()))
        } else {
            s.on_chunk(10, true)
        };
        assert_eq!(confirm, Step { reply: None, next: Next::Command }, "{line}");
        assert_eq!(s.errors(), 1);
        // Only once: a second report is out of order.
        assert_eq!(s.on_chunk(10, false).next, Next::Close);
    }
}

#[test]
fn bdat_too_big_then_discards_until_last() {
    let (mut s, users) = (session(), Users::default());
    script(
        &mut s,
        &users,
        &[("EHLO c", "250-"), ("MAIL FROM:<a@b.c>", "250"), ("RCPT TO:<bob@example.org>", "250")],
    );
    assert_eq!(s.on_line(b"BDAT 600", &users).next, chunk(600, false, false));
    assert!(wire(&s.on_chunk(600, false)).starts_with("250 2.0.0 600"));
    // 600 + 500 > 1000: refused before reading, octets discarded.
    let step = s.on_line(b"BDAT 500", &users);
    assert!(wire(&step).starts_with("552 5.3.4"));
    assert_eq!(step.next, chunk(500, false, true));
    assert_eq!(s.phase(), Phase::BdatFailed);
    assert!(s.transaction().is_none());
    // Pipelined chunks already on the way are discarded with an error.
    let step = s.on_line(b"BDAT 5", &users);
    assert!(wire(&step).starts_with("503 5.5.1 Error: previous BDAT failed"));
    assert_eq!(step.next, chunk(5, false, true));
    let step = s.on_line(b"BDAT 5 LAST", &users);
    assert_eq!(step.next, chunk(5, true, true));
    assert_eq!(s.on_message(MessageResult::Perm("x".into())), Step { reply: None, next: Next::Command });
    // LAST ends the failed transaction; a new one can start.
    script(&mut s, &users, &[("MAIL FROM:<a@b.c>", "250 2.1.0")]);
}

#[test]
fn bdat_chunk_reported_too_big_and_mail_after_failure() {
    let (mut s, users) = (session(), Users::default());
    script(
        &mut s,
        &users,
        &[("EHLO c", "250-"), ("MAIL FROM:<a@b.c>", "250"), ("RCPT TO:<bob@example.org>", "250")],
    );
    s.on_line(b"BDAT 100", &users);
    assert!(wire(&s.on_chunk(100, true)).starts_with("552 5.3.4"));
    assert_eq!(s.phase(), Phase::BdatFailed);
    // Unlike a live transaction, a failed one can be replaced by MAIL directly; RSET works too.
    script(
        &mut s,
        &users,
        &[("MAIL FROM:<a@b.c>", "250 2.1.0"), ("RSET", "250 2.0.0"), ("MAIL FROM:<>", "250")],
    );
}

#[test]
fn bdat_bad_syntax_hangs_up() {
    let (mut s, users) = (session(), Users::default());
    script(&mut s, &users, &[("EHLO c", "250-")]);
    let step = s.on_line(b"BDAT ten", &users);
    assert!(wire(&step).starts_with("421 4.5.4 mx.example.org"));
    assert_eq!(step.next, Next::Close);
}

#[test]
fn helo_and_rset_reset_the_transaction() {
    for reset in ["RSET", "EHLO again", "HELO again"] {
        let (mut s, users) = (session(), Users::default());
        script(
            &mut s,
            &users,
            &[("EHLO c", "250-"), ("MAIL FROM:<a@b.c>", "250"), ("RCPT TO:<bob@example.org>", "250")],
        );
        script(&mut s, &users, &[(reset, "250"), ("DATA", "503 5.5.1 Error: need RCPT command")]);
        assert!(s.transaction().is_none());
    }
    // RSET before HELO does not count as a greeting.
    let (mut s, users) = (session(), Users::default());
    script(&mut s, &users, &[("RSET", "250"), ("MAIL FROM:<a@b.c>", "503 5.5.1 Error: send HELO")]);
}

#[test]
fn fixed_replies_and_misuse() {
    let (mut s, users) = (session(), Users::default());
    assert_eq!(Session::busy("h").to_string(), "421 4.3.2 h Service not available, too busy");
    assert_eq!(s.on_shutdown().to_string(), "421 4.3.2 mx.example.org Service shutting down");
    assert_eq!(s.on_line(b"NOOP", &users).next, Next::Close);
    let mut s = session();
    assert_eq!(s.on_timeout().to_string(), "421 4.4.2 mx.example.org Error: timeout exceeded");
    // Glue calling the wrong hook gets a safe close, never a panic.
    let mut s = session();
    assert_eq!(s.on_message(MessageResult::TooBig).next, Next::Close);
    let mut s = session();
    assert_eq!(s.on_chunk(1, false).next, Next::Close);
    let mut s = session();
    script(
        &mut s,
        &users,
        &[("EHLO c", "250-"), ("MAIL FROM:<a@b.c>", "250"), ("RCPT TO:<bob@example.org>", "250")],
    );
    s.on_line(b"DATA", &users);
    assert_eq!(s.on_line(b"NOOP", &users).next, Next::Close);
}

#[test]
fn every_verb_has_one_table_row() {
    for (i, e) in TABLE.iter().enumerate() {
        assert!(TABLE[i + 1..].iter().all(|o| o.verb != e.verb), "{:?} twice", e.verb);
    }
    assert_eq!(TABLE.len(), 14);
}

/// A backend with one user (alice@example.org / secret) who owns alice@example.org.
struct Accounts {
    failures: std::cell::Cell<u32>,
    blocked: bool,
}

impl Backend for Accounts {
    fn check_rcpt(&self, _: &Address) -> RcptCheck {
        RcptCheck::Accept
    }
    fn sender_allowed(&self, user: &str, sender: Option<&Address>) -> bool {
        sender.is_none_or(|a| a.to_string() == user)
    }
}

impl Login for Accounts {
    fn credentials(&self) -> Option<&dyn crate::auth::sasl::Credentials> {
        Some(self)
    }
    fn random(&self, _: &mut [u8]) {}
    fn auth_failed(&self, _: &str) {
        self.failures.set(self.failures.get() + 1);
    }
    fn auth_blocked(&self) -> bool {
        self.blocked
    }
}

impl crate::auth::sasl::Credentials for Accounts {
    fn verify(&self, user: &str, password: &[u8]) -> Result<Option<String>, String> {
        Ok((user == "alice@example.org" && password == b"secret").then(|| user.to_string()))
    }
    fn cram_md5(&self, _: &str, _: &[u8]) -> Result<Option<(String, [u8; 16])>, String> {
        Ok(None)
    }
    fn plaintext(&self, _: &str) -> Result<Option<(String, String)>, String> {
        Ok(None)
    }
    fn scram(
        &self,
        _: &str,
        _: crate::auth::sasl::ScramHash,
    ) -> Result<Option<(String, crate::auth::sasl::ScramKeys)>, String> {
        Ok(None)
    }
}

fn submission(cleartext: bool) -> Session {
    use crate::auth::sasl::Mechanism;
    let p = Params {
        starttls: true,
        auth_mechanisms: vec![Mechanism::Plain, Mechanism::Login, Mechanism::ScramSha256],
        require_auth: true,
        ..(*params(50)).clone()
    };
    let peer = Peer {
        ip: "192.0.2.7".parse().unwrap(),
        port: 40000,
        relay_allowed: false,
        cleartext_auth: cleartext,
    };
    Session::new(Arc::new(p), peer)
}

// "\0alice@example.org\0secret" and a wrong password, base64.
const PLAIN_OK: &str = "AGFsaWNlQGV4YW1wbGUub3JnAHNlY3JldA==";
const PLAIN_BAD: &str = "AGFsaWNlQGV4YW1wbGUub3JnAHdyb25n";

#[test]
fn submission_needs_tls_before_cleartext_auth_and_auth_before_mail() {
    let b = Accounts { failures: Default::default(), blocked: false };
    let mut s = submission(false);
    let ehlo = wire(&s.on_line(b"EHLO c", &b));
    assert!(ehlo.contains("250-STARTTLS\r\n"), "{ehlo}");
    assert!(ehlo.contains("AUTH SCRAM-SHA-256\r\n"), "no cleartext mechanism before TLS: {ehlo}");
    assert!(wire(&s.on_line(b"MAIL FROM:<alice@example.org>", &b)).starts_with("530 5.7.0"));
    let r = wire(&s.on_line(format!("AUTH PLAIN {PLAIN_OK}").as_bytes(), &b));
    assert!(r.starts_with("538 5.7.11"), "RFC 4954 downgrade refused: {r}");
    // STARTTLS: the caller does the handshake; everything before is forgotten.
    let step = s.on_line(b"STARTTLS", &b);
    assert_eq!(step.next, Next::StartTls);
    assert_eq!(wire(&step), "220 2.0.0 Ready to start TLS\r\n");
    s.on_tls("TLSv1.3 TEST".into(), Vec::new());
    assert!(
        wire(&s.on_line(b"MAIL FROM:<alice@example.org>", &b)).starts_with("503 5.5.1"),
        "EHLO again first"
    );
    let ehlo = wire(&s.on_line(b"EHLO c", &b));
    assert!(!ehlo.contains("STARTTLS"), "{ehlo}");
    assert!(ehlo.contains("AUTH PLAIN LOGIN SCRAM-SHA-256\r\n"), "{ehlo}");
    assert!(wire(&s.on_line(b"STARTTLS", &b)).starts_with("503 5.5.1"));
    assert!(wire(&s.on_line(b"AUTH CRAM-MD5", &b)).starts_with("504 5.5.4"), "not offered");
    let r = wire(&s.on_line(format!("AUTH PLAIN {PLAIN_BAD}").as_bytes(), &b));
    assert!(r.starts_with("535 5.7.8"), "{r}");
    assert_eq!(b.failures.get(), 1);
    // No initial response: an empty challenge, then the response; "*" cancels.
    assert_eq!(wire(&s.on_line(b"AUTH PLAIN", &b)), "334\r\n");
    assert!(wire(&s.on_line(b"*", &b)).starts_with("501 5.0.0"));
    assert_eq!(wire(&s.on_line(b"AUTH PLAIN", &b)), "334\r\n");
    assert!(wire(&s.on_line(b"not base64!", &b)).starts_with("501 5.5.2"));
    assert_eq!(
        wire(&s.on_line(format!("AUTH PLAIN {PLAIN_OK}").as_bytes(), &b)),
        "235 2.7.0 Authentication successful\r\n"
    );
    assert!(wire(&s.on_line(b"AUTH PLAIN", &b)).starts_with("503 5.5.1"), "once is enough");
    let r = wire(&s.on_line(b"MAIL FROM:<bob@example.org>", &b));
    assert!(r.starts_with("553 5.7.1 <bob@example.org>: Sender address rejected"), "{r}");
    let r = wire(&s.on_line(b"MAIL FROM:<alice@example.org> AUTH=<>", &b));
    assert!(r.starts_with("250"), "{r}");
    assert!(
        wire(&s.on_line(b"RCPT TO:<anyone@elsewhere.net>", &b)).starts_with("250"),
        "logged-in users relay"
    );
    assert_eq!(s.protocol(), "ESMTPSA");
    assert_eq!(s.user(), Some("alice@example.org"));
}

#[test]
fn cleartext_networks_may_log_in_without_tls_and_blocked_clients_may_not() {
    let b = Accounts { failures: Default::default(), blocked: false };
    let mut s = submission(true);
    assert!(wire(&s.on_line(b"EHLO c", &b)).contains("AUTH PLAIN LOGIN SCRAM-SHA-256"));
    // LOGIN: "Username:" and "Password:" challenges.
    assert_eq!(wire(&s.on_line(b"AUTH LOGIN", &b)), "334 VXNlcm5hbWU6\r\n");
    assert_eq!(wire(&s.on_line(b"YWxpY2VAZXhhbXBsZS5vcmc=", &b)), "334 UGFzc3dvcmQ6\r\n");
    assert!(wire(&s.on_line(b"c2VjcmV0", &b)).starts_with("235 2.7.0"));
    assert_eq!(s.protocol(), "ESMTPA");
    let blocked = Accounts { failures: Default::default(), blocked: true };
    let mut s = submission(true);
    s.on_line(b"EHLO c", &blocked);
    let r = wire(&s.on_line(format!("AUTH PLAIN {PLAIN_OK}").as_bytes(), &blocked));
    assert!(r.starts_with("454 4.7.0"), "{r}");
}

#[test]
fn starttls_forgets_an_earlier_authentication() {
    // RFC 3207 4.2: after the handshake the server discards what it learnt before, AUTH included.
    let b = Accounts { failures: Default::default(), blocked: false };
    let mut s = submission(true);
    wire(&s.on_line(b"EHLO c", &b));
    assert!(wire(&s.on_line(format!("AUTH PLAIN {PLAIN_OK}").as_bytes(), &b)).starts_with("235 "));
    assert_eq!(s.on_line(b"STARTTLS", &b).next, Next::StartTls);
    s.on_tls("TLSv1.3 TEST".into(), Vec::new());
    let ehlo = wire(&s.on_line(b"EHLO c", &b));
    assert!(ehlo.contains("AUTH PLAIN"), "AUTH is offered again: {ehlo}");
    let r = wire(&s.on_line(b"MAIL FROM:<alice@example.org>", &b));
    assert!(r.starts_with("530 5.7.0"), "no longer authenticated: {r}");
}

#[test]
fn junk_commands_beyond_the_limit_end_the_session() {
    let p = Params { junk_limit: 3, ..(*params(10)).clone() };
    let peer =
        Peer { ip: "192.0.2.7".parse().unwrap(), port: 40000, relay_allowed: false, cleartext_auth: false };
    let mut s = Session::new(Arc::new(p), peer);
    let b = Users::default();
    for line in ["NOOP", "RSET", "VRFY alice"] {
        let step = s.on_line(line.as_bytes(), &b);
        assert_eq!(step.next, Next::Command, "{line} is within the limit");
    }
    let step = s.on_line(b"HELP", &b);
    assert_eq!(step.next, Next::Close);
    assert_eq!(step.reply.map(|r| r.code()), Some(421));
}

/// Refuses senders at spam.example (as a blocklist or SPF would), records an SPF result for the
/// others, and greylists recipients named grey.
struct Checking;

impl Login for Checking {
    fn credentials(&self) -> Option<&dyn crate::auth::sasl::Credentials> {
        None
    }
    fn random(&self, _: &mut [u8]) {}
    fn auth_failed(&self, _: &str) {}
    fn auth_blocked(&self) -> bool {
        false
    }
}

impl Backend for Checking {
    fn check_rcpt(&self, _: &Address) -> RcptCheck {
        RcptCheck::Accept
    }
    fn check_mail(&self, sender: Option<&Address>, helo: &str) -> MailCheck {
        match sender {
            Some(a) if a.domain() == "spam.example" => {
                MailCheck::Refuse(Reply::new(550, "5.7.23", format!("SPF fail (helo {helo})")))
            }
            _ => MailCheck::Accept(Checked {
                fields: vec!["Received-SPF: pass".into()],
                results: vec![(
                    "spf".into(),
                    "pass".into(),
                    vec![("smtp.mailfrom".into(), "x@ok.example".into())],
                )],
                spf: Some(("ok.example".into(), true)),
            }),
        }
    }
    fn check_recipient(&self, _: Option<&Address>, rcpt: &Address) -> Option<Reply> {
        (rcpt.local() == "grey").then(|| Reply::new(450, "4.7.1", "greylisted"))
    }
}

#[test]
fn sender_checks_at_mail_and_rcpt_for_untrusted_clients_only() {
    let mut s = session();
    let b = Checking;
    for (line, want) in [
        ("EHLO client.example", "250-"),
        ("MAIL FROM:<x@spam.example>", "550 5.7.23 SPF fail (helo client.example)"),
        ("MAIL FROM:<x@ok.example>", "250 2.1.0"),
        ("RCPT TO:<grey@example.org>", "450 4.7.1 greylisted"),
        ("RCPT TO:<alice@example.org>", "250 2.1.5"),
    ] {
        let got = wire(&s.on_line(line.as_bytes(), &b));
        assert!(got.starts_with(want), "{line:?}: got {got:?}, want {want:?}");
    }
    let t = s.transaction().unwrap();
    assert_eq!(t.checked.spf, Some(("ok.example".into(), true)));
    assert_eq!(t.checked.fields, ["Received-SPF: pass"]);
    // The refusal at MAIL counted as an error; the greylisting 450 did not.
    assert_eq!(s.errors(), 1);

    // A client in relay.networks (or logged in) skips them.
    let mut s = session_with(true, 100);
    for (line, want) in [
        ("EHLO client.example", "250-"),
        ("MAIL FROM:<x@spam.example>", "250 2.1.0"),
        ("RCPT TO:<grey@example.org>", "250 2.1.5"),
    ] {
        let got = wire(&s.on_line(line.as_bytes(), &b));
        assert!(got.starts_with(want), "{line:?}: got {got:?}, want {want:?}");
    }
    assert_eq!(s.transaction().unwrap().checked, Checked::default());
}
