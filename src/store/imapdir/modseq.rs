//! Mod-sequences of a Maildir folder (RFC 7162 CONDSTORE): the journal `buzon-modseq` beside the
//! uidlist. Each line gives a message its mod-sequence and the flag letters it had then
//! (`<uid> <modseq> <letters>`, `-` for none); `x <uid> <modseq>` records an expunge. Later lines
//! override earlier ones; the highest mod-sequence is the largest in the file. Lines are only ever
//! appended under the uidlist lock, so readers that keep their place read only what was added
//! since; the writer makes them durable (fdatasync) once it has let the lock go, before its command
//! answers (`make_durable`), so that sessions do not wait on each other's disk flushes; a journal grown to several times the live entries is rewritten compactly
//! (a new file renamed over the old one, which readers notice by its inode).
//!
//! A change made by buzon is recorded by the session that makes it; a change made by another
//! program (a rename by Dovecot or mutt, a delivery) is found by the next scan, which compares each
//! file's flag letters with the journal's and records what differs. Messages changed by one
//! command (or found changed by one scan) share one new mod-sequence (RFC 7162 3.1: every change
//! gets a mod-sequence greater than any before it; several messages may share one). The journal
//! is a cache in one respect only: lost, it is started again above nothing, and the folder's
//! UIDVALIDITY is what clients trust; it never holds a message or a flag that is not also in the
//! file names.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;
#[cfg(test)]
use std::path::PathBuf;

use super::msgfile::{fsync_dir, info_of, temp, write_durably};
use crate::store::folder::{FolderError, Uid};

pub const JOURNAL: &str = "buzon-modseq";
const TMP: &str = "buzon-modseq.tmp";
/// First line: `buzon-modseq 1 <uidvalidity>`; a journal of another UIDVALIDITY is started anew.
const MAGIC: &str = "buzon-modseq 1";
/// Expunge records kept through a compaction (the newest), for VANISHED answers.
const KEEP_EXPUNGED: usize = 10_000;

/// The flag letters of a file name as the journal writes them.
pub fn letters(name: &str) -> &str {
    match info_of(name) {
        Some("") | None => "-",
        Some(l) => l,
    }
}

/// One folder's journal, as far as it was read.
#[derive(Debug, Default)]
pub struct Journal {
    /// uid -> (modseq, letters).
    live: HashMap<Uid, (u64, Box<str>)>,
    /// Expunged uid -> modseq of the expunge.
    expunged: HashMap<Uid, u64>,
    highest: u64,
    /// Identity and length of the file as read (inode, bytes).
    read: Option<(u64, u64)>,
    /// Lines in the file.
    lines: usize,
    /// The UIDVALIDITY the journal's UIDs belong to.
    validity: Option<u32>,
    /// Appended to, not yet made durable.
    unsynced: Option<File>,
}

impl Journal {
    pub fn highest(&self) -> u64 {
        self.highest
    }

    /// The UIDVALIDITY the journal belongs to (None: not made yet, or not read).
    pub fn validity(&self) -> Option<u32> {
        self.validity
    }

    /// A live message's mod-sequence and the flag letters it had then.
    pub fn entry(&self, uid: Uid) -> Option<(u64, &str)> {
        self.live.get(&uid).map(|e| (e.0, &*e.1))
    }

    /// Whether the journal records the message's expunge.
    pub fn was_expunged(&self, uid: Uid) -> bool {
        self.expunged.contains_key(&uid)
    }

    #[cfg(test)]
    pub fn modseq(&self, uid: Uid) -> Option<u64> {
        self.live.get(&uid).map(|e| e.0)
    }

    /// UIDs expunged after `since`, in order (for QRESYNC's VANISHED, RFC 7162 3.2.5).
    #[cfg(test)]
    pub fn expunged_since(&self, since: u64) -> Vec<Uid> {
        let mut v: Vec<Uid> = self.expunged.iter().filter(|(_, m)| **m > since).map(|(u, _)| *u).collect();
        v.sort_unstable();
        v
    }

    /// Reads what was appended since the last read (all of it after a compaction or the first
    /// time). A line that does not parse (a torn last line after a crash) is skipped.
    pub fn refresh(&mut self, dir: &Path) -> Result<(), FolderError> {
        let path = dir.join(JOURNAL);
        let mut f = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                *self = Journal::default();
                return Ok(());
            }
            Err(e) => return Err(temp("cannot read", &path, &e)),
        };
        let meta = f.metadata().map_err(|e| temp("cannot read", &path, &e))?;
        let from = match self.read {
            Some((ino, len)) if ino == meta.ino() && len <= meta.len() => len,
            _ => {
                *self = Journal::default();
                0
            }
        };
        if from == meta.len() {
            return Ok(());
        }
        f.seek(SeekFrom::Start(from)).map_err(|e| temp("cannot read", &path, &e))?;
        let mut text = String::new();
        f.take(meta.len() - from).read_to_string(&mut text).map_err(|e| temp("cannot read", &path, &e))?;
        // Only whole lines count; a partial last one is read again next time.
        let whole = text.rfind('\n').map_or(0, |i| i + 1);
        for line in text.get(..whole).unwrap_or_default().lines() {
            self.apply(line);
        }
        self.read = Some((meta.ino(), from + whole as u64));
        Ok(())
    }

    fn apply(&mut self, line: &str) {
        self.lines += 1;
        if let Some(v) = line.strip_prefix(MAGIC) {
            self.validity = v.trim().parse().ok();
            return;
        }
        let mut it = line.split(' ');
        let (a, b, c) = (it.next(), it.next(), it.next());
        match (a, b, c) {
            (Some("x"), Some(uid), Some(m)) => {
                if let (Ok(uid), Ok(m)) = (uid.parse::<Uid>(), m.parse::<u64>()) {
                    // UID 0 (no message) only carries the highest through a compaction.
                    if uid != 0 {
                        self.live.remove(&uid);
                        self.expunged.insert(uid, m);
                    }
                    self.highest = self.highest.max(m);
                }
            }
            (Some(uid), Some(m), Some(l)) => {
                if let (Ok(uid), Ok(m)) = (uid.parse::<Uid>(), m.parse::<u64>()) {
                    self.live.insert(uid, (m, l.into()));
                    self.highest = self.highest.max(m);
                }
            }
            _ => {}
        }
    }

    /// Brings the journal in step with the folder's files (uid, file name), as a scan found them
    /// under the uidlist lock: new and changed messages, and expunged ones, get one new
    /// mod-sequence. Returns the modseq of every present message.
    pub fn sync(
        &mut self,
        dir: &Path,
        validity: u32,
        present: &[(Uid, &str)],
    ) -> Result<HashMap<Uid, u64>, FolderError> {
        self.refresh(dir)?;
        if self.validity.is_some_and(|v| v != validity) || (self.read.is_some() && self.validity.is_none()) {
            remove(dir);
            *self = Journal::default();
        }
        self.validity = Some(validity);
        let mut changed: Vec<(Uid, &str)> = Vec::new();
        for &(uid, name) in present {
            let l = letters(name);
            if self.live.get(&uid).is_none_or(|e| &*e.1 != l) {
                changed.push((uid, l));
            }
        }
        let here: std::collections::HashSet<Uid> = present.iter().map(|p| p.0).collect();
        let mut gone: Vec<Uid> = self.live.keys().filter(|u| !here.contains(u)).copied().collect();
        gone.sort_unstable();
        if !changed.is_empty() || !gone.is_empty() {
            let m = self.highest + 1;
            let mut text = String::new();
            for (uid, l) in &changed {
                text.push_str(&format!("{uid} {m} {l}\n"));
            }
            for uid in &gone {
                text.push_str(&format!("x {uid} {m}\n"));
            }
            self.append(dir, &text)?;
            if self.lines > 2 * present.len() + 1000 {
                self.compact(dir)?;
            }
        }
        Ok(present.iter().map(|&(uid, _)| (uid, self.live.get(&uid).map_or(0, |e| e.0))).collect())
    }

    /// Records changes this session made (uid, new file name) under one new mod-sequence, which it
    /// returns. The caller holds the uidlist lock.
    pub fn record(&mut self, dir: &Path, changed: &[(Uid, &str)]) -> Result<u64, FolderError> {
        self.refresh(dir)?;
        if self.validity.is_none() {
            // Not made yet (or started anew): the next scan records everything.
            return Ok(self.highest);
        }
        let m = self.highest + 1;
        let mut text = String::new();
        for (uid, name) in changed {
            text.push_str(&format!("{uid} {m} {}\n", letters(name)));
        }
        self.append(dir, &text)?;
        Ok(m)
    }

    /// Records the expunge of messages this session removed, under one new mod-sequence (None:
    /// the journal is not made yet; the next scan records it). The caller holds the uidlist lock.
    pub fn record_expunged(&mut self, dir: &Path, uids: &[Uid]) -> Result<Option<u64>, FolderError> {
        self.refresh(dir)?;
        // Only what is still live: a scan by another session may have recorded it already.
        let uids: Vec<&Uid> = uids.iter().filter(|u| self.live.contains_key(u)).collect();
        if self.validity.is_none() || uids.is_empty() {
            return Ok(None);
        }
        let m = self.highest + 1;
        let mut text = String::new();
        for uid in uids {
            text.push_str(&format!("x {uid} {m}\n"));
        }
        self.append(dir, &text)?;
        Ok(Some(m))
    }

    /// Makes what this journal appended durable; the caller has let the uidlist lock go (or holds
    /// it: correct either way, only slower). Done at the latest when the journal is dropped.
    pub fn make_durable(&mut self) -> Result<(), FolderError> {
        match self.unsynced.take() {
            Some(f) => f.sync_data().map_err(|e| temp("cannot write", Path::new(JOURNAL), &e)),
            None => Ok(()),
        }
    }

    /// Appends whole lines (made durable by `make_durable`) and reads them back into the map.
    fn append(&mut self, dir: &Path, text: &str) -> Result<(), FolderError> {
        let path = dir.join(JOURNAL);
        let new = !path.exists();
        let mut f = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
            .map_err(|e| temp("cannot open", &path, &e))?;
        let mut all = String::new();
        if new {
            all.push_str(&format!("{MAGIC} {}\n", self.validity.unwrap_or(0)));
        }
        all.push_str(text);
        f.write_all(all.as_bytes()).map_err(|e| temp("cannot write", &path, &e))?;
        if new {
            f.sync_data().map_err(|e| temp("cannot write", &path, &e))?;
            fsync_dir(dir)?;
        } else {
            self.unsynced = Some(f);
        }
        self.refresh(dir)
    }

    /// Rewrites the journal with one line per live message and the newest expunge records.
    fn compact(&mut self, dir: &Path) -> Result<(), FolderError> {
        let mut live: Vec<(&Uid, &(u64, Box<str>))> = self.live.iter().collect();
        live.sort_unstable_by_key(|e| *e.0);
        let mut gone: Vec<(&Uid, &u64)> = self.expunged.iter().collect();
        gone.sort_unstable_by_key(|e| (std::cmp::Reverse(*e.1), *e.0));
        gone.truncate(KEEP_EXPUNGED);
        gone.sort_unstable_by_key(|e| (*e.1, *e.0));
        let mut text = format!("{MAGIC} {}\n", self.validity.unwrap_or(0));
        // The highest stays the highest even when its message is gone and its record dropped.
        text.push_str(&format!("x 0 {}\n", self.highest));
        for (uid, m) in gone {
            text.push_str(&format!("x {uid} {m}\n"));
        }
        for (uid, (m, l)) in live {
            text.push_str(&format!("{uid} {m} {l}\n"));
        }
        self.make_durable()?;
        write_durably(dir, JOURNAL, TMP, text.as_bytes())?;
        let validity = self.validity;
        *self = Journal::default();
        self.validity = validity;
        self.refresh(dir)
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        if let Err(e) = self.make_durable() {
            log::warn!("imap: {e}");
        }
    }
}

/// Where the journal of `dir` is.
#[cfg(test)]
pub fn journal_path(dir: &Path) -> PathBuf {
    dir.join(JOURNAL)
}

/// Removes a journal (a folder whose uidlist was made anew starts its mod-sequences again).
pub fn remove(dir: &Path) {
    let _ = fs::remove_file(dir.join(JOURNAL));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scans_and_records_give_growing_modseqs() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path();
        let mut j = Journal::default();
        let m = j.sync(dir, 7, &[(1, "a:2,S"), (2, "b:2,")]).unwrap();
        assert_eq!((m[&1], m[&2], j.highest()), (1, 1, 1));
        // Nothing changed: no new line, same values.
        let len = fs::metadata(journal_path(dir)).unwrap().len();
        j.sync(dir, 7, &[(1, "a:2,S"), (2, "b:2,")]).unwrap();
        assert_eq!(fs::metadata(journal_path(dir)).unwrap().len(), len);
        // Another reader sees this one's record.
        let m = j.record(dir, &[(2, "b:2,F")]).unwrap();
        assert_eq!(m, 2);
        let mut other = Journal::default();
        let seen = other.sync(dir, 7, &[(1, "a:2,S"), (2, "b:2,F")]).unwrap();
        assert_eq!((seen[&1], seen[&2], other.highest()), (1, 2, 2));
        // A rename by another program and an expunge, found by a scan.
        let seen = other.sync(dir, 7, &[(2, "b:2,FS"), (3, "c:2,")]).unwrap();
        assert_eq!((seen[&2], seen[&3], other.highest()), (3, 3, 3));
        assert_eq!(other.expunged_since(2), vec![1]);
        j.refresh(dir).unwrap();
        assert_eq!((j.modseq(2), j.modseq(1), j.highest()), (Some(3), None, 3));
        // A torn last line is not read until it is whole.
        let mut f = OpenOptions::new().append(true).open(journal_path(dir)).unwrap();
        f.write_all(b"2 9 F").unwrap();
        j.refresh(dir).unwrap();
        assert_eq!(j.modseq(2), Some(3));
        f.write_all(b"S\n").unwrap();
        j.refresh(dir).unwrap();
        assert_eq!((j.modseq(2), j.highest()), (Some(9), 9));
        // Another UIDVALIDITY: the UIDs mean other messages; started anew.
        let mut third = Journal::default();
        let seen = third.sync(dir, 8, &[(1, "z:2,")]).unwrap();
        assert_eq!((seen[&1], third.highest()), (1, 1));
    }

    #[test]
    fn compaction_keeps_values_and_the_highest() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path();
        let mut j = Journal::default();
        for i in 0..1100u32 {
            let name = if i % 2 == 0 { "a:2,S" } else { "a:2," };
            j.sync(dir, 7, &[(1, name), (2, "b:2,")]).unwrap();
        }
        j.sync(dir, 7, &[(1, "a:2,S")]).unwrap();
        let h = j.highest();
        assert!(fs::read_to_string(journal_path(dir)).unwrap().lines().count() < 1100);
        let mut fresh = Journal::default();
        fresh.refresh(dir).unwrap();
        assert_eq!((fresh.highest(), fresh.modseq(1), fresh.modseq(2)), (h, j.modseq(1), None));
        assert_eq!(fresh.expunged_since(0), vec![2]);
        // The first reader notices the new file.
        j.record(dir, &[(1, "a:2,")]).unwrap();
        fresh.refresh(dir).unwrap();
        assert_eq!(fresh.highest(), h + 1);
    }
}
