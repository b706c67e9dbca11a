//! Content scanner clients: clamd (INSTREAM, clamd(8)), spamd (the SPAMC/SPAMD protocol 1.5) and
//! rspamd (`/checkv2` over HTTP/1.1, RFC 9112). Synchronous: each scan is one connection with a
//! total deadline; every connect, read and write is bounded by the time left. The message is
//! streamed from a reader (the spooled file), never loaded whole. Every failure (unreachable,
//! timeout, protocol error, size limit) is a [`ScanError`]: the caller applies its down-policy.

use std::fmt;

mod addr;
mod clamd;
mod http;
mod json;
mod rspamd;
mod spamd;

#[cfg(test)]
mod tests;

pub use addr::ScanAddr;
pub use clamd::{ClamVerdict, clamd_scan, parse_clamd_reply};
pub use rspamd::{RspamdMeta, parse_rspamd_reply, rspamd_check};
pub use spamd::{parse_spamd_reply, spamd_check};

/// Why a scan gave no verdict. The text names the scanner and the cause, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanError(pub String);

impl fmt::Display for ScanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ScanError {}

/// A spam scanner's verdict (spamd or rspamd).
#[derive(Debug, Clone, PartialEq)]
pub struct SpamScore {
    pub score: f64,
    pub threshold: f64,
    pub is_spam: bool,
    /// The rules (symbols) that hit, when the scanner says.
    pub symbols: Vec<String>,
    /// rspamd's recommended action ("reject", "add header", "no action"...); None for spamd.
    pub action: Option<String>,
}

/// Copies `msg` to `out` in chunks of at most `chunk` bytes, each preceded by its length as 4
/// bytes big-endian when `framed` (clamd's INSTREAM), stopping after `limit` bytes when given.
/// Returns the bytes of message copied.
pub(crate) fn stream_message(
    msg: &mut dyn std::io::Read,
    out: &mut dyn std::io::Write,
    limit: Option<u64>,
    chunk: usize,
    framed: bool,
) -> Result<u64, StreamError> {
    let head = if framed { 4 } else { 0 };
    let mut buf = vec![0u8; head + chunk];
    let mut total = 0u64;
    loop {
        let want = match limit {
            Some(l) => usize::try_from(l - total).map_or(chunk, |left| left.min(chunk)),
            None => chunk,
        };
        if want == 0 {
            return Ok(total);
        }
        let n = match msg.read(&mut buf[head..head + want]) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(StreamError::Message(e)),
        };
        if framed {
            let len = u32::try_from(n).unwrap_or(u32::MAX);
            buf[..4].copy_from_slice(&len.to_be_bytes());
        }
        out.write_all(&buf[..head + n]).map_err(StreamError::Peer)?;
        total += n as u64;
    }
}

/// Where streaming the message broke: reading the spooled message or writing to the scanner.
#[derive(Debug)]
pub(crate) enum StreamError {
    Message(std::io::Error),
    Peer(std::io::Error),
}

/// A header value as sent to a scanner: control characters (CR, LF, NUL...) become `?`, so that
/// no value from the envelope can end the header early or add one.
pub(crate) fn header_value(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { '?' } else { c }).collect()
}

/// The first 200 characters of a reply, for an error message.
pub(crate) fn clip(s: &str) -> &str {
    match s.char_indices().nth(200) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}
