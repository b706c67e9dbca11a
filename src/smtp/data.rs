//! Message body decoders, free of I/O: DATA (RFC 5321 4.1.1.4 end of data, 4.5.2 transparency) and
//! BDAT chunks (RFC 3030), both turning CRLF into the LF line ends of stored mail and counting the
//! message size as RFC 1870 defines it (CRLF = 2 octets, stuffing dots not counted).
//!
//! Smuggling defence (as Postfix's): only CR LF "." CR LF ends a DATA message; a bare LF or bare CR is
//! message data and never a line end, so `\n.\n`, `\r.\r`, `\n.\r\n` and `\r\n.\n` cannot end one
//! message early and start another.

/// Where the DATA decoder is within the byte stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Right after CRLF (or at the very start: the DATA command's own CRLF counts).
    LineStart,
    /// Inside a line.
    Middle,
    /// Inside a line after a CR that is not yet known to be part of CRLF.
    Cr,
    /// A "." at a line start, not yet known to be the end marker or a stuffing dot.
    Dot,
    /// "." CR at a line start.
    DotCr,
    /// The end marker has been seen.
    Done,
}

/// Decodes the text after a DATA command.
#[derive(Clone, Debug)]
pub struct DataDecoder {
    state: State,
    octets: u64,
}

impl Default for DataDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl DataDecoder {
    pub fn new() -> Self {
        DataDecoder { state: State::LineStart, octets: 0 }
    }

    /// Appends decoded bytes to `out`. Returns `Some(n)` once the end marker has been seen, `n` being the
    /// number of bytes of `input` consumed including the final ".\r\n" (the rest belongs to the next
    /// command). After that it consumes nothing and returns `Some(0)`.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Option<usize> {
        if self.state == State::Done {
            return Some(0);
        }
        let mut i = 0;
        while i < input.len() {
            if self.state == State::Middle {
                // Fast path: copy up to the next CR, the only byte that can change state mid-line.
                let run = input[i..].iter().position(|&b| b == b'\r').unwrap_or(input.len() - i);
                self.emit(out, &input[i..i + run]);
                i += run;
                if i == input.len() {
                    break;
                }
            }
            let b = input[i];
            i += 1;
            self.state = match (self.state, b) {
                (State::LineStart, b'.') => State::Dot,
                (State::LineStart | State::Middle, b'\r') => State::Cr,
                (State::LineStart | State::Middle, _) => {
                    self.emit(out, &[b]);
                    State::Middle
                }
                (State::Cr, b'\n') => {
                    out.push(b'\n');
                    self.octets += 2;
                    State::LineStart
                }
                // The earlier CR was bare: keep it; a further CR is pending in its turn.
                (State::Cr, b'\r') => {
                    self.emit(out, b"\r");
                    State::Cr
                }
                (State::Cr, _) => {
                    self.emit(out, &[b'\r', b]);
                    State::Middle
                }
                // RFC 5321 4.5.2: a line start "." followed by more text is a stuffing dot: drop it.
                (State::Dot, b'\r') => State::DotCr,
                (State::Dot, _) => {
                    self.emit(out, &[b]);
                    State::Middle
                }
                // RFC 5321 4.1.1.4: CRLF "." CRLF ends the mail data.
                (State::DotCr, b'\n') => {
                    self.state = State::Done;
                    return Some(i);
                }
                (State::DotCr, b'\r') => {
                    self.emit(out, b"\r");
                    State::Cr
                }
                (State::DotCr, _) => {
                    self.emit(out, &[b'\r', b]);
                    State::Middle
                }
                (State::Done, _) => return Some(i - 1),
            };
        }
        None
    }

    fn emit(&mut self, out: &mut Vec<u8>, bytes: &[u8]) {
        out.extend_from_slice(bytes);
        self.octets += bytes.len() as u64;
    }

    /// RFC 1870 size of the message decoded so far (CRLF counts as 2, stuffing dots and the end marker
    /// not at all).
    pub fn message_octets(&self) -> u64 {
        self.octets
    }

    /// True once the end marker has been seen.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }
}

/// Decodes the octets of BDAT chunks (RFC 3030: no transparency, no end marker): CRLF becomes LF, also
/// when the CR ends one chunk and the LF starts the next.
#[derive(Clone, Debug, Default)]
pub struct ChunkDecoder {
    pending_cr: bool,
    octets: u64,
}

impl ChunkDecoder {
    pub fn new() -> Self {
        ChunkDecoder::default()
    }

    /// Appends the decoded form of `input` to `out`; a trailing CR is held back until the next byte.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) {
        self.octets += input.len() as u64;
        let mut rest = input;
        while !rest.is_empty() {
            if self.pending_cr {
                self.pending_cr = false;
                if rest[0] == b'\n' {
                    out.push(b'\n');
                    rest = &rest[1..];
                    continue;
                }
                out.push(b'\r');
            }
            match rest.iter().position(|&b| b == b'\r') {
                Some(p) => {
                    out.extend_from_slice(&rest[..p]);
                    self.pending_cr = true;
                    rest = &rest[p + 1..];
                }
                None => {
                    out.extend_from_slice(rest);
                    rest = &[];
                }
            }
        }
    }

    /// Call after the LAST chunk: flushes a held-back bare CR.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if std::mem::take(&mut self.pending_cr) {
            out.push(b'\r');
        }
    }

    /// RFC 1870 / RFC 3030 size: the octets of all chunks, as sent.
    pub fn message_octets(&self) -> u64 {
        self.octets
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` split at every pair of points and checks each split gives the same result as a
    /// single feed; returns that result (decoded bytes, consumed count, octets).
    fn decode_all_splits(input: &[u8]) -> (Vec<u8>, Option<usize>, u64) {
        let whole = decode(&[input]);
        for i in 0..=input.len() {
            for j in i..=input.len() {
                let got = decode(&[&input[..i], &input[i..j], &input[j..]]);
                assert_eq!(got, whole, "split at {i},{j} of {:?}", String::from_utf8_lossy(input));
            }
        }
        // Byte by byte.
        let parts: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(decode(&parts), whole);
        whole
    }

    fn decode(parts: &[&[u8]]) -> (Vec<u8>, Option<usize>, u64) {
        let mut d = DataDecoder::new();
        let mut out = Vec::new();
        let mut offset = 0;
        for p in parts {
            if let Some(n) = d.feed(p, &mut out) {
                return (out, Some(offset + n), d.message_octets());
            }
            offset += p.len();
        }
        (out, None, d.message_octets())
    }

    /// (input, decoded, bytes consumed when ended, RFC 1870 octets)
    type DataCase = (&'static [u8], &'static [u8], Option<usize>, u64);

    #[test]
    fn data_table() {
        let cases: &[DataCase] = &[
            (b".\r\n", b"", Some(3), 0),
            (b".\r\nMAIL FROM:<a@b>\r\n", b"", Some(3), 0),
            (b"Subject: x\r\n\r\nbody\r\n.\r\nQUIT\r\n", b"Subject: x\n\nbody\n", Some(23), 20),
            (b"..\r\n.\r\n", b".\n", Some(7), 3),
            (b"..leading\r\n...two\r\n.\r\n", b".leading\n..two\n", Some(22), 17),
            (b"a.b\r\n. \r\n.\r\n", b"a.b\n \n", Some(12), 8),
            (b"no end", b"no end", None, 6),
            (b"line\r\n", b"line\n", None, 6),
            (b"line\r\n.", b"line\n", None, 6),
            (b"line\r\n.\r", b"line\n", None, 6),
            // Bare CR and bare LF are data and keep their byte.
            (b"a\nb\rc\r\n.\r\n", b"a\nb\rc\n", Some(10), 7),
            (b"a\r\r\nb\r\n.\r\n", b"a\r\nb\n", Some(10), 7),
            (b".\r\r\n.\r\n", b"\r\n", Some(7), 3),
            (b".\rx\r\n.\r\n", b"\rx\n", Some(8), 4),
            (b"x\r", b"x", None, 1),
        ];
        for &(input, want, end, octets) in cases {
            let (out, n, o) = decode_all_splits(input);
            let shown = String::from_utf8_lossy(input);
            assert_eq!(out, want, "{shown:?}: {:?}", String::from_utf8_lossy(&out));
            assert_eq!(n, end, "{shown:?}");
            assert_eq!(o, octets, "{shown:?}");
        }
    }

    #[test]
    fn smuggling_sequences_never_end_the_message() {
        let smuggles: &[&[u8]] = &[
            b"x\n.\nMAIL FROM:<evil@x>\n",
            b"x\r\n.\nMAIL FROM:<evil@x>\r\n",
            b"x\n.\r\nMAIL FROM:<evil@x>\r\n",
            b"x\r.\rMAIL FROM:<evil@x>\r\n",
            b"x\r.\r\nMAIL FROM:<evil@x>\r\n",
            b"x\r\n.\rMAIL FROM:<evil@x>\r\n",
            b"x\r\n.\r\r\nMAIL FROM:<evil@x>\r\n",
            b"x\r\n\x00.\r\nMAIL FROM:<evil@x>\r\n",
        ];
        for s in smuggles {
            let (out, n, _) = decode_all_splits(s);
            assert_eq!(n, None, "{:?} ended the message", String::from_utf8_lossy(s));
            assert!(
                out.windows(4).any(|w| w == b"MAIL"),
                "content kept: {:?}",
                String::from_utf8_lossy(&out)
            );
        }
    }

    #[test]
    fn pseudo_random_inputs_split_consistently() {
        // A small deterministic generator over the interesting alphabet.
        let alphabet = b"\r\n.ab";
        let mut seed: u32 = 0x1234_5678;
        for _ in 0..300 {
            let len = (seed % 24) as usize;
            let mut input = Vec::with_capacity(len);
            for _ in 0..len {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                input.push(alphabet[(seed >> 16) as usize % alphabet.len()]);
            }
            input.extend_from_slice(b"\r\n.\r\n");
            let (out, n, octets) = decode_all_splits(&input);
            // Ends exactly at the first CRLF "." CRLF (counting the virtual CRLF before the start).
            let mut framed = b"\r\n".to_vec();
            framed.extend_from_slice(&input);
            let Some(end) = framed.windows(5).position(|w| w == b"\r\n.\r\n").map(|p| p + 3) else {
                panic!("no end in {input:?}")
            };
            assert_eq!(n, Some(end), "{:?}", String::from_utf8_lossy(&input));
            // Reference: split the body into CRLF lines, drop one leading dot per line, join with LF.
            let body = &input[..end - 3];
            let mut want = Vec::new();
            let mut want_octets = 0u64;
            if !body.is_empty() {
                let lines = split_crlf(&body[..body.len() - 2]);
                for line in lines {
                    let line = line.strip_prefix(b".").unwrap_or(line);
                    want.extend_from_slice(line);
                    want.push(b'\n');
                    want_octets += line.len() as u64 + 2;
                }
            }
            assert_eq!(out, want, "{:?}", String::from_utf8_lossy(&input));
            assert_eq!(octets, want_octets, "{:?}", String::from_utf8_lossy(&input));
        }
    }

    fn split_crlf(mut s: &[u8]) -> Vec<&[u8]> {
        let mut v = Vec::new();
        while let Some(p) = s.windows(2).position(|w| w == b"\r\n") {
            v.push(&s[..p]);
            s = &s[p + 2..];
        }
        v.push(s);
        v
    }

    #[test]
    fn data_after_done() {
        let mut d = DataDecoder::new();
        let mut out = Vec::new();
        assert_eq!(d.feed(b"a\r\n.\r\nb", &mut out), Some(6));
        assert!(d.is_done());
        assert_eq!(d.feed(b"more", &mut out), Some(0));
        assert_eq!(out, b"a\n");
    }

    fn chunks(parts: &[&[u8]]) -> (Vec<u8>, u64) {
        let mut d = ChunkDecoder::new();
        let mut out = Vec::new();
        for p in parts {
            d.feed(p, &mut out);
        }
        d.finish(&mut out);
        (out, d.message_octets())
    }

    #[test]
    fn chunk_table_at_every_split() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"", b""),
            (b"a\r\nb", b"a\nb"),
            (b"a\r\n.\r\nb\r\n", b"a\n.\nb\n"),
            (b"..x\r\n", b"..x\n"),
            (b"a\rb\nc", b"a\rb\nc"),
            (b"a\r\r\n", b"a\r\n"),
            (b"end\r", b"end\r"),
            (b"\r\r\r", b"\r\r\r"),
        ];
        for &(input, want) in cases {
            for i in 0..=input.len() {
                for j in i..=input.len() {
                    let got = chunks(&[&input[..i], &input[i..j], &input[j..]]);
                    assert_eq!(got, (want.to_vec(), input.len() as u64), "{input:?} split {i},{j}");
                }
            }
        }
    }
}
