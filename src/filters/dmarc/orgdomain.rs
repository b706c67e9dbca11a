//! The Organizational Domain of a DNS domain (RFC 7489 3.2): its public suffix, by the Public
//! Suffix List's algorithm (https://publicsuffix.org/list/, "Formal Algorithm": exception rules
//! win, then the longest matching rule, then the implicit `*`), plus one label.
//!
//! The list is embedded as plain text (public_suffix_list.txt beside this file, ~150 KiB): its
//! rules one a line, sorted by bytes, searched by bisection over the text itself, so it costs no
//! memory at run time and no code generation (the `psl` crate compiles the same list into ~725 KiB
//! of match arms). IDN rules are there both as U-labels and as A-labels, since mail carries domains
//! in either form. To refresh it from a newer `public_suffix_list.dat` (Debian's `publicsuffix`
//! package ships one in /usr/share/publicsuffix/), keep the four `//` header lines and run:
//!
//! ```text
//! python3 -c 'import sys; r=set()
//! for l in open(sys.argv[1], encoding="utf-8"):
//!     l=l.strip()
//!     if not l or l.startswith("//"): continue
//!     l=l.split()[0].lower(); r.add(l)
//!     if not l.isascii(): r.add(("!" if l[0]=="!" else "")+".".join(x if x.isascii() else
//!         "xn--"+x.encode("punycode").decode() for x in l.lstrip("!").split(".")))
//! sys.stdout.buffer.write(b"".join(x+b"\n" for x in sorted(x.encode() for x in r)))' \
//!   public_suffix_list.dat
//! ```

const LIST: &str = include_str!("public_suffix_list.txt");

/// The rules: `LIST` without its `//` header lines.
fn rules() -> &'static [u8] {
    let mut s = LIST.as_bytes();
    while s.starts_with(b"//") {
        s = match s.iter().position(|&b| b == b'\n') {
            Some(i) => &s[i + 1..],
            None => &[],
        };
    }
    s
}

/// Whether `prefix` + `rule` is a line of the sorted list (bisection over byte offsets: each step
/// finds the line around the middle and keeps the half that can still hold the rule).
fn listed(prefix: &str, rule: &str) -> bool {
    let text = rules();
    let key = || prefix.bytes().chain(rule.bytes());
    let (mut lo, mut hi) = (0usize, text.len());
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let start = text[lo..mid].iter().rposition(|&b| b == b'\n').map_or(lo, |i| lo + i + 1);
        let end = text[start..].iter().position(|&b| b == b'\n').map_or(text.len(), |i| start + i);
        match text[start..end].iter().copied().cmp(key()) {
            std::cmp::Ordering::Equal => return true,
            std::cmp::Ordering::Less => lo = end + 1,
            std::cmp::Ordering::Greater => hi = start,
        }
    }
    false
}

/// The number of labels of `domain` that form its public suffix: at least 1, since the implicit
/// rule is `*`.
fn suffix_labels(domain: &str) -> usize {
    // Each suffix of the domain, longest first: (labels in it, the suffix).
    let starts = std::iter::once(0).chain(domain.match_indices('.').map(|(i, _)| i + 1));
    let suffixes: Vec<&str> = starts.map(|i| &domain[i..]).collect();
    let n = suffixes.len();
    // An exception rule prevails over every other rule; its suffix is the rule minus its first label.
    if let Some(i) = suffixes.iter().position(|s| listed("!", s)) {
        return n - i - 1;
    }
    // Otherwise the matching rule with the most labels: `a.b.c` listed as such, or `*.b.c`.
    for (i, s) in suffixes.iter().enumerate() {
        if listed("", s) || suffixes.get(i + 1).is_some_and(|parent| listed("*.", parent)) {
            return n - i;
        }
    }
    1
}

/// The Organizational Domain of `domain` (RFC 7489 3.2): lowercased (ASCII), without a trailing
/// dot; a domain that is itself a public suffix (or has empty labels) is its own.
pub fn organizational_domain(domain: &str) -> String {
    let d = domain.trim_end_matches('.').to_ascii_lowercase();
    if d.len() > 253 || d.split('.').any(str::is_empty) {
        return d; // not a domain name (RFC 1035 2.3.4)
    }
    let labels: Vec<&str> = d.split('.').collect();
    let keep = suffix_labels(&d) + 1;
    if keep > labels.len() {
        return d;
    }
    labels[labels.len() - keep..].join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The registrable domain as the PSL's own test file (tests/test_psl.txt upstream) defines it:
    /// `None` when the name is a public suffix itself.
    fn registrable(domain: &str) -> Option<String> {
        let d = domain.to_ascii_lowercase();
        if d.starts_with('.') || d.is_empty() {
            return None;
        }
        let o = organizational_domain(&d);
        (suffix_labels(&d) < d.split('.').count()).then_some(o)
    }

    #[test]
    fn the_lists_own_test_vectors() {
        // From the PSL's test_psl.txt (public domain).
        let cases: &[(&str, Option<&str>)] = &[
            ("COM", None),
            ("example.COM", Some("example.com")),
            ("WwW.example.COM", Some("example.com")),
            (".com", None),
            (".example.com", None),
            ("example", None),
            ("example.example", Some("example.example")),
            ("b.example.example", Some("example.example")),
            ("a.b.example.example", Some("example.example")),
            ("biz", None),
            ("domain.biz", Some("domain.biz")),
            ("a.b.domain.biz", Some("domain.biz")),
            ("com", None),
            ("example.com", Some("example.com")),
            ("a.b.example.com", Some("example.com")),
            ("uk.com", None),
            ("example.uk.com", Some("example.uk.com")),
            ("b.example.uk.com", Some("example.uk.com")),
            ("test.ac", Some("test.ac")),
            ("mm", None),
            ("c.mm", None),
            ("b.c.mm", Some("b.c.mm")),
            ("a.b.c.mm", Some("b.c.mm")),
            ("jp", None),
            ("test.jp", Some("test.jp")),
            ("www.test.jp", Some("test.jp")),
            ("ac.jp", None),
            ("test.ac.jp", Some("test.ac.jp")),
            ("kyoto.jp", None),
            ("test.kyoto.jp", Some("test.kyoto.jp")),
            ("ide.kyoto.jp", None),
            ("b.ide.kyoto.jp", Some("b.ide.kyoto.jp")),
            ("a.b.ide.kyoto.jp", Some("b.ide.kyoto.jp")),
            ("c.kobe.jp", None),
            ("b.c.kobe.jp", Some("b.c.kobe.jp")),
            ("a.b.c.kobe.jp", Some("b.c.kobe.jp")),
            ("city.kobe.jp", Some("city.kobe.jp")),
            ("www.city.kobe.jp", Some("city.kobe.jp")),
            ("ck", None),
            ("test.ck", None),
            ("b.test.ck", Some("b.test.ck")),
            ("a.b.test.ck", Some("b.test.ck")),
            ("www.ck", Some("www.ck")),
            ("www.www.ck", Some("www.ck")),
            ("us", None),
            ("test.us", Some("test.us")),
            ("www.test.us", Some("test.us")),
            ("ak.us", None),
            ("test.ak.us", Some("test.ak.us")),
            ("k12.ak.us", None),
            ("test.k12.ak.us", Some("test.k12.ak.us")),
            ("www.test.k12.ak.us", Some("test.k12.ak.us")),
            ("食狮.com.cn", Some("食狮.com.cn")),
            ("食狮.公司.cn", Some("食狮.公司.cn")),
            ("www.食狮.公司.cn", Some("食狮.公司.cn")),
            ("shishi.公司.cn", Some("shishi.公司.cn")),
            ("公司.cn", None),
            ("食狮.中国", Some("食狮.中国")),
            ("www.食狮.中国", Some("食狮.中国")),
            ("shishi.中国", Some("shishi.中国")),
            ("中国", None),
            ("xn--85x722f.com.cn", Some("xn--85x722f.com.cn")),
            ("xn--85x722f.xn--55qx5d.cn", Some("xn--85x722f.xn--55qx5d.cn")),
            ("www.xn--85x722f.xn--55qx5d.cn", Some("xn--85x722f.xn--55qx5d.cn")),
            ("shishi.xn--55qx5d.cn", Some("shishi.xn--55qx5d.cn")),
            ("xn--55qx5d.cn", None),
            ("xn--85x722f.xn--fiqs8s", Some("xn--85x722f.xn--fiqs8s")),
            ("www.xn--85x722f.xn--fiqs8s", Some("xn--85x722f.xn--fiqs8s")),
            ("shishi.xn--fiqs8s", Some("shishi.xn--fiqs8s")),
            ("xn--fiqs8s", None),
        ];
        for (input, want) in cases {
            assert_eq!(registrable(input).as_deref(), *want, "{input}");
        }
    }

    #[test]
    fn organizational_domains() {
        assert_eq!(organizational_domain("a.b.example.test"), "example.test");
        assert_eq!(organizational_domain("Mail.Example.CO.UK."), "example.co.uk");
        assert_eq!(organizational_domain("example.com"), "example.com");
        // The private section counts: each github.io site is its own organization.
        assert_eq!(organizational_domain("www.alice.github.io"), "alice.github.io");
        // A public suffix, a bare label and nonsense are their own.
        assert_eq!(organizational_domain("co.uk"), "co.uk");
        assert_eq!(organizational_domain("localhost"), "localhost");
        assert_eq!(organizational_domain("a..b"), "a..b");
        assert_eq!(organizational_domain(""), "");
    }

    #[test]
    fn the_embedded_list_is_sorted_and_clean() {
        let lines: Vec<&[u8]> = rules().split(|&b| b == b'\n').filter(|l| !l.is_empty()).collect();
        assert!(lines.len() > 9000, "{}", lines.len());
        assert!(lines.windows(2).all(|w| w[0] < w[1]), "not sorted or duplicated");
        assert!(lines.iter().all(|l| !l.starts_with(b"//") && !l.contains(&b' ')));
        assert!(lines.iter().all(|l| std::str::from_utf8(l).is_ok_and(|l| listed("", l))));
        assert!(listed("!", "www.ck") && listed("*.", "ck") && listed("", "co.uk"));
        assert!(!listed("", "example") && !listed("", "") && !listed("", "zzzzzzzz") && !listed("*.", "uk"));
    }
}
