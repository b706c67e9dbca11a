//! A lenient lexer for structured header fields: RFC 5322 3.2 (atoms, quoted strings, comments,
//! domain literals) for addresses, and RFC 2045 5.1 (tokens and tspecials) for Content-Type and
//! Content-Disposition. It never fails: unterminated quotes and comments run to the end.

/// One lexical unit of a structured field value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Tok<'a> {
    /// A run of bytes that are neither specials, white space nor controls (8-bit bytes included:
    /// RFC 6532 allows UTF-8 there, and raw 8-bit is common).
    Word(&'a [u8]),
    /// A quoted string with the quotes and quoted-pairs removed (RFC 5322 3.2.4), unfolded.
    Quoted(Vec<u8>),
    /// A comment's text without the outer parentheses (RFC 5322 3.2.2).
    Comment(Vec<u8>),
    /// `[...]` including the brackets (RFC 5322 3.4.1 domain-literal); only in address mode.
    DomainLiteral(&'a [u8]),
    Special(u8),
}

/// RFC 5322 3.2.3 specials, less `.` (kept inside words: dot-atoms and obs-phrase) and `"`, `(`,
/// `[` (handled as their own tokens).
const SPECIALS_5322: &[u8] = b")<>]:;@\\,";
/// RFC 2045 5.1 tspecials, less `"` and `(`.
const SPECIALS_MIME: &[u8] = b")<>@,;:\\/[]?=";

/// Splits `value` into tokens. `mime` selects the RFC 2045 tspecials instead of RFC 5322's.
pub(crate) fn lex(value: &[u8], mime: bool) -> Vec<Tok<'_>> {
    let specials = if mime { SPECIALS_MIME } else { SPECIALS_5322 };
    let mut toks = Vec::new();
    let mut i = 0;
    while let Some(&b) = value.get(i) {
        match b {
            b' ' | b'\t' | b'\r' | b'\n' => i += 1,
            b'"' => {
                let (s, next) = quoted(value, i + 1);
                toks.push(Tok::Quoted(s));
                i = next;
            }
            b'(' => {
                let (s, next) = comment(value, i + 1);
                toks.push(Tok::Comment(s));
                i = next;
            }
            b'[' if !mime => {
                let end = value[i..].iter().position(|&c| c == b']').map_or(value.len(), |p| i + p + 1);
                toks.push(Tok::DomainLiteral(&value[i..end]));
                i = end;
            }
            _ if specials.contains(&b) || b < 0x20 || b == 0x7f => {
                toks.push(Tok::Special(b));
                i += 1;
            }
            _ => {
                let start = i;
                while let Some(&c) = value.get(i) {
                    if c <= b' '
                        || c == 0x7f
                        || c == b'"'
                        || c == b'('
                        || specials.contains(&c)
                        || (!mime && c == b'[')
                    {
                        break;
                    }
                    i += 1;
                }
                toks.push(Tok::Word(&value[start..i]));
            }
        }
    }
    toks
}

/// The body of a quoted string starting just after the opening quote: (unescaped text, index after
/// the closing quote).
fn quoted(value: &[u8], mut i: usize) -> (Vec<u8>, usize) {
    let mut s = Vec::new();
    while let Some(&c) = value.get(i) {
        i += 1;
        match c {
            b'"' => return (s, i),
            b'\\' => {
                if let Some(&n) = value.get(i) {
                    s.push(n);
                    i += 1;
                }
            }
            // RFC 5322 3.2.4: CRLF inside a quoted string is folding, not content.
            b'\r' | b'\n' => {}
            _ => s.push(c),
        }
    }
    (s, i)
}

/// A comment starting just after its `(`: (text, index after the matching `)`). Nested comments
/// stay in the text with their parentheses.
fn comment(value: &[u8], mut i: usize) -> (Vec<u8>, usize) {
    let mut s = Vec::new();
    let mut depth = 1usize;
    while let Some(&c) = value.get(i) {
        i += 1;
        match c {
            b'(' => {
                depth += 1;
                s.push(c);
            }
            b')' => {
                depth -= 1;
                if depth == 0 {
                    return (s, i);
                }
                s.push(c);
            }
            b'\\' => {
                if let Some(&n) = value.get(i) {
                    s.push(n);
                    i += 1;
                }
            }
            b'\r' | b'\n' => {}
            _ => s.push(c),
        }
    }
    (s, i)
}

#[cfg(test)]
mod tests {
    use super::Tok::*;
    use super::*;

    #[test]
    fn lexes_addresses_and_mime() {
        assert_eq!(
            lex(b"\"Joe \\\"Q\\\" Public\" <joe.q@[1.2.3.4]> (home (x))", false),
            vec![
                Quoted(b"Joe \"Q\" Public".to_vec()),
                Special(b'<'),
                Word(b"joe.q"),
                Special(b'@'),
                DomainLiteral(b"[1.2.3.4]"),
                Special(b'>'),
                Comment(b"home (x)".to_vec()),
            ]
        );
        assert_eq!(
            lex(b"text/plain; charset=\"utf-8\"", true),
            vec![
                Word(b"text"),
                Special(b'/'),
                Word(b"plain"),
                Special(b';'),
                Word(b"charset"),
                Special(b'='),
                Quoted(b"utf-8".to_vec()),
            ]
        );
        // Unterminated constructs run to the end rather than fail.
        assert_eq!(lex(b"\"abc", false), vec![Quoted(b"abc".to_vec())]);
        assert_eq!(lex(b"(abc", false), vec![Comment(b"abc".to_vec())]);
        assert_eq!(lex(b"[abc", false), vec![DomainLiteral(b"[abc")]);
    }
}
