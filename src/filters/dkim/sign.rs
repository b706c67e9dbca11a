//! DKIM signing (RFC 6376 5, RFC 8463): relaxed/relaxed, `rsa-sha256` and `ed25519-sha256`, the
//! usual header fields present in the message signed once each plus one extra `from` so that a
//! From added later breaks the signature (RFC 6376 8.15), `t=` set, the `b=` value folded.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::canon::{self, BodyHasher, Canon};
use super::header;
use super::key::SigningKey;
use super::verify::header_data;

/// Header fields signed when present (RFC 6376 5.4.1's recommendations and the list fields).
pub const SIGNED_FIELDS: &[&str] = &[
    "from",
    "reply-to",
    "subject",
    "date",
    "to",
    "cc",
    "message-id",
    "in-reply-to",
    "references",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    "list-id",
    "list-help",
    "list-unsubscribe",
    "list-unsubscribe-post",
    "list-subscribe",
    "list-post",
    "list-owner",
    "list-archive",
];

/// Signs one message with a set of keys, the body streamed.
pub struct Signer {
    keys: Vec<SigningKey>,
    header: Vec<u8>,
    now: u64,
    body: BodyHasher,
}

impl Signer {
    /// `header` is the header section (CRLF line ends, without the empty line).
    pub fn new(keys: Vec<SigningKey>, header: &[u8], now_unix: u64) -> Signer {
        Signer { keys, header: header.to_vec(), now: now_unix, body: BodyHasher::new(Canon::Relaxed, None) }
    }

    pub fn feed(&mut self, body: &[u8]) {
        self.body.feed(body);
    }

    /// The `DKIM-Signature: ...` fields, one per key (folded, CRLF between lines, none at the end),
    /// to put above the message. A message without a From field cannot be signed (RFC 6376 5.4).
    pub fn finish(self) -> Result<Vec<String>, String> {
        if self.keys.is_empty() {
            return Ok(Vec::new());
        }
        let fields = canon::fields(&self.header);
        let present = |n: &str| fields.iter().any(|f| f.name.eq_ignore_ascii_case(n.as_bytes()));
        if !present("from") {
            return Err("the message has no From header field".into());
        }
        let mut names: Vec<String> =
            SIGNED_FIELDS.iter().filter(|n| present(n)).map(|n| n.to_string()).collect();
        names.push("from".into());
        let bh = STANDARD.encode(self.body.finish().digest);
        let mut out = Vec::new();
        for key in &self.keys {
            let tags: Vec<(String, String)> = [
                ("v", "1".to_string()),
                ("a", key.algorithm().name().to_string()),
                ("c", "relaxed/relaxed".to_string()),
                ("d", key.domain.clone()),
                ("s", key.selector.clone()),
                ("t", self.now.to_string()),
                ("h", names.join(":")),
                ("bh", bh.clone()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
            let unsigned = header::fold("DKIM-Signature", &tags, "");
            let data = header_data(Canon::Relaxed, &names, &fields, unsigned.as_bytes());
            let sig = key.sign(&data)?;
            out.push(header::fold("DKIM-Signature", &tags, &STANDARD.encode(sig)));
        }
        Ok(out)
    }
}
