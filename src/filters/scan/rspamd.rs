//! The rspamd client: `POST /checkv2` over HTTP/1.1 with the envelope in request headers (IP,
//! Helo, From, Rcpt (one per recipient), User, Hostname, Queue-Id) and the message as the body;
//! the reply is JSON `{"score":..,"required_score":..,"action":"..","symbols":{..}}`.

use std::io::{Read, Write};
use std::net::IpAddr;
use std::time::Duration;

use super::addr::Session;
use super::http::{Response, parse_response, parse_url};
use super::json::{self, Value};
use super::{ScanError, SpamScore, StreamError, clip, header_value, stream_message};

/// The longest response read (rspamd's full symbol list with options stays well below).
const MAX_REPLY: usize = 1024 * 1024;
const CHUNK: usize = 64 * 1024;

/// What rspamd is told about the message besides its content. Every field is optional.
#[derive(Debug, Clone, Copy, Default)]
pub struct RspamdMeta<'a> {
    /// The client's address.
    pub ip: Option<IpAddr>,
    pub helo: Option<&'a str>,
    /// The envelope sender; `Some("")` for the null sender.
    pub from: Option<&'a str>,
    pub rcpt: &'a [String],
    /// The authenticated user.
    pub user: Option<&'a str>,
    /// The client's verified host name.
    pub hostname: Option<&'a str>,
    pub queue_id: Option<&'a str>,
}

/// Sends the `len` bytes of `msg` to rspamd at `url` (`http://HOST:PORT[/path]`, path
/// `/checkv2` by default) and returns its verdict, all within `timeout`.
pub fn rspamd_check(
    url: &str,
    msg: &mut dyn Read,
    len: u64,
    meta: &RspamdMeta,
    timeout: Duration,
) -> Result<SpamScore, ScanError> {
    let u = parse_url(url, "/checkv2").map_err(|e| ScanError(format!("rspamd: {e}")))?;
    let fail = |e: String| ScanError(format!("rspamd {url}: {e}"));
    let mut s = Session::connect_host(&u.host, u.port, timeout).map_err(|e| fail(e.0))?;
    let head = request_head(&u.path, &u.authority, len, meta);
    s.write_all(head.as_bytes()).map_err(|e| fail(s.describe("sending the request", &e)))?;
    let sent = stream_message(msg, &mut s, Some(len), CHUNK, false);
    match sent {
        Ok(n) if n == len => {}
        Ok(n) => return Err(fail(format!("the message has {n} bytes, not the {len} announced"))),
        Err(StreamError::Message(e)) => return Err(fail(format!("reading the message: {e}"))),
        // The server may have answered early (413, 503...): its reply says more.
        Err(StreamError::Peer(e)) => {
            let r = s.read_reply(MAX_REPLY, &|r| !matches!(parse_response(r, false), Ok(None)));
            return match r {
                Ok(r) if !r.is_empty() => {
                    parse_rspamd_reply(&r).map_err(|e| fail(e.0))?;
                    Err(fail(s.describe("sending the message", &e)))
                }
                _ => Err(fail(s.describe("sending the message", &e))),
            };
        }
    }
    let reply =
        s.read_reply(MAX_REPLY, &|r| !matches!(parse_response(r, false), Ok(None))).map_err(|e| fail(e.0))?;
    parse_rspamd_reply(&reply).map_err(|e| fail(e.0))
}

fn request_head(path: &str, authority: &str, len: u64, meta: &RspamdMeta) -> String {
    let mut h = format!(
        "POST {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\nContent-Length: {len}\r\n"
    );
    let mut add = |name: &str, value: &str| {
        h.push_str(name);
        h.push_str(": ");
        h.push_str(&header_value(value));
        h.push_str("\r\n");
    };
    if let Some(ip) = meta.ip {
        add("IP", &ip.to_string());
    }
    if let Some(v) = meta.helo {
        add("Helo", v);
    }
    if let Some(v) = meta.from {
        add("From", if v.is_empty() { "<>" } else { v });
    }
    for r in meta.rcpt {
        add("Rcpt", r);
    }
    if let Some(v) = meta.user {
        add("User", v);
    }
    if let Some(v) = meta.hostname {
        add("Hostname", v);
    }
    if let Some(v) = meta.queue_id {
        add("Queue-Id", v);
    }
    h.push_str("\r\n");
    h
}

/// Parses a whole HTTP response from rspamd (the connection closed after it) into its verdict.
pub fn parse_rspamd_reply(reply: &[u8]) -> Result<SpamScore, ScanError> {
    let resp = match parse_response(reply, true) {
        Ok(Some(r)) => r,
        Ok(None) => return Err(ScanError("truncated response".into())),
        Err(e) => return Err(ScanError(e)),
    };
    let Response { status, body } = resp;
    let doc = json::parse(&body);
    if status != 200 {
        let why = doc.as_ref().ok().and_then(|v| v.get("error")).and_then(Value::as_str).unwrap_or("");
        return Err(ScanError(format!("HTTP status {status} {}", clip(why))));
    }
    let doc = doc.map_err(ScanError)?;
    if let Some(e) = doc.get("error").and_then(Value::as_str) {
        return Err(ScanError(format!("rspamd error: {}", clip(e))));
    }
    let num =
        |k: &str| doc.get(k).and_then(Value::as_f64).ok_or_else(|| ScanError(format!("no {k} in the reply")));
    let score = num("score")?;
    let threshold = num("required_score")?;
    let action = doc.get("action").and_then(Value::as_str).map(str::to_string);
    let is_spam = match action.as_deref() {
        Some(a) => matches!(a, "reject" | "add header" | "rewrite subject"),
        None => score >= threshold,
    };
    let symbols = match doc.get("symbols") {
        Some(Value::Obj(m)) => m.iter().map(|(k, _)| k.clone()).collect(),
        _ => Vec::new(),
    };
    Ok(SpamScore { score, threshold, is_spam, symbols, action })
}
