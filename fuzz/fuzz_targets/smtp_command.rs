//! Fuzz target: SMTP command lines through the parser, the address parser and a whole session
//! (RFC 5321 command syntax; must never panic, and replies must stay well-formed).
#![no_main]

use std::sync::Arc;

use buzon::addr::Address;
use buzon::smtp::command;
use buzon::smtp::session::{MessageResult, Next, Params, Peer, RcptCheck, Backend, Session};
use libfuzzer_sys::fuzz_target;

struct AcceptLocal;

/// No logins here.
impl buzon::auth::sasl::Login for AcceptLocal {
    fn credentials(&self) -> Option<&dyn buzon::auth::sasl::Credentials> {
        None
    }
    fn random(&self, _: &mut [u8]) {}
    fn auth_failed(&self, _: &str) {}
    fn auth_blocked(&self) -> bool {
        false
    }
}

impl Backend for AcceptLocal {
    fn check_rcpt(&self, rcpt: &Address) -> RcptCheck {
        match rcpt.domain() {
            "example.org" => RcptCheck::Accept,
            "temp.example" => RcptCheck::Temp("try later".into()),
            _ => RcptCheck::NotLocal,
        }
    }
}

/// Every reply line is `DDD[ -]text\r\n` with no other CR or LF.
fn check_reply(bytes: &[u8]) {
    assert!(bytes.ends_with(b"\r\n"));
    for line in bytes[..bytes.len() - 2].split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        assert!(line.len() >= 3 && line[..3].iter().all(u8::is_ascii_digit));
        assert!(!line.contains(&b'\r'));
    }
}

fuzz_target!(|data: &[u8]| {
    // The parsers on the raw input.
    let _ = command::parse(data);
    if let Ok(s) = std::str::from_utf8(data)
        && let Ok(a) = Address::parse(s)
    {
        // Display gives back a parseable, equal address.
        assert_eq!(Address::parse(&a.to_string()).as_ref(), Ok(&a));
    }

    // A whole session fed the input as lines.
    let params = Arc::new(Params {
        hostname: "mx.example.org".into(),
        message_size_limit: 1000,
        max_recipients: 5,
        max_errors: 50,
        starttls: true,
        auth_mechanisms: buzon::auth::sasl::Mechanism::ALL.to_vec(),
        require_auth: data.len().is_multiple_of(3),
        min_free: 0,
        junk_limit: 20,
    });
    let peer = Peer {
        ip: std::net::Ipv4Addr::LOCALHOST.into(),
        port: 2525,
        relay_allowed: data.len().is_multiple_of(2),
        cleartext_auth: data.len().is_multiple_of(5),
    };
    let mut session = Session::new(params, peer);
    let rcpts = AcceptLocal;
    for line in data.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let mut step = session.on_line(line, &rcpts);
        loop {
            if let Some(r) = &step.reply {
                check_reply(&r.to_bytes());
            }
            step = match step.next {
                Next::Command => break,
                Next::Close => return,
                Next::StartTls => {
                    session.on_tls("TLSv1.3 FUZZ".into(), Vec::new());
                    break;
                }
                Next::Data => session.on_message(MessageResult::Stored { queue_id: "Q".into() }),
                // The glue may or may not report a discarded chunk; both must work.
                Next::Chunk { discard: true, size, .. } if size % 2 == 1 => break,
                Next::Chunk { discard: true, last: false, size } => session.on_chunk(size, true),
                Next::Chunk { discard: true, last: true, .. } => {
                    session.on_message(MessageResult::Perm("x".into()))
                }
                Next::Chunk { size, last: false, .. } => session.on_chunk(size, size % 7 == 0),
                Next::Chunk { last: true, size, .. } => session.on_message(if size % 3 == 0 {
                    MessageResult::TooBig
                } else {
                    MessageResult::Stored { queue_id: "Q".into() }
                }),
            };
        }
        let _ = (session.protocol(), session.transaction(), session.helo_name());
    }
});
