//! A message parsed as it is read (the MIME tree of tree.rs with octet offsets): BODYSTRUCTURE,
//! body sections (RFC 3501 6.4.5) and what BINARY (RFC 3516) decodes, for a message too large to
//! hold in memory; the same answers as the functions over a message in memory.

use std::io::Read;
use std::ops::Range;

use super::decode::{self, Cte};
use super::{BinaryError, header_fields, mime, structure, tree};
use crate::imap::types::{Section, SectionText};

/// The MIME tree of one message (headers kept up to [`tree::HEAD_MAX`] octets each).
pub struct Parsed(tree::Part);

/// A section's answer: octets of the message, or octets made from its headers.
#[derive(Debug, PartialEq, Eq)]
pub enum Piece {
    Range(Range<u64>),
    Bytes(Vec<u8>),
}

fn range(r: &Range<usize>) -> Range<u64> {
    r.start as u64..r.end as u64
}

impl Parsed {
    /// Parses the message `rd` yields, in one pass.
    pub fn read(rd: impl Read) -> std::io::Result<Parsed> {
        tree::parse_reader(rd).map(Parsed)
    }

    pub(super) fn root(&self) -> &tree::Part {
        &self.0
    }

    /// The message's header: where it is, and its octets (the first [`tree::HEAD_MAX`]).
    pub fn header(&self) -> (Range<u64>, &[u8]) {
        (range(&self.0.header), &self.0.head)
    }

    /// BODYSTRUCTURE (`extensible`) or BODY, as [`super::body_structure`].
    pub fn body_structure(&self, extensible: bool) -> Vec<u8> {
        structure::of(&self.0, extensible)
    }

    /// BODY[section], as [`super::section`] gives it.
    pub fn section(&self, section: &Section) -> Piece {
        let root = &self.0;
        let Some(part) = tree::find(root, &section.part) else { return Piece::Bytes(Vec::new()) };
        let text = match &section.text {
            None if section.part.is_empty() => return Piece::Range(0..root.body.end as u64),
            None => return Piece::Range(range(&part.body)),
            Some(SectionText::Mime) if section.part.is_empty() => return Piece::Bytes(Vec::new()),
            Some(SectionText::Mime) => return Piece::Range(range(&part.header)),
            Some(t) => t,
        };
        let target = if section.part.is_empty() {
            part
        } else {
            match &part.kind {
                tree::Kind::Message(inner) => inner,
                _ => return Piece::Bytes(Vec::new()),
            }
        };
        match text {
            SectionText::Header => Piece::Range(range(&target.header)),
            SectionText::Text => Piece::Range(range(&target.body)),
            SectionText::HeaderFields(names) => Piece::Bytes(header_fields(&target.head, names, true)),
            SectionText::HeaderFieldsNot(names) => Piece::Bytes(header_fields(&target.head, names, false)),
            SectionText::Mime => Piece::Bytes(Vec::new()),
        }
    }

    /// What BINARY[part] decodes, as [`super::binary`]: the octets of the message and their
    /// encoding (a missing part is empty).
    pub fn binary(&self, part: &[u32]) -> Result<(Range<u64>, Cte), BinaryError> {
        let root = &self.0;
        if part.is_empty() {
            return Ok((0..root.body.end as u64, Cte::Identity));
        }
        let Some(p) = tree::find(root, part) else { return Ok((0..0, Cte::Identity)) };
        match decode::cte(mime::first(p.mime_header(), "Content-Transfer-Encoding")) {
            Cte::Unknown => Err(BinaryError::UnknownCte),
            c => Ok((range(&p.body), c)),
        }
    }
}
