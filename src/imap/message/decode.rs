//! Content-Transfer-Encoding decoders (RFC 2045 6.7 quoted-printable, 6.8 base64) for BINARY
//! (RFC 3516) and SEARCH. Both are lenient, as RFC 2045 asks of decoders: characters outside the
//! alphabet are ignored and malformed `=` sequences are kept as they are.

/// The encodings RFC 3516 can undo.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cte {
    /// 7bit, 8bit, binary or none: the bytes are the content.
    Identity,
    Base64,
    QuotedPrintable,
    Unknown,
}

/// The mechanism a decoder sees (RFC 2045 6.1): the first token of the field, as Dovecot's decoder
/// reads it; no field is 7bit. A field whose first token is no mechanism (`8 bit`, empty) is
/// unknown: BINARY refuses it and SEARCH skips the part, as in Dovecot. (BODYSTRUCTURE shows such
/// a field as the default 7bit: mime::cte_token.)
pub(crate) fn cte(value: Option<&[u8]>) -> Cte {
    let Some(value) = value else { return Cte::Identity };
    let toks = super::lex::lex(value, true);
    let Some(super::lex::Tok::Word(v)) = toks.iter().find(|t| !matches!(t, super::lex::Tok::Comment(_)))
    else {
        return Cte::Unknown;
    };
    let v: &[u8] = v;
    // RFC 2045 6.1: encoding names are case-insensitive.
    if [&b"7bit"[..], b"8bit", b"binary"].iter().any(|e| v.eq_ignore_ascii_case(e)) {
        Cte::Identity
    } else if v.eq_ignore_ascii_case(b"base64") {
        Cte::Base64
    } else if v.eq_ignore_ascii_case(b"quoted-printable") {
        Cte::QuotedPrintable
    } else {
        Cte::Unknown
    }
}

/// RFC 2045 6.8: base64; anything outside the alphabet is skipped, `=` ends the data.
pub(crate) fn base64(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    for &c in s {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => continue,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

/// RFC 2045 6.7: quoted-printable; `=XX` is a byte, `=` before a line break is a soft break, and
/// white space at the end of a line is transport padding.
pub(crate) fn quoted_printable(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    for raw in s.split_inclusive(|&b| b == b'\n') {
        let (line, eol): (&[u8], &[u8]) = if let Some(l) = raw.strip_suffix(b"\r\n") {
            (l, b"\r\n")
        } else if let Some(l) = raw.strip_suffix(b"\n") {
            (l, b"\n")
        } else {
            (raw, b"")
        };
        // Rule 3: trailing white space is not content.
        let line = &line[..line.iter().rposition(|&b| b != b' ' && b != b'\t').map_or(0, |p| p + 1)];
        let (line, soft) = match line.strip_suffix(b"=") {
            Some(l) => (l, true),
            None => (line, false),
        };
        let mut i = 0;
        while let Some(&c) = line.get(i) {
            if c == b'='
                && let (Some(h), Some(l)) =
                    (line.get(i + 1).and_then(|&b| hex(b)), line.get(i + 2).and_then(|&b| hex(b)))
            {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
            out.push(c);
            i += 1;
        }
        if !soft {
            out.extend_from_slice(eol);
        }
    }
    out
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes() {
        assert_eq!(base64(b"aGVsbG 8gd\r\n29ybGQ="), b"hello world");
        assert_eq!(base64(b"AAE="), vec![0, 1]);
        assert_eq!(base64(b"!!"), b"");
        assert_eq!(
            quoted_printable(b"caf=C3=A9 =\r\nau lait  \r\nx=3D=ZZ="),
            "café au lait\r\nx==ZZ".as_bytes()
        );
        assert_eq!(cte(Some(b" Base64 ")), Cte::Base64);
        assert_eq!(cte(None), Cte::Identity);
        assert_eq!(cte(Some(b"x-uuencode")), Cte::Unknown);
        // Checked against Dovecot 2.3 (corpus thirdparty/004.eml): the first token decides.
        assert_eq!(cte(Some(b"8 bit")), Cte::Unknown);
        assert_eq!(cte(Some(b"")), Cte::Unknown);
        assert_eq!(cte(Some(b"\t 7bit")), Cte::Identity);
        assert_eq!(cte(Some(b"base64 junk")), Cte::Base64);
    }
}
