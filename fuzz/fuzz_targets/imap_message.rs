//! Fuzz target: IMAP message rendering on arbitrary bytes (RFC 3501 7.4.2 ENVELOPE and
//! BODYSTRUCTURE, 6.4.5 sections, RFC 3516 BINARY, RFC 3501 6.4.4 search text): must never panic,
//! and ENVELOPE/BODYSTRUCTURE must stay one balanced parenthesised list.
#![no_main]

use buzon::imap::message;
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
        let out = message::section(data, &Section { part: part.clone(), text });
        assert!(out.len() <= data.len() + 2);
    }
    let _ = message::binary(data, &part);
    let _ = message::body_text(data);
    let _ = message::sent_date(message::header(data));
    let _ = message::header_values(message::header(data), "subject");
});
