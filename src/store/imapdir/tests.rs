//! Tests of the Maildir++ store against the Store/Folder contract (store/folder.rs): tree, UIDs,
//! sync with other sessions and programs, Dovecot files, CRLF sizes (RFC 3501, RFC 4315).

use std::fs;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::*;
use crate::store::folder::{ANSWERED, FLAGGED, FlagOp, Flags, Folder, FolderError, SEEN, Store};

fn setup() -> (tempfile::TempDir, PathBuf, MaildirStore) {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("home/Maildir");
    let s = MaildirStore::new(root.clone(), Inbox::Maildir);
    (d, root, s)
}

fn flags(system: u8, kw: &[&str]) -> Flags {
    Flags { system, keywords: kw.iter().map(|k| k.to_string()).collect() }
}

const MSG: &[u8] = b"Subject: hi\r\nFrom: a@b.example\r\n\r\nbody line\r\n";

fn names_of(s: &mut MaildirStore) -> Vec<(String, bool, Option<&'static str>, bool)> {
    s.list().unwrap().into_iter().map(|e| (e.name, e.selectable, e.special_use, e.subscribed)).collect()
}

fn deliver(dir: &Path, name: &str, body: &[u8]) -> PathBuf {
    let p = dir.join("new").join(name);
    fs::write(&p, body).unwrap();
    p
}

fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    v.sort();
    v
}

fn uids(f: &dyn Folder) -> Vec<u32> {
    f.messages().iter().map(|m| m.uid).collect()
}

/// Pushes the mtimes of a folder's directories and uidlist into the past, so that the change
/// detection trusts them (as it would a second later).
fn age(dir: &Path) {
    let old = SystemTime::now() - Duration::from_secs(60);
    for p in [dir.join("new"), dir.join("cur"), dir.join("dovecot-uidlist")] {
        if let Ok(f) = fs::File::open(&p) {
            f.set_modified(old).unwrap();
        }
    }
}

#[test]
fn list_tree_noselect_parents_and_special_use() {
    let (_d, root, mut s) = setup();
    s.create("Archive/2024/Q1").unwrap();
    // A child without its parent, made by another program.
    fs::create_dir_all(root.join(".x.y/cur")).unwrap();
    let l = names_of(&mut s);
    assert_eq!(fs::metadata(&root).unwrap().permissions().mode() & 0o777, 0o700);
    assert_eq!(l.first().unwrap(), &("INBOX".to_string(), true, None, false));
    let want = [
        ("Archive", true, Some("\\Archive"), false), // made by CREATE first: not auto-subscribed
        ("Archive/2024", true, None, false),
        ("Archive/2024/Q1", true, None, false),
        ("Drafts", true, Some("\\Drafts"), true),
        ("Junk", true, Some("\\Junk"), true),
        ("Sent", true, Some("\\Sent"), true),
        ("Trash", true, Some("\\Trash"), true),
        ("x", false, None, false),
        ("x/y", true, None, false),
    ];
    let got: Vec<_> = l.iter().skip(1).map(|(n, a, b, c)| (n.as_str(), *a, *b, *c)).collect();
    assert_eq!(got, want);
    for sub in ["cur", "new", "tmp", "maildirfolder"] {
        assert!(root.join(".Archive.2024.Q1").join(sub).exists(), "{sub}");
    }
    assert_eq!(s.create("Archive/2024"), Err(FolderError::Exists));
    assert_eq!(s.create("inbox"), Err(FolderError::Exists));
    s.create("New/").unwrap();
    assert!(root.join(".New/cur").is_dir());
    // Special-use folders are made once: deleting one is respected for this session.
    // Its subscription stays (RFC 3501 6.3.6): the name lists, not selectable.
    s.delete("Junk").unwrap();
    let junk: Vec<_> = names_of(&mut s).into_iter().filter(|e| e.0 == "Junk").collect();
    assert_eq!(junk, vec![("Junk".to_string(), false, None, true)]);
}

#[test]
fn names_that_escape_are_refused_everywhere() {
    let (d, root, mut s) = setup();
    s.list().unwrap();
    let before = files(d.path());
    for bad in ["../x", "/etc", "a/../../b", "a\0b", ".hidden", "a/./b", "a.b", "", "x/", "a//b"] {
        if bad != "x/" {
            assert!(matches!(s.create(bad), Err(FolderError::BadName(_))), "create {bad:?}");
        }
        assert!(matches!(s.open(bad, true), Err(FolderError::BadName(_))), "open {bad:?}");
        assert!(matches!(s.delete(bad), Err(FolderError::BadName(_))), "delete {bad:?}");
        assert!(matches!(s.rename("Sent", bad), Err(FolderError::BadName(_))), "rename {bad:?}");
        assert!(matches!(s.append(bad, &Flags::default(), None, MSG), Err(FolderError::BadName(_))));
        assert!(matches!(s.subscribe(bad, true), Err(FolderError::BadName(_))));
    }
    assert_eq!(files(d.path()), before);
    assert!(!root.parent().unwrap().join("x").exists());
}

#[test]
fn delete_keeps_children_and_refuses_inbox() {
    let (_d, root, mut s) = setup();
    s.create("a/b").unwrap();
    s.append("a", &Flags::default(), None, MSG).unwrap();
    assert!(matches!(s.delete("INBOX"), Err(FolderError::Cannot(_))));
    assert!(matches!(s.delete("inbox"), Err(FolderError::Cannot(_))));
    s.delete("a").unwrap();
    assert!(!root.join(".a").exists());
    assert!(root.join(".a.b/cur").is_dir());
    let l = names_of(&mut s);
    assert!(l.contains(&("a".into(), false, None, false)));
    assert!(l.contains(&("a/b".into(), true, None, false)));
    // RFC 3501 6.3.4: a \Noselect name with inferiors cannot be deleted.
    assert!(matches!(s.delete("a"), Err(FolderError::Cannot(_))));
    assert_eq!(s.delete("nope"), Err(FolderError::NotFound));
    assert_eq!(s.open("a", false).err(), Some(FolderError::NotFound));
    // Nothing of the deleted folder is left lying around.
    assert!(!files(&root).iter().any(|n| n.starts_with("..")));
}

#[test]
fn rename_moves_children_and_keeps_uids() {
    let (_d, root, mut s) = setup();
    s.create("a/b/c").unwrap();
    let r = s.append("a/b", &flags(SEEN, &[]), None, MSG).unwrap();
    s.rename("a", "z/y").unwrap();
    let l: Vec<String> = names_of(&mut s).into_iter().map(|e| e.0).collect();
    assert!(l.iter().any(|n| n == "z/y/b/c"), "{l:?}");
    assert!(!l.iter().any(|n| n.starts_with("a")), "{l:?}");
    let f = s.open("z/y/b", true).unwrap();
    assert_eq!(f.uidvalidity(), r.uidvalidity);
    assert_eq!(uids(&*f), r.dest);
    assert_eq!(f.name(), "z/y/b");
    assert!(root.join(".z.y.b.c/cur").is_dir());
    assert!(matches!(s.rename("z", "z/q"), Err(FolderError::Cannot(_))));
    assert_eq!(s.rename("z/y", "Sent"), Err(FolderError::Exists));
    assert_eq!(s.rename("Sent", "INBOX"), Err(FolderError::Exists));
    assert_eq!(s.rename("nothing", "other"), Err(FolderError::NotFound));
}

#[test]
fn rename_inbox_moves_its_messages() {
    let (_d, root, mut s) = setup();
    s.create("INBOX/child").unwrap();
    assert!(root.join(".INBOX.child/cur").is_dir());
    s.append("INBOX", &flags(SEEN, &[]), None, MSG).unwrap();
    s.ensure_root().unwrap();
    deliver(&root, "1900000000.M1P1.h", b"Subject: new\n\nx\n");
    s.rename("INBOX", "Old/Inbox").unwrap();
    let inbox = s.open("INBOX", false).unwrap();
    assert!(inbox.messages().is_empty());
    assert_eq!(inbox.uidnext(), 2, "UIDs of INBOX are not given again");
    let old = s.open("Old/Inbox", false).unwrap();
    assert_eq!(old.messages().len(), 2);
    assert_eq!(old.messages()[0].flags.system, SEEN);
    assert!(old.messages()[1].recent, "a message still in new/ stays \\Recent");
    assert!(names_of(&mut s).iter().any(|e| e.0 == "INBOX/child"));
}

#[test]
fn uids_persist_and_are_never_reused() {
    let (_d, root, mut s) = setup();
    let mut v = 0;
    for i in 1..=3u32 {
        let r = s.append("INBOX", &Flags::default(), Some(1_600_000_000), MSG).unwrap();
        assert_eq!(r.dest, vec![i]);
        assert!(r.source.is_empty());
        v = r.uidvalidity;
    }
    let mut f = s.open("INBOX", false).unwrap();
    assert_eq!((f.uidvalidity(), f.uidnext(), uids(&*f)), (v, 4, vec![1, 2, 3]));
    assert_eq!(f.messages()[0].internal_date, 1_600_000_000);
    f.store(&[2], FlagOp::Add, &flags(DELETED, &[])).unwrap();
    assert_eq!(f.expunge(None).unwrap(), vec![3]);
    drop(f);
    let f = s.open("INBOX", true).unwrap();
    assert_eq!((f.uidvalidity(), f.uidnext(), uids(&*f)), (v, 4, vec![1, 2]));
    assert_eq!(s.append("INBOX", &Flags::default(), None, MSG).unwrap().dest, vec![4]);
    let text = fs::read_to_string(root.join("dovecot-uidlist")).unwrap();
    assert!(text.starts_with(&format!("3 V{v} N")), "{text}");
    // A folder deleted and made again gets a new UIDVALIDITY, even within the same second.
    s.create("t").unwrap();
    let v1 = s.status("t").unwrap().uidvalidity;
    s.delete("t").unwrap();
    s.create("t").unwrap();
    assert!(s.status("t").unwrap().uidvalidity > v1);
}

#[test]
fn sync_sees_files_added_and_removed_by_hand() {
    let (_d, root, mut s) = setup();
    s.create("f").unwrap();
    let dir = root.join(".f");
    for _ in 0..4 {
        s.append("f", &Flags::default(), None, MSG).unwrap();
    }
    let mut f = s.open("f", false).unwrap();
    assert_eq!(f.sync(true).unwrap(), Default::default());
    // Delivered later, in the reverse order of their names' timestamps.
    deliver(&dir, "1800000002.M1P1.h", b"B: 2\n\nx\n");
    deliver(&dir, "1800000001.M1P1.h", b"A: 1\n\nx\n");
    let mut cur = files(&dir.join("cur"));
    fs::remove_file(dir.join("cur").join(cur.remove(1))).unwrap();
    fs::remove_file(dir.join("cur").join(cur.remove(1))).unwrap();
    assert!(f.changed());
    let c = f.sync(true).unwrap();
    assert_eq!(c.expunged, vec![2, 2]);
    assert_eq!(c.exists, Some(4));
    assert_eq!(uids(&*f), vec![1, 4, 5, 6]);
    assert_eq!(f.read_header(2).unwrap(), b"A: 1\r\n\r\n");
    // All recent for this session: it was the first to see the appended ones and the deliveries.
    assert!(f.messages().iter().all(|m| m.recent));
    assert!(!s.open("f", false).unwrap().messages().iter().any(|m| m.recent), "and no other session");
    assert!(files(&dir.join("new")).is_empty());
}

#[test]
fn changed_is_cheap_and_honest() {
    let (_d, root, mut s) = setup();
    s.append("INBOX", &Flags::default(), None, MSG).unwrap();
    let mut f = s.open("INBOX", false).unwrap();
    age(&root);
    f.sync(true).unwrap();
    assert!(!f.changed());
    assert_eq!(f.sync(true).unwrap(), Default::default());
    deliver(&root, "1800000000.M1P1.h", MSG);
    assert!(f.changed());
    assert_eq!(f.sync(true).unwrap().exists, Some(2));
}

#[test]
fn two_views_see_each_others_store_and_expunge() {
    let (_d, _root, mut s) = setup();
    for _ in 0..3 {
        s.append("INBOX", &Flags::default(), None, MSG).unwrap();
    }
    let mut a = s.open("INBOX", false).unwrap();
    let mut b = s.open("INBOX", false).unwrap();
    a.store(&[0, 2], FlagOp::Add, &flags(FLAGGED, &["$Work"])).unwrap();
    assert_eq!(a.messages()[0].flags, flags(FLAGGED, &["$Work"]));
    let c = b.sync(true).unwrap();
    assert_eq!(c.flags, vec![0, 2]);
    assert_eq!(b.messages()[2].flags, flags(FLAGGED, &["$Work"]));
    assert_eq!(b.keywords(), vec!["$Work"]);
    // b changes a message whose file a renamed: b's view was stale, the rename is retried.
    a.store(&[1], FlagOp::Add, &flags(SEEN, &[])).unwrap();
    b.store(&[1], FlagOp::Add, &flags(ANSWERED, &[])).unwrap();
    assert_eq!(b.messages()[1].flags.system, ANSWERED | SEEN);
    a.sync(true).unwrap();
    assert_eq!(a.messages()[1].flags.system, ANSWERED | SEEN);
    a.store(&[0], FlagOp::Replace, &flags(DELETED, &[])).unwrap();
    assert_eq!(a.expunge(None).unwrap(), vec![1]);
    let c = b.sync(true).unwrap();
    assert_eq!(c.expunged, vec![1]);
    assert_eq!(uids(&*b), vec![2, 3]);
}

#[test]
fn sync_without_expunges_keeps_them_in_view() {
    let (_d, root, mut s) = setup();
    s.append("INBOX", &Flags::default(), None, MSG).unwrap();
    s.append("INBOX", &Flags::default(), None, MSG).unwrap();
    let mut f = s.open("INBOX", false).unwrap();
    let gone = f.file(0).unwrap();
    fs::remove_file(&gone).unwrap();
    deliver(&root, "1800000000.M1P1.h", MSG);
    let c = f.sync(false).unwrap();
    assert!(c.expunged.is_empty());
    assert_eq!(c.exists, Some(3));
    assert_eq!(f.read(0), Err(FolderError::Expunged));
    assert_eq!(f.file(0), None);
    // RFC 2180 4.2.1: the STORE succeeds; the message that is gone is left alone.
    assert_eq!(f.store(&[0, 1], FlagOp::Add, &flags(SEEN, &[])), Ok(()));
    assert_eq!(f.messages()[0].flags.system, 0);
    assert_eq!(f.messages()[1].flags.system, SEEN);
    let c = f.sync(true).unwrap();
    assert_eq!(c.expunged, vec![1]);
    assert_eq!(uids(&*f), vec![2, 3]);
}

#[test]
fn expunged_by_another_session_stays_readable_until_told() {
    let (_d, root, mut s) = setup();
    s.append("INBOX", &Flags::default(), None, b"Subject: one\r\n\r\nfirst\r\n").unwrap();
    s.append("INBOX", &Flags::default(), None, MSG).unwrap();
    let mut a = s.open("INBOX", false).unwrap();
    let mut b = s.open("INBOX", false).unwrap();
    a.store(&[0], FlagOp::Add, &flags(DELETED, &[])).unwrap();
    assert_eq!(a.expunge(None).unwrap(), vec![1]);
    assert!(files(&root.join("cur")).len() == 1);
    // b has not been told (a FETCH or STORE may not announce it, RFC 3501 7.4.1): RFC 2180 4.1.1,
    // the data is still given, before and after b's sync found the file gone.
    assert_eq!(b.read(0).unwrap(), b"Subject: one\r\n\r\nfirst\r\n");
    b.sync(false).unwrap();
    assert_eq!(b.read_header(0).unwrap(), b"Subject: one\r\n\r\n");
    let mut text = Vec::new();
    b.reader(0).unwrap().read_to_end(&mut text).unwrap();
    assert_eq!(text, b"Subject: one\r\n\r\nfirst\r\n");
    assert_eq!(b.store(&[0], FlagOp::Add, &flags(SEEN, &[])), Ok(()));
    assert_eq!(b.sync(true).unwrap().expunged, vec![1]);
    // Held in tmp/, where every Maildir reader looks past it, until the sweep.
    let held = files(&root.join("tmp"));
    assert_eq!(held.len(), 1);
    assert!(held[0].ends_with(":expunged"), "{held:?}");
    assert_eq!(super::msgfile::sweep_held(&root, Duration::from_secs(3600)), 0);
    assert_eq!(super::msgfile::sweep_held(&root, Duration::ZERO), 1);
    assert!(files(&root.join("tmp")).is_empty());
    // Once swept, a session still not told gets EXPUNGEISSUED.
    let mut c = s.open("INBOX", false).unwrap();
    let mut d = s.open("INBOX", false).unwrap();
    c.store(&[0], FlagOp::Add, &flags(DELETED, &[])).unwrap();
    c.expunge(None).unwrap();
    super::msgfile::sweep_held(&root, Duration::ZERO);
    assert_eq!(d.read(0), Err(FolderError::Expunged));
}

#[test]
fn dovecot_uidlist_and_keywords_are_honoured() {
    let (_d, root, mut s) = setup();
    s.ensure_root().unwrap();
    fs::write(root.join("cur/1000.M1P1.h,S=9:2,Sb"), b"A: 1\n\nx\n").unwrap();
    fs::write(root.join("cur/1001.M1P1.h,S=9:2,"), b"A: 2\n\nx\n").unwrap();
    fs::write(root.join("cur/1002.M1P1.h,S=9,W=12:2,RT"), b"A: 3\n\nx\n").unwrap();
    fs::write(
        root.join("dovecot-uidlist"),
        "3 V1234567 N50 Gabcdef\n40 :1000.M1P1.h,S=9:2,S\n45 W99 :1001.M1P1.h,S=9\n47 :1002.M1P1.h,S=9,W=12\n",
    )
    .unwrap();
    fs::write(root.join("dovecot-keywords"), "0 $Junk\n1 Work\n").unwrap();
    deliver(&root, "1003.M1P1.h", b"A: 4\n\nx\n");
    let mut f = s.open("INBOX", false).unwrap();
    assert_eq!(f.uidvalidity(), 1_234_567);
    assert_eq!(uids(&*f), vec![40, 45, 47, 50]);
    assert_eq!(f.uidnext(), 51);
    let m = f.messages();
    assert_eq!(m[0].flags, flags(SEEN, &["Work"]));
    assert_eq!((m[0].size, m[1].size, m[2].size, m[3].size), (11, 99, 12, 11));
    assert_eq!(m[2].flags.system, ANSWERED | DELETED);
    assert_eq!(f.keywords(), vec!["$Junk", "Work"]);
    f.store(&[1], FlagOp::Add, &flags(0, &["$junk", "New"])).unwrap();
    assert!(root.join("cur/1001.M1P1.h,S=9:2,ac").exists());
    assert_eq!(fs::read_to_string(root.join("dovecot-keywords")).unwrap(), "0 $Junk\n1 Work\n2 New\n");
    let text = fs::read_to_string(root.join("dovecot-uidlist")).unwrap();
    assert!(text.starts_with("3 V1234567 N51 Gabcdef\n40 W11 :1000.M1P1.h,S=9\n"), "{text}");
    assert!(text.contains("\n50 W11 :1003.M1P1.h\n"), "{text}");
}

#[test]
fn corrupt_or_missing_uidlist_is_rebuilt_with_new_uidvalidity() {
    let (_d, root, mut s) = setup();
    s.append("INBOX", &Flags::default(), None, MSG).unwrap();
    let v = s.status("INBOX").unwrap().uidvalidity;
    fs::write(root.join("dovecot-uidlist"), "3 V5 N9\nnot a line\n").unwrap();
    let f = s.open("INBOX", true).unwrap();
    assert!(f.uidvalidity() > v);
    assert_eq!(uids(&*f), vec![1]);
    let v2 = f.uidvalidity();
    fs::remove_file(root.join("dovecot-uidlist")).unwrap();
    let st = s.status("INBOX").unwrap();
    assert!(st.uidvalidity > v2);
    assert_eq!((st.messages, st.uidnext), (1, 2));
}

#[test]
fn uidvalidity_change_under_an_open_view_is_an_error() {
    let (_d, root, mut s) = setup();
    s.append("INBOX", &Flags::default(), None, MSG).unwrap();
    let mut f = s.open("INBOX", false).unwrap();
    fs::remove_file(root.join("dovecot-uidlist")).unwrap();
    assert!(matches!(f.sync(true), Err(FolderError::Temp(_))));
}

#[test]
fn crlf_and_sizes() {
    let (_d, root, mut s) = setup();
    s.append("INBOX", &Flags::default(), Some(1_500_000_000), MSG).unwrap();
    s.append("INBOX", &Flags::default(), None, b"A: b\n\nlf only\n").unwrap();
    deliver(&root, "1900000000.M1P1.h", b"A: b\r\n\r\nalready crlf\r\nbare\rcr\n");
    let mut f = s.open("INBOX", false).unwrap();
    assert_eq!(f.read(0).unwrap(), MSG);
    assert_eq!(f.messages()[0].size, MSG.len() as u64);
    assert_eq!(f.messages()[0].internal_date, 1_500_000_000);
    let stored = fs::read(f.file(0).unwrap()).unwrap();
    assert_eq!(stored, b"Subject: hi\nFrom: a@b.example\n\nbody line\n");
    assert!(f.file(0).unwrap().to_str().unwrap().contains(&format!(
        ",S={},W={}:2,",
        stored.len(),
        MSG.len()
    )));
    assert_eq!(f.read(1).unwrap(), b"A: b\r\n\r\nlf only\r\n");
    assert_eq!(f.messages()[1].size, 17);
    let want: &[u8] = b"A: b\r\n\r\nalready crlf\r\nbare\rcr\r\n";
    assert_eq!(f.read(2).unwrap(), want);
    assert_eq!(f.messages()[2].size, want.len() as u64);
    assert_eq!(f.read_header(2).unwrap(), b"A: b\r\n\r\n");
    let list = fs::read_to_string(root.join("dovecot-uidlist")).unwrap();
    assert!(list.contains(&format!("3 W{} :1900000000.M1P1.h\n", want.len())), "{list}");
    let st = s.status("INBOX").unwrap();
    assert_eq!(st.size, MSG.len() as u64 + 17 + want.len() as u64);
}

#[test]
fn recent_and_examine() {
    let (_d, root, mut s) = setup();
    s.ensure_root().unwrap();
    deliver(&root, "1800000000.M1P1.h", MSG);
    let st = s.status("INBOX").unwrap();
    assert_eq!((st.messages, st.recent, st.unseen, st.uidnext), (1, 1, 1, 2));
    let ro = s.open("INBOX", true).unwrap();
    // RFC 3501 6.3.2: EXAMINE shows \Recent and takes it from no one.
    assert!(ro.messages()[0].recent);
    assert_eq!(files(&root.join("new")), vec!["1800000000.M1P1.h"]);
    let mut ro = ro;
    assert_eq!(ro.store(&[0], FlagOp::Add, &flags(SEEN, &[])), Err(FolderError::ReadOnly));
    assert_eq!(ro.expunge(None), Err(FolderError::ReadOnly));
    let rw = s.open("INBOX", false).unwrap();
    assert!(rw.messages()[0].recent);
    assert_eq!(uids(&*rw), vec![1]);
    assert_eq!(files(&root.join("cur")), vec!["1800000000.M1P1.h:2,"]);
    // The read-only view still finds the message it thought in new/.
    assert_eq!(ro.read(0).unwrap().len() as u64, ro.messages()[0].size);
    let again = s.open("INBOX", false).unwrap();
    assert!(!again.messages()[0].recent);
    let st = s.status("INBOX").unwrap();
    assert_eq!((st.recent, st.deleted), (0, 0));
}

#[test]
fn appended_and_copied_messages_are_recent_for_the_first_session() {
    let (_d, _root, mut s) = setup();
    s.ensure_root().unwrap();
    s.append("INBOX", &flags(SEEN, &[]), None, MSG).unwrap();
    s.create("dest").unwrap();
    assert_eq!(s.status("INBOX").unwrap().recent, 1, "STATUS counts it and claims nothing");
    assert!(s.open("INBOX", true).unwrap().messages()[0].recent, "nor does EXAMINE");
    let first = s.open("INBOX", false).unwrap();
    assert!(first.messages()[0].recent, "the first read-write session claims it");
    assert!(!s.open("INBOX", false).unwrap().messages()[0].recent, "and no other gets it");
    assert_eq!(s.status("INBOX").unwrap().recent, 0);
    let mut inbox = s.open("INBOX", false).unwrap();
    s.copy(&mut *inbox, &[0], "dest").unwrap();
    assert!(s.open("dest", false).unwrap().messages()[0].recent, "a copy is new where it lands");
    assert!(!s.open("dest", false).unwrap().messages()[0].recent);
}

#[test]
fn copy_hard_links_with_copyuid() {
    let (_d, root, mut s) = setup();
    s.append("INBOX", &flags(SEEN, &["Work"]), Some(1_400_000_000), MSG).unwrap();
    s.append("INBOX", &flags(0, &[]), None, MSG).unwrap();
    s.create("dest").unwrap();
    s.append("dest", &flags(0, &["Other"]), None, MSG).unwrap();
    let mut f = s.open("INBOX", false).unwrap();
    let r = s.copy(&mut *f, &[1, 0], "dest").unwrap();
    assert_eq!((r.source.clone(), r.dest.clone()), (vec![2, 1], vec![2, 3]));
    let g = s.open("dest", false).unwrap();
    assert_eq!(r.uidvalidity, g.uidvalidity());
    let copied = &g.messages()[2];
    assert_eq!(copied.flags, flags(SEEN, &["Work"]));
    assert_eq!(copied.internal_date, 1_400_000_000);
    assert!(copied.recent, "a copy is new where it lands (RFC 3501 2.3.2)");
    let (a, b) = (fs::metadata(f.file(0).unwrap()).unwrap(), fs::metadata(g.file(2).unwrap()).unwrap());
    assert_eq!(a.ino(), b.ino());
    assert!(g.file(2).unwrap().to_str().unwrap().ends_with(":2,Sb"), "keyword letters are per folder");
    assert!(files(&root.join(".dest/tmp")).is_empty());
    assert_eq!(s.copy(&mut *f, &[0], "missing").err(), Some(FolderError::NotFound));
}

#[test]
fn at_most_26_keywords() {
    let (_d, _root, mut s) = setup();
    s.append("INBOX", &Flags::default(), None, MSG).unwrap();
    let mut f = s.open("INBOX", false).unwrap();
    let kws: Vec<String> = (0..26).map(|i| format!("k{i}")).collect();
    f.store(&[0], FlagOp::Add, &Flags { system: 0, keywords: kws }).unwrap();
    assert_eq!(f.messages()[0].flags.keywords.len(), 26);
    assert!(matches!(f.store(&[0], FlagOp::Add, &flags(0, &["one-more"])), Err(FolderError::Cannot(_))));
    assert!(matches!(s.append("INBOX", &flags(0, &["x27"]), None, MSG), Err(FolderError::Cannot(_))));
    assert!(files(&_root.join("tmp")).is_empty());
}

#[test]
fn subscriptions() {
    let (_d, root, mut s) = setup();
    s.subscribe("inbox", true).unwrap();
    s.subscribe("Later/x", true).unwrap();
    let l = names_of(&mut s);
    assert!(l[0].3);
    assert!(!l.iter().any(|e| e.0 == "Later/x" && e.1), "subscribing does not create");
    assert!(!l.iter().any(|e| e.0 == "Later"), "nor list a parent");
    s.subscribe("Sent", false).unwrap();
    let text = fs::read_to_string(root.join("subscriptions")).unwrap();
    assert_eq!(text, "INBOX\nLater/x\nDrafts\nTrash\nJunk\nArchive\n");
}

#[test]
fn mbox_inbox_keeps_folders_beside_it() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("mail");
    let mbox = d.path().join("spool/user");
    let mut s =
        MaildirStore::new(root.clone(), Inbox::Mbox { path: mbox, lock_timeout: Duration::from_millis(200) });
    let l = names_of(&mut s);
    assert_eq!(l[0].0, "INBOX");
    assert!(!root.join("cur").exists(), "the root is not a Maildir here");
    assert_eq!(s.create("INBOX"), Err(FolderError::Exists));
    assert!(matches!(s.delete("INBOX"), Err(FolderError::Cannot(_))));
    s.create("INBOX/sub").unwrap();
    assert!(root.join(".INBOX.sub/cur").is_dir());
    assert_eq!(s.append("INBOX/sub", &Flags::default(), None, MSG).unwrap().dest, vec![1]);
}

#[test]
fn expunge_by_uid_and_announce_order() {
    let (_d, _root, mut s) = setup();
    for _ in 0..5 {
        s.append("INBOX", &flags(DELETED, &[]), None, MSG).unwrap();
    }
    let mut f = s.open("INBOX", false).unwrap();
    assert_eq!(f.expunge(Some(&[4, 2, 9])).unwrap(), vec![2, 3]);
    assert_eq!(uids(&*f), vec![1, 3, 5]);
    assert_eq!(f.expunge(None).unwrap(), vec![1, 1, 1]);
    assert!(f.messages().is_empty());
}

#[test]
fn cache_is_bounded_and_keyed_by_uid() {
    let (_d, _root, mut s) = setup();
    s.append("INBOX", &Flags::default(), None, MSG).unwrap();
    s.append("INBOX", &Flags::default(), None, MSG).unwrap();
    let mut f = s.open("INBOX", false).unwrap();
    f.cache(1, 0, "(envelope)".into());
    assert_eq!(f.cached(1, 0).as_deref(), Some("(envelope)"));
    assert_eq!(f.cached(1, 1), None);
    f.store(&[0], FlagOp::Add, &flags(DELETED, &[])).unwrap();
    f.expunge(None).unwrap();
    assert_eq!(f.cached(0, 0).as_deref(), Some("(envelope)"));
    for i in 0..10_000 {
        f.cache(0, (i % 2) as u8, "x".repeat(i % 300));
    }
    assert!(f.cached(0, 1).is_some());
}

#[test]
fn concurrent_sessions_get_distinct_uids() {
    let (_d, root, mut s) = setup();
    s.ensure_root().unwrap();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let root = root.clone();
            std::thread::spawn(move || {
                let mut s = MaildirStore::new(root.clone(), Inbox::Maildir);
                let mut got = Vec::new();
                for i in 0..10 {
                    if t == 0 {
                        // A delivery agent writing into new/ meanwhile.
                        deliver(&root, &format!("1800000000.M{i}P9.h"), MSG);
                        s.open("INBOX", false).unwrap();
                    } else {
                        got.extend(s.append("INBOX", &Flags::default(), None, MSG).unwrap().dest);
                    }
                }
                got
            })
        })
        .collect();
    let mut appended: Vec<u32> = threads.into_iter().flat_map(|t| t.join().unwrap()).collect();
    appended.sort();
    appended.dedup();
    assert_eq!(appended.len(), 30);
    let f = s.open("INBOX", false).unwrap();
    let all = uids(&*f);
    assert_eq!(all.len(), 40);
    assert!(all.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(f.uidnext(), 41);
    assert!(!root.join("dovecot-uidlist.lock").exists());
}

#[test]
fn non_ascii_names_are_modified_utf7_on_disk() {
    let (_d, root, mut s) = setup();
    s.create("Entwürfe/Ärger").unwrap();
    assert!(root.join(".Entw&APw-rfe.&AMQ-rger/cur").is_dir());
    s.create("R&D").unwrap();
    assert!(root.join(".R&-D/cur").is_dir());
    // A directory whose name is not valid modified UTF-7 is not a folder.
    fs::create_dir_all(root.join(".bad&Zm9v/cur")).unwrap();
    let l: Vec<String> = names_of(&mut s).into_iter().map(|e| e.0).collect();
    assert!(l.contains(&"Entwürfe/Ärger".to_string()) && l.contains(&"R&D".to_string()), "{l:?}");
    assert!(!l.iter().any(|n| n.starts_with("bad")), "{l:?}");
    s.subscribe("Entwürfe", true).unwrap();
    assert!(fs::read_to_string(root.join("subscriptions")).unwrap().contains("Entwürfe\n"));
}

#[test]
fn folder_deleted_under_an_open_view() {
    let (_d, _root, mut s) = setup();
    s.create("gone").unwrap();
    s.append("gone", &Flags::default(), None, MSG).unwrap();
    let mut f = s.open("gone", false).unwrap();
    s.delete("gone").unwrap();
    assert_eq!(f.read(0), Err(FolderError::Expunged));
    assert_eq!(f.sync(true), Err(FolderError::NotFound));
    assert_eq!(s.status("gone"), Err(FolderError::NotFound));
}

#[test]
fn mod_sequences_grow_with_every_change_and_are_shared_between_views() {
    // RFC 7162 3.1: a change gets a mod-sequence above every earlier one; other views see it.
    let (_d, root, mut s) = setup();
    s.append("INBOX", &Flags::default(), None, MSG).unwrap();
    s.append("INBOX", &Flags::default(), None, MSG).unwrap();
    let mut a = s.open("INBOX", false).unwrap();
    let mut b = s.open("INBOX", false).unwrap();
    let h0 = a.highest_modseq().unwrap();
    assert!(h0 >= 1 && a.messages().iter().all(|m| m.modseq >= 1 && m.modseq <= h0));
    a.store(&[1], FlagOp::Add, &flags(SEEN, &[])).unwrap();
    let m1 = a.messages()[1].modseq;
    assert!(m1 > h0);
    assert_eq!(a.highest_modseq(), Some(m1));
    // A STORE that changes nothing gives no new mod-sequence.
    a.store(&[1], FlagOp::Add, &flags(SEEN, &[])).unwrap();
    assert_eq!(a.messages()[1].modseq, m1);
    let c = b.sync(true).unwrap();
    assert_eq!(c.flags, vec![1]);
    assert_eq!((b.messages()[1].modseq, b.messages()[0].modseq), (m1, a.messages()[0].modseq));
    // A rename by another program is found and given one.
    let f = a.file(0).unwrap();
    let to = f.to_str().unwrap().replace(":2,", ":2,F");
    fs::rename(&f, &to).unwrap();
    let c = b.sync(true).unwrap();
    assert_eq!(c.flags, vec![0]);
    assert!(b.messages()[0].modseq > m1);
    assert_eq!(s.status("INBOX").unwrap().highest_modseq, b.highest_modseq().unwrap());
    assert!(root.join("buzon-modseq").exists());
}
