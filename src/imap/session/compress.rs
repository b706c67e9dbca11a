//! IMAP session: COMPRESS (RFC 4978). The session only decides: a tagged `OK` followed by
//! [`Outcome::Compress`], after which the driver compresses both directions (the `OK` itself is
//! sent uncompressed, RFC 4978 3); the deflate streams live in the driver (src/compress.rs).

use super::{Backend, Outcome, Reply, Session, bad, no, ok};
use crate::imap::types::Command;

impl Session {
    /// RFC 4978 3: `COMPRESS DEFLATE` once per connection.
    pub(super) fn compress(&mut self, _: &str, cmd: Command, _: &dyn Backend, _: &mut Vec<u8>) -> Reply {
        let Command::Compress(algorithm) = cmd else { return Some(bad("Internal error")) };
        // RFC 4978 3: BAD for an unknown algorithm ("DEFLATE" is the only one defined).
        if !algorithm.eq_ignore_ascii_case("DEFLATE") {
            return Some(bad("Unknown compression algorithm (DEFLATE is supported)"));
        }
        // RFC 4978 3: NO [COMPRESSIONACTIVE] when the stream is compressed already (TLS has no
        // compression here: rustls offers none, so only a second COMPRESS gets this).
        if self.compressed {
            return Some(no("COMPRESSIONACTIVE", "DEFLATE is already active"));
        }
        self.compressed = true;
        log::info!("session={} event=imap_compress algorithm=deflate", self.peer.sid);
        Some(ok("DEFLATE active").then(Outcome::Compress))
    }
}
