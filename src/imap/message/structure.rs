//! BODY and BODYSTRUCTURE (RFC 3501 7.4.2, RFC 9051 7.5.2): the MIME tree of a message with sizes
//! in octets of the body as stored (CRLF) and line counts, extension data when asked for.

use super::envelope::envelope;
use super::mime::{
    ContentType, Entity, Kind, MAX_DEPTH, child_default, content_type, disposition, fields, first, split,
    unfold,
};
use crate::imap::encode::{nstring, string};

/// BODYSTRUCTURE (`extensible`) or BODY of a whole message. Never fails: missing or broken headers
/// take the RFC 2045 defaults and unsplittable multiparts are shown as text.
pub fn body_structure(msg: &[u8], extensible: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    write_entity(&mut out, &Entity::root(msg), extensible);
    out
}

fn write_entity(out: &mut Vec<u8>, e: &Entity<'_>, ext: bool) {
    let (header, body) = split(e.bytes);
    match e.kind() {
        Kind::Multipart(list) => {
            // RFC 3501 9 body-type-mpart: the parts, no space between them, then the subtype.
            out.push(b'(');
            let default = child_default(&e.ct);
            for part in list {
                let (h, _) = split(part);
                let child = Entity {
                    bytes: part,
                    ct: content_type(first(h, "Content-Type"), &default),
                    depth: e.depth + 1,
                };
                write_entity(out, &child, ext);
            }
            out.push(b' ');
            string(out, &e.ct.subtype);
            if ext {
                // body-ext-mpart: parameters, disposition, language, location.
                out.push(b' ');
                params(out, &e.ct.params);
                out.push(b' ');
                ext_tail(out, header);
            }
            out.push(b')');
        }
        Kind::Message(inner) => {
            // RFC 3501 9 body-type-msg: fields, envelope, body, lines of the encapsulated message.
            out.push(b'(');
            body_fields(out, &e.ct, header, inner.len());
            out.push(b' ');
            let (inner_header, _) = split(inner);
            out.extend_from_slice(&envelope(inner_header, false));
            out.push(b' ');
            let inner_entity = Entity { depth: e.depth + 1, ..Entity::root(inner) };
            write_entity(out, &inner_entity, ext);
            out.extend_from_slice(format!(" {}", super::mime::count_lines(inner)).as_bytes());
            if ext {
                ext_1part(out, header);
            }
            out.push(b')');
        }
        Kind::Leaf => {
            let opaque;
            let ct = if e.ct.is_type("multipart") || e.ct.is("message", "rfc822") {
                // Too deep, an encoded message/rfc822, or a multipart that could not be split: shown
                // as a single part so the answer stays well-formed (RFC 3501 9 media-message and
                // body-type-mpart need their bodies); an unsplittable multipart reads as text.
                opaque = if e.depth >= MAX_DEPTH || !e.ct.is_type("multipart") {
                    ContentType {
                        mtype: b"application".to_vec(),
                        subtype: b"octet-stream".to_vec(),
                        params: Vec::new(),
                    }
                } else {
                    ContentType::text_default()
                };
                &opaque
            } else {
                &e.ct
            };
            out.push(b'(');
            body_fields(out, ct, header, body.len());
            if ct.is_type("text") {
                // RFC 3501 9 body-type-text: body-fld-lines.
                out.extend_from_slice(format!(" {}", super::mime::count_lines(body)).as_bytes());
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
    params(out, &ct.params);
    for name in ["Content-ID", "Content-Description"] {
        out.push(b' ');
        let v = first(header, name).map(unfold).filter(|v| !v.is_empty());
        nstring(out, v.as_deref());
    }
    out.push(b' ');
    // RFC 2045 6.1: the default encoding is 7BIT.
    let enc = first(header, "Content-Transfer-Encoding").map(unfold).filter(|v| !v.is_empty());
    string(out, enc.as_deref().unwrap_or(b"7BIT"));
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
    match tags.as_slice() {
        [] => out.extend_from_slice(b"NIL"),
        [one] => string(out, one),
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
