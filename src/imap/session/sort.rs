//! IMAP session: SORT and UID SORT (RFC 5256 3, RFC 5957 SORT=DISPLAY, RFC 5267 ESORT's RETURN
//! options), THREAD and UID THREAD (RFC 5256 3). The messages are found by SEARCH's evaluation,
//! their keys read once per message and kept by UID for the selected folder.

use super::{Backend, Reply, Session, bad, folder_error, no, ok};
use crate::imap::search;
use crate::imap::sort::{self, Item};
use crate::imap::thread;
use crate::imap::types::{Command, SearchKey, SearchReturn, ThreadAlgorithm};
use crate::store::folder::FolderError;

/// RFC 5256 3 / RFC 5530: the charsets SORT and THREAD know.
fn known_charset(cs: &str) -> bool {
    cs.eq_ignore_ascii_case("UTF-8") || cs.eq_ignore_ascii_case("US-ASCII")
}

impl Session {
    /// RFC 5256 3: `* SORT` with the matching messages in order; RFC 5267 3: `* ESEARCH` for
    /// `RETURN (...)` (MIN and MAX the first and last in sort order, ALL the sorted list).
    pub(super) fn sort(&mut self, tag: &str, cmd: Command, _: &dyn Backend, out: &mut Vec<u8>) -> Reply {
        let Command::Sort { uid, ret, criteria, charset, key } = cmd else {
            return Some(bad("Internal error"));
        };
        let sid = self.peer.sid.clone();
        let Some(open) = self.open.as_mut() else { return Some(bad("No mailbox selected")) };
        let save = ret.as_ref().is_some_and(|r| r.contains(&SearchReturn::Save));
        if !known_charset(&charset) {
            // RFC 5182 2.1: a failed command with SAVE leaves `$` empty.
            if save {
                open.saved.clear();
            }
            // RFC 5256 3: an unknown charset is a NO with BADCHARSET (RFC 5530).
            return Some(no("BADCHARSET (UTF-8 US-ASCII)", "Unsupported charset"));
        }
        let order = match sorted(open, &key, |items| sort::sort(items, &criteria)) {
            Ok(o) => o,
            Err(e) => {
                if save {
                    open.saved.clear();
                }
                return Some(folder_error(&sid, &e));
            }
        };
        let msgs = open.folder.messages();
        let nums: Vec<u32> = order.iter().filter_map(|&i| number(msgs, i, uid)).collect();
        let Some(opts) = ret else {
            let mut line = String::from("* SORT");
            for n in &nums {
                line.push_str(&format!(" {n}"));
            }
            line.push_str("\r\n");
            out.extend_from_slice(line.as_bytes());
            return Some(ok("SORT completed"));
        };
        // RFC 4731 3.1 as RFC 5267 3 takes it: RETURN () is ALL.
        let opts = if opts.is_empty() { vec![SearchReturn::All] } else { opts };
        if save {
            // RFC 5182 2.1: `$` is the set of messages found (its order does not matter).
            let mut uids: Vec<u32> = order.iter().filter_map(|&i| number(msgs, i, true)).collect();
            uids.sort_unstable();
            open.saved = uids;
        }
        super::selected::esearch_line(out, tag, uid, &opts, &nums, None);
        Some(ok("SORT completed"))
    }

    /// RFC 5256 3: `* THREAD` with the matching messages' threads.
    pub(super) fn thread(&mut self, _: &str, cmd: Command, _: &dyn Backend, out: &mut Vec<u8>) -> Reply {
        let Command::Thread { uid, algorithm, charset, key } = cmd else {
            return Some(bad("Internal error"));
        };
        let sid = self.peer.sid.clone();
        let Some(open) = self.open.as_mut() else { return Some(bad("No mailbox selected")) };
        if !known_charset(&charset) {
            return Some(no("BADCHARSET (UTF-8 US-ASCII)", "Unsupported charset"));
        }
        let found = match search::search(open.folder.as_mut(), &key, &open.saved) {
            Ok(f) => f,
            Err(e) => return Some(folder_error(&sid, &e)),
        };
        if let Err(e) = open.sort_keys.load(open.folder.as_mut(), &found) {
            return Some(folder_error(&sid, &e));
        }
        let msgs = open.folder.messages();
        let items = items(msgs, &found, &open.sort_keys);
        let forest = match algorithm {
            ThreadAlgorithm::OrderedSubject => thread::ordered_subject(&items),
            ThreadAlgorithm::References => thread::references(&items),
        };
        let text = forest.render(|i| items.get(i).and_then(|it| number(msgs, it.index, uid)).unwrap_or(0));
        out.extend_from_slice(b"* THREAD");
        if !text.is_empty() {
            out.push(b' ');
            out.extend_from_slice(text.as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        Some(ok("THREAD completed"))
    }
}

/// The message number (1-based) or UID of the message at index `i`.
fn number(msgs: &[crate::store::folder::MessageInfo], i: usize, uid: bool) -> Option<u32> {
    if uid { msgs.get(i).map(|m| m.uid) } else { u32::try_from(i + 1).ok() }
}

/// The items for the messages at `found` (ascending indexes), their keys loaded.
fn items<'k>(
    msgs: &[crate::store::folder::MessageInfo],
    found: &[usize],
    cache: &'k sort::KeyCache,
) -> Vec<Item<'k>> {
    found
        .iter()
        .filter_map(|&i| {
            let m = msgs.get(i)?;
            Some(Item { index: i, size: m.size, arrival: m.internal_date, keys: cache.get(m.uid) })
        })
        .collect()
}

/// The indexes of the messages matching `key`, ordered by `order`.
fn sorted(
    open: &mut super::Open,
    key: &SearchKey,
    order: impl FnOnce(&mut [Item<'_>]),
) -> Result<Vec<usize>, FolderError> {
    let found = search::search(open.folder.as_mut(), key, &open.saved)?;
    open.sort_keys.load(open.folder.as_mut(), &found)?;
    let mut items = items(open.folder.messages(), &found, &open.sort_keys);
    order(&mut items);
    Ok(items.iter().map(|it| it.index).collect())
}
