//! The DKIM-Signature header field (RFC 6376 3.5): the tag=value list syntax shared with key
//! records (3.2), parsing a signature into checked values, blanking `b=` for the header hash
//! (3.7), and building a signature's text when signing (RFC 8463 for `ed25519-sha256`).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::canon::Canon;

/// Signature algorithms buzon signs and verifies (RFC 6376 3.3, RFC 8463 3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    RsaSha256,
    Ed25519Sha256,
}

impl Algorithm {
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::RsaSha256 => "rsa-sha256",
            Algorithm::Ed25519Sha256 => "ed25519-sha256",
        }
    }
}

fn is_fws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn trim_fws(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|&b| !is_fws(b)).unwrap_or(s.len());
    let end = s.iter().rposition(|&b| !is_fws(b)).map_or(start, |i| i + 1);
    &s[start..end]
}

/// Parses a tag-list (RFC 6376 3.2): `tag=value` pairs separated by `;`, a trailing `;` allowed,
/// FWS around names and values ignored. Tag names are ALPHA *(ALNUM / "_"); values hold VALCHAR
/// (%x21-3A / %x3C-7E) with inner FWS; a repeated tag is an error.
pub fn tag_list(text: &[u8]) -> Result<Vec<(String, String)>, String> {
    let mut tags: Vec<(String, String)> = Vec::new();
    let specs: Vec<&[u8]> = text.split(|&b| b == b';').collect();
    let last = specs.len() - 1;
    for (i, spec) in specs.into_iter().enumerate() {
        let spec = trim_fws(spec);
        if spec.is_empty() {
            if i == last {
                break;
            }
            return Err("empty tag in tag list".into());
        }
        let eq = spec.iter().position(|&b| b == b'=').ok_or_else(|| {
            format!("tag without '=': {:?}", String::from_utf8_lossy(&spec[..spec.len().min(20)]))
        })?;
        let name = trim_fws(&spec[..eq]);
        let value = trim_fws(&spec[eq + 1..]);
        let name_ok = name.first().is_some_and(u8::is_ascii_alphabetic)
            && name.iter().all(|&b| b.is_ascii_alphanumeric() || b == b'_');
        if !name_ok {
            return Err(format!("bad tag name {:?}", String::from_utf8_lossy(name)));
        }
        if let Some(&b) = value.iter().find(|&&b| !(is_fws(b) || (0x21..=0x7e).contains(&b))) {
            return Err(format!("bad character 0x{b:02x} in tag {}", String::from_utf8_lossy(name)));
        }
        // Checked ASCII above, so these conversions keep every byte.
        let name = String::from_utf8_lossy(name).into_owned();
        if tags.iter().any(|(n, _)| *n == name) {
            return Err(format!("tag {name} repeated"));
        }
        tags.push((name, String::from_utf8_lossy(value).into_owned()));
    }
    Ok(tags)
}

/// The value of `name` in a parsed tag list.
pub fn tag<'a>(tags: &'a [(String, String)], name: &str) -> Option<&'a str> {
    tags.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

/// Base64 with the FWS that DKIM allows inside it removed (RFC 6376 3.5 `b=`, `bh=`, 3.6.1 `p=`).
pub fn base64_fws(value: &str) -> Option<Vec<u8>> {
    let clean: Vec<u8> = value.bytes().filter(|&b| !is_fws(b)).collect();
    STANDARD.decode(clean).ok()
}

/// A checked DKIM-Signature (RFC 6376 3.5).
#[derive(Clone, Debug)]
pub struct Signature {
    pub algorithm: Algorithm,
    pub signature: Vec<u8>,
    pub body_hash: Vec<u8>,
    pub header_canon: Canon,
    pub body_canon: Canon,
    pub domain: String,
    pub selector: String,
    /// `h=`, lowercased, in order.
    pub headers: Vec<String>,
    /// `i=`, defaulting to `@d` (3.5).
    pub identity: String,
    pub length: Option<u64>,
    pub expires: Option<u64>,
}

/// A DNS name usable in a key query: labels of letters, digits, `-` and `_`, 1-63 octets each, no
/// trailing dot, 253 octets at most (RFC 6376 3.5 `d=`, `s=`; RFC 1035 2.3.4).
pub fn valid_dns_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

fn decimal(name: &str, v: &str) -> Result<u64, String> {
    // RFC 6376 3.5: at most 12 digits for t=/x= and 76 for l=; anything beyond u64 is unusable.
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{name}= is not a number"));
    }
    v.parse().map_err(|_| format!("{name}= is too large"))
}

impl Signature {
    /// Checks a parsed tag list as RFC 6376 6.1.1 says; the error is the permerror's reason.
    pub fn from_tags(tags: &[(String, String)]) -> Result<Signature, String> {
        let need = |n: &str| tag(tags, n).ok_or_else(|| format!("missing {n}= tag"));
        if need("v")? != "1" {
            return Err("unsupported version (v= is not 1)".into());
        }
        let algorithm = match need("a")?.to_ascii_lowercase().as_str() {
            "rsa-sha256" => Algorithm::RsaSha256,
            "ed25519-sha256" => Algorithm::Ed25519Sha256,
            // RFC 8301 3.1: rsa-sha1 MUST NOT be used for verifying.
            "rsa-sha1" => return Err("rsa-sha1 is historic and not accepted (RFC 8301)".into()),
            other => return Err(format!("unknown algorithm a={other}")),
        };
        let signature = base64_fws(need("b")?).ok_or("b= is not base64")?;
        let body_hash = base64_fws(need("bh")?).ok_or("bh= is not base64")?;
        if signature.is_empty() {
            return Err("b= is empty".into());
        }
        if body_hash.len() != 32 {
            return Err("bh= is not a SHA-256 hash".into());
        }
        let canon = |s: &str| match s.to_ascii_lowercase().as_str() {
            "simple" => Ok(Canon::Simple),
            "relaxed" => Ok(Canon::Relaxed),
            other => Err(format!("unknown canonicalization {other}")),
        };
        let (header_canon, body_canon) = match tag(tags, "c") {
            None => (Canon::Simple, Canon::Simple),
            Some(c) => match c.split_once('/') {
                Some((h, b)) => (canon(h)?, canon(b)?),
                None => (canon(c)?, Canon::Simple),
            },
        };
        let domain = need("d")?.to_ascii_lowercase();
        if !valid_dns_name(&domain) {
            return Err(format!("d={domain} is not a domain name"));
        }
        let selector = need("s")?.to_string();
        if !valid_dns_name(&selector) {
            return Err(format!("s={selector} is not a selector"));
        }
        let headers: Vec<String> = need("h")?
            .split(':')
            .map(|h| trim_fws(h.as_bytes()))
            .map(|h| String::from_utf8_lossy(h).to_ascii_lowercase())
            .collect();
        if headers.iter().any(|h| h.is_empty()) {
            return Err("empty name in h=".into());
        }
        // RFC 6376 5.4: the From header field MUST be signed.
        if !headers.iter().any(|h| h == "from") {
            return Err("From is not signed (h= lacks from)".into());
        }
        let identity = match tag(tags, "i") {
            None => format!("@{domain}"),
            Some(i) => {
                let at = i.rfind('@').ok_or("i= has no @")?;
                let idom = i[at + 1..].to_ascii_lowercase();
                // 3.5: the domain of i= must be d= or a subdomain of it.
                if idom != domain && !idom.ends_with(&format!(".{domain}")) {
                    return Err(format!("i= domain {idom} is not within d={domain}"));
                }
                i.to_string()
            }
        };
        if let Some(q) = tag(tags, "q")
            && !q.split(':').any(|m| trim_fws(m.as_bytes()).eq_ignore_ascii_case(b"dns/txt"))
        {
            return Err(format!("unsupported query method q={q}"));
        }
        let length = tag(tags, "l").map(|v| decimal("l", v)).transpose()?;
        let timestamp = tag(tags, "t").map(|v| decimal("t", v)).transpose()?;
        let expires = tag(tags, "x").map(|v| decimal("x", v)).transpose()?;
        if let (Some(t), Some(x)) = (timestamp, expires)
            && x < t
        {
            return Err("x= is before t=".into());
        }
        Ok(Signature {
            algorithm,
            signature,
            body_hash,
            header_canon,
            body_canon,
            domain,
            selector,
            headers,
            identity,
            length,
            expires,
        })
    }
}

/// The signature field with the value of its `b=` tag deleted, FWS around the value included
/// (RFC 6376 3.5 `b=`, 3.7): the text that is canonicalized into the header hash.
pub fn blank_b(raw: &[u8]) -> Vec<u8> {
    let colon = raw.iter().position(|&b| b == b':').map_or(0, |i| i + 1);
    let mut out = raw[..colon].to_vec();
    let mut first = true;
    for spec in raw[colon..].split(|&b| b == b';') {
        if !first {
            out.push(b';');
        }
        first = false;
        match spec.iter().position(|&b| b == b'=') {
            Some(eq) if trim_fws(&spec[..eq]) == b"b" => out.extend_from_slice(&spec[..=eq]),
            _ => out.extend_from_slice(spec),
        }
    }
    out
}

/// Folds a tag list into header lines of about 78 columns: `name: tag; tag;` with `h=` split at
/// colons and the `b=` value last in lines of its own (RFC 6376 3.5 allows FWS there). `sig` is
/// empty while the hash is computed, giving the text that ends in `b=`.
pub fn fold(name: &str, tags: &[(String, String)], sig: &str) -> String {
    const WIDTH: usize = 78;
    let mut out = format!("{name}:");
    let mut col = out.len();
    for (k, v) in tags {
        let piece = format!("{k}={v};");
        if col + 1 + piece.len() <= WIDTH {
            out.push(' ');
            col += 1;
        } else {
            out.push_str("\r\n\t");
            col = 8;
        }
        if k == "h" && col + piece.len() > WIDTH {
            // One name per chunk, folded after a colon.
            let mut first = true;
            out.push_str("h=");
            col += 2;
            for n in v.split(':') {
                let chunk = if first { n.to_string() } else { format!(":{n}") };
                if !first && col + chunk.len() + 1 > WIDTH {
                    out.push_str(":\r\n\t");
                    out.push_str(n);
                    col = 8 + n.len();
                } else {
                    out.push_str(&chunk);
                    col += chunk.len();
                }
                first = false;
            }
            out.push(';');
            col += 1;
        } else {
            out.push_str(&piece);
            col += piece.len();
        }
    }
    out.push_str("\r\n\tb=");
    let mut rest = sig;
    let mut width = WIDTH - 10;
    while !rest.is_empty() {
        let n = rest.len().min(width);
        out.push_str(&rest[..n]);
        rest = &rest[n..];
        if !rest.is_empty() {
            out.push_str("\r\n\t");
        }
        width = WIDTH - 8;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Signature, String> {
        Signature::from_tags(&tag_list(s.as_bytes())?)
    }

    const GOOD: &str = "v=1; a=rsa-sha256; d=example.net; s=brisbane;\r\n c=relaxed/simple; q=dns/txt; i=foo@eng.example.net;\r\n t=1117574938; x=1118006938; l=200;\r\n h=from:to:subject:date:keywords:keywords;\r\n bh=MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTI=;\r\n b=dzdVyOfAKCdLXdJOc9G2q8LoXSlEniSbav+yuU4zGeeruD00lszZ\r\n \t VoG4ZHRNiYzR";

    #[test]
    fn rfc6376_3_5_example_parses() {
        let s = parse(GOOD).unwrap();
        assert_eq!(s.algorithm, Algorithm::RsaSha256);
        assert_eq!((s.header_canon, s.body_canon), (Canon::Relaxed, Canon::Simple));
        assert_eq!(s.domain, "example.net");
        assert_eq!(s.identity, "foo@eng.example.net");
        assert_eq!(s.headers, vec!["from", "to", "subject", "date", "keywords", "keywords"]);
        assert_eq!((s.length, s.expires), (Some(200), Some(1118006938)));
        assert_eq!(s.body_hash, b"12345678901234567890123456789012");
    }

    #[test]
    fn tag_list_errors() {
        for bad in ["a=1;;b=2", "a", "1a=2", "a=1; a=2", "a=\u{e9}", "=x", "a-b=1"] {
            assert!(tag_list(bad.as_bytes()).is_err(), "{bad}");
        }
        assert_eq!(
            tag_list(b" a = 1 2 ; b=;").unwrap(),
            vec![("a".into(), "1 2".into()), ("b".into(), "".into())]
        );
        assert_eq!(tag_list(b"").unwrap(), vec![]);
    }

    #[test]
    fn signature_errors_name_their_cause() {
        let cases = [
            ("v=1; ", "v=2;"),
            ("a=rsa-sha256", "a=rsa-sha1"),
            ("a=rsa-sha256", "a=rsa-md5"),
            ("c=relaxed/simple", "c=relaxed/fancy"),
            ("i=foo@eng.example.net", "i=foo@example.com"),
            ("i=foo@eng.example.net", "i=foo"),
            ("h=from:", "h=From2:"),
            ("q=dns/txt", "q=dns/other"),
            ("x=1118006938", "x=1"),
            ("l=200", "l=99999999999999999999999"),
            ("d=example.net", "d=exa mple.net"),
            ("s=brisbane", "s=bris/bane"),
            ("bh=MTIz", "bh=%%%"),
        ];
        for (from, to) in cases {
            let s = GOOD.replacen(from, to, 1);
            assert_ne!(s, GOOD, "{from}");
            assert!(parse(&s).is_err(), "{to} accepted");
        }
        for t in ["v", "a", "b", "bh", "d", "s", "h"] {
            let tags: Vec<_> =
                tag_list(GOOD.as_bytes()).unwrap().into_iter().filter(|(n, _)| n != t).collect();
            assert!(Signature::from_tags(&tags).unwrap_err().contains(&format!("{t}=")), "{t}");
        }
        // Defaults: c=simple/simple, i=@d; "relaxed" alone is relaxed/simple.
        let s = parse(&GOOD.replacen("c=relaxed/simple; ", "", 1).replacen(" i=foo@eng.example.net;", "", 1))
            .unwrap();
        assert_eq!(
            (s.header_canon, s.body_canon, s.identity.as_str()),
            (Canon::Simple, Canon::Simple, "@example.net")
        );
        let s = parse(&GOOD.replacen("relaxed/simple", "relaxed", 1)).unwrap();
        assert_eq!((s.header_canon, s.body_canon), (Canon::Relaxed, Canon::Simple));
    }

    #[test]
    fn blank_b_keeps_bh_and_drops_the_value_and_its_fws() {
        let raw = b"DKIM-Signature: a=x; bh=abc;\r\n b = de\r\n f ; d=e";
        assert_eq!(blank_b(raw), b"DKIM-Signature: a=x; bh=abc;\r\n b =; d=e".to_vec());
        assert_eq!(blank_b(b"DKIM-Signature: v=1; b=xyz"), b"DKIM-Signature: v=1; b=".to_vec());
    }

    #[test]
    fn fold_stays_within_width_and_round_trips() {
        let h = "from:reply-to:subject:date:to:cc:message-id:in-reply-to:references:mime-version:content-type:from";
        let tags: Vec<(String, String)> = [
            ("v", "1"),
            ("a", "rsa-sha256"),
            ("c", "relaxed/relaxed"),
            ("d", "example.org"),
            ("s", "s202612"),
            ("t", "1700000000"),
            ("h", h),
            ("bh", "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        let sig = "A".repeat(344);
        let text = fold("DKIM-Signature", &tags, &sig);
        for line in text.split("\r\n") {
            assert!(line.len() <= 78, "{line:?}");
        }
        let value = &text.as_bytes()["DKIM-Signature:".len()..];
        let parsed = tag_list(value).unwrap();
        assert_eq!(tag(&parsed, "h").map(|v| v.replace([' ', '\t', '\r', '\n'], "")), Some(h.to_string()));
        assert_eq!(base64_fws(tag(&parsed, "b").unwrap()).unwrap().len(), 258);
        assert!(fold("DKIM-Signature", &tags, "").ends_with("\r\n\tb="));
    }
}
