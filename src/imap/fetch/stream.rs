//! FETCH literals streamed from the message (RFC 3501 4.3 literals of BODY[], BODY[TEXT] and
//! RFC822, with RFC 3501 6.4.5 partials) in bounded pieces, and the merging of repeated FETCH
//! items (RFC 3501 7.4.2 leaves the server free to answer an item once).

use std::io::{self, Read, Write};

use super::FetchError;
use crate::imap::message::{Cte, Decoder};
use crate::imap::types::FetchAtt;
use crate::store::folder::Folder;

/// Octets read from the message and written at a time.
const CHUNK: usize = 64 * 1024;

/// A literal whose text is not in the response buffer: `len` octets of the message from `start`,
/// to be sent at offset `at` of the buffer (just after its `{len}CRLF`).
pub(super) struct Span {
    at: usize,
    start: u64,
    len: u64,
    /// BINARY (RFC 3516): the octets are decoded, and the literal is `take` decoded octets from
    /// `skip` on, sent as they are.
    decoded: Option<Decoded>,
}

#[derive(Clone, Copy)]
struct Decoded {
    cte: Cte,
    skip: u64,
    take: u64,
}

impl Span {
    /// Writes the literal's `{len}CRLF` and notes where its text goes.
    pub(super) fn literal(r: &mut Vec<u8>, start: u64, len: u64) -> Span {
        r.extend_from_slice(format!("{{{len}}}\r\n").as_bytes());
        Span { at: r.len(), start, len, decoded: None }
    }

    /// Writes `{take}CRLF` of a literal of the octets `raw` of the message decode to (from the
    /// decoded octet `skip` on), and notes where they go (the caller writes `~` first for
    /// literal8, RFC 3516 4.2).
    pub(super) fn decoded(
        r: &mut Vec<u8>,
        raw: std::ops::Range<u64>,
        cte: Cte,
        skip: u64,
        take: u64,
    ) -> Span {
        r.extend_from_slice(format!("{{{take}}}\r\n").as_bytes());
        let decoded = Some(Decoded { cte, skip, take });
        Span { at: r.len(), start: raw.start, len: raw.end.saturating_sub(raw.start), decoded }
    }
}

/// The header of the message `rd` yields, through its blank line (as [`Folder::read_header`]),
/// when that is at most `max` octets; None for a longer header (or one that never ends).
pub(super) fn read_header(rd: Box<dyn Read>, max: usize) -> io::Result<Option<Vec<u8>>> {
    let mut rd = io::BufReader::with_capacity(CHUNK.min(max.max(1)), rd);
    let mut out = Vec::new();
    loop {
        let start = out.len();
        let room = (max + 1).saturating_sub(start) as u64;
        let n = io::BufRead::read_until(&mut (&mut rd).take(room), b'\n', &mut out)?;
        if out.len() > max {
            return Ok(None);
        }
        let line = out.get(start..).unwrap_or_default();
        if n == 0 || matches!(line, b"\n" | b"\r\n") || !line.ends_with(b"\n") {
            return Ok(Some(out));
        }
    }
}

/// Decodes the octets `raw` of the message: how many octets they decode to, and whether one of
/// those from `origin` to `origin + length` is NUL (BINARY.SIZE, and literal8 for BINARY:
/// RFC 3516 4.2). One pass in pieces; nothing is kept.
pub(super) fn measure(
    folder: &mut dyn Folder,
    index: usize,
    raw: std::ops::Range<u64>,
    cte: Cte,
    origin: u64,
    length: u64,
) -> Result<(u64, bool), FetchError> {
    let mut rd = folder.reader(index)?;
    let mut size = 0u64;
    let mut nul = false;
    let end = origin.saturating_add(length);
    let mut see = |d: &[u8]| {
        let from = origin.saturating_sub(size).min(d.len() as u64) as usize;
        let to = end.saturating_sub(size).min(d.len() as u64) as usize;
        nul |= d.get(from..to).is_some_and(|w| w.contains(&0));
        size += d.len() as u64;
    };
    decode_range(&mut rd, raw.start, raw.end.saturating_sub(raw.start), cte, &mut see)
        .map_err(FetchError::Io)?;
    Ok((size, nul))
}

/// Skips `skip` octets of `rd`, then gives the decoding of the next `len` to `sink` in pieces.
fn decode_range(
    rd: &mut dyn Read,
    skip: u64,
    len: u64,
    cte: Cte,
    sink: &mut dyn FnMut(&[u8]),
) -> io::Result<()> {
    let copied = io::copy(&mut rd.take(skip), &mut io::sink())?;
    if copied < skip {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the message is shorter than its size"));
    }
    let mut dec = Decoder::new(cte);
    let mut chunk = vec![0u8; CHUNK];
    let mut out = Vec::with_capacity(CHUNK);
    let mut left = len;
    while left > 0 {
        let want = chunk.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = match rd.read(chunk.get_mut(..want).unwrap_or_default()) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        out.clear();
        dec.feed(chunk.get(..n).unwrap_or_default(), &mut out);
        sink(&out);
        left -= n as u64;
    }
    if left > 0 {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the message is shorter than its size"));
    }
    out.clear();
    dec.finish(&mut out);
    sink(&out);
    Ok(())
}

/// Writes the decoded octets `d.skip..d.skip + d.take` of the raw octets `skip..skip + len` of `rd`.
fn copy_decoded(rd: &mut dyn Read, skip: u64, len: u64, d: Decoded, out: &mut dyn Write) -> io::Result<()> {
    let mut at = 0u64;
    let mut sent = 0u64;
    let mut err = None;
    let end = d.skip.saturating_add(d.take);
    let mut sink = |piece: &[u8]| {
        let from = d.skip.saturating_sub(at).min(piece.len() as u64) as usize;
        let to = end.saturating_sub(at).min(piece.len() as u64) as usize;
        at += piece.len() as u64;
        if let Some(w) = piece.get(from..to).filter(|w| !w.is_empty() && err.is_none()) {
            match out.write_all(w) {
                Ok(()) => sent += w.len() as u64,
                Err(e) => err = Some(e),
            }
        }
    };
    decode_range(rd, skip, len, d.cte, &mut sink)?;
    if let Some(e) = err {
        return Err(e);
    }
    if sent != d.take {
        // The literal's length was promised: the message changed under us.
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the part decodes to fewer octets"));
    }
    Ok(())
}

/// Writes the response `r` with the spans' text put in, from `whole` when the message is in memory
/// or else from the folder's reader (reopened only for a span that starts before the last ended).
/// The first reader is opened before anything is written, so a message expunged meanwhile writes
/// nothing; a message that ends early after that closes the connection (the literal's length was
/// promised), as Dovecot does.
pub(super) fn write_spans(
    out: &mut dyn Write,
    r: &[u8],
    spans: &[Span],
    whole: Option<&[u8]>,
    folder: &mut dyn Folder,
    index: usize,
) -> Result<(), FetchError> {
    let mut reader: Option<(Box<dyn Read>, u64)> = match (spans.is_empty(), whole) {
        (false, None) => Some((folder.reader(index)?, 0)),
        _ => None,
    };
    let mut buf = Vec::new();
    let mut done = 0;
    for sp in spans {
        out.write_all(r.get(done..sp.at).unwrap_or_default()).map_err(FetchError::Io)?;
        done = sp.at;
        if let (Some(data), Some(d)) = (whole, sp.decoded) {
            let mut rd: &[u8] = data;
            copy_decoded(&mut rd, sp.start, sp.len, d, out).map_err(FetchError::Io)?;
            continue;
        }
        if let Some(data) = whole {
            let from = usize::try_from(sp.start).unwrap_or(usize::MAX).min(data.len());
            let to = from.saturating_add(usize::try_from(sp.len).unwrap_or(usize::MAX)).min(data.len());
            write_text(out, data.get(from..to).unwrap_or_default(), &mut buf).map_err(FetchError::Io)?;
            continue;
        }
        let (rd, pos) = match reader.take() {
            Some((rd, pos)) if pos <= sp.start => (rd, pos),
            _ => (folder.reader(index).map_err(|e| FetchError::Io(io::Error::other(e.to_string())))?, 0),
        };
        let mut rd = rd;
        match sp.decoded {
            Some(d) => copy_decoded(&mut rd, sp.start - pos, sp.len, d, out),
            None => copy(&mut rd, sp.start - pos, sp.len, out, &mut buf),
        }
        .map_err(FetchError::Io)?;
        reader = Some((rd, sp.start + sp.len));
    }
    out.write_all(r.get(done..).unwrap_or_default()).map_err(FetchError::Io)
}

/// Skips `skip` octets of `rd`, then writes the next `len` to `out` as literal text.
fn copy(rd: &mut dyn Read, skip: u64, len: u64, out: &mut dyn Write, buf: &mut Vec<u8>) -> io::Result<()> {
    let copied = io::copy(&mut rd.take(skip), &mut io::sink())?;
    let mut left = len;
    let mut chunk = vec![0u8; CHUNK.min(usize::try_from(len).unwrap_or(CHUNK)).max(1)];
    while left > 0 && copied == skip {
        let want = chunk.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = match rd.read(chunk.get_mut(..want).unwrap_or_default()) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        write_text(out, chunk.get(..n).unwrap_or_default(), buf)?;
        left -= n as u64;
    }
    if left > 0 || copied < skip {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the message is shorter than its size"));
    }
    Ok(())
}

/// Writes message text into a literal. RFC 3501 4.3 and 9 (CHAR8) forbid NUL in a literal;
/// Dovecot sends each NUL as 0x80, and so does buzon (the size stays the same).
fn write_text(out: &mut dyn Write, text: &[u8], buf: &mut Vec<u8>) -> io::Result<()> {
    for piece in text.chunks(CHUNK) {
        if !piece.contains(&0) {
            out.write_all(piece)?;
            continue;
        }
        buf.clear();
        buf.extend(piece.iter().map(|&b| if b == 0 { 0x80 } else { b }));
        out.write_all(buf)?;
    }
    Ok(())
}

/// The items of a FETCH with repeats answered once, in the order of their first appearance:
/// identical items, and BODY[...] / BODY.PEEK[...] (or BINARY / BINARY.PEEK) of the same section,
/// which the response names alike; the merged item peeks only if all of them did (RFC 3501 6.4.5).
pub fn dedup(items: Vec<FetchAtt>) -> Vec<FetchAtt> {
    let mut out: Vec<FetchAtt> = Vec::with_capacity(items.len().min(64));
    for item in items {
        let twin = out.iter_mut().find(|o| match (&**o, &item) {
            (
                FetchAtt::BodySection { section: a, partial: pa, .. },
                FetchAtt::BodySection { section: b, partial: pb, .. },
            ) => a == b && pa == pb,
            (
                FetchAtt::Binary { part: a, partial: pa, .. },
                FetchAtt::Binary { part: b, partial: pb, .. },
            ) => a == b && pa == pb,
            (a, b) => a == b,
        });
        match (twin, &item) {
            (
                Some(FetchAtt::BodySection { peek, .. } | FetchAtt::Binary { peek, .. }),
                FetchAtt::BodySection { peek: p, .. } | FetchAtt::Binary { peek: p, .. },
            ) => *peek &= *p,
            (Some(_), _) => {}
            (None, _) => out.push(item),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imap::types::{Partial, Section, SectionText};

    fn body(peek: bool, text: Option<SectionText>, partial: Option<Partial>) -> FetchAtt {
        FetchAtt::BodySection { peek, section: Section { part: Vec::new(), text }, partial }
    }

    #[test]
    fn repeated_items_are_answered_once() {
        use FetchAtt::*;
        let peek = body(true, None, None);
        let items = vec![Uid, peek.clone(), Flags, peek.clone(), Uid, peek.clone(), Flags];
        assert_eq!(dedup(items), vec![Uid, peek.clone(), Flags]);
        // 200 identical items: one.
        assert_eq!(dedup(vec![peek.clone(); 200]), vec![peek.clone()]);
        // BODY[] and BODY.PEEK[] are one item that sets \Seen; partials and sections stay apart.
        let part = Some(Partial { origin: 0, length: 10 });
        let items = vec![
            peek.clone(),
            body(true, Some(SectionText::Text), None),
            body(false, None, None),
            body(true, None, part),
            Rfc822,
            Rfc822,
        ];
        let want = vec![
            body(false, None, None),
            body(true, Some(SectionText::Text), None),
            body(true, None, part),
            Rfc822,
        ];
        assert_eq!(dedup(items), want);
        let bin = |peek| Binary { peek, part: vec![1], partial: None };
        assert_eq!(dedup(vec![bin(true), bin(false), bin(true)]), vec![bin(false)]);
    }

    #[test]
    fn text_is_copied_in_pieces_with_nul_replaced() {
        let msg: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let mut out = Vec::new();
        let mut rd: &[u8] = &msg;
        copy(&mut rd, 1000, 150_000, &mut out, &mut Vec::new()).unwrap();
        let want: Vec<u8> = msg[1000..151_000].iter().map(|&b| if b == 0 { 0x80 } else { b }).collect();
        assert!(out == want);
        // A message shorter than promised is an error, not a short literal.
        let mut rd: &[u8] = &msg[..10];
        assert!(copy(&mut rd, 5, 10, &mut Vec::new(), &mut Vec::new()).is_err());
        let mut rd: &[u8] = &msg[..10];
        assert!(copy(&mut rd, 20, 0, &mut Vec::new(), &mut Vec::new()).is_err());
    }
}
