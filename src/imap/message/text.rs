//! What SEARCH compares (RFC 3501 6.4.4, RFC 9051 6.4.4): header values decoded from RFC 2047
//! encoded words, body text decoded from its transfer encoding and charset to UTF-8 (through the
//! mailparse crate), and the Date: field as a calendar date.

use super::mime::{ContentType, fields, first, unfold};
use super::tree::{Kind, Part, parse};
use crate::imap::types::Date;

/// Decoded (RFC 2047), unfolded values of every field called `name` (case-insensitive).
pub fn header_values(header: &[u8], name: &str) -> Vec<String> {
    fields(header)
        .filter(|f| f.name.eq_ignore_ascii_case(name.as_bytes()))
        .map(|f| decode_field(f.raw))
        .collect()
}

/// The fields that hold addresses (RFC 5322 3.6.2, 3.6.3).
const ADDRESS_FIELDS: [&str; 6] = ["From", "Sender", "Reply-To", "To", "Cc", "Bcc"];

/// What a header key searches in field `name`: its decoded value and, in an address field, also
/// each address as its owner wrote it without comments or folding (`john(the man)@example.org`
/// is found as `john@example.org`), with display names and group names decoded (RFC 2047).
pub fn search_values(header: &[u8], name: &str) -> Vec<String> {
    if !ADDRESS_FIELDS.iter().any(|f| f.eq_ignore_ascii_case(name)) {
        return header_values(header, name);
    }
    fields(header)
        .filter(|f| f.name.eq_ignore_ascii_case(name.as_bytes()))
        .map(|f| match mailparse::parse_header(f.raw) {
            Ok((h, _)) => {
                let mut v = h.get_value();
                if let Ok(list) = mailparse::addrparse_header(&h) {
                    for a in list.iter() {
                        let singles = match a {
                            mailparse::MailAddr::Single(s) => std::slice::from_ref(s),
                            mailparse::MailAddr::Group(g) => {
                                v.push('\n');
                                v.push_str(&g.group_name);
                                g.addrs.as_slice()
                            }
                        };
                        for s in singles {
                            v.push('\n');
                            if let Some(n) = &s.display_name {
                                v.push_str(n);
                                v.push(' ');
                            }
                            v.push_str(&without_comments(&s.addr));
                        }
                    }
                }
                v
            }
            Err(_) => String::from_utf8_lossy(f.raw).into_owned(),
        })
        .collect()
}

/// An address with comments and white space outside quoted strings removed (RFC 5322 3.2.2 CFWS).
fn without_comments(addr: &str) -> String {
    let (mut out, mut depth, mut quoted, mut escaped) =
        (String::with_capacity(addr.len()), 0usize, false, false);
    for c in addr.chars() {
        match c {
            _ if escaped => {
                escaped = false;
                if depth == 0 {
                    out.push(c);
                }
            }
            '\\' => {
                escaped = true;
                if depth == 0 {
                    out.push(c);
                }
            }
            '"' if depth == 0 => {
                quoted = !quoted;
                out.push(c);
            }
            '(' if !quoted => depth += 1,
            ')' if !quoted && depth > 0 => depth -= 1,
            c if depth > 0 || (!quoted && c.is_whitespace()) => {}
            c => out.push(c),
        }
    }
    out
}

/// Every field as `Name: decoded value`, one a line: what TEXT searches in the header.
pub fn header_text(header: &[u8]) -> String {
    let mut s = String::new();
    for f in fields(header) {
        s.push_str(&String::from_utf8_lossy(f.name));
        s.push_str(": ");
        s.push_str(&decode_field(f.raw));
        s.push('\n');
    }
    s
}

/// A whole field (`Name: value`, as written) unfolded and decoded (RFC 2047), its value only.
pub(crate) fn decode_field(raw: &[u8]) -> String {
    match mailparse::parse_header(raw) {
        Ok((h, _)) => h.get_value(),
        Err(_) => String::from_utf8_lossy(raw).into_owned(),
    }
}

/// The text of a message's body for BODY/TEXT: each text or message/* part (and the header and
/// text of each encapsulated message) decoded to UTF-8, concatenated with line breaks. Other
/// attachments are not searched.
pub fn body_text(msg: &[u8]) -> String {
    let mut out = String::new();
    collect(&parse(msg), msg, &mut out);
    out
}

fn collect(p: &Part, msg: &[u8], out: &mut String) {
    match &p.kind {
        Kind::Multipart(list) => {
            for child in list {
                collect(child, msg, out);
            }
        }
        Kind::Message(inner) => {
            out.push_str(&header_text(&inner.head));
            collect(inner, msg, out);
        }
        // Text, and message/* that is not parsed as a message (message/partial, delivery-status,
        // an encoded message/rfc822): Dovecot searches those bodies as text too.
        Kind::Leaf if p.ct.is_type("text") || p.ct.is_type("message") => {
            out.push_str(&decode_text(p.mime_header(), msg.get(p.body.clone()).unwrap_or_default(), &p.ct));
            out.push('\n');
        }
        Kind::Leaf => {}
    }
}

/// Undoes the transfer encoding, then the charset (mailparse knows the charsets; unknown ones and
/// invalid bytes fall back to a lossy reading).
pub(super) fn decode_text(header: &[u8], body: &[u8], ct: &ContentType) -> String {
    use super::decode::{Cte, base64, cte, quoted_printable};
    let raw = match cte(first(header, "Content-Transfer-Encoding")) {
        Cte::Base64 => base64(body),
        Cte::QuotedPrintable => quoted_printable(body),
        Cte::Identity => body.to_vec(),
        // An encoding buzon cannot undo: the text is unknown, and not searched (Dovecot too).
        Cte::Unknown => return String::new(),
    };
    let charset = ct.param("charset").map(|c| String::from_utf8_lossy(c).into_owned());
    match charset {
        Some(cs) if !cs.eq_ignore_ascii_case("utf-8") && !cs.eq_ignore_ascii_case("us-ascii") => {
            // Hand mailparse a one-part message in the charset, already transfer-decoded.
            let mut m = format!(
                "Content-Type: text/plain; charset=\"{}\"\r\n\r\n",
                cs.replace(['"', '\\', '\r', '\n'], "")
            )
            .into_bytes();
            m.extend_from_slice(&raw);
            match mailparse::parse_mail(&m).and_then(|p| p.get_body()) {
                Ok(s) => s,
                Err(_) => String::from_utf8_lossy(&raw).into_owned(),
            }
        }
        _ => String::from_utf8_lossy(&raw).into_owned(),
    }
}

/// The date of the first Date: field as written (RFC 5322 3.3, the obsolete forms of 4.3 too),
/// time and zone disregarded as SENTBEFORE/SENTON/SENTSINCE want (RFC 3501 6.4.4). The time must
/// be there and valid, or the field is not a date (None), as in Dovecot.
pub fn sent_date(header: &[u8]) -> Option<Date> {
    let v = unfold(first(header, "Date")?);
    let v = String::from_utf8_lossy(&v);
    let mut words = v
        .split(|c: char| c.is_whitespace() || c == ',' || c == '-')
        .filter(|w| !w.is_empty())
        // A leading day name is optional.
        .skip_while(|w| !w.starts_with(|c: char| c.is_ascii_digit()));
    let day: u8 = words.next()?.parse().ok()?;
    let month = month(words.next()?)?;
    let year: u16 = words.next()?.parse().ok()?;
    // RFC 5322 3.3: a time of day must follow (`hh:mm[:ss]`); a date without one is not a date.
    let time = words.next()?;
    let mut hms = time.split(':');
    let valid =
        |p: Option<&str>, max: u8| p.is_some_and(|p| p.len() == 2 && p.parse::<u8>().is_ok_and(|v| v <= max));
    if !valid(hms.next(), 23) || !valid(hms.next(), 59) || hms.next().is_some_and(|s| !valid(Some(s), 60)) {
        return None;
    }
    // RFC 5322 4.3: two-digit years are 19xx from 50, 20xx below; three digits add 1900.
    let year = match year {
        0..=49 => year + 2000,
        50..=999 => year + 1900,
        _ => year,
    };
    ((1..=31).contains(&day)).then_some(Date { year, month, day })
}

/// `Jan`..`Dec` (any case, longer names accepted) as 1..=12.
pub(crate) fn month(s: &str) -> Option<u8> {
    const MONTHS: [&str; 12] =
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
    let p = s.get(..3)?.to_ascii_lowercase();
    MONTHS.iter().position(|m| *m == p).map(|i| i as u8 + 1)
}

/// RFC 3501 6.4.4: case-insensitive substring match; `needle` must already be lower-cased
/// (see [`fold`]).
pub fn contains(haystack: &str, needle: &str) -> bool {
    needle.is_empty() || fold(haystack).contains(needle)
}

/// The case folding used for matching.
pub fn fold(s: &str) -> String {
    s.to_lowercase()
}
