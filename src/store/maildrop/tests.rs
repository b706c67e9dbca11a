//! Tests of the POP3 maildrop (RFC 1939) over Maildir and mbox.

use super::*;
use crate::config::MailboxKind;
use crate::store::tests::{BODY, msg, opts, spool};
use crate::store::{Dest, prepare};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;

fn lines(input: &[u8], unquote: bool, dot: bool, top: Option<u64>) -> Vec<u8> {
    let mut out = Vec::new();
    Pop3Lines::new(unquote, dot, top).run(&mut BufReader::new(input), &mut out).unwrap();
    out
}

#[test]
fn pop3_lines_table() {
    type Case = (&'static [u8], bool, Option<u64>, &'static [u8]);
    let cases: &[Case] = &[
        (b"", false, None, b""),
        (b"a\nb\n", false, None, b"a\r\nb\r\n"),
        (b"a\r\nb\n", false, None, b"a\r\nb\r\n"),
        (b"no end", false, None, b"no end\r\n"),
        (b"cr end\r", false, None, b"cr end\r\n"),
        (b"a\rb\n", false, None, b"a\rb\r\n"),
        (
            b">From x\n>>From y\n> From z\nFrom w\n",
            true,
            None,
            b"From x\r\n>From y\r\n> From z\r\nFrom w\r\n",
        ),
        (b">From x\n", false, None, b">From x\r\n"),
        (b"H: 1\n\n1\n2\n3\n", false, Some(0), b"H: 1\r\n\r\n"),
        (b"H: 1\n\n1\n2\n3\n", false, Some(2), b"H: 1\r\n\r\n1\r\n2\r\n"),
        (b"H: 1\n\n1\n2\n3\n", false, Some(9), b"H: 1\r\n\r\n1\r\n2\r\n3\r\n"),
        (b"H: 1\nH: 2\n", false, Some(0), b"H: 1\r\nH: 2\r\n"),
        (b"H: 1\r\n\r\nx\r\ny\r\n", false, Some(1), b"H: 1\r\n\r\nx\r\n"),
    ];
    for (input, unquote, top, want) in cases {
        assert_eq!(lines(input, *unquote, false, *top), *want, "{:?}", String::from_utf8_lossy(input));
    }
    // Dot-stuffing only at line starts, and not counted in sizes.
    assert_eq!(lines(b".\n..x\na.b\n", false, true, None), b"..\r\n...x\r\na.b\r\n");
    assert_eq!(crlf_size(&b".\n..x\na.b\n"[..], false).unwrap(), 13);
    // A long line split into fragments: CR LF across the boundary is not doubled.
    let mut long = vec![b'x'; BUF - 1];
    long.extend_from_slice(b"\r\n.y\n");
    let got = lines(&long, false, true, None);
    assert_eq!(&got[BUF - 1..], b"\r\n..y\r\n");
    assert_eq!(got.len(), long.len() + 2);
}

#[test]
fn uid_rules() {
    assert_eq!(uid_from(b"1795837688.M1P2Q3.h"), "1795837688.M1P2Q3.h");
    for bad in [&b""[..], b"a b", b"caf\xc3\xa9", &[b'x'; 71]] {
        let u = uid_from(bad);
        assert_eq!(u.len(), 40, "{u}");
        assert!(u.bytes().all(|b| b.is_ascii_hexdigit()));
    }
    assert_eq!(uid_from(&[b'x'; 70]).len(), 70);
    let mut msgs: Vec<Msg> = ["a", "b", "a", "a"]
        .iter()
        .map(|u| Msg { uid: u.to_string(), size: 0, loc: Loc::File { sub: Sub::Cur, name: String::new() } })
        .collect();
    dedupe_uids(&mut msgs);
    let uids: Vec<&str> = msgs.iter().map(|m| m.uid.as_str()).collect();
    assert_eq!(uids, ["a", "b", "a-2", "a-3"]);
    assert_eq!(w_size("1.M2P3.h,S=10,W=12:2,S"), Some(12));
    assert_eq!(w_size("1.M2P3.h,S=10:2,W=12"), None);
}

const M1: &[u8] = b"Subject: one\n\nbody 1\n";
const M2: &[u8] = b"Subject: two\n.hidden: no\n\nline 1\n.line 2\nline 3\n";
const M3: &[u8] = b"Subject: three\n\nx\n";

fn maildir(d: &Path) -> PathBuf {
    let md = d.join("Maildir");
    for sub in ["new", "cur", "tmp"] {
        fs::create_dir_all(md.join(sub)).unwrap();
    }
    fs::write(md.join("cur/1000.M1P1Q1.h,S=21:2,S"), M1).unwrap();
    fs::write(md.join("new/1001.M1P1Q2.h,S=47"), M2).unwrap();
    fs::write(md.join("new/1002.V801I2M3.other"), M3).unwrap();
    fs::write(md.join("new/.hidden"), b"x").unwrap();
    fs::write(md.join("tmp/1003.M1P1Q4.h"), b"partial").unwrap();
    md
}

fn crlf(m: &[u8]) -> u64 {
    (m.len() + m.iter().filter(|&&b| b == b'\n').count()) as u64
}

fn fetch(drop: &Maildrop, n: usize, top: Option<u64>) -> Vec<u8> {
    let mut out = Vec::new();
    drop.write_message(n, top, &mut out).unwrap();
    out
}

fn uids(drop: &Maildrop) -> Vec<String> {
    (1..=drop.count()).map(|n| drop.uid(n).unwrap().to_string()).collect()
}

#[test]
fn maildir_open_moves_sizes_uids_lock() {
    let d = tempfile::tempdir().unwrap();
    let md = maildir(d.path());
    let drop = Maildrop::open_maildir(&md).unwrap();
    assert_eq!(drop.count(), 3);
    assert_eq!(uids(&drop), ["1000.M1P1Q1.h", "1001.M1P1Q2.h", "1002.V801I2M3.other"]);
    let sizes: Vec<u64> = (1..=3).map(|n| drop.size(n).unwrap()).collect();
    assert_eq!(sizes, [crlf(M1), crlf(M2), crlf(M3)]);
    assert_eq!(drop.total_size(), crlf(M1) + crlf(M2) + crlf(M3));
    assert_eq!((drop.size(0), drop.size(4), drop.uid(4)), (None, None, None));
    let mut cur: Vec<String> = fs::read_dir(md.join("cur"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    cur.sort();
    assert_eq!(cur, ["1000.M1P1Q1.h,S=21:2,S", "1001.M1P1Q2.h,S=47:2,", "1002.V801I2M3.other:2,"]);
    let new: Vec<_> = fs::read_dir(md.join("new")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(new, [".hidden"]);
    assert!(md.join("tmp/1003.M1P1Q4.h").exists());

    // One session at a time.
    assert_eq!(Maildrop::open_maildir(&md).err(), Some(DropError::InUse));
    let first = uids(&drop);
    std::mem::drop(drop);
    let again = Maildrop::open_maildir(&md).unwrap();
    assert_eq!(uids(&again), first);
    assert_eq!((1..=3).map(|n| again.size(n).unwrap()).collect::<Vec<_>>(), sizes);
}

#[test]
fn maildir_uses_w_size_and_missing_is_empty() {
    let d = tempfile::tempdir().unwrap();
    let md = d.path().join("Maildir");
    fs::create_dir_all(md.join("cur")).unwrap();
    // W= is trusted without reading (Dovecot wrote it); no new/ or tmp/ is fine.
    fs::write(md.join("cur/5.M1P1Q1.h,S=3,W=99:2,"), b"a\nb").unwrap();
    let drop = Maildrop::open_maildir(&md).unwrap();
    assert_eq!(drop.size(1), Some(99));
    let none = Maildrop::open_maildir(&d.path().join("nothing")).unwrap();
    assert_eq!(none.count(), 0);
    none.expunge(&[]).unwrap();
}

#[test]
fn maildir_write_message_byte_exact() {
    let d = tempfile::tempdir().unwrap();
    let drop = Maildrop::open_maildir(&maildir(d.path())).unwrap();
    let cases: &[(Option<u64>, &[u8])] = &[
        (None, b"Subject: two\r\n..hidden: no\r\n\r\nline 1\r\n..line 2\r\nline 3\r\n"),
        (Some(0), b"Subject: two\r\n..hidden: no\r\n\r\n"),
        (Some(2), b"Subject: two\r\n..hidden: no\r\n\r\nline 1\r\n..line 2\r\n"),
    ];
    for (top, want) in cases {
        assert_eq!(fetch(&drop, 2, *top), *want, "TOP {top:?}");
    }
    assert_eq!(fetch(&drop, 1, None), b"Subject: one\r\n\r\nbody 1\r\n");
    let mut sink = Vec::new();
    assert_eq!(drop.write_message(4, None, &mut sink).unwrap_err().kind(), io::ErrorKind::InvalidInput);
}

#[test]
fn maildir_expunge_removes_exactly_those() {
    let d = tempfile::tempdir().unwrap();
    let md = maildir(d.path());
    let drop = Maildrop::open_maildir(&md).unwrap();
    assert!(matches!(drop.expunge(&[5]), Err(DropError::Io(_))));
    let drop = Maildrop::open_maildir(&md).unwrap();
    drop.expunge(&[1, 3, 3]).unwrap();
    let cur: Vec<_> = fs::read_dir(md.join("cur")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(cur, ["1001.M1P1Q2.h,S=47:2,"]);
    // The lock went with it.
    let left = Maildrop::open_maildir(&md).unwrap();
    assert_eq!(uids(&left), ["1001.M1P1Q2.h"]);
    assert_eq!(fetch(&left, 1, Some(0)), b"Subject: two\r\n..hidden: no\r\n\r\n");
}

const F1: &[u8] = b"From a@b.example Sat Nov 28 03:48:08 2026\n";
const F2: &[u8] = b"From MAILER-DAEMON Sat Nov 28 03:49:00 2026\n";
const F3: &[u8] = b"From c@d.example Sat Nov 28 03:50:00 2026\n";
/// As stored (mboxrd-quoted).
const S2: &[u8] = b"Message-ID: <2@x>\n\n>From the start\n>>From deeper\n.dot line\nend\n";
/// As sent.
const P2: &[u8] = b"Message-ID: <2@x>\r\n\r\nFrom the start\r\n>From deeper\r\n..dot line\r\nend\r\n";

fn mbox(d: &Path) -> (PathBuf, Vec<Vec<u8>>) {
    let spans = vec![[F1, M1, b"\n"].concat(), [F2, S2, b"\n"].concat(), [F3, M3, b"\n"].concat()];
    let path = d.join("mbox");
    fs::write(&path, spans.concat()).unwrap();
    (path, spans)
}

const WAIT: Duration = Duration::from_millis(300);

#[test]
fn mbox_open_sizes_uids_messages() {
    let d = tempfile::tempdir().unwrap();
    let (path, _) = mbox(d.path());
    let drop = Maildrop::open_mbox(&path, WAIT).unwrap();
    assert_eq!(drop.count(), 3);
    let sizes: Vec<u64> = (1..=3).map(|n| drop.size(n).unwrap()).collect();
    // Un-quoted one level, without the separator line; dot-stuffing not counted.
    assert_eq!(sizes, [crlf(M1), P2.len() as u64 - 1, crlf(M3)]);
    assert_eq!(fetch(&drop, 2, None), P2);
    assert_eq!(fetch(&drop, 2, Some(0)), b"Message-ID: <2@x>\r\n\r\n");
    assert_eq!(fetch(&drop, 2, Some(2)), b"Message-ID: <2@x>\r\n\r\nFrom the start\r\n>From deeper\r\n");
    assert_eq!(fetch(&drop, 3, None), b"Subject: three\r\n\r\nx\r\n");
    let first = uids(&drop);
    assert!(first.iter().all(|u| u.len() == 40), "{first:?}");
    assert_ne!(first[0], first[1]);
    std::mem::drop(drop);

    // Stable across sessions, and a delivery appended since does not change them.
    let src = spool(d.path(), BODY);
    let dest = Dest::from((MailboxKind::Mbox, path.clone()));
    prepare(&dest, &msg(&src, BODY.len() as u64), &opts()).unwrap().commit().unwrap();
    let again = Maildrop::open_mbox(&path, WAIT).unwrap();
    assert_eq!(again.count(), 4);
    assert_eq!(uids(&again)[..3], first[..]);
}

#[test]
fn mbox_lock_held_for_the_session() {
    let d = tempfile::tempdir().unwrap();
    let (path, _) = mbox(d.path());
    let before = fs::read(&path).unwrap();
    let drop = Maildrop::open_mbox(&path, WAIT).unwrap();
    let src = spool(d.path(), BODY);
    let dest = Dest::from((MailboxKind::Mbox, path.clone()));
    let e = prepare(&dest, &msg(&src, BODY.len() as u64), &opts()).err().unwrap();
    assert!(!e.permanent, "{e}");
    assert_eq!(Maildrop::open_mbox(&path, Duration::from_millis(50)).err(), Some(DropError::InUse));
    assert_eq!(fs::read(&path).unwrap(), before);
    drop.expunge(&[]).unwrap();
    assert!(!d.path().join("mbox.lock").exists());
    prepare(&dest, &msg(&src, BODY.len() as u64), &opts()).unwrap().commit().unwrap();
}

#[test]
fn mbox_expunge_rewrites_keeping_others_byte_identical() {
    let d = tempfile::tempdir().unwrap();
    let (path, spans) = mbox(d.path());
    fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
    let drop = Maildrop::open_mbox(&path, WAIT).unwrap();
    let all = uids(&drop);
    let ino = fs::metadata(&path).unwrap().ino();
    drop.expunge(&[2]).unwrap();
    assert_eq!(fs::read(&path).unwrap(), [spans[0].as_slice(), &spans[2]].concat());
    let m = fs::metadata(&path).unwrap();
    assert_ne!(m.ino(), ino, "replaced by rename");
    assert_eq!(m.mode() & 0o777, 0o640);
    assert!(!d.path().join("mbox.lock").exists());
    let names: Vec<_> = fs::read_dir(d.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, ["mbox"], "no temp file left");

    let left = Maildrop::open_mbox(&path, WAIT).unwrap();
    assert_eq!(uids(&left), [all[0].clone(), all[2].clone()]);
    left.expunge(&[1, 2]).unwrap();
    assert_eq!(fs::read(&path).unwrap(), b"");
    assert_eq!(Maildrop::open_mbox(&path, WAIT).unwrap().count(), 0);
    assert_eq!(Maildrop::open_mbox(&d.path().join("none"), WAIT).unwrap().count(), 0);
}

#[test]
fn mbox_identical_messages_get_distinct_uids() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("mbox");
    let one = [F1, M1, b"\n"].concat();
    fs::write(&path, [b"junk before\n".as_slice(), &one, &one].concat()).unwrap();
    let drop = Maildrop::open_mbox(&path, WAIT).unwrap();
    let u = uids(&drop);
    assert_eq!(u.len(), 2);
    assert_eq!(u[1], format!("{}-2", u[0]));
    drop.expunge(&[2]).unwrap();
    assert_eq!(fs::read(&path).unwrap(), [b"junk before\n".as_slice(), &one].concat());
}

#[test]
fn maildir_reads_and_deletes_through_the_directories_it_opened() {
    // A user who swaps cur/ for a symlink after the listing (to /etc, to read "shadow") still gets
    // the files of the cur/ that was listed: reads and unlinks go through its descriptor.
    let d = tempfile::tempdir().unwrap();
    let md = maildir(d.path());
    let elsewhere = d.path().join("etc");
    fs::create_dir(&elsewhere).unwrap();
    let drop = Maildrop::open_maildir(&md).unwrap();
    let mut names: Vec<String> = fs::read_dir(md.join("cur"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    for n in &names {
        fs::write(elsewhere.join(n), b"Subject: secret\n\nroot:x:0:\n").unwrap();
    }
    fs::rename(md.join("cur"), md.join("cur.real")).unwrap();
    std::os::unix::fs::symlink(&elsewhere, md.join("cur")).unwrap();
    for n in 1..=3 {
        let got = fetch(&drop, n, None);
        assert!(!got.windows(6).any(|w| w == b"secret"), "message {n} was read through the symlink");
    }
    assert!(fetch(&drop, 1, None).starts_with(b"Subject: one\r\n"));
    drop.expunge(&[1, 2, 3]).unwrap();
    assert_eq!(fs::read_dir(md.join("cur.real")).unwrap().count(), 0, "the listed files were deleted");
    assert_eq!(fs::read_dir(&elsewhere).unwrap().count(), names.len(), "the other directory is untouched");

    // A cur/ that is a symlink when the session starts is refused.
    assert!(matches!(Maildrop::open_maildir(&md), Err(DropError::Io(_))));
}
