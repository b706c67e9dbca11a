//! Fuzz target: any bytes as a DMARC record (RFC 7489 6.3) through the parser and a whole
//! evaluation over an in-memory DNS table, as a From domain, as a message header for the
//! RFC5322.From parser, and as an Authentication-Results value for `authres::is_ours` (RFC 8601):
//! never a panic, and the results keep their invariants.
#![no_main]

use buzon::dns::Table;
use buzon::dns::wire::RData;
use buzon::filters::authres::{self, AuthResults};
use buzon::filters::dmarc::{self, DmarcResult, Evidence, Policy, record};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(rec) = record::parse(data) {
        assert!(rec.pct <= 100);
        assert!(record::is_dmarc(data));
    }

    // The same bytes published for example.com, whole and split in two character-strings.
    let mut t = Table::new();
    t.add("_dmarc.example.com", RData::Txt(vec![data.to_vec()]));
    let cut = data.first().map_or(0, |&b| usize::from(b)).min(data.len());
    t.add("_dmarc.split.example", RData::Txt(vec![data[..cut].to_vec(), data[cut..].to_vec()]));
    let dkim = [("example.com", false), ("mail.example.com", true)];
    let draw = data.last().map_or(0, |&b| b % 100);
    for (from, ev) in [
        ("example.com", Evidence { spf: Some(("other.example", true)), dkim: &[] }),
        ("a.b.example.com", Evidence { spf: None, dkim: &dkim }),
        ("split.example", Evidence::default()),
    ] {
        let d = dmarc::evaluate(&t, from, &ev, draw);
        if d.result != DmarcResult::Fail {
            assert_eq!(d.disposition, Policy::None);
        }
    }

    // The bytes as a From domain and as a header section.
    let text = String::from_utf8_lossy(data);
    let _ = dmarc::evaluate(&t, &text, &Evidence::default(), draw);
    let _ = dmarc::organizational_domain(&text);
    if let Ok(domain) = dmarc::from_domain(data) {
        assert!(!domain.is_empty() && !domain.ends_with('.'));
    }

    // The bytes as an Authentication-Results value, and as values in one we write.
    let _ = authres::is_ours(data, "mx.example.org");
    let _ = authres::parse_id(data);
    let mut ar = AuthResults::new("mx.example.org");
    ar.add("dmarc", &text, Some(&text), &[("header.from", &text)]);
    let h = ar.header();
    assert!(!h.replace("\r\n\t", "").contains(['\r', '\n']));
    assert!(authres::is_ours(h.as_bytes().split_at(23).1, "mx.example.org"));
});
