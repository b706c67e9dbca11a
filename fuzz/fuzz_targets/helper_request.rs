//! Fuzz target: the privileged helper's request and response format (src/server/helper/proto.rs).
//! Whatever the unprivileged side sends, decoding must not panic, and whatever decodes must encode
//! back to something that decodes to the same value.
#![no_main]

use buzon::server::helper::proto::{self, Request, Response};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((id, body)) = proto::untag(data) {
        assert_eq!(proto::untag(proto::tag(id, &String::from_utf8_lossy(body)).as_bytes()).map(|x| x.0), Ok(id));
    }
    if let Ok(r) = Request::decode(data) {
        assert_eq!(Request::decode(r.encode().as_bytes()), Ok(r));
    }
    if let Ok(r) = Response::decode(data) {
        assert_eq!(Response::decode(r.encode().as_bytes()), Ok(r));
    }
});
