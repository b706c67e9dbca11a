//! Fuzz target: POP3 command lines through the parser and a whole session (RFC 1939, RFC 2449,
//! RFC 5034; must never panic, and responses must stay well-formed).
#![no_main]

use std::sync::Arc;

use buzon::auth::sasl::{Credentials, Mechanism, ScramHash, ScramKeys, scram_keys};
use buzon::pop3::command;
use buzon::pop3::session::{Action, Backend, Maildrop, OpenError, Params, Peer, Session, State, UpdateError};
use libfuzzer_sys::fuzz_target;

/// One user, "u" with password "p".
struct Creds;

impl Credentials for Creds {
    fn verify(&self, user: &str, password: &[u8]) -> Result<Option<String>, String> {
        Ok((user == "u" && password == b"p").then(|| "u".to_string()))
    }
    fn cram_md5(&self, _: &str, _: &[u8]) -> Result<Option<(String, [u8; 16])>, String> {
        Ok(None)
    }
    fn plaintext(&self, user: &str) -> Result<Option<(String, String)>, String> {
        Ok((user == "u").then(|| ("u".to_string(), "p".to_string())))
    }
    fn scram(&self, user: &str, hash: ScramHash) -> Result<Option<(String, ScramKeys)>, String> {
        Ok((user == "u").then(|| ("u".to_string(), scram_keys(hash, b"p", b"salt", 16))))
    }
}

struct Fuzz;

impl Backend for Fuzz {
    fn credentials(&self) -> Option<&dyn Credentials> {
        Some(&Creds)
    }
    fn random(&self, buf: &mut [u8]) {
        buf.fill(0x5a);
    }
    fn auth_failed(&self, _: &str) {}
    fn auth_blocked(&self) -> bool {
        false
    }
}

struct Drop3;

impl Maildrop for Drop3 {
    fn count(&self) -> usize {
        3
    }
    fn size(&self, n: usize) -> u64 {
        n as u64 * 100
    }
    fn uid(&self, n: usize) -> &str {
        ["a", "b", "c"][n - 1]
    }
}

/// Every response is `+OK`, `-ERR`, `+ ` or a multi-line answer ending in `.`, CRLF-terminated, with no
/// bare CR or LF.
fn check_reply(bytes: &[u8]) {
    assert!(bytes.ends_with(b"\r\n"));
    assert!(bytes.starts_with(b"+OK") || bytes.starts_with(b"-ERR ") || bytes.starts_with(b"+ "));
    let lines: Vec<&[u8]> = bytes[..bytes.len() - 2].split(|&b| b == b'\n').collect();
    for line in &lines {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        assert!(!line.contains(&b'\r'));
    }
    if lines.len() > 1 {
        assert_eq!(lines.last(), Some(&&b"."[..]));
    }
}

fuzz_target!(|data: &[u8]| {
    let _ = command::parse(data);

    let params = Arc::new(Params {
        hostname: "pop.example.org".into(),
        max_errors: 20,
        stls: true,
        auth_mechanisms: Mechanism::ALL.to_vec(),
        apop: data.len() % 2 == 0,
    });
    let peer = Peer {
        ip: std::net::Ipv4Addr::LOCALHOST.into(),
        port: 110,
        cleartext_auth: data.len().is_multiple_of(2),
    };
    let mut session = Session::new(params, peer);
    let backend = Fuzz;
    for line in data.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let mut actions = if line.len() + 2 > session.max_line() {
            session.on_line_too_long()
        } else {
            session.on_line(line, &backend)
        };
        while !actions.is_empty() {
            let mut next = Vec::new();
            for action in actions {
                match action {
                    Action::Reply(r) => check_reply(&r),
                    Action::Close => {
                        assert_eq!(session.state(), State::Closed);
                        return;
                    }
                    Action::StartTls => session.on_tls("TLSv1.3 FUZZ".into(), Vec::new()),
                    Action::Open { .. } => {
                        next = match line.len() % 3 {
                            0 => session.on_opened(Ok(&Drop3)),
                            1 => session.on_opened(Err(OpenError::InUse)),
                            _ => session.on_opened(Err(OpenError::Temp("x".into()))),
                        }
                    }
                    Action::SendMessage { n, .. } => assert!((1..=3).contains(&n)),
                    Action::Update { deleted } => {
                        assert!(deleted.iter().all(|n| (1..=3).contains(n)));
                        next = session.on_updated(if deleted.len() == 2 {
                            Err(UpdateError("x".into()))
                        } else {
                            Ok(())
                        });
                    }
                }
            }
            actions = next;
        }
    }
});
