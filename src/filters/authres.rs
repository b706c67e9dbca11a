//! Authentication-Results (RFC 8601): the field buzon adds to inbound mail to say what SPF, DKIM
//! and DMARC found (2.2 syntax, 2.3 authserv-id, 2.7 method results), and the test that tells a
//! received field claiming buzon's own authserv-id, which a border MTA removes before delivery
//! because it cannot be trusted (5).

/// RFC 2045 5.1 tspecials: a `value` (RFC 8601 2.2) holding one of these, a space or a control
/// character is not a token and is quoted.
const TSPECIALS: &[u8] = b"()<>@,;:\\\"/[]?=";

fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic() && !TSPECIALS.contains(&b))
}

/// RFC 8601 2.2 `pvalue` may also be `[ [ local-part ] "@" ] domain-name` unquoted: a dot-atom
/// local part (RFC 5322 3.2.3) and a plain domain name.
fn is_address(s: &str) -> bool {
    let Some((local, domain)) = s.rsplit_once('@') else {
        return false;
    };
    let atext = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&b);
    let local_ok = local.is_empty() || local.split('.').all(|a| !a.is_empty() && a.bytes().all(atext));
    let domain_ok = domain
        .split('.')
        .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    local_ok && domain_ok
}

/// A value as a token or an address when it can be one, else as a quoted-string (RFC 5322 3.2.4):
/// `\` and `"` escaped, control characters (which no header field may carry) dropped. UTF-8 is
/// kept, inside quotes (RFC 8601 2.2 via RFC 6532).
fn value(s: &str, address_ok: bool) -> String {
    if is_token(s) || (address_ok && is_address(s)) {
        return s.to_string();
    }
    let mut q = String::with_capacity(s.len() + 2);
    q.push('"');
    for c in s.chars().filter(|c| !c.is_control()) {
        if c == '\\' || c == '"' {
            q.push('\\');
        }
        q.push(c);
    }
    q.push('"');
    q
}

/// A method, result or property name: keyword characters only (RFC 8601 2.2 `Keyword`, plus `.`
/// between ptype and property); they come from buzon itself, this only keeps the field well-formed.
fn keyword(s: &str) -> String {
    let k: String =
        s.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '.' || *c == '_').collect();
    if k.is_empty() { "x".into() } else { k }
}

/// One Authentication-Results field, built a result at a time.
#[derive(Debug, Clone)]
pub struct AuthResults {
    authserv_id: String,
    /// Each resinfo as its pieces: `method=result`, `reason=...`, `ptype.property=value`...
    results: Vec<Vec<String>>,
}

/// Lines are kept under 78 characters (RFC 5322 2.1.1), a folding tab counted as 8.
const WIDTH: usize = 78;

impl AuthResults {
    pub fn new(authserv_id: &str) -> Self {
        AuthResults { authserv_id: authserv_id.to_string(), results: Vec::new() }
    }

    /// Adds `method=result [reason="..."] [ptype.property=value ...]` (RFC 8601 2.2 resinfo).
    pub fn add(&mut self, method: &str, result: &str, reason: Option<&str>, props: &[(&str, &str)]) {
        let mut pieces = vec![format!("{}={}", keyword(method), keyword(result))];
        if let Some(r) = reason {
            pieces.push(format!("reason={}", value(r, false)));
        }
        for (name, v) in props {
            pieces.push(format!("{}={}", keyword(name), value(v, true)));
        }
        self.results.push(pieces);
    }

    /// The whole field, `Authentication-Results: ID; method=result ...; ...`, folded before a
    /// resinfo (or, for one too long for a line, between its pieces) so lines stay under 78
    /// characters; `ID; none` when nothing was added (2.2). No trailing CRLF.
    pub fn header(&self) -> String {
        let mut out = format!("Authentication-Results: {}", value(&self.authserv_id, false));
        let mut col = out.len();
        let none = vec![vec!["none".to_string()]];
        let items = if self.results.is_empty() { &none } else { &self.results };
        for pieces in items {
            out.push(';');
            col += 1;
            let whole: usize = pieces.iter().map(|p| p.len() + 1).sum();
            for (i, piece) in pieces.iter().enumerate() {
                let fits = if i == 0 { col + whole <= WIDTH } else { col + 1 + piece.len() <= WIDTH };
                if fits || col == 8 {
                    out.push(' ');
                    col += 1;
                } else {
                    out.push_str("\r\n\t");
                    col = 8;
                }
                out.push_str(piece);
                col += piece.len();
            }
        }
        out
    }
}

/// Skips CFWS (RFC 5322 3.2.2): white space, line breaks and nested comments with quoted-pairs.
/// `None` for an unterminated comment.
fn skip_cfws(s: &[u8], mut i: usize) -> Option<usize> {
    loop {
        match s.get(i) {
            Some(b' ' | b'\t' | b'\r' | b'\n') => i += 1,
            Some(b'(') => {
                let mut depth = 0usize;
                loop {
                    match s.get(i)? {
                        b'\\' => i += 1,
                        b'(' => depth += 1,
                        b')' => depth -= 1,
                        _ => {}
                    }
                    i += 1;
                    if depth == 0 {
                        break;
                    }
                }
            }
            _ => return Some(i),
        }
    }
}

/// The authserv-id and version (2.2 `[CFWS] authserv-id [ CFWS authres-version ]`) at the start
/// of an Authentication-Results field value; `None` when there is no readable authserv-id.
pub fn parse_id(field_value: &[u8]) -> Option<(String, Option<u32>)> {
    let s = field_value;
    let mut i = skip_cfws(s, 0)?;
    let mut id = Vec::new();
    if s.get(i) == Some(&b'"') {
        i += 1;
        loop {
            match *s.get(i)? {
                b'"' => break,
                b'\\' => {
                    id.push(*s.get(i + 1)?);
                    i += 2;
                }
                b => {
                    id.push(b);
                    i += 1;
                }
            }
        }
        i += 1;
    } else {
        // A token, extended to every byte that is no tspecial, space or control: UTF-8 names stay whole.
        while let Some(&b) = s.get(i) {
            if b <= b' ' || b == 0x7f || TSPECIALS.contains(&b) {
                break;
            }
            id.push(b);
            i += 1;
        }
    }
    if id.is_empty() {
        return None;
    }
    let id = String::from_utf8_lossy(&id).into_owned();
    let mut version = None;
    if let Some(j) = skip_cfws(s, i) {
        let digits: Vec<u8> = s[j..].iter().copied().take_while(u8::is_ascii_digit).collect();
        if j > i && !digits.is_empty() {
            version = std::str::from_utf8(&digits).ok().and_then(|d| d.parse().ok());
        }
    }
    Some((id, version))
}

/// Whether an Authentication-Results field value claims `authserv_id` (compared without case and
/// without a trailing dot, 2.5), so the SMTP side removes it from incoming mail (5).
pub fn is_ours(field_value: &[u8], authserv_id: &str) -> bool {
    let norm = |s: &str| s.strip_suffix('.').unwrap_or(s).to_ascii_lowercase();
    match parse_id(field_value) {
        Some((id, _)) => !authserv_id.is_empty() && norm(&id) == norm(authserv_id),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(h: &str) -> Vec<&str> {
        h.split("\r\n").collect()
    }

    #[test]
    fn none_when_nothing_was_added() {
        assert_eq!(
            AuthResults::new("mx.example.org").header(),
            "Authentication-Results: mx.example.org; none"
        );
    }

    #[test]
    fn one_line_when_it_fits() {
        let mut ar = AuthResults::new("mx.example.org");
        ar.add("spf", "pass", None, &[("smtp.mailfrom", "example.com")]);
        assert_eq!(ar.header(), "Authentication-Results: mx.example.org; spf=pass smtp.mailfrom=example.com");
    }

    #[test]
    fn folded_at_semicolons_under_78_columns() {
        let mut ar = AuthResults::new("mx.example.org");
        ar.add("spf", "pass", None, &[("smtp.mailfrom", "sender@example.com")]);
        ar.add(
            "dkim",
            "pass",
            None,
            &[("header.d", "example.com"), ("header.s", "sel1"), ("header.b", "abc/+def")],
        );
        ar.add("dmarc", "pass", None, &[("header.from", "example.com")]);
        let h = ar.header();
        assert_eq!(
            lines(&h),
            [
                "Authentication-Results: mx.example.org;",
                "\tspf=pass smtp.mailfrom=sender@example.com;",
                "\tdkim=pass header.d=example.com header.s=sel1 header.b=\"abc/+def\";",
                "\tdmarc=pass header.from=example.com",
            ]
        );
        assert!(!h.ends_with('\n'));
    }

    #[test]
    fn a_long_resinfo_folds_between_its_pieces() {
        let mut ar = AuthResults::new("mx.example.org");
        let long = "a-very-long-selector-name-that-goes-on.and-on.example.com";
        ar.add("dkim", "fail", Some("signature did not verify"), &[("header.d", long), ("header.s", long)]);
        let h = ar.header();
        for l in lines(&h) {
            assert!(l.len() + if l.starts_with('\t') { 7 } else { 0 } < WIDTH, "{l:?}");
        }
        assert_eq!(lines(&h)[1], "\tdkim=fail reason=\"signature did not verify\"");
        assert_eq!(h.replace("\r\n\t", " ").matches(long).count(), 2);
    }

    #[test]
    fn values_quoted_when_not_tokens() {
        let mut ar = AuthResults::new("mx.example.org");
        ar.add("spf", "fail", Some("say \"no\" \\ now"), &[("smtp.mailfrom", "\"john doe\"@example.com")]);
        ar.add("auth", "pass", None, &[("smtp.auth", "")]);
        ar.add("dkim", "pass", None, &[("header.i", "@example.com"), ("header.d", "dömain.example")]);
        ar.add("x-evil", "pass\r\nX: y", None, &[("a.b", "v\r\nInjected: 1")]);
        let h = ar.header().replace("\r\n\t", " ");
        assert!(
            h.contains(
                "spf=fail reason=\"say \\\"no\\\" \\\\ now\" smtp.mailfrom=\"\\\"john doe\\\"@example.com\""
            ),
            "{h}"
        );
        assert!(h.contains("smtp.auth=\"\""));
        assert!(h.contains("header.i=@example.com header.d=\"dömain.example\""), "{h}");
        assert!(h.contains("x-evil=passXy a.b=\"vInjected: 1\""), "{h}");
        assert!(!h.contains('\n') && !h.contains('\r'));
    }

    #[test]
    fn authserv_id_and_version() {
        assert_eq!(parse_id(b" mx.example.org; spf=pass"), Some(("mx.example.org".into(), None)));
        assert_eq!(parse_id(b"mx.example.org 1; spf=pass"), Some(("mx.example.org".into(), Some(1))));
        assert_eq!(
            parse_id(b" (our (nested) comment)\r\n\tmx.example.org (the \\) version) 1 ; none"),
            Some(("mx.example.org".into(), Some(1)))
        );
        assert_eq!(parse_id(b"\"mx.\\\"example.org\" ; none"), Some(("mx.\"example.org".into(), None)));
        assert_eq!(parse_id(b"mx.example.org;1"), Some(("mx.example.org".into(), None)));
        assert_eq!(parse_id(b""), None);
        assert_eq!(parse_id(b" ; spf=pass"), None);
        assert_eq!(parse_id(b"(unterminated mx.example.org"), None);
        assert_eq!(parse_id(b"\"unterminated"), None);
    }

    #[test]
    fn ours_without_case_after_cfws() {
        for v in [
            &b"mx.example.org; spf=pass smtp.mailfrom=example.com"[..],
            b"  MX.Example.ORG 1; none",
            b"(forged) mx.example.org. (really) ; dkim=pass header.d=bank.example",
            b"\r\n mx.example.org",
            b"\"mx.example.org\"; none",
        ] {
            assert!(is_ours(v, "mx.example.org"), "{}", String::from_utf8_lossy(v));
        }
        for v in [
            &b"mx.example.org.evil.example; spf=pass"[..],
            b"other.example.org; spf=pass",
            b"(mx.example.org) other.example; none",
            b"",
            b"; spf=pass",
        ] {
            assert!(!is_ours(v, "mx.example.org"), "{}", String::from_utf8_lossy(v));
        }
        assert!(!is_ours(b"x", ""));
    }

    #[test]
    fn our_own_header_is_recognised() {
        let mut ar = AuthResults::new("Mx.Example.Org");
        ar.add("spf", "none", None, &[]);
        let h = ar.header();
        let value = h.split_once(':').map(|(_, v)| v).unwrap_or_default();
        assert!(is_ours(value.as_bytes(), "mx.example.org"));
    }
}
