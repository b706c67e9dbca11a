//! Session tests: COMPRESS (RFC 4978) in each state, from the command's bytes to the replies.

use super::*;
use crate::imap::command;

/// The command line parsed as the driver parses it, then run.
fn line(s: &mut Session, b: &TestBackend, l: &str) -> (String, Outcome) {
    let mut out = Vec::new();
    let actions = match command::parse(l.as_bytes()) {
        Ok((tag, cmd)) => s.on_command(tag, cmd, b),
        Err(e) => s.on_parse_error(e),
    };
    let o = s.perform_into(actions, &mut out).unwrap();
    (String::from_utf8(out).unwrap(), o)
}

#[test]
fn compress_only_once_logged_in_and_advertised_only_then() {
    let b = TestBackend::new();
    let mut s = session_with(true, 10);
    // RFC 4978 3: not in the not-authenticated state; the capability is not offered there.
    let (caps, _) = line(&mut s, &b, "a CAPABILITY");
    assert!(!caps.contains("COMPRESS"), "{caps}");
    assert_eq!(line(&mut s, &b, "b COMPRESS DEFLATE"), ("b BAD Not logged in\r\n".into(), Outcome::Continue));
    let got = run(&mut s, &b, "c", login_cmd("mrose", "tanstaaf"));
    assert!(got.contains(" COMPRESS=DEFLATE] Logged in\r\n"), "{got}");
    let (caps, _) = line(&mut s, &b, "d CAPABILITY");
    assert!(caps.starts_with("* CAPABILITY IMAP4rev1 ") && caps.contains(" COMPRESS=DEFLATE\r\n"), "{caps}");
}

#[test]
fn compress_deflate_then_compressionactive() {
    let b = TestBackend::new();
    let mut s = logged_in(&b);
    // The OK is the last thing before compression starts; the driver is told with Compress.
    let actions = s.on_command("a1".into(), Command::Compress("DEFLATE".into()), &b);
    assert!(matches!(actions.last(), Some(Action::Compress)), "{actions:?}");
    assert!(matches!(&actions[..], [Action::Reply(r), Action::Compress] if r == b"a1 OK DEFLATE active\r\n"));
    // RFC 4978 3: a second COMPRESS is refused with COMPRESSIONACTIVE, and nothing changes.
    assert_eq!(
        line(&mut s, &b, "a2 compress deflate"),
        ("a2 NO [COMPRESSIONACTIVE] DEFLATE is already active\r\n".into(), Outcome::Continue)
    );
    assert_eq!(line(&mut s, &b, "a3 NOOP"), ("a3 OK NOOP completed\r\n".into(), Outcome::Continue));
}

#[test]
fn compress_in_the_selected_state_and_lowercase() {
    let b = TestBackend::new();
    let mut s = selected(&b);
    assert_eq!(line(&mut s, &b, "x compress Deflate"), ("x OK DEFLATE active\r\n".into(), Outcome::Compress));
    assert_eq!(s.state(), State::Selected);
}

#[test]
fn compress_with_an_unknown_algorithm_or_bad_syntax_is_bad() {
    let b = TestBackend::new();
    let mut s = logged_in(&b);
    assert_eq!(
        line(&mut s, &b, "a1 COMPRESS X-ZSTD"),
        ("a1 BAD Unknown compression algorithm (DEFLATE is supported)\r\n".into(), Outcome::Continue)
    );
    assert_eq!(
        line(&mut s, &b, "a2 COMPRESS"),
        ("a2 BAD missing compression algorithm\r\n".into(), Outcome::Continue)
    );
    assert_eq!(
        line(&mut s, &b, "a3 COMPRESS DEFLATE now"),
        ("a3 BAD unexpected characters at the end: now\r\n".into(), Outcome::Continue)
    );
    // None of those turned it on.
    assert_eq!(
        line(&mut s, &b, "a4 COMPRESS DEFLATE"),
        ("a4 OK DEFLATE active\r\n".into(), Outcome::Compress)
    );
}
