//! The envelope file format of queue/env/<id>: versioned, line-based, ASCII, parsed strictly.
//!
//! ```text
//! v 1
//! id 0123456789ABCDEF
//! sender alice@example.org
//! arrival 1795844888.000000000
//! next 1795845188.000000000
//! attempts 2
//! body-offset 31
//! smtputf8 0
//! 8bitmime 1
//! warned 0
//! rcpt pending bob@example.net
//! rcpt deferred carol@example.net 451%204.7.1%20Try%20again%20later
//! rcpt sent dave@example.net mx.example.net 250%202.0.0%20Ok
//! rcpt bounced erin@example.net 5.1.1 550%205.1.1%20No%20such%20user
//! end
//! ```
//!
//! Every line is `key` then fields separated by one space, ended by LF. A field is a token: bytes
//! 0x21..=0x7E other than `%` stand for themselves, anything else (space, controls, `%`, UTF-8 of
//! SMTPUTF8 addresses) is `%XX`; the token `-` is the empty string (so `sender -` is the null sender,
//! and a literal "-" is written `%2D`). Times are Unix seconds and nanoseconds (`S.NNNNNNNNN`).
//! `v 1` must be the first line and `end` the last (a truncated file is an error, never a shorter
//! recipient list); every other key appears exactly once except `rcpt` (one or more, in order).
//! Unknown keys, extra or missing fields and bad encodings are errors naming the line.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{Envelope, QueuedRcpt, RcptState, valid_id};

pub const VERSION: u32 = 1;

/// Why an envelope file could not be read; `line` is 1-based (0: the file as a whole).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}", self.message)
        } else {
            write!(f, "line {}: {}", self.line, self.message)
        }
    }
}

impl std::error::Error for ParseError {}

/// Encodes one field.
pub fn encode_token(s: &str) -> String {
    if s.is_empty() {
        return "-".to_string();
    }
    if s == "-" {
        return "%2D".to_string();
    }
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if (0x21..=0x7E).contains(&b) && b != b'%' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes one field (the inverse of [`encode_token`]).
pub fn decode_token(t: &str) -> Result<String, String> {
    if t == "-" {
        return Ok(String::new());
    }
    let b = t.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = b.get(i + 1..i + 3).ok_or("truncated %-escape")?;
                let hex = std::str::from_utf8(hex).map_err(|_| "bad %-escape")?;
                if !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
                    return Err(format!("bad %-escape %{hex}"));
                }
                out.push(u8::from_str_radix(hex, 16).map_err(|_| "bad %-escape")?);
                i += 3;
            }
            c if (0x21..=0x7E).contains(&c) => {
                out.push(c);
                i += 1;
            }
            c => return Err(format!("byte 0x{c:02X} must be %-encoded")),
        }
    }
    String::from_utf8(out).map_err(|_| "not UTF-8 after decoding".to_string())
}

fn render_time(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    format!("{}.{:09}", d.as_secs(), d.subsec_nanos())
}

fn parse_time(s: &str) -> Result<SystemTime, String> {
    let bad = || format!("bad time {s:?} (want SECONDS.NNNNNNNNN)");
    let (secs, nanos) = s.split_once('.').ok_or_else(bad)?;
    if secs.is_empty() || nanos.len() != 9 || !(secs.bytes().chain(nanos.bytes()).all(|c| c.is_ascii_digit()))
    {
        return Err(bad());
    }
    let secs: u64 = secs.parse().map_err(|_| bad())?;
    let nanos: u32 = nanos.parse().map_err(|_| bad())?;
    UNIX_EPOCH.checked_add(Duration::new(secs, nanos)).ok_or_else(bad)
}

fn parse_uint<T: std::str::FromStr>(s: &str) -> Result<T, String> {
    // Digits only: no sign, no spaces (str::parse would take a leading '+').
    if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
        return Err(format!("bad number {s:?}"));
    }
    s.parse().map_err(|_| format!("number out of range {s:?}"))
}

fn parse_bool(s: &str) -> Result<bool, String> {
    match s {
        "0" => Ok(false),
        "1" => Ok(true),
        _ => Err(format!("bad flag {s:?} (want 0 or 1)")),
    }
}

/// The file's text.
pub fn render(env: &Envelope) -> String {
    let mut s = String::with_capacity(256 + 64 * env.recipients.len());
    let b = |v: bool| if v { '1' } else { '0' };
    s.push_str(&format!("v {VERSION}\nid {}\n", env.id));
    s.push_str(&format!("sender {}\n", encode_token(&env.sender)));
    s.push_str(&format!("arrival {}\nnext {}\n", render_time(env.arrival), render_time(env.next_attempt)));
    s.push_str(&format!("attempts {}\nbody-offset {}\n", env.attempts, env.body_offset));
    s.push_str(&format!(
        "smtputf8 {}\n8bitmime {}\nwarned {}\n",
        b(env.smtputf8),
        b(env.eight_bit),
        b(env.warned)
    ));
    for r in &env.recipients {
        let a = encode_token(&r.addr);
        match &r.state {
            RcptState::Pending => s.push_str(&format!("rcpt pending {a}\n")),
            RcptState::Deferred { reply } => {
                s.push_str(&format!("rcpt deferred {a} {}\n", encode_token(reply)))
            }
            RcptState::Sent { relay, reply } => {
                s.push_str(&format!("rcpt sent {a} {} {}\n", encode_token(relay), encode_token(reply)))
            }
            RcptState::Bounced { reply, status } => {
                s.push_str(&format!("rcpt bounced {a} {} {}\n", encode_token(status), encode_token(reply)))
            }
        }
    }
    s.push_str("end\n");
    s
}

/// Parses a whole file.
pub fn parse(text: &[u8]) -> Result<Envelope, ParseError> {
    let err = |line: usize, message: String| ParseError { line, message };
    let text = std::str::from_utf8(text).map_err(|_| err(0, "not ASCII text".into()))?;
    let Some(body) = text.strip_suffix('\n') else {
        return Err(err(0, "truncated: no final newline".into()));
    };
    let mut id = None;
    let mut sender = None;
    let mut arrival = None;
    let mut next = None;
    let mut attempts = None;
    let mut body_offset = None;
    let mut smtputf8 = None;
    let mut eight_bit = None;
    let mut warned = None;
    let mut recipients = Vec::new();
    let mut ended = false;
    let mut last = 0;
    for (i, line) in body.split('\n').enumerate() {
        let n = i + 1;
        last = n;
        if ended {
            return Err(err(n, "text after \"end\"".into()));
        }
        let mut fields = line.split(' ');
        let key = fields.next().unwrap_or("");
        let args: Vec<&str> = fields.collect();
        if args.iter().any(|a| a.is_empty()) {
            return Err(err(n, "empty field (two spaces or a trailing space)".into()));
        }
        if n == 1 {
            if key != "v" {
                return Err(err(n, "not a buzon envelope (first line must be \"v 1\")".into()));
            }
            match args.as_slice() {
                ["1"] => continue,
                _ => return Err(err(n, format!("unsupported version {:?}", args.join(" ")))),
            }
        }
        let one = |what: &str| -> Result<&str, ParseError> {
            match args.as_slice() {
                [v] => Ok(*v),
                _ => Err(err(n, format!("{what} takes one value"))),
            }
        };
        // Sets a key's value once; a repeated key is an error.
        fn set<T>(slot: &mut Option<T>, v: T, n: usize, key: &str) -> Result<(), ParseError> {
            if slot.is_some() {
                return Err(ParseError { line: n, message: format!("{key} repeated") });
            }
            *slot = Some(v);
            Ok(())
        }
        let e = |m: String| err(n, format!("{key}: {m}"));
        match key {
            "id" => {
                let v = one(key)?;
                if !valid_id(v) {
                    return Err(e(format!("bad queue id {v:?}")));
                }
                set(&mut id, v.to_string(), n, key)?
            }
            "sender" => set(&mut sender, decode_token(one(key)?).map_err(e)?, n, key)?,
            "arrival" => set(&mut arrival, parse_time(one(key)?).map_err(e)?, n, key)?,
            "next" => set(&mut next, parse_time(one(key)?).map_err(e)?, n, key)?,
            "attempts" => set(&mut attempts, parse_uint::<u32>(one(key)?).map_err(e)?, n, key)?,
            "body-offset" => set(&mut body_offset, parse_uint::<u64>(one(key)?).map_err(e)?, n, key)?,
            "smtputf8" => set(&mut smtputf8, parse_bool(one(key)?).map_err(e)?, n, key)?,
            "8bitmime" => set(&mut eight_bit, parse_bool(one(key)?).map_err(e)?, n, key)?,
            "warned" => set(&mut warned, parse_bool(one(key)?).map_err(e)?, n, key)?,
            "rcpt" => recipients.push(parse_rcpt(&args).map_err(|m| err(n, format!("rcpt: {m}")))?),
            "end" if args.is_empty() => ended = true,
            "" => return Err(err(n, "empty line".into())),
            _ => return Err(err(n, format!("unknown key {key:?}"))),
        }
    }
    if !ended {
        return Err(err(last, "truncated: no \"end\" line".into()));
    }
    let missing = |k: &str| err(last, format!("missing {k}"));
    if recipients.is_empty() {
        return Err(missing("rcpt"));
    }
    Ok(Envelope {
        id: id.ok_or_else(|| missing("id"))?,
        sender: sender.ok_or_else(|| missing("sender"))?,
        recipients,
        arrival: arrival.ok_or_else(|| missing("arrival"))?,
        attempts: attempts.ok_or_else(|| missing("attempts"))?,
        next_attempt: next.ok_or_else(|| missing("next"))?,
        body_offset: body_offset.ok_or_else(|| missing("body-offset"))?,
        smtputf8: smtputf8.ok_or_else(|| missing("smtputf8"))?,
        eight_bit: eight_bit.ok_or_else(|| missing("8bitmime"))?,
        warned: warned.ok_or_else(|| missing("warned"))?,
    })
}

fn parse_rcpt(args: &[&str]) -> Result<QueuedRcpt, String> {
    let d = decode_token;
    let (addr, state) = match args {
        ["pending", a] => (a, RcptState::Pending),
        ["deferred", a, reply] => (a, RcptState::Deferred { reply: d(reply)? }),
        ["sent", a, relay, reply] => (a, RcptState::Sent { relay: d(relay)?, reply: d(reply)? }),
        ["bounced", a, status, reply] => (a, RcptState::Bounced { status: d(status)?, reply: d(reply)? }),
        [s @ ("pending" | "deferred" | "sent" | "bounced"), ..] => {
            return Err(format!("wrong field count for {s}"));
        }
        [s, ..] => return Err(format!("unknown state {s:?}")),
        [] => return Err("no state".into()),
    };
    let addr = d(addr)?;
    if addr.is_empty() {
        return Err("empty address".into());
    }
    Ok(QueuedRcpt { addr, state })
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> Envelope {
        let t = UNIX_EPOCH + Duration::new(1_795_844_888, 123_456_789);
        Envelope {
            id: "0123456789ABCDEF".into(),
            sender: "alice@example.org".into(),
            recipients: vec![
                QueuedRcpt { addr: "bob@example.net".into(), state: RcptState::Pending },
                QueuedRcpt {
                    addr: "carol@example.net".into(),
                    state: RcptState::Deferred { reply: "451 4.7.1 Try again later".into() },
                },
                QueuedRcpt {
                    addr: "dave@example.net".into(),
                    state: RcptState::Sent { relay: "mx.example.net".into(), reply: "250 2.0.0 Ok".into() },
                },
                QueuedRcpt {
                    addr: "erin@example.net".into(),
                    state: RcptState::Bounced {
                        reply: "550 5.1.1 No\nsuch user %".into(),
                        status: "5.1.1".into(),
                    },
                },
                QueuedRcpt {
                    addr: "jösé@exämple.net".into(),
                    state: RcptState::Deferred { reply: String::new() },
                },
                QueuedRcpt { addr: "-".into(), state: RcptState::Pending },
            ],
            arrival: t,
            attempts: 2,
            next_attempt: t + Duration::from_secs(600),
            body_offset: 31,
            smtputf8: true,
            eight_bit: false,
            warned: true,
        }
    }

    #[test]
    fn round_trip_and_shape() {
        let e = sample();
        let text = render(&e);
        assert!(text.starts_with("v 1\nid 0123456789ABCDEF\n"), "{text}");
        assert!(text.ends_with("\nend\n"));
        assert!(text.is_ascii());
        assert!(
            text.contains("rcpt deferred carol@example.net 451%204.7.1%20Try%20again%20later\n"),
            "{text}"
        );
        assert!(text.contains("rcpt deferred j%C3%B6s%C3%A9@ex%C3%A4mple.net -\n"), "{text}");
        assert!(text.contains("rcpt pending %2D\n"), "{text}");
        assert_eq!(parse(text.as_bytes()).unwrap(), e);
        let mut null = e.clone();
        null.sender.clear();
        let text = render(&null);
        assert!(text.contains("\nsender -\n"));
        assert_eq!(parse(text.as_bytes()).unwrap(), null);
    }

    #[test]
    fn tokens() {
        for s in ["", "-", "a b", "%", "x\r\ny", "ü", "--", "a-b", "\u{7f}"] {
            let t = encode_token(s);
            assert!(!t.is_empty() && t.bytes().all(|b| (0x21..=0x7E).contains(&b)), "{s:?} -> {t:?}");
            assert_eq!(decode_token(&t).unwrap(), s);
        }
        for bad in ["%", "%4", "%zz", "a%2", "é", "a\tb", "%FF"] {
            assert!(decode_token(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn garbage_is_refused_with_the_line() {
        let good = render(&sample());
        let replace = |from: &str, to: &str| {
            assert!(good.contains(from), "{from}");
            good.replacen(from, to, 1)
        };
        let cases: Vec<(String, usize, &str)> = vec![
            (String::new(), 0, "no final newline"),
            ("\n".into(), 1, "first line"),
            ("hello world\n".into(), 1, "first line"),
            (replace("v 1\n", "v 2\n"), 1, "unsupported version"),
            (replace("v 1\n", "v  1\n"), 1, "empty field"),
            (replace("id 0123456789ABCDEF", "id ../../etc/passwd"), 2, "bad queue id"),
            (replace("attempts 2", "attempts -2"), 6, "bad number"),
            (replace("attempts 2", "attempts 99999999999"), 6, "out of range"),
            (replace("attempts 2", "attempts 2 3"), 6, "one value"),
            (replace("arrival 1795844888.123456789", "arrival 1795844888"), 4, "bad time"),
            (replace("smtputf8 1", "smtputf8 yes"), 8, "bad flag"),
            (replace("warned 1\n", "warned 1\nwarned 1\n"), 11, "repeated"),
            (replace("warned 1\n", "colour blue\n"), 10, "unknown key"),
            (replace("warned 1\n", "warned 1\n\n"), 11, "empty line"),
            (replace("rcpt pending bob", "rcpt queued bob"), 11, "unknown state"),
            (replace("rcpt pending bob@example.net", "rcpt pending bob@example.net x"), 11, "field count"),
            (replace("rcpt pending bob@example.net", "rcpt pending bo%2"), 11, "escape"),
            (replace("rcpt pending bob@example.net", "rcpt pending -"), 11, "empty address"),
            (replace("warned 1\n", ""), 16, "missing warned"),
            (replace("end\n", ""), 16, "no \"end\""),
            (replace("end\n", "end\nrcpt pending x@y\n"), 18, "after \"end\""),
            (good.trim_end().to_string(), 0, "no final newline"),
            (good.replace("rcpt ", "#rcpt "), 11, "unknown key"),
        ];
        for (text, line, want) in cases {
            let e = parse(text.as_bytes()).expect_err(&text);
            assert_eq!(e.line, line, "{text}\n{e}");
            assert!(e.to_string().contains(want), "{text}\n{e} (want {want})");
        }
        let only = "v 1\nid 0123456789ABCDEF\nend\n";
        assert!(parse(only.as_bytes()).unwrap_err().message.contains("missing rcpt"));
        assert!(parse(b"v 1\n\xff\n").is_err());
    }
}
