//! Fuzz target: any bytes as an IMAP client's COMPRESS=DEFLATE stream (RFC 4978, raw deflate of
//! RFC 1951) read by the server's inflating reader, whole and in pieces, into small buffers: never
//! a panic, never more than a buffer's worth at a time, a bounded input buffer, the same octets
//! whatever the split; and the same bytes compressed by the server's deflater in bursts (its
//! compressor released between them) come back whole.
#![no_main]

use std::io;

use buzon::compress::{Deflater, Inflater};
use libfuzzer_sys::fuzz_target;

/// Stops a bomb from taking the run's time: memory is bounded anyway.
const MAX_OUT: usize = 8 << 20;

/// Reads `pieces` (one a read, then "would block", then the end) through an inflater into buffers
/// of `room` octets; the octets, and whether the stream was refused.
fn inflate(pieces: &[&[u8]], room: usize) -> (Vec<u8>, bool) {
    let mut z = Inflater::new();
    let mut out = Vec::new();
    let mut buf = vec![0u8; room];
    let mut next = 0;
    let mut blocked = false;
    loop {
        let r = z.read(&mut buf, |b| {
            if blocked && next == pieces.len() {
                return Ok(0);
            }
            match pieces.get(next) {
                Some(p) => {
                    // A piece longer than the room is read over several calls.
                    let n = p.len().min(b.len());
                    b[..n].copy_from_slice(&p[..n]);
                    next += 1;
                    if n < p.len() {
                        return Err(io::Error::other("piece larger than a read"));
                    }
                    Ok(n)
                }
                None => Err(io::ErrorKind::WouldBlock.into()),
            }
        });
        assert!(z.input_capacity() <= 16 * 1024 + 8192, "the compressed input buffer is bounded");
        match r {
            Ok(0) => return (out, false),
            Ok(n) => {
                assert!(n <= room, "at most a buffer's worth a read");
                if out.len() < MAX_OUT {
                    out.extend_from_slice(&buf[..n]);
                } else {
                    return (out, false);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => blocked = true,
            Err(e) if e.kind() == io::ErrorKind::InvalidData => return (out, true),
            Err(_) => return (out, true),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let (room, cut, body) = match data {
        [a, b, rest @ ..] => (1 + usize::from(*a) * 32, usize::from(*b), rest),
        _ => (64, 0, data),
    };
    // Pieces of at most 8 KiB (one read's worth).
    let split = |d: &'_ [u8], at: usize| -> Vec<Vec<u8>> {
        let at = if d.is_empty() { 0 } else { at % (d.len() + 1) };
        let (a, b) = d.split_at(at);
        a.chunks(8192).chain(b.chunks(8192)).map(<[u8]>::to_vec).collect()
    };
    let whole: Vec<Vec<u8>> = body.chunks(8192).map(<[u8]>::to_vec).collect();
    let parts = split(body, cut * 7);
    let w: Vec<&[u8]> = whole.iter().map(Vec::as_slice).collect();
    let p: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
    let (a, bad_a) = inflate(&w, room);
    let (b, bad_b) = inflate(&p, room);
    if !bad_a && !bad_b && a.len() < MAX_OUT && b.len() < MAX_OUT {
        assert_eq!(a, b, "the same octets whatever the split");
    } else {
        let n = a.len().min(b.len());
        assert_eq!(a[..n], b[..n], "the same octets up to the error");
    }

    // The server's own stream: bursts with the compressor released between them.
    let mut d = Deflater::default();
    let mut wire = Vec::new();
    let third = body.len() / 3;
    for chunk in [&body[..third], &body[third..2 * third], &body[2 * third..]] {
        d.write_all(chunk, &mut wire).expect("compressing into memory");
        d.release();
    }
    let parts = split(&wire, cut * 13);
    let p: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
    let (back, bad) = inflate(&p, room);
    assert!(!bad);
    assert_eq!(back, body, "the server's stream round-trips");
});
