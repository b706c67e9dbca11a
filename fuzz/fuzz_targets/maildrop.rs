//! Fuzz target: a maildrop file (written by any local user) through the pickup's parser and
//! composer: never a panic, output bounded by the size limit plus the added fields, and a file
//! header that parses renders back to the same submission.
#![no_main]

use buzon::sendmail::compose::{self, Context, Submitter};
use buzon::sendmail::maildrop;
use libfuzzer_sys::fuzz_target;

const LIMIT: u64 = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    let mut r = data;
    if let Ok(sub) = maildrop::read_header(&mut r) {
        let text = maildrop::render(&sub);
        let again = maildrop::read_header(&mut text.as_bytes()).expect("a rendered header parses");
        assert_eq!(again, sub);
    }
    let submitter = Submitter { uid: 1000, login: "fuzz".into(), full_name: Some("F. Uzz".into()) };
    let cx = Context {
        hostname: "mx.example.test",
        domain: "example.test",
        id: "0123456789ABCDEF",
        submitted: "Mon, 1 Jan 2029 10:00:00 +0000",
        now: "Mon, 1 Jan 2029 10:00:05 +0000",
        submitter: &submitter,
        size_limit: LIMIT,
    };
    let mut out = Vec::new();
    if let Ok(c) = compose::compose(&mut &data[..], &mut out, &cx) {
        assert!(!c.recipients.is_empty());
        assert!(c.size <= LIMIT);
        assert!(out.starts_with(b"Return-Path: <"));
        assert_eq!(out.iter().position(|&b| b == b'\n').map(|n| n as u64 + 1), Some(c.body_offset));
    }
});
