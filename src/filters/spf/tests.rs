//! check_host() and check() against in-memory DNS ([`Table`]): every mechanism, include and
//! redirect, explanations, the RFC 7208 4.6.4 limits, loops, malformed records, DNS failures, and
//! the Received-SPF field.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::*;
use crate::dns::Table;
use crate::dns::wire::RData;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn a(t: &mut Table, name: &str, addr: &str) {
    match ip(addr) {
        IpAddr::V4(v4) => t.add(name, RData::A(v4)),
        IpAddr::V6(v6) => t.add(name, RData::Aaaa(v6)),
    };
}

fn mx(t: &mut Table, name: &str, preference: u16, host: &str) {
    t.add(name, RData::Mx { preference, exchange: host.into() });
}

fn ptr(t: &mut Table, addr: &str, name: &str) {
    let rev = crate::dns::resolver::reverse_name(ip(addr));
    t.add(&rev, RData::Ptr(name.into()));
}

/// check_host for sender user@DOMAIN: the result only.
fn res(t: &Table, addr: &str, domain: &str) -> SpfResult {
    check_host(t, ip(addr), domain, &format!("user@{domain}"), "helo.example.org", "mx.example.net").0
}

fn spf(t: &mut Table, domain: &str, record: &str) {
    t.add_txt(domain, record);
}

#[test]
fn no_record_no_domain_and_bad_domains_are_none() {
    let mut t = Table::new();
    t.add_txt("example.com", "some other text");
    t.exists("empty.example.com");
    assert_eq!(res(&t, "192.0.2.1", "example.com"), SpfResult::None);
    assert_eq!(res(&t, "192.0.2.1", "empty.example.com"), SpfResult::None);
    assert_eq!(res(&t, "192.0.2.1", "nowhere.example.com"), SpfResult::None);
    let long = format!("{}.example.com", "a".repeat(64));
    for bad in ["", "com", "a..example.com", ".example.com", long.as_str(), "[192.0.2.1]"] {
        assert_eq!(res(&t, "192.0.2.1", bad), SpfResult::None, "{bad:?}");
    }
    let too_long = format!("{}example.com", "abcdefghi.".repeat(25));
    assert_eq!(res(&t, "192.0.2.1", &too_long), SpfResult::None);
}

#[test]
fn record_selection() {
    let mut t = Table::new();
    t.add("split.example", RData::Txt(vec![b"v=spf1 ip4:".to_vec(), b"192.0.2.5 -all".to_vec()]));
    assert_eq!(res(&t, "192.0.2.5", "split.example"), SpfResult::Pass);
    spf(&mut t, "two.example", "v=spf1 +all");
    spf(&mut t, "two.example", "V=SPF1 -all");
    assert_eq!(res(&t, "192.0.2.5", "two.example"), SpfResult::PermError);
    spf(&mut t, "ten.example", "v=spf10 +all");
    spf(&mut t, "ten.example", "v=spf1 -all");
    assert_eq!(res(&t, "192.0.2.5", "ten.example"), SpfResult::Fail);
    spf(&mut t, "empty.example", "v=spf1");
    assert_eq!(res(&t, "192.0.2.5", "empty.example"), SpfResult::Neutral);
    spf(&mut t, "case.example", "V=sPf1 ~ALL");
    assert_eq!(res(&t, "192.0.2.5", "case.example"), SpfResult::SoftFail);
}

#[test]
fn all_and_qualifiers() {
    let mut t = Table::new();
    for (d, r, want) in [
        ("p.example", "v=spf1 all", SpfResult::Pass),
        ("pp.example", "v=spf1 +all", SpfResult::Pass),
        ("f.example", "v=spf1 -all", SpfResult::Fail),
        ("s.example", "v=spf1 ~all", SpfResult::SoftFail),
        ("n.example", "v=spf1 ?all", SpfResult::Neutral),
        ("first.example", "v=spf1 -all +all", SpfResult::Fail),
    ] {
        spf(&mut t, d, r);
        assert_eq!(res(&t, "192.0.2.1", d), want, "{r}");
    }
}

#[test]
fn ip4_and_ip6_with_cidr() {
    let mut t = Table::new();
    spf(&mut t, "example.com", "v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 ip4:198.51.100.7 -all");
    assert_eq!(res(&t, "192.0.2.200", "example.com"), SpfResult::Pass);
    assert_eq!(res(&t, "198.51.100.7", "example.com"), SpfResult::Pass);
    assert_eq!(res(&t, "198.51.100.8", "example.com"), SpfResult::Fail);
    assert_eq!(res(&t, "2001:db8:ffff::1", "example.com"), SpfResult::Pass);
    assert_eq!(res(&t, "2001:db9::1", "example.com"), SpfResult::Fail);
    // RFC 7208 5: IPv4-mapped IPv6 clients are IPv4.
    assert_eq!(res(&t, "::ffff:192.0.2.9", "example.com"), SpfResult::Pass);
    spf(&mut t, "zero.example", "v=spf1 ip4:0.0.0.0/0 -all");
    assert_eq!(res(&t, "203.0.113.1", "zero.example"), SpfResult::Pass);
    assert_eq!(res(&t, "2001:db8::1", "zero.example"), SpfResult::Fail);
}

#[test]
fn a_mechanism_with_dual_cidr() {
    let mut t = Table::new();
    spf(&mut t, "example.com", "v=spf1 a -all");
    a(&mut t, "example.com", "192.0.2.10");
    a(&mut t, "example.com", "2001:db8::10");
    spf(&mut t, "cidr.example", "v=spf1 a:example.com/24//64 -all");
    spf(&mut t, "v6zero.example", "v=spf1 a:example.com//0 -all");
    assert_eq!(res(&t, "192.0.2.10", "example.com"), SpfResult::Pass);
    assert_eq!(res(&t, "192.0.2.11", "example.com"), SpfResult::Fail);
    assert_eq!(res(&t, "2001:db8::10", "example.com"), SpfResult::Pass);
    assert_eq!(res(&t, "192.0.2.99", "cidr.example"), SpfResult::Pass);
    assert_eq!(res(&t, "2001:db8::ffff", "cidr.example"), SpfResult::Pass);
    assert_eq!(res(&t, "2001:db8:1::1", "cidr.example"), SpfResult::Fail);
    assert_eq!(res(&t, "2001:ffff::1", "v6zero.example"), SpfResult::Pass);
    assert_eq!(res(&t, "192.0.2.11", "v6zero.example"), SpfResult::Fail);
}

#[test]
fn mx_mechanism() {
    let mut t = Table::new();
    spf(&mut t, "example.com", "v=spf1 mx -all");
    mx(&mut t, "example.com", 10, "mx1.example.com");
    mx(&mut t, "example.com", 20, "mx2.example.com");
    a(&mut t, "mx1.example.com", "192.0.2.1");
    a(&mut t, "mx2.example.com", "192.0.2.2");
    assert_eq!(res(&t, "192.0.2.2", "example.com"), SpfResult::Pass);
    assert_eq!(res(&t, "192.0.2.3", "example.com"), SpfResult::Fail);
    spf(&mut t, "other.example", "v=spf1 mx:example.com/30 -all");
    assert_eq!(res(&t, "192.0.2.3", "other.example"), SpfResult::Pass);
    // RFC 7208 4.6.4: more than 10 MX names is a permerror.
    spf(&mut t, "many.example", "v=spf1 mx -all");
    for i in 0..11 {
        mx(&mut t, "many.example", i, &format!("mx{i}.example.com"));
    }
    assert_eq!(res(&t, "192.0.2.1", "many.example"), SpfResult::PermError);
}

#[test]
fn ptr_mechanism() {
    let mut t = Table::new();
    spf(&mut t, "example.com", "v=spf1 ptr -all");
    spf(&mut t, "other.example", "v=spf1 ptr:Example.COM -all");
    ptr(&mut t, "192.0.2.1", "mail.EXAMPLE.com.");
    a(&mut t, "mail.example.com", "192.0.2.1");
    // A PTR name whose address does not come back is not validated.
    ptr(&mut t, "192.0.2.2", "forged.example.com");
    a(&mut t, "forged.example.com", "192.0.2.99");
    ptr(&mut t, "2001:db8::1", "v6.example.com");
    a(&mut t, "v6.example.com", "2001:db8::1");
    assert_eq!(res(&t, "192.0.2.1", "example.com"), SpfResult::Pass);
    assert_eq!(res(&t, "192.0.2.1", "other.example"), SpfResult::Pass);
    assert_eq!(res(&t, "192.0.2.2", "example.com"), SpfResult::Fail);
    assert_eq!(res(&t, "2001:db8::1", "example.com"), SpfResult::Pass);
    // A failing PTR lookup is no match (RFC 7208 5.5), not a temperror.
    let mut f = t.clone();
    f.fail(&crate::dns::resolver::reverse_name(ip("192.0.2.1")));
    assert_eq!(res(&f, "192.0.2.1", "example.com"), SpfResult::Fail);
}

#[test]
fn ptr_uses_only_the_first_ten_names() {
    let mut t = Table::new();
    spf(&mut t, "example.com", "v=spf1 ptr -all");
    for i in 0..10 {
        ptr(&mut t, "192.0.2.1", &format!("n{i}.elsewhere.example"));
    }
    ptr(&mut t, "192.0.2.1", "mail.example.com");
    a(&mut t, "mail.example.com", "192.0.2.1");
    assert_eq!(res(&t, "192.0.2.1", "example.com"), SpfResult::Fail);
}

#[test]
fn exists_always_asks_for_a() {
    let mut t = Table::new();
    spf(&mut t, "example.com", "v=spf1 exists:%{ir}.%{l1r+-}._spf.%{d} -all");
    a(&mut t, "1.2.0.192.user._spf.example.com", "127.0.0.2");
    a(
        &mut t,
        "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.user._spf.example.com",
        "127.0.0.2",
    );
    assert_eq!(res(&t, "192.0.2.1", "example.com"), SpfResult::Pass);
    assert_eq!(res(&t, "192.0.2.2", "example.com"), SpfResult::Fail);
    assert_eq!(res(&t, "2001:db8::1", "example.com"), SpfResult::Pass);
}

#[test]
fn include_results() {
    let mut t = Table::new();
    spf(&mut t, "example.com", "v=spf1 include:_spf.example.net -all");
    spf(&mut t, "_spf.example.net", "v=spf1 ip4:192.0.2.0/24 ?ip4:198.51.100.1 ~ip4:198.51.100.2 -all");
    assert_eq!(res(&t, "192.0.2.7", "example.com"), SpfResult::Pass);
    // Neutral, softfail and fail in the included record are "no match".
    for addr in ["198.51.100.1", "198.51.100.2", "203.0.113.1"] {
        assert_eq!(res(&t, addr, "example.com"), SpfResult::Fail, "{addr}");
    }
    // RFC 7208 5.2: include of a domain without a record is a permerror; errors propagate.
    spf(&mut t, "none.example", "v=spf1 include:nothing.example -all");
    assert_eq!(res(&t, "192.0.2.7", "none.example"), SpfResult::PermError);
    spf(&mut t, "bad.example", "v=spf1 include:broken.example -all");
    spf(&mut t, "broken.example", "v=spf1 bogus");
    assert_eq!(res(&t, "192.0.2.7", "bad.example"), SpfResult::PermError);
    spf(&mut t, "down.example", "v=spf1 include:timeout.example -all");
    t.fail("timeout.example");
    assert_eq!(res(&t, "192.0.2.7", "down.example"), SpfResult::TempError);
}

#[test]
fn redirect() {
    let mut t = Table::new();
    spf(&mut t, "example.com", "v=spf1 ip4:192.0.2.1 redirect=_spf.example.net");
    spf(&mut t, "_spf.example.net", "v=spf1 ip4:192.0.2.2 -all");
    assert_eq!(res(&t, "192.0.2.1", "example.com"), SpfResult::Pass);
    assert_eq!(res(&t, "192.0.2.2", "example.com"), SpfResult::Pass);
    assert_eq!(res(&t, "192.0.2.3", "example.com"), SpfResult::Fail);
    // "all" wins over redirect wherever redirect is written.
    spf(&mut t, "all.example", "v=spf1 redirect=_spf.example.net ~all");
    assert_eq!(res(&t, "192.0.2.2", "all.example"), SpfResult::SoftFail);
    // RFC 7208 6.1: a redirect to a domain without a record is a permerror.
    spf(&mut t, "nowhere.example", "v=spf1 redirect=void.example");
    assert_eq!(res(&t, "192.0.2.2", "nowhere.example"), SpfResult::PermError);
}

#[test]
fn loops_end_at_the_lookup_limit() {
    let mut t = Table::new();
    spf(&mut t, "e2.example", "v=spf1 include:e3.example");
    spf(&mut t, "e3.example", "v=spf1 include:e2.example");
    spf(&mut t, "self.example", "v=spf1 redirect=self.example");
    let (r, _, problem) = check_host(&t, ip("192.0.2.1"), "e2.example", "a@e2.example", "h", "r");
    assert_eq!(r, SpfResult::PermError);
    assert!(problem.unwrap().contains("DNS-querying terms"));
    assert_eq!(res(&t, "192.0.2.1", "self.example"), SpfResult::PermError);
}

#[test]
fn ten_dns_terms_allowed_eleven_not() {
    let mut t = Table::new();
    a(&mut t, "host.example", "192.0.2.99");
    let ten = format!("v=spf1 {} ip4:192.0.2.1 -all", ["a:host.example"; 10].join(" "));
    spf(&mut t, "ten.example", &ten);
    assert_eq!(res(&t, "192.0.2.1", "ten.example"), SpfResult::Pass);
    let eleven = format!("v=spf1 {} ip4:192.0.2.1 -all", ["a:host.example"; 11].join(" "));
    spf(&mut t, "eleven.example", &eleven);
    assert_eq!(res(&t, "192.0.2.1", "eleven.example"), SpfResult::PermError);
    // ip4, ip6 and all cost nothing.
    let cheap = format!("v=spf1 {} +all", ["ip4:10.0.0.1 ip6:::1"; 30].join(" "));
    spf(&mut t, "cheap.example", &cheap);
    assert_eq!(res(&t, "192.0.2.1", "cheap.example"), SpfResult::Pass);
    // The limit counts across includes.
    spf(
        &mut t,
        "inc.example",
        &format!("v=spf1 include:six.example {} ip4:192.0.2.1 -all", ["a:host.example"; 4].join(" ")),
    );
    spf(&mut t, "six.example", &format!("v=spf1 {} -all", ["a:host.example"; 6].join(" ")));
    assert_eq!(res(&t, "192.0.2.1", "inc.example"), SpfResult::PermError);
}

#[test]
fn void_lookups() {
    let mut t = Table::new();
    t.exists("nodata.example");
    spf(&mut t, "two.example", "v=spf1 a:nx1.example exists:nodata.example ip4:192.0.2.1 -all");
    spf(
        &mut t,
        "three.example",
        "v=spf1 a:nx1.example mx:nx2.example exists:nodata.example ip4:192.0.2.1 -all",
    );
    assert_eq!(res(&t, "192.0.2.1", "two.example"), SpfResult::Pass);
    assert_eq!(res(&t, "192.0.2.1", "three.example"), SpfResult::PermError);
}

#[test]
fn dns_failures_are_temperror() {
    let mut t = Table::new();
    t.fail("down.example").fail("mxdown.example");
    assert_eq!(res(&t, "192.0.2.1", "down.example"), SpfResult::TempError);
    spf(&mut t, "a.example", "v=spf1 a:down.example -all");
    spf(&mut t, "mx.example", "v=spf1 mx:mxdown.example -all");
    spf(&mut t, "ex.example", "v=spf1 exists:down.example -all");
    for d in ["a.example", "mx.example", "ex.example"] {
        let (r, _, problem) = check_host(&t, ip("192.0.2.1"), d, "x@y.example", "h", "r");
        assert_eq!(r, SpfResult::TempError, "{d}");
        assert!(problem.is_some());
    }
}

#[test]
fn malformed_records_are_permerror() {
    let mut t = Table::new();
    for (i, r) in [
        "v=spf1 -all moo",
        "v=spf1 ip4:1.2.3.4/33 -all",
        "v=spf1 a:%{z}.example -all",
        "v=spf1 include -all",
        "v=spf1 exp=a.example exp=b.example -all",
        "v=spf1 ~all foo=%",
        "v=spf1 -all\tip4:1.2.3.4",
    ]
    .iter()
    .enumerate()
    {
        let d = format!("m{i}.example");
        spf(&mut t, &d, r);
        // The error is found even when an earlier term would have matched.
        assert_eq!(res(&t, "1.2.3.4", &d), SpfResult::PermError, "{r}");
    }
    t.add("bytes.example", RData::Txt(vec![b"v=spf1 \xff+all".to_vec()]));
    assert_eq!(res(&t, "1.2.3.4", "bytes.example"), SpfResult::PermError);
}

#[test]
fn explanation_for_fail_only() {
    let mut t = Table::new();
    spf(&mut t, "example.com", "v=spf1 ~ip4:192.0.2.2 -all exp=why.%{d}");
    t.add_txt("why.example.com", "%{i} may not send for %{d} (%{s}, %{c}, %{r}, %{h}).");
    let (r, exp, _) =
        check_host(&t, ip("192.0.2.1"), "example.com", "joe@example.com", "h.example", "mx.example");
    assert_eq!(r, SpfResult::Fail);
    assert_eq!(
        exp.as_deref(),
        Some("192.0.2.1 may not send for example.com (joe@example.com, 192.0.2.1, mx.example, h.example).")
    );
    let (r, exp, _) = check_host(&t, ip("192.0.2.2"), "example.com", "joe@example.com", "h", "mx");
    assert_eq!((r, exp), (SpfResult::SoftFail, None));
    // Any trouble with the explanation means none, never another result.
    for (d, txt) in [("bad.example", Some("50% off")), ("nothing.example", None)] {
        spf(&mut t, d, "v=spf1 -all exp=why.%{d}");
        if let Some(txt) = txt {
            t.add_txt(&format!("why.{d}"), txt);
        }
        assert_eq!(check_host(&t, ip("192.0.2.1"), d, "a@b.c", "h", "r").0, SpfResult::Fail);
        assert_eq!(check_host(&t, ip("192.0.2.1"), d, "a@b.c", "h", "r").1, None);
    }
    // The explanation of an included record is not used; a redirect's is.
    spf(&mut t, "redir.example", "v=spf1 exp=why.example.com redirect=target.example");
    spf(&mut t, "target.example", "v=spf1 -all exp=t.why.example");
    t.add_txt("t.why.example", "see %{d}");
    let (r, exp, _) = check_host(&t, ip("192.0.2.1"), "redir.example", "a@redir.example", "h", "r");
    assert_eq!((r, exp.as_deref()), (SpfResult::Fail, Some("see target.example")));
}

#[test]
fn p_macro_prefers_the_domain() {
    let mut t = Table::new();
    ptr(&mut t, "192.0.2.1", "other.example.net");
    ptr(&mut t, "192.0.2.1", "mail.example.com");
    a(&mut t, "other.example.net", "192.0.2.1");
    a(&mut t, "mail.example.com", "192.0.2.1");
    spf(&mut t, "example.com", "v=spf1 -all exp=why.example.com");
    t.add_txt("why.example.com", "%{p}");
    let (_, exp, _) = check_host(&t, ip("192.0.2.1"), "example.com", "a@example.com", "h", "r");
    assert_eq!(exp.as_deref(), Some("mail.example.com"));
    let (_, exp, _) = check_host(&t, ip("192.0.2.9"), "example.com", "a@example.com", "h", "r");
    assert_eq!(exp.as_deref(), Some("unknown"));
}

#[test]
fn macro_names_are_truncated_to_253() {
    let mut t = Table::new();
    let label = "abcdefghij".repeat(6);
    let sender = format!("{label}.{label}.{label}.example.com");
    spf(&mut t, &sender, "v=spf1 exists:%{d}.%{d}.x.example -all");
    let full = format!("{sender}.{sender}.x.example");
    let mut name = full.as_str();
    while name.len() > 253 {
        name = name.split_once('.').unwrap().1;
    }
    a(&mut t, name, "127.0.0.2");
    assert_eq!(res(&t, "192.0.2.1", &sender), SpfResult::Pass);
}

#[test]
fn check_picks_the_identity() {
    let mut t = Table::new();
    spf(&mut t, "example.com", "v=spf1 ip4:192.0.2.1 -all exp=why.example.com");
    t.add_txt("why.example.com", "%{l} at %{o} via %{h}");
    spf(&mut t, "helo.example.org", "v=spf1 ip4:192.0.2.2 -all");
    let s = check(&t, ip("192.0.2.1"), "joe@example.com", "helo.example.org", "mx.example.net");
    assert_eq!((s.result, s.scope, s.domain.as_str()), (SpfResult::Pass, Scope::MailFrom, "example.com"));
    assert_eq!(s.sender, "joe@example.com");
    // RFC 7208 2.4: a null reverse-path checks postmaster@HELO.
    let s = check(&t, ip("192.0.2.2"), "", "helo.example.org", "mx.example.net");
    assert_eq!((s.result, s.scope), (SpfResult::Pass, Scope::Helo));
    assert_eq!((s.domain.as_str(), s.sender.as_str()), ("helo.example.org", "postmaster@helo.example.org"));
    // RFC 7208 4.3: no local part means postmaster.
    let s = check(&t, ip("192.0.2.9"), "@example.com", "helo.example.org", "mx.example.net");
    assert_eq!(s.result, SpfResult::Fail);
    assert_eq!(s.explanation.as_deref(), Some("postmaster at example.com via helo.example.org"));
    // IPv4-mapped clients are IPv4.
    let mapped = IpAddr::V6(Ipv4Addr::new(192, 0, 2, 1).to_ipv6_mapped());
    assert_eq!(check(&t, mapped, "<joe@example.com>", "h", "r").result, SpfResult::Pass);
    let s = check(&t, IpAddr::V6(Ipv6Addr::LOCALHOST), "joe@nowhere.example", "h", "r");
    assert_eq!((s.result, s.problem), (SpfResult::None, None));
}

#[test]
fn received_spf_field() {
    let s = Spf {
        result: SpfResult::Pass,
        scope: Scope::MailFrom,
        domain: "example.com".into(),
        sender: "myname@example.com".into(),
        explanation: None,
        problem: None,
    };
    let h = s.received_spf(ip("192.0.2.1"), "foo.example.com", "mybox.example.org");
    assert_eq!(
        h.replace("\r\n\t", " "),
        "Received-SPF: pass (mybox.example.org: domain of myname@example.com designates 192.0.2.1 \
         as permitted sender) client-ip=192.0.2.1; envelope-from=\"myname@example.com\"; \
         helo=foo.example.com; receiver=mybox.example.org; identity=mailfrom;"
    );
    assert!(!h.ends_with('\n'));
    for line in h.split("\r\n") {
        assert!(line.len() <= 78, "{line:?}");
        assert!(!line.contains('\n') && !line.contains('\r'));
    }
    let s = Spf {
        result: SpfResult::PermError,
        scope: Scope::Helo,
        domain: "h.example".into(),
        sender: "postmaster@h.example".into(),
        explanation: None,
        problem: Some("h.example: unknown mechanism in term \"fo\\o\"".into()),
    };
    let h = s.received_spf(ip("2001:db8::1"), "h.example", "mx (x)").replace("\r\n\t", " ");
    assert!(h.starts_with("Received-SPF: permerror (mx \\(x\\): "), "{h}");
    assert!(
        h.contains("identity=helo; problem=\"h.example: unknown mechanism in term \\\"fo\\\\o\\\"\";"),
        "{h}"
    );
    // ":" is no atext: an IPv6 address is a quoted-string (RFC 7208 9.1, RFC 5322 3.2.3).
    assert!(h.contains("client-ip=\"2001:db8::1\";"), "{h}");
    assert!(h.contains("receiver=\"mx (x)\";"));
}

#[test]
fn results_have_their_rfc_names() {
    let all = [
        (SpfResult::None, "none"),
        (SpfResult::Neutral, "neutral"),
        (SpfResult::Pass, "pass"),
        (SpfResult::Fail, "fail"),
        (SpfResult::SoftFail, "softfail"),
        (SpfResult::TempError, "temperror"),
        (SpfResult::PermError, "permerror"),
    ];
    for (r, s) in all {
        assert_eq!(r.as_str(), s);
    }
}

#[test]
fn cli_usage_errors() {
    let config = crate::config::Config::embedded();
    let mut out = Vec::new();
    for args in [
        &[][..],
        &["check"],
        &["check", "192.0.2.1"],
        &["verify", "192.0.2.1", "a@b.c"],
        &["check", "x", "a@b.c"],
    ] {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        assert!(matches!(cli(&config, &args, &mut out), Err(CliError::Usage(_))), "{args:?}");
    }
}
