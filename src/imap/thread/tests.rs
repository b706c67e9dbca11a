//! THREAD tests (RFC 5256 3): chains, branches, dummies, loops, duplicate ids, subject
//! gathering, ORDEREDSUBJECT, and hostile mailboxes of 5,000 messages.

use super::*;
use crate::imap::sort::Keys;
use std::time::Instant;

/// A message: its Message-ID, References, Subject and day of January 2000.
struct M<'a>(&'a str, &'a str, &'a str, u32);

fn keys(ms: &[M<'_>]) -> Vec<Keys> {
    ms.iter()
        .map(|M(id, refs, subject, day)| {
            let mut h = format!("Subject: {subject}\r\nDate: {day} Jan 2000 00:00:00 +0000\r\n");
            if !id.is_empty() {
                h.push_str(&format!("Message-ID: <{id}>\r\n"));
            }
            if !refs.is_empty() {
                let r: Vec<String> = refs.split(' ').map(|r| format!("<{r}>")).collect();
                h.push_str(&format!("References: {}\r\n", r.join(" ")));
            }
            h.push_str("\r\n");
            Keys::from_header(h.as_bytes())
        })
        .collect()
}

fn items(ks: &[Keys]) -> Vec<Item<'_>> {
    ks.iter().enumerate().map(|(i, k)| Item { index: i, size: 0, arrival: 0, keys: k }).collect()
}

fn refs(ms: &[M<'_>]) -> String {
    let ks = keys(ms);
    references(&items(&ks)).render(|i| i as u32 + 1)
}

fn ordered(ms: &[M<'_>]) -> String {
    let ks = keys(ms);
    ordered_subject(&items(&ks)).render(|i| i as u32 + 1)
}

#[test]
fn chains_and_branches() {
    // A single child follows its parent in the same list; two or more get lists of their own.
    let chain = [M("a@x", "", "s", 1), M("b@x", "a@x", "Re: s", 2), M("c@x", "a@x b@x", "Re: s", 3)];
    assert_eq!(refs(&chain), "(1 2 3)");
    let branch = [M("a@x", "", "s", 1), M("b@x", "a@x", "Re: s", 3), M("c@x", "a@x", "Re: s", 2)];
    assert_eq!(refs(&branch), "(1 (3)(2))");
    // RFC 5256 4's shape: (3 6 (4 23)(44 7 96)).
    let rfc = [
        M("3@x", "", "t", 1),
        M("6@x", "3@x", "t", 2),
        M("4@x", "3@x 6@x", "t", 3),
        M("23@x", "3@x 6@x 4@x", "t", 4),
        M("44@x", "3@x 6@x", "t", 5),
        M("7@x", "3@x 6@x 44@x", "t", 6),
        M("96@x", "3@x 6@x 44@x 7@x", "t", 7),
    ];
    assert_eq!(refs(&rfc), "(1 2 (3 4)(5 6 7))");
    // Threads are ordered by their first message's date.
    let two = [M("a@x", "", "one", 5), M("b@x", "", "two", 1), M("c@x", "b@x", "Re: two", 9)];
    assert_eq!(refs(&two), "(2 3)(1)");
}

#[test]
fn missing_parents_become_dummies() {
    // Two replies to a message that is not there share a dummy parent at the top...
    let siblings = [M("b@x", "gone@x", "Re: s", 2), M("c@x", "gone@x", "Re: s", 1)];
    assert_eq!(refs(&siblings), "((2)(1))");
    // ...one reply alone takes the dummy's place.
    assert_eq!(refs(&[M("b@x", "gone@x", "Re: s", 1)]), "(1)");
    // A dummy in the middle of a chain is spliced out.
    let gap = [M("a@x", "", "s", 1), M("c@x", "a@x gone@x", "Re: s", 2)];
    assert_eq!(refs(&gap), "(1 2)");
    // A References truncated to the last id links a message to it alone.
    let truncated = [M("a@x", "", "s", 1), M("b@x", "a@x", "Re: s", 2), M("c@x", "b@x", "Re: s", 3)];
    assert_eq!(refs(&truncated), "(1 2 3)");
}

#[test]
fn loops_in_references_are_not_made() {
    // Each names the other as its parent: one link is made, the one closing the loop is not.
    let pair = [M("a@x", "b@x", "s", 1), M("b@x", "a@x", "s", 2)];
    assert_eq!(refs(&pair), "(2 1)");
    // A message among its own references, and a References that runs in a circle.
    // b's References make it a's parent; the link back from a to b would close a loop.
    let own = [M("a@x", "a@x", "s", 1), M("b@x", "b@x a@x b@x", "t", 2)];
    assert_eq!(refs(&own), "(2 1)");
    let circle = [M("a@x", "c@x b@x", "s", 1), M("b@x", "a@x c@x", "s", 2), M("c@x", "b@x a@x", "s", 3)];
    let got = refs(&circle);
    assert_eq!(got.matches(|c: char| c.is_ascii_digit()).count(), 3, "{got}");
    assert!(got.starts_with('('), "{got}");
}

#[test]
fn duplicate_message_ids() {
    // The second message with an id gets a unique one; references find the first.
    let dup = [M("a@x", "", "s", 1), M("a@x", "", "t", 2), M("c@x", "a@x", "Re: s", 3)];
    assert_eq!(refs(&dup), "(1 3)(2)");
    // Messages without Message-ID are threads of their own (merged by subject below).
    let none = [M("", "", "s", 1), M("", "", "t", 2)];
    assert_eq!(refs(&none), "(1)(2)");
}

#[test]
fn subjects_gather_threads() {
    // A reply without references goes under the original with the same base subject.
    assert_eq!(refs(&[M("a@x", "", "Hello", 1), M("b@x", "", "Re: hello", 2)]), "(1 2)");
    // Two originals with one subject get a dummy parent.
    assert_eq!(refs(&[M("a@x", "", "Hello", 1), M("b@x", "", "hello", 2)]), "((1)(2))");
    // A dummy thread absorbs a message of its subject; empty subjects are never gathered.
    let with_dummy = [
        M("b@x", "gone@x", "Re: s", 2),
        M("c@x", "gone@x", "Re: s", 3),
        M("d@x", "", "s", 1),
        M("e@x", "", "", 4),
        M("f@x", "", "", 5),
    ];
    assert_eq!(refs(&with_dummy), "((3)(1)(2))(4)(5)");
}

#[test]
fn ordered_subject_threads() {
    let ms = [
        M("", "", "b", 3),
        M("", "", "Re: a", 2),
        M("", "", "a", 4),
        M("", "", "[x] A", 1),
        M("", "", "c", 5),
        M("", "", "Fwd: b", 6),
    ];
    // Threads by their first message's date; each one's first message is the parent of the rest.
    assert_eq!(ordered(&ms), "(4 (2)(3))(1 6)(5)");
    assert_eq!(ordered(&[]), "");
}

#[test]
fn hostile_input_stays_bounded() {
    // A chain 5,000 deep (each message names all its ancestors, capped), a dummy chain of
    // thousands of ids, and references that keep pointing back up: no stack overflow, no
    // quadratic time.
    let n: usize = 5000;
    let ids: Vec<String> = (0..n).map(|i| format!("m{i}@x")).collect();
    let mut hs = Vec::new();
    for i in 0..n {
        let r: Vec<String> = ids[i.saturating_sub(200)..i].iter().map(|r| format!("<{r}>")).collect();
        let back: Vec<String> =
            (0..20).map(|k| format!("<{}> <m{}@x>", ids[i / 2], (i + k * 7) % n)).collect();
        hs.push(format!(
            "Message-ID: <{}>\r\nReferences: {} {}\r\nSubject: s{}\r\nDate: 1 Jan 2000 00:00:00 +0000\r\n\r\n",
            ids[i],
            r.join(" "),
            back.join(" "),
            i % 3
        ));
    }
    let mut dummy_chain = String::from("References:");
    for k in 0..20_000 {
        dummy_chain.push_str(&format!(" <d{k}@x>"));
    }
    hs.push(format!("{dummy_chain}\r\n\r\n"));
    let ks: Vec<Keys> = hs.iter().map(|h| Keys::from_header(h.as_bytes())).collect();
    let its = items(&ks);
    let t = Instant::now();
    let f = references(&its);
    let text = f.render(|i| i as u32 + 1);
    let o = ordered_subject(&its).render(|i| i as u32 + 1);
    assert!(t.elapsed().as_secs() < 20, "{:?}", t.elapsed());
    // Every message appears exactly once, and the parentheses balance.
    for out in [&text, &o] {
        let nums: Vec<u32> = out
            .split(|c: char| !c.is_ascii_digit())
            .filter(|s| !s.is_empty())
            .map(|s| s.parse().unwrap())
            .collect();
        let mut sorted = nums.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (1..=n as u32 + 1).collect::<Vec<_>>());
        assert_eq!(out.matches('(').count(), out.matches(')').count());
    }
    // A straight chain renders flat, however deep.
    let chain: Vec<String> = (0..n)
        .map(|i| {
            let parent = if i == 0 { String::new() } else { format!("References: <{}>\r\n", ids[i - 1]) };
            format!("Message-ID: <{}>\r\n{parent}Subject: x\r\n\r\n", ids[i])
        })
        .collect();
    let ks: Vec<Keys> = chain.iter().map(|h| Keys::from_header(h.as_bytes())).collect();
    let flat = references(&items(&ks)).render(|i| i as u32 + 1);
    let want: Vec<String> = (1..=n).map(|i| i.to_string()).collect();
    assert!(flat == format!("({})", want.join(" ")), "{}", &flat[..200]);
    // A comb (each message has a leaf and a deeper child) nests 2,500 lists deep.
    let comb: Vec<String> = (0..n)
        .map(|i| {
            let parent =
                if i < 2 { String::new() } else { format!("References: <{}>\r\n", ids[(i - 1) / 2 * 2]) };
            format!(
                "Message-ID: <{}>\r\n{parent}Subject: x\r\nDate: {} Jan 2000 00:00 +0000\r\n\r\n",
                ids[i],
                1 + i % 28
            )
        })
        .collect();
    let ks: Vec<Keys> = comb.iter().map(|h| Keys::from_header(h.as_bytes())).collect();
    let deep = references(&items(&ks)).render(|i| i as u32 + 1);
    assert!(deep.matches('(').count() > 2000);
}
