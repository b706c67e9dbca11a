//! Fuzz target: the DATA and BDAT decoders (RFC 5321 4.5.2, RFC 3030) must give the same result for
//! any split of the input, never panic, and end a DATA message only at CRLF "." CRLF.
#![no_main]

use buzon::smtp::data::{ChunkDecoder, DataDecoder};
use libfuzzer_sys::fuzz_target;

fn data_whole(input: &[u8]) -> (Vec<u8>, Option<usize>, u64) {
    let mut d = DataDecoder::new();
    let mut out = Vec::new();
    let n = d.feed(input, &mut out);
    (out, n, d.message_octets())
}

fn data_parts(parts: &[&[u8]]) -> (Vec<u8>, Option<usize>, u64) {
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

fn chunks(parts: &[&[u8]]) -> (Vec<u8>, u64) {
    let mut d = ChunkDecoder::new();
    let mut out = Vec::new();
    for p in parts {
        d.feed(p, &mut out);
    }
    d.finish(&mut out);
    (out, d.message_octets())
}

fuzz_target!(|data: &[u8]| {
    let Some((&cut, input)) = data.split_first() else { return };
    let i = usize::from(cut) % (input.len() + 1);
    let j = i + (input.len() - i) / 2;
    let whole = data_whole(input);
    assert_eq!(data_parts(&[&input[..i], &input[i..j], &input[j..]]), whole);
    let bytes: Vec<&[u8]> = input.chunks(1).collect();
    assert_eq!(data_parts(&bytes), whole);

    // The end is the first CRLF "." CRLF, counting the DATA line's own CRLF.
    let mut framed = b"\r\n".to_vec();
    framed.extend_from_slice(input);
    let first = framed.windows(5).position(|w| w == b"\r\n.\r\n").map(|p| p + 3);
    assert_eq!(whole.1, first);
    assert!(whole.2 >= whole.0.len() as u64);

    let c = chunks(&[input]);
    assert_eq!(chunks(&[&input[..i], &input[i..j], &input[j..]]), c);
    assert_eq!(c.1, input.len() as u64);
    assert!(c.0.len() <= input.len());
});
