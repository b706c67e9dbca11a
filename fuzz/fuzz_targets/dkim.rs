//! Fuzz target: a message (header and body split at the first empty line) through the DKIM
//! verifier (RFC 6376 6, RFC 8463) with an in-memory DNS table answering fixed keys: it must never
//! panic, and the body split into chunks must give the same verdicts as the body in one piece.
#![no_main]

use buzon::dns::Table;
use buzon::dns::wire::RData;
use buzon::filters::dkim::Verifier;
use libfuzzer_sys::fuzz_target;

const RSA: [&str; 2] = [
    "v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWRiGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQiY/J16JYi0Qvx/byYzCNb3W91y3FutAC",
    "DfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3Ip3G+2kryOTIKT+l/K4w3QIDAQAB",
];
const ED: &str = "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";

fn table() -> Table {
    let mut t = Table::new();
    t.add("test._domainkey.football.example.com", RData::Txt(RSA.iter().map(|s| s.as_bytes().to_vec()).collect()));
    t.add_txt("brisbane._domainkey.football.example.com", ED);
    t.add_txt("s._domainkey.example.com", ED).add_txt("s._domainkey.example.com", "v=DKIM1; p=");
    t.fail("down._domainkey.example.com");
    t
}

fuzz_target!(|data: &[u8]| {
    let (header, body) = match data.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(i) => (&data[..i + 2], &data[i + 4..]),
        None => (data, &[][..]),
    };
    let dns = table();
    let mut whole = Verifier::new(header);
    whole.feed(body);
    let a = whole.finish(&dns, 1_800_000_000);
    let mut parts = Verifier::new(header);
    let cut = body.first().map_or(0, |&b| usize::from(b) % (body.len() + 1));
    parts.feed(&body[..cut]);
    for c in body[cut..].chunks(3) {
        parts.feed(c);
    }
    let b = parts.finish(&dns, 1_800_000_000);
    assert_eq!(a, b);
    assert!(a.len() <= buzon::filters::dkim::MAX_SIGNATURES);
});
