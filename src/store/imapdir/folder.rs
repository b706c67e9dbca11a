//! A selected Maildir folder (RFC 3501 6.3.1 SELECT / 6.3.2 EXAMINE): the session's view of its
//! messages in UID order, kept in step with the disk by `sync` (RFC 3501 7.4.1: EXPUNGE only when
//! allowed), flags in file names (STORE renames, RFC 3501 6.4.6), EXPUNGE by unlinking (6.4.3).
//! Per message it keeps the MessageInfo and the current file name, nothing else.

use std::collections::{HashMap, VecDeque};
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use super::lock::DotLock;
use super::modseq::Journal;
use super::msgfile::{
    CrlfReader, HOLD_EXPUNGED, MAX_KEYWORDS, apply, base_of, expunge_file, extra_letters, flags_from_name,
    fsync_dir, held_path, keyword_index, name_with_flags, read_crlf, sweep_held, temp,
};
use super::scan::{Scan, list_files, scan};
use super::uidlist::{self, UIDLIST, valid_keyword};
use crate::store::folder::{Changes, DELETED, FlagOp, Flags, Folder, FolderError, MessageInfo, Uid};

mod quick;

/// Bounds of the ENVELOPE/BODYSTRUCTURE cache of one selected folder.
const CACHE_ENTRIES: usize = 4096;
const CACHE_BYTES: usize = 1024 * 1024;

/// Where a message of the view lives.
#[derive(Debug)]
struct FileRef {
    /// The file name as last seen (base name plus ":2,<flags>").
    name: Box<str>,
    in_new: bool,
    /// Removed by someone else; still in the view until an expunge may be announced.
    gone: bool,
}

/// Cheap change detection: mtimes (with nanoseconds) of new/ and cur/, and the uidlist's identity.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Stamp {
    new: (i64, i64),
    cur: (i64, i64),
    list: (u64, u64, i64, i64),
}

impl Stamp {
    /// The stamp, and whether it is too fresh to trust (a change within the same timestamp tick
    /// would not show: Dovecot's "dirty" directories).
    fn take(dir: &Path) -> (Stamp, bool) {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
        let m = |p: PathBuf| fs::metadata(p).ok();
        let t =
            |md: &Option<fs::Metadata>| md.as_ref().map(|m| (m.mtime(), m.mtime_nsec())).unwrap_or((0, 0));
        let (new, cur, list) = (m(dir.join("new")), m(dir.join("cur")), m(dir.join(UIDLIST)));
        let s = Stamp {
            new: t(&new),
            cur: t(&cur),
            list: list.as_ref().map(|l| (l.ino(), l.size(), l.mtime(), l.mtime_nsec())).unwrap_or_default(),
        };
        let fresh = [s.new.0, s.cur.0, s.list.2].iter().any(|&secs| secs >= now - 1);
        (s, fresh)
    }
}

/// A bounded map of rendered ENVELOPE/BODYSTRUCTURE strings, oldest evicted first.
#[derive(Default)]
struct Cache {
    map: HashMap<(Uid, u8), String>,
    order: VecDeque<(Uid, u8)>,
    bytes: usize,
}

impl Cache {
    fn put(&mut self, key: (Uid, u8), value: String) {
        if value.len() > CACHE_BYTES / 4 {
            return;
        }
        self.bytes += value.len();
        if let Some(old) = self.map.insert(key, value) {
            self.bytes -= old.len();
        } else {
            self.order.push_back(key);
        }
        while self.map.len() > CACHE_ENTRIES || self.bytes > CACHE_BYTES {
            let Some(k) = self.order.pop_front() else { break };
            if let Some(v) = self.map.remove(&k) {
                self.bytes -= v.len();
            }
        }
    }
}

/// One selected Maildir folder.
pub struct MaildirFolder {
    name: String,
    dir: PathBuf,
    root: PathBuf,
    readonly: bool,
    uidvalidity: u32,
    uidnext: Uid,
    msgs: Vec<MessageInfo>,
    files: Vec<FileRef>,
    keywords: Vec<String>,
    stamp: Stamp,
    stamp_fresh: bool,
    cache: Cache,
    /// RFC 7162 mod-sequences (modseq.rs).
    journal: Journal,
    /// The journal's highest mod-sequence at the last scan.
    seen_highest: u64,
    /// Index in the view by base name, for the quick sync (quick.rs); None: to be made again.
    by_base: Option<HashMap<Box<str>, usize>>,
    /// Full scans under the lock so far (for tests and logs).
    full_scans: u64,
}

impl MaildirFolder {
    /// Opens the Maildir at `dir` as folder `name`. `root` holds the UIDVALIDITY counter.
    pub fn open(name: &str, dir: &Path, root: &Path, readonly: bool) -> Result<MaildirFolder, FolderError> {
        if !dir.join("cur").is_dir() {
            return Err(FolderError::NotFound);
        }
        let mut f = MaildirFolder {
            name: name.to_string(),
            dir: dir.to_path_buf(),
            root: root.to_path_buf(),
            readonly,
            uidvalidity: 0,
            uidnext: 1,
            msgs: Vec::new(),
            files: Vec::new(),
            keywords: Vec::new(),
            stamp: Stamp::default(),
            stamp_fresh: true,
            cache: Cache::default(),
            journal: Journal::default(),
            seen_highest: 0,
            by_base: None,
            full_scans: 0,
        };
        let (s, mods) = f.locked_scan()?;
        f.uidvalidity = s.validity;
        f.merge(s, true, &mods);
        if !readonly {
            sweep_held(dir, HOLD_EXPUNGED);
        }
        Ok(f)
    }

    /// Scans under the uidlist lock, bringing the mod-sequence journal in step (modseq.rs).
    fn locked_scan(&mut self) -> Result<(Scan, HashMap<Uid, u64>), FolderError> {
        self.full_scans += 1;
        // The journal's bulk is read before the lock (it is only appended to; a new view has it
        // all to read), so that under the lock only the last lines are.
        self.journal.refresh(&self.dir)?;
        let mut lock = DotLock::acquire(&self.dir.join(UIDLIST))?;
        let s = scan(&self.dir, &self.root, !self.readonly, &mut lock)?;
        let present: Vec<(Uid, &str)> = s.msgs.iter().map(|p| (p.uid, p.name.as_str())).collect();
        let mods = self.journal.sync(&self.dir, s.validity, &present)?;
        self.seen_highest = self.journal.highest();
        (self.stamp, self.stamp_fresh) = Stamp::take(&self.dir);
        drop(lock);
        self.journal.make_durable()?;
        Ok((s, mods))
    }

    fn path_of(&self, f: &FileRef) -> PathBuf {
        self.dir.join(if f.in_new { "new" } else { "cur" }).join(&*f.name)
    }

    /// Every message file by base name (used when a file is not where the view says: another
    /// session renamed it).
    fn index_files(&self) -> Result<HashMap<String, (String, bool)>, FolderError> {
        let mut map = HashMap::new();
        for (sub, in_new) in [("cur", false), ("new", true)] {
            for name in list_files(&self.dir.join(sub))? {
                map.entry(base_of(&name).to_string()).or_insert((name, in_new));
            }
        }
        Ok(map)
    }

    /// Folds a scan into the view; returns what to announce.
    fn merge(&mut self, s: Scan, expunges: bool, mods: &HashMap<Uid, u64>) -> Changes {
        self.keywords = s.keywords;
        self.uidnext = s.next;
        let max_uid = self.msgs.last().map_or(0, |m| m.uid);
        let mut changes = Changes::default();
        let old_msgs = std::mem::take(&mut self.msgs);
        let old_files = std::mem::take(&mut self.files);
        self.msgs.reserve(s.msgs.len());
        let mut present = s.msgs.into_iter().peekable();
        let mut removed = 0u32;
        for (i, (mut info, mut f)) in old_msgs.into_iter().zip(old_files).enumerate() {
            while present.next_if(|p| p.uid < info.uid).is_some() {}
            if let Some(p) = present.next_if(|p| p.uid == info.uid) {
                let flags = flags_from_name(&p.name, &self.keywords);
                if flags != info.flags {
                    changes.flags.push(self.msgs.len());
                    info.flags = flags;
                }
                info.modseq = mods.get(&info.uid).copied().unwrap_or(info.modseq);
                f = FileRef { name: p.name.into_boxed_str(), in_new: p.in_new, gone: false };
            } else if expunges {
                // RFC 3501 7.4.1: each number is relative to the view after the previous ones.
                let n = u32::try_from(i).unwrap_or(u32::MAX).saturating_add(1).saturating_sub(removed);
                changes.expunged.push(n);
                removed += 1;
                continue;
            } else {
                f.gone = true;
            }
            self.msgs.push(info);
            self.files.push(f);
        }
        let before = self.msgs.len();
        for p in present.filter(|p| p.uid > max_uid) {
            let path = self.dir.join(if p.in_new { "new" } else { "cur" }).join(&p.name);
            // INTERNALDATE: the file's mtime (as Dovecot), set to the APPEND date when given.
            let Ok(meta) = fs::metadata(&path) else { continue };
            self.msgs.push(MessageInfo {
                uid: p.uid,
                flags: flags_from_name(&p.name, &self.keywords),
                size: p.size,
                internal_date: meta.mtime(),
                recent: p.recent,
                modseq: mods.get(&p.uid).copied().unwrap_or(0),
            });
            self.files.push(FileRef { name: p.name.into_boxed_str(), in_new: p.in_new, gone: false });
        }
        if self.msgs.len() > before {
            changes.exists = Some(u32::try_from(self.msgs.len()).unwrap_or(u32::MAX));
        }
        if removed > 0 || self.msgs.len() > before {
            self.by_base = None;
        }
        changes
    }

    /// Renames message `i` to carry `op flags`; Ok(false) when its file is gone.
    fn set_flags(
        &mut self,
        i: usize,
        op: FlagOp,
        arg: &Flags,
        found: &mut Option<HashMap<String, (String, bool)>>,
    ) -> Result<bool, FolderError> {
        let cur = self.dir.join("cur");
        let (Some(info), Some(f)) = (self.msgs.get(i), self.files.get(i)) else { return Ok(true) };
        let want = apply(op, &info.flags, arg);
        if want == info.flags && !f.in_new {
            return Ok(true);
        }
        let to =
            name_with_flags(base_of(&f.name), &want, &self.keywords, &extra_letters(&f.name, &self.keywords));
        let mut result = fs::rename(self.path_of(f), cur.join(&to)).map(|()| (to, want));
        if matches!(&result, Err(e) if e.kind() == io::ErrorKind::NotFound) {
            // Renamed by another session: apply the change to the flags it has now; retry once.
            if found.is_none() {
                *found = Some(self.index_files()?);
            }
            let Some((actual, in_new)) = found.as_ref().and_then(|m| m.get(base_of(&f.name))).cloned() else {
                return Ok(false);
            };
            let now = flags_from_name(&actual, &self.keywords);
            let want = apply(op, &now, arg);
            let to = name_with_flags(
                base_of(&actual),
                &want,
                &self.keywords,
                &extra_letters(&actual, &self.keywords),
            );
            let from = self.dir.join(if in_new { "new" } else { "cur" }).join(&actual);
            result = fs::rename(&from, cur.join(&to)).map(|()| (to, want));
            if matches!(&result, Err(e) if e.kind() == io::ErrorKind::NotFound) {
                return Ok(false);
            }
        }
        let (to, want) = result.map_err(|e| temp("cannot rename in", &cur, &e))?;
        if let (Some(info), Some(f)) = (self.msgs.get_mut(i), self.files.get_mut(i)) {
            info.flags = want;
            *f = FileRef { name: to.into_boxed_str(), in_new: false, gone: false };
        }
        Ok(true)
    }
}

/// Gives letters to the keywords of `wanted` that `dir` has none for yet (the caller holds the
/// uidlist lock); returns the folder's keyword list. Letters are only ever added, never reused,
/// so existing file names keep their meaning. More than 26: Cannot.
pub fn add_keywords(dir: &Path, wanted: &[String]) -> Result<Vec<String>, FolderError> {
    let mut kw = uidlist::read_keywords(dir)?;
    let mut changed = false;
    for k in wanted {
        if keyword_index(&kw, k).is_some() {
            continue;
        }
        if !valid_keyword(k) {
            return Err(FolderError::Cannot(format!("invalid keyword {k}")));
        }
        if kw.len() >= MAX_KEYWORDS {
            return Err(FolderError::Cannot(format!("at most {MAX_KEYWORDS} keywords per mailbox")));
        }
        kw.push(k.clone());
        changed = true;
    }
    if changed {
        uidlist::write_keywords(dir, &kw)?;
    }
    Ok(kw)
}

impl Folder for MaildirFolder {
    fn name(&self) -> &str {
        &self.name
    }

    fn readonly(&self) -> bool {
        self.readonly
    }

    fn uidvalidity(&self) -> u32 {
        self.uidvalidity
    }

    fn uidnext(&self) -> Uid {
        self.uidnext
    }

    fn highest_modseq(&self) -> Option<u64> {
        // The view's: the largest of its messages' (and of what the journal held at its last scan,
        // which covers expunges).
        let view = self.msgs.iter().map(|m| m.modseq).max().unwrap_or(0);
        Some(view.max(self.seen_highest))
    }

    fn messages(&self) -> &[MessageInfo] {
        &self.msgs
    }

    fn keywords(&self) -> Vec<String> {
        self.keywords.iter().filter(|k| !k.is_empty()).cloned().collect()
    }

    fn sync(&mut self, expunges: bool) -> Result<Changes, FolderError> {
        let pending = expunges && self.files.iter().any(|f| f.gone);
        if !pending && !self.changed() {
            return Ok(Changes::default());
        }
        // Twice: a look in the middle of another session's change (a rename seen twice or not at
        // all by readdir, an APPEND that finished between the two reads) is usually clear the
        // next moment.
        for _ in 0..2 {
            if let Some(changes) = self.quick_sync(expunges)? {
                return Ok(changes);
            }
        }
        let (s, mods) = self.locked_scan()?;
        if s.validity != self.uidvalidity {
            // The list was rebuilt (removed or corrupt): this view's UIDs mean nothing any more.
            return Err(FolderError::Temp(format!(
                "UIDVALIDITY of {} changed from {} to {}",
                self.name, self.uidvalidity, s.validity
            )));
        }
        Ok(self.merge(s, expunges, &mods))
    }

    /// A delivery renames into new/; flags and expunges rename and unlink in cur/; the folder's
    /// own directory, for the journal's appends and the uidlist lock's release, which is when a
    /// change the quick sync left for later (folder/quick.rs `in_flight`) is recorded.
    fn watch_paths(&self) -> Vec<PathBuf> {
        vec![self.dir.join("new"), self.dir.join("cur"), self.dir.clone()]
    }

    fn changed(&mut self) -> bool {
        if self.stamp_fresh {
            return true;
        }
        Stamp::take(&self.dir).0 != self.stamp
    }

    fn read(&mut self, index: usize) -> Result<Vec<u8>, FolderError> {
        self.read_file(index, false)
    }

    fn read_header(&mut self, index: usize) -> Result<Vec<u8>, FolderError> {
        self.read_file(index, true)
    }

    fn reader(&mut self, index: usize) -> Result<Box<dyn Read>, FolderError> {
        let reader = self.with_file(index, |p| File::open(p).map(|f| CrlfReader::for_file(f, p)))?;
        Ok(Box::new(reader))
    }

    fn file(&self, index: usize) -> Option<PathBuf> {
        self.files.get(index).filter(|f| !f.gone).map(|f| self.path_of(f))
    }

    fn store(&mut self, indexes: &[usize], op: FlagOp, flags: &Flags) -> Result<(), FolderError> {
        if self.readonly {
            return Err(FolderError::ReadOnly);
        }
        if op != FlagOp::Remove && flags.keywords.iter().any(|k| keyword_index(&self.keywords, k).is_none()) {
            let _lock = DotLock::acquire(&self.dir.join(UIDLIST))?;
            self.keywords = add_keywords(&self.dir, &flags.keywords)?;
        }
        let mut found = None;
        let mut renamed = false;
        let mut changed: Vec<usize> = Vec::new();
        // RFC 2180 4.2.1: a message another session expunged (this one not yet told) is left
        // alone, and the STORE succeeds for the others, as Dovecot does.
        for &i in indexes {
            if self.files.get(i).is_none_or(|f| f.gone) {
                continue;
            }
            let before = self.files.get(i).map(|f| f.name.clone());
            if self.set_flags(i, op, flags, &mut found)?
                && self.files.get(i).map(|f| &f.name) != before.as_ref()
            {
                renamed = true;
                changed.push(i);
            }
        }
        if renamed {
            fsync_dir(&self.dir.join("cur"))?;
        }
        // RFC 7162 3.1: the changed messages get a new mod-sequence (a move from new/ to cur/
        // with the same flags gets one too: harmless).
        if !changed.is_empty() {
            let lock = DotLock::acquire(&self.dir.join(UIDLIST))?;
            let names: Vec<(Uid, String)> = changed
                .iter()
                .filter_map(|&i| Some((self.msgs.get(i)?.uid, self.files.get(i)?.name.to_string())))
                .collect();
            let refs: Vec<(Uid, &str)> = names.iter().map(|(u, n)| (*u, n.as_str())).collect();
            let m = self.journal.record(&self.dir, &refs)?;
            drop(lock);
            self.journal.make_durable()?;
            for &i in &changed {
                if let Some(info) = self.msgs.get_mut(i) {
                    info.modseq = m;
                }
            }
        }
        Ok(())
    }

    fn expunge(&mut self, uids: Option<&[Uid]>) -> Result<Vec<u32>, FolderError> {
        if self.readonly {
            return Err(FolderError::ReadOnly);
        }
        let mut only: Option<Vec<Uid>> = uids.map(<[Uid]>::to_vec);
        if let Some(u) = only.as_mut() {
            u.sort_unstable();
        }
        let mut found: Option<HashMap<String, (String, bool)>> = None;
        let mut out = Vec::new();
        let mut error = None;
        let old_msgs = std::mem::take(&mut self.msgs);
        let old_files = std::mem::take(&mut self.files);
        let mut removed = 0u32;
        let mut taken: Vec<Uid> = Vec::new();
        for (i, (info, f)) in old_msgs.into_iter().zip(old_files).enumerate() {
            let selected = info.flags.system & DELETED != 0
                && only.as_ref().is_none_or(|u| u.binary_search(&info.uid).is_ok());
            let gone = !selected
                || f.gone
                || match expunge_file(&self.dir, &self.path_of(&f), base_of(&f.name)) {
                    Ok(()) => true,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {
                        if found.is_none() {
                            found = Some(self.index_files()?);
                        }
                        match found.as_ref().and_then(|m| m.get(base_of(&f.name))) {
                            // Someone removed \Deleted meanwhile: it stays.
                            Some((actual, _))
                                if flags_from_name(actual, &self.keywords).system & DELETED == 0 =>
                            {
                                false
                            }
                            Some((actual, in_new)) => {
                                let p = self.dir.join(if *in_new { "new" } else { "cur" }).join(actual);
                                match expunge_file(&self.dir, &p, base_of(actual)) {
                                    Ok(()) => true,
                                    Err(e) if e.kind() == io::ErrorKind::NotFound => true,
                                    Err(e) => {
                                        error = Some(temp("cannot remove", &p, &e));
                                        false
                                    }
                                }
                            }
                            None => true,
                        }
                    }
                    Err(e) => {
                        error = Some(temp("cannot remove", &self.path_of(&f), &e));
                        false
                    }
                };
            if selected && gone {
                out.push(u32::try_from(i).unwrap_or(u32::MAX).saturating_add(1).saturating_sub(removed));
                removed += 1;
                if !f.gone {
                    taken.push(info.uid);
                }
            } else {
                self.msgs.push(info);
                self.files.push(f);
            }
        }
        if !out.is_empty() {
            self.by_base = None;
            fsync_dir(&self.dir.join("cur"))?;
            sweep_held(&self.dir, HOLD_EXPUNGED);
        }
        // RFC 7162 3.2.10: an expunge is a change with a mod-sequence; recorded here, it lets
        // the other views take it in without a full scan (quick.rs).
        // Not recorded (the lock not had in time): the next full scan of any view records it.
        if !taken.is_empty()
            && let Err(e) = DotLock::acquire(&self.dir.join(UIDLIST)).and_then(|lock| {
                self.journal.record_expunged(&self.dir, &taken)?;
                drop(lock);
                self.journal.make_durable()
            })
        {
            log::warn!("imap: expunge not recorded in the journal folder={} error={e}", self.name);
        }
        match error {
            Some(e) if out.is_empty() => Err(e),
            Some(e) => {
                log::warn!("imap: expunge incomplete folder={} error={e}", self.name);
                Ok(out)
            }
            None => Ok(out),
        }
    }

    fn cached(&self, index: usize, which: u8) -> Option<String> {
        let uid = self.msgs.get(index)?.uid;
        self.cache.map.get(&(uid, which)).cloned()
    }

    fn cache(&mut self, index: usize, which: u8, value: String) {
        if let Some(m) = self.msgs.get(index) {
            self.cache.put((m.uid, which), value);
        }
    }
}

impl MaildirFolder {
    fn read_file(&mut self, index: usize, header_only: bool) -> Result<Vec<u8>, FolderError> {
        self.with_file(index, |p| read_crlf(p, header_only))
    }

    /// Runs `f` on the message's file, looking for it again (another session may have moved it
    /// between new/ and cur/ or changed its flags) when it is not where the view says.
    fn with_file<T>(&mut self, index: usize, f: impl Fn(&Path) -> io::Result<T>) -> Result<T, FolderError> {
        let Some(file) = self.files.get(index) else {
            return Err(FolderError::Temp(format!("no message at index {index}")));
        };
        // RFC 2180 4.1.1: expunged by another session, this one not yet told: the data is still
        // there, held in tmp/ for a while.
        let held = |dir: &Path| match f(&held_path(dir, base_of(&file.name))) {
            Ok(m) => Ok(m),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(FolderError::Expunged),
            Err(e) => Err(temp("cannot read", &held_path(dir, base_of(&file.name)), &e)),
        };
        if file.gone {
            return held(&self.dir);
        }
        let path = self.path_of(file);
        match f(&path) {
            Ok(m) => Ok(m),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let map = self.index_files()?;
                let Some((actual, in_new)) = map.get(base_of(&file.name)) else {
                    return held(&self.dir);
                };
                let p = self.dir.join(if *in_new { "new" } else { "cur" }).join(actual);
                match f(&p) {
                    Ok(m) => Ok(m),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => held(&self.dir),
                    Err(e) => Err(temp("cannot read", &p, &e)),
                }
            }
            Err(e) => Err(temp("cannot read", &path, &e)),
        }
    }
}
