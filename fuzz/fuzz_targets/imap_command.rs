//! Fuzz target: IMAP command bytes through the parser (RFC 3501 9 / RFC 9051 9 syntax), the
//! command Assembler (RFC 3501 4.3 literals, RFC 7888 LITERAL+, RFC 3516 literal8) and modified
//! UTF-7 (RFC 3501 5.1.3). Nothing may panic, limits must hold, and the codecs must agree.
#![no_main]

use buzon::imap::command::{Assembler, Step, parse, parse_owned};
use buzon::imap::mutf7;
use buzon::imap::types::Command;
use libfuzzer_sys::fuzz_target;

const MAX_LINE: usize = 200;
const MAX_LITERAL: u64 = 300;
const MAX_TOTAL: usize = 1000;

fn check_parse(buf: &[u8]) {
    let r = parse(buf);
    // Moving the APPEND message out of the buffer gives the same result as copying it.
    assert_eq!(parse_owned(buf.to_vec()), r);
    match &r {
        Ok((tag, cmd)) => {
            assert!(!tag.is_empty() && buf.starts_with(tag.as_bytes()));
            if let Command::Append { message, .. } = cmd {
                assert!(buf.ends_with(message));
            }
        }
        Err(e) => {
            assert!(!e.message.is_empty() && e.message.len() < 200, "{}", e.message);
            if let Some(tag) = &e.tag {
                assert!(buf.starts_with(tag.as_bytes()));
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    // The parser on the raw input.
    check_parse(data);
    // The input as the arguments of SORT and THREAD (RFC 5256), so that their grammar and the
    // search keys after a charset are always reached.
    for prefix in [&b"t SORT "[..], b"t UID SORT RETURN (", b"t THREAD ", b"t UID THREAD REFERENCES "] {
        check_parse(&[prefix, data].concat());
    }

    // Modified UTF-7: a name that decodes is canonical, so it encodes back to the same bytes.
    if let Some(name) = mutf7::decode(data) {
        assert_eq!(mutf7::encode(&name).as_bytes(), data);
    }
    if let Ok(s) = std::str::from_utf8(data) {
        assert_eq!(mutf7::decode(mutf7::encode(s).as_bytes()).as_deref(), Some(s));
    }

    // The assembler fed the input as a connection would: lines, and literals by count.
    let mut a = Assembler::new(MAX_LINE, MAX_LITERAL, MAX_TOTAL);
    let mut rest = data;
    while !rest.is_empty() {
        let (line, tail) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &[][..]),
        };
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        rest = tail;
        match a.line(line) {
            Step::Complete(cmd) => {
                assert!(cmd.len() <= MAX_TOTAL);
                check_parse(&cmd);
            }
            Step::NeedLiteral { len, .. } => {
                assert!(len <= MAX_LITERAL);
                let n = rest.len().min(len as usize);
                // Sometimes in two pieces, as a connection may read it.
                let (x, y) = rest[..n].split_at(n / 2);
                a.literal(x);
                a.literal(y);
                rest = &rest[n..];
            }
            Step::TooBig { tag, message, .. } => {
                assert!(!message.is_empty());
                assert!(!a.in_progress());
                if let Some(t) = tag {
                    assert!(!t.is_empty());
                }
            }
        }
    }
});
