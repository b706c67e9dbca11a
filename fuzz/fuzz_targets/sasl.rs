//! Fuzz target: server-side SASL exchanges (RFC 4422; PLAIN RFC 4616, LOGIN, CRAM-MD5 RFC 2195,
//! DIGEST-MD5 RFC 2831, SCRAM RFC 5802/7677 with channel binding) driven by arbitrary client
//! responses. Must never panic; once an exchange ends it stays ended; success names the known user.
#![no_main]

use buzon::auth::sasl::{
    ChannelBinding, Credentials, Exchange, Mechanism, ScramHash, ScramKeys, Step, scram_keys,
};
use libfuzzer_sys::fuzz_target;

/// One user, `user`/`pencil`; SCRAM with 2 iterations to keep runs fast.
struct Creds;

impl Credentials for Creds {
    fn verify(&self, user: &str, password: &[u8]) -> Result<Option<String>, String> {
        Ok((user == "user" && password == b"pencil").then(|| "user".to_string()))
    }
    fn cram_md5(&self, user: &str, _challenge: &[u8]) -> Result<Option<(String, [u8; 16])>, String> {
        Ok((user == "user").then(|| ("user".to_string(), [7; 16])))
    }
    fn plaintext(&self, user: &str) -> Result<Option<(String, String)>, String> {
        match user {
            "user" => Ok(Some(("user".into(), "pencil".into()))),
            "down" => Err("database down".into()),
            _ => Ok(None),
        }
    }
    fn scram(&self, user: &str, hash: ScramHash) -> Result<Option<(String, ScramKeys)>, String> {
        Ok((user == "user").then(|| ("user".to_string(), scram_keys(hash, b"pencil", b"salt", 2))))
    }
}

fuzz_target!(|data: &[u8]| {
    let [sel, flags, rest @ ..] = data else { return };
    let mech = Mechanism::ALL[usize::from(*sel) % Mechanism::ALL.len()];
    let mut cb = Vec::new();
    if flags & 1 != 0 {
        cb.push(ChannelBinding { kind: "tls-exporter", data: b"EKM".to_vec() });
    }
    if flags & 2 != 0 {
        cb.push(ChannelBinding { kind: "tls-server-end-point", data: b"HASH".to_vec() });
    }
    let mut ex = Exchange::new(mech, "mx.example", cb, &mut |b: &mut [u8]| b.fill(b'A'));
    // Responses are separated by 0xff; the first is the initial response unless flag 4 is set.
    let mut responses = rest.split(|&b| b == 0xff);
    let mut step = if flags & 4 != 0 { ex.start(None, &Creds) } else { ex.start(responses.next(), &Creds) };
    for r in responses {
        if ex.is_done() {
            assert!(matches!(ex.step(r, &Creds), Step::Failure(_)));
            return;
        }
        step = ex.step(r, &Creds);
    }
    match step {
        Step::Challenge(_) => assert!(!ex.is_done()),
        Step::Success { user, .. } => assert!(ex.is_done() && user == "user"),
        Step::Failure(_) => assert!(ex.is_done()),
    }
});
