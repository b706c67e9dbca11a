//! Fuzz target: any bytes as an IMAP server's responses to the webmail's client (RFC 9051 7),
//! fed whole and in two pieces: never a panic, never a response past the reader's cap, and the
//! same responses whatever the split.
#![no_main]

use buzon::web::imapc::Reader;
use libfuzzer_sys::fuzz_target;

fn responses(pieces: &[&[u8]]) -> Vec<String> {
    let mut r = Reader::new(4096);
    let mut out = Vec::new();
    for p in pieces {
        r.feed(p);
        loop {
            match r.next() {
                Ok(Some(resp)) => out.push(format!("{resp:?}")),
                Ok(None) => break,
                Err(e) => {
                    out.push(format!("error {e}"));
                    return out;
                }
            }
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let whole = responses(&[data]);
    let cut = data.first().map_or(0, |&b| b as usize % (data.len() + 1));
    let split = responses(&[&data[..cut], &data[cut..]]);
    assert_eq!(whole, split);
});
