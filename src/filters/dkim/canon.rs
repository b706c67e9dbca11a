//! DKIM canonicalization (RFC 6376 3.4): the header section split into fields, the "simple" and
//! "relaxed" header forms, and a streaming body canonicalizer feeding SHA-256 (RFC 6376 3.7) that
//! takes the body in chunks of any size, honours the `l=` length cap (3.5) and drops trailing
//! empty lines (3.4.3, 3.4.4) even when they arrive split across chunks.

use ring::digest::{Context, SHA256};

/// One canonicalization algorithm (RFC 6376 3.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Canon {
    Simple,
    Relaxed,
}

impl Canon {
    #[cfg(test)]
    pub fn name(self) -> &'static str {
        match self {
            Canon::Simple => "simple",
            Canon::Relaxed => "relaxed",
        }
    }
}

/// One header field as received: its name (before the colon, trailing blanks cut) and the whole
/// field text, folding included, without the CRLF that ends it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field<'a> {
    pub name: &'a [u8],
    pub raw: &'a [u8],
}

impl Field<'_> {
    /// The field body: everything after the first colon (empty for a line without one).
    pub fn value(&self) -> &[u8] {
        match self.raw.iter().position(|&b| b == b':') {
            Some(i) => &self.raw[i + 1..],
            None => &[],
        }
    }
}

fn is_wsp(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Splits a header section into fields (RFC 5322 2.2: a line starting with WSP continues the
/// field above it). A leading continuation line with no field above it is dropped; a line without
/// a colon becomes a field with an empty name, which no `h=` entry can select.
pub fn fields<'a>(header: &'a [u8]) -> Vec<Field<'a>> {
    let mut out: Vec<Field<'a>> = Vec::new();
    let mut start: Option<usize> = None;
    let mut end = 0;
    let mut pos = 0;
    let push = |out: &mut Vec<Field<'a>>, s: usize, e: usize| {
        let raw = &header[s..e];
        let name = match raw.iter().position(|&b| b == b':') {
            Some(i) => trim_end_wsp(&raw[..i]),
            None => &[][..],
        };
        out.push(Field { name, raw });
    };
    while pos < header.len() {
        let nl = header[pos..].iter().position(|&b| b == b'\n').map(|i| pos + i);
        let line_end = nl.unwrap_or(header.len());
        let content_end = if line_end > pos && header[line_end - 1] == b'\r' && nl.is_some() {
            line_end - 1
        } else {
            line_end
        };
        let next = nl.map_or(header.len(), |i| i + 1);
        if is_wsp(header[pos]) {
            if start.is_some() {
                end = content_end;
            }
        } else {
            if let Some(s) = start {
                push(&mut out, s, end);
            }
            if content_end == pos {
                // An empty line inside the header section: nothing after it belongs to a field.
                start = None;
            } else {
                start = Some(pos);
                end = content_end;
            }
        }
        pos = next;
    }
    if let Some(s) = start {
        push(&mut out, s, end);
    }
    out
}

fn trim_end_wsp(s: &[u8]) -> &[u8] {
    let n = s.iter().rposition(|&b| !is_wsp(b)).map_or(0, |i| i + 1);
    &s[..n]
}

/// Appends the canonical form of one header field, with its CRLF (RFC 6376 3.4.1, 3.4.2).
pub fn header_field(canon: Canon, raw: &[u8], out: &mut Vec<u8>) {
    match canon {
        Canon::Simple => out.extend_from_slice(raw),
        Canon::Relaxed => {
            let (name, value) = match raw.iter().position(|&b| b == b':') {
                Some(i) => (&raw[..i], &raw[i + 1..]),
                None => (raw, &[][..]),
            };
            // Field names to lowercase, WSP before the colon deleted.
            out.extend(trim_end_wsp(name).iter().map(u8::to_ascii_lowercase));
            out.push(b':');
            // Unfold (CRLF removed), WSP runs to one SP, WSP at both ends of the value deleted.
            let mut pending = false;
            let mut started = false;
            for &b in value {
                match b {
                    b'\r' | b'\n' => {}
                    b' ' | b'\t' => pending = true,
                    _ => {
                        if pending && started {
                            out.push(b' ');
                        }
                        pending = false;
                        started = true;
                        out.push(b);
                    }
                }
            }
        }
    }
    out.extend_from_slice(b"\r\n");
}

/// Streams a body through one canonicalization into SHA-256, hashing at most `limit` octets.
pub struct BodyHasher {
    canon: Canon,
    limit: Option<u64>,
    ctx: Context,
    /// Canonical octets produced so far (hashed or beyond the cap).
    total: u64,
    /// Empty lines held back: they count only if a non-empty line follows (3.4.3, 3.4.4).
    empty_lines: u64,
    /// The current line has content (so its CRLF is not an empty line).
    line_content: bool,
    /// Relaxed: WSP seen since the last content byte, emitted as one SP if content follows.
    wsp: bool,
    /// A CR not yet known to start a CRLF.
    cr: bool,
    out: Vec<u8>,
}

/// The result of a body: its SHA-256 and the canonical length (for `l=`; counting may stop early
/// once the cap is passed).
pub struct BodyHash {
    pub digest: Vec<u8>,
    pub length: u64,
}

const FLUSH_AT: usize = 8192;

impl BodyHasher {
    pub fn new(canon: Canon, limit: Option<u64>) -> BodyHasher {
        BodyHasher {
            canon,
            limit,
            ctx: Context::new(&SHA256),
            total: 0,
            empty_lines: 0,
            line_content: false,
            wsp: false,
            cr: false,
            out: Vec::new(),
        }
    }

    pub fn canon(&self) -> Canon {
        self.canon
    }

    pub fn limit(&self) -> Option<u64> {
        self.limit
    }

    /// True once more than the cap has been produced: the rest cannot change the hash.
    fn capped(&self) -> bool {
        self.limit.is_some_and(|l| self.total + self.out.len() as u64 > l)
    }

    pub fn feed(&mut self, data: &[u8]) {
        let mut i = 0;
        while i < data.len() {
            if self.capped() {
                break;
            }
            let b = data[i];
            i += 1;
            if self.cr {
                self.cr = false;
                if b == b'\n' {
                    self.end_line();
                    continue;
                }
                // A bare CR is line content.
                self.content(b'\r');
            }
            match b {
                b'\r' => self.cr = true,
                b' ' | b'\t' if self.canon == Canon::Relaxed => self.wsp = true,
                _ => self.content(b),
            }
            if self.out.len() >= FLUSH_AT {
                self.flush();
            }
        }
        self.flush();
    }

    fn end_line(&mut self) {
        // Relaxed: WSP at the end of a line is ignored.
        self.wsp = false;
        if self.line_content {
            self.out.extend_from_slice(b"\r\n");
            self.line_content = false;
        } else {
            self.empty_lines += 1;
        }
    }

    fn content(&mut self, b: u8) {
        while self.empty_lines > 0 {
            self.out.extend_from_slice(b"\r\n");
            self.empty_lines -= 1;
            if self.out.len() >= FLUSH_AT {
                self.flush();
                if self.capped() {
                    return;
                }
            }
        }
        if self.wsp {
            self.out.push(b' ');
            self.wsp = false;
        }
        self.out.push(b);
        self.line_content = true;
    }

    fn flush(&mut self) {
        let n = self.out.len() as u64;
        let take = match self.limit {
            Some(l) => l.saturating_sub(self.total).min(n) as usize,
            None => self.out.len(),
        };
        self.ctx.update(&self.out[..take]);
        self.total += n;
        self.out.clear();
    }

    pub fn finish(mut self) -> BodyHash {
        if !self.capped() {
            if self.cr {
                self.cr = false;
                self.content(b'\r');
            }
            // A last line without CRLF gets one (3.4.3, 3.4.4); trailing empty lines are dropped.
            if self.line_content {
                self.out.extend_from_slice(b"\r\n");
            }
            // Simple: an empty body is one CRLF (3.4.3); relaxed leaves it empty (3.4.4).
            if self.canon == Canon::Simple && self.total == 0 && self.out.is_empty() {
                self.out.extend_from_slice(b"\r\n");
            }
            self.flush();
        } else {
            self.flush();
        }
        BodyHash { digest: self.ctx.finish().as_ref().to_vec(), length: self.total }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A plain, whole-body reading of RFC 6376 3.4.3 / 3.4.4 to check the streaming one against.
    fn reference(canon: Canon, body: &[u8]) -> Vec<u8> {
        // Split into CRLF lines; a last piece without CRLF is a line too.
        let mut lines: Vec<Vec<u8>> = Vec::new();
        let mut rest = body;
        while let Some(i) = rest.windows(2).position(|w| w == b"\r\n") {
            lines.push(rest[..i].to_vec());
            rest = &rest[i + 2..];
        }
        if !rest.is_empty() {
            lines.push(rest.to_vec());
        }
        if canon == Canon::Relaxed {
            for l in &mut lines {
                let mut o = Vec::new();
                let mut ws = false;
                for &b in l.iter() {
                    if b == b' ' || b == b'\t' {
                        ws = true;
                    } else {
                        if ws {
                            o.push(b' ');
                        }
                        ws = false;
                        o.push(b);
                    }
                }
                *l = o;
            }
        }
        while lines.last().is_some_and(|l| l.is_empty()) {
            lines.pop();
        }
        let mut out = Vec::new();
        for l in &lines {
            out.extend_from_slice(l);
            out.extend_from_slice(b"\r\n");
        }
        if out.is_empty() && canon == Canon::Simple {
            out.extend_from_slice(b"\r\n");
        }
        out
    }

    fn sha(data: &[u8]) -> Vec<u8> {
        ring::digest::digest(&SHA256, data).as_ref().to_vec()
    }

    fn hash_split(canon: Canon, limit: Option<u64>, parts: &[&[u8]]) -> BodyHash {
        let mut h = BodyHasher::new(canon, limit);
        for p in parts {
            h.feed(p);
        }
        h.finish()
    }

    const BODIES: &[&[u8]] = &[
        b"",
        b"\r\n",
        b"\r\n\r\n\r\n",
        b"Hi.\r\n\r\nWe lost the game.  Are you hungry yet?\r\n\r\nJoe.\r\n\r\n",
        b" C \r\nD \t E\r\n\r\n\r\n",
        b"abc \t\r\n \t \r\n\t\r\n",
        b"a\rb\r\r\n\r \r\nc",
        b"x  \r\n\r\n  y\r\n \r\n",
        b"no final line end  ",
        b"\r",
        b"a\r\n\r",
    ];

    #[test]
    fn every_split_matches_the_whole_body_reading() {
        for canon in [Canon::Simple, Canon::Relaxed] {
            for body in BODIES {
                let want = reference(canon, body);
                let lens: Vec<Option<u64>> = vec![None, Some(0), Some(1), Some(5), Some(want.len() as u64)];
                for limit in lens {
                    let cut = limit.map_or(want.len(), |l| (l as usize).min(want.len()));
                    for i in 0..=body.len() {
                        for j in i..=body.len() {
                            let h = hash_split(canon, limit, &[&body[..i], &body[i..j], &body[j..]]);
                            assert_eq!(
                                h.digest,
                                sha(&want[..cut]),
                                "{canon:?} {limit:?} split {i},{j} of {:?}",
                                String::from_utf8_lossy(body)
                            );
                            if limit.is_none() {
                                assert_eq!(h.length, want.len() as u64);
                            } else {
                                assert!(h.length >= cut as u64);
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn byte_by_byte_and_long_runs_of_empty_lines() {
        let mut body = b"text\r\n".to_vec();
        body.extend(std::iter::repeat_n(b"\r\n".as_slice(), 10_000).flatten());
        body.extend_from_slice(b"more \r\n");
        body.extend(std::iter::repeat_n(b" \t\r\n".as_slice(), 5_000).flatten());
        for canon in [Canon::Simple, Canon::Relaxed] {
            let mut h = BodyHasher::new(canon, None);
            for b in &body {
                h.feed(std::slice::from_ref(b));
            }
            assert_eq!(h.finish().digest, sha(&reference(canon, &body)), "{canon:?}");
        }
    }

    #[test]
    fn rfc6376_3_4_5_examples() {
        let body = b" C \r\nD \t E\r\n\r\n\r\n";
        assert_eq!(hash_split(Canon::Relaxed, None, &[body]).digest, sha(b" C\r\nD E\r\n"));
        assert_eq!(hash_split(Canon::Simple, None, &[body]).digest, sha(b" C \r\nD \t E\r\n"));
        // Lines of blanks only are empty lines once their blanks are ignored, so at the end they
        // go too (where mail-auth's issue #62 went wrong).
        assert_eq!(hash_split(Canon::Relaxed, None, &[b"abc \r\n \t\r\n\r\n  \r\n"]).digest, sha(b"abc\r\n"));
        assert_eq!(hash_split(Canon::Relaxed, None, &[b"a\r\n \r\nb\r\n"]).digest, sha(b"a\r\n\r\nb\r\n"));
        let mut out = Vec::new();
        header_field(Canon::Relaxed, b"A: X", &mut out);
        header_field(Canon::Relaxed, b"B : Y\t\r\n\tZ  ", &mut out);
        assert_eq!(out, b"a:X\r\nb:Y Z\r\n");
        out.clear();
        header_field(Canon::Simple, b"B : Y\t\r\n\tZ  ", &mut out);
        assert_eq!(out, b"B : Y\t\r\n\tZ  \r\n");
    }

    #[test]
    fn empty_bodies_hash_as_the_rfc_says() {
        // RFC 6376 3.4.3: simple empty body is CRLF; 3.4.4: relaxed is empty.
        let simple = hash_split(Canon::Simple, None, &[b""]).digest;
        let relaxed = hash_split(Canon::Relaxed, None, &[b"\r\n\r\n"]).digest;
        use base64::Engine;
        let b64 = |d: &[u8]| base64::engine::general_purpose::STANDARD.encode(d);
        assert_eq!(b64(&simple), "frcCV1k9oG9oKj3dpUqdJg1PxRT2RSN/XKdLCPjaYaY=");
        assert_eq!(b64(&relaxed), "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
    }

    #[test]
    fn fields_split_folded_and_odd_lines() {
        let h = b" lost\r\nFrom: a\r\n b\r\nTo : c\r\nno colon\r\nX:y";
        let f = fields(h);
        let names: Vec<&[u8]> = f.iter().map(|f| f.name).collect();
        assert_eq!(names, vec![&b"From"[..], b"To", b"", b"X"]);
        assert_eq!(f[0].raw, b"From: a\r\n b");
        assert_eq!(f[1].value(), b" c");
        assert_eq!(f[3].raw, b"X:y");
        // A trailing CRLF, or LF line ends, change nothing.
        assert_eq!(fields(b"A: 1\r\nB: 2\r\n").len(), 2);
        assert_eq!(fields(b"A: 1\n\tx\nB: 2\n")[0].raw, b"A: 1\n\tx");
    }
}
