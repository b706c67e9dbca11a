//! Tests for TlsStream: real handshakes over loopback with the rustls client (tls::client) and openssl.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore};

use super::*;
use crate::tls::ServerTls;
use crate::tls::server::tests::{Alg, Pair, have_openssl, pair, write_pair};
use crate::transport::Transport;

/// A client config trusting exactly `cert`, limited to one TLS version if asked.
fn client(
    cert: &CertificateDer<'static>,
    version: Option<&'static rustls::SupportedProtocolVersion>,
) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(cert.clone()).unwrap();
    match version {
        None => crate::tls::client_verified(Arc::new(roots)).unwrap(),
        Some(v) => Arc::new(
            ClientConfig::builder_with_provider(crate::tls::provider())
                .with_protocol_versions(&[v])
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth(),
        ),
    }
}

/// What the client saw of one connection.
struct ClientView {
    cert: CertificateDer<'static>,
    exporter: Vec<u8>,
    reply: Vec<u8>,
}

/// Connects, handshakes, sends `hello\n`, reads the server's line.
fn client_session(addr: std::net::SocketAddr, cfg: Arc<ClientConfig>) -> ClientView {
    let tcp = TcpStream::connect(addr).unwrap();
    let conn = ClientConnection::new(cfg, ServerName::try_from("localhost").unwrap()).unwrap();
    let mut s = rustls::StreamOwned::new(conn, tcp);
    s.write_all(b"hello\n").unwrap();
    let mut reply = Vec::new();
    let mut line = BufReader::new(&mut s);
    line.read_until(b'\n', &mut reply).unwrap();
    let cert = s.conn.peer_certificates().unwrap()[0].clone();
    let exporter = s.conn.export_keying_material(vec![0u8; 32], b"EXPORTER-Channel-Binding", None).unwrap();
    ClientView { cert, exporter, reply }
}

/// The server's half: accept, read a line, answer with it upper-cased; returns the stream.
fn serve_one(listener: &TcpListener, cfg: Arc<rustls::ServerConfig>) -> TlsStream {
    let (tcp, _) = listener.accept().unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut s = TlsStream::accept(Transport::Tcp(tcp), cfg).unwrap();
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while !line.ends_with(b"\n") {
        assert_eq!(s.read(&mut byte).unwrap(), 1);
        line.push(byte[0]);
    }
    s.write_all(&line.to_ascii_uppercase()).unwrap();
    s.flush().unwrap();
    s
}

fn listener() -> (TcpListener, std::net::SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let a = l.local_addr().unwrap();
    (l, a)
}

fn sha256(b: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, b).as_ref().to_vec()
}

#[test]
fn handshake_exchanges_bytes_and_channel_bindings_agree() {
    let tmp = tempfile::tempdir().unwrap();
    let p: Pair = pair(Alg::P256);
    let (c, k) = write_pair(tmp.path(), &p);
    let tls = ServerTls::load(&c, &k).unwrap();
    let (l, addr) = listener();
    for (version, name) in
        [(None, "TLSv1.3 TLS13_"), (Some(&rustls::version::TLS12), "TLSv1.2 TLS_ECDHE_ECDSA_")]
    {
        let cfg = client(&p.der, version);
        let t = thread::spawn(move || client_session(addr, cfg));
        let mut s = serve_one(&l, tls.config());
        let seen = t.join().unwrap();
        assert_eq!(seen.reply, b"HELLO\n");
        assert_eq!(seen.cert, p.der);
        assert!(s.describe().starts_with(name), "{}", s.describe());
        assert_eq!(s.is_tls13(), version.is_none());
        assert_eq!(s.sni(), Some("localhost"));
        assert!(s.transport().tcp().unwrap().peer_addr().is_ok());
        // RFC 9266: both sides export the same 32 bytes; only offered on TLS 1.3.
        let exporter = s.channel_binding("tls-exporter");
        if version.is_none() {
            assert_eq!(exporter.as_deref(), Some(&seen.exporter[..]));
            assert_eq!(seen.exporter.len(), 32);
        } else {
            assert_eq!(exporter, None);
        }
        // RFC 5929: SHA-256 of the certificate the client received.
        assert_eq!(s.channel_binding("tls-server-end-point"), Some(sha256(&seen.cert)));
        assert_eq!(s.channel_binding("tls-unique"), None);
        s.close().unwrap();
    }
}

#[test]
fn end_point_hash_follows_the_signature_algorithm() {
    let tmp = tempfile::tempdir().unwrap();
    let (l, addr) = listener();
    for (alg, len) in [(Alg::P384, Some(48)), (Alg::Ed25519, None), (Alg::Rsa, Some(32))] {
        let p = pair(alg);
        let (c, k) = write_pair(tmp.path(), &p);
        let tls = ServerTls::load(&c, &k).unwrap();
        let cfg = client(&p.der, None);
        let t = thread::spawn(move || client_session(addr, cfg));
        let s = serve_one(&l, tls.config());
        t.join().unwrap();
        assert_eq!(s.channel_binding("tls-server-end-point").map(|v| v.len()), len, "{alg:?}");
    }
}

#[test]
fn reload_changes_the_certificate_for_new_connections_only() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (pair(Alg::P256), pair(Alg::Rsa));
    let (c, k) = write_pair(tmp.path(), &a);
    let tls = ServerTls::load(&c, &k).unwrap();
    let (l, addr) = listener();

    // An established connection, held open across the reload.
    let tcp = TcpStream::connect(addr).unwrap();
    let conn =
        ClientConnection::new(client(&a.der, None), ServerName::try_from("localhost").unwrap()).unwrap();
    let mut old_client = rustls::StreamOwned::new(conn, tcp);
    let cfg = tls.config();
    let server = thread::spawn(move || {
        let (tcp, _) = l.accept().unwrap();
        let s = TlsStream::accept(Transport::Tcp(tcp), cfg).unwrap();
        (l, s)
    });
    old_client.write_all(b"x").unwrap();
    let (l, mut old_server) = server.join().unwrap();

    write_pair(tmp.path(), &b);
    tls.reload().unwrap();
    let cfg = client(&b.der, None);
    let t = thread::spawn(move || client_session(addr, cfg));
    serve_one(&l, tls.config());
    assert_eq!(t.join().unwrap().cert, b.der, "new connection sees the new certificate");

    // The old connection still works and still has the old certificate.
    let mut x = [0u8; 1];
    old_server.read_exact(&mut x).unwrap();
    old_server.write_all(b"y").unwrap();
    old_server.flush().unwrap();
    old_client.read_exact(&mut x).unwrap();
    assert_eq!(&x, b"y");
    assert_eq!(old_client.conn.peer_certificates().unwrap()[0], a.der);
    assert_eq!(old_server.channel_binding("tls-server-end-point"), Some(sha256(&a.der)));
}

#[test]
fn handshake_failures_are_clear_io_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let (c, k) = write_pair(tmp.path(), &pair(Alg::P256));
    let tls = ServerTls::load(&c, &k).unwrap();
    let (l, addr) = listener();
    let accept = |l: &TcpListener| {
        let (tcp, _) = l.accept().unwrap();
        tcp.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
        let started = Instant::now();
        let r = TlsStream::accept(Transport::Tcp(tcp), tls.config()).map(|_| ());
        (r.unwrap_err(), started.elapsed())
    };

    // Plain SMTP where a ClientHello belongs.
    let mut plain = TcpStream::connect(addr).unwrap();
    plain.write_all(b"EHLO client.example\r\n").unwrap();
    let (e, _) = accept(&l);
    assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    assert!(e.to_string().starts_with("TLS handshake failed: "), "{e}");
    drop(plain);

    // Peer hangs up.
    drop(TcpStream::connect(addr).unwrap());
    let (e, _) = accept(&l);
    assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
    assert!(e.to_string().contains("closed the connection during the TLS handshake"), "{e}");

    // Peer trickles a byte every 100 ms: the read timeout bounds the whole handshake, not each read.
    let trickle = thread::spawn(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        let hello = [0x16u8, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03];
        for b in hello.iter().cycle().take(20) {
            if s.write_all(&[*b]).is_err() {
                break;
            }
            thread::sleep(Duration::from_millis(100));
        }
    });
    let (e, took) = accept(&l);
    assert_eq!(e.kind(), io::ErrorKind::TimedOut);
    assert_eq!(e.to_string(), "TLS handshake timed out");
    assert!(took < Duration::from_millis(1000), "{took:?}");
    trickle.join().unwrap();
}

/// `openssl s_client` against a one-connection listener, for TLS 1.2 and 1.3; on 1.3 the exported
/// channel binding from openssl's side must equal ours.
#[test]
fn openssl_s_client_interoperates() {
    if !have_openssl() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (c, k) = write_pair(tmp.path(), &pair(Alg::P256));
    let tls = ServerTls::load(&c, &k).unwrap();
    let (l, addr) = listener();
    for (flag, want) in [("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")] {
        let mut child = Command::new("openssl")
            .args(["s_client", "-connect", &addr.to_string(), flag, "-servername", "localhost"])
            .args(["-keymatexport", "EXPORTER-Channel-Binding", "-keymatexportlen", "32"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut s = serve_one_openssl(&l, tls.config(), child.stdin.take().unwrap());
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(s.describe().starts_with(want), "{}", s.describe());
        assert!(
            stdout.contains(&format!("Protocol  : {want}")) || stdout.contains(&format!("{want}, Cipher")),
            "{stdout}"
        );
        assert!(stdout.contains("220 ready"), "{stdout}");
        let km = stdout
            .lines()
            .find_map(|l| l.trim().strip_prefix("Keying material: "))
            .unwrap_or_else(|| panic!("no keying material in {stdout}"))
            .to_string();
        let ours: String = match s.channel_binding("tls-exporter") {
            Some(v) => v.iter().map(|b| format!("{b:02X}")).collect(),
            None => String::new(),
        };
        if want == "TLSv1.3" {
            assert_eq!(ours, km.to_ascii_uppercase());
        } else {
            assert!(ours.is_empty());
        }
        s.close().ok();
    }
}

/// Accepts, greets, reads the client's "hello" line (a line starting with Q would be an s_client command), then lets s_client's stdin close.
fn serve_one_openssl(
    l: &TcpListener,
    cfg: Arc<rustls::ServerConfig>,
    mut stdin: std::process::ChildStdin,
) -> TlsStream {
    let (tcp, _) = l.accept().unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut s = TlsStream::accept(Transport::Tcp(tcp), cfg).unwrap();
    s.write_all(b"220 ready\r\n").unwrap();
    s.flush().unwrap();
    stdin.write_all(b"hello\n").unwrap();
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"\n") && s.read(&mut byte).unwrap() == 1 {
        got.push(byte[0]);
    }
    assert_eq!(got, b"hello\n");
    drop(stdin);
    s
}
