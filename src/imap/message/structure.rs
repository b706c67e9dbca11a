//! BODY and BODYSTRUCTURE (RFC 3501 7.4.2, RFC 9051 7.5.2): the MIME tree of a message with sizes
//! in octets of the body as stored (CRLF) and line counts, extension data when asked for.

use super::envelope::envelope;
use super::mime::{ContentType, cte_token, disposition, fields, first, unfold};
use super::tree::{Kind, Part, parse};
use crate::imap::encode::{nstring, string};

/// BODYSTRUCTURE (`extensible`) or BODY of a whole message. Never fails: missing or broken headers
/// take the RFC 2045 defaults; a multipart without parts has an empty text part (tree.rs).
pub fn body_structure(msg: &[u8], extensible: bool) -> Vec<u8> {
    of(&parse(msg), extensible)
}

/// BODYSTRUCTURE or BODY from a parsed tree (of a message in memory or read as a stream).
pub(crate) fn of(root: &Part, extensible: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    write_part(&mut out, root, extensible);
    out
}

fn write_part(out: &mut Vec<u8>, p: &Part, ext: bool) {
    let header = p.mime_header();
    match &p.kind {
        Kind::Multipart(list) => {
            // RFC 3501 9 body-type-mpart: the parts, no space between them, then the subtype.
            out.push(b'(');
            for child in list {
                write_part(out, child, ext);
            }
            out.push(b' ');
            string(out, &p.ct.subtype);
            if ext {
                // body-ext-mpart: parameters, disposition, language, location.
                out.push(b' ');
                params(out, &p.ct.params);
                out.push(b' ');
                ext_tail(out, header);
            }
            out.push(b')');
        }
        Kind::Message(inner) => {
            // RFC 3501 9 body-type-msg: fields, envelope, body, lines of the encapsulated message.
            out.push(b'(');
            body_fields(out, &p.ct, header, p.body.len());
            out.push(b' ');
            out.extend_from_slice(&envelope(&inner.head, false));
            out.push(b' ');
            write_part(out, inner, ext);
            out.extend_from_slice(format!(" {}", p.lines).as_bytes());
            if ext {
                ext_1part(out, header);
            }
            out.push(b')');
        }
        Kind::Leaf => {
            let opaque;
            let ct = if p.ct.is("message", "rfc822") {
                // Too deep to parse: shown as a single opaque part, as RFC 3501 9 media-message
                // needs the envelope and body of the message.
                opaque = ContentType {
                    mtype: b"application".to_vec(),
                    subtype: b"octet-stream".to_vec(),
                    params: Vec::new(),
                };
                &opaque
            } else {
                &p.ct
            };
            out.push(b'(');
            body_fields(out, ct, header, p.body.len());
            if ct.is_type("text") {
                // RFC 3501 9 body-type-text: body-fld-lines.
                out.extend_from_slice(format!(" {}", p.lines).as_bytes());
            }
            if ext {
                ext_1part(out, header);
            }
            out.push(b')');
        }
    }
}

/// RFC 3501 9 media type and body-fields: type subtype params id description encoding octets.
fn body_fields(out: &mut Vec<u8>, ct: &ContentType, header: &[u8], size: usize) {
    string(out, &ct.mtype);
    out.push(b' ');
    string(out, &ct.subtype);
    out.push(b' ');
    if ct.is_type("text") && ct.param("charset").is_none() {
        // RFC 2045 5.2: the charset of text defaults to us-ascii; Dovecot says so explicitly.
        let mut with = ct.params.clone();
        with.push((b"charset".to_vec(), b"us-ascii".to_vec()));
        params(out, &with);
    } else {
        params(out, &ct.params);
    }
    for name in ["Content-ID", "Content-Description"] {
        out.push(b' ');
        let v = first(header, name).map(unfold).filter(|v| !v.is_empty());
        nstring(out, v.as_deref());
    }
    out.push(b' ');
    // RFC 2045 6.1: the default encoding is 7BIT.
    let enc = cte_token(first(header, "Content-Transfer-Encoding"));
    string(out, enc.unwrap_or(b"7bit"));
    out.extend_from_slice(format!(" {size}").as_bytes());
}

/// RFC 3501 9 body-fld-param: NIL or `("name" "value" ...)`.
fn params(out: &mut Vec<u8>, params: &[(Vec<u8>, Vec<u8>)]) {
    if params.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for (i, (n, v)) in params.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        string(out, n);
        out.push(b' ');
        string(out, v);
    }
    out.push(b')');
}

/// RFC 3501 9 body-ext-1part: MD5, then disposition, language, location.
fn ext_1part(out: &mut Vec<u8>, header: &[u8]) {
    out.push(b' ');
    let md5 = first(header, "Content-MD5").map(unfold).filter(|v| !v.is_empty());
    nstring(out, md5.as_deref());
    out.push(b' ');
    ext_tail(out, header);
}

/// body-fld-dsp SP body-fld-lang SP body-fld-loc (RFC 3501 9, RFC 2183, RFC 3066, RFC 2557).
fn ext_tail(out: &mut Vec<u8>, header: &[u8]) {
    let mut dsp = None;
    let mut lang = None;
    let mut loc = None;
    for f in fields(header) {
        let slot = if f.name.eq_ignore_ascii_case(b"Content-Disposition") {
            &mut dsp
        } else if f.name.eq_ignore_ascii_case(b"Content-Language") {
            &mut lang
        } else if f.name.eq_ignore_ascii_case(b"Content-Location") {
            &mut loc
        } else {
            continue;
        };
        if slot.is_none() {
            *slot = Some(f.value);
        }
    }
    match dsp.and_then(disposition) {
        Some((value, ps)) => {
            out.push(b'(');
            string(out, &value);
            out.push(b' ');
            params(out, &ps);
            out.push(b')');
        }
        None => out.extend_from_slice(b"NIL"),
    }
    out.push(b' ');
    let tags: Vec<Vec<u8>> = lang
        .map(|v| {
            unfold(v)
                .split(|&b| b == b',')
                .map(|t| super::mime::trim(t).to_vec())
                .filter(|t| !t.is_empty())
                .collect()
        })
        .unwrap_or_default();
    // RFC 3501 9 body-fld-lang: a string or a list; always the list, as Dovecot writes it.
    match tags.as_slice() {
        [] => out.extend_from_slice(b"NIL"),
        many => {
            out.push(b'(');
            for (i, t) in many.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                string(out, t);
            }
            out.push(b')');
        }
    }
    out.push(b' ');
    let loc = loc.map(unfold).filter(|v| !v.is_empty());
    nstring(out, loc.as_deref());
}
