//! Sort-key extraction tests: RFC 5322 dates to UTC, first addresses and display names, subjects
//! decoded and reduced (RFC 5256 2.1), message-ids of References/In-Reply-To, bounded reads.

use super::*;

fn keys(h: &str) -> Keys {
    Keys::from_header(h.as_bytes())
}

#[test]
fn dates_to_utc() {
    // 1 Jan 2000 00:00:00 UTC is 946684800.
    assert_eq!(parse_date("Sat, 1 Jan 2000 00:00:00 +0000"), Some(946_684_800));
    assert_eq!(parse_date("1 Jan 2000 01:30:00 +0130"), Some(946_684_800));
    assert_eq!(parse_date("Fri, 31 Dec 1999 19:00:00 -0500"), Some(946_684_800));
    assert_eq!(parse_date("31 Dec 1999 19:00 EST"), Some(946_684_800));
    assert_eq!(parse_date("1 Jan 00 00:00:00 GMT"), Some(946_684_800));
    assert_eq!(parse_date("Sat (Saturday), 1 Jan 2000 00:00:00 +0000 (UTC)"), Some(946_684_800));
    assert_eq!(parse_date("1 January 2000 00:00:59 Z"), Some(946_684_859));
    for bad in [
        "",
        "yesterday",
        "1 Foo 2000 00:00:00 +0000",
        "32 Jan 2000 00:00 +0000",
        "1 Jan 2000",
        "1 Jan 2000 24:00 +0000",
        "1 Jan 2000 00:00 +01",
    ] {
        assert_eq!(parse_date(bad), None, "{bad:?}");
    }
}

#[test]
fn fields_of_a_header() {
    let k = keys(
        "From: \"Smith, Ann\" <ann@example.org>, bob@example.org\r\n\
         To: undisclosed:;, =?utf-8?q?J=C3=B6rg?= <joerg@example.net>\r\n\
         Cc: (comment) carl@example.com\r\n\
         Subject: =?utf-8?q?Re=3A_Gr=C3=BC=C3=9Fe?= (fwd)\r\n\
         Date: Sat, 1 Jan 2000 00:00:00 +0000\r\n\
         Message-ID: <m1@example.org>\r\n\
         References: <r1@x> junk <r2@x>\r\n\
         In-Reply-To: <ignored@x>\r\n\
         Subject: second subject is ignored\r\n\r\n",
    );
    assert_eq!(k.sent, Some(946_684_800));
    assert_eq!(&*k.subject, "GRüßE");
    assert!(k.refwd);
    assert_eq!(&*k.from, "ANN");
    assert_eq!(&*k.display_from, "SMITH, ANN");
    assert_eq!(&*k.to, "JOERG");
    assert_eq!(&*k.display_to, "JöRG");
    assert_eq!(&*k.cc, "CARL");
    assert_eq!(k.message_id.as_deref(), Some("m1@example.org"));
    assert_eq!(k.references, vec!["r1@x".into(), "r2@x".into()] as Vec<Box<str>>);
}

#[test]
fn in_reply_to_when_no_references() {
    let k = keys("In-Reply-To: Your message <a@b> of today <c@d>\r\nReferences: no ids here\r\n\r\n");
    assert_eq!(k.references, vec!["a@b".into()] as Vec<Box<str>>);
    let k = keys("From: <>\r\nTo: Nobody\r\nSubject:\r\n\r\n");
    assert_eq!((&*k.from, &*k.to, &*k.subject, &*k.display_to), ("", "NOBODY", "", "NOBODY@"));
    assert_eq!(k.sent, None);
    // Without a display name, DISPLAYFROM is the address.
    assert_eq!(&*keys("From: Ann@Example.org\r\n\r\n").display_from, "ANN@EXAMPLE.ORG");
}

#[test]
fn message_ids_of_hostile_fields() {
    assert_eq!(
        message_ids(b"<a@b><<c@d>>< e @ f >"),
        vec!["a@b".into(), "c@d".into(), "e@f".into()] as Vec<Box<str>>
    );
    assert!(message_ids(b"<nodomain> <@x> <x@> <unterminated@x").is_empty());
    let long = format!("<{}@x>", "a".repeat(600));
    assert!(message_ids(long.as_bytes()).is_empty());
    // A References field of thousands of ids keeps the last MAX_REFERENCES.
    let refs: String = (0..5000).map(|i| format!("<{i}@x> ")).collect();
    let k = keys(&format!("References: {refs}\r\n\r\n"));
    assert_eq!(k.references.len(), MAX_REFERENCES);
    assert_eq!(k.references.last().map(|r| &**r), Some("4999@x"));
}

#[test]
fn a_long_header_is_read_only_in_part() {
    let mut big = b"Subject: kept\r\nX-Junk: ".to_vec();
    big.extend(std::iter::repeat_n(b'x', 1024 * 1024));
    let h = bounded_header(Box::new(std::io::Cursor::new(big))).unwrap();
    assert_eq!(h.len(), MAX_HEADER);
    assert_eq!(&*Keys::from_header(&h).subject, "KEPT");
    let short = bounded_header(Box::new(std::io::Cursor::new(b"A: b\r\n\r\nbody".to_vec()))).unwrap();
    assert_eq!(short, b"A: b\r\n\r\n");
}
