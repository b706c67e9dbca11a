//! Password schemes as Dovecot's passwd-file stores them (`{SCHEME}data`, the names of doveadm-pw(1)):
//! parsing, constant-time verification, the secrets the SASL mechanisms need (CRAM-MD5 RFC 2195,
//! DIGEST-MD5 RFC 2831, SCRAM RFC 5802/7677) and new secrets for `buzon passwd`. The crypt(3) family
//! (DES, `$1$`, `$5$`, `$6$`, `$2y$`, yescrypt `$y$`) goes through the system's libxcrypt (`shadow`).

use super::shadow::{crypt, gensalt};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Digest;
use std::fmt;
use subtle::ConstantTimeEq;

/// The scheme `buzon passwd` writes. SHA512-CRYPT rather than ARGON2ID: every Dovecot and every
/// libc reads it (a passwd-file can be shared with Dovecot as it is), and its cost is CPU only.
/// Argon2's strength is memory (Dovecot writes m=64 MiB): on a small machine a burst of AUTH
/// attempts would cost 64 MiB each, an easy way to exhaust a Raspberry Pi. ARGON2ID and yescrypt
/// (`-s CRYPT`) are one option away.
pub const DEFAULT_SCHEME: Scheme = Scheme::Sha512Crypt;

/// Iterations for SCRAM secrets made here (RFC 7677 section 4: at least 4096; Dovecot's default).
pub const SCRAM_ITERATIONS: u32 = 4096;

/// Refused as garbled above these (a stray digit must not make one AUTH allocate gigabytes or spin
/// for minutes): Argon2 memory in KiB, Argon2 passes, PBKDF2/SCRAM iterations.
const ARGON2_MAX_M_KIB: u32 = 256 * 1024;
const ARGON2_MAX_T: u32 = 64;
const MAX_ITERATIONS: u32 = 10_000_000;

/// A password scheme, by its Dovecot name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scheme {
    Plain,
    /// Any crypt(3) string; new ones use libxcrypt's preferred method (yescrypt on Debian 11+).
    Crypt,
    Md5Crypt,
    Sha256Crypt,
    Sha512Crypt,
    BlfCrypt,
    CramMd5,
    DigestMd5,
    ScramSha1,
    ScramSha256,
    Argon2i,
    Argon2id,
    Pbkdf2,
    PlainMd5,
    LdapMd5,
    Sha1,
    Sha256,
    Sha512,
    Smd5,
    Ssha,
    Ssha256,
    Ssha512,
}

/// Names as written in braces (case-insensitive); the first one for a scheme is what we write.
const NAMES: &[(&str, Scheme)] = &[
    ("PLAIN", Scheme::Plain),
    ("CLEAR", Scheme::Plain),
    ("CLEARTEXT", Scheme::Plain),
    ("CRYPT", Scheme::Crypt),
    ("DES-CRYPT", Scheme::Crypt),
    ("MD5-CRYPT", Scheme::Md5Crypt),
    ("MD5", Scheme::Md5Crypt), // Dovecot: MD5 is an old name of MD5-CRYPT, not a bare MD5
    ("SHA256-CRYPT", Scheme::Sha256Crypt),
    ("SHA512-CRYPT", Scheme::Sha512Crypt),
    ("BLF-CRYPT", Scheme::BlfCrypt),
    ("CRAM-MD5", Scheme::CramMd5),
    ("HMAC-MD5", Scheme::CramMd5),
    ("DIGEST-MD5", Scheme::DigestMd5),
    ("SCRAM-SHA-1", Scheme::ScramSha1),
    ("SCRAM-SHA-256", Scheme::ScramSha256),
    ("ARGON2I", Scheme::Argon2i),
    ("ARGON2ID", Scheme::Argon2id),
    ("PBKDF2", Scheme::Pbkdf2),
    ("PLAIN-MD5", Scheme::PlainMd5),
    ("LDAP-MD5", Scheme::LdapMd5),
    ("SHA", Scheme::Sha1),
    ("SHA1", Scheme::Sha1),
    ("SHA256", Scheme::Sha256),
    ("SHA512", Scheme::Sha512),
    ("SMD5", Scheme::Smd5),
    ("SSHA", Scheme::Ssha),
    ("SSHA256", Scheme::Ssha256),
    ("SSHA512", Scheme::Ssha512),
];

impl Scheme {
    /// The Dovecot name we write, e.g. `SHA512-CRYPT`.
    pub fn name(self) -> &'static str {
        NAMES.iter().find(|(_, s)| *s == self).map_or("?", |(n, _)| n)
    }

    /// A scheme by any of its names, in any case.
    pub fn from_name(name: &str) -> Option<Scheme> {
        NAMES.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, s)| *s)
    }

    /// The plain digest schemes: (algorithm, salted, default encoding is hex).
    fn digest(self) -> Option<(Algo, bool, bool)> {
        Some(match self {
            Scheme::PlainMd5 => (Algo::Md5, false, true),
            Scheme::LdapMd5 => (Algo::Md5, false, false),
            Scheme::Sha1 => (Algo::Sha1, false, false),
            Scheme::Sha256 => (Algo::Sha256, false, false),
            Scheme::Sha512 => (Algo::Sha512, false, false),
            Scheme::Smd5 => (Algo::Md5, true, false),
            Scheme::Ssha => (Algo::Sha1, true, false),
            Scheme::Ssha256 => (Algo::Sha256, true, false),
            Scheme::Ssha512 => (Algo::Sha512, true, false),
            _ => return None,
        })
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Scheme {
    type Err = String;
    fn from_str(s: &str) -> Result<Scheme, String> {
        Scheme::from_name(s).ok_or_else(|| format!("unknown password scheme {s:?}"))
    }
}

/// The hash function of a SCRAM mechanism.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScramHash {
    Sha1,
    Sha256,
}

/// What a SCRAM server keeps (RFC 5802 section 3): never the password, never SaltedPassword.
#[derive(Clone, PartialEq, Eq)]
pub struct ScramKeys {
    pub iterations: u32,
    pub salt: Vec<u8>,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
}

impl fmt::Debug for ScramKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramKeys").field("iterations", &self.iterations).finish_non_exhaustive()
    }
}

impl ScramHash {
    fn len(self) -> usize {
        match self {
            ScramHash::Sha1 => 20,
            ScramHash::Sha256 => 32,
        }
    }

    /// HMAC(key, data) (RFC 2104).
    pub fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        fn run<M: Mac + KeyInit>(key: &[u8], data: &[u8]) -> Vec<u8> {
            // HMAC takes a key of any length: new_from_slice cannot fail.
            match <M as KeyInit>::new_from_slice(key) {
                Ok(mut m) => {
                    m.update(data);
                    m.finalize().into_bytes().to_vec()
                }
                Err(_) => Vec::new(),
            }
        }
        match self {
            ScramHash::Sha1 => run::<Hmac<sha1::Sha1>>(key, data),
            ScramHash::Sha256 => run::<Hmac<sha2::Sha256>>(key, data),
        }
    }

    /// H(data).
    pub fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            ScramHash::Sha1 => sha1::Sha1::digest(data).to_vec(),
            ScramHash::Sha256 => sha2::Sha256::digest(data).to_vec(),
        }
    }

    /// RFC 5802 section 2.2: SaltedPassword := Hi(Normalize(password), salt, i), Hi being PBKDF2
    /// with this HMAC. (SASLprep normalisation is the caller's: ASCII passwords are unchanged.)
    pub fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        let mut out = vec![0u8; self.len()];
        match self {
            ScramHash::Sha1 => pbkdf2::pbkdf2_hmac::<sha1::Sha1>(password, salt, iterations, &mut out),
            ScramHash::Sha256 => pbkdf2::pbkdf2_hmac::<sha2::Sha256>(password, salt, iterations, &mut out),
        }
        out
    }
}

impl ScramKeys {
    /// RFC 5802 section 3: ClientKey := HMAC(SaltedPassword, "Client Key"), StoredKey := H(ClientKey),
    /// ServerKey := HMAC(SaltedPassword, "Server Key").
    pub fn derive(hash: ScramHash, password: &[u8], salt: &[u8], iterations: u32) -> ScramKeys {
        let salted = hash.salted_password(password, salt, iterations);
        ScramKeys {
            iterations,
            salt: salt.to_vec(),
            stored_key: hash.hash(&hash.hmac(&salted, b"Client Key")),
            server_key: hash.hmac(&salted, b"Server Key"),
        }
    }
}

/// The digest algorithms of the simple hash schemes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Algo {
    Md5,
    Sha1,
    Sha256,
    Sha512,
}

impl Algo {
    fn len(self) -> usize {
        match self {
            Algo::Md5 => 16,
            Algo::Sha1 => 20,
            Algo::Sha256 => 32,
            Algo::Sha512 => 64,
        }
    }

    fn digest(self, parts: &[&[u8]]) -> Vec<u8> {
        fn run<D: Digest>(parts: &[&[u8]]) -> Vec<u8> {
            let mut d = D::new();
            for p in parts {
                d.update(p);
            }
            d.finalize().to_vec()
        }
        match self {
            Algo::Md5 => run::<md5::Md5>(parts),
            Algo::Sha1 => run::<sha1::Sha1>(parts),
            Algo::Sha256 => run::<sha2::Sha256>(parts),
            Algo::Sha512 => run::<sha2::Sha512>(parts),
        }
    }
}

/// The decoded secret, checked when parsed so that a garbled one fails at load, not at AUTH.
#[derive(Clone, PartialEq, Eq)]
enum Secret {
    Plain(String),
    /// A crypt(3) string; `Locked` never verifies (a `!`/`*` shadow entry, an expired account).
    Crypt(String),
    Locked,
    /// digest || salt.
    Digest(Algo, Vec<u8>),
    /// The HMAC-MD5 inner and outer MD5 states after the padded key block (RFC 2195 via RFC 2104).
    CramMd5 {
        inner: [u32; 4],
        outer: [u32; 4],
    },
    /// MD5(user ":" realm ":" password) (RFC 2831 2.1.2.1, A1's inner hash).
    DigestMd5([u8; 16]),
    Scram(ScramHash, ScramKeys),
    Argon2 {
        algorithm: argon2::Algorithm,
        version: argon2::Version,
        m: u32,
        t: u32,
        p: u32,
        salt: Vec<u8>,
        hash: Vec<u8>,
    },
    /// Dovecot's PBKDF2: PBKDF2-HMAC-SHA1 over the salt as written.
    Pbkdf2 {
        salt: String,
        rounds: u32,
        key: Vec<u8>,
    },
}

/// A stored secret, parsed from `{SCHEME}data` (no braces: `{CRYPT}`, Dovecot's rule).
#[derive(Clone, PartialEq, Eq)]
pub struct Stored {
    scheme: Scheme,
    data: String,
    secret: Secret,
}

impl fmt::Debug for Stored {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The secret stays out of logs.
        f.debug_struct("Stored").field("scheme", &self.scheme).finish_non_exhaustive()
    }
}

/// `{SCHEME.HEX}` / `{SCHEME.B64}`: how the binary part is written.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Enc {
    Hex,
    B64,
}

impl Stored {
    /// Parses a password field. The error never quotes the secret.
    pub fn parse(s: &str) -> Result<Stored, String> {
        let (name, data) = match s.strip_prefix('{') {
            Some(rest) => rest.split_once('}').ok_or("'{' without a closing '}'")?,
            None => ("CRYPT", s),
        };
        let (base, enc) = match name.rsplit_once('.') {
            Some((b, e)) if e.eq_ignore_ascii_case("HEX") => (b, Some(Enc::Hex)),
            Some((b, e)) if e.eq_ignore_ascii_case("B64") || e.eq_ignore_ascii_case("BASE64") => {
                (b, Some(Enc::B64))
            }
            _ => (name, None),
        };
        let scheme =
            Scheme::from_name(base).ok_or_else(|| format!("unsupported password scheme {{{name}}}"))?;
        let bad = |what: &str| Err(format!("{{{}}}: {what}", scheme.name()));
        let secret = match scheme {
            Scheme::Plain => Secret::Plain(match enc {
                None => data.to_string(),
                Some(e) => match decode(data, e).map(String::from_utf8) {
                    Some(Ok(p)) => p,
                    _ => return bad("not valid encoded text"),
                },
            }),
            _ if enc.is_some()
                && scheme.digest().is_none()
                && !matches!(scheme, Scheme::CramMd5 | Scheme::DigestMd5) =>
            {
                return bad("this scheme has no .HEX/.B64 form");
            }
            Scheme::Crypt
            | Scheme::Md5Crypt
            | Scheme::Sha256Crypt
            | Scheme::Sha512Crypt
            | Scheme::BlfCrypt => {
                let prefix = match scheme {
                    Scheme::Md5Crypt => "$1$",
                    Scheme::Sha256Crypt => "$5$",
                    Scheme::Sha512Crypt => "$6$",
                    Scheme::BlfCrypt => "$2",
                    _ => "",
                };
                if !data.starts_with(prefix) || data.len() < 2 || !data.bytes().all(|b| b.is_ascii_graphic())
                {
                    return bad("not a crypt(3) string of this kind");
                }
                Secret::Crypt(data.to_string())
            }
            Scheme::CramMd5 => {
                let Some(raw) = decode_fixed(data, enc, 32) else { return bad("expected 64 hex digits") };
                let word = |i: usize| u32::from_le_bytes([raw[i], raw[i + 1], raw[i + 2], raw[i + 3]]);
                // Dovecot's hmac_md5_get_cram_context(): the outer context first, then the inner.
                Secret::CramMd5 {
                    outer: [word(0), word(4), word(8), word(12)],
                    inner: [word(16), word(20), word(24), word(28)],
                }
            }
            Scheme::DigestMd5 => match decode_fixed(data, enc, 16).and_then(|r| r.try_into().ok()) {
                Some(r) => Secret::DigestMd5(r),
                None => return bad("expected 32 hex digits"),
            },
            Scheme::ScramSha1 | Scheme::ScramSha256 => {
                let hash = if scheme == Scheme::ScramSha1 { ScramHash::Sha1 } else { ScramHash::Sha256 };
                match parse_scram(data, hash) {
                    Some(k) => Secret::Scram(hash, k),
                    None => return bad("expected iterations,salt,stored_key,server_key (base64)"),
                }
            }
            Scheme::Argon2i | Scheme::Argon2id => match parse_argon2(data, scheme) {
                Ok(s) => s,
                Err(e) => return bad(e),
            },
            Scheme::Pbkdf2 => match parse_pbkdf2(data) {
                Some(s) => s,
                None => return bad("expected $1$salt$rounds$hex"),
            },
            _ => {
                let Some((algo, salted, hex)) = scheme.digest() else { return bad("unsupported") };
                let raw = if salted {
                    decode(data, enc.unwrap_or(if hex { Enc::Hex } else { Enc::B64 }))
                } else {
                    decode_fixed(data, enc, algo.len())
                };
                match raw {
                    // A salted digest needs some salt; an unsalted one has exactly the digest.
                    Some(r) if r.len() > algo.len() || (!salted && r.len() == algo.len()) => {
                        Secret::Digest(algo, r)
                    }
                    _ => return bad("not a digest of the right length"),
                }
            }
        };
        Ok(Stored { scheme, data: data.to_string(), secret })
    }

    /// A crypt(3) string from /etc/shadow, as `{CRYPT}`. Empty and locked (`!`, `*`) never verify.
    pub fn system(hash: &str) -> Stored {
        let secret =
            if hash.is_empty() || hash.starts_with(['!', '*']) || !hash.bytes().all(|b| b.is_ascii_graphic())
            {
                Secret::Locked
            } else {
                Secret::Crypt(hash.to_string())
            };
        Stored { scheme: Scheme::Crypt, data: hash.to_string(), secret }
    }

    /// A secret that matches no password (a locked or expired account).
    pub fn locked() -> Stored {
        Stored::system("!")
    }

    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// Verifies a cleartext password (AUTH PLAIN and LOGIN). Secrets are compared in constant time.
    /// `{DIGEST-MD5}` depends on the user name too: see [`Stored::verify_user`].
    pub fn verify(&self, password: &[u8]) -> bool {
        // No password has a NUL byte (RFC 4616 uses it as the separator; crypt(3) cannot take one),
        // and the HMAC-keyed schemes (CRAM-MD5, SCRAM, PBKDF2) pad keys with NULs: "pw" and "pw\0"
        // would both match.
        if password.contains(&0) {
            return false;
        }
        let eq = |a: &[u8], b: &[u8]| bool::from(a.ct_eq(b));
        match &self.secret {
            Secret::Plain(p) => eq(password, p.as_bytes()),
            Secret::Crypt(setting) => {
                crypt(password, setting).is_some_and(|out| eq(out.as_bytes(), setting.as_bytes()))
            }
            Secret::Locked | Secret::DigestMd5(_) => false,
            Secret::Digest(algo, raw) => {
                let (digest, salt) = raw.split_at(algo.len());
                eq(&algo.digest(&[password, salt]), digest)
            }
            Secret::CramMd5 { inner, outer } => {
                let (i, o) = cram_contexts(password);
                eq(&words(&i), &words(inner)) & eq(&words(&o), &words(outer))
            }
            Secret::Scram(hash, k) => {
                let mine = ScramKeys::derive(*hash, password, &k.salt, k.iterations);
                eq(&mine.stored_key, &k.stored_key) & eq(&mine.server_key, &k.server_key)
            }
            Secret::Argon2 { algorithm, version, m, t, p, salt, hash } => {
                let Ok(params) = argon2::Params::new(*m, *t, *p, Some(hash.len())) else { return false };
                let mut out = vec![0u8; hash.len()];
                argon2::Argon2::new(*algorithm, *version, params)
                    .hash_password_into(password, salt, &mut out)
                    .is_ok_and(|()| eq(&out, hash))
            }
            Secret::Pbkdf2 { salt, rounds, key } => {
                let mut out = vec![0u8; key.len()];
                pbkdf2::pbkdf2_hmac::<sha1::Sha1>(password, salt.as_bytes(), *rounds, &mut out);
                eq(&out, key)
            }
        }
    }

    /// [`Stored::verify`], and `{DIGEST-MD5}` with Dovecot's rule for the user name: `user@realm`,
    /// or `user` with an empty realm.
    pub fn verify_user(&self, user: &str, password: &[u8]) -> bool {
        match &self.secret {
            Secret::DigestMd5(stored) => {
                let (u, realm) = user.rsplit_once('@').unwrap_or((user, ""));
                bool::from(digest_md5_ha1(u, realm, password).ct_eq(stored))
            }
            _ => self.verify(password),
        }
    }

    /// RFC 2195: HMAC-MD5(key = password, challenge), from `{PLAIN}` or the `{CRAM-MD5}` contexts.
    pub fn cram_md5(&self, challenge: &[u8]) -> Option<[u8; 16]> {
        let (inner, outer) = match &self.secret {
            Secret::Plain(p) => cram_contexts(p.as_bytes()),
            Secret::CramMd5 { inner, outer } => (*inner, *outer),
            _ => return None,
        };
        Some(md5_resume(outer, &md5_resume(inner, challenge)))
    }

    /// The SCRAM keys: as stored (same hash), or derived from `{PLAIN}` with a fresh salt and
    /// [`SCRAM_ITERATIONS`] (None if the system has no randomness to give).
    pub fn scram(&self, hash: ScramHash) -> Option<ScramKeys> {
        match &self.secret {
            Secret::Scram(h, k) if *h == hash => Some(k.clone()),
            Secret::Plain(p) => {
                let salt = random_bytes(16).ok()?;
                Some(ScramKeys::derive(hash, p.as_bytes(), &salt, SCRAM_ITERATIONS))
            }
            _ => None,
        }
    }

    /// RFC 2831 2.1.2.1: H(username ":" realm ":" password), from `{PLAIN}`, or `{DIGEST-MD5}` as
    /// stored (which was made for one user and realm: the caller's must be those).
    pub fn digest_md5(&self, user: &str, realm: &str) -> Option<[u8; 16]> {
        match &self.secret {
            Secret::Plain(p) => Some(digest_md5_ha1(user, realm, p.as_bytes())),
            Secret::DigestMd5(h) => Some(*h),
            _ => None,
        }
    }

    /// The password itself, for `{PLAIN}` only.
    pub fn plaintext(&self) -> Option<&str> {
        match &self.secret {
            Secret::Plain(p) => Some(p),
            _ => None,
        }
    }
}

/// Makes a new `{SCHEME}...` secret for `password`, salted from the system's randomness.
pub fn hash(scheme: Scheme, password: &str) -> Result<String, String> {
    let pw = password.as_bytes();
    let data = match scheme {
        // A passwd-file field cannot hold ':' or a line break: write such a password base64-encoded.
        Scheme::Plain if password.bytes().any(|b| b == b':' || b.is_ascii_control()) => {
            return Ok(format!("{{PLAIN.B64}}{}", STANDARD.encode(pw)));
        }
        Scheme::Plain => password.to_string(),
        Scheme::Crypt | Scheme::Md5Crypt | Scheme::Sha256Crypt | Scheme::Sha512Crypt | Scheme::BlfCrypt => {
            let prefix = match scheme {
                Scheme::Md5Crypt => Some(c"$1$"),
                Scheme::Sha256Crypt => Some(c"$5$"),
                Scheme::Sha512Crypt => Some(c"$6$"),
                Scheme::BlfCrypt => Some(c"$2y$"),
                _ => None, // libxcrypt's preferred method
            };
            let setting = gensalt(prefix)?;
            crypt(pw, &setting)
                .ok_or_else(|| format!("{scheme}: crypt(3) failed (a NUL byte, or too long)"))?
        }
        Scheme::CramMd5 => {
            let (inner, outer) = cram_contexts(pw);
            let mut raw = words(&outer).to_vec();
            raw.extend_from_slice(&words(&inner));
            hex(&raw)
        }
        Scheme::DigestMd5 => {
            return Err("DIGEST-MD5 secrets depend on the user name and realm; use PLAIN".into());
        }
        Scheme::ScramSha1 | Scheme::ScramSha256 => {
            let h = if scheme == Scheme::ScramSha1 { ScramHash::Sha1 } else { ScramHash::Sha256 };
            let k = ScramKeys::derive(h, pw, &random_bytes(16)?, SCRAM_ITERATIONS);
            let b = |v: &[u8]| STANDARD.encode(v);
            format!("{},{},{},{}", k.iterations, b(&k.salt), b(&k.stored_key), b(&k.server_key))
        }
        Scheme::Argon2i | Scheme::Argon2id => {
            // The argon2 crate's defaults (OWASP: 19 MiB, 2 passes): affordable on a small machine.
            let (m, t, p) = (argon2::Params::DEFAULT_M_COST, argon2::Params::DEFAULT_T_COST, 1);
            let (algorithm, name) = match scheme {
                Scheme::Argon2i => (argon2::Algorithm::Argon2i, "argon2i"),
                _ => (argon2::Algorithm::Argon2id, "argon2id"),
            };
            let salt = random_bytes(16)?;
            let params = argon2::Params::new(m, t, p, Some(32)).map_err(|e| e.to_string())?;
            let mut out = [0u8; 32];
            argon2::Argon2::new(algorithm, argon2::Version::V0x13, params)
                .hash_password_into(pw, &salt, &mut out)
                .map_err(|e| format!("{scheme}: {e}"))?;
            let b = |v: &[u8]| STANDARD_NO_PAD.encode(v);
            format!("${name}$v=19$m={m},t={t},p={p}${}${}", b(&salt), b(&out))
        }
        Scheme::Pbkdf2 => {
            const ALPHABET: &[u8] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
            let salt: String =
                random_bytes(16)?.iter().map(|b| ALPHABET[usize::from(b & 63)] as char).collect();
            let mut key = [0u8; 20];
            pbkdf2::pbkdf2_hmac::<sha1::Sha1>(pw, salt.as_bytes(), 5000, &mut key);
            format!("$1${salt}$5000${}", hex(&key))
        }
        _ => {
            let Some((algo, salted, hexenc)) = scheme.digest() else {
                return Err(format!("{scheme}: unsupported"));
            };
            let salt = if salted { random_bytes(8)? } else { Vec::new() };
            let mut raw = algo.digest(&[pw, &salt]);
            raw.extend_from_slice(&salt);
            if hexenc { hex(&raw) } else { STANDARD.encode(&raw) }
        }
    };
    Ok(format!("{{{}}}{data}", scheme.name()))
}

fn hex(raw: &[u8]) -> String {
    raw.iter().map(|b| format!("{b:02x}")).collect()
}

fn decode(s: &str, enc: Enc) -> Option<Vec<u8>> {
    match enc {
        Enc::B64 => STANDARD.decode(s).ok(),
        Enc::Hex => {
            if !s.len().is_multiple_of(2) || !s.is_ascii() {
                return None;
            }
            (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
        }
    }
}

/// Dovecot's password_decode(): without an explicit encoding, a fixed-length digest is hex when it
/// is exactly twice its length, else base64.
fn decode_fixed(s: &str, enc: Option<Enc>, len: usize) -> Option<Vec<u8>> {
    let enc = enc.unwrap_or(if s.len() == len * 2 { Enc::Hex } else { Enc::B64 });
    decode(s, enc).filter(|r| r.len() == len)
}

/// Dovecot's SCRAM format: `iterations,salt,stored_key,server_key`, base64.
fn parse_scram(data: &str, hash: ScramHash) -> Option<ScramKeys> {
    let mut f = data.split(',');
    let iterations: u32 = f.next()?.parse().ok().filter(|i| (1..=MAX_ITERATIONS).contains(i))?;
    let salt = STANDARD.decode(f.next()?).ok().filter(|s| !s.is_empty())?;
    let stored_key = STANDARD.decode(f.next()?).ok().filter(|k| k.len() == hash.len())?;
    let server_key = STANDARD.decode(f.next()?).ok().filter(|k| k.len() == hash.len())?;
    f.next().is_none().then_some(ScramKeys { iterations, salt, stored_key, server_key })
}

/// The PHC string Dovecot (libsodium) writes: `$argon2id$v=19$m=65536,t=3,p=1$salt$hash`.
fn parse_argon2(data: &str, scheme: Scheme) -> Result<Secret, &'static str> {
    let mut f = data.split('$');
    let (algorithm, name) = match scheme {
        Scheme::Argon2i => (argon2::Algorithm::Argon2i, "argon2i"),
        _ => (argon2::Algorithm::Argon2id, "argon2id"),
    };
    if f.next() != Some("") || f.next() != Some(name) {
        return Err("expected $argon2id$ or $argon2i$");
    }
    let mut field = f.next().ok_or("truncated")?;
    let mut version = argon2::Version::V0x10; // absent `v=` means 1.0
    if let Some(v) = field.strip_prefix("v=") {
        version = match v {
            "19" => argon2::Version::V0x13,
            "16" => argon2::Version::V0x10,
            _ => return Err("unknown version"),
        };
        field = f.next().ok_or("truncated")?;
    }
    let (mut m, mut t, mut p) = (None, None, None);
    for kv in field.split(',') {
        let (k, v) = kv.split_once('=').ok_or("bad parameters")?;
        let v: u32 = v.parse().map_err(|_| "bad parameters")?;
        match k {
            "m" => m = Some(v),
            "t" => t = Some(v),
            "p" => p = Some(v),
            _ => return Err("unknown parameter"),
        }
    }
    let (Some(m), Some(t), Some(p)) = (m, t, p) else { return Err("needs m, t and p") };
    if m > ARGON2_MAX_M_KIB || t > ARGON2_MAX_T || p > 64 {
        return Err("cost beyond what this server will spend (m <= 256 MiB, t <= 64, p <= 64)");
    }
    let salt = STANDARD_NO_PAD.decode(f.next().ok_or("no salt")?).map_err(|_| "bad salt")?;
    let hash = STANDARD_NO_PAD.decode(f.next().ok_or("no hash")?).map_err(|_| "bad hash")?;
    if f.next().is_some() || hash.len() < 4 || hash.len() > 128 {
        return Err("bad hash");
    }
    // Checks m against p and the salt length as the algorithm requires.
    argon2::Params::new(m, t, p, Some(hash.len())).map_err(|_| "bad parameters")?;
    if salt.len() < argon2::RECOMMENDED_SALT_LEN / 2 {
        return Err("salt too short");
    }
    Ok(Secret::Argon2 { algorithm, version, m, t, p, salt, hash })
}

/// Dovecot's `{PBKDF2}$1$salt$rounds$hex(PBKDF2-HMAC-SHA1)`.
fn parse_pbkdf2(data: &str) -> Option<Secret> {
    let rest = data.strip_prefix("$1$")?;
    let mut f = rest.split('$');
    let salt = f.next().filter(|s| !s.is_empty())?.to_string();
    let rounds: u32 = f.next()?.parse().ok().filter(|r| (1..=MAX_ITERATIONS).contains(r))?;
    let key = decode(f.next()?, Enc::Hex).filter(|k| !k.is_empty() && k.len() <= 64)?;
    f.next().is_none().then_some(Secret::Pbkdf2 { salt, rounds, key })
}

fn digest_md5_ha1(user: &str, realm: &str, password: &[u8]) -> [u8; 16] {
    md5::Md5::new()
        .chain_update(user)
        .chain_update(":")
        .chain_update(realm)
        .chain_update(":")
        .chain_update(password)
        .finalize()
        .into()
}

/// The MD5 initial state (RFC 1321 3.3).
const MD5_IV: [u32; 4] = [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476];

/// RFC 2104: the MD5 states after `K XOR ipad` and `K XOR opad`; a key longer than the block is
/// first hashed. These are what Dovecot's `{CRAM-MD5}` stores.
fn cram_contexts(key: &[u8]) -> ([u32; 4], [u32; 4]) {
    let hashed;
    let key = if key.len() > 64 {
        hashed = md5::Md5::digest(key);
        &hashed[..]
    } else {
        key
    };
    let (mut ipad, mut opad) = ([0x36u8; 64], [0x5cu8; 64]);
    for (i, k) in key.iter().enumerate() {
        ipad[i] ^= k;
        opad[i] ^= k;
    }
    let (mut inner, mut outer) = (MD5_IV, MD5_IV);
    md5::block_api::compress(&mut inner, &[ipad]);
    md5::block_api::compress(&mut outer, &[opad]);
    (inner, outer)
}

/// Finishes an MD5 whose state has absorbed exactly one 64-byte block, over `data` (RFC 1321 3.1-3.2
/// padding, the length counting that first block).
fn md5_resume(mut state: [u32; 4], data: &[u8]) -> [u8; 16] {
    let (blocks, rest) = data.as_chunks::<64>();
    md5::block_api::compress(&mut state, blocks);
    let mut tail = [[0u8; 64]; 2];
    let n = if rest.len() < 56 { 1 } else { 2 };
    tail[0][..rest.len()].copy_from_slice(rest);
    tail[rest.len() / 64][rest.len() % 64] = 0x80;
    let bits = ((data.len() as u64) + 64).wrapping_mul(8);
    tail[n - 1][56..].copy_from_slice(&bits.to_le_bytes());
    md5::block_api::compress(&mut state, &tail[..n]);
    words(&state)
}

fn words(state: &[u32; 4]) -> [u8; 16] {
    let mut out = [0u8; 16];
    for (chunk, w) in out.chunks_exact_mut(4).zip(state) {
        chunk.copy_from_slice(&w.to_le_bytes());
    }
    out
}

/// Bytes from getrandom(2), falling back to /dev/urandom where the call does not exist.
pub(crate) fn random_bytes(n: usize) -> Result<Vec<u8>, String> {
    let mut buf = vec![0u8; n];
    let mut got = 0;
    while got < n {
        // SAFETY: the pointer and length describe the unfilled part of `buf`.
        let r = unsafe { libc::getrandom(buf[got..].as_mut_ptr().cast(), n - got, 0) };
        if r > 0 {
            got += r as usize;
            continue;
        }
        let e = std::io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => {}
            Some(libc::ENOSYS) => {
                use std::io::Read;
                std::fs::File::open("/dev/urandom")
                    .and_then(|mut f| f.read_exact(&mut buf))
                    .map_err(|e| format!("/dev/urandom: {e}"))?;
                return Ok(buf);
            }
            _ => return Err(format!("getrandom: {e}")),
        }
    }
    Ok(buf)
}

#[cfg(test)]
mod tests;
