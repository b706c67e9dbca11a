//! SORT order tests: criteria in turn, REVERSE, ties by message number, i;ascii-casemap
//! (RFC 5256 3, RFC 4790 9.2), RFC 5957 display names.

use super::*;
use crate::imap::types::{SortCriterion, SortKey};

fn keys(h: &str) -> Keys {
    Keys::from_header(h.as_bytes())
}

fn crit(spec: &str) -> Vec<SortCriterion> {
    let mut out = Vec::new();
    let mut reverse = false;
    for w in spec.split_whitespace() {
        let key = match w {
            "REVERSE" => {
                reverse = true;
                continue;
            }
            "ARRIVAL" => SortKey::Arrival,
            "DATE" => SortKey::Date,
            "SIZE" => SortKey::Size,
            "SUBJECT" => SortKey::Subject,
            "FROM" => SortKey::From,
            "TO" => SortKey::To,
            "CC" => SortKey::Cc,
            "DISPLAYFROM" => SortKey::DisplayFrom,
            _ => SortKey::DisplayTo,
        };
        out.push(SortCriterion { reverse, key });
        reverse = false;
    }
    out
}

/// Message numbers (1-based) in the order `spec` sorts the messages.
fn order(ks: &[(Keys, u64, i64)], spec: &str) -> Vec<usize> {
    let mut items: Vec<Item<'_>> = ks
        .iter()
        .enumerate()
        .map(|(i, (k, size, arrival))| Item { index: i, size: *size, arrival: *arrival, keys: k })
        .collect();
    sort(&mut items, &crit(spec));
    items.iter().map(|it| it.index + 1).collect()
}

#[test]
fn criteria_in_turn_and_reverse() {
    let ks = vec![
        (keys("Subject: b\r\nFrom: zed@x\r\nDate: 2 Jan 2000 00:00 +0000\r\n\r\n"), 30, 5),
        (keys("Subject: Re: A\r\nFrom: Amy@x\r\nDate: 1 Jan 2000 00:00 +0000\r\n\r\n"), 10, 4),
        (keys("Subject: a\r\nFrom: amy@y\r\nDate: 3 Jan 2000 00:00 +0000\r\n\r\n"), 20, 3),
        // No Date: INTERNALDATE (1 second after the epoch) is its sent date.
        (keys("Subject: [list] B\r\nFrom: bob@x\r\n\r\n"), 20, 1),
    ];
    assert_eq!(order(&ks, "DATE"), [4, 2, 1, 3]);
    assert_eq!(order(&ks, "REVERSE DATE"), [3, 1, 2, 4]);
    assert_eq!(order(&ks, "ARRIVAL"), [4, 3, 2, 1]);
    assert_eq!(order(&ks, "SIZE"), [2, 3, 4, 1]);
    // Ties keep message-number order; REVERSE turns only the key after it.
    assert_eq!(order(&ks, "REVERSE SIZE"), [1, 3, 4, 2]);
    assert_eq!(order(&ks, "SUBJECT"), [2, 3, 1, 4]);
    assert_eq!(order(&ks, "SUBJECT REVERSE DATE"), [3, 2, 1, 4]);
    assert_eq!(order(&ks, "FROM"), [2, 3, 4, 1]);
    assert_eq!(order(&ks, "FROM REVERSE SIZE"), [3, 2, 4, 1]);
    assert_eq!(order(&ks, "REVERSE SUBJECT REVERSE ARRIVAL"), [1, 4, 2, 3]);
    // Missing addresses are empty and sort first.
    assert_eq!(order(&ks, "CC"), [1, 2, 3, 4]);
}

#[test]
fn ascii_casemap_leaves_other_octets_alone() {
    let ks = vec![
        (keys("Subject: \u{e9}clair\r\n\r\n"), 0, 0),
        (keys("Subject: Zebra\r\n\r\n"), 0, 0),
        (keys("Subject: apple\r\n\r\n"), 0, 0),
        (keys("Subject: APPLE\r\n\r\n"), 0, 0),
    ];
    // i;ascii-casemap: a-z fold to A-Z, UTF-8 octets above 0x7f come after every ASCII letter.
    assert_eq!(order(&ks, "SUBJECT"), [3, 4, 2, 1]);
}

#[test]
fn display_names() {
    let ks = vec![
        (keys("From: Zoe <a@x>\r\nTo: b@x\r\n\r\n"), 0, 0),
        (keys("From: \"Adam\" <z@x>\r\nTo: Carl <a@x>\r\n\r\n"), 0, 0),
        (keys("From: m@x\r\nTo: =?utf-8?q?Al?= <c@x>\r\n\r\n"), 0, 0),
    ];
    assert_eq!(order(&ks, "DISPLAYFROM"), [2, 3, 1]);
    assert_eq!(order(&ks, "FROM"), [1, 3, 2]);
    assert_eq!(order(&ks, "DISPLAYTO"), [3, 1, 2]);
}
