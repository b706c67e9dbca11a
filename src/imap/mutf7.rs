//! Modified UTF-7 mailbox names (RFC 3501 5.1.3, after RFC 2152): printable US-ASCII stands for
//! itself, `&` is `&-`, and every other run of characters is `&`, modified BASE64 (`,` for `/`, no
//! padding) of its UTF-16BE, then `-`.

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

fn value(b: u8) -> Option<u32> {
    ALPHABET.iter().position(|&c| c == b).map(|v| v as u32)
}

/// RFC 3501 5.1.3: "printable US-ASCII characters, except for "&", represent themselves".
fn is_direct(c: u32) -> bool {
    (0x20..0x7f).contains(&c)
}

/// Decodes a modified UTF-7 name; `None` if it is malformed: bytes outside printable US-ASCII, an
/// unterminated or empty shift (other than `&-`), bad BASE64, leftover bits, broken UTF-16
/// surrogates, a shifted printable US-ASCII character, or two shifts in a row (RFC 3501 5.1.3:
/// "null shifts ("-&") are not permitted").
pub fn decode(s: &[u8]) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    let mut last_shift_end = None;
    while let Some(&b) = s.get(i) {
        if b != b'&' {
            if !is_direct(u32::from(b)) {
                return None;
            }
            out.push(char::from(b));
            i += 1;
            continue;
        }
        let len = s.get(i + 1..)?.iter().position(|&c| c == b'-')?;
        let run = s.get(i + 1..i + 1 + len)?;
        if run.is_empty() {
            out.push('&');
        } else {
            if last_shift_end == Some(i) {
                return None;
            }
            decode_run(run, &mut out)?;
            last_shift_end = Some(i + len + 2);
        }
        i += len + 2;
    }
    Some(out)
}

/// One shifted run (between `&` and `-`): modified BASE64 of UTF-16BE.
fn decode_run(run: &[u8], out: &mut String) -> Option<()> {
    let (mut bits, mut nbits) = (0u32, 0u32);
    let mut units = Vec::with_capacity(run.len() * 6 / 16);
    for &b in run {
        bits = (bits << 6) | value(b)?;
        nbits += 6;
        if nbits >= 16 {
            nbits -= 16;
            units.push((bits >> nbits) as u16);
            bits &= (1 << nbits) - 1;
        }
    }
    // RFC 2152: leftover bits (fewer than 6) must be zero; a whole unused sextet is an error.
    if nbits >= 6 || bits != 0 {
        return None;
    }
    for c in char::decode_utf16(units) {
        let c = c.ok()?;
        // RFC 3501 5.1.3: printable US-ASCII must not be encoded.
        if is_direct(u32::from(c)) {
            return None;
        }
        out.push(c);
    }
    Some(())
}

/// Encodes a name in modified UTF-7.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut run: Vec<u16> = Vec::new();
    for c in s.chars() {
        if is_direct(u32::from(c)) {
            flush(&mut run, &mut out);
            out.push(c);
            if c == '&' {
                out.push('-');
            }
        } else {
            let mut buf = [0u16; 2];
            run.extend_from_slice(c.encode_utf16(&mut buf));
        }
    }
    flush(&mut run, &mut out);
    out
}

/// Writes a shifted run `&...-` and empties it.
fn flush(run: &mut Vec<u16>, out: &mut String) {
    if run.is_empty() {
        return;
    }
    out.push('&');
    let (mut bits, mut nbits) = (0u32, 0u32);
    let mut put = |v: u32| out.push(char::from(ALPHABET[(v & 63) as usize]));
    for &u in run.iter() {
        bits = (bits << 16) | u32::from(u);
        nbits += 16;
        while nbits >= 6 {
            nbits -= 6;
            put(bits >> nbits);
        }
        bits &= (1 << nbits) - 1;
    }
    if nbits > 0 {
        put(bits << (6 - nbits));
    }
    out.push('-');
    run.clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_examples_round_trip() {
        let cases = [
            // RFC 3501 5.1.3.
            ("~peter/mail/&U,BTFw-/&ZeVnLIqe-", "~peter/mail/台北/日本語"),
            ("INBOX", "INBOX"),
            ("Tom &- Jerry", "Tom & Jerry"),
            ("&-", "&"),
            // RFC 2152's "Hi Mom -☺-!" in the modified form.
            ("Hi Mom -&Jjo--!", "Hi Mom -☺-!"),
            ("&ZeVnLIqe-", "日本語"),
            // Outside the BMP: a surrogate pair (U+1F600).
            ("&2D3eAA-", "😀"),
            ("Entw&APw-rfe", "Entwürfe"),
            ("", ""),
        ];
        for (wire, text) in cases {
            assert_eq!(decode(wire.as_bytes()).as_deref(), Some(text), "{wire}");
            assert_eq!(encode(text), wire, "{text}");
        }
    }

    #[test]
    fn rejects_malformed() {
        let bad: &[&[u8]] = &[
            b"&Jjo!",              // RFC 3501: no closing "-"
            b"&U,BTFw-&ZeVnLIqe-", // RFC 3501: a null shift
            b"&",                  // unterminated
            b"&U/BTFw-",           // "/" is not modified BASE64
            b"&AGE-",              // "a" must stand for itself
            b"&Jjp-",              // leftover bits not zero
            b"&Jjo=-",             // padding
            b"&2D0-",              // half a surrogate pair
            b"&2D3eAA",            // unterminated
            b"&A-",                // a lone sextet
            b"caf\xc3\xa9",        // raw 8-bit
            b"tab\there",          // control character
            b"&3gDYPQ-",           // surrogates in the wrong order
        ];
        for b in bad {
            assert_eq!(decode(b), None, "{}", String::from_utf8_lossy(b));
        }
    }

    #[test]
    fn encodes_mixed_runs() {
        assert_eq!(encode("a日b&c"), "a&ZeU-b&-c");
        assert_eq!(decode(encode("\u{7f}x\u{1}").as_bytes()).as_deref(), Some("\u{7f}x\u{1}"));
    }
}
