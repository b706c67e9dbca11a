//! SEARCH and sequence sets against an in-memory folder.

use super::*;
use crate::imap::fetch::tests::MemFolder;
use crate::imap::types::SeqRange;
use crate::store::folder::Flags;

fn info(uid: Uid) -> MessageInfo {
    MessageInfo { uid, flags: Flags::default(), size: 0, internal_date: 0, recent: false, modseq: 0 }
}

fn set(s: &str) -> SeqSet {
    if s == "$" {
        return SeqSet::Saved;
    }
    let num = |x: &str| if x == "*" { SeqNum::Star } else { SeqNum::Value(x.parse().unwrap()) };
    SeqSet::Ranges(
        s.split(',')
            .map(|r| match r.split_once(':') {
                Some((a, b)) => SeqRange { start: num(a), end: num(b) },
                None => SeqRange { start: num(r), end: num(r) },
            })
            .collect(),
    )
}

#[test]
fn sequence_sets() {
    let msgs: Vec<MessageInfo> = [3, 5, 9, 10, 20].into_iter().map(info).collect();
    let saved = [5, 20, 99];
    let cases: &[(&str, bool, &[usize])] = &[
        ("1", false, &[0]),
        ("2:4", false, &[1, 2, 3]),
        ("4:2", false, &[1, 2, 3]),
        ("*", false, &[4]),
        ("5:*", false, &[4]),
        ("*:4", false, &[3, 4]),
        ("3,1,2:3,1", false, &[0, 1, 2]),
        // Out of range message numbers are ignored.
        ("7:9", false, &[]),
        ("4:9", false, &[3, 4]),
        ("0", false, &[]),
        ("9:*", true, &[2, 3, 4]),
        // RFC 3501 6.4.8: n:* includes the largest UID even when n is larger.
        ("100:*", true, &[4]),
        ("*:8", true, &[2, 3, 4]),
        ("1:4", true, &[0]),
        ("6:8", true, &[]),
        ("5,20,21", true, &[1, 4]),
        ("$", true, &[1, 4]),
        ("$", false, &[1, 4]),
    ];
    for (s, uid, want) in cases {
        assert_eq!(resolve(&set(s), &msgs, *uid, &saved), *want, "{s} uid={uid}");
    }
    assert!(resolve(&set("1:*"), &[], false, &[]).is_empty());
    assert!(resolve(&set("*"), &[], true, &[]).is_empty());
}

#[test]
#[allow(clippy::single_range_in_vec_init)] // one merged range is the point of these cases
fn sequence_sets_resolve_to_merged_ranges() {
    let msgs: Vec<MessageInfo> = [2, 5, 9, 20, 30, 31, 40].iter().map(|&u| info(u)).collect();
    let cases: &[(&str, bool, &[std::ops::Range<usize>])] = &[
        ("1:*", false, &[0..7]),
        ("3,1,2", false, &[0..3]),
        ("7,1,3:2,6", false, &[0..3, 5..7]),
        ("*:5,2:3", false, &[1..3, 4..7]),
        ("*:4,2:3", false, &[1..7]),
        ("1,3,5", false, &[0..1, 2..3, 4..5]),
        ("20:31,2:9", true, &[0..6]),
        ("40,2", true, &[0..1, 6..7]),
        ("$", true, &[1..2, 3..4]),
    ];
    for (s, uid, want) in cases {
        assert_eq!(resolve_ranges(&set(s), &msgs, *uid, &[5, 20, 99]), *want, "{s} uid={uid}");
    }
    // The same range thousands of times is one range; so is every message named one by one.
    let many = vec!["1:*"; 5000].join(",");
    assert_eq!(resolve_ranges(&set(&many), &msgs, false, &[]), vec![0..7]);
    let each = (1..=7).rev().map(|n| n.to_string()).collect::<Vec<_>>().join(",");
    assert_eq!(resolve_ranges(&set(&each), &msgs, false, &[]), vec![0..7]);
    assert_eq!(resolve(&set(&many), &msgs, false, &[]), (0..7).collect::<Vec<_>>());
}

const DAY: i64 = 86_400;
/// 2024-03-10 12:00 UTC.
const T: i64 = 1_710_072_000;

fn folder() -> MemFolder {
    MemFolder::new(&[
        (
            1,
            SEEN,
            false,
            T - DAY,
            "From: =?utf-8?q?J=C3=B6rg?= <jorg@example.org>\nTo: alice@example.org\nSubject: Lunch plans\n\
             Date: Sat, 9 Mar 2024 23:30:00 -0800\n\nSee you at noon.\n",
        ),
        (
            2,
            FLAGGED,
            true,
            T,
            "From: bob@example.net\nCc: carol@example.org\nSubject: report\nDate: 10 Mar 2024 08:00 +0000\n\
             Content-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: base64\n\n\
             Q2Fm6SBkZWx1eGUK\n",
        ),
        (3, SEEN | DELETED, true, T + DAY, "Subject: no date\nX-Spam: yes\n\nplain BODY text\n"),
    ])
}

fn run(f: &mut MemFolder, key: SearchKey) -> Vec<usize> {
    search(f, &key, &[]).unwrap()
}

fn date(year: u16, month: u8, day: u8) -> Date {
    Date { year, month, day }
}

#[test]
fn flags_sizes_and_dates_read_nothing() {
    use SearchKey as K;
    let mut f = folder();
    let cases: Vec<(SearchKey, Vec<usize>)> = vec![
        (K::All, vec![0, 1, 2]),
        (K::Seen, vec![0, 2]),
        (K::Unseen, vec![1]),
        (K::Flagged, vec![1]),
        (K::Deleted, vec![2]),
        (K::Undeleted, vec![0, 1]),
        (K::Recent, vec![1, 2]),
        (K::New, vec![1]),
        (K::Old, vec![0]),
        (K::Keyword("$x".into()), vec![]),
        (K::Unkeyword("$x".into()), vec![0, 1, 2]),
        (K::On(date(2024, 3, 10)), vec![1]),
        (K::Before(date(2024, 3, 10)), vec![0]),
        (K::Since(date(2024, 3, 10)), vec![1, 2]),
        (K::Larger(f.infos[1].size - 1), vec![1]),
        (K::Smaller(f.infos[2].size + 1), vec![2]),
        (K::Not(Box::new(K::Seen)), vec![1]),
        (K::Or(Box::new(K::Flagged), Box::new(K::Deleted)), vec![1, 2]),
        (K::And(vec![K::Seen, K::Recent]), vec![2]),
        (K::Seq(set("2:*")), vec![1, 2]),
        (K::Uid(set("3")), vec![2]),
    ];
    for (key, want) in cases {
        assert_eq!(run(&mut f, key.clone()), want, "{key:?}");
    }
    assert_eq!((f.reads, f.header_reads), (0, 0));
}

#[test]
fn address_keys_see_through_comments_groups_and_encoded_words() {
    use SearchKey as K;
    let mut f = MemFolder::new(&[
        (
            1,
            0,
            false,
            T,
            "From: john(the man)@example.org\nTo: Team: =?utf-8?q?J=C3=B6rg?= <jo (x) @ ex.org>;\n\nhi\n",
        ),
        (2, 0, false, T, "From: \"Doe, Jane\" (work) <jane@example.org>\nSubject: john@example.org\n\nhi\n"),
    ]);
    let cases: Vec<(SearchKey, Vec<usize>)> = vec![
        (K::From("john@example.org".into()), vec![0]),
        (K::From("the man".into()), vec![0]),
        (K::From("doe, jane".into()), vec![1]),
        (K::From("jane@example.org".into()), vec![1]),
        (K::To("jo@ex.org".into()), vec![0]),
        (K::To("jörg".into()), vec![0]),
        (K::To("team".into()), vec![0]),
        // Only address fields are read as addresses.
        (K::Subject("john@example.org".into()), vec![1]),
    ];
    for (key, want) in cases {
        assert_eq!(run(&mut f, key.clone()), want, "{key:?}");
    }
}

#[test]
fn header_keys_read_headers_only() {
    use SearchKey as K;
    let mut f = folder();
    let cases: Vec<(SearchKey, Vec<usize>)> = vec![
        // RFC 2047 decoded, case-insensitive substring.
        (K::From("jörg".into()), vec![0]),
        (K::From("EXAMPLE".into()), vec![0, 1]),
        (K::To("alice".into()), vec![0]),
        (K::Cc("carol".into()), vec![1]),
        (K::Bcc("x".into()), vec![]),
        (K::Subject("LUNCH".into()), vec![0]),
        (K::Header("x-spam".into(), "".into()), vec![2]),
        (K::Header("X-SPAM".into(), "no".into()), vec![]),
        // SENT*: the date as written, zone disregarded.
        (K::SentOn(date(2024, 3, 9)), vec![0]),
        // A message without a Date: was sent on 1 Jan 1970 (as in Dovecot).
        (K::SentBefore(date(2024, 3, 10)), vec![0, 2]),
        (K::SentBefore(date(1970, 1, 2)), vec![2]),
        (K::SentSince(date(2024, 3, 10)), vec![1]),
    ];
    for (key, want) in cases {
        assert_eq!(run(&mut f, key.clone()), want, "{key:?}");
    }
    assert_eq!(f.reads, 0);
    assert!(f.header_reads > 0);
}

#[test]
fn body_keys_read_each_message_once() {
    use SearchKey as K;
    let mut f = folder();
    // base64 and ISO-8859-1 decoded.
    assert_eq!(run(&mut f, K::Body("café".into())), vec![1]);
    assert_eq!(run(&mut f, K::Body("body TEXT".into())), vec![2]);
    assert_eq!(run(&mut f, K::Body("lunch".into())), vec![]);
    assert_eq!(run(&mut f, K::Text("lunch".into())), vec![0]);
    assert_eq!(f.header_reads, 0);
    f.reads = 0;
    // Header and body keys together: one read per message, no header read.
    assert_eq!(run(&mut f, K::And(vec![K::Body("noon".into()), K::Subject("lunch".into())])), vec![0]);
    assert_eq!((f.reads, f.header_reads), (3, 0));
    // Cheap keys first: only the unseen message is read.
    f.reads = 0;
    assert_eq!(run(&mut f, K::And(vec![K::Body("café".into()), K::Unseen])), vec![1]);
    assert_eq!(f.reads, 1);
    f.reads = 0;
    assert_eq!(run(&mut f, K::Or(Box::new(K::Text("zzz".into())), Box::new(K::Seen))), vec![0, 2]);
    assert_eq!(f.reads, 1);
}

#[test]
fn expunged_messages_do_not_match() {
    let mut f = folder();
    f.expunged.push(1);
    assert_eq!(run(&mut f, SearchKey::Not(Box::new(SearchKey::Subject("zzz".into())))), vec![0, 2]);
    assert_eq!(run(&mut f, SearchKey::Flagged), vec![1]);
}

#[test]
fn body_searches_message_parts_that_are_not_parsed() {
    // Dovecot searches message/* bodies as text: here a message/partial part (corpus
    // thirdparty/009.eml), never a binary attachment.
    let m = "Content-Type: multipart/mixed; boundary=1\n\n--1\nContent-Type: text/plain\n\nHi\n--1\n\
             Content-Type: message/partial; number=1; total=2; id=x\n\nX-Weird: Hello\n--1\n\
             Content-Type: application/octet-stream\n\nsecret\n--1--\n";
    let mut f = MemFolder::new(&[(1, 0, false, 0, m)]);
    assert_eq!(run(&mut f, SearchKey::Body("hello".into())), vec![0]);
    assert_eq!(run(&mut f, SearchKey::Body("secret".into())), Vec::<usize>::new());
    // A text part in an encoding that cannot be undone is not searched (Dovecot: corpus
    // thirdparty/004.eml, `Content-Transfer-Encoding: 8 bit`).
    let m = "Content-Type: multipart/mixed; boundary=1\n\n--1\nContent-Transfer-Encoding: 8 bit\n\nqueen\n--1--\n";
    let mut f = MemFolder::new(&[(1, 0, false, 0, m)]);
    assert_eq!(run(&mut f, SearchKey::Body("queen".into())), Vec::<usize>::new());
}
