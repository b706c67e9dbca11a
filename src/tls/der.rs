//! A minimal DER walk over X.509 certificates (RFC 5280 4.1, X.690 8.1 definite-length encoding) for the
//! two things buzon needs and rustls does not expose: the validity period, and the signature algorithm
//! that picks the hash for RFC 5929 tls-server-end-point. Nothing else of the certificate is interpreted.

/// One DER element: (tag, contents, what follows it).
pub(crate) fn tlv(input: &[u8]) -> Result<(u8, &[u8], &[u8]), &'static str> {
    let (&tag, rest) = input.split_first().ok_or("truncated")?;
    let (&first, rest) = rest.split_first().ok_or("truncated")?;
    // X.690 8.1.3: short form below 0x80, else 0x80|n followed by n length octets (0x80 alone would be
    // the indefinite form, which DER forbids).
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return Err("bad length");
        }
        let len = rest[..n].iter().fold(0usize, |acc, &b| (acc << 8) | b as usize);
        (len, &rest[n..])
    };
    if rest.len() < len {
        return Err("truncated");
    }
    Ok((tag, &rest[..len], &rest[len..]))
}

/// Reads one element that must carry `tag`.
fn expect(input: &[u8], tag: u8) -> Result<(&[u8], &[u8]), &'static str> {
    match tlv(input)? {
        (t, body, rest) if t == tag => Ok((body, rest)),
        _ => Err("unexpected element"),
    }
}

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const OID: u8 = 0x06;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;
const VERSION: u8 = 0xa0; // [0] EXPLICIT

/// Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue }:
/// returns (tbsCertificate contents, signatureAlgorithm contents).
fn outer(cert: &[u8]) -> Result<(&[u8], &[u8]), &'static str> {
    let (body, _) = expect(cert, SEQUENCE)?;
    let (tbs, rest) = expect(body, SEQUENCE)?;
    let (alg, _) = expect(rest, SEQUENCE)?;
    Ok((tbs, alg))
}

/// notBefore and notAfter as Unix seconds (RFC 5280 4.1.2.5).
pub fn validity(cert: &[u8]) -> Result<(i64, i64), &'static str> {
    let (tbs, _) = outer(cert)?;
    let mut rest = tbs;
    if let Ok((VERSION, _, r)) = tlv(rest) {
        rest = r;
    }
    let (_serial, rest) = expect(rest, INTEGER)?;
    let (_signature, rest) = expect(rest, SEQUENCE)?;
    let (_issuer, rest) = expect(rest, SEQUENCE)?;
    let (validity, _) = expect(rest, SEQUENCE)?;
    let (t1, b1, rest) = tlv(validity)?;
    let (t2, b2, _) = tlv(rest)?;
    Ok((time(t1, b1)?, time(t2, b2)?))
}

/// RFC 5280 4.1.2.5.1 UTCTime YYMMDDHHMMSSZ (YY >= 50 is 19YY) and 4.1.2.5.2 GeneralizedTime
/// YYYYMMDDHHMMSSZ, both in UTC.
fn time(tag: u8, body: &[u8]) -> Result<i64, &'static str> {
    let digits = |s: &[u8]| -> Result<i64, &'static str> {
        s.iter().try_fold(0i64, |acc, &c| match c {
            b'0'..=b'9' => Ok(acc * 10 + (c - b'0') as i64),
            _ => Err("bad time"),
        })
    };
    let (year, rest) = match (tag, body.len()) {
        (UTC_TIME, 13) => {
            let yy = digits(&body[..2])?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &body[2..])
        }
        (GENERALIZED_TIME, 15) => (digits(&body[..4])?, &body[4..]),
        _ => return Err("bad time"),
    };
    if rest[10] != b'Z' {
        return Err("bad time");
    }
    let (mo, d) = (digits(&rest[0..2])?, digits(&rest[2..4])?);
    let (h, mi, s) = (digits(&rest[4..6])?, digits(&rest[6..8])?, digits(&rest[8..10])?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return Err("bad time");
    }
    Ok(days_from_civil(year, mo, d) * 86400 + h * 3600 + mi * 60 + s)
}

pub use crate::timefmt::{civil_from_days, days_from_civil};

/// "2026-11-28 04:41:33 UTC", for error messages.
pub fn format_utc(t: i64) -> String {
    let (y, m, d) = civil_from_days(t.div_euclid(86400));
    let s = t.rem_euclid(86400);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC", s / 3600, s / 60 % 60, s % 60)
}

/// The hash RFC 5929 4.1 assigns to a certificate's signature algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndPointHash {
    Sha256,
    Sha384,
    Sha512,
}

/// RFC 5929 4.1: MD5 and SHA-1 are replaced by SHA-256, other hashes are used as they are. `None` for
/// algorithms with no single hash (RSASSA-PSS, whose hash is in its parameters; Ed25519/Ed448): the
/// binding is then unavailable, as RFC 5929 leaves it undefined.
pub fn end_point_hash(cert: &[u8]) -> Option<EndPointHash> {
    let (_, alg) = outer(cert).ok()?;
    let (oid, _) = expect(alg, OID).ok()?;
    const RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01]; // 1.2.840.113549.1.1
    const ECDSA: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04]; // 1.2.840.10045.4
    if let Some(tail) = oid.strip_prefix(RSA) {
        match tail {
            [0x04] | [0x05] | [0x0b] | [0x0e] => Some(EndPointHash::Sha256), // md5, sha1, sha256, sha224
            [0x0c] => Some(EndPointHash::Sha384),
            [0x0d] => Some(EndPointHash::Sha512),
            _ => None,
        }
    } else if let Some(tail) = oid.strip_prefix(ECDSA) {
        match tail {
            [0x01] | [0x03, 0x01] | [0x03, 0x02] => Some(EndPointHash::Sha256), // sha1, sha224, sha256
            [0x03, 0x03] => Some(EndPointHash::Sha384),
            [0x03, 0x04] => Some(EndPointHash::Sha512),
            _ => None,
        }
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        let cases: &[(u8, &str, Result<i64, &str>)] = &[
            (UTC_TIME, "700101000000Z", Ok(0)),
            (UTC_TIME, "491231235959Z", Ok(2524607999)),
            (UTC_TIME, "500101000000Z", Ok(-631152000)),
            (GENERALIZED_TIME, "20260229000000Z", Ok(days_from_civil(2026, 3, 1) * 86400)),
            (GENERALIZED_TIME, "99991231235959Z", Ok(253402300799)),
            (UTC_TIME, "700101000000+0100", Err("bad time")),
            (UTC_TIME, "701301000000Z", Err("bad time")),
            (GENERALIZED_TIME, "700101000000Z", Err("bad time")),
            (UTC_TIME, "7001010000x0Z", Err("bad time")),
        ];
        for (tag, s, want) in cases {
            assert_eq!(time(*tag, s.as_bytes()), *want, "{s}");
        }
    }

    #[test]
    fn civil_round_trip() {
        for days in [-719468, -1, 0, 1, 11016, 20000, 2932896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(format_utc(1_700_000_000), "2023-11-14 22:13:20 UTC");
    }

    #[test]
    fn lengths() {
        assert_eq!(tlv(&[0x30, 0x81, 0x01, 0xaa]), Ok((0x30, &[0xaa][..], &[][..])));
        assert_eq!(tlv(&[0x30, 0x80]), Err("bad length"));
        assert_eq!(tlv(&[0x30, 0x05, 0x00]), Err("truncated"));
        assert_eq!(tlv(&[0x30]), Err("truncated"));
        assert!(validity(b"not a certificate").is_err());
        assert_eq!(end_point_hash(&[0x30, 0x00]), None);
    }
}
