//! Fuzz target: scanner replies through the content scanner clients' parsers: the bytes as a clamd
//! INSTREAM reply, as a spamd (SPAMD/1.1) reply, as a whole HTTP response from rspamd, and as the
//! JSON body of a 200 response. Must never panic; every verdict it gives holds finite numbers.
#![no_main]

use buzon::filters::scan::{ClamVerdict, parse_clamd_reply, parse_rspamd_reply, parse_spamd_reply};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(ClamVerdict::Infected(name)) = parse_clamd_reply(data) {
        assert!(!name.is_empty() && !name.contains('\0'));
    }
    if let Ok(s) = parse_spamd_reply(data) {
        assert!(s.score.is_finite() && s.threshold.is_finite() && s.action.is_none());
    }
    if let Ok(s) = parse_rspamd_reply(data) {
        assert!(s.score.is_finite() && s.threshold.is_finite());
    }
    let mut http = b"HTTP/1.1 200 OK\r\n\r\n".to_vec();
    http.extend_from_slice(data);
    if let Ok(s) = parse_rspamd_reply(&http) {
        assert!(s.score.is_finite() && s.threshold.is_finite());
    }
});
