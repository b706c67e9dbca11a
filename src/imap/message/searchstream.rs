//! SEARCH BODY/TEXT/HEADER over a message read as a stream (RFC 3501 6.4.4): the same decoded,
//! folded text as text.rs builds in memory, made and matched in bounded pieces.

use std::io::{BufRead, BufReader, Read};
use std::ops::Range;

use super::decode::{Cte, Decoder, cte};
use super::mime::{ContentType, fields, first};
use super::parsed::Parsed;
use super::text::{fold, header_text};
use super::tree::{Kind, Part};

/// Text folded at once: a piece is cut where folding cannot depend on what follows.
const PIECE: usize = 64 * 1024;
/// A piece with no such place is cut anyway past this length (see [`safe_cut`]).
const PIECE_MAX: usize = 1024 * 1024;
/// The most of one header field a SEARCH of a large message holds: a longer field is searched in
/// its first megabyte (its decoded and folded copies cost a few times that).
const FIELD_MAX: usize = 1024 * 1024;
/// Octets read from the store at a time.
const READ: usize = 64 * 1024;

/// Looks for a folded needle in text given in pieces: the pieces are folded as [`fold`] folds
/// the whole, and a match across two pieces is found (the last needle-length-minus-one octets of
/// the folded text are kept).
pub struct Matcher<'n> {
    needle: &'n str,
    pending: String,
    tail: String,
    found: bool,
}

impl<'n> Matcher<'n> {
    /// `needle` is already folded.
    pub fn new(needle: &'n str) -> Self {
        Matcher { needle, pending: String::new(), tail: String::new(), found: false }
    }

    pub fn found(&self) -> bool {
        self.found
    }

    pub fn push(&mut self, s: &str) {
        if self.found {
            return;
        }
        self.pending.push_str(s);
        if self.pending.len() >= PIECE {
            let cut = safe_cut(&self.pending);
            self.fold_to(cut);
        }
    }

    /// The end of the text: whether the needle was found.
    pub fn finish(mut self) -> bool {
        if !self.found {
            self.fold_to(self.pending.len());
        }
        self.found
    }

    fn fold_to(&mut self, cut: usize) {
        let folded = fold(self.pending.get(..cut).unwrap_or_default());
        self.pending.drain(..cut);
        self.tail.push_str(&folded);
        if self.tail.contains(self.needle) {
            self.found = true;
        }
        let mut keep = self.tail.len().saturating_sub(self.needle.len().saturating_sub(1));
        while !self.tail.is_char_boundary(keep) {
            keep -= 1;
        }
        self.tail.drain(..keep);
    }
}

/// Where text may be cut so that folding each side alone gives what folding the whole does.
/// `str::to_lowercase` looks at the context only for a capital sigma (final or not, Unicode
/// SpecialCasing.txt), through case-ignorable characters up to the nearest other character; an
/// ASCII character that is neither a letter nor case-ignorable (`'` `.` `:` `^` `` ` ``) stops
/// that look on both sides, so the cut is just before the last one. Without one: anywhere, when no
/// sigma is there, or past [`PIECE_MAX`] (a megabyte without a space or digit holding a sigma
/// may then fold one sigma differently).
fn safe_cut(s: &str) -> usize {
    let stop =
        |b: &u8| b.is_ascii() && !b.is_ascii_alphabetic() && !matches!(b, b'\'' | b'.' | b':' | b'^' | b'`');
    match s.as_bytes().iter().rposition(stop) {
        Some(p) if p > 0 => p,
        _ if !s.contains('\u{3a3}') || s.len() > PIECE_MAX => s.len(),
        _ => 0,
    }
}

/// Turns decoded octets of one part into UTF-8 as text.rs `decode_text` does for the whole part.
enum Charset {
    /// No charset, UTF-8 or US-ASCII: a lossy UTF-8 reading; holds an unfinished sequence.
    Utf8(Vec<u8>),
    /// A charset encoding_rs knows (as mailparse reads it: BOM sniffing, replacement characters).
    Encoding(encoding_rs::Decoder),
    /// Others (UTF-7, unknown names) through mailparse, a line at a time (UTF-7 shifts end at a
    /// line break); holds the line not yet ended.
    Lines(String, Vec<u8>),
}

impl Charset {
    fn new(ct: &ContentType) -> Charset {
        let Some(cs) = ct.param("charset").map(|c| String::from_utf8_lossy(c).into_owned()) else {
            return Charset::Utf8(Vec::new());
        };
        if cs.eq_ignore_ascii_case("utf-8") || cs.eq_ignore_ascii_case("us-ascii") {
            return Charset::Utf8(Vec::new());
        }
        let cs = cs.replace(['"', '\\', '\r', '\n'], "");
        let head = format!("Content-Type: text/plain; charset=\"{cs}\"\r\n\r\n");
        match mailparse::parse_mail(head.as_bytes()) {
            Ok(p) => match encoding_rs::Encoding::for_label(p.ctype.charset.as_bytes()) {
                Some(enc) => Charset::Encoding(enc.new_decoder()),
                None => Charset::Lines(head, Vec::new()),
            },
            Err(_) => Charset::Utf8(Vec::new()),
        }
    }

    /// Decodes `input` (`last`: the end of the part) into `m`.
    fn feed(&mut self, input: &[u8], last: bool, m: &mut Matcher<'_>) {
        match self {
            Charset::Utf8(carry) => {
                carry.extend_from_slice(input);
                let mut rest: &[u8] = carry;
                let mut out = String::with_capacity(rest.len());
                loop {
                    match std::str::from_utf8(rest) {
                        Ok(s) => {
                            out.push_str(s);
                            rest = &[];
                            break;
                        }
                        Err(e) => {
                            let (ok, bad) = rest.split_at(e.valid_up_to());
                            out.push_str(std::str::from_utf8(ok).unwrap_or_default());
                            match e.error_len() {
                                Some(n) => {
                                    out.push('\u{fffd}');
                                    rest = bad.get(n..).unwrap_or_default();
                                }
                                // An unfinished sequence: wait for the rest.
                                None if !last => {
                                    rest = bad;
                                    break;
                                }
                                None => {
                                    out.push_str(&String::from_utf8_lossy(bad));
                                    rest = &[];
                                    break;
                                }
                            }
                        }
                    }
                }
                let keep = rest.len();
                carry.drain(..carry.len() - keep);
                m.push(&out);
            }
            Charset::Encoding(d) => {
                let mut src = input;
                loop {
                    let mut out = String::with_capacity(
                        d.max_utf8_buffer_length(src.len()).unwrap_or(4096).min(1 << 20),
                    );
                    let (res, read, _) = d.decode_to_string(src, &mut out, last);
                    m.push(&out);
                    src = src.get(read..).unwrap_or_default();
                    if res == encoding_rs::CoderResult::InputEmpty {
                        break;
                    }
                }
            }
            Charset::Lines(head, line) => {
                line.extend_from_slice(input);
                let cut = if last {
                    line.len()
                } else {
                    match line.iter().rposition(|&b| b == b'\n') {
                        Some(p) => p + 1,
                        None if line.len() > PIECE_MAX => line.len(),
                        None => return,
                    }
                };
                let mut msg = head.clone().into_bytes();
                msg.extend(line.drain(..cut));
                let raw = msg.get(head.len()..).unwrap_or_default();
                match mailparse::parse_mail(&msg).and_then(|p| p.get_body()) {
                    Ok(s) => m.push(&s),
                    Err(_) => m.push(&String::from_utf8_lossy(raw)),
                }
            }
        }
    }
}

/// Reads a message forward, skipping to the ranges asked for.
struct Forward<R> {
    rd: BufReader<R>,
    pos: u64,
}

impl<R: Read> Forward<R> {
    /// Calls `f` with the octets of `range` in pieces (ranges asked for in ascending order).
    fn each(&mut self, range: &Range<usize>, mut f: impl FnMut(&[u8])) -> std::io::Result<()> {
        let (start, end) = (range.start as u64, range.end as u64);
        if start > self.pos {
            let skip = start - self.pos;
            let n = std::io::copy(&mut (&mut self.rd).take(skip), &mut std::io::sink())?;
            self.pos += n;
        }
        while self.pos < end {
            let buf = self.rd.fill_buf()?;
            if buf.is_empty() {
                break;
            }
            let n = buf.len().min(usize::try_from(end - self.pos).unwrap_or(usize::MAX));
            f(buf.get(..n).unwrap_or_default());
            self.rd.consume(n);
            self.pos += n as u64;
        }
        Ok(())
    }

    /// Calls `f` with each header field of `range` (a header block of one field, as
    /// [`fields`] cuts them) until it returns true; true then.
    fn fields(&mut self, range: &Range<usize>, mut f: impl FnMut(&[u8]) -> bool) -> std::io::Result<bool> {
        let mut field: Vec<u8> = Vec::new();
        let mut line: Vec<u8> = Vec::new();
        let mut done = false;
        let mut hit = false;
        // Lines are gathered into fields: a line starting with white space continues the field.
        let mut flush = |field: &mut Vec<u8>, hit: &mut bool| {
            if !field.is_empty() && !*hit {
                *hit = f(field);
            }
            field.clear();
        };
        self.each(range, |mut piece| {
            while !piece.is_empty() && !done && !hit {
                let (now, rest) = match piece.iter().position(|&b| b == b'\n') {
                    Some(p) => piece.split_at(p + 1),
                    None => (piece, &[][..]),
                };
                piece = rest;
                // A field longer than FIELD_MAX is searched in its first FIELD_MAX octets: what one
                // SEARCH holds stays bounded whatever the message.
                let room = FIELD_MAX.saturating_sub(line.len());
                line.extend_from_slice(&now[..now.len().min(room)]);
                if !now.ends_with(b"\n") {
                    continue;
                }
                if !line.ends_with(b"\n") {
                    line.push(b'\n');
                }
                if line == b"\n" || line == b"\r\n" {
                    done = true;
                } else if !matches!(line.first(), Some(b' ' | b'\t')) {
                    flush(&mut field, &mut hit);
                }
                if !done {
                    let room = FIELD_MAX.saturating_sub(field.len());
                    field.extend_from_slice(&line[..line.len().min(room)]);
                }
                line.clear();
            }
        })?;
        if !done && !line.is_empty() {
            if !matches!(line.first(), Some(b' ' | b'\t')) {
                flush(&mut field, &mut hit);
            }
            field.append(&mut line);
        }
        flush(&mut field, &mut hit);
        Ok(hit)
    }
}

/// A header field of the whole message (the first [`fields`] of `block`) is passed to `f` until
/// it returns true. The header ends at the blank line or the end of the message.
pub fn header_fields(rd: impl Read, mut f: impl FnMut(&[u8]) -> bool) -> std::io::Result<bool> {
    let mut fw = Forward { rd: BufReader::with_capacity(READ, rd), pos: 0 };
    fw.fields(&(0..usize::MAX), |block| fields(block).next().is_some() && f(block))
}

/// RFC 3501 6.4.4 TEXT, header side: whether `needle` is in the header text (text.rs
/// `header_text`) of the message `rd` yields.
pub fn header_contains(rd: impl Read, needle: &str) -> std::io::Result<bool> {
    let mut m = Matcher::new(needle);
    header_fields(rd, |block| {
        m.push(&header_text(block));
        m.found()
    })?;
    Ok(m.finish())
}

/// RFC 3501 6.4.4 BODY: whether `needle` is in the body text (text.rs `body_text`) of the
/// message `rd` yields, `parsed` being its tree.
pub fn body_contains(parsed: &Parsed, rd: impl Read, needle: &str) -> std::io::Result<bool> {
    let mut fw = Forward { rd: BufReader::with_capacity(READ, rd), pos: 0 };
    let mut m = Matcher::new(needle);
    collect(parsed.root(), &mut fw, &mut m)?;
    Ok(m.finish())
}

fn collect<R: Read>(p: &Part, fw: &mut Forward<R>, m: &mut Matcher<'_>) -> std::io::Result<()> {
    if m.found() {
        return Ok(());
    }
    match &p.kind {
        Kind::Multipart(list) => {
            for child in list {
                collect(child, fw, m)?;
            }
        }
        Kind::Message(inner) => {
            if inner.head.len() >= inner.header.len() {
                m.push(&header_text(&inner.head));
            } else {
                // Kept in part only: read field by field.
                fw.fields(&inner.header, |block| {
                    m.push(&header_text(block));
                    m.found()
                })?;
            }
            collect(inner, fw, m)?;
        }
        Kind::Leaf if p.ct.is_type("text") || p.ct.is_type("message") => {
            let encoding = cte(first(p.mime_header(), "Content-Transfer-Encoding"));
            if encoding != Cte::Unknown {
                let mut dec = Decoder::new(encoding);
                let mut cs = Charset::new(&p.ct);
                let mut out = Vec::new();
                fw.each(&p.body, |piece| {
                    if !m.found() {
                        out.clear();
                        dec.feed(piece, &mut out);
                        cs.feed(&out, false, m);
                    }
                })?;
                out.clear();
                dec.finish(&mut out);
                cs.feed(&out, true, m);
            }
            m.push("\n");
        }
        Kind::Leaf => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests;
