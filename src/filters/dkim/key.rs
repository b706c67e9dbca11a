//! DKIM keys: the public key record published at `SELECTOR._domainkey.DOMAIN` (RFC 6376 3.6.1,
//! RFC 8463 4), with a small bounded DER reader that unwraps an RSA SubjectPublicKeyInfo (RFC 5280
//! 4.1.2.7, RFC 3279 2.3.1) into the PKCS#1 RSAPublicKey that ring verifies with; and the signing
//! keys kept in `DATA_DIR/dkim/DOMAIN.SELECTOR.{rsa,ed25519}.pem` (PKCS#8, RFC 5958, in PEM).

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::signature::{Ed25519KeyPair, KeyPair, RsaKeyPair};

use super::header::{Algorithm, base64_fws, tag, tag_list};

/// A usable public key from DNS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKey {
    pub algorithm_key: KeyType,
    /// RSA: the PKCS#1 RSAPublicKey DER; Ed25519: the 32 raw octets.
    pub data: Vec<u8>,
    /// `t=s`: the `i=` domain must be `d=` itself (3.6.1).
    pub strict: bool,
    /// `t=y`: the domain is testing DKIM.
    pub testing: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyType {
    Rsa,
    Ed25519,
}

impl KeyType {
    pub fn of(algorithm: Algorithm) -> KeyType {
        match algorithm {
            Algorithm::RsaSha256 => KeyType::Rsa,
            Algorithm::Ed25519Sha256 => KeyType::Ed25519,
        }
    }
}

/// Why a key record cannot be used; every one is a permanent failure (RFC 6376 6.1.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyError {
    /// `p=` is empty (3.6.1).
    Revoked,
    Syntax(String),
}

/// Parses one key record (its character-strings already joined, RFC 6376 3.6.2.2).
pub fn parse_record(txt: &[u8]) -> Result<PublicKey, KeyError> {
    let syn = |s: &str| KeyError::Syntax(s.to_string());
    let tags = tag_list(txt).map_err(KeyError::Syntax)?;
    if let Some((i, (_, v))) = tags.iter().enumerate().find(|(_, (n, _))| n == "v") {
        // 3.6.1: if present, v= is first and is exactly DKIM1.
        if i != 0 || v != "DKIM1" {
            return Err(syn("v= is not DKIM1 as the first tag"));
        }
    }
    if let Some(h) = tag(&tags, "h")
        && !h.split(':').any(|a| a.trim().eq_ignore_ascii_case("sha256"))
    {
        return Err(syn("key h= does not allow sha256"));
    }
    if let Some(s) = tag(&tags, "s")
        && !s.split(':').any(|a| matches!(a.trim(), "*" | "email"))
    {
        return Err(syn("key s= does not allow email"));
    }
    let flags: Vec<&str> = tag(&tags, "t").map(|t| t.split(':').map(str::trim).collect()).unwrap_or_default();
    let key_type = match tag(&tags, "k").map(str::to_ascii_lowercase).as_deref() {
        None | Some("rsa") => KeyType::Rsa,
        Some("ed25519") => KeyType::Ed25519,
        Some(k) => return Err(KeyError::Syntax(format!("unknown key type k={k}"))),
    };
    let p = tag(&tags, "p").ok_or_else(|| syn("missing p= tag"))?;
    let raw = base64_fws(p).ok_or_else(|| syn("p= is not base64"))?;
    if raw.is_empty() {
        return Err(KeyError::Revoked);
    }
    let data = match key_type {
        KeyType::Rsa => rsa_public_key(&raw).map_err(|e| KeyError::Syntax(format!("p=: {e}")))?.to_vec(),
        KeyType::Ed25519 if raw.len() == 32 => raw,
        KeyType::Ed25519 => return Err(syn("p= is not a 32-octet Ed25519 key")),
    };
    Ok(PublicKey {
        algorithm_key: key_type,
        data,
        strict: flags.contains(&"s"),
        testing: flags.contains(&"y"),
    })
}

// DER (X.690 8.1, definite lengths only) through the certificate code's reader: enough for
// SubjectPublicKeyInfo.
use crate::tls::der::tlv;

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const BIT_STRING: u8 = 0x03;
const OID: u8 = 0x06;
/// 1.2.840.113549.1.1.1 (RFC 3279 2.3.1).
const RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];

/// The PKCS#1 RSAPublicKey inside `der`: a SubjectPublicKeyInfo of rsaEncryption (what RFC 6376
/// 3.6.1 publishes), or a bare RSAPublicKey (which some publish and other verifiers accept).
pub fn rsa_public_key(der: &[u8]) -> Result<&[u8], &'static str> {
    let (t, body, rest) = tlv(der)?;
    if t != SEQUENCE || !rest.is_empty() {
        return Err("not a DER sequence");
    }
    let (t1, alg, after) = tlv(body)?;
    match t1 {
        INTEGER => {
            // RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }
            let (t2, _, end) = tlv(after)?;
            if t2 != INTEGER || !end.is_empty() {
                return Err("bad RSAPublicKey");
            }
            Ok(der)
        }
        SEQUENCE => {
            let (t_oid, oid, _) = tlv(alg)?;
            if t_oid != OID || oid != RSA_ENCRYPTION {
                return Err("not an RSA key");
            }
            let (t_bits, bits, end) = tlv(after)?;
            if t_bits != BIT_STRING || !end.is_empty() {
                return Err("bad SubjectPublicKeyInfo");
            }
            match bits.split_first() {
                Some((0, key)) => {
                    rsa_public_key(key)?;
                    Ok(key)
                }
                _ => Err("bad key bit string"),
            }
        }
        _ => Err("not an RSA public key"),
    }
}

fn der_len(n: usize, out: &mut Vec<u8>) {
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let bytes: Vec<u8> = n.to_be_bytes().into_iter().skip_while(|&b| b == 0).collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend_from_slice(&bytes);
    }
}

/// Wraps a PKCS#1 RSAPublicKey in a SubjectPublicKeyInfo for the `p=` of a record.
pub fn spki_from_pkcs1(pkcs1: &[u8]) -> Vec<u8> {
    let mut alg = vec![OID, RSA_ENCRYPTION.len() as u8];
    alg.extend_from_slice(RSA_ENCRYPTION);
    alg.extend_from_slice(&[0x05, 0x00]); // NULL parameters
    let mut inner = vec![SEQUENCE];
    der_len(alg.len(), &mut inner);
    inner.extend_from_slice(&alg);
    inner.push(BIT_STRING);
    der_len(pkcs1.len() + 1, &mut inner);
    inner.push(0);
    inner.extend_from_slice(pkcs1);
    let mut out = vec![SEQUENCE];
    der_len(inner.len(), &mut out);
    out.extend_from_slice(&inner);
    out
}

/// A private key that signs for `domain` under `selector`.
pub struct SigningKey {
    pub domain: String,
    pub selector: String,
    pub(super) pair: Pair,
}

pub(super) enum Pair {
    Rsa(RsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({}, {}, {})", self.domain, self.selector, self.algorithm().name())
    }
}

impl SigningKey {
    /// Loads a PEM private key: PKCS#8 (`PRIVATE KEY`, RSA or Ed25519) or PKCS#1 (`RSA PRIVATE KEY`).
    pub fn from_pem(domain: &str, selector: &str, pem: &[u8]) -> Result<SigningKey, String> {
        let (label, der) = pem_decode(pem).ok_or("not a PEM private key")?;
        let pair = match label.as_str() {
            "RSA PRIVATE KEY" => Pair::Rsa(RsaKeyPair::from_der(&der).map_err(|e| format!("RSA key: {e}"))?),
            "PRIVATE KEY" => match RsaKeyPair::from_pkcs8(&der) {
                Ok(k) => Pair::Rsa(k),
                Err(rsa_err) => match Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der) {
                    Ok(k) => Pair::Ed25519(k),
                    Err(_) => return Err(format!("neither a usable RSA nor an Ed25519 key ({rsa_err})")),
                },
            },
            other => return Err(format!("PEM {other:?} is not a private key")),
        };
        Ok(SigningKey { domain: domain.to_ascii_lowercase(), selector: selector.to_string(), pair })
    }

    pub fn algorithm(&self) -> Algorithm {
        match self.pair {
            Pair::Rsa(_) => Algorithm::RsaSha256,
            Pair::Ed25519(_) => Algorithm::Ed25519Sha256,
        }
    }

    /// The TXT record to publish at `SELECTOR._domainkey.DOMAIN` (RFC 6376 3.6.1, RFC 8463 4).
    pub fn record(&self) -> String {
        match &self.pair {
            Pair::Rsa(k) => {
                format!("v=DKIM1; k=rsa; p={}", STANDARD.encode(spki_from_pkcs1(k.public_key().as_ref())))
            }
            Pair::Ed25519(k) => format!("v=DKIM1; k=ed25519; p={}", STANDARD.encode(k.public_key().as_ref())),
        }
    }

    /// Signs the canonical header data (RFC 6376 3.7; RFC 8463 3: Ed25519 signs its SHA-256).
    pub(super) fn sign(&self, data: &[u8]) -> Result<Vec<u8>, String> {
        match &self.pair {
            Pair::Rsa(k) => {
                let mut sig = vec![0; k.public().modulus_len()];
                let rng = ring::rand::SystemRandom::new();
                k.sign(&ring::signature::RSA_PKCS1_SHA256, &rng, data, &mut sig)
                    .map_err(|_| "RSA signing failed".to_string())?;
                Ok(sig)
            }
            Pair::Ed25519(k) => {
                let digest = ring::digest::digest(&ring::digest::SHA256, data);
                Ok(k.sign(digest.as_ref()).as_ref().to_vec())
            }
        }
    }
}

/// The first PEM block: (label, DER).
pub fn pem_decode(pem: &[u8]) -> Option<(String, Vec<u8>)> {
    let text = std::str::from_utf8(pem).ok()?;
    let start = text.find("-----BEGIN ")?;
    let rest = &text[start + 11..];
    let label_end = rest.find("-----")?;
    let label = &rest[..label_end];
    let body = &rest[label_end + 5..];
    let end = body.find(&format!("-----END {label}-----"))?;
    let b64: String = body[..end].chars().filter(|c| !c.is_whitespace()).collect();
    Some((label.to_string(), STANDARD.decode(b64).ok()?))
}

/// PEM text of a DER document, 64 columns (RFC 7468).
pub fn pem_encode(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// The file name of a key: `DOMAIN.SELECTOR.rsa.pem` or `DOMAIN.SELECTOR.ed25519.pem`.
pub fn file_name(domain: &str, selector: &str, key: KeyType) -> String {
    let kind = match key {
        KeyType::Rsa => "rsa",
        KeyType::Ed25519 => "ed25519",
    };
    format!("{}.{selector}.{kind}.pem", domain.to_ascii_lowercase())
}

/// The signing keys of `domain` in `dir`: those of `selector`, or with `None` the newest key of
/// each type (a new selector takes over once its key is written). RSA first, then Ed25519. No key
/// at all is an empty list, not an error.
pub fn keys_for(dir: &Path, domain: &str, selector: Option<&str>) -> Result<Vec<SigningKey>, String> {
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    let prefix = format!("{domain}.");
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("{}: {e}", dir.display())),
    };
    // (selector, type, path, mtime)
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| format!("{}: {e}", dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(&prefix) else { continue };
        let (sel, kind) = if let Some(s) = rest.strip_suffix(".rsa.pem") {
            (s, KeyType::Rsa)
        } else if let Some(s) = rest.strip_suffix(".ed25519.pem") {
            (s, KeyType::Ed25519)
        } else {
            continue;
        };
        if sel.is_empty() || selector.is_some_and(|want| want != sel) {
            continue;
        }
        let mtime = entry.metadata().and_then(|m| m.modified()).ok();
        found.push((sel.to_string(), kind, entry.path(), mtime));
    }
    // With a selector: its keys. Without: the newest key of each type, whose selectors may differ
    // (one selector per algorithm, as `keygen` makes them: verifiers such as dkimpy read only the
    // first TXT record of a name).
    let mut keys = Vec::new();
    for kind in [KeyType::Rsa, KeyType::Ed25519] {
        let newest =
            found.iter().filter(|f| f.1 == kind).max_by(|a, b| a.3.cmp(&b.3).then_with(|| a.0.cmp(&b.0)));
        if let Some((sel, _, path, _)) = newest {
            let pem = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
            let key =
                SigningKey::from_pem(&domain, sel, &pem).map_err(|e| format!("{}: {e}", path.display()))?;
            if KeyType::of(key.algorithm()) != kind {
                return Err(format!("{}: the key inside is not {kind:?}", path.display()));
            }
            keys.push(key);
        }
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 8463 A.2's RSA record (1024 bits).
    pub const RFC8463_RSA: &str = "v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWRiGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQiY/J16JYi0Qvx/byYzCNb3W91y3FutACDfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3Ip3G+2kryOTIKT+l/K4w3QIDAQAB";

    #[test]
    fn records_parse_and_unwrap() {
        let k = parse_record(RFC8463_RSA.as_bytes()).unwrap();
        assert_eq!(k.algorithm_key, KeyType::Rsa);
        assert_eq!(k.data[0], SEQUENCE);
        // Wrapping the unwrapped key again gives the published SubjectPublicKeyInfo back.
        let p = base64_fws(&RFC8463_RSA[RFC8463_RSA.find("p=").unwrap() + 2..]).unwrap();
        assert_eq!(spki_from_pkcs1(&k.data), p);
        // A bare RSAPublicKey is accepted too.
        assert_eq!(rsa_public_key(&k.data).unwrap(), &k.data[..]);
        let ed = parse_record(b"v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=").unwrap();
        assert_eq!((ed.algorithm_key, ed.data.len(), ed.strict), (KeyType::Ed25519, 32, false));
        let t = parse_record(
            b"k=ed25519; t=y:s; h=sha1:sha256; s=email; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=",
        )
        .unwrap();
        assert!(t.strict && t.testing);
    }

    #[test]
    fn record_errors() {
        assert_eq!(parse_record(b"v=DKIM1; k=rsa; p="), Err(KeyError::Revoked));
        assert_eq!(parse_record(b"v=DKIM1; p= ;"), Err(KeyError::Revoked));
        for bad in [
            &b"v=DKIM2; p=AAAA"[..],
            b"k=rsa; v=DKIM1; p=AAAA",
            b"v=DKIM1; k=dsa; p=AAAA",
            b"v=DKIM1; h=sha1; p=AAAA",
            b"v=DKIM1; s=other; p=AAAA",
            b"v=DKIM1; k=rsa",
            b"v=DKIM1; k=rsa; p=AAAA",
            b"v=DKIM1; k=ed25519; p=AAAA",
            b"v=DKIM1; k=rsa; p=!!",
            b"garbage",
            b"v=DKIM1; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQ",
        ] {
            assert!(
                matches!(parse_record(bad), Err(KeyError::Syntax(_))),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn der_reader_never_panics_on_truncations() {
        let p = base64_fws(&RFC8463_RSA[RFC8463_RSA.find("p=").unwrap() + 2..]).unwrap();
        for i in 0..p.len() {
            assert!(rsa_public_key(&p[..i]).is_err());
            let mut q = p.clone();
            q[i] ^= 0xff;
            let _ = rsa_public_key(&q);
        }
        assert!(rsa_public_key(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]).is_err());
    }

    #[test]
    fn key_files_pick_the_newest_selector() {
        let dir = tempfile::tempdir().unwrap();
        let rng = ring::rand::SystemRandom::new();
        let write = |name: &str| {
            let doc = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
            std::fs::write(dir.path().join(name), pem_encode("PRIVATE KEY", doc.as_ref())).unwrap();
        };
        write("example.org.old.ed25519.pem");
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        std::fs::File::options()
            .write(true)
            .open(dir.path().join("example.org.old.ed25519.pem"))
            .unwrap()
            .set_modified(old)
            .unwrap();
        write("example.org.new.ed25519.pem");
        write("sub.example.org.other.ed25519.pem");
        std::fs::write(dir.path().join("example.org.junk.txt"), "x").unwrap();
        let keys = keys_for(dir.path(), "Example.ORG", None).unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!((keys[0].domain.as_str(), keys[0].selector.as_str()), ("example.org", "new"));
        assert_eq!(keys_for(dir.path(), "example.org", Some("old")).unwrap()[0].selector, "old");
        assert!(keys_for(dir.path(), "example.org", Some("none")).unwrap().is_empty());
        assert!(keys_for(&dir.path().join("missing"), "example.org", None).unwrap().is_empty());
        // A key file of the wrong kind is an error, not silently used.
        std::fs::copy(
            dir.path().join("example.org.new.ed25519.pem"),
            dir.path().join("example.org.x.rsa.pem"),
        )
        .unwrap();
        assert!(keys_for(dir.path(), "example.org", Some("x")).is_err());
    }
}
