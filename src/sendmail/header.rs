//! The header section of a locally submitted message: a bounded line-fed scanner (RFC 5322 2.2
//! fields, 2.2.3 folding, 2.1 the blank line before the body), recipient extraction for `-t`
//! (RFC 5322 3.6.3 To/Cc/Bcc, 3.6.6 Resent-*), and completion with the fields RFC 5322 3.6 requires
//! (Date, From) and recommends (Message-ID), dropping Bcc (RFC 5322 3.6.3, as Postfix does).
//!
//! Shared by `buzon sendmail` (which checks what the server will check before it says "sent") and
//! the server's pickup, so both apply the same limits.

use std::io::{self, BufRead};

use crate::addr::Address;

/// Longest physical line read in the header section (RFC 5322 2.1.1 says 998; old mailers exceed it).
pub const MAX_LINE: usize = 64 * 1024;
/// Largest header section accepted.
pub const MAX_SECTION: usize = 1024 * 1024;

/// Why a header section was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderError {
    LineTooLong,
    SectionTooLarge,
}

impl std::fmt::Display for HeaderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HeaderError::LineTooLong => write!(f, "a header line is longer than {MAX_LINE} bytes"),
            HeaderError::SectionTooLarge => {
                write!(f, "the header section is larger than {MAX_SECTION} bytes")
            }
        }
    }
}

/// What a fed line was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fed {
    /// A header field or a continuation of one: keep feeding.
    Field,
    /// A leading mbox `From ` line, dropped as sendmail drops it.
    Dropped,
    /// The blank line that ends the section (not part of any field).
    End,
    /// Not a header line: the section ended without a blank line and this line starts the body.
    Body,
}

/// One header field as written: its physical lines, each ending with LF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    raw: Vec<u8>,
    name_len: usize,
}

impl Field {
    /// The field name as written (RFC 5322 2.2: printable ASCII other than ':').
    pub fn name(&self) -> &str {
        std::str::from_utf8(self.raw.get(..self.name_len).unwrap_or_default()).unwrap_or("")
    }

    /// Case-insensitive name comparison (RFC 5322 1.2.2).
    pub fn is(&self, name: &str) -> bool {
        self.name().eq_ignore_ascii_case(name)
    }

    /// The unfolded value (RFC 5322 2.2.3), invalid UTF-8 replaced.
    pub fn value(&self) -> String {
        let after = self.raw.iter().position(|&b| b == b':').map_or(self.raw.len(), |i| i + 1);
        let v = String::from_utf8_lossy(self.raw.get(after..).unwrap_or_default());
        v.replace("\r\n", "").replace('\n', "").trim().to_string()
    }

    /// The field's bytes, LF-terminated.
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }
}

/// The header section being scanned, fed one physical line at a time.
#[derive(Debug, Default)]
pub struct HeaderSection {
    fields: Vec<Field>,
    bytes: usize,
    lines: usize,
    done: bool,
}

/// The length of the field name at the start of `line` when it is a header field line
/// (`name *WSP ":"`, the WSP allowed by RFC 5322 4.5 obs-optional).
fn field_name_len(line: &[u8]) -> Option<usize> {
    let n = line.iter().position(|&b| !(33..=126).contains(&b) || b == b':')?;
    if n == 0 {
        return None;
    }
    let rest = line.get(n..)?;
    let ws = rest.iter().take_while(|&&b| b == b' ' || b == b'\t').count();
    (rest.get(ws) == Some(&b':')).then_some(n)
}

impl HeaderSection {
    pub fn new() -> HeaderSection {
        HeaderSection::default()
    }

    /// Feeds one physical line (with its LF, or without at the end of input). After `End` or `Body`
    /// the section is complete and further lines are not taken.
    pub fn feed(&mut self, line: &[u8]) -> Result<Fed, HeaderError> {
        if self.done {
            return Ok(Fed::Body);
        }
        if line.len() > MAX_LINE {
            return Err(HeaderError::LineTooLong);
        }
        let first = self.lines == 0;
        self.lines += 1;
        let content = line.strip_suffix(b"\n").unwrap_or(line);
        let content = content.strip_suffix(b"\r").unwrap_or(content);
        if content.is_empty() {
            self.done = true;
            return Ok(Fed::End);
        }
        if first && content.starts_with(b"From ") {
            return Ok(Fed::Dropped);
        }
        self.bytes += line.len() + 1;
        if self.bytes > MAX_SECTION {
            return Err(HeaderError::SectionTooLarge);
        }
        let mut owned = content.to_vec();
        owned.push(b'\n');
        if content.starts_with(b" ") || content.starts_with(b"\t") {
            if let Some(last) = self.fields.last_mut() {
                last.raw.extend_from_slice(&owned);
                return Ok(Fed::Field);
            }
        } else if let Some(name_len) = field_name_len(content) {
            self.fields.push(Field { raw: owned, name_len });
            return Ok(Fed::Field);
        }
        self.done = true;
        Ok(Fed::Body)
    }

    pub fn fields(&self) -> &[Field] {
        &self.fields
    }

    /// Whether a field of that name is present.
    pub fn has(&self, name: &str) -> bool {
        self.fields.iter().any(|f| f.is(name))
    }

    /// The recipients `-t` takes: the addresses of every To, Cc and Bcc field, or of the Resent-To,
    /// Resent-Cc and Resent-Bcc fields when the message carries any (RFC 5322 3.6.6: a resent
    /// message goes to the resent recipients). Group syntax and display names are understood
    /// (RFC 5322 3.4); duplicates are dropped. Err names the field that does not parse.
    pub fn recipients(&self) -> Result<Vec<String>, String> {
        const PLAIN: [&str; 3] = ["To", "Cc", "Bcc"];
        const RESENT: [&str; 3] = ["Resent-To", "Resent-Cc", "Resent-Bcc"];
        let names = if self.fields.iter().any(|f| RESENT.iter().any(|n| f.is(n))) { RESENT } else { PLAIN };
        let mut out: Vec<String> = Vec::new();
        for f in self.fields.iter().filter(|f| names.iter().any(|n| f.is(n))) {
            let value = f.value();
            let list = address_list(&value).map_err(|e| format!("{}: {e}: {value:?}", f.name()))?;
            for addr in list {
                if check_recipient(&addr).is_err() {
                    return Err(format!("{}: bad address {addr:?}", f.name()));
                }
                if !out.contains(&addr) {
                    out.push(addr);
                }
            }
        }
        Ok(out)
    }

    /// Writes the section as it will be stored: every field except Bcc and Resent-Bcc (RFC 5322
    /// 3.6.3: "the Bcc: line is removed") and Return-Path (RFC 5321 4.4: only final delivery adds
    /// it), then the fields of `add` that are missing, then the blank line. Returns the names added.
    pub fn write_completed(&self, add: &Completion<'_>, out: &mut Vec<u8>) -> Vec<&'static str> {
        for f in &self.fields {
            if f.is("Bcc") || f.is("Resent-Bcc") || f.is("Return-Path") {
                continue;
            }
            out.extend_from_slice(&f.raw);
        }
        let mut added = Vec::new();
        let mut add_field = |name: &'static str, value: &str| {
            if !self.has(name) {
                out.extend_from_slice(format!("{name}: {value}\n").as_bytes());
                added.push(name);
            }
        };
        // RFC 5322 3.6: Date and From are required; 3.6.4: Message-ID "SHOULD" be present.
        add_field("Date", add.date);
        add_field("From", add.from);
        add_field("Message-ID", add.message_id);
        out.push(b'\n');
        added
    }
}

/// The values used for missing fields.
#[derive(Debug, Clone)]
pub struct Completion<'a> {
    /// RFC 5322 3.3 date-time.
    pub date: &'a str,
    /// A rendered mailbox, e.g. from [`mailbox`].
    pub from: &'a str,
    /// `<id@host>` (RFC 5322 3.6.4 msg-id).
    pub message_id: &'a str,
}

/// The addresses of an RFC 5322 3.4 address-list: `Name <addr>`, `addr (comment)`, groups
/// `name: a, b;`, and, unlike RFC 5322 but as sendmail takes them, bare local names (`root`). A
/// source route (`<@a,@b:x@y>`, RFC 5322 4.4 obs-route) is dropped. The addresses are not checked.
pub fn address_list(value: &str) -> Result<Vec<String>, String> {
    #[derive(Default)]
    struct Item {
        text: String,
        angle: Option<String>,
    }
    fn finish(item: &mut Item, out: &mut Vec<String>) -> Result<(), String> {
        let it = std::mem::take(item);
        if it.angle.as_deref().is_some_and(|a| a.trim().is_empty()) {
            return Err("empty address <>".into());
        }
        let addr = match it.angle {
            Some(a) => match a.rsplit_once(':') {
                Some((route, rest)) if a.starts_with('@') && !route.contains('"') => rest.to_string(),
                _ => a,
            },
            None => it.text,
        };
        let addr = addr.trim().to_string();
        if !addr.is_empty() {
            out.push(addr);
        }
        Ok(())
    }
    let mut out = Vec::new();
    let mut item = Item::default();
    let (mut quoted, mut escaped, mut comment, mut in_angle, mut literal, mut group) =
        (false, false, 0usize, false, false, false);
    for c in value.chars() {
        let push = |item: &mut Item, ch: char| match (in_angle, item.angle.as_mut()) {
            (true, Some(a)) => a.push(ch),
            _ => item.text.push(ch),
        };
        if comment > 0 {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '(' => comment += 1,
                ')' => comment -= 1,
                _ => {}
            }
            continue;
        }
        if escaped || quoted {
            if !escaped && c == '"' {
                quoted = false;
            } else {
                escaped = !escaped && c == '\\';
            }
            push(&mut item, c);
            continue;
        }
        match c {
            '"' => {
                quoted = true;
                push(&mut item, c);
            }
            '(' => comment = 1,
            '[' => {
                literal = true;
                push(&mut item, c);
            }
            ']' => {
                literal = false;
                push(&mut item, c);
            }
            '<' if !in_angle => {
                in_angle = true;
                item.angle = Some(String::new());
            }
            '<' => return Err("nested '<'".into()),
            '>' if in_angle => in_angle = false,
            '>' => return Err("'>' without '<'".into()),
            _ if in_angle || literal => push(&mut item, c),
            ':' if !group => {
                group = true;
                item = Item::default();
            }
            ';' if group => {
                finish(&mut item, &mut out)?;
                group = false;
            }
            ',' => finish(&mut item, &mut out)?,
            _ => push(&mut item, c),
        }
    }
    if quoted || comment > 0 || in_angle || literal {
        return Err("unterminated quote, comment, '<' or '['".into());
    }
    finish(&mut item, &mut out)?;
    Ok(out)
}

/// Reads one physical line into `out` (cleared first): up to and including LF, at most `cap`
/// bytes. Returns false at the end of input (nothing read).
pub fn read_piece<R: BufRead>(r: &mut R, cap: usize, out: &mut Vec<u8>) -> io::Result<bool> {
    out.clear();
    while out.len() < cap {
        let buf = match r.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if buf.is_empty() {
            break;
        }
        let room = cap - out.len();
        let take = buf.iter().take(room).position(|&b| b == b'\n').map(|i| i + 1);
        let n = take.unwrap_or(buf.len().min(room));
        out.extend_from_slice(buf.get(..n).unwrap_or_default());
        r.consume(n);
        if take.is_some() {
            break;
        }
    }
    Ok(!out.is_empty())
}

/// Checks a recipient as given to sendmail: a mailbox `local@domain` (RFC 5321 4.1.2) or a bare
/// local part, which the server puts in its first local domain.
pub fn check_recipient(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("empty address".into());
    }
    let parsed = if s.contains('@') { Address::parse(s) } else { Address::parse(&format!("{s}@localhost")) };
    parsed.map(|_| ()).map_err(|e| format!("{s:?}: {e}"))
}

/// A recipient in canonical form: bare names get `default_domain`.
pub fn qualify(s: &str, default_domain: &str) -> Result<String, String> {
    let full = if s.contains('@') { s.to_string() } else { format!("{s}@{default_domain}") };
    Address::parse(&full).map(|a| a.to_string()).map_err(|e| format!("{s:?}: {e}"))
}

/// `Full Name <addr>` as an RFC 5322 3.4 mailbox: the name as atoms when it is made of them, else
/// a quoted-string (3.2.4), or RFC 2047 encoded-words when it is not ASCII. No name: the bare addr.
pub fn mailbox(name: Option<&str>, addr: &str) -> String {
    let name = name.map(str::trim).filter(|n| !n.is_empty());
    let Some(name) = name else { return addr.to_string() };
    let name: String = name.chars().filter(|c| !c.is_control()).collect();
    let atext = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~ ".contains(c);
    let phrase = if name.chars().all(atext) {
        name
    } else if name.is_ascii() {
        let mut q = String::from("\"");
        for c in name.chars() {
            if c == '"' || c == '\\' {
                q.push('\\');
            }
            q.push(c);
        }
        q.push('"');
        q
    } else {
        encoded_words(&name)
    };
    format!("{phrase} <{addr}>")
}

/// RFC 2047 B-encoded words of at most 75 characters, folded onto continuation lines.
fn encoded_words(s: &str) -> String {
    use base64::Engine as _;
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in s.chars() {
        // 45 bytes encode to 60 characters: with "=?UTF-8?B?" and "?=" that is 72 (RFC 2047 2: <= 75).
        if chunk.len() + c.len_utf8() > 45 {
            words.push(std::mem::take(&mut chunk));
        }
        chunk.push(c);
    }
    if !chunk.is_empty() {
        words.push(chunk);
    }
    words
        .iter()
        .map(|w| format!("=?UTF-8?B?{}?=", base64::engine::general_purpose::STANDARD.encode(w.as_bytes())))
        .collect::<Vec<_>>()
        .join("\n ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(text: &str) -> (HeaderSection, Vec<Fed>) {
        let mut h = HeaderSection::new();
        let mut r = text.as_bytes();
        let mut line = Vec::new();
        let mut fed = Vec::new();
        while read_piece(&mut r, MAX_LINE + 1, &mut line).unwrap() {
            let f = h.feed(&line).unwrap();
            fed.push(f);
            if matches!(f, Fed::End | Fed::Body) {
                break;
            }
        }
        (h, fed)
    }

    #[test]
    fn fields_folding_and_end() {
        let (h, fed) = scan("From sender Mon Jan 1\nSubject: hi\n there\nTo : a@b.c\n\nbody\n");
        assert_eq!(fed, [Fed::Dropped, Fed::Field, Fed::Field, Fed::Field, Fed::End]);
        assert_eq!(h.fields().len(), 2);
        assert_eq!(h.fields()[0].name(), "Subject");
        assert_eq!(h.fields()[0].value(), "hi there");
        assert!(h.has("to"));
        assert_eq!(h.fields()[1].value(), "a@b.c");
    }

    #[test]
    fn body_without_blank_line() {
        for (text, fields) in
            [("hello world\n", 0), ("Subject: x\nthis is body\n", 1), (" leading blank\n", 0), (": x\n", 0)]
        {
            let (h, fed) = scan(text);
            assert_eq!(fed.last(), Some(&Fed::Body), "{text:?}");
            assert_eq!(h.fields().len(), fields, "{text:?}");
        }
        let (_, fed) = scan("Subject: x\r\n\r\nbody");
        assert_eq!(fed, [Fed::Field, Fed::End]);
    }

    #[test]
    fn limits() {
        let mut h = HeaderSection::new();
        assert_eq!(h.feed(&vec![b'a'; MAX_LINE + 1]), Err(HeaderError::LineTooLong));
        let mut h = HeaderSection::new();
        let line = format!("X-Big: {}\n", "y".repeat(60_000));
        let mut err = None;
        for _ in 0..100 {
            if let Err(e) = h.feed(line.as_bytes()) {
                err = Some(e);
                break;
            }
        }
        assert_eq!(err, Some(HeaderError::SectionTooLarge));
    }

    #[test]
    fn read_piece_caps_lines() {
        let mut r = &b"abcdef\ngh"[..];
        let mut out = Vec::new();
        assert!(read_piece(&mut r, 4, &mut out).unwrap());
        assert_eq!(out, b"abcd");
        assert!(read_piece(&mut r, 4, &mut out).unwrap());
        assert_eq!(out, b"ef\n");
        assert!(read_piece(&mut r, 4, &mut out).unwrap());
        assert_eq!(out, b"gh");
        assert!(!read_piece(&mut r, 4, &mut out).unwrap());
    }

    #[test]
    fn recipients_for_t() {
        let (h, _) = scan(
            "To: Alice <alice@example.test>, bob\nCc: undisclosed-recipients:;\n\
             Cc: team: carol@x.test, \"D. D\" <dave@x.test>;\nBcc: erin@x.test, alice@example.test\n\
             Subject: To: nobody@x.test\n\n",
        );
        assert_eq!(
            h.recipients().unwrap(),
            ["alice@example.test", "bob", "carol@x.test", "dave@x.test", "erin@x.test"]
        );
        let (h, _) = scan("To: a@x.test\nResent-To: r@x.test\nResent-Bcc: s@x.test\n\n");
        assert_eq!(h.recipients().unwrap(), ["r@x.test", "s@x.test"]);
        let (h, _) = scan("Subject: none\n\n");
        assert!(h.recipients().unwrap().is_empty());
        let (h, _) = scan("To: a b c <>\n\n");
        assert!(h.recipients().is_err());
        let (h, _) = scan("To: \"x y\"@@x\n\n");
        assert!(h.recipients().is_err());
    }

    #[test]
    fn completion_adds_missing_and_drops_bcc() {
        let add = Completion { date: "Sat, 1 Jan 2028 00:00:00 +0000", from: "a@b", message_id: "<1@h>" };
        let (h, _) = scan("Subject: s\nBcc: hidden@x.test,\n  other@x.test\nReturn-Path: <x@y>\nTo: t@x\n\n");
        let mut out = Vec::new();
        let added = h.write_completed(&add, &mut out);
        assert_eq!(added, ["Date", "From", "Message-ID"]);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "Subject: s\nTo: t@x\nDate: Sat, 1 Jan 2028 00:00:00 +0000\nFrom: a@b\nMessage-ID: <1@h>\n\n"
        );
        let (h, _) = scan("date: x\nFROM: y\nMessage-Id: <z@q>\n\n");
        let mut out = Vec::new();
        assert!(h.write_completed(&add, &mut out).is_empty());
        assert_eq!(out, b"date: x\nFROM: y\nMessage-Id: <z@q>\n\n");
    }

    #[test]
    fn mailboxes() {
        for (name, want) in [
            (None, "u@h"),
            (Some(""), "u@h"),
            (Some("Alice Liddell"), "Alice Liddell <u@h>"),
            (Some("Liddell, Alice"), "\"Liddell, Alice\" <u@h>"),
            (Some("say \"hi\""), "\"say \\\"hi\\\"\" <u@h>"),
            (Some("José"), "=?UTF-8?B?Sm9zw6k=?= <u@h>"),
        ] {
            assert_eq!(mailbox(name, "u@h"), want);
        }
        let long = mailbox(Some(&"é".repeat(40)), "u@h");
        assert!(long.contains("?=\n =?UTF-8?B?"), "{long}");
        assert!(long.lines().all(|l| l.len() <= 78), "{long}");
    }

    #[test]
    fn address_lists() {
        for (v, want) in [
            ("root", &["root"][..]),
            ("a@x, b", &["a@x", "b"]),
            ("\"Doe, John\" <john@x.test> (work), jane@x.test (Jane, Doe)", &["john@x.test", "jane@x.test"]),
            ("team: a@x, \"q,\" <b@y>; c", &["a@x", "b@y", "c"]),
            ("undisclosed-recipients:;", &[]),
            ("<@relay.test,@r2.test:u@x.test>", &["u@x.test"]),
            ("u@[IPv6:2001:db8::1]", &["u@[IPv6:2001:db8::1]"]),
            ("\"a:b\"@x", &["\"a:b\"@x"]),
            (",, a ,", &["a"]),
            ("", &[]),
        ] {
            assert_eq!(address_list(v).unwrap(), want, "{v:?}");
        }
        for bad in ["<>", "a <>, b", "<a@x", "a@x>", "\"open", "(open", "<<a>>", "u@[1.2.3.4"] {
            assert!(address_list(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn recipient_syntax() {
        for ok in ["alice", "alice@example.test", "\"a b\"@x.test", "x@[192.0.2.1]"] {
            assert!(check_recipient(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a b", "@x", "a@", "a@b@c", "a@-x-"] {
            assert!(check_recipient(bad).is_err(), "{bad}");
        }
        assert_eq!(qualify("Alice", "example.test").unwrap(), "Alice@example.test");
        assert_eq!(qualify("b@EXAMPLE.test", "x").unwrap(), "b@example.test");
    }
}
