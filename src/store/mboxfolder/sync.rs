//! Keeping the mbox folder's index in step with the file (RFC 3501 7.4.1, 2.3.1.1): an append by
//! delivery is scanned from the last known message on; any other change (POP3, mutt, mail(1) or
//! another IMAP session rewrote the file) is a full reparse whose messages are matched to the index
//! by X-UID, or, for messages whose X-UID was never written, by fingerprint.

use std::collections::{HashMap, VecDeque};
use std::fs::{self, File};
use std::os::unix::fs::{FileExt, MetadataExt};

use super::lock::{Locked, io_error};
use super::scan::{self, ImapBase, Parsed};
use super::{Entry, FileState, MboxFolder, TAIL};
use crate::store::folder::{FolderError, MessageInfo, Uid};

/// The file's state now: stat figures and the bytes before its end.
pub(super) fn state_of(file: &File, meta: &fs::Metadata) -> FileState {
    let mut st = FileState::of(meta);
    let n = TAIL.min(meta.size());
    let mut tail = vec![0u8; n as usize];
    if file.read_exact_at(&mut tail, meta.size() - n).is_ok() {
        st.tail = tail;
    }
    st
}

impl MboxFolder {
    /// A cheap check: the path names another file, or the file's size or mtime moved.
    pub(super) fn file_changed(&self) -> bool {
        if self.force_reparse {
            return true;
        }
        match (fs::metadata(&self.path), &self.state) {
            (Ok(m), Some(s)) => !s.same_stat(&m),
            (Ok(_), None) => true,
            (Err(_), Some(_)) => true,
            (Err(_), None) => false,
        }
    }

    /// The handle reads go through no longer holds what was indexed (someone rewrote it in place).
    pub(super) fn handle_changed(&self) -> bool {
        match (self.file.as_ref().and_then(|f| f.metadata().ok()), &self.state) {
            (Some(m), Some(s)) => s.size != m.size() || s.mtime != (m.mtime(), m.mtime_nsec()),
            _ => true,
        }
    }

    /// Brings the index up to date with the locked file (`None`: there is no file). The view does
    /// not change: gone messages lose their location, new ones go to `pending`, flag changes by
    /// others are applied and queued in `flag_news`.
    pub(super) fn refresh(&mut self, lk: Option<&Locked>) -> Result<(), FolderError> {
        let Some(lk) = lk else {
            self.merge(Vec::new(), None, true, 0);
            self.state = None;
            self.file = None;
            self.file_base = None;
            self.first_from = 0;
            self.force_reparse = false;
            return Ok(());
        };
        let path = self.path.clone();
        let err = |e: std::io::Error| io_error("cannot read", &path, &e);
        let meta = lk.file.metadata().map_err(err)?;
        let unchanged = self.state.as_ref().is_some_and(|s| s.same_stat(&meta));
        if unchanged && !self.force_reparse {
            if self.file.is_none() {
                self.file = Some(lk.file.try_clone().map_err(err)?);
            }
            return Ok(());
        }
        let mtime = meta.mtime();
        let mut done = false;
        if !self.force_reparse
            && let Some((start, last)) = self.appended_from(&lk.file, &meta)
        {
            let sc = scan::scan(&lk.file, start).map_err(err)?;
            let fits = sc.msgs.first().is_some_and(|p| {
                p.loc.from == start
                    && p.fp == last.fp
                    && p.uid == last.file_uid
                    && p.flags == last.file_flags
                    && p.old == last.file_old
            });
            if fits {
                self.merge(sc.msgs, None, false, mtime);
                done = true;
            }
        }
        if !done {
            let sc = scan::scan(&lk.file, 0).map_err(err)?;
            let base = sc.msgs.first().and_then(|m| m.base.clone());
            self.first_from = sc.first_from;
            self.file_base = base.clone();
            self.merge(sc.msgs, base, true, mtime);
        }
        let meta = lk.file.metadata().map_err(err)?;
        self.state = Some(state_of(&lk.file, &meta));
        self.file = Some(lk.file.try_clone().map_err(err)?);
        self.force_reparse = false;
        Ok(())
    }

    /// Where to scan from when the file only grew: the last known message's From_ line (its
    /// separator may have changed), with that message's entry to check it against.
    fn appended_from(&self, file: &File, meta: &fs::Metadata) -> Option<(u64, Entry)> {
        let s = self.state.as_ref()?;
        if s.dev != meta.dev() || s.ino != meta.ino() || meta.size() <= s.size {
            return None;
        }
        let mut buf = vec![0u8; s.tail.len()];
        file.read_exact_at(&mut buf, s.size - s.tail.len() as u64).ok()?;
        if buf != s.tail {
            return None;
        }
        let last = self
            .entries
            .iter()
            .chain(self.pending.iter().map(|(_, e)| e))
            .filter(|e| e.loc.is_some())
            .max_by_key(|e| e.loc.map(|l| l.from))?;
        Some((last.loc?.from, last.clone()))
    }

    /// Folds scanned messages (file order) into the index. `full`: they are the whole file, so
    /// indexed messages not among them are gone. `base`: the first message's X-IMAPbase.
    fn merge(&mut self, parsed: Vec<Parsed>, base: Option<ImapBase>, full: bool, mtime: i64) {
        if let Some(b) = &base {
            self.adopt_base(b);
        }
        // (in view, index) of every indexed message still in the file.
        let mut by_uid: HashMap<Uid, (bool, usize)> = HashMap::new();
        let mut by_fp: HashMap<u64, VecDeque<(bool, usize)>> = HashMap::new();
        let view = self.infos.iter().zip(&self.entries).enumerate().map(|(i, (m, e))| (true, i, m, e));
        let pend = self.pending.iter().enumerate().map(|(i, (m, e))| (false, i, m, e));
        for (v, i, m, e) in view.chain(pend).filter(|x| x.3.loc.is_some()) {
            by_uid.insert(m.uid, (v, i));
            if e.file_uid.is_none() {
                by_fp.entry(e.fp).or_default().push_back((v, i));
            }
        }
        let mut matched_view = vec![false; self.entries.len()];
        let mut matched_pending = vec![false; self.pending.len()];
        let mut fresh = Vec::new();
        for p in parsed {
            let is_free = |&(v, i): &(bool, usize), mv: &[bool], mp: &[bool]| {
                !(if v { mv.get(i) } else { mp.get(i) }).copied().unwrap_or(true)
            };
            let same = |&(v, i): &(bool, usize)| {
                let (m, e) = if v {
                    (self.infos.get(i), self.entries.get(i))
                } else {
                    self.pending.get(i).map(|(m, e)| (m, e)).unzip()
                };
                m.zip(e).is_some_and(|(m, e)| e.fp == p.fp && m.size == p.size)
            };
            let mut hit = p
                .uid
                .and_then(|u| by_uid.get(&u).copied())
                .filter(|x| is_free(x, &matched_view, &matched_pending) && same(x));
            if hit.is_none()
                && let Some(q) = by_fp.get_mut(&p.fp)
            {
                while let Some(x) = q.pop_front() {
                    if is_free(&x, &matched_view, &matched_pending) && same(&x) {
                        hit = Some(x);
                        break;
                    }
                }
            }
            match hit {
                Some((true, i)) => {
                    matched_view[i] = true;
                    self.update(true, i, p);
                }
                Some((false, i)) => {
                    matched_pending[i] = true;
                    self.update(false, i, p);
                }
                None => fresh.push(p),
            }
        }
        if full {
            for (e, m) in self.entries.iter_mut().zip(&matched_view) {
                if !m {
                    e.loc = None;
                }
            }
            let mut it = matched_pending.iter();
            self.pending.retain(|_| it.next().copied().unwrap_or(false));
        }
        // After a UIDVALIDITY change (or at open) the file's X-UIDs are the truth; otherwise a
        // new message's X-UID must be above everything this session has numbered.
        let fresh_start = !self.opened || self.reset.is_some();
        let known = self.pending.iter().map(|(m, _)| m.uid);
        let mut prev = if self.reset.is_some() {
            known.max()
        } else {
            known.chain(self.infos.iter().map(|m| m.uid)).max()
        }
        .unwrap_or(0);
        let floor = if fresh_start { 1 } else { self.uidnext };
        for p in fresh {
            let uid = super::uid_for(p.uid, floor, prev, &mut self.uidnext);
            prev = uid;
            self.keywords.extend(p.flags.keywords.iter().cloned());
            let info = MessageInfo {
                uid,
                flags: p.flags.clone(),
                size: p.size,
                internal_date: p.date.unwrap_or(mtime),
                recent: !p.old,
                modseq: 0,
            };
            let entry =
                Entry { loc: Some(p.loc), fp: p.fp, file_uid: p.uid, file_flags: p.flags, file_old: p.old };
            self.pending.push((info, entry));
        }
    }

    /// X-IMAPbase of a full reparse: a new UIDVALIDITY means every message we know is gone and the
    /// file's are all new (RFC 3501 2.3.1.1).
    fn adopt_base(&mut self, b: &ImapBase) {
        let current = self.reset.map_or(self.uidvalidity, |(v, _)| v);
        if b.validity != current {
            if self.infos.is_empty() && self.reset.is_none() && self.pending.is_empty() {
                // Nothing announced under the old value (an empty INBOX, or at open).
                self.uidvalidity = b.validity;
            } else {
                let view_next = self.reset.map_or(self.uidnext, |(_, n)| n);
                for e in &mut self.entries {
                    e.loc = None;
                }
                self.pending.clear();
                self.reset = Some((b.validity, view_next));
            }
            self.uidnext = 1;
        }
        self.uidnext = self.uidnext.max(b.uidnext);
        self.keywords.extend(b.keywords.iter().cloned());
    }

    /// A scanned message is an indexed one: new location; the file's flags unless ours are
    /// unwritten.
    fn update(&mut self, in_view: bool, i: usize, p: Parsed) {
        let (info, e) = if in_view {
            match (self.infos.get_mut(i), self.entries.get_mut(i)) {
                (Some(m), Some(e)) => (m, e),
                _ => return,
            }
        } else {
            match self.pending.get_mut(i) {
                Some((m, e)) => (m, e),
                None => return,
            }
        };
        e.loc = Some(p.loc);
        let ours_unwritten = info.flags != e.file_flags;
        if !ours_unwritten && p.flags != info.flags {
            info.flags = p.flags.clone();
            if in_view {
                self.flag_news.push(info.uid);
            }
        }
        self.keywords.extend(p.flags.keywords.iter().cloned());
        e.file_flags = p.flags;
        e.file_uid = p.uid;
        e.file_old = p.old;
    }
}
