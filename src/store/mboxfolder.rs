//! The user's mbox (/var/mail/user) served read-write as the IMAP INBOX, as UW-IMAP and Dovecot's
//! mbox driver serve it (RFC 3501 2.3 UIDs and flags, RFC 4155 mboxrd, RFC 4315 APPENDUID).
//!
//! State lives in the messages' headers as mutt, mail(1), UW-IMAP and Dovecot keep it:
//! `Status: RO` (R \Seen, O not \Recent), `X-Status: ADFT` (\Answered \Deleted \Flagged \Draft),
//! `X-Keywords: kw1 kw2`, `X-UID: n`, and in the first message `X-IMAPbase: uidvalidity uidnext
//! [keywords]`. Clients never see these headers, nor Content-Length or the From_ line.
//!
//! The mail lock (dotlock + fcntl, shared with delivery and POP3) is held only during an operation
//! (open, sync, write-back, append, status), never for the session, so deliveries never wait for an
//! IMAP client. Only an index is kept (offsets, fingerprint, [`MessageInfo`]); a message is read on
//! demand, without the lock: a read checks the message's fingerprint and size and reindexes under
//! the lock when the file changed beneath it.
//!
//! UIDs: messages without X-UID get UIDs in file order from uidnext (X-IMAPbase's, or max(X-UID)+1
//! when that is higher); an X-UID lower than the UID before it is replaced. status() and append()
//! apply the same rule, so they agree with a session that has not written its UIDs yet. append()
//! does not touch the first message: X-IMAPbase's uidnext may lag behind, and every reader derives
//! uidnext = max(X-IMAPbase uidnext, max X-UID + 1). When the mbox has messages but no X-IMAPbase,
//! append() first writes one (and the X-UIDs), so the UIDVALIDITY it returns lasts.
//!
//! Write-back (status headers, new X-UIDs, `O` for messages this session made un-recent,
//! expunge): at EXPUNGE, at close(), and during sync() when STORE changes are pending for
//! [`WRITEBACK_DELAY`]; never for EXAMINE. Always under the lock, after reindexing so the file is
//! what the index says. Rewritten by temp file + fsync + rename + directory fsync keeping owner,
//! group and mode; in place (mutt's way) only if the spool directory refuses the temp file or the
//! rename. Messages whose headers do not change are copied byte for byte.

mod lock;
mod rewrite;
mod scan;
mod sync;
#[cfg(test)]
mod tests;

use std::collections::BTreeSet;
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lock::{Mode, io_error};
use rewrite::{Act, status_headers};
use scan::{ImapBase, Loc, Parsed};

use crate::store::folder::{
    Changes, CopyResult, DELETED, FlagOp, Flags, Folder, FolderError, MessageInfo, SEEN, Status, Uid,
};

/// STORE changes wait at most this long (counted from the first unwritten one) before a sync()
/// writes them; EXPUNGE and close() write at once.
pub const WRITEBACK_DELAY: Duration = Duration::from_secs(5);
/// System flag bits a message can carry.
const SYSTEM_FLAGS: u8 = 31;

/// What the index knows of a message beyond its [`MessageInfo`].
#[derive(Clone, Debug)]
struct Entry {
    /// None: gone from the file (expunged by someone else), still in the view until announced.
    loc: Option<Loc>,
    fp: u64,
    /// The status headers as the file has them.
    file_uid: Option<Uid>,
    file_flags: Flags,
    file_old: bool,
}

/// What the file looked like when last indexed.
#[derive(Clone, Debug, PartialEq, Eq)]
struct FileState {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    /// Up to [`TAIL`] bytes before `size`: an append leaves them, a rewrite rarely does.
    tail: Vec<u8>,
}

const TAIL: u64 = 64;

impl FileState {
    fn of(m: &std::fs::Metadata) -> FileState {
        FileState {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime: (m.mtime(), m.mtime_nsec()),
            tail: Vec::new(),
        }
    }
    fn same_stat(&self, m: &std::fs::Metadata) -> bool {
        self.dev == m.dev()
            && self.ino == m.ino()
            && self.size == m.size()
            && self.mtime == (m.mtime(), m.mtime_nsec())
    }
}

/// The mbox INBOX of one session.
pub struct MboxFolder {
    path: PathBuf,
    readonly: bool,
    lock_timeout: Duration,
    uidvalidity: u32,
    uidnext: Uid,
    /// The view (index i is message i+1) and its index entries, in UID order.
    infos: Vec<MessageInfo>,
    entries: Vec<Entry>,
    /// Messages found in the file but not yet announced (EXISTS at the next sync).
    pending: Vec<(MessageInfo, Entry)>,
    /// The file's UIDVALIDITY changed under us: (new uidvalidity, the view's uidnext). The old view
    /// is all expunged; the new messages wait in `pending` until it is empty.
    reset: Option<(u32, Uid)>,
    keywords: BTreeSet<String>,
    /// UIDs whose flags someone else changed, to announce with FETCH at the next sync.
    flag_news: Vec<Uid>,
    /// The indexed file (reads go through it), None when there is none.
    file: Option<File>,
    state: Option<FileState>,
    /// X-IMAPbase as the file's first message has it.
    file_base: Option<ImapBase>,
    /// The first From_ line (bytes before it are not a message and are kept as they are).
    first_from: u64,
    /// The next refresh must reparse everything.
    force_reparse: bool,
    /// When the oldest unwritten STORE was made.
    dirty_since: Option<Instant>,
    closed: bool,
    /// The first scan is done: from now on the file's X-UIDs below uidnext are not believed for
    /// messages new to us (they would reuse expunged UIDs).
    opened: bool,
    /// Tests: rewrite in place as if the spool directory refused the temp file.
    in_place: bool,
}

/// A UIDVALIDITY for a new mailbox: the current time, as UW-IMAP and Dovecot do.
fn new_uidvalidity() -> u32 {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(1, |d| d.as_secs());
    u32::try_from(now).unwrap_or(u32::MAX).max(1)
}

fn now_secs() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0))
}

/// The UID rule (see the module comment) for one message: `prev` is the UID before it, `next` the
/// lowest UID a message without a usable X-UID may take. Returns the UID; updates `next`.
fn uid_for(x_uid: Option<Uid>, floor: Uid, prev: Uid, next: &mut Uid) -> Uid {
    let u = match x_uid {
        Some(u) if u >= floor && u > prev => u,
        _ => (*next).max(prev.saturating_add(1)),
    };
    *next = (*next).max(u.saturating_add(1));
    u
}

/// UIDs for the messages of a whole file, in file order, and uidnext: X-UIDs are kept while they
/// increase; the others get uidnext on.
fn assign_uids(msgs: &[Parsed], base_next: Uid) -> (Vec<Uid>, Uid) {
    let mut next = base_next.max(1);
    let mut prev = 0;
    let uids = msgs
        .iter()
        .map(|p| {
            prev = uid_for(p.uid, 1, prev, &mut next);
            prev
        })
        .collect();
    (uids, next)
}

impl MboxFolder {
    /// Opens the mbox for SELECT (`readonly`: EXAMINE, which never writes). A missing or empty
    /// mbox is an empty INBOX. The lock is taken for the scan only.
    pub fn open(path: &Path, readonly: bool, lock_timeout: Duration) -> Result<MboxFolder, FolderError> {
        let mut f = MboxFolder {
            path: path.to_path_buf(),
            readonly,
            lock_timeout,
            uidvalidity: new_uidvalidity(),
            uidnext: 1,
            infos: Vec::new(),
            entries: Vec::new(),
            pending: Vec::new(),
            reset: None,
            keywords: BTreeSet::new(),
            flag_news: Vec::new(),
            file: None,
            state: None,
            file_base: None,
            first_from: 0,
            force_reparse: false,
            dirty_since: None,
            closed: false,
            opened: false,
            in_place: false,
        };
        f.locked_refresh()?;
        f.opened = true;
        if let Some((v, _)) = f.reset.take() {
            f.uidvalidity = v;
        }
        for (info, entry) in std::mem::take(&mut f.pending) {
            f.infos.push(info);
            f.entries.push(entry);
        }
        f.flag_news.clear();
        Ok(f)
    }

    fn mode(&self) -> Mode {
        if self.readonly { Mode::Read } else { Mode::Write }
    }

    /// Takes the lock and brings the index up to date.
    fn locked_refresh(&mut self) -> Result<Option<lock::Locked>, FolderError> {
        let lk = lock::lock(&self.path, self.lock_timeout, self.mode())?;
        self.refresh(lk.as_ref())?;
        Ok(lk)
    }

    /// The desired status headers differ from the file's somewhere.
    fn needs_write(&self) -> bool {
        let all = self.infos.iter().zip(&self.entries).chain(self.pending.iter().map(|(i, e)| (i, e)));
        let mut first: Option<u64> = None;
        for (info, e) in all {
            let Some(loc) = e.loc else { continue };
            if e.file_uid != Some(info.uid) || e.file_flags != info.flags || !e.file_old {
                return true;
            }
            first = Some(first.map_or(loc.from, |f| f.min(loc.from)));
        }
        first.is_some_and(|f| f != self.first_from || self.file_base.as_ref() != Some(&self.desired_base()))
    }

    /// Message `index` if the file still holds what the index says there; `None` if it does not.
    fn try_read(&self, index: usize) -> Result<Option<Vec<u8>>, FolderError> {
        let (Some(info), Some(entry)) = (self.infos.get(index), self.entries.get(index)) else {
            return Err(FolderError::Temp(format!("no message {}", index + 1)));
        };
        let (Some(loc), Some(file)) = (entry.loc, self.file.as_ref()) else {
            return Err(FolderError::Expunged);
        };
        let (data, fp) =
            scan::read_message(file, &loc).map_err(|e| io_error("cannot read", &self.path, &e))?;
        Ok((fp == entry.fp && data.len() as u64 == info.size).then_some(data))
    }

    /// X-IMAPbase as it should be.
    fn desired_base(&self) -> ImapBase {
        let validity = self.reset.map_or(self.uidvalidity, |(v, _)| v);
        ImapBase { validity, uidnext: self.uidnext, keywords: self.keywords.iter().cloned().collect() }
    }

    /// Writes the status headers (and leaves out the messages with UIDs in `drop`) under `lk`,
    /// which the caller took and refreshed with.
    fn write_back(&mut self, lk: &lock::Locked, drop: &[Uid]) -> Result<(), FolderError> {
        if self.readonly {
            return Err(FolderError::ReadOnly);
        }
        // Every message in the file, in file order: (in view, index).
        let mut order: Vec<(u64, bool, usize)> = Vec::with_capacity(self.entries.len() + self.pending.len());
        for (i, e) in self.entries.iter().enumerate() {
            if let Some(l) = e.loc {
                order.push((l.from, true, i));
            }
        }
        for (i, (_, e)) in self.pending.iter().enumerate() {
            if let Some(l) = e.loc {
                order.push((l.from, false, i));
            }
        }
        order.sort_unstable();
        let base = self.desired_base();
        let mut first = true;
        let mut items: Vec<(Loc, Act)> = Vec::with_capacity(order.len());
        for &(_, in_view, i) in &order {
            let (info, e) = if in_view {
                (&self.infos[i], &self.entries[i])
            } else {
                let (info, e) = &self.pending[i];
                (info, e)
            };
            let Some(loc) = e.loc else { continue };
            if in_view && drop.binary_search(&info.uid).is_ok() {
                items.push((loc, Act::Drop));
                continue;
            }
            let want_base = first.then_some(&base);
            let base_ok = !first || (loc.from == self.first_from && self.file_base.as_ref() == Some(&base));
            first = false;
            let act = if base_ok && e.file_uid == Some(info.uid) && e.file_flags == info.flags && e.file_old {
                Act::Keep
            } else {
                Act::Rewrite(status_headers(want_base, &info.flags, true, Some(info.uid)))
            };
            items.push((loc, act));
        }
        if items.iter().all(|(_, a)| matches!(a, Act::Keep)) {
            self.dirty_since = None;
            return Ok(());
        }
        let indexed_len = self.state.as_ref().map_or(0, |s| s.size);
        let w = rewrite::write_back(&self.path, lk, &items, self.first_from, indexed_len, self.in_place)?;
        // The index now describes the new file.
        for (&(_, in_view, i), loc) in order.iter().zip(&w.locs) {
            let (info, e) = if in_view {
                (&self.infos[i], &mut self.entries[i])
            } else {
                let (info, e) = &mut self.pending[i];
                (&*info, e)
            };
            e.loc = *loc;
            if loc.is_some() {
                e.file_uid = Some(info.uid);
                e.file_flags = info.flags.clone();
                e.file_old = true;
            }
        }
        self.file_base = w.locs.iter().any(Option::is_some).then_some(base);
        let meta = w.file.metadata().map_err(|e| io_error("cannot stat", &self.path, &e))?;
        self.state = Some(sync::state_of(&w.file, &meta));
        self.file = Some(w.file);
        self.force_reparse |= w.extra;
        self.dirty_since = None;
        Ok(())
    }

    /// Writes pending state if there is any; the caller holds nothing.
    fn flush(&mut self) -> Result<(), FolderError> {
        if self.readonly || (self.dirty_since.is_none() && !self.needs_write()) {
            return Ok(());
        }
        let lk = self.locked_refresh()?;
        match lk {
            Some(lk) if self.needs_write() => self.write_back(&lk, &[]),
            _ => Ok(()),
        }
    }

    /// Takes the gone messages out of the view; returns the numbers to announce (RFC 3501 7.4.1:
    /// each relative to the view after the previous ones were removed, so ascending order repeats
    /// a number when neighbours go).
    fn remove_from_view(&mut self, also: &[Uid]) -> Vec<u32> {
        let mut out = Vec::new();
        let mut removed = 0u32;
        let mut i = 0;
        let mut keep_infos = Vec::with_capacity(self.infos.len());
        let mut keep_entries = Vec::with_capacity(self.entries.len());
        for (info, e) in std::mem::take(&mut self.infos).into_iter().zip(std::mem::take(&mut self.entries)) {
            i += 1;
            if e.loc.is_none() || also.binary_search(&info.uid).is_ok() {
                out.push(i - removed);
                removed += 1;
            } else {
                keep_infos.push(info);
                keep_entries.push(e);
            }
        }
        self.infos = keep_infos;
        self.entries = keep_entries;
        out
    }

    #[cfg(test)]
    fn set_in_place(&mut self, on: bool) {
        self.in_place = on;
    }
}

/// STATUS of the mbox: a read-only scan under the lock (it never writes).
pub fn status(path: &Path, lock_timeout: Duration) -> Result<Status, FolderError> {
    let Some(lk) = lock::lock(path, lock_timeout, Mode::Read)? else {
        return Ok(Status { uidvalidity: new_uidvalidity(), uidnext: 1, ..Status::default() });
    };
    let sc = scan::scan(&lk.file, 0).map_err(|e| io_error("cannot read", path, &e))?;
    drop(lk);
    let base = sc.msgs.first().and_then(|m| m.base.clone());
    let (_, uidnext) = assign_uids(&sc.msgs, base.as_ref().map_or(1, |b| b.uidnext));
    let mut st = Status {
        uidvalidity: base.map_or_else(new_uidvalidity, |b| b.validity),
        uidnext,
        messages: u32::try_from(sc.msgs.len()).unwrap_or(u32::MAX),
        ..Status::default()
    };
    for m in &sc.msgs {
        st.recent += u32::from(!m.old);
        st.unseen += u32::from(m.flags.system & SEEN == 0);
        st.deleted += u32::from(m.flags.system & DELETED != 0);
        st.size += m.size;
    }
    Ok(st)
}

/// APPEND to the mbox: written at the end under the lock in mboxrd form, with `flags` in
/// Status/X-Status/X-Keywords and an X-UID (see the module comment for uidnext). `date` is the
/// INTERNALDATE, kept in the From_ line (None: now). Status headers in `message` are replaced.
pub fn append(
    path: &Path,
    lock_timeout: Duration,
    flags: &Flags,
    date: Option<i64>,
    message: &mut dyn std::io::BufRead,
) -> Result<CopyResult, FolderError> {
    let mut lk = lock::lock(path, lock_timeout, Mode::Create)?
        .ok_or_else(|| FolderError::Temp(format!("cannot create {}", path.display())))?;
    let mut sc = scan::scan(&lk.file, 0).map_err(|e| io_error("cannot read", path, &e))?;
    let mut base = sc.msgs.first().and_then(|m| m.base.clone());
    if base.is_none() && !sc.msgs.is_empty() {
        // Give the mbox its X-IMAPbase (and X-UIDs) first, or the UIDVALIDITY we return would not
        // outlive this call.
        let (uids, next) = assign_uids(&sc.msgs, 1);
        let b = ImapBase { validity: new_uidvalidity(), uidnext: next, keywords: Vec::new() };
        let items: Vec<(Loc, Act)> = sc
            .msgs
            .iter()
            .zip(&uids)
            .enumerate()
            .map(|(i, (m, &u))| {
                (m.loc, Act::Rewrite(status_headers((i == 0).then_some(&b), &m.flags, m.old, Some(u))))
            })
            .collect();
        let w = rewrite::write_back(path, &lk, &items, sc.first_from, sc.len, false)?;
        lk.relock(w.file, path)?;
        sc = scan::scan(&lk.file, 0).map_err(|e| io_error("cannot read", path, &e))?;
        base = Some(b);
    }
    let (_, next) = assign_uids(&sc.msgs, base.as_ref().map_or(1, |b| b.uidnext));
    let mut flags = flags.clone();
    flags.system &= SYSTEM_FLAGS;
    flags.keywords.retain(|k| scan::is_keyword(k));
    // The first message of the mbox carries X-IMAPbase.
    let new_base = match (&base, sc.msgs.is_empty()) {
        (Some(b), false) => b.clone(),
        _ => ImapBase {
            validity: new_uidvalidity(),
            uidnext: next.saturating_add(1),
            keywords: flags.keywords.clone(),
        },
    };
    let headers = status_headers(sc.msgs.is_empty().then_some(&new_base), &flags, false, Some(next));
    rewrite::append_message(path, &lk, &headers, date.unwrap_or_else(now_secs), message)?;
    Ok(CopyResult { uidvalidity: new_base.validity, source: Vec::new(), dest: vec![next] })
}

impl Folder for MboxFolder {
    fn name(&self) -> &str {
        "INBOX"
    }

    fn readonly(&self) -> bool {
        self.readonly
    }

    fn uidvalidity(&self) -> u32 {
        self.uidvalidity
    }

    fn uidnext(&self) -> Uid {
        self.reset.map_or(self.uidnext, |(_, n)| n)
    }

    fn messages(&self) -> &[MessageInfo] {
        &self.infos
    }

    fn keywords(&self) -> Vec<String> {
        self.keywords.iter().cloned().collect()
    }

    fn sync(&mut self, expunges: bool) -> Result<Changes, FolderError> {
        let due = !self.readonly && self.dirty_since.is_some_and(|t| t.elapsed() >= WRITEBACK_DELAY);
        if due || self.file_changed() {
            let lk = self.locked_refresh()?;
            if let Some(lk) = lk.filter(|_| due) {
                self.write_back(&lk, &[])?;
            }
        }
        let mut changes = Changes::default();
        if expunges {
            changes.expunged = self.remove_from_view(&[]);
        }
        // The file's UIDVALIDITY changed: its messages come once the old view is gone.
        if let Some((v, _)) = self.reset
            && self.infos.is_empty()
        {
            self.uidvalidity = v;
            self.reset = None;
        }
        if self.reset.is_none() && !self.pending.is_empty() {
            for (info, entry) in std::mem::take(&mut self.pending) {
                self.infos.push(info);
                self.entries.push(entry);
            }
            changes.exists = Some(u32::try_from(self.infos.len()).unwrap_or(u32::MAX));
        }
        let mut news = std::mem::take(&mut self.flag_news);
        news.sort_unstable();
        news.dedup();
        changes.flags =
            news.iter().filter_map(|u| self.infos.binary_search_by_key(u, |m| m.uid).ok()).collect();
        Ok(changes)
    }

    /// A delivery appends to the file; a rewrite renames a new file over it (seen in its directory).
    fn watch_paths(&self) -> Vec<PathBuf> {
        let dir = self.path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        vec![self.path.clone(), dir.to_path_buf()]
    }

    fn changed(&mut self) -> bool {
        !self.pending.is_empty()
            || !self.flag_news.is_empty()
            || self.entries.iter().any(|e| e.loc.is_none())
            || self.file_changed()
    }

    /// A large message streamed from the mbox (the whole read when it moved: that path reindexes).
    fn reader(&mut self, index: usize) -> Result<Box<dyn std::io::Read>, FolderError> {
        if self.handle_changed() {
            self.locked_refresh()?;
        }
        if let (Some(info), Some(entry)) = (self.infos.get(index), self.entries.get(index))
            && let (Some(loc), Some(file)) = (entry.loc, self.file.as_ref())
            && let Some(r) = scan::message_reader(file, &loc, entry.fp, info.size)
                .map_err(|e| io_error("cannot read", &self.path, &e))?
        {
            return Ok(Box::new(r));
        }
        Ok(Box::new(std::io::Cursor::new(self.read(index)?)))
    }

    fn read(&mut self, index: usize) -> Result<Vec<u8>, FolderError> {
        // Someone rewrote the file in place since it was indexed: reindex first. (A rename leaves
        // our handle on the old file, which still holds what the index says.)
        if self.handle_changed() {
            self.locked_refresh()?;
        }
        if let Some(data) = self.try_read(index)? {
            return Ok(data);
        }
        self.force_reparse = true;
        self.locked_refresh()?;
        self.try_read(index)?
            .ok_or_else(|| FolderError::Temp("the mbox changed while reading; try again".into()))
    }

    fn store(&mut self, indexes: &[usize], op: FlagOp, flags: &Flags) -> Result<(), FolderError> {
        if self.readonly {
            return Err(FolderError::ReadOnly);
        }
        let sys = flags.system & SYSTEM_FLAGS;
        let kws: Vec<String> = flags.keywords.iter().filter(|k| scan::is_keyword(k)).cloned().collect();
        for &i in indexes {
            let (Some(info), Some(e)) = (self.infos.get_mut(i), self.entries.get(i)) else { continue };
            if e.loc.is_none() {
                continue; // expunged by someone else: nothing to store into
            }
            let f = &mut info.flags;
            match op {
                FlagOp::Replace => {
                    f.system = sys;
                    f.keywords = kws.clone();
                }
                FlagOp::Add => {
                    f.system |= sys;
                    f.keywords.extend(kws.iter().cloned());
                }
                FlagOp::Remove => {
                    f.system &= !sys;
                    f.keywords.retain(|k| !kws.contains(k));
                }
            }
            f.keywords.sort();
            f.keywords.dedup();
        }
        self.keywords.extend(kws);
        self.dirty_since.get_or_insert_with(Instant::now);
        Ok(())
    }

    fn expunge(&mut self, uids: Option<&[Uid]>) -> Result<Vec<u32>, FolderError> {
        if self.readonly {
            return Err(FolderError::ReadOnly);
        }
        let doomed = |infos: &[MessageInfo], entries: &[Entry]| -> Vec<Uid> {
            infos
                .iter()
                .zip(entries)
                .filter(|(m, e)| {
                    e.loc.is_some()
                        && m.flags.system & DELETED != 0
                        && uids.is_none_or(|u| u.contains(&m.uid))
                })
                .map(|(m, _)| m.uid)
                .collect()
        };
        if doomed(&self.infos, &self.entries).is_empty() {
            return Ok(self.remove_from_view(&[]));
        }
        let lk = self.locked_refresh()?;
        // Flags may have changed in the file: decide on what it says now.
        let drop = doomed(&self.infos, &self.entries);
        if let Some(lk) = lk {
            self.write_back(&lk, &drop)?;
        }
        Ok(self.remove_from_view(&drop))
    }

    fn close(&mut self) -> Result<(), FolderError> {
        // Closed even when the write fails: dropping it must not wait for the lock again.
        self.closed = true;
        let r = self.flush();
        if r.is_ok() {
            self.file = None;
        }
        r
    }
}

impl Drop for MboxFolder {
    /// A session that ends without CLOSE/LOGOUT (a dropped connection) still keeps its STOREs.
    fn drop(&mut self) {
        if !self.closed
            && let Err(e) = self.flush()
        {
            log::warn!("imap: mbox state not written path={} error={e}", self.path.display());
        }
    }
}
