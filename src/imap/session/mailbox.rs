//! IMAP session: mailbox commands of the authenticated state (RFC 3501 6.3, RFC 9051 6.3): SELECT,
//! EXAMINE, CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE, NAMESPACE (RFC 2342), STATUS (RFC 8438
//! SIZE) and APPEND (RFC 4315 APPENDUID, RFC 5530 codes).

use std::io::Write;

use super::{
    Action, Backend, Open, Reply, Session, State, Tagged, bad, folder_error, no, ok, ok_code, store_flags,
};
use crate::imap::command;
use crate::imap::types::{Command, StatusItem};
use crate::store::folder::{self, Folder, FolderError, Staging, Status};

/// An APPEND's message on its way to the store.
pub(super) enum Pending {
    Staging(Box<dyn Staging>),
    /// Writing it failed; the APPEND answers with this.
    Failed(FolderError),
}

/// What [`Session::append_begin`] decided.
#[derive(Debug)]
pub enum AppendStart {
    /// Send the literal through [`Session::append_write`].
    Stream,
    /// The command is answered (carry out these actions): skip its literal if the client sends it
    /// anyway (LITERAL+) and the rest of the command.
    Answered(Vec<Action>),
}

impl Session {
    /// The connection has an APPEND whose message literal (`len` octets) comes next; `head` is the
    /// command so far, through the literal's `{len}` and CRLF. Checks the command as far as it goes
    /// and the size (RFC 7889 TOOBIG), and starts writing the message into the store (RFC 3501
    /// 6.3.11) so that it never sits in memory; or answers it at once (for a synchronizing literal
    /// before the client sends it, RFC 3501 7.5).
    pub fn append_begin(&mut self, head: &[u8], len: u64, _: &dyn Backend) -> AppendStart {
        self.staging = None;
        let (tag, cmd) = match command::append_head(head) {
            Ok(t) => t,
            Err(e) => return AppendStart::Answered(self.on_parse_error(e)),
        };
        let out = Vec::new();
        let answer = |s: &mut Session, t: Tagged, out: Vec<u8>| AppendStart::Answered(s.answer(&tag, t, out));
        if !matches!(self.state, State::Authenticated | State::Selected) {
            return answer(self, bad("Not logged in"), out);
        }
        let Command::Append { mailbox, flags, date, binary, .. } = cmd else {
            return answer(self, bad("Internal error"), out);
        };
        let name = match self.mailbox_name(&mailbox) {
            Ok(n) => n,
            Err(t) => return answer(self, t, out),
        };
        if store_flags(&flags).is_none() {
            return answer(self, bad(r"\Recent cannot be set"), out);
        }
        let max = self.params.max_append;
        if max > 0 && len > max {
            return answer(self, no("TOOBIG", format!("Message too big (limit {max} octets)")), out);
        }
        let Some(store) = self.store.as_mut() else {
            return answer(self, no("UNAVAILABLE", "No store"), out);
        };
        match store.stage(&name, len, date.map(|d| d.unix), binary) {
            Ok(st) => {
                self.staging = Some(Pending::Staging(st));
                AppendStart::Stream
            }
            Err(FolderError::NotFound) => answer(self, no("TRYCREATE", "Mailbox does not exist"), out),
            Err(e) => {
                let t = folder_error(&self.peer.sid, &e);
                answer(self, t, out)
            }
        }
    }

    /// A piece of the message literal after [`AppendStart::Stream`]. A write that fails drops
    /// what was staged; the APPEND then answers NO.
    pub fn append_write(&mut self, data: &[u8]) {
        if let Some(Pending::Staging(st)) = self.staging.as_mut()
            && let Err(e) = st.write_all(data)
        {
            self.staging = Some(Pending::Failed(FolderError::Temp(format!("cannot stage the message: {e}"))));
        }
    }

    /// Drops a staged message that no APPEND took (the command failed to parse or was refused).
    pub fn append_abort(&mut self) {
        self.staging = None;
    }
}

impl Session {
    /// SELECT and EXAMINE (RFC 3501 6.3.1-2, RFC 9051 6.3.2-3).
    pub(super) fn select(&mut self, _: &str, cmd: Command, _: &dyn Backend, out: &mut Vec<u8>) -> Reply {
        let Command::Select { mailbox, readonly, condstore, qresync } = cmd else {
            return Some(bad("Internal error"));
        };
        // RFC 7162 3.2.5: the QRESYNC parameter only once QRESYNC is enabled.
        if qresync.is_some() && !self.qresync {
            return Some(bad("QRESYNC is not enabled"));
        }
        // RFC 7162 3.1.8: the CONDSTORE parameter enables CONDSTORE.
        self.condstore |= condstore;
        // RFC 3501 6.3.1: selecting closes the current mailbox first, even when the new SELECT fails;
        // RFC 7162 3.2.11 / RFC 9051 7.1: say so with OK [CLOSED].
        if self.open.is_some() {
            self.deselect();
            out.extend_from_slice(b"* OK [CLOSED] Previous mailbox closed\r\n");
        }
        let name = match self.mailbox_name(&mailbox) {
            Ok(n) => n,
            Err(t) => return Some(t),
        };
        let Some(store) = self.store.as_mut() else { return Some(no("UNAVAILABLE", "No store")) };
        let folder = match store.open(&name, readonly) {
            Ok(f) => f,
            Err(e) => return Some(folder_error(&self.peer.sid, &e)),
        };
        let mut buf = Vec::with_capacity(512);
        self.select_text(&mut buf, folder.as_ref());
        // RFC 7162 3.2.5.2: with the client's last known state, what vanished and what changed.
        if let Some(q) = qresync.filter(|q| q.uidvalidity == folder.uidvalidity())
            && folder.highest_modseq().is_some()
        {
            let msgs = folder.messages();
            let known = q.known_uids.as_ref();
            let missing = super::vanished_uids(msgs, known, 1, folder.uidnext().saturating_sub(1));
            if !missing.is_empty() {
                buf.extend_from_slice(
                    format!("* VANISHED (EARLIER) {}\r\n", super::seq_text(&missing)).as_bytes(),
                );
            }
            let how = super::FlagsFetch { flags: true, rev2: self.rev2, modseq: true };
            for (i, m) in msgs.iter().enumerate().filter(|(_, m)| m.modseq > q.modseq) {
                super::flags_fetch(&mut buf, i + 1, m, Some(m.uid), how);
            }
        }
        out.extend_from_slice(&buf);
        let code = if folder.readonly() { "READ-ONLY" } else { "READ-WRITE" };
        let what = if readonly { "EXAMINE completed" } else { "SELECT completed" };
        self.open = Some(Open::new(folder));
        self.state = State::Selected;
        Some(ok_code(code, what))
    }

    /// The untagged responses of SELECT (RFC 3501 6.3.1, RFC 9051 6.3.2).
    fn select_text(&self, buf: &mut Vec<u8>, f: &dyn Folder) {
        super::flags_text(buf, &f.keywords(), f.readonly());
        let msgs = f.messages();
        buf.extend_from_slice(format!("* {} EXISTS\r\n", msgs.len()).as_bytes());
        if !self.rev2 {
            // RFC 3501 6.3.1 RECENT and UNSEEN; RFC 9051 dropped both.
            let recent = msgs.iter().filter(|m| m.recent).count();
            buf.extend_from_slice(format!("* {recent} RECENT\r\n").as_bytes());
            if let Some(i) = msgs.iter().position(|m| m.flags.system & folder::SEEN == 0) {
                buf.extend_from_slice(format!("* OK [UNSEEN {}] First unseen\r\n", i + 1).as_bytes());
            }
        }
        buf.extend_from_slice(format!("* OK [UIDVALIDITY {}] UIDs valid\r\n", f.uidvalidity()).as_bytes());
        buf.extend_from_slice(format!("* OK [UIDNEXT {}] Predicted next UID\r\n", f.uidnext()).as_bytes());
        // RFC 7162 3.1.2.1-2: once CONDSTORE is enabled, every SELECT says it.
        if self.condstore {
            match f.highest_modseq() {
                Some(h) => buf.extend_from_slice(format!("* OK [HIGHESTMODSEQ {h}] Highest\r\n").as_bytes()),
                None => buf.extend_from_slice(b"* OK [NOMODSEQ] No mod-sequences in this mailbox\r\n"),
            }
        }
        if self.rev2 {
            // RFC 9051 6.3.2: a LIST response with the mailbox name.
            buf.extend_from_slice(b"* LIST () \"/\" ");
            self.write_mailbox(buf, f.name());
            buf.extend_from_slice(b"\r\n");
        }
    }

    /// RFC 3501 6.3.3: a trailing delimiter declares the intent to create children; it is dropped.
    pub(super) fn create(&mut self, _: &str, cmd: Command, _: &dyn Backend, _: &mut Vec<u8>) -> Reply {
        let Command::Create(raw) = cmd else { return Some(bad("Internal error")) };
        let name = match self.mailbox_name(&raw) {
            Ok(n) => n,
            Err(t) => return Some(t),
        };
        let name = name.strip_suffix(folder::DELIMITER).unwrap_or(&name);
        if name.is_empty() {
            return Some(no("CANNOT", "Empty mailbox name"));
        }
        if name == "INBOX" {
            return Some(no("ALREADYEXISTS", "INBOX always exists"));
        }
        if has_wildcard(name) {
            return Some(no("CANNOT", "Mailbox names cannot contain * or %"));
        }
        let r = match self.store.as_mut() {
            Some(s) => s.create(name),
            None => Err(FolderError::Temp("no store".into())),
        };
        Some(self.done(r, "CREATE completed"))
    }

    /// RFC 3501 6.3.4. Deleting the selected mailbox closes it first (as Dovecot does).
    pub(super) fn delete(&mut self, _: &str, cmd: Command, _: &dyn Backend, out: &mut Vec<u8>) -> Reply {
        let Command::Delete(raw) = cmd else { return Some(bad("Internal error")) };
        let name = match self.mailbox_name(&raw) {
            Ok(n) => n,
            Err(t) => return Some(t),
        };
        if name == "INBOX" {
            return Some(no("CANNOT", "INBOX cannot be deleted"));
        }
        self.close_if_selected(&name, false, out);
        let r = match self.store.as_mut() {
            Some(s) => s.delete(&name),
            None => Err(FolderError::Temp("no store".into())),
        };
        Some(self.done(r, "DELETE completed"))
    }

    /// RFC 3501 6.3.5. Renaming the selected mailbox (or a parent of it) closes it first.
    pub(super) fn rename(&mut self, _: &str, cmd: Command, _: &dyn Backend, out: &mut Vec<u8>) -> Reply {
        let Command::Rename { from, to } = cmd else { return Some(bad("Internal error")) };
        let (from, to) = match (self.mailbox_name(&from), self.mailbox_name(&to)) {
            (Ok(f), Ok(t)) => (f, t),
            (Err(e), _) | (_, Err(e)) => return Some(e),
        };
        if to.is_empty() {
            return Some(no("CANNOT", "Empty mailbox name"));
        }
        if to == "INBOX" {
            return Some(no("ALREADYEXISTS", "INBOX always exists"));
        }
        if has_wildcard(&to) {
            return Some(no("CANNOT", "Mailbox names cannot contain * or %"));
        }
        self.close_if_selected(&from, true, out);
        let r = match self.store.as_mut() {
            Some(s) => s.rename(&from, &to),
            None => Err(FolderError::Temp("no store".into())),
        };
        Some(self.done(r, "RENAME completed"))
    }

    /// SUBSCRIBE and UNSUBSCRIBE (RFC 3501 6.3.6-7).
    pub(super) fn subscribe(&mut self, _: &str, cmd: Command, _: &dyn Backend, _: &mut Vec<u8>) -> Reply {
        let (raw, on) = match cmd {
            Command::Subscribe(n) => (n, true),
            Command::Unsubscribe(n) => (n, false),
            _ => return Some(bad("Internal error")),
        };
        let name = match self.mailbox_name(&raw) {
            Ok(n) => n,
            Err(t) => return Some(t),
        };
        let r = match self.store.as_mut() {
            Some(s) => s.subscribe(&name, on),
            None => Err(FolderError::Temp("no store".into())),
        };
        Some(self.done(r, if on { "SUBSCRIBE completed" } else { "UNSUBSCRIBE completed" }))
    }

    /// RFC 2342 5: one personal namespace, no prefix, `/` as delimiter.
    pub(super) fn namespace(&mut self, _: &str, _: Command, _: &dyn Backend, out: &mut Vec<u8>) -> Reply {
        out.extend_from_slice(b"* NAMESPACE ((\"\" \"/\")) NIL NIL\r\n");
        Some(ok("NAMESPACE completed"))
    }

    /// RFC 3501 6.3.10, RFC 9051 6.3.11. On the selected mailbox the figures come from the session's
    /// view, so they agree with what the client was told.
    pub(super) fn status(&mut self, _: &str, cmd: Command, _: &dyn Backend, out: &mut Vec<u8>) -> Reply {
        let Command::Status { mailbox, items } = cmd else { return Some(bad("Internal error")) };
        // RFC 7162 3.1.6: HIGHESTMODSEQ enables CONDSTORE.
        if items.contains(&StatusItem::HighestModSeq) {
            let _ = self.use_condstore(out, false);
        }
        let name = match self.mailbox_name(&mailbox) {
            Ok(n) => n,
            Err(t) => return Some(t),
        };
        let st = match self.status_of(&name) {
            Ok(s) => s,
            Err(e) => return Some(folder_error(&self.peer.sid, &e)),
        };
        let mut buf = Vec::with_capacity(128);
        self.status_line(&mut buf, &name, &st, &items);
        out.extend_from_slice(&buf);
        Some(ok("STATUS completed"))
    }

    /// The STATUS figures of a mailbox (from the view when it is the selected one).
    pub(super) fn status_of(&mut self, name: &str) -> Result<Status, FolderError> {
        if let Some(open) = self.open.as_ref().filter(|o| o.folder.name() == name) {
            let f = &open.folder;
            let msgs = f.messages();
            let count =
                |bit: u8, set: bool| msgs.iter().filter(|m| (m.flags.system & bit != 0) == set).count();
            return Ok(Status {
                messages: u32::try_from(msgs.len()).unwrap_or(u32::MAX),
                recent: u32::try_from(msgs.iter().filter(|m| m.recent).count()).unwrap_or(u32::MAX),
                unseen: u32::try_from(count(folder::SEEN, false)).unwrap_or(u32::MAX),
                deleted: u32::try_from(count(folder::DELETED, true)).unwrap_or(u32::MAX),
                uidnext: f.uidnext(),
                uidvalidity: f.uidvalidity(),
                size: msgs.iter().fold(0u64, |a, m| a.saturating_add(m.size)),
                highest_modseq: f.highest_modseq().unwrap_or(0),
            });
        }
        match self.store.as_mut() {
            Some(s) => s.status(name),
            None => Err(FolderError::Temp("no store".into())),
        }
    }

    /// `* STATUS name (ITEM n ...)`, items in the order asked (RFC 3501 7.2.4).
    pub(super) fn status_line(&self, buf: &mut Vec<u8>, name: &str, st: &Status, items: &[StatusItem]) {
        buf.extend_from_slice(b"* STATUS ");
        self.write_mailbox(buf, name);
        buf.extend_from_slice(b" (");
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                buf.push(b' ');
            }
            let s = match item {
                StatusItem::Messages => format!("MESSAGES {}", st.messages),
                StatusItem::Recent => format!("RECENT {}", st.recent),
                StatusItem::UidNext => format!("UIDNEXT {}", st.uidnext),
                StatusItem::UidValidity => format!("UIDVALIDITY {}", st.uidvalidity),
                StatusItem::Unseen => format!("UNSEEN {}", st.unseen),
                StatusItem::Size => format!("SIZE {}", st.size),
                StatusItem::Deleted => format!("DELETED {}", st.deleted),
                StatusItem::HighestModSeq => format!("HIGHESTMODSEQ {}", st.highest_modseq),
            };
            buf.extend_from_slice(s.as_bytes());
        }
        buf.extend_from_slice(b")\r\n");
    }

    /// RFC 3501 6.3.11, RFC 4315 3 APPENDUID, RFC 3501 [TRYCREATE].
    pub(super) fn append(&mut self, _: &str, cmd: Command, _: &dyn Backend, _: &mut Vec<u8>) -> Reply {
        let Command::Append { mailbox, flags, date, message, binary } = cmd else {
            return Some(bad("Internal error"));
        };
        let name = match self.mailbox_name(&mailbox) {
            Ok(n) => n,
            Err(t) => return Some(t),
        };
        let Some(flags) = store_flags(&flags) else { return Some(bad(r"\Recent cannot be set")) };
        let max = self.params.max_append;
        if max > 0 && u64::try_from(message.len()).unwrap_or(u64::MAX) > max {
            // RFC 7889 4 / RFC 4469 TOOBIG.
            return Some(no("TOOBIG", format!("Message too big (limit {max} octets)")));
        }
        let Some(store) = self.store.as_mut() else { return Some(no("UNAVAILABLE", "No store")) };
        let date = date.map(|d| d.unix);
        // The message was streamed into the store while it arrived (append_begin), or is inline.
        let stored = match self.staging.take() {
            Some(Pending::Staging(st)) => {
                st.finish().and_then(|m| store.append_staged(&name, &flags, date, m))
            }
            Some(Pending::Failed(e)) => Err(e),
            // RFC 3516 4.4: a literal8's octets are kept as they came, which staging does.
            None if binary => store
                .stage(&name, message.len() as u64, date, true)
                .and_then(|mut st| {
                    st.write_all(&message).map_err(|e| FolderError::Temp(format!("cannot stage: {e}")))?;
                    st.finish()
                })
                .and_then(|m| store.append_staged(&name, &flags, date, m)),
            None => store.append(&name, &flags, date, &message),
        };
        match stored {
            Ok(r) => {
                let uid = r.dest.first().copied().unwrap_or(0);
                Some(ok_code(format!("APPENDUID {} {uid}", r.uidvalidity), "APPEND completed"))
            }
            // RFC 3501 6.3.11: a missing mailbox gets TRYCREATE so the client may CREATE and retry.
            Err(FolderError::NotFound) => Some(no("TRYCREATE", "Mailbox does not exist")),
            Err(e) => Some(folder_error(&self.peer.sid, &e)),
        }
    }

    /// Closes the selected mailbox when `name` is it (or, with `parents`, one of its parents).
    fn close_if_selected(&mut self, name: &str, parents: bool, out: &mut Vec<u8>) {
        let hit = self.open.as_ref().is_some_and(|o| {
            let sel = o.folder.name();
            sel == name
                || (parents && sel.strip_prefix(name).is_some_and(|rest| rest.starts_with(folder::DELIMITER)))
        });
        if hit {
            self.deselect();
            out.extend_from_slice(b"* OK [CLOSED] Mailbox closed\r\n");
        }
    }

    /// A store result as the tagged reply.
    fn done(&self, r: Result<(), FolderError>, text: &'static str) -> Tagged {
        match r {
            Ok(()) => ok(text),
            Err(e) => folder_error(&self.peer.sid, &e),
        }
    }
}

/// RFC 3501 5.1: `*` and `%` in a name would make it unlistable on its own.
fn has_wildcard(name: &str) -> bool {
    name.contains(['*', '%'])
}
