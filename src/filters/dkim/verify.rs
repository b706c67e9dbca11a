//! DKIM verification (RFC 6376 6, RFC 8463, RFC 8301): the signatures of a message's header
//! section checked one by one (at most [`MAX_SIGNATURES`]), the body streamed once per
//! (canonicalization, `l=`) pair, keys fetched through [`Lookup::txt`] at `finish`.
//!
//! Results (RFC 8601 2.7.1): a bad signature or key record, an unknown algorithm, `rsa-sha1`
//! (RFC 8301 3.1), a missing or revoked key (RFC 6376 6.1.2 "PERMFAIL") and an expired signature
//! are `permerror`; a DNS failure is `temperror`; a body hash or signature that does not match,
//! and an `l=` longer than the body, are `fail`.

use ring::signature::{ED25519, RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY, UnparsedPublicKey};

use super::canon::{self, BodyHasher, Canon, Field};
use super::header::{self, Signature, tag, tag_list};
use super::key::{self, KeyError, KeyType, PublicKey};
use super::{DkimResult, Verdict};
use crate::dns::{DnsError, Lookup};

/// Signatures checked per message; the rest are ignored (a bound on DNS queries and hashing).
pub const MAX_SIGNATURES: usize = 5;

/// Checks the DKIM signatures of one message, fed as it streams.
pub struct Verifier {
    header: Vec<u8>,
    /// One per DKIM-Signature field, in header order.
    sigs: Vec<Pending>,
    bodies: Vec<BodyHasher>,
}

enum Pending {
    /// Already decided (a permerror found while parsing).
    Done(Verdict),
    Check {
        sig: Box<Signature>,
        field: usize,
        body: usize,
        verdict: Verdict,
    },
}

impl Verifier {
    /// `header` is the header section as received (CRLF line ends, without the empty line).
    pub fn new(header: &[u8]) -> Verifier {
        let mut v = Verifier { header: header.to_vec(), sigs: Vec::new(), bodies: Vec::new() };
        let fields = canon::fields(&v.header);
        let mut pending = Vec::new();
        for (i, f) in fields.iter().enumerate() {
            if !f.name.eq_ignore_ascii_case(b"DKIM-Signature") {
                continue;
            }
            if pending.len() == MAX_SIGNATURES {
                break;
            }
            pending.push(Self::parse(i, f, &mut v.bodies));
        }
        v.sigs = pending;
        v
    }

    fn parse(index: usize, field: &Field<'_>, bodies: &mut Vec<BodyHasher>) -> Pending {
        let mut verdict = Verdict {
            result: DkimResult::PermError,
            domain: String::new(),
            selector: String::new(),
            algorithm: String::new(),
            header_b: String::new(),
            identity: None,
            reason: None,
        };
        let tags = match tag_list(field.value()) {
            Ok(t) => t,
            Err(e) => {
                verdict.reason = Some(format!("bad signature: {e}"));
                return Pending::Done(verdict);
            }
        };
        // What the signature claims, for the report, before it is checked.
        verdict.domain = tag(&tags, "d").unwrap_or_default().to_ascii_lowercase();
        verdict.selector = tag(&tags, "s").unwrap_or_default().to_string();
        verdict.algorithm = tag(&tags, "a").unwrap_or_default().to_ascii_lowercase();
        verdict.identity = tag(&tags, "i").map(str::to_string);
        verdict.header_b = tag(&tags, "b")
            .unwrap_or_default()
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .take(8)
            .collect();
        match Signature::from_tags(&tags) {
            Err(e) => {
                verdict.reason = Some(format!("bad signature: {e}"));
                Pending::Done(verdict)
            }
            Ok(sig) => {
                let body = match bodies
                    .iter()
                    .position(|b| b.canon() == sig.body_canon && b.limit() == sig.length)
                {
                    Some(i) => i,
                    None => {
                        bodies.push(BodyHasher::new(sig.body_canon, sig.length));
                        bodies.len() - 1
                    }
                };
                Pending::Check { sig: Box::new(sig), field: index, body, verdict }
            }
        }
    }

    /// Feeds the next piece of the body (CRLF line ends).
    pub fn feed(&mut self, body: &[u8]) {
        for b in &mut self.bodies {
            b.feed(body);
        }
    }

    /// Looks up the keys and decides each signature; no signature gives an empty list.
    pub fn finish(self, dns: &dyn Lookup, now_unix: u64) -> Vec<Verdict> {
        let hashes: Vec<canon::BodyHash> = self.bodies.into_iter().map(BodyHasher::finish).collect();
        let fields = canon::fields(&self.header);
        self.sigs
            .into_iter()
            .map(|p| match p {
                Pending::Done(v) => v,
                Pending::Check { sig, field, body, mut verdict } => {
                    let (result, reason) = match check(&sig, &fields, field, &hashes[body], dns, now_unix) {
                        Ok(()) => (DkimResult::Pass, None),
                        Err((r, why)) => (r, Some(why)),
                    };
                    verdict.result = result;
                    verdict.reason = reason;
                    verdict
                }
            })
            .collect()
    }
}

type Outcome = Result<(), (DkimResult, String)>;

fn perm(why: impl Into<String>) -> (DkimResult, String) {
    (DkimResult::PermError, why.into())
}

fn fail(why: impl Into<String>) -> (DkimResult, String) {
    (DkimResult::Fail, why.into())
}

fn check(
    sig: &Signature,
    fields: &[Field<'_>],
    own: usize,
    body: &canon::BodyHash,
    dns: &dyn Lookup,
    now: u64,
) -> Outcome {
    // RFC 6376 6.1.1: an expired signature is not valid.
    if sig.expires.is_some_and(|x| x < now) {
        return Err(perm("signature expired"));
    }
    let key = fetch_key(sig, dns)?;
    if key.strict {
        let idom = sig.identity.rsplit('@').next().unwrap_or_default();
        if !idom.eq_ignore_ascii_case(&sig.domain) {
            return Err(perm("key t=s: i= domain must equal d="));
        }
    }
    // RFC 6376 3.5 l=: a body shorter than l= cannot have been what was signed.
    if sig.length.is_some_and(|l| body.length < l) {
        return Err(fail("l= is longer than the body"));
    }
    if body.digest != sig.body_hash {
        return Err(fail("body hash did not verify"));
    }
    let data = header_data(sig.header_canon, &sig.headers, fields, fields[own].raw);
    let ok = match sig.algorithm {
        header::Algorithm::RsaSha256 => {
            // RFC 8301 3.2: verifiers accept RSA keys of 1024 to 4096 bits (and ring up to 8192).
            UnparsedPublicKey::new(&RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY, &key.data)
                .verify(&data, &sig.signature)
                .is_ok()
        }
        header::Algorithm::Ed25519Sha256 => {
            // RFC 8463 3: Ed25519 signs the SHA-256 of the canonical header data.
            let digest = ring::digest::digest(&ring::digest::SHA256, &data);
            UnparsedPublicKey::new(&ED25519, &key.data).verify(digest.as_ref(), &sig.signature).is_ok()
        }
    };
    if ok { Ok(()) } else { Err(fail("signature did not verify")) }
}

/// The key record at `s._domainkey.d` (RFC 6376 3.6.2.1): TXT strings joined (3.6.2.2). Of
/// several records, the first usable one of the signature's key type counts (a domain may publish
/// an RSA and an Ed25519 key under one selector).
fn fetch_key(sig: &Signature, dns: &dyn Lookup) -> Result<PublicKey, (DkimResult, String)> {
    let name = format!("{}._domainkey.{}", sig.selector, sig.domain);
    let records = match dns.txt(&name) {
        Ok(r) => r,
        Err(DnsError::NxDomain) => return Err(perm(format!("no key for signature ({name} does not exist)"))),
        Err(e) => return Err((DkimResult::TempError, format!("key lookup {name}: {e}"))),
    };
    let want = KeyType::of(sig.algorithm);
    let mut first_err = None;
    let mut other_type = false;
    for strings in records {
        match key::parse_record(&strings.concat()) {
            Ok(k) if k.algorithm_key == want => return Ok(k),
            Ok(_) => other_type = true,
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    Err(match first_err {
        _ if other_type => perm("key type does not match the signature algorithm"),
        None => perm(format!("no key for signature (no TXT record at {name})")),
        Some(KeyError::Revoked) => perm("key revoked"),
        Some(KeyError::Syntax(e)) => perm(format!("bad key record: {e}")),
    })
}

/// The data the header signature covers (RFC 6376 3.7, 5.4.2): each name of `h=` takes the
/// bottom-most instance not yet used (none left: it adds nothing), canonicalized; then the
/// signature field itself with `b=` blanked and no final CRLF.
pub fn header_data(canon: Canon, names: &[String], fields: &[Field<'_>], sig_raw: &[u8]) -> Vec<u8> {
    let mut used = vec![false; fields.len()];
    let mut out = Vec::new();
    for name in names {
        let found = (0..fields.len())
            .rev()
            .find(|&i| !used[i] && fields[i].name.eq_ignore_ascii_case(name.as_bytes()));
        if let Some(i) = found {
            used[i] = true;
            canon::header_field(canon, fields[i].raw, &mut out);
        }
    }
    canon::header_field(canon, &header::blank_b(sig_raw), &mut out);
    out.truncate(out.len() - 2);
    out
}
