//! The clamd client: the INSTREAM command of clamd(8). The request is `zINSTREAM\0`, then the
//! message in chunks of `<length: u32 big-endian><data>`, then a zero length; the reply is one
//! NUL-terminated line: `stream: OK`, `stream: NAME FOUND` or `... ERROR` (for instance
//! `INSTREAM size limit exceeded. ERROR` once the message passes clamd's StreamMaxLength).

use std::io::{Read, Write};
use std::time::Duration;

use super::addr::{ScanAddr, Session};
use super::{ScanError, StreamError, clip, stream_message};

/// What clamd found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClamVerdict {
    Clean,
    /// The signature's name, e.g. `Eicar-Test-Signature`.
    Infected(String),
}

/// Bytes per INSTREAM chunk (clamd's own limit is StreamMaxLength, for the whole stream).
const CHUNK: usize = 64 * 1024;
/// The longest reply read: a signature name and a few words.
const MAX_REPLY: usize = 4096;

/// Streams `msg` to clamd at `addr` and returns its verdict, all within `timeout`.
pub fn clamd_scan(addr: &ScanAddr, msg: &mut dyn Read, timeout: Duration) -> Result<ClamVerdict, ScanError> {
    let mut s = Session::connect(addr, timeout).map_err(|e| ScanError(format!("clamd {addr}: {}", e.0)))?;
    let fail = |e: String| ScanError(format!("clamd {addr}: {e}"));
    let broken = match send(&mut s, msg) {
        Ok(()) => None,
        Err(StreamError::Message(e)) => return Err(fail(format!("reading the message: {e}"))),
        Err(StreamError::Peer(e)) => Some(e),
    };
    // clamd answers and closes as soon as the stream passes its size limit: its reply then says
    // more than the write error, so read it whichever way the sending ended.
    let reply = s.read_reply(MAX_REPLY, &|r| r.contains(&0));
    match (broken, reply) {
        (None, Ok(r)) => parse_clamd_reply(&r).map_err(|e| fail(e.0)),
        (None, Err(e)) => Err(fail(e.0)),
        (Some(e), Ok(r)) if !r.is_empty() => {
            parse_clamd_reply(&r).map_err(|e| fail(e.0))?;
            Err(fail(s.describe("sending the message", &e)))
        }
        (Some(e), _) => Err(fail(s.describe("sending the message", &e))),
    }
}

fn send(s: &mut Session, msg: &mut dyn Read) -> Result<(), StreamError> {
    s.write_all(b"zINSTREAM\0").map_err(StreamError::Peer)?;
    stream_message(msg, s, None, CHUNK, true)?;
    s.write_all(&[0, 0, 0, 0]).map_err(StreamError::Peer)?;
    Ok(())
}

/// Parses clamd's reply to INSTREAM (`stream: OK`, `stream: NAME FOUND`, `... ERROR`, with or
/// without the NUL or newline terminator and an IDSESSION `N: ` prefix).
pub fn parse_clamd_reply(reply: &[u8]) -> Result<ClamVerdict, ScanError> {
    let end = reply.iter().position(|&b| b == 0).unwrap_or(reply.len());
    let line = std::str::from_utf8(&reply[..end])
        .map_err(|_| ScanError("reply is not UTF-8".into()))?
        .trim_end_matches(['\n', '\r']);
    if line.is_empty() {
        return Err(ScanError("empty reply (connection closed)".into()));
    }
    if line.bytes().any(|b| b.is_ascii_control()) {
        return Err(ScanError(format!("bad reply {:?}", clip(line))));
    }
    if let Some(what) = line.strip_suffix(" ERROR") {
        return Err(ScanError(format!("clamd error: {}", clip(what))));
    }
    // An IDSESSION reply starts with the request number: `1: stream: OK`.
    let body = match line.split_once(": ") {
        Some((id, rest)) if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) => rest,
        _ => line,
    };
    let Some(result) = body.strip_prefix("stream: ") else {
        return Err(ScanError(format!("unexpected reply {:?}", clip(line))));
    };
    if result == "OK" {
        return Ok(ClamVerdict::Clean);
    }
    match result.strip_suffix(" FOUND") {
        Some(name) if !name.trim().is_empty() => Ok(ClamVerdict::Infected(name.trim().to_string())),
        _ => Err(ScanError(format!("unexpected reply {:?}", clip(line)))),
    }
}
