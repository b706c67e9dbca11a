//! Tests of the outbound client against a scripted fake server on 127.0.0.1 (RFC 5321 transaction,
//! RFC 2920 pipelining, RFC 3207 STARTTLS, RFC 6531 SMTPUTF8, RFC 4954 AUTH PLAIN, timeouts).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{RootCertStore, ServerConfig, ServerConnection, StreamOwned};

use super::*;

const HOST: &str = "mx.test.example";

/// One step of the fake server's script.
enum Step {
    /// Write these bytes.
    Say(&'static str),
    /// Read one line; it must equal this (without CRLF).
    Expect(&'static str),
    /// Wait, then one read must return exactly these lines: they came in one write (RFC 2920).
    Batch(&'static [&'static str]),
    /// Read message data up to and including CRLF.CRLF; kept for the test.
    Data,
    /// TLS handshake as the server.
    Tls(Arc<ServerConfig>),
    /// Do nothing for this long.
    Silence(Duration),
}
use Step::*;

trait Io: Read + Write + Send {}
impl<T: Read + Write + Send> Io for T {}

struct Fake {
    tcp: TcpStream,
    io: Box<dyn Io>,
    buf: Vec<u8>,
}

impl Fake {
    fn line(&mut self) -> Result<String, String> {
        loop {
            if let Some(p) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(&self.buf[..p]).into_owned();
                self.buf.drain(..p + 2);
                return Ok(line);
            }
            self.more()?;
        }
    }

    fn more(&mut self) -> Result<usize, String> {
        let mut chunk = [0u8; 65536];
        match self.io.read(&mut chunk) {
            Ok(0) => Err("client closed".into()),
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(n)
            }
            Err(e) => Err(format!("read: {e}")),
        }
    }
}

/// Runs `script` for one connection; returns the message data received, or where it went wrong.
fn serve(script: Vec<Step>) -> (SocketAddr, JoinHandle<Result<Vec<u8>, String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let handle = thread::spawn(move || {
        let (tcp, _) = listener.accept().map_err(|e| e.to_string())?;
        tcp.set_read_timeout(Some(Duration::from_secs(10))).map_err(|e| e.to_string())?;
        let io = Box::new(tcp.try_clone().map_err(|e| e.to_string())?);
        let mut f = Fake { tcp, io, buf: Vec::new() };
        let mut data = Vec::new();
        for step in script {
            match step {
                Say(s) => {
                    f.io.write_all(s.as_bytes()).and_then(|()| f.io.flush()).map_err(|e| e.to_string())?
                }
                Expect(want) => {
                    let got = f.line()?;
                    if got != want {
                        return Err(format!("expected {want:?}, got {got:?}"));
                    }
                }
                Batch(want) => {
                    thread::sleep(Duration::from_millis(200));
                    if f.buf.is_empty() {
                        f.more()?;
                    }
                    let text = String::from_utf8_lossy(&f.buf).into_owned();
                    let want = want.iter().map(|l| format!("{l}\r\n")).collect::<String>();
                    if text != want {
                        return Err(format!("batch: expected {want:?}, got {text:?}"));
                    }
                    f.buf.clear();
                }
                Data => loop {
                    let end = if f.buf.starts_with(b".\r\n") {
                        Some(3)
                    } else {
                        f.buf.windows(5).position(|w| w == b"\r\n.\r\n").map(|p| p + 5)
                    };
                    if let Some(n) = end {
                        data.extend(f.buf.drain(..n));
                        break;
                    }
                    f.more()?;
                },
                Tls(config) => {
                    if !f.buf.is_empty() {
                        return Err("client sent data before the TLS handshake".into());
                    }
                    let mut conn = ServerConnection::new(config).map_err(|e| e.to_string())?;
                    let mut sock = f.tcp.try_clone().map_err(|e| e.to_string())?;
                    while conn.is_handshaking() {
                        conn.complete_io(&mut sock).map_err(|e| format!("handshake: {e}"))?;
                    }
                    f.io = Box::new(StreamOwned::new(conn, sock));
                }
                Silence(d) => thread::sleep(d),
            }
        }
        Ok(data)
    });
    (addr, handle)
}

fn config() -> ClientConfig {
    ClientConfig {
        helo_name: "client.test".into(),
        tls: TlsPolicy::None,
        auth: None,
        connect_timeout: Duration::from_secs(5),
        command_timeout: Duration::from_secs(5),
        data_timeout: Duration::from_secs(5),
        roots: Some(Arc::new(RootCertStore::empty())),
    }
}

fn rcpts(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn run(
    script: Vec<Step>,
    cfg: &ClientConfig,
    recipients: &[String],
    body: &[u8],
) -> (Result<Attempt, SessionError>, Result<Vec<u8>, String>) {
    let (addr, server) = serve(script);
    let msg = Outbound { sender: "a@x.test", recipients, size: body.len() as u64, eight_bit: false };
    let got = send(addr, HOST, cfg, &msg, &mut &body[..]);
    let server = server.join().unwrap_or_else(|_| Err("server panicked".into()));
    (got, server)
}

fn failed(permanent: bool, reply: &str) -> RcptResult {
    RcptResult::Failed { permanent, reply: reply.into() }
}

const GREET: Step = Say("220 mx.test.example ESMTP\r\n");
const EHLO: Step = Expect("EHLO client.test");

#[test]
fn plain_delivery_is_crlf_and_dot_stuffed() {
    let body = b"Subject: hi\n\n.leading dot\n..two\nlast line without newline";
    let script = vec![
        GREET,
        EHLO,
        Say("250-mx.test.example\r\n250-SIZE 100000\r\n250 8BITMIME\r\n"),
        Expect("MAIL FROM:<a@x.test> SIZE=57 BODY=8BITMIME"),
        Say("250 2.1.0 Ok\r\n"),
        Expect("RCPT TO:<b@y.test>"),
        Say("250 2.1.5 Ok\r\n"),
        Expect("DATA"),
        Say("354 End data with <CR><LF>.<CR><LF>\r\n"),
        Data,
        Say("250 2.0.0 Ok: queued as ABC\r\n"),
        Expect("QUIT"),
        Say("221 2.0.0 Bye\r\n"),
    ];
    let (addr, server) = serve(script);
    let list = rcpts(&["b@y.test"]);
    let msg = Outbound { sender: "a@x.test", recipients: &list, size: body.len() as u64, eight_bit: true };
    let got = send(addr, HOST, &config(), &msg, &mut &body[..]).expect("delivered");
    let data = server.join().expect("server").expect("script");
    assert_eq!(data, b"Subject: hi\r\n\r\n..leading dot\r\n...two\r\nlast line without newline\r\n.\r\n");
    assert_eq!(got.results, [RcptResult::Accepted]);
    assert_eq!(got.reply, "250 2.0.0 Ok: queued as ABC");
    assert_eq!(got.relay, format!("{HOST}[127.0.0.1]:{}", addr.port()));
    assert_eq!(got.tls, None);
}

#[test]
fn pipelining_sends_one_batch() {
    let script = vec![
        GREET,
        EHLO,
        Say("250-mx\r\n250-PIPELINING\r\n250 SMTPUTF8\r\n"),
        Batch(&["MAIL FROM:<a@x.test>", "RCPT TO:<b@y.test>", "RCPT TO:<c@y.test>", "DATA"]),
        Say("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n354 go ahead\r\n"),
        Data,
        Say("250 2.0.0 Ok: queued as P\r\n"),
        Expect("QUIT"),
        Say("221 Bye\r\n"),
    ];
    let (got, data) = run(script, &config(), &rcpts(&["b@y.test", "c@y.test"]), b"x\n");
    assert_eq!(data.expect("script"), b"x\r\n.\r\n");
    assert_eq!(got.expect("delivered").results, [RcptResult::Accepted, RcptResult::Accepted]);
}

#[test]
fn mixed_recipient_replies() {
    let script = vec![
        GREET,
        EHLO,
        Say("250 mx\r\n"),
        Expect("MAIL FROM:<a@x.test>"),
        Say("250 Ok\r\n"),
        Expect("RCPT TO:<ok@y.test>"),
        Say("250 2.1.5 Ok\r\n"),
        Expect("RCPT TO:<later@y.test>"),
        Say("450 4.2.0 <later@y.test>: Recipient address rejected: Greylisted\r\n"),
        Expect("RCPT TO:<nobody@y.test>"),
        Say("550-5.1.1 <nobody@y.test>: Recipient address rejected:\r\n550 5.1.1 User unknown\r\n"),
        Expect("DATA"),
        Say("354 go\r\n"),
        Data,
        Say("250 2.0.0 Ok: queued as M\r\n"),
        Expect("QUIT"),
        Say("221 Bye\r\n"),
    ];
    let (got, data) = run(script, &config(), &rcpts(&["ok@y.test", "later@y.test", "nobody@y.test"]), b"m\n");
    data.expect("script");
    let got = got.expect("delivered");
    assert_eq!(
        got.results,
        [
            RcptResult::Accepted,
            failed(false, "450 4.2.0 <later@y.test>: Recipient address rejected: Greylisted"),
            failed(true, "550 5.1.1 <nobody@y.test>: Recipient address rejected: User unknown"),
        ]
    );
    assert_eq!(got.reply, "250 2.0.0 Ok: queued as M");
}

#[test]
fn too_many_recipients_452_is_temporary() {
    let script = vec![
        GREET,
        EHLO,
        Say("250-mx\r\n250 PIPELINING\r\n"),
        Batch(&[
            "MAIL FROM:<a@x.test>",
            "RCPT TO:<r1@y.test>",
            "RCPT TO:<r2@y.test>",
            "RCPT TO:<r3@y.test>",
            "DATA",
        ]),
        Say("250 Ok\r\n250 Ok\r\n250 Ok\r\n452 4.5.3 Error: too many recipients\r\n354 go\r\n"),
        Data,
        Say("250 2.0.0 Ok\r\n"),
        Expect("QUIT"),
        Say("221 Bye\r\n"),
    ];
    let (got, data) = run(script, &config(), &rcpts(&["r1@y.test", "r2@y.test", "r3@y.test"]), b"m\n");
    data.expect("script");
    assert_eq!(
        got.expect("delivered").results,
        [RcptResult::Accepted, RcptResult::Accepted, failed(false, "452 4.5.3 Error: too many recipients")]
    );
}

#[test]
fn data_554_fails_all_permanently() {
    let script = vec![
        GREET,
        EHLO,
        Say("250-mx\r\n250 PIPELINING\r\n"),
        Batch(&["MAIL FROM:<a@x.test>", "RCPT TO:<r1@y.test>", "RCPT TO:<r2@y.test>", "DATA"]),
        Say("250 Ok\r\n250 Ok\r\n550 5.1.1 no\r\n554 5.5.1 Error: no valid recipients\r\n"),
        Expect("QUIT"),
        Say("221 Bye\r\n"),
    ];
    let (got, data) = run(script, &config(), &rcpts(&["r1@y.test", "r2@y.test"]), b"m\n");
    data.expect("script");
    let got = got.expect("attempt");
    assert_eq!(
        got.results,
        [failed(true, "554 5.5.1 Error: no valid recipients"), failed(true, "550 5.1.1 no")]
    );
    assert_eq!(got.reply, "554 5.5.1 Error: no valid recipients");
}

#[test]
fn final_dot_451_fails_all_temporarily() {
    let script = vec![
        GREET,
        EHLO,
        Say("250 mx\r\n"),
        Expect("MAIL FROM:<a@x.test>"),
        Say("250 Ok\r\n"),
        Expect("RCPT TO:<r1@y.test>"),
        Say("250 Ok\r\n"),
        Expect("RCPT TO:<r2@y.test>"),
        Say("250 Ok\r\n"),
        Expect("DATA"),
        Say("354 go\r\n"),
        Data,
        Say("451 4.3.0 Error: queue file write error\r\n"),
        Expect("QUIT"),
        Say("221 Bye\r\n"),
    ];
    let (got, data) = run(script, &config(), &rcpts(&["r1@y.test", "r2@y.test"]), b"m\n");
    data.expect("script");
    let want = failed(false, "451 4.3.0 Error: queue file write error");
    assert_eq!(got.expect("attempt").results, [want.clone(), want]);
}

#[test]
fn lone_dot_after_354_with_no_recipients() {
    // RFC 2920 3.1: DATA was pipelined, nothing accepted, server still said 354.
    let script = vec![
        GREET,
        EHLO,
        Say("250-mx\r\n250 PIPELINING\r\n"),
        Batch(&["MAIL FROM:<a@x.test>", "RCPT TO:<r1@y.test>", "DATA"]),
        Say("250 Ok\r\n550 5.1.1 no\r\n354 go\r\n"),
        Expect("."),
        Say("554 5.5.1 no recipients\r\n"),
        Expect("QUIT"),
        Say("221 Bye\r\n"),
    ];
    let (got, data) = run(script, &config(), &rcpts(&["r1@y.test"]), b"m\n");
    data.expect("script");
    assert_eq!(got.expect("attempt").results, [failed(true, "550 5.1.1 no")]);
}

#[test]
fn greeting_refusals_are_temporary() {
    for greeting in ["421 4.3.2 Service not available\r\n", "554 5.3.2 go away\r\n"] {
        let script = vec![Say(greeting), Expect("QUIT"), Say("221 Bye\r\n")];
        let (got, data) = run(script, &config(), &rcpts(&["b@y.test"]), b"m\n");
        data.expect("script");
        match got {
            Err(SessionError::Temp(s)) => {
                assert!(
                    s.starts_with(&format!(
                        "host {HOST}[127.0.0.1] refused to talk to me: {}",
                        &greeting[..3]
                    )),
                    "{s}"
                )
            }
            other => panic!("{greeting}: {other:?}"),
        }
    }
}

#[test]
fn mail_from_refusals() {
    for (reply, perm) in [("550 5.7.1 sender rejected\r\n", true), ("451 4.3.0 try later\r\n", false)] {
        let script = vec![
            GREET,
            EHLO,
            Say("250 mx\r\n"),
            Expect("MAIL FROM:<a@x.test>"),
            Say(reply),
            Expect("QUIT"),
            Say("221 Bye\r\n"),
        ];
        let (got, data) = run(script, &config(), &rcpts(&["b@y.test"]), b"m\n");
        data.expect("script");
        let want =
            format!("host {HOST}[127.0.0.1] said: {} (in reply to MAIL FROM command)", reply.trim_end());
        match got {
            Err(SessionError::Perm(s)) if perm => assert_eq!(s, want),
            Err(SessionError::Temp(s)) if !perm => assert_eq!(s, want),
            other => panic!("{reply}: {other:?}"),
        }
    }
}

#[test]
fn ehlo_502_falls_back_to_helo() {
    let script = vec![
        GREET,
        EHLO,
        Say("502 5.5.2 Error: command not recognized\r\n"),
        Expect("HELO client.test"),
        Say("250 mx\r\n"),
        // No SIZE=/BODY= without EHLO.
        Expect("MAIL FROM:<>"),
        Say("250 Ok\r\n"),
        Expect("RCPT TO:<b@y.test>"),
        Say("250 Ok\r\n"),
        Expect("DATA"),
        Say("354 go\r\n"),
        Data,
        Say("250 queued\r\n"),
        Expect("QUIT"),
        Say("221 Bye\r\n"),
    ];
    let (addr, server) = serve(script);
    let list = rcpts(&["b@y.test"]);
    let msg = Outbound { sender: "", recipients: &list, size: 2, eight_bit: true };
    let got = send(addr, HOST, &config(), &msg, &mut &b"m\n"[..]).expect("delivered");
    server.join().expect("server").expect("script");
    assert_eq!(got.results, [RcptResult::Accepted]);
}

#[test]
fn utf8_recipient_without_smtputf8_fails_alone() {
    let script = vec![
        GREET,
        EHLO,
        Say("250-mx\r\n250 8BITMIME\r\n"),
        Expect("MAIL FROM:<a@x.test>"),
        Say("250 Ok\r\n"),
        Expect("RCPT TO:<b@y.test>"),
        Say("250 Ok\r\n"),
        Expect("DATA"),
        Say("354 go\r\n"),
        Data,
        Say("250 queued\r\n"),
        Expect("QUIT"),
        Say("221 Bye\r\n"),
    ];
    let (got, data) = run(script, &config(), &rcpts(&["b@y.test", "josé@y.test"]), b"m\n");
    data.expect("script");
    let got = got.expect("delivered");
    assert_eq!(got.results[0], RcptResult::Accepted);
    assert!(
        matches!(&got.results[1], RcptResult::Failed { permanent: true, reply } if reply.starts_with("550 5.6.7 ")),
        "{:?}",
        got.results
    );

    // All of them non-ASCII: no transaction at all.
    let script = vec![GREET, EHLO, Say("250 mx\r\n"), Expect("QUIT"), Say("221 Bye\r\n")];
    let (got, data) = run(script, &config(), &rcpts(&["josé@y.test"]), b"m\n");
    data.expect("script");
    assert!(matches!(&got.expect("attempt").results[..], [RcptResult::Failed { permanent: true, .. }]));

    // Offered: the transaction says SMTPUTF8.
    let script = vec![
        GREET,
        EHLO,
        Say("250-mx\r\n250 SMTPUTF8\r\n"),
        Expect("MAIL FROM:<a@x.test> SMTPUTF8"),
        Say("250 Ok\r\n"),
        Expect("RCPT TO:<josé@y.test>"),
        Say("250 Ok\r\n"),
        Expect("DATA"),
        Say("354 go\r\n"),
        Data,
        Say("250 queued\r\n"),
        Expect("QUIT"),
        Say("221 Bye\r\n"),
    ];
    let (got, data) = run(script, &config(), &rcpts(&["josé@y.test"]), b"m\n");
    data.expect("script");
    assert_eq!(got.expect("delivered").results, [RcptResult::Accepted]);
}

#[test]
fn silent_servers_time_out() {
    let mut cfg = config();
    cfg.command_timeout = Duration::from_millis(300);
    // No greeting at all.
    let start = Instant::now();
    let (got, _) = run(vec![Silence(Duration::from_secs(2))], &cfg, &rcpts(&["b@y.test"]), b"m\n");
    assert!(start.elapsed() < Duration::from_secs(3));
    match got {
        Err(SessionError::Temp(s)) => assert_eq!(
            s,
            format!(
                "conversation with {HOST}[127.0.0.1] timed out while receiving the initial server greeting"
            )
        ),
        other => panic!("{other:?}"),
    }
    // A server that trickles a reply never finishes it within the deadline.
    let script = vec![
        GREET,
        EHLO,
        Say("250 mx\r\n"),
        Expect("MAIL FROM:<a@x.test>"),
        Say("250"),
        Silence(Duration::from_millis(200)),
        Say(" O"),
        Silence(Duration::from_millis(200)),
        Say("k"),
        Silence(Duration::from_secs(1)),
    ];
    let (got, _) = run(script, &cfg, &rcpts(&["b@y.test"]), b"m\n");
    assert!(
        matches!(&got, Err(SessionError::Temp(s)) if s.contains("timed out while sending MAIL FROM")),
        "{got:?}"
    );
}

#[test]
fn connection_refused_is_temporary() {
    let addr = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("addr");
    let list = rcpts(&["b@y.test"]);
    let msg = Outbound { sender: "a@x.test", recipients: &list, size: 1, eight_bit: false };
    match send(addr, HOST, &config(), &msg, &mut &b""[..]) {
        Err(SessionError::Temp(s)) => {
            assert_eq!(s, format!("connect to {HOST}[127.0.0.1]:{}: Connection refused", addr.port()))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn garbage_and_oversized_replies_are_temporary() {
    let long: &'static str = Box::leak(format!("250 {}\r\n", "x".repeat(5000)).into_boxed_str());
    for bad in ["HTTP/1.1 400 Bad Request\r\n", long] {
        let (got, _) = run(vec![Say(bad)], &config(), &rcpts(&["b@y.test"]), b"m\n");
        assert!(
            matches!(&got, Err(SessionError::Temp(s)) if s.contains("while receiving the initial")),
            "{got:?}"
        );
    }
}

#[test]
fn size_over_the_server_limit_is_permanent() {
    let script = vec![GREET, EHLO, Say("250-mx\r\n250 SIZE 10\r\n"), Expect("QUIT"), Say("221 Bye\r\n")];
    let (got, data) = run(script, &config(), &rcpts(&["b@y.test"]), b"more than ten octets\n");
    data.expect("script");
    assert!(matches!(&got, Err(SessionError::Perm(s)) if s.contains("exceeds size limit 10")), "{got:?}");
}

/// A test CA and a certificate for [`HOST`] it signed; and a self-signed one nobody trusts.
struct Certs {
    roots: Arc<RootCertStore>,
    signed: Arc<ServerConfig>,
    self_signed: Arc<ServerConfig>,
}

fn certs() -> Certs {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = |chain: Vec<CertificateDer<'static>>, key: &KeyPair| {
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        Arc::new(
            ServerConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .expect("versions")
                .with_no_client_auth()
                .with_single_cert(chain, key)
                .expect("server config"),
        )
    };
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, "buzon test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("key")).expect("ca");
    let leaf_key = KeyPair::generate().expect("key");
    let leaf = CertificateParams::new(vec![HOST.to_string()])
        .expect("params")
        .signed_by(&leaf_key, &ca)
        .expect("leaf");
    let mut roots = RootCertStore::empty();
    roots.add(ca.der().clone()).expect("root");

    let own = rcgen::generate_simple_self_signed(vec![HOST.to_string()]).expect("self-signed");
    Certs {
        roots: Arc::new(roots),
        signed: server(vec![leaf.der().clone(), ca.der().clone()], &leaf_key),
        self_signed: server(vec![own.cert.der().clone()], &own.signing_key),
    }
}

/// Greeting, EHLO offering STARTTLS, the handshake, EHLO again; then `rest`.
fn starttls_script(server: Arc<ServerConfig>, after_tls_caps: &'static str, rest: Vec<Step>) -> Vec<Step> {
    let mut s = vec![
        GREET,
        EHLO,
        Say("250-mx\r\n250-PIPELINING\r\n250 STARTTLS\r\n"),
        Expect("STARTTLS"),
        Say("220 2.0.0 Ready to start TLS\r\n"),
        Tls(server),
        EHLO,
        Say(after_tls_caps),
    ];
    s.extend(rest);
    s
}

fn delivery_steps() -> Vec<Step> {
    vec![
        Expect("MAIL FROM:<a@x.test>"),
        Say("250 Ok\r\n"),
        Expect("RCPT TO:<b@y.test>"),
        Say("250 Ok\r\n"),
        Expect("DATA"),
        Say("354 go\r\n"),
        Data,
        Say("250 2.0.0 Ok: queued\r\n"),
        Expect("QUIT"),
        Say("221 Bye\r\n"),
    ]
}

#[test]
fn starttls_verified_with_test_ca() {
    let c = certs();
    let mut cfg = config();
    cfg.tls = TlsPolicy::Verify;
    cfg.roots = Some(c.roots.clone());
    let script = starttls_script(c.signed, "250 mx\r\n", delivery_steps());
    let (got, data) = run(script, &cfg, &rcpts(&["b@y.test"]), b"secret\n");
    assert_eq!(data.expect("script"), b"secret\r\n.\r\n");
    let got = got.expect("delivered");
    let tls = got.tls.expect("tls");
    assert!(tls.starts_with("TLSv1.3 TLS13_") && tls.ends_with(" verified"), "{tls}");
}

#[test]
fn starttls_may_uses_an_untrusted_certificate() {
    let c = certs();
    let mut cfg = config();
    cfg.tls = TlsPolicy::May;
    cfg.roots = Some(c.roots.clone());
    let script = starttls_script(c.self_signed, "250 mx\r\n", delivery_steps());
    let (got, data) = run(script, &cfg, &rcpts(&["b@y.test"]), b"m\n");
    data.expect("script");
    let tls = got.expect("delivered").tls.expect("tls");
    assert!(tls.ends_with(" untrusted"), "{tls}");
}

#[test]
fn starttls_verify_refuses_an_untrusted_certificate() {
    let c = certs();
    let mut cfg = config();
    cfg.tls = TlsPolicy::Verify;
    cfg.roots = Some(c.roots.clone());
    let script = starttls_script(c.self_signed, "250 mx\r\n", vec![]);
    let (got, _) = run(script, &cfg, &rcpts(&["b@y.test"]), b"m\n");
    assert!(
        matches!(&got, Err(SessionError::Temp(s)) if s.contains("TLS handshake with") && s.contains("failed")),
        "{got:?}"
    );
}

#[test]
fn verify_without_starttls_offered_is_temporary() {
    let mut cfg = config();
    cfg.tls = TlsPolicy::Verify;
    let script = vec![GREET, EHLO, Say("250 mx\r\n"), Expect("QUIT"), Say("221 Bye\r\n")];
    let (got, data) = run(script, &cfg, &rcpts(&["b@y.test"]), b"m\n");
    data.expect("script");
    assert!(
        matches!(&got, Err(SessionError::Temp(s)) if s.starts_with("TLS is required, but was not offered")),
        "{got:?}"
    );
}

#[test]
fn starttls_discards_injected_cleartext() {
    // A reply smuggled behind the 220 must not be taken as the answer to the EHLO after TLS.
    let c = certs();
    let mut cfg = config();
    cfg.tls = TlsPolicy::May;
    cfg.roots = Some(c.roots.clone());
    let mut script = vec![
        GREET,
        EHLO,
        Say("250-mx\r\n250 STARTTLS\r\n"),
        Expect("STARTTLS"),
        Say("220 2.0.0 go\r\n250 injected\r\n"),
        Tls(c.signed),
        EHLO,
        Say("250 mx\r\n"),
    ];
    script.extend(delivery_steps());
    let (got, data) = run(script, &cfg, &rcpts(&["b@y.test"]), b"m\n");
    data.expect("script");
    assert!(got.expect("delivered").tls.is_some_and(|t| t.ends_with(" verified")));
}

#[test]
fn implicit_tls_and_auth_plain() {
    let c = certs();
    let mut cfg = config();
    cfg.tls = TlsPolicy::Implicit;
    cfg.roots = Some(c.roots.clone());
    cfg.auth = Some(("user".into(), "pass".into()));
    let mut script = vec![
        Tls(c.signed),
        GREET,
        EHLO,
        Say("250-mx\r\n250 AUTH LOGIN PLAIN\r\n"),
        Expect("AUTH PLAIN AHVzZXIAcGFzcw=="),
        Say("235 2.7.0 Authentication successful\r\n"),
    ];
    script.extend(delivery_steps());
    let (got, data) = run(script, &cfg, &rcpts(&["b@y.test"]), b"m\n");
    data.expect("script");
    assert!(got.expect("delivered").tls.is_some_and(|t| t.ends_with(" verified")));
}

#[test]
fn auth_is_never_sent_in_clear() {
    let mut cfg = config();
    cfg.auth = Some(("user".into(), "pass".into()));
    let script = vec![GREET, EHLO, Say("250-mx\r\n250 AUTH PLAIN\r\n"), Expect("QUIT"), Say("221 Bye\r\n")];
    let (got, data) = run(script, &cfg, &rcpts(&["b@y.test"]), b"m\n");
    data.expect("script");
    assert!(matches!(&got, Err(SessionError::Temp(s)) if s.contains("unencrypted")), "{got:?}");
}

#[test]
fn auth_refused_is_temporary() {
    let c = certs();
    let mut cfg = config();
    cfg.tls = TlsPolicy::Verify;
    cfg.roots = Some(c.roots.clone());
    cfg.auth = Some(("user".into(), "wrong".into()));
    let script = starttls_script(
        c.signed,
        "250-mx\r\n250 AUTH PLAIN\r\n",
        vec![
            Expect("AUTH PLAIN AHVzZXIAd3Jvbmc="),
            Say("535 5.7.8 Error: authentication failed\r\n"),
            Expect("QUIT"),
            Say("221 Bye\r\n"),
        ],
    );
    let (got, data) = run(script, &cfg, &rcpts(&["b@y.test"]), b"m\n");
    data.expect("script");
    assert!(matches!(&got, Err(SessionError::Temp(s)) if s.contains("535 5.7.8")), "{got:?}");
}
