use super::*;

/// A source of compressed input that hands out `pieces` one per read, then would block.
struct Pieces<'a> {
    pieces: Vec<&'a [u8]>,
    eof: bool,
}

impl Pieces<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.pieces.first_mut() {
            Some(p) => {
                let n = p.len().min(buf.len());
                buf[..n].copy_from_slice(&p[..n]);
                *p = &p[n..];
                if p.is_empty() {
                    self.pieces.remove(0);
                }
                Ok(n)
            }
            None if self.eof => Ok(0),
            None => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
}

/// Inflates everything `src` gives into pieces of at most `room` octets, up to WouldBlock or the end.
fn drain(z: &mut Inflater, src: &mut Pieces, room: usize) -> io::Result<Vec<u8>> {
    let mut got = Vec::new();
    let mut buf = vec![0u8; room];
    loop {
        match z.read(&mut buf, |b| src.read(b)) {
            Ok(0) => return Ok(got),
            Ok(n) => {
                assert!(n <= room);
                got.extend_from_slice(&buf[..n]);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(got),
            Err(e) => return Err(e),
        }
    }
}

fn sample() -> Vec<u8> {
    let mut s = Vec::new();
    for i in 0..40 {
        s.extend_from_slice(
            format!("* {i} FETCH (UID {} FLAGS (\\Seen) RFC822.SIZE {})\r\n", 1000 + i, 4096 + i * 7)
                .as_bytes(),
        );
    }
    s
}

/// Three bursts, the compressor released between them as when the connection waits.
fn bursts() -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let plain = vec![b"* OK [CAPABILITY IMAP4rev1] hi\r\n".to_vec(), sample(), b"a3 OK done\r\n".to_vec()];
    let mut d = Deflater::default();
    let mut wire = Vec::new();
    for p in &plain {
        let mut w = Vec::new();
        d.write_all(p, &mut w).unwrap();
        assert!(d.holds_state());
        d.release();
        assert!(!d.holds_state());
        wire.push(w);
    }
    (plain, wire)
}

#[test]
fn every_burst_ends_flushed_and_inflates_alone() {
    let (plain, wire) = bursts();
    let mut z = Inflater::new();
    for (p, w) in plain.iter().zip(&wire) {
        // RFC 4978 4 / RFC 1951 3.2.4: a sync flush ends with an empty stored block.
        assert!(w.ends_with(&[0, 0, 0xff, 0xff]), "{w:?}");
        // Only this burst has arrived: all of it comes out, nothing waits for later input.
        let mut src = Pieces { pieces: vec![w], eof: false };
        assert_eq!(&drain(&mut z, &mut src, 64).unwrap(), p);
    }
}

#[test]
fn round_trip_at_every_split_point() {
    let (plain, wire) = bursts();
    let all: Vec<u8> = wire.concat();
    let want: Vec<u8> = plain.concat();
    for i in 0..=all.len() {
        for room in [1, 7, 4096] {
            let mut z = Inflater::new();
            let (a, b) = all.split_at(i);
            let mut src = Pieces { pieces: vec![a], eof: false };
            let mut got = drain(&mut z, &mut src, room).unwrap();
            src.pieces.push(b);
            got.extend(drain(&mut z, &mut src, room).unwrap());
            assert_eq!(got, want, "split at {i}, room {room}");
        }
    }
}

#[test]
fn input_read_before_compression_began_comes_first() {
    let (plain, wire) = bursts();
    let mut z = Inflater::new();
    z.push(&wire[0][..5]);
    assert!(z.pending());
    let mut src = Pieces { pieces: vec![&wire[0][5..], &wire[1]], eof: true };
    assert_eq!(drain(&mut z, &mut src, 100).unwrap(), [&plain[0][..], &plain[1][..]].concat());
}

#[test]
fn corrupt_input_is_an_error() {
    // BTYPE 11 is reserved (RFC 1951 3.2.3).
    let mut z = Inflater::new();
    let mut src = Pieces { pieces: vec![b"\xff\xff\xff\xff"], eof: false };
    let e = drain(&mut z, &mut src, 100).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    // A stored block whose length check fails.
    let mut z = Inflater::new();
    let mut src = Pieces { pieces: vec![b"\x00\x05\x00\x00\x00hello"], eof: false };
    assert_eq!(drain(&mut z, &mut src, 100).unwrap_err().kind(), io::ErrorKind::InvalidData);
    // Good input, then garbage.
    let (_, wire) = bursts();
    let mut z = Inflater::new();
    let mut src = Pieces { pieces: vec![&wire[0], b"\xfe\xfe\xfe\xfe\xfe\xfe"], eof: false };
    assert_eq!(drain(&mut z, &mut src, 100).unwrap_err().kind(), io::ErrorKind::InvalidData);
}

#[test]
fn octets_after_the_final_block_are_an_error_and_eof_is_eof() {
    let mut c = Compress::new(Compression::new(1), false);
    let mut fin = vec![0u8; 64];
    c.compress(b"a1 NOOP\r\n", &mut fin, FlushCompress::Finish).unwrap();
    fin.truncate(c.total_out() as usize);
    let mut z = Inflater::new();
    let mut src = Pieces { pieces: vec![&fin], eof: true };
    assert_eq!(drain(&mut z, &mut src, 100).unwrap(), b"a1 NOOP\r\n");
    let mut z = Inflater::new();
    let mut src = Pieces { pieces: vec![&fin, b"x"], eof: false };
    assert_eq!(drain(&mut z, &mut src, 100).unwrap_err().kind(), io::ErrorKind::InvalidData);
}

#[test]
fn a_bomb_comes_out_a_buffer_at_a_time() {
    // 64 MiB of zeros is about 64 KiB compressed.
    let mut d = Deflater::new(9);
    let mut wire = Vec::new();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..64 {
        d.write_all(&zeros, &mut wire).unwrap();
    }
    assert!(wire.len() < 200 * 1024, "{}", wire.len());
    let mut z = Inflater::new();
    let mut src = Pieces { pieces: vec![&wire], eof: true };
    let mut buf = vec![0u8; 8192];
    let mut total = 0u64;
    loop {
        let n = z.read(&mut buf, |b| src.read(b)).unwrap();
        if n == 0 {
            break;
        }
        assert!(n <= buf.len());
        assert!(z.raw.capacity() <= 2 * RAW_CHUNK, "the compressed input is read in bounded pieces");
        total += n as u64;
    }
    assert_eq!(total, 64 << 20);
}

#[test]
fn python_zlib_compatible_raw_stream() {
    // What `zlib.compressobj(wbits=-15)` then `.compress(b"a1 NOOP\r\n") + .flush(Z_SYNC_FLUSH)`
    // gives (level 6).
    let wire = [0x4a, 0x34, 0x54, 0xf0, 0xf3, 0xf7, 0x0f, 0xe0, 0xe5, 0x02, 0x00, 0x00, 0x00, 0xff, 0xff];
    let mut z = Inflater::new();
    let mut src = Pieces { pieces: vec![&wire], eof: false };
    assert_eq!(drain(&mut z, &mut src, 3).unwrap(), b"a1 NOOP\r\n");
}

#[test]
fn a_small_stack_is_enough_and_the_spare_compressor_is_reused() {
    // Half of a worker's stack (server/pool.rs): building goes to a thread of its own, and a
    // reset happens in place.
    let stack = crate::server::pool::STACK_SIZE / 2;
    let t = std::thread::Builder::new().stack_size(stack).spawn(|| {
        let mut z = Inflater::new();
        let mut got = Vec::new();
        for (i, text) in [&b"a1 OK first\r\n"[..], b"* 2 EXISTS\r\n", b"a2 OK third\r\n"].iter().enumerate() {
            let mut d = Deflater::default();
            let mut w = Vec::new();
            d.write_all(text, &mut w).unwrap();
            d.release();
            assert!(!d.holds_state());
            assert!(SPARE.with(|s| s.borrow().is_some()), "burst {i}: the compressor is kept for the next");
            let mut src = Pieces { pieces: vec![&w], eof: false };
            got.extend(drain(&mut z, &mut src, 64).unwrap());
        }
        got
    });
    assert_eq!(t.unwrap().join().unwrap(), b"a1 OK first\r\n* 2 EXISTS\r\na2 OK third\r\n");
}
