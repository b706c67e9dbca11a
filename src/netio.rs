//! Blocking network I/O for sessions: a bounded line reader that never grows
//! past its buffer (RFC 5321 4.5.3.1 line limits), access to the bytes it has
//! buffered (for DATA/BDAT and for the RFC 2920 "flush when no input is
//! pending" rule), and a reply buffer flushed in one write.

use std::io::{self, Read, Write};
use std::net::TcpStream;

pub use crate::transport::Transport;

/// Size of a session's input buffer. Command lines longer than the caller's
/// limit are consumed and reported, never stored.
pub const BUF_SIZE: usize = 8192;

/// One result of [`LineReader::read_line`].
#[derive(Debug, PartialEq, Eq)]
pub enum Line<'a> {
    /// A complete line without its CRLF (or bare LF).
    Line(&'a [u8]),
    /// A line longer than the limit; it has been read and thrown away up to its end.
    TooLong,
    /// The peer closed the connection (a partial last line is dropped).
    Eof,
}

/// A buffered reader over a blocking stream with a fixed-size buffer.
pub struct LineReader<R> {
    inner: R,
    buf: Box<[u8]>,
    start: usize,
    end: usize,
}

impl<R: Read> LineReader<R> {
    pub fn new(inner: R) -> Self {
        LineReader { inner, buf: vec![0; BUF_SIZE].into_boxed_slice(), start: 0, end: 0 }
    }

    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    /// The stream, dropping whatever was buffered and not consumed (as STARTTLS
    /// must: RFC 3207 4.2, CVE-2011-0411).
    pub fn into_inner(self) -> R {
        self.inner
    }

    /// Bytes already read from the peer and not yet consumed.
    pub fn buffered(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Marks `n` buffered bytes as used.
    pub fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Reads more bytes into the buffer; Ok(0) means end of stream.
    pub fn fill(&mut self) -> io::Result<usize> {
        if self.start > 0 && self.end == self.buf.len() {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            return Ok(self.buf.len() - self.start); // full: caller must consume first
        }
        loop {
            match self.inner.read(&mut self.buf[self.end..]) {
                Ok(n) => {
                    self.end += n;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads one line of at most `max` octets including its line end.
    /// A line ends at LF; a CR before it is removed.
    pub fn read_line(&mut self, max: usize) -> io::Result<Line<'_>> {
        let max = max.min(self.buf.len());
        let mut scanned = 0;
        loop {
            let avail = &self.buf[self.start..self.end];
            if let Some(i) = avail[scanned..].iter().position(|&b| b == b'\n') {
                let len = scanned + i + 1;
                if len > max {
                    self.consume(len);
                    return Ok(Line::TooLong);
                }
                let line_start = self.start;
                self.consume_keep(len);
                let mut line = &self.buf[line_start..line_start + len - 1];
                if line.last() == Some(&b'\r') {
                    line = &line[..line.len() - 1];
                }
                return Ok(Line::Line(line));
            }
            scanned = avail.len();
            if scanned >= max {
                return self.discard_line().map(|eof| if eof { Line::Eof } else { Line::TooLong });
            }
            if self.start > 0 && self.end == self.buf.len() {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            if self.fill()? == 0 {
                return Ok(Line::Eof);
            }
        }
    }

    /// Like consume, but keeps the bytes in place so a returned slice stays valid
    /// until the next call.
    fn consume_keep(&mut self, n: usize) {
        self.start += n;
    }

    /// Throws input away up to and including the next LF. Returns true on EOF.
    fn discard_line(&mut self) -> io::Result<bool> {
        loop {
            let avail = &self.buf[self.start..self.end];
            if let Some(i) = avail.iter().position(|&b| b == b'\n') {
                self.consume(i + 1);
                return Ok(false);
            }
            self.start = 0;
            self.end = 0;
            if self.fill()? == 0 {
                return Ok(true);
            }
        }
    }
}

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

    /// Decrypted bytes that can be read without touching the socket (TLS buffers whole records).
    pub fn has_pending(&mut self) -> bool {
        match self {
            Stream::Tls(t) => t.has_pending(),
            _ => false,
        }
    }

    /// Starts TLS as the server over a plain stream (STARTTLS or implicit TLS).
    pub fn start_tls(self, cfg: std::sync::Arc<rustls::ServerConfig>) -> io::Result<Stream> {
        match self {
            Stream::Plain(t) => Ok(Stream::Tls(Box::new(crate::tls::TlsStream::accept(t, cfg)?))),
            _ => Err(io::Error::other("TLS is already active")),
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

/// Readies an accepted socket for a blocking session: timeouts, no Nagle
/// delay (replies are written whole), and for implicit TLS (RFC 8314 3.3)
/// the handshake before any greeting. None when the connection is unusable
/// (logged).
pub fn open_session_stream(
    mut transport: Transport,
    timeout: std::time::Duration,
    implicit_tls: Option<std::sync::Arc<rustls::ServerConfig>>,
    sid: &str,
) -> Option<Stream> {
    let t = Some(timeout);
    if let Some(tcp) = transport.tcp() {
        if tcp.set_nonblocking(false).is_err() {
            return None;
        }
        let _ = tcp.set_nodelay(true);
    }
    if transport.set_read_timeout(t).and(transport.set_write_timeout(t)).is_err() {
        return None;
    }
    let stream = Stream::Plain(transport);
    match implicit_tls {
        None => Some(stream),
        Some(cfg) => match stream.start_tls(cfg) {
            Ok(s) => Some(s),
            Err(e) => {
                log::info!("session={sid} event=tls_failed error=\"{e}\"");
                None
            }
        },
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

/// Writes the whole buffer and clears it.
pub fn flush_out<W: Write>(w: &mut W, out: &mut Vec<u8>) -> io::Result<()> {
    if !out.is_empty() {
        w.write_all(out)?;
        w.flush()?;
        out.clear();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that returns its input in fixed-size pieces.
    struct Trickle<'a>(&'a [u8], usize);
    impl Read for Trickle<'_> {
        fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
            let n = self.0.len().min(self.1).min(b.len());
            b[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    fn lines(input: &[u8], piece: usize, max: usize) -> Vec<String> {
        let mut r = LineReader::new(Trickle(input, piece));
        let mut out = Vec::new();
        loop {
            match r.read_line(max).unwrap() {
                Line::Line(l) => out.push(String::from_utf8_lossy(l).into_owned()),
                Line::TooLong => out.push("<too long>".into()),
                Line::Eof => return out,
            }
        }
    }

    #[test]
    fn splits_lines_at_any_piece_size() {
        let input = b"EHLO a\r\nMAIL FROM:<x@y>\nNOOP\r\npartial";
        for piece in 1..40 {
            assert_eq!(lines(input, piece, 512), ["EHLO a", "MAIL FROM:<x@y>", "NOOP"], "piece {piece}");
        }
    }

    #[test]
    fn long_lines_are_reported_and_skipped() {
        let mut input = b"NOOP\r\n".to_vec();
        input.extend(std::iter::repeat_n(b'A', 20_000));
        input.extend(b"\r\nQUIT\r\n");
        for piece in [1, 7, 512, 9000] {
            assert_eq!(lines(&input, piece, 512), ["NOOP", "<too long>", "QUIT"], "piece {piece}");
        }
        // 510 octets + CRLF = 512 is allowed, one more is not.
        let ok = format!("{}\r\n", "B".repeat(510));
        let bad = format!("{}\r\n", "B".repeat(511));
        assert_eq!(lines(ok.as_bytes(), 100, 512), ["B".repeat(510)]);
        assert_eq!(lines(bad.as_bytes(), 100, 512), ["<too long>"]);
    }

    #[test]
    fn buffered_bytes_are_visible_after_a_line() {
        let mut r = LineReader::new(Trickle(b"DATA\r\nSubject: x\r\n.\r\n", 100));
        assert_eq!(r.read_line(512).unwrap(), Line::Line(b"DATA"));
        assert_eq!(r.buffered(), b"Subject: x\r\n.\r\n");
        r.consume(3);
        assert_eq!(r.buffered(), b"ject: x\r\n.\r\n");
    }
}
