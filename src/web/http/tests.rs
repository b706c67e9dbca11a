//! Tests of the HTTP/1.1 codec: framing (RFC 9112), the smuggling cases (RFC 9112 6.3), the
//! request helpers, response serialisation and multipart/form-data (RFC 7578).

use super::*;

fn run(input: &[u8]) -> Parsed {
    parse(input, &Limits::default())
}

fn complete(input: &[u8]) -> (Request, usize) {
    match run(input) {
        Parsed::Complete(request, n) => (request, n),
        other => panic!("{other:?} for {:?}", String::from_utf8_lossy(input)),
    }
}

/// Feeds `input` as a driver does, one byte more each time: Partial until the first request is in,
/// then the same Complete whatever follows it.
fn at_every_split(input: &[u8]) -> (Request, usize) {
    let whole = run(input);
    let Parsed::Complete(request, n) = whole.clone() else { panic!("{whole:?}") };
    for cut in 0..n {
        assert_eq!(
            run(&input[..cut]),
            Parsed::Partial,
            "cut at {cut} of {:?}",
            String::from_utf8_lossy(input)
        );
    }
    for cut in n..=input.len() {
        assert_eq!(run(&input[..cut]), whole, "cut at {cut}");
    }
    (request, n)
}

fn get(head: &str) -> Vec<u8> {
    format!("GET / HTTP/1.1\r\nHost: mail.example.org\r\n{head}\r\n").into_bytes()
}

#[test]
fn get_at_every_split() {
    let input = b"GET /a%20b/%C3%A9t%C3%A9?x=1&y=%C3%A9 HTTP/1.1\r\nHost: Mail.Example.org:8080\r\nUser-Agent: t\r\n\r\n";
    let (r, n) = at_every_split(input);
    assert_eq!(n, input.len());
    assert_eq!(r.method, Method::Get);
    assert_eq!(r.path, "/a b/été");
    assert_eq!(r.query, "x=1&y=%C3%A9");
    assert_eq!(r.minor, 1);
    assert_eq!(r.headers[0], ("host".to_string(), b"Mail.Example.org:8080".to_vec()));
    assert_eq!(r.headers[1], ("user-agent".to_string(), b"t".to_vec()));
    assert_eq!(r.host(), Some("Mail.Example.org:8080"));
    assert!(r.body.is_empty());
}

#[test]
fn post_body_at_every_split() {
    let input = b"POST /login HTTP/1.1\r\nHost: h\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 12\r\n\r\nu=a%40b&p=x+GET / HTTP/1.1\r\n";
    let (r, n) = at_every_split(input);
    assert_eq!(r.method, Method::Post);
    assert_eq!(r.body, b"u=a%40b&p=x+");
    assert_eq!(&input[n..], b"GET / HTTP/1.1\r\n");
    assert_eq!(r.form(), [("u".into(), "a@b".into()), ("p".into(), "x ".into())]);
}

#[test]
fn pipelined_requests_stay_in_the_buffer() {
    let mut buf = b"GET /one HTTP/1.1\r\nHost: h\r\n\r\n".to_vec();
    buf.extend_from_slice(b"POST /two HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc");
    buf.extend_from_slice(b"HEAD /three HTTP/1.1\r\nHost: h\r\n\r\n");
    buf.extend_from_slice(b"GET /four HTTP/1.1\r\nHo");
    let mut seen = Vec::new();
    let mut rest = &buf[..];
    while let Parsed::Complete(r, n) = run(rest) {
        seen.push((r.method, r.path, r.body));
        rest = &rest[n..];
    }
    assert_eq!(
        seen,
        [
            (Method::Get, "/one".to_string(), vec![]),
            (Method::Post, "/two".to_string(), b"abc".to_vec()),
            (Method::Head, "/three".to_string(), vec![])
        ]
    );
    assert_eq!(rest, b"GET /four HTTP/1.1\r\nHo");
    assert_eq!(run(rest), Parsed::Partial);
}

#[test]
fn empty_lines_before_the_request_line_are_skipped() {
    // RFC 9112 2.2.
    for input in
        [&b"\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n"[..], b"\r\n\r\n\nGET / HTTP/1.1\r\nHost: h\r\n\r\n"]
    {
        let (r, n) = at_every_split(input);
        assert_eq!((r.path.as_str(), n), ("/", input.len()));
    }
    // A bare LF ends a line too (RFC 9112 2.2 allows it).
    assert_eq!(complete(b"GET /x HTTP/1.1\nHost: h\n\n").0.path, "/x");
}

#[test]
fn head_and_header_count_limits() {
    let limits = Limits { max_head: 64, max_body: 1000, max_headers: 3 };
    let head = b"GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\n\r\n";
    assert!(matches!(parse(head, &limits), Parsed::Complete(_, 33)));
    // The body does not count against the head.
    let mut post = b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\n".to_vec();
    post.extend_from_slice(&[b'x'; 100]);
    assert!(matches!(parse(&post, &limits), Parsed::Complete(_, n) if n == post.len()));
    // Exactly 64 bytes of head fits; one more is 431 as soon as 64 bytes are in without the end.
    let exact = format!("GET / HTTP/1.1\r\nHost: h\r\nA: {}\r\n\r\n", "v".repeat(32));
    assert_eq!(exact.len(), 64);
    assert!(matches!(parse(exact.as_bytes(), &limits), Parsed::Complete(_, 64)));
    let over = format!("GET / HTTP/1.1\r\nHost: h\r\nA: {}\r\n\r\n", "v".repeat(33));
    assert_eq!(parse(&over.as_bytes()[..63], &limits), Parsed::Partial);
    assert_eq!(parse(&over.as_bytes()[..64], &limits), Parsed::Error(431));
    assert_eq!(parse(over.as_bytes(), &limits), Parsed::Error(431));
    let endless = [b'a'; 100];
    assert_eq!(parse(&endless, &limits), Parsed::Error(431));
    // Three field lines fit, four are 431.
    assert!(matches!(
        parse(b"GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\n\r\n", &limits),
        Parsed::Complete(..)
    ));
    assert_eq!(
        parse(b"GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", &limits),
        Parsed::Error(431)
    );
}

#[test]
fn malformed_heads_are_400() {
    let cases: &[&[u8]] = &[
        b"GET\r\n\r\n",
        b"GET /\r\n\r\n",
        b"GET  / HTTP/1.1\r\nHost: h\r\n\r\n",
        b"G(T / HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET / HTTP/1.1 \r\nHost: h\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost : h\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: h\r\nBad Name: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: h\r\nNo-colon\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: h\r\nA: x\x00y\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: h\r\nA: x\ry\r\n\r\n",
        b"GET / HTTP/1.1\rHost: h\r\n\r\n",
        b" GET / HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET / HTTPS/1.1\r\nHost: h\r\n\r\n",
        b"GET / http/1.1\r\nHost: h\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
    ];
    for input in cases {
        assert_eq!(run(input), Parsed::Error(400), "{:?}", String::from_utf8_lossy(input));
    }
}

#[test]
fn obsolete_line_folding_is_400() {
    // RFC 9112 5.2: obs-fold is refused in a request.
    assert_eq!(run(b"GET / HTTP/1.1\r\nHost: h\r\nX-A: one\r\n two\r\n\r\n"), Parsed::Error(400));
    assert_eq!(run(b"GET / HTTP/1.1\r\nHost: h\r\nX-A: one\r\n\ttwo\r\n\r\n"), Parsed::Error(400));
    assert_eq!(run(b"GET / HTTP/1.1\r\n Host: h\r\n\r\n"), Parsed::Error(400));
}

#[test]
fn versions() {
    for v in ["HTTP/2.0", "HTTP/1.2", "HTTP/3", "HTTP/0.9", "HTTP/9"] {
        let input = format!("GET / {v}\r\nHost: h\r\n\r\n");
        assert_eq!(run(input.as_bytes()), Parsed::Error(505), "{v}");
    }
    // The HTTP/2 connection preface (RFC 9113 3.4).
    assert_eq!(run(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), Parsed::Error(505));
    // HTTP/1.0 needs no Host.
    let (r, _) = complete(b"GET /old HTTP/1.0\r\n\r\n");
    assert_eq!((r.minor, r.host()), (0, None));
}

#[test]
fn host_rules() {
    // RFC 9112 3.2.
    assert_eq!(run(b"GET / HTTP/1.1\r\n\r\n"), Parsed::Error(400));
    assert_eq!(run(b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n"), Parsed::Error(400));
    assert_eq!(run(b"GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n"), Parsed::Error(400));
    for bad in [
        "a b",
        "a/b",
        "u@h",
        "h:80x",
        "h:123456",
        "[::1",
        "[zz]",
        "a[b]",
        "[::1]x",
        "[]",
        "h\x7f",
        "\u{e9}.example",
    ] {
        let input = format!("GET / HTTP/1.1\r\nHost: {bad}\r\n\r\n");
        assert_eq!(run(input.as_bytes()), Parsed::Error(400), "{bad:?}");
    }
    for good in [
        "h",
        "mail.example.org:443",
        "[::1]:8080",
        "[2001:db8::1]",
        "192.0.2.1",
        "xn--bcher-kva.example",
        "h:",
    ] {
        let input = format!("GET / HTTP/1.1\r\nHost: {good}\r\n\r\n");
        assert_eq!(complete(input.as_bytes()).0.host(), Some(good), "{good:?}");
    }
    // An empty Host is valid for an origin-form target and means no host.
    assert_eq!(complete(b"GET / HTTP/1.1\r\nHost:\r\n\r\n").0.host(), None);
}

#[test]
fn request_targets() {
    let ok: &[(&str, &str, &str)] = &[
        ("/", "/", ""),
        ("/a/b?c=d?e", "/a/b", "c=d?e"),
        ("/x%2Fy%3F?", "/x/y?", ""),
        ("/%E2%82%AC", "/\u{20ac}", ""),
        ("/a+b", "/a+b", ""),
        ("http://mail.example.org/inbox?m=1", "/inbox", "m=1"),
        ("HTTPS://mail.example.org", "/", ""),
        ("http://mail.example.org?q", "/", "q"),
    ];
    for &(target, path, query) in ok {
        let input = format!("GET {target} HTTP/1.1\r\nHost: other.example\r\n\r\n");
        let (r, _) = complete(input.as_bytes());
        assert_eq!((r.path.as_str(), r.query.as_str()), (path, query), "{target}");
    }
    // RFC 9112 3.2.2: the absolute form's authority replaces Host, and stands for one in HTTP/1.0.
    let (r, _) = complete(b"GET http://mail.example.org:8080/ HTTP/1.1\r\nHost: evil.example\r\n\r\n");
    assert_eq!(r.host(), Some("mail.example.org:8080"));
    assert_eq!(r.headers.iter().filter(|(n, _)| n == "host").count(), 1);
    assert_eq!(complete(b"GET http://h.example/ HTTP/1.0\r\n\r\n").0.host(), Some("h.example"));
    let bad = [
        "*",
        "mail.example.org:443",
        "index.html",
        "ftp://h/x",
        "http:///x",
        "http://user@h/x",
        "/a#frag",
        "/%",
        "/%4",
        "/%zz",
        "/%00",
        "/%ff",
        "/%C3",
        "/\u{e9}",
    ];
    for target in bad {
        let input = format!("GET {target} HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!(run(input.as_bytes()), Parsed::Error(400), "{target:?}");
    }
}

#[test]
fn methods_are_case_sensitive() {
    for (m, want) in [
        ("GET", Method::Get),
        ("HEAD", Method::Head),
        ("POST", Method::Post),
        ("DELETE", Method::Other("DELETE".into())),
        ("get", Method::Other("get".into())),
    ] {
        let input = format!("{m} / HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!(complete(input.as_bytes()).0.method, want);
    }
}

#[test]
fn smuggling_framing_is_refused() {
    // RFC 9112 6.3: Transfer-Encoding with Content-Length is 400, alone it is 411 (no chunked bodies).
    let cases: &[(&str, u16)] = &[
        ("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", 400),
        ("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", 400),
        ("Content-Length: 5\r\nTransfer-Encoding: identity\r\n", 400),
        ("Transfer-Encoding: chunked\r\n", 411),
        ("Transfer-Encoding: gzip, chunked\r\n", 411),
        ("Transfer-Encoding:\r\n", 411),
        ("transfer-encoding: CHUNKED\r\n", 411),
        ("Content-Length: 5\r\nContent-Length: 6\r\n", 400),
        ("Content-Length: 5, 6\r\n", 400),
        ("Content-Length: +5\r\n", 400),
        ("Content-Length: -1\r\n", 400),
        ("Content-Length: 0x5\r\n", 400),
        ("Content-Length: 5 5\r\n", 400),
        ("Content-Length: 5,\r\n", 400),
        ("Content-Length:\r\n", 400),
        ("Content-Length: 1e3\r\n", 400),
    ];
    for &(fields, status) in cases {
        let input = format!("POST / HTTP/1.1\r\nHost: h\r\n{fields}\r\nhello");
        assert_eq!(run(input.as_bytes()), Parsed::Error(status), "{fields:?}");
    }
    // The same value repeated, as a list or on several lines, is one length (RFC 9110 8.6).
    for fields in [
        "Content-Length: 5, 5\r\n",
        "Content-Length: 5\r\ncontent-length: 005\r\n",
        "Content-Length:  5 \r\n",
    ] {
        let input = format!("POST / HTTP/1.1\r\nHost: h\r\n{fields}\r\nhelloGET");
        let (r, n) = complete(input.as_bytes());
        assert_eq!((r.body.as_slice(), n), (&b"hello"[..], input.len() - 3), "{fields:?}");
    }
}

#[test]
fn content_length_limits() {
    let limits = Limits { max_body: 10, ..Limits::default() };
    // Over the limit: 413 from the head alone, before any body.
    assert_eq!(
        parse(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n", &limits),
        Parsed::Error(413)
    );
    let huge = b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999999999\r\n\r\n";
    assert_eq!(parse(huge, &limits), Parsed::Error(413));
    // At the limit: Partial until the whole body is in.
    let input = b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n0123456789";
    for cut in 0..input.len() {
        assert_eq!(parse(&input[..cut], &limits), Parsed::Partial, "{cut}");
    }
    assert!(
        matches!(parse(input, &limits), Parsed::Complete(r, n) if r.body == b"0123456789" && n == input.len())
    );
    // A GET may have a body; it is framed all the same.
    let (r, n) = complete(b"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nabGET");
    assert_eq!((r.body.as_slice(), n), (&b"ab"[..], 48));
}

#[test]
fn header_lookup() {
    let input = b"GET / HTTP/1.1\r\nHost: h\r\nX-Thing:  first \r\nx-thing: second\r\nX-Bin: a\xffb\r\n\r\n";
    let (r, _) = complete(input);
    assert_eq!(r.header("X-THING"), Some("first"));
    assert_eq!(r.header("x-bin"), None);
    assert_eq!(r.header("missing"), None);
    assert!(r.headers.iter().all(|(n, _)| n.bytes().all(|b| !b.is_ascii_uppercase())));
}

#[test]
fn keep_alive_rules() {
    let cases: &[(&str, &str, bool)] = &[
        ("1.1", "", true),
        ("1.1", "Connection: close\r\n", false),
        ("1.1", "Connection: Keep-Alive, CLOSE\r\n", false),
        ("1.1", "Connection: upgrade\r\nConnection: close\r\n", false),
        ("1.1", "Connection: keep-alive\r\n", true),
        ("1.0", "", false),
        ("1.0", "Connection: keep-alive\r\n", true),
        ("1.0", "Connection: foo ,\tkeep-alive\r\n", true),
        ("1.0", "Connection: keep-alive, close\r\n", false),
    ];
    for &(v, fields, want) in cases {
        let input = format!("GET / HTTP/{v}\r\nHost: h\r\n{fields}\r\n");
        assert_eq!(complete(input.as_bytes()).0.keep_alive(), want, "{v} {fields:?}");
    }
}

#[test]
fn cookies() {
    let (r, _) =
        complete(&get("Cookie: a=1; sid=abc=def;  theme=\"dark\"; SID=upper\r\nCookie: late=x; a=2\r\n"));
    assert_eq!(r.cookie("a"), Some("1"));
    assert_eq!(r.cookie("sid"), Some("abc=def"));
    assert_eq!(r.cookie("SID"), Some("upper"));
    assert_eq!(r.cookie("theme"), Some("\"dark\""));
    assert_eq!(r.cookie("late"), Some("x"));
    assert_eq!(r.cookie("none"), None);
    assert_eq!(complete(&get("")).0.cookie("a"), None);
}

#[test]
fn query_parameters() {
    let (r, _) =
        complete(b"GET /s?q=caf%C3%A9+au+lait&empty=&flag&q=second&bad=%ff%zz HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(r.query_param("q").as_deref(), Some("café au lait"));
    assert_eq!(r.query_param("empty").as_deref(), Some(""));
    assert_eq!(r.query_param("flag").as_deref(), Some(""));
    assert_eq!(r.query_param("bad").as_deref(), Some("\u{fffd}%zz"));
    assert_eq!(r.query_param("missing"), None);
}

#[test]
fn form_bodies() {
    let body = "to=a%40b.example&subject=Gr%C3%BC%C3%9Fe+an+alle&&x=%FE&body=l1%0D%0Al2&sub%6aect=k";
    let input = format!(
        "POST /send HTTP/1.1\r\nHost: h\r\nContent-Type: Application/X-WWW-Form-Urlencoded; charset=UTF-8\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let (r, _) = complete(input.as_bytes());
    let want: Vec<(String, String)> = [
        ("to", "a@b.example"),
        ("subject", "Grüße an alle"),
        ("x", "\u{fffd}"),
        ("body", "l1\r\nl2"),
        ("subject", "k"),
    ]
    .iter()
    .map(|(n, v)| (n.to_string(), v.to_string()))
    .collect();
    assert_eq!(r.form(), want);
    // Another Content-Type, or none: no pairs.
    let other = Request { headers: vec![("content-type".into(), b"text/plain".to_vec())], ..r.clone() };
    assert!(other.form().is_empty());
    assert!(Request { headers: vec![], ..r }.form().is_empty());
}

#[test]
fn url_coding() {
    assert_eq!(url_decode("a+b%20c%2B%"), "a b c+%");
    assert_eq!(url_decode("%e2%82%ac%E2%82"), "\u{20ac}\u{fffd}");
    assert_eq!(url_encode("a b/c?d=é~-._"), "a%20b%2Fc%3Fd%3D%C3%A9~-._");
    for s in ["", "plain", "x y+z&w=1", "Grüße 🎉", "%41"] {
        assert_eq!(url_decode(&url_encode(s)), s);
    }
}

#[test]
fn responses_serialise() {
    let r = Response::html(200, "<p>hi</p>".into()).with("Cache-Control", "no-store");
    let mut out = Vec::new();
    r.write_to(&mut out, false, true);
    let text = String::from_utf8(out).unwrap_or_default();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or_default();
    let lines: Vec<&str> = head.split("\r\n").collect();
    assert_eq!(lines[0], "HTTP/1.1 200 OK");
    assert_eq!(lines[1], "Content-Type: text/html; charset=utf-8");
    assert_eq!(lines[2], "Cache-Control: no-store");
    assert!(lines[3].starts_with("Date: ") && lines[3].ends_with(" GMT"), "{}", lines[3]);
    assert_eq!(lines[4], "Content-Length: 9");
    assert_eq!(lines.len(), 5);
    assert_eq!(body, "<p>hi</p>");
    // HEAD: the same Content-Length, no body; a closing connection says so.
    let mut out = Vec::new();
    Response::text(404, "gone").with("Date", "x").write_to(&mut out, true, false);
    assert_eq!(
        out,
        b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\nDate: x\r\nContent-Length: 4\r\nConnection: close\r\n\r\n"
    );
    let mut out = Vec::new();
    Response::redirect("/inbox?m=1").with("Date", "x").write_to(&mut out, false, true);
    assert_eq!(
        out,
        b"HTTP/1.1 303 See Other\r\nLocation: /inbox?m=1\r\nDate: x\r\nContent-Length: 0\r\n\r\n"
    );
    // Fields the writer owns are not taken from the caller; a bad field pushed directly is skipped;
    // 204 and 304 have neither Content-Length nor body (RFC 9110 8.6).
    let mut r = Response::new(204).with("Date", "x").with("Content-Length", "99").with("Connection", "close");
    r.headers.push(("X-Evil".into(), "a\r\nSet-Cookie: b".into()));
    r.body = b"ignored".to_vec();
    let mut out = Vec::new();
    r.write_to(&mut out, false, true);
    assert_eq!(out, b"HTTP/1.1 204 No Content\r\nDate: x\r\n\r\n");
    let mut out = Vec::new();
    Response::new(42).with("Date", "x").write_to(&mut out, false, true);
    assert!(out.starts_with(b"HTTP/1.1 500 Internal Server Error\r\n"));
}

#[test]
fn dates_are_imf_fixdate() {
    let at = |s| http_date(UNIX_EPOCH + std::time::Duration::from_secs(s));
    assert_eq!(at(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
    assert_eq!(at(0), "Thu, 01 Jan 1970 00:00:00 GMT");
    assert_eq!(at(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
    assert_eq!(at(4_102_444_799), "Thu, 31 Dec 2099 23:59:59 GMT");
    assert_eq!(http_date(SystemTime::now()).len(), 29);
}

#[test]
fn reason_phrases() {
    assert_eq!(reason(413), "Content Too Large");
    assert_eq!(reason(431), "Request Header Fields Too Large");
    assert_eq!(reason(599), "");
}

#[test]
fn field_checks() {
    assert!(field_ok("Set-Cookie", "sid=1; HttpOnly; Secure; SameSite=Strict"));
    assert!(field_ok("X", "tab\there, caf\u{e9}"));
    for (name, value) in [
        ("Location", "/a\r\nSet-Cookie: x=1"),
        ("Location", "/a\nX: y"),
        ("Location", "/a\rX: y"),
        ("Location", "/a\0"),
        ("Location", "/a\x7f"),
        ("Bad Name", "v"),
        ("Bad:Name", "v"),
        ("", "v"),
        ("X\r\nY", "v"),
    ] {
        assert!(!field_ok(name, value), "{name:?}: {value:?}");
    }
}

/// `with` refuses a header injection: in a debug build it also asserts, so the caller's bug shows.
#[test]
#[cfg_attr(debug_assertions, should_panic(expected = "header injection refused"))]
fn with_refuses_header_injection() {
    let r = Response::redirect("/x\r\nSet-Cookie: sid=stolen");
    assert!(r.headers.is_empty());
    let mut out = Vec::new();
    r.write_to(&mut out, false, true);
    assert!(!out.windows(10).any(|w| w == b"Set-Cookie"));
}

#[test]
fn multipart_fields_and_a_binary_file() {
    // The file holds CRLFs, NUL, bytes over 0x7f and lines that start like the delimiter but are not.
    let file: &[u8] = b"\x00\xff\r\n--XyZ-not\r\n--XyZX\r\n--XyZ\t-\r\n-XyZ\r\n\r\n--Xy\r\n\xfe\r\n";
    let mut body =
        b"preamble\r\n--XyZ\r\nContent-Disposition: form-data; name=\"to\"\r\n\r\nalice@example.org\r\n"
            .to_vec();
    body.extend_from_slice(
        b"--XyZ  \r\ncontent-disposition: form-data; name=subject\r\n\r\nline 1\r\nline 2\r\n",
    );
    body.extend_from_slice(b"--XyZ\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a.bin\"\r\n");
    body.extend_from_slice(b"Content-Type: application/octet-stream\r\n\r\n");
    body.extend_from_slice(file);
    body.extend_from_slice(b"\r\n--XyZ--\r\nepilogue\r\n--XyZ\r\n");
    let parts = multipart("multipart/form-data; boundary=XyZ", &body, 10);
    let parts = parts.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(parts.len(), 3);
    assert_eq!((parts[0].name.as_str(), parts[0].data.as_slice()), ("to", &b"alice@example.org"[..]));
    assert_eq!((parts[0].filename.clone(), parts[0].content_type.clone()), (None, None));
    assert_eq!((parts[1].name.as_str(), parts[1].data.as_slice()), ("subject", &b"line 1\r\nline 2"[..]));
    assert_eq!(parts[2].name, "f");
    assert_eq!(parts[2].filename.as_deref(), Some("a.bin"));
    assert_eq!(parts[2].content_type.as_deref(), Some("application/octet-stream"));
    assert_eq!(parts[2].data, file);
}

/// A form posted by Chromium: its boundary, an empty file input, a textarea with CRLF line ends,
/// UTF-8 in a value and a filename, a quote in a filename sent as %22.
#[test]
fn multipart_as_chromium_sends_it() {
    let b = "----WebKitFormBoundaryQ7kTdl1bLkG3JZ0R";
    let body = format!(
        "--{b}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n7f3a9c\r\n\
         --{b}\r\nContent-Disposition: form-data; name=\"subject\"\r\n\r\nGrüße\r\n\
         --{b}\r\nContent-Disposition: form-data; name=\"body\"\r\n\r\nHello,\r\n\r\nsee attached.\r\n\
         --{b}\r\nContent-Disposition: form-data; name=\"attachment\"; filename=\"r\u{e9}sum\u{e9} %22final%22.txt\"\r\n\
         Content-Type: text/plain\r\n\r\nfirst line\r\nsecond line\n\r\n\
         --{b}\r\nContent-Disposition: form-data; name=\"attachment2\"; filename=\"\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n\r\n\
         --{b}--\r\n"
    );
    let request = format!(
        "POST /compose/send HTTP/1.1\r\nHost: mail.example.org\r\nConnection: keep-alive\r\nContent-Length: {}\r\n\
         Cache-Control: max-age=0\r\nOrigin: https://mail.example.org\r\n\
         Content-Type: multipart/form-data; boundary={b}\r\n\
         User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36\r\n\
         Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n\
         Referer: https://mail.example.org/compose\r\nAccept-Encoding: gzip, deflate, br, zstd\r\n\
         Accept-Language: en-US,en;q=0.9\r\nCookie: sid=Zm9vYmFy\r\n\r\n{body}",
        body.len()
    );
    let (r, n) = complete(request.as_bytes());
    assert_eq!(n, request.len());
    assert_eq!(r.cookie("sid"), Some("Zm9vYmFy"));
    let Some(ct) = r.header("content-type") else { panic!("no Content-Type") };
    let parts = multipart(ct, &r.body, 16).unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<&str> = parts.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["csrf", "subject", "body", "attachment", "attachment2"]);
    assert_eq!(parts[1].data, "Grüße".as_bytes());
    assert_eq!(parts[2].data, b"Hello,\r\n\r\nsee attached.");
    assert_eq!(parts[3].filename.as_deref(), Some("r\u{e9}sum\u{e9} %22final%22.txt"));
    assert_eq!(parts[3].content_type.as_deref(), Some("text/plain"));
    assert_eq!(parts[3].data, b"first line\r\nsecond line\n");
    assert_eq!(parts[4].filename.as_deref(), Some(""));
    assert!(parts[4].data.is_empty());
}

#[test]
fn multipart_parameters() {
    let body = b"--a b;c\r\nContent-Disposition: FORM-DATA; filename=\"x\\\"y\\\\z.txt\"; name=\"q\\\"n\"\r\n\r\n1\r\n\
--a b;c\r\nContent-Disposition: form-data; name=e; filename=\"fallback.txt\"; filename*=UTF-8''%E2%82%AC%20rates.txt\r\n\r\n2\r\n\
--a b;c\r\nContent-Disposition: form-data; name=l; filename*=iso-8859-1'en'caf%E9.txt\r\n\r\n3\r\n\
--a b;c\r\nContent-Disposition: form-data; name=bad; filename=\"ok.txt\"; filename*=UTF-8''%FF.txt\r\n\r\n4\r\n\
--a b;c--";
    let parts = multipart("Multipart/Form-Data; charset=utf-8; Boundary=\"a b;c\"", body, 4);
    let parts = parts.unwrap_or_else(|e| panic!("{e}"));
    let got: Vec<(&str, Option<&str>)> =
        parts.iter().map(|p| (p.name.as_str(), p.filename.as_deref())).collect();
    assert_eq!(
        got,
        [
            ("q\"n", Some("x\"y\\z.txt")),
            ("e", Some("\u{20ac} rates.txt")),
            ("l", Some("caf\u{e9}.txt")),
            ("bad", Some("ok.txt"))
        ]
    );
    // A body that closes at once has no parts.
    assert_eq!(multipart("multipart/form-data; boundary=z", b"--z--\r\n", 4), Ok(vec![]));
}

#[test]
fn multipart_errors() {
    let one = b"--z\r\nContent-Disposition: form-data; name=a\r\n\r\nx\r\n--z--\r\n";
    let ct = "multipart/form-data; boundary=z";
    assert!(multipart(ct, one, 1).is_ok());
    let cases: &[(&str, &[u8], usize)] = &[
        ("multipart/form-data", one, 4),
        ("multipart/form-data; boundary=", one, 4),
        ("multipart/form-data; boundary=\"\"", one, 4),
        ("multipart/mixed; boundary=z", one, 4),
        ("text/plain; boundary=z", one, 4),
        (ct, b"--z\r\nContent-Disposition: form-data; name=a\r\n\r\nx\r\n", 4),
        (ct, b"--z\r\nContent-Disposition: form-data; name=a\r\n\r\nx\r\n--z", 4),
        (ct, b"--z\r\nContent-Disposition: form-data; name=a\r\n\r\nx\r\n--zz--", 4),
        (ct, b"no delimiter at all", 4),
        (ct, one, 0),
        (ct, b"--z\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--z\r\nContent-Disposition: form-data; name=b\r\n\r\n2\r\n--z--", 1),
        (ct, b"--z\r\nContent-Type: text/plain\r\n\r\nx\r\n--z--", 4),
        (ct, b"--z\r\nContent-Disposition: attachment; name=a\r\n\r\nx\r\n--z--", 4),
        (ct, b"--z\r\nContent-Disposition: form-data; filename=a\r\n\r\nx\r\n--z--", 4),
        (ct, b"--z\r\nContent-Disposition: form-data; name=a\r\nx\r\n--z--", 4),
        (ct, b"--z\r\n\r\nx\r\n--z--", 4),
        (ct, b"--z\r\nContent-Disposition: form-data;\r\n name=a\r\n\r\nx\r\n--z--", 4),
    ];
    let long = format!("multipart/form-data; boundary={}", "b".repeat(71));
    assert!(multipart(&long, one, 4).is_err());
    for (i, &(ct, body, max)) in cases.iter().enumerate() {
        assert!(multipart(ct, body, max).is_err(), "case {i}: {ct:?} {:?}", String::from_utf8_lossy(body));
    }
}

#[test]
fn pseudo_random_requests_split_consistently() {
    // Requests built from pieces that matter to framing, each checked at every split point.
    let pieces: [&[u8]; 10] = [
        b"Content-Length: 3\r\n",
        b"Connection: close\r\n",
        b"X: a\r\n",
        b"Cookie: a=b\r\n",
        b"Content-Length: 3\r\n",
        b"Y:\r\n",
        b"Transfer-Encoding: chunked\r\n",
        b"Host: h\r\n",
        b"Z: \xe9\r\n",
        b"Content-Length: 4\r\n",
    ];
    let mut seed: u32 = 0x2545_f491;
    for _ in 0..200 {
        let mut input = b"\r\nPOST /p?q HTTP/1.1\r\nHost: h\r\n".to_vec();
        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
        for k in 0..(seed >> 16) % 4 {
            input.extend_from_slice(pieces[((seed >> (4 + 3 * k)) % 10) as usize]);
        }
        input.extend_from_slice(b"\r\nabcdGET");
        match run(&input) {
            Parsed::Complete(..) => {
                at_every_split(&input);
            }
            Parsed::Error(status) => assert!([400, 411].contains(&status), "{status}"),
            Parsed::Partial => panic!("{:?}", String::from_utf8_lossy(&input)),
        }
    }
}

#[test]
fn expect_continue_only_for_a_complete_1_1_head() {
    let l = Limits::default();
    assert!(expects_continue(
        b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-Continue\r\nContent-Length: 9\r\n\r\n",
        &l
    ));
    assert!(
        !expects_continue(b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n", &l),
        "head not over"
    );
    assert!(
        !expects_continue(b"POST / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n", &l),
        "HTTP/1.0 knows no 100"
    );
    assert!(!expects_continue(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n\r\n", &l));
}
