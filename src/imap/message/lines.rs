//! A forward-only line reader over a message (CRLF or LF line ends) for the MIME parser in
//! tree.rs: it keeps the current line's first octets, its offsets, the newlines before it and the
//! two octets before it, and records a header as it goes, so that a message of any size is parsed
//! in bounded memory (RFC 2046 5.1.1 delimiter lines are short: 2 + 70 + 2 octets).

use std::io::{BufRead, ErrorKind};

/// Octets of a line kept: enough for `--`, a boundary of 70 octets, `--` and the line break.
const LINE_HEAD: usize = 128;

pub(super) struct Lines<R> {
    rd: R,
    /// The current line: `start..end` in the message; `head` its first octets.
    start: usize,
    end: usize,
    head: Vec<u8>,
    loaded: bool,
    /// The current line ends with a line feed.
    ends_nl: bool,
    /// Line feeds before `start`.
    nl: usize,
    /// The two octets before `start` (0 where there are none), and the last two read.
    prev: [u8; 2],
    last2: [u8; 2],
    eof: bool,
    /// The header being recorded: its offset and its octets (at most `rec_cap`).
    rec: Option<(usize, Vec<u8>)>,
    rec_cap: usize,
    /// A read failed, or the parser asked for a line behind the current one (a bug).
    pub broken: bool,
}

impl<R: BufRead> Lines<R> {
    /// `rec_cap`: octets of a header kept (`usize::MAX`: all).
    pub fn new(rd: R, rec_cap: usize) -> Self {
        Lines {
            rd,
            start: 0,
            end: 0,
            head: Vec::with_capacity(LINE_HEAD),
            loaded: false,
            ends_nl: false,
            nl: 0,
            prev: [0; 2],
            last2: [0; 2],
            eof: false,
            rec: None,
            rec_cap,
            broken: false,
        }
    }

    /// The line starting at `pos` (the current one or the next): its end (after its line feed, or
    /// the end of the message) and its first octets. None at the end of the message.
    pub fn line(&mut self, pos: usize) -> Option<(usize, &[u8])> {
        if self.loaded && pos == self.start {
            return (self.end > self.start).then_some((self.end, self.head.as_slice()));
        }
        if pos != self.end {
            self.broken = true;
            return None;
        }
        self.loaded = true;
        self.advance();
        (self.end > self.start).then_some((self.end, self.head.as_slice()))
    }

    /// The message's length: valid once the end was reached (then it is where the reader stands).
    pub fn len(&self) -> usize {
        self.end
    }

    /// The two octets before the current line.
    pub fn prev(&self) -> [u8; 2] {
        self.prev
    }

    /// Line feeds before offset `x`, which is the current line's start or end, or one of the two
    /// octets before its start (the line break that a delimiter takes).
    pub fn nl_at(&mut self, x: usize) -> usize {
        if x == self.start {
            self.nl
        } else if x == self.end {
            self.nl + usize::from(self.ends_nl)
        } else if x < self.start && x + 2 >= self.start {
            self.nl.saturating_sub(1)
        } else {
            self.broken = true;
            self.nl
        }
    }

    /// Starts recording a header at `start` (the current line's start, or its end); a recording
    /// already started there goes on.
    pub fn record(&mut self, start: usize) {
        if self.rec.as_ref().is_some_and(|(at, _)| *at == start) {
            return;
        }
        let mut buf = Vec::new();
        if self.loaded && start == self.start && self.end > self.start {
            // The line was read already; it was kept whole when shorter than LINE_HEAD.
            if self.head.len() == self.end - self.start {
                buf.extend_from_slice(&self.head);
            } else {
                self.broken = true;
            }
        } else if start != self.end {
            self.broken = true;
        }
        buf.truncate(self.rec_cap);
        self.rec = Some((start, buf));
    }

    /// Ends the recording: the header from `start` up to `stop`.
    pub fn take(&mut self, start: usize, stop: usize) -> Vec<u8> {
        match self.rec.take() {
            Some((at, mut buf)) if at == start => {
                buf.truncate(stop.saturating_sub(start));
                buf
            }
            _ => Vec::new(),
        }
    }

    fn advance(&mut self) {
        self.nl += usize::from(self.ends_nl);
        self.prev = self.last2;
        self.start = self.end;
        self.head.clear();
        self.ends_nl = false;
        while !self.eof {
            let buf = match self.rd.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => {
                    self.broken = true;
                    &[]
                }
            };
            if buf.is_empty() {
                self.eof = true;
                break;
            }
            let (take, done) = match buf.iter().position(|&b| b == b'\n') {
                Some(i) => (i + 1, true),
                None => (buf.len(), false),
            };
            let chunk = buf.get(..take).unwrap_or_default();
            let room = LINE_HEAD.saturating_sub(self.head.len()).min(take);
            self.head.extend_from_slice(chunk.get(..room).unwrap_or_default());
            if let Some((_, rec)) = &mut self.rec {
                let room = self.rec_cap.saturating_sub(rec.len()).min(take);
                rec.extend_from_slice(chunk.get(..room).unwrap_or_default());
            }
            self.last2 = match chunk {
                [.., a, b] => [*a, *b],
                [b] => [self.last2[1], *b],
                [] => self.last2,
            };
            self.end += take;
            self.rd.consume(take);
            if done {
                self.ends_nl = true;
                break;
            }
        }
    }
}
