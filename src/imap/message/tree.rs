//! The MIME tree of a message as Dovecot's message parser builds it (RFC 2046 5.1.1 multipart
//! bodies, 5.2.1 message/rfc822, RFC 3501 6.4.5 part numbers), so that BODYSTRUCTURE and body
//! sections agree with the reference implementation on broken input too:
//!
//! - a delimiter line is `--` and a boundary of any open multipart as a *prefix* of the line
//!   (RFC 2046 5.1.1 lets the rest of the line be padding; anything after it is ignored); the
//!   longest matching boundary wins, the innermost on a tie;
//! - a delimiter of an outer multipart closes every part inside it, also in the middle of a part's
//!   header (the header is cut there);
//! - the line break before a delimiter belongs to the delimiter (RFC 2046 5.1.1);
//! - a close delimiter `--b--` ends that multipart; what follows is its epilogue, up to a delimiter
//!   of an outer one;
//! - a multipart whose boundary is never seen has one empty text/plain part.
//!
//! Parts are slices of the stored bytes; nesting is bounded by [`MAX_DEPTH`] and the number of parts
//! by [`MAX_PARTS`] (deeper or further multiparts and messages are leaves).

use std::io::{BufRead, BufReader, Read};
use std::ops::Range;

use super::lines::Lines;
use super::mime::{ContentType, child_default, content_type, first};

/// Parts nested deeper than this are leaves (neither split nor parsed as messages).
pub(crate) const MAX_DEPTH: usize = 20;
/// At most this many parts in one message; later multiparts and messages are leaves.
const MAX_PARTS: usize = 5000;
/// Octets of each part's header kept when a message is parsed from a reader (Dovecot too limits
/// the header it parses); its offsets stay exact, so HEADER and MIME sections are whole.
pub(crate) const HEAD_MAX: usize = 64 * 1024;

/// One node of the tree: offsets in the message, so the message need not be in memory.
#[derive(Debug)]
pub(crate) struct Part {
    /// The header through its blank line (shorter when a delimiter cut it).
    pub header: Range<usize>,
    /// The header's octets (the first [`HEAD_MAX`] of them when parsed from a reader).
    pub head: Vec<u8>,
    pub body: Range<usize>,
    /// Lines in the body as Dovecot counts them for body-fld-lines (RFC 3501 7.4.2 leaves it
    /// open): line feeds; a last line without one does not count.
    pub lines: usize,
    /// The Content-Type, or the default of its place (RFC 2045 5.2, RFC 2046 5.1.5).
    pub ct: ContentType,
    /// Content-* fields count: a MIME body part, or a header with MIME-Version or Content-Type
    /// (Dovecot forgets the Content-* fields of a message with neither).
    pub mime: bool,
    pub kind: Kind,
}

#[derive(Debug)]
pub(crate) enum Kind {
    /// A multipart and its parts (at least one: see [`empty_multipart`]).
    Multipart(Vec<Part>),
    /// A message/rfc822 part and the message in it.
    Message(Box<Part>),
    Leaf,
}

impl Part {
    /// The Content-* header fields that count (none when the part is not MIME).
    pub fn mime_header(&self) -> &[u8] {
        if self.mime { &self.head } else { &[] }
    }
}

/// A delimiter line found: where it starts, which open boundary, and whether it closes.
#[derive(Clone, Copy, Debug)]
struct Hit {
    line: usize,
    index: usize,
    close: bool,
    /// Where the content of the enclosing parts ends: before the line break that precedes the
    /// delimiter, except when the delimiter is the first line scanned (that break ended a header
    /// or an earlier delimiter line, and stays where it is, as Dovecot counts it).
    end: usize,
}

/// RFC 2046 5.1.1: a boundary has at most 70 characters; longer ones are cut there, as Dovecot does.
const BOUNDARY_MAX: usize = 70;

/// An open multipart's boundary.
struct Bound {
    boundary: Vec<u8>,
    owner: usize,
}

struct Parser<R> {
    src: Lines<R>,
    bounds: Vec<Bound>,
    ids: usize,
    parts: usize,
}

/// Parses a whole message in memory (headers kept whole).
pub(crate) fn parse(msg: &[u8]) -> Part {
    parse_from(msg, usize::MAX).0
}

/// Parses a message as it is read, in one pass and bounded memory (headers kept up to
/// [`HEAD_MAX`]). Err: the reader failed.
pub(crate) fn parse_reader(rd: impl Read) -> std::io::Result<Part> {
    let (root, broken) = parse_from(BufReader::with_capacity(64 * 1024, rd), HEAD_MAX);
    if broken {
        return Err(std::io::Error::other("the message could not be read"));
    }
    Ok(root)
}

fn parse_from<R: BufRead>(rd: R, head_max: usize) -> (Part, bool) {
    let mut p = Parser { src: Lines::new(rd, head_max), bounds: Vec::new(), ids: 0, parts: 0 };
    let root = p.part(0, 0, false, &ContentType::text_default()).0;
    (root, p.src.broken)
}

/// The Content-Type of a part with this header, and whether its Content-* fields count.
fn header_type(header: &[u8], mime_part: bool, default: &ContentType) -> (bool, ContentType) {
    let declared = first(header, "Content-Type");
    let mime = mime_part || declared.is_some() || first(header, "MIME-Version").is_some();
    let ct = match declared {
        Some(v) if mime => content_type(Some(v), default),
        _ => default.clone(),
    };
    (mime, ct)
}

/// The boundary the part with this header would open (see [`Parser::part`]).
fn own_boundary(header: &[u8], default: &ContentType, depth: usize, parts: usize) -> Option<Vec<u8>> {
    let declared = first(header, "Content-Type")?;
    let ct = content_type(Some(declared), default);
    if !ct.is_type("multipart") || depth >= MAX_DEPTH || parts >= MAX_PARTS {
        return None;
    }
    ct.param("boundary").filter(|b| !b.is_empty()).map(truncate_boundary)
}

impl<R: BufRead> Parser<R> {
    /// Is the line at `pos` a delimiter of an open multipart? The longest boundary wins; among
    /// equal ones the innermost.
    fn delimiter(&mut self, pos: usize) -> Option<Hit> {
        self.delimiter_with(pos, None)
    }

    /// [`Self::delimiter`], with `own` (a boundary about to open) competing but never reported.
    fn delimiter_with(&mut self, pos: usize, own: Option<&[u8]>) -> Option<Hit> {
        let (_, line) = self.src.line(pos)?;
        if self.bounds.is_empty() {
            return None;
        }
        let rest = line.strip_prefix(b"--")?;
        let mut best: Option<(usize, usize)> = None;
        for (index, b) in self.bounds.iter().enumerate().rev() {
            if rest.starts_with(&b.boundary) && best.is_none_or(|(_, len)| len < b.boundary.len()) {
                best = Some((index, b.boundary.len()));
            }
        }
        let (index, len) = best?;
        // The part's own boundary is the newest: it wins ties and longer matches.
        if own.is_some_and(|o| rest.starts_with(o) && o.len() >= len) {
            return None;
        }
        let close = rest.get(len..).is_some_and(|r| r.starts_with(b"--"));
        Some(Hit { line: pos, index, close, end: pos })
    }

    /// The first delimiter line at or after `start` (which starts a line), if any; None after
    /// reading to the end.
    fn next_delimiter(&mut self, start: usize) -> Option<Hit> {
        let mut pos = start;
        loop {
            let (next, _) = self.src.line(pos)?;
            if let Some(h) = self.delimiter(pos) {
                return Some(Hit { end: self.end_before(h.line, start), ..h });
            }
            pos = next;
        }
    }

    /// Where content before a delimiter line at `line` (the current line) ends: the line break
    /// before it belongs to the delimiter, unless it is the first line of the content (starting
    /// at `start`).
    fn end_before(&self, line: usize, start: usize) -> usize {
        if line <= start {
            return line;
        }
        let mut end = line;
        let [cr, lf] = self.src.prev();
        if lf == b'\n' {
            end -= 1;
            if end > start && cr == b'\r' {
                end -= 1;
            }
        }
        end.max(start)
    }

    /// Parses the part starting at `start` (header first) `depth` levels down; `mime_part` for a
    /// body part of a multipart, `default` its default type. Returns the part and the delimiter
    /// that ended it (None: the end of the message).
    fn part(
        &mut self,
        start: usize,
        depth: usize,
        mime_part: bool,
        default: &ContentType,
    ) -> (Part, Option<Hit>) {
        self.parts += 1;
        self.src.record(start);
        // The header runs to the blank line, or is cut by a delimiter of an enclosing multipart.
        let mut pos = start;
        let mut cut = None;
        let mut blank = false;
        let mut blank_at = start;
        while let Some((next, line)) = self.src.line(pos) {
            let is_blank = matches!(line, b"\n" | b"\r\n");
            if let Some(h) = self.delimiter(pos) {
                cut = Some(h);
                break;
            }
            if is_blank {
                blank = true;
                blank_at = pos;
                pos = next;
                break;
            }
            pos = next;
        }
        // A delimiter line in the header cuts it; the line break before the delimiter then goes to
        // the enclosing bodies. So does a blank line straight followed by a delimiter of an
        // enclosing multipart (not of the part's own, which it would open there).
        let (header_stop, cut, head) = match cut {
            Some(h) => {
                let stop = self.end_before(h.line, start);
                (stop, Some(h), self.src.take(start, stop))
            }
            None if blank => {
                let mut head = self.src.take(start, pos);
                let own = own_boundary(&head, default, depth, self.parts);
                // The message in a message/rfc822 part starts here: record its header from its
                // first line on (the look for a delimiter below reads that line).
                let (_, ct) = header_type(&head, mime_part, default);
                if ct.is("message", "rfc822") && depth < MAX_DEPTH && self.parts < MAX_PARTS {
                    self.src.record(pos);
                }
                match self.delimiter_with(pos, own.as_deref()) {
                    Some(h) => {
                        head.truncate(blank_at - start);
                        (blank_at, Some(h), head)
                    }
                    None => (pos, None, head),
                }
            }
            None => (pos, None, self.src.take(start, pos)),
        };
        let header = start..header_stop;
        let (mime, ct) = header_type(&head, mime_part, default);
        if let Some(h) = cut {
            let kind = if ct.is_type("multipart") { empty_multipart(header_stop) } else { Kind::Leaf };
            let body = header_stop..header_stop;
            return (Part { header, head, body, lines: 0, ct, mime, kind }, Some(h));
        }
        let body_start = pos;
        let body_nl = self.src.nl_at(body_start);
        let splittable = depth < MAX_DEPTH && self.parts < MAX_PARTS;
        let mut kind = Kind::Leaf;
        let (end, hit) = if ct.is_type("multipart") {
            // Split only after a blank line ends the header (Dovecot's rule too); one too deep or
            // without a boundary has no parts.
            let boundary = ct.param("boundary").filter(|b| !b.is_empty() && blank && splittable);
            if let Some(boundary) = boundary.map(truncate_boundary) {
                let head = Head { header, head, body_start, body_nl, ct, mime };
                return self.multipart(head, depth, boundary);
            }
            let (end, hit) = self.up_to_delimiter(body_start);
            kind = empty_multipart(end);
            (end, hit)
        } else if ct.is("message", "rfc822") && splittable {
            let (inner, hit) = self.part(body_start, depth + 1, false, &ContentType::text_default());
            kind = Kind::Message(Box::new(inner));
            (hit.map_or(self.src.len(), |h| h.end), hit)
        } else {
            self.up_to_delimiter(body_start)
        };
        let lines = self.src.nl_at(end).saturating_sub(body_nl);
        (Part { header, head, body: body_start..end, lines, ct, mime, kind }, hit)
    }

    /// Content from `start` up to the next delimiter line: (end, the delimiter).
    fn up_to_delimiter(&mut self, start: usize) -> (usize, Option<Hit>) {
        match self.next_delimiter(start) {
            Some(h) => (h.end, Some(h)),
            None => (self.src.len(), None),
        }
    }

    fn multipart(&mut self, h: Head, depth: usize, boundary: Vec<u8>) -> (Part, Option<Hit>) {
        self.ids += 1;
        let id = self.ids;
        let mine = self.bounds.len();
        self.bounds.push(Bound { boundary, owner: id });
        let default = child_default(&h.ct);
        let mut children = Vec::new();
        let mut hit = self.next_delimiter(h.body_start);
        let outcome = loop {
            let Some(d) = hit else { break None };
            let owner = self.bounds.get(d.index).map_or(0, |b| b.owner);
            if owner != id {
                // An outer delimiter: this multipart ends before it.
                break Some(d);
            }
            let after = self.src.line(d.line).map_or(d.line, |(end, _)| end);
            if d.close {
                // RFC 2046 5.1.1: the epilogue, up to a delimiter of an outer multipart.
                self.bounds.truncate(mine);
                break self.next_delimiter(after);
            }
            if self.parts >= MAX_PARTS {
                // Too many parts: the rest is one more body part, unsplit.
                self.bounds.truncate(mine);
                let after_nl = self.src.nl_at(after);
                let (end, d2) = self.up_to_delimiter(after);
                children.push(Part {
                    header: after..after,
                    head: Vec::new(),
                    body: after..end,
                    lines: self.src.nl_at(end).saturating_sub(after_nl),
                    ct: default.clone(),
                    mime: true,
                    kind: Kind::Leaf,
                });
                break d2;
            }
            let (child, next) = self.part(after, depth + 1, true, &default);
            children.push(child);
            hit = next;
        };
        self.bounds.truncate(mine);
        let end = outcome.map_or(self.src.len(), |d| d.end);
        let kind = if children.is_empty() { empty_multipart(end) } else { Kind::Multipart(children) };
        let lines = self.src.nl_at(end).saturating_sub(h.body_nl);
        let part = Part {
            header: h.header,
            head: h.head,
            body: h.body_start..end,
            lines,
            ct: h.ct,
            mime: h.mime,
            kind,
        };
        (part, outcome)
    }
}

/// What [`Parser::multipart`] is given of the multipart's own header.
struct Head {
    header: Range<usize>,
    head: Vec<u8>,
    body_start: usize,
    body_nl: usize,
    ct: ContentType,
    mime: bool,
}

/// A multipart in which no part was found has one empty text/plain part, as in Dovecot (RFC 3501 9
/// body-type-mpart needs at least one, and BODY[1] of it then exists and is empty).
fn empty_multipart(at: usize) -> Kind {
    Kind::Multipart(vec![Part {
        header: at..at,
        head: Vec::new(),
        body: at..at,
        lines: 0,
        ct: ContentType::text_default(),
        mime: true,
        kind: Kind::Leaf,
    }])
}

fn truncate_boundary(b: &[u8]) -> Vec<u8> {
    b.get(..BOUNDARY_MAX).unwrap_or(b).to_vec()
}

/// Finds a part by its IMAP number (RFC 3501 6.4.5), as Dovecot does: a number indexes the parts
/// of a multipart; a message that is not multipart (the top level or one encapsulated) has only
/// part 1, its body; after a message/rfc822 part, the next number is within the message in it.
/// None: no such part.
pub(crate) fn find<'p>(root: &'p Part, path: &[u32]) -> Option<&'p Part> {
    let mut cur = root;
    let mut at_message = true;
    for (i, &n) in path.iter().enumerate() {
        if i > 0
            && let Kind::Message(inner) = &cur.kind
        {
            cur = inner;
            at_message = true;
        }
        cur = match &cur.kind {
            Kind::Multipart(list) => list.get(usize::try_from(n).ok()?.checked_sub(1)?)?,
            _ if n == 1 && at_message => cur,
            _ => return None,
        };
        at_message = false;
    }
    Some(cur)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(p: &Part, msg: &[u8]) -> String {
        match &p.kind {
            Kind::Multipart(list) => {
                format!("[{}]", list.iter().map(|c| shape(c, msg)).collect::<Vec<_>>().join(","))
            }
            Kind::Message(inner) => format!("msg({})", shape(inner, msg)),
            Kind::Leaf => format!("{:?}", String::from_utf8_lossy(&msg[p.body.clone()])),
        }
    }

    fn body<'m>(p: Option<&Part>, msg: &'m [u8]) -> Option<&'m [u8]> {
        p.map(|p| &msg[p.body.clone()])
    }

    #[test]
    fn dovecot_boundary_rules() {
        // Table: message -> tree shape. The rules of Dovecot's test-message-parser.c.
        let table: &[(&str, &str)] = &[
            // Plain split; preamble and epilogue dropped; the CRLF before a delimiter is its own.
            (
                "Content-Type: multipart/mixed; boundary=b\r\n\r\npre\r\n--b\r\n\r\none\r\n--b\r\n\r\ntwo\r\n--b--\r\nepi",
                "[\"one\",\"two\"]",
            ),
            // The boundary is a prefix: trailing junk on the delimiter line is ignored.
            ("Content-Type: multipart/mixed; boundary=b\r\n\r\n--bjunk\r\n\r\none\r\n--b--", "[\"one\"]"),
            // The longest matching boundary wins: `--ab` is the inner one's, not `a`'s.
            (
                "Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\nContent-Type: multipart/mixed; boundary=ab\r\n\r\n--ab\r\n\r\nx\r\n--a\r\n\r\ny\r\n--a--",
                "[[\"x\"],\"y\"]",
            ),
            // An outer delimiter closes the inner multipart, even in a part's header.
            (
                "Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nX-Header: 1\r\n--a\r\n\r\nz\r\n",
                "[[\"\"],\"z\\r\\n\"]",
            ),
            // No delimiter ever: a multipart without parts.
            ("Content-Type: multipart/mixed; boundary=b\r\n\r\nbody\r\n", "[\"\"]"),
            // Not split without a boundary parameter.
            ("Content-Type: multipart/mixed\r\n\r\nbody\r\n", "[\"\"]"),
            // message/rfc822 inside a multipart ends at the outer delimiter.
            (
                "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: in\r\n\r\ntext\r\n--b--\r\n",
                "[msg(\"text\")]",
            ),
            // An unterminated last part runs to the end.
            ("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nlast", "[\"last\"]"),
        ];
        for (msg, want) in table {
            assert_eq!(shape(&parse(msg.as_bytes()), msg.as_bytes()), *want, "{msg:?}");
        }
    }

    /// A reader that gives at most `step` octets at a time, so lines span its buffers.
    struct Trickle<'m>(&'m [u8], usize);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.1.min(buf.len()).min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn read_in_pieces_the_tree_is_the_same() {
        let mut msgs: Vec<Vec<u8>> = vec![
            b"Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\nContent-Type: message/rfc822\r\n\r\nSubject: in\r\nContent-Type: multipart/mixed; boundary=ab\r\n\r\n--ab\r\n\r\nx\n\n--a\r\nX: 1\r\n--a--\r\n\r\n".to_vec(),
            b"Subject: none\r\nX: y".to_vec(),
            b"\r\n\n\r\r\n".to_vec(),
            Vec::new(),
        ];
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/eml");
        for dir in std::fs::read_dir(&root).into_iter().flatten().flatten() {
            for f in std::fs::read_dir(dir.path()).into_iter().flatten().flatten() {
                msgs.extend(std::fs::read(f.path()).ok());
            }
        }
        for m in &msgs {
            let want = format!("{:?}", parse(m));
            for step in [1, 2, 3, 7, 100] {
                for cap in [1, 5, 4096] {
                    let (got, broken) =
                        parse_from(BufReader::with_capacity(cap, Trickle(m, step)), usize::MAX);
                    assert!(!broken);
                    assert_eq!(format!("{got:?}"), want, "{step} {cap} {:?}", String::from_utf8_lossy(m));
                }
            }
        }
    }

    #[test]
    fn epilogue_keeps_the_line_break_before_an_outer_delimiter() {
        // After `--c--` the inner multipart's epilogue starts; a delimiter on its first line
        // leaves the break of the `--c--` line inside (corpus thirdparty/007.eml: 334 octets).
        let m = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: multipart/mixed; boundary=c\r\n\r\n--c\r\n\r\nx\r\n--c--\r\n--b--\r\n";
        let root = parse(m);
        assert_eq!(body(find(&root, &[1]), m), Some(&b"--c\r\n\r\nx\r\n--c--\r\n"[..]));
    }

    #[test]
    fn header_cut_by_delimiter_gives_its_line_break_away() {
        let m = b"Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\nX: 1\r\n--a--\r\n";
        let root = parse(m);
        let Kind::Multipart(list) = &root.kind else { panic!("not multipart") };
        assert_eq!(list[0].head, b"X: 1");
        assert_eq!(list[0].body.len(), 0);
    }

    #[test]
    fn part_numbers() {
        let m = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\none\r\n--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: x\r\n\r\ninner\r\n--b--\r\n";
        let root = parse(m);
        assert_eq!(body(find(&root, &[1]), m), Some(&b"one"[..]));
        assert_eq!(body(find(&root, &[2, 1]), m), Some(&b"inner"[..]));
        assert!(find(&root, &[3]).is_none());
        assert!(find(&root, &[1, 2]).is_none());
        const SINGLE: &[u8] = b"Subject: s\r\n\r\nbody";
        let single = parse(SINGLE);
        assert_eq!(body(find(&single, &[1]), SINGLE), Some(&b"body"[..]));
        assert!(find(&single, &[2]).is_none());
        // Checked against Dovecot: 1.1 of a single part does not exist; of a top-level
        // message/rfc822 it is the body of the message inside, and 1.1.1 does not exist.
        assert!(find(&single, &[1, 1]).is_none());
        const RFC822: &[u8] = b"Content-Type: message/rfc822\r\n\r\nSubject: in\r\n\r\nbody";
        let rfc822 = parse(RFC822);
        assert_eq!(body(find(&rfc822, &[1]), RFC822), Some(&b"Subject: in\r\n\r\nbody"[..]));
        assert_eq!(body(find(&rfc822, &[1, 1]), RFC822), Some(&b"body"[..]));
        assert!(find(&rfc822, &[1, 1, 1]).is_none());
    }

    #[test]
    fn non_mime_message_forgets_content_fields() {
        let p = parse(b"Content-Transfer-Encoding: base64\r\n\r\nx");
        assert!(!p.mime);
        assert_eq!(p.mime_header(), b"");
        assert!(parse(b"MIME-Version: 1.0\r\nContent-Transfer-Encoding: base64\r\n\r\nx").mime);
    }
}
