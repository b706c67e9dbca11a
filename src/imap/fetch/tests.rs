//! FETCH against an in-memory folder (also used by the SEARCH tests): what is written, what is read,
//! and the \Seen side effect.

use std::collections::HashMap;

use super::*;
use crate::imap::types::{FetchAtt, Partial, Section, SectionText};
use crate::store::folder::{Changes, FlagOp, MessageInfo, Uid};

/// A folder in memory that counts its reads.
pub(crate) struct MemFolder {
    pub infos: Vec<MessageInfo>,
    pub bodies: Vec<Vec<u8>>,
    pub expunged: Vec<usize>,
    pub readonly: bool,
    pub reads: usize,
    pub header_reads: usize,
    pub cache: HashMap<(usize, u8), String>,
}

impl MemFolder {
    /// Messages given as (uid, system flags, recent, internal date, text with LF line ends).
    pub fn new(msgs: &[(Uid, u8, bool, i64, &str)]) -> Self {
        let bodies: Vec<Vec<u8>> = msgs.iter().map(|m| m.4.replace('\n', "\r\n").into_bytes()).collect();
        let infos = msgs
            .iter()
            .zip(&bodies)
            .map(|(m, b)| MessageInfo {
                uid: m.0,
                flags: Flags { system: m.1, keywords: Vec::new() },
                size: b.len() as u64,
                internal_date: m.3,
                recent: m.2,
                modseq: 0,
            })
            .collect();
        MemFolder {
            infos,
            bodies,
            expunged: Vec::new(),
            readonly: false,
            reads: 0,
            header_reads: 0,
            cache: HashMap::new(),
        }
    }
}

impl Folder for MemFolder {
    fn name(&self) -> &str {
        "INBOX"
    }
    fn readonly(&self) -> bool {
        self.readonly
    }
    fn uidvalidity(&self) -> u32 {
        1
    }
    fn uidnext(&self) -> Uid {
        self.infos.last().map_or(1, |m| m.uid + 1)
    }
    fn messages(&self) -> &[MessageInfo] {
        &self.infos
    }
    fn keywords(&self) -> Vec<String> {
        Vec::new()
    }
    fn sync(&mut self, _: bool) -> Result<Changes, FolderError> {
        Ok(Changes::default())
    }
    fn changed(&mut self) -> bool {
        false
    }
    fn read(&mut self, index: usize) -> Result<Vec<u8>, FolderError> {
        if self.expunged.contains(&index) {
            return Err(FolderError::Expunged);
        }
        self.reads += 1;
        self.bodies.get(index).cloned().ok_or(FolderError::Expunged)
    }
    fn read_header(&mut self, index: usize) -> Result<Vec<u8>, FolderError> {
        if self.expunged.contains(&index) {
            return Err(FolderError::Expunged);
        }
        self.header_reads += 1;
        let m = self.bodies.get(index).ok_or(FolderError::Expunged)?;
        Ok(m[..crate::store::folder::header_end(m)].to_vec())
    }
    fn store(&mut self, indexes: &[usize], op: FlagOp, flags: &Flags) -> Result<(), FolderError> {
        if self.readonly {
            return Err(FolderError::ReadOnly);
        }
        for &i in indexes {
            let f = &mut self.infos[i].flags;
            match op {
                FlagOp::Add => f.system |= flags.system,
                FlagOp::Remove => f.system &= !flags.system,
                FlagOp::Replace => f.system = flags.system,
            }
        }
        Ok(())
    }
    fn expunge(&mut self, _: Option<&[Uid]>) -> Result<Vec<u32>, FolderError> {
        Ok(Vec::new())
    }
    fn cached(&self, index: usize, which: u8) -> Option<String> {
        self.cache.get(&(index, which)).cloned()
    }
    fn cache(&mut self, index: usize, which: u8, value: String) {
        self.cache.insert((index, which), value);
    }
}

const RFC_DATE: i64 = 837_596_665; // 17-Jul-1996 09:44:25 UTC

const MSG: &str = "From: Terry Gray <gray@cac.washington.edu>\n\
Subject: IMAP4rev1 WG mtg summary and minutes\n\
X-Folded: a\n b\n\
Content-Type: multipart/mixed; boundary=b\n\
\n\
--b\n\
\n\
hello\n\
--b\n\
Content-Type: application/octet-stream\n\
Content-Transfer-Encoding: base64\n\
\n\
AGI=\n\
--b\n\
Content-Transfer-Encoding: x-uuencode\n\
\n\
begin\n\
--b--\n";

fn folder() -> MemFolder {
    MemFolder::new(&[(10, 0, true, RFC_DATE, MSG), (12, SEEN | FLAGGED, false, 0, "Subject: two\n\nbody\n")])
}

fn run(f: &mut MemFolder, index: usize, items: &[FetchAtt], opts: FetchOpts) -> String {
    let mut out = Vec::new();
    fetch(&mut out, f, index, items, opts).unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

fn body(peek: bool, part: &[u32], text: Option<SectionText>, partial: Option<Partial>) -> FetchAtt {
    FetchAtt::BodySection { peek, section: Section { part: part.to_vec(), text }, partial }
}

#[test]
fn cheap_items_read_nothing() {
    let mut f = folder();
    let items = [FetchAtt::Flags, FetchAtt::InternalDate, FetchAtt::Rfc822Size, FetchAtt::Uid];
    assert_eq!(
        run(&mut f, 0, &items, FetchOpts::default()),
        format!(
            "* 1 FETCH (FLAGS (\\Recent) INTERNALDATE \"17-Jul-1996 09:44:25 +0000\" RFC822.SIZE {} UID 10)\r\n",
            f.bodies[0].len()
        )
    );
    // UID FETCH: UID first and once; IMAP4rev2 has no \Recent.
    let opts = FetchOpts { uid: true, rev2: true, ..Default::default() };
    assert_eq!(
        run(&mut f, 1, &[FetchAtt::Flags, FetchAtt::Uid, FetchAtt::InternalDate], opts),
        "* 2 FETCH (UID 12 FLAGS (\\Seen \\Flagged) INTERNALDATE \" 1-Jan-1970 00:00:00 +0000\")\r\n"
    );
    assert_eq!((f.reads, f.header_reads), (0, 0));
}

#[test]
fn envelope_reads_the_header_once_then_the_cache() {
    let mut f = folder();
    let want = "* 1 FETCH (ENVELOPE (NIL \"IMAP4rev1 WG mtg summary and minutes\" \
        ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) \
        ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) NIL NIL NIL NIL NIL))\r\n";
    assert_eq!(run(&mut f, 0, &[FetchAtt::Envelope], FetchOpts::default()), want);
    assert_eq!((f.reads, f.header_reads), (0, 1));
    assert_eq!(run(&mut f, 0, &[FetchAtt::Envelope], FetchOpts::default()), want);
    assert_eq!((f.reads, f.header_reads), (0, 1));
    // BODYSTRUCTURE reads the message, then comes from the cache; BODY is the short form.
    let bs = run(&mut f, 0, &[FetchAtt::BodyStructure, FetchAtt::Body], FetchOpts::default());
    assert!(bs.starts_with("* 1 FETCH (BODYSTRUCTURE ((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 5 0 NIL NIL NIL NIL)"), "{bs}");
    assert!(
        bs.contains(" BODY ((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 5 0)"),
        "{bs}"
    );
    assert_eq!(f.reads, 1);
    let again = run(&mut f, 0, &[FetchAtt::BodyStructure], FetchOpts::default());
    assert_eq!(f.reads, 1);
    assert!(bs.starts_with(again.trim_end_matches(")\r\n")));
}

#[test]
fn body_sections_and_seen() {
    let mut f = folder();
    // PEEK: no \Seen; HEADER.FIELDS comes from the header alone, names upper-cased, partial origin.
    let out = run(
        &mut f,
        0,
        &[body(
            true,
            &[],
            Some(SectionText::HeaderFields(vec!["subject".into(), "X-Folded".into()])),
            Some(Partial { origin: 0, length: 20 }),
        )],
        FetchOpts::default(),
    );
    assert_eq!(out, "* 1 FETCH (BODY[HEADER.FIELDS (SUBJECT X-FOLDED)]<0> {20}\r\nSubject: IMAP4rev1 W)\r\n");
    assert_eq!((f.reads, f.header_reads), (0, 1));
    assert_eq!(f.infos[0].flags.system & SEEN, 0);
    // BODY[1]: reads the message, sets \Seen and reports FLAGS.
    let out = run(&mut f, 0, &[body(false, &[1], None, None)], FetchOpts::default());
    assert_eq!(out, "* 1 FETCH (BODY[1] {5}\r\nhello FLAGS (\\Seen \\Recent))\r\n");
    assert_eq!(f.infos[0].flags.system & SEEN, SEEN);
    // Already seen: no FLAGS added.
    assert_eq!(
        run(&mut f, 0, &[body(false, &[1], Some(SectionText::Mime), None)], FetchOpts::default()),
        "* 1 FETCH (BODY[1.MIME] {2}\r\n\r\n)\r\n"
    );
    // A partial past the end is empty; a missing part is empty.
    assert_eq!(
        run(
            &mut f,
            0,
            &[
                body(true, &[1], None, Some(Partial { origin: 99, length: 5 })),
                body(true, &[7, 1], Some(SectionText::Text), None)
            ],
            FetchOpts::default()
        ),
        "* 1 FETCH (BODY[1]<99> {0}\r\n BODY[7.1.TEXT] {0}\r\n)\r\n"
    );
    // RFC822.* forms.
    let mut f = folder();
    let out = run(
        &mut f,
        1,
        &[FetchAtt::Rfc822Header, FetchAtt::Rfc822Text, FetchAtt::Rfc822],
        FetchOpts::default(),
    );
    assert_eq!(
        out,
        "* 2 FETCH (RFC822.HEADER {16}\r\nSubject: two\r\n\r\n RFC822.TEXT {6}\r\nbody\r\n RFC822 {22}\r\nSubject: two\r\n\r\nbody\r\n)\r\n"
    );
    // Read-only: nothing changes, no FLAGS.
    let mut f = folder();
    f.readonly = true;
    assert_eq!(
        run(&mut f, 0, &[FetchAtt::Rfc822Text, FetchAtt::Uid], FetchOpts::default()).matches("FLAGS").count(),
        0
    );
}

#[test]
fn binary() {
    let mut f = folder();
    let out = run(
        &mut f,
        0,
        &[
            FetchAtt::Binary { peek: true, part: vec![2], partial: None },
            FetchAtt::BinarySize { part: vec![2] },
            FetchAtt::Binary { peek: true, part: vec![1], partial: Some(Partial { origin: 1, length: 2 }) },
        ],
        FetchOpts::default(),
    );
    // RFC 3516: literal8 only when there is a NUL.
    assert_eq!(out, "* 1 FETCH (BINARY[2] ~{2}\r\n\0b BINARY.SIZE[2] 2 BINARY[1]<1> {2}\r\nel)\r\n");
    let mut out = Vec::new();
    let r = fetch(
        &mut out,
        &mut f,
        0,
        &[FetchAtt::Binary { peek: false, part: vec![3], partial: None }],
        FetchOpts::default(),
    );
    assert!(r.as_ref().is_err_and(is_unknown_cte), "{r:?}");
    assert!(out.is_empty());
}

#[test]
fn expunged_message_fails() {
    let mut f = folder();
    f.expunged.push(0);
    let mut out = Vec::new();
    let r = fetch(&mut out, &mut f, 0, &[FetchAtt::Envelope], FetchOpts::default());
    assert!(matches!(r, Err(FetchError::Folder(FolderError::Expunged))));
    assert!(out.is_empty());
    // Items that need nothing still work.
    assert_eq!(run(&mut f, 0, &[FetchAtt::Uid], FetchOpts::default()), "* 1 FETCH (UID 10)\r\n");
    assert!(matches!(
        fetch(&mut out, &mut f, 9, &[FetchAtt::Uid], FetchOpts::default()),
        Err(FetchError::Folder(FolderError::Expunged))
    ));
}

#[test]
fn job_sends_one_message_per_step() {
    let mut f = folder();
    let mut job = FetchJob::new("a".into(), vec![FetchAtt::Uid], FetchOpts::default(), vec![1..2, 0..1]);
    let mut out = Vec::new();
    assert!(job.step(&mut f, &mut out).unwrap());
    assert_eq!(out, b"* 2 FETCH (UID 12)\r\n");
    out.clear();
    assert!(job.step(&mut f, &mut out).unwrap());
    assert_eq!(out, b"* 1 FETCH (UID 10)\r\n");
    out.clear();
    assert!(!job.step(&mut f, &mut out).unwrap());
    assert!(out.is_empty());
    let end = job.end();
    assert_eq!((end.tag.as_str(), end.uid, end.expunged, end.stopped.is_none()), ("a", false, false, true));
}

#[test]
fn job_skips_expunged_messages_and_says_so() {
    let mut f = folder();
    f.expunged.push(0);
    let opts = FetchOpts { uid: true, ..Default::default() };
    let mut job = FetchJob::new("b".into(), vec![FetchAtt::Envelope], opts, vec![0..1, 1..2]);
    let mut out = Vec::new();
    while job.step(&mut f, &mut out).unwrap() {}
    let text = String::from_utf8(out).unwrap();
    assert!(text.starts_with("* 2 FETCH (UID 12 ENVELOPE ("), "{text}");
    assert_eq!(text.matches("FETCH").count(), 1, "{text}");
    let end = job.end();
    assert!(end.uid && end.expunged && end.stopped.is_none());
}

#[test]
fn flags_and_dates() {
    let mut v = Vec::new();
    write_flags(
        &mut v,
        &Flags { system: SEEN | ANSWERED | FLAGGED | DELETED | DRAFT, keywords: vec!["$Junk".into()] },
        true,
    );
    assert_eq!(v, b"(\\Seen \\Answered \\Flagged \\Deleted \\Draft $Junk \\Recent)");
    v.clear();
    write_flags(&mut v, &Flags::default(), false);
    assert_eq!(v, b"()");
    assert_eq!(internal_date(RFC_DATE), "17-Jul-1996 09:44:25 +0000");
    assert_eq!(internal_date(-1), "31-Dec-1969 23:59:59 +0000");
    assert_eq!(
        section_name(&Section {
            part: vec![1, 2],
            text: Some(SectionText::HeaderFieldsNot(vec!["a b".into()]))
        }),
        "1.2.HEADER.FIELDS.NOT (\"A B\")"
    );
}

#[test]
fn nul_in_text_literals_is_sent_as_0x80() {
    // RFC 3501 9 CHAR8 excludes NUL from literals; Dovecot sends 0x80 instead, BINARY keeps it.
    let mut f = MemFolder::new(&[(1, 0, false, 0, "Subject: n\n\na\0b\n")]);
    let out = {
        let mut out = Vec::new();
        fetch(&mut out, &mut f, 0, &[body(true, &[], Some(SectionText::Text), None)], FetchOpts::default())
            .unwrap();
        out
    };
    assert!(out.ends_with(b"BODY[TEXT] {5}\r\na\x80b\r\n)\r\n"), "{:?}", String::from_utf8_lossy(&out));
    let mut out = Vec::new();
    let bin = FetchAtt::Binary { peek: true, part: vec![1], partial: None };
    fetch(&mut out, &mut f, 0, &[bin], FetchOpts::default()).unwrap();
    assert!(out.ends_with(b"BINARY[1] ~{5}\r\na\0b\r\n)\r\n"), "{:?}", String::from_utf8_lossy(&out));
}

/// Messages the streamed path (large messages, parsed as they are read) must answer exactly as
/// the path that reads them whole: every corpus message, MSG, and a few built to be awkward.
fn stream_cases() -> Vec<(String, Vec<u8>)> {
    let mut cases = vec![
        ("MSG".to_string(), MSG.replace('\n', "\r\n").into_bytes()),
        ("no blank line".to_string(), b"Subject: x\r\nContent-Type: text/plain".to_vec()),
        (
            "qp and nested".to_string(),
            b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=a\r\n\r\npre\r\n--a\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\ncaf=C3=A9  =\r\nx=3D=00y\r\n--a\r\nContent-Type: message/rfc822\r\n\r\nSubject: in\r\nContent-Type: multipart/alternative; boundary=ab\r\n\r\n--ab\r\n\r\none\r\n--a\r\nX: cut\r\n--a--\r\nepi\n".to_vec(),
        ),
    ];
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/eml");
    for dir in std::fs::read_dir(&root).into_iter().flatten().flatten() {
        for f in std::fs::read_dir(dir.path()).into_iter().flatten().flatten() {
            let Ok(raw) = std::fs::read(f.path()) else { continue };
            // The store hands out CRLF line ends.
            let mut m = Vec::with_capacity(raw.len());
            for (i, &b) in raw.iter().enumerate() {
                if b == b'\n' && (i == 0 || raw[i - 1] != b'\r') {
                    m.push(b'\r');
                }
                m.push(b);
            }
            cases.push((f.path().display().to_string(), m));
        }
    }
    cases
}

fn fetch_at(m: &[u8], items: &[FetchAtt], stream_above: u64) -> Result<Vec<u8>, bool> {
    let mut f = MemFolder::new(&[(1, 0, false, 0, "")]);
    f.infos[0].size = m.len() as u64;
    f.bodies[0] = m.to_vec();
    let mut out = Vec::new();
    match fetch_with(&mut out, &mut f, 0, items, FetchOpts::default(), stream_above) {
        Ok(()) => Ok(out),
        Err(e) => Err(is_unknown_cte(&e)),
    }
}

#[test]
fn streamed_path_answers_as_the_whole_message() {
    let parts: &[&[u32]] =
        &[&[], &[1], &[2], &[3], &[4], &[1, 1], &[1, 2], &[2, 1], &[2, 2], &[3, 1], &[2, 1, 1], &[1, 1, 1]];
    let names = vec!["Subject".to_string(), "Content-Type".to_string()];
    let texts = [
        None,
        Some(SectionText::Header),
        Some(SectionText::Text),
        Some(SectionText::Mime),
        Some(SectionText::HeaderFields(names.clone())),
        Some(SectionText::HeaderFieldsNot(names)),
    ];
    let half = Some(Partial { origin: 3, length: 40 });
    let cases = stream_cases();
    assert!(cases.len() > 50 || !std::path::Path::new("../shared/corpus/eml").exists());
    for (name, m) in &cases {
        let mut sets = vec![vec![FetchAtt::BodyStructure, FetchAtt::Body]];
        for part in parts {
            for text in &texts {
                for partial in [None, half] {
                    sets.push(vec![body(true, part, text.clone(), partial)]);
                }
            }
            for partial in [None, half] {
                sets.push(vec![FetchAtt::Binary { peek: true, part: part.to_vec(), partial }]);
            }
            sets.push(vec![FetchAtt::BinarySize { part: part.to_vec() }]);
        }
        // Items together, with one that wants the header.
        sets.push(vec![
            FetchAtt::Envelope,
            body(true, &[1], None, None),
            FetchAtt::BodyStructure,
            body(true, &[], Some(SectionText::Text), None),
            FetchAtt::Rfc822Header,
            FetchAtt::Binary { peek: true, part: vec![1], partial: None },
        ]);
        for items in &sets {
            let whole = fetch_at(m, items, u64::MAX);
            let streamed = fetch_at(m, items, 0);
            assert!(
                whole == streamed,
                "{name} {items:?}:\n{:?}\n{:?}",
                whole.as_ref().map(|o| String::from_utf8_lossy(o).into_owned()),
                streamed.as_ref().map(|o| String::from_utf8_lossy(o).into_owned())
            );
        }
    }
}

/// A header longer than the 64 KiB read whole of a large message (with a blank line or none at
/// all): its octets are streamed exactly, its first fields answer ENVELOPE and BODYSTRUCTURE.
#[test]
fn long_header_of_a_large_message() {
    let mut head =
        b"From: a@b.test\r\nSubject: long\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n".to_vec();
    for i in 0..3000 {
        head.extend(format!("X-Filler-{i}: {}\r\n", "y".repeat(30)).as_bytes());
    }
    let mut one_line = head.clone();
    one_line.extend(b"X-Long: ".iter().chain(&[b'z'; 100_000]));
    for m in [[&head[..], b"\r\nbody\r\n"].concat(), head.clone(), one_line] {
        let items = [
            body(true, &[], Some(SectionText::Header), None),
            FetchAtt::Rfc822Header,
            body(true, &[], Some(SectionText::Text), None),
            body(true, &[], Some(SectionText::HeaderFields(vec!["Subject".into()])), None),
            body(true, &[1], None, Some(Partial { origin: 0, length: 9 })),
            FetchAtt::Envelope,
            FetchAtt::BodyStructure,
            FetchAtt::BinarySize { part: vec![1] },
        ];
        for item in items {
            let whole = fetch_at(&m, std::slice::from_ref(&item), u64::MAX);
            assert!(whole == fetch_at(&m, std::slice::from_ref(&item), 0), "{item:?}: {whole:?}");
        }
    }
}
