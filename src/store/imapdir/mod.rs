//! A user's IMAP folder tree in Maildir++ (cr.yp.to/proto/maildir.html; the layout Dovecot and
//! Courier use, so an existing Maildir just works): folders, LIST with \Noselect parents and
//! RFC 6154 special-use, CREATE/DELETE/RENAME (RFC 3501 6.3.3-6.3.5), subscriptions (6.3.6),
//! STATUS (6.3.10), APPEND (6.3.11) and COPY (6.4.7) with RFC 4315 APPENDUID/COPYUID data.
//!
//! Layout: with [`Inbox::Maildir`] the root is the user's Maildir and INBOX; folder "a/b" is
//! `<root>/.a.b/` (cur/ new/ tmp/ and an empty `maildirfolder`). With [`Inbox::Mbox`] INBOX is that
//! mbox (store/mboxfolder.rs) and the root only holds the other folders.
//!
//! Concurrency: each folder's `dovecot-uidlist.lock` (a dot-lock, see lock.rs) is held while its
//! directory is read and UIDs are given; message files are only ever created under new names,
//! renamed (flags) or unlinked, so readers never need it.
//!
//! DELETE of a folder with children removes the folder's own directory (its messages) and keeps the
//! children's; the name then lists as `\Noselect` (RFC 3501 6.3.4). Deleting a `\Noselect` name that
//! has children is refused, as the RFC says.

mod folder;
mod lock;
mod modseq;
mod msgfile;
// Arrival order of Maildir names, shared with POP3's maildrop.
pub(crate) use msgfile::CrlfCounter;
pub(crate) use msgfile::delivery_key;
mod names;
mod scan;
mod stage;
mod uidlist;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fs::{self, DirBuilder, File};
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

pub use folder::MaildirFolder;
use lock::DotLock;
use msgfile::{fsync_dir, move_noreplace, name_with_flags, stored_sizes, temp, write_message};
use scan::{list_files, scan};
use uidlist::{Entry, ReadList, UIDLIST};

use crate::store::folder::{
    CopyResult, DELETED, FlagOp, Flags, Folder, FolderEntry, FolderError, SEEN, Staged as StagedMessage,
    Staging, Status, Store, Uid,
};
use crate::store::maildir::unique_name;
use crate::store::mboxfolder::{self, MboxFolder};

/// Where INBOX is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Inbox {
    /// The root Maildir itself.
    Maildir,
    /// An mbox file, locked for up to `lock_timeout`.
    Mbox { path: PathBuf, lock_timeout: Duration },
}

/// RFC 6154 special-use folders, created (and subscribed) on the first LIST when missing.
const SPECIAL_USE: [(&str, &str); 5] = [
    ("Sent", "\\Sent"),
    ("Drafts", "\\Drafts"),
    ("Trash", "\\Trash"),
    ("Junk", "\\Junk"),
    ("Archive", "\\Archive"),
];

/// Attempts at a free unique file name.
const NAME_ATTEMPTS: u32 = 20;

/// One user's folder tree in Maildir++.
pub struct MaildirStore {
    root: PathBuf,
    inbox: Inbox,
    specials_done: bool,
}

/// Where a folder's messages live.
enum Place {
    Mbox(PathBuf, Duration),
    Dir(PathBuf),
}

/// A message written into a folder's tmp/, waiting for its UID.
struct Staged {
    tmp: PathBuf,
    base: String,
    flags: Flags,
}

impl MaildirStore {
    pub fn new(root: PathBuf, inbox: Inbox) -> MaildirStore {
        MaildirStore { root, inbox, specials_done: false }
    }

    /// Creates the root (0700) and, when it is INBOX, its cur/ new/ tmp/.
    fn ensure_root(&self) -> Result<(), FolderError> {
        if !self.root.is_dir() {
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&self.root)
                .map_err(|e| temp("cannot create", &self.root, &e))?;
        }
        if self.inbox == Inbox::Maildir {
            for sub in ["cur", "new", "tmp"] {
                mkdir(&self.root.join(sub), true)?;
            }
        }
        Ok(())
    }

    fn place(&self, parts: &[String]) -> Result<Place, FolderError> {
        if parts.len() == 1 && parts.first().is_some_and(|p| p == "INBOX") {
            return Ok(match &self.inbox {
                Inbox::Maildir => Place::Dir(self.root.clone()),
                Inbox::Mbox { path, lock_timeout } => Place::Mbox(path.clone(), *lock_timeout),
            });
        }
        Ok(Place::Dir(self.root.join(names::dir_name(parts)?)))
    }

    /// The folder's directory, which must be a Maildir (NotFound otherwise).
    fn existing(&self, place: Place) -> Result<Place, FolderError> {
        if let Place::Dir(d) = &place
            && !d.join("cur").is_dir()
        {
            return Err(FolderError::NotFound);
        }
        Ok(place)
    }

    fn resolve(&self, name: &str) -> Result<(Vec<String>, Place), FolderError> {
        self.ensure_root()?;
        let parts = names::parse(name)?;
        let place = self.place(&parts)?;
        Ok((parts, place))
    }

    /// Folder directory names under the root (".a.b") with their folder names.
    fn folder_dirs(&self) -> Result<Vec<(String, String)>, FolderError> {
        let rd = fs::read_dir(&self.root).map_err(|e| temp("cannot list", &self.root, &e))?;
        let mut out = Vec::new();
        for ent in rd {
            let ent = ent.map_err(|e| temp("cannot list", &self.root, &e))?;
            let Ok(dir) = ent.file_name().into_string() else { continue };
            let Some(name) = names::from_dir_name(&dir) else { continue };
            if ent.file_type().is_ok_and(|t| t.is_dir()) {
                out.push((dir, name));
            }
        }
        Ok(out)
    }

    /// Creates the parents of `parts` that are missing, as folders (RFC 3501 6.3.3 SHOULD).
    fn create_parents(&self, parts: &[String]) -> Result<(), FolderError> {
        for k in 1..parts.len() {
            let Some(p) = parts.get(..k) else { continue };
            if p.len() == 1 && p.first().is_some_and(|s| s == "INBOX") {
                continue;
            }
            let dir = self.root.join(names::dir_name(p)?);
            match make_maildir(&dir) {
                Ok(()) | Err(FolderError::Exists) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Moves staged messages into `dir`/cur with their flags and gives them UIDs, all under the
    /// folder's lock; on failure nothing of them stays.
    fn commit(&self, dir: &Path, staged: Vec<Staged>) -> Result<(u32, Vec<Uid>), FolderError> {
        let cleanup = |staged: &[Staged]| {
            for s in staged {
                let _ = fs::remove_file(&s.tmp);
            }
        };
        let mut lock = match DotLock::acquire(&dir.join(UIDLIST)) {
            Ok(l) => l,
            Err(e) => {
                cleanup(&staged);
                return Err(e);
            }
        };
        let prepared = (|| {
            let mut wanted: Vec<String> = Vec::new();
            for s in &staged {
                wanted.extend(s.flags.keywords.iter().cloned());
            }
            let kw = folder::add_keywords(dir, &wanted)?;
            let list = match uidlist::read(dir, false)? {
                ReadList::Ok(l) if !l.rewrite => l,
                _ => {
                    // Missing, corrupt or to be rewritten: a scan sets it right first.
                    scan(dir, &self.root, false, &mut lock)?;
                    match uidlist::read(dir, false)? {
                        ReadList::Ok(l) => l,
                        _ => return Err(FolderError::Temp(format!("uidlist unusable in {}", dir.display()))),
                    }
                }
            };
            Ok((kw, list))
        })();
        let (kw, list) = match prepared {
            Ok(x) => x,
            Err(e) => {
                cleanup(&staged);
                return Err(e);
            }
        };
        let cur = dir.join("cur");
        scan::unclaimed_from(dir, list.next);
        let mut placed: Vec<PathBuf> = Vec::with_capacity(staged.len());
        let mut entries: Vec<Entry> = Vec::with_capacity(staged.len());
        let mut uid = list.next;
        let undo = |placed: &[PathBuf]| {
            for p in placed {
                let _ = fs::remove_file(p);
            }
        };
        for (i, s) in staged.iter().enumerate() {
            let to = cur.join(name_with_flags(&s.base, &s.flags, &kw, ""));
            if let Err(e) = move_noreplace(&s.tmp, &to) {
                undo(&placed);
                cleanup(staged.get(i..).unwrap_or_default());
                return Err(temp("cannot move into", &to, &e));
            }
            placed.push(to);
            if uid == Uid::MAX {
                undo(&placed);
                cleanup(staged.get(i + 1..).unwrap_or_default());
                return Err(FolderError::Cannot("no UIDs left in this folder".into()));
            }
            entries.push(Entry { uid, base: s.base.clone(), w: None });
            uid += 1;
        }
        let written = fsync_dir(&cur).and_then(|()| uidlist::append(dir, &entries));
        if let Err(e) = written {
            undo(&placed);
            let _ = fsync_dir(&cur);
            return Err(e);
        }
        drop(lock);
        Ok((list.validity, entries.iter().map(|e| e.uid).collect()))
    }

    /// Moves every message of the Maildir INBOX into the new folder at `dest` (RFC 3501 6.3.5);
    /// they get UIDs there at its first scan, and INBOX is left empty.
    fn rename_inbox_maildir(&self, dest: &Path) -> Result<(), FolderError> {
        let _lock = DotLock::acquire(&self.root.join(UIDLIST))?;
        for sub in ["cur", "new"] {
            let (from, to) = (self.root.join(sub), dest.join(sub));
            for name in list_files(&from)? {
                match move_noreplace(&from.join(&name), &to.join(&name)) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(temp("cannot move", &from.join(&name), &e)),
                }
            }
            fsync_dir(&to)?;
            fsync_dir(&from)?;
        }
        Ok(())
    }
}

/// Writes `message` into `dir`/tmp under a fresh unique name carrying both sizes (",S=" LF size as
/// maildir.rs writes it, ",W=" CRLF size as Dovecot does), fsynced, mtime = `date`.
fn stage_message(dir: &Path, message: &[u8], date: Option<i64>) -> Result<(PathBuf, String), FolderError> {
    let (lf, crlf) = stored_sizes(message);
    let host = crate::config::system_hostname();
    let tmpdir = dir.join("tmp");
    mkdir(&tmpdir, false)?;
    for _ in 0..NAME_ATTEMPTS {
        let base = format!("{},W={crlf}", unique_name(SystemTime::now(), &host, lf));
        let tmp = tmpdir.join(&base);
        match write_message(&tmp, message, date) {
            Ok(()) => return Ok((tmp, base)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(temp("cannot write", &tmp, &e)),
        }
    }
    Err(FolderError::Temp(format!("no unique file name free in {}", tmpdir.display())))
}

/// Hard-links `src` (a message file, LF line ends, CRLF size `crlf`) into `dir`/tmp; None when
/// links are not possible (other file system, vanished source...).
fn stage_link(dir: &Path, src: &Path, crlf: u64) -> Option<(PathBuf, String)> {
    let lf = fs::metadata(src).ok()?.len();
    let host = crate::config::system_hostname();
    for _ in 0..NAME_ATTEMPTS {
        let base = format!("{},W={crlf}", unique_name(SystemTime::now(), &host, lf));
        let tmp = dir.join("tmp").join(&base);
        match fs::hard_link(src, &tmp) {
            Ok(()) => return Some((tmp, base)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(_) => return None,
        }
    }
    None
}

/// mkdir with mode 0700; an existing directory is fine. `sync`: fsync the parent after creating.
fn mkdir(dir: &Path, sync: bool) -> Result<(), FolderError> {
    match DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {
            if sync && let Some(p) = dir.parent() {
                fsync_dir(p)?;
            }
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) => Err(temp("cannot create", dir, &e)),
    }
}

/// Makes a Maildir++ folder directory: cur/ new/ tmp/ and the `maildirfolder` marker. Exists when
/// it is already a complete folder; a directory without cur/ (left half-made) is completed.
fn make_maildir(dir: &Path) -> Result<(), FolderError> {
    match DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            if dir.join("cur").is_dir() {
                return Err(FolderError::Exists);
            }
            if !dir.is_dir() {
                return Err(FolderError::Cannot(format!("{} is not a directory", dir.display())));
            }
        }
        Err(e) => return Err(temp("cannot create", dir, &e)),
    }
    for sub in ["tmp", "new", "cur"] {
        mkdir(&dir.join(sub), false)?;
    }
    File::create(dir.join("maildirfolder"))
        .map_err(|e| temp("cannot create", &dir.join("maildirfolder"), &e))?;
    fsync_dir(dir)?;
    match dir.parent() {
        Some(p) => fsync_dir(p),
        None => Ok(()),
    }
}

fn status_of(dir: &Path, root: &Path) -> Result<Status, FolderError> {
    let mut lock = DotLock::acquire(&dir.join(UIDLIST))?;
    let s = scan(dir, root, false, &mut lock)?;
    let present: Vec<(Uid, &str)> = s.msgs.iter().map(|p| (p.uid, p.name.as_str())).collect();
    let mut journal = modseq::Journal::default();
    journal.sync(dir, s.validity, &present)?;
    drop(lock);
    let mut st = Status {
        uidnext: s.next,
        uidvalidity: s.validity,
        highest_modseq: journal.highest(),
        ..Status::default()
    };
    for m in &s.msgs {
        let f = msgfile::flags_from_name(&m.name, &s.keywords);
        st.messages += 1;
        st.recent += u32::from(m.recent);
        st.unseen += u32::from(f.system & SEEN == 0);
        st.deleted += u32::from(f.system & DELETED != 0);
        st.size += m.size;
    }
    Ok(st)
}

impl Store for MaildirStore {
    fn list(&mut self) -> Result<Vec<FolderEntry>, FolderError> {
        self.ensure_root()?;
        if !self.specials_done {
            for (name, _) in SPECIAL_USE {
                let dir = self.root.join(format!(".{name}"));
                if fs::symlink_metadata(&dir).is_err() {
                    match make_maildir(&dir) {
                        Ok(()) => names::set_subscribed(&self.root, name, true)?,
                        Err(FolderError::Exists) => {}
                        Err(e) => return Err(e),
                    }
                }
            }
            self.specials_done = true;
        }
        let subs = names::read_subscriptions(&self.root)?;
        let mut found: BTreeMap<String, bool> = BTreeMap::new();
        for (dir, name) in self.folder_dirs()? {
            let selectable = self.root.join(&dir).join("cur").is_dir();
            let e = found.entry(name).or_insert(false);
            *e |= selectable;
        }
        // Parents that have no directory of their own: \Noselect.
        let all: Vec<String> = found.keys().cloned().collect();
        for name in all {
            let mut n = name.as_str();
            while let Some((parent, _)) = n.rsplit_once('/') {
                found.entry(parent.to_string()).or_insert(false);
                n = parent;
            }
        }
        found.remove("INBOX");
        // RFC 3501 6.3.6: a subscription stays when its mailbox is deleted (or was never made);
        // such a name lists as \NonExistent under LIST (SUBSCRIBED) (RFC 5258 3.4).
        for name in &subs {
            if name != "INBOX" {
                found.entry(name.clone()).or_insert(false);
            }
        }
        let entry = |name: String, selectable: bool| FolderEntry {
            special_use: SPECIAL_USE.iter().find(|(n, _)| *n == name && selectable).map(|(_, a)| *a),
            subscribed: subs.contains(&name),
            selectable,
            name,
        };
        let mut out = vec![entry("INBOX".into(), true)];
        out.extend(found.into_iter().map(|(n, s)| entry(n, s)));
        Ok(out)
    }

    fn create(&mut self, name: &str) -> Result<(), FolderError> {
        // RFC 3501 6.3.3: a trailing delimiter only says that children will follow.
        let name = name.strip_suffix('/').unwrap_or(name);
        let (parts, place) = self.resolve(name)?;
        let Place::Dir(dir) = place else { return Err(FolderError::Exists) };
        if dir == self.root {
            return Err(FolderError::Exists);
        }
        self.create_parents(&parts)?;
        make_maildir(&dir)
    }

    fn delete(&mut self, name: &str) -> Result<(), FolderError> {
        let (parts, place) = self.resolve(name)?;
        let Place::Dir(dir) = place else {
            return Err(FolderError::Cannot("INBOX cannot be deleted".into()));
        };
        if dir == self.root {
            return Err(FolderError::Cannot("INBOX cannot be deleted".into()));
        }
        if !dir.is_dir() {
            let prefix = format!("{}.", names::dir_name(&parts)?);
            return if self.folder_dirs()?.iter().any(|(d, _)| d.starts_with(&prefix)) {
                // RFC 3501 6.3.4: a \Noselect name with inferiors cannot be deleted.
                Err(FolderError::Cannot("mailbox has children and no messages of its own".into()))
            } else {
                Err(FolderError::NotFound)
            };
        }
        // Out of sight in one rename (as Dovecot's ..DOVECOT-TRASH), then removed.
        let trash = self.root.join(format!("..buzon-deleted.{}", unique_name(SystemTime::now(), "d", 0)));
        fs::rename(&dir, &trash).map_err(|e| temp("cannot delete", &dir, &e))?;
        fsync_dir(&self.root)?;
        if let Err(e) = fs::remove_dir_all(&trash) {
            log::warn!("imap: cannot remove deleted folder path={} error={e}", trash.display());
        }
        Ok(())
    }

    fn rename(&mut self, from: &str, to: &str) -> Result<(), FolderError> {
        let (fp, _) = self.resolve(from)?;
        let tp = names::parse(to)?;
        if tp.len() == 1 && tp.first().is_some_and(|p| p == "INBOX") {
            return Err(FolderError::Exists);
        }
        if tp.starts_with(&fp) {
            return Err(FolderError::Cannot("cannot rename a mailbox into itself".into()));
        }
        let to_dir = names::dir_name(&tp)?;
        if self.root.join(&to_dir).exists() {
            return Err(FolderError::Exists);
        }
        if fp.len() == 1 && fp.first().is_some_and(|p| p == "INBOX") {
            // RFC 3501 6.3.5: INBOX's messages move to the new folder, INBOX stays (empty), its
            // children are unaffected.
            self.create_parents(&tp)?;
            let dest = self.root.join(&to_dir);
            make_maildir(&dest)?;
            return match self.inbox.clone() {
                Inbox::Maildir => self.rename_inbox_maildir(&dest),
                Inbox::Mbox { path, lock_timeout } => {
                    let mut inbox = MboxFolder::open(&path, false, lock_timeout)?;
                    let all: Vec<usize> = (0..inbox.messages().len()).collect();
                    if !all.is_empty() {
                        self.copy(&mut inbox, &all, &canonical_name(&tp))?;
                        inbox.store(&all, FlagOp::Add, &Flags { system: DELETED, keywords: Vec::new() })?;
                        inbox.expunge(None)?;
                    }
                    inbox.close()
                }
            };
        }
        let from_dir = names::dir_name(&fp)?;
        let child_prefix = format!("{from_dir}.");
        let mut moves: Vec<(String, String)> = Vec::new();
        for (dir, _) in self.folder_dirs()? {
            if dir == from_dir || dir.starts_with(&child_prefix) {
                let target = format!("{to_dir}{}", dir.get(from_dir.len()..).unwrap_or_default());
                if target.len() > names::MAX_NAME || names::from_dir_name(&target).is_none() {
                    return Err(FolderError::BadName("new name too long or too deep".into()));
                }
                if self.root.join(&target).exists() {
                    return Err(FolderError::Exists);
                }
                moves.push((dir, target));
            }
        }
        if moves.is_empty() {
            return Err(FolderError::NotFound);
        }
        self.create_parents(&tp)?;
        // Parent first; each child is its own directory under the root (not atomic as a whole).
        moves.sort();
        for (src, dst) in &moves {
            fs::rename(self.root.join(src), self.root.join(dst))
                .map_err(|e| temp("cannot rename", &self.root.join(src), &e))?;
        }
        fsync_dir(&self.root)
    }

    fn subscribe(&mut self, name: &str, on: bool) -> Result<(), FolderError> {
        let (parts, _) = self.resolve(name)?;
        names::set_subscribed(&self.root, &canonical_name(&parts), on)
    }

    fn status(&mut self, name: &str) -> Result<Status, FolderError> {
        let (_, place) = self.resolve(name)?;
        match self.existing(place)? {
            Place::Mbox(path, timeout) => mboxfolder::status(&path, timeout),
            Place::Dir(dir) => status_of(&dir, &self.root),
        }
    }

    fn append(
        &mut self,
        name: &str,
        flags: &Flags,
        date: Option<i64>,
        message: &[u8],
    ) -> Result<CopyResult, FolderError> {
        let (_, place) = self.resolve(name)?;
        match self.existing(place)? {
            Place::Mbox(path, timeout) => mboxfolder::append(&path, timeout, flags, date, &mut &message[..]),
            Place::Dir(dir) => {
                let (tmp, base) = stage_message(&dir, message, date)?;
                let (uidvalidity, dest) =
                    self.commit(&dir, vec![Staged { tmp, base, flags: flags.clone() }])?;
                Ok(CopyResult { uidvalidity, source: Vec::new(), dest })
            }
        }
    }

    /// Maildir: a file in the folder's own tmp/, moved into cur/ by [`Store::append_staged`]. The
    /// mbox INBOX: a file in the Maildir++ root's tmp/, read back for the mbox append.
    fn stage(
        &mut self,
        name: &str,
        _size: u64,
        date: Option<i64>,
        binary: bool,
    ) -> Result<Box<dyn Staging>, FolderError> {
        let (_, place) = self.resolve(name)?;
        // An mbox keeps lines, not octets: a literal8 into it is stored as any other message.
        let (tmpdir, binary) = match self.existing(place)? {
            Place::Mbox(..) => (self.root.join("tmp"), false),
            Place::Dir(dir) => (dir.join("tmp"), binary),
        };
        mkdir(&tmpdir, false)?;
        Ok(Box::new(stage::StageFile::create(&tmpdir, date, binary)?))
    }

    fn append_staged(
        &mut self,
        name: &str,
        flags: &Flags,
        date: Option<i64>,
        staged: StagedMessage,
    ) -> Result<CopyResult, FolderError> {
        let (file, lf, crlf) = match staged {
            StagedMessage::Memory(m) => return self.append(name, flags, date, &m),
            StagedMessage::File { file, lf, crlf } => (file, lf, crlf),
        };
        let (_, place) = self.resolve(name)?;
        match self.existing(place)? {
            Place::Mbox(path, timeout) => {
                // The stored form (LF ends) goes into the mbox a line at a time.
                let f = fs::File::open(file.path()).map_err(|e| temp("cannot read", file.path(), &e))?;
                mboxfolder::append(
                    &path,
                    timeout,
                    flags,
                    date,
                    &mut std::io::BufReader::with_capacity(64 * 1024, f),
                )
            }
            Place::Dir(dir) => {
                if file.path().parent() != Some(dir.join("tmp").as_path()) {
                    return Err(FolderError::Temp("the mailbox moved during APPEND".into()));
                }
                let host = crate::config::system_hostname();
                let base = format!("{},W={crlf}", unique_name(SystemTime::now(), &host, lf));
                let tmp = file.keep();
                let (uidvalidity, dest) =
                    self.commit(&dir, vec![Staged { tmp, base, flags: flags.clone() }])?;
                Ok(CopyResult { uidvalidity, source: Vec::new(), dest })
            }
        }
    }

    fn open(&mut self, name: &str, readonly: bool) -> Result<Box<dyn Folder>, FolderError> {
        let (parts, place) = self.resolve(name)?;
        match self.existing(place)? {
            Place::Mbox(path, timeout) => Ok(Box::new(MboxFolder::open(&path, readonly, timeout)?)),
            Place::Dir(dir) => {
                Ok(Box::new(MaildirFolder::open(&canonical_name(&parts), &dir, &self.root, readonly)?))
            }
        }
    }

    fn copy(
        &mut self,
        from: &mut dyn Folder,
        indexes: &[usize],
        dest: &str,
    ) -> Result<CopyResult, FolderError> {
        let (_, place) = self.resolve(dest)?;
        let mut source = Vec::with_capacity(indexes.len());
        match self.existing(place)? {
            Place::Mbox(path, timeout) => {
                // One append each: what was appended before a failure stays (an mbox append cannot
                // be taken back without rewriting the file).
                let mut result = CopyResult { uidvalidity: 0, source: Vec::new(), dest: Vec::new() };
                for &i in indexes {
                    let Some(info) = from.messages().get(i).cloned() else { continue };
                    let msg = from.read(i)?;
                    let r = mboxfolder::append(
                        &path,
                        timeout,
                        &info.flags,
                        Some(info.internal_date),
                        &mut &msg[..],
                    )?;
                    result.uidvalidity = r.uidvalidity;
                    result.source.push(info.uid);
                    result.dest.extend(r.dest);
                }
                Ok(result)
            }
            Place::Dir(dir) => {
                mkdir(&dir.join("tmp"), false)?;
                let mut staged: Vec<Staged> = Vec::with_capacity(indexes.len());
                for &i in indexes {
                    let Some(info) = from.messages().get(i).cloned() else { continue };
                    let linked = from.file(i).and_then(|src| stage_link(&dir, &src, info.size));
                    let (tmp, base) = match linked {
                        Some(x) => x,
                        None => {
                            let written =
                                from.read(i).and_then(|m| stage_message(&dir, &m, Some(info.internal_date)));
                            match written {
                                Ok(x) => x,
                                Err(e) => {
                                    // RFC 3501 6.4.7: a failed COPY leaves the destination as it was.
                                    for s in &staged {
                                        let _ = fs::remove_file(&s.tmp);
                                    }
                                    return Err(e);
                                }
                            }
                        }
                    };
                    source.push(info.uid);
                    staged.push(Staged { tmp, base, flags: info.flags });
                }
                let (uidvalidity, dest) = self.commit(&dir, staged)?;
                Ok(CopyResult { uidvalidity, source, dest })
            }
        }
    }
}

fn canonical_name(parts: &[String]) -> String {
    names::canonical(parts)
}
