//! The base subject of RFC 5256 2.1: what SORT SUBJECT compares and what THREAD groups by, with
//! the "reply or forward" mark THREAD=REFERENCES (RFC 5256 3, step 5) needs. Pure string work.
//!
//! RFC 5256 5 grammar used here (matched case-insensitively):
//!   subj-refwd  = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":"
//!   subj-blob   = "[" *BLOBCHAR "]" *WSP
//!   subj-leader = (*subj-blob subj-refwd) / WSP
//!   subj-trailer = "(fwd)" / WSP
//!   subj-fwd-hdr = "[fwd:"  and  subj-fwd-trl = "]"

/// The base subject of a subject already decoded to UTF-8 (RFC 2047 words undone), and whether
/// extracting it removed a reply or forward marker (a subj-refwd, a "(fwd)" trailer or a
/// "[fwd: ...]" wrapping).
pub fn base_subject(subject: &str) -> (String, bool) {
    // RFC 5256 2.1 (1): tabs and line breaks become spaces, runs of spaces one space.
    let packed = pack(subject);
    let b = packed.as_bytes();
    let (mut start, mut end) = (0, b.len());
    let mut refwd = false;
    loop {
        // (2): trailing subj-trailers, repeatedly.
        end = strip_trailers(b, start, end, &mut refwd);
        // (3), (4), repeated (5): leaders, and a blob that does not leave the subject empty.
        loop {
            let mut found = false;
            if let Some(n) = leader(b.get(start..end).unwrap_or_default(), &mut refwd) {
                start += n;
                found = true;
            }
            if let Some(n) = blob_leaving_text(b.get(start..end).unwrap_or_default()) {
                start += n;
                found = true;
            }
            if !found {
                break;
            }
        }
        // (6): "[fwd:" ... "]" around the whole rest is removed, and the work starts again at (2).
        let rest = b.get(start..end).unwrap_or_default();
        if rest.len() >= 6 && starts_with_ci(rest, b"[fwd:") && rest.ends_with(b"]") {
            start += 5;
            end -= 1;
            refwd = true;
            continue;
        }
        break;
    }
    // Only ASCII bytes were removed, so the cut falls between characters; lossy for safety.
    (String::from_utf8_lossy(b.get(start..end).unwrap_or_default()).into_owned(), refwd)
}

/// RFC 5256 2.1 (1): white space (tab, CR, LF, space) runs become one space.
fn pack(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut space = false;
    for c in s.chars() {
        if matches!(c, ' ' | '\t' | '\r' | '\n') {
            if !space {
                out.push(' ');
            }
            space = true;
        } else {
            out.push(c);
            space = false;
        }
    }
    out
}

fn starts_with_ci(s: &[u8], prefix: &[u8]) -> bool {
    s.get(..prefix.len()).is_some_and(|p| p.eq_ignore_ascii_case(prefix))
}

/// RFC 5256 2.1 (2): the end after removing "(fwd)" and white space from the end, repeatedly.
fn strip_trailers(b: &[u8], start: usize, mut end: usize, refwd: &mut bool) -> usize {
    loop {
        let s = b.get(start..end).unwrap_or_default();
        if s.ends_with(b" ") {
            end -= 1;
        } else if s.len() >= 5 && s.get(s.len() - 5..).is_some_and(|t| t.eq_ignore_ascii_case(b"(fwd)")) {
            end -= 5;
            *refwd = true;
        } else {
            return end;
        }
    }
}

/// A subj-blob at `i`: `[`, no brackets, `]`, then white space (one space after packing). The
/// index after it.
fn blob(s: &[u8], i: usize) -> Option<usize> {
    if s.get(i) != Some(&b'[') {
        return None;
    }
    let close = i + 1 + s.get(i + 1..)?.iter().position(|&c| c == b'[' || c == b']')?;
    if s.get(close) != Some(&b']') {
        return None;
    }
    let after = close + 1;
    Some(if s.get(after) == Some(&b' ') { after + 1 } else { after })
}

/// RFC 5256 2.1 (3): the length of a subj-leader at the start of `s`, if any: one space, then
/// possibly blobs and a subj-refwd (which sets `refwd`).
fn leader(s: &[u8], refwd: &mut bool) -> Option<usize> {
    let mut found = None;
    let mut i = 0;
    if s.first() == Some(&b' ') {
        i = 1;
        found = Some(1);
    }
    while s.get(i) == Some(&b'[') {
        match blob(s, i) {
            Some(j) => i = j,
            None => return found,
        }
    }
    let rest = s.get(i..).unwrap_or_default();
    i += if starts_with_ci(rest, b"re") || (starts_with_ci(rest, b"fw") && !starts_with_ci(rest, b"fwd")) {
        2
    } else if starts_with_ci(rest, b"fwd") {
        3
    } else {
        return found;
    };
    if s.get(i) == Some(&b' ') {
        i += 1;
    }
    if s.get(i) == Some(&b'[') {
        match blob(s, i) {
            Some(j) => i = j,
            None => return found,
        }
    }
    if s.get(i) != Some(&b':') {
        return found;
    }
    *refwd = true;
    Some(i + 1)
}

/// RFC 5256 2.1 (4): the length of a subj-blob at the start of `s` whose removal leaves text.
fn blob_leaving_text(s: &[u8]) -> Option<usize> {
    blob(s, 0).filter(|&n| n < s.len())
}

#[cfg(test)]
mod tests {
    use super::base_subject;

    fn base(s: &str) -> String {
        base_subject(s).0
    }

    #[test]
    fn rfc5256_rules() {
        // (1) white space, (2) trailers, (3) leaders, (4) blobs, (6) [fwd: ...].
        let table = [
            ("Hello", "Hello", false),
            ("  Hello \t\r\n  world  ", "Hello world", false),
            ("Re: Hello", "Hello", true),
            ("RE: Hello", "Hello", true),
            ("re:Hello", "Hello", true),
            ("Fw: Hello", "Hello", true),
            ("FWD: Hello", "Hello", true),
            ("Re: Re: Fwd: Hello", "Hello", true),
            ("Re [2]: Hello", "Hello", true),
            ("Re[2]: Hello", "Hello", true),
            ("[list] Re: Hello", "Hello", true),
            ("[list] Hello", "Hello", false),
            ("[a] [b] Hello", "Hello", false),
            ("[list]", "[list]", false),
            ("[a] [b]", "[b]", false),
            ("Hello (fwd)", "Hello", true),
            ("Hello (FWD) (fwd) ", "Hello", true),
            ("[Fwd: Hello]", "Hello", true),
            ("[fwd: Re: [list] Hello (fwd)]", "Hello", true),
            ("Re: [Fwd: Re: Hello]", "Hello", true),
            ("Review: Hello", "Review: Hello", false),
            ("Fwdx: Hello", "Fwdx: Hello", false),
            ("Re : Hello", "Hello", true),
            ("Re: ", "", true),
            ("", "", false),
            ("   ", "", false),
            ("Re: [broken Hello", "[broken Hello", true),
            ("[fwd:]", "", true),
            ("Grüße [fwd] (fwd)", "Grüße [fwd]", true),
            ("Re: Grüße", "Grüße", true),
        ];
        for (input, want, refwd) in table {
            assert_eq!(base_subject(input), (want.to_string(), refwd), "{input:?}");
        }
    }

    #[test]
    fn hostile_subjects_are_linear() {
        let long = "Re: [x] ".repeat(20_000) + "end";
        assert_eq!(base(&long), "end");
        let brackets = "[".repeat(50_000);
        assert_eq!(base(&brackets), brackets);
        let fwds = "[fwd: ".repeat(1000) + "x" + &"]".repeat(1000);
        assert_eq!(base(&fwds), "x");
    }
}
