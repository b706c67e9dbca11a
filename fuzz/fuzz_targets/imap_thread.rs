//! Fuzz target: SORT and THREAD keys from arbitrary message headers (RFC 5256 2.1 base subject,
//! 2.2 sent date, the first addresses, Message-ID/References/In-Reply-To) and both threading
//! algorithms over them. The input is several headers separated by NUL bytes. Nothing may
//! panic, sorting must be a permutation, and every thread-list must hold each message exactly
//! once with balanced parentheses.
#![no_main]

use buzon::imap::sort::{self, Item, Keys};
use buzon::imap::thread;
use buzon::imap::types::{SortCriterion, SortKey};
use libfuzzer_sys::fuzz_target;

fn check_threads(text: &str, n: usize) {
    let mut depth = 0i64;
    for c in text.chars() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                assert!(depth >= 0, "{text}");
            }
            '0'..='9' | ' ' => {}
            _ => panic!("unexpected {c:?} in {text}"),
        }
    }
    assert_eq!(depth, 0, "{text}");
    let mut nums: Vec<usize> =
        text.split(|c: char| !c.is_ascii_digit()).filter(|s| !s.is_empty()).map(|s| s.parse().unwrap()).collect();
    nums.sort_unstable();
    assert_eq!(nums, (1..=n).collect::<Vec<_>>(), "{text}");
}

fuzz_target!(|data: &[u8]| {
    let keys: Vec<Keys> = data.split(|&b| b == 0).take(64).map(Keys::from_header).collect();
    let items: Vec<Item<'_>> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| Item { index: i, size: (i * 7 % 5) as u64, arrival: (i % 3) as i64, keys: k })
        .collect();
    for k in keys.iter().filter(|k| k.subject.len() < 1000) {
        let (base, _) = sort::subject::base_subject(&k.subject);
        // The base subject of a base subject is itself (RFC 5256 2.1 is idempotent); subjects
        // cut to the length SORT compares are left out.
        assert_eq!(base.to_ascii_uppercase(), &*k.subject);
    }
    let all = [
        SortKey::Arrival,
        SortKey::Cc,
        SortKey::Date,
        SortKey::From,
        SortKey::Size,
        SortKey::Subject,
        SortKey::To,
        SortKey::DisplayFrom,
        SortKey::DisplayTo,
    ];
    let criteria: Vec<SortCriterion> = all
        .iter()
        .enumerate()
        .map(|(i, &key)| SortCriterion { reverse: data.get(i).is_some_and(|b| b % 2 == 1), key })
        .collect();
    let mut sorted = items.clone();
    sort::sort(&mut sorted, &criteria);
    let mut idx: Vec<usize> = sorted.iter().map(|it| it.index).collect();
    idx.sort_unstable();
    assert_eq!(idx, (0..items.len()).collect::<Vec<_>>());
    let number = |i: usize| i as u32 + 1;
    check_threads(&thread::references(&items).render(number), items.len());
    check_threads(&thread::ordered_subject(&items).render(number), items.len());
});
