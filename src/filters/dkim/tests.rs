//! Tests across the DKIM modules: RFC 8463 Appendix A (its keys and signed message), signing
//! round trips, `l=`, several signatures, and each failure's RFC 8601 result.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::canon::{self, BodyHasher, Canon};
use super::header::{self, tag, tag_list};
use super::verify::header_data;
use super::*;
use crate::dns::Table;
use crate::dns::wire::RData;

/// A 2048-bit RSA test key (PKCS#8), made for these tests only.
const RSA_PEM: &str = "\
-----BEGIN PRIVATE KEY-----\n\
MIIEvAIBADANBgkqhkiG9w0BAQEFAASCBKYwggSiAgEAAoIBAQCi6y4bp6h910Tz\n\
PdezyjzObsx0JDjHkB0rbekgZYUJo8XFBU7c85d9+5syLIhZ6tXXfumjiTZF99lc\n\
rxfWLmFX6Qt4p6NKsxnONytn24kGFsIhwovn2s3vTbBnaUu0B4BwoB9hB7q1JIDy\n\
/qdE2Uv/0FsXBIxiZwJZnmdmk948tBahW9Jf4UkjqTZ8E6XjLjfiIMehG7UCcHLP\n\
O2t+DRX4VLhTSzIP0/E9cDv/p+eSw8cp39mb6c3oAqLupnuHf/O/OmDG2SK7p5P+\n\
DkLsw7LFxpEZiKWu0uQkpcrVY4TlRT/Uf06cmNBT8jCwEUiHTH+txwBadP5sVz5g\n\
TVY/ws4pAgMBAAECggEAAhIxjDwzxALFL37rI6/X2Ut3CahuuNm8BzHu32CvAeX9\n\
NQGZ5KzrkXhN+yOuCY+Wz5YfT/sF77qEfr1ClTBSgDi4Erz10lSnyLNyl6/GpIdM\n\
STvVBbnmOYswKYZhBh08zKG6eGQt41DfG0extmo5QTujts2R38vdr6g3+gm57uVZ\n\
e0KbRmUgkuo9kWmi61pPfG2dCqQ78+KorVkhOm1Fz9VeOnmKWYaD6w5VYoN61RAJ\n\
NlyLMJ/Kc42CcXqplftSCsgkPmKqfx3YaEP9PvF3tH67QntNlmVguUL8NAVFyDL6\n\
buTk/jstGUf3TVyQzyI3AfjlUAYJU/8enFokJ6H30QKBgQDYknXa4a9e+1g8Keel\n\
UpTgbB+5fNGguxUrb+lFgvLJ5lzQA0pgeSQTLhts1nnSMdTv7IIdjtaGqkH5eu1b\n\
f9lXMRqwbvwFXidwzcbFkC2hJV3GfO9OsVTZmXyYu7tBI0IyBLlKRoV4kkbODZMX\n\
Lcca3VqVXq4yVHRVi4Io4p2MsQKBgQDAlCcPa/EqZ113Velf8G/opxl0YvdHDtJe\n\
JaaMmAtIT9RSN7j4SQadFlwWOikFu56/w7iYjCPi7MwSHyawD1yM7fANl+uXzhbZ\n\
ckx6u25E9AvqY0XHFcci5A2qtGDsACfPSBZAN3MSyTdc2XWTMcxU0RFWiTVsjvji\n\
nhkIBbnW+QKBgEyXFzjuQX/8sYqtYy+zUdVAR8PoYZZPM0BmVn/vvH8sibxCvaX6\n\
kYh68NX/z5tHZj/nS2i6oCGFysk48QI/55QPWJn21gfr8VTSYS5zO7/WoCBXBKa2\n\
zgQaZNb65VE27+0SgJjE8eTfDk1GvbMfzF8y0xsqHb7M4Utzh/d/lSoxAoGABdm6\n\
Yg6OchJX1ZNHlsGQNMo2zMFg78i0fWW5bJYF6bl7ItBMj0Zwq/8M5yP3MRRlG0BP\n\
8Fp5kKBPBtHpc/nTfviPjWorHx6EtTBywFvHWtLrNcC0UvsHZLj27VOzihfrHbH7\n\
8xF8Lnrscqasmr8tjPoZA78BX33sc74H1qWN4skCgYAkCzO3XeBQmap17tBUGO03\n\
9zWklrHmsTO8EbDWuYRRgF4OMDTSk1vI4zIF6BTW0nJyVr7/WcY4r9UzPdPQUscW\n\
UAn6o6Nz3fQ/ExpqPBqOgCQtmSSYqLqvopZZyFxa9ncj/CZgXz2kS76P1q0dZIVF\n\
Tb57fQhZBFUw+xNq7PTrPQ==\n\
-----END PRIVATE KEY-----\n\
";

/// RFC 8463 A.1: the Ed25519 private key (the seed in a PKCS#8 v1 document).
const RFC8463_ED_PEM: &str = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g\n-----END PRIVATE KEY-----\n";
const RFC8463_ED_RECORD: &str = "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";
/// RFC 8463 A.2's RSA record, as the four character-strings the RFC's zone text has.
const RFC8463_RSA_STRINGS: [&str; 4] = [
    "v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWR",
    "iGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQiY/J16JYi0Qvx/byYzCNb3W91y3FutAC",
    "DfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3",
    "Ip3G+2kryOTIKT+l/K4w3QIDAQAB",
];
/// RFC 8463 A.3: the signed message.
const RFC8463_MESSAGE: &str = "\
DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed;
 d=football.example.com; i=@football.example.com;
 q=dns/txt; s=brisbane; t=1528637909; h=from : to :
 subject : date : message-id : from : subject : date;
 bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;
 b=/gCrinpcQOoIfuHNQIbq4pgh9kyIK3AQUdt9OdqQehSwhEIug4D11Bus
 Fa3bT3FY5OsU7ZbnKELq+eXdp1Q1Dw==
DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;
 d=football.example.com; i=@football.example.com;
 q=dns/txt; s=test; t=1528637909; h=from : to : subject :
 date : message-id : from : subject : date;
 bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;
 b=F45dVWDfMbQDGHJFlXUNB2HKfbCeLRyhDXgFpEL8GwpsRe0IeIixNTe3
 DhCVlUrSjV4BwcVcOF6+FF3Zo9Rpo1tFOeS9mPYQTnGdaSGsgeefOsk2Jz
 dA+L10TeYt9BgDfQNZtKdN1WO//KgIqXP7OdEFE4LjFYNcUxZQ4FADY+8=
From: Joe SixPack <joe@football.example.com>
To: Suzie Q <suzie@shopping.example.net>
Subject: Is dinner ready?
Date: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)
Message-ID: <20030712040037.46341.5F8J@football.example.com>

Hi.

We lost the game.  Are you hungry yet?

Joe.
";

const NOW: u64 = 1_800_000_000;

fn crlf(s: &str) -> Vec<u8> {
    s.replace('\n', "\r\n").into_bytes()
}

/// (header without the empty line, body), CRLF line ends.
fn split(msg: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let i = msg.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    (msg[..i + 2].to_vec(), msg[i + 4..].to_vec())
}

fn verify_chunked(msg: &[u8], dns: &Table, chunk: usize) -> Vec<Verdict> {
    let (h, b) = split(msg);
    let mut v = Verifier::new(&h);
    for c in b.chunks(chunk.max(1)) {
        v.feed(c);
    }
    v.finish(dns, NOW)
}

fn rfc8463_dns() -> Table {
    let mut t = Table::new();
    t.add_txt("brisbane._domainkey.football.example.com", RFC8463_ED_RECORD);
    t.add(
        "test._domainkey.football.example.com",
        RData::Txt(RFC8463_RSA_STRINGS.iter().map(|s| s.as_bytes().to_vec()).collect()),
    );
    t
}

fn results(v: &[Verdict]) -> Vec<&'static str> {
    v.iter().map(|v| v.result.as_str()).collect()
}

#[test]
fn rfc8463_appendix_a_verifies() {
    let msg = crlf(RFC8463_MESSAGE);
    for chunk in [1, 7, 1000] {
        let v = verify_chunked(&msg, &rfc8463_dns(), chunk);
        assert_eq!(results(&v), ["pass", "pass"], "{v:?}");
        assert_eq!(v[0].algorithm, "ed25519-sha256");
        assert_eq!(v[0].header_b, "/gCrinpc");
        assert_eq!(v[1].selector, "test");
        assert_eq!(v[1].identity.as_deref(), Some("@football.example.com"));
    }
    // One changed body byte fails both on the body hash.
    let bad = crlf(&RFC8463_MESSAGE.replace("hungry", "Hungry"));
    let v = verify_chunked(&bad, &rfc8463_dns(), 5);
    assert_eq!(results(&v), ["fail", "fail"]);
    assert_eq!(v[0].reason.as_deref(), Some("body hash did not verify"));
    // A changed signed header field fails on the signature.
    let bad = crlf(&RFC8463_MESSAGE.replace("Is dinner ready?", "Is dinner ready!"));
    let v = verify_chunked(&bad, &rfc8463_dns(), 5);
    assert_eq!(results(&v), ["fail", "fail"]);
    assert_eq!(v[1].reason.as_deref(), Some("signature did not verify"));
}

#[test]
fn rfc8463_ed25519_signature_is_reproduced_with_its_private_key() {
    let key = SigningKey::from_pem("football.example.com", "brisbane", RFC8463_ED_PEM.as_bytes()).unwrap();
    assert_eq!(key.record(), RFC8463_ED_RECORD);
    let msg = crlf(RFC8463_MESSAGE);
    let (h, _) = split(&msg);
    let fields = canon::fields(&h);
    let sig_field = fields[0];
    let tags = tag_list(sig_field.value()).unwrap();
    let names: Vec<String> = tag(&tags, "h").unwrap().split(':').map(|n| n.trim().to_string()).collect();
    let data = header_data(Canon::Relaxed, &names, &fields, sig_field.raw);
    let ours = key.sign(&data).unwrap();
    assert_eq!(
        STANDARD.encode(ours),
        header::base64_fws(tag(&tags, "b").unwrap()).map(|b| STANDARD.encode(b)).unwrap()
    );
}

const MESSAGE: &str = "\
From: Alice <alice@example.org>
To: bob@example.net
Subject:  A   folded
\tsubject
Date: Mon, 7 Dec 2026 12:00:00 +0000
Message-ID: <1@example.org>
X-Other: not signed

Hello Bob,  
   this line starts with spaces.\t

-- 
Alice


";

fn test_keys(selector: &str) -> Vec<SigningKey> {
    let rng = ring::rand::SystemRandom::new();
    let ed = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    vec![
        SigningKey::from_pem("example.org", selector, RSA_PEM.as_bytes()).unwrap(),
        SigningKey::from_pem(
            "example.org",
            selector,
            super::key::pem_encode("PRIVATE KEY", ed.as_ref()).as_bytes(),
        )
        .unwrap(),
    ]
}

fn sign(keys: Vec<SigningKey>, msg: &[u8], chunk: usize) -> Vec<u8> {
    let (h, b) = split(msg);
    let mut s = Signer::new(keys, &h, NOW);
    for c in b.chunks(chunk.max(1)) {
        s.feed(c);
    }
    let mut out = Vec::new();
    for f in s.finish().unwrap() {
        assert!(f.starts_with("DKIM-Signature: v=1; a="));
        assert!(!f.ends_with('\n'));
        out.extend_from_slice(f.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(msg);
    out
}

fn dns_for(keys: &[SigningKey]) -> Table {
    let mut t = Table::new();
    for k in keys {
        // Split the record in 255-octet strings, as a zone file would hold it.
        let strings = k.record().as_bytes().chunks(255).map(<[u8]>::to_vec).collect();
        t.add(&format!("{}._domainkey.{}", k.selector, k.domain), RData::Txt(strings));
    }
    t
}

#[test]
fn signed_messages_verify_and_oversigning_holds() {
    let keys = test_keys("s1");
    let dns = dns_for(&keys);
    let msg = crlf(MESSAGE);
    let signed = sign(keys, &msg, 3);
    let text = String::from_utf8_lossy(&signed).into_owned();
    assert!(text.contains("h=from:subject:date:to:message-id:from;"), "{text}");
    assert!(text.contains(&format!("t={NOW};")));
    for line in text.lines().take_while(|l| !l.starts_with("From:")) {
        assert!(line.len() <= 78, "{line:?}");
    }
    for chunk in [1, 2, 64] {
        let v = verify_chunked(&signed, &dns, chunk);
        assert_eq!(results(&v), ["pass", "pass"], "{v:?}");
        assert_eq!((v[0].algorithm.as_str(), v[1].algorithm.as_str()), ("rsa-sha256", "ed25519-sha256"));
    }
    // Relaxed canonicalization: refolding and trailing blanks survive.
    let refolded = String::from_utf8_lossy(&signed)
        .replace("Subject:  A   folded\r\n\tsubject", "subject: A folded subject  ");
    assert_eq!(results(&verify_chunked(refolded.as_bytes(), &dns, 9)), ["pass", "pass"]);
    // A second From below the signed one: the oversigned "from" now selects it.
    let (h, b) = split(&signed);
    let mut added = h.clone();
    added.extend_from_slice(b"From: mallory@example.com\r\n\r\n");
    added.extend_from_slice(&b);
    assert_eq!(results(&verify_chunked(&added, &dns, 9)), ["fail", "fail"]);
    // An unsigned field may be added.
    let mut added = h.clone();
    added.extend_from_slice(b"X-Added: fine\r\n\r\n");
    added.extend_from_slice(&b);
    assert_eq!(results(&verify_chunked(&added, &dns, 9)), ["pass", "pass"]);
    // More empty lines at the end change nothing; more text does.
    let mut more = signed.clone();
    more.extend_from_slice(b"\r\n\r\n");
    assert_eq!(results(&verify_chunked(&more, &dns, 9)), ["pass", "pass"]);
    more.extend_from_slice(b"P.S.\r\n");
    assert_eq!(results(&verify_chunked(&more, &dns, 9)), ["fail", "fail"]);
}

#[test]
fn signing_needs_a_from_and_no_keys_sign_nothing() {
    let s = Signer::new(test_keys("s"), b"To: x@example.net\r\n", NOW);
    assert!(s.finish().is_err());
    assert_eq!(Signer::new(Vec::new(), b"From: a@b\r\n", NOW).finish().unwrap(), Vec::<String>::new());
}

/// Signs with chosen tags (c=, l=, x=, i=...) the way another signer would.
fn sign_custom(key: &SigningKey, msg: &[u8], hc: Canon, bc: Canon, extra: &[(&str, &str)]) -> Vec<u8> {
    let (h, b) = split(msg);
    let length = extra.iter().find(|(k, _)| *k == "l").map(|(_, v)| v.parse().unwrap());
    let mut body = BodyHasher::new(bc, length);
    body.feed(&b);
    let bh = STANDARD.encode(body.finish().digest);
    let mut tags: Vec<(String, String)> = vec![
        ("v".into(), "1".into()),
        ("a".into(), key.algorithm().name().into()),
        ("c".into(), format!("{}/{}", hc.name(), bc.name())),
        ("d".into(), key.domain.clone()),
        ("s".into(), key.selector.clone()),
        ("h".into(), "from:to:subject".into()),
        ("bh".into(), bh),
    ];
    for (k, v) in extra {
        tags.push((k.to_string(), v.to_string()));
    }
    let fields = canon::fields(&h);
    let names: Vec<String> = vec!["from".into(), "to".into(), "subject".into()];
    let unsigned = header::fold("DKIM-Signature", &tags, "");
    let sig = key.sign(&header_data(hc, &names, &fields, unsigned.as_bytes())).unwrap();
    let mut out = header::fold("DKIM-Signature", &tags, &STANDARD.encode(sig)).into_bytes();
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(msg);
    out
}

#[test]
fn simple_canonicalization_and_length_limit() {
    let keys = test_keys("s2");
    let dns = dns_for(&keys);
    let msg = crlf(MESSAGE);
    for hc in [Canon::Simple, Canon::Relaxed] {
        for bc in [Canon::Simple, Canon::Relaxed] {
            let signed = sign_custom(&keys[1], &msg, hc, bc, &[]);
            assert_eq!(results(&verify_chunked(&signed, &dns, 4)), ["pass"], "{hc:?}/{bc:?}");
        }
    }
    // Simple header canonicalization notices a refolded field; relaxed does not.
    let signed = sign_custom(&keys[0], &msg, Canon::Simple, Canon::Simple, &[]);
    let changed = String::from_utf8_lossy(&signed).replace("Subject:  A", "Subject: A");
    assert_eq!(results(&verify_chunked(changed.as_bytes(), &dns, 4)), ["fail"]);
    // l=20: text appended after the signed part still passes; a body cut below 20 octets fails.
    let signed = sign_custom(&keys[1], &msg, Canon::Relaxed, Canon::Relaxed, &[("l", "20")]);
    let mut appended = signed.clone();
    appended.extend_from_slice(b"Appended by a list.\r\n");
    assert_eq!(results(&verify_chunked(&appended, &dns, 3)), ["pass"]);
    let (h, _) = split(&signed);
    let mut cut = h.clone();
    cut.extend_from_slice(b"\r\nHello\r\n");
    let v = verify_chunked(&cut, &dns, 3);
    assert_eq!(results(&v), ["fail"]);
    assert_eq!(v[0].reason.as_deref(), Some("l= is longer than the body"));
}

#[test]
fn each_failure_gets_its_rfc8601_result() {
    let keys = test_keys("s3");
    let msg = crlf(MESSAGE);
    let good = |extra: &[(&str, &str)]| sign_custom(&keys[1], &msg, Canon::Relaxed, Canon::Relaxed, extra);
    let check = |signed: &[u8], dns: &Table| {
        let v = verify_chunked(signed, dns, 50);
        assert_eq!(v.len(), 1);
        (v[0].result.as_str(), v[0].reason.clone().unwrap_or_default())
    };
    let dns = dns_for(&keys);
    let name = "s3._domainkey.example.org";
    assert_eq!(check(&good(&[]), &dns).0, "pass");
    // Revoked key (RFC 6376 3.6.1 empty p=): permerror.
    let mut t = Table::new();
    t.add_txt(name, "v=DKIM1; k=ed25519; p=");
    assert_eq!(check(&good(&[]), &t), ("permerror", "key revoked".into()));
    // No key record: permerror; a DNS failure: temperror; a broken record: permerror.
    assert_eq!(check(&good(&[]), &Table::new()).0, "permerror");
    let mut t = Table::new();
    t.exists(name);
    assert_eq!(check(&good(&[]), &t).0, "permerror");
    let mut t = Table::new();
    t.fail(name);
    assert_eq!(check(&good(&[]), &t).0, "temperror");
    let mut t = Table::new();
    t.add_txt(name, "v=DKIM1; k=ed25519; p=AAAA");
    assert!(check(&good(&[]), &t).1.starts_with("bad key record"));
    // An RSA key for an Ed25519 signature.
    let mut t = Table::new();
    t.add_txt(name, &keys[0].record());
    assert_eq!(check(&good(&[]), &t).0, "permerror");
    // Expired (x= in the past) and x= before t=.
    let x = (NOW - 10).to_string();
    assert_eq!(check(&good(&[("x", &x)]), &dns), ("permerror", "signature expired".into()));
    let later = (NOW + 10).to_string();
    assert_eq!(check(&good(&[("t", &x), ("x", &later)]), &dns).0, "pass");
    // i= in the domain or a subdomain; the key's t=s allows only the domain itself.
    assert_eq!(check(&good(&[("i", "a@sub.example.org")]), &dns).0, "pass");
    let v = verify_chunked(&good(&[("i", "a@example.com")]), &dns, 50);
    assert_eq!((v[0].result, v[0].domain.as_str()), (DkimResult::PermError, "example.org"));
    let mut t = Table::new();
    t.add_txt(name, &format!("{}; t=s", keys[1].record()));
    assert_eq!(check(&good(&[("i", "a@sub.example.org")]), &t).0, "permerror");
    assert_eq!(check(&good(&[("i", "a@example.org")]), &t).0, "pass");
    // rsa-sha1 is historic (RFC 8301): permerror, before any DNS query.
    let sha1 = String::from_utf8_lossy(&good(&[])).replacen("a=ed25519-sha256", "a=rsa-sha1", 1);
    assert!(check(sha1.as_bytes(), &Table::new()).1.contains("rsa-sha1"));
    // A wrong bh=: fail.
    let bh = String::from_utf8_lossy(&good(&[])).replacen("bh=", "bh=AAAA", 1);
    let v = verify_chunked(bh.as_bytes(), &dns, 50);
    assert_eq!(v[0].result, DkimResult::PermError, "{v:?}"); // no longer 32 octets
}

#[test]
fn several_signatures_each_on_their_own_and_at_most_five() {
    let keys = test_keys("s4");
    let dns = dns_for(&keys);
    let msg = crlf(MESSAGE);
    let a = sign_custom(&keys[0], &msg, Canon::Relaxed, Canon::Simple, &[]);
    // A broken second signature and a third with no key, above the good one.
    let mut m = b"DKIM-Signature: v=1; a=rsa-sha256; d=example.org; b=x\r\n".to_vec();
    m.extend_from_slice(b"DKIM-Signature: v=1; a=ed25519-sha256; d=example.org; s=gone; h=from; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=; b=AAAA\r\n");
    m.extend_from_slice(&a);
    let v = verify_chunked(&m, &dns, 10);
    assert_eq!(results(&v), ["permerror", "permerror", "pass"]);
    assert_eq!(v[0].domain, "example.org");
    assert!(v[0].reason.as_deref().unwrap().starts_with("bad signature"), "{v:?}");
    // Seven signatures: five are looked at.
    let mut m = Vec::new();
    for _ in 0..6 {
        m.extend_from_slice(b"DKIM-Signature: v=1\r\n");
    }
    m.extend_from_slice(&a);
    assert_eq!(verify_chunked(&m, &dns, 10).len(), MAX_SIGNATURES);
    // No signature: nothing to say.
    assert!(verify_chunked(&msg, &dns, 10).is_empty());
}

#[test]
fn cli_sign_and_verify_helpers_keep_the_line_ends() {
    let keys = test_keys("s5");
    let dns = dns_for(&keys);
    let mut out = Vec::new();
    cli::sign_message(keys, MESSAGE.as_bytes(), NOW, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(!text.contains('\r'));
    assert!(text.ends_with(MESSAGE));
    let v = cli::verify_message(text.as_bytes(), &dns, NOW);
    assert_eq!(results(&v), ["pass", "pass"]);
    assert!(
        cli::describe(&v[0])
            .starts_with("dkim=pass header.d=example.org header.s=s5 header.a=rsa-sha256 header.b=")
    );
    let line = cli::zone_line("example.org", "s5", &"x".repeat(600));
    assert_eq!(line.matches('"').count(), 6);
    assert!(line.starts_with("s5._domainkey.example.org. IN TXT ( \""));
}

#[test]
fn keygen_writes_a_private_file_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = crate::config::Config::embedded();
    config.data_dir = dir.path().to_path_buf();
    config.user = None;
    let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let mut out = Vec::new();
    cli(&config, &args(&["keygen", "Example.ORG", "--selector", "k1", "--ed25519"]), &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("k1._domainkey.example.org. IN TXT ( \"v=DKIM1; k=ed25519; p="), "{text}");
    let path = dir.path().join("dkim/example.org.k1.ed25519.pem");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(std::fs::metadata(dir.path().join("dkim")).unwrap().permissions().mode() & 0o777, 0o700);
    assert!(
        cli(&config, &args(&["keygen", "example.org", "--selector", "k1", "--ed25519"]), &mut Vec::new())
            .is_err()
    );
    let keys = keys_for(&dir.path().join("dkim"), "example.org", None).unwrap();
    assert_eq!(keys.len(), 1);
    assert!(text.contains(&keys[0].record()));
    for bad in [
        &["keygen"][..],
        &["keygen", "bad domain"],
        &["frob"],
        &["verify", "x"],
        &["keygen", "a.b", "--nope"],
    ] {
        assert!(
            matches!(cli(&config, &args(bad), &mut Vec::new()), Err(crate::filters::cli::CliError::Usage(_))),
            "{bad:?}"
        );
    }
}
