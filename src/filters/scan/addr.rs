//! Scanner addresses (`unix:/path`, `HOST:PORT`, `[v6]:PORT`) and the connection a scan runs on:
//! a unix or TCP stream whose every connect, read and write is bounded by the scan's deadline.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::ScanError;

/// Where a scanner daemon listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanAddr {
    /// A unix-domain stream socket (`unix:/run/clamav/clamd.ctl`).
    Unix(PathBuf),
    /// A TCP address as written, `HOST:PORT` or `[v6]:PORT`.
    Tcp(String),
}

impl ScanAddr {
    /// Parses `unix:/path`, `HOST:PORT` or `[v6]:PORT`.
    pub fn parse(s: &str) -> Result<ScanAddr, String> {
        if let Some(path) = s.strip_prefix("unix:") {
            if path.is_empty() || path.contains('\0') {
                return Err(format!("{s:?}: a unix socket needs a path"));
            }
            return Ok(ScanAddr::Unix(PathBuf::from(path)));
        }
        split_host_port(s)?;
        Ok(ScanAddr::Tcp(s.to_string()))
    }
}

impl std::fmt::Display for ScanAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ScanAddr::Unix(p) => write!(f, "unix:{}", p.display()),
            ScanAddr::Tcp(s) => f.write_str(s),
        }
    }
}

/// A host (an IP address or a name) and a port, from `HOST:PORT` or `[v6]:PORT`.
pub(crate) fn split_host_port(s: &str) -> Result<(Host, u16), String> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (v6, port) = rest.split_once("]:").ok_or_else(|| format!("{s:?}: expected [v6]:PORT"))?;
        let ip = v6.parse::<std::net::Ipv6Addr>().map_err(|_| format!("{s:?}: bad IPv6 address"))?;
        (Host::Ip(IpAddr::V6(ip)), port)
    } else {
        let (host, port) = s.rsplit_once(':').ok_or_else(|| format!("{s:?}: expected HOST:PORT"))?;
        if host.contains(':') {
            return Err(format!("{s:?}: an IPv6 address goes in brackets, [v6]:PORT"));
        }
        let host = match host.parse::<IpAddr>() {
            Ok(ip) => Host::Ip(ip),
            Err(_) if valid_name(host) => Host::Name(host.to_string()),
            Err(_) => return Err(format!("{s:?}: bad host name")),
        };
        (host, port)
    };
    match port.parse::<u16>() {
        Ok(p) if p != 0 && port.bytes().all(|b| b.is_ascii_digit()) => Ok((host, p)),
        _ => Err(format!("{s:?}: bad port")),
    }
}

fn valid_name(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 253
        && h.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// The host part of a TCP address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Host {
    Ip(IpAddr),
    Name(String),
}

/// One scan's connection and its deadline.
pub(crate) struct Session {
    stream: Stream,
    deadline: Instant,
    timeout: Duration,
}

enum Stream {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Session {
    /// Connects to `addr` within the time left before `deadline`.
    pub(crate) fn connect(addr: &ScanAddr, timeout: Duration) -> Result<Session, ScanError> {
        let deadline = deadline_after(timeout);
        let stream = match addr {
            ScanAddr::Unix(path) => Stream::Unix(connect_unix(path, deadline)?),
            ScanAddr::Tcp(s) => {
                let (host, port) = split_host_port(s).map_err(ScanError)?;
                Stream::Tcp(connect_tcp(&host, port, deadline)?)
            }
        };
        Ok(Session { stream, deadline, timeout })
    }

    /// Connects to `host`:`port` (the rspamd URL's parts).
    pub(crate) fn connect_host(host: &Host, port: u16, timeout: Duration) -> Result<Session, ScanError> {
        let deadline = deadline_after(timeout);
        Ok(Session { stream: Stream::Tcp(connect_tcp(host, port, deadline)?), deadline, timeout })
    }

    fn left(&self) -> io::Result<Duration> {
        match self.deadline.checked_duration_since(Instant::now()) {
            Some(d) if !d.is_zero() => Ok(d),
            _ => Err(io::Error::new(io::ErrorKind::TimedOut, "deadline passed")),
        }
    }

    /// Tells the peer that the request is complete (half-close).
    pub(crate) fn finish_writing(&self) {
        // Best effort: a peer that already closed gives its reply or an error on the next read.
        let _ = match &self.stream {
            Stream::Unix(s) => s.shutdown(Shutdown::Write),
            Stream::Tcp(s) => s.shutdown(Shutdown::Write),
        };
    }

    /// Describes an I/O error on this connection for the log, naming a timeout as one.
    pub(crate) fn describe(&self, what: &str, e: &io::Error) -> String {
        describe(what, e, self.timeout)
    }

    /// Reads until EOF or until `complete` says the reply is whole, at most `max` bytes.
    pub(crate) fn read_reply(
        &mut self,
        max: usize,
        complete: &dyn Fn(&[u8]) -> bool,
    ) -> Result<Vec<u8>, ScanError> {
        let mut reply = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            let n = match self.read(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // A reset after a complete reply (a peer closing on unread input) loses nothing.
                Err(_) if complete(&reply) => return Ok(reply),
                Err(e) => return Err(ScanError(self.describe("reading the reply", &e))),
            };
            if n == 0 {
                return Ok(reply);
            }
            if reply.len() + n > max {
                return Err(ScanError(format!("reply longer than {max} bytes")));
            }
            reply.extend_from_slice(&buf[..n]);
            if complete(&reply) {
                return Ok(reply);
            }
        }
    }
}

pub(crate) fn describe(what: &str, e: &io::Error, timeout: Duration) -> String {
    match e.kind() {
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => {
            format!("{what}: timed out ({} ms deadline)", timeout.as_millis())
        }
        _ => format!("{what}: {e}"),
    }
}

impl Read for Session {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.left()?;
        match &mut self.stream {
            Stream::Unix(s) => {
                s.set_read_timeout(Some(left))?;
                s.read(buf)
            }
            Stream::Tcp(s) => {
                s.set_read_timeout(Some(left))?;
                s.read(buf)
            }
        }
    }
}

impl Write for Session {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let left = self.left()?;
        match &mut self.stream {
            Stream::Unix(s) => {
                s.set_write_timeout(Some(left))?;
                s.write(buf)
            }
            Stream::Tcp(s) => {
                s.set_write_timeout(Some(left))?;
                s.write(buf)
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Now plus `timeout`, or a day from now for a timeout too large to add.
fn deadline_after(timeout: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout).unwrap_or(now + Duration::from_secs(86_400))
}

fn time_left(deadline: Instant) -> Option<Duration> {
    deadline.checked_duration_since(Instant::now()).filter(|d| !d.is_zero())
}

fn connect_unix(path: &std::path::Path, deadline: Instant) -> Result<UnixStream, ScanError> {
    let fail = |e: io::Error| ScanError(format!("connecting to unix:{}: {e}", path.display()));
    let left = time_left(deadline).ok_or_else(|| ScanError("deadline passed before connecting".into()))?;
    let addr = socket2::SockAddr::unix(path).map_err(fail)?;
    let sock = socket2::Socket::new(socket2::Domain::UNIX, socket2::Type::STREAM, None).map_err(fail)?;
    sock.connect_timeout(&addr, left)
        .map_err(|e| ScanError(describe(&format!("connecting to unix:{}", path.display()), &e, left)))?;
    sock.set_nonblocking(false).map_err(fail)?;
    Ok(UnixStream::from(sock))
}

fn connect_tcp(host: &Host, port: u16, deadline: Instant) -> Result<TcpStream, ScanError> {
    let addrs = match host {
        Host::Ip(ip) => vec![SocketAddr::new(*ip, port)],
        Host::Name(name) => resolve(name, port, deadline)?,
    };
    let mut last = ScanError(format!("{}: no address", show(host, port)));
    for a in addrs {
        let Some(left) = time_left(deadline) else {
            return Err(ScanError(format!("connecting to {}: timed out", show(host, port))));
        };
        match TcpStream::connect_timeout(&a, left) {
            Ok(s) => {
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Err(e) => last = ScanError(describe(&format!("connecting to {a}"), &e, left)),
        }
    }
    Err(last)
}

fn show(host: &Host, port: u16) -> String {
    match host {
        Host::Ip(IpAddr::V6(ip)) => format!("[{ip}]:{port}"),
        Host::Ip(ip) => format!("{ip}:{port}"),
        Host::Name(n) => format!("{n}:{port}"),
    }
}

/// Resolves a scanner's host name (local configuration, typically `localhost` or a container's
/// name) with the system resolver, on a thread so that the deadline holds even if it hangs.
fn resolve(name: &str, port: u16, deadline: Instant) -> Result<Vec<SocketAddr>, ScanError> {
    let (tx, rx) = mpsc::channel();
    let query = (name.to_string(), port);
    std::thread::Builder::new()
        .name("scan-resolve".into())
        .spawn(move || {
            let r = query.to_socket_addrs().map(|a| a.collect::<Vec<_>>());
            let _ = tx.send(r);
        })
        .map_err(|e| ScanError(format!("resolving {name}: {e}")))?;
    let left = time_left(deadline).unwrap_or(Duration::ZERO);
    match rx.recv_timeout(left) {
        Ok(Ok(a)) if !a.is_empty() => Ok(a),
        Ok(Ok(_)) => Err(ScanError(format!("resolving {name}: no address"))),
        Ok(Err(e)) => Err(ScanError(format!("resolving {name}: {e}"))),
        Err(_) => Err(ScanError(format!("resolving {name}: timed out"))),
    }
}
