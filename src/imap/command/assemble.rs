//! Gathering one IMAP command from its lines and literals (RFC 3501 4.3 and 7.5, RFC 7888 LITERAL+,
//! RFC 3516 literal8), without I/O and within explicit bounds.

use super::tag_of;

/// What the connection does next (see [`Assembler`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// One whole command, CRLF stripped, literals inline: the input of [`super::parse`].
    Complete(Vec<u8>),
    /// The line ended with a literal: read `len` bytes and pass them to [`Assembler::literal`],
    /// after sending `+ ...` first when `sync` (RFC 3501 7.5; no `+` for `{n+}`, RFC 7888 4).
    NeedLiteral { len: u64, sync: bool },
    /// The command is over a limit and has been dropped (the assembler is reset). `len` and `sync`
    /// describe the literal the offending line announced (`len` 0 if none): when `sync` is false
    /// and `len` > 0 the client sends those bytes anyway (RFC 7888 4), so the connection reads and
    /// drops them, or answers BAD and closes. `tag` is the command's tag when it could be read.
    TooBig { tag: Option<String>, sync: bool, len: u64, message: String },
}

/// Collects the lines and literals of one command. The connection reads a line (without CRLF) and
/// calls [`Assembler::line`]; on [`Step::NeedLiteral`] it reads the literal, calls
/// [`Assembler::literal`], reads the next line and calls `line` again, until [`Step::Complete`].
#[derive(Debug)]
pub struct Assembler {
    max_line: usize,
    max_literal: u64,
    max_total: usize,
    /// Literals larger than this are not held: the connection sends them elsewhere (an APPEND's
    /// message goes to the store) and calls [`Assembler::literal_elsewhere`].
    stream_above: u64,
    buf: Vec<u8>,
}

/// `head` (a command so far, ending with a literal's `{n}` or `{n+}` and CRLF) with that literal
/// announced as `{0}`, so the parser sees an empty literal in its place.
pub fn zero_literal(head: &[u8]) -> Vec<u8> {
    let line = head.strip_suffix(b"\r\n").unwrap_or(head);
    let at = line.iter().rposition(|&b| b == b'{').unwrap_or(line.len());
    let mut out = line.get(..at).unwrap_or_default().to_vec();
    out.extend_from_slice(b"{0}\r\n");
    out
}

/// `{n}`, `{n+}`, `~{n}` or `~{n+}` at the end of a line: (n, synchronizing). A length too large
/// for u64 reads as `u64::MAX` (and is then over every limit).
fn literal_at_end(line: &[u8]) -> Option<(u64, bool)> {
    let rest = line.strip_suffix(b"}")?;
    let (rest, sync) = match rest.strip_suffix(b"+") {
        Some(r) => (r, false),
        None => (rest, true),
    };
    let n = rest.iter().rev().take_while(|b| b.is_ascii_digit()).count();
    let (rest, digits) = rest.split_at(rest.len().checked_sub(n)?);
    if n == 0 || !rest.ends_with(b"{") {
        return None;
    }
    let len = digits
        .iter()
        .try_fold(0u64, |v, &c| v.checked_mul(10)?.checked_add(u64::from(c - b'0')))
        .unwrap_or(u64::MAX);
    Some((len, sync))
}

impl Assembler {
    /// `max_line`: longest line (without CRLF); `max_literal`: largest literal (the message size
    /// limit, since APPEND carries the message in one); `max_total`: the whole command, lines,
    /// CRLFs and literals together (so at least `max_literal` plus some lines).
    pub fn new(max_line: usize, max_literal: u64, max_total: usize) -> Self {
        Assembler { max_line, max_literal, max_total, stream_above: u64::MAX, buf: Vec::new() }
    }

    /// Literals over `n` octets (up to `max_literal`) are streamed by the connection, not held:
    /// they do not count towards `max_total`.
    pub fn stream_above(mut self, n: u64) -> Self {
        self.stream_above = n;
        self
    }

    /// The command gathered so far (through the CRLF after the last literal's `{n}`).
    pub fn head(&self) -> &[u8] {
        &self.buf
    }

    /// The pending literal went elsewhere: the command now holds `{0}` in its place.
    pub fn literal_elsewhere(&mut self) {
        self.buf = zero_literal(&self.buf);
    }

    /// Drops a partly gathered command.
    pub fn reset(&mut self) {
        self.buf = Vec::new();
    }

    /// Whether a command is partly gathered.
    pub fn in_progress(&self) -> bool {
        !self.buf.is_empty()
    }

    fn too_big(&mut self, line: &[u8], message: &str) -> Step {
        let tag = tag_of(if self.buf.is_empty() { line } else { &self.buf });
        let (len, sync) = literal_at_end(line).unwrap_or((0, false));
        self.reset();
        Step::TooBig { tag, sync, len, message: message.into() }
    }

    /// One line of the command, without its CRLF.
    pub fn line(&mut self, line: &[u8]) -> Step {
        if line.len() > self.max_line {
            return self.too_big(line, "line too long");
        }
        let total = self.buf.len().saturating_add(line.len());
        if total > self.max_total {
            return self.too_big(line, "command too long");
        }
        let Some((len, sync)) = literal_at_end(line) else {
            self.buf.extend_from_slice(line);
            return Step::Complete(std::mem::take(&mut self.buf));
        };
        if len > self.max_literal {
            return self.too_big(line, "literal too big");
        }
        // The literal and the CRLF before it must fit too (a streamed literal is not held).
        let held = if len > self.stream_above { 0 } else { len };
        let need = usize::try_from(held).ok().and_then(|l| l.checked_add(line.len() + 2));
        if need.is_none_or(|n| self.buf.len().saturating_add(n) > self.max_total) {
            return self.too_big(line, "command too long");
        }
        // One allocation for the literal instead of repeated doubling; refuse if memory is short.
        let reserve = need.unwrap_or(0);
        if self.buf.try_reserve_exact(reserve).is_err() {
            return self.too_big(line, "literal too big for the memory available");
        }
        self.buf.extend_from_slice(line);
        self.buf.extend_from_slice(b"\r\n");
        Step::NeedLiteral { len, sync }
    }

    /// The literal's bytes after [`Step::NeedLiteral`] (may come in several consecutive pieces).
    /// Bytes beyond `max_total` are dropped; the parser then finds the literal short.
    pub fn literal(&mut self, data: &[u8]) {
        let room = self.max_total.saturating_sub(self.buf.len());
        self.buf.extend_from_slice(data.get(..room).unwrap_or(data));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn too_big(tag: Option<&str>, sync: bool, len: u64, message: &str) -> Step {
        Step::TooBig { tag: tag.map(String::from), sync, len, message: message.into() }
    }

    #[test]
    fn finds_literals_at_the_end_of_a_line() {
        type Case = (&'static [u8], Option<(u64, bool)>);
        let cases: &[Case] = &[
            (b"A1 LOGIN {5}", Some((5, true))),
            (b"A1 LOGIN {5+}", Some((5, false))),
            (b"A1 APPEND x ~{12}", Some((12, true))),
            (b"A1 APPEND x ~{0+}", Some((0, false))),
            (b"{7}", Some((7, true))),
            (b"A1 X {99999999999999999999999}", Some((u64::MAX, true))),
            (b"A1 LOGIN a b", None),
            (b"A1 X {}", None),
            (b"A1 X {+}", None),
            (b"A1 X 5}", None),
            (b"A1 X {5", None),
            (b"}", None),
            (b"", None),
        ];
        for (line, want) in cases {
            assert_eq!(literal_at_end(line), *want, "{}", String::from_utf8_lossy(line));
        }
    }

    #[test]
    fn one_line() {
        let mut a = Assembler::new(100, 100, 1000);
        assert_eq!(a.line(b"A1 NOOP"), Step::Complete(b"A1 NOOP".to_vec()));
        assert!(!a.in_progress());
        assert_eq!(a.line(b"A2 LOGOUT"), Step::Complete(b"A2 LOGOUT".to_vec()));
    }

    #[test]
    fn synchronizing_and_literal_plus() {
        let mut a = Assembler::new(100, 100, 1000);
        assert_eq!(a.line(b"A1 LOGIN {5}"), Step::NeedLiteral { len: 5, sync: true });
        assert!(a.in_progress());
        a.literal(b"alice");
        assert_eq!(a.line(b" {6+}"), Step::NeedLiteral { len: 6, sync: false });
        a.literal(b"sec");
        a.literal(b"ret");
        let Step::Complete(cmd) = a.line(b"") else { panic!("not complete") };
        assert_eq!(cmd, b"A1 LOGIN {5}\r\nalice {6+}\r\nsecret");
        assert_eq!(
            crate::imap::command::parse(&cmd),
            Ok((
                "A1".into(),
                crate::imap::types::Command::Login { user: b"alice".to_vec(), password: b"secret".to_vec() }
            ))
        );
    }

    #[test]
    fn several_literals_and_literal8() {
        let mut a = Assembler::new(100, 100, 1000);
        assert_eq!(a.line(b"A1 RENAME {3}"), Step::NeedLiteral { len: 3, sync: true });
        a.literal(b"old");
        assert_eq!(a.line(b" {3}"), Step::NeedLiteral { len: 3, sync: true });
        a.literal(b"new");
        assert_eq!(a.line(b""), Step::Complete(b"A1 RENAME {3}\r\nold {3}\r\nnew".to_vec()));
        assert_eq!(a.line(b"A2 APPEND x ~{3}"), Step::NeedLiteral { len: 3, sync: true });
        a.literal(b"a\0b");
        assert_eq!(a.line(b""), Step::Complete(b"A2 APPEND x ~{3}\r\na\0b".to_vec()));
    }

    #[test]
    fn streamed_literals_are_not_held() {
        let mut a = Assembler::new(100, 1 << 30, 200).stream_above(10);
        assert_eq!(
            a.line(b"A1 APPEND INBOX (\\Seen) {1000000}"),
            Step::NeedLiteral { len: 1_000_000, sync: true }
        );
        assert_eq!(a.head(), b"A1 APPEND INBOX (\\Seen) {1000000}\r\n");
        a.literal_elsewhere();
        assert_eq!(a.line(b""), Step::Complete(b"A1 APPEND INBOX (\\Seen) {0}\r\n".to_vec()));
        // A small literal is held as before; one over the total without streaming is refused.
        assert_eq!(a.line(b"A2 LOGIN {5+}"), Step::NeedLiteral { len: 5, sync: false });
        a.reset();
        let mut b = Assembler::new(100, 1 << 30, 200);
        assert_eq!(b.line(b"A3 APPEND x {1000}"), too_big(Some("A3"), true, 1000, "command too long"));
        assert_eq!(zero_literal(b"A4 APPEND x UTF8 (~{77+}\r\n"), b"A4 APPEND x UTF8 (~{0}\r\n");
    }

    #[test]
    fn limits() {
        let mut a = Assembler::new(30, 10, 40);
        assert_eq!(a.line(&[b'('; 31]), too_big(None, false, 0, "line too long"));
        assert_eq!(a.line(b"A1 LOGIN {11}"), too_big(Some("A1"), true, 11, "literal too big"));
        assert!(!a.in_progress());
        assert_eq!(a.line(b"A2 LOGIN {11+}"), too_big(Some("A2"), false, 11, "literal too big"));
        assert_eq!(
            a.line(b"A3 X {99999999999999999999}"),
            too_big(Some("A3"), true, u64::MAX, "literal too big")
        );
        // Several literals, each allowed, over the total.
        assert_eq!(a.line(b"A4 RENAME {10}"), Step::NeedLiteral { len: 10, sync: true });
        a.literal(b"0123456789");
        assert_eq!(a.line(b" {10}"), too_big(Some("A4"), true, 10, "command too long"));
        assert!(!a.in_progress());
        // A continuation line over the limit drops the whole command.
        assert_eq!(a.line(b"A5 LOGIN {2}"), Step::NeedLiteral { len: 2, sync: true });
        a.literal(b"ab");
        assert_eq!(a.line(&[b' '; 31]), too_big(Some("A5"), false, 0, "line too long"));
        // The assembler works again afterwards, and bytes past the total are dropped.
        assert_eq!(a.line(b"A6 NOOP"), Step::Complete(b"A6 NOOP".to_vec()));
        assert_eq!(a.line(b"A7 LOGIN {2}"), Step::NeedLiteral { len: 2, sync: true });
        a.literal(&[b'z'; 100]);
        assert!(a.buf.len() <= 40);
        a.reset();
        assert!(!a.in_progress());
    }
}
