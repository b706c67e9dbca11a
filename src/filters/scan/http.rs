//! The least of an HTTP/1.1 client (RFC 9112) that rspamd needs: `http://HOST[:PORT][/path]` URLs
//! (no TLS), one request per connection (`Connection: close`), and a bounded response whose body
//! is delimited by Content-Length, by chunked transfer coding, or by the end of the connection.

use super::addr::{Host, split_host_port};

/// An `http://` URL's parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Url {
    pub host: Host,
    pub port: u16,
    /// The Host header's value: the authority as written.
    pub authority: String,
    /// The request target; `default_path` when the URL has none.
    pub path: String,
}

/// Parses `http://HOST[:PORT][/path]`; an empty path (or `/`) becomes `default_path`.
pub(crate) fn parse_url(url: &str, default_path: &str) -> Result<Url, String> {
    let rest = match url.split_once("://") {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => rest,
        Some((scheme, _)) if scheme.eq_ignore_ascii_case("https") => {
            return Err(format!("{url:?}: https is not supported (use http:// on a local address)"));
        }
        _ => return Err(format!("{url:?}: expected http://HOST:PORT[/path]")),
    };
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if authority.contains('@') {
        return Err(format!("{url:?}: user information is not supported"));
    }
    let with_port = if authority.ends_with(']') || !authority.contains(':') {
        format!("{authority}:80")
    } else {
        authority.to_string()
    };
    let (host, port) = split_host_port(&with_port).map_err(|e| format!("{url:?}: {e}"))?;
    if path.bytes().any(|b| b <= b' ' || b >= 0x7f) {
        return Err(format!("{url:?}: bad characters in the path"));
    }
    let path = match path {
        "" | "/" => default_path.to_string(),
        p if p.starts_with('/') => p.to_string(),
        p => format!("/{p}"),
    };
    Ok(Url { host, port, authority: authority.to_string(), path })
}

/// A response: its status code and its (de-chunked) body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

/// Parses a response from `buf`: Ok(None) while it is incomplete. `eof` says the connection has
/// closed, which ends a body that has neither a Content-Length nor chunked coding.
/// Interim (1xx) responses are skipped.
pub(crate) fn parse_response(mut buf: &[u8], eof: bool) -> Result<Option<Response>, String> {
    loop {
        let Some((status, headers, rest)) = head(buf)? else { return Ok(None) };
        if (100..200).contains(&status) {
            buf = rest;
            continue;
        }
        let te = header(&headers, "transfer-encoding");
        let body = if let Some(te) = te {
            if !te.trim().eq_ignore_ascii_case("chunked") {
                return Err(format!("unsupported Transfer-Encoding {:?}", super::clip(te)));
            }
            match dechunk(rest)? {
                Some(b) => b,
                None => return Ok(None),
            }
        } else if let Some(cl) = header(&headers, "content-length") {
            let n: usize =
                cl.trim().parse().map_err(|_| format!("bad Content-Length {:?}", super::clip(cl)))?;
            match rest.get(..n) {
                Some(b) => b.to_vec(),
                None => return Ok(None),
            }
        } else if status == 204 || status == 304 {
            Vec::new()
        } else if eof {
            rest.to_vec()
        } else {
            return Ok(None);
        };
        return Ok(Some(Response { status, body }));
    }
}

type Head<'a> = (u16, Vec<(&'a str, &'a str)>, &'a [u8]);

/// The status code, the headers and what follows them; None while the header block is incomplete.
fn head(buf: &[u8]) -> Result<Option<Head<'_>>, String> {
    let Some(end) = find(buf, b"\r\n\r\n") else {
        return Ok(None);
    };
    let block = std::str::from_utf8(&buf[..end]).map_err(|_| "response header is not UTF-8".to_string())?;
    let mut lines = block.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let mut words = status_line.splitn(3, ' ');
    let version = words.next().unwrap_or("");
    if !version.starts_with("HTTP/1.") {
        return Err(format!("bad status line {:?}", super::clip(status_line)));
    }
    let status = match words.next() {
        Some(c) if c.len() == 3 && c.bytes().all(|b| b.is_ascii_digit()) => c.parse().unwrap_or(0),
        _ => return Err(format!("bad status line {:?}", super::clip(status_line))),
    };
    let mut headers = Vec::new();
    for l in lines {
        let (name, value) =
            l.split_once(':').ok_or_else(|| format!("bad header line {:?}", super::clip(l)))?;
        headers.push((name.trim(), value.trim()));
    }
    Ok(Some((status, headers, &buf[end + 4..])))
}

fn header<'a>(headers: &[(&str, &'a str)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| *v)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Decodes a chunked body; None while the last chunk and the trailers have not all arrived.
fn dechunk(mut buf: &[u8]) -> Result<Option<Vec<u8>>, String> {
    let mut body = Vec::new();
    loop {
        let Some(eol) = find(buf, b"\r\n") else { return Ok(None) };
        let line = std::str::from_utf8(&buf[..eol]).map_err(|_| "bad chunk size line".to_string())?;
        let size = line.split(';').next().unwrap_or("").trim();
        let n =
            usize::from_str_radix(size, 16).map_err(|_| format!("bad chunk size {:?}", super::clip(size)))?;
        buf = &buf[eol + 2..];
        if n == 0 {
            // Trailers, if any, up to an empty line.
            loop {
                let Some(eol) = find(buf, b"\r\n") else { return Ok(None) };
                if eol == 0 {
                    return Ok(Some(body));
                }
                buf = &buf[eol + 2..];
            }
        }
        let Some(end) = n.checked_add(2) else { return Err("chunk too large".into()) };
        if buf.len() < end {
            return Ok(None);
        }
        if &buf[n..end] != b"\r\n" {
            return Err("chunk not followed by CRLF".into());
        }
        body.extend_from_slice(&buf[..n]);
        buf = &buf[end..];
    }
}
