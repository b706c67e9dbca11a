//! Tests of message rendering: the RFC 3501 7.4.2 examples, handcrafted MIME shapes, and the shared
//! corpus of real-world and malformed messages.

use super::*;
use crate::imap::types::{Section, SectionText};

/// `n` lines of `width` characters (CRLF-terminated) and a last line of `last` characters without
/// a line break: the shape of a part's content before its delimiter.
fn lines(n: usize, width: usize, last: usize) -> String {
    let mut s = String::new();
    for i in 0..n {
        s.push_str(&"abcdefghijklmnopqrstuvwxyz0123456789".repeat(3)[i % 10..i % 10 + width]);
        s.push_str("\r\n");
    }
    s.push_str(&"x".repeat(last));
    s
}

/// IMAP syntax check: parentheses balance outside quoted strings and literals, strings are closed,
/// literals are complete, and the whole is one parenthesised list.
pub(crate) fn well_formed(s: &[u8]) -> bool {
    let mut depth = 0i64;
    let mut i = 0;
    if s.first() != Some(&b'(') {
        return false;
    }
    while i < s.len() {
        match s[i] {
            b'(' => depth += 1,
            b')' => {
                depth -= 1;
                if depth < 0 || (depth == 0 && i + 1 != s.len()) {
                    return false;
                }
            }
            b'"' => {
                i += 1;
                while i < s.len() && s[i] != b'"' {
                    if s[i] == b'\\' {
                        i += 1;
                    }
                    if i < s.len() && (s[i] == b'\r' || s[i] == b'\n') {
                        return false;
                    }
                    i += 1;
                }
                if i >= s.len() {
                    return false;
                }
            }
            b'{' => {
                let Some(close) = s[i..].iter().position(|&b| b == b'}') else { return false };
                let Ok(n) = std::str::from_utf8(&s[i + 1..i + close]).unwrap_or("x").parse::<usize>() else {
                    return false;
                };
                i += close + 1;
                if s.get(i..i + 2) != Some(b"\r\n") || s.len() < i + 2 + n {
                    return false;
                }
                i += 2 + n - 1;
            }
            b'\r' | b'\n' => return false,
            _ => {}
        }
        i += 1;
    }
    depth == 0
}

fn sec(part: &[u32], text: Option<SectionText>) -> Section {
    Section { part: part.to_vec(), text }
}

fn s(v: &[u8]) -> String {
    String::from_utf8_lossy(v).into_owned()
}

fn rfc3501_message() -> String {
    format!(
        "Date: Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\r\n\
         From: Terry Gray <gray@cac.washington.edu>\r\n\
         Subject: IMAP4rev1 WG mtg summary and minutes\r\n\
         To: imap@cac.washington.edu\r\n\
         cc: minutes@CNRI.Reston.VA.US, John Klensin <KLENSIN@MIT.EDU>\r\n\
         Message-Id: <B27397-0100000@cac.washington.edu>\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n\
         \r\n{}\r\n",
        lines(91, 31, 23)
    )
}

#[test]
fn rfc3501_envelope_and_body() {
    let m = rfc3501_message();
    assert_eq!(
        s(&envelope(header(m.as_bytes()), false)),
        "(\"Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\" \"IMAP4rev1 WG mtg summary and minutes\" \
         ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) \
         ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) \
         ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) \
         ((NIL NIL \"imap\" \"cac.washington.edu\")) \
         ((NIL NIL \"minutes\" \"CNRI.Reston.VA.US\")(\"John Klensin\" NIL \"KLENSIN\" \"MIT.EDU\")) NIL NIL \
         \"<B27397-0100000@cac.washington.edu>\")"
    );
    assert_eq!(
        s(&body_structure(m.as_bytes(), false)),
        // The default encoding is written as Dovecot writes it.
        "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7bit\" 3028 92)"
    );
    assert_eq!(
        s(&body_structure(m.as_bytes(), true)),
        "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7bit\" 3028 92 NIL NIL NIL NIL)"
    );
}

fn rfc3501_multipart() -> String {
    format!(
        "From: a@b\r\nContent-Type: MULTIPART/MIXED; BOUNDARY=\"xyz\"\r\n\r\n\
         preamble\r\n--xyz\r\nContent-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n\r\n{}\r\n\
         --xyz\r\nContent-Type: TEXT/PLAIN; CHARSET=US-ASCII; NAME=cc.diff\r\n\
         Content-ID: <960723163407.20117h@cac.washington.edu>\r\n\
         Content-Description: Compiler diff\r\nContent-Transfer-Encoding: BASE64\r\n\r\n{}\r\n--xyz--\r\n",
        lines(22, 50, 8),
        lines(72, 61, 18)
    )
}

#[test]
fn rfc3501_bodystructure() {
    let m = rfc3501_multipart();
    // RFC 3501 7.4.2, the BODYSTRUCTURE example. Its line counts (23, 73) count the last line, which
    // the line break before the delimiter leaves unterminated; body-fld-lines is not defined more
    // closely, and buzon counts line breaks as Dovecot does (22, 72).
    assert_eq!(
        s(&body_structure(m.as_bytes(), false)),
        "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7bit\" 1152 22)\
         (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\" \"NAME\" \"cc.diff\") \
         \"<960723163407.20117h@cac.washington.edu>\" \"Compiler diff\" \"BASE64\" 4554 72) \"MIXED\")"
    );
    assert_eq!(
        s(&body_structure(m.as_bytes(), true)),
        "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7bit\" 1152 22 NIL NIL NIL NIL)\
         (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\" \"NAME\" \"cc.diff\") \
         \"<960723163407.20117h@cac.washington.edu>\" \"Compiler diff\" \"BASE64\" 4554 72 NIL NIL NIL NIL) \
         \"MIXED\" (\"BOUNDARY\" \"xyz\") NIL NIL NIL)"
    );
    assert_eq!(section(m.as_bytes(), &sec(&[1], None)).len(), 1152);
    assert_eq!(section(m.as_bytes(), &sec(&[2], None)).len(), 4554);
    assert!(section(m.as_bytes(), &sec(&[3], None)).is_empty());
    assert!(
        s(&section(m.as_bytes(), &sec(&[2], Some(SectionText::Mime))))
            .starts_with("Content-Type: TEXT/PLAIN")
    );
    assert!(s(&section(m.as_bytes(), &sec(&[2], Some(SectionText::Mime)))).ends_with("BASE64\r\n\r\n"));
}

const NESTED: &str = "From: \"Doe, Jane\" <jane@example.org>\r\n\
To: friends: bob@example.org, Carol <carol@example.org>;, dave@example.net\r\n\
Subject: a long\r\n\tfolded subject\r\n\
X-Folded: one\r\n two\r\n\
Content-Type: multipart/alternative; boundary=outer\r\n\
\r\n\
--outer\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Content-Transfer-Encoding: 8bit\r\n\
\r\n\
Café crème\r\n\
--outer\r\n\
Content-Type: multipart/mixed; boundary=\"inner b\"\r\n\
\r\n\
--inner b\r\n\
Content-Type: text/html\r\n\
Content-Language: en, fr\r\n\
\r\n\
<p>hi</p>\r\n\
--inner b\r\n\
Content-Type: image/png; name=\"dot.png\"\r\n\
Content-Transfer-Encoding: base64\r\n\
Content-Disposition: attachment;\r\n filename=\"dot.png\"; size=3\r\n\
Content-Location: http://example.org/dot.png\r\n\
\r\n\
AAEC\r\n\
--inner b--\r\n\
--outer--\r\n";

#[test]
fn nested_multipart_with_attachment() {
    let m = NESTED.as_bytes();
    assert_eq!(
        s(&body_structure(m, true)),
        "((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"8bit\" 12 0 NIL NIL NIL NIL)\
         ((\"text\" \"html\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 9 0 NIL NIL (\"en\" \"fr\") NIL)\
         (\"image\" \"png\" (\"name\" \"dot.png\") NIL NIL \"base64\" 4 NIL \
         (\"attachment\" (\"filename\" \"dot.png\" \"size\" \"3\")) NIL \"http://example.org/dot.png\") \
         \"mixed\" (\"boundary\" \"inner b\") NIL NIL NIL) \
         \"alternative\" (\"boundary\" \"outer\") NIL NIL NIL)"
    );
    assert_eq!(
        s(&body_structure(m, false)),
        "((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"8bit\" 12 0)\
         ((\"text\" \"html\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 9 0)\
         (\"image\" \"png\" (\"name\" \"dot.png\") NIL NIL \"base64\" 4) \"mixed\") \"alternative\")"
    );
    assert_eq!(section(m, &sec(&[2, 1], None)), b"<p>hi</p>");
    assert_eq!(section(m, &sec(&[2, 2], None)), b"AAEC");
    assert_eq!(binary(m, &[2, 2]), Ok(vec![0, 1, 2]));
    assert_eq!(binary(m, &[1]), Ok("Café crème".as_bytes().to_vec()));
    assert_eq!(binary(m, &[9]), Ok(Vec::new()));
    assert!(section(m, &sec(&[2, 3], None)).is_empty());
    assert!(section(m, &sec(&[1, 1], None)).is_empty());
    // Part 2 is a multipart: its body, and no HEADER (not a message/rfc822 part).
    assert!(s(&section(m, &sec(&[2], None))).starts_with("--inner b\r\n"));
    assert!(section(m, &sec(&[2], Some(SectionText::Header))).is_empty());
    assert_eq!(
        s(&section(m, &sec(&[], Some(SectionText::HeaderFields(vec!["subject".into(), "X-FOLDED".into()]))))),
        "Subject: a long\r\n\tfolded subject\r\nX-Folded: one\r\n two\r\n\r\n"
    );
    let not =
        s(&section(m, &sec(&[], Some(SectionText::HeaderFieldsNot(vec!["Subject".into(), "to".into()])))));
    assert!(
        not.starts_with("From: ")
            && !not.contains("Subject")
            && !not.contains("friends")
            && not.ends_with("outer\r\n\r\n")
    );
    assert_eq!(section(m, &sec(&[], Some(SectionText::Header))), header(m));
    assert_eq!(section(m, &sec(&[], Some(SectionText::Text))), body(m));
    assert_eq!(section(m, &sec(&[], None)), m);
    // Envelope: quoted display name, groups, unfolded subject.
    assert_eq!(
        s(&envelope(header(m), false)),
        "(NIL \"a long\tfolded subject\" ((\"Doe, Jane\" NIL \"jane\" \"example.org\")) \
         ((\"Doe, Jane\" NIL \"jane\" \"example.org\")) ((\"Doe, Jane\" NIL \"jane\" \"example.org\")) \
         ((NIL NIL \"friends\" NIL)(NIL NIL \"bob\" \"example.org\")(\"Carol\" NIL \"carol\" \"example.org\")\
         (NIL NIL NIL NIL)(NIL NIL \"dave\" \"example.net\")) NIL NIL NIL NIL)"
    );
    // Search text: the decoded text parts, not the image.
    let text = body_text(m);
    assert!(text.contains("Café crème") && text.contains("<p>hi</p>") && !text.contains("AAEC"));
}

const RFC822_ATTACHMENT: &str = "From: a@example.org\r\n\
Subject: fwd\r\n\
Content-Type: multipart/mixed; boundary=b\r\n\
\r\n\
--b\r\n\
\r\n\
see attached\r\n\
--b\r\n\
Content-Type: message/rfc822\r\n\
\r\n\
From: Inner <inner@example.org>\r\n\
Subject: =?utf-8?q?inn=C3=A9r?=\r\n\
Content-Type: multipart/alternative; boundary=c\r\n\
\r\n\
--c\r\n\
Content-Type: text/plain; charset=iso-8859-1\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\
\r\n\
d=E9j=E0 vu\r\n\
--c\r\n\
Content-Type: text/html\r\n\
\r\n\
<b>x</b>\r\n\
--c--\r\n\
--b--\r\n";

#[test]
fn message_rfc822_part() {
    let m = RFC822_ATTACHMENT.as_bytes();
    let inner_env = "(NIL \"=?utf-8?q?inn=C3=A9r?=\" ((\"Inner\" NIL \"inner\" \"example.org\")) \
         ((\"Inner\" NIL \"inner\" \"example.org\")) ((\"Inner\" NIL \"inner\" \"example.org\")) NIL NIL NIL NIL NIL)";
    let inner = section(m, &sec(&[2], None));
    // The line break after the inner close delimiter is the inner message's epilogue (Dovecot).
    assert!(s(&inner).starts_with("From: Inner") && s(&inner).ends_with("--c--\r\n"));
    assert_eq!(
        s(&body_structure(m, false)),
        format!(
            "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 12 0)\
             (\"message\" \"rfc822\" NIL NIL NIL \"7bit\" {} {inner_env} \
             ((\"text\" \"plain\" (\"charset\" \"iso-8859-1\") NIL NIL \"quoted-printable\" 11 0)\
             (\"text\" \"html\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 8 0) \"alternative\") {}) \"mixed\")",
            inner.len(),
            inner.iter().filter(|&&b| b == b'\n').count()
        )
    );
    assert!(s(&section(m, &sec(&[2], Some(SectionText::Header)))).starts_with("From: Inner"));
    assert!(s(&section(m, &sec(&[2], Some(SectionText::Text)))).starts_with("--c\r\n"));
    assert_eq!(section(m, &sec(&[2, 1], None)), b"d=E9j=E0 vu");
    assert_eq!(section(m, &sec(&[2, 2], None)), b"<b>x</b>");
    assert_eq!(
        s(&section(m, &sec(&[2], Some(SectionText::HeaderFields(vec!["SUBJECT".into()]))))),
        "Subject: =?utf-8?q?inn=C3=A9r?=\r\n\r\n"
    );
    assert_eq!(binary(m, &[2, 1]), Ok(b"d\xe9j\xe0 vu".to_vec()));
    assert!(s(&section(m, &sec(&[2], Some(SectionText::Mime)))).starts_with("Content-Type: message/rfc822"));
    // Search: the inner header decoded, the charset converted.
    let text = body_text(m);
    assert!(text.contains("innér") && text.contains("déjà vu") && text.contains("see attached"), "{text}");
    assert_eq!(header_values(&inner, "subject"), vec!["innér".to_string()]);
}

#[test]
fn single_part_numbers() {
    let m = b"Subject: x\r\n\r\nhello\r\n";
    assert_eq!(section(m, &sec(&[1], None)), b"hello\r\n");
    assert_eq!(section(m, &sec(&[1], Some(SectionText::Mime))), b"Subject: x\r\n\r\n");
    assert!(section(m, &sec(&[1], Some(SectionText::Header))).is_empty());
    assert!(section(m, &sec(&[2], None)).is_empty());
    assert!(section(m, &sec(&[1, 1], None)).is_empty());
    assert!(section(m, &sec(&[0], None)).is_empty());
    assert!(section(m, &sec(&[], Some(SectionText::Mime))).is_empty());
    // Top-level message/rfc822: part 1 is the message inside; 1.1 its body.
    let m = b"Content-Type: message/rfc822\r\n\r\nSubject: in\r\n\r\nbody";
    assert_eq!(section(m, &sec(&[1], None)), b"Subject: in\r\n\r\nbody");
    assert_eq!(section(m, &sec(&[1, 1], None)), b"body");
    assert_eq!(section(m, &sec(&[1], Some(SectionText::Header))), b"Subject: in\r\n\r\n");
}

#[test]
fn defaults_and_broken_mime() {
    // No Content-Type at all: text/plain; charset=us-ascii; 7bit.
    let m = b"Subject: x\r\n\r\nhi\r\n";
    assert_eq!(
        s(&body_structure(m, false)),
        "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 4 1)"
    );
    // No header, no body.
    assert_eq!(
        s(&body_structure(b"", false)),
        "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0)"
    );
    assert_eq!(s(&envelope(b"", false)), "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)");
    // A multipart without a boundary, or whose boundary never appears: one empty text part, as
    // Dovecot shows it (checked against Dovecot 2.3 with tests/test_imap_dovecot.py).
    for ct in ["multipart/mixed", "multipart/mixed; boundary=zz"] {
        let m = format!("Content-Type: {ct}\r\n\r\n--b\r\nx\r\n--b--\r\n");
        assert_eq!(
            s(&body_structure(m.as_bytes(), false)),
            "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0) \"mixed\")"
        );
        assert_eq!(section(m.as_bytes(), &sec(&[1], None)), b"");
        assert_eq!(section(m.as_bytes(), &sec(&[1], Some(SectionText::Mime))), b"");
        assert!(section(m.as_bytes(), &sec(&[2], None)).is_empty());
    }
    // Unterminated parts and a broken Content-Type inside.
    let m =
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: ???\r\n\r\none\r\n--b\r\ntwo";
    assert_eq!(
        s(&body_structure(m, false)),
        // `two` has no blank line after it: it is a header (Dovecot), and the body is empty.
        "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 3 0)\
         (\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0) \"mixed\")"
    );
    // multipart/digest parts default to message/rfc822.
    let m = b"Content-Type: multipart/digest; boundary=d\r\n\r\n--d\r\n\r\nSubject: s\r\n\r\nb\r\n--d--";
    let bs = s(&body_structure(m, false));
    assert!(bs.starts_with("((\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 15 (NIL \"s\" "), "{bs}");
    // Unknown transfer encoding: BINARY refuses.
    let m = b"MIME-Version: 1.0\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nbegin";
    assert_eq!(binary(m, &[1]), Err(BinaryError::UnknownCte));
    assert_eq!(binary(m, &[]), Ok(m.to_vec()));
    // Without MIME-Version or Content-Type the Content-* fields do not count (Dovecot).
    let m = b"Content-Transfer-Encoding: x-uuencode\r\n\r\nbegin";
    assert_eq!(binary(m, &[1]), Ok(b"begin".to_vec()));
}

#[test]
fn deep_nesting_is_bounded() {
    let mut m = b"Subject: bottom\r\n\r\nx".to_vec();
    for i in 0..200 {
        let mut outer = if i % 2 == 0 {
            b"Content-Type: message/rfc822\r\n\r\n".to_vec()
        } else {
            format!("Content-Type: multipart/mixed; boundary=\"q{i}\"\r\n\r\n--q{i}\r\nContent-Type: message/rfc822\r\n\r\n")
                .into_bytes()
        };
        outer.extend_from_slice(&m);
        m = outer;
    }
    let bs = body_structure(&m, true);
    assert!(well_formed(&bs), "{}", s(&bs));
    assert!(s(&bs).contains("\"application\" \"octet-stream\""));
    assert!(well_formed(&envelope(header(&m), true)));
    let _ = section(&m, &sec(&[1; 100], Some(SectionText::Header)));
    let _ = binary(&m, &[1; 100]);
    assert!(!body_text(&m).is_empty() || body_text(&m).is_empty());
}

#[test]
fn addresses() {
    let cases: &[(&str, &str)] = &[
        ("a@b", "((NIL NIL \"a\" \"b\"))"),
        ("<a@b>", "((NIL NIL \"a\" \"b\"))"),
        ("a@b (Real Name)", "((\"Real Name\" NIL \"a\" \"b\"))"),
        ("\"q \\\" d\" <a.b@c.d>", "((\"q \\\" d\" NIL \"a.b\" \"c.d\"))"),
        ("=?utf-8?q?J=C3=B6rg?= <j@x>", "((\"=?utf-8?q?J=C3=B6rg?=\" NIL \"j\" \"x\"))"),
        ("<@r1,@r2:a@b>", "((NIL \"@r1,@r2\" \"a\" \"b\"))"),
        ("\"odd local\"@b", "((NIL NIL \"\\\"odd local\\\"\" \"b\"))"),
        ("root", "((NIL NIL \"root\" \"MISSING_DOMAIN\"))"),
        ("undisclosed-recipients:;", "((NIL NIL \"undisclosed-recipients\" NIL)(NIL NIL NIL NIL))"),
        ("a@b,,c@d", "((NIL NIL \"a\" \"b\")(NIL NIL \"c\" \"d\"))"),
        ("", "NIL"),
        (" , ", "NIL"),
        ("a@[1.2.3.4]", "((NIL NIL \"a\" \"[1.2.3.4]\"))"),
        ("g: a@b", "((NIL NIL \"g\" NIL)(NIL NIL \"a\" \"b\")(NIL NIL NIL NIL))"),
    ];
    for (value, want) in cases {
        let h = format!("To: {value}\r\n\r\n");
        let env = s(&envelope(h.as_bytes(), false));
        let got = env.strip_prefix("(NIL NIL NIL NIL NIL ").and_then(|r| r.strip_suffix(" NIL NIL NIL NIL)"));
        assert_eq!(got, Some(*want), "{value}: {env}");
    }
    // 8-bit names: literal in IMAP4rev1, quoted with UTF8=ACCEPT.
    let h = "From: Jörg <j@x>\r\nSender: \r\n\r\n".as_bytes();
    assert!(s(&envelope(h, false)).contains("(({5}\r\nJörg NIL \"j\" \"x\"))"));
    assert!(s(&envelope(h, true)).contains("((\"Jörg\" NIL \"j\" \"x\"))"));
}

#[test]
fn sent_dates() {
    use crate::imap::types::Date;
    let d = |y, m, d| Some(Date { year: y, month: m, day: d });
    for (v, want) in [
        ("Wed, 17 Jul 1996 02:23:25 -0700 (PDT)", d(1996, 7, 17)),
        ("1 jan 2024 23:59 -0500", d(2024, 1, 1)),
        ("Fri, 3 Mar 99 10:00:00 GMT", d(1999, 3, 3)),
        ("Tue,  05 November 2019 8:00", None),
        ("Tue,  05 November 2019 08:00", d(2019, 11, 5)),
        // No time of day, or a broken one: not a date (Dovecot: sent on 1 Jan 1970).
        ("Tue,  05 November 2019", None),
        ("Tue, 7 Apr 2026 10:00:t <x@y>", None),
        ("garbage", None),
        ("32 Jan 2020", None),
    ] {
        let h = format!("Date: {v}\r\n\r\n");
        assert_eq!(sent_date(h.as_bytes()), want, "{v}");
    }
    assert_eq!(sent_date(b"Subject: x\r\n\r\n"), None);
}

/// Every message of the shared corpus gives a well-formed BODYSTRUCTURE, BODY and ENVELOPE, and
/// every section and BINARY of its first parts can be taken.
#[test]
fn corpus() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/eml");
    let Ok(dirs) = std::fs::read_dir(&root) else {
        eprintln!("corpus: {} not found, skipped", root.display());
        return;
    };
    let mut n = 0;
    for dir in dirs.flatten() {
        let Ok(files) = std::fs::read_dir(dir.path()) else { continue };
        for f in files.flatten() {
            if f.path().extension().is_none_or(|e| e != "eml") {
                continue;
            }
            let raw = std::fs::read(f.path()).unwrap();
            // The store hands out CRLF line ends.
            let mut m = Vec::with_capacity(raw.len());
            for (i, &b) in raw.iter().enumerate() {
                if b == b'\n' && (i == 0 || raw[i - 1] != b'\r') {
                    m.push(b'\r');
                }
                m.push(b);
            }
            let name = f.path().display().to_string();
            for utf8 in [false, true] {
                let env = envelope(header(&m), utf8);
                assert!(well_formed(&env), "{name}: {}", s(&env));
            }
            for ext in [false, true] {
                let bs = body_structure(&m, ext);
                assert!(well_formed(&bs), "{name}: {}", s(&bs));
            }
            for part in [&[][..], &[1], &[2], &[1, 1], &[2, 1], &[3]] {
                for text in
                    [None, Some(SectionText::Header), Some(SectionText::Text), Some(SectionText::Mime)]
                {
                    let _ = section(&m, &sec(part, text));
                }
                let _ = binary(&m, part);
            }
            let _ = body_text(&m);
            let _ = sent_date(header(&m));
            n += 1;
        }
    }
    assert!(n >= 50, "corpus: only {n} messages");
}

fn corpus_message(name: &str) -> Option<Vec<u8>> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/eml").join(name);
    let Ok(raw) = std::fs::read(&path) else {
        eprintln!("corpus: {} not found, skipped", path.display());
        return None;
    };
    Some(String::from_utf8_lossy(&raw).replace("\r\n", "\n").replace('\n', "\r\n").into_bytes())
}

/// A few corpus messages checked by hand against their text.
#[test]
fn corpus_by_hand() {
    // RFC 2046 appendix A: parallel parts, text/enriched and an encapsulated message whose From is
    // only a comment (no address: NIL) and whose body is quoted-printable ISO-8859-1.
    if let Some(m) = corpus_message("rfc/000.eml") {
        let bs = s(&body_structure(&m, false));
        assert!(bs.contains("(\"audio\" \"basic\" NIL NIL NIL \"base64\" 87)(\"image\" \"jpeg\" NIL NIL NIL \"base64\" 45) \"parallel\")"), "{bs}");
        assert!(bs.contains("(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 230 (NIL \"(subject in US-ASCII)\" NIL NIL NIL NIL NIL NIL NIL NIL) (\"Text\" \"plain\" (\"charset\" \"ISO-8859-1\") NIL NIL \"Quoted-printable\" 49 1) 7)"), "{bs}");
        assert!(bs.ends_with(" \"mixed\")"));
        assert_eq!(section(&m, &sec(&[3, 2], None)).len(), 45);
        assert!(
            s(&section(&m, &sec(&[5], Some(SectionText::Header)))).starts_with("From: (mailbox in US-ASCII)")
        );
    }
    // RFC 2046 5.1.5: a digest in a mixed; its parts default to message/rfc822.
    if let Some(m) = corpus_message("rfc/004.eml") {
        let bs = s(&body_structure(&m, false));
        assert!(bs.contains("((\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 105 (\"Fri, 26 Mar 1993 11:13:32 +0200\" \"my opinion\""), "{bs}");
        assert!(bs.contains("\"digest\") \"mixed\")"), "{bs}");
        assert!(
            s(&section(&m, &sec(&[2, 2, 1], None))).contains("another body goes here"),
            "{}",
            s(&section(&m, &sec(&[2, 2, 1], None)))
        );
    }
    // A base64-encoded message/rfc822 (RFC 2046 5.2.1 forbids it) is still message/rfc822, parsed
    // as Dovecot parses it: the base64 lines are a header without fields, cut by the delimiter,
    // whose last line break stays in the part (1196 octets, 16 lines).
    if let Some(m) = corpus_message("rfc/008.eml") {
        let bs = s(&body_structure(&m, true));
        assert!(bs.contains("(\"message\" \"rfc822\" NIL NIL NIL \"base64\" 1196 (NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL) (\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0 NIL NIL NIL NIL) 16 NIL (\"attachment\" (\"filename\" \"attached_email.eml\")) NIL NIL)"), "{bs}");
        assert!(s(&binary(&m, &[2]).unwrap()).contains("Subject: "));
    }
}

/// The differences tests/test_imap_dovecot.py found against Dovecot 2.3, one case each.
#[test]
fn dovecot_rendering() {
    // A text part without a charset gets charset=us-ascii, after its other parameters.
    let m = b"Content-Type: text/plain; format=flowed\r\n\r\nx\r\n";
    assert_eq!(
        s(&body_structure(m, false)),
        "(\"text\" \"plain\" (\"format\" \"flowed\" \"charset\" \"us-ascii\") NIL NIL \"7bit\" 3 1)"
    );
    // Content-Language is always a list, even of one tag.
    let m = b"Content-Language: en-GB\r\nMIME-Version: 1.0\r\n\r\nx";
    assert!(s(&body_structure(m, true)).ends_with(" 1 0 NIL NIL (\"en-GB\") NIL)"));
    // A Content-Transfer-Encoding that is not one token is no mechanism: 7bit.
    let m = b"MIME-Version: 1.0\r\nContent-Transfer-Encoding: 8 bit\r\n\r\nx";
    assert!(s(&body_structure(m, false)).contains("NIL NIL \"7bit\" 1 0)"));
    // Lines are line breaks: a last line without one does not count.
    assert!(s(&body_structure(b"S: x\r\n\r\na\r\nb", false)).ends_with(" 4 1)"));
    // ENVELOPE: a repeated field counts by its last occurrence (corpus malformed/019.eml).
    let h = b"Date: broken\r\nSubject: s\r\nDate: Tue, 7 Apr 2026 10:00:01 +0000\r\n\r\n";
    assert!(s(&envelope(h, false)).starts_with("(\"Tue, 7 Apr 2026 10:00:01 +0000\" \"s\" "));
    // A display name without an address (corpus rfc/009.eml).
    let h = b"From: Someone Else\r\n\r\n";
    assert!(
        s(&envelope(h, false)).contains("((\"Someone Else\" NIL \"MISSING_MAILBOX\" \"MISSING_DOMAIN\"))"),
        "{}",
        s(&envelope(h, false))
    );
    // A blank line straight followed by an enclosing delimiter: the header loses that line
    // (corpus thirdparty/011.eml); the part is empty.
    let m = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n--b\r\n\r\ntwo\r\n--b--\r\n";
    assert_eq!(section(m, &sec(&[1], Some(SectionText::Mime))), b"Content-Type: text/plain\r\n");
    assert_eq!(section(m, &sec(&[1], None)), b"");
    assert_eq!(section(m, &sec(&[2], None)), b"two");
    // Boundaries longer than 70 characters are cut to 70 (corpus malformed/016.eml).
    let long = "x".repeat(75);
    let m = format!(
        "Content-Type: multipart/mixed; boundary=\"{long}\"\r\n\r\n--{}\r\n\r\none\r\n--{long}--\r\n",
        &long[..70]
    );
    assert_eq!(section(m.as_bytes(), &sec(&[1], None)), b"one");
    // An invalid Content-Type (no `;` before the parameters) is text/plain (RFC 2045 5.2).
    let m = b"Content-Type: multipart/mixed\r\n\tboundary=\"b\"\r\n\r\n--b\r\n\r\nx\r\n--b--\r\n";
    assert!(s(&body_structure(m, false)).starts_with("(\"text\" \"plain\" (\"charset\" \"us-ascii\")"));
}
