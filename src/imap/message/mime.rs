//! A light MIME walker over a message held in memory: header fields (RFC 5322 2.2), Content-Type and
//! its parameters (RFC 2045 5), multipart bodies (RFC 2046 5.1.1), and IMAP part numbers
//! (RFC 3501 6.4.5). Everything is a slice of the stored bytes, so sizes and offsets are exact, and
//! nesting is bounded by [`MAX_DEPTH`]; broken input always gives a defined answer.

use super::lex::{Tok, lex};
use crate::store::folder::header_end;

/// Parts nested deeper than this are opaque (neither split nor parsed as messages).
pub(crate) const MAX_DEPTH: usize = 20;
/// At most this many parts of one multipart are seen; the rest of its body is ignored.
const MAX_PARTS: usize = 5000;

/// One header field.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Field<'a> {
    /// The name as written (trailing white space removed).
    pub name: &'a [u8],
    /// The raw value after the colon, folding kept, without the final line break.
    pub value: &'a [u8],
    /// The whole field, through its final line break.
    pub raw: &'a [u8],
}

/// The fields of a header block, in order; stops at the blank line. Lines that are not fields
/// (no colon, or a continuation with nothing to continue) are skipped.
pub(crate) fn fields(header: &[u8]) -> impl Iterator<Item = Field<'_>> {
    let mut i = 0;
    std::iter::from_fn(move || {
        loop {
            let rest = header.get(i..)?;
            if rest.is_empty() || rest.starts_with(b"\n") || rest.starts_with(b"\r\n") {
                return None;
            }
            let start = i;
            // The field runs over its continuation lines (RFC 5322 2.2.3).
            let mut end = line_end(header, i);
            while matches!(header.get(end), Some(b' ' | b'\t')) {
                end = line_end(header, end);
            }
            i = end;
            let raw = &header[start..end];
            let Some(colon) = raw.iter().position(|&b| b == b':') else { continue };
            let name = trim(&raw[..colon]);
            if name.is_empty() || matches!(raw.first(), Some(b' ' | b'\t')) {
                continue;
            }
            let value = strip_eol(&raw[colon + 1..]);
            return Some(Field { name, value, raw });
        }
    })
}

/// Index just past the line starting at `i` (after its LF), or the end.
fn line_end(s: &[u8], i: usize) -> usize {
    s.get(i..).and_then(|r| r.iter().position(|&b| b == b'\n')).map_or(s.len(), |p| i + p + 1)
}

fn strip_eol(s: &[u8]) -> &[u8] {
    let s = s.strip_suffix(b"\n").unwrap_or(s);
    s.strip_suffix(b"\r").unwrap_or(s)
}

/// White space trimmed from both ends.
pub(crate) fn trim(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(s.len());
    let end = s.iter().rposition(|b| !b.is_ascii_whitespace()).map_or(start, |p| p + 1);
    &s[start..end]
}

/// RFC 5322 2.2.3 unfolding (line breaks removed, the white space after them kept), trimmed.
pub(crate) fn unfold(value: &[u8]) -> Vec<u8> {
    trim(value).iter().copied().filter(|&b| b != b'\r' && b != b'\n').collect()
}

/// The raw value of the first field called `name` (case-insensitive).
pub(crate) fn first<'a>(header: &'a [u8], name: &str) -> Option<&'a [u8]> {
    fields(header).find(|f| f.name.eq_ignore_ascii_case(name.as_bytes())).map(|f| f.value)
}

/// Header and body of a message or part: the header runs through the blank line.
/// A first line that cannot start a header (no colon) means there is no header at all: the part
/// is all body (RFC 2046 5.1.1 allows a part with no header fields).
pub(crate) fn split(entity: &[u8]) -> (&[u8], &[u8]) {
    let first = &entity[..line_end(entity, 0)];
    if !trim(first).is_empty() && !first.contains(&b':') {
        return (&[], entity);
    }
    entity.split_at(header_end(entity).min(entity.len()))
}

/// Lines in a body as IMAP counts them: line breaks, plus a last line without one.
pub(crate) fn count_lines(body: &[u8]) -> usize {
    let n = body.iter().filter(|&&b| b == b'\n').count();
    n + usize::from(!body.is_empty() && !body.ends_with(b"\n"))
}

/// MIME parameters, `(name, value)` in order.
pub(crate) type Params = Vec<(Vec<u8>, Vec<u8>)>;

/// A parsed Content-Type (or its default).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ContentType {
    pub mtype: Vec<u8>,
    pub subtype: Vec<u8>,
    /// Parameters as written (names keep their case; quoted values unquoted).
    pub params: Params,
}

impl ContentType {
    /// RFC 2045 5.2: no (or a broken) Content-Type means `text/plain; charset=us-ascii`.
    pub fn text_default() -> Self {
        ContentType {
            mtype: b"text".to_vec(),
            subtype: b"plain".to_vec(),
            params: vec![(b"charset".to_vec(), b"us-ascii".to_vec())],
        }
    }

    /// RFC 2046 5.1.5: in a multipart/digest the default is message/rfc822.
    pub fn digest_default() -> Self {
        ContentType { mtype: b"message".to_vec(), subtype: b"rfc822".to_vec(), params: Vec::new() }
    }

    pub fn is(&self, mtype: &str, subtype: &str) -> bool {
        self.mtype.eq_ignore_ascii_case(mtype.as_bytes())
            && self.subtype.eq_ignore_ascii_case(subtype.as_bytes())
    }

    pub fn is_type(&self, mtype: &str) -> bool {
        self.mtype.eq_ignore_ascii_case(mtype.as_bytes())
    }

    pub fn param(&self, name: &str) -> Option<&[u8]> {
        self.params.iter().find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes())).map(|(_, v)| v.as_slice())
    }
}

/// Parses a Content-Type value; `None` or a broken value gives `default`.
pub(crate) fn content_type(value: Option<&[u8]>, default: &ContentType) -> ContentType {
    let Some(value) = value else { return default.clone() };
    let toks = lex(value, true);
    let mut it = toks.iter().filter(|t| !matches!(t, Tok::Comment(_)));
    match (it.next(), it.next(), it.next()) {
        (Some(Tok::Word(t)), Some(Tok::Special(b'/')), Some(Tok::Word(s))) => {
            ContentType { mtype: t.to_vec(), subtype: s.to_vec(), params: params(&toks) }
        }
        _ => default.clone(),
    }
}

/// `value *(; attribute=value)` as in Content-Disposition (RFC 2183 2): the value and parameters.
pub(crate) fn disposition(value: &[u8]) -> Option<(Vec<u8>, Params)> {
    let toks = lex(value, true);
    match toks.iter().find(|t| !matches!(t, Tok::Comment(_))) {
        Some(Tok::Word(w)) => Some((w.to_vec(), params(&toks))),
        _ => None,
    }
}

/// The `; name=value` parameters after the first `;` (RFC 2045 5.1). Junk between semicolons is
/// skipped; a value may be a token or a quoted string.
fn params(toks: &[Tok<'_>]) -> Params {
    let toks: Vec<&Tok<'_>> = toks.iter().filter(|t| !matches!(t, Tok::Comment(_))).collect();
    let mut out = Vec::new();
    let Some(first) = toks.iter().position(|t| matches!(t, Tok::Special(b';'))) else { return out };
    for group in toks[first..].split(|t| matches!(t, Tok::Special(b';'))) {
        if let [Tok::Word(name), Tok::Special(b'='), value, ..] = group {
            let value = match value {
                Tok::Word(w) => w.to_vec(),
                Tok::Quoted(q) => q.clone(),
                _ => continue,
            };
            out.push((name.to_vec(), value));
        }
    }
    out
}

/// The parts of a multipart body (RFC 2046 5.1.1): each is the bytes between a delimiter line and
/// the line break before the next one (that line break belongs to the delimiter). Preamble and
/// epilogue are dropped; an unterminated last part runs to the end. Empty when no delimiter is found.
pub(crate) fn parts<'a>(body: &'a [u8], boundary: &[u8]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    if boundary.is_empty() {
        return out;
    }
    let mut open: Option<usize> = None;
    let mut i = 0;
    while i < body.len() {
        let next = line_end(body, i);
        let line = strip_eol(&body[i..next]);
        if let Some(rest) = line.strip_prefix(b"--").and_then(|l| l.strip_prefix(boundary)) {
            let close = rest.starts_with(b"--");
            if close || trim(rest).is_empty() {
                if let Some(start) = open {
                    // The line break before the delimiter is part of it.
                    let mut end = i;
                    if body[..end].ends_with(b"\n") {
                        end -= 1;
                        if body[..end].ends_with(b"\r") {
                            end -= 1;
                        }
                    }
                    out.push(&body[start..end.max(start)]);
                    if out.len() >= MAX_PARTS {
                        return out;
                    }
                }
                if close {
                    return out;
                }
                open = Some(next);
            }
        }
        i = next;
    }
    if let Some(start) = open {
        out.push(&body[start.min(body.len())..]);
    }
    out
}

/// What an entity is, as the walker treats it.
pub(crate) enum Kind<'a> {
    /// A multipart with its parts and the default type of its children.
    Multipart(Vec<&'a [u8]>),
    /// A message/rfc822 part: the encapsulated message.
    Message(&'a [u8]),
    /// Anything else, including what could not be split or lies too deep.
    Leaf,
}

/// Classifies an entity whose type is `ct`, nested `depth` levels deep.
pub(crate) fn kind<'a>(ct: &ContentType, header: &[u8], body: &'a [u8], depth: usize) -> Kind<'a> {
    if depth >= MAX_DEPTH {
        return Kind::Leaf;
    }
    if ct.is_type("multipart") {
        let found = ct.param("boundary").map(|b| parts(body, b)).unwrap_or_default();
        if found.is_empty() { Kind::Leaf } else { Kind::Multipart(found) }
    } else if ct.is("message", "rfc822")
        // RFC 2046 5.2.1: only 7bit, 8bit or binary; an encoded one is opaque.
        && super::decode::cte(first(header, "Content-Transfer-Encoding")) == super::decode::Cte::Identity
    {
        Kind::Message(body)
    } else {
        Kind::Leaf
    }
}

/// One entity found by a part number, with what is needed to render any section of it.
pub(crate) struct Entity<'a> {
    /// MIME header and body of the part (for the top level or "part 1" of a single-part message:
    /// the whole message).
    pub bytes: &'a [u8],
    pub ct: ContentType,
    pub depth: usize,
}

impl<'a> Entity<'a> {
    pub fn root(msg: &'a [u8]) -> Self {
        let (header, _) = split(msg);
        Entity {
            bytes: msg,
            ct: content_type(first(header, "Content-Type"), &ContentType::text_default()),
            depth: 0,
        }
    }

    pub fn kind(&self) -> Kind<'a> {
        let (header, body) = split(self.bytes);
        kind(&self.ct, header, body, self.depth)
    }

    /// The encapsulated message when this is a message/rfc822 part (within the depth limit).
    pub fn inner(&self) -> Option<Entity<'a>> {
        match self.kind() {
            Kind::Message(m) => Some(Entity::root_at(m, self.depth + 1)),
            _ => None,
        }
    }

    fn root_at(msg: &'a [u8], depth: usize) -> Self {
        Entity { depth, ..Entity::root(msg) }
    }
}

/// Finds a part by its IMAP number (RFC 3501 6.4.5): numbers index the parts of a multipart; a
/// message/rfc822 part's numbers are those of the message inside; a non-multipart message (or
/// encapsulated message) has one part, 1, itself. The second value says whether the entity is a
/// message (the top level or an encapsulated one) rather than a body part. `None`: no such part.
pub(crate) fn find<'a>(msg: &'a [u8], path: &[u32]) -> Option<(Entity<'a>, bool)> {
    let mut cur = Entity::root(msg);
    let mut is_message = true;
    for &n in path {
        let mut at_message = is_message;
        if !is_message && let Some(inner) = cur.inner() {
            cur = inner;
            at_message = true;
        }
        match cur.kind() {
            Kind::Multipart(list) => {
                let part = *list.get(usize::try_from(n).ok()?.checked_sub(1)?)?;
                let default = child_default(&cur.ct);
                let (h, _) = split(part);
                cur = Entity {
                    bytes: part,
                    ct: content_type(first(h, "Content-Type"), &default),
                    depth: cur.depth + 1,
                };
            }
            // Part 1 of a message that is not multipart is its body.
            _ if n == 1 && at_message => {}
            _ => return None,
        }
        is_message = false;
    }
    Some((cur, is_message))
}

/// The default type of the children of a multipart.
pub(crate) fn child_default(parent: &ContentType) -> ContentType {
    if parent.is("multipart", "digest") { ContentType::digest_default() } else { ContentType::text_default() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_keep_folding_and_skip_junk() {
        let h = b"Subject: a\r\n b\r\njunk line\r\nFrom : x\r\n\r\nBody: no\r\n";
        let f: Vec<_> = fields(h).collect();
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].name, b"Subject");
        assert_eq!(f[0].value, b" a\r\n b");
        assert_eq!(f[0].raw, b"Subject: a\r\n b\r\n");
        assert_eq!(f[1].name, b"From");
        assert_eq!(unfold(f[0].value), b"a b");
    }

    #[test]
    fn splits_multipart() {
        let body = b"pre\r\n--b\r\npart1\r\n--b \r\n\r\npart2\r\n--b--\r\nepilogue";
        assert_eq!(parts(body, b"b"), vec![&b"part1"[..], &b"\r\npart2"[..]]);
        // Unterminated: the last part runs to the end.
        assert_eq!(parts(b"--b\nx\n--b\ny", b"b"), vec![&b"x"[..], &b"y"[..]]);
        // A longer boundary that starts with ours is not ours.
        assert_eq!(parts(b"--b\r\n--bc\r\n--b--", b"b"), vec![&b"--bc"[..]]);
        assert!(parts(b"no delimiters", b"b").is_empty());
        assert_eq!(parts(b"--b\r\n--b\r\n--b--", b"b"), vec![&b""[..], &b""[..]]);
    }

    #[test]
    fn content_types() {
        let ct = content_type(
            Some(b" Multipart/Mixed ; boundary=\"x y\"; junk; a=b (c)"),
            &ContentType::text_default(),
        );
        assert!(ct.is("multipart", "mixed"));
        assert_eq!(ct.param("BOUNDARY"), Some(&b"x y"[..]));
        assert_eq!(ct.param("a"), Some(&b"b"[..]));
        assert_eq!(content_type(Some(b"garbage"), &ContentType::text_default()), ContentType::text_default());
        assert_eq!(count_lines(b"a\r\nb"), 2);
        assert_eq!(count_lines(b"a\r\nb\r\n"), 2);
        assert_eq!(count_lines(b""), 0);
    }
}
