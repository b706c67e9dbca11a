//! The server's half of a session that runs in a mail process (mailproc.rs): it keeps the client's
//! connection (and its TLS) and copies plaintext both ways between the client and the mail
//! process's socket until either side ends, as Dovecot's login processes proxy for imap and pop3.
//! The mail process's output is always drained, so neither side can block the other: bytes for the
//! mail process wait in one bounded buffer, and the client is read only when that buffer is empty.

use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use super::Slot;
use crate::netio::{LineReader, Stream};

const CHUNK: usize = 16 * 1024;
/// How often the relay looks at the server's shutdown flag.
const TICK: Duration = Duration::from_secs(1);

/// Relays until the client or the mail process closes, or the server shuts down. What the client
/// pipelined behind its login (already in `client`'s buffer) goes to the mail process first.
pub fn relay(client: &mut LineReader<Stream>, mut mail: UnixStream, slot: &Slot) -> io::Result<()> {
    let mut to_mail = client.buffered().to_vec();
    client.consume(to_mail.len());
    let cfd = client.get_ref().fd().ok_or_else(|| io::Error::other("no client socket"))?;
    let mfd = mail.as_raw_fd();
    mail.set_nonblocking(true)?;
    let mut buf = vec![0u8; CHUNK];
    let mut sent = 0; // of to_mail
    loop {
        if slot.shutting_down() {
            return Ok(());
        }
        let pending = client.get_mut().has_pending();
        let mut fds = [
            libc::pollfd { fd: cfd, events: if to_mail.is_empty() { libc::POLLIN } else { 0 }, revents: 0 },
            libc::pollfd {
                fd: mfd,
                events: libc::POLLIN | if to_mail.is_empty() { 0 } else { libc::POLLOUT },
                revents: 0,
            },
        ];
        let wait = if pending && to_mail.is_empty() { 0 } else { TICK.as_millis() as i32 };
        // SAFETY: two valid pollfds for the duration of the call.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, wait) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        let ready = |i: usize, ev: libc::c_short| fds[i].revents & (ev | libc::POLLHUP | libc::POLLERR) != 0;
        // The mail process's output first: it must never wait for us.
        if ready(1, libc::POLLIN) {
            match mail.read(&mut buf) {
                Ok(0) => return client.get_mut().flush(),
                Ok(n) => {
                    let c = client.get_mut();
                    c.write_all(&buf[..n])?;
                    c.flush()?;
                }
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => {}
                Err(e) => return Err(e),
            }
        }
        if !to_mail.is_empty() && ready(1, libc::POLLOUT) {
            match mail.write(&to_mail[sent..]) {
                Ok(n) => {
                    sent += n;
                    if sent == to_mail.len() {
                        to_mail.clear();
                        sent = 0;
                    }
                }
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => {}
                Err(e) => return Err(e),
            }
        }
        if to_mail.is_empty() && (ready(0, libc::POLLIN) || pending) {
            match client.get_mut().read(&mut buf) {
                Ok(0) => {
                    let _ = mail.shutdown(std::net::Shutdown::Write);
                    return Ok(());
                }
                Ok(n) => to_mail.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}
