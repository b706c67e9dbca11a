//! Fuzz target: whole IMAP sessions over a real Maildir++ store in a temporary directory. The input
//! is what a client sends after logging in (lines, literals included); the session must never
//! panic, and every line it writes must end in CRLF.
#![no_main]

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use buzon::auth::sasl::{Credentials, ScramHash, ScramKeys};
use buzon::imap::command::{self, Assembler, Step};
use buzon::imap::session::{Backend, Mode, Opened, Outcome, Params, Peer, Session};
use buzon::store::imapdir::{Inbox, MaildirStore};
use libfuzzer_sys::fuzz_target;

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
    fn scram(&self, _: &str, _: ScramHash) -> Result<Option<(String, ScramKeys)>, String> {
        Ok(None)
    }
}

struct Fuzz(PathBuf);

impl buzon::auth::sasl::Login for Fuzz {
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

impl Backend for Fuzz {
    fn open_store(&self, _: &str) -> Result<Opened, String> {
        Ok(Opened::Here(Box::new(MaildirStore::new(self.0.clone(), Inbox::Maildir))))
    }
}

static RUN: AtomicU64 = AtomicU64::new(0);

fuzz_target!(|data: &[u8]| {
    let dir = std::env::temp_dir()
        .join(format!("buzon-fuzz-imap-{}-{}", std::process::id(), RUN.fetch_add(1, Ordering::Relaxed)));
    let inbox = dir.join("new");
    let _ = std::fs::create_dir_all(&inbox);
    let _ = std::fs::write(inbox.join("1.M1P1Q1.h,S=40"), b"Subject: seed\nFrom: a@b\n\nhello world\n");
    let params = Arc::new(Params {
        hostname: "imap.example.org".into(),
        max_errors: 50,
        starttls: false,
        auth_mechanisms: Vec::new(),
        max_append: 1 << 16,
    });
    let peer = Peer {
        ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        port: 1,
        cleartext_auth: true,
        tls: false,
        sid: "fuzz".into(),
    };
    let backend = Fuzz(dir.clone());
    let mut s = Session::new(params, peer);
    let mut out = Vec::new();
    if let Ok((tag, cmd)) = command::parse(b"a LOGIN u p") {
        let actions = s.on_command(tag, cmd, &backend);
        let _ = s.perform_into(actions, &mut out);
    }
    let mut asm = Assembler::new(4096, 1 << 16, 1 << 17);
    let mut rest = data;
    let mut steps = 0;
    while !rest.is_empty() && steps < 64 {
        steps += 1;
        let (line, tail) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &rest[rest.len()..]),
        };
        rest = tail;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let actions = match s.mode() {
            Mode::Closed | Mode::HandedOff => break,
            Mode::Idle => s.idle_done(line),
            Mode::SaslResponse => s.on_sasl_line(line, &backend),
            Mode::Command => match asm.line(line) {
                Step::Complete(buf) => match command::parse_owned(buf) {
                    Ok((tag, cmd)) => s.on_command(tag, cmd, &backend),
                    Err(e) => s.on_parse_error(e),
                },
                Step::NeedLiteral { len, .. } => {
                    let n = (len as usize).min(rest.len());
                    asm.literal(&rest[..n]);
                    rest = &rest[n..];
                    continue;
                }
                Step::TooBig { .. } => continue,
            },
        };
        match s.perform_into(actions, &mut out) {
            Ok(Outcome::Close) | Err(_) => break,
            _ => {}
        }
        let actions = s.idle_poll();
        let _ = s.perform_into(actions, &mut out);
    }
    drop(s);
    assert!(out.is_empty() || out.ends_with(b"\r\n"), "a response did not end in CRLF");
    let _ = std::fs::remove_dir_all(&dir);
});
