//! The quick sync of a selected Maildir folder: most changes other sessions make to a busy folder
//! are flag renames, expunges and appended messages, and those can be taken in without the full
//! scan under the uidlist lock, so that sessions on one folder do not queue behind each other
//! (RFC 3501 7.4.1: expunges announced only when allowed, as the full scan does).
//!
//! Why it is safe: every writer either makes a file under a base name never seen before, or
//! renames or removes a file keeping its base name:
//! - a delivery (store/maildir.rs `Pending::commit`) links tmp/ -> new/ under a fresh name;
//! - APPEND and COPY (mod.rs `commit`, MOVE being COPY then EXPUNGE) move fresh names from tmp/
//!   into cur/, then append their entries to the uidlist, under its lock;
//! - a read-write scan moves new/<base> to cur/<base>:2, (same base), under the lock, and gives
//!   UIDs by appending to the uidlist (or rewriting it: a new inode);
//! - STORE renames cur/<base>:2,<letters> (same base) and records the letters in the
//!   mod-sequence journal (modseq.rs) under the lock afterwards;
//! - EXPUNGE moves the file to tmp/ (msgfile.rs `expunge_file`) and records the expunge in the
//!   journal under the lock afterwards;
//! - other programs (Dovecot, mutt, a delivery agent) do the same kinds of things.
//!
//! So the quick sync reads what was appended to the uidlist since the view's last look (same
//! inode, longer: whole lines only), lists cur/ and new/, and matches base names to the view and
//! to those new entries. It falls back to the full scan under the lock (which gives UIDs, moves
//! new/ to cur/, claims `\Recent` and records what it finds in the journal) when anything is not
//! plainly one of those changes: a base name neither the view nor the new entries have, a file in
//! new/ a read-write view would move, a rename whose letters the journal does not have (another
//! program's, or a STORE not yet recorded), a vanished file whose expunge the journal does not
//! have, a keyword letter the view does not know, a uidlist rewritten (entries dropped, or a new
//! UIDVALIDITY), a journal of another UIDVALIDITY. Appended messages are claimed as `\Recent`
//! and given their first mod-sequence under the lock by the first view that takes them in (a few
//! small writes, no scan). The journal is read without the lock: it is only appended to, in whole
//! lines, and read before the directories, so every change it records is already visible in them
//! and the highest mod-sequence taken from it covers nothing the view has not seen.

use std::collections::HashMap;

use super::{MaildirFolder, Stamp};
use crate::store::folder::{Changes, FolderError, Uid};
use crate::store::imapdir::lock::DotLock;
use crate::store::imapdir::modseq::letters;
use crate::store::imapdir::msgfile::{base_of, crlf_size, extra_letters, w_size};
use crate::store::imapdir::scan::{self, Present, Scan, list_files};
use crate::store::imapdir::uidlist::{self, Entry, UIDLIST};

/// How long a change may stay half done before it is taken to be another program's.
const IN_FLIGHT: i64 = 2;

/// A change the journal or the uidlist does not show yet may be one a session is making: APPEND
/// places its files in cur/ before it appends their uidlist lines, STORE and EXPUNGE rename and
/// unlink before they record what they did, all under (or waiting for) the uidlist lock. While the
/// lock is held and the file (if any) changed in the last [`IN_FLIGHT`] seconds, the view leaves
/// the change for its next look (the folder stays marked as changed) rather than queue up for the
/// lock behind it; otherwise it is another program's, for the full scan.
fn in_flight(dir: &std::path::Path, file: Option<&std::path::Path>) -> bool {
    use std::os::unix::fs::MetadataExt;
    if std::fs::symlink_metadata(dir.join(format!("{UIDLIST}.lock"))).is_err() {
        return false;
    }
    let Some(file) = file else { return true };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    std::fs::symlink_metadata(file).is_ok_and(|m| m.ctime() >= now - IN_FLIGHT)
}

impl MaildirFolder {
    /// Brings the view in step without a scan when only known renames, expunges and appended
    /// messages happened; None when the full scan is needed.
    pub(super) fn quick_sync(&mut self, expunges: bool) -> Result<Option<Changes>, FolderError> {
        let (stamp, fresh) = Stamp::take(&self.dir);
        let Some(appended) = self.appended_entries(&stamp)? else { return Ok(self.full_scan_needed(1)) };
        self.journal.refresh(&self.dir)?;
        if self.journal.validity() != Some(self.uidvalidity) {
            return Ok(self.full_scan_needed(2));
        }
        let seen_highest = self.journal.highest();
        if self.by_base.is_none() {
            self.by_base = Some(
                self.files.iter().enumerate().map(|(i, f)| (Box::<str>::from(base_of(&f.name)), i)).collect(),
            );
        }
        let Some(by_base) = self.by_base.as_ref() else { return Ok(self.full_scan_needed(3)) };
        let new_by_base: HashMap<&str, usize> =
            appended.iter().enumerate().map(|(j, e)| (e.base.as_str(), j)).collect();
        let mut found: Vec<Option<(String, bool)>> = Vec::new();
        found.resize_with(self.files.len(), || None);
        let mut new_found: Vec<Option<String>> = vec![None; appended.len()];
        // Changes seen half done (see `in_flight`): left for the next look.
        let mut deferred = false;
        for (sub, in_new) in [("cur", false), ("new", true)] {
            for name in list_files(&self.dir.join(sub))? {
                if in_new && !self.readonly {
                    return Ok(self.full_scan_needed(4)); // a delivery (or a file left there) for the scan to move
                }
                let Some(&i) = by_base.get(base_of(&name)) else {
                    // Not in the view: only a message appended to the uidlist will do.
                    match new_by_base.get(base_of(&name)).and_then(|&j| new_found.get_mut(j)) {
                        Some(slot @ None) if !in_new => *slot = Some(name),
                        _ if in_flight(&self.dir, Some(&self.dir.join(sub).join(&name))) => deferred = true,
                        _ => return Ok(self.full_scan_needed(5)),
                    }
                    continue;
                };
                let (Some(slot), Some(f), Some(info)) =
                    (found.get_mut(i), self.files.get(i), self.msgs.get(i))
                else {
                    return Ok(self.full_scan_needed(6));
                };
                if slot.is_some() || f.gone {
                    return Ok(self.full_scan_needed(7)); // the same base twice, or back after it was gone
                }
                if (*f.name != *name || f.in_new != in_new)
                    && (self.journal.entry(info.uid).is_none_or(|(_, l)| l != letters(&name))
                        || extra_letters(&name, &self.keywords).chars().any(|c| c.is_ascii_lowercase()))
                {
                    if !in_flight(&self.dir, Some(&self.dir.join(sub).join(&name))) {
                        return Ok(self.full_scan_needed(8));
                    }
                    // Seen as it was until its STORE records it.
                    deferred = true;
                    *slot = Some((f.name.to_string(), f.in_new));
                    continue;
                }
                *slot = Some((name, in_new));
            }
        }
        let mut msgs = Vec::with_capacity(self.msgs.len() + appended.len());
        let mut mods: HashMap<Uid, u64> = HashMap::new();
        for ((info, f), seen) in self.msgs.iter().zip(&self.files).zip(found) {
            let (name, in_new) = match seen {
                Some(s) => s,
                None if f.gone || self.journal.was_expunged(info.uid) => continue,
                // Seen as it was until its EXPUNGE records it.
                None if in_flight(&self.dir, None) => {
                    deferred = true;
                    (f.name.to_string(), f.in_new)
                }
                None => return Ok(self.full_scan_needed(9)), // removed by someone who did not say so
            };
            if let Some((m, l)) = self.journal.entry(info.uid)
                && l == letters(&name)
            {
                mods.insert(info.uid, m);
            }
            msgs.push(Present { uid: info.uid, name, in_new, size: info.size, moved: false, recent: false });
        }
        let old = msgs.len();
        let mut next = self.uidnext;
        for (e, name) in appended.iter().zip(new_found) {
            next = next.max(e.uid.saturating_add(1));
            // Not seen: expunged since, or missed by readdir during a rename; only the full scan
            // can tell (skipping it would lose it from the view: merge adds above its last UID).
            let Some(name) = name else { return Ok(self.full_scan_needed(16)) };
            if extra_letters(&name, &self.keywords).chars().any(|c| c.is_ascii_lowercase())
                || self.journal.entry(e.uid).is_some_and(|(_, l)| l != letters(&name))
            {
                return Ok(self.full_scan_needed(10));
            }
            let size = match e.w.or_else(|| w_size(&name)) {
                Some(s) => s,
                None => match crlf_size(&self.dir.join("cur").join(&name)) {
                    Ok(s) => s,
                    Err(_) => return Ok(self.full_scan_needed(11)),
                },
            };
            msgs.push(Present { uid: e.uid, name, in_new: false, size, moved: false, recent: false });
        }
        if let Some(added) = msgs.get_mut(old..)
            && !added.is_empty()
        {
            self.take_in(added, &mut mods)?;
        }
        let scan = Scan { validity: self.uidvalidity, next, msgs, keywords: self.keywords.clone() };
        let changes = self.merge(scan, expunges, &mods);
        self.seen_highest = self.seen_highest.max(seen_highest);
        (self.stamp, self.stamp_fresh) = (stamp, fresh || deferred);
        Ok(Some(changes))
    }

    /// Logs why the quick sync gave way (`why` numbers the cases above) and says so.
    fn full_scan_needed<T>(&self, why: u32) -> Option<T> {
        log::debug!("imap: full scan folder={} case={why}", self.name);
        None
    }

    /// The uidlist entries appended since the view's last look (Some(empty): the list is as it
    /// was); None when the list changed otherwise (rewritten, a new UIDVALIDITY, gone).
    fn appended_entries(&self, now: &Stamp) -> Result<Option<Vec<Entry>>, FolderError> {
        let ((ino, len, ..), (was_ino, was_len, ..)) = (now.list, self.stamp.list);
        if now.list == Stamp::default().list || ino != was_ino || len < was_len {
            return Ok(self.full_scan_needed(12));
        }
        if now.list == self.stamp.list {
            return Ok(Some(Vec::new()));
        }
        if len == was_len {
            return Ok(self.full_scan_needed(13)); // touched in place: not by an append
        }
        let Some(entries) = uidlist::read_appended(&self.dir, ino, was_len, len)? else {
            return Ok(self.full_scan_needed(14));
        };
        if entries.first().is_some_and(|e| e.uid < self.uidnext) {
            return Ok(self.full_scan_needed(15));
        }
        Ok(Some(entries))
    }

    /// Messages appended by others, new to this view: the first view to take them in claims them
    /// as `\Recent` (RFC 3501 2.3.2; a read-only one only reports what is unclaimed) and gives
    /// them their first mod-sequence (RFC 7162 3.1) if no scan did yet, under the uidlist lock;
    /// when neither is left to do, no lock is needed.
    fn take_in(&mut self, added: &mut [Present], mods: &mut HashMap<Uid, u64>) -> Result<(), FolderError> {
        let last = added.last().map_or(0, |p| p.uid);
        let unclaimed = scan::first_unclaimed(&self.dir).is_some_and(|f| f <= last);
        let unrecorded = added.iter().any(|p| self.journal.entry(p.uid).is_none());
        let first = if (unclaimed && !self.readonly) || unrecorded {
            let lock = DotLock::acquire(&self.dir.join(UIDLIST))?;
            self.journal.refresh(&self.dir)?;
            let missing: Vec<(Uid, &str)> = added
                .iter()
                .filter(|p| self.journal.entry(p.uid).is_none())
                .map(|p| (p.uid, p.name.as_str()))
                .collect();
            if !missing.is_empty() {
                self.journal.record(&self.dir, &missing)?;
            }
            let first = if self.readonly {
                scan::first_unclaimed(&self.dir).unwrap_or(Uid::MAX)
            } else {
                scan::claim_up_to(&self.dir, last)
            };
            drop(lock);
            self.journal.make_durable()?;
            first
        } else {
            scan::first_unclaimed(&self.dir).unwrap_or(Uid::MAX)
        };
        for p in added.iter_mut() {
            p.recent = p.uid >= first;
            if let Some((m, l)) = self.journal.entry(p.uid)
                && l == letters(&p.name)
            {
                mods.insert(p.uid, m);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::{Path, PathBuf};

    use super::MaildirFolder;
    use crate::store::folder::{DELETED, FLAGGED, FlagOp, Flags, Folder, SEEN, Store};
    use crate::store::imapdir::{Inbox, MaildirStore};

    const MSG: &[u8] = b"Subject: hi\r\n\r\nbody\r\n";

    fn flags(system: u8) -> Flags {
        Flags { system, keywords: Vec::new() }
    }

    /// A Maildir INBOX with `n` appended messages, and two read-write views of it.
    fn two_views(n: usize) -> (tempfile::TempDir, PathBuf, MaildirStore, MaildirFolder, MaildirFolder) {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("Maildir");
        let mut s = MaildirStore::new(root.clone(), Inbox::Maildir);
        for _ in 0..n {
            s.append("INBOX", &Flags::default(), None, MSG).unwrap();
        }
        let a = MaildirFolder::open("INBOX", &root, &root, false).unwrap();
        let b = MaildirFolder::open("INBOX", &root, &root, false).unwrap();
        (d, root, s, a, b)
    }

    fn uids(f: &MaildirFolder) -> Vec<u32> {
        f.messages().iter().map(|m| m.uid).collect()
    }

    fn ident(p: &Path) -> (u64, u64) {
        use std::os::unix::fs::MetadataExt;
        let m = fs::metadata(p).unwrap();
        (m.ino(), m.size())
    }

    #[test]
    fn renames_and_expunges_by_another_view_need_no_full_scan() {
        let (_d, root, _s, mut a, mut b) = two_views(4);
        let scans = b.full_scans;
        a.store(&[0, 2], FlagOp::Add, &flags(SEEN)).unwrap();
        let c = b.sync(true).unwrap();
        assert_eq!(c.flags, vec![0, 2]);
        assert_eq!(b.messages()[2].flags.system, SEEN);
        assert_eq!(b.messages()[0].modseq, a.messages()[0].modseq);
        assert_eq!(b.highest_modseq(), a.highest_modseq());
        // Nothing more: nothing to tell.
        assert_eq!(b.sync(true).unwrap(), Default::default());
        // b's file names follow: reading and storing need no search.
        assert_eq!(b.file(0), a.file(0));
        b.store(&[0], FlagOp::Add, &flags(FLAGGED)).unwrap();
        assert_eq!(a.sync(true).unwrap().flags, vec![0]);
        // An expunge: b not allowed to announce it yet keeps it (gone), then announces it.
        let list = root.join("dovecot-uidlist");
        let before = ident(&list);
        a.store(&[1], FlagOp::Add, &flags(DELETED)).unwrap();
        assert_eq!(a.expunge(None).unwrap(), vec![2]);
        let h = a.highest_modseq().unwrap();
        let c = b.sync(false).unwrap();
        assert!(c.expunged.is_empty());
        assert_eq!(b.file(1), None);
        assert!(b.highest_modseq().unwrap() >= h);
        assert_eq!(b.sync(true).unwrap().expunged, vec![2]);
        assert_eq!(uids(&b), vec![1, 3, 4]);
        assert_eq!(b.full_scans, scans, "all taken in without the lock");
        assert_eq!(a.full_scans, 1, "only the open");
        // The expunge left the uidlist alone (one of four gone: below Dovecot's rewrite point).
        assert_eq!(ident(&list), before);
        // A fresh view (full scan) agrees.
        let c = MaildirFolder::open("INBOX", &root, &root, true).unwrap();
        assert_eq!(uids(&c), vec![1, 3, 4]);
        assert_eq!(c.messages()[0].flags.system, SEEN | FLAGGED);
    }

    #[test]
    fn changes_by_other_programs_take_the_full_scan() {
        // Eight, so that one gone leaves the uidlist alone (Dovecot's rule, scan.rs).
        let (_d, root, mut s, mut a, mut b) = two_views(8);
        // A rename the journal does not know: found, with a new mod-sequence.
        let m = b.messages()[0].modseq;
        let f = a.file(0).unwrap();
        fs::rename(&f, f.to_str().unwrap().replace(":2,", ":2,F")).unwrap();
        let (sa, sb) = (a.full_scans, b.full_scans);
        assert_eq!(b.sync(true).unwrap().flags, vec![0]);
        assert_eq!(b.full_scans, sb + 1);
        assert!(b.messages()[0].modseq > m);
        // Once recorded, the other view takes it in without one.
        assert_eq!(a.sync(true).unwrap().flags, vec![0]);
        assert_eq!((a.full_scans, a.messages()[0].modseq), (sa, b.messages()[0].modseq));
        // An unlink nobody recorded.
        fs::remove_file(a.file(1).unwrap()).unwrap();
        let c = b.sync(true).unwrap();
        assert_eq!((c.expunged, b.full_scans), (vec![2], sb + 2));
        assert_eq!(a.sync(true).unwrap().expunged, vec![2]);
        assert_eq!(a.full_scans, sa, "recorded by b's scan");
        // A new file in cur/ (another program's, without a UID yet), and a delivery to new/.
        fs::write(root.join("cur/1800000000.M1P1.h:2,S"), MSG).unwrap();
        let c = b.sync(true).unwrap();
        assert_eq!((c.exists, b.full_scans), (Some(8), sb + 3));
        assert_eq!(b.messages()[7].flags.system, SEEN);
        fs::write(root.join("new/1800000001.M1P1.h"), MSG).unwrap();
        assert_eq!(b.sync(true).unwrap().exists, Some(9));
        assert_eq!(b.full_scans, sb + 4);
        assert!(fs::read_dir(root.join("new")).unwrap().next().is_none());
        // An APPEND: its uidlist line is read, no scan; \Recent for the first view only.
        s.append("INBOX", &flags(SEEN), None, MSG).unwrap();
        let c = a.sync(true).unwrap();
        assert_eq!((c.exists, a.full_scans), (Some(10), sa));
        assert_eq!(uids(&a), vec![1, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
        let (na, ma) = (a.messages()[9].clone(), a.highest_modseq());
        assert!(na.recent && na.flags.system == SEEN && na.size == MSG.len() as u64);
        assert_eq!(b.sync(true).unwrap().exists, Some(10));
        assert_eq!(b.full_scans, sb + 4);
        let nb = &b.messages()[9];
        assert!(!nb.recent);
        assert_eq!((nb.uid, nb.modseq, nb.internal_date), (na.uid, na.modseq, na.internal_date));
        assert_eq!(b.highest_modseq(), ma);
        let fresh = MaildirFolder::open("INBOX", &root, &root, true).unwrap();
        assert_eq!(uids(&fresh), uids(&a));
        assert_eq!(fresh.messages()[0].flags.system, FLAGGED);
    }

    #[test]
    fn a_change_seen_half_done_waits_for_the_lock_holder() {
        let (_d, root, _s, a, mut b) = two_views(8);
        let lock = root.join("dovecot-uidlist.lock");
        // Renamed, not recorded yet, the lock held (a STORE between its rename and its record).
        let f = a.file(0).unwrap();
        fs::rename(&f, f.to_str().unwrap().replace(":2,", ":2,S")).unwrap();
        fs::write(&lock, format!("{}:{}", std::process::id(), crate::config::system_hostname())).unwrap();
        let scans = b.full_scans;
        assert_eq!(b.sync(true).unwrap(), Default::default());
        assert_eq!((b.full_scans, b.messages()[0].flags.system), (scans, 0));
        assert!(b.changed(), "left for the next look");
        // Still readable where it is now.
        assert_eq!(b.read(0).unwrap(), MSG);
        // Nobody records it (another program's): once the lock is free, the full scan.
        fs::remove_file(&lock).unwrap();
        assert_eq!(b.sync(true).unwrap().flags, vec![0]);
        assert_eq!((b.full_scans, b.messages()[0].flags.system), (scans + 1, SEEN));
    }

    #[test]
    fn uidlist_is_rewritten_once_a_quarter_is_gone_and_uids_hold() {
        let (_d, root, _s, mut a, _b) = two_views(8);
        let list = root.join("dovecot-uidlist");
        a.store(&[0], FlagOp::Add, &flags(DELETED)).unwrap();
        a.expunge(None).unwrap();
        a.sync(true).unwrap();
        // A full scan keeps the list while 7 of 8 are left...
        let before = ident(&list);
        let v = MaildirFolder::open("INBOX", &root, &root, false).unwrap();
        assert_eq!(ident(&list), before);
        assert_eq!(uids(&v), vec![2, 3, 4, 5, 6, 7, 8]);
        // ...and rewrites it without the gone entries at 6 of 8.
        a.store(&[0], FlagOp::Add, &flags(DELETED)).unwrap();
        a.expunge(None).unwrap();
        let v = MaildirFolder::open("INBOX", &root, &root, false).unwrap();
        assert_eq!(uids(&v), vec![3, 4, 5, 6, 7, 8]);
        let text = fs::read_to_string(&list).unwrap();
        assert!(!text.contains("\n1 ") && !text.contains("\n2 ") && text.contains("\n3 "), "{text}");
        assert!(text.lines().next().unwrap().contains(" N9"), "{text}");
        assert_eq!(v.uidnext(), 9);
    }
}
