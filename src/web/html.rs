//! The webmail's plain escaping writers: HTML escaping for text and attribute values, a text/plain
//! body turned into HTML with its http, https and mailto URLs made links, and percent-encoding of
//! URL query values (RFC 3986 2.3: unreserved characters stay, every other byte of the UTF-8 is
//! `%XX`). Every value a page shows passes through here.

use std::fmt;

/// `s` escaped for HTML text and for quoted attribute values: `& < > " '`.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / 8);
    push_escaped(&mut out, s);
    out
}

/// Appends `s` to `out`, escaped as by [`escape`].
pub fn push_escaped(out: &mut String, s: &str) {
    let mut done = 0;
    for (i, b) in s.bytes().enumerate() {
        if let Some(rep) = entity(b) {
            // The five are ASCII, so `i` is a char boundary.
            out.push_str(&s[done..i]);
            out.push_str(rep);
            done = i + 1;
        }
    }
    out.push_str(&s[done..]);
}

/// A value that formats escaped as by [`escape`], for `write!(page, "<b>{}</b>", Esc(name))`.
pub struct Esc<'a>(pub &'a str);

impl fmt::Display for Esc<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0;
        let mut done = 0;
        for (i, b) in s.bytes().enumerate() {
            if let Some(rep) = entity(b) {
                f.write_str(&s[done..i])?;
                f.write_str(rep)?;
                done = i + 1;
            }
        }
        f.write_str(&s[done..])
    }
}

/// The character reference that stands for `b` in HTML, if `b` needs one.
fn entity(b: u8) -> Option<&'static str> {
    Some(match b {
        b'&' => "&amp;",
        b'<' => "&lt;",
        b'>' => "&gt;",
        b'"' => "&quot;",
        b'\'' => "&#39;",
        _ => return None,
    })
}

/// A query value percent-encoded (RFC 3986 2.1, 2.3): `A-Z a-z 0-9 - . _ ~` kept, every other
/// byte of the UTF-8 as `%XX`. The result needs no further HTML escaping.
pub fn url(s: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
        }
    }
    out
}

/// The schemes that become links; nothing else does (no `javascript:`, no `data:`).
const SCHEMES: [&str; 3] = ["https://", "http://", "mailto:"];

/// A text/plain body as HTML: escaped, with its http://, https:// and mailto: URLs turned into
/// links that open in a new tab without a referrer. Punctuation ending a sentence after a URL
/// (`.` `,` `)` ...) stays outside the link.
pub fn linkify(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    let bytes = text.as_bytes();
    let (mut i, mut done) = (0, 0);
    while i < bytes.len() {
        match url_at(text, i) {
            Some(len) => {
                push_escaped(&mut out, &text[done..i]);
                let u = &text[i..i + len];
                out.push_str("<a href=\"");
                push_escaped(&mut out, u);
                out.push_str("\" rel=\"noopener noreferrer\" target=\"_blank\">");
                push_escaped(&mut out, u);
                out.push_str("</a>");
                i += len;
                done = i;
            }
            None => i += 1,
        }
    }
    push_escaped(&mut out, &text[done..]);
    out
}

/// The length of the URL starting at byte `i` of `text`, if one does. A URL starts with one of
/// [`SCHEMES`] (any case) not glued to a preceding letter or digit, runs to white space, a
/// control character or `< > "`, and loses trailing sentence punctuation and unbalanced closing
/// brackets.
fn url_at(text: &str, i: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    if !matches!(bytes.get(i), Some(b'h' | b'H' | b'm' | b'M')) {
        return None;
    }
    if i > 0 && bytes[i - 1].is_ascii_alphanumeric() {
        return None;
    }
    let scheme = SCHEMES
        .iter()
        .find(|s| bytes.get(i..i + s.len()).is_some_and(|b| b.eq_ignore_ascii_case(s.as_bytes())))?;
    // The scheme is ASCII, so `i` and `i + scheme.len()` are char boundaries.
    let rest = &text[i + scheme.len()..];
    let mut end = rest
        .find(|c: char| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | '"'))
        .unwrap_or(rest.len());
    while let Some(c) = rest[..end].chars().next_back() {
        let strip = match c {
            '.' | ',' | ';' | ':' | '!' | '?' | '\'' | '*' => true,
            ')' => unbalanced(&rest[..end], '(', ')'),
            ']' => unbalanced(&rest[..end], '[', ']'),
            '}' => unbalanced(&rest[..end], '{', '}'),
            _ => false,
        };
        if !strip {
            break;
        }
        end -= c.len_utf8();
    }
    let body = &rest[..end];
    // Something must follow the scheme: a host after `//`, an address after `mailto:`.
    if body.is_empty() || body.starts_with('/') {
        return None;
    }
    Some(scheme.len() + end)
}

/// More `close` than `open` in `s`: its last `close` belongs to the text around it.
fn unbalanced(s: &str, open: char, close: char) -> bool {
    s.matches(close).count() > s.matches(open).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(u: &str) -> String {
        format!("<a href=\"{u}\" rel=\"noopener noreferrer\" target=\"_blank\">{u}</a>")
    }

    #[test]
    fn escapes_the_five() {
        assert_eq!(
            escape("<script>alert(1)</script>\"'&"),
            "&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;&amp;"
        );
        assert_eq!(escape("Grüße, 日本"), "Grüße, 日本");
        let mut s = String::from("x");
        push_escaped(&mut s, "a&b");
        assert_eq!(s, "xa&amp;b");
        assert_eq!(format!("<{}>", Esc("\"Ana\" & <co>")), "<&quot;Ana&quot; &amp; &lt;co&gt;>");
    }

    #[test]
    fn url_encodes_all_but_unreserved() {
        assert_eq!(url("Archive/2025"), "Archive%2F2025");
        assert_eq!(url("A & B"), "A%20%26%20B");
        assert_eq!(url("a-b.c_d~e"), "a-b.c_d~e");
        assert_eq!(url("é+=?#\"<"), "%C3%A9%2B%3D%3F%23%22%3C");
    }

    #[test]
    fn links_urls_and_leaves_punctuation_out() {
        let u = "https://example.org/a";
        assert_eq!(linkify(&format!("see {u}.")), format!("see {}.", link(u)));
        assert_eq!(linkify(&format!("{u}, then")), format!("{}, then", link(u)));
        assert_eq!(linkify(&format!("(at {u})")), format!("(at {})", link(u)));
        assert_eq!(linkify(&format!("<{u}>")), format!("&lt;{}&gt;", link(u)));
        assert_eq!(linkify(&format!("\"{u}\"")), format!("&quot;{}&quot;", link(u)));
        let w = "http://en.example.org/wiki/Mox_(mail)";
        assert_eq!(linkify(&format!("({w})")), format!("({})", link(w)));
        let m = "mailto:ana@example.org";
        assert_eq!(linkify(&format!("write to {m}!\n")), format!("write to {}!\n", link(m)));
        assert_eq!(linkify("HTTPS://X.ORG"), link("HTTPS://X.ORG"));
    }

    #[test]
    fn escapes_ampersands_in_urls_once() {
        let out = linkify("https://x.org/?a=1&b=<2>");
        assert_eq!(out, format!("{}&lt;2&gt;", link("https://x.org/?a=1&amp;b=")));
        assert!(!out.contains("&amp;amp;"));
    }

    #[test]
    fn never_links_other_schemes() {
        for t in [
            "javascript:alert(1)",
            "JavaScript:alert(document.cookie)",
            "data:text/html,<script>alert(1)</script>",
            "xhttp://glued.example",
            "http://",
            "https:///path",
            "mailto:",
            "vbscript:msgbox",
        ] {
            let out = linkify(t);
            assert!(!out.contains("<a"), "{t} -> {out}");
            assert_eq!(out, escape(t));
        }
        // A scheme inside another only links from the allowed scheme on.
        let out = linkify("javascript:http://x.org");
        assert_eq!(out, format!("javascript:{}", link("http://x.org")));
        assert!(!out.contains("href=\"javascript"));
    }

    #[test]
    fn keeps_text_and_non_ascii_intact() {
        assert_eq!(linkify(""), "");
        assert_eq!(linkify("a < b & c"), "a &lt; b &amp; c");
        let u = "https://例え.jp/パス";
        assert_eq!(linkify(&format!("é{u} x")), format!("é{} x", link(u)));
        assert_eq!(linkify("mhttp"), "mhttp");
        assert_eq!(linkify("trailing h"), "trailing h");
    }
}
