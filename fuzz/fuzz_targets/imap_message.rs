//! Fuzz target: IMAP message rendering on arbitrary bytes (RFC 3501 7.4.2 ENVELOPE and
//! BODYSTRUCTURE, 6.4.5 sections, RFC 3516 BINARY, RFC 3501 6.4.4 search text): must never panic,
//! and ENVELOPE/BODYSTRUCTURE must stay one balanced parenthesised list; the message parsed as it
//! is read (message::Parsed, for large messages) must give the same answers.
#![no_main]

use buzon::imap::message::{self, Piece};
use buzon::imap::types::{Section, SectionText};
use libfuzzer_sys::fuzz_target;

/// Parentheses balance outside quoted strings and literals; strings and literals are complete.
fn check(s: &[u8]) {
    let mut depth = 0i64;
    let mut i = 0;
    assert_eq!(s.first(), Some(&b'('));
    while i < s.len() {
        match s[i] {
            b'(' => depth += 1,
            b')' => {
                depth -= 1;
                assert!(depth >= 0);
                assert!(depth > 0 || i + 1 == s.len());
            }
            b'"' => {
                i += 1;
                while s[i] != b'"' {
                    assert!(s[i] != b'\r' && s[i] != b'\n');
                    i += if s[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'{' => {
                let close = s[i..].iter().position(|&b| b == b'}').unwrap();
                let n: usize = std::str::from_utf8(&s[i + 1..i + close]).unwrap().parse().unwrap();
                i += close + 1;
                assert_eq!(&s[i..i + 2], b"\r\n");
                i += 2 + n - 1;
            }
            b'\r' | b'\n' => panic!("line break outside a literal"),
            _ => {}
        }
        i += 1;
    }
    assert_eq!(depth, 0);
}

fuzz_target!(|data: &[u8]| {
    check(&message::envelope(message::header(data), data.len() % 2 == 0));
    check(&message::body_structure(data, true));
    check(&message::body_structure(data, false));
    // Headers are kept whole up to 64 KiB when parsed from a reader; under that the two agree.
    if data.len() >= 64 * 1024 {
        return;
    }
    let Ok(parsed) = message::Parsed::read(data) else { panic!("a slice cannot fail") };
    assert_eq!(parsed.body_structure(true), message::body_structure(data, true));
    assert_eq!(parsed.body_structure(false), message::body_structure(data, false));
    // Part numbers from the first bytes, the rest of the input as the message too.
    let part: Vec<u32> = data.iter().take(3).map(|&b| u32::from(b % 4)).collect();
    for text in [
        None,
        Some(SectionText::Header),
        Some(SectionText::Text),
        Some(SectionText::Mime),
        Some(SectionText::HeaderFields(vec!["subject".into(), "from".into()])),
        Some(SectionText::HeaderFieldsNot(vec!["to".into()])),
    ] {
        let sec = Section { part: part.clone(), text };
        let out = message::section(data, &sec);
        assert!(out.len() <= data.len() + 2);
        // Parsed as it is read (as FETCH does for a large message): the same octets.
        match parsed.section(&sec) {
            Piece::Range(r) => assert_eq!(data.get(r.start as usize..r.end as usize), Some(&out[..])),
            Piece::Bytes(b) => assert_eq!(b, out),
        }
    }
    match (parsed.binary(&part), message::binary(data, &part)) {
        (Ok((r, cte)), Ok(whole)) => {
            let mut d = message::Decoder::new(cte);
            let mut got = Vec::new();
            for piece in data[r.start as usize..r.end as usize].chunks(3) {
                d.feed(piece, &mut got);
            }
            d.finish(&mut got);
            assert_eq!(got, whole);
        }
        (Err(a), Err(b)) => assert_eq!(a, b),
        (a, b) => panic!("{a:?} / {b:?}"),
    }
    let _ = message::body_text(data);
    let _ = message::sent_date(message::header(data));
    let _ = message::header_values(message::header(data), "subject");
});
