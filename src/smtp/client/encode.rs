//! Outbound SMTP, no I/O: message data in wire form (RFC 5321 2.3.8 CRLF line ends, 4.5.2 transparency,
//! 4.1.1.4 the CRLF.CRLF end), command lines (RFC 5321 4.1.1.2-4.1.1.3, RFC 1870 SIZE, RFC 6152 BODY,
//! RFC 6531 SMTPUTF8) and the AUTH PLAIN initial response (RFC 4954 4, RFC 4616, RFC 4648 base64).

/// Turns a message stored with LF line ends into DATA wire form, chunk by chunk: every LF becomes CRLF
/// (an existing CRLF stays one), and a line starting with `.` gets a second one.
#[derive(Debug)]
pub struct DataEncoder {
    at_line_start: bool,
    prev_cr: bool,
}

impl Default for DataEncoder {
    fn default() -> Self {
        DataEncoder { at_line_start: true, prev_cr: false }
    }
}

impl DataEncoder {
    pub fn new() -> Self {
        DataEncoder::default()
    }

    /// Appends the wire form of `input` to `out` (at most twice as long as `input`).
    pub fn encode(&mut self, input: &[u8], out: &mut Vec<u8>) {
        out.reserve(input.len() + input.len() / 8 + 2);
        for &b in input {
            // RFC 5321 4.5.2: transparency.
            if self.at_line_start && b == b'.' {
                out.push(b'.');
            }
            match b {
                b'\n' => {
                    if !self.prev_cr {
                        out.push(b'\r');
                    }
                    out.push(b'\n');
                    self.at_line_start = true;
                }
                _ => {
                    out.push(b);
                    self.at_line_start = false;
                }
            }
            self.prev_cr = b == b'\r';
        }
    }

    /// Ends the data: a CRLF if the last line lacked one, then `.` CRLF (RFC 5321 4.1.1.4).
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if !self.at_line_start {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b".\r\n");
        *self = DataEncoder::default();
    }
}

/// Whether an address may go into a command line: no controls, no angle brackets, no spaces outside a
/// quoted local part would be stricter than needed; refusing CR, LF, NUL, other controls and `<>` is what
/// keeps one address from becoming a second command.
pub fn address_is_safe(addr: &str) -> bool {
    addr.len() <= 512 && !addr.chars().any(|c| c.is_control() || c == '<' || c == '>')
}

/// `MAIL FROM:<sender> [SIZE=n] [BODY=8BITMIME] [SMTPUTF8]` with CRLF.
pub fn mail_from(sender: &str, size: Option<u64>, eight_bit: bool, smtputf8: bool) -> String {
    let mut s = format!("MAIL FROM:<{sender}>");
    if let Some(n) = size {
        s.push_str(&format!(" SIZE={n}"));
    }
    if eight_bit {
        s.push_str(" BODY=8BITMIME");
    }
    if smtputf8 {
        s.push_str(" SMTPUTF8");
    }
    s.push_str("\r\n");
    s
}

/// `RCPT TO:<rcpt>` with CRLF.
pub fn rcpt_to(rcpt: &str) -> String {
    format!("RCPT TO:<{rcpt}>\r\n")
}

/// `AUTH PLAIN <base64(\0user\0password)>` with CRLF (RFC 4954 4 initial response; RFC 4616 2 message
/// with an empty authorization identity).
pub fn auth_plain(user: &str, password: &str) -> String {
    let mut msg = Vec::with_capacity(user.len() + password.len() + 2);
    msg.push(0);
    msg.extend_from_slice(user.as_bytes());
    msg.push(0);
    msg.extend_from_slice(password.as_bytes());
    format!("AUTH PLAIN {}\r\n", base64(&msg))
}

/// RFC 4648 4 base64 with padding.
pub fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode_all(chunks: &[&[u8]]) -> Vec<u8> {
        let mut enc = DataEncoder::new();
        let mut out = Vec::new();
        for c in chunks {
            enc.encode(c, &mut out);
        }
        enc.finish(&mut out);
        out
    }

    #[test]
    fn data_table() {
        let cases: &[(&[&[u8]], &[u8])] = &[
            (&[b""], b".\r\n"),
            (&[b"a\n"], b"a\r\n.\r\n"),
            (&[b"a"], b"a\r\n.\r\n"),
            (&[b".\n"], b"..\r\n.\r\n"),
            (
                &[b"Subject: x\n\n.hidden\n..two\nx.y\n."],
                b"Subject: x\r\n\r\n..hidden\r\n...two\r\nx.y\r\n..\r\n.\r\n",
            ),
            // Chunk borders in the middle of a line end and before a dot.
            (&[b"a\r", b"\nb\n", b".c\n"], b"a\r\nb\r\n..c\r\n.\r\n"),
            (&[b"a\n", b".", b"\n"], b"a\r\n..\r\n.\r\n"),
            // CRLF already there stays one CRLF; a bare CR is passed through.
            (&[b"a\r\nb\rc\n"], b"a\r\nb\rc\r\n.\r\n"),
            (&[b"\n\n"], b"\r\n\r\n.\r\n"),
            (&[b"8bit \xc3\xb1\n"], b"8bit \xc3\xb1\r\n.\r\n"),
        ];
        for (chunks, want) in cases {
            assert_eq!(encode_all(chunks), *want, "{chunks:?}");
        }
    }

    #[test]
    fn base64_table() {
        // RFC 4648 10 test vectors.
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (input, want) in cases {
            assert_eq!(base64(input.as_bytes()), want);
        }
        assert_eq!(auth_plain("tim", "tanstaaftanstaaf"), "AUTH PLAIN AHRpbQB0YW5zdGFhZnRhbnN0YWFm\r\n");
    }

    #[test]
    fn commands() {
        assert_eq!(mail_from("", None, false, false), "MAIL FROM:<>\r\n");
        assert_eq!(
            mail_from("a@b", Some(10), true, true),
            "MAIL FROM:<a@b> SIZE=10 BODY=8BITMIME SMTPUTF8\r\n"
        );
        assert_eq!(rcpt_to("x@y"), "RCPT TO:<x@y>\r\n");
        for (addr, ok) in [
            ("a@b", true),
            ("\"a b\"@c", true),
            ("ñ@ü.de", true),
            ("a@b>\r\nRSET", false),
            ("a\0@b", false),
            ("<a@b", false),
        ] {
            assert_eq!(address_is_safe(addr), ok, "{addr:?}");
        }
    }
}
