//! The server's half of a session that runs in a mail process (server/mailproc.rs): it keeps the
//! client's connection (and its TLS) and copies plaintext both ways between the client and the mail
//! process's socket, as Dovecot's login processes proxy for imap and pop3. Parked in the event
//! loop like any other connection while neither side has anything to say. The mail process's
//! output is always taken first, so neither side can block the other: bytes for the mail process
//! wait in one bounded buffer, and the client is read only when that buffer is empty.
//! IMAP COMPRESS (RFC 4978) belongs to the mail process, where the session runs: it can only come
//! after the login that started the relay, so the relay copies the compressed octets as any others
//! (inside the client's TLS, which stays here).

use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;

use super::Wait;
use super::io::{Bytes, Io};

const CHUNK: usize = 16 * 1024;

pub struct Relay {
    mail: UnixStream,
    to_mail: Vec<u8>,
    sent: usize,
}

impl Relay {
    /// Starts relaying; what the client pipelined behind its login (in `io`'s buffer) goes first.
    pub fn new(mail: UnixStream, io: &mut Io) -> io::Result<Relay> {
        mail.set_nonblocking(true)?;
        let to_mail = io.buffered().to_vec();
        io.consume(to_mail.len());
        Ok(Relay { mail, to_mail, sent: 0 })
    }

    /// Copies what can be copied now: Some(what to wait for), or None when either side has ended.
    pub fn step(&mut self, io: &mut Io) -> io::Result<Option<Wait>> {
        let mut buf = vec![0u8; CHUNK];
        loop {
            match self.mail.read(&mut buf) {
                Ok(0) => return Ok(None),
                Ok(n) => {
                    let (_, mut client) = io.client();
                    client.write_all(buf.get(..n).unwrap_or_default())?;
                    client.flush()?;
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            let mfd = self.mail.as_raw_fd();
            if self.sent < self.to_mail.len() {
                match self.mail.write(self.to_mail.get(self.sent..).unwrap_or_default()) {
                    Ok(n) => {
                        self.sent += n;
                        if self.sent >= self.to_mail.len() {
                            self.to_mail.clear();
                            self.sent = 0;
                        }
                        continue;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        return Ok(Some(Wait { other: Some((mfd, true)), ..Wait::default() }));
                    }
                    Err(e) => return Err(e),
                }
            }
            match io.bytes()? {
                Bytes::Data(d) => {
                    self.to_mail.extend_from_slice(d);
                    let n = d.len();
                    io.consume(n);
                }
                Bytes::Eof => {
                    let _ = self.mail.shutdown(std::net::Shutdown::Write);
                    return Ok(None);
                }
                Bytes::Pending => {
                    if self.to_mail.capacity() > CHUNK {
                        self.to_mail = Vec::new();
                    }
                    return Ok(Some(Wait { read: true, other: Some((mfd, false)), ..Wait::default() }));
                }
            }
        }
    }
}
