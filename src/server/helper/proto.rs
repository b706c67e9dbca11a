//! The privileged helper's message format: what the unprivileged server may ask the root helper,
//! and what it answers. One frame is a 4-byte big-endian length (at most [`MAX_FRAME`]) and that
//! many bytes of one ASCII line of space-separated tokens; every variable field is base64
//! (RFC 4648 4, padded), so no value can smuggle a separator:
//!
//! ```text
//! frame    = id SP (request / response)                  ; the answer echoes the request's id
//! id       = 1*20DIGIT                                     ; a frame with another id is dropped
//! request  = "verify" SP b64(user) SP b64(password)
//!          / "deliver" SP b64(sender) SP arrival SP b64(account) *(SP b64(account))
//!                 ; the message file rides along as an SCM_RIGHTS descriptor (unix(7))
//!          / "session" SP b64(user) SP token SP service SP b64(sid) SP b64(peer) SP ("tls" / "plain")
//!                 ; a mail process session for a user who just logged in (see mailproc.rs);
//!                 ; the answer "ok" carries the server's end of the session socket
//!          / "forward" SP b64(user)                        ; read ~user/.forward as its owner
//!          / "open" SP ("login" / "delivery")              ; to the master: a new worker's socket
//! response = "yes" SP token / "no"                         ; to verify: the token opens one session
//!          / "data" SP b64(bytes)                          ; to forward: the file's content
//! token    = 32HEXDIG                                      ; one use, within a minute, for that user
//! service  = "imap" / "pop3" / "sieve"
//!          / "ok" *(SP b64(stored path))                   ; to deliver, one per account
//!          / "fail" SP index SP ("temp" / "perm") SP b64(text)
//!          / "error" SP b64(text)                          ; the helper could not answer
//! arrival  = 1*20DIGIT                                     ; seconds since the epoch
//! index    = 1*4DIGIT                                      ; which account failed (0-based)
//! ```
//!
//! Anything else is refused: unknown verbs, extra or missing tokens, bad base64, fields over their
//! limits, more than [`MAX_ACCOUNTS`] accounts. The helper never takes a path from the server: it
//! finds each account's mailbox itself.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

/// The largest frame either side reads.
pub const MAX_FRAME: usize = 64 * 1024;
/// Accounts in one delivery request.
pub const MAX_ACCOUNTS: usize = 1000;
/// The longest user, account or sender.
pub const MAX_NAME: usize = 512;
/// The longest password.
pub const MAX_PASSWORD: usize = 1024;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    Verify { user: String, password: Vec<u8> },
    Deliver { sender: String, arrival: u64, accounts: Vec<String> },
    Session(SessionRequest),
    Forward { user: String },
}

/// What a mail process needs to know of a session handed to it: whose it is (proved by the token
/// the password check gave), which protocol, and for the log and capabilities, the session id,
/// the client's address and whether the client connection is TLS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRequest {
    pub user: String,
    pub token: String,
    pub service: String,
    pub sid: String,
    pub peer: String,
    pub tls: bool,
}

/// The most a list file read through the helper may hold (the frame must carry it in base64).
pub const MAX_DATA: usize = 40 * 1024;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    /// The password is right; the token lets the server ask for one mail session of that user.
    Yes(String),
    No,
    Data(Vec<u8>),
    Ok(Vec<String>),
    Fail {
        index: usize,
        permanent: bool,
        text: String,
    },
    Error(String),
}

/// Puts `id` in front of a request or response.
pub fn tag(id: u64, body: &str) -> String {
    format!("{id} {body}")
}

/// Splits a frame into its id and the request or response after it.
pub fn untag(frame: &[u8]) -> Result<(u64, &[u8]), String> {
    let sp = frame.iter().position(|&b| b == b' ').ok_or_else(|| "no id".to_string())?;
    let digits = &frame[..sp];
    if digits.is_empty() || digits.len() > 20 || !digits.iter().all(u8::is_ascii_digit) {
        return Err("bad id".into());
    }
    let id =
        std::str::from_utf8(digits).ok().and_then(|d| d.parse().ok()).ok_or_else(|| "bad id".to_string())?;
    Ok((id, &frame[sp + 1..]))
}

pub(crate) fn b64(s: &[u8]) -> String {
    B64.encode(s)
}

pub(crate) fn unb64(t: &str, max: usize) -> Result<Vec<u8>, String> {
    // Each 4 base64 characters carry 3 bytes: refuse long tokens before decoding them.
    if t.len() > max.div_ceil(3) * 4 {
        return Err("field too long".into());
    }
    B64.decode(t)
        .map_err(|_| "bad base64".to_string())
        .and_then(|v| if v.len() > max { Err("field too long".into()) } else { Ok(v) })
}

fn text(t: &str, max: usize) -> Result<String, String> {
    let v = unb64(t, max)?;
    let s = String::from_utf8(v).map_err(|_| "field is not UTF-8".to_string())?;
    if s.chars().any(|c| c.is_control()) {
        return Err("control character in a field".into());
    }
    Ok(s)
}

impl Request {
    pub fn encode(&self) -> String {
        match self {
            Request::Verify { user, password } => {
                format!("verify {} {}", b64(user.as_bytes()), b64(password))
            }
            Request::Deliver { sender, arrival, accounts } => {
                let mut s = format!("deliver {} {arrival}", b64(sender.as_bytes()));
                for a in accounts {
                    s.push(' ');
                    s.push_str(&b64(a.as_bytes()));
                }
                s
            }
            Request::Session(r) => format!(
                "session {} {} {} {} {} {}",
                b64(r.user.as_bytes()),
                r.token,
                r.service,
                b64(r.sid.as_bytes()),
                b64(r.peer.as_bytes()),
                if r.tls { "tls" } else { "plain" }
            ),
            Request::Forward { user } => format!("forward {}", b64(user.as_bytes())),
        }
    }

    pub fn decode(frame: &[u8]) -> Result<Request, String> {
        let line = std::str::from_utf8(frame).map_err(|_| "request is not ASCII".to_string())?;
        let mut t = line.split(' ');
        match t.next() {
            Some("verify") => {
                let (Some(u), Some(p), None) = (t.next(), t.next(), t.next()) else {
                    return Err("verify takes a user and a password".into());
                };
                let user = text(u, MAX_NAME)?;
                if user.is_empty() {
                    return Err("empty user".into());
                }
                Ok(Request::Verify { user, password: unb64(p, MAX_PASSWORD)? })
            }
            Some("deliver") => {
                let (Some(s), Some(a)) = (t.next(), t.next()) else {
                    return Err("deliver takes a sender, an arrival time and accounts".into());
                };
                let sender = text(s, MAX_NAME)?;
                if a.is_empty() || a.len() > 20 || !a.bytes().all(|b| b.is_ascii_digit()) {
                    return Err("bad arrival time".into());
                }
                let arrival = a.parse().map_err(|_| "bad arrival time".to_string())?;
                let mut accounts = Vec::new();
                for tok in t {
                    if accounts.len() == MAX_ACCOUNTS {
                        return Err("too many accounts".into());
                    }
                    accounts.push(account_name(text(tok, MAX_NAME)?)?);
                }
                if accounts.is_empty() {
                    return Err("deliver needs at least one account".into());
                }
                Ok(Request::Deliver { sender, arrival, accounts })
            }
            Some("session") => {
                let (Some(u), Some(k), Some(v), Some(i), Some(p), Some(tls), None) =
                    (t.next(), t.next(), t.next(), t.next(), t.next(), t.next(), t.next())
                else {
                    return Err(
                        "session takes a user, a token, a service, a session id, a peer and tls".into()
                    );
                };
                let user = account_name(text(u, MAX_NAME)?)?;
                let token = token(k)?.to_string();
                if !matches!(v, "imap" | "pop3" | "sieve") {
                    return Err("bad service".into());
                }
                let tls = match tls {
                    "tls" => true,
                    "plain" => false,
                    _ => return Err("bad tls flag".into()),
                };
                Ok(Request::Session(SessionRequest {
                    user,
                    token,
                    service: v.into(),
                    sid: text(i, 64)?,
                    peer: text(p, 64)?,
                    tls,
                }))
            }
            Some("forward") => {
                let (Some(u), None) = (t.next(), t.next()) else { return Err("forward takes a user".into()) };
                Ok(Request::Forward { user: account_name(text(u, MAX_NAME)?)? })
            }
            _ => Err("unknown request".into()),
        }
    }
}

/// A Unix login name as the helper takes it: not empty, no blanks, no slash.
fn account_name(s: String) -> Result<String, String> {
    if s.is_empty() || s.contains(char::is_whitespace) || s.contains('/') {
        return Err("bad account name".into());
    }
    Ok(s)
}

/// A session token: 32 lowercase hex digits.
fn token(t: &str) -> Result<&str, String> {
    if t.len() == 32 && t.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        Ok(t)
    } else {
        Err("bad token".into())
    }
}

impl Response {
    pub fn encode(&self) -> String {
        match self {
            Response::Yes(token) => format!("yes {token}"),
            Response::No => "no".into(),
            Response::Data(bytes) => format!("data {}", b64(bytes)),
            Response::Ok(paths) => {
                let mut s = "ok".to_string();
                for p in paths {
                    s.push(' ');
                    s.push_str(&b64(p.as_bytes()));
                }
                s
            }
            Response::Fail { index, permanent, text } => {
                format!("fail {index} {} {}", if *permanent { "perm" } else { "temp" }, b64(text.as_bytes()))
            }
            Response::Error(text) => format!("error {}", b64(text.as_bytes())),
        }
    }

    pub fn decode(frame: &[u8]) -> Result<Response, String> {
        let line = std::str::from_utf8(frame).map_err(|_| "response is not ASCII".to_string())?;
        let mut t = line.split(' ');
        let r = match t.next() {
            Some("yes") => {
                let Some(k) = t.next() else { return Err("yes takes a token".into()) };
                Response::Yes(token(k)?.to_string())
            }
            Some("data") => {
                let Some(d) = t.next() else { return Err("data takes the bytes".into()) };
                Response::Data(unb64(d, MAX_DATA)?)
            }
            Some("no") => Response::No,
            Some("ok") => {
                let mut paths = Vec::new();
                for tok in t.by_ref() {
                    if paths.len() == MAX_ACCOUNTS {
                        return Err("too many paths".into());
                    }
                    paths.push(text(tok, 4096)?);
                }
                Response::Ok(paths)
            }
            Some("fail") => {
                let (Some(i), Some(k), Some(m)) = (t.next(), t.next(), t.next()) else {
                    return Err("fail takes an index, a kind and a text".into());
                };
                if i.is_empty() || i.len() > 4 || !i.bytes().all(|b| b.is_ascii_digit()) {
                    return Err("bad index".into());
                }
                let permanent = match k {
                    "perm" => true,
                    "temp" => false,
                    _ => return Err("bad failure kind".into()),
                };
                Response::Fail { index: i.parse().map_err(|_| "bad index")?, permanent, text: text(m, 4096)? }
            }
            Some("error") => {
                let (Some(m), None) = (t.next(), t.next()) else { return Err("error takes a text".into()) };
                Response::Error(text(m, 4096)?)
            }
            _ => return Err("unknown response".into()),
        };
        if t.next().is_some() {
            return Err("extra tokens".into());
        }
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for r in [
            Request::Verify { user: "alice".into(), password: b"p w\0x".to_vec() },
            Request::Deliver {
                sender: String::new(),
                arrival: 1_795_848_000,
                accounts: vec!["alice".into()],
            },
            Request::Deliver {
                sender: "bob@example.org".into(),
                arrival: 0,
                accounts: vec!["alice@a.example".into(), "root".into()],
            },
            Request::Session(SessionRequest {
                user: "alice".into(),
                token: "0123456789abcdef0123456789abcdef".into(),
                service: "imap".into(),
                sid: "E6FDC117F6913001".into(),
                peer: "[::1]:40000".into(),
                tls: true,
            }),
            Request::Forward { user: "alice".into() },
        ] {
            assert_eq!(Request::decode(r.encode().as_bytes()), Ok(r));
        }
        for r in [
            Response::Yes("0123456789abcdef0123456789abcdef".into()),
            Response::No,
            Response::Data(b"alice\n|/bin/true\n".to_vec()),
            Response::Ok(vec!["/home/a/Maildir/new/1.x".into()]),
            Response::Ok(vec![]),
            Response::Fail { index: 3, permanent: true, text: "quota".into() },
            Response::Error("cannot read".into()),
        ] {
            assert_eq!(Response::decode(r.encode().as_bytes()), Ok(r));
        }
    }

    #[test]
    fn malformed_requests_are_refused() {
        let a = b64(b"alice");
        let long = b64(&[b'a'; MAX_NAME + 1]);
        for bad in [
            String::new(),
            "VERIFY x y".into(),
            format!("verify {a}"),
            format!("verify {a} {a} {a}"),
            format!("verify  {a} {a}"),
            "verify !!! x".into(),
            format!("verify {long} {a}"),
            format!("deliver {a} 12"),
            format!("deliver {a} -1 {a}"),
            format!("deliver {a} 123456789012345678901 {a}"),
            format!("deliver {a} 1 {}", b64(b"../etc")),
            format!("deliver {a} 1 {}", b64(b"a b")),
            format!("deliver {a} 1 {}", b64(b"a\nb")),
            format!("deliver {a} 1 {}", b64(b"")),
            format!("deliver {a} 1 {a}{a}"),
            format!("deliver {a} 1 {}", vec![a.clone(); MAX_ACCOUNTS + 1].join(" ")),
            "rm -rf /".into(),
            format!("session {a} 0123456789ABCDEF0123456789abcdef imap {a} {a} tls"),
            format!("session {a} 0123456789abcdef imap {a} {a} tls"),
            format!("session {a} 0123456789abcdef0123456789abcdef smtp {a} {a} tls"),
            format!("session {a} 0123456789abcdef0123456789abcdef imap {a} {a} yes"),
            format!("session {} 0123456789abcdef0123456789abcdef imap {a} {a} tls", b64(b"../x")),
            format!("forward {}", b64(b"a/b")),
            format!("forward {a} {a}"),
        ] {
            assert!(Request::decode(bad.as_bytes()).is_err(), "{bad:?} was accepted");
        }
        assert!(Request::decode(&[0xff, 0xfe]).is_err());
    }

    #[test]
    fn ids_are_digits_then_one_space() {
        assert_eq!(untag(tag(7, "yes").as_bytes()), Ok((7, &b"yes"[..])));
        assert_eq!(untag(tag(u64::MAX, "").as_bytes()), Ok((u64::MAX, &b""[..])));
        for bad in [
            &b"yes"[..],
            b" yes",
            b"x1 yes",
            b"-1 yes",
            b"99999999999999999999 yes",
            b"123456789012345678901 y",
        ] {
            assert!(untag(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
