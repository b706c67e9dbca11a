//! Header fields (RFC 5322 2.2), Content-Type and Content-Disposition with their parameters
//! (RFC 2045 5, RFC 2183) for the MIME tree (tree.rs). Everything is a slice of the stored bytes, so
//! sizes and offsets are exact; broken input always gives a defined answer.

use super::lex::{Tok, lex};
use crate::store::folder::header_end;

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
pub(crate) fn line_end(s: &[u8], i: usize) -> usize {
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

/// Header and body of a message: the header runs through the blank line (RFC 5322 2.1), or to the
/// end when there is none. Lines that are not fields stay in the header, as in Dovecot.
pub(crate) fn split(entity: &[u8]) -> (&[u8], &[u8]) {
    entity.split_at(header_end(entity).min(entity.len()))
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
    match (it.next(), it.next(), it.next(), it.next()) {
        // RFC 2045 5.2: anything but parameters after the type makes the field invalid, and then
        // the default applies (Dovecot rejects such a field too).
        (
            Some(Tok::Word(t)),
            Some(Tok::Special(b'/')),
            Some(Tok::Word(s)),
            None | Some(Tok::Special(b';')),
        ) => ContentType { mtype: t.to_vec(), subtype: s.to_vec(), params: params(&toks) },
        _ => default.clone(),
    }
}

/// The Content-Transfer-Encoding mechanism (RFC 2045 6.1): one token, comments aside. Anything
/// else (`8 bit`) is not a mechanism and the default 7bit applies, as in Dovecot.
pub(crate) fn cte_token(value: Option<&[u8]>) -> Option<&[u8]> {
    let toks = lex(value?, true);
    let mut it = toks.iter().filter(|t| !matches!(t, Tok::Comment(_)));
    match (it.next(), it.next()) {
        (Some(Tok::Word(w)), None) => Some(*w),
        _ => None,
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
    fn content_types() {
        let ct = content_type(
            Some(b" Multipart/Mixed ; boundary=\"x y\"; junk; a=b (c)"),
            &ContentType::text_default(),
        );
        assert!(ct.is("multipart", "mixed"));
        assert_eq!(ct.param("BOUNDARY"), Some(&b"x y"[..]));
        assert_eq!(ct.param("a"), Some(&b"b"[..]));
        assert_eq!(content_type(Some(b"garbage"), &ContentType::text_default()), ContentType::text_default());
        // Junk after the subtype (a missing `;`) makes the field invalid: the default applies.
        let junk = content_type(Some(b"multipart/mixed\r\n\tboundary=\"b\""), &ContentType::text_default());
        assert_eq!(junk, ContentType::text_default());
        assert_eq!(cte_token(Some(b" Base64 (c)")), Some(&b"Base64"[..]));
        assert_eq!(cte_token(Some(b"8 bit")), None);
        assert_eq!(cte_token(None), None);
    }
}
