//! The spamd client: the SPAMC/SPAMD protocol 1.5 as spamc speaks it, with the SYMBOLS command
//! (CHECK plus the list of rules that hit). Request: `SYMBOLS SPAMC/1.5`, `Content-length: N`,
//! optionally `User: NAME`, a blank line and exactly N bytes of message. Reply: `SPAMD/1.1 0 EX_OK`,
//! `Spam: True ; 1000.0 / 5.0`, a blank line and the comma-separated symbols.

use std::io::{Read, Write};
use std::time::Duration;

use super::addr::{ScanAddr, Session};
use super::{ScanError, SpamScore, StreamError, clip, header_value, stream_message};

/// The longest reply read: the status, a few headers and the symbol list.
const MAX_REPLY: usize = 64 * 1024;
const CHUNK: usize = 64 * 1024;

/// Sends the `len` bytes of `msg` to spamd at `addr` for scoring as `user`, within `timeout`.
pub fn spamd_check(
    addr: &ScanAddr,
    msg: &mut dyn Read,
    len: u64,
    user: Option<&str>,
    timeout: Duration,
) -> Result<SpamScore, ScanError> {
    let fail = |e: String| ScanError(format!("spamd {addr}: {e}"));
    let mut s = Session::connect(addr, timeout).map_err(|e| fail(e.0))?;
    let mut head = format!("SYMBOLS SPAMC/1.5\r\nContent-length: {len}\r\n");
    if let Some(u) = user {
        head.push_str(&format!("User: {}\r\n", header_value(u)));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).map_err(|e| fail(s.describe("sending the request", &e)))?;
    let sent = stream_message(msg, &mut s, Some(len), CHUNK, false);
    match sent {
        Ok(n) if n == len => {}
        Ok(n) => return Err(fail(format!("the message has {n} bytes, not the {len} announced"))),
        Err(StreamError::Message(e)) => return Err(fail(format!("reading the message: {e}"))),
        Err(StreamError::Peer(e)) => return Err(fail(s.describe("sending the message", &e))),
    }
    s.finish_writing();
    let reply = s
        .read_reply(MAX_REPLY, &|r| matches!(split_reply(r), Some((_, _, Some(_)))))
        .map_err(|e| fail(e.0))?;
    parse_spamd_reply(&reply).map_err(|e| fail(e.0))
}

/// A reply's status line, its header lines and (once it has all of it) its body.
type Parts<'a> = (&'a [u8], Vec<&'a [u8]>, Option<&'a [u8]>);

/// Splits a reply into its parts; None while the header block is incomplete.
fn split_reply(r: &[u8]) -> Option<Parts<'_>> {
    let mut lines = Vec::new();
    let mut pos = 0;
    loop {
        let nl = r[pos..].iter().position(|&b| b == b'\n')? + pos;
        let line = r[pos..nl].strip_suffix(b"\r").unwrap_or(&r[pos..nl]);
        pos = nl + 1;
        if line.is_empty() && !lines.is_empty() {
            break;
        }
        lines.push(line);
    }
    let status = lines.remove(0);
    let rest = &r[pos..];
    let body = match content_length(&lines) {
        Some(n) if rest.len() >= n => Some(&rest[..n]),
        Some(_) => None,
        None => Some(rest),
    };
    Some((status, lines, body))
}

fn content_length(headers: &[&[u8]]) -> Option<usize> {
    headers.iter().find_map(|h| {
        let (name, value) = std::str::from_utf8(h).ok()?.split_once(':')?;
        if !name.trim().eq_ignore_ascii_case("content-length") {
            return None;
        }
        value.trim().parse().ok()
    })
}

/// Parses spamd's reply to CHECK or SYMBOLS.
pub fn parse_spamd_reply(reply: &[u8]) -> Result<SpamScore, ScanError> {
    let bad = |what: &str| ScanError(format!("bad reply: {what}"));
    // A status line alone (spamd's error replies) has no header block: take it as it stands.
    let (status, headers, body) = match split_reply(reply) {
        Some((status, headers, body)) => (status, headers, body),
        None => {
            let line = reply.split(|&b| b == b'\n').next().unwrap_or(reply);
            (line.strip_suffix(b"\r").unwrap_or(line), Vec::new(), None)
        }
    };
    let status = std::str::from_utf8(status).map_err(|_| bad("status line is not UTF-8"))?;
    let mut words = status.splitn(3, ' ');
    let proto = words.next().unwrap_or("");
    if !proto.starts_with("SPAMD/") {
        return Err(bad(&format!("status line {:?}", clip(status))));
    }
    let code: u32 = words.next().and_then(|c| c.parse().ok()).ok_or_else(|| bad("status code"))?;
    let text = words.next().unwrap_or("").trim();
    if code != 0 {
        return Err(ScanError(format!("spamd error {code} {}", clip(text))));
    }
    let mut score = None;
    for h in &headers {
        let Ok(h) = std::str::from_utf8(h) else { continue };
        let Some((name, value)) = h.split_once(':') else { continue };
        if name.trim().eq_ignore_ascii_case("spam") {
            score = Some(parse_spam_header(value).ok_or_else(|| bad(&format!("Spam: {:?}", clip(value))))?);
        }
    }
    let (is_spam, score, threshold) = score.ok_or_else(|| bad("no Spam header"))?;
    let symbols = match body {
        Some(b) => std::str::from_utf8(b)
            .map_err(|_| bad("symbols are not UTF-8"))?
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        None if headers.is_empty() => Vec::new(),
        None => return Err(bad("body shorter than its Content-length")),
    };
    Ok(SpamScore { score, threshold, is_spam, symbols, action: None })
}

/// `True ; 1000.0 / 5.0` (or Yes/No, False) as (is_spam, score, threshold).
fn parse_spam_header(v: &str) -> Option<(bool, f64, f64)> {
    let (flag, nums) = v.split_once(';')?;
    let is_spam = match flag.trim() {
        f if f.eq_ignore_ascii_case("true") || f.eq_ignore_ascii_case("yes") => true,
        f if f.eq_ignore_ascii_case("false") || f.eq_ignore_ascii_case("no") => false,
        _ => return None,
    };
    let (score, threshold) = nums.split_once('/')?;
    let score: f64 = score.trim().parse().ok().filter(|x: &f64| x.is_finite())?;
    let threshold: f64 = threshold.trim().parse().ok().filter(|x: &f64| x.is_finite())?;
    Some((is_spam, score, threshold))
}
