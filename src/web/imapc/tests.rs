//! The response reader and argument encoding, from RFC transcripts fed at every split point.

use super::*;

const CAP: usize = 1 << 16;

/// The responses of `parts` fed one after another, or the reader's error as text.
fn read(parts: &[&[u8]], max: usize) -> std::result::Result<Vec<Response>, String> {
    let mut r = Reader::new(max);
    let mut out = Vec::new();
    for p in parts {
        r.feed(p);
        while let Some(x) = r.next().map_err(|e| e.to_string())? {
            out.push(x);
        }
    }
    Ok(out)
}

/// Feeds `input` split at every pair of points, and byte by byte: the same responses each
/// time, all of the input consumed.
fn all_splits(input: &[u8]) -> Vec<Response> {
    let whole = read(&[input], CAP).unwrap();
    for i in 0..=input.len() {
        for j in i..=input.len() {
            let got = read(&[&input[..i], &input[i..j], &input[j..]], CAP).unwrap();
            assert_eq!(got, whole, "split at {i},{j} of {:?}", String::from_utf8_lossy(input));
        }
    }
    let bytes: Vec<&[u8]> = input.chunks(1).collect();
    assert_eq!(read(&bytes, CAP).unwrap(), whole);
    whole
}

fn u(x: Untagged) -> Response {
    Response::Untagged(x)
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn tagged(tag: &str, status: Status, code: Option<&str>, text: &str) -> Response {
    Response::Tagged { tag: tag.into(), status, code: code.map(String::from), text: text.into() }
}

#[test]
fn select_transcript() {
    // RFC 9051 6.3.2.
    let t = b"* 172 EXISTS\r\n* OK [UIDVALIDITY 3857529045] UIDs valid\r\n\
        * OK [UIDNEXT 4392] Predicted next UID\r\n* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n\
        * OK [PERMANENTFLAGS (\\Deleted \\Seen \\*)] Limited\r\n* LIST () \"/\" INBOX\r\n\
        A142 OK [READ-WRITE] SELECT completed\r\n";
    let ok = |code: &str, text: &str| u(Untagged::Ok { code: Some(code.into()), text: text.into() });
    assert_eq!(
        all_splits(t),
        vec![
            u(Untagged::Exists(172)),
            ok("UIDVALIDITY 3857529045", "UIDs valid"),
            ok("UIDNEXT 4392", "Predicted next UID"),
            u(Untagged::Flags(strings(&["\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft"]))),
            ok("PERMANENTFLAGS (\\Deleted \\Seen \\*)", "Limited"),
            u(Untagged::List { flags: vec![], delimiter: Some('/'), name: "INBOX".into() }),
            tagged("A142", Status::Ok, Some("READ-WRITE"), "SELECT completed"),
        ]
    );
}

#[test]
fn list_transcript() {
    // RFC 9051 6.3.9, RFC 3501 5.1.3, RFC 5258 (extended data), RFC 6154 (special use).
    let t = b"* LIST (\\Noselect) \"/\" ~/Mail/foo\r\n* LIST () \".\" #news.comp.mail.misc\r\n\
        * LIST (\\HasNoChildren \\Sent) \"/\" Sent\r\n* LIST () \"/\" \"~peter/mail/&U,BTFw-/&ZeVnLIqe-\"\r\n\
        * LIST () NIL {7}\r\nmy \"box\r\n* LIST (\\Marked) \"\\\\\" \"a\\\\b\"\r\n\
        * LIST () \"/\" \"Foo\" (\"CHILDINFO\" (\"SUBSCRIBED\"))\r\n* LIST () \"/\" Entw&APw-rfe\r\n\
        * LIST () \"/\" \"caf\xc3\xa9\"\r\nA101 OK LIST Completed\r\n";
    let l = |flags: &[&str], d: Option<char>, name: &str| {
        u(Untagged::List { flags: strings(flags), delimiter: d, name: name.into() })
    };
    assert_eq!(
        all_splits(t),
        vec![
            l(&["\\Noselect"], Some('/'), "~/Mail/foo"),
            l(&[], Some('.'), "#news.comp.mail.misc"),
            l(&["\\HasNoChildren", "\\Sent"], Some('/'), "Sent"),
            l(&[], Some('/'), "~peter/mail/台北/日本語"),
            l(&[], None, "my \"box"),
            l(&["\\Marked"], Some('\\'), "a\\b"),
            l(&[], Some('/'), "Foo"),
            l(&[], Some('/'), "Entwürfe"),
            l(&[], Some('/'), "café"),
            tagged("A101", Status::Ok, None, "LIST Completed"),
        ]
    );
}

#[test]
fn status_and_search_transcripts() {
    // RFC 9051 6.3.11, RFC 3501 7.2.5, RFC 4731 3.1.
    let t = b"* STATUS blurdybloop (MESSAGES 231 UIDNEXT 44292)\r\n\
        * STATUS \"Entw&APw-rfe\" (UIDVALIDITY 7 X-FOO (1 2) SIZE 12345678901)\r\n\
        * SEARCH 2 84 882\r\n* SEARCH\r\n* SEARCH \r\n* SEARCH 5 (MODSEQ 917162500)\r\n\
        * ESEARCH (TAG \"a5\") UID ALL 1:3,5,9:8 COUNT 6\r\n* ESEARCH (TAG \"a6\") UID COUNT 0\r\n\
        * ESEARCH ALL 4\r\n* ESEARCH\r\n";
    let st = |name: &str, items: &[(&str, u64)]| {
        let items = items.iter().map(|&(k, v)| (k.to_string(), v)).collect();
        u(Untagged::Status { name: name.into(), items })
    };
    let search = |v: &[u32]| u(Untagged::Search(v.to_vec()));
    assert_eq!(
        all_splits(t),
        vec![
            st("blurdybloop", &[("MESSAGES", 231), ("UIDNEXT", 44292)]),
            st("Entwürfe", &[("UIDVALIDITY", 7), ("SIZE", 12_345_678_901)]),
            search(&[2, 84, 882]),
            search(&[]),
            search(&[]),
            search(&[5]),
            search(&[1, 2, 3, 5, 8, 9]),
            search(&[]),
            search(&[4]),
            search(&[]),
        ]
    );
}

#[test]
fn fetch_transcript_with_literals_nil_and_unsolicited_exists() {
    let header = b"From: a@b\r\nSubject: {3}\r\nhi\r\n\r\n";
    let mut t = b"* 12 FETCH (FLAGS (\\Seen) INTERNALDATE \"17-Jul-1996 02:44:25 -0700\" RFC822.SIZE 4286 \
        ENVELOPE (\"Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\" \"IMAP4rev1 WG mtg summary and minutes\" \
        ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) NIL NIL NIL \"<B27397-0100000@cac.washington.edu>\") \
        BODY (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 3028 92))\r\n"
        .to_vec();
    // Two transcripts, each fed at every pair of split points (the cost grows with the cube).
    let mut got = all_splits(&t);
    t.clear();
    t.extend_from_slice(
        format!("* 2 FETCH (UID 7 BODY[HEADER.FIELDS (\"From\" SUBJECT)] {{{}}}\r\n", header.len())
            .as_bytes(),
    );
    t.extend_from_slice(header);
    t.extend_from_slice(b" BODY[TEXT] NIL)\r\n* 4 EXISTS\r\n");
    t.extend_from_slice(
        b"* 3 FETCH (UID 9 BODY[]<0> \"sh\\\"ort\" BINARY[1] ~{3}\r\n\0\x01\x02 MODSEQ (12345) FLAGS ())\r\n",
    );
    t.extend_from_slice(
        b"* 2 EXPUNGE\r\n* 4 FETCH (FLAGS (\\Seen $Forwarded))\r\na7 OK [EXPUNGEISSUED] done\r\n",
    );
    got.extend(all_splits(&t));
    let f = |seq: u32, items: FetchData| u(Untagged::Fetch { seq, items });
    assert_eq!(
        got,
        vec![
            f(
                12,
                FetchData {
                    flags: Some(strings(&["\\Seen"])),
                    internaldate: Some("17-Jul-1996 02:44:25 -0700".into()),
                    size: Some(4286),
                    ..FetchData::default()
                }
            ),
            f(
                2,
                FetchData {
                    uid: Some(7),
                    sections: vec![
                        ("BODY[HEADER.FIELDS (FROM SUBJECT)]".into(), header.to_vec()),
                        ("BODY[TEXT]".into(), vec![]),
                    ],
                    ..FetchData::default()
                }
            ),
            u(Untagged::Exists(4)),
            f(
                3,
                FetchData {
                    uid: Some(9),
                    flags: Some(vec![]),
                    sections: vec![
                        ("BODY[]<0>".into(), b"sh\"ort".to_vec()),
                        ("BINARY[1]".into(), vec![0, 1, 2])
                    ],
                    ..FetchData::default()
                }
            ),
            u(Untagged::Expunge(2)),
            f(4, FetchData { flags: Some(strings(&["\\Seen", "$Forwarded"])), ..FetchData::default() }),
            tagged("a7", Status::Ok, Some("EXPUNGEISSUED"), "done"),
        ]
    );
    let Response::Untagged(Untagged::Fetch { items, .. }) = &got[1] else { panic!() };
    assert_eq!(items.section("body.peek[header.fields (from subject)]"), Some(&header[..]));
}

#[test]
fn completions_continuations_bye_and_unknown_responses() {
    let t = b"+ Ready for literal data\r\n+\r\na3 NO [TRYCREATE] Mailbox does not exist\r\n\
        a4 BAD Unknown command\r\na5 ok fine\r\n* NAMESPACE ((\"\" \"/\")) NIL NIL\r\n* 5 RECENT\r\n\
        * CAPABILITY IMAP4rev1 LITERAL+ Move\r\n* NO [ALERT] Disk full\r\n* BYE Autologout; idle for too long\r\n\
        * PREAUTH {2}\r\nhi\r\n*\r\n* 1 FETCH (UID)\r\n* LIST (\\Noselect \"/\" x\r\n* ESEARCH ALL 1:*\r\n\
        * 99999999999 EXISTS\r\n";
    let other = |s: &[u8]| u(Untagged::Other(s.to_vec()));
    assert_eq!(
        all_splits(t),
        vec![
            Response::Continue("Ready for literal data".into()),
            Response::Continue(String::new()),
            tagged("a3", Status::No, Some("TRYCREATE"), "Mailbox does not exist"),
            tagged("a4", Status::Bad, None, "Unknown command"),
            tagged("a5", Status::Ok, None, "fine"),
            other(b"* NAMESPACE ((\"\" \"/\")) NIL NIL"),
            other(b"* 5 RECENT"),
            u(Untagged::Capability(strings(&["IMAP4REV1", "LITERAL+", "MOVE"]))),
            u(Untagged::No { code: Some("ALERT".into()), text: "Disk full".into() }),
            u(Untagged::Bye { code: None, text: "Autologout; idle for too long".into() }),
            other(b"* PREAUTH {2}\r\nhi"),
            other(b"*"),
            other(b"* 1 FETCH (UID)"),
            other(b"* LIST (\\Noselect \"/\" x"),
            other(b"* ESEARCH ALL 1:*"),
            other(b"* 99999999999 EXISTS"),
        ]
    );
}

#[test]
fn malformed_completions_are_errors_and_the_reader_stays_failed() {
    for bad in [&b"a1 MAYBE hi\r\n"[..], b"\r\n", b"a+1 OK x\r\n", b"a1\r\n", b"(x) OK\r\n"] {
        let mut r = Reader::new(CAP);
        r.feed(bad);
        assert!(matches!(r.next(), Err(Error::Protocol(_))), "{:?}", String::from_utf8_lossy(bad));
        r.feed(b"a1 OK fine\r\n");
        assert!(r.next().is_err());
    }
}

#[test]
fn the_cap_holds_before_anything_is_allocated() {
    // A literal past the cap is refused on its announcement, before its octets come.
    for head in
        [&b"* 1 FETCH (BODY[] {4000000000}\r\n"[..], b"* 1 FETCH (BODY[] ~{99999999999999999999999}\r\n"]
    {
        assert!(read(&[head], 1000).unwrap_err().contains("larger than 1000"));
    }
    // A line without an end, past the cap.
    assert!(read(&[&[b'x'; 1001][..]], 1000).is_err());
    assert_eq!(read(&[&[b'x'; 1000][..]], 1000), Ok(vec![]));
    // Exactly at the cap, literal included, then one more octet.
    let at = |n: usize| {
        let mut t = format!("* 1 FETCH (BODY[] {{{n}}}\r\n").into_bytes();
        t.extend(std::iter::repeat_n(b'a', n));
        t.extend_from_slice(b")\r\n");
        t
    };
    let len = at(10).len();
    assert_eq!(read(&[&at(10)], len).map(|v| v.len()), Ok(1));
    assert!(read(&[&at(11)], len).is_err());
    // An ESEARCH result set of more numbers than a quarter of the cap.
    assert!(read(&[b"* ESEARCH ALL 1:4294967295\r\n"], 1000).is_err());
    assert_eq!(read(&[b"* ESEARCH ALL 1:249\r\n"], 1000).map(|v| v.len()), Ok(1));
}

#[test]
fn section_keys() {
    for (name, key) in [
        ("BODY.PEEK[HEADER.FIELDS (From  Subject)]", "BODY[HEADER.FIELDS (FROM SUBJECT)]"),
        ("body[header.fields ( \"to\" )]", "BODY[HEADER.FIELDS (TO)]"),
        ("BODY.PEEK[]<0.100>", "BODY[]<0>"),
        ("BODY[1.2.MIME]", "BODY[1.2.MIME]"),
        ("binary.peek[1]", "BINARY[1]"),
        ("RFC822.HEADER", "RFC822.HEADER"),
    ] {
        assert_eq!(section_key(name.as_bytes()), key, "{name}");
    }
}

/// An argument as sent, pieces joined by `|`.
fn encoded(arg: Arg) -> std::result::Result<String, String> {
    let mut out = vec![Vec::new()];
    encode_arg(&mut out, &arg).map_err(|e| e.to_string())?;
    Ok(out.iter().map(|p| String::from_utf8_lossy(p)).collect::<Vec<_>>().join("|"))
}

#[test]
fn user_text_never_breaks_the_command() {
    assert_eq!(encoded(Arg::Str("say \"hi\" \\o/")).unwrap(), "\"say \\\"hi\\\" \\\\o/\"");
    assert_eq!(encoded(Arg::Str("")).unwrap(), "\"\"");
    assert_eq!(encoded(Arg::Str("a\r\nb")).unwrap(), "{4+}\r\na\r\nb");
    assert_eq!(encoded(Arg::Str("Grüße")).unwrap(), "{7+}\r\nGrüße");
    assert!(encoded(Arg::Str("nul\0")).is_err());
    assert!(encoded(Arg::Str(&"x".repeat(2000))).unwrap().starts_with("{2000+}\r\nxxx"));
    assert_eq!(encoded(Arg::Str(&"x".repeat(4097))).unwrap(), format!("{{4097}}\r\n|{}", "x".repeat(4097)));
    assert_eq!(encoded(Arg::Bytes(b"a\0")).unwrap(), "~{2+}\r\na\0");
    assert_eq!(encoded(Arg::Mailbox("Entwürfe")).unwrap(), "\"Entw&APw-rfe\"");
    assert_eq!(encoded(Arg::Mailbox("a\"b\r\nc")).unwrap(), "\"a\\\"b&AA0ACg-c\"");
    assert_eq!(encoded(Arg::Bytes(b"x")).unwrap(), "{1+}\r\nx");
    for bad in ["", "a\r\nb", "caf\u{e9}", "{5}", "a\tb"] {
        assert!(encoded(Arg::Atom(bad)).is_err(), "{bad:?}");
    }
    assert!(flag_list(&["\\Seen", "$Label1"]).is_ok());
    for bad in ["\\", "a b", "x)", "\\Seen\r\n"] {
        assert!(flag_list(&[bad]).is_err(), "{bad:?}");
    }
    assert!(check_set("1:5,9,*").is_ok());
    assert!(check_set("1 OR").is_err() && check_set("").is_err());
}

#[test]
fn pseudo_random_bytes_never_panic() {
    const PIECES: [&[u8]; 30] = [
        b"* ",
        b"a1 ",
        b"+ ",
        b"OK ",
        b"NO ",
        b"BYE ",
        b"FETCH ",
        b"LIST ",
        b"STATUS ",
        b"ESEARCH ",
        b"SEARCH ",
        b"UID ",
        b"ALL ",
        b"BODY[",
        b"]",
        b"<0>",
        b"(",
        b")",
        b"\"",
        b"\\",
        b"{3}\r\n",
        b"~{2}\r\n",
        b"{99999}\r\n",
        b"NIL",
        b"17",
        b"1:4,9",
        b"\r\n",
        b"\n",
        b"&U,BTFw-",
        b"\xff\0",
    ];
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for _ in 0..4000 {
        let mut input = Vec::new();
        for _ in 0..next() % 40 {
            match next() % 4 {
                0 => input.push((next() & 0xff) as u8),
                _ => input.extend_from_slice(PIECES[(next() % PIECES.len() as u64) as usize]),
            }
        }
        let max = 16 + (next() % 200) as usize;
        let mut r = Reader::new(max);
        let mut rest = &input[..];
        while !rest.is_empty() {
            let (now, later) = rest.split_at(1 + (next() as usize) % rest.len());
            rest = later;
            r.feed(now);
            while let Ok(Some(_)) = r.next() {}
            assert!(r.buf.len() - r.start <= max + now.len(), "held past the cap");
        }
    }
}
