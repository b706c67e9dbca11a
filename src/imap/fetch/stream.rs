//! FETCH literals streamed from the message (RFC 3501 4.3 literals of BODY[], BODY[TEXT] and
//! RFC822, with RFC 3501 6.4.5 partials) in bounded pieces, and the merging of repeated FETCH
//! items (RFC 3501 7.4.2 leaves the server free to answer an item once).

use std::io::{self, Read, Write};

use super::FetchError;
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
}

impl Span {
    /// Writes the literal's `{len}CRLF` and notes where its text goes.
    pub(super) fn literal(r: &mut Vec<u8>, start: u64, len: u64) -> Span {
        r.extend_from_slice(format!("{{{len}}}\r\n").as_bytes());
        Span { at: r.len(), start, len }
    }
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
        copy(&mut rd, sp.start - pos, sp.len, out, &mut buf).map_err(FetchError::Io)?;
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
