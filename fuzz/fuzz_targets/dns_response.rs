//! Fuzz target: arbitrary octets through the DNS message decoder (RFC 1035 4.1, RFC 6891 OPT);
//! it must never panic, and every decoded name must obey the RFC 1035 2.3.4 length limits.
#![no_main]

use buzon::dns::wire::{self, RData};
use libfuzzer_sys::fuzz_target;

/// A decoded name is at most 253 characters before escaping; each escape turns 1 octet into 4.
fn check_name(name: &str) {
    let octets = name.len() - 3 * name.matches('\\').count();
    assert!(octets <= 253, "name too long: {name:?}");
    assert!(name.is_empty() || !name.split('.').any(str::is_empty), "empty label: {name:?}");
}

fuzz_target!(|data: &[u8]| {
    let Ok(msg) = wire::decode_response(data) else { return };
    for q in &msg.questions {
        check_name(&q.name);
    }
    for r in msg.answers.iter().chain(&msg.authority).chain(&msg.additional) {
        check_name(&r.name);
        match &r.data {
            RData::Mx { exchange: n, .. } | RData::Cname(n) | RData::Ns(n) | RData::Ptr(n) => check_name(n),
            RData::Soa { mname, rname, .. } => {
                check_name(mname);
                check_name(rname);
            }
            _ => {}
        }
    }
    let _ = msg.rcode();
    // A decoded question re-encodes when it is a name we would send.
    if let Some(q) = msg.questions.first()
        && let Ok(bytes) = wire::encode_query(msg.header.id, &q.name, q.qtype, Some(1232))
    {
        let back = wire::decode_response(&bytes).expect("our own query decodes");
        assert_eq!(back.questions[0].name, q.name);
    }
});
