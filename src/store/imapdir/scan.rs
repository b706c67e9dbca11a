//! One look at a Maildir folder under its uidlist lock: moves new/ to cur/ (read-write opens,
//! cr.yp.to/proto/maildir.html), lists the files, matches them to `dovecot-uidlist` by base name,
//! gives new files the next UIDs in delivery order (leading timestamp, then name), appends them to
//! the list, and drops entries whose files are gone once a quarter of the list is (as Dovecot; their
//! UIDs are never given again: N only grows, RFC 3501 2.3.1.1).

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::Path;

use super::lock::DotLock;
use super::msgfile::{
    base_of, crlf_size, delivery_key, fsync_dir, move_noreplace, temp, usable_name, w_size,
};
use super::uidlist::{self, Entry, ReadList, UidList};
use crate::store::folder::{FolderError, Uid};

/// A message file found by a scan.
#[derive(Debug)]
pub struct Present {
    pub uid: Uid,
    /// Its current file name.
    pub name: String,
    /// In new/ (read-only opens leave deliveries there).
    pub in_new: bool,
    /// CRLF size.
    pub size: u64,
    /// This scan moved it from new/ to cur/.
    pub moved: bool,
    /// `\Recent` for the session that ran the scan (RFC 3501 2.3.2): it claimed the message (a
    /// read-write scan), or no session has claimed it yet (a read-only one).
    pub recent: bool,
}

/// The folder as a scan found it.
#[derive(Debug)]
pub struct Scan {
    pub validity: u32,
    pub next: Uid,
    /// In UID order.
    pub msgs: Vec<Present>,
    pub keywords: Vec<String>,
}

/// Regular files of `dir` with names we can handle (no dot files, no control characters, UTF-8);
/// a missing directory is empty.
pub fn list_files(dir: &Path) -> Result<Vec<String>, FolderError> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(temp("cannot list", dir, &e)),
    };
    let mut out = Vec::new();
    for ent in rd {
        let ent = ent.map_err(|e| temp("cannot list", dir, &e))?;
        let Ok(name) = ent.file_name().into_string() else {
            log::warn!("imap: skipping non-UTF-8 file name in {}", dir.display());
            continue;
        };
        if !usable_name(&name) {
            if !name.starts_with('.') {
                log::warn!("imap: skipping file with unusable name in {}: {name:?}", dir.display());
            }
            continue;
        }
        if ent.file_type().is_ok_and(|t| t.is_file()) {
            out.push(name);
        }
    }
    Ok(out)
}

/// Looks at `dir` (a Maildir: cur/ new/ tmp/). `move_new`: deliveries in new/ move to cur/ with
/// ":2," added. `root` keeps the UIDVALIDITY counter for a list that has to be made anew.
pub fn scan(dir: &Path, root: &Path, move_new: bool, lock: &mut DotLock) -> Result<Scan, FolderError> {
    let cur = dir.join("cur");
    let new = dir.join("new");
    let mut moved: Vec<String> = Vec::new();
    let mut files: HashMap<String, (String, bool)> = HashMap::new();
    let mut left_in_new: Vec<String> = Vec::new();
    for name in list_files(&new)? {
        if !move_new {
            left_in_new.push(name);
            continue;
        }
        let target = if name.contains(':') { name.clone() } else { format!("{name}:2,") };
        match move_noreplace(&new.join(&name), &cur.join(&target)) {
            Ok(()) => moved.push(target),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                log::warn!("imap: cannot move to cur/ path={} error={e}", new.join(&name).display());
                left_in_new.push(name);
            }
        }
    }
    if !moved.is_empty() {
        fsync_dir(&cur)?;
        fsync_dir(&new)?;
    }
    let in_cur = list_files(&cur)?;
    for (name, in_new) in
        in_cur.into_iter().map(|n| (n, false)).chain(left_in_new.into_iter().map(|n| (n, true)))
    {
        let base = base_of(&name).to_string();
        if let Some((other, _)) = files.get(&base) {
            log::warn!("imap: duplicate message file in {} name={name} kept={other}", dir.display());
            continue;
        }
        files.insert(base, (name, in_new));
    }
    moved.sort_unstable();

    let (mut list, mut rewrite) = match uidlist::read(dir, true)? {
        ReadList::Ok(l) => {
            let r = l.rewrite;
            (l, r)
        }
        ReadList::Missing => (fresh_list(root, 0), true),
        ReadList::Corrupt(old) => {
            log::warn!("imap: rebuilding uidlist with a new UIDVALIDITY dir={}", dir.display());
            (fresh_list(root, old.unwrap_or(0)), true)
        }
    };

    let mut msgs: Vec<Present> = Vec::with_capacity(files.len());
    let mut kept: Vec<Entry> = Vec::with_capacity(list.entries.len());
    let mut gone = 0usize;
    for mut e in std::mem::take(&mut list.entries) {
        let Some((name, in_new)) = files.remove(&e.base) else {
            // Expunged: its UID stays used; the entry is dropped at the next rewrite.
            gone += 1;
            continue;
        };
        let size = match w_size(&name).or(e.w) {
            Some(s) => s,
            None => match count(dir, &name, in_new, lock)? {
                Some(s) => {
                    e.w = Some(s);
                    rewrite = true;
                    s
                }
                None => {
                    rewrite = true;
                    continue;
                }
            },
        };
        let was_moved = moved.binary_search(&name).is_ok();
        msgs.push(Present { uid: e.uid, name, in_new, size, moved: was_moved, recent: was_moved });
        kept.push(e);
    }

    // What no session had claimed before this scan, when the folder keeps no claim yet.
    let unclaimed_from = list.next;
    // Files without a UID: delivery order.
    let mut fresh: Vec<(String, bool)> = files.into_values().collect();
    fresh.sort_by(|a, b| (delivery_key(&a.0), &a.0).cmp(&(delivery_key(&b.0), &b.0)));
    let mut added: Vec<Entry> = Vec::with_capacity(fresh.len());
    for (name, in_new) in fresh {
        let w = w_size(&name);
        let size = match w {
            Some(s) => s,
            None => match count(dir, &name, in_new, lock)? {
                Some(s) => s,
                None => continue,
            },
        };
        if list.next == Uid::MAX {
            return Err(FolderError::Cannot("no UIDs left in this folder".into()));
        }
        let uid = list.next;
        list.next += 1;
        let was_moved = moved.binary_search(&name).is_ok();
        added.push(Entry {
            uid,
            base: base_of(&name).to_string(),
            w: if w.is_some() { None } else { Some(size) },
        });
        msgs.push(Present { uid, name, in_new, size, moved: was_moved, recent: was_moved });
    }

    // Entries of expunged messages are dropped lazily, as Dovecot does (maildir-uidlist.c:
    // rewrite once no more than 75% of the entries read, plus the new ones, are left): a list
    // with some entries whose files are gone stays valid for both, and appending is all new
    // UIDs need. Rewriting (and fsyncing) on every expunge would serialize every session on it.
    rewrite |= wants_compaction(kept.len() + gone, kept.len(), added.len());
    if rewrite {
        kept.extend(added);
        list.entries = kept;
        uidlist::write(dir, &list)?;
    } else if !added.is_empty() {
        uidlist::append(dir, &added)?;
    }
    claim_recent(dir, &mut msgs, move_new, unclaimed_from, list.next);
    let keywords = uidlist::read_keywords(dir)?;
    Ok(Scan { validity: list.validity, next: list.next, msgs, keywords })
}

/// The first UID no session has claimed as `\Recent`, kept beside the uidlist.
const RECENT: &str = "buzon-recent";
const RECENT_TMP: &str = "buzon-recent.tmp";

/// Before messages get UIDs from `first` on outside a scan (APPEND, COPY; the caller holds the
/// lock): a folder that keeps no claim yet starts one there, so they count as unclaimed.
pub fn unclaimed_from(dir: &Path, first: Uid) {
    if !dir.join(RECENT).exists()
        && let Err(e) = write_claim(dir, format!("{first}\n").as_bytes())
    {
        log::warn!("imap: cannot keep the recent claim dir={} error={e}", dir.display());
    }
}

/// Replaces the claim (a temporary file renamed over it, so readers see the old or the new one).
/// Not fsynced: the claim is advisory (see `claim_recent`), and a claim lost in a crash only shows
/// messages as recent once more; an fsync under the uidlist lock would hold up every session.
fn write_claim(dir: &Path, contents: &[u8]) -> io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = dir.join(RECENT_TMP);
    fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&tmp)
        .and_then(|mut f| f.write_all(contents))
        .and_then(|()| fs::rename(&tmp, dir.join(RECENT)))
}

/// The first UID no session has claimed as `\Recent` (None: the folder keeps no claim).
pub fn first_unclaimed(dir: &Path) -> Option<Uid> {
    fs::read_to_string(dir.join(RECENT)).ok().and_then(|t| t.trim().parse::<Uid>().ok())
}

/// Claims the messages up to `last` for a read-write view that took them in without a scan
/// (folder/quick.rs; the caller holds the uidlist lock); returns the first UID that was still
/// unclaimed: the messages from it to `last` are `\Recent` for that view (RFC 3501 2.3.2).
pub fn claim_up_to(dir: &Path, last: Uid) -> Uid {
    let Some(first) = first_unclaimed(dir) else { return last.saturating_add(1) };
    if first <= last
        && let Err(e) = write_claim(dir, format!("{}\n", last.saturating_add(1)).as_bytes())
    {
        log::warn!("imap: cannot keep the recent claim dir={} error={e}", dir.display());
    }
    first
}

/// RFC 3501 2.3.2 `\Recent`: the first session to see a message claims it. A delivery is claimed
/// by moving it out of new/; an appended or copied message (written straight into cur/) by the
/// first unclaimed UID that `buzon-recent` keeps, which a read-write scan moves past every message
/// it sees (under the uidlist lock); a read-only scan (EXAMINE, STATUS) claims nothing and reports
/// what is still unclaimed. Without the file, what had UIDs before this scan counts as claimed.
/// The claim is advisory: a failure to keep it is logged, and can only show a message as recent
/// twice, never lose one.
fn claim_recent(dir: &Path, msgs: &mut [Present], move_new: bool, default_first: Uid, next: Uid) {
    let first = fs::read_to_string(dir.join(RECENT))
        .ok()
        .and_then(|t| t.trim().parse::<Uid>().ok())
        // Past the next UID: the list was made anew (a new UIDVALIDITY); the claim is stale.
        .filter(|&f| f <= next)
        .unwrap_or(default_first);
    for m in msgs.iter_mut() {
        m.recent = m.moved || m.uid >= first || (!move_new && m.in_new);
    }
    if move_new
        && first != next
        && let Err(e) = write_claim(dir, format!("{next}\n").as_bytes())
    {
        log::warn!("imap: cannot keep the recent claim dir={} error={e}", dir.display());
    }
}

/// Dovecot's UIDLIST_COMPRESS_PERCENTAGE rule: `read` entries were listed, `live` of them still
/// have a file, `added` are new; rewrite when at most 75% are left.
fn wants_compaction(read: usize, live: usize, added: usize) -> bool {
    read > live && (live + added) * 4 <= (read + added) * 3
}

fn fresh_list(root: &Path, old: u32) -> UidList {
    UidList { validity: uidlist::next_uidvalidity(root, old), next: 1, ..UidList::default() }
}

/// Counts a file's CRLF size (reading it once); None when it vanished meanwhile.
fn count(dir: &Path, name: &str, in_new: bool, lock: &mut DotLock) -> Result<Option<u64>, FolderError> {
    lock.touch();
    let path = dir.join(if in_new { "new" } else { "cur" }).join(name);
    match crlf_size(&path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(temp("cannot read", &path, &e)),
    }
}
