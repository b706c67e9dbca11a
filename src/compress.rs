//! IMAP COMPRESS=DEFLATE's two streams (RFC 4978; raw deflate of RFC 1951, no zlib header): an
//! [`Inflater`] that turns the client's compressed input into at most as many octets as the caller
//! has room for (a decompression bomb is read a piece at a time into the line and literal limits
//! that apply to uncompressed input), and a [`Deflater`] that compresses each write whole and ends
//! it with a sync flush (RFC 4978 4: the client sees every response at once, nothing waits in the
//! compressor while the server waits for the client).
//!
//! Memory: the inflater lives as long as the connection (its 32 KiB window may be referred to by
//! the client's next octets), about 43 KiB. The compressor's state is about 300 KiB whatever the
//! level, so a connection holds one only while it is running: [`Deflater::release`] gives it back
//! before the connection waits. After a sync flush the stream is byte aligned and no block is
//! open, so a fresh compressor carries on the same deflate stream validly for the client (its
//! blocks simply cannot refer back to octets sent before the release). Building one costs about
//! 200 us and resetting one about 12 us (measured, release build, x86_64), so each thread keeps
//! the last one given back, reset, for its next burst: at most one spare a worker thread, whatever
//! the number of connections.

use std::cell::RefCell;
use std::io::{self, Write};

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// The compression level. Measured with miniz_oxide on the server's own FETCH output, compressed
/// as the driver does (a sync flush every 256 KiB; release build, x86_64): 1.65 MiB of responses
/// (the corpus's BODY[], a 512 KiB base64 attachment, 1 MiB of text) came to 63.7% at level 1
/// (40 ms), 51.2% at 2 (48 ms), 50.7% at 3 (57 ms), 50.1% at 6 (64 ms); the corpus's ENVELOPE
/// and BODYSTRUCTURE to 20.1% at 1, 17.1% at 2, 15.3% at 6. Level 1 is miniz's fast matcher and
/// loses much; from 2 on the gain is small and the cost grows.
pub const LEVEL: u32 = 2;

/// How much compressed input one read takes from the stream.
const RAW_CHUNK: usize = 8 * 1024;
/// How much compressed output is produced before it is written.
const OUT_CHUNK: usize = 16 * 1024;

fn corrupt(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("compressed input: {what}"))
}

/// The client's half: compressed octets in, at most a buffer's worth of plain octets out.
pub struct Inflater {
    z: Decompress,
    /// Compressed input read and not yet inflated (from `start` on).
    raw: Vec<u8>,
    start: usize,
    /// The client sent the last block (BFINAL); nothing may follow it.
    ended: bool,
    /// The input stopped being deflate data; reported once what came before it is given out.
    failed: Option<String>,
}

impl Default for Inflater {
    fn default() -> Self {
        Inflater::new()
    }
}

impl Inflater {
    pub fn new() -> Inflater {
        Inflater { z: Decompress::new(false), raw: Vec::new(), start: 0, ended: false, failed: None }
    }

    /// Compressed input that was read before compression began (what the client sent after the
    /// COMPRESS command's line): it is inflated before anything more is read.
    pub fn push(&mut self, data: &[u8]) {
        self.raw.extend_from_slice(data);
    }

    /// Whether compressed input is waiting to be inflated.
    pub fn pending(&self) -> bool {
        self.start < self.raw.len()
    }

    /// Fills `out` with inflated octets as a non-blocking read would: Ok(n > 0) octets, Ok(0) the
    /// end of the client's stream, `WouldBlock` from `read` when nothing can be produced until more
    /// arrives, `InvalidData` for input that is not a deflate stream. `read` is asked for more
    /// compressed input only when what was read before is used up.
    pub fn read(
        &mut self,
        out: &mut [u8],
        mut read: impl FnMut(&mut [u8]) -> io::Result<usize>,
    ) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        loop {
            if let Some(e) = &self.failed {
                return Err(corrupt(e));
            }
            let input = self.raw.get(self.start..).unwrap_or_default();
            let (in0, out0) = (self.z.total_in(), self.z.total_out());
            let status = if self.ended {
                Status::StreamEnd
            } else {
                // An error may come after some good octets in the same call: those go out first.
                self.z.decompress(input, out, FlushDecompress::None).unwrap_or_else(|e| {
                    self.failed = Some(e.to_string());
                    Status::Ok
                })
            };
            let used = usize::try_from(self.z.total_in() - in0).unwrap_or(usize::MAX);
            let made = usize::try_from(self.z.total_out() - out0).unwrap_or(usize::MAX);
            self.start = self.start.saturating_add(used).min(self.raw.len());
            if self.start == self.raw.len() {
                self.raw.clear();
                self.start = 0;
            }
            if status == Status::StreamEnd {
                self.ended = true;
            }
            if made > 0 {
                return Ok(made);
            }
            if let Some(e) = &self.failed {
                return Err(corrupt(e));
            }
            if self.ended && self.pending() {
                return Err(corrupt("data after the end of the deflate stream"));
            }
            if used > 0 {
                continue;
            }
            // Nothing came of what is buffered: more input is needed. (The inflater takes every
            // octet it is given into its own state, so `raw` is empty here unless it is stuck.)
            if self.raw.len() >= 2 * RAW_CHUNK {
                return Err(corrupt("the inflater makes no progress"));
            }
            if self.start > 0 {
                self.raw.drain(..self.start);
                self.start = 0;
            }
            let old = self.raw.len();
            self.raw.resize(old + RAW_CHUNK, 0);
            let got = loop {
                match read(self.raw.get_mut(old..).unwrap_or_default()) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    r => break r,
                }
            };
            self.raw.truncate(old + *got.as_ref().unwrap_or(&0));
            match got? {
                0 => return Ok(0),
                _ if self.ended => return Err(corrupt("data after the end of the deflate stream")),
                _ => {}
            }
        }
    }

    /// The octets the compressed-input buffer holds room for (bounded: tests and fuzzing).
    pub fn input_capacity(&self) -> usize {
        self.raw.capacity()
    }

    /// Gives back the input buffer's memory when nothing waits in it.
    pub fn shrink(&mut self) {
        if !self.pending() {
            self.raw = Vec::new();
            self.start = 0;
        }
    }
}

/// The server's half: each write compressed whole and sync-flushed (RFC 4978 4), with a
/// compressor that exists only between [`Deflater::release`]s.
pub struct Deflater {
    level: Compression,
    z: Option<Compress>,
}

impl Default for Deflater {
    fn default() -> Self {
        Deflater::new(LEVEL)
    }
}

impl Deflater {
    pub fn new(level: u32) -> Deflater {
        Deflater { level: Compression::new(level.min(9)), z: None }
    }

    /// Compresses `data` and writes it to `w`, ending at a byte boundary with everything flushed
    /// (Z_SYNC_FLUSH: an empty stored block), so the client can inflate all of it now.
    pub fn write_all(&mut self, data: &[u8], w: &mut impl Write) -> io::Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        if self.z.is_none() {
            self.z = Some(take_compressor(self.level)?);
        }
        let Some(z) = self.z.as_mut() else { return Err(io::Error::other("no compressor")) };
        let mut buf = vec![0u8; OUT_CHUNK];
        let mut input = data;
        loop {
            let (in0, out0) = (z.total_in(), z.total_out());
            z.compress(input, &mut buf, FlushCompress::Sync).map_err(io::Error::other)?;
            let used = usize::try_from(z.total_in() - in0).unwrap_or(usize::MAX);
            let made = usize::try_from(z.total_out() - out0).unwrap_or(usize::MAX);
            input = input.get(used..).unwrap_or_default();
            w.write_all(buf.get(..made).unwrap_or_default())?;
            // Done when all was taken and the flush did not fill the buffer (zlib's rule).
            if input.is_empty() && made < buf.len() {
                return Ok(());
            }
            if used == 0 && made == 0 {
                return Err(io::Error::other("the compressor makes no progress"));
            }
        }
    }

    /// Drops the compressor (the connection is about to wait): the next write starts a new one,
    /// which continues the stream without referring back. Everything written was flushed.
    pub fn release(&mut self) {
        if let Some(z) = self.z.take() {
            give_back(self.level, z);
        }
    }

    /// Whether a compressor is held now.
    pub fn holds_state(&self) -> bool {
        self.z.is_some()
    }
}

thread_local! {
    /// This thread's spare compressor, reset, and its level: the next burst of any connection
    /// run here takes it instead of building one.
    static SPARE: RefCell<Option<(Compression, Compress)>> = const { RefCell::new(None) };
}

/// The stack of the thread that builds a compressor: unoptimised builds put its whole state on the
/// stack before moving it to the heap (about 70 KiB), more than a worker thread can spare.
const BUILD_STACK: usize = 512 * 1024;

/// A compressor in its initial state: this thread's spare, or a new one.
fn take_compressor(level: Compression) -> io::Result<Compress> {
    let spare = SPARE.try_with(|s| s.borrow_mut().take()).ok().flatten();
    if let Some((l, z)) = spare
        && l == level
    {
        return Ok(z);
    }
    std::thread::Builder::new()
        .name("deflate".into())
        .stack_size(BUILD_STACK)
        .spawn(move || Compress::new(level, false))?
        .join()
        .map_err(|_| io::Error::other("building the compressor failed"))
}

/// Keeps `z`, reset, as this thread's spare (or drops it when there is one already).
fn give_back(level: Compression, mut z: Compress) {
    z.reset();
    let _ = SPARE.try_with(|s| {
        let mut s = s.borrow_mut();
        if s.is_none() {
            *s = Some((level, z));
        }
    });
}

#[cfg(test)]
mod tests;
