//! The byte stream under a session, before any TLS: a TCP socket (the daemon's listeners, inetd,
//! tcpserver, systemd `Accept=yes`), a unix stream socket (socat's EXEC socketpair, s6-ipcserver;
//! a mail process's relayed session), or two descriptors (a pipe on 0 and 1, to try a protocol by
//! hand). Each keeps the same read and write timeouts, so a session bounds its waits whatever it
//! runs over.

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::time::Duration;

pub enum Transport {
    Tcp(TcpStream),
    Unix(UnixStream),
    /// Input and output on separate descriptors, with timeouts kept here (pipes have none).
    Pipe {
        input: File,
        output: File,
        read_timeout: Option<Duration>,
        write_timeout: Option<Duration>,
    },
}

impl Transport {
    /// The TCP socket, if this is one.
    pub fn tcp(&self) -> Option<&TcpStream> {
        match self {
            Transport::Tcp(t) => Some(t),
            _ => None,
        }
    }

    /// The descriptor input arrives on.
    pub fn fd(&self) -> RawFd {
        match self {
            Transport::Tcp(t) => t.as_raw_fd(),
            Transport::Unix(u) => u.as_raw_fd(),
            Transport::Pipe { input, .. } => input.as_raw_fd(),
        }
    }

    pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
        match self {
            Transport::Tcp(t) => t.read_timeout(),
            Transport::Unix(u) => u.read_timeout(),
            Transport::Pipe { read_timeout, .. } => Ok(*read_timeout),
        }
    }

    pub fn set_read_timeout(&mut self, t: Option<Duration>) -> io::Result<()> {
        match self {
            Transport::Tcp(s) => s.set_read_timeout(t),
            Transport::Unix(u) => u.set_read_timeout(t),
            Transport::Pipe { read_timeout, .. } => {
                *read_timeout = t;
                Ok(())
            }
        }
    }

    pub fn set_write_timeout(&mut self, t: Option<Duration>) -> io::Result<()> {
        match self {
            Transport::Tcp(s) => s.set_write_timeout(t),
            Transport::Unix(u) => u.set_write_timeout(t),
            Transport::Pipe { write_timeout, .. } => {
                *write_timeout = t;
                Ok(())
            }
        }
    }
}

/// `recv` without waiting (MSG_DONTWAIT): the socket stays blocking for the writes and for the
/// sessions that still wait in a thread, while a parked connection's reads never block a worker.
fn recv_now(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        // SAFETY: buf is valid for writes of buf.len() bytes for the duration of the call.
        let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

impl Transport {
    /// Reads what has arrived, without waiting: `WouldBlock` when nothing has.
    pub fn read_now(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Transport::Tcp(_) | Transport::Unix(_) => recv_now(self.fd(), buf),
            Transport::Pipe { input, .. } => {
                wait(input.as_raw_fd(), libc::POLLIN, Some(Duration::ZERO))?;
                input.read(buf)
            }
        }
    }

    /// A reader whose reads never wait (for rustls' `read_tls`).
    pub fn now(&mut self) -> ReadNow<'_> {
        ReadNow(self)
    }
}

/// See [`Transport::now`].
pub struct ReadNow<'a>(&'a mut Transport);

impl Read for ReadNow<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read_now(buf)
    }
}

/// Waits for `events` on `fd` up to `limit`; TimedOut (as a socket's timeout reports WouldBlock) when
/// nothing came.
fn wait(fd: RawFd, events: libc::c_short, limit: Option<Duration>) -> io::Result<()> {
    let Some(limit) = limit else { return Ok(()) };
    loop {
        let mut p = libc::pollfd { fd, events, revents: 0 };
        let ms = limit.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: one valid pollfd for the duration of the call.
        match unsafe { libc::poll(&mut p, 1, ms) } {
            0 => return Err(io::Error::new(io::ErrorKind::WouldBlock, "timed out")),
            n if n > 0 => return Ok(()),
            _ => {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }
}

impl Read for Transport {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Transport::Tcp(t) => t.read(buf),
            Transport::Unix(u) => u.read(buf),
            Transport::Pipe { input, read_timeout, .. } => {
                wait(input.as_raw_fd(), libc::POLLIN, *read_timeout)?;
                input.read(buf)
            }
        }
    }
}

impl Write for Transport {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Transport::Tcp(t) => t.write(buf),
            Transport::Unix(u) => u.write(buf),
            Transport::Pipe { output, write_timeout, .. } => {
                wait(output.as_raw_fd(), libc::POLLOUT, *write_timeout)?;
                output.write(buf)
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Transport::Tcp(t) => t.flush(),
            Transport::Unix(u) => u.flush(),
            Transport::Pipe { output, .. } => output.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::{FromRawFd, OwnedFd};

    fn pipe() -> (File, File) {
        let mut fds = [0; 2];
        // SAFETY: pipe2 fills two descriptors, owned here from now on.
        assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
        unsafe { (File::from(OwnedFd::from_raw_fd(fds[0])), File::from(OwnedFd::from_raw_fd(fds[1]))) }
    }

    #[test]
    fn a_pipe_pair_reads_writes_and_times_out() {
        let (in_r, mut in_w) = pipe();
        let (mut out_r, out_w) = pipe();
        let mut t = Transport::Pipe { input: in_r, output: out_w, read_timeout: None, write_timeout: None };
        t.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        let e = t.read(&mut [0u8; 4]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock, "a silent client times out like a socket");
        in_w.write_all(b"HELO").unwrap();
        let mut buf = [0u8; 4];
        t.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"HELO");
        t.write_all(b"250 ok\r\n").unwrap();
        let mut got = [0u8; 8];
        out_r.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"250 ok\r\n");
        assert!(t.tcp().is_none());
    }
}
