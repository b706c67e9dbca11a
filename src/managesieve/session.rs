//! The ManageSieve server state machine, free of network I/O (RFC 5804): complete commands in
//! (string literals inline, gathered by the driver), responses and actions out. States: not
//! authenticated (AUTHENTICATE, STARTTLS), authenticated (the script commands), and in-between
//! while a SASL exchange runs (RFC 5804 2.1: the client answers each challenge with a string; "*"
//! cancels). Every command is checked against one dispatch table ([`TABLE`]). The scripts
//! themselves are read and written through the user's [`ScriptStore`] the caller opens at login
//! (under the owner's identity), and checked by the [`ScriptCheck`] in [`Params`].
//!
//! The caller performs the returned [`Action`]s in order before feeding the next command;
//! `Open` waits for [`Session::on_opened`], `StartTls` for [`Session::on_tls`].

use std::net::IpAddr;
use std::sync::Arc;

use super::command::{self, Command, string};
use super::scripts::{ScriptError, ScriptStore, check_name};
use super::{ScriptCheck, sieve_extensions};
use crate::auth::sasl::{self, ChannelBinding, Conversation, Failure, Mechanism, TlsInfo, Turn};

/// What the session asks of the server to log a client in (the same machinery as IMAP's).
pub use crate::auth::sasl::Login as Backend;

/// The most redirect actions one script may take at delivery (RFC 5804 1.7 MAXREDIRECTS).
pub const MAX_REDIRECTS: u32 = 4;

/// Limits and names a session needs (built once from the configuration).
#[derive(Clone)]
pub struct Params {
    pub hostname: String,
    /// STARTTLS is offered (a certificate is configured).
    pub starttls: bool,
    /// SASL mechanisms offered (those usable on the connection are advertised).
    pub auth_mechanisms: Vec<Mechanism>,
    /// Failed commands after which the connection is closed with BYE.
    pub max_errors: usize,
    /// Checks a script before PUTSCRIPT stores it and for CHECKSCRIPT.
    pub check: Arc<dyn ScriptCheck>,
}

/// The client at the other end.
#[derive(Clone, Debug)]
pub struct Peer {
    pub ip: IpAddr,
    pub port: u16,
    /// Mechanisms that send the password are allowed without TLS (auth.cleartext_networks).
    pub cleartext_auth: bool,
}

/// What the caller does, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Write these bytes (complete responses, CRLF included).
    Reply(Vec<u8>),
    /// Close the connection (after writing everything before it).
    Close,
    /// Start TLS now (input already buffered is thrown away, RFC 5804 2.2), then call
    /// [`Session::on_tls`], which sends the new capability list.
    StartTls,
    /// `user` proved who they are: find and open their scripts (as their owner), then call
    /// [`Session::on_opened`], which answers the AUTHENTICATE. Nothing has been written yet.
    Open { user: String },
}

/// Where the session is (RFC 5804 2.1, 2.14).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    NotAuthenticated,
    /// A SASL exchange is running: input is the client's response string.
    Sasl,
    /// `Action::Open` is out.
    Opening,
    Authenticated,
    Closed,
}

use State::{Authenticated, NotAuthenticated};

type Handler = fn(&mut Session, Command, &dyn Backend) -> Vec<Action>;

/// One row of the dispatch table.
pub struct Entry {
    pub name: &'static str,
    pub allowed: &'static [State],
    handler: Handler,
}

const ANY: &[State] = &[NotAuthenticated, Authenticated];
const AUTH: &[State] = &[Authenticated];
const NONAUTH: &[State] = &[NotAuthenticated];

/// RFC 5804 2: which command in which state, in one place.
pub const TABLE: &[Entry] = &[
    Entry { name: "CAPABILITY", allowed: ANY, handler: Session::capability },
    Entry { name: "LOGOUT", allowed: ANY, handler: Session::logout },
    Entry { name: "NOOP", allowed: ANY, handler: Session::noop },
    Entry { name: "AUTHENTICATE", allowed: NONAUTH, handler: Session::authenticate },
    Entry { name: "STARTTLS", allowed: NONAUTH, handler: Session::starttls },
    Entry { name: "HAVESPACE", allowed: AUTH, handler: Session::havespace },
    Entry { name: "PUTSCRIPT", allowed: AUTH, handler: Session::putscript },
    Entry { name: "LISTSCRIPTS", allowed: AUTH, handler: Session::listscripts },
    Entry { name: "SETACTIVE", allowed: AUTH, handler: Session::setactive },
    Entry { name: "GETSCRIPT", allowed: AUTH, handler: Session::getscript },
    Entry { name: "DELETESCRIPT", allowed: AUTH, handler: Session::deletescript },
    Entry { name: "RENAMESCRIPT", allowed: AUTH, handler: Session::renamescript },
    Entry { name: "CHECKSCRIPT", allowed: AUTH, handler: Session::checkscript },
    Entry { name: "UNAUTHENTICATE", allowed: AUTH, handler: Session::unauthenticate },
];

/// One ManageSieve conversation.
pub struct Session {
    params: Arc<Params>,
    peer: Peer,
    state: State,
    errors: usize,
    tls: Option<TlsInfo>,
    sasl: Option<Conversation>,
    user: Option<String>,
    store: Option<ScriptStore>,
    /// Logged in by the server before it was handed to the user's mail process: it cannot log out
    /// and in again (UNAUTHENTICATE is not offered).
    handed: bool,
    /// SCRAM's server-final data, for the OK that ends the AUTHENTICATE (RFC 5804 2.1).
    sasl_final: Option<String>,
}

/// `OK|NO|BYE [(code)] "text"` CRLF (RFC 5804 4 response-ok / response-nobye).
fn resp(kind: &str, code: Option<&str>, text: &str) -> Action {
    let mut out = kind.as_bytes().to_vec();
    if let Some(code) = code {
        out.extend_from_slice(format!(" ({code})").as_bytes());
    }
    if !text.is_empty() {
        out.push(b' ');
        out.extend_from_slice(&string(text.as_bytes()));
    }
    out.extend_from_slice(b"\r\n");
    Action::Reply(out)
}

fn ok(text: &str) -> Action {
    resp("OK", None, text)
}

fn no(code: Option<&str>, text: &str) -> Action {
    resp("NO", code, text)
}

/// The answer to a storage failure (RFC 5804 1.3 response codes).
fn store_error(e: ScriptError) -> Action {
    match e {
        ScriptError::NonExistent => no(Some("NONEXISTENT"), "There is no script by that name"),
        ScriptError::AlreadyExists => no(Some("ALREADYEXISTS"), "A script by that name already exists"),
        ScriptError::Active => no(Some("ACTIVE"), "The active script cannot be deleted"),
        ScriptError::MaxScripts(n) => no(Some("QUOTA/MAXSCRIPTS"), &format!("At most {n} scripts")),
        ScriptError::MaxSize(n) => no(Some("QUOTA/MAXSIZE"), &format!("Script too big (at most {n} octets)")),
        ScriptError::BadName(why) => no(None, why),
        ScriptError::Io(e) => {
            log::warn!("event=sieve_store_failed error=\"{e}\"");
            no(Some("TRYLATER"), "Scripts cannot be reached now, try again later")
        }
    }
}

impl Session {
    pub fn new(params: Arc<Params>, peer: Peer) -> Session {
        Session {
            params,
            peer,
            state: NotAuthenticated,
            errors: 0,
            tls: None,
            sasl: None,
            user: None,
            store: None,
            handed: false,
            sasl_final: None,
        }
    }

    /// A session whose login the server checked before handing it to the user's mail process: its
    /// scripts are opened next ([`Session::on_opened`] answers the AUTHENTICATE).
    pub fn handed(params: Arc<Params>, peer: Peer, user: String, tls: bool) -> Session {
        let mut s = Session::new(params, peer);
        s.state = State::Opening;
        s.user = Some(user);
        s.handed = true;
        if tls {
            s.tls = Some(TlsInfo { description: "relayed".into(), bindings: Vec::new() });
        }
        s
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn peer(&self) -> &Peer {
        &self.peer
    }

    /// The logged-in user, if any.
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref().filter(|_| self.state == Authenticated)
    }

    /// The user's scripts, once logged in.
    pub fn store(&self) -> Option<&ScriptStore> {
        self.store.as_ref()
    }

    /// The largest literal the next command may carry: a script once logged in, a SASL response
    /// before.
    pub fn max_literal(&self) -> u64 {
        match (&self.store, self.state) {
            (Some(s), Authenticated) => s.max_size(),
            _ => 8 * 1024,
        }
    }

    /// RFC 5804 1.7: the capability list (each line `"NAME" ["value"]`), without the final OK.
    fn capabilities(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut cap = |name: &str, value: Option<&str>| {
            out.extend_from_slice(&string(name.as_bytes()));
            if let Some(v) = value {
                out.push(b' ');
                out.extend_from_slice(&string(v.as_bytes()));
            }
            out.extend_from_slice(b"\r\n");
        };
        cap("IMPLEMENTATION", Some("buzon"));
        let logged_in = self.state == Authenticated;
        let mechs: Vec<&str> = match logged_in {
            true => Vec::new(),
            false => {
                self.params.auth_mechanisms.iter().filter(|m| self.usable(m)).map(|m| m.name()).collect()
            }
        };
        cap("SASL", Some(&mechs.join(" ")));
        cap("SIEVE", Some(sieve_extensions()));
        if self.params.starttls && self.tls.is_none() && !logged_in {
            cap("STARTTLS", None);
        }
        cap("MAXREDIRECTS", Some(&MAX_REDIRECTS.to_string()));
        if let (true, Some(user)) = (logged_in, &self.user) {
            cap("OWNER", Some(user));
            if !self.handed {
                cap("UNAUTHENTICATE", None);
            }
        }
        cap("VERSION", Some("1.0"));
        out
    }

    /// RFC 5804 1.7: the greeting is the capability list and an OK.
    pub fn greeting(&self) -> Vec<u8> {
        let mut out = self.capabilities();
        out.extend_from_slice(b"OK \"buzon ManageSieve ready\"\r\n");
        out
    }

    /// Sent instead of the greeting when the server is full.
    pub fn busy() -> Vec<u8> {
        b"BYE (TRYLATER) \"Server too busy, try again later\"\r\n".to_vec()
    }

    pub fn on_timeout(&mut self) -> Vec<Action> {
        self.state = State::Closed;
        vec![resp("BYE", None, "Disconnected for inactivity"), Action::Close]
    }

    pub fn on_shutdown(&mut self) -> Vec<Action> {
        self.state = State::Closed;
        vec![resp("BYE", Some("TRYLATER"), "Server shutting down"), Action::Close]
    }

    /// TLS is up (after STARTTLS): RFC 5804 2.2 "the server MUST re-issue the capability results,
    /// followed by an OK response".
    pub fn on_tls(&mut self, description: String, bindings: Vec<ChannelBinding>) -> Vec<Action> {
        self.tls = Some(TlsInfo { description, bindings });
        let mut out = self.capabilities();
        out.extend_from_slice(b"OK \"TLS negotiation successful\"\r\n");
        vec![Action::Reply(out)]
    }

    /// The answer to `Action::Open`.
    pub fn on_opened(&mut self, result: Result<ScriptStore, String>) -> Vec<Action> {
        if self.state != State::Opening {
            return vec![no(None, "Unexpected")];
        }
        match result {
            Ok(store) => {
                self.store = Some(store);
                self.state = Authenticated;
                match self.sasl_final.take() {
                    // RFC 5804 2.1: "the server ... includes the additional data ... in the SASL
                    // response code" of the OK.
                    Some(data) => {
                        let code = format!("SASL {}", String::from_utf8_lossy(&string(data.as_bytes())));
                        vec![resp("OK", Some(&code), "Logged in")]
                    }
                    None => vec![ok("Logged in")],
                }
            }
            Err(_) => {
                self.user = None;
                self.sasl_final = None;
                self.state = NotAuthenticated;
                vec![no(Some("TRYLATER"), "Your scripts cannot be reached now, try again later")]
            }
        }
    }

    /// One complete command (or, during AUTHENTICATE, the client's response string).
    pub fn on_command(&mut self, buf: &[u8], backend: &dyn Backend) -> Vec<Action> {
        if self.state == State::Closed {
            return vec![Action::Close];
        }
        if self.state == State::Sasl {
            return self.sasl_response(buf, backend);
        }
        let cmd = match command::parse(buf) {
            Ok(cmd) => cmd,
            Err(e) => return self.fail(&e.0),
        };
        let Some(entry) = TABLE.iter().find(|e| e.name == cmd.name()) else {
            return self.fail("Unknown command");
        };
        if !entry.allowed.contains(&self.state) {
            return self.fail(match self.state {
                NotAuthenticated => "Authenticate first",
                _ => "Not allowed once authenticated",
            });
        }
        (entry.handler)(self, cmd, backend)
    }

    /// The command's line was longer than the driver reads.
    pub fn on_line_too_long(&mut self) -> Vec<Action> {
        if self.state == State::Sasl {
            return self.sasl_abort("Response too long");
        }
        self.fail("Line too long")
    }

    /// The command announced a literal over [`Session::max_literal`]; `head` is its line up to the
    /// literal. RFC 5804 2.6: a script over the limit is refused with QUOTA/MAXSIZE.
    pub fn on_too_big(&mut self, head: &[u8]) -> Vec<Action> {
        if self.state == State::Sasl {
            return self.sasl_abort("Response too long");
        }
        let word: Vec<u8> =
            head.iter().take_while(|b| b.is_ascii_alphabetic()).map(u8::to_ascii_uppercase).collect();
        if self.state == Authenticated && matches!(word.as_slice(), b"PUTSCRIPT" | b"CHECKSCRIPT") {
            let max = self.max_literal();
            self.errors += 1;
            return self.maybe_bye(vec![no(
                Some("QUOTA/MAXSIZE"),
                &format!("Script too big (at most {max} octets)"),
            )]);
        }
        self.fail("Literal too big")
    }

    /// A failed command: NO, and BYE once there were too many (RFC 5804 2: the server may close).
    fn fail(&mut self, text: &str) -> Vec<Action> {
        self.errors += 1;
        self.maybe_bye(vec![no(None, text)])
    }

    fn maybe_bye(&mut self, mut out: Vec<Action>) -> Vec<Action> {
        if self.errors >= self.params.max_errors {
            self.state = State::Closed;
            out.push(resp("BYE", None, "Too many errors"));
            out.push(Action::Close);
        }
        out
    }

    fn usable(&self, m: &Mechanism) -> bool {
        sasl::usable(*m, self.tls.as_ref(), self.peer.cleartext_auth)
    }

    fn capability(&mut self, _: Command, _: &dyn Backend) -> Vec<Action> {
        let mut out = self.capabilities();
        out.extend_from_slice(b"OK \"Capability completed\"\r\n");
        vec![Action::Reply(out)]
    }

    /// RFC 5804 2.3: OK, then the server closes.
    fn logout(&mut self, _: Command, _: &dyn Backend) -> Vec<Action> {
        self.state = State::Closed;
        vec![ok("Logout completed"), Action::Close]
    }

    /// RFC 5804 2.13: a string given is echoed in a TAG response code.
    fn noop(&mut self, cmd: Command, _: &dyn Backend) -> Vec<Action> {
        match cmd {
            Command::Noop(Some(tag)) => {
                let code = format!("TAG {}", String::from_utf8_lossy(&string(&tag)));
                vec![resp("OK", Some(&code), "Done")]
            }
            _ => vec![ok("Done")],
        }
    }

    /// RFC 5804 2.2.
    fn starttls(&mut self, _: Command, _: &dyn Backend) -> Vec<Action> {
        if !self.params.starttls {
            return self.fail("STARTTLS is not offered");
        }
        if self.tls.is_some() {
            return self.fail("TLS is already active");
        }
        vec![ok("Begin TLS negotiation now"), Action::StartTls]
    }

    /// RFC 5804 2.1.
    fn authenticate(&mut self, cmd: Command, backend: &dyn Backend) -> Vec<Action> {
        let Command::Authenticate { mechanism, initial } = cmd else { return self.fail("Unexpected") };
        let Some(mech) = Mechanism::from_name(&mechanism).filter(|m| self.params.auth_mechanisms.contains(m))
        else {
            return self.fail("Unsupported authentication mechanism");
        };
        if !self.usable(&mech) {
            return self.fail("Authentication mechanism needs TLS (use STARTTLS)");
        }
        if backend.auth_blocked() {
            return vec![no(Some("TRYLATER"), "Too many failed logins, try again later")];
        }
        let Some(creds) = backend.credentials() else {
            return vec![no(Some("TRYLATER"), "Temporary authentication failure")];
        };
        // RFC 5804 2.1: an empty initial response is the empty string.
        let initial = match initial {
            None => None,
            Some(v) if v.is_empty() => Some(Vec::new()),
            Some(v) => match std::str::from_utf8(&v).ok().and_then(sasl::decode_base64) {
                Some(d) => Some(d),
                None => return self.fail("Cannot decode the initial response as base64"),
            },
        };
        let mut random = |buf: &mut [u8]| backend.random(buf);
        let (sasl, turn) = Conversation::start(
            mech,
            &self.params.auth_mechanisms,
            self.tls.as_ref(),
            &self.params.hostname,
            Some("sieve"),
            initial.as_deref(),
            creds,
            &mut random,
        );
        self.sasl = sasl;
        self.sasl_turn(turn, backend)
    }

    /// The client's answer to a challenge: a string holding base64, or "*" (RFC 5804 2.1).
    fn sasl_response(&mut self, buf: &[u8], backend: &dyn Backend) -> Vec<Action> {
        let line = match command::parse_response(buf) {
            Ok(s) => s,
            Err(e) => return self.sasl_abort(&e.0),
        };
        let Some(creds) = backend.credentials() else {
            self.sasl = None;
            self.state = NotAuthenticated;
            return vec![no(Some("TRYLATER"), "Temporary authentication failure")];
        };
        let Some(conv) = self.sasl.as_mut() else { return self.sasl_abort("Unexpected") };
        let turn = conv.line(&line, creds);
        self.sasl_turn(turn, backend)
    }

    fn sasl_abort(&mut self, text: &str) -> Vec<Action> {
        self.sasl = None;
        self.state = NotAuthenticated;
        self.fail(text)
    }

    fn sasl_turn(&mut self, turn: Turn, backend: &dyn Backend) -> Vec<Action> {
        match turn {
            Turn::Continue(text) if self.sasl.as_ref().is_some_and(Conversation::finishing) => {
                // Success with server-final data: it goes in the OK's SASL code, not a challenge.
                let Some(creds) = backend.credentials() else {
                    return self.sasl_abort("Temporary authentication failure");
                };
                let Some(conv) = self.sasl.as_mut() else { return self.sasl_abort("Unexpected") };
                let turn = conv.line(b"", creds);
                self.sasl_final = Some(text);
                self.sasl_turn(turn, backend)
            }
            Turn::Continue(text) => {
                self.state = State::Sasl;
                let mut out = string(text.as_bytes());
                out.extend_from_slice(b"\r\n");
                vec![Action::Reply(out)]
            }
            Turn::Authenticated { user, mechanism } => {
                backend.auth_succeeded(&user, mechanism);
                self.sasl = None;
                self.state = State::Opening;
                self.user = Some(user.clone());
                vec![Action::Open { user }]
            }
            Turn::Failed(Failure::Cancelled) => self.sasl_abort("Authentication cancelled"),
            Turn::Failed(Failure::Malformed(m)) => self.sasl_abort(&m),
            Turn::Failed(Failure::Temporary(_)) => {
                self.sasl = None;
                self.state = NotAuthenticated;
                vec![no(Some("TRYLATER"), "Temporary authentication failure")]
            }
            Turn::Failed(Failure::Rejected) => {
                backend.auth_failed("");
                self.sasl_abort("Authentication failed")
            }
        }
    }

    /// RFC 5804 2.14.
    fn unauthenticate(&mut self, _: Command, _: &dyn Backend) -> Vec<Action> {
        if self.handed {
            return self.fail("UNAUTHENTICATE is not available on this connection");
        }
        self.store = None;
        self.user = None;
        self.state = NotAuthenticated;
        vec![ok("Unauthenticated")]
    }

    fn with_store(&mut self, f: impl FnOnce(&ScriptStore) -> Vec<Action>) -> Vec<Action> {
        match &self.store {
            Some(s) => f(s),
            None => vec![no(Some("TRYLATER"), "Scripts cannot be reached now")],
        }
    }

    /// RFC 5804 2.5.
    fn havespace(&mut self, cmd: Command, _: &dyn Backend) -> Vec<Action> {
        let Command::HaveSpace { name, size } = cmd else { return self.fail("Unexpected") };
        self.with_store(|s| match s.have_space(&name, size) {
            Ok(()) => vec![ok("Putscript would succeed")],
            Err(e) => vec![store_error(e)],
        })
    }

    /// The check's verdict as a response: `None` when the script is valid without warnings.
    fn checked(&self, script: &[u8]) -> Result<Option<Action>, Action> {
        match self.params.check.check(script) {
            Ok(w) if w.is_empty() => Ok(None),
            // RFC 5804 1.3 WARNINGS.
            Ok(w) => Ok(Some(resp("OK", Some("WARNINGS"), &w.join("\r\n")))),
            Err(e) => Err(no(None, &e)),
        }
    }

    /// RFC 5804 2.6: the script is checked, then stored (replacing one of the same name).
    fn putscript(&mut self, cmd: Command, _: &dyn Backend) -> Vec<Action> {
        let Command::PutScript { name, script } = cmd else { return self.fail("Unexpected") };
        let Some(store) = self.store.clone() else { return self.with_store(|_| Vec::new()) };
        if let Err(e) = store.have_space(&name, script.len() as u64) {
            return vec![store_error(e)];
        }
        let answer = match self.checked(&script) {
            Ok(a) => a,
            Err(a) => return vec![a],
        };
        match store.put(&name, &script) {
            Ok(()) => {
                log::info!(
                    "event=sieve_put user={} name={name:?} size={}",
                    self.user.as_deref().unwrap_or("-"),
                    script.len()
                );
                vec![answer.unwrap_or_else(|| ok("Script stored"))]
            }
            Err(e) => vec![store_error(e)],
        }
    }

    /// RFC 5804 2.12: as PUTSCRIPT without storing.
    fn checkscript(&mut self, cmd: Command, _: &dyn Backend) -> Vec<Action> {
        let Command::CheckScript(script) = cmd else { return self.fail("Unexpected") };
        let max = self.max_literal();
        if script.len() as u64 > max {
            return vec![no(Some("QUOTA/MAXSIZE"), &format!("Script too big (at most {max} octets)"))];
        }
        match self.checked(&script) {
            Ok(a) => vec![a.unwrap_or_else(|| ok("Script is valid"))],
            Err(a) => vec![a],
        }
    }

    /// RFC 5804 2.7: one line per script, the active one marked ACTIVE.
    fn listscripts(&mut self, _: Command, _: &dyn Backend) -> Vec<Action> {
        self.with_store(|s| match s.list() {
            Ok((names, active)) => {
                let mut out = Vec::new();
                for n in names {
                    out.extend_from_slice(&string(n.as_bytes()));
                    if active.as_deref() == Some(n.as_str()) {
                        out.extend_from_slice(b" ACTIVE");
                    }
                    out.extend_from_slice(b"\r\n");
                }
                out.extend_from_slice(b"OK \"Listscripts completed\"\r\n");
                vec![Action::Reply(out)]
            }
            Err(e) => vec![store_error(e)],
        })
    }

    /// RFC 5804 2.8: the empty name deactivates.
    fn setactive(&mut self, cmd: Command, _: &dyn Backend) -> Vec<Action> {
        let Command::SetActive(name) = cmd else { return self.fail("Unexpected") };
        let user = self.user.clone().unwrap_or_default();
        self.with_store(|s| {
            let target = (!name.is_empty()).then_some(name.as_str());
            match s.set_active(target) {
                Ok(()) => {
                    log::info!("event=sieve_activate user={user} name={name:?}");
                    vec![ok(if target.is_some() { "Script activated" } else { "Scripts deactivated" })]
                }
                Err(e) => vec![store_error(e)],
            }
        })
    }

    /// RFC 5804 2.9: the script as a literal, then OK.
    fn getscript(&mut self, cmd: Command, _: &dyn Backend) -> Vec<Action> {
        let Command::GetScript(name) = cmd else { return self.fail("Unexpected") };
        self.with_store(|s| match s.get(&name) {
            Ok(data) => {
                // RFC 5804 4 literal-s2c: "{" number "}" CRLF *OCTET, then CRLF ends the line.
                let mut out = format!("{{{}}}\r\n", data.len()).into_bytes();
                out.extend_from_slice(&data);
                out.extend_from_slice(b"\r\nOK \"Getscript completed\"\r\n");
                vec![Action::Reply(out)]
            }
            Err(e) => vec![store_error(e)],
        })
    }

    /// RFC 5804 2.10: never the active script.
    fn deletescript(&mut self, cmd: Command, _: &dyn Backend) -> Vec<Action> {
        let Command::DeleteScript(name) = cmd else { return self.fail("Unexpected") };
        self.with_store(|s| match s.delete(&name) {
            Ok(()) => vec![ok("Script deleted")],
            Err(e) => vec![store_error(e)],
        })
    }

    /// RFC 5804 2.11.1.
    fn renamescript(&mut self, cmd: Command, _: &dyn Backend) -> Vec<Action> {
        let Command::RenameScript { old, new } = cmd else { return self.fail("Unexpected") };
        if let Err(e) = check_name(&new) {
            return vec![store_error(e)];
        }
        self.with_store(|s| match s.rename(&old, &new) {
            Ok(()) => vec![ok("Script renamed")],
            Err(e) => vec![store_error(e)],
        })
    }
}
