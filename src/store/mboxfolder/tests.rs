use super::*;
use crate::store::folder::{ANSWERED, DRAFT, FLAGGED};
use crate::store::maildrop::Maildrop;
use crate::store::mbox;
use crate::store::tests::{msg, opts, spool};
use std::fs;
use std::os::unix::fs::PermissionsExt;

const T: Duration = Duration::from_millis(300);
const ARRIVAL: i64 = 1_795_837_688;

/// Delivers `body` into the mbox as buzon's delivery does.
fn deliver(dir: &Path, mb: &Path, body: &[u8]) {
    let src = spool(dir, body);
    mbox::prepare(mb, &msg(&src, body.len() as u64), &opts()).unwrap().commit().unwrap();
}

/// The file split at its From_ lines (each piece with its separator).
fn spans(data: &[u8]) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    let mut at_start = true;
    for line in data.split_inclusive(|&b| b == b'\n') {
        if at_start && line.starts_with(b"From ") || out.is_empty() {
            out.push(Vec::new());
        }
        if let Some(last) = out.last_mut() {
            last.extend_from_slice(line);
        }
        at_start = line.ends_with(b"\n");
    }
    out
}

fn flags(system: u8, kw: &[&str]) -> Flags {
    Flags { system, keywords: kw.iter().map(|s| s.to_string()).collect() }
}

fn uids(f: &MboxFolder) -> Vec<Uid> {
    f.messages().iter().map(|m| m.uid).collect()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

const BODIES: [&[u8]; 3] = [
    b"Return-Path: <a@b.example>\nSubject: hi\n\nFrom here on\n>From there\nbye\n",
    b"Subject: two\n\nno newline",
    b"Subject: three\r\nX: y\r\n\r\nCRLF body\r\n\r\n",
];

fn setup(n: usize) -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let mb = d.path().join("mail/user");
    for i in 0..n {
        deliver(d.path(), &mb, BODIES[i % BODIES.len()]);
    }
    (d, mb)
}

#[test]
fn opens_what_delivery_wrote() {
    let (_d, mb) = setup(3);
    let mut f = MboxFolder::open(&mb, false, T).unwrap();
    assert_eq!(uids(&f), [1, 2, 3]);
    assert_eq!(f.uidnext(), 4);
    assert!(f.messages().iter().all(|m| m.recent && m.flags == Flags::default()));
    assert!(f.messages().iter().all(|m| m.internal_date == ARRIVAL));
    let want: [&[u8]; 3] = [
        b"Return-Path: <a@b.example>\r\nSubject: hi\r\n\r\nFrom here on\r\n>From there\r\nbye\r\n",
        b"Subject: two\r\n\r\nno newline\r\n",
        b"Subject: three\r\nX: y\r\n\r\nCRLF body\r\n\r\n",
    ];
    for (i, w) in want.iter().enumerate() {
        let got = f.read(i).unwrap();
        assert_eq!(text(&got), text(w), "message {i}");
        assert_eq!(f.messages()[i].size, got.len() as u64);
        assert_eq!(f.read_header(i).unwrap(), got[..header_end(&got)].to_vec());
    }
}

fn header_end(m: &[u8]) -> usize {
    crate::store::folder::header_end(m)
}

#[test]
fn uids_persist_across_reopen() {
    let (_d, mb) = setup(3);
    let mut f = MboxFolder::open(&mb, false, T).unwrap();
    let v = f.uidvalidity();
    f.close().unwrap();
    let data = text(&fs::read(&mb).unwrap());
    assert!(data.contains(&format!("X-IMAPbase: {v} 4\n")), "{data}");
    for u in 1..=2 {
        assert!(data.contains(&format!("Status: O\nX-UID: {u}\n\n")), "{data}");
    }
    assert!(data.contains("X: y\r\nStatus: O\r\nX-UID: 3\r\n\r\n"), "{data}");
    let f = MboxFolder::open(&mb, false, T).unwrap();
    assert_eq!((uids(&f), f.uidvalidity(), f.uidnext()), (vec![1, 2, 3], v, 4));
    assert!(f.messages().iter().all(|m| !m.recent), "the first session took \\Recent");
    let st = status(&mb, T).unwrap();
    assert_eq!(
        st,
        Status {
            messages: 3,
            recent: 0,
            unseen: 3,
            deleted: 0,
            uidnext: 4,
            uidvalidity: v,
            size: st.size,
            highest_modseq: 0
        }
    );
    assert_eq!(st.size, f.messages().iter().map(|m| m.size).sum::<u64>());
}

#[test]
fn delivery_while_open_is_exists_only() {
    let (d, mb) = setup(2);
    let mut f = MboxFolder::open(&mb, false, T).unwrap();
    f.close().unwrap();
    let mut f = MboxFolder::open(&mb, false, T).unwrap();
    let before: Vec<MessageInfo> = f.messages().to_vec();
    assert!(!f.changed());
    assert_eq!(f.sync(true).unwrap(), Changes::default());
    deliver(d.path(), &mb, b"Subject: new\n\nhello\n");
    assert!(f.changed());
    let c = f.sync(true).unwrap();
    assert_eq!(c, Changes { expunged: vec![], exists: Some(3), flags: vec![] });
    assert_eq!(&f.messages()[..2], &before[..]);
    assert_eq!(f.messages()[2].uid, 3);
    assert!(f.messages()[2].recent);
    assert_eq!(f.read(2).unwrap(), b"Subject: new\r\n\r\nhello\r\n");
    assert!(!f.changed());
    assert_eq!(f.sync(true).unwrap(), Changes::default());
    // Empty mbox first: deliveries into a missing file appear too.
    let mb2 = d.path().join("mail/other");
    let mut g = MboxFolder::open(&mb2, false, T).unwrap();
    assert!(g.messages().is_empty());
    deliver(d.path(), &mb2, b"Subject: first\n\nx\n");
    assert!(g.changed());
    assert_eq!(g.sync(true).unwrap().exists, Some(1));
    assert_eq!(g.messages()[0].uid, 1);
}

#[test]
fn pop3_rewrite_gives_expunge_numbers() {
    let (d, mb) = setup(5);
    MboxFolder::open(&mb, false, T).unwrap().close().unwrap();
    let mut f = MboxFolder::open(&mb, false, T).unwrap();
    let keep_read = f.read(2).unwrap();
    // POP3 deletes messages 2 and 4 (its rewrite keeps the other messages, X-UIDs included).
    Maildrop::open_mbox(&mb, T).unwrap().expunge(&[2, 4]).unwrap();
    deliver(d.path(), &mb, b"Subject: six\n\nsix\n");
    assert!(f.changed());
    let c = f.sync(false).unwrap();
    assert_eq!(c, Changes { expunged: vec![], exists: Some(6), flags: vec![] });
    assert_eq!(f.read(1), Err(FolderError::Expunged));
    assert_eq!(f.read(2).unwrap(), keep_read);
    f.store(&[1, 2], FlagOp::Add, &flags(FLAGGED, &[])).unwrap();
    assert_eq!(f.messages()[1].flags.system, 0, "no STORE into an expunged message");
    let c = f.sync(true).unwrap();
    assert_eq!(c, Changes { expunged: vec![2, 3], exists: None, flags: vec![] });
    assert_eq!(uids(&f), [1, 3, 5, 6]);
    assert_eq!(f.read(1).unwrap(), keep_read);
    f.close().unwrap();
    let g = MboxFolder::open(&mb, false, T).unwrap();
    assert_eq!(uids(&g), [1, 3, 5, 6]);
    assert_eq!(g.messages()[1].flags.system, FLAGGED);
}

#[test]
fn store_then_close_persists_flags() {
    let (_d, mb) = setup(3);
    let mut f = MboxFolder::open(&mb, false, T).unwrap();
    f.store(&[0], FlagOp::Add, &flags(SEEN | FLAGGED, &["$Label1", "bad word", "\\Seen"])).unwrap();
    f.store(&[1], FlagOp::Replace, &flags(ANSWERED | DRAFT | DELETED, &[])).unwrap();
    f.store(&[1], FlagOp::Remove, &flags(DELETED, &[])).unwrap();
    assert_eq!(f.keywords(), ["$Label1"]);
    f.close().unwrap();
    let data = text(&fs::read(&mb).unwrap());
    assert!(data.contains("Status: RO\nX-Status: F\nX-Keywords: $Label1\nX-UID: 1\n\n"), "{data}");
    assert!(data.contains("Status: O\nX-Status: AT\nX-UID: 2\n\n"), "{data}");
    let f = MboxFolder::open(&mb, true, T).unwrap();
    assert_eq!(f.messages()[0].flags, flags(SEEN | FLAGGED, &["$Label1"]));
    assert_eq!(f.messages()[1].flags, flags(ANSWERED | DRAFT, &[]));
    assert_eq!(f.messages()[2].flags, Flags::default());
    assert_eq!(f.keywords(), ["$Label1"]);
    // Dropped without close(): the STORE is still written.
    let mut f = MboxFolder::open(&mb, false, T).unwrap();
    f.store(&[2], FlagOp::Add, &flags(SEEN, &[])).unwrap();
    drop(f);
    assert_eq!(MboxFolder::open(&mb, true, T).unwrap().messages()[2].flags.system, SEEN);
}

#[test]
fn sync_writes_stores_after_the_delay_only() {
    let (_d, mb) = setup(1);
    let mut f = MboxFolder::open(&mb, false, T).unwrap();
    f.close().unwrap();
    let mut f = MboxFolder::open(&mb, false, T).unwrap();
    let before = fs::read(&mb).unwrap();
    f.store(&[0], FlagOp::Add, &flags(SEEN, &[])).unwrap();
    f.sync(true).unwrap();
    assert_eq!(fs::read(&mb).unwrap(), before, "not yet");
    f.dirty_since = Some(Instant::now() - WRITEBACK_DELAY);
    assert_eq!(f.sync(true).unwrap(), Changes::default());
    assert!(text(&fs::read(&mb).unwrap()).contains("Status: RO\n"));
}

#[test]
fn expunge_keeps_the_rest_byte_for_byte() {
    let d = tempfile::tempdir().unwrap();
    let mb = d.path().join("mbox");
    let bodies: [&[u8]; 5] = [
        b"Subject: 1\n\nFrom the start\n>From quoted\n",
        b"Subject: 2\n\nbye\n",
        b"Subject: 3\n\n>>From deep\nFrom x\n\n\n",
        b"Subject: 4\n\nfour",
        b"Subject: 5\n\nfive\n",
    ];
    for b in bodies {
        deliver(d.path(), &mb, b);
    }
    MboxFolder::open(&mb, false, T).unwrap().close().unwrap();
    let before = spans(&fs::read(&mb).unwrap());
    assert_eq!(before.len(), 5);
    let mut f = MboxFolder::open(&mb, false, T).unwrap();
    let reads: Vec<Vec<u8>> = (0..5).map(|i| f.read(i).unwrap()).collect();
    f.store(&[1, 3], FlagOp::Add, &flags(DELETED, &[])).unwrap();
    assert_eq!(f.expunge(Some(&[4])).unwrap(), vec![4]);
    assert_eq!(f.expunge(None).unwrap(), vec![2]);
    assert_eq!(uids(&f), [1, 3, 5]);
    let want = [&before[0][..], &before[2][..], &before[4][..]].concat();
    assert_eq!(text(&fs::read(&mb).unwrap()), text(&want));
    // Deleting the first message moves X-IMAPbase to the new first one; the others stay as they are.
    f.store(&[0], FlagOp::Add, &flags(DELETED, &[])).unwrap();
    assert_eq!(f.expunge(None).unwrap(), vec![1]);
    let after = spans(&fs::read(&mb).unwrap());
    assert_eq!(after.len(), 2);
    assert!(text(&after[0]).contains(&format!("X-IMAPbase: {} 6\n", f.uidvalidity())));
    assert_eq!(after[1], before[4]);
    let mut g = MboxFolder::open(&mb, false, T).unwrap();
    assert_eq!((uids(&g), g.uidvalidity(), g.uidnext()), (vec![3, 5], f.uidvalidity(), 6));
    assert_eq!(g.read(0).unwrap(), reads[2]);
    assert_eq!(g.read(1).unwrap(), reads[4]);
    // Expunging everything leaves an empty file.
    g.store(&[0, 1], FlagOp::Add, &flags(DELETED, &[])).unwrap();
    assert_eq!(g.expunge(None).unwrap(), vec![1, 1]);
    assert_eq!(fs::read(&mb).unwrap(), b"");
}

#[test]
fn read_hides_status_headers() {
    let d = tempfile::tempdir().unwrap();
    let mb = d.path().join("mbox");
    fs::write(
        &mb,
        "From a@b Thu Jan  1 00:00:10 1970\nX-IMAPbase: 1000 10 $Work\nSubject: s\nStatus: RO\n\
         Content-Length: 5\nX-Status: AF\nX-Keywords: $Work\n $Home\nX-UID: 7\nTo: x\n\n>From body\nhello\n\n\
         From c@d Thu Jan  1 00:00:20 1970\nSubject: t\n\nbody\n",
    )
    .unwrap();
    let mut f = MboxFolder::open(&mb, true, T).unwrap();
    assert_eq!((f.uidvalidity(), f.uidnext()), (1000, 11));
    assert_eq!(uids(&f), [7, 10]);
    let m = &f.messages()[0];
    assert_eq!(m.flags, flags(SEEN | ANSWERED | FLAGGED, &["$Home", "$Work"]));
    assert!(!m.recent);
    assert_eq!(m.internal_date, 10);
    assert!(f.messages()[1].recent);
    let got = f.read(0).unwrap();
    assert_eq!(text(&got), "Subject: s\r\nTo: x\r\n\r\nFrom body\r\nhello\r\n");
    assert_eq!(f.messages()[0].size, got.len() as u64);
    assert_eq!(f.read(1).unwrap(), b"Subject: t\r\n\r\nbody\r\n");
    assert_eq!(f.keywords(), ["$Home", "$Work"]);
}

#[test]
fn rewrite_keeps_owner_and_mode() {
    let (_d, mb) = setup(2);
    fs::set_permissions(&mb, fs::Permissions::from_mode(0o640)).unwrap();
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if root {
        std::os::unix::fs::chown(&mb, Some(4242), Some(4343)).unwrap();
    }
    let before = fs::metadata(&mb).unwrap();
    let mut f = MboxFolder::open(&mb, false, T).unwrap();
    f.store(&[0], FlagOp::Add, &flags(SEEN, &[])).unwrap();
    f.close().unwrap();
    let after = fs::metadata(&mb).unwrap();
    assert_ne!(after.ino(), before.ino(), "rewritten by rename");
    assert_eq!(after.mode() & 0o7777, 0o640);
    assert_eq!((after.uid(), after.gid()), (before.uid(), before.gid()));
    let names: Vec<_> = fs::read_dir(mb.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, [std::ffi::OsString::from("user")], "no temp or lock file left");
}

#[test]
fn in_place_rewrite_when_directory_refuses() {
    let (_d, mb) = setup(3);
    let mut f = MboxFolder::open(&mb, false, T).unwrap();
    f.close().unwrap();
    let by_rename = fs::read(&mb).unwrap();
    let ino = fs::metadata(&mb).unwrap().ino();
    let mut f = MboxFolder::open(&mb, false, T).unwrap();
    f.set_in_place(true);
    f.store(&[1], FlagOp::Add, &flags(SEEN | FLAGGED, &["$x"])).unwrap();
    f.close().unwrap();
    assert_eq!(fs::metadata(&mb).unwrap().ino(), ino, "same file");
    let data = fs::read(&mb).unwrap();
    let (a, b) = (spans(&by_rename), spans(&data));
    assert_eq!(a[2], b[2]);
    assert!(text(&b[0]).contains(&format!("X-IMAPbase: {} 4 $x\n", g_validity(&mb))));
    assert!(text(&b[1]).contains("Status: RO\nX-Status: F\nX-Keywords: $x\nX-UID: 2\n"));
    let mut g = MboxFolder::open(&mb, false, T).unwrap();
    assert_eq!(g.messages()[1].flags, flags(SEEN | FLAGGED, &["$x"]));
    assert_eq!(g.read(2).unwrap(), BODIES[2].to_vec());
    // Expunge in place too.
    g.set_in_place(true);
    g.store(&[0], FlagOp::Add, &flags(DELETED, &[])).unwrap();
    assert_eq!(g.expunge(None).unwrap(), vec![1]);
    let h = MboxFolder::open(&mb, true, T).unwrap();
    assert_eq!(uids(&h), [2, 3]);
}

fn g_validity(mb: &Path) -> u32 {
    status(mb, T).unwrap().uidvalidity
}

#[test]
fn lock_is_honoured_with_timeout() {
    let (d, mb) = setup(1);
    let lockfile = d.path().join("mail/user.lock");
    fs::write(&lockfile, b"4242\n").unwrap();
    let start = Instant::now();
    assert!(matches!(MboxFolder::open(&mb, false, T), Err(FolderError::Temp(_))));
    assert!(start.elapsed() >= T);
    assert!(matches!(status(&mb, T), Err(FolderError::Temp(_))));
    assert!(matches!(append(&mb, T, &Flags::default(), None, &mut &b"x\n"[..]), Err(FolderError::Temp(_))));
    fs::remove_file(&lockfile).unwrap();
    let mut f = MboxFolder::open(&mb, false, T).unwrap();
    // An fcntl lock (mutt, procmail) held elsewhere.
    let holder = fs::File::options().read(true).write(true).open(&mb).unwrap();
    let cmd = crate::store::mboxlock::take_fcntl_lock(&holder, &mb, Instant::now()).unwrap();
    f.store(&[0], FlagOp::Add, &flags(SEEN, &[])).unwrap();
    assert!(matches!(f.close(), Err(FolderError::Temp(_))));
    assert!(!lockfile.exists(), "dotlock released after the failure");
    crate::store::mboxlock::fcntl_lock(&holder, cmd, libc::F_UNLCK).unwrap();
    f.close().unwrap();
    assert!(text(&fs::read(&mb).unwrap()).contains("Status: RO\n"));
}

#[test]
fn append_writes_uid_and_flags() {
    let d = tempfile::tempdir().unwrap();
    let mb = d.path().join("mbox");
    // Into a missing mbox: UID 1, X-IMAPbase in it; status headers in the message are replaced.
    let r = append(
        &mb,
        T,
        &flags(SEEN | FLAGGED, &["$a"]),
        Some(ARRIVAL),
        &mut &b"Status: O\r\nX-UID: 99\r\nSubject: a\r\n\r\nFrom me\r\n"[..],
    )
    .unwrap();
    assert_eq!((r.dest.clone(), r.source.len()), (vec![1], 0));
    let st = status(&mb, T).unwrap();
    assert_eq!((st.messages, st.uidnext, st.uidvalidity, st.unseen, st.recent), (1, 2, r.uidvalidity, 0, 1));
    let mut f = MboxFolder::open(&mb, false, T).unwrap();
    assert_eq!((f.uidvalidity(), uids(&f)), (r.uidvalidity, vec![1]));
    assert_eq!(f.messages()[0].flags, flags(SEEN | FLAGGED, &["$a"]));
    assert_eq!(f.messages()[0].internal_date, ARRIVAL);
    assert_eq!(f.read(0).unwrap(), b"Subject: a\r\n\r\nFrom me\r\n");
    assert!(text(&fs::read(&mb).unwrap()).contains("\n>From me\n"));
    // While the folder is open: EXISTS with the UID APPENDUID said.
    let r2 = append(&mb, T, &Flags::default(), None, &mut &b"Subject: b\n\nno newline"[..]).unwrap();
    assert_eq!((r2.uidvalidity, r2.dest.clone()), (r.uidvalidity, vec![2]));
    assert_eq!(f.sync(true).unwrap().exists, Some(2));
    assert_eq!(uids(&f), [1, 2]);
    assert_eq!(f.read(1).unwrap(), b"Subject: b\r\n\r\nno newline\r\n");
    f.close().unwrap();
    // Into an mbox delivery made (no X-IMAPbase yet): one is written first, so the answer lasts.
    let (_d2, mb2) = setup(2);
    let r3 = append(&mb2, T, &Flags::default(), None, &mut &b"Subject: c\n\nc\n"[..]).unwrap();
    let g = MboxFolder::open(&mb2, false, T).unwrap();
    assert_eq!((g.uidvalidity(), uids(&g)), (r3.uidvalidity, vec![1, 2, 3]));
    assert_eq!(r3.dest, [3]);
    // Messages delivered after an append get UIDs above it, in every reader.
    deliver(d.path(), &mb2, b"Subject: d\n\nd\n");
    assert_eq!(append(&mb2, T, &Flags::default(), None, &mut &b"Subject: e\n\ne\n"[..]).unwrap().dest, [5]);
    assert_eq!(status(&mb2, T).unwrap().uidnext, 6);
    assert_eq!(uids(&MboxFolder::open(&mb2, true, T).unwrap()), [1, 2, 3, 4, 5]);
}

#[test]
fn flags_changed_by_another_program_are_announced() {
    let (_d, mb) = setup(2);
    MboxFolder::open(&mb, false, T).unwrap().close().unwrap();
    let mut f = MboxFolder::open(&mb, false, T).unwrap();
    // mutt marks message 2 read, rewriting in place.
    let data = text(&fs::read(&mb).unwrap());
    let i = data.rfind("Status: O\n").unwrap();
    let edited = format!("{}Status: RO\n{}", &data[..i], &data[i + 10..]);
    fs::write(&mb, edited).unwrap();
    assert!(f.changed());
    // A read before the sync finds the message where it moved to.
    assert_eq!(f.read(1).unwrap(), b"Subject: two\r\n\r\nno newline\r\n");
    let c = f.sync(false).unwrap();
    assert_eq!(c, Changes { expunged: vec![], exists: None, flags: vec![1] });
    assert_eq!(f.messages()[1].flags.system, SEEN);
    assert_eq!(f.read(1).unwrap(), b"Subject: two\r\n\r\nno newline\r\n");
}

#[test]
fn new_uidvalidity_is_all_expunged_then_all_new() {
    let (_d, mb) = setup(2);
    MboxFolder::open(&mb, false, T).unwrap().close().unwrap();
    let mut f = MboxFolder::open(&mb, false, T).unwrap();
    let v = f.uidvalidity();
    let data = text(&fs::read(&mb).unwrap()).replace(&format!("X-IMAPbase: {v} 3"), "X-IMAPbase: 77 50");
    fs::write(&mb, data).unwrap();
    let c = f.sync(false).unwrap();
    assert_eq!(c, Changes::default(), "nothing new until the old view is gone");
    assert_eq!(f.read(0), Err(FolderError::Expunged));
    let c = f.sync(true).unwrap();
    assert_eq!((c.expunged, c.exists), (vec![1, 1], Some(2)));
    assert_eq!((f.uidvalidity(), uids(&f), f.uidnext()), (77, vec![1, 2], 50));
}

#[test]
fn examine_never_writes() {
    let (_d, mb) = setup(2);
    let before = fs::read(&mb).unwrap();
    let mut f = MboxFolder::open(&mb, true, T).unwrap();
    assert!(f.readonly());
    assert_eq!(f.store(&[0], FlagOp::Add, &flags(SEEN, &[])), Err(FolderError::ReadOnly));
    assert_eq!(f.expunge(None), Err(FolderError::ReadOnly));
    f.mark_seen(0).unwrap();
    f.close().unwrap();
    drop(f);
    assert_eq!(fs::read(&mb).unwrap(), before);
    assert!(MboxFolder::open(&mb, false, T).unwrap().messages().iter().all(|m| m.recent));
}

#[test]
fn malformed_files_never_panic() {
    let cases: &[&[u8]] = &[
        b"",
        b"\n\n\n",
        b"garbage before\nFrom x Thu Jan  1 00:00:00 1970\nSubject: a\n\nbody\n",
        b"From ",
        b"From \n",
        b"From x Thu Jan  1 00:00:00 1970",
        b"From x Thu Jan  1 00:00:00 1970\n",
        b"From x\nFrom y\nFrom z\n\n",
        b"From x Mon Feb 31 99:99:99 99999\nX-UID: 99999999999\nX-IMAPbase: x y\nStatus: RRROOO\n",
        b"From x\nX-UID: 5\n\nFrom y\nX-UID: 5\n\nFrom z\nX-UID: 3\n\n",
        b"From x\nX-IMAPbase: 0 0\nX-Keywords: ( ) \\\\ \x01\n\n\r\r\r\n\r",
        b"From x\n\x00\xff\xfe\r\n>>>>>From \n>\n>From\nStatus:\n X-UID: 3\n",
        b"\xff\xfe\x00binary\x00\nFrom y\r\nSubject: crlf\r\n\r\n",
        b"From x\nA: b\nno blank line at all",
        b"From x\n\n\n\n\n",
    ];
    let d = tempfile::tempdir().unwrap();
    for (n, data) in cases.iter().enumerate() {
        let mb = d.path().join(format!("m{n}"));
        fs::write(&mb, data).unwrap();
        let mut f = MboxFolder::open(&mb, false, T).unwrap();
        let count = f.messages().len();
        let mut sizes = Vec::new();
        for i in 0..count {
            let m = f.read(i).unwrap();
            assert_eq!(m.len() as u64, f.messages()[i].size, "case {n} message {i}");
            sizes.push(m);
        }
        let us = uids(&f);
        assert!(us.windows(2).all(|w| w[0] < w[1]), "case {n}: {us:?}");
        f.store(&(0..count).collect::<Vec<_>>(), FlagOp::Add, &flags(SEEN, &["$k"])).unwrap();
        f.sync(true).unwrap();
        f.close().unwrap();
        let st = status(&mb, T).unwrap();
        assert_eq!(st.messages as usize, count, "case {n}");
        let r = append(&mb, T, &Flags::default(), None, &mut &b"Subject: z\n\nz\n"[..]).unwrap();
        let mut g = MboxFolder::open(&mb, false, T).unwrap();
        assert_eq!(g.messages().len(), count + 1, "case {n}: {}", text(&fs::read(&mb).unwrap()));
        assert_eq!(uids(&g)[..count], us[..], "case {n}");
        assert_eq!(g.messages()[count].uid, r.dest[0], "case {n}");
        for (i, m) in sizes.iter().enumerate() {
            assert_eq!(&g.read(i).unwrap(), m, "case {n} message {i} after rewrite");
        }
        assert!(g.messages()[..count].iter().all(|m| m.flags == flags(SEEN, &["$k"])), "case {n}");
        g.store(&(0..=count).collect::<Vec<_>>(), FlagOp::Add, &flags(DELETED, &[])).unwrap();
        g.expunge(None).unwrap();
        assert!(MboxFolder::open(&mb, true, T).unwrap().messages().is_empty(), "case {n}");
    }
}

#[test]
fn python_mailbox_reads_the_rewritten_file() {
    let (_d, mb) = setup(3);
    let mut f = MboxFolder::open(&mb, false, T).unwrap();
    f.store(&[0], FlagOp::Add, &flags(SEEN | ANSWERED, &[])).unwrap();
    f.close().unwrap();
    let script = "import mailbox, sys\n\
        msgs = list(mailbox.mbox(sys.argv[1]))\n\
        print(len(msgs), msgs[0].get_flags(), msgs[0]['X-UID'], repr(msgs[0].get_payload()))\n";
    let out = match std::process::Command::new("python3").arg("-c").arg(script).arg(&mb).output() {
        Ok(o) if o.status.success() => text(&o.stdout),
        _ => {
            println!("note: python3 mailbox check skipped");
            return;
        }
    };
    assert_eq!(out, "3 ROA 1 '>From here on\\n>>From there\\nbye\\n'\n");
}

#[test]
fn from_line_dates() {
    let cases: &[(&[u8], Option<i64>)] = &[
        (b"From a@b Thu Jan  1 00:00:00 1970\n", Some(0)),
        (b"From a@b Sat Nov 28 03:48:08 2026\n", Some(ARRIVAL)),
        (b"From MAILER-DAEMON Tue Feb 29 00:00:00 2000", Some(951_782_400)),
        (b"From a Thu Jan  1 00:01 1970\n", Some(60)),
        (b"From a Thu Jan  1 00:00:00 UTC 1970\n", Some(0)),
        (b"From a\n", None),
        (b"From a Thu Jan 99 00:00:00 1970\n", None),
        (b"From a Thu Jan 1 25:00:00 1970\n", None),
        (b"From \xff Jan", None),
    ];
    for (line, want) in cases {
        assert_eq!(scan::from_line_date(line), *want, "{}", text(line));
    }
}

#[test]
fn scanned_sizes_match_reads() {
    // Separators, CRs at every place, quoted From lines, no final newline.
    let cases: &[&[u8]] = &[
        b"From a\nS: x\n\nbody\n\nFrom b\nS: y\n\n\n\nFrom c\n\n",
        b"From a\r\nS: x\r\n\r\nb\rc\r\n\r\nFrom b\nX\r",
        b"From a\n>From x\n>>From y\nFrom\n\n>From z\nFrom b\n",
        b"From a\nStatus: RO\nX-UID: 4\n\nx",
        b"From a\n\n\nFrom b\n\nFrom c\n",
    ];
    let d = tempfile::tempdir().unwrap();
    for (n, data) in cases.iter().enumerate() {
        let mb = d.path().join(format!("s{n}"));
        fs::write(&mb, data).unwrap();
        let file = fs::File::open(&mb).unwrap();
        let sc = scan::scan(&file, 0).unwrap();
        assert_eq!(sc.len, data.len() as u64);
        for p in &sc.msgs {
            let (got, fp) = scan::read_message(&file, &p.loc).unwrap();
            assert_eq!((got.len() as u64, fp), (p.size, p.fp), "case {n}: {}", text(&got));
            assert!(!got.windows(2).any(|w| w[1] == b'\n' && w[0] != b'\r'), "case {n}: bare LF");
        }
    }
}

#[test]
fn two_sessions_see_each_other() {
    let (_d, mb) = setup(3);
    let mut a = MboxFolder::open(&mb, false, T).unwrap();
    let mut b = MboxFolder::open(&mb, false, T).unwrap();
    assert_eq!(uids(&a), uids(&b), "same UIDs before any were written");
    a.store(&[2], FlagOp::Add, &flags(SEEN, &[])).unwrap();
    a.close().unwrap();
    // b reads straight after the rewrite: its handle still has the old file.
    assert_eq!(b.read(2).unwrap(), BODIES[2].to_vec());
    let c = b.sync(true).unwrap();
    assert_eq!(c, Changes { expunged: vec![], exists: None, flags: vec![2] });
    b.store(&[0], FlagOp::Add, &flags(DELETED, &[])).unwrap();
    assert_eq!(b.expunge(None).unwrap(), vec![1]);
    let mut a = MboxFolder::open(&mb, false, T).unwrap();
    assert_eq!(uids(&a), [2, 3]);
    assert_eq!(a.messages()[1].flags.system, SEEN);
    assert_eq!(a.read(1).unwrap(), BODIES[2].to_vec());
}

#[test]
fn the_reader_streams_what_read_gives() {
    // Every delivered shape (From_ quoting, no final newline, CRLF), also after flags were written
    // into the file: the stream is the whole read, octet for octet, in pieces of any size.
    let (_d, mb) = setup(6);
    let mut f = MboxFolder::open(&mb, false, T).unwrap();
    f.store(&[0, 2], FlagOp::Add, &flags(FLAGGED, &["$Work"])).unwrap();
    f.close().unwrap();
    let mut f = MboxFolder::open(&mb, false, T).unwrap();
    for i in 0..f.messages().len() {
        let want = f.read(i).unwrap();
        for piece in [1, 7, 4096] {
            let mut r = f.reader(i).unwrap();
            let mut got = Vec::new();
            let mut buf = vec![0u8; piece];
            loop {
                let n = r.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
            assert_eq!(text(&got), text(&want), "message {i}, pieces of {piece}");
        }
    }
}

#[test]
fn a_reader_of_a_message_changed_underneath_fails_at_its_end() {
    let (_d, mb) = setup(1);
    let mut f = MboxFolder::open(&mb, false, T).unwrap();
    let mut r = f.reader(0).unwrap();
    let mut data = fs::read(&mb).unwrap();
    // The index knows a message by its header's fingerprint and its size (as the whole read does).
    let at = data.windows(11).position(|w| w == b"Subject: hi").unwrap();
    data[at..at + 11].copy_from_slice(b"Subject: HI");
    fs::write(&mb, &data).unwrap();
    let mut got = Vec::new();
    let e = std::io::Read::read_to_end(&mut r, &mut got).unwrap_err();
    assert!(e.to_string().contains("changed"), "{e}");
}

#[test]
fn append_reads_long_lines_in_pieces() {
    // Lines longer than the piece the append reads at once: a managed header field is left out
    // whole, a body line starting with From is quoted once, and what is read back is the message.
    let d = tempfile::tempdir().unwrap();
    let mb = d.path().join("mbox");
    let long = "y".repeat(3 << 20);
    let msg = format!("Subject: long\nX-Status: {long}\nX-Long: {long}\n\nFrom {long}\nend\n");
    append(&mb, T, &Flags::default(), None, &mut msg.as_bytes()).unwrap();
    let mut f = MboxFolder::open(&mb, false, T).unwrap();
    let got = f.read(0).unwrap();
    let want = format!("Subject: long\r\nX-Long: {long}\r\n\r\nFrom {long}\r\nend\r\n");
    assert!(got == want.as_bytes(), "{} vs {} octets", got.len(), want.len());
    let raw = fs::read(&mb).unwrap();
    assert!(raw.windows(6).any(|w| w == b"\n>From"), "the From line is quoted in the file");
}
