//! Fuzz target: server replies through the outbound client's reply and capability parsers (RFC 5321 4.2
//! reply syntax, RFC 2034 enhanced codes, EHLO keywords). Must never panic, must stay within its limits,
//! and must give the same replies however the bytes are split into reads.
#![no_main]

use buzon::smtp::client::reply::{Capabilities, MAX_LINE, MAX_LINES, ReplyParser, parse_all};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let whole = parse_all(data);
    if let Ok(replies) = &whole {
        for r in replies {
            assert!((200..=559).contains(&r.code));
            assert!(!r.lines.is_empty() && r.lines.len() <= MAX_LINES);
            assert!(r.lines.iter().all(|l| l.len() < 3 * MAX_LINE));
            let shown = r.to_string();
            assert!(!shown.contains(['\r', '\n']));
            let _ = Capabilities::parse(r);
        }
    }

    // The same bytes in reads of a size taken from the first byte: same replies and the same error.
    let step = usize::from(data.first().copied().unwrap_or(1)).max(1);
    let mut parser = ReplyParser::new();
    let mut buf = Vec::new();
    let mut got = Vec::new();
    let mut failed = false;
    'outer: for chunk in data.chunks(step) {
        buf.extend_from_slice(chunk);
        loop {
            match parser.feed(&buf) {
                Ok((used, reply)) => {
                    buf.drain(..used);
                    match reply {
                        Some(r) => got.push(r),
                        None => break,
                    }
                }
                Err(_) => {
                    failed = true;
                    break 'outer;
                }
            }
            assert!(buf.len() < MAX_LINE + step);
        }
    }
    // An error shows up whatever the split; without one, the replies are the same.
    assert_eq!(whole.is_err(), failed);
    if let Ok(replies) = whole {
        assert_eq!(replies, got);
    }
});
