//! The POP3 server state machine, free of I/O: lines in, replies and actions out (RFC 1939 3-6 states
//! and commands; RFC 2449 CAPA, RESP-CODES, PIPELINING; RFC 2595 4 STLS; RFC 5034 AUTH; RFC 3206
//! SYS/AUTH response codes).
//!
//! The caller reads a line, calls [`Session::on_line`] and performs the returned [`Action`]s in order
//! before feeding the next line (RFC 2449 6.6: pipelined commands are answered one by one). `Open`
//! and `Update` wait for the caller's answer ([`Session::on_opened`], [`Session::on_updated`]);
//! `StartTls` for [`Session::on_tls`]. Every command is checked against one dispatch table
//! ([`TABLE`]) listing its handler and the states where it is allowed.

use std::net::IpAddr;
use std::sync::Arc;

use crate::auth::sasl::{self, ChannelBinding, Conversation, Failure, Mechanism, TlsInfo, Turn};
use crate::pop3::command::{self, Command, CommandError, Verb};

/// Limits and names a session needs (built once from the configuration).
#[derive(Clone, Debug)]
pub struct Params {
    pub hostname: String,
    /// Error replies after which the next command closes the connection.
    pub max_errors: usize,
    /// STLS is offered (a certificate is configured).
    pub stls: bool,
    /// SASL mechanisms offered with AUTH (RFC 5034); empty: no AUTH.
    pub auth_mechanisms: Vec<Mechanism>,
    /// APOP (RFC 1939 7) is offered: the greeting carries a timestamp. It needs {PLAIN} secrets.
    pub apop: bool,
}

/// The client at the other end.
#[derive(Clone, Debug)]
pub struct Peer {
    pub ip: IpAddr,
    pub port: u16,
    /// USER/PASS and cleartext SASL mechanisms are allowed without TLS (auth.cleartext_networks).
    pub cleartext_auth: bool,
}

/// The opened maildrop, as the caller sees it at login (RFC 1939 4: the snapshot the session works
/// on). Message numbers are 1-based; the session copies what it needs in [`Session::on_opened`].
pub trait Maildrop {
    fn count(&self) -> usize;
    /// Octets the client will receive for message `n` (CRLF line ends, before byte-stuffing; RFC 1939 5
    /// allows the exact size to differ, but clients use it, so make it exact).
    fn size(&self, n: usize) -> u64;
    /// Persistent unique id (RFC 1939 7: 1 to 70 characters in 0x21..=0x7E).
    fn uid(&self, n: usize) -> &str;
}

/// What the session asks of the server it runs in, so that it stays free of I/O.
/// What the session asks of the server: the login machinery every protocol shares.
pub use crate::auth::sasl::Login as Backend;

/// Why the maildrop could not be opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpenError {
    /// Another session holds the lock (RFC 2449 8.1.2 `[IN-USE]`).
    InUse,
    /// Anything else, for now (RFC 3206 4 `[SYS/TEMP]`); the text is for the log only.
    Temp(String),
}

/// Why the UPDATE state failed (RFC 1939 6: "-ERR some deleted messages not removed").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpdateError(pub String);

/// What the caller does, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Write these bytes (complete response lines, CRLF included).
    Reply(Vec<u8>),
    /// Close the connection (after writing everything before it).
    Close,
    /// Start TLS now and call [`Session::on_tls`]; input already buffered must be thrown away
    /// (RFC 2595 4, as RFC 3207 4.2 / CVE-2011-0411).
    StartTls,
    /// Lock and open `user`'s maildrop, then call [`Session::on_opened`]. Nothing has been written yet.
    Open { user: String },
    /// Write `+OK message follows`, then message `n` with CRLF line ends and byte-stuffed (RFC 1939 3:
    /// a line starting with "." gets another "."), only the header and `top_lines` body lines for TOP
    /// (RFC 1939 7), then `.\r\n`. If the message cannot be read before anything was written, write
    /// [`message_unavailable`] instead; once started, close the connection on failure.
    SendMessage { n: usize, top_lines: Option<u64> },
    /// QUIT in TRANSACTION (RFC 1939 6): remove these messages (sorted), release the lock, then call
    /// [`Session::on_updated`].
    Update { deleted: Vec<usize> },
}

/// Where the session is (RFC 1939 3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Authorization,
    /// An AUTH exchange is in progress: lines are SASL responses (RFC 5034 4).
    Auth,
    /// `Action::Open` is out; waiting for [`Session::on_opened`].
    Opening,
    Transaction,
    /// `Action::Update` is out; waiting for [`Session::on_updated`].
    Update,
    Closed,
}

use State::{Authorization, Transaction};

type Handler = fn(&mut Session, Command, &dyn Backend) -> Vec<Action>;

/// One row of the dispatch table.
pub struct Entry {
    pub verb: Verb,
    /// States in which the command is accepted; elsewhere `-ERR` answers.
    pub allowed: &'static [State],
    handler: Handler,
}

const BOTH: &[State] = &[Authorization, Transaction];

/// RFC 1939 4-6, RFC 2449 5, RFC 2595 4, RFC 5034 4: which command in which state, in one place.
pub const TABLE: &[Entry] = &[
    Entry { verb: Verb::Capa, allowed: BOTH, handler: Session::capa },
    Entry { verb: Verb::Quit, allowed: BOTH, handler: Session::quit },
    Entry { verb: Verb::Stls, allowed: &[Authorization], handler: Session::stls },
    Entry { verb: Verb::User, allowed: &[Authorization], handler: Session::user_cmd },
    Entry { verb: Verb::Pass, allowed: &[Authorization], handler: Session::pass },
    Entry { verb: Verb::Apop, allowed: &[Authorization], handler: Session::apop },
    Entry { verb: Verb::Auth, allowed: &[Authorization], handler: Session::auth },
    Entry { verb: Verb::Stat, allowed: &[Transaction], handler: Session::stat },
    Entry { verb: Verb::List, allowed: &[Transaction], handler: Session::list },
    Entry { verb: Verb::Uidl, allowed: &[Transaction], handler: Session::uidl },
    Entry { verb: Verb::Retr, allowed: &[Transaction], handler: Session::retr },
    Entry { verb: Verb::Top, allowed: &[Transaction], handler: Session::retr },
    Entry { verb: Verb::Dele, allowed: &[Transaction], handler: Session::dele },
    Entry { verb: Verb::Noop, allowed: &[Transaction], handler: Session::noop },
    Entry { verb: Verb::Rset, allowed: &[Transaction], handler: Session::rset },
];

/// One message of the opened maildrop.
struct Message {
    size: u64,
    uid: String,
    deleted: bool,
}

/// One POP3 server conversation.
pub struct Session {
    params: Arc<Params>,
    peer: Peer,
    state: State,
    errors: usize,
    /// The TLS session, once there is one.
    tls: Option<TlsInfo>,
    /// The name from USER, waiting for PASS (RFC 1939 7).
    pending_user: Option<String>,
    /// The SASL exchange in progress.
    sasl: Option<Conversation>,
    /// The logged-in user (set when `Open` is asked for).
    user: Option<String>,
    messages: Vec<Message>,
    /// The greeting's APOP timestamp, when APOP is offered.
    apop_stamp: Option<String>,
}

/// `+OK text\r\n`.
fn ok(text: &str) -> Action {
    if text.is_empty() {
        return Action::Reply(b"+OK\r\n".to_vec());
    }
    Action::Reply(format!("+OK {text}\r\n").into_bytes())
}

/// `-ERR text\r\n`.
fn err(text: &str) -> Action {
    Action::Reply(format!("-ERR {text}\r\n").into_bytes())
}

/// What to write instead of a message that cannot be read (see [`Action::SendMessage`]).
pub fn message_unavailable() -> Vec<u8> {
    b"-ERR [SYS/TEMP] Message cannot be read now\r\n".to_vec()
}

impl Session {
    pub fn new(params: Arc<Params>, peer: Peer) -> Session {
        Session {
            params,
            peer,
            state: Authorization,
            errors: 0,
            tls: None,
            pending_user: None,
            apop_stamp: None,
            sasl: None,
            user: None,
            messages: Vec::new(),
        }
    }

    /// A session whose login the server checked before handing it to a mail process: it opens the
    /// maildrop next ([`Session::on_opened`] answers the client).
    pub fn handed(params: Arc<Params>, peer: Peer, user: String) -> Session {
        let mut s = Session::new(params, peer);
        s.state = State::Opening;
        s.user = Some(user);
        s
    }

    /// RFC 1939 4: the greeting.
    pub fn greeting(&self) -> Vec<u8> {
        match &self.apop_stamp {
            Some(stamp) => format!("+OK buzon POP3 server ready {stamp}\r\n").into_bytes(),
            None => b"+OK buzon POP3 server ready\r\n".to_vec(),
        }
    }

    /// With APOP on, the greeting's timestamp (RFC 1939 7: `<process-id.clock@hostname>`, unique per
    /// connection): the caller gives fresh random `nonce` bytes.
    pub fn set_apop_nonce(&mut self, nonce: u64) {
        if self.params.apop {
            self.apop_stamp = Some(format!("<{}.{nonce:x}@{}>", std::process::id(), self.params.hostname));
        }
    }

    /// Sent instead of the greeting when no worker is free.
    pub fn busy() -> Vec<u8> {
        b"-ERR [SYS/TEMP] Server busy, try again later\r\n".to_vec()
    }

    /// RFC 1939 3: an inactivity timeout closes without entering UPDATE (nothing is deleted).
    pub fn on_timeout(&mut self) -> Vec<Action> {
        self.state = State::Closed;
        vec![err("Disconnected for inactivity"), Action::Close]
    }

    pub fn on_shutdown(&mut self) -> Vec<Action> {
        self.state = State::Closed;
        vec![err("[SYS/TEMP] Server shutting down"), Action::Close]
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn peer(&self) -> &Peer {
        &self.peer
    }

    /// Error replies so far.
    pub fn errors(&self) -> usize {
        self.errors
    }

    /// The logged-in user, if any.
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// The negotiated TLS protocol and cipher, if any.
    pub fn tls(&self) -> Option<&str> {
        self.tls.as_ref().map(|t| t.description.as_str())
    }

    /// The longest line to read next, CRLF included: 255 for commands (RFC 2449 4), longer for SASL
    /// responses (RFC 5034 4 lets them exceed it).
    pub fn max_line(&self) -> usize {
        if self.state == State::Auth { MAX_AUTH_LINE } else { command::MAX_COMMAND_LINE }
    }

    /// One line, CRLF stripped.
    pub fn on_line(&mut self, line: &[u8], backend: &dyn Backend) -> Vec<Action> {
        if let Some(actions) = self.precheck() {
            return actions;
        }
        if self.state == State::Auth {
            if line.len() + 2 > MAX_AUTH_LINE {
                return self.sasl_abort("Line too long");
            }
            return self.sasl_line(line, backend);
        }
        let cmd = match command::parse(line) {
            Ok(cmd) => cmd,
            Err(e) => {
                // RFC 1939 7: PASS must follow USER at once.
                self.pending_user = None;
                return self.fail(e.text());
            }
        };
        if cmd.verb() != Verb::Pass {
            self.pending_user = None;
        }
        let Some(entry) = TABLE.iter().find(|e| e.verb == cmd.verb()) else {
            return self.fail("Unknown command");
        };
        if entry.allowed.contains(&self.state) {
            (entry.handler)(self, cmd, backend)
        } else if self.state == Authorization {
            self.fail("Not logged in")
        } else {
            self.fail("Command not valid in TRANSACTION state")
        }
    }

    /// A line longer than [`Session::max_line`] was read (and skipped) by the caller.
    pub fn on_line_too_long(&mut self) -> Vec<Action> {
        if let Some(actions) = self.precheck() {
            return actions;
        }
        if self.state == State::Auth {
            return self.sasl_abort("Line too long");
        }
        self.pending_user = None;
        self.fail(CommandError::TooLong.text())
    }

    /// The answer to `Action::Open`: the maildrop snapshot, or why not.
    pub fn on_opened(&mut self, result: Result<&dyn Maildrop, OpenError>) -> Vec<Action> {
        if self.state != State::Opening {
            return self.out_of_order();
        }
        match result {
            Ok(drop) => {
                self.messages = (1..=drop.count())
                    .map(|n| Message { size: drop.size(n), uid: drop.uid(n).to_string(), deleted: false })
                    .collect();
                self.state = Transaction;
                let (count, octets) = self.totals();
                vec![ok(&format!("Logged in, maildrop has {count} messages ({octets} octets)"))]
            }
            // RFC 1939 4: the server may stay in AUTHORIZATION; the client must log in again.
            Err(e) => {
                self.user = None;
                self.state = Authorization;
                match e {
                    OpenError::InUse => self.fail("[IN-USE] Maildrop is locked by another session"),
                    OpenError::Temp(_) => vec![err("[SYS/TEMP] Cannot open maildrop now")],
                }
            }
        }
    }

    /// The answer to `Action::Update`; the connection closes either way (RFC 1939 6).
    pub fn on_updated(&mut self, result: Result<(), UpdateError>) -> Vec<Action> {
        if self.state != State::Update {
            return self.out_of_order();
        }
        self.state = State::Closed;
        let reply = match result {
            Ok(()) => {
                let left = self.messages.iter().filter(|m| !m.deleted).count();
                ok(&format!("buzon POP3 server signing off ({left} messages left)"))
            }
            Err(_) => err("[SYS/TEMP] Some deleted messages not removed"),
        };
        vec![reply, Action::Close]
    }

    // --- internals ---

    /// Checks done before any line: closed session, caller misuse, error limit.
    fn precheck(&mut self) -> Option<Vec<Action>> {
        match self.state {
            State::Closed => return Some(vec![Action::Close]),
            State::Opening | State::Update => return Some(self.out_of_order()),
            _ => {}
        }
        if self.errors >= self.params.max_errors {
            self.state = State::Closed;
            return Some(vec![err("Too many errors, closing connection"), Action::Close]);
        }
        None
    }

    /// The caller broke the protocol between session and glue; fail safe by closing.
    fn out_of_order(&mut self) -> Vec<Action> {
        self.state = State::Closed;
        vec![err("[SYS/TEMP] Internal error"), Action::Close]
    }

    /// An error reply to the client, counted towards `max_errors`.
    fn fail(&mut self, text: &str) -> Vec<Action> {
        self.errors += 1;
        vec![err(text)]
    }

    /// Messages not marked deleted, and their octets.
    fn totals(&self) -> (usize, u64) {
        self.messages
            .iter()
            .filter(|m| !m.deleted)
            .fold((0, 0), |(c, o), m| (c + 1, o.saturating_add(m.size)))
    }

    /// RFC 1939 5: a message number must name an existing, not deleted message.
    fn message(&mut self, n: usize) -> Result<&mut Message, Vec<Action>> {
        let deleted = match self.messages.get(n.wrapping_sub(1)) {
            None => return Err(self.fail("No such message")),
            Some(m) => m.deleted,
        };
        if deleted {
            return Err(self.fail(&format!("Message {n} already deleted")));
        }
        self.messages.get_mut(n.wrapping_sub(1)).ok_or_else(|| vec![err("No such message")])
    }

    fn capa(&mut self, _: Command, _: &dyn Backend) -> Vec<Action> {
        // RFC 2449 5: one capability per line; state-dependent ones only where they apply now.
        let mut lines = vec!["+OK Capability list follows".to_string()];
        lines.extend(["TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"].map(String::from));
        if self.state == Authorization {
            if self.cleartext_allowed() {
                lines.push("USER".into());
            }
            if let Some(mechs) = self.offered_mechanisms() {
                lines.push(format!("SASL {mechs}"));
            }
            if self.params.stls && self.tls.is_none() {
                lines.push("STLS".into());
            }
        }
        lines.push("IMPLEMENTATION buzon".into());
        lines.push(".".into());
        let mut out = lines.join("\r\n");
        out.push_str("\r\n");
        vec![Action::Reply(out.into_bytes())]
    }

    fn quit(&mut self, _: Command, _: &dyn Backend) -> Vec<Action> {
        if self.state == Authorization {
            // RFC 1939 4: QUIT in AUTHORIZATION does not enter UPDATE.
            self.state = State::Closed;
            return vec![ok("buzon POP3 server signing off"), Action::Close];
        }
        self.state = State::Update;
        let deleted = (1..=self.messages.len()).filter(|n| self.messages[n - 1].deleted).collect();
        vec![Action::Update { deleted }]
    }

    fn stat(&mut self, _: Command, _: &dyn Backend) -> Vec<Action> {
        // RFC 1939 5: "+OK nn mm", deleted messages not counted.
        let (count, octets) = self.totals();
        vec![ok(&format!("{count} {octets}"))]
    }

    fn list(&mut self, cmd: Command, _: &dyn Backend) -> Vec<Action> {
        self.listing(cmd, |m| m.size.to_string())
    }

    fn uidl(&mut self, cmd: Command, _: &dyn Backend) -> Vec<Action> {
        self.listing(cmd, |m| m.uid.clone())
    }

    /// LIST and UIDL (RFC 1939 5 and 7): one message, or every non-deleted one as a multi-line answer.
    fn listing(&mut self, cmd: Command, value: fn(&Message) -> String) -> Vec<Action> {
        let (Command::List(arg) | Command::Uidl(arg)) = cmd else { return self.out_of_order() };
        if let Some(n) = arg {
            return match self.message(n) {
                Ok(m) => {
                    let v = value(m);
                    vec![ok(&format!("{n} {v}"))]
                }
                Err(e) => e,
            };
        }
        let mut out = if matches!(cmd, Command::List(_)) {
            let (count, octets) = self.totals();
            format!("+OK {count} messages ({octets} octets)\r\n")
        } else {
            "+OK Unique-ID listing follows\r\n".to_string()
        };
        for (i, m) in self.messages.iter().enumerate().filter(|(_, m)| !m.deleted) {
            out.push_str(&format!("{} {}\r\n", i + 1, value(m)));
        }
        out.push_str(".\r\n");
        vec![Action::Reply(out.into_bytes())]
    }

    fn retr(&mut self, cmd: Command, _: &dyn Backend) -> Vec<Action> {
        let (n, top_lines) = match cmd {
            Command::Retr(n) => (n, None),
            Command::Top { n, lines } => (n, Some(lines)),
            _ => return self.out_of_order(),
        };
        match self.message(n) {
            Ok(_) => vec![Action::SendMessage { n, top_lines }],
            Err(e) => e,
        }
    }

    fn dele(&mut self, cmd: Command, _: &dyn Backend) -> Vec<Action> {
        let Command::Dele(n) = cmd else { return self.out_of_order() };
        match self.message(n) {
            Ok(m) => {
                m.deleted = true;
                vec![ok(&format!("Message {n} deleted"))]
            }
            Err(e) => e,
        }
    }

    fn noop(&mut self, _: Command, _: &dyn Backend) -> Vec<Action> {
        vec![ok("")]
    }

    fn rset(&mut self, _: Command, _: &dyn Backend) -> Vec<Action> {
        // RFC 1939 5: unmark every message marked as deleted.
        for m in &mut self.messages {
            m.deleted = false;
        }
        let (count, octets) = self.totals();
        vec![ok(&format!("Maildrop has {count} messages ({octets} octets)"))]
    }
}

// --- STLS (RFC 2595 4) and AUTH (RFC 5034, SASL RFC 4422) ---

/// RFC 5034 4: SASL responses are not bound by the 255-octet command limit; this is where we stop.
pub const MAX_AUTH_LINE: usize = 12288;

impl Session {
    /// The TLS handshake after STLS (or at connect, for implicit TLS on port 995) is done. RFC 2595 4:
    /// whatever was learnt before is forgotten.
    pub fn on_tls(&mut self, description: String, bindings: Vec<ChannelBinding>) {
        self.tls = Some(TlsInfo { description, bindings });
        self.pending_user = None;
    }

    /// RFC 1939 7 / RFC 2595 2.2: passwords in the clear only under TLS or from trusted networks.
    fn cleartext_allowed(&self) -> bool {
        self.tls.is_some() || self.peer.cleartext_auth
    }

    /// The mechanisms to list after SASL in CAPA, if any may be used now.
    fn offered_mechanisms(&self) -> Option<String> {
        let names: Vec<&str> = self
            .params
            .auth_mechanisms
            .iter()
            .filter(|m| self.mechanism_usable(m))
            .map(|m| m.name())
            .collect();
        (!names.is_empty()).then(|| names.join(" "))
    }

    /// Cleartext mechanisms need TLS (or a trusted network); -PLUS needs TLS channel bindings.
    fn mechanism_usable(&self, m: &Mechanism) -> bool {
        sasl::usable(*m, self.tls.as_ref(), self.cleartext_allowed())
    }

    fn stls(&mut self, _: Command, _: &dyn Backend) -> Vec<Action> {
        if !self.params.stls {
            return self.fail("STLS not offered");
        }
        if self.tls.is_some() {
            // RFC 2595 4: "-ERR Command not permitted when TLS active".
            return self.fail("Command not permitted when TLS active");
        }
        vec![ok("Begin TLS negotiation"), Action::StartTls]
    }

    fn user_cmd(&mut self, cmd: Command, _: &dyn Backend) -> Vec<Action> {
        let Command::User(name) = cmd else { return self.out_of_order() };
        if !self.cleartext_allowed() {
            return self.fail("[SYS/PERM] Plaintext authentication disallowed without TLS");
        }
        // RFC 1939 7: the server may accept any name here; checking it only with PASS hides which exist.
        self.pending_user = Some(name);
        vec![ok("")]
    }

    fn pass(&mut self, cmd: Command, backend: &dyn Backend) -> Vec<Action> {
        let Command::Pass(password) = cmd else { return self.out_of_order() };
        let Some(name) = self.pending_user.take() else { return self.fail("No USER given") };
        if !self.cleartext_allowed() {
            return self.fail("[SYS/PERM] Plaintext authentication disallowed without TLS");
        }
        if backend.auth_blocked() {
            return self.fail("[SYS/TEMP] Too many failed logins, try again later");
        }
        let Some(creds) = backend.credentials() else {
            return vec![err("[SYS/TEMP] Temporary authentication failure")];
        };
        match creds.verify(&name, &password) {
            Ok(Some(user)) => {
                backend.auth_succeeded(&user, "USER");
                self.logged_in(user)
            }
            Ok(None) => {
                backend.auth_failed(&name);
                self.fail("[AUTH] Authentication failed")
            }
            Err(_) => vec![err("[SYS/TEMP] Temporary authentication failure")],
        }
    }

    /// RFC 1939 7: APOP name digest, digest = MD5(timestamp + password), from a {PLAIN} secret.
    fn apop(&mut self, cmd: Command, backend: &dyn Backend) -> Vec<Action> {
        use md5::Digest;
        let Command::Apop { name, digest } = cmd else { return self.out_of_order() };
        let Some(stamp) = self.apop_stamp.clone() else { return self.fail("APOP not offered") };
        if backend.auth_blocked() {
            return self.fail("[SYS/TEMP] Too many failed logins, try again later");
        }
        let Some(creds) = backend.credentials() else {
            return vec![err("[SYS/TEMP] Temporary authentication failure")];
        };
        match creds.plaintext(&name) {
            Ok(Some((user, password))) => {
                let want = md5::Md5::digest(format!("{stamp}{password}").as_bytes());
                let want: String = want.iter().map(|b| format!("{b:02x}")).collect();
                if bool::from(subtle::ConstantTimeEq::ct_eq(want.as_bytes(), digest.as_bytes())) {
                    backend.auth_succeeded(&user, "APOP");
                    return self.logged_in(user);
                }
                backend.auth_failed(&name);
                self.fail("[AUTH] Authentication failed")
            }
            Ok(None) => {
                backend.auth_failed(&name);
                self.fail("[AUTH] Authentication failed")
            }
            Err(_) => vec![err("[SYS/TEMP] Temporary authentication failure")],
        }
    }

    fn auth(&mut self, cmd: Command, backend: &dyn Backend) -> Vec<Action> {
        let Command::Auth { mechanism, initial } = cmd else { return self.out_of_order() };
        if self.params.auth_mechanisms.is_empty() {
            return self.fail("AUTH not offered");
        }
        let Some(name) = mechanism else {
            // RFC 1734 usage still seen in clients: bare AUTH lists the mechanisms usable now.
            let mut out = String::from("+OK\r\n");
            for m in self.params.auth_mechanisms.iter().filter(|m| self.mechanism_usable(m)) {
                out.push_str(m.name());
                out.push_str("\r\n");
            }
            out.push_str(".\r\n");
            return vec![Action::Reply(out.into_bytes())];
        };
        let Some(mech) = Mechanism::from_name(&name).filter(|m| self.params.auth_mechanisms.contains(m))
        else {
            return self.fail("Unsupported authentication mechanism");
        };
        if !self.mechanism_usable(&mech) {
            return self.fail("[SYS/PERM] Authentication mechanism needs TLS");
        }
        if backend.auth_blocked() {
            return self.fail("[SYS/TEMP] Too many failed logins, try again later");
        }
        let Some(creds) = backend.credentials() else {
            return vec![err("[SYS/TEMP] Temporary authentication failure")];
        };
        // RFC 5034 4: "=" is an empty initial response.
        let initial = match initial.map(|a| sasl::initial_response(a.as_bytes())) {
            None => None,
            Some(Some(v)) => Some(v),
            Some(None) => return self.fail("Cannot decode response"),
        };
        let mut random = |buf: &mut [u8]| backend.random(buf);
        let (sasl, turn) = Conversation::start(
            mech,
            &self.params.auth_mechanisms,
            self.tls.as_ref(),
            &self.params.hostname,
            Some("pop"),
            initial.as_deref(),
            creds,
            &mut random,
        );
        self.sasl = sasl;
        self.sasl_turn(turn, backend)
    }

    /// One SASL response line while `State::Auth` (RFC 5034 4: "*" cancels).
    fn sasl_line(&mut self, line: &[u8], backend: &dyn Backend) -> Vec<Action> {
        let Some(creds) = backend.credentials() else {
            self.sasl = None;
            self.state = Authorization;
            return vec![err("[SYS/TEMP] Temporary authentication failure")];
        };
        let Some(sasl) = self.sasl.as_mut() else { return self.out_of_order() };
        let turn = sasl.line(line, creds);
        self.sasl_turn(turn, backend)
    }

    /// Ends a SASL exchange on a bad line.
    fn sasl_abort(&mut self, text: &str) -> Vec<Action> {
        self.sasl = None;
        self.state = Authorization;
        self.fail(text)
    }

    fn sasl_turn(&mut self, turn: Turn, backend: &dyn Backend) -> Vec<Action> {
        match turn {
            Turn::Continue(text) => {
                self.state = State::Auth;
                vec![Action::Reply(format!("+ {text}\r\n").into_bytes())]
            }
            Turn::Authenticated { user, mechanism } => {
                backend.auth_succeeded(&user, mechanism);
                self.logged_in(user)
            }
            Turn::Failed(f) => match f {
                Failure::Cancelled => self.sasl_abort("Authentication cancelled"),
                Failure::Malformed(m) => self.sasl_abort(&m),
                Failure::Temporary(_) => {
                    self.sasl = None;
                    self.state = Authorization;
                    vec![err("[SYS/TEMP] Temporary authentication failure")]
                }
                Failure::Rejected => {
                    backend.auth_failed("");
                    self.sasl_abort("[AUTH] Authentication failed")
                }
            },
        }
    }

    /// Credentials are good: ask the caller to lock and open the maildrop (RFC 1939 4); the `+OK`
    /// comes with [`Session::on_opened`].
    fn logged_in(&mut self, user: String) -> Vec<Action> {
        self.sasl = None;
        self.pending_user = None;
        self.state = State::Opening;
        self.user = Some(user.clone());
        vec![Action::Open { user }]
    }
}

#[cfg(test)]
mod tests;
