//! Content-Transfer-Encoding decoders (RFC 2045 6.7 quoted-printable, 6.8 base64) for BINARY
//! (RFC 3516) and SEARCH. Both are lenient, as RFC 2045 asks of decoders: characters outside the
//! alphabet are ignored and malformed `=` sequences are kept as they are.

/// The encodings RFC 3516 can undo.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cte {
    /// 7bit, 8bit, binary or none: the bytes are the content.
    Identity,
    Base64,
    QuotedPrintable,
    Unknown,
}

/// The mechanism a decoder sees (RFC 2045 6.1): the first token of the field, as Dovecot's decoder
/// reads it; no field is 7bit. A field whose first token is no mechanism (`8 bit`, empty) is
/// unknown: BINARY refuses it and SEARCH skips the part, as in Dovecot. (BODYSTRUCTURE shows such
/// a field as the default 7bit: mime::cte_token.)
pub(crate) fn cte(value: Option<&[u8]>) -> Cte {
    let Some(value) = value else { return Cte::Identity };
    let toks = super::lex::lex(value, true);
    let Some(super::lex::Tok::Word(v)) = toks.iter().find(|t| !matches!(t, super::lex::Tok::Comment(_)))
    else {
        return Cte::Unknown;
    };
    let v: &[u8] = v;
    // RFC 2045 6.1: encoding names are case-insensitive.
    if [&b"7bit"[..], b"8bit", b"binary"].iter().any(|e| v.eq_ignore_ascii_case(e)) {
        Cte::Identity
    } else if v.eq_ignore_ascii_case(b"base64") {
        Cte::Base64
    } else if v.eq_ignore_ascii_case(b"quoted-printable") {
        Cte::QuotedPrintable
    } else {
        Cte::Unknown
    }
}

/// RFC 2045 6.8: base64; anything outside the alphabet is skipped, `=` ends the data.
pub(crate) fn base64(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    for &c in s {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => continue,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

/// RFC 2045 6.7: quoted-printable; `=XX` is a byte, `=` before a line break is a soft break, and
/// white space at the end of a line is transport padding.
pub(crate) fn quoted_printable(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    for raw in s.split_inclusive(|&b| b == b'\n') {
        qp_line(raw, &mut out);
    }
    out
}

/// One line of quoted-printable, with its line break if it has one.
fn qp_line(raw: &[u8], out: &mut Vec<u8>) {
    let (line, eol): (&[u8], &[u8]) = if let Some(l) = raw.strip_suffix(b"\r\n") {
        (l, b"\r\n")
    } else if let Some(l) = raw.strip_suffix(b"\n") {
        (l, b"\n")
    } else {
        (raw, b"")
    };
    // Rule 3: trailing white space is not content.
    let line = &line[..line.iter().rposition(|&b| b != b' ' && b != b'\t').map_or(0, |p| p + 1)];
    let (line, soft) = match line.strip_suffix(b"=") {
        Some(l) => (l, true),
        None => (line, false),
    };
    let mut i = 0;
    while let Some(&c) = line.get(i) {
        if c == b'='
            && let (Some(h), Some(l)) =
                (line.get(i + 1).and_then(|&b| hex(b)), line.get(i + 2).and_then(|&b| hex(b)))
        {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        out.push(c);
        i += 1;
    }
    if !soft {
        out.extend_from_slice(eol);
    }
}

/// Of a line of quoted-printable not yet ended, decodes what no later octet can change (what
/// comes before its last octet that could not be trailing white space or a line break) and
/// drops it from `line`.
fn qp_prefix(line: &mut Vec<u8>, out: &mut Vec<u8>) {
    let Some(k) = line.iter().rposition(|&b| !matches!(b, b' ' | b'\t' | b'\r')) else { return };
    let mut i = 0;
    while i < k {
        let c = line[i];
        if c == b'=' {
            if i + 2 >= k {
                break;
            }
            if let (Some(h), Some(l)) = (hex(line[i + 1]), hex(line[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    line.drain(..i);
}

/// Octets of an unfinished quoted-printable line held before what is decided is decoded.
const QP_HOLD: usize = 16 * 1024;

/// A decoder fed the encoded octets in pieces of any size: the same output as [`base64`] and
/// [`quoted_printable`] over the whole, in bounded memory (BINARY of a large part, RFC 3516).
pub struct Decoder {
    cte: Cte,
    acc: u32,
    bits: u32,
    /// Base64 saw `=`: the rest is not data.
    done: bool,
    /// Quoted-printable: the line not yet ended.
    line: Vec<u8>,
}

impl Decoder {
    pub fn new(cte: Cte) -> Self {
        Decoder { cte, acc: 0, bits: 0, done: false, line: Vec::new() }
    }

    /// Decodes `input`, appending to `out`.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) {
        match self.cte {
            Cte::Identity | Cte::Unknown => out.extend_from_slice(input),
            Cte::Base64 => {
                for &c in input {
                    if self.done {
                        return;
                    }
                    let v = match c {
                        b'A'..=b'Z' => c - b'A',
                        b'a'..=b'z' => c - b'a' + 26,
                        b'0'..=b'9' => c - b'0' + 52,
                        b'+' => 62,
                        b'/' => 63,
                        b'=' => {
                            self.done = true;
                            return;
                        }
                        _ => continue,
                    };
                    self.acc = (self.acc << 6) | u32::from(v);
                    self.bits += 6;
                    if self.bits >= 8 {
                        self.bits -= 8;
                        out.push((self.acc >> self.bits) as u8);
                        self.acc &= (1 << self.bits) - 1;
                    }
                }
            }
            Cte::QuotedPrintable => {
                for piece in input.split_inclusive(|&b| b == b'\n') {
                    self.line.extend_from_slice(piece);
                    if piece.ends_with(b"\n") {
                        qp_line(&self.line, out);
                        self.line.clear();
                    } else if self.line.len() > QP_HOLD {
                        qp_prefix(&mut self.line, out);
                    }
                }
            }
        }
    }

    /// The end of the input: decodes what was held back.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if self.cte == Cte::QuotedPrintable && !self.line.is_empty() {
            qp_line(&self.line, out);
            self.line.clear();
        }
    }
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes() {
        assert_eq!(base64(b"aGVsbG 8gd\r\n29ybGQ="), b"hello world");
        assert_eq!(base64(b"AAE="), vec![0, 1]);
        assert_eq!(base64(b"!!"), b"");
        assert_eq!(
            quoted_printable(b"caf=C3=A9 =\r\nau lait  \r\nx=3D=ZZ="),
            "café au lait\r\nx==ZZ".as_bytes()
        );
        assert_eq!(cte(Some(b" Base64 ")), Cte::Base64);
        assert_eq!(cte(None), Cte::Identity);
        assert_eq!(cte(Some(b"x-uuencode")), Cte::Unknown);
        // Checked against Dovecot 2.3 (corpus thirdparty/004.eml): the first token decides.
        assert_eq!(cte(Some(b"8 bit")), Cte::Unknown);
        assert_eq!(cte(Some(b"")), Cte::Unknown);
        assert_eq!(cte(Some(b"\t 7bit")), Cte::Identity);
        assert_eq!(cte(Some(b"base64 junk")), Cte::Base64);
    }

    fn streamed(cte: Cte, input: &[u8], piece: usize) -> Vec<u8> {
        let mut d = Decoder::new(cte);
        let mut out = Vec::new();
        for p in input.chunks(piece.max(1)) {
            d.feed(p, &mut out);
        }
        d.finish(&mut out);
        out
    }

    #[test]
    fn streamed_decoding_is_the_same_in_any_pieces() {
        let mut long = b"a=3Db=\r\n".repeat(5000);
        // One line of 60 KiB (held back in part), with encoded octets, padding and a soft break.
        long.extend(b"x=41 \t=".repeat(8000));
        long.extend(b"  =\r\nend=4\r\n=ZZ \r  \n=C3=A9=\r\nlast=");
        long.extend(b" ".repeat(40000));
        long.extend(b"\r\n\r \t\r");
        let qp: Vec<&[u8]> =
            vec![b"caf=C3=A9 =\r\nau lait  \r\nx=3D=ZZ=", b"==41=\r\n", b"a\r=\r\r\n", &long];
        for input in qp {
            let whole = quoted_printable(input);
            for piece in [1, 2, 3, 5, 7, 64, 4096, 20000, 1 << 20] {
                assert!(streamed(Cte::QuotedPrintable, input, piece) == whole, "piece {piece}");
            }
        }
        let b64: &[u8] = b"aGVsbG 8gd\r\n29ybGQ=QUJD";
        for piece in [1, 2, 3, 5, 100] {
            assert_eq!(streamed(Cte::Base64, b64, piece), base64(b64));
            assert_eq!(streamed(Cte::Identity, b64, piece), b64);
        }
    }
}
