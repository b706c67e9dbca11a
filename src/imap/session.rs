//! The IMAP server state machine, free of I/O: parsed commands in, responses out (RFC 3501 3 states,
//! 6 commands, 7 responses; RFC 9051 the same for IMAP4rev2; RFC 5161 ENABLE; RFC 2177 IDLE; RFC 4959
//! SASL-IR; RFC 2971 ID; RFC 2342 NAMESPACE; RFC 3691 UNSELECT; RFC 4315 UIDPLUS; RFC 6851 MOVE;
//! RFC 5258 LIST-EXTENDED, RFC 3348 CHILDREN, RFC 5819 LIST-STATUS, RFC 6154 SPECIAL-USE; RFC 4731
//! ESEARCH, RFC 5182 SEARCHRES; RFC 5256 SORT and THREAD, RFC 5267 ESORT, RFC 5957 SORT=DISPLAY;
//! RFC 8438 STATUS=SIZE; RFC 6855 UTF8=ACCEPT; RFC 5530 response codes).
//!
//! The caller (the connection's driver, server/drivers/imap.rs) reads a command, parses it and calls
//! [`Session::on_command`], which answers with [`Action`]s, as the SMTP and POP3 sessions do: bytes
//! to send, a FETCH to stream ([`FetchJob`], one message at a time, so the driver may wait for a
//! slow reader between messages and then calls [`Session::fetch_done`]), STARTTLS, or the end.
//! [`Session::mode`] tells how to read the next line: a command, a SASL response
//! ([`Session::on_sasl_line`]) or the `DONE` that ends IDLE ([`Session::idle_done`], with
//! [`Session::idle_poll`] whenever the mailbox may have changed). Every command is checked against one
//! dispatch table ([`TABLE`]) listing its handler and the states where it is allowed.

mod anystate;
mod auth;
mod compress;
mod list;
mod mailbox;
pub use mailbox::AppendStart;
mod selected;
mod sort;
mod table;
pub use table::{Entry, TABLE, Verb};
use table::{Reply, SEL};

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::Arc;

pub use crate::auth::sasl::Login;
use crate::auth::sasl::{Mechanism, TlsInfo};
use crate::imap::command::ParseError;
use crate::imap::fetch::{self, FetchJob};
use crate::imap::types::{Command, Flag, SeqNum, SeqSet};
use crate::imap::{encode, mutf7};
use crate::store::folder::{self, Changes, Flags, Folder, FolderError, Store, Uid};

/// Limits and names a session needs (built once from the configuration).
#[derive(Clone, Debug)]
pub struct Params {
    pub hostname: String,
    /// Counted error replies (BAD, failed logins) after which the connection is closed.
    pub max_errors: usize,
    /// STARTTLS is offered (a certificate is configured).
    pub starttls: bool,
    /// SASL mechanisms offered with AUTHENTICATE (RFC 3501 6.2.2); empty: none.
    pub auth_mechanisms: Vec<Mechanism>,
    /// The largest message APPEND accepts, in octets; 0: no limit.
    pub max_append: u64,
}

/// The client at the other end.
#[derive(Clone, Debug)]
pub struct Peer {
    pub ip: IpAddr,
    pub port: u16,
    /// LOGIN and cleartext SASL mechanisms are allowed without TLS (auth.cleartext_networks).
    pub cleartext_auth: bool,
    /// The connection is TLS from the start (imaps, RFC 8314).
    pub tls: bool,
    /// The session id used in every log line.
    pub sid: String,
}

/// What the session asks of the server it runs in, so that it stays free of network I/O.
pub trait Backend: Login {
    /// Opens the logged-in user's folder tree (the caller takes the user's identity for the rest of
    /// the session), or hands the session to a process of the user's own. The error text is for
    /// the log.
    fn open_store(&self, user: &str) -> Result<Opened, String>;
}

/// Where a logged-in user's session goes on.
pub enum Opened {
    /// Here, over this store.
    Here(Box<dyn Store>),
    /// In the user's mail process: after the tagged OK the caller relays the connection to it
    /// ([`Mode::HandedOff`]).
    Elsewhere,
}

/// What the next input line is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// A command: parse it and call [`Session::on_command`].
    Command,
    /// A SASL response line (RFC 3501 6.2.2): call [`Session::on_sasl_line`].
    SaslResponse,
    /// IDLE is running (RFC 2177): call [`Session::idle_poll`] now and then and
    /// [`Session::idle_done`] with the next line.
    Idle,
    /// The session is over: close the connection.
    Closed,
    /// The session goes on in the user's mail process: relay the connection there.
    HandedOff,
}

/// What the caller does, in order (the session writes nothing itself).
#[derive(Debug)]
pub enum Action {
    /// Write these bytes (complete response lines, CRLF included).
    Reply(Vec<u8>),
    /// Send a FETCH's responses: call [`FetchJob::step`] with [`Session::fetch_folder`] until it
    /// returns false (the client may be waited for between two messages), then carry out what
    /// [`Session::fetch_done`] gives. Always the last action of its list.
    Fetch(FetchJob),
    /// Start TLS now (the `OK` is in the replies before), then call [`Session::on_tls`]; input
    /// already buffered must be thrown away (RFC 3501 6.2.1, as RFC 3207 4.2 / CVE-2011-0411).
    StartTls,
    /// Close the connection (after writing everything before it).
    Close,
    /// RFC 4978 3: compress both directions from now on (the `OK` before this is sent as it is);
    /// input already buffered after the command is compressed input.
    Compress,
}

/// How a command ends: the session turns it into the last [`Action`]; the drivers keep it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Continue,
    /// Start TLS now (the `OK` is written), then call [`Session::on_tls`]; input already buffered
    /// must be thrown away (RFC 3501 6.2.1, as RFC 3207 4.2 / CVE-2011-0411).
    StartTls,
    /// Close the connection.
    Close,
    /// Start compressing both directions (RFC 4978), after the `OK` is written as it is.
    Compress,
}

/// The connection state (RFC 3501 3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    NotAuthenticated,
    Authenticated,
    Selected,
    Logout,
}

use State::{Authenticated, NotAuthenticated, Selected};

/// The capabilities offered in every state (RFC 3501 7.2.1; RFC 9051 7.2.2).
const BASE_CAPABILITIES: &str = "IMAP4rev1 IMAP4rev2 LITERAL+ SASL-IR ID ENABLE IDLE NAMESPACE UNSELECT \
     UIDPLUS MOVE CHILDREN LIST-EXTENDED LIST-STATUS SPECIAL-USE ESEARCH SEARCHRES STATUS=SIZE BINARY \
     UTF8=ACCEPT CONDSTORE QRESYNC SORT SORT=DISPLAY THREAD=ORDEREDSUBJECT THREAD=REFERENCES ESORT";

/// The tagged completion of a command.
#[derive(Debug)]
struct Tagged {
    status: &'static str,
    /// A response code without brackets (RFC 3501 7.1, RFC 5530).
    code: Option<String>,
    text: Cow<'static, str>,
    then: Outcome,
    /// Counts towards `max_errors`.
    counts: bool,
}

impl Tagged {
    fn then(mut self, then: Outcome) -> Tagged {
        self.then = then;
        self
    }
}

fn tagged(status: &'static str, code: Option<String>, text: impl Into<Cow<'static, str>>) -> Tagged {
    Tagged { status, code, text: text.into(), then: Outcome::Continue, counts: status == "BAD" }
}

fn ok(text: impl Into<Cow<'static, str>>) -> Tagged {
    tagged("OK", None, text)
}

fn ok_code(code: impl Into<String>, text: impl Into<Cow<'static, str>>) -> Tagged {
    tagged("OK", Some(code.into()), text)
}

fn no(code: &str, text: impl Into<Cow<'static, str>>) -> Tagged {
    tagged("NO", Some(code.to_string()), text)
}

/// A tagged BAD: a client error, counted towards `max_errors`.
fn bad(text: impl Into<Cow<'static, str>>) -> Tagged {
    tagged("BAD", None, text)
}

/// Store errors as tagged NO replies with RFC 5530 codes. Details of temporary failures (paths, errno)
/// go to the log only.
fn folder_error(sid: &str, e: &FolderError) -> Tagged {
    match e {
        FolderError::NotFound => no("NONEXISTENT", "Mailbox does not exist"),
        FolderError::Exists => no("ALREADYEXISTS", "Mailbox already exists"),
        FolderError::BadName(s) | FolderError::Cannot(s) => no("CANNOT", clean_text(s)),
        FolderError::ReadOnly => no("READ-ONLY", "Mailbox is read-only"),
        FolderError::TooBig => no("TOOBIG", "Message too big"),
        FolderError::Expunged => no("EXPUNGEISSUED", "Some messages were expunged by another session"),
        FolderError::Temp(s) => {
            log::warn!("session={sid} event=imap_store_error error=\"{}\"", clean_text(s));
            no("UNAVAILABLE", "Temporary failure, try again later")
        }
    }
}

/// Text safe to put on a response line: printable ASCII only, bounded.
fn clean_text(s: &str) -> String {
    let t: String =
        s.chars().take(200).map(|c| if c.is_ascii_graphic() || c == ' ' { c } else { '?' }).collect();
    if t.is_empty() { "Cannot do that".to_string() } else { t }
}

/// The currently selected mailbox.
struct Open {
    folder: Box<dyn Folder>,
    /// The SEARCH result saved with RETURN (SAVE), as UIDs (RFC 5182 2.1).
    saved: Vec<Uid>,
    /// The keywords the client has been told of with FLAGS (at SELECT, or since).
    announced: Vec<String>,
    /// SORT and THREAD keys read so far, by UID (RFC 5256).
    sort_keys: crate::imap::sort::KeyCache,
}

impl Open {
    fn new(folder: Box<dyn Folder>) -> Open {
        let announced = folder.keywords();
        Open { folder, saved: Vec::new(), announced, sort_keys: Default::default() }
    }

    /// RFC 3501 7.2.6: a keyword is announced with FLAGS (and PERMANENTFLAGS) before any FETCH
    /// response uses it; writes them when the folder has keywords the client was not told of.
    fn announce(&mut self, buf: &mut Vec<u8>) {
        let keywords = self.folder.keywords();
        if keywords.iter().any(|k| !self.announced.contains(k)) {
            flags_text(buf, &keywords, self.folder.readonly());
            self.announced = keywords;
        }
    }
}

/// `* FLAGS` and `* OK [PERMANENTFLAGS]` for a folder with these keywords (RFC 3501 7.2.6, 7.1;
/// `\*`: new keywords may be stored; none permanent when read-only).
fn flags_text(buf: &mut Vec<u8>, keywords: &[String], readonly: bool) {
    let mut flags = String::from(r"\Answered \Flagged \Deleted \Seen \Draft");
    for k in keywords {
        flags.push(' ');
        flags.push_str(k);
    }
    buf.extend_from_slice(format!("* FLAGS ({flags})\r\n").as_bytes());
    if readonly {
        buf.extend_from_slice(b"* OK [PERMANENTFLAGS ()] No permanent flags permitted\r\n");
    } else {
        buf.extend_from_slice(format!("* OK [PERMANENTFLAGS ({flags} \\*)] Flags permitted\r\n").as_bytes());
    }
}

/// One IMAP server conversation.
pub struct Session {
    params: Arc<Params>,
    peer: Peer,
    state: State,
    errors: usize,
    tls: Option<TlsInfo>,
    user: Option<String>,
    store: Option<Box<dyn Store>>,
    open: Option<Open>,
    /// ENABLE IMAP4rev2 (RFC 9051).
    rev2: bool,
    /// ENABLE UTF8=ACCEPT (RFC 6855). With it or IMAP4rev2, mailbox names and strings are UTF-8
    /// ([`Session::utf8`]).
    utf8_accept: bool,
    /// RFC 7162 3.1: CONDSTORE is enabled (ENABLE, or the first command that uses it); FETCH
    /// responses of flag changes then carry MODSEQ.
    condstore: bool,
    /// RFC 7162 3.2: ENABLE QRESYNC: expunges are told as `* VANISHED uids`, SELECT takes QRESYNC.
    qresync: bool,
    /// The AUTHENTICATE in progress and its tag.
    sasl: Option<auth::Sasl>,
    /// The tag of the IDLE in progress.
    idle_tag: Option<String>,
    /// The login was handed to the user's mail process ([`Opened::Elsewhere`]).
    handed_off: bool,
    /// The message of the APPEND being received, streamed to the store (see [`Session::append_begin`]).
    staging: Option<mailbox::Pending>,
    /// The FETCH a handler set up, for [`Session::on_command`] to hand to the caller.
    fetching: Option<FetchJob>,
    /// COMPRESS DEFLATE is on (RFC 4978).
    compressed: bool,
}

impl Session {
    pub fn new(params: Arc<Params>, peer: Peer) -> Session {
        Session {
            params,
            peer,
            state: NotAuthenticated,
            errors: 0,
            tls: None,
            user: None,
            store: None,
            open: None,
            rev2: false,
            utf8_accept: false,
            condstore: false,
            qresync: false,
            sasl: None,
            idle_tag: None,
            handed_off: false,
            staging: None,
            fetching: None,
            compressed: false,
        }
    }

    /// A session that starts logged in: one handed to a mail process after the server checked the
    /// login (the server sent the tagged OK), or RFC 3501 PREAUTH. No greeting is written.
    pub fn preauth(params: Arc<Params>, peer: Peer, user: String, store: Box<dyn Store>) -> Session {
        let mut s = Session::new(params, peer);
        s.state = Authenticated;
        s.user = Some(user);
        s.store = Some(store);
        s
    }

    /// The TLS state the server saw when the session was handed over (for capabilities).
    pub fn set_tls_active(&mut self, description: String) {
        self.tls = Some(TlsInfo { description, bindings: Vec::new() });
    }

    /// RFC 3501 7.1.1: the greeting, with the capabilities (RFC 3501 7.1 CAPABILITY code).
    pub fn greeting(&self) -> Vec<u8> {
        format!("* OK [CAPABILITY {}] {} buzon IMAP ready\r\n", self.capabilities(), self.params.hostname)
            .into_bytes()
    }

    /// Sent instead of the greeting when no worker is free (RFC 3501 7.1.5).
    pub fn busy() -> Vec<u8> {
        b"* BYE [UNAVAILABLE] Server busy, try again later\r\n".to_vec()
    }

    pub fn mode(&self) -> Mode {
        if self.state == State::Logout {
            Mode::Closed
        } else if self.handed_off {
            Mode::HandedOff
        } else if self.sasl.is_some() {
            Mode::SaslResponse
        } else if self.idle_tag.is_some() {
            Mode::Idle
        } else {
            Mode::Command
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn peer(&self) -> &Peer {
        &self.peer
    }

    /// Counted errors so far.
    pub fn errors(&self) -> usize {
        self.errors
    }

    pub fn logged_in_user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// The negotiated TLS protocol and cipher, if any.
    pub fn tls(&self) -> Option<&str> {
        self.tls.as_ref().map(|t| t.description.as_str())
    }

    /// One parsed command: its responses, the tagged one last (or an [`Action::Fetch`] whose
    /// completion [`Session::fetch_done`] gives).
    pub fn on_command(&mut self, tag: String, cmd: Command, b: &dyn Backend) -> Vec<Action> {
        let mut out = Vec::new();
        if self.state == State::Logout {
            return vec![Action::Close];
        }
        if self.mode() != Mode::Command {
            // The caller should have fed this line elsewhere; answer without disturbing the exchange.
            return self.answer(&tag, bad("Command not expected now"), out);
        }
        let verb = Verb::of(&cmd);
        let Some(entry) = TABLE.iter().find(|e| e.verb == verb) else {
            return self.answer(&tag, bad("Unknown command"), out);
        };
        if !entry.allowed.contains(&self.state) {
            let text = match self.state {
                NotAuthenticated => "Not logged in",
                Authenticated if entry.allowed == SEL => "No mailbox selected",
                Authenticated | Selected if entry.allowed.contains(&NotAuthenticated) => "Already logged in",
                _ => "Command not valid in this state",
            };
            return self.answer(&tag, bad(text), out);
        }
        // RFC 3501 7.4.1: no EXPUNGE responses while answering FETCH, STORE or SEARCH (the UID forms
        // may have them).
        let expunges = !matches!(
            cmd,
            Command::Fetch { uid: false, .. }
                | Command::Store { uid: false, .. }
                | Command::Search { uid: false, .. }
                | Command::Sort { uid: false, .. }
                | Command::Thread { uid: false, .. }
        );
        let reply = (entry.handler)(self, &tag, cmd, b, &mut out);
        let Some(reply) = reply else {
            let mut actions = actions(out, Outcome::Continue);
            if let Some(job) = self.fetching.take() {
                actions.push(Action::Fetch(job));
            }
            return actions;
        };
        let outcome = self.complete(&tag, reply, expunges, &mut out);
        actions(out, outcome)
    }

    /// A command that did not parse: a tagged BAD when its tag was read, else an untagged one.
    pub fn on_parse_error(&mut self, err: ParseError) -> Vec<Action> {
        if self.state == State::Logout {
            return vec![Action::Close];
        }
        let text = clean_text(&err.message);
        match err.tag {
            Some(tag) if !tag.is_empty() && tag.bytes().all(is_tag_char) => {
                self.answer(&tag, bad(text), Vec::new())
            }
            _ => self.answer("*", bad(text), Vec::new()),
        }
    }

    /// RFC 2177 3: while idling, tells the client about changes as they happen.
    /// What an IDLE waits on to hear of changes to the selected mailbox at once (none selected: nothing).
    pub fn idle_paths(&self) -> Vec<std::path::PathBuf> {
        self.open.as_ref().map(|o| o.folder.watch_paths()).unwrap_or_default()
    }

    /// In IDLE: the changes of the selected mailbox since the last look, if any (RFC 2177 3).
    pub fn idle_poll(&mut self) -> Vec<Action> {
        let mut out = Vec::new();
        if self.idle_tag.is_some() && self.open.as_mut().is_some_and(|o| o.folder.changed()) {
            self.report_changes(true, &mut out);
        }
        let outcome = if self.state == State::Logout { Outcome::Close } else { Outcome::Continue };
        actions(out, outcome)
    }

    /// The line after IDLE's continuation: `DONE` ends it (RFC 2177 3).
    pub fn idle_done(&mut self, line: &[u8]) -> Vec<Action> {
        let mut out = Vec::new();
        let Some(tag) = self.idle_tag.take() else {
            return self.answer("*", bad("No IDLE in progress"), out);
        };
        if !line.eq_ignore_ascii_case(b"DONE") {
            return self.answer(&tag, bad("Expected DONE"), out);
        }
        if self.state == Selected {
            self.report_changes(true, &mut out);
            if self.state == State::Logout {
                return actions(out, Outcome::Close);
            }
        }
        self.answer(&tag, ok("IDLE terminated"), out)
    }

    /// RFC 3501 5.4: the client was idle for too long.
    pub fn autologout(&mut self) -> Vec<Action> {
        self.end("autologout");
        actions(b"* BYE Autologout; idle for too long\r\n".to_vec(), Outcome::Close)
    }

    /// The server is stopping (RFC 3501 7.1.5).
    pub fn shutdown(&mut self) -> Vec<Action> {
        self.end("shutdown");
        actions(b"* BYE Server shutting down\r\n".to_vec(), Outcome::Close)
    }

    /// Carries out `actions` into `out` whole, FETCH responses included, and says how they end:
    /// for callers that keep the answer in memory (tests, fuzzing). The drivers stream instead.
    pub fn perform_into(&mut self, actions: Vec<Action>, out: &mut Vec<u8>) -> std::io::Result<Outcome> {
        let mut next = Outcome::Continue;
        let mut todo = actions;
        while !todo.is_empty() {
            let mut more = Vec::new();
            for action in todo {
                match action {
                    Action::Reply(bytes) => out.extend_from_slice(&bytes),
                    Action::Fetch(mut job) => {
                        while let Some(folder) = self.fetch_folder() {
                            if !job.step(folder, out)? {
                                break;
                            }
                        }
                        more = self.fetch_done(job);
                    }
                    Action::StartTls => next = Outcome::StartTls,
                    Action::Close => next = Outcome::Close,
                    Action::Compress => next = Outcome::Compress,
                }
            }
            todo = more;
        }
        Ok(next)
    }

    // --- internals ---

    /// A command's end after its handler: the updates of the selected mailbox (RFC 3501 7.3-7.4,
    /// EXPUNGEs only when `expunges`), then the tagged completion.
    fn complete(&mut self, tag: &str, reply: Tagged, expunges: bool, out: &mut Vec<u8>) -> Outcome {
        if self.state == Selected && reply.then == Outcome::Continue {
            self.report_changes(expunges, out);
            if self.state == State::Logout {
                return Outcome::Close;
            }
        }
        self.finish(tag, reply, out)
    }

    /// The tagged completion after the untagged responses in `out`, as actions.
    fn answer(&mut self, tag: &str, reply: Tagged, mut out: Vec<u8>) -> Vec<Action> {
        let outcome = self.finish(tag, reply, &mut out);
        actions(out, outcome)
    }

    /// Writes the tagged completion, counts errors and applies the error limit.
    fn finish(&mut self, tag: &str, reply: Tagged, out: &mut Vec<u8>) -> Outcome {
        out.extend_from_slice(tag.as_bytes());
        out.push(b' ');
        out.extend_from_slice(reply.status.as_bytes());
        if let Some(code) = &reply.code {
            out.extend_from_slice(b" [");
            out.extend_from_slice(code.as_bytes());
            out.push(b']');
        }
        out.push(b' ');
        out.extend_from_slice(reply.text.as_bytes());
        out.extend_from_slice(b"\r\n");
        if reply.counts {
            self.errors += 1;
            if self.errors >= self.params.max_errors {
                log::info!("session={} event=imap_too_many_errors errors={}", self.peer.sid, self.errors);
                self.end("errors");
                out.extend_from_slice(b"* BYE Too many errors\r\n");
                return Outcome::Close;
            }
        }
        if reply.then == Outcome::Close {
            self.end("logout");
        }
        reply.then
    }

    /// Enters the Logout state: releases the folder and logs the end of a login.
    fn end(&mut self, reason: &str) {
        if self.state == State::Logout {
            return;
        }
        self.deselect();
        self.sasl = None;
        self.idle_tag = None;
        self.store = None;
        if let Some(user) = self.user.as_ref().filter(|_| !self.handed_off) {
            log::info!("session={} event=logout user={user} reason={reason}", self.peer.sid);
        }
        self.state = State::Logout;
    }

    /// Closes the selected folder, if any (no expunge), and goes back to the authenticated state.
    fn deselect(&mut self) {
        if let Some(mut open) = self.open.take()
            && let Err(e) = open.folder.close()
        {
            log::warn!(
                "session={} event=imap_close_failed error=\"{}\"",
                self.peer.sid,
                clean_text(&e.to_string())
            );
        }
        if self.state == Selected {
            self.state = Authenticated;
        }
    }

    /// RFC 3501 7.3-7.4: syncs the selected folder and writes the untagged updates (EXPUNGE, EXISTS,
    /// RECENT, FETCH FLAGS) for changes made by others.
    fn report_changes(&mut self, expunges: bool, out: &mut Vec<u8>) {
        let how = FlagsFetch { flags: true, rev2: self.rev2, modseq: self.condstore };
        let Some(open) = self.open.as_mut() else { return };
        let before =
            (self.qresync && expunges).then(|| open.folder.messages().iter().map(|m| m.uid).collect());
        let changes = match open.folder.sync(expunges) {
            Ok(c) => c,
            // The selected mailbox was deleted, or its UIDs were renumbered (a new UIDVALIDITY),
            // under this session: nothing it holds is valid any more, so it ends as Dovecot ends it.
            Err(FolderError::NotFound) => return self.lost_mailbox("Mailbox was deleted", out),
            Err(FolderError::Temp(m)) if m.contains("UIDVALIDITY") => {
                return self.lost_mailbox("Mailbox UIDVALIDITY changed", out);
            }
            Err(e) => {
                log::warn!(
                    "session={} event=imap_sync_failed error=\"{}\"",
                    self.peer.sid,
                    clean_text(&e.to_string())
                );
                return;
            }
        };
        open.announce(out);
        out.extend_from_slice(&changes_text(&changes, open.folder.messages(), how, before));
    }

    /// A command that uses CONDSTORE enables it (RFC 7162 3.1); with a mailbox selected, the first
    /// time says its HIGHESTMODSEQ (or NOMODSEQ). `needs_modseq`: the command cannot work on a
    /// mailbox without mod-sequences (CHANGEDSINCE, UNCHANGEDSINCE, SEARCH MODSEQ): BAD there.
    fn use_condstore(&mut self, out: &mut Vec<u8>, needs_modseq: bool) -> Option<Tagged> {
        let highest = self.open.as_ref().map(|o| o.folder.highest_modseq());
        if !self.condstore {
            self.condstore = true;
            match highest {
                Some(Some(h)) => {
                    out.extend_from_slice(format!("* OK [HIGHESTMODSEQ {h}] Highest\r\n").as_bytes())
                }
                Some(None) => out.extend_from_slice(b"* OK [NOMODSEQ] No mod-sequences in this mailbox\r\n"),
                None => {}
            }
        }
        match highest {
            Some(None) if needs_modseq => Some(bad("This mailbox keeps no mod-sequences (NOMODSEQ)")),
            _ => None,
        }
    }

    /// Ends the session with `* BYE` (RFC 3501 7.1.5) when its selected mailbox is gone.
    fn lost_mailbox(&mut self, why: &str, out: &mut Vec<u8>) {
        log::info!("session={} event=logout reason=mailbox_lost detail=\"{why}\"", self.peer.sid);
        self.open = None;
        self.idle_tag = None;
        self.state = State::Logout;
        out.extend_from_slice(format!("* BYE {why}\r\n").as_bytes());
    }

    /// Whether `$`-free message-number sets stay within the view (RFC 3501 9: a message number above
    /// the count is an error; `*` ranges are always fine).
    fn seq_in_range(set: &SeqSet, count: usize) -> bool {
        match set {
            SeqSet::Saved => true,
            SeqSet::Ranges(ranges) => ranges.iter().all(|r| match (r.start, r.end) {
                (SeqNum::Value(a), SeqNum::Value(b)) => usize::try_from(a.max(b)).is_ok_and(|n| n <= count),
                _ => true,
            }),
        }
    }

    /// A mailbox name as the client sent it, decoded (modified UTF-7, or UTF-8 once enabled: RFC 3501
    /// 5.1.3, RFC 6855 3, RFC 9051 5.1), with `INBOX` in any case made `INBOX` (RFC 3501 5.1).
    fn mailbox_name(&self, raw: &[u8]) -> Result<String, Tagged> {
        // A name that does not decode names no mailbox that can exist: NO, not BAD (the command
        // is well formed), so it neither counts as a protocol error nor ends the session.
        let name = if self.utf8() {
            String::from_utf8(raw.to_vec()).map_err(|_| no("CANNOT", "Mailbox name is not valid UTF-8"))?
        } else {
            mutf7::decode(raw).ok_or_else(|| no("CANNOT", "Mailbox name is not valid modified UTF-7"))?
        };
        if name.chars().any(char::is_control) {
            return Err(no("CANNOT", "Mailbox name contains control characters"));
        }
        Ok(normalize_inbox(name))
    }

    /// Appends a mailbox name as a quoted string (or literal) in the client's encoding.
    fn write_mailbox(&self, out: &mut Vec<u8>, name: &str) {
        if self.utf8() {
            encode::string_utf8(out, name.as_bytes());
        } else {
            encode::string(out, mutf7::encode(name).as_bytes());
        }
    }

    /// Strings and mailbox names are UTF-8 (RFC 6855 3 UTF8=ACCEPT; RFC 9051 5.1 IMAP4rev2).
    fn utf8(&self) -> bool {
        self.rev2 || self.utf8_accept
    }

    /// The capability list for now (RFC 3501 6.1.1, 7.2.1).
    fn capabilities(&self) -> String {
        let mut caps = String::from(BASE_CAPABILITIES);
        if self.state == NotAuthenticated {
            if self.params.starttls && !self.tls_active() {
                caps.push_str(" STARTTLS");
            }
            for m in self.params.auth_mechanisms.iter().filter(|m| self.mechanism_usable(m)) {
                caps.push_str(" AUTH=");
                caps.push_str(m.name());
            }
            // RFC 3501 6.2.3: LOGIN refused until TLS.
            if !self.cleartext_allowed() {
                caps.push_str(" LOGINDISABLED");
            }
        } else {
            // RFC 4978 3: COMPRESS is valid only once logged in.
            caps.push_str(" COMPRESS=DEFLATE");
        }
        caps
    }
}

impl Drop for Session {
    /// A connection that ends without LOGOUT still releases the folder (an mbox writes its flags).
    fn drop(&mut self) {
        self.end("disconnect");
    }
}

/// RFC 3501 9 tag: ASTRING-CHAR except `+`.
fn is_tag_char(b: u8) -> bool {
    encode::is_astring_char(b) && b != b'+'
}

/// `INBOX` in any case, as a whole name or first level, is `INBOX` (RFC 3501 5.1).
fn normalize_inbox(name: String) -> String {
    let first = name.split(folder::DELIMITER).next().unwrap_or("");
    if first.eq_ignore_ascii_case("INBOX") && first != "INBOX" {
        format!("INBOX{}", name.get(first.len()..).unwrap_or(""))
    } else {
        name
    }
}

/// Responses, then what the outcome asks of the caller.
fn actions(out: Vec<u8>, outcome: Outcome) -> Vec<Action> {
    let mut actions = Vec::with_capacity(2);
    if !out.is_empty() {
        actions.push(Action::Reply(out));
    }
    match outcome {
        Outcome::Continue => {}
        Outcome::StartTls => actions.push(Action::StartTls),
        Outcome::Close => actions.push(Action::Close),
        Outcome::Compress => actions.push(Action::Compress),
    }
    actions
}

/// Expunges told as `* n EXPUNGE` each, or, once QRESYNC is enabled (`before`: the view's UIDs
/// before the removals), as one `* VANISHED uids` (RFC 7162 3.2.10).
fn expunged_text(nums: &[u32], before: Option<Vec<Uid>>) -> Vec<u8> {
    let mut buf = Vec::with_capacity(nums.len() * 16);
    match before {
        Some(mut uids) => {
            // Each number counts in the view after the removals before it.
            let mut gone: Vec<Uid> = nums
                .iter()
                .filter_map(|&n| {
                    let i = usize::try_from(n).ok()?.checked_sub(1)?;
                    (i < uids.len()).then(|| uids.remove(i))
                })
                .collect();
            gone.sort_unstable();
            if !gone.is_empty() {
                buf.extend_from_slice(format!("* VANISHED {}\r\n", seq_text(&gone)).as_bytes());
            }
        }
        None => {
            for n in nums {
                buf.extend_from_slice(format!("* {n} EXPUNGE\r\n").as_bytes());
            }
        }
    }
    buf
}

/// UIDs from `lo` to `hi` (or of `known`, within them) that the view does not hold: what a client
/// resynchronising with QRESYNC must forget (RFC 7162 3.2.5.2, 3.2.6). Every such UID is told,
/// expunged before or after the client's mod-sequence: RFC 7162 3.2.5.2 lets the server include
/// UIDs the client may not know of.
fn vanished_uids(msgs: &[folder::MessageInfo], known: Option<&SeqSet>, lo: Uid, hi: Uid) -> Vec<Uid> {
    let present: std::collections::HashSet<Uid> = msgs.iter().map(|m| m.uid).collect();
    let mut out = Vec::new();
    let ranges: Vec<(Uid, Uid)> = match known {
        Some(SeqSet::Ranges(rs)) => rs
            .iter()
            .map(|r| {
                let v = |s: SeqNum| match s {
                    SeqNum::Value(v) => v,
                    SeqNum::Star => hi,
                };
                let (a, b) = (v(r.start), v(r.end));
                (a.min(b).max(lo), a.max(b).min(hi))
            })
            .collect(),
        _ => vec![(lo, hi)],
    };
    for (a, b) in ranges {
        // Bounded by the mailbox's UIDNEXT, not by the client's numbers.
        let mut u = a;
        while u <= b {
            if !present.contains(&u) {
                out.push(u);
            }
            if u == Uid::MAX {
                break;
            }
            u += 1;
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// The untagged lines for a sync's changes.
fn changes_text(
    changes: &Changes,
    messages: &[folder::MessageInfo],
    how: FlagsFetch,
    before: Option<Vec<Uid>>,
) -> Vec<u8> {
    let mut buf = expunged_text(&changes.expunged, before);
    if let Some(n) = changes.exists {
        buf.extend_from_slice(format!("* {n} EXISTS\r\n").as_bytes());
        if !how.rev2 {
            // RFC 3501 7.3.2 (gone in RFC 9051).
            let recent = messages.iter().filter(|m| m.recent).count();
            buf.extend_from_slice(format!("* {recent} RECENT\r\n").as_bytes());
        }
    }
    for &i in &changes.flags {
        if let Some(m) = messages.get(i) {
            flags_fetch(&mut buf, i + 1, m, None, how);
        }
    }
    buf
}

/// `* n FETCH (FLAGS (...))`, with the UID when asked (RFC 3501 7.4.2).
/// `* n FETCH (FLAGS (...) [UID u] [MODSEQ (m)])`; MODSEQ once CONDSTORE is enabled (RFC 7162
/// 3.1.4: a flag change's FETCH carries it), `flags == false` leaves FLAGS out (a .SILENT
/// conditional STORE, RFC 7162 3.1.3).
fn flags_fetch(buf: &mut Vec<u8>, n: usize, m: &folder::MessageInfo, uid: Option<Uid>, how: FlagsFetch) {
    buf.extend_from_slice(format!("* {n} FETCH (").as_bytes());
    let mut sep = "";
    if how.flags {
        buf.extend_from_slice(b"FLAGS ");
        fetch::write_flags(buf, &m.flags, m.recent && !how.rev2);
        sep = " ";
    }
    if let Some(uid) = uid {
        buf.extend_from_slice(format!("{sep}UID {uid}").as_bytes());
        sep = " ";
    }
    if how.modseq && m.modseq > 0 {
        buf.extend_from_slice(format!("{sep}MODSEQ ({})", m.modseq).as_bytes());
    }
    buf.extend_from_slice(b")\r\n");
}

/// What [`flags_fetch`] writes.
#[derive(Clone, Copy)]
struct FlagsFetch {
    flags: bool,
    rev2: bool,
    modseq: bool,
}

/// Flags from a command (STORE, APPEND) as the store keeps them; `\Recent` cannot be set (RFC 3501
/// 2.3.2, 9 flag).
fn store_flags(flags: &[Flag]) -> Option<Flags> {
    let mut out = Flags::default();
    for f in flags {
        match f {
            Flag::Seen => out.system |= folder::SEEN,
            Flag::Answered => out.system |= folder::ANSWERED,
            Flag::Flagged => out.system |= folder::FLAGGED,
            Flag::Deleted => out.system |= folder::DELETED,
            Flag::Draft => out.system |= folder::DRAFT,
            Flag::Recent => return None,
            Flag::Keyword(k) => out.keywords.push(k.clone()),
        }
    }
    out.keywords.sort();
    out.keywords.dedup();
    Some(out)
}

/// Numbers as a sequence set, runs of consecutive ascending numbers as `a:b`, order kept (RFC 3501 9
/// sequence-set; RFC 4315 3 uid-set keeps COPYUID's pairing; RFC 4731 3.1 ALL).
fn seq_text(nums: &[u32]) -> String {
    let mut s = String::new();
    let mut i = 0;
    while let Some(&start) = nums.get(i) {
        let mut end = start;
        let mut j = i + 1;
        while let Some(&n) = nums.get(j) {
            if end.checked_add(1) != Some(n) {
                break;
            }
            end = n;
            j += 1;
        }
        if !s.is_empty() {
            s.push(',');
        }
        if end == start {
            s.push_str(&start.to_string());
        } else {
            s.push_str(&format!("{start}:{end}"));
        }
        i = j;
    }
    s
}

#[cfg(test)]
mod tests;
