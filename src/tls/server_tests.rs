//! Tests for the server config: loading every supported key type, every load error, reload.

use std::path::{Path, PathBuf};
use std::process::Command;

use rustls::pki_types::CertificateDer;

use super::*;
use crate::tls::der::EndPointHash;

/// A test-only RSA-2048 key (PKCS#8): ring cannot generate RSA keys, rcgen signs with it.
pub(crate) const RSA_TEST_KEY: &str = "\
-----BEGIN PRIVATE KEY-----\n\
MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQCrywmPdiVep9EI\n\
9L6cU21l3BPCl+V8wMzrARURxVZwCIZ7U2GTo8GkqsU8SvDoVnyCIXuBMD9IYJ6O\n\
IaU4LVDf/ypXTx1Swpl0JWS9TLl9vdds/Bp+e3px0KvIqZzyVAD0eA+WPWeOgSgp\n\
zJEeG3MlrU10uK0hkXcqoYagr43VkGt3KYdG/Pz45xC2xQyWfBEyu23jvfFfO8cj\n\
BZxQvNGjFG/l/uBcp6/XmPaZxPIgJqry27VgTZXOl+90DvRn6mKfd+cOphRXR+NN\n\
F4MdVCKxKNBobLCh4ZW+bUs0Wh1wnVfC10EjBs0WJ/VAV/gfmvAnrXZj4GGF/0gR\n\
wWVwqSWRAgMBAAECggEABqnTbxsYC/naY8yKcCnUPnUw1wVpQ1N/H0ZleND8r0/F\n\
V5c+W6moYyi0icgmW/yuy6Vc0v/6FGaa/8xSSkGHt4iALe7FpmYh6Z1hsO3+69+n\n\
MXT92hYUA8IiR6A8lDGp79GQWTV8hMyBsE1c+5v49Wcpb/OR05F+28p0HFty1uu4\n\
2pYfUHgP44nY/Sij6zO8Rgsb2GZodayGsSYbx3E/OCKfbC9ddiljp6tNv/9Jv8rJ\n\
5IU5hy+WIT2RmGeajy2WT84lL7soa07AzSyg3FvoOVXwRrqCJrAbTA55ivjuPqgz\n\
lDulM9flsMfRVdgE3ec8ZnnBztFkNZ23jTEjx66/+QKBgQDSsB5nIoQSn7lV+SIb\n\
Jn5CWlMDyeGeHpR0jNOZGjB8HqaUuNEso/mD3u8iGauhFu5n/ntiGXRPTcqparE6\n\
qL7Hmfv3C7Dp4AELNonJFqsb2MG0F4NiodRWZdENwsUL2ZN8PYLfR21ampokC/N9\n\
0saGAiihxs+SyR9lw2heEKfh1wKBgQDQvXqEyoCIgBQYs2bQBKviZ61PXLSPRC4I\n\
f45ef/Y2XClrTyN3JI3DINmfzLvijRfdgqo9e4Ht/4XjWGbkxWZE4GClgAChqE3h\n\
9v0bNeptpNLoSJMCjNDS98CJB8qF2UJugsoQ8KMpgG/+9dErwXB7S8WocgsQf9pU\n\
A8EQJ44W1wKBgBha86jIfKwKespNenvY/098UYxmkgZNUqwGe49/T4uJn4ghtUyL\n\
yBROeSZgAU8l73lmGa1FdASW4Y6kHsjBKQy56D6uw0zF8FjzfQoZ7L3TWNEQxsdo\n\
Hbu/GWOV2GF+TWZXVgGpqCKJLLhuCT/KVdi39yp8aRJ23YJODIqTMlURAoGBAICr\n\
q/BbG2wI91pajA/CMWn4Wr7G+I4viui2KD5cRpsvqGB7gfMZV0Fm6H82psJ6ErH6\n\
r5ICpg7dKd0ASzzN6cKfRTP/eWQs6QVXSKITVBSOO2vwAJ7byoWhLs/JO6/SQr74\n\
ZDKZAxq8D01snamJLhrylD7HPcbH6P9M6R9aIp41AoGBAJipPdAAqGMXxe2O8OwT\n\
yPyi7N9DnVkrMpep6+v59uL1Ih1mKHKYNyOjH+Hq6r8cAIwEdPRznvgN8ULlAwBW\n\
/xhPSic3P39aPpanpcqmrE6JhRExTyIHg4nxF0imExwQSzNxWUpzxG1RhkKWMzDl\n\
rxBa3exGwZLup9yO0b/31fDp\n\
-----END PRIVATE KEY-----\n\
";

/// The key algorithms the tests generate pairs with.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Alg {
    P256,
    P384,
    Ed25519,
    Rsa,
}

/// A generated pair: certificate PEM, key PEM, certificate DER.
pub(crate) struct Pair {
    pub cert_pem: String,
    pub key_pem: String,
    pub der: CertificateDer<'static>,
}

/// A certificate for "localhost" valid between the two dates (year, month, day).
pub(crate) fn pair_valid(alg: Alg, from: (i32, u8, u8), until: (i32, u8, u8)) -> Pair {
    let key = match alg {
        Alg::P256 => rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap(),
        Alg::P384 => rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap(),
        Alg::Ed25519 => rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap(),
        Alg::Rsa => rcgen::KeyPair::from_pem(RSA_TEST_KEY).unwrap(),
    };
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params.not_before = rcgen::date_time_ymd(from.0, from.1, from.2);
    params.not_after = rcgen::date_time_ymd(until.0, until.1, until.2);
    let cert = params.self_signed(&key).unwrap();
    Pair { cert_pem: cert.pem(), key_pem: key.serialize_pem(), der: cert.der().clone() }
}

pub(crate) fn pair(alg: Alg) -> Pair {
    pair_valid(alg, (2020, 1, 1), (2090, 1, 1))
}

/// Writes `cert.pem` and `key.pem` into `dir`.
pub(crate) fn write_pair(dir: &Path, p: &Pair) -> (PathBuf, PathBuf) {
    let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&c, &p.cert_pem).unwrap();
    std::fs::write(&k, &p.key_pem).unwrap();
    (c, k)
}

pub(crate) fn have_openssl() -> bool {
    let ok = Command::new("openssl").arg("version").output().map(|o| o.status.success()).unwrap_or(false);
    if !ok {
        eprintln!("openssl not installed: skipping");
    }
    ok
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl").args(args).current_dir(dir).output().unwrap();
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn loads_rcgen_pairs_of_every_key_type() {
    let tmp = tempfile::tempdir().unwrap();
    let cases = [
        (Alg::P256, Some(EndPointHash::Sha256)),
        (Alg::P384, Some(EndPointHash::Sha384)),
        (Alg::Ed25519, None),
        (Alg::Rsa, Some(EndPointHash::Sha256)),
    ];
    for (alg, hash) in cases {
        let p = pair(alg);
        let (c, k) = write_pair(tmp.path(), &p);
        let tls = ServerTls::load(&c, &k).unwrap_or_else(|e| panic!("{alg:?}: {e}"));
        assert_eq!(tls.paths(), (c.as_path(), k.as_path()));
        assert_eq!(der::end_point_hash(&p.der), hash, "{alg:?}");
        let (nb, na) = der::validity(&p.der).unwrap();
        assert_eq!((nb, na), (1577836800, der::days_from_civil(2090, 1, 1) * 86400), "{alg:?}");
    }
}

#[test]
fn loads_openssl_pairs_in_every_pem_flavour() {
    if !have_openssl() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let req = |key: &str, cert: &str, newkey: &[&str]| {
        let mut a = vec!["req", "-x509", "-nodes", "-subj", "/CN=localhost", "-days", "2", "-keyout", key];
        a.extend_from_slice(&["-out", cert]);
        a.extend_from_slice(newkey);
        openssl(d, &a);
    };
    req("rsa8.pem", "rsa.crt", &["-newkey", "rsa:2048"]);
    openssl(d, &["pkey", "-in", "rsa8.pem", "-traditional", "-out", "rsa1.pem"]);
    req("ec8.pem", "ec.crt", &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]);
    openssl(d, &["pkey", "-in", "ec8.pem", "-traditional", "-out", "sec1.pem"]);
    req("ed.pem", "ed.crt", &["-newkey", "ed25519"]);
    let cases = [
        ("rsa.crt", "rsa8.pem", "BEGIN PRIVATE KEY"),
        ("rsa.crt", "rsa1.pem", "BEGIN RSA PRIVATE KEY"),
        ("ec.crt", "ec8.pem", "BEGIN PRIVATE KEY"),
        ("ec.crt", "sec1.pem", "BEGIN EC PRIVATE KEY"),
        ("ed.crt", "ed.pem", "BEGIN PRIVATE KEY"),
    ];
    for (cert, key, marker) in cases {
        let text = std::fs::read_to_string(d.join(key)).unwrap();
        assert!(text.contains(marker), "{key} is not {marker}");
        ServerTls::load(&d.join(cert), &d.join(key)).unwrap_or_else(|e| panic!("{cert} {key}: {e}"));
    }
    // A combined file (key and chain in one) works for both arguments.
    let both = [
        std::fs::read_to_string(d.join("ec.crt")).unwrap(),
        std::fs::read_to_string(d.join("sec1.pem")).unwrap(),
    ];
    std::fs::write(d.join("both.pem"), both.concat()).unwrap();
    ServerTls::load(&d.join("both.pem"), &d.join("both.pem")).unwrap();
}

#[test]
fn load_errors_name_the_file_and_the_problem() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let a = pair(Alg::P256);
    let b = pair(Alg::P256);
    let expired = pair_valid(Alg::P256, (2020, 1, 1), (2021, 1, 1));
    let future = pair_valid(Alg::P256, (2999, 1, 1), (3000, 1, 1));
    let w = |name: &str, text: &str| {
        let p = d.join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let (a_cert, a_key) = (w("a.crt", &a.cert_pem), w("a.key", &a.key_pem));
    let b_key = w("b.key", &b.key_pem);
    let garbage = w("garbage.pem", "this is not PEM\n");
    let unterminated = w("cut.pem", "-----BEGIN CERTIFICATE-----\nMIIB\n");
    let (exp_cert, exp_key) = (w("exp.crt", &expired.cert_pem), w("exp.key", &expired.key_pem));
    let (fut_cert, fut_key) = (w("fut.crt", &future.cert_pem), w("fut.key", &future.key_pem));
    let not_der = w("notder.crt", "-----BEGIN CERTIFICATE-----\naGVsbG8=\n-----END CERTIFICATE-----\n");
    let missing = d.join("missing.pem");
    let cases: &[(&Path, &Path, &Path, &str)] = &[
        (&missing, &a_key, &missing, "file not found"),
        (&a_cert, &missing, &missing, "file not found"),
        (&garbage, &a_key, &garbage, "no certificate in it"),
        (&a_key, &a_key, &a_key, "no certificate in it"),
        (&a_cert, &garbage, &garbage, "no private key in it"),
        (&a_cert, &a_cert, &a_cert, "no private key in it"),
        (&unterminated, &a_key, &unterminated, "bad PEM"),
        (&not_der, &a_key, &not_der, "not a valid X.509 certificate"),
        (&a_cert, &b_key, &b_key, "private key does not match the certificate in"),
        (&exp_cert, &exp_key, &exp_cert, "certificate expired on 2021-01-01 00:00:00 UTC"),
        (&fut_cert, &fut_key, &fut_cert, "certificate not valid before 2999-01-01 00:00:00 UTC"),
        (d, &a_key, d, "cannot read"),
    ];
    for (cert, key, blamed, what) in cases {
        let e = ServerTls::load(cert, key).unwrap_err();
        let want = format!("{}: ", blamed.display());
        assert!(e.starts_with(&want) && e.contains(what), "{cert:?} {key:?}: {e}");
    }
}

#[test]
fn reload_swaps_and_keeps_the_old_config_on_error() {
    let tmp = tempfile::tempdir().unwrap();
    let a = pair(Alg::P256);
    let b = pair(Alg::Rsa);
    let (c, k) = write_pair(tmp.path(), &a);
    let tls = ServerTls::load(&c, &k).unwrap();
    let before = tls.config();
    write_pair(tmp.path(), &b);
    tls.reload().unwrap();
    assert!(!Arc::ptr_eq(&before, &tls.config()));
    let after = tls.config();
    std::fs::write(&k, "garbage").unwrap();
    let e = tls.reload().unwrap_err();
    assert!(e.contains("key.pem: no private key"), "{e}");
    assert!(Arc::ptr_eq(&after, &tls.config()), "failed reload keeps the config");
    // Which certificate each config presents is checked over a real handshake in stream_tests.
}
