//! The scanner clients against fake daemons on 127.0.0.1 and unix sockets: verdicts, errors,
//! timeouts (a daemon that never answers or never reads), garbage replies, large messages.

use std::io::{BufRead, BufReader, Cursor, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixListener;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::*;

mod http;

pub(super) const T: Duration = Duration::from_secs(5);

/// A one-connection TCP server running `serve`; returns `127.0.0.1:PORT`.
pub(super) fn tcp_server<F>(serve: F) -> (String, JoinHandle<()>)
where
    F: FnOnce(TcpStream) + Send + 'static,
{
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let h = thread::spawn(move || {
        if let Ok((s, _)) = l.accept() {
            serve(s);
        }
    });
    (addr, h)
}

/// A one-connection unix-socket server running `serve`, in a temp dir kept alive by the caller.
fn unix_server<F>(serve: F) -> (tempfile::TempDir, ScanAddr, JoinHandle<()>)
where
    F: FnOnce(std::os::unix::net::UnixStream) + Send + 'static,
{
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clamd.sock");
    let l = UnixListener::bind(&path).unwrap();
    let h = thread::spawn(move || {
        if let Ok((s, _)) = l.accept() {
            serve(s);
        }
    });
    (dir, ScanAddr::Unix(path), h)
}

/// Reads a whole INSTREAM request: the data and the chunk lengths.
fn read_instream(r: &mut dyn Read) -> (Vec<u8>, Vec<usize>) {
    let mut cmd = [0u8; 10];
    r.read_exact(&mut cmd).unwrap();
    assert_eq!(&cmd, b"zINSTREAM\0");
    let (mut data, mut chunks) = (Vec::new(), Vec::new());
    loop {
        let mut len = [0u8; 4];
        r.read_exact(&mut len).unwrap();
        let n = u32::from_be_bytes(len) as usize;
        if n == 0 {
            return (data, chunks);
        }
        let mut c = vec![0u8; n];
        r.read_exact(&mut c).unwrap();
        data.extend_from_slice(&c);
        chunks.push(n);
    }
}

fn tcp(addr: &str) -> ScanAddr {
    ScanAddr::parse(addr).unwrap()
}

#[test]
fn addr_parse() {
    assert_eq!(ScanAddr::parse("unix:/run/clamd.ctl"), Ok(ScanAddr::Unix("/run/clamd.ctl".into())));
    assert_eq!(ScanAddr::parse("127.0.0.1:3310"), Ok(ScanAddr::Tcp("127.0.0.1:3310".into())));
    assert_eq!(ScanAddr::parse("localhost:783"), Ok(ScanAddr::Tcp("localhost:783".into())));
    assert_eq!(ScanAddr::parse("[::1]:3310"), Ok(ScanAddr::Tcp("[::1]:3310".into())));
    assert_eq!(ScanAddr::parse("clamav_1.internal:3310"), Ok(ScanAddr::Tcp("clamav_1.internal:3310".into())));
    for bad in [
        "unix:",
        "",
        "3310",
        "host",
        "host:",
        ":3310",
        "host:0",
        "host:70000",
        "host:+80",
        "::1:3310",
        "[::1]3310",
        "[zz]:1",
        "[::1]:",
        "a..b:1",
        "a b:1",
        "host:80x",
        "unix",
    ] {
        assert!(ScanAddr::parse(bad).is_err(), "{bad:?} should not parse");
    }
    assert_eq!(ScanAddr::parse("[::1]:3310").unwrap().to_string(), "[::1]:3310");
    assert_eq!(ScanAddr::parse("unix:/x").unwrap().to_string(), "unix:/x");
}

#[test]
fn clamd_reply_table() {
    let ok = |r: &[u8]| parse_clamd_reply(r);
    assert_eq!(ok(b"stream: OK\0"), Ok(ClamVerdict::Clean));
    assert_eq!(ok(b"stream: OK\n"), Ok(ClamVerdict::Clean));
    assert_eq!(ok(b"stream: OK"), Ok(ClamVerdict::Clean));
    assert_eq!(ok(b"1: stream: OK\0"), Ok(ClamVerdict::Clean));
    assert_eq!(
        ok(b"stream: Eicar-Test-Signature FOUND\0"),
        Ok(ClamVerdict::Infected("Eicar-Test-Signature".into()))
    );
    assert_eq!(
        ok(b"stream: Win.Test.EICAR_HDB-1 FOUND\0garbage after"),
        Ok(ClamVerdict::Infected("Win.Test.EICAR_HDB-1".into()))
    );
    let e = ok(b"INSTREAM size limit exceeded. ERROR\0").unwrap_err();
    assert!(e.0.contains("INSTREAM size limit exceeded"), "{e}");
    for bad in [
        &b""[..],
        b"\0",
        b"stream: \0",
        b"stream: FOUND\0",
        b"stream:OK\0",
        b"OK\0",
        b"stream: OK\r\nx",
        b"\xff\xfe\0",
        b"stream: a\x01b FOUND\0",
        b"ERROR\0",
        b"x: stream: OK\0",
    ] {
        assert!(ok(bad).is_err(), "{bad:?} should be an error");
    }
}

#[test]
fn clamd_clean_over_unix() {
    let (_dir, addr, h) = unix_server(|mut s| {
        let (data, _) = read_instream(&mut s);
        assert_eq!(data, b"Subject: hi\r\n\r\nhello\r\n");
        s.write_all(b"stream: OK\0").unwrap();
    });
    let v = clamd_scan(&addr, &mut Cursor::new(b"Subject: hi\r\n\r\nhello\r\n"), T);
    assert_eq!(v, Ok(ClamVerdict::Clean));
    h.join().unwrap();
}

#[test]
fn huge_timeout_is_no_overflow() {
    let (_dir, addr, h) = unix_server(|mut s| {
        read_instream(&mut s);
        s.write_all(b"stream: OK\0").unwrap();
    });
    assert_eq!(clamd_scan(&addr, &mut Cursor::new(b"x"), Duration::MAX), Ok(ClamVerdict::Clean));
    h.join().unwrap();
    let e = clamd_scan(&addr, &mut Cursor::new(b"x"), Duration::ZERO).unwrap_err();
    assert!(e.0.contains("deadline"), "{e}");
}

#[test]
fn clamd_infected_over_tcp() {
    let (addr, h) = tcp_server(|mut s| {
        read_instream(&mut s);
        s.write_all(b"stream: Eicar-Test-Signature FOUND\0").unwrap();
    });
    let v = clamd_scan(&tcp(&addr), &mut Cursor::new(b"X5O!P%@AP"), T);
    assert_eq!(v, Ok(ClamVerdict::Infected("Eicar-Test-Signature".into())));
    h.join().unwrap();
}

#[test]
fn clamd_error_reply() {
    let (addr, h) = tcp_server(|mut s| {
        read_instream(&mut s);
        s.write_all(b"Can't allocate memory ERROR\0").unwrap();
    });
    let e = clamd_scan(&tcp(&addr), &mut Cursor::new(b"x"), T).unwrap_err();
    assert!(e.0.contains("clamd") && e.0.contains("Can't allocate memory"), "{e}");
    h.join().unwrap();
}

#[test]
fn clamd_large_message_is_chunked() {
    let msg: Vec<u8> = (0..(3 << 20) + 7).map(|i| (i % 251) as u8).collect();
    let expect = msg.clone();
    let (_dir, addr, h) = unix_server(move |mut s| {
        let (data, chunks) = read_instream(&mut s);
        assert!(data == expect, "data differs");
        assert!(chunks.len() >= 48 && chunks.iter().all(|&c| c <= 64 * 1024), "{}", chunks.len());
        s.write_all(b"stream: OK\0").unwrap();
    });
    assert_eq!(clamd_scan(&addr, &mut Cursor::new(msg), T), Ok(ClamVerdict::Clean));
    h.join().unwrap();
}

#[test]
fn clamd_size_limit_mid_stream() {
    // Like clamd past StreamMaxLength: answers the error and closes while the client still writes.
    let (_dir, addr, h) = unix_server(|mut s| {
        let mut buf = vec![0u8; 100_000];
        s.read_exact(&mut buf).unwrap();
        s.write_all(b"INSTREAM size limit exceeded. ERROR\0").unwrap();
    });
    let msg = vec![b'a'; 8 << 20];
    let e = clamd_scan(&addr, &mut Cursor::new(msg), T).unwrap_err();
    assert!(e.0.contains("size limit"), "{e}");
    h.join().unwrap();
}

#[test]
fn clamd_never_answers_times_out() {
    let (addr, h) = tcp_server(|mut s| {
        read_instream(&mut s);
        thread::sleep(Duration::from_millis(1500));
    });
    let t0 = Instant::now();
    let e = clamd_scan(&tcp(&addr), &mut Cursor::new(b"hello"), Duration::from_millis(300)).unwrap_err();
    assert!(t0.elapsed() < Duration::from_millis(1200), "{:?}", t0.elapsed());
    assert!(e.0.contains("timed out"), "{e}");
    h.join().unwrap();
}

#[test]
fn clamd_never_reads_times_out() {
    // Writes block once the socket buffers fill: the deadline bounds the writes too.
    let (addr, h) = tcp_server(|_s| thread::sleep(Duration::from_millis(1500)));
    let t0 = Instant::now();
    let msg = vec![b'a'; 32 << 20];
    let e = clamd_scan(&tcp(&addr), &mut Cursor::new(msg), Duration::from_millis(300)).unwrap_err();
    assert!(t0.elapsed() < Duration::from_millis(1200), "{:?}", t0.elapsed());
    assert!(e.0.contains("timed out"), "{e}");
    h.join().unwrap();
}

#[test]
fn clamd_trickling_reply_still_bounded() {
    // A byte every 100 ms: each read succeeds, the total deadline still ends the scan.
    let (addr, h) = tcp_server(|mut s| {
        read_instream(&mut s);
        for _ in 0..20 {
            if s.write_all(b"s").is_err() {
                return;
            }
            thread::sleep(Duration::from_millis(100));
        }
    });
    let t0 = Instant::now();
    let e = clamd_scan(&tcp(&addr), &mut Cursor::new(b"x"), Duration::from_millis(400)).unwrap_err();
    assert!(t0.elapsed() < Duration::from_millis(1000), "{:?}", t0.elapsed());
    assert!(e.0.contains("timed out"), "{e}");
    h.join().unwrap();
}

#[test]
fn clamd_garbage_replies_are_errors() {
    let many_bytes: &'static [u8] = Box::leak(vec![b'x'; 10_000].into_boxed_slice());
    for reply in [&b"\xff\xff\xff"[..], b"HTTP/1.1 200 OK\r\n\r\n", b"stream: OK but not quite\0", many_bytes]
    {
        let (addr, h) = tcp_server(move |mut s| {
            read_instream(&mut s);
            let _ = s.write_all(reply);
        });
        let r = clamd_scan(&tcp(&addr), &mut Cursor::new(b"x"), T);
        assert!(r.is_err(), "{r:?}");
        h.join().unwrap();
    }
    // Closed without a word.
    let (addr, h) = tcp_server(|mut s| {
        read_instream(&mut s);
    });
    assert!(clamd_scan(&tcp(&addr), &mut Cursor::new(b"x"), T).is_err());
    h.join().unwrap();
}

#[test]
fn unreachable_is_an_error() {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let e = clamd_scan(&tcp(&format!("127.0.0.1:{port}")), &mut Cursor::new(b"x"), T).unwrap_err();
    assert!(e.0.contains("connecting"), "{e}");
    let e = clamd_scan(&ScanAddr::Unix("/nonexistent/clamd.sock".into()), &mut Cursor::new(b"x"), T);
    assert!(e.is_err());
    let e = spamd_check(&tcp(&format!("localhost:{port}")), &mut Cursor::new(b"x"), 1, None, T);
    assert!(e.is_err());
}

/// A message reader that fails, like a spool file on a failing disk.
struct Broken;
impl Read for Broken {
    fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
        Err(std::io::Error::other("disk on fire"))
    }
}

#[test]
fn unreadable_message_is_an_error() {
    let (addr, h) = tcp_server(|mut s| {
        let mut sink = Vec::new();
        let _ = s.read_to_end(&mut sink);
    });
    let e = clamd_scan(&tcp(&addr), &mut Broken, T).unwrap_err();
    assert!(e.0.contains("disk on fire"), "{e}");
    h.join().unwrap();
}

/// Reads a spamd request: its header lines and its body (Content-length bytes).
fn read_spamc(s: &mut TcpStream) -> (Vec<String>, Vec<u8>) {
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
    let len: usize = lines.iter().find_map(|l| l.strip_prefix("Content-length: ")).unwrap().parse().unwrap();
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).unwrap();
    (lines, body)
}

#[test]
fn spamd_reply_table() {
    let s = parse_spamd_reply(b"SPAMD/1.1 0 EX_OK\r\nSpam: True ; 1000.0 / 5.0\r\n\r\n").unwrap();
    assert_eq!((s.is_spam, s.score, s.threshold), (true, 1000.0, 5.0));
    assert!(s.symbols.is_empty() && s.action.is_none());
    let s = parse_spamd_reply(
        b"SPAMD/1.1 0 EX_OK\r\nContent-length: 18\r\nSpam: False ; -0.5 / 5.0\r\n\r\nGTUBE, NO_RECEIVED",
    )
    .unwrap();
    assert_eq!((s.is_spam, s.score), (false, -0.5));
    assert_eq!(s.symbols, ["GTUBE", "NO_RECEIVED"]);
    let s = parse_spamd_reply(b"SPAMD/1.0 0 EX_OK\nSpam: Yes ; 7 / 5\n\n").unwrap();
    assert!(s.is_spam);
    let e = parse_spamd_reply(b"SPAMD/1.0 76 Bad header line: x\r\n").unwrap_err();
    assert!(e.0.contains("76"), "{e}");
    for bad in [
        &b""[..],
        b"SPAMD/1.1 0 EX_OK\r\n\r\n",
        b"HTTP/1.1 0 OK\r\nSpam: True ; 1 / 5\r\n\r\n",
        b"SPAMD/1.1 x EX_OK\r\nSpam: True ; 1 / 5\r\n\r\n",
        b"SPAMD/1.1 0 EX_OK\r\nSpam: Maybe ; 1 / 5\r\n\r\n",
        b"SPAMD/1.1 0 EX_OK\r\nSpam: True ; NaN / 5\r\n\r\n",
        b"SPAMD/1.1 0 EX_OK\r\nSpam: True ; 1e999 / 5\r\n\r\n",
        b"SPAMD/1.1 0 EX_OK\r\nSpam: True 1 / 5\r\n\r\n",
        b"SPAMD/1.1 0 EX_OK\r\nContent-length: 99\r\nSpam: True ; 1 / 5\r\n\r\nA,B",
    ] {
        assert!(parse_spamd_reply(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
    }
}

#[test]
fn spamd_symbols_and_user() {
    let msg =
        b"Subject: test\r\n\r\nXJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X\r\n";
    let (addr, h) = tcp_server(move |mut s| {
        let (lines, body) = read_spamc(&mut s);
        assert_eq!(lines[0], "SYMBOLS SPAMC/1.5");
        assert!(lines.iter().any(|l| l == "User: ro?ot"), "{lines:?}");
        assert_eq!(body, msg);
        let symbols = "GTUBE,MISSING_DATE";
        let reply = format!(
            "SPAMD/1.1 0 EX_OK\r\nContent-length: {}\r\nSpam: True ; 1002.5 / 5.0\r\n\r\n{symbols}",
            symbols.len()
        );
        s.write_all(reply.as_bytes()).unwrap();
    });
    let len = msg.len() as u64;
    let s = spamd_check(&tcp(&addr), &mut Cursor::new(msg), len, Some("ro\not"), T).unwrap();
    assert!(s.is_spam && s.score >= 1000.0 && s.threshold == 5.0);
    assert_eq!(s.symbols, ["GTUBE", "MISSING_DATE"]);
    h.join().unwrap();
}

#[test]
fn spamd_large_message_and_exact_length() {
    let msg: Vec<u8> = (0..(2 << 20) + 5).map(|i| (i % 13) as u8 + b'a').collect();
    let expect = msg.clone();
    let (addr, h) = tcp_server(move |mut s| {
        let (_, body) = read_spamc(&mut s);
        assert!(body == expect);
        s.write_all(b"SPAMD/1.1 0 EX_OK\r\nSpam: False ; 0.1 / 5.0\r\n\r\n").unwrap();
    });
    // The reader has more than `len`: exactly `len` bytes go out.
    let mut longer = msg.clone();
    longer.extend_from_slice(b"TRAILING");
    let s = spamd_check(&tcp(&addr), &mut Cursor::new(longer), msg.len() as u64, None, T).unwrap();
    assert!(!s.is_spam);
    h.join().unwrap();
}

#[test]
fn spamd_short_message_is_an_error() {
    let (addr, h) = tcp_server(|mut s| {
        let mut sink = Vec::new();
        let _ = s.read_to_end(&mut sink);
    });
    let e = spamd_check(&tcp(&addr), &mut Cursor::new(b"abc"), 10, None, T).unwrap_err();
    assert!(e.0.contains("3 bytes"), "{e}");
    h.join().unwrap();
}

#[test]
fn spamd_error_and_garbage() {
    for reply in [
        &b"SPAMD/1.0 76 Bad header line: Content-length\r\n"[..],
        b"\x00\x01\x02garbage",
        b"SPAMD/1.1 0 EX_OK\r\nSpam: True ; x / y\r\n\r\n",
        b"",
    ] {
        let (addr, h) = tcp_server(move |mut s| {
            read_spamc(&mut s);
            let _ = s.write_all(reply);
        });
        let r = spamd_check(&tcp(&addr), &mut Cursor::new(b"hello"), 5, None, T);
        assert!(r.is_err(), "{r:?}");
        h.join().unwrap();
    }
}

#[test]
fn spamd_never_answers_times_out() {
    let (addr, h) = tcp_server(|mut s| {
        read_spamc(&mut s);
        thread::sleep(Duration::from_millis(1500));
    });
    let t0 = Instant::now();
    let e = spamd_check(&tcp(&addr), &mut Cursor::new(b"hello"), 5, None, Duration::from_millis(300))
        .unwrap_err();
    assert!(t0.elapsed() < Duration::from_millis(1200), "{:?}", t0.elapsed());
    assert!(e.0.contains("timed out"), "{e}");
    h.join().unwrap();
}
