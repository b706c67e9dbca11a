//! The blocking TLS stream a server session runs over after STARTTLS (RFC 3207) or on an implicit-TLS
//! port (RFC 8314), with what the session needs to know about it: version and cipher (for "with ESMTPS"
//! and logs) and channel bindings: tls-exporter (RFC 9266) and tls-server-end-point (RFC 5929).

use std::io::{self, Read, Write};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use rustls::pki_types::CertificateDer;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ServerConfig, ServerConnection, StreamOwned};

use super::der::{self, EndPointHash};
use crate::transport::Transport;

/// A server-side TLS connection over a blocking transport (a TCP socket, usually).
pub struct TlsStream {
    inner: StreamOwned<ServerConnection, Transport>,
    /// The end-entity certificate this connection presented; `None` after session resumption, where no
    /// certificate is sent.
    cert: Option<CertificateDer<'static>>,
}

/// Wraps the config's resolver for one connection to learn which certificate it presented (rustls does
/// not tell the server afterwards), for tls-server-end-point.
#[derive(Debug)]
struct Recording {
    inner: Arc<dyn ResolvesServerCert>,
    chosen: Mutex<Option<Arc<CertifiedKey>>>,
}

impl ResolvesServerCert for Recording {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let chosen = self.inner.resolve(hello);
        match self.chosen.lock() {
            Ok(mut g) => g.clone_from(&chosen),
            Err(p) => p.into_inner().clone_from(&chosen),
        }
        chosen
    }

    fn only_raw_public_keys(&self) -> bool {
        self.inner.only_raw_public_keys()
    }
}

impl TlsStream {
    /// Runs the server handshake on `tcp`. The socket's read timeout, if set, bounds the whole handshake
    /// (so a client trickling bytes cannot hold it open); the write timeout applies per write as usual.
    /// Errors are `TimedOut`, `UnexpectedEof` (peer closed) or `InvalidData` (TLS failure), each with a
    /// message fit for the log. Bytes the peer sent before the handshake must already be discarded by the
    /// caller (RFC 3207 5 / CVE-2011-0411): this starts from the socket.
    pub fn accept(mut tcp: Transport, cfg: Arc<ServerConfig>) -> io::Result<TlsStream> {
        let recording = Arc::new(Recording { inner: cfg.cert_resolver.clone(), chosen: Mutex::new(None) });
        let mut per_conn = (*cfg).clone();
        per_conn.cert_resolver = recording.clone();
        let mut conn = ServerConnection::new(Arc::new(per_conn))
            .map_err(|e| io::Error::other(format!("TLS setup failed: {e}")))?;

        let limit = tcp.read_timeout()?;
        let deadline = limit.map(|d| Instant::now() + d);
        let result = handshake(&mut conn, &mut tcp, deadline);
        let restored = tcp.set_read_timeout(limit);
        result?;
        restored?;

        let cert = match recording.chosen.lock() {
            Ok(g) => g.as_ref().and_then(|ck| ck.cert.first().cloned()),
            Err(p) => p.into_inner().as_ref().and_then(|ck| ck.cert.first().cloned()),
        };
        Ok(TlsStream { inner: StreamOwned::new(conn, tcp), cert })
    }

    /// "TLSv1.3 TLS13_AES_256_GCM_SHA384".
    pub fn describe(&self) -> String {
        super::describe_state(&self.inner.conn)
    }

    /// True on TLS 1.3.
    pub fn is_tls13(&self) -> bool {
        self.inner.conn.protocol_version() == Some(rustls::ProtocolVersion::TLSv1_3)
    }

    /// Channel-binding data of type `kind`, or `None` when this connection has none of that type:
    /// - "tls-exporter" (RFC 9266 2): 32 bytes exported with label "EXPORTER-Channel-Binding" and no
    ///   context; only on TLS 1.3 (RFC 9266 3: on TLS 1.2 it needs extended master secret, which rustls
    ///   does not report, so it is not offered).
    /// - "tls-server-end-point" (RFC 5929 4.1): hash of our certificate, SHA-256 for MD5/SHA-1/SHA-256
    ///   signed ones; unavailable for Ed25519/RSA-PSS certificates and on resumed sessions.
    ///
    /// "tls-unique" is never offered (undefined on TLS 1.3, RFC 9266 3).
    pub fn channel_binding(&self, kind: &str) -> Option<Vec<u8>> {
        match kind {
            "tls-exporter" if self.is_tls13() => {
                self.inner.conn.export_keying_material(vec![0u8; 32], b"EXPORTER-Channel-Binding", None).ok()
            }
            "tls-server-end-point" => {
                let cert = self.cert.as_ref()?;
                let alg = match der::end_point_hash(cert)? {
                    EndPointHash::Sha256 => &ring::digest::SHA256,
                    EndPointHash::Sha384 => &ring::digest::SHA384,
                    EndPointHash::Sha512 => &ring::digest::SHA512,
                };
                Some(ring::digest::digest(alg, cert).as_ref().to_vec())
            }
            _ => None,
        }
    }

    /// The server name the client asked for (SNI), if any.
    pub fn sni(&self) -> Option<&str> {
        self.inner.conn.server_name()
    }

    pub fn transport(&self) -> &Transport {
        &self.inner.sock
    }

    /// Whether decrypted bytes wait in rustls' buffer, so a read returns without the socket.
    pub fn has_pending(&mut self) -> bool {
        self.inner.conn.process_new_packets().is_ok_and(|s| s.plaintext_bytes_to_read() > 0)
    }

    /// Sends close_notify (the orderly end, before closing the socket after QUIT).
    pub fn close(&mut self) -> io::Result<()> {
        self.inner.conn.send_close_notify();
        self.inner.flush()
    }
}

/// Drives the handshake to completion or to the deadline. (rustls' `complete_io` keeps reading while
/// bytes trickle in, so it cannot enforce a deadline; this reads one chunk at a time.)
fn handshake(conn: &mut ServerConnection, tcp: &mut Transport, deadline: Option<Instant>) -> io::Result<()> {
    let timed_out = || io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out");
    let fail = |e: io::Error| match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => timed_out(),
        kind => io::Error::new(kind, format!("TLS handshake: {e}")),
    };
    loop {
        while conn.wants_write() {
            conn.write_tls(tcp).map_err(fail)?;
        }
        if !conn.is_handshaking() {
            return Ok(());
        }
        if let Some(d) = deadline {
            let left = d.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(timed_out());
            }
            tcp.set_read_timeout(Some(left))?;
        }
        match conn.read_tls(tcp) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "peer closed the connection during the TLS handshake",
                ));
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(fail(e)),
        }
        if let Err(e) = conn.process_new_packets() {
            // Send the alert describing the failure, if one is queued; the error is what matters.
            let _ = conn.write_tls(tcp);
            return Err(io::Error::new(io::ErrorKind::InvalidData, format!("TLS handshake failed: {e}")));
        }
    }
}

impl Read for TlsStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf)
    }
}

impl Write for TlsStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
#[path = "stream_tests.rs"]
mod tests;
