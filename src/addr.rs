//! Mailbox addresses: parsing and normalisation of `local@domain` as SMTP carries them
//! (RFC 5321 4.1.2 Mailbox, 4.1.3 address literals, 4.5.3.1 size limits; RFC 6531 3.3 UTF-8 in both parts).
//!
//! The local part is kept exactly as the sender wrote it (case preserved, RFC 5321 2.4), with quoting
//! removed; the domain is lowercased and a trailing dot is dropped, so addresses compare as mail systems
//! compare them. IDNA (A-label/U-label equivalence) is not done here.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

/// RFC 5321 4.5.3.1.1: the maximum total length of a user name or other local part is 64 octets.
pub const MAX_LOCAL_PART: usize = 64;
/// RFC 5321 4.5.3.1.2: the maximum total length of a domain name or number is 255 octets.
pub const MAX_DOMAIN: usize = 255;
/// RFC 1035 2.3.4: a label is at most 63 octets.
const MAX_LABEL: usize = 63;

/// A syntactically valid mailbox (RFC 5321 `Mailbox`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Address {
    /// Local part with quoting removed.
    local: String,
    /// Lowercase domain without a trailing dot, or a normalised address literal (`[192.0.2.1]`,
    /// `[IPv6:2001:db8::1]`).
    domain: String,
}

/// Why a mailbox did not parse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AddrError {
    Empty,
    /// No `@` after the local part.
    MissingAt,
    /// The local part is neither a dot-string nor a quoted-string.
    BadLocalPart,
    LocalPartTooLong,
    /// The domain is empty or not `sub-domain *("." sub-domain)`.
    BadDomain,
    DomainTooLong,
    /// `[...]` that is neither a valid IPv4 nor `IPv6:` literal.
    BadAddressLiteral,
}

impl fmt::Display for AddrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AddrError::Empty => "empty address",
            AddrError::MissingAt => "missing @domain",
            AddrError::BadLocalPart => "bad local part syntax",
            AddrError::LocalPartTooLong => "local part longer than 64 octets",
            AddrError::BadDomain => "bad domain syntax",
            AddrError::DomainTooLong => "domain longer than 255 octets",
            AddrError::BadAddressLiteral => "bad address literal",
        })
    }
}

impl std::error::Error for AddrError {}

impl Address {
    /// Parses `local@domain` (no angle brackets, no surrounding space).
    pub fn parse(s: &str) -> Result<Address, AddrError> {
        if s.is_empty() {
            return Err(AddrError::Empty);
        }
        let (local, rest) = parse_local(s)?;
        let domain_text = rest.strip_prefix('@').ok_or(AddrError::MissingAt)?;
        let domain = parse_domain(domain_text)?;
        Ok(Address { local, domain })
    }

    /// Builds an address without checking it (used for `postmaster@<hostname>`). The domain is still
    /// normalised (lowercase, no trailing dot).
    pub fn new_unchecked(local: &str, domain: &str) -> Address {
        Address { local: local.to_string(), domain: normalise_domain(domain) }
    }

    /// The local part with quoting removed (`"a b"@x` gives `a b`).
    pub fn local(&self) -> &str {
        &self.local
    }

    /// The lowercase domain, or an address literal in brackets.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// True when neither part needs SMTPUTF8 (RFC 6531).
    pub fn is_ascii(&self) -> bool {
        self.local.is_ascii() && self.domain.is_ascii()
    }

    /// True when the domain is an address literal (`[...]`).
    pub fn is_literal(&self) -> bool {
        self.domain.starts_with('[')
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if is_dot_string(&self.local) {
            f.write_str(&self.local)?;
        } else {
            // RFC 5321 4.1.2: Quoted-string; `"` and `\` are sent as quoted pairs.
            f.write_str("\"")?;
            for c in self.local.chars() {
                if c == '"' || c == '\\' {
                    f.write_str("\\")?;
                }
                write!(f, "{c}")?;
            }
            f.write_str("\"")?;
        }
        write!(f, "@{}", self.domain)
    }
}

/// RFC 5322 3.2.3 atext, extended by RFC 6531 3.3 with UTF8-non-ascii.
fn is_atext(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c) || !c.is_ascii() && !c.is_control()
}

/// RFC 5321 4.1.2 Dot-string = Atom *("." Atom).
fn is_dot_string(s: &str) -> bool {
    !s.is_empty() && s.split('.').all(|atom| !atom.is_empty() && atom.chars().all(is_atext))
}

/// Reads the local part from the start of `s`; returns it unquoted and the rest (starting at `@`).
fn parse_local(s: &str) -> Result<(String, &str), AddrError> {
    let (local, wire_len, rest) = if let Some(body) = s.strip_prefix('"') {
        // RFC 5321 4.1.2: qtextSMTP = %d32-33 / %d35-91 / %d93-126, quoted-pairSMTP = "\" %d32-126;
        // RFC 6531 3.3 adds UTF8-non-ascii to qtextSMTP.
        let mut out = String::new();
        let mut chars = body.char_indices();
        let end = loop {
            match chars.next() {
                None => return Err(AddrError::BadLocalPart),
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, c)) if (' '..='~').contains(&c) => out.push(c),
                    _ => return Err(AddrError::BadLocalPart),
                },
                Some((_, c)) if (' '..='~').contains(&c) || !c.is_ascii() && !c.is_control() => out.push(c),
                Some(_) => return Err(AddrError::BadLocalPart),
            }
        };
        (out, end + 2, &body[end + 1..])
    } else {
        let end = s.find('@').unwrap_or(s.len());
        let local = &s[..end];
        if local.is_empty() {
            return Err(if end == s.len() { AddrError::MissingAt } else { AddrError::BadLocalPart });
        }
        if !is_dot_string(local) {
            return Err(AddrError::BadLocalPart);
        }
        (local.to_string(), end, &s[end..])
    };
    if wire_len > MAX_LOCAL_PART {
        return Err(AddrError::LocalPartTooLong);
    }
    Ok((local, rest))
}

fn normalise_domain(d: &str) -> String {
    d.strip_suffix('.').unwrap_or(d).to_lowercase()
}

/// RFC 5321 4.1.2 Domain / address-literal; returns the normalised form (lowercase, no trailing dot,
/// canonical address literal).
pub fn parse_domain(d: &str) -> Result<String, AddrError> {
    if d.len() > MAX_DOMAIN {
        return Err(AddrError::DomainTooLong);
    }
    if let Some(lit) = d.strip_prefix('[') {
        return parse_literal(lit.strip_suffix(']').ok_or(AddrError::BadAddressLiteral)?);
    }
    // A single trailing dot (absolute name) is tolerated and dropped.
    let name = d.strip_suffix('.').unwrap_or(d);
    if name.is_empty() || !name.split('.').all(is_subdomain) {
        return Err(AddrError::BadDomain);
    }
    Ok(name.to_lowercase())
}

/// RFC 5321 sub-domain = Let-dig [Ldh-str]; RFC 6531 3.3 allows a U-label, approximated here as
/// "any non-ASCII character counts as a letter".
fn is_subdomain(label: &str) -> bool {
    let let_dig =
        |c: char| c.is_ascii_alphanumeric() || !c.is_ascii() && !c.is_control() && !c.is_whitespace();
    !label.is_empty()
        && label.len() <= MAX_LABEL
        && !label.starts_with('-')
        && !label.ends_with('-')
        && label.chars().all(|c| let_dig(c) || c == '-')
}

/// RFC 5321 4.1.3: IPv4-address-literal / IPv6-address-literal. General-address-literal tags are not
/// standardised beyond IPv6, so they are refused.
fn parse_literal(lit: &str) -> Result<String, AddrError> {
    if let Some(v6) = lit.get(..5).filter(|tag| tag.eq_ignore_ascii_case("IPv6:")).map(|_| &lit[5..]) {
        let ip: Ipv6Addr = v6.parse().map_err(|_| AddrError::BadAddressLiteral)?;
        return Ok(format!("[IPv6:{ip}]"));
    }
    // Ipv4Addr::from_str takes exactly four decimal octets without leading zeros (Snum).
    let ip: Ipv4Addr = lit.parse().map_err(|_| AddrError::BadAddressLiteral)?;
    Ok(format!("[{ip}]"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_addresses() {
        // (input, local, domain, display)
        let cases = [
            ("user@example.com", "user", "example.com", "user@example.com"),
            ("User.Name+tag@Example.COM", "User.Name+tag", "example.com", "User.Name+tag@example.com"),
            ("u@example.com.", "u", "example.com", "u@example.com"),
            ("\"a b\"@x.org", "a b", "x.org", "\"a b\"@x.org"),
            ("\"plain\"@x.org", "plain", "x.org", "plain@x.org"),
            ("\"a\\\"b\\\\c\"@x", "a\"b\\c", "x", "\"a\\\"b\\\\c\"@x"),
            ("\"\"@x", "", "x", "\"\"@x"),
            ("\"a@b\"@x", "a@b", "x", "\"a@b\"@x"),
            ("\"a..b\"@x", "a..b", "x", "\"a..b\"@x"),
            ("!#$%&'*+-/=?^_`{|}~@x", "!#$%&'*+-/=?^_`{|}~", "x", "!#$%&'*+-/=?^_`{|}~@x"),
            ("u@[192.0.2.1]", "u", "[192.0.2.1]", "u@[192.0.2.1]"),
            ("u@[ipv6:2001:DB8:0:0::1]", "u", "[IPv6:2001:db8::1]", "u@[IPv6:2001:db8::1]"),
            ("u@a-b.c0", "u", "a-b.c0", "u@a-b.c0"),
            ("jörg@bücher.de", "jörg", "bücher.de", "jörg@bücher.de"),
            ("用户@例子.广告", "用户", "例子.广告", "用户@例子.广告"),
            ("Ü@ÜBER.de", "Ü", "über.de", "Ü@über.de"),
        ];
        for (input, local, domain, shown) in cases {
            let a = Address::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(a.local(), local, "{input}");
            assert_eq!(a.domain(), domain, "{input}");
            assert_eq!(a.to_string(), shown, "{input}");
            // Display output parses back to the same address.
            assert_eq!(Address::parse(&a.to_string()), Ok(a.clone()), "{input}");
        }
    }

    #[test]
    fn invalid_addresses() {
        let long_local = format!("{}@x", "a".repeat(65));
        let long_label = format!("u@{}.com", "a".repeat(64));
        let long_domain = format!("u@{}", ["abcdefghi"; 26].join("."));
        let cases: Vec<(&str, AddrError)> = vec![
            ("", AddrError::Empty),
            ("user", AddrError::MissingAt),
            ("@x.org", AddrError::BadLocalPart),
            ("a..b@x", AddrError::BadLocalPart),
            (".a@x", AddrError::BadLocalPart),
            ("a.@x", AddrError::BadLocalPart),
            ("a b@x", AddrError::BadLocalPart),
            ("a\"b@x", AddrError::BadLocalPart),
            ("\"unterminated@x", AddrError::BadLocalPart),
            ("\"a\"b@x", AddrError::MissingAt),
            ("\"a\x01\"@x", AddrError::BadLocalPart),
            ("\"a\\\x01\"@x", AddrError::BadLocalPart),
            ("a\0@x", AddrError::BadLocalPart),
            (&long_local, AddrError::LocalPartTooLong),
            ("u@", AddrError::BadDomain),
            ("u@.", AddrError::BadDomain),
            ("u@a..b", AddrError::BadDomain),
            ("u@-a.b", AddrError::BadDomain),
            ("u@a-.b", AddrError::BadDomain),
            ("u@a_b.c", AddrError::BadDomain),
            ("u@a b", AddrError::BadDomain),
            ("u@x@y", AddrError::BadDomain),
            ("u@x.com..", AddrError::BadDomain),
            (&long_label, AddrError::BadDomain),
            (&long_domain, AddrError::DomainTooLong),
            ("u@[1.2.3]", AddrError::BadAddressLiteral),
            ("u@[1.2.3.04]", AddrError::BadAddressLiteral),
            ("u@[1.2.3.256]", AddrError::BadAddressLiteral),
            ("u@[IPv6:zz::1]", AddrError::BadAddressLiteral),
            ("u@[tag:content]", AddrError::BadAddressLiteral),
            ("u@[1.2.3.4", AddrError::BadAddressLiteral),
        ];
        for (input, err) in cases {
            assert_eq!(Address::parse(input), Err(err), "{input:?}");
        }
    }

    #[test]
    fn limits_are_inclusive() {
        let local64 = format!("{}@x", "a".repeat(64));
        assert!(Address::parse(&local64).is_ok());
        // 64 octets on the wire including the quotes.
        let quoted = format!("\"{}\"@x", "a".repeat(62));
        assert!(Address::parse(&quoted).is_ok());
        let quoted = format!("\"{}\"@x", "a".repeat(63));
        assert_eq!(Address::parse(&quoted), Err(AddrError::LocalPartTooLong));
        let label63 = format!("u@{}.com", "a".repeat(63));
        assert!(Address::parse(&label63).is_ok());
    }

    #[test]
    fn ascii_and_unchecked() {
        assert!(Address::parse("a@b.c").unwrap().is_ascii());
        assert!(!Address::parse("é@b.c").unwrap().is_ascii());
        assert!(!Address::parse("a@é.c").unwrap().is_ascii());
        let pm = Address::new_unchecked("postmaster", "Mail.Example.ORG.");
        assert_eq!(pm.domain(), "mail.example.org");
        assert_eq!(pm.to_string(), "postmaster@mail.example.org");
        assert!(Address::parse("u@[192.0.2.1]").unwrap().is_literal());
    }
}
