//! IMAP session: commands of the selected state (RFC 3501 6.4, RFC 9051 6.4): CHECK, CLOSE, UNSELECT
//! (RFC 3691), EXPUNGE and UID EXPUNGE (RFC 4315), SEARCH with ESEARCH and SAVE (RFC 4731, RFC 5182),
//! FETCH, STORE, COPY with COPYUID (RFC 4315), MOVE (RFC 6851); and IDLE (RFC 2177).

use super::{
    Action, Backend, FlagsFetch, Reply, Session, Tagged, bad, expunged_text, flags_fetch, folder_error, no,
    ok, ok_code, seq_text, store_flags, tagged, vanished_uids,
};
use crate::imap::fetch::{self, FetchJob, FetchOpts};
use crate::imap::search;
use crate::imap::types::{Command, FetchAtt, SearchKey, SearchReturn, SeqSet, StoreOp};
use crate::imap::{encode, session::Open};
use crate::store::folder::{DELETED, FlagOp, Flags, Folder, FolderError, Uid};

impl Session {
    /// RFC 3501 6.4.1: nothing to flush; the sync after it reports changes.
    pub(super) fn check(&mut self, _: &str, _: Command, _: &dyn Backend, _: &mut Vec<u8>) -> Reply {
        Some(ok("CHECK completed"))
    }

    /// RFC 3501 6.4.2: removes `\Deleted` messages without EXPUNGE responses (not when read-only)
    /// and leaves the selected state, even when the expunge fails.
    pub(super) fn close(&mut self, _: &str, _: Command, _: &dyn Backend, _: &mut Vec<u8>) -> Reply {
        let mut reply = ok("CLOSE completed");
        if let Some(open) = self.open.as_mut()
            && !open.folder.readonly()
            && let Err(e) = open.folder.expunge(None)
        {
            reply = folder_error(&self.peer.sid, &e);
        }
        self.deselect();
        Some(reply)
    }

    /// RFC 3691 2: leaves the selected state without expunging.
    pub(super) fn unselect(&mut self, _: &str, _: Command, _: &dyn Backend, _: &mut Vec<u8>) -> Reply {
        self.deselect();
        Some(ok("UNSELECT completed"))
    }

    /// EXPUNGE (RFC 3501 6.4.3) and UID EXPUNGE (RFC 4315 2.1): `* n EXPUNGE` for each message removed.
    pub(super) fn expunge(&mut self, _: &str, cmd: Command, _: &dyn Backend, out: &mut Vec<u8>) -> Reply {
        let sid = self.peer.sid.clone();
        let Some(open) = self.open.as_mut() else { return Some(bad("No mailbox selected")) };
        if open.folder.readonly() {
            return Some(no("READ-ONLY", "Mailbox is read-only"));
        }
        let uids: Option<Vec<Uid>> = match &cmd {
            Command::UidExpunge(set) => {
                let msgs = open.folder.messages();
                let idx = search::resolve(set, msgs, true, &open.saved);
                Some(idx.iter().filter_map(|&i| msgs.get(i).map(|m| m.uid)).collect())
            }
            _ => None,
        };
        let before = self.qresync.then(|| open.folder.messages().iter().map(|m| m.uid).collect());
        match open.folder.expunge(uids.as_deref()) {
            Ok(nums) => {
                out.extend_from_slice(&expunged_text(&nums, before));
                Some(ok("EXPUNGE completed"))
            }
            Err(e) => Some(folder_error(&sid, &e)),
        }
    }

    /// RFC 3501 6.4.4 / RFC 9051 6.4.4: `* SEARCH`, or `* ESEARCH` with RETURN options or under
    /// IMAP4rev2; RETURN (SAVE) keeps the result for `$` (RFC 5182).
    pub(super) fn search(&mut self, tag: &str, cmd: Command, _: &dyn Backend, out: &mut Vec<u8>) -> Reply {
        let Command::Search { uid, ret, charset, key } = cmd else { return Some(bad("Internal error")) };
        // RFC 7162 3.1.5: a MODSEQ key enables CONDSTORE, and the answer gives the highest
        // mod-sequence of what matched.
        let modseq_key = uses_modseq(&key);
        if modseq_key && let Some(t) = self.use_condstore(out, true) {
            return Some(t);
        }
        let sid = self.peer.sid.clone();
        let rev2 = self.rev2;
        let Some(open) = self.open.as_mut() else { return Some(bad("No mailbox selected")) };
        // RFC 9051 6.4.4: no RETURN means ALL (ESEARCH) under IMAP4rev2; RFC 4731 3.1: RETURN () = ALL.
        let ret = match ret {
            Some(r) if r.is_empty() => Some(vec![SearchReturn::All]),
            None if rev2 => Some(vec![SearchReturn::All]),
            other => other,
        };
        let save = ret.as_ref().is_some_and(|r| r.contains(&SearchReturn::Save));
        // RFC 3501 6.4.4: only charsets we know; RFC 5530 BADCHARSET lists them.
        if let Some(cs) = &charset
            && !cs.eq_ignore_ascii_case("US-ASCII")
            && !cs.eq_ignore_ascii_case("UTF-8")
        {
            // RFC 5182 2.1: a failed SEARCH with SAVE leaves `$` empty.
            if save {
                open.saved.clear();
            }
            return Some(no("BADCHARSET (US-ASCII UTF-8)", "Unsupported charset"));
        }
        let found = match search::search(open.folder.as_mut(), &key, &open.saved) {
            Ok(f) => f,
            Err(e) => {
                if save {
                    open.saved.clear();
                }
                return Some(folder_error(&sid, &e));
            }
        };
        let msgs = open.folder.messages();
        let uids: Vec<Uid> = found.iter().filter_map(|&i| msgs.get(i).map(|m| m.uid)).collect();
        let top_modseq =
            found.iter().filter_map(|&i| msgs.get(i).map(|m| m.modseq)).max().filter(|_| modseq_key);
        let nums: Vec<u32> = if uid {
            uids.clone()
        } else {
            found.iter().filter_map(|&i| u32::try_from(i + 1).ok()).collect()
        };
        let Some(opts) = ret else {
            let mut line = String::from("* SEARCH");
            for n in &nums {
                line.push_str(&format!(" {n}"));
            }
            if let Some(m) = top_modseq {
                line.push_str(&format!(" (MODSEQ {m})"));
            }
            line.push_str("\r\n");
            out.extend_from_slice(line.as_bytes());
            return Some(ok("SEARCH completed"));
        };
        let has = |o: SearchReturn| opts.contains(&o);
        if save {
            // RFC 5182 2.1: with MIN and/or MAX but neither ALL nor COUNT, only those are saved.
            open.saved = if (has(SearchReturn::Min) || has(SearchReturn::Max))
                && !has(SearchReturn::All)
                && !has(SearchReturn::Count)
            {
                let mut v = Vec::new();
                if has(SearchReturn::Min) {
                    v.extend(uids.first().copied());
                }
                if has(SearchReturn::Max) {
                    v.extend(
                        uids.last().copied().filter(|l| uids.first() != Some(l) || !has(SearchReturn::Min)),
                    );
                }
                v
            } else {
                uids
            };
        }
        // RFC 5182 2.1: SAVE alone gives no ESEARCH response.
        esearch_line(out, tag, uid, &opts, &nums, top_modseq);
        Some(ok("SEARCH completed"))
    }

    /// RFC 3501 6.4.5 / 6.4.8: the responses are sent by the caller, a message at a time, from the
    /// [`FetchJob`] this leaves in `self.fetching`; [`Session::fetch_done`] completes the command.
    pub(super) fn fetch(&mut self, tag: &str, cmd: Command, _: &dyn Backend, out: &mut Vec<u8>) -> Reply {
        let Command::Fetch { uid, set, mut items, changed_since, vanished } = cmd else {
            return Some(bad("Internal error"));
        };
        // RFC 7162 3.2.6: VANISHED only in UID FETCH, once QRESYNC is enabled.
        if vanished && (!uid || !self.qresync) {
            return Some(bad("VANISHED needs UID FETCH and QRESYNC enabled"));
        }
        // RFC 7162 3.1.4.1: MODSEQ and CHANGEDSINCE enable CONDSTORE; CHANGEDSINCE needs a mailbox
        // that keeps mod-sequences, and answers MODSEQ for every message it gives.
        if (changed_since.is_some() || items.contains(&FetchAtt::ModSeq))
            && let Some(t) = self.use_condstore(out, changed_since.is_some())
        {
            return Some(t);
        }
        if changed_since.is_some() {
            items.push(FetchAtt::ModSeq);
        }
        let opts = FetchOpts { uid, utf8: self.utf8(), rev2: self.rev2 };
        let open = match self.target(uid, &set) {
            Ok(o) => o,
            Err(t) => return Some(t),
        };
        // Repeated items are answered once, and each message once however often the set names it.
        let items = fetch::dedup(items);
        let mut ranges = search::resolve_ranges(&set, open.folder.messages(), uid, &open.saved);
        if vanished && let SeqSet::Ranges(_) = &set {
            let msgs = open.folder.messages();
            let gone = vanished_uids(msgs, Some(&set), 1, open.folder.uidnext().saturating_sub(1));
            if !gone.is_empty() {
                out.extend_from_slice(format!("* VANISHED (EARLIER) {}\r\n", seq_text(&gone)).as_bytes());
            }
        }
        if let Some(since) = changed_since {
            let msgs = open.folder.messages();
            ranges = ranges
                .into_iter()
                .flat_map(|r| r.filter(|&i| msgs.get(i).is_some_and(|m| m.modseq > since)))
                .map(|i| i..i + 1)
                .collect();
        }
        self.fetching = Some(FetchJob::new(tag.to_string(), items, opts, ranges));
        None
    }

    /// The end of a FETCH whose responses the caller sent ([`Action::Fetch`]). A message expunged by
    /// another session meanwhile was skipped: FETCH answers NO [EXPUNGEISSUED] (RFC 2180 4.1.2, RFC
    /// 5530), UID FETCH OK [EXPUNGEISSUED] (a UID that is gone is not an error, RFC 9051 6.4.9). The
    /// other messages were sent either way.
    pub fn fetch_done(&mut self, job: FetchJob) -> Vec<Action> {
        let end = job.end();
        let reply = match &end.stopped {
            // RFC 3516 4.2: BINARY of a part in an encoding the server does not know.
            Some(FolderError::Cannot(s)) if s == fetch::UNKNOWN_CTE => {
                no("UNKNOWN-CTE", "Unknown Content-Transfer-Encoding")
            }
            Some(e) => folder_error(&self.peer.sid, e),
            None => match (end.expunged, end.uid) {
                (false, _) => ok("FETCH completed"),
                (true, true) => ok_code("EXPUNGEISSUED", "Some messages were expunged meanwhile"),
                (true, false) => no("EXPUNGEISSUED", "Some messages were expunged meanwhile"),
            },
        };
        // RFC 3501 7.4.1: no EXPUNGE responses after a FETCH (a UID FETCH may have them).
        let mut out = Vec::new();
        let outcome = self.complete(&end.tag, reply, end.uid, &mut out);
        super::actions(out, outcome)
    }

    /// The selected folder, for sending the responses of an [`Action::Fetch`].
    pub fn fetch_folder(&mut self) -> Option<&mut dyn Folder> {
        match self.open.as_mut() {
            Some(o) => Some(o.folder.as_mut()),
            None => None,
        }
    }

    /// RFC 3501 6.4.6: changes flags and, unless .SILENT, answers `* n FETCH (FLAGS (...))` (with the
    /// UID for UID STORE, RFC 3501 6.4.8).
    pub(super) fn store(&mut self, _: &str, cmd: Command, _: &dyn Backend, out: &mut Vec<u8>) -> Reply {
        let Command::Store { uid, set, op, silent, flags, unchanged_since } = cmd else {
            return Some(bad("Internal error"));
        };
        if unchanged_since.is_some()
            && let Some(t) = self.use_condstore(out, true)
        {
            return Some(t);
        }
        let how = FlagsFetch { flags: !silent, rev2: self.rev2, modseq: self.condstore };
        let sid = self.peer.sid.clone();
        let Some(flags) = store_flags(&flags) else { return Some(bad(r"\Recent cannot be stored")) };
        let open = match self.target(uid, &set) {
            Ok(o) => o,
            Err(t) => return Some(t),
        };
        if open.folder.readonly() {
            return Some(no("READ-ONLY", "Mailbox is read-only"));
        }
        let mut idx = search::resolve(&set, open.folder.messages(), uid, &open.saved);
        // RFC 7162 3.1.3: a message changed after UNCHANGEDSINCE is left alone and named in
        // MODIFIED (message numbers, or UIDs for UID STORE).
        let mut modified: Vec<u32> = Vec::new();
        if let Some(since) = unchanged_since {
            let msgs = open.folder.messages();
            idx.retain(|&i| match msgs.get(i) {
                Some(m) if m.modseq > since => {
                    modified.push(if uid { m.uid } else { u32::try_from(i + 1).unwrap_or(u32::MAX) });
                    false
                }
                _ => true,
            });
        }
        let done = |modified: &[u32]| match modified.is_empty() {
            true => ok("STORE completed"),
            false => ok_code(format!("MODIFIED {}", seq_text(modified)), "Conditional STORE failed"),
        };
        if idx.is_empty() {
            return Some(done(&modified));
        }
        let before: Vec<u64> =
            idx.iter().map(|&i| open.folder.messages().get(i).map_or(0, |m| m.modseq)).collect();
        let op = match op {
            StoreOp::Replace => FlagOp::Replace,
            StoreOp::Add => FlagOp::Add,
            StoreOp::Remove => FlagOp::Remove,
        };
        if let Err(e) = open.folder.store(&idx, op, &flags) {
            return Some(folder_error(&sid, &e));
        }
        open.announce(out);
        // RFC 7162 3.1.3: with CONDSTORE enabled even a .SILENT STORE tells the new MODSEQ of what
        // it changed.
        let msgs = open.folder.messages();
        let mut buf = Vec::with_capacity(idx.len() * 40);
        for (&i, &was) in idx.iter().zip(&before) {
            if let Some(m) = msgs.get(i)
                && (how.flags || (how.modseq && m.modseq != was))
            {
                flags_fetch(&mut buf, i + 1, m, uid.then_some(m.uid), how);
            }
        }
        out.extend_from_slice(&buf);
        Some(done(&modified))
    }

    /// COPY (RFC 3501 6.4.7, RFC 4315 COPYUID) and MOVE (RFC 6851 3: `* OK [COPYUID ...]`, then the
    /// EXPUNGE responses, then the tagged OK).
    pub(super) fn copy(&mut self, _: &str, cmd: Command, _: &dyn Backend, out: &mut Vec<u8>) -> Reply {
        let (uid, set, mailbox, moving) = match cmd {
            Command::Copy { uid, set, mailbox } => (uid, set, mailbox, false),
            Command::Move { uid, set, mailbox } => (uid, set, mailbox, true),
            _ => return Some(bad("Internal error")),
        };
        let what = if moving { "MOVE" } else { "COPY" };
        let dest = match self.mailbox_name(&mailbox) {
            Ok(n) => n,
            Err(t) => return Some(t),
        };
        let sid = self.peer.sid.clone();
        if let Err(t) = self.target(uid, &set) {
            return Some(t);
        }
        let Session { store, open, qresync, .. } = self;
        let (Some(store), Some(open)) = (store.as_mut(), open.as_mut()) else {
            return Some(bad("No mailbox selected"));
        };
        if moving && open.folder.readonly() {
            return Some(no("READ-ONLY", "Mailbox is read-only"));
        }
        let idx = search::resolve(&set, open.folder.messages(), uid, &open.saved);
        if idx.is_empty() {
            return Some(ok(format!("{what} completed")));
        }
        let res = match store.copy(open.folder.as_mut(), &idx, &dest) {
            Ok(r) => r,
            // RFC 3501 6.4.7: the client may CREATE and try again.
            Err(FolderError::NotFound) => return Some(no("TRYCREATE", "Mailbox does not exist")),
            Err(e) => return Some(folder_error(&sid, &e)),
        };
        let code = format!("COPYUID {} {} {}", res.uidvalidity, seq_text(&res.source), seq_text(&res.dest));
        if !moving {
            return Some(ok_code(code, "COPY completed"));
        }
        out.extend_from_slice(format!("* OK [{code}] Moved\r\n").as_bytes());
        // RFC 6851 3.3: the moved messages leave the source as an expunge of exactly them.
        let uids: Vec<Uid> =
            idx.iter().filter_map(|&i| open.folder.messages().get(i).map(|m| m.uid)).collect();
        let deleted = Flags { system: DELETED, keywords: Vec::new() };
        let before = qresync.then(|| open.folder.messages().iter().map(|m| m.uid).collect());
        let removed =
            open.folder.store(&idx, FlagOp::Add, &deleted).and_then(|()| open.folder.expunge(Some(&uids)));
        match removed {
            Ok(nums) => {
                out.extend_from_slice(&expunged_text(&nums, before));
                Some(ok("MOVE completed"))
            }
            Err(e) => Some(folder_error(&sid, &e)),
        }
    }

    /// RFC 2177 3: `+ idling`; updates come from idle_poll until DONE.
    pub(super) fn idle(&mut self, tag: &str, _: Command, _: &dyn Backend, out: &mut Vec<u8>) -> Reply {
        out.extend_from_slice(b"+ idling\r\n");
        self.idle_tag = Some(tag.to_string());
        // Whatever is pending goes out at once.
        if self.open.is_some() {
            self.report_changes(true, out);
        }
        None
    }

    /// The selected folder, after checking that a message-number set stays within it.
    fn target(&mut self, uid: bool, set: &SeqSet) -> Result<&mut Open, Tagged> {
        let Some(open) = self.open.as_mut() else { return Err(bad("No mailbox selected")) };
        if !uid && !Session::seq_in_range(set, open.folder.messages().len()) {
            // RFC 3501 9: a message number above the count is a client error.
            return Err(tagged("BAD", None, "Invalid message number"));
        }
        Ok(open)
    }
}

/// Whether a search key uses MODSEQ anywhere (RFC 7162 3.1.5).
fn uses_modseq(key: &SearchKey) -> bool {
    match key {
        SearchKey::ModSeq(_) => true,
        SearchKey::Not(k) => uses_modseq(k),
        SearchKey::Or(a, b) => uses_modseq(a) || uses_modseq(b),
        SearchKey::And(v) => v.iter().any(uses_modseq),
        _ => false,
    }
}

/// `* ESEARCH (TAG "t") [UID] [MIN n] [MAX n] [ALL set] [COUNT n] [MODSEQ m]` for SEARCH (RFC 4731)
/// and SORT (RFC 5267 3, `nums` in sort order: MIN and MAX are the first and last of it); nothing
/// when SAVE is the only return option (RFC 5182 2.1).
pub(super) fn esearch_line(
    out: &mut Vec<u8>,
    tag: &str,
    uid: bool,
    opts: &[SearchReturn],
    nums: &[u32],
    modseq: Option<u64>,
) {
    if opts.iter().all(|o| *o == SearchReturn::Save) {
        return;
    }
    let has = |o: SearchReturn| opts.contains(&o);
    let mut buf = b"* ESEARCH (TAG ".to_vec();
    encode::string(&mut buf, tag.as_bytes());
    buf.push(b')');
    if uid {
        buf.extend_from_slice(b" UID");
    }
    // RFC 4731 3.1: MIN, MAX and ALL are left out when nothing matched; COUNT is not.
    if let (true, Some(min)) = (has(SearchReturn::Min), nums.first()) {
        buf.extend_from_slice(format!(" MIN {min}").as_bytes());
    }
    if let (true, Some(max)) = (has(SearchReturn::Max), nums.last()) {
        buf.extend_from_slice(format!(" MAX {max}").as_bytes());
    }
    if has(SearchReturn::All) && !nums.is_empty() {
        // RFC 5267 3.2: a SORT's numbers in sort order (a range only for ascending runs).
        buf.extend_from_slice(format!(" ALL {}", seq_text(nums)).as_bytes());
    }
    if has(SearchReturn::Count) {
        buf.extend_from_slice(format!(" COUNT {}", nums.len()).as_bytes());
    }
    // RFC 7162 3.1.5 / RFC 4731: the MODSEQ return data.
    if let Some(m) = modseq {
        buf.extend_from_slice(format!(" MODSEQ {m}").as_bytes());
    }
    buf.extend_from_slice(b"\r\n");
    out.extend_from_slice(&buf);
}
