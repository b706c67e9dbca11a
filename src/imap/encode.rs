//! Writing IMAP strings (RFC 3501 4.3, 9 quoted/literal/nstring/astring; RFC 9051 4.3): the one place
//! that decides between an atom, a quoted string and a literal.

/// Appends `s` as a quoted string when it can be one, else as a literal (RFC 3501 4.3: CR, LF, NUL,
/// 8-bit or long text needs a literal; `"` and `\` are escaped in a quoted string).
pub fn string(out: &mut Vec<u8>, s: &[u8]) {
    if s.len() <= 1024 && s.iter().all(|&b| (0x01..0x80).contains(&b) && b != b'\r' && b != b'\n') {
        quoted(out, s);
    } else {
        literal(out, s);
    }
}

/// `"..."` with `"` and `\` escaped; the caller has checked that `s` may be quoted.
pub fn quoted(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    for &b in s {
        if b == b'"' || b == b'\\' {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'"');
}

/// Appends `{n}CRLF` and the bytes (RFC 3501 4.3 literal). With `utf8` (RFC 9051 / UTF8=ACCEPT) a
/// quoted string may hold UTF-8; callers that know that use [`string_utf8`].
pub fn literal(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(format!("{{{}}}\r\n", s.len()).as_bytes());
    out.extend_from_slice(s);
}

/// Like [`string`], but valid UTF-8 may stay quoted (RFC 9051 4.3, RFC 6855 3).
pub fn string_utf8(out: &mut Vec<u8>, s: &[u8]) {
    if s.len() <= 1024
        && std::str::from_utf8(s).is_ok()
        && s.iter().all(|&b| b != 0 && b != b'\r' && b != b'\n')
    {
        quoted(out, s);
    } else {
        literal(out, s);
    }
}

/// `NIL` or a string (RFC 3501 9 nstring).
pub fn nstring(out: &mut Vec<u8>, s: Option<&[u8]>) {
    match s {
        Some(s) => string(out, s),
        None => out.extend_from_slice(b"NIL"),
    }
}

/// An astring: an atom when every byte is an ATOM-CHAR (or `]`), else a string (RFC 3501 9 astring).
pub fn astring(out: &mut Vec<u8>, s: &[u8]) {
    if !s.is_empty() && s.iter().all(|&b| is_astring_char(b)) {
        out.extend_from_slice(s);
    } else {
        string(out, s);
    }
}

/// RFC 3501 9: ATOM-CHAR or resp-specials (`]`).
pub fn is_astring_char(b: u8) -> bool {
    b > 0x20 && b < 0x7f && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(f: fn(&mut Vec<u8>, &[u8]), x: &[u8]) -> String {
        let mut o = Vec::new();
        f(&mut o, x);
        String::from_utf8_lossy(&o).into_owned()
    }

    #[test]
    fn chooses_the_form() {
        assert_eq!(s(string, b"a b"), "\"a b\"");
        assert_eq!(s(string, b"say \"hi\" \\o/"), "\"say \\\"hi\\\" \\\\o/\"");
        assert_eq!(s(string, b"two\r\nlines"), "{10}\r\ntwo\r\nlines");
        assert_eq!(s(string, "ñ".as_bytes()), "{2}\r\nñ");
        assert_eq!(s(string_utf8, "ñ".as_bytes()), "\"ñ\"");
        assert_eq!(s(astring, b"INBOX"), "INBOX");
        assert_eq!(s(astring, b"My Folder"), "\"My Folder\"");
        assert_eq!(s(astring, b""), "\"\"");
        let mut o = Vec::new();
        nstring(&mut o, None);
        assert_eq!(o, b"NIL");
    }
}
