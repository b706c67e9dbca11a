//! SPF record syntax (RFC 7208 4.5, 4.6, 5, 6, 7.1, 12): choosing the record among a name's TXT
//! records and parsing it, every mechanism, qualifier, dual CIDR length and modifier, into a
//! [`Record`]. Any syntax error anywhere is a permerror (RFC 7208 4.6); nothing here does DNS.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::macros::MacroString;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qualifier {
    Pass,
    Fail,
    SoftFail,
    Neutral,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mechanism {
    All,
    Include(MacroString),
    /// `a[:domain][/v4][//v6]`
    A {
        domain: Option<MacroString>,
        v4: u8,
        v6: u8,
    },
    Mx {
        domain: Option<MacroString>,
        v4: u8,
        v6: u8,
    },
    Ptr(Option<MacroString>),
    Ip4(Ipv4Addr, u8),
    Ip6(Ipv6Addr, u8),
    Exists(MacroString),
}

impl Mechanism {
    /// RFC 7208 4.6.4: the mechanisms that cost a DNS query against the limit of 10.
    pub fn queries_dns(&self) -> bool {
        !matches!(self, Mechanism::All | Mechanism::Ip4(..) | Mechanism::Ip6(..))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    pub qualifier: Qualifier,
    pub mechanism: Mechanism,
}

/// A parsed SPF record: its directives in order and the two modifiers RFC 7208 6 defines
/// (unknown modifiers are checked for syntax and dropped, 6).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Record {
    pub directives: Vec<Directive>,
    pub redirect: Option<MacroString>,
    pub exp: Option<MacroString>,
}

/// RFC 7208 4.5: does this TXT record (strings already joined) claim to be SPF version 1?
pub fn is_spf(text: &[u8]) -> bool {
    text.len() >= 6 && text[..6].eq_ignore_ascii_case(b"v=spf1") && (text.len() == 6 || text[6] == b' ')
}

/// RFC 7208 4.5: the SPF record among a name's TXT records (each given as its character-strings,
/// joined here without spaces, 3.3). `Ok(None)` when there is none, `Err` when there are several.
pub fn select(txts: &[Vec<Vec<u8>>]) -> Result<Option<Vec<u8>>, String> {
    let mut found: Option<Vec<u8>> = None;
    for strings in txts {
        let text = strings.concat();
        if is_spf(&text) {
            if found.is_some() {
                return Err("more than one SPF record".into());
            }
            found = Some(text);
        }
    }
    Ok(found)
}

/// Parses a whole record (version included). The error says what is wrong, for the logs.
pub fn parse(text: &[u8]) -> Result<Record, String> {
    if !is_spf(text) {
        return Err("not an SPF version 1 record".into());
    }
    // Every valid record is ASCII (RFC 7208 12: terms are %x21-7E separated by SP).
    let Ok(text) = std::str::from_utf8(&text[6..]) else {
        return Err("non-ASCII octets in the record".into());
    };
    let mut record = Record::default();
    // RFC 7208 4.6.1: terms are separated by one or more SP; other white space is no separator.
    for term in text.split(' ').filter(|t| !t.is_empty()) {
        parse_term(term, &mut record).map_err(|e| format!("{e} in term {:?}", short(term)))?;
    }
    Ok(record)
}

fn short(s: &str) -> String {
    s.chars().take(60).collect()
}

fn parse_term(term: &str, record: &mut Record) -> Result<(), String> {
    if let Some(c) = term.chars().find(|c| !c.is_ascii_graphic()) {
        return Err(format!("character {c:?}"));
    }
    // RFC 7208 12: modifier = name "=" macro-string; name = ALPHA *(ALPHA / DIGIT / "-" / "_" / ".")
    let name_len = term
        .bytes()
        .position(|b| !(b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')))
        .unwrap_or(term.len());
    if term.as_bytes().first().is_some_and(u8::is_ascii_alphabetic) && term[name_len..].starts_with('=') {
        let (name, value) = (&term[..name_len], &term[name_len + 1..]);
        if name.eq_ignore_ascii_case("redirect") {
            if record.redirect.is_some() {
                return Err("second redirect modifier".into());
            }
            record.redirect = Some(MacroString::domain_spec(value)?);
        } else if name.eq_ignore_ascii_case("exp") {
            if record.exp.is_some() {
                return Err("second exp modifier".into());
            }
            record.exp = Some(MacroString::domain_spec(value)?);
        } else {
            // RFC 7208 6: unknown modifiers are ignored, but must still be well formed.
            MacroString::parse(value, false)?;
        }
        return Ok(());
    }
    let (qualifier, rest) = match term.as_bytes()[0] {
        b'+' => (Qualifier::Pass, &term[1..]),
        b'-' => (Qualifier::Fail, &term[1..]),
        b'~' => (Qualifier::SoftFail, &term[1..]),
        b'?' => (Qualifier::Neutral, &term[1..]),
        _ => (Qualifier::Pass, term),
    };
    let name_len = rest.bytes().position(|b| !b.is_ascii_alphanumeric()).unwrap_or(rest.len());
    let (name, args) = rest.split_at(name_len);
    let mechanism = match name.to_ascii_lowercase().as_str() {
        "all" if args.is_empty() => Mechanism::All,
        "include" => Mechanism::Include(required_domain(args)?),
        "exists" => Mechanism::Exists(required_domain(args)?),
        "a" | "mx" => {
            let (spec, v4, v6) = dual_cidr(args)?;
            let domain = optional_domain(spec)?;
            if name.eq_ignore_ascii_case("a") {
                Mechanism::A { domain, v4, v6 }
            } else {
                Mechanism::Mx { domain, v4, v6 }
            }
        }
        "ptr" => Mechanism::Ptr(optional_domain(args)?),
        "ip4" => {
            let net = args.strip_prefix(':').ok_or("ip4 without a network")?;
            let (addr, len) = split_cidr(net, 32)?;
            Mechanism::Ip4(parse_ip4(addr)?, len.unwrap_or(32))
        }
        "ip6" => {
            let net = args.strip_prefix(':').ok_or("ip6 without a network")?;
            let (addr, len) = split_cidr(net, 128)?;
            let ip: Ipv6Addr = addr.parse().map_err(|_| format!("bad IPv6 address {addr:?}"))?;
            Mechanism::Ip6(ip, len.unwrap_or(128))
        }
        _ => return Err("unknown mechanism".into()),
    };
    record.directives.push(Directive { qualifier, mechanism });
    Ok(())
}

/// `":" domain-spec`, required.
fn required_domain(args: &str) -> Result<MacroString, String> {
    let spec = args.strip_prefix(':').ok_or("missing \":\" domain-spec")?;
    MacroString::domain_spec(spec)
}

/// `[ ":" domain-spec ]`.
fn optional_domain(args: &str) -> Result<Option<MacroString>, String> {
    if args.is_empty() {
        return Ok(None);
    }
    required_domain(args).map(Some)
}

/// Splits `[ ":" domain-spec ] [ "/" ip4-cidr ] [ "//" ip6-cidr ]` from the end (a domain-spec may
/// itself hold "/", so the CIDR lengths are whatever digits end the term).
fn dual_cidr(args: &str) -> Result<(&str, u8, u8), String> {
    let mut rest = args;
    let mut v6 = 128;
    if let Some(i) = rest.rfind("//")
        && rest[i + 2..].bytes().all(|b| b.is_ascii_digit())
    {
        v6 = cidr_len(&rest[i + 2..], 128)?;
        rest = &rest[..i];
    }
    let mut v4 = 32;
    if let Some(i) = rest.rfind('/')
        && rest[i + 1..].bytes().all(|b| b.is_ascii_digit())
    {
        v4 = cidr_len(&rest[i + 1..], 32)?;
        rest = &rest[..i];
    }
    Ok((rest, v4, v6))
}

/// `network [ "/" length ]`.
fn split_cidr(net: &str, max: u8) -> Result<(&str, Option<u8>), String> {
    match net.split_once('/') {
        Some((addr, len)) => Ok((addr, Some(cidr_len(len, max)?))),
        None => Ok((net, None)),
    }
}

/// RFC 7208 12: ip4-cidr-length = "/" ("0" / %x31-39 0*1DIGIT), at most 32 (ip6: 128).
fn cidr_len(digits: &str, max: u8) -> Result<u8, String> {
    let ok = !digits.is_empty()
        && digits.len() <= 3
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'));
    match digits.parse::<u8>() {
        Ok(n) if ok && n <= max => Ok(n),
        _ => Err(format!("bad CIDR length {digits:?}")),
    }
}

/// RFC 7208 12: ip4-network = qnum "." qnum "." qnum "." qnum, qnum without leading zeros.
fn parse_ip4(s: &str) -> Result<Ipv4Addr, String> {
    let bad = || format!("bad IPv4 address {s:?}");
    let parts: Vec<&str> = s.split('.').collect();
    if parts.len() != 4 {
        return Err(bad());
    }
    let mut octets = [0u8; 4];
    for (o, p) in octets.iter_mut().zip(&parts) {
        let ok = !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit());
        if !ok || (p.len() > 1 && p.starts_with('0')) {
            return Err(bad());
        }
        *o = p.parse().map_err(|_| bad())?;
    }
    Ok(Ipv4Addr::from(octets))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Record, String> {
        parse(s.as_bytes())
    }

    #[test]
    fn version_is_case_insensitive_and_needs_space_or_end() {
        assert!(is_spf(b"v=spf1") && is_spf(b"V=SpF1 -all") && is_spf(b"v=spf1 "));
        assert!(!is_spf(b"v=spf10") && !is_spf(b"v=spf1-all") && !is_spf(b"spf1") && !is_spf(b""));
    }

    #[test]
    fn selection_joins_strings_and_refuses_two() {
        let txt = |parts: &[&str]| parts.iter().map(|s| s.as_bytes().to_vec()).collect::<Vec<_>>();
        let one = vec![txt(&["v=spf1 ip4:", "192.0.2.5 -all"]), txt(&["other"])];
        assert_eq!(select(&one), Ok(Some(b"v=spf1 ip4:192.0.2.5 -all".to_vec())));
        assert_eq!(select(&[txt(&["hello"])]), Ok(None));
        assert!(select(&[txt(&["v=spf1 -all"]), txt(&["V=SPF1 +all"])]).is_err());
    }

    #[test]
    fn every_mechanism_with_qualifiers_and_cidrs() {
        let r = p("v=spf1 +all -include:_spf.example.com ~a ?a:example.org/24//64 mx/30 mx:m.example//0 \
                   ptr ptr:example.net ip4:192.0.2.0/24 ip6:2001:db8::/32 ip4:192.0.2.1 exists:%{i}.x.example")
            .unwrap();
        let m: Vec<&Mechanism> = r.directives.iter().map(|d| &d.mechanism).collect();
        assert_eq!(r.directives[1].qualifier, Qualifier::Fail);
        assert_eq!(r.directives[2].qualifier, Qualifier::SoftFail);
        assert_eq!(r.directives[3].qualifier, Qualifier::Neutral);
        assert!(matches!(m[3], Mechanism::A { domain: Some(_), v4: 24, v6: 64 }));
        assert!(matches!(m[4], Mechanism::Mx { domain: None, v4: 30, v6: 128 }));
        assert!(matches!(m[5], Mechanism::Mx { domain: Some(_), v4: 32, v6: 0 }));
        assert_eq!(*m[8], Mechanism::Ip4(Ipv4Addr::new(192, 0, 2, 0), 24));
        assert_eq!(*m[9], Mechanism::Ip6("2001:db8::".parse().unwrap(), 32));
        assert_eq!(*m[10], Mechanism::Ip4(Ipv4Addr::new(192, 0, 2, 1), 32));
        assert!(matches!(m[11], Mechanism::Exists(_)));
        assert_eq!(r.directives.len(), 12);
    }

    #[test]
    fn modifiers_once_each_and_unknown_ones_ignored() {
        let r = p("v=spf1 redirect=_spf.example.com exp=explain.%{d} moo.cow-far_out=man:dog/cat").unwrap();
        assert!(r.redirect.is_some() && r.exp.is_some() && r.directives.is_empty());
        assert!(p("v=spf1 redirect=a.example redirect=b.example").is_err());
        assert!(p("v=spf1 exp=a.example exp=b.example").is_err());
        assert!(p("v=spf1 foo=%{q}").is_err());
        assert!(p("v=spf1 moo.cow/far_out=man:dog/cat").is_err());
        assert!(p("v=spf1 redirect:example.com").is_err());
    }

    #[test]
    fn malformed_records_are_errors() {
        for bad in [
            "v=spf1 -all.",
            "v=spf1 -all:foobar",
            "v=spf1 -all/8",
            "v=spf1 ip4:1.2.3.4/33",
            "v=spf1 ip4:01.2.3.4",
            "v=spf1 ip4:1.2.3.4/032",
            "v=spf1 ip4:",
            "v=spf1 ip6:2001:db8::/129",
            "v=spf1 ip6:1.2.3.4",
            "v=spf1 a//129",
            "v=spf1 a/33",
            "v=spf1 a:foo-bar",
            "v=spf1 a:111.222.33.44",
            "v=spf1 a:abc.123",
            "v=spf1 a:example.com:8080",
            "v=spf1 ptr:",
            "v=spf1 include",
            "v=spf1 exists",
            "v=spf1 a:%{x}.example.com",
            "v=spf1 a:%{d0}.example.com",
            "v=spf1 a:50%.example.com",
            "v=spf1 ip4:192.0.2.5\n ~all",
            "v=spf1 a:ctrl.example.com\rptr -all",
            "v=spf1 \u{80}a:example.net",
            "v=spf1 unknown",
        ] {
            assert!(p(bad).is_err(), "{bad:?} parsed");
        }
        for good in
            ["v=spf1", "v=spf1 a  -all ", "v=spf1 a:museum.example.", "v=spf1 a:%{d}", "v=spf1 a:1-2.example"]
        {
            assert!(p(good).is_ok(), "{good:?} refused");
        }
    }
}
