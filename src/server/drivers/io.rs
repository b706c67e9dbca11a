//! A connection's bytes while it moves between the event loop and the workers: the stream (plain or
//! TLS), the input read so far and the replies not yet sent. Reads never wait: when a command line
//! (or the next piece of a message) has not arrived, the caller parks the connection instead of
//! holding its worker. A line must be complete within the caller's deadline counted from its first
//! byte ([`Io::started`]), so a client dripping a byte at a time cannot hold a session open.
//! Writes wait for the client up to the socket's write timeout; a write that finds the client's
//! socket full tells the worker pool first ([`ClientWriter`]), so a slow reader holds a spare
//! thread, not one of the `workers`. Parked with nothing buffered, a
//! connection keeps no buffer at all ([`Io::shrink`]). RFC 5321 4.5.3.1 (line limits).
//! Once an IMAP session turns on COMPRESS=DEFLATE ([`Io::start_compress`], RFC 4978), input is
//! inflated a read's worth at a time into the same buffer (so the same line and literal limits
//! hold) and every write is compressed and sync-flushed; the compressor is dropped whenever the
//! connection parks (src/compress.rs).

use std::io::{self, Write};
use std::sync::Arc;
use std::time::Instant;

use crate::compress::{Deflater, Inflater};
use crate::netio::Stream;
use crate::server::pool::{BlockGuard, Blocker};

/// Octets of a too-long line kept for its answer ([`Io::too_long_head`]).
const TOO_LONG_HEAD: usize = 64;

/// How much one read takes from the stream.
const READ_CHUNK: usize = 8192;

/// What [`Io::line`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Input<'a> {
    /// A complete line without its CRLF (or bare LF).
    Line(&'a [u8]),
    /// A line longer than the limit: read and thrown away up to its end.
    TooLong,
    /// The client closed the connection (a partial last line is dropped).
    Eof,
    /// The rest of the line has not arrived yet: park.
    Pending,
}

/// What [`Io::bytes`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Bytes<'a> {
    Data(&'a [u8]),
    Eof,
    Pending,
}

pub struct Io {
    pub stream: Stream,
    buf: Vec<u8>,
    start: usize,
    /// Replies waiting for [`Io::flush`].
    pub out: Vec<u8>,
    /// Throwing a too-long line away up to its LF.
    discarding: bool,
    /// The first octets of the last line thrown away as too long (an IMAP tag to answer).
    pub too_long_head: Vec<u8>,
    /// When the first byte of the line being assembled arrived.
    pub started: Option<Instant>,
    /// The pool of the worker running the connection now (set at each run, cleared at park).
    pub blocker: Option<Arc<Blocker>>,
    /// COMPRESS=DEFLATE's two streams, once it is on (RFC 4978).
    deflate: Option<Box<(Inflater, Deflater)>>,
}

/// Writes to the client; when its socket is full (the client is not reading) the pool is told
/// once, before the write waits, and told again when the writer is dropped. With COMPRESS on,
/// each write is compressed and flushed whole.
pub struct ClientWriter<'a> {
    raw: RawWriter<'a>,
    deflate: Option<&'a mut Deflater>,
}

/// The stream itself, the pool told before a write that would wait.
struct RawWriter<'a> {
    stream: &'a mut Stream,
    blocker: Option<&'a Blocker>,
    waiting: Option<BlockGuard<'a>>,
}

impl<'a> ClientWriter<'a> {
    pub fn new(stream: &'a mut Stream, blocker: Option<&'a Blocker>) -> ClientWriter<'a> {
        ClientWriter { raw: RawWriter { stream, blocker, waiting: None }, deflate: None }
    }
}

impl<'a> RawWriter<'a> {
    fn before_write(&mut self) {
        if self.waiting.is_some() {
            return;
        }
        if let (Some(b), Some(fd)) = (self.blocker, self.stream.fd())
            && !writable_now(fd)
        {
            self.waiting = Some(b.enter());
        }
    }
}

impl Write for ClientWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.deflate.as_deref_mut() {
            Some(d) => {
                d.write_all(buf, &mut self.raw)?;
                Ok(buf.len())
            }
            None => self.raw.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.raw.flush()
    }
}

impl Write for RawWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.before_write();
        self.stream.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.before_write();
        self.stream.flush()
    }
}

/// Whether `fd` takes a write now without waiting.
fn writable_now(fd: std::os::fd::RawFd) -> bool {
    let mut p = libc::pollfd { fd, events: libc::POLLOUT, revents: 0 };
    // SAFETY: one valid pollfd for the duration of the call.
    unsafe { libc::poll(&mut p, 1, 0) == 1 }
}

impl Io {
    pub fn new(stream: Stream) -> Io {
        Io {
            stream,
            buf: Vec::new(),
            start: 0,
            out: Vec::new(),
            discarding: false,
            too_long_head: Vec::new(),
            started: None,
            blocker: None,
            deflate: None,
        }
    }

    /// RFC 4978 3: compression starts for both directions now (the `OK` was flushed as it was).
    /// What the client sent after the COMPRESS command's line is compressed already.
    pub fn start_compress(&mut self) {
        let mut inflater = Inflater::new();
        inflater.push(self.buffered());
        self.buf.clear();
        self.start = 0;
        self.deflate = Some(Box::new((inflater, Deflater::default())));
    }

    /// Whether COMPRESS is on.
    pub fn compressing(&self) -> bool {
        self.deflate.is_some()
    }

    /// Input read and not yet consumed.
    pub fn buffered(&self) -> &[u8] {
        self.buf.get(self.start..).unwrap_or_default()
    }

    /// Marks `n` buffered octets as used.
    pub fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.buf.len());
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
    }

    /// Throws away what was buffered (STARTTLS: what was pipelined after it goes with the plain
    /// stream, RFC 3207 4.2, CVE-2011-0411).
    pub fn discard_input(&mut self) {
        self.buf.clear();
        self.start = 0;
        self.started = None;
        self.discarding = false;
    }

    /// Reads once what has arrived: Ok(true) got bytes, Ok(false) end of stream, `WouldBlock` none.
    fn fill_now(&mut self) -> io::Result<bool> {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        let old = self.buf.len();
        self.buf.resize(old + READ_CHUNK, 0);
        let Io { stream, buf, deflate, .. } = self;
        let got = loop {
            let room = buf.get_mut(old..).unwrap_or_default();
            let r = match deflate.as_deref_mut() {
                // At most READ_CHUNK inflated octets a read: a bomb meets the same limits as plain input.
                Some((z, _)) => z.read(room, |b| stream.read_now(b)),
                None => stream.read_now(room),
            };
            match r {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => break r,
            }
        };
        self.buf.truncate(old + *got.as_ref().unwrap_or(&0));
        got.map(|n| n > 0)
    }

    /// The next line of at most `max` octets (line end included), without waiting.
    pub fn line(&mut self, max: usize) -> io::Result<Input<'_>> {
        loop {
            let avail = self.buffered();
            let lf = avail.iter().position(|&b| b == b'\n');
            if self.discarding {
                match lf {
                    Some(i) => {
                        self.consume(i + 1);
                        self.discarding = false;
                        self.started = (!self.buffered().is_empty()).then(Instant::now);
                        return Ok(Input::TooLong);
                    }
                    None => self.consume(avail.len()),
                }
            } else if let Some(i) = lf {
                let len = i + 1;
                if len > max {
                    self.too_long_head = avail.get(..TOO_LONG_HEAD.min(len)).unwrap_or_default().to_vec();
                    self.consume(len);
                    self.started = (!self.buffered().is_empty()).then(Instant::now);
                    return Ok(Input::TooLong);
                }
                let at = self.start;
                // The line stays in place until the next call; the next partial line, if any, began now.
                self.start += len;
                self.started = (self.start < self.buf.len()).then(Instant::now);
                let mut line = self.buf.get(at..at + len - 1).unwrap_or_default();
                if let [rest @ .., b'\r'] = line {
                    line = rest;
                }
                return Ok(Input::Line(line));
            } else if avail.len() >= max {
                let n = avail.len();
                self.too_long_head = avail.get(..TOO_LONG_HEAD.min(n)).unwrap_or_default().to_vec();
                self.discarding = true;
                self.consume(n);
                continue;
            }
            match self.fill_now() {
                Ok(true) => {
                    self.started.get_or_insert_with(Instant::now);
                }
                Ok(false) => return Ok(Input::Eof),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Input::Pending),
                Err(e) => return Err(e),
            }
        }
    }

    /// Whatever input is there (a message's octets), without waiting; the caller consumes what it uses.
    pub fn bytes(&mut self) -> io::Result<Bytes<'_>> {
        if self.buffered().is_empty() {
            match self.fill_now() {
                Ok(true) => {}
                Ok(false) => return Ok(Bytes::Eof),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Bytes::Pending),
                Err(e) => return Err(e),
            }
        }
        Ok(Bytes::Data(self.buffered()))
    }

    /// Reads once more what has arrived, after what is buffered (a request not complete yet).
    pub fn more(&mut self) -> io::Result<Bytes<'_>> {
        match self.fill_now() {
            Ok(true) => Ok(Bytes::Data(self.buffered())),
            Ok(false) => Ok(Bytes::Eof),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(Bytes::Pending),
            Err(e) => Err(e),
        }
    }

    /// Whether the client's socket takes a write now without waiting.
    pub fn writable_now(&self) -> bool {
        self.stream.fd().is_some_and(writable_now)
    }

    /// Sends the replies waiting in `out`.
    pub fn flush(&mut self) -> io::Result<()> {
        if !self.out.is_empty() {
            let (out, mut w) = self.client();
            w.write_all(out)?;
            w.flush()?;
            drop(w);
            out.clear();
        }
        Ok(())
    }

    /// A writer to the client (see [`ClientWriter`]), and the reply buffer beside it.
    pub fn client(&mut self) -> (&mut Vec<u8>, ClientWriter<'_>) {
        let mut w = ClientWriter::new(&mut self.stream, self.blocker.as_deref());
        w.deflate = self.deflate.as_deref_mut().map(|(_, d)| d);
        (&mut self.out, w)
    }

    /// Starts TLS as the server (STARTTLS, or implicit TLS before the greeting, RFC 8314 3.3). What
    /// the client sent before it is thrown away (RFC 3207 4.2, RFC 2595 3.1, CVE-2011-0411); the
    /// handshake then runs in [`Io::handshake`] steps as the client's records arrive.
    pub fn start_tls(&mut self, cfg: std::sync::Arc<rustls::ServerConfig>) -> io::Result<()> {
        let Stream::Plain(t) = std::mem::replace(&mut self.stream, Stream::Closed) else {
            return Err(io::Error::other("TLS is already active"));
        };
        self.discard_input();
        self.stream = Stream::Tls(Box::new(crate::tls::TlsStream::start(t, cfg)?));
        Ok(())
    }

    /// Advances the TLS handshake: Ok(true) done, Ok(false) waiting for the client, Err failed.
    pub fn handshake(&mut self) -> io::Result<bool> {
        let Stream::Tls(t) = &mut self.stream else { return Err(io::Error::other("no TLS to start")) };
        match t.handshake_step() {
            Ok(done) => Ok(done),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Gives back the buffers' memory while the connection waits with nothing in them.
    pub fn shrink(&mut self) {
        self.blocker = None;
        if self.buffered().is_empty() {
            self.buf = Vec::new();
            self.start = 0;
        }
        if self.out.is_empty() {
            self.out = Vec::new();
        }
        // Everything written was flushed: the compressor's ~280 KiB go until the next write.
        if let Some((z, d)) = self.deflate.as_deref_mut() {
            d.release();
            z.shrink();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::Transport;
    use std::io::Write;
    use std::os::unix::net::UnixStream;

    fn pair() -> (Io, UnixStream) {
        let (a, b) = UnixStream::pair().unwrap();
        (Io::new(Stream::Plain(Transport::Unix(a))), b)
    }

    fn line(io: &mut Io, max: usize) -> String {
        match io.line(max).unwrap() {
            Input::Line(l) => String::from_utf8_lossy(l).into_owned(),
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn lines_arrive_in_any_pieces_and_pending_never_waits() {
        let (mut io, mut peer) = pair();
        assert_eq!(line(&mut io, 512), "Pending");
        assert!(io.started.is_none(), "no line has begun");
        let input = b"EHLO a\r\nMAIL FROM:<x@y>\nNOOP\r\n";
        let mut got = Vec::new();
        for b in input {
            peer.write_all(&[*b]).unwrap();
            loop {
                match line(&mut io, 512).as_str() {
                    "Pending" => break,
                    l => got.push(l.to_string()),
                }
            }
        }
        assert_eq!(got, ["EHLO a", "MAIL FROM:<x@y>", "NOOP"]);
        peer.write_all(b"QU").unwrap();
        assert_eq!(line(&mut io, 512), "Pending");
        assert!(io.started.is_some(), "a partial line has begun: its deadline runs");
        drop(peer);
        assert_eq!(line(&mut io, 512), "Eof");
    }

    #[test]
    fn too_long_lines_are_skipped_across_reads() {
        let (mut io, mut peer) = pair();
        peer.write_all(&[b'A'; 20_000]).unwrap();
        for _ in 0..4 {
            assert_eq!(line(&mut io, 512), "Pending");
        }
        assert!(io.buffered().len() < 512 + READ_CHUNK, "a long line is not stored");
        peer.write_all(b"AAA\r\nQUIT\r\n").unwrap();
        assert_eq!(line(&mut io, 512), "TooLong");
        assert_eq!(line(&mut io, 512), "QUIT");
        let ok = format!("{}\r\n{}\r\n", "B".repeat(510), "C".repeat(511));
        peer.write_all(ok.as_bytes()).unwrap();
        assert_eq!(line(&mut io, 512), "B".repeat(510));
        assert_eq!(line(&mut io, 512), "TooLong");
    }

    #[test]
    fn bytes_and_shrink() {
        let (mut io, mut peer) = pair();
        assert_eq!(io.bytes().unwrap(), Bytes::Pending);
        peer.write_all(b"DATA\r\nbody").unwrap();
        assert_eq!(line(&mut io, 512), "DATA");
        assert_eq!(io.bytes().unwrap(), Bytes::Data(b"body"));
        io.consume(4);
        io.shrink();
        assert_eq!(io.buf.capacity(), 0, "an idle connection holds no input buffer");
        drop(peer);
        assert_eq!(io.bytes().unwrap(), Bytes::Eof);
    }

    /// What a client's compressor sends for `data` (raw deflate, sync-flushed).
    fn deflated(c: &mut flate2::Compress, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(data.len() + 64);
        let before = c.total_in();
        c.compress_vec(data, &mut out, flate2::FlushCompress::Sync).unwrap();
        assert_eq!(c.total_in() - before, data.len() as u64, "all taken in one call");
        out
    }

    #[test]
    fn compressed_lines_replies_and_what_was_pipelined() {
        let (mut io, mut peer) = pair();
        let mut c = flate2::Compress::new(flate2::Compression::new(6), false);
        // The COMPRESS line, and the next command compressed right behind it in the same read.
        let mut first = b"a COMPRESS DEFLATE\r\n".to_vec();
        first.extend(deflated(&mut c, b"b NOOP\r\nc NO"));
        peer.write_all(&first).unwrap();
        assert_eq!(line(&mut io, 512), "a COMPRESS DEFLATE");
        io.out.extend_from_slice(b"a OK DEFLATE active\r\n");
        io.flush().unwrap();
        io.start_compress();
        assert!(io.compressing());
        assert_eq!(line(&mut io, 512), "b NOOP");
        assert_eq!(line(&mut io, 512), "Pending");
        peer.write_all(&deflated(&mut c, b"OP\r\n")).unwrap();
        assert_eq!(line(&mut io, 512), "c NOOP");
        io.out.extend_from_slice(b"b OK NOOP completed\r\n");
        io.flush().unwrap();
        io.shrink();
        let Some((_, d)) = io.deflate.as_deref() else { panic!("compression is on") };
        assert!(!d.holds_state(), "a parked connection holds no compressor");
        io.out.extend_from_slice(b"c OK NOOP completed\r\n");
        io.flush().unwrap();
        drop(io);
        let mut wire = Vec::new();
        std::io::Read::read_to_end(&mut peer, &mut wire).unwrap();
        let plain = b"a OK DEFLATE active\r\n";
        assert_eq!(&wire[..plain.len()], plain, "the OK itself is not compressed");
        let mut z = flate2::Decompress::new(false);
        let mut text = vec![0u8; 4096];
        z.decompress(&wire[plain.len()..], &mut text, flate2::FlushDecompress::Sync).unwrap();
        text.truncate(z.total_out() as usize);
        assert_eq!(text, b"b OK NOOP completed\r\nc OK NOOP completed\r\n");
    }

    #[test]
    fn a_compressed_bomb_meets_the_line_limit_and_garbage_is_an_error() {
        let (mut io, mut peer) = pair();
        io.start_compress();
        let mut c = flate2::Compress::new(flate2::Compression::new(9), false);
        // 16 MiB of 'A' without a line end, then a line: about 16 KiB on the wire.
        let chunk = vec![b'A'; 1 << 20];
        let mut wire = Vec::new();
        for _ in 0..16 {
            wire.extend(deflated(&mut c, &chunk));
        }
        wire.extend(deflated(&mut c, b"\r\nd NOOP\r\n"));
        assert!(wire.len() < 64 * 1024, "{}", wire.len());
        let writer = std::thread::spawn(move || {
            peer.write_all(&wire).unwrap();
            peer.write_all(b"\xff\xff\xff\xff").unwrap();
            peer
        });
        let mut most = 0;
        let got = loop {
            let r = line(&mut io, 64 * 1024);
            most = most.max(io.buf.capacity());
            if r != "Pending" {
                break r;
            }
        };
        assert_eq!(got, "TooLong");
        assert!(most <= 64 * 1024 + 2 * READ_CHUNK, "the buffer stayed bounded: {most}");
        assert_eq!(line(&mut io, 64 * 1024), "d NOOP");
        let _peer = writer.join().unwrap();
        let e = loop {
            match io.line(512) {
                Ok(Input::Pending) => continue,
                other => break other,
            }
        };
        assert_eq!(e.unwrap_err().kind(), io::ErrorKind::InvalidData);
    }
}
