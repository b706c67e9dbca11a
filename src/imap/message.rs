//! Message data for FETCH and SEARCH: ENVELOPE and BODYSTRUCTURE (RFC 3501 7.4.2, RFC 9051 7.5.2),
//! body sections (RFC 3501 6.4.5), BINARY (RFC 3516) and the decoded text SEARCH compares
//! (RFC 3501 6.4.4). Pure functions over the bytes of one message as the store gives them (CRLF).
//!
//! The MIME walk is buzon's own (message/mime.rs) rather than mailparse's tree: IMAP needs exact
//! octet offsets of each part as stored, part numbers that follow RFC 3501 (message/rfc822 parts
//! included), a bound on nesting, and no copies of the parts; mailparse is used where it is good at
//! the job, decoding RFC 2047 words and charsets for SEARCH.

mod decode;
mod envelope;
mod lex;
mod lines;
mod mime;
mod parsed;
mod parts;
mod searchstream;
mod structure;
#[cfg(test)]
mod tests;
mod text;
mod tree;

use crate::imap::types::{Section, SectionText};

pub use decode::{Cte, Decoder};
pub use envelope::envelope;
pub(crate) use envelope::{Addr, MISSING_DOMAIN, MISSING_MAILBOX, addresses};
pub(crate) use mime::{Field, fields};
pub use parsed::{Parsed, Piece};
pub use parts::{ContentPart, content_parts};
pub use searchstream::{body_contains, header_contains, header_fields as stream_header_fields};
pub use structure::body_structure;
pub(crate) use text::decode_field;
pub use text::{body_text, contains, fold, header_text, header_values, search_values, sent_date};

/// Why BINARY cannot give a part (RFC 3516 4.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryError {
    /// The part's Content-Transfer-Encoding is not one buzon can undo: `NO [UNKNOWN-CTE]`.
    UnknownCte,
}

/// The header of a message: through the blank line.
pub fn header(msg: &[u8]) -> &[u8] {
    mime::split(msg).0
}

/// The body of a message: after the blank line.
pub fn body(msg: &[u8]) -> &[u8] {
    mime::split(msg).1
}

/// True when `section` can be answered from the header alone (HEADER, HEADER.FIELDS[.NOT] of the
/// message itself).
pub fn header_only(section: &Section) -> bool {
    section.part.is_empty()
        && matches!(
            section.text,
            Some(SectionText::Header | SectionText::HeaderFields(_) | SectionText::HeaderFieldsNot(_))
        )
}

/// BODY[section] (RFC 3501 6.4.5). A part that does not exist gives an empty result.
pub fn section(msg: &[u8], section: &Section) -> Vec<u8> {
    let root = tree::parse(msg);
    let Some(part) = tree::find(&root, &section.part) else { return Vec::new() };
    let text = match &section.text {
        // The whole message, or a part's body (for a message/rfc822 part: the whole message in it).
        None if section.part.is_empty() => return msg.to_vec(),
        None => return slice(msg, &part.body).to_vec(),
        // RFC 3501 6.4.5: MIME is the part's own MIME header; only after a part number.
        Some(SectionText::Mime) if section.part.is_empty() => return Vec::new(),
        Some(SectionText::Mime) => return part.head.clone(),
        Some(t) => t,
    };
    // HEADER, HEADER.FIELDS[.NOT] and TEXT are of the message itself or of a message/rfc822 part.
    let target = if section.part.is_empty() {
        part
    } else {
        match &part.kind {
            tree::Kind::Message(inner) => inner,
            _ => return Vec::new(),
        }
    };
    let (header, body) = (target.head.as_slice(), slice(msg, &target.body));
    match text {
        SectionText::Header => header.to_vec(),
        SectionText::Text => body.to_vec(),
        SectionText::HeaderFields(names) => header_fields(header, names, true),
        SectionText::HeaderFieldsNot(names) => header_fields(header, names, false),
        SectionText::Mime => Vec::new(),
    }
}

fn slice<'m>(msg: &'m [u8], r: &std::ops::Range<usize>) -> &'m [u8] {
    msg.get(r.clone()).unwrap_or_default()
}

/// RFC 3501 6.4.5 HEADER.FIELDS / HEADER.FIELDS.NOT: the fields (not) named, as written with their
/// folding, in their order, then the blank line.
fn header_fields(header: &[u8], names: &[String], keep: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for f in mime::fields(header) {
        if names.iter().any(|n| f.name.eq_ignore_ascii_case(n.as_bytes())) == keep {
            out.extend_from_slice(f.raw);
            if !f.raw.ends_with(b"\n") {
                out.extend_from_slice(b"\r\n");
            }
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// BINARY[part] (RFC 3516 4.2): the part's content with its base64 or quoted-printable encoding
/// undone. An empty part list is the whole message as stored; a missing part is empty.
pub fn binary(msg: &[u8], part: &[u32]) -> Result<Vec<u8>, BinaryError> {
    if part.is_empty() {
        return Ok(msg.to_vec());
    }
    let root = tree::parse(msg);
    let Some(p) = tree::find(&root, part) else { return Ok(Vec::new()) };
    let body = slice(msg, &p.body);
    match decode::cte(mime::first(p.mime_header(), "Content-Transfer-Encoding")) {
        decode::Cte::Identity => Ok(body.to_vec()),
        decode::Cte::Base64 => Ok(decode::base64(body)),
        decode::Cte::QuotedPrintable => Ok(decode::quoted_printable(body)),
        decode::Cte::Unknown => Err(BinaryError::UnknownCte),
    }
}
