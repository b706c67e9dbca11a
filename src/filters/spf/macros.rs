//! SPF macros (RFC 7208 7): parsing a macro-string or domain-spec once, at record parse time, and
//! expanding it against the check's variables: letters s l o d i p h v (c r t only in explanation
//! text), digit and `r` transformers, delimiters, `%%` `%_` `%-`, URL-escaping for upper case.

use std::fmt::Write as _;
use std::net::IpAddr;

/// One piece of a macro-string.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(String),
    Macro { letter: u8, escape: bool, digits: Option<usize>, reverse: bool, delimiters: String },
}

/// A parsed macro-string (RFC 7208 7.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MacroString {
    pieces: Vec<Piece>,
}

/// The values macros expand to; `p` is asked for lazily since it costs DNS lookups (RFC 7208 7.3).
pub trait Vars {
    fn sender(&self) -> &str;
    fn local_part(&self) -> &str;
    fn sender_domain(&self) -> &str;
    fn domain(&self) -> &str;
    fn ip(&self) -> IpAddr;
    fn helo(&self) -> &str;
    fn receiver(&self) -> &str;
    fn validated_domain(&self) -> String;
    fn timestamp(&self) -> u64;
}

impl MacroString {
    /// RFC 7208 7.1: macro-string, or explain-string (SP allowed) when `explain`.
    pub fn parse(s: &str, explain: bool) -> Result<MacroString, String> {
        Ok(MacroString { pieces: parse_pieces(s, explain)?.0 })
    }

    /// RFC 7208 7.1: domain-spec = macro-string domain-end; domain-end = ("." toplabel ["."]) /
    /// macro-expand. Checked on the text as written, not after expansion.
    pub fn domain_spec(s: &str) -> Result<MacroString, String> {
        let (pieces, ends_in_expand) = parse_pieces(s, false)?;
        // RFC 7208 7.2: c, r and t are allowed only in explanation text.
        if pieces.iter().any(|p| matches!(p, Piece::Macro { letter: b'c' | b'r' | b't', .. })) {
            return Err(format!("domain-spec {s:?} uses a macro allowed only in explanations"));
        }
        if !ends_in_expand {
            let tail = match pieces.last() {
                Some(Piece::Literal(t)) => t.as_str(),
                _ => "",
            };
            let tail = tail.strip_suffix('.').unwrap_or(tail);
            let ok = tail.rsplit_once('.').is_some_and(|(_, top)| is_toplabel(top));
            if !ok {
                return Err(format!("domain-spec {s:?} does not end in a top label or macro"));
            }
        }
        Ok(MacroString { pieces })
    }

    /// Expands the string; `explain` allows `c`, `r` and `t` (RFC 7208 7.2). Errors are permerrors.
    pub fn expand(&self, vars: &dyn Vars, explain: bool) -> Result<String, String> {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Literal(t) => out.push_str(t),
                Piece::Macro { letter, escape, digits, reverse, delimiters } => {
                    let value = match letter {
                        b's' => vars.sender().to_string(),
                        b'l' => vars.local_part().to_string(),
                        b'o' => vars.sender_domain().to_string(),
                        b'd' => vars.domain().to_string(),
                        b'i' => dotted_ip(vars.ip()),
                        b'p' => vars.validated_domain(),
                        b'v' => if vars.ip().is_ipv4() { "in-addr" } else { "ip6" }.to_string(),
                        b'h' => vars.helo().to_string(),
                        b'c' if explain => vars.ip().to_string(),
                        b'r' if explain => vars.receiver().to_string(),
                        b't' if explain => vars.timestamp().to_string(),
                        _ => return Err(format!("macro %{{{}}} outside explanation text", *letter as char)),
                    };
                    let value = transform(&value, *digits, *reverse, delimiters);
                    if *escape { url_escape(&value, &mut out) } else { out.push_str(&value) }
                }
            }
        }
        Ok(out)
    }
}

/// The pieces, and whether the string ends in a macro-expand (for domain-end).
fn parse_pieces(s: &str, explain: bool) -> Result<(Vec<Piece>, bool), String> {
    let mut pieces = Vec::new();
    let mut literal = String::new();
    let mut ends_in_expand = false;
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        ends_in_expand = false;
        match c {
            '%' => {
                ends_in_expand = true;
                match chars.next().map(|(_, c)| c) {
                    Some('%') => literal.push('%'),
                    Some('_') => literal.push(' '),
                    Some('-') => literal.push_str("%20"),
                    Some('{') => {
                        let body_start = i + 2;
                        let Some(len) = s[body_start..].find('}') else {
                            return Err("unterminated macro".into());
                        };
                        let body = &s[body_start..body_start + len];
                        for _ in 0..=len {
                            chars.next();
                        }
                        if !literal.is_empty() {
                            pieces.push(Piece::Literal(std::mem::take(&mut literal)));
                        }
                        pieces.push(parse_macro(body)?);
                    }
                    _ => return Err("\"%\" not followed by {, %, _ or -".into()),
                }
            }
            // RFC 7208 7.1: macro-literal = %x21-24 / %x26-7E; explain-string adds SP.
            '!'..='~' => literal.push(c),
            ' ' if explain => literal.push(c),
            _ => return Err(format!("character {c:?} in a macro-string")),
        }
    }
    if !literal.is_empty() {
        pieces.push(Piece::Literal(literal));
    }
    Ok((pieces, ends_in_expand))
}

/// macro-letter transformers *delimiter
fn parse_macro(body: &str) -> Result<Piece, String> {
    let bad = || format!("bad macro %{{{body}}}");
    let mut bytes = body.bytes().peekable();
    let first = bytes.next().ok_or_else(bad)?;
    let letter = first.to_ascii_lowercase();
    if !b"slodiphcrtv".contains(&letter) {
        return Err(bad());
    }
    let mut digits: Option<usize> = None;
    while let Some(d) = bytes.peek().copied().filter(u8::is_ascii_digit) {
        bytes.next();
        digits = Some(digits.unwrap_or(0).saturating_mul(10).saturating_add(usize::from(d - b'0')));
    }
    // RFC 7208 7.1: "If a DIGIT is specified, the value MUST be nonzero."
    if digits == Some(0) {
        return Err(bad());
    }
    let reverse = bytes.next_if(|b| b.eq_ignore_ascii_case(&b'r')).is_some();
    let mut delimiters = String::new();
    for b in bytes {
        if !b".-+,/_=".contains(&b) {
            return Err(bad());
        }
        delimiters.push(b as char);
    }
    Ok(Piece::Macro { letter, escape: first.is_ascii_uppercase(), digits, reverse, delimiters })
}

/// RFC 7208 7.1 toplabel = (*alphanum ALPHA *alphanum) / (1*alphanum "-" *(alphanum / "-") alphanum)
fn is_toplabel(label: &str) -> bool {
    let b = label.as_bytes();
    !b.is_empty()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().any(|c| c.is_ascii_alphabetic() || *c == b'-')
}

/// RFC 7208 7.3: IPv4 dotted quad; IPv6 as 32 dot-separated nibbles.
fn dotted_ip(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(a) => a.to_string(),
        IpAddr::V6(a) => {
            let mut s = String::with_capacity(63);
            for byte in a.octets() {
                for nibble in [byte >> 4, byte & 15] {
                    if !s.is_empty() {
                        s.push('.');
                    }
                    let _ = write!(s, "{nibble:x}");
                }
            }
            s
        }
    }
}

/// RFC 7208 7.3: split on the delimiters (default "."), reverse, keep the rightmost N, join by ".".
fn transform(value: &str, digits: Option<usize>, reverse: bool, delimiters: &str) -> String {
    if digits.is_none() && !reverse && (delimiters.is_empty() || delimiters == ".") {
        return value.to_string();
    }
    let delims = if delimiters.is_empty() { "." } else { delimiters };
    let mut parts: Vec<&str> = value.split(|c| delims.contains(c)).collect();
    if reverse {
        parts.reverse();
    }
    let keep = digits.unwrap_or(parts.len()).min(parts.len());
    parts[parts.len() - keep..].join(".")
}

/// RFC 7208 7.3: upper-case macros are URL-escaped (RFC 3986 2.3 unreserved kept).
fn url_escape(value: &str, out: &mut String) {
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7208 7.4: the sender strong-bad@email.example.com, PTR name mx.example.org.
    struct Example(IpAddr);

    impl Vars for Example {
        fn sender(&self) -> &str {
            "strong-bad@email.example.com"
        }
        fn local_part(&self) -> &str {
            "strong-bad"
        }
        fn sender_domain(&self) -> &str {
            "email.example.com"
        }
        fn domain(&self) -> &str {
            "email.example.com"
        }
        fn ip(&self) -> IpAddr {
            self.0
        }
        fn helo(&self) -> &str {
            "mx.example.org"
        }
        fn receiver(&self) -> &str {
            "mx.example.net"
        }
        fn validated_domain(&self) -> String {
            "mx.example.org".into()
        }
        fn timestamp(&self) -> u64 {
            1_700_000_000
        }
    }

    fn ex(s: &str) -> String {
        let v4 = Example("192.0.2.3".parse().unwrap());
        MacroString::parse(s, true).unwrap().expand(&v4, true).unwrap()
    }

    #[test]
    fn rfc7208_7_4_examples() {
        for (m, want) in [
            ("%{s}", "strong-bad@email.example.com"),
            ("%{o}", "email.example.com"),
            ("%{d}", "email.example.com"),
            ("%{d4}", "email.example.com"),
            ("%{d3}", "email.example.com"),
            ("%{d2}", "example.com"),
            ("%{d1}", "com"),
            ("%{dr}", "com.example.email"),
            ("%{d2r}", "example.email"),
            ("%{l}", "strong-bad"),
            ("%{l-}", "strong.bad"),
            ("%{lr}", "strong-bad"),
            ("%{lr-}", "bad.strong"),
            ("%{l1r-}", "strong"),
            ("%{ir}.%{v}._spf.%{d2}", "3.2.0.192.in-addr._spf.example.com"),
            ("%{lr-}.lp._spf.%{d2}", "bad.strong.lp._spf.example.com"),
            ("%{lr-}.lp.%{ir}.%{v}._spf.%{d2}", "bad.strong.lp.3.2.0.192.in-addr._spf.example.com"),
            ("%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}", "3.2.0.192.in-addr.strong.lp._spf.example.com"),
            ("%{d2}.trusted-domains.example.net", "example.com.trusted-domains.example.net"),
        ] {
            assert_eq!(ex(m), want, "{m}");
        }
        let v6 = Example("2001:db8::cb01".parse().unwrap());
        let got = MacroString::parse("%{ir}.%{v}._spf.%{d2}", false).unwrap().expand(&v6, false).unwrap();
        assert_eq!(
            got,
            "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com"
        );
    }

    #[test]
    fn escapes_upper_case_and_explain_only_letters() {
        assert_eq!(ex("%%%_%-"), "% %20");
        assert_eq!(ex("%{S}"), "strong-bad%40email.example.com");
        assert_eq!(
            ex("%{c} %{r} %{t} %{p} %{h} %{V}"),
            "192.0.2.3 mx.example.net 1700000000 mx.example.org mx.example.org in-addr"
        );
        assert_eq!(ex("%{d2000}|%{dr.-}|%{l+-}"), "email.example.com|com.example.email|strong.bad");
        let v4 = Example("192.0.2.3".parse().unwrap());
        for letter in ["c", "r", "t"] {
            let m = MacroString::parse(&format!("%{{{letter}}}"), false).unwrap();
            assert!(m.expand(&v4, false).is_err());
            assert!(MacroString::domain_spec(&format!("%{{{letter}}}.example.com")).is_err());
        }
    }

    #[test]
    fn syntax_errors() {
        for bad in ["%", "%x", "%{", "%{d", "%{q}", "%{d0}", "%{d1x}", "%{}", "a b", "é"] {
            assert!(MacroString::parse(bad, false).is_err(), "{bad:?}");
        }
        assert!(MacroString::parse("why %{i} not", true).is_ok());
        for good in ["example.com", "%{d}", "a.%{d}.com.", "x.y%%", "foo.%{o}.bar-baz", "_spf.1-2"] {
            assert!(MacroString::domain_spec(good).is_ok(), "{good:?}");
        }
        for bad in
            ["", "com", "example.123", "%{r}.example.com", "x.%{c}", "%{d}.", ".", "example.-com", "a.b-"]
        {
            assert!(MacroString::domain_spec(bad).is_err(), "{bad:?}");
        }
    }
}
