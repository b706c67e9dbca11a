//! FETCH data items (RFC 3501 6.4.5 and 9, RFC 9051 6.4.5, RFC 3516 BINARY) and the STORE flag
//! arguments (RFC 3501 6.4.6).

use super::lexer::{MAX_ITEMS, PResult, Parser, show};
use crate::imap::types::{FetchAtt, Flag, Partial, Section, SectionText, StoreOp};

/// Deepest body part number (`1.2.3...`) accepted in a section.
const MAX_PART_DEPTH: usize = 100;

/// An item name: letters, digits and dots (`BODY.PEEK`, `RFC822.SIZE`), upper-cased.
fn item_name(p: &mut Parser, what: &str) -> PResult<String> {
    let n = p.take_while(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
    if n.is_empty() {
        return Err(p.missing(what));
    }
    Ok(String::from_utf8_lossy(n).to_ascii_uppercase())
}

/// RFC 3501 6.4.5: `ALL`, `FAST`, `FULL`, one fetch-att, or a parenthesised list of them.
pub(super) fn fetch_items(p: &mut Parser) -> PResult<Vec<FetchAtt>> {
    use FetchAtt::*;
    if p.eat(b'(') {
        let mut items = Vec::new();
        loop {
            if items.len() >= MAX_ITEMS {
                return Err(format!("more than {MAX_ITEMS} fetch items"));
            }
            let name = item_name(p, "fetch item")?;
            items.push(fetch_att(p, &name)?);
            if p.eat(b')') {
                return Ok(items);
            }
            p.sp("fetch item")?;
        }
    }
    let name = item_name(p, "fetch items")?;
    // RFC 3501 6.4.5: the macros stand alone.
    Ok(match name.as_str() {
        "ALL" => vec![Flags, InternalDate, Rfc822Size, Envelope],
        "FAST" => vec![Flags, InternalDate, Rfc822Size],
        "FULL" => vec![Flags, InternalDate, Rfc822Size, Envelope, Body],
        _ => vec![fetch_att(p, &name)?],
    })
}

/// One RFC 3501 9 fetch-att whose name has been read.
fn fetch_att(p: &mut Parser, name: &str) -> PResult<FetchAtt> {
    use FetchAtt::*;
    Ok(match name {
        "ENVELOPE" => Envelope,
        "FLAGS" => Flags,
        "INTERNALDATE" => InternalDate,
        "RFC822.SIZE" => Rfc822Size,
        "UID" => Uid,
        "BODYSTRUCTURE" => BodyStructure,
        "MODSEQ" => ModSeq,
        "RFC822" => Rfc822,
        "RFC822.HEADER" => Rfc822Header,
        "RFC822.TEXT" => Rfc822Text,
        "BODY" if p.peek() != Some(b'[') => Body,
        "BODY" | "BODY.PEEK" => {
            let section = section(p)?;
            BodySection { peek: name == "BODY.PEEK", section, partial: partial(p)? }
        }
        // RFC 3516 4.2: section-binary = "[" [section-part] "]".
        "BINARY" | "BINARY.PEEK" => {
            let part = binary_part(p)?;
            Binary { peek: name == "BINARY.PEEK", part, partial: partial(p)? }
        }
        "BINARY.SIZE" => BinarySize { part: binary_part(p)? },
        "ALL" | "FAST" | "FULL" => return Err(format!("{name} cannot be inside a list")),
        _ => return Err(format!("unknown fetch item {}", show(name.as_bytes()))),
    })
}

/// RFC 3501 9 section-part = nz-number *("." nz-number); stops before a "." that is not followed
/// by a digit (the section-text).
fn part_numbers(p: &mut Parser) -> PResult<Vec<u32>> {
    let mut part = Vec::new();
    loop {
        if part.len() >= MAX_PART_DEPTH {
            return Err("section part nested too deep".into());
        }
        part.push(p.nz_number("section part")?);
        if !(p.peek() == Some(b'.') && p.peek_at(1).is_some_and(|b| b.is_ascii_digit())) {
            return Ok(part);
        }
        p.eat(b'.');
    }
}

fn binary_part(p: &mut Parser) -> PResult<Vec<u32>> {
    p.expect(b'[', "binary section")?;
    if p.eat(b']') {
        return Ok(Vec::new());
    }
    let part = part_numbers(p)?;
    p.expect(b']', "binary section")?;
    Ok(part)
}

/// RFC 3501 9 section = "[" [section-spec] "]".
fn section(p: &mut Parser) -> PResult<Section> {
    p.expect(b'[', "section")?;
    let mut sec = Section::default();
    if p.eat(b']') {
        return Ok(sec);
    }
    if p.peek().is_some_and(|b| b.is_ascii_digit()) {
        sec.part = part_numbers(p)?;
        if !p.eat(b'.') {
            p.expect(b']', "section")?;
            return Ok(sec);
        }
    }
    let name = p.take_while(|b| b.is_ascii_alphabetic() || b == b'.').to_ascii_uppercase();
    sec.text = Some(match name.as_slice() {
        b"HEADER" => SectionText::Header,
        b"TEXT" => SectionText::Text,
        // RFC 3501 6.4.5: MIME only follows a part number.
        b"MIME" if !sec.part.is_empty() => SectionText::Mime,
        b"HEADER.FIELDS" => SectionText::HeaderFields(header_list(p)?),
        b"HEADER.FIELDS.NOT" => SectionText::HeaderFieldsNot(header_list(p)?),
        _ => return Err(format!("bad section {}", show(&name))),
    });
    p.expect(b']', "section")?;
    Ok(sec)
}

/// RFC 3501 9 header-list = "(" header-fld-name *(SP header-fld-name) ")".
fn header_list(p: &mut Parser) -> PResult<Vec<String>> {
    p.sp("header field list")?;
    p.expect(b'(', "header field list")?;
    let mut names = Vec::new();
    loop {
        if names.len() >= MAX_ITEMS {
            return Err(format!("more than {MAX_ITEMS} header fields"));
        }
        names.push(field_name(p)?);
        if p.eat(b')') {
            return Ok(names);
        }
        p.sp("header field name")?;
    }
}

/// RFC 3501 9 header-fld-name = astring, which must be an RFC 5322 3.6.8 field name
/// (printable US-ASCII except `:`).
pub(super) fn field_name(p: &mut Parser) -> PResult<String> {
    let n = p.astring("header field name")?;
    if n.is_empty() || !n.iter().all(|&b| (0x21..0x7f).contains(&b) && b != b':') {
        return Err(format!("bad header field name {}", show(&n)));
    }
    Ok(String::from_utf8_lossy(&n).into_owned())
}

/// RFC 3501 9 partial = "<" number "." nz-number ">" (optional).
fn partial(p: &mut Parser) -> PResult<Option<Partial>> {
    if !p.eat(b'<') {
        return Ok(None);
    }
    let origin = p.number("partial origin")?;
    p.expect(b'.', "partial")?;
    let length = p.nz_number("partial length")?;
    p.expect(b'>', "partial")?;
    Ok(Some(Partial { origin, length }))
}

/// RFC 3501 9 store-att-flags = (["+" / "-"] "FLAGS" [".SILENT"]) SP (flag-list / (flag *(SP flag))).
pub(super) fn store_args(p: &mut Parser) -> PResult<(StoreOp, bool, Vec<Flag>)> {
    let op = if p.eat(b'+') {
        StoreOp::Add
    } else if p.eat(b'-') {
        StoreOp::Remove
    } else {
        StoreOp::Replace
    };
    let silent = match item_name(p, "store item")?.as_str() {
        "FLAGS" => false,
        "FLAGS.SILENT" => true,
        other => return Err(format!("unknown store item {}", show(other.as_bytes()))),
    };
    p.sp("flags")?;
    if p.peek() == Some(b'(') {
        return Ok((op, silent, p.flag_list()?));
    }
    let mut flags = vec![p.flag(false)?];
    while p.more() {
        if flags.len() >= MAX_ITEMS {
            return Err(format!("more than {MAX_ITEMS} flags"));
        }
        flags.push(p.flag(false)?);
    }
    Ok((op, silent, flags))
}
