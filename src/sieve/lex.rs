//! The Sieve lexer (RFC 5228 8.1): white space, `#` and `/* */` comments, identifiers, tags,
//! numbers with K/M/G quantifiers, quoted strings with `\` escapes and `text:` multi-line strings
//! with dot-stuffing. Every token carries its line for error messages.

use super::{MAX_STRING, ParseError};

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Tok {
    /// An identifier, lowercased (RFC 5228 8.1: identifiers are case-insensitive).
    Ident(String),
    /// A tag without its colon, lowercased.
    Tag(String),
    Num(u64),
    Str(String),
    /// One of `[ ] ( ) { } , ;`.
    Punct(u8),
}

#[derive(Clone, Debug)]
pub(crate) struct Token {
    pub tok: Tok,
    pub line: u32,
}

fn err(line: u32, message: impl Into<String>) -> ParseError {
    ParseError { line, message: message.into() }
}

/// Splits a script (already checked to be UTF-8) into tokens.
pub(crate) fn lex(src: &str) -> Result<Vec<Token>, ParseError> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let mut line: u32 = 1;
    while let Some(&c) = b.get(i) {
        let start_line = line;
        match c {
            b'\n' => {
                line += 1;
                i += 1;
            }
            b' ' | b'\t' | b'\r' => i += 1,
            b'#' => {
                while b.get(i).is_some_and(|&c| c != b'\n') {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                // RFC 5228 8.1: bracket comments do not nest; an unterminated one is an error.
                i += 2;
                loop {
                    match b.get(i) {
                        None => return Err(err(start_line, "unterminated /* comment")),
                        Some(b'*') if b.get(i + 1) == Some(&b'/') => {
                            i += 2;
                            break;
                        }
                        Some(b'\n') => line += 1,
                        _ => {}
                    }
                    i += 1;
                }
            }
            b'[' | b']' | b'(' | b')' | b'{' | b'}' | b',' | b';' => {
                out.push(Token { tok: Tok::Punct(c), line });
                i += 1;
            }
            b'"' => {
                let (s, next, nl) = quoted(b, i + 1, line)?;
                out.push(Token { tok: Tok::Str(s), line });
                line += nl;
                i = next;
            }
            b':' => {
                let end = ident_end(b, i + 1);
                if end == i + 1 {
                    return Err(err(line, "a tag needs a name after the colon"));
                }
                out.push(Token { tok: Tok::Tag(src[i + 1..end].to_ascii_lowercase()), line });
                i = end;
            }
            b'0'..=b'9' => {
                let end = b[i..].iter().position(|c| !c.is_ascii_digit()).map_or(b.len(), |p| i + p);
                let digits = &src[i..end];
                let mut n: u64 =
                    digits.parse().map_err(|_| err(line, format!("number {digits} is too large")))?;
                i = end;
                // RFC 5228 2.4.1: K, M and G multiply by 2^10, 2^20 and 2^30.
                let shift = match b.get(i).map(u8::to_ascii_uppercase) {
                    Some(b'K') => 10,
                    Some(b'M') => 20,
                    Some(b'G') => 30,
                    _ => 0,
                };
                if shift > 0 {
                    i += 1;
                    n = n
                        .checked_mul(1 << shift)
                        .filter(|&n| n <= u32::MAX as u64 * 1024)
                        .ok_or_else(|| err(line, format!("number {digits} is too large")))?;
                }
                if b.get(i).is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_') {
                    return Err(err(line, format!("bad number {}", &src[end..(i + 1).min(src.len())])));
                }
                out.push(Token { tok: Tok::Num(n), line });
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let end = ident_end(b, i);
                let word = src[i..end].to_ascii_lowercase();
                if word == "text" && b.get(end) == Some(&b':') {
                    let (s, next, nl) = multiline(src, end + 1, line)?;
                    out.push(Token { tok: Tok::Str(s), line });
                    line += nl;
                    i = next;
                } else {
                    out.push(Token { tok: Tok::Ident(word), line });
                    i = end;
                }
            }
            _ => {
                let ch = src[i..].chars().next().unwrap_or('?');
                return Err(err(line, format!("unexpected character {ch:?}")));
            }
        }
    }
    Ok(out)
}

fn ident_end(b: &[u8], i: usize) -> usize {
    b[i..].iter().position(|c| !(c.is_ascii_alphanumeric() || *c == b'_')).map_or(b.len(), |p| i + p)
}

/// A quoted string from just after its opening quote: the text, the index after the closing quote
/// and the number of line breaks inside. RFC 5228 2.4.2: a backslash takes the next character
/// literally (only `\\` and `\"` are meaningful; others lose their backslash, as in Pigeonhole).
fn quoted(b: &[u8], mut i: usize, line: u32) -> Result<(String, usize, u32), ParseError> {
    let mut out = Vec::new();
    let mut nl = 0;
    loop {
        match b.get(i) {
            None => return Err(err(line, "unterminated quoted string")),
            Some(b'"') => break,
            Some(b'\\') => {
                if let Some(&c) = b.get(i + 1) {
                    if c == b'\n' {
                        nl += 1;
                    }
                    out.push(c);
                }
                i += 2;
            }
            Some(&c) => {
                if c == b'\n' {
                    nl += 1;
                }
                out.push(c);
                i += 1;
            }
        }
        if out.len() > MAX_STRING {
            return Err(err(line, format!("string longer than {MAX_STRING} octets")));
        }
    }
    // Cutting only after ASCII bytes keeps the input's UTF-8 intact.
    let s = String::from_utf8(out).map_err(|_| err(line, "string is not UTF-8"))?;
    Ok((s, i + 1, nl))
}

/// A `text:` string from just after the colon (RFC 5228 8.1 multi-line): white space and an optional
/// comment to the end of the line, then lines up to one holding a lone `.`; a line starting with
/// `..` loses one dot. Line breaks inside the string are CRLF (RFC 5228 2.4.2).
fn multiline(src: &str, mut i: usize, line: u32) -> Result<(String, usize, u32), ParseError> {
    let b = src.as_bytes();
    while matches!(b.get(i), Some(b' ' | b'\t')) {
        i += 1;
    }
    match b.get(i) {
        Some(b'#') => {
            while b.get(i).is_some_and(|&c| c != b'\n') {
                i += 1;
            }
        }
        Some(b'\r') if b.get(i + 1) == Some(&b'\n') => i += 1,
        Some(b'\n') => {}
        _ => return Err(err(line, "text: must be followed by a line break")),
    }
    i += 1; // the line feed
    let mut nl = 1;
    let mut out = String::new();
    loop {
        if i >= b.len() {
            return Err(err(line, "unterminated text: string (no line with a lone \".\")"));
        }
        let end = b[i..].iter().position(|&c| c == b'\n').map_or(b.len(), |p| i + p);
        let raw = &src[i..end];
        let l = raw.strip_suffix('\r').unwrap_or(raw);
        i = end + 1;
        nl += 1;
        if l == "." {
            break;
        }
        out.push_str(l.strip_prefix('.').filter(|_| l.starts_with("..")).unwrap_or(l));
        out.push_str("\r\n");
        if out.len() > MAX_STRING {
            return Err(err(line, format!("string longer than {MAX_STRING} octets")));
        }
    }
    Ok((out, i.min(b.len()), nl))
}
