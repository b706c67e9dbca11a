//! Fuzz target: ManageSieve input (RFC 5804) through the command parser, and as a stream of lines
//! and literals through the IMAP assembler and a whole session, as the driver feeds it (must never
//! panic; every response line is OK/NO/BYE, a string or a literal, CRLF-terminated).
#![no_main]

use std::sync::Arc;

use buzon::auth::sasl::{Credentials, Mechanism, ScramHash, ScramKeys, scram_keys};
use buzon::imap::command::{Assembler, Step};
use buzon::managesieve::command;
use buzon::managesieve::scripts::ScriptStore;
use buzon::managesieve::session::{Action, Backend, Params, Peer, Session, State};
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

fn check_reply(bytes: &[u8]) {
    assert!(bytes.ends_with(b"\r\n"));
    let first = bytes.first().copied().unwrap_or(0);
    assert!(matches!(first, b'O' | b'N' | b'B' | b'"' | b'{'), "{:?}", String::from_utf8_lossy(bytes));
}

fuzz_target!(|data: &[u8]| {
    let _ = command::parse(data);
    let _ = command::parse_response(data);

    let params = Arc::new(Params {
        hostname: "sieve.example.org".into(),
        starttls: true,
        auth_mechanisms: Mechanism::ALL.to_vec(),
        max_errors: 20,
        check: buzon::managesieve::script_check(),
    });
    let peer = Peer { ip: std::net::Ipv4Addr::LOCALHOST.into(), port: 4190, cleartext_auth: true };
    let mut session = Session::new(params, peer);
    let dir = std::env::temp_dir().join(format!("buzon-fuzz-sieve-{}", std::process::id()));
    let mut asm = Assembler::new(8192, session.max_literal(), 64 * 1024);
    let mut rest = data;
    while let Some(lf) = rest.iter().position(|&b| b == b'\n') {
        let line = &rest[..lf];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        rest = &rest[lf + 1..];
        let mut actions = match asm.line(line) {
            Step::Complete(buf) => session.on_command(&buf, &Fuzz),
            Step::NeedLiteral { len, .. } => {
                let n = usize::try_from(len).unwrap_or(usize::MAX).min(rest.len());
                asm.literal(&rest[..n]);
                rest = &rest[n..];
                continue;
            }
            Step::TooBig { len: 0, .. } => session.on_line_too_long(),
            Step::TooBig { .. } => session.on_too_big(line),
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
                    Action::StartTls => next = session.on_tls("TLSv1.3 FUZZ".into(), Vec::new()),
                    Action::Open { .. } => {
                        next = match data.len() % 2 {
                            0 => session.on_opened(Ok(ScriptStore::new(dir.clone(), 5, 4096))),
                            _ => session.on_opened(Err("x".into())),
                        }
                    }
                }
            }
            actions = next;
        }
        asm = Assembler::new(8192, session.max_literal(), 64 * 1024);
    }
});
