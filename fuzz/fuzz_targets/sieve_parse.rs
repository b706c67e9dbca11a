//! Fuzz target: Sieve scripts (RFC 5228 grammar and the extensions buzon supports) parsed and,
//! when they parse, run on a fixed message (encoded words, groups, multipart) or, after a NUL byte
//! in the input, on the bytes that follow as the message: must never panic, and a run always ends
//! with a decision (at least one action, or a discard).
#![no_main]

use buzon::sieve::{Action, Envelope, Message, Options, parse, run};
use libfuzzer_sys::fuzz_target;

const MSG: &[u8] = b"Return-Path: <tim@example.com>\r\n\
From: =?utf-8?q?T=C3=ADm?= <tim+x@example.com>\r\n\
To: Team: ann@example.net, \"Bo (B)\" <bo@example.net>;, me@example.com\r\n\
Subject: =?utf-8?b?R3LDvMOfZQ==?= money\r\n\
List-Id: <l.example.org>\r\n\
X-Score: 12\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/alternative; boundary=b\r\n\r\n\
--b\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n\
Caf=E9\r\n--b\r\nContent-Type: text/html\r\n\r\n<p>x</p>\r\n--b--\r\n";

fuzz_target!(|data: &[u8]| {
    let (src, msg) = match data.iter().position(|&b| b == 0) {
        Some(p) => (&data[..p], &data[p + 1..]),
        None => (data, MSG),
    };
    let Ok(script) = parse(src) else { return };
    let env = Envelope { from: "tim@example.com".into(), to: "me@example.com".into(), auth: Some("tim".into()) };
    let exists = |m: &str| m == "INBOX";
    let opts = Options { mailbox_exists: Some(&exists), ..Options::default() };
    let o = run(&script, &Message::new(msg), &env, &opts);
    assert!(!o.actions.is_empty());
    if o.error.is_some() {
        assert_eq!(o.actions, vec![Action::Keep { flags: vec![] }]);
    }
});
