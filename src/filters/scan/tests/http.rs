//! The rspamd client, its HTTP/1.1 response reader, its JSON reader and its URLs, against fake
//! rspamd servers on 127.0.0.1.

use std::io::{BufRead, BufReader, Cursor, Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use super::super::http::{parse_response, parse_url};
use super::super::json::{self, Value};
use super::super::*;
use super::{T, tcp_server};

/// Reads an HTTP request: its head lines and its Content-Length body.
fn read_request(s: &mut TcpStream) -> (Vec<String>, Vec<u8>) {
    let mut r = BufReader::new(s);
    let mut lines = Vec::new();
    loop {
        let mut l = String::new();
        r.read_line(&mut l).unwrap();
        let l = l.trim_end_matches("\r\n").to_string();
        if l.is_empty() {
            break;
        }
        lines.push(l);
    }
    let len: usize = lines.iter().find_map(|l| l.strip_prefix("Content-Length: ")).unwrap().parse().unwrap();
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).unwrap();
    (lines, body)
}

const REPLY: &str = r#"{"is_skipped":false,"score":15.5,"required_score":15.0,"action":"reject",
 "symbols":{"GTUBE":{"name":"GTUBE","score":0.0,"options":["a","\u00e9\ud83d\ude00"]},"R_DKIM_NA":{"score":0}},
 "messages":{"smtp_message":"Gtube pattern"},"message-id":"x@y","thresholds":{"reject":15,"add header":6}}"#;

fn with_length(status: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

#[test]
fn rspamd_check_sends_the_envelope() {
    let msg = b"Subject: x\r\n\r\nbody\r\n";
    let (addr, h) = tcp_server(move |mut s| {
        let (lines, body) = read_request(&mut s);
        assert_eq!(lines[0], "POST /checkv2 HTTP/1.1");
        for want in [
            "IP: 192.0.2.1",
            "Helo: mx.example?X-Evil: 1",
            "From: <>",
            "Rcpt: a@example.org",
            "Rcpt: b@example.org",
            "User: alice",
            "Hostname: mx.example",
            "Queue-Id: Q1",
            "Connection: close",
        ] {
            assert!(lines.iter().any(|l| l == want), "{want:?} not in {lines:?}");
        }
        assert!(lines.iter().any(|l| l.starts_with("Host: 127.0.0.1:")));
        assert_eq!(body, msg);
        s.write_all(with_length("200 OK", REPLY).as_bytes()).unwrap();
    });
    let rcpt = ["a@example.org".to_string(), "b@example.org".to_string()];
    let meta = RspamdMeta {
        ip: Some("192.0.2.1".parse().unwrap()),
        helo: Some("mx.example\nX-Evil: 1"),
        from: Some(""),
        rcpt: &rcpt,
        user: Some("alice"),
        hostname: Some("mx.example"),
        queue_id: Some("Q1"),
    };
    let url = format!("http://{addr}");
    let s = rspamd_check(&url, &mut Cursor::new(msg), msg.len() as u64, &meta, T).unwrap();
    assert_eq!((s.score, s.threshold, s.is_spam), (15.5, 15.0, true));
    assert_eq!(s.action.as_deref(), Some("reject"));
    assert_eq!(s.symbols, ["GTUBE", "R_DKIM_NA"]);
    h.join().unwrap();
}

#[test]
fn rspamd_chunked_and_eof_delimited_replies() {
    let chunked = {
        let (a, b) = REPLY.split_at(40);
        format!(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{:x};ext=1\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\nX-T: 1\r\n\r\n",
            a.len(),
            b.len()
        )
    };
    let eof = format!("HTTP/1.0 200 OK\r\n\r\n{}", r#"{"score":1,"required_score":15,"action":"no action"}"#);
    let interim = format!("HTTP/1.1 100 Continue\r\n\r\n{}", with_length("200 OK", REPLY));
    for (reply, spam) in [(chunked, true), (eof, false), (interim, true)] {
        let (addr, h) = tcp_server(move |mut s| {
            read_request(&mut s);
            s.write_all(reply.as_bytes()).unwrap();
        });
        let s = rspamd_check(
            &format!("http://{addr}/checkv2"),
            &mut Cursor::new(b"x"),
            1,
            &RspamdMeta::default(),
            T,
        )
        .unwrap();
        assert_eq!(s.is_spam, spam);
        h.join().unwrap();
    }
}

#[test]
fn rspamd_complete_reply_without_close_is_not_waited_for() {
    // The server keeps the connection open after a complete response: no wait for the deadline.
    let (addr, h) = tcp_server(|mut s| {
        read_request(&mut s);
        s.write_all(with_length("200 OK", REPLY).as_bytes()).unwrap();
        thread::sleep(Duration::from_millis(1500));
    });
    let t0 = Instant::now();
    let r = rspamd_check(&format!("http://{addr}"), &mut Cursor::new(b"x"), 1, &RspamdMeta::default(), T);
    assert!(r.is_ok() && t0.elapsed() < Duration::from_millis(1000), "{r:?}");
    h.join().unwrap();
}

#[test]
fn rspamd_errors() {
    let big = format!("HTTP/1.1 200 OK\r\n\r\n{{\"score\":1,\"x\":\"{}\"}}", "a".repeat(1100 * 1024));
    for reply in [
        with_length("500 Internal Server Error", r#"{"error":"cannot parse input"}"#),
        with_length("200 OK", r#"{"error":"cannot parse input"}"#),
        with_length("200 OK", r#"{"score":"high","required_score":15}"#),
        with_length("200 OK", r#"{"score":1,"required_score":15"#),
        with_length(
            "200 OK",
            "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
        ),
        "HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n{}".to_string(),
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n{}".to_string(),
        "SPAMD/1.1 0 EX_OK\r\n\r\n".to_string(),
        big,
        String::new(),
    ] {
        let (addr, h) = tcp_server(move |mut s| {
            read_request(&mut s);
            let _ = s.write_all(reply.as_bytes());
        });
        let r = rspamd_check(&format!("http://{addr}"), &mut Cursor::new(b"x"), 1, &RspamdMeta::default(), T);
        assert!(r.is_err(), "{r:?}");
        h.join().unwrap();
    }
}

#[test]
fn rspamd_never_answers_times_out() {
    let (addr, h) = tcp_server(|mut s| {
        read_request(&mut s);
        thread::sleep(Duration::from_millis(1500));
    });
    let t0 = Instant::now();
    let url = format!("http://{addr}");
    let e = rspamd_check(&url, &mut Cursor::new(b"x"), 1, &RspamdMeta::default(), Duration::from_millis(300))
        .unwrap_err();
    assert!(t0.elapsed() < Duration::from_millis(1200), "{:?}", t0.elapsed());
    assert!(e.0.contains("timed out"), "{e}");
    h.join().unwrap();
}

#[test]
fn rspamd_large_message() {
    let msg: Vec<u8> = (0..(3 << 20) + 1).map(|i| (i % 7) as u8 + b'0').collect();
    let expect = msg.clone();
    let (addr, h) = tcp_server(move |mut s| {
        let (_, body) = read_request(&mut s);
        assert!(body == expect);
        s.write_all(with_length("200 OK", REPLY).as_bytes()).unwrap();
    });
    let r = rspamd_check(
        &format!("http://{addr}"),
        &mut Cursor::new(&msg),
        msg.len() as u64,
        &RspamdMeta::default(),
        T,
    );
    assert!(r.is_ok(), "{r:?}");
    h.join().unwrap();
}

#[test]
fn urls() {
    let u = parse_url("http://127.0.0.1:11333", "/checkv2").unwrap();
    assert_eq!((u.port, u.path.as_str(), u.authority.as_str()), (11333, "/checkv2", "127.0.0.1:11333"));
    let u = parse_url("HTTP://[::1]/rspamd/checkv2", "/checkv2").unwrap();
    assert_eq!((u.port, u.path.as_str(), u.authority.as_str()), (80, "/rspamd/checkv2", "[::1]"));
    let u = parse_url("http://localhost:11333/", "/checkv2").unwrap();
    assert_eq!(u.path, "/checkv2");
    for bad in [
        "https://127.0.0.1:11334",
        "127.0.0.1:11333",
        "http://",
        "http://u@h:1/",
        "http://h:0/",
        "http://h:1/a b",
        "ftp://h/",
        "http://h:1:2/",
        "http://[::1/",
    ] {
        assert!(parse_url(bad, "/checkv2").is_err(), "{bad:?}");
    }
    assert!(rspamd_check("https://x:1", &mut Cursor::new(b""), 0, &RspamdMeta::default(), T).is_err());
}

#[test]
fn http_responses() {
    assert_eq!(parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nab", false), Ok(None));
    let r = parse_response(b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nabcdef", false).unwrap().unwrap();
    assert_eq!((r.status, r.body.as_slice()), (200, &b"abc"[..]));
    assert_eq!(parse_response(b"HTTP/1.1 200 OK\r\n\r\nabc", false), Ok(None));
    assert_eq!(parse_response(b"HTTP/1.1 200 OK\r\n\r\nabc", true).unwrap().unwrap().body, b"abc");
    assert_eq!(parse_response(b"HTTP/1.1 204 No Content\r\n\r\n", false).unwrap().unwrap().body, b"");
    assert_eq!(
        parse_response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n", true),
        Ok(None)
    );
    for bad in [
        &b"HTTP/2 200 OK\r\n\r\n"[..],
        b"HTTP/1.1 20 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nabc\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n",
        b"HTTP/1.1 200 \xff\r\n\r\n",
    ] {
        assert!(parse_response(bad, true).is_err(), "{:?}", String::from_utf8_lossy(bad));
    }
}

#[test]
fn json_reader() {
    let v =
        json::parse(br#" {"a":[1,-2.5e3,true,false,null],"b":{"c":"x\"\\\/\b\f\n\r\t\u0041"}} "#).unwrap();
    assert_eq!(
        v.get("a"),
        Some(&Value::Arr(vec![
            Value::Num(1.0),
            Value::Num(-2500.0),
            Value::Bool(true),
            Value::Bool(false),
            Value::Null
        ]))
    );
    assert_eq!(v.get("b").and_then(|b| b.get("c")).and_then(Value::as_str), Some("x\"\\/\u{8}\u{c}\n\r\tA"));
    assert_eq!(json::parse(br#""\ud83d\ude00\ud800""#), Ok(Value::Str("\u{1F600}\u{FFFD}".into())));
    assert_eq!(json::parse(b"[]"), Ok(Value::Arr(vec![])));
    assert_eq!(json::parse(b"{}"), Ok(Value::Obj(vec![])));
    let deep_ok = format!("{}{}", "[".repeat(60), "]".repeat(60));
    assert!(json::parse(deep_ok.as_bytes()).is_ok());
    let deep = "[".repeat(100_000);
    for bad in [
        &b""[..],
        b"{",
        b"{\"a\"}",
        b"{\"a\":1,}",
        b"[1,]",
        b"01x",
        b"-",
        b"1.",
        b"1e",
        b"tru",
        b"\"a",
        b"\"\\x\"",
        b"\"\\u12\"",
        b"\"\x01\"",
        b"\"\xff\"",
        b"1 2",
        b"1e400",
        b"{1:2}",
        deep.as_bytes(),
    ] {
        assert!(json::parse(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
    }
}
