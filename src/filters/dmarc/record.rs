//! A DMARC policy record (RFC 7489 6.3 tags, 6.4 grammar), parsed from the bytes of one TXT
//! record. The record is DKIM's tag-list (RFC 6376 3.2: `tag=value` pairs split by `;`, white
//! space around both, a duplicate tag invalidates the list), with `v=DMARC1` first. Tag names and
//! keyword values compare without case, as ABNF literals do; the version value is exact (6.4
//! spells it in `%x` bytes). Unknown tags are ignored (6.3). The reporting tags are kept as
//! written or dropped when unusable: buzon sends no reports, but a valid `rua` decides what an
//! invalid `p` means (6.6.3 step 6).

use super::Policy;

/// DKIM or SPF identifier alignment (RFC 7489 3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alignment {
    Relaxed,
    Strict,
}

/// A parsed record. `p` is `None` when the tag is missing or invalid but a usable `rua` made the
/// record count as `p=none` (6.6.3 step 6: the caller treats it so).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub p: Option<Policy>,
    pub sp: Option<Policy>,
    pub adkim: Alignment,
    pub aspf: Alignment,
    /// 0..=100 (6.3: default 100).
    pub pct: u8,
    /// Aggregate and failure report URIs (6.2 `dmarc-uri`), size limits stripped off.
    pub rua: Vec<String>,
    pub ruf: Vec<String>,
    /// Failure reporting options and format, and the aggregate interval (defaults: "0", "afrf",
    /// 86400), kept for `buzon dmarc` to show.
    pub fo: String,
    pub rf: String,
    pub ri: u32,
}

/// Why a record with `v=DMARC1` is unusable (the caller applies no DMARC processing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordError {
    /// Not a DMARC record at all (6.6.3: such TXT records are discarded, not errors).
    NotDmarc,
    /// A DMARC record that breaks the grammar or lacks a valid `p` (and has no usable `rua`).
    Invalid(String),
}

/// Whether a TXT record is a DMARC record: its first tag is `v=DMARC1` (6.6.3 steps 2 and 4).
pub fn is_dmarc(txt: &[u8]) -> bool {
    let first = txt.split(|&b| b == b';').next().unwrap_or_default();
    match split_tag(first) {
        Some((tag, value)) => tag.eq_ignore_ascii_case(b"v") && value == b"DMARC1",
        None => false,
    }
}

fn trim(s: &[u8]) -> &[u8] {
    // RFC 6376 3.2: FWS around tags and values; folded records arrive unfolded, CR LF included.
    let ws = |b: &u8| matches!(b, b' ' | b'\t' | b'\r' | b'\n');
    let start = s.iter().position(|b| !ws(b)).unwrap_or(s.len());
    let end = s.iter().rposition(|b| !ws(b)).map_or(start, |i| i + 1);
    &s[start..end]
}

/// `tag = value`, both trimmed; `None` when there is no `=` or the name is not a tag-name
/// (RFC 6376 3.2: ALPHA *ALNUMPUNC).
fn split_tag(spec: &[u8]) -> Option<(&[u8], &[u8])> {
    let eq = spec.iter().position(|&b| b == b'=')?;
    let (tag, value) = (trim(&spec[..eq]), trim(&spec[eq + 1..]));
    let good = tag.first().is_some_and(u8::is_ascii_alphabetic)
        && tag.iter().all(|&b| b.is_ascii_alphanumeric() || b == b'_');
    good.then_some((tag, value))
}

fn policy(value: &[u8]) -> Option<Policy> {
    match value.to_ascii_lowercase().as_slice() {
        b"none" => Some(Policy::None),
        b"quarantine" => Some(Policy::Quarantine),
        b"reject" => Some(Policy::Reject),
        _ => None,
    }
}

fn alignment(value: &[u8]) -> Option<Alignment> {
    match value.to_ascii_lowercase().as_slice() {
        b"r" => Some(Alignment::Relaxed),
        b"s" => Some(Alignment::Strict),
        _ => None,
    }
}

/// 6.4 `dmarc-uri = URI [ "!" 1*DIGIT [ "k" / "m" / "g" / "t" ] ]`, in a comma-separated list:
/// the URIs that have a scheme (`mailto:`...) and no white space or control characters. Commas and
/// `!` inside a URI must be %-encoded (6.2), so splitting on them is exact.
fn uris(value: &[u8]) -> Vec<String> {
    value
        .split(|&b| b == b',')
        .filter_map(|u| {
            let u = trim(u);
            let u = match u.iter().rposition(|&b| b == b'!') {
                Some(i) if size_limit(&u[i + 1..]) => &u[..i],
                Some(_) => return None,
                None => u,
            };
            let colon = u.iter().position(|&b| b == b':')?;
            let scheme_ok = u[0].is_ascii_alphabetic()
                && u[..colon].iter().all(|&b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
            let rest_ok = colon + 1 < u.len() && u.iter().all(|&b| b.is_ascii_graphic());
            (scheme_ok && rest_ok).then(|| String::from_utf8_lossy(u).into_owned())
        })
        .collect()
}

fn size_limit(s: &[u8]) -> bool {
    let digits =
        s.strip_suffix(b"k").or(s.strip_suffix(b"m")).or(s.strip_suffix(b"g")).or(s.strip_suffix(b"t"));
    let digits = digits.unwrap_or(s);
    !digits.is_empty() && digits.iter().all(u8::is_ascii_digit)
}

/// Parses one TXT record (its character-strings already joined).
pub fn parse(txt: &[u8]) -> Result<Record, RecordError> {
    if !is_dmarc(txt) {
        return Err(RecordError::NotDmarc);
    }
    let mut rec = Record {
        p: None,
        sp: None,
        adkim: Alignment::Relaxed,
        aspf: Alignment::Relaxed,
        pct: 100,
        rua: Vec::new(),
        ruf: Vec::new(),
        fo: "0".into(),
        rf: "afrf".into(),
        ri: 86400,
    };
    let (mut p_seen, mut sp_bad) = (false, false);
    let mut seen: Vec<Vec<u8>> = Vec::new();
    for spec in txt.split(|&b| b == b';').skip(1) {
        if trim(spec).is_empty() {
            continue; // a trailing ";" (6.4 allows it), or an empty spec between two
        }
        let Some((tag, value)) = split_tag(spec) else {
            return Err(RecordError::Invalid(format!(
                "not a tag=value: {:?}",
                String::from_utf8_lossy(trim(spec))
            )));
        };
        let tag = tag.to_ascii_lowercase();
        if seen.contains(&tag) {
            // RFC 6376 3.2, which 6.3 borrows: a duplicated tag invalidates the whole list.
            return Err(RecordError::Invalid(format!("tag {} given twice", String::from_utf8_lossy(&tag))));
        }
        seen.push(tag.clone());
        match tag.as_slice() {
            b"v" => return Err(RecordError::Invalid("v= is not the only first tag".into())),
            b"p" => {
                p_seen = true;
                rec.p = policy(value);
            }
            b"sp" => {
                rec.sp = policy(value);
                sp_bad = rec.sp.is_none();
            }
            // Invalid values of the optional tags fall back to their defaults, as unknown tags
            // are ignored: the policy itself still stands.
            b"adkim" => rec.adkim = alignment(value).unwrap_or(Alignment::Relaxed),
            b"aspf" => rec.aspf = alignment(value).unwrap_or(Alignment::Relaxed),
            b"pct" => {
                if let Some(n) = std::str::from_utf8(value).ok().and_then(|s| s.parse::<u8>().ok()) {
                    rec.pct = n.min(100);
                }
            }
            b"rua" => rec.rua = uris(value),
            b"ruf" => rec.ruf = uris(value),
            b"fo" if !value.is_empty() && value.iter().all(|b| b"01ds:".contains(b)) => {
                rec.fo = String::from_utf8_lossy(value).into_owned()
            }
            b"rf"
                if !value.is_empty()
                    && value.iter().all(|b| b.is_ascii_alphanumeric() || b":-".contains(b)) =>
            {
                rec.rf = String::from_utf8_lossy(value).to_ascii_lowercase()
            }
            b"ri" => {
                if let Some(n) = std::str::from_utf8(value).ok().and_then(|s| s.parse::<u32>().ok()) {
                    rec.ri = n;
                }
            }
            _ => {} // 6.3: unknown tags MUST be ignored
        }
    }
    // 6.6.3 step 6: no valid p, or an invalid sp, with at least one usable rua: act as p=none.
    if rec.p.is_none() || sp_bad {
        if rec.rua.is_empty() {
            let what = if !p_seen {
                "no p= tag"
            } else if rec.p.is_none() {
                "invalid p= value"
            } else {
                "invalid sp= value"
            };
            return Err(RecordError::Invalid(what.into()));
        }
        rec.p = None;
        rec.sp = None;
    }
    Ok(rec)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> Record {
        parse(s.as_bytes()).unwrap_or_else(|e| panic!("{s}: {e:?}"))
    }

    fn invalid(s: &str) -> String {
        match parse(s.as_bytes()) {
            Err(RecordError::Invalid(why)) => why,
            other => panic!("{s}: {other:?}"),
        }
    }

    #[test]
    fn full_record() {
        let r = ok("v=DMARC1; p=quarantine; sp=reject; adkim=s; aspf=r; pct=50; \
                    rua=mailto:dmarc@example.com!10m, mailto:x@example.net; ruf=mailto:f@example.com; \
                    fo=1:d; rf=afrf; ri=3600");
        assert_eq!(r.p, Some(Policy::Quarantine));
        assert_eq!(r.sp, Some(Policy::Reject));
        assert_eq!((r.adkim, r.aspf), (Alignment::Strict, Alignment::Relaxed));
        assert_eq!(r.pct, 50);
        assert_eq!(r.rua, ["mailto:dmarc@example.com", "mailto:x@example.net"]);
        assert_eq!(r.ruf, ["mailto:f@example.com"]);
        assert_eq!((r.fo.as_str(), r.rf.as_str(), r.ri), ("1:d", "afrf", 3600));
    }

    #[test]
    fn defaults_whitespace_case_and_unknown_tags() {
        let r = ok("  v = DMARC1 ;P = Reject;\tfuture=thing ; x_y=1;");
        assert_eq!(r.p, Some(Policy::Reject));
        assert_eq!((r.sp, r.adkim, r.aspf, r.pct), (None, Alignment::Relaxed, Alignment::Relaxed, 100));
        assert_eq!(ok("v=DMARC1;p=none").p, Some(Policy::None));
        // Tags other than v may come in any order.
        assert_eq!(ok("v=DMARC1; pct=20; p=reject").pct, 20);
        // Bad optional values fall back to their defaults.
        let r = ok("v=DMARC1; p=reject; adkim=x; pct=250; ri=soon; fo=7");
        assert_eq!((r.adkim, r.pct, r.ri, r.fo.as_str()), (Alignment::Relaxed, 100, 86400, "0"));
        assert_eq!(ok("v=DMARC1; p=reject; pct=-1").pct, 100);
        assert_eq!(ok("v=DMARC1; p=reject; pct=0").pct, 0);
    }

    #[test]
    fn not_dmarc_records() {
        for s in
            ["", "v=spf1 -all", "v=DMARC2; p=reject", "v=dmarc1; p=reject", "p=reject; v=DMARC1", "v=DMARC1x"]
        {
            assert_eq!(parse(s.as_bytes()), Err(RecordError::NotDmarc), "{s}");
            assert!(!is_dmarc(s.as_bytes()));
        }
        assert!(is_dmarc(b"V=DMARC1"));
    }

    #[test]
    fn invalid_records() {
        assert_eq!(invalid("v=DMARC1"), "no p= tag");
        assert_eq!(invalid("v=DMARC1; p=block"), "invalid p= value");
        assert_eq!(invalid("v=DMARC1; p=reject; sp=maybe"), "invalid sp= value");
        assert!(invalid("v=DMARC1; p=reject; garbage").starts_with("not a tag=value"));
        assert!(invalid("v=DMARC1; p=reject; p=none").contains("twice"));
        assert!(invalid("v=DMARC1; p=reject; 1x=2").starts_with("not a tag=value"));
        assert!(invalid("v=DMARC1; v=DMARC1; p=reject").contains("first tag"));
    }

    #[test]
    fn invalid_p_with_a_valid_rua_counts_as_none() {
        // 6.6.3 step 6.
        let r = ok("v=DMARC1; p=bogus; rua=mailto:agg@example.com");
        assert_eq!((r.p, r.sp), (None, None));
        let r = ok("v=DMARC1; rua=mailto:agg@example.com");
        assert_eq!(r.p, None);
        let r = ok("v=DMARC1; p=reject; sp=bogus; rua=mailto:agg@example.com");
        assert_eq!((r.p, r.sp), (None, None));
        // An unusable rua does not save the record.
        assert_eq!(invalid("v=DMARC1; p=bogus; rua=not a uri"), "invalid p= value");
        assert_eq!(invalid("v=DMARC1; p=bogus; rua=mailto:a@example.com!big"), "invalid p= value");
    }

    #[test]
    fn reporting_uris() {
        assert_eq!(
            uris(b"mailto:a@example.com!50k , https://r.example/x"),
            ["mailto:a@example.com", "https://r.example/x"]
        );
        assert!(uris(b"a@example.com, mailto:, :x, mailto:a b, ").is_empty());
    }
}
