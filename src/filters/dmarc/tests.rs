//! DMARC evaluation over an in-memory DNS table: RFC 7489 Appendix B's alignment examples,
//! discovery (6.6.3), `sp` and `pct` (6.6.4), and the result names.

use super::*;
use crate::dns::Table;
use crate::dns::wire::RData;

fn table(records: &[(&str, &str)]) -> Table {
    let mut t = Table::new();
    for (name, txt) in records {
        t.add_txt(name, txt);
    }
    t
}

fn spf(d: &str, pass: bool) -> Evidence<'_> {
    Evidence { spf: Some((d, pass)), dkim: &[] }
}

#[test]
fn result_and_policy_names() {
    let names: Vec<&str> = [
        DmarcResult::None,
        DmarcResult::Pass,
        DmarcResult::Fail,
        DmarcResult::TempError,
        DmarcResult::PermError,
    ]
    .iter()
    .map(|r| r.as_str())
    .collect();
    assert_eq!(names, ["none", "pass", "fail", "temperror", "permerror"]);
    assert_eq!(
        [Policy::None, Policy::Quarantine, Policy::Reject].map(Policy::as_str),
        ["none", "quarantine", "reject"]
    );
}

#[test]
fn appendix_b_alignment_examples() {
    // B.2.1: a record at example.com, relaxed by default; B.1.1-B.1.3: SPF and DKIM identifiers.
    let relaxed = table(&[("_dmarc.example.com", "v=DMARC1; p=reject")]);
    let strict = table(&[("_dmarc.example.com", "v=DMARC1; p=reject; aspf=s; adkim=s")]);
    // B.1.1 SPF, simple: MAIL FROM example.com, From example.com: aligned in both modes.
    for t in [&relaxed, &strict] {
        assert_eq!(evaluate(t, "example.com", &spf("example.com", true), 0).result, DmarcResult::Pass);
    }
    // B.1.1 relaxed: MAIL FROM child.example.com aligns with From example.com only when relaxed.
    assert_eq!(
        evaluate(&relaxed, "example.com", &spf("child.example.com", true), 0).result,
        DmarcResult::Pass
    );
    let d = evaluate(&strict, "example.com", &spf("child.example.com", true), 0);
    assert_eq!((d.result, d.disposition), (DmarcResult::Fail, Policy::Reject));
    // B.1.1 no alignment: MAIL FROM example.net.
    assert_eq!(evaluate(&relaxed, "example.com", &spf("example.net", true), 0).result, DmarcResult::Fail);
    // B.1.2 DKIM: d=example.com signs From example.com (both); d=child.example.com (relaxed only);
    // d=example.net (never).
    let dkim = |d: &'static [(&'static str, bool)]| Evidence { spf: None, dkim: d };
    assert_eq!(
        evaluate(&strict, "example.com", &dkim(&[("example.com", true)]), 0).result,
        DmarcResult::Pass
    );
    assert_eq!(
        evaluate(&relaxed, "example.com", &dkim(&[("child.example.com", true)]), 0).result,
        DmarcResult::Pass
    );
    assert_eq!(
        evaluate(&strict, "example.com", &dkim(&[("child.example.com", true)]), 0).result,
        DmarcResult::Fail
    );
    assert_eq!(
        evaluate(&relaxed, "example.com", &dkim(&[("example.net", true)]), 0).result,
        DmarcResult::Fail
    );
    // An aligned signature that failed does not count; another that passed does.
    let ev = dkim(&[("example.com", false), ("example.net", true)]);
    assert_eq!(evaluate(&relaxed, "example.com", &ev, 0).result, DmarcResult::Fail);
    let ev = dkim(&[("example.net", true), ("EXAMPLE.com.", true)]);
    let d = evaluate(&relaxed, "example.com", &ev, 0);
    assert_eq!((d.result, d.disposition), (DmarcResult::Pass, Policy::None));
    assert_eq!(d.reason.as_deref(), Some("DKIM d=EXAMPLE.com. aligned"));
    // Aligned but failed SPF.
    assert_eq!(evaluate(&relaxed, "example.com", &spf("example.com", false), 0).result, DmarcResult::Fail);
    // Relaxed alignment goes through the Organizational Domain, not string suffixes.
    assert_eq!(evaluate(&relaxed, "example.com", &spf("badexample.com", true), 0).result, DmarcResult::Fail);
}

#[test]
fn sp_for_subdomains_and_org_domain_fallback() {
    let t = table(&[("_dmarc.example.com", "v=DMARC1; p=reject; sp=quarantine")]);
    // B.2.3-like: mail from a subdomain with no record of its own gets sp from the org domain.
    let d = evaluate(&t, "Mail.Example.COM", &Evidence::default(), 0);
    assert_eq!(d.from_domain, "mail.example.com");
    assert_eq!(d.policy_domain.as_deref(), Some("example.com"));
    assert_eq!(
        (d.result, d.policy, d.disposition),
        (DmarcResult::Fail, Policy::Quarantine, Policy::Quarantine)
    );
    // The org domain's own mail gets p.
    let d = evaluate(&t, "example.com", &Evidence::default(), 0);
    assert_eq!((d.policy, d.disposition), (Policy::Reject, Policy::Reject));
    // Without sp the subdomain gets p.
    let t = table(&[("_dmarc.example.com", "v=DMARC1; p=reject")]);
    assert_eq!(evaluate(&t, "a.b.example.com", &Evidence::default(), 0).policy, Policy::Reject);
    // A subdomain's own record wins, and sp in it does not apply to its own mail.
    let t = table(&[
        ("_dmarc.example.com", "v=DMARC1; p=reject"),
        ("_dmarc.news.example.com", "v=DMARC1; p=none; sp=reject"),
    ]);
    let d = evaluate(&t, "news.example.com", &Evidence::default(), 0);
    assert_eq!((d.policy_domain.as_deref(), d.policy), (Some("news.example.com"), Policy::None));
    // The fallback follows the PSL: the org domain of a.b.example.co.uk is example.co.uk.
    let t = table(&[("_dmarc.example.co.uk", "v=DMARC1; p=quarantine")]);
    let d = evaluate(&t, "a.b.example.co.uk", &spf("other.example.co.uk", true), 0);
    assert_eq!((d.result, d.policy_domain.as_deref()), (DmarcResult::Pass, Some("example.co.uk")));
    // Names under .test fall back by the implicit "*" rule.
    let t = table(&[("_dmarc.example.test", "v=DMARC1; p=reject")]);
    assert_eq!(
        evaluate(&t, "a.b.example.test", &Evidence::default(), 0).policy_domain.as_deref(),
        Some("example.test")
    );
}

#[test]
fn no_record_means_none() {
    let t = table(&[("example.com", "v=spf1 -all"), ("_dmarc.example.com", "v=spf1 -all")]);
    let d = evaluate(&t, "example.com", &spf("example.com", true), 0);
    assert_eq!(
        (d.result, d.policy, d.disposition, d.policy_domain),
        (DmarcResult::None, Policy::None, Policy::None, None)
    );
    // NODATA at the From domain still falls back to the org domain.
    let mut t = table(&[("_dmarc.example.com", "v=DMARC1; p=reject")]);
    t.exists("_dmarc.sub.example.com");
    assert_eq!(evaluate(&t, "sub.example.com", &Evidence::default(), 0).result, DmarcResult::Fail);
}

#[test]
fn multiple_records_mean_none() {
    let t =
        table(&[("_dmarc.example.com", "v=DMARC1; p=reject"), ("_dmarc.example.com", "v=DMARC1; p=none")]);
    let d = evaluate(&t, "example.com", &Evidence::default(), 0);
    assert_eq!((d.result, d.disposition), (DmarcResult::None, Policy::None));
    assert!(d.reason.as_deref().unwrap_or_default().contains("2 DMARC records"));
    // Several at the From domain stop discovery: no fallback to the org domain.
    let t = table(&[
        ("_dmarc.example.com", "v=DMARC1; p=reject"),
        ("_dmarc.sub.example.com", "v=DMARC1; p=reject"),
        ("_dmarc.sub.example.com", "v=DMARC1; p=quarantine"),
    ]);
    assert_eq!(evaluate(&t, "sub.example.com", &Evidence::default(), 0).result, DmarcResult::None);
    // Non-DMARC TXT records beside one DMARC record do not count.
    let t = table(&[("_dmarc.example.com", "hello"), ("_dmarc.example.com", "v=DMARC1; p=reject")]);
    assert_eq!(evaluate(&t, "example.com", &Evidence::default(), 0).result, DmarcResult::Fail);
}

#[test]
fn split_txt_strings_are_joined() {
    let mut t = Table::new();
    t.add("_dmarc.example.com", RData::Txt(vec![b"v=DMARC1; p=rej".to_vec(), b"ect; pct=100".to_vec()]));
    assert_eq!(evaluate(&t, "example.com", &Evidence::default(), 0).disposition, Policy::Reject);
}

#[test]
fn pct_sampling() {
    let rec = |pct: u8| table(&[("_dmarc.example.com", &format!("v=DMARC1; p=reject; pct={pct}"))]);
    let quarantine =
        |pct: u8| table(&[("_dmarc.example.com", &format!("v=DMARC1; p=quarantine; pct={pct}"))]);
    let fail = Evidence::default();
    let dis = |t: &Table, draw: u8| evaluate(t, "example.com", &fail, draw).disposition;
    // pct=100: always; pct=0: never, reject becomes quarantine, quarantine becomes none.
    for draw in [0, 50, 99] {
        assert_eq!(dis(&rec(100), draw), Policy::Reject);
        assert_eq!(dis(&rec(0), draw), Policy::Quarantine);
        assert_eq!(dis(&quarantine(0), draw), Policy::None);
        assert_eq!(dis(&quarantine(100), draw), Policy::Quarantine);
    }
    // pct=50: draws 0..=49 are selected, 50..=99 are not.
    assert_eq!(dis(&rec(50), 0), Policy::Reject);
    assert_eq!(dis(&rec(50), 49), Policy::Reject);
    assert_eq!(dis(&rec(50), 50), Policy::Quarantine);
    assert_eq!(dis(&quarantine(50), 99), Policy::None);
    let d = evaluate(&rec(50), "example.com", &fail, 99);
    assert_eq!(d.policy, Policy::Reject, "the policy stays what was published");
    assert!(d.reason.as_deref().unwrap_or_default().contains("pct=50"));
    // Passing mail is never acted on.
    assert_eq!(evaluate(&rec(100), "example.com", &spf("example.com", true), 0).disposition, Policy::None);
    // The real draw stays in range.
    assert!((0..1000).all(|_| draw() < 100));
}

#[test]
fn dns_failures_are_temperror() {
    let mut t = Table::new();
    t.fail("_dmarc.example.com");
    let d = evaluate(&t, "example.com", &spf("example.com", true), 0);
    assert_eq!((d.result, d.disposition), (DmarcResult::TempError, Policy::None));
    // ... also at the Organizational Domain.
    let d = evaluate(&t, "www.example.com", &Evidence::default(), 0);
    assert_eq!((d.result, d.policy_domain.as_deref()), (DmarcResult::TempError, Some("example.com")));
}

#[test]
fn unusable_records() {
    // Syntax errors: no policy, reported as permerror.
    for txt in ["v=DMARC1", "v=DMARC1; p=maybe", "v=DMARC1; p=reject; oops", "v=DMARC1; p=reject; p=none"] {
        let t = table(&[("_dmarc.example.com", txt)]);
        let d = evaluate(&t, "example.com", &Evidence::default(), 0);
        assert_eq!(
            (d.result, d.policy, d.disposition),
            (DmarcResult::PermError, Policy::None, Policy::None),
            "{txt}"
        );
    }
    // 6.6.3 step 6: an invalid p with a valid rua counts as p=none.
    let t = table(&[("_dmarc.example.com", "v=DMARC1; p=maybe; rua=mailto:r@example.com")]);
    let d = evaluate(&t, "example.com", &Evidence::default(), 0);
    assert_eq!((d.result, d.policy, d.disposition), (DmarcResult::Fail, Policy::None, Policy::None));
    // Not a domain name at all.
    for bad in ["", ".", "a..b", "exa mple.com"] {
        assert_eq!(
            evaluate(&Table::new(), bad, &Evidence::default(), 0).result,
            DmarcResult::PermError,
            "{bad:?}"
        );
    }
}

#[test]
fn authentication_results_entry() {
    let t = table(&[("_dmarc.example.com", "v=DMARC1; p=reject")]);
    let d = evaluate(&t, "example.com", &spf("example.com", true), 0);
    let mut ar = crate::filters::authres::AuthResults::new("mx.example.org");
    d.add_to(&mut ar);
    assert_eq!(ar.header(), "Authentication-Results: mx.example.org; dmarc=pass header.from=example.com");
}

#[test]
fn internationalized_domains_are_looked_up_as_a_labels() {
    let t = table(&[("_dmarc.xn--bcher-kva.example", "v=DMARC1; p=reject; adkim=s")]);
    let d = evaluate(&t, "BÜCHER.example", &Evidence::default(), 0);
    assert_eq!((d.result, d.from_domain.as_str()), (DmarcResult::Fail, "xn--bcher-kva.example"));
    let ev = Evidence { spf: None, dkim: &[("xn--bcher-kva.example", true)] };
    assert_eq!(evaluate(&t, "bücher.example", &ev, 0).result, DmarcResult::Pass);
    assert_eq!(
        evaluate(&t, "xn--bcher-kva.example", &spf("post.bücher.example", true), 0).result,
        DmarcResult::Pass
    );
    // Names too long to look up have no record.
    let long = format!("{}.example.com", ["a"; 120].join("."));
    assert_eq!(evaluate(&t, &long, &Evidence::default(), 0).result, DmarcResult::None);
}
