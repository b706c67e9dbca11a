//! The leaf parts of a message with their content decoded (RFC 2045 6 transfer encodings, charsets
//! to UTF-8), for content tests such as the Sieve body test (RFC 5173 5.2 `:content`, 5.3 `:text`).
//! The MIME walk is tree.rs's: nesting and the number of parts are bounded there.

use super::text::decode_text;
use super::tree::{Kind, Part, parse};

/// One leaf of the MIME tree: its media type (lowercase) and its decoded content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContentPart {
    pub mtype: String,
    pub subtype: String,
    pub text: String,
}

/// Every leaf part of `msg` in order (a message/rfc822 part is descended into), decoded. A part
/// whose transfer encoding is unknown has an empty text.
pub fn content_parts(msg: &[u8]) -> Vec<ContentPart> {
    let mut out = Vec::new();
    walk(&parse(msg), msg, &mut out);
    out
}

fn walk(p: &Part, msg: &[u8], out: &mut Vec<ContentPart>) {
    match &p.kind {
        Kind::Multipart(list) => list.iter().for_each(|c| walk(c, msg, out)),
        Kind::Message(inner) => walk(inner, msg, out),
        Kind::Leaf => out.push(ContentPart {
            mtype: String::from_utf8_lossy(&p.ct.mtype).to_ascii_lowercase(),
            subtype: String::from_utf8_lossy(&p.ct.subtype).to_ascii_lowercase(),
            text: decode_text(p.mime_header(), msg.get(p.body.clone()).unwrap_or_default(), &p.ct),
        }),
    }
}
