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
    /// While the handshake runs in steps ([`TlsStream::start`]): what learns the certificate.
    recording: Option<Arc<Recording>>,
}

/// Wraps the config's resolver for one connection to learn which certificate it presented (rustls does
/// not tell the server afterwards), for tls-server-end-point.
#[derive(Debug)]
struct Recording {
    inner: Arc<dyn ResolvesServerCert>,
    chosen: Mutex<Option<Arc<CertifiedKey>>>,
}

impl Recording {
    fn chosen_cert(&self) -> Option<CertificateDer<'static>> {
        match self.chosen.lock() {
            Ok(g) => g.as_ref().and_then(|ck| ck.cert.first().cloned()),
            Err(p) => p.into_inner().as_ref().and_then(|ck| ck.cert.first().cloned()),
        }
    }
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
    /// Runs the server handshake on `tcp` to its end on this thread (the steps of
    /// [`TlsStream::handshake_step`], waiting for the client between them). The socket's read
    /// timeout, if set, bounds the whole handshake (so a client trickling bytes cannot hold it
    /// open). Errors are `TimedOut`, `UnexpectedEof` (peer closed) or `InvalidData` (TLS failure),
    /// each with a message fit for the log. Bytes the peer sent before the handshake must already
    /// be discarded by the caller (RFC 3207 5 / CVE-2011-0411): this starts from the socket.
    pub fn accept(tcp: Transport, cfg: Arc<ServerConfig>) -> io::Result<TlsStream> {
        let deadline = tcp.read_timeout()?.map(|d| Instant::now() + d);
        let fd = tcp.fd();
        let mut s = TlsStream::start(tcp, cfg)?;
        loop {
            match s.handshake_step() {
                Ok(_) => return Ok(s),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            if left.is_some_and(|l| l.is_zero()) || !readable(fd, left)? {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"));
            }
        }
    }

    /// Starts a server handshake that [`TlsStream::handshake_step`] drives as bytes arrive, so a
    /// connection in its handshake can wait in the event loop instead of holding a thread.
    pub fn start(tcp: Transport, cfg: Arc<ServerConfig>) -> io::Result<TlsStream> {
        let recording = Arc::new(Recording { inner: cfg.cert_resolver.clone(), chosen: Mutex::new(None) });
        let mut per_conn = (*cfg).clone();
        per_conn.cert_resolver = recording.clone();
        let conn = ServerConnection::new(Arc::new(per_conn))
            .map_err(|e| io::Error::other(format!("TLS setup failed: {e}")))?;
        Ok(TlsStream { inner: StreamOwned::new(conn, tcp), cert: None, recording: Some(recording) })
    }

    /// Advances a handshake begun by [`TlsStream::start`] with what has arrived: Ok(true) when it
    /// is complete, `WouldBlock` when it needs more from the client, another error when it failed
    /// (`UnexpectedEof`: the peer closed; `InvalidData`: TLS failure, the alert is sent).
    pub fn handshake_step(&mut self) -> io::Result<bool> {
        let (conn, sock) = (&mut self.inner.conn, &mut self.inner.sock);
        loop {
            while conn.wants_write() {
                conn.write_tls(sock).map_err(|e| io::Error::new(e.kind(), format!("TLS handshake: {e}")))?;
            }
            if !conn.is_handshaking() {
                if let Some(r) = self.recording.take() {
                    self.cert = r.chosen_cert();
                }
                return Ok(true);
            }
            match conn.read_tls(&mut sock.now()) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "peer closed the connection during the TLS handshake",
                    ));
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            if let Err(e) = conn.process_new_packets() {
                let _ = conn.write_tls(sock);
                return Err(io::Error::new(io::ErrorKind::InvalidData, format!("TLS handshake failed: {e}")));
            }
        }
    }

    /// Reads decrypted bytes that have arrived, without waiting: `WouldBlock` when no whole record
    /// has; Ok(0) at the end of the stream.
    pub fn read_now(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.inner.conn.reader().read(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // The peer closed the TCP connection without close_notify: an end all the same.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                r => return r,
            }
            match self.inner.conn.read_tls(&mut self.inner.sock.now()) {
                Ok(0) => return Ok(0),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            if let Err(e) = self.inner.conn.process_new_packets() {
                let _ = self.inner.conn.write_tls(&mut self.inner.sock);
                return Err(io::Error::new(io::ErrorKind::InvalidData, format!("TLS: {e}")));
            }
            // Key updates and the like are answered at once.
            while self.inner.conn.wants_write() {
                self.inner.conn.write_tls(&mut self.inner.sock)?;
            }
        }
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

    /// Sends close_notify (the orderly end, before closing the socket after QUIT).
    pub fn close(&mut self) -> io::Result<()> {
        self.inner.conn.send_close_notify();
        self.inner.flush()
    }
}

/// Waits for input on `fd` (forever with no limit); false when the limit passed first.
fn readable(fd: std::os::fd::RawFd, limit: Option<std::time::Duration>) -> io::Result<bool> {
    let ms = limit.map_or(-1, |l| l.as_millis().clamp(1, i32::MAX as u128) as i32);
    loop {
        let mut p = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd for the duration of the call.
        match unsafe { libc::poll(&mut p, 1, ms) } {
            0 => return Ok(false),
            n if n > 0 => return Ok(true),
            _ => {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
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
