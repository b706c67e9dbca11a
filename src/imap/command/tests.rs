//! Tests of the command parser: RFC 3501 6 and 8 and RFC 9051 example commands, extensions, and
//! the errors.

use super::*;
use crate::imap::types::*;

fn ok(line: &str) -> Command {
    match parse(line.as_bytes()) {
        Ok((_, c)) => c,
        Err(e) => panic!("{line:?}: {}", e.message),
    }
}

fn err(line: &[u8]) -> ParseError {
    match parse(line) {
        Ok(c) => panic!("{:?} parsed as {c:?}", String::from_utf8_lossy(line)),
        Err(e) => e,
    }
}

fn r(a: u32, b: u32) -> SeqRange {
    SeqRange { start: SeqNum::Value(a), end: SeqNum::Value(b) }
}

fn set(ranges: &[SeqRange]) -> SeqSet {
    SeqSet::Ranges(ranges.to_vec())
}

fn mb(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

fn date(year: u16, month: u8, day: u8) -> Date {
    Date { year, month, day }
}

fn sec(part: &[u32], text: Option<SectionText>) -> Section {
    Section { part: part.to_vec(), text }
}

fn body(peek: bool, section: Section, partial: Option<(u32, u32)>) -> FetchAtt {
    let partial = partial.map(|(origin, length)| Partial { origin, length });
    FetchAtt::BodySection { peek, section, partial }
}

#[test]
fn rfc_examples() {
    use Command::*;
    use FetchAtt as F;
    let list = |reference: &str, pattern: &str| {
        List(ListArgs {
            select: vec![],
            reference: mb(reference),
            patterns: vec![mb(pattern)],
            ret: vec![],
            extended: false,
        })
    };
    let cases: Vec<(&str, Command)> = vec![
        // RFC 3501 6.1 and 8.
        ("abcd CAPABILITY", Capability),
        ("a002 NOOP", Noop),
        ("A023 LOGOUT", Logout),
        ("a001 STARTTLS", StartTls),
        ("a001 login mrc secret", Login { user: mb("mrc"), password: mb("secret") }),
        ("a001 LOGIN SMITH SESAME", Login { user: mb("SMITH"), password: mb("SESAME") }),
        (
            "A142 SELECT INBOX",
            Select { mailbox: mb("INBOX"), readonly: false, condstore: false, qresync: None },
        ),
        (
            "A932 EXAMINE blurdybloop",
            Select { mailbox: mb("blurdybloop"), readonly: true, condstore: false, qresync: None },
        ),
        ("A003 CREATE owatagusiam/", Create(mb("owatagusiam/"))),
        ("A683 DELETE blurdybloop", Delete(mb("blurdybloop"))),
        ("A683 RENAME blurdybloop sarasoop", Rename { from: mb("blurdybloop"), to: mb("sarasoop") }),
        ("A002 SUBSCRIBE #news.comp.mail.mime", Subscribe(mb("#news.comp.mail.mime"))),
        ("A002 UNSUBSCRIBE #news.comp.mail.mime", Unsubscribe(mb("#news.comp.mail.mime"))),
        ("A101 LIST \"\" \"\"", list("", "")),
        ("A102 LIST #news.comp.mail.misc \"\"", list("#news.comp.mail.misc", "")),
        ("A202 LIST ~/Mail/ %", list("~/Mail/", "%")),
        ("a004 list \"\" *", list("", "*")),
        ("A1 LIST \"\" INBOX]*", list("", "INBOX]*")),
        ("A002 LSUB #news. comp.mail.*", Lsub { reference: mb("#news."), pattern: mb("comp.mail.*") }),
        (
            "A042 STATUS blurdybloop (UIDNEXT MESSAGES)",
            Status { mailbox: mb("blurdybloop"), items: vec![StatusItem::UidNext, StatusItem::Messages] },
        ),
        ("FXXZ CHECK", Check),
        ("A341 CLOSE", Close),
        ("A202 EXPUNGE", Expunge),
        ("A003 COPY 2:4 MEETING", Copy { uid: false, set: set(&[r(2, 4)]), mailbox: mb("MEETING") }),
        ("a002 IDLE", Idle),
        ("A1 NAMESPACE", Namespace),
        ("A1 UNSELECT", Unselect),
        ("a COMPRESS DEFLATE", Compress("DEFLATE".into())),
        ("a compress deflate", Compress("DEFLATE".into())),
        ("a COMPRESS X-LZ4", Compress("X-LZ4".into())),
        ("A654 FETCH 2:4 (FLAGS BODY[HEADER.FIELDS (DATE FROM)])", {
            let fields = SectionText::HeaderFields(vec!["DATE".into(), "FROM".into()]);
            Fetch {
                uid: false,
                set: set(&[r(2, 4)]),
                items: vec![F::Flags, body(false, sec(&[], Some(fields)), None)],
                changed_since: None,
                vanished: false,
            }
        }),
        (
            "a003 fetch 12 full",
            Fetch {
                uid: false,
                set: set(&[r(12, 12)]),
                items: vec![F::Flags, F::InternalDate, F::Rfc822Size, F::Envelope, F::Body],
                changed_since: None,
                vanished: false,
            },
        ),
        (
            "a004 fetch 12 body[header]",
            Fetch {
                uid: false,
                set: set(&[r(12, 12)]),
                items: vec![body(false, sec(&[], Some(SectionText::Header)), None)],
                changed_since: None,
                vanished: false,
            },
        ),
        (
            "A999 UID FETCH 4827313:4828442 FLAGS",
            Fetch {
                uid: true,
                set: set(&[r(4827313, 4828442)]),
                items: vec![F::Flags],
                changed_since: None,
                vanished: false,
            },
        ),
        (
            "A003 STORE 2:4 +FLAGS (\\Deleted)",
            Store {
                uid: false,
                set: set(&[r(2, 4)]),
                op: StoreOp::Add,
                silent: false,
                flags: vec![Flag::Deleted],
                unchanged_since: None,
            },
        ),
        (
            "a005 store 12 +flags \\deleted",
            Store {
                uid: false,
                set: set(&[r(12, 12)]),
                op: StoreOp::Add,
                silent: false,
                flags: vec![Flag::Deleted],
                unchanged_since: None,
            },
        ),
        (
            "A282 SEARCH FLAGGED SINCE 1-Feb-1994 NOT FROM \"Smith\"",
            Search {
                uid: false,
                ret: None,
                charset: None,
                key: SearchKey::And(vec![
                    SearchKey::Flagged,
                    SearchKey::Since(date(1994, 2, 1)),
                    SearchKey::Not(Box::new(SearchKey::From("Smith".into()))),
                ]),
            },
        ),
        (
            "A284 SEARCH CHARSET UTF-8 TEXT {6}\r\nXXXXXX",
            Search {
                uid: false,
                ret: None,
                charset: Some("UTF-8".into()),
                key: SearchKey::Text("XXXXXX".into()),
            },
        ),
        // RFC 9051 6.
        (
            "A1 FETCH 1:* (FLAGS)",
            Fetch {
                uid: false,
                set: SeqSet::Ranges(vec![SeqRange { start: SeqNum::Value(1), end: SeqNum::Star }]),
                items: vec![F::Flags],
                changed_since: None,
                vanished: false,
            },
        ),
        (
            "A285 SEARCH RETURN (MIN COUNT) FLAGGED SINCE 1-Feb-1994",
            Search {
                uid: false,
                ret: Some(vec![SearchReturn::Min, SearchReturn::Count]),
                charset: None,
                key: SearchKey::And(vec![SearchKey::Flagged, SearchKey::Since(date(1994, 2, 1))]),
            },
        ),
        ("A003 MOVE 2:4 MEETING", Move { uid: false, set: set(&[r(2, 4)]), mailbox: mb("MEETING") }),
        ("A003 UID EXPUNGE 3000:3002", UidExpunge(set(&[r(3000, 3002)]))),
        ("a23 ENABLE IMAP4rev2", Enable(vec!["IMAP4REV2".into()])),
        ("A001 AUTHENTICATE GSSAPI", Authenticate { mechanism: "GSSAPI".into(), initial: None }),
        (
            "a AUTHENTICATE plain AGZyZWQAc2VjcmV0",
            Authenticate { mechanism: "PLAIN".into(), initial: Some(mb("AGZyZWQAc2VjcmV0")) },
        ),
        ("a AUTHENTICATE PLAIN =", Authenticate { mechanism: "PLAIN".into(), initial: Some(mb("=")) }),
        ("a023 ID (\"name\" \"sodr\" \"version\" \"19.34\" \"vendor\" NIL)", {
            Id(Some(vec![
                ("name".into(), Some("sodr".into())),
                ("version".into(), Some("19.34".into())),
                ("vendor".into(), None),
            ]))
        }),
        ("a ID NIL", Id(None)),
        ("a ID ()", Id(Some(vec![]))),
    ];
    for (line, want) in cases {
        assert_eq!(ok(line), want, "{line}");
    }
    assert_eq!(parse(b"a002 NOOP").map(|(t, _)| t), Ok("a002".to_string()));
}

#[test]
fn append() {
    let line = b"A003 APPEND saved-messages (\\Seen) {22}\r\nDate: x\r\n\r\nHello Joe\r\n";
    let want = Command::Append {
        mailbox: mb("saved-messages"),
        flags: vec![Flag::Seen],
        date: None,
        message: b"Date: x\r\n\r\nHello Joe\r\n".to_vec(),
        binary: false,
    };
    assert_eq!(parse(line), Ok(("A003".into(), want.clone())));
    assert_eq!(parse_owned(line.to_vec()), Ok(("A003".into(), want)));
    // Date-time with a zone, LITERAL+, literal8 with NUL, quoted mailbox.
    let (_, c) = parse(b"A1 APPEND \"My Box\" () \"17-Jul-1996 02:44:25 -0700\" {2+}\r\nhi").unwrap();
    let dt = DateTime { unix: 837596665, zone_minutes: -420 };
    assert_eq!(
        c,
        Command::Append {
            mailbox: mb("My Box"),
            flags: vec![],
            date: Some(dt),
            message: mb("hi"),
            binary: false
        }
    );
    let (_, c) = parse(b"A1 APPEND x \" 7-Jul-1996 02:44:25 +0200\" ~{3}\r\na\0b").unwrap();
    let dt = DateTime { unix: 836700265, zone_minutes: 120 };
    assert_eq!(
        c,
        Command::Append {
            mailbox: mb("x"),
            flags: vec![],
            date: Some(dt),
            message: b"a\0b".to_vec(),
            binary: true
        }
    );
    let (_, c) = parse_owned(b"A1 APPEND x (\\Draft $Junk) ~{3+}\r\na\0b".to_vec()).unwrap();
    let want_flags = vec![Flag::Draft, Flag::Keyword("$Junk".into())];
    assert_eq!(
        c,
        Command::Append {
            mailbox: mb("x"),
            flags: want_flags,
            date: None,
            message: b"a\0b".to_vec(),
            binary: true
        }
    );
    for (line, msg) in [
        (&b"A1 APPEND x {3}\r\na\0b"[..], "NUL in literal message (only a literal8 may hold NUL)"),
        (b"A1 APPEND x", "missing message literal"),
        (b"A1 APPEND x \"hello\"", "bad date-time"),
        (b"A1 APPEND x {5}\r\nabc", "literal in message is shorter than announced"),
        (b"A1 APPEND x {3}\r\nabcd", "unexpected characters at the end: d"),
        (b"A1 APPEND x (\\Recent) {1}\r\na", "\\Recent cannot be set by a client"),
        (b"A1 APPEND x \"31-Feb-2000 00:00:00 +0000\" {1}\r\na", "bad date-time"),
        (b"A1 APPEND x \"1-Jan-2000 24:00:00 +0000\" {1}\r\na", "bad date-time"),
        (b"A1 APPEND x {1}a", "bad literal in message"),
    ] {
        assert_eq!(err(line).message, msg, "{}", String::from_utf8_lossy(line));
    }
}

#[test]
fn fetch_items() {
    use FetchAtt as F;
    let items = |line: &str| match ok(line) {
        Command::Fetch { items, .. } => items,
        c => panic!("{c:?}"),
    };
    let fields = |names: &[&str]| names.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let cases: Vec<(&str, Vec<FetchAtt>)> = vec![
        ("a FETCH 1 ALL", vec![F::Flags, F::InternalDate, F::Rfc822Size, F::Envelope]),
        ("a FETCH 1 fast", vec![F::Flags, F::InternalDate, F::Rfc822Size]),
        ("a FETCH 1 (UID RFC822.SIZE)", vec![F::Uid, F::Rfc822Size]),
        ("a FETCH 1 (ENVELOPE INTERNALDATE BODYSTRUCTURE BODY)", {
            vec![F::Envelope, F::InternalDate, F::BodyStructure, F::Body]
        }),
        ("a FETCH 1 (RFC822 RFC822.HEADER RFC822.TEXT)", vec![F::Rfc822, F::Rfc822Header, F::Rfc822Text]),
        ("a FETCH 1 BODY[]", vec![body(false, Section::default(), None)]),
        ("a FETCH 1 BODY.PEEK[]<0.100>", vec![body(true, Section::default(), Some((0, 100)))]),
        ("a FETCH 1 body.peek[1.2.MIME]", vec![body(true, sec(&[1, 2], Some(SectionText::Mime)), None)]),
        ("a FETCH 1 BODY[1.TEXT]", vec![body(false, sec(&[1], Some(SectionText::Text)), None)]),
        ("a FETCH 1 BODY[TEXT]<10.5>", vec![body(false, sec(&[], Some(SectionText::Text)), Some((10, 5)))]),
        ("a FETCH 1 BODY[3]", vec![body(false, sec(&[3], None), None)]),
        (
            "a FETCH 1 BODY[4.2.2.1.HEADER]",
            vec![body(false, sec(&[4, 2, 2, 1], Some(SectionText::Header)), None)],
        ),
        ("a FETCH 1 BODY[HEADER.FIELDS.NOT (Received \"X-Spam\")]", {
            vec![body(
                false,
                sec(&[], Some(SectionText::HeaderFieldsNot(fields(&["Received", "X-Spam"])))),
                None,
            )]
        }),
        ("a FETCH 1 BODY.PEEK[2.HEADER.FIELDS (From To)]", {
            vec![body(true, sec(&[2], Some(SectionText::HeaderFields(fields(&["From", "To"])))), None)]
        }),
        (
            "a FETCH 1 (BINARY[1.2]<0.10> BINARY.PEEK[] BINARY.SIZE[3])",
            vec![
                F::Binary { peek: false, part: vec![1, 2], partial: Some(Partial { origin: 0, length: 10 }) },
                F::Binary { peek: true, part: vec![], partial: None },
                F::BinarySize { part: vec![3] },
            ],
        ),
    ];
    for (line, want) in cases {
        assert_eq!(items(line), want, "{line}");
    }
    for (line, msg) in [
        ("a FETCH 1 (ALL)", "ALL cannot be inside a list"),
        ("a FETCH 1 ()", "bad fetch item"),
        ("a FETCH 1 (FLAGS", "missing fetch item"),
        ("a FETCH 1 FLAGS)", "unexpected characters at the end: )"),
        ("a FETCH 1 (FLAGS  UID)", "more than one space between arguments"),
        ("a FETCH 1 BODY[MIME]", "bad section MIME"),
        ("a FETCH 1 BODY[0]", "section part must not be 0"),
        ("a FETCH 1 BODY[1.]", "bad section "),
        ("a FETCH 1 BODY[HEADER.FIELDS ()]", "bad header field name"),
        ("a FETCH 1 BODY[HEADER.FIELDS (a:b)]", "bad header field name a:b"),
        ("a FETCH 1 BODY[]<0.0>", "partial length must not be 0"),
        ("a FETCH 1 BODY[]<5>", "bad partial"),
        ("a FETCH 1 BODY.PEEK", "missing section"),
        ("a FETCH 1 BINARY[TEXT]", "bad section part"),
        ("a FETCH 1 BINARY.SIZE[1]<0.5>", "unexpected characters at the end: <0.5>"),
        ("a FETCH 1 FOO", "unknown fetch item FOO"),
        ("a FETCH 1", "missing fetch items"),
        ("a FETCH", "missing sequence set"),
    ] {
        assert_eq!(err(line.as_bytes()).message, msg, "{line}");
    }
}

#[test]
fn sequence_sets() {
    use SeqNum::*;
    let seqset = |line: &str| match ok(line) {
        Command::Copy { set, .. } => set,
        c => panic!("{c:?}"),
    };
    let rg = |start, end| SeqRange { start, end };
    assert_eq!(seqset("a COPY 1 x"), set(&[r(1, 1)]));
    assert_eq!(seqset("a COPY 4:2 x"), set(&[r(4, 2)]));
    assert_eq!(seqset("a COPY *:4,7,9:* x"), set(&[rg(Star, Value(4)), r(7, 7), rg(Value(9), Star)]));
    assert_eq!(seqset("a COPY 4294967295 x"), set(&[r(u32::MAX, u32::MAX)]));
    assert_eq!(seqset("a COPY $ x"), SeqSet::Saved);
    assert!(matches!(ok("a UID COPY * x"), Command::Copy { uid: true, .. }));
    for line in ["a COPY 0 x", "a COPY 1:0 x", "a COPY 1, x", "a COPY 1:: x", "a COPY 4294967296 x"] {
        assert!(err(line.as_bytes()).message.starts_with("bad sequence set"), "{line}");
    }
    assert_eq!(err(b"a COPY $,1 x").message, "bad sequence set: $ stands alone");
    assert_eq!(err(b"a COPY 1x x").message, "bad sequence set");
    assert_eq!(err(b"a COPY 1").message, "missing mailbox name");
    let many = format!("a COPY {}1 x", "1:*,".repeat(32 * 1024));
    assert_eq!(err(many.as_bytes()).message, "more than 32768 ranges in a sequence set");
    let fine = format!("a COPY {}1 x", "1:*,".repeat(5000));
    assert!(parse(fine.as_bytes()).is_ok());
}

#[test]
fn store() {
    use Command::Store;
    let cases: Vec<(&str, StoreOp, bool, Vec<Flag>)> = vec![
        ("a STORE 1 FLAGS ()", StoreOp::Replace, false, vec![]),
        (
            "a STORE 1 -FLAGS.SILENT (\\SEEN \\answered)",
            StoreOp::Remove,
            true,
            vec![Flag::Seen, Flag::Answered],
        ),
        ("a STORE 1 +flags.silent \\Flagged $Label1 \\Draft", StoreOp::Add, true, {
            vec![Flag::Flagged, Flag::Keyword("$Label1".into()), Flag::Draft]
        }),
        ("a STORE 1 FLAGS Junk", StoreOp::Replace, false, vec![Flag::Keyword("Junk".into())]),
    ];
    for (line, op, silent, flags) in cases {
        assert_eq!(
            ok(line),
            Store { uid: false, set: set(&[r(1, 1)]), op, silent, flags, unchanged_since: None },
            "{line}"
        );
    }
    assert!(matches!(ok("a UID STORE 1:* +FLAGS (\\Seen)"), Store { uid: true, .. }));
    for (line, msg) in [
        ("a STORE 1 +FLAGS (\\Recent)", "\\Recent cannot be set by a client"),
        ("a STORE 1 +FLAGS \\Foo", "unknown system flag \\Foo"),
        ("a STORE 1 FLAGS", "missing flags"),
        ("a STORE 1 FLAGS (\\Seen", "missing flag"),
        ("a STORE 1 LABELS (x)", "unknown store item LABELS"),
        ("a STORE 1 +FLAGS (a b) c", "unexpected characters at the end: c"),
        ("a STORE 1 FLAGS (\\)", "bad flag name"),
    ] {
        assert_eq!(err(line.as_bytes()).message, msg, "{line}");
    }
}

#[test]
fn search() {
    use SearchKey::*;
    let key = |line: &str| match ok(line) {
        Command::Search { key, .. } => key,
        c => panic!("{c:?}"),
    };
    let cases: Vec<(&str, SearchKey)> = vec![
        ("a SEARCH ALL", All),
        ("a SEARCH answered deleted draft flagged new old recent seen", {
            And(vec![Answered, Deleted, Draft, Flagged, New, Old, Recent, Seen])
        }),
        ("a SEARCH UNANSWERED UNDELETED UNDRAFT UNFLAGGED UNSEEN", {
            And(vec![Unanswered, Undeleted, Undraft, Unflagged, Unseen])
        }),
        ("a SEARCH BCC a CC \"b c\" BODY {1}\r\nd SUBJECT \"\" TEXT e TO f", {
            And(vec![
                Bcc("a".into()),
                Cc("b c".into()),
                Body("d".into()),
                Subject("".into()),
                Text("e".into()),
                To("f".into()),
            ])
        }),
        ("a SEARCH BEFORE 1-Feb-1994 ON \"29-feb-2000\" SENTBEFORE 31-Dec-1999", {
            And(vec![Before(date(1994, 2, 1)), On(date(2000, 2, 29)), SentBefore(date(1999, 12, 31))])
        }),
        ("a SEARCH SENTON 01-Jan-2024 SENTSINCE 2-Mar-2024", {
            And(vec![SentOn(date(2024, 1, 1)), SentSince(date(2024, 3, 2))])
        }),
        ("a SEARCH KEYWORD $Forwarded UNKEYWORD Junk", {
            And(vec![Keyword("$Forwarded".into()), Unkeyword("Junk".into())])
        }),
        (
            "a SEARCH LARGER 1000 SMALLER 9223372036854775807",
            And(vec![Larger(1000), Smaller(i64::MAX as u64)]),
        ),
        ("a SEARCH HEADER Message-ID \"<x@y>\"", Header("Message-ID".into(), "<x@y>".into())),
        ("a SEARCH UID 1:100,200", Uid(set(&[r(1, 100), r(200, 200)]))),
        ("a SEARCH 1:5 $", And(vec![Seq(set(&[r(1, 5)])), Seq(SeqSet::Saved)])),
        ("a SEARCH OR SEEN (FLAGGED NOT DELETED)", {
            Or(Box::new(Seen), Box::new(And(vec![Flagged, Not(Box::new(Deleted))])))
        }),
        (
            "a SEARCH NOT (OR 1 2:*)",
            Not(Box::new(And(vec![Or(
                Box::new(Seq(set(&[r(1, 1)]))),
                Box::new(Seq(SeqSet::Ranges(vec![SeqRange { start: SeqNum::Value(2), end: SeqNum::Star }]))),
            )]))),
        ),
        ("a SEARCH (((ALL)))", And(vec![And(vec![And(vec![All])])])),
    ];
    for (line, want) in cases {
        assert_eq!(key(line), want, "{line}");
    }
    let whole = |line: &str| match ok(line) {
        Command::Search { uid, ret, charset, .. } => (uid, ret, charset),
        c => panic!("{c:?}"),
    };
    assert_eq!(whole("a UID SEARCH RETURN () ALL"), (true, Some(vec![]), None));
    assert_eq!(whole("a SEARCH RETURN (SAVE ALL MAX) CHARSET us-ascii ALL"), {
        (false, Some(vec![SearchReturn::Save, SearchReturn::All, SearchReturn::Max]), Some("us-ascii".into()))
    });
    let (_, c) = parse(b"a SEARCH CHARSET ISO-8859-1 SUBJECT {4}\r\ncaf\xe9").unwrap();
    assert!(matches!(c, Command::Search { key: Subject(s), .. } if s == "café"));
    assert_eq!(err(b"a SEARCH SUBJECT {4}\r\ncaf\xe9").message, "SUBJECT string is not UTF-8");
    for (line, msg) in [
        ("a SEARCH", "missing search criteria"),
        ("a SEARCH FOO", "unknown search key FOO"),
        ("a SEARCH ALL CHARSET UTF-8", "CHARSET must come before the search keys"),
        ("a SEARCH CHARSET UTF-8 RETURN (ALL) ALL", "unknown search key RETURN"),
        ("a SEARCH RETURN (FOO) ALL", "unknown search return option FOO"),
        ("a SEARCH RETURN (MIN)", "missing search criteria"),
        ("a SEARCH SINCE 30-Feb-1994", "bad date"),
        ("a SEARCH SINCE 1-Feb-94", "bad date"),
        ("a SEARCH SINCE \"1-Feb-1994", "bad date"),
        ("a SEARCH SINCE", "missing date after SINCE"),
        ("a SEARCH LARGER x", "bad LARGER size"),
        ("a SEARCH LARGER 9223372036854775808", "LARGER size is too large"),
        ("a SEARCH OR SEEN", "missing second search key after OR"),
        ("a SEARCH (SEEN", "missing search key"),
        ("a SEARCH ()", "bad search key"),
        ("a SEARCH SEEN)", "unexpected characters at the end: )"),
        ("a SEARCH HEADER \"\" x", "bad header field name "),
        ("a SEARCH UID 0", "bad sequence set: 0 is not a message number"),
        ("a SEARCH KEYWORD \\Seen", "bad keyword after KEYWORD"),
        ("a SEARCH SEEN  ALL", "more than one space between arguments"),
    ] {
        assert_eq!(err(line.as_bytes()).message, msg, "{line}");
    }
    // Bounds: nesting and the number of keys.
    let deep = format!("a SEARCH {}ALL{}", "(".repeat(40), ")".repeat(40));
    assert_eq!(err(deep.as_bytes()).message, "search keys nested too deep");
    let nots = format!("a SEARCH {}ALL", "NOT ".repeat(40));
    assert_eq!(err(nots.as_bytes()).message, "search keys nested too deep");
    let ors = format!("a SEARCH {}ALL{}", "OR ALL ".repeat(40), "");
    assert_eq!(err(ors.as_bytes()).message, "search keys nested too deep");
    let fine = format!("a SEARCH {}ALL{}", "(".repeat(30), ")".repeat(30));
    assert!(parse(fine.as_bytes()).is_ok());
    let many = format!("a SEARCH{}", " SEEN".repeat(1001));
    assert_eq!(err(many.as_bytes()).message, "more than 1000 search keys");
    // A huge input with deep nesting must not overflow the stack.
    let huge = format!("a SEARCH {}", "(".repeat(100_000));
    assert_eq!(err(huge.as_bytes()).message, "search keys nested too deep");
}

#[test]
fn list_extended() {
    use ListReturn as R;
    use ListSelect as S;
    let args = |line: &str| match ok(line) {
        Command::List(a) => a,
        c => panic!("{c:?}"),
    };
    let a = args(
        "A01 LIST (SUBSCRIBED RECURSIVEMATCH) \"\" (\"INBOX\" \"Sent*\") \
         RETURN (CHILDREN SUBSCRIBED SPECIAL-USE STATUS (MESSAGES UNSEEN))",
    );
    assert_eq!(
        a,
        ListArgs {
            select: vec![S::Subscribed, S::RecursiveMatch],
            reference: mb(""),
            patterns: vec![mb("INBOX"), mb("Sent*")],
            ret: vec![
                R::Children,
                R::Subscribed,
                R::SpecialUse,
                R::Status(vec![StatusItem::Messages, StatusItem::Unseen]),
            ],
            extended: true,
        }
    );
    let a = args("A02 LIST (REMOTE special-use) \"\" %");
    assert_eq!((a.select, a.extended), (vec![S::RemoteSubscribed, S::SpecialUse], true));
    let a = args("A03 LIST () \"\" % RETURN ()");
    assert_eq!((a.select, a.ret, a.extended), (vec![], vec![], false));
    let a = args("A04 LIST \"\" % RETURN (CHILDREN)");
    assert_eq!((a.ret, a.extended), (vec![R::Children], true));
    let a = args("A05 LIST {0}\r\n {5}\r\nINBOX");
    assert_eq!((a.reference, a.patterns), (vec![], vec![mb("INBOX")]));
    for (line, msg) in [
        ("a LIST (RECURSIVEMATCH) \"\" %", "RECURSIVEMATCH needs another selection option"),
        ("a LIST (FOO) \"\" %", "unknown LIST selection option FOO"),
        ("a LIST \"\" % RETURN (FOO)", "unknown LIST return option FOO"),
        ("a LIST \"\" % FOO (CHILDREN)", "RETURN expected after the mailbox pattern"),
        ("a LIST \"\" () ", "bad mailbox pattern"),
        ("a LIST \"\"", "missing mailbox pattern"),
        ("a LIST", "missing reference"),
        ("a LIST \"\" % RETURN (STATUS ())", "bad status item"),
    ] {
        assert_eq!(err(line.as_bytes()).message, msg, "{line}");
    }
}

#[test]
fn strings_and_mailboxes() {
    let login = |line: &[u8]| match parse(line) {
        Ok((_, Command::Login { user, password })) => (user, password),
        other => panic!("{other:?}"),
    };
    assert_eq!(login(b"a LOGIN \"a \\\"b\\\\\" x]y"), (mb("a \"b\\"), mb("x]y")));
    assert_eq!(login(b"a LOGIN \"\" {0+}\r\n"), (vec![], vec![]));
    assert_eq!(login("a LOGIN \"jos\u{e9}\" p".as_bytes()), (mb("jos\u{e9}"), mb("p")));
    assert_eq!(login(b"a LOGIN {3}\r\na\r\n {1}\r\n\xff"), (b"a\r\n".to_vec(), vec![0xff]));
    assert_eq!(
        ok("a SELECT \"Other Users\" ()"),
        Command::Select { mailbox: mb("Other Users"), readonly: false, condstore: false, qresync: None }
    );
    for (line, msg) in [
        (&b"a LOGIN \"a\\nb\" x"[..], "bad escape in quoted user name"),
        (b"a LOGIN \"ab x", "unterminated quoted string in user name"),
        (b"a LOGIN \"\xff\" x", "8-bit quoted user name is not UTF-8"),
        (b"a LOGIN a", "missing password"),
        (b"a LOGIN a ", "missing password after the space"),
        (b"a LOGIN a b c", "unexpected characters at the end: c"),
        (b"a LOGIN a b ", "trailing space"),
        (b"a LOGIN a\tb c", "expected a space before password"),
        (b"a LOGIN {1}\r\n\0 x", "NUL in literal user name (only a literal8 may hold NUL)"),
        (b"a LOGIN ~{1}\r\nx y", "expected a space before password"),
        (b"a LOGIN {18446744073709551616}\r\n", "literal length is too large"),
        (b"a SELECT", "missing mailbox name"),
        (b"a SELECT %", "bad mailbox name"),
        (b"a SELECT INBOX (NOTIFY (1 2))", "unknown SELECT parameter NOTIFY"),
        (b"a EXAMINE INBOX (", "missing SELECT parameter"),
        (b"a RENAME x", "missing mailbox name"),
        (b"a STATUS x ()", "bad status item"),
        (b"a STATUS x (MESSAGES HIGHESTMODSEQS)", "unknown status item HIGHESTMODSEQS"),
        (b"a STATUS x MESSAGES", "bad status items"),
    ] {
        assert_eq!(err(line).message, msg, "{}", String::from_utf8_lossy(line));
    }
}

#[test]
fn tags_and_commands() {
    for (line, tag, msg) in [
        (&b""[..], None, "missing or bad tag"),
        (b" NOOP", None, "missing or bad tag"),
        (b"+ NOOP", None, "missing or bad tag"),
        (b"a+b NOOP", None, "missing or bad tag"),
        (b"a(b NOOP", None, "missing or bad tag"),
        (b"*", None, "missing or bad tag"),
        (b"\xff NOOP", None, "missing or bad tag"),
        (b"A1", Some("A1"), "missing command"),
        (b"A1 ", Some("A1"), "missing command after the space"),
        (b"A1  NOOP", Some("A1"), "more than one space between arguments"),
        (b"A1 FROB", Some("A1"), "unknown command FROB"),
        (b"A1 UID FROB 1", Some("A1"), "unknown command UID FROB"),
        (b"A1 UID", Some("A1"), "missing UID command"),
        (b"A1 NOOP now", Some("A1"), "NOOP takes no arguments"),
        (b"A1 NOOP\r\n", Some("A1"), "NOOP takes no arguments"),
        (b"A1 ENABLE", Some("A1"), "missing capability"),
        (b"A1 COMPRESS", Some("A1"), "missing compression algorithm"),
        (b"A1 COMPRESS DEFLATE X", Some("A1"), "unexpected characters at the end: X"),
        (b"A1 ID", Some("A1"), "missing ID parameters"),
        (b"A1 ID (\"name\")", Some("A1"), "missing ID value"),
        (b"A1 ID FOO", Some("A1"), "bad ID parameters"),
        (b"A1 AUTHENTICATE PLAIN ab=c", Some("A1"), "bad initial response (base64 expected)"),
        (b"A1 AUTHENTICATE PLAIN abc", Some("A1"), "bad initial response (base64 expected)"),
        (b"A1 AUTHENTICATE PLAIN abcd e", Some("A1"), "unexpected characters at the end: e"),
    ] {
        assert_eq!(err(line), ParseError { tag: tag.map(String::from), message: msg.into() });
    }
    // Tags may hold any ASTRING-CHAR but "+", including "]".
    assert_eq!(parse(b"a]1.x NOOP").map(|(t, _)| t), Ok("a]1.x".into()));
    assert_eq!(
        ok("t eNaBlE CONDSTORE utf8=accept"),
        Command::Enable(vec!["CONDSTORE".into(), "UTF8=ACCEPT".into()])
    );
}

#[test]
fn long_token_in_message_is_bounded() {
    let line = format!("a {}", "X".repeat(10_000));
    let e = err(line.as_bytes());
    assert!(e.message.len() < 80, "{}", e.message);
    assert_eq!(err(b"a \x01\x02").message, "bad command");
}

#[test]
fn condstore_syntax() {
    // RFC 7162 3.1: the CONDSTORE parameter, modifiers, the MODSEQ fetch item, search key and
    // status item.
    let ok = |l: &str| parse(l.as_bytes()).map(|(_, c)| c).unwrap_or_else(|e| panic!("{l}: {e:?}"));
    assert!(matches!(ok("a SELECT INBOX (CONDSTORE)"), Command::Select { condstore: true, .. }));
    assert!(matches!(ok("a EXAMINE INBOX"), Command::Select { condstore: false, readonly: true, .. }));
    match ok("a FETCH 1:* (UID FLAGS) (CHANGEDSINCE 12345)") {
        Command::Fetch { changed_since: Some(12345), items, .. } => {
            assert_eq!(items, vec![FetchAtt::Uid, FetchAtt::Flags])
        }
        c => panic!("{c:?}"),
    }
    assert!(
        matches!(ok("a UID FETCH 1 MODSEQ"), Command::Fetch { uid: true, items, .. } if items == vec![FetchAtt::ModSeq])
    );
    match ok("a STORE 1:3 (UNCHANGEDSINCE 0) +FLAGS.SILENT (\\Deleted)") {
        Command::Store { unchanged_since: Some(0), silent: true, .. } => {}
        c => panic!("{c:?}"),
    }
    assert_eq!(
        ok("a SEARCH MODSEQ \"/flags/\\\\draft\" all 620162338"),
        Command::Search { uid: false, ret: None, charset: None, key: SearchKey::ModSeq(620162338) }
    );
    assert!(
        matches!(ok("a STATUS x (HIGHESTMODSEQ)"), Command::Status { items, .. } if items == vec![StatusItem::HighestModSeq])
    );
    // RFC 7162 3.2.5 / 3.2.6: the QRESYNC parameter in its three lengths, the VANISHED modifier.
    match ok("a SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541))") {
        Command::Select { qresync: Some(q), .. } => {
            assert_eq!((q.uidvalidity, q.modseq), (67890007, 20050715194045000));
            assert!(q.known_uids.is_some());
        }
        c => panic!("{c:?}"),
    }
    assert!(matches!(
        ok(
            "a SELECT INBOX (QRESYNC (67890007 90060115194045000 1:29997 (5000,7500,9000,9990:9999 15000,22500,27000,29970,29973,29976:29979)))"
        ),
        Command::Select { qresync: Some(Qresync { known_uids: Some(_), .. }), .. }
    ));
    assert!(matches!(
        ok("a EXAMINE INBOX (CONDSTORE QRESYNC (1 2))"),
        Command::Select { condstore: true, qresync: Some(Qresync { known_uids: None, .. }), .. }
    ));
    assert!(matches!(
        ok("a UID FETCH 300:500 (FLAGS) (CHANGEDSINCE 12345 VANISHED)"),
        Command::Fetch { uid: true, changed_since: Some(12345), vanished: true, .. }
    ));
    for bad in [
        "a FETCH 1 FLAGS (VANISHED CHANGEDSINCE 1 VANISHED)",
        "a UID FETCH 1 FLAGS (VANISHED)",
        "a SELECT x (QRESYNC (0 1))",
        "a SELECT x (QRESYNC (1))",
        "a FETCH 1 FLAGS (CHANGEDSINCE 0)",
        "a FETCH 1 FLAGS (CHANGEDSINCE x)",
        "a FETCH 1 FLAGS (VANISHED)",
        "a STORE 1 (UNCHANGEDSINCE) FLAGS x",
        "a SEARCH MODSEQ \"/flags/x\" some 1",
    ] {
        assert!(parse(bad.as_bytes()).is_err(), "{bad}");
    }
}
