//! The content scanner clients against the real daemons: clamd (unix socket and TCP), spamd and
//! rspamd, started privately by tests/test_scan.py, which passes their addresses and a directory
//! of test messages in CLAMD_SOCKET, CLAMD_TCP, SPAMD_ADDR, RSPAMD_URL and SCAN_MESSAGES. Under a
//! plain `cargo test` those are absent and each test says so and passes.

use std::fs::File;
use std::io::Cursor;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use buzon::filters::scan::{
    ClamVerdict, RspamdMeta, ScanAddr, SpamScore, clamd_scan, rspamd_check, spamd_check,
};

const TIMEOUT: Duration = Duration::from_secs(30);

/// The variable's value, or None (and a note on stderr) when tests/test_scan.py did not set it.
fn env(name: &str) -> Option<String> {
    let v = std::env::var(name).ok().filter(|v| !v.is_empty());
    if v.is_none() {
        eprintln!("{name} is not set: not testing against the real daemon (tests/test_scan.py sets it)");
    }
    v
}

fn message(name: &str) -> (File, u64) {
    let dir = PathBuf::from(std::env::var("SCAN_MESSAGES").expect("SCAN_MESSAGES is set with the addresses"));
    let f = File::open(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    let len = f.metadata().unwrap().len();
    (f, len)
}

fn clamd_checks(addr: &ScanAddr) {
    for name in ["eicar-raw.eml", "eicar-base64.eml", "eicar-zip.eml"] {
        let (mut f, _) = message(name);
        let v = clamd_scan(addr, &mut f, TIMEOUT);
        println!("scan: clamd {addr} {name}: {v:?}");
        assert!(matches!(&v, Ok(ClamVerdict::Infected(sig)) if sig.contains("EICAR")), "{name}: {v:?}");
    }
    let (mut f, _) = message("clean.eml");
    let v = clamd_scan(addr, &mut f, TIMEOUT);
    println!("scan: clamd {addr} clean.eml: {v:?}");
    assert_eq!(v, Ok(ClamVerdict::Clean));
}

#[test]
fn clamd_unix_socket() {
    let Some(sock) = env("CLAMD_SOCKET") else { return };
    clamd_checks(&ScanAddr::parse(&sock).unwrap());
}

#[test]
fn clamd_tcp() {
    let Some(addr) = env("CLAMD_TCP") else { return };
    clamd_checks(&ScanAddr::parse(&addr).unwrap());
}

#[test]
fn clamd_size_limit_is_an_error() {
    // tests/test_scan.py sets StreamMaxLength 1M: clamd stops reading and answers an error.
    let Some(sock) = env("CLAMD_SOCKET") else { return };
    let addr = ScanAddr::parse(&sock).unwrap();
    let big = vec![b'a'; 4 << 20];
    let t0 = Instant::now();
    let e = clamd_scan(&addr, &mut Cursor::new(big), TIMEOUT).unwrap_err();
    println!("scan: clamd 4 MiB past StreamMaxLength: {e} ({:?})", t0.elapsed());
    assert!(e.0.contains("size limit") || e.0.contains("sending"), "{e}");
}

fn spam(s: &Result<SpamScore, buzon::filters::scan::ScanError>) -> &SpamScore {
    s.as_ref().unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn spamd_gtube_and_ham() {
    let Some(a) = env("SPAMD_ADDR") else { return };
    let addr = ScanAddr::parse(&a).unwrap();
    let (mut f, len) = message("gtube.eml");
    let s = spamd_check(&addr, &mut f, len, Some("nobody"), TIMEOUT);
    println!("scan: spamd gtube.eml: {s:?}");
    let s = spam(&s);
    assert!(s.is_spam && s.score >= 1000.0, "{s:?}");
    assert!(s.symbols.iter().any(|x| x == "GTUBE"), "{s:?}");
    let (mut f, len) = message("ham.eml");
    let s = spamd_check(&addr, &mut f, len, None, TIMEOUT);
    println!("scan: spamd ham.eml: {s:?}");
    let s = spam(&s);
    assert!(!s.is_spam && s.score < s.threshold, "{s:?}");
}

#[test]
fn spamd_large_message() {
    let Some(a) = env("SPAMD_ADDR") else { return };
    let addr = ScanAddr::parse(&a).unwrap();
    let mut m = b"From: a@example.org\r\nTo: b@example.org\r\nSubject: big\r\n\r\n".to_vec();
    while m.len() < 600_000 {
        m.extend_from_slice(b"Nothing to see here, just a long and boring report line.\r\n");
    }
    let len = m.len() as u64;
    let s = spamd_check(&addr, &mut Cursor::new(m), len, None, TIMEOUT);
    println!("scan: spamd 600 kB: {s:?}");
    assert!(!spam(&s).is_spam);
}

#[test]
fn rspamd_gtube_and_ham() {
    let Some(url) = env("RSPAMD_URL") else { return };
    let rcpt = ["b@example.org".to_string()];
    let meta = RspamdMeta {
        ip: Some("192.0.2.1".parse().unwrap()),
        helo: Some("mx.example.org"),
        from: Some("a@example.org"),
        rcpt: &rcpt,
        user: None,
        hostname: Some("mx.example.org"),
        queue_id: Some("TESTQ1"),
    };
    let (mut f, len) = message("gtube.eml");
    let s = rspamd_check(&url, &mut f, len, &meta, TIMEOUT);
    println!("scan: rspamd gtube.eml: {s:?}");
    let s = spam(&s);
    assert!(s.is_spam && s.action.as_deref() == Some("reject"), "{s:?}");
    assert!(s.symbols.iter().any(|x| x == "GTUBE"), "{s:?}");
    let (mut f, len) = message("ham.eml");
    let s = rspamd_check(&url, &mut f, len, &meta, TIMEOUT);
    println!("scan: rspamd ham.eml: {s:?}");
    let s = spam(&s);
    assert!(!s.is_spam && s.action.as_deref() == Some("no action"), "{s:?}");
}
