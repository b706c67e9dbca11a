//! A session's stream, plain or TLS over any [`Transport`]: reads that never wait (a connection
//! that must wait is parked by its driver, server/drivers/io.rs), writes that wait for a slow
//! reader up to the socket's write timeout, what a session learns when TLS starts, and reply
//! flushing.

use std::io::{self, Read, Write};
use std::net::TcpStream;

pub use crate::transport::Transport;

/// A session's connection: plain, or TLS over it (see [`Transport`] for what carries it: TCP, a
/// unix socket such as the one a mail process's relayed session runs over, or a pipe pair).
pub enum Stream {
    Plain(Transport),
    Tls(Box<crate::tls::TlsStream>),
    /// In the middle of a STARTTLS upgrade, or after a failed one.
    Closed,
}

impl Stream {
    /// The TCP socket underneath, if any.
    pub fn tcp(&self) -> Option<&TcpStream> {
        match self {
            Stream::Plain(t) => t.tcp(),
            Stream::Tls(t) => t.transport().tcp(),
            Stream::Closed => None,
        }
    }

    /// The descriptor to wait on for input, if any.
    pub fn fd(&self) -> Option<std::os::fd::RawFd> {
        match self {
            Stream::Plain(t) => Some(t.fd()),
            Stream::Tls(t) => Some(t.transport().fd()),
            Stream::Closed => None,
        }
    }

    /// Reads what has arrived without waiting (`WouldBlock` when nothing has; Ok(0) at the end).
    pub fn read_now(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(t) => t.read_now(buf),
            Stream::Tls(t) => t.read_now(buf),
            Stream::Closed => Ok(0),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(t) => t.read(buf),
            Stream::Tls(t) => t.read(buf),
            Stream::Closed => Ok(0),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(t) => t.write(buf),
            Stream::Tls(t) => t.write(buf),
            Stream::Closed => Err(io::Error::from(io::ErrorKind::NotConnected)),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(t) => t.flush(),
            Stream::Tls(t) => t.flush(),
            Stream::Closed => Ok(()),
        }
    }
}

/// What a session learns when TLS starts: the protocol and cipher, and the
/// channel bindings SCRAM-PLUS may use. Logs the event.
pub fn tls_details(stream: &Stream, sid: &str) -> Option<(String, Vec<crate::auth::sasl::ChannelBinding>)> {
    let Stream::Tls(t) = stream else { return None };
    let description = t.describe();
    log::info!("session={sid} event=tls {description}");
    let bindings = ["tls-exporter", "tls-server-end-point"]
        .into_iter()
        .filter_map(|kind| {
            t.channel_binding(kind).map(|data| crate::auth::sasl::ChannelBinding { kind, data })
        })
        .collect();
    Some((description, bindings))
}

/// Waits up to `wait` for input on `fd` (false on timeout or EINTR).
pub fn wait_readable(fd: std::os::fd::RawFd, wait: std::time::Duration) -> io::Result<bool> {
    let mut fds = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
    // SAFETY: one valid pollfd for the duration of the call.
    let n = unsafe { libc::poll(&mut fds, 1, wait.as_millis().min(i32::MAX as u128) as i32) };
    match n {
        n if n > 0 => Ok(true),
        0 => Ok(false),
        _ => {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted { Ok(false) } else { Err(e) }
        }
    }
}
