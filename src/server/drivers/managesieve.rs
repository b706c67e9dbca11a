//! The ManageSieve driver (RFC 5804): one connection's commands, with their string literals
//! gathered by the IMAP command assembler (RFC 5804 4 `literal-c2s`, `{n+}`; `{n}` is read the same
//! way, as no continuation exists for it), to the I/O-free [`Session`] and its responses back, in
//! plain text or after STARTTLS (RFC 5804 2.2) with the configured certificate. Between commands the
//! connection waits in the event loop. A literal over the limit (a script over
//! `managesieve.max_script_size`) is read and dropped, then refused (RFC 5804 2.6 QUOTA/MAXSIZE).
//!
//! At login the user's scripts are found (scripts.rs: the home directory, or data_dir for a virtual
//! user) and each later run on a worker takes the owner's file-system identity, so what is written
//! is theirs. A system user whose files the server (no longer root) cannot reach as their owner is
//! served by the user's mail process, to which the connection is relayed (relay.rs, mailproc.rs),
//! as for IMAP and POP3. Deadlines: `login_timeout` from connect until a login, and for a line once
//! begun; a literal within `login_timeout` plus its size at `smtp.min_data_rate`;
//! `managesieve.timeout` between commands once logged in.

use std::cell::Cell;
use std::io;
use std::io::Write;
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::io::{Bytes, Input, Io};
use super::relay::Relay;
use super::{Connection, Env, Handshake, NoLogin, Wait, Wake, Yield, handshake, yielded};
use crate::config::{Config, in_networks};
use crate::imap::command::{Assembler, Step};
use crate::local::Resolver;
use crate::managesieve::scripts::{self, ScriptStore};
use crate::managesieve::session::{self, Action, Params, Peer, Session};
use crate::netio::Stream;
use crate::server::context::{ConnBackend, Context};
use crate::server::mailproc::{Handed, Status};
use crate::server::{Service, Slot};
use crate::store::owner::{Owner, become_owner};
use crate::transport::Transport;

/// The longest command line (without its literals), CRLF included.
const MAX_LINE: usize = 8 * 1024;
/// The largest refused literal read and dropped so the client hears why; past it the connection ends.
const MAX_DRAIN: u64 = 64 * 1024 * 1024;

/// Where a literal's octets go.
enum Sink {
    Command(Vec<u8>),
    /// Nowhere: the command is refused once the literal and the rest of its line are read.
    Drop {
        head: Vec<u8>,
    },
}

enum Phase {
    Handshake {
        began: Instant,
    },
    Command,
    Literal {
        left: u64,
        len: u64,
        sink: Sink,
        began: Instant,
    },
    /// The rest of a refused command's line, read and dropped before its answer.
    SkipLine {
        head: Vec<u8>,
    },
    /// A failed login's answer, held back until then (the brute-force brake).
    Held(Instant, Vec<Action>),
    /// The rest of the session is the user's mail process's.
    Relay(Relay),
}

pub struct ManageSieve {
    /// The server's context; None in a mail process.
    ctx: Option<Arc<Context>>,
    config: Arc<Config>,
    resolver: Arc<Resolver>,
    io: Io,
    session: Session,
    asm: Assembler,
    /// The literal limit the assembler was made with.
    asm_limit: u64,
    sid: String,
    peer: SocketAddr,
    _slot: Option<Slot>,
    phase: Phase,
    /// Whose the scripts are: taken for each run on a worker.
    owner: Option<Owner>,
    /// The owner became known during this run: run again as them.
    again: bool,
    connected: Instant,
    /// Stress mode was on while it waited to log in: the shorter limit stands.
    stressed: bool,
    since: Instant,
}

fn assembler(max_literal: u64) -> Assembler {
    let total = usize::try_from(max_literal).unwrap_or(usize::MAX).saturating_add(4 * MAX_LINE);
    Assembler::new(MAX_LINE, max_literal, total)
}

/// The session's backend: the server's login machinery, or none in a mail process.
enum Backend<'a> {
    Server(ConnBackend<'a>),
    Mail,
}

impl Backend<'_> {
    fn get(&self) -> &dyn session::Backend {
        match self {
            Backend::Server(b) => b,
            Backend::Mail => &NoLogin,
        }
    }

    fn delay(&self) -> Duration {
        match self {
            Backend::Server(b) => b.delay.take(),
            Backend::Mail => Duration::ZERO,
        }
    }
}

impl ManageSieve {
    /// A connection accepted on a ManageSieve listener.
    pub fn new(ctx: Arc<Context>, stream: Transport, peer: SocketAddr, slot: Slot) -> ManageSieve {
        let cleartext_auth = in_networks(&ctx.config.auth_cleartext_networks, peer.ip());
        let session =
            Session::new(ctx.managesieve_params(), Peer { ip: peer.ip(), port: peer.port(), cleartext_auth });
        let now = Instant::now();
        let limit = session.max_literal();
        ManageSieve {
            config: Arc::clone(&ctx.config),
            resolver: Arc::clone(&ctx.resolver),
            ctx: Some(ctx),
            io: Io::new(Stream::Plain(stream)),
            session,
            asm: assembler(limit),
            asm_limit: limit,
            sid: crate::spool::new_queue_id(),
            peer,
            _slot: Some(slot),
            phase: Phase::Command,
            owner: None,
            again: false,
            connected: now,
            stressed: false,
            since: now,
        }
    }

    fn run(&mut self, wake: Wake, env: &Env) -> io::Result<Option<Wait>> {
        if wake == Wake::Start && self.ctx.is_some() {
            log::info!(
                "session={} event=connect service={} client={}",
                self.sid,
                Service::ManageSieve.name(),
                self.peer
            );
            if env.shutting_down {
                let actions = self.session.on_shutdown();
                self.perform(actions)?;
                return Ok(None);
            }
            self.io.out.extend_from_slice(&self.session.greeting());
        }
        loop {
            self.again = false;
            // Logged out (UNAUTHENTICATE): the next login reads the user database as the server.
            if self.session.user().is_none() {
                self.owner = None;
            }
            // The owner's identity for this run (fsuid and groups of this worker thread only).
            let _as = become_owner(self.owner, None).map_err(io::Error::other)?;
            let result = self.run_with(wake, env);
            if !self.again {
                return result;
            }
        }
    }

    fn run_with(&mut self, wake: Wake, env: &Env) -> io::Result<Option<Wait>> {
        loop {
            let now = Instant::now();
            if matches!(self.phase, Phase::Command) && !self.asm.in_progress() {
                let limit = self.session.max_literal();
                if limit != self.asm_limit {
                    self.asm = assembler(limit);
                    self.asm_limit = limit;
                }
            }
            match &mut self.phase {
                Phase::Relay(relay) => {
                    if env.shutting_down && wake == Wake::Shutdown {
                        return Ok(None);
                    }
                    return relay.step(&mut self.io);
                }
                Phase::Handshake { began } => {
                    let began = *began;
                    match handshake(&mut self.io, began, self.config.login_timeout, &self.sid) {
                        Handshake::Done(details) => {
                            let (description, bindings) = details.unwrap_or_default();
                            self.phase = Phase::Command;
                            let actions = self.session.on_tls(description, bindings);
                            if !self.perform(actions)? {
                                return Ok(None);
                            }
                        }
                        Handshake::Wait(w) => return Ok(Some(w)),
                        Handshake::Failed => return Ok(None),
                    }
                }
                Phase::Held(until, _) => {
                    if now < *until {
                        return Ok(Some(Wait { until: Some(*until), ..Wait::default() }));
                    }
                    let Phase::Held(_, actions) = std::mem::replace(&mut self.phase, Phase::Command) else {
                        return Ok(None);
                    };
                    if !self.perform(actions)? || self.again {
                        return Ok(None);
                    }
                }
                Phase::Literal { left, len, sink, began } => {
                    let (len, began) = (*len, *began);
                    let data = match self.io.bytes()? {
                        Bytes::Data(d) => d,
                        Bytes::Eof => return Ok(None),
                        Bytes::Pending => {
                            let got = len - *left;
                            let allowance = got
                                .checked_div(self.config.smtp_min_data_rate)
                                .map_or(Duration::from_secs(86400 * 365), Duration::from_secs);
                            let deadline = began + self.config.login_timeout + allowance;
                            if now >= deadline {
                                log::info!("session={} event=timeout during=literal octets={got}", self.sid);
                                let actions = self.session.on_timeout();
                                self.perform(actions)?;
                                return Ok(None);
                            }
                            return Ok(Some(Wait { read: true, until: Some(deadline), ..Wait::default() }));
                        }
                    };
                    let n = data.len().min(usize::try_from(*left).unwrap_or(usize::MAX));
                    if let Sink::Command(buf) = sink {
                        buf.extend_from_slice(data.get(..n).unwrap_or_default());
                    }
                    *left -= n as u64;
                    self.io.consume(n);
                    if *left == 0 {
                        let Phase::Literal { sink, .. } = std::mem::replace(&mut self.phase, Phase::Command)
                        else {
                            return Ok(None);
                        };
                        match sink {
                            Sink::Command(data) => self.asm.literal(&data),
                            Sink::Drop { head } => self.phase = Phase::SkipLine { head },
                        }
                    }
                }
                Phase::SkipLine { head } => match self.io.line(MAX_LINE)? {
                    Input::Line(_) | Input::TooLong => {
                        let head = std::mem::take(head);
                        self.phase = Phase::Command;
                        let actions = self.session.on_too_big(&head);
                        if !self.perform(actions)? {
                            return Ok(None);
                        }
                    }
                    Input::Eof => return Ok(None),
                    Input::Pending => return self.wait_for_command(now, env),
                },
                Phase::Command => {
                    let line = match self.io.line(MAX_LINE)? {
                        Input::Line(l) => l.to_vec(),
                        Input::TooLong => {
                            self.asm.reset();
                            let actions = self.session.on_line_too_long();
                            if !self.perform(actions)? {
                                return Ok(None);
                            }
                            continue;
                        }
                        Input::Eof => return Ok(None),
                        Input::Pending => return self.wait_for_command(now, env),
                    };
                    match self.asm.line(&line) {
                        Step::Complete(buf) => {
                            let backend = match &self.ctx {
                                Some(ctx) => Backend::Server(ConnBackend {
                                    ctx,
                                    ip: self.peer.ip(),
                                    sid: &self.sid,
                                    delay: Cell::new(Duration::ZERO),
                                }),
                                None => Backend::Mail,
                            };
                            let actions = self.session.on_command(&buf, backend.get());
                            let delay = backend.delay();
                            self.since = now;
                            if !delay.is_zero() {
                                self.io.flush()?;
                                self.phase = Phase::Held(now + delay, actions);
                                continue;
                            }
                            if !self.perform(actions)? || self.again {
                                return Ok(None);
                            }
                        }
                        Step::NeedLiteral { len, .. } => {
                            let cap = usize::try_from(len).unwrap_or(0).min(1 << 20);
                            self.phase = Phase::Literal {
                                left: len,
                                len,
                                sink: Sink::Command(Vec::with_capacity(cap)),
                                began: now,
                            };
                        }
                        Step::TooBig { len: 0, .. } => {
                            let actions = self.session.on_line_too_long();
                            if !self.perform(actions)? {
                                return Ok(None);
                            }
                        }
                        // The client sends the literal anyway (RFC 5804 4 has no continuation for
                        // it): read it into nothing, then answer.
                        Step::TooBig { len, .. } if len <= MAX_DRAIN => {
                            log::info!("session={} event=managesieve_too_big size={len}", self.sid);
                            self.phase = Phase::Literal {
                                left: len,
                                len,
                                sink: Sink::Drop { head: line },
                                began: now,
                            };
                        }
                        Step::TooBig { len, .. } => {
                            log::info!("session={} event=managesieve_too_big size={len}", self.sid);
                            self.io.out.extend_from_slice(b"BYE \"Literal too big\"\r\n");
                            return Ok(None);
                        }
                    }
                }
            }
        }
    }

    /// No complete command yet: park until the deadline (or end it, or say goodbye at shutdown).
    fn wait_for_command(&mut self, now: Instant, env: &Env) -> io::Result<Option<Wait>> {
        self.io.flush()?;
        if env.shutting_down && !self.asm.in_progress() {
            let actions = self.session.on_shutdown();
            self.perform(actions)?;
            return Ok(None);
        }
        let c = &self.config;
        let deadline = if let Some(first_byte) = self.io.started {
            first_byte + c.login_timeout
        } else if self.session.user().is_none() {
            self.stressed |= env.stress;
            self.connected
                + if self.stressed { c.login_timeout.min(c.stress_timeout) } else { c.login_timeout }
        } else {
            self.since + c.managesieve.timeout
        };
        if now >= deadline {
            log::info!("session={} event=timeout", self.sid);
            let actions = self.session.on_timeout();
            self.perform(actions)?;
            return Ok(None);
        }
        Ok(Some(Wait { read: true, until: Some(deadline), ..Wait::default() }))
    }

    /// Carries out actions (and those they lead to). False: close.
    fn perform(&mut self, mut actions: Vec<Action>) -> io::Result<bool> {
        let mut i = 0;
        while i < actions.len() {
            match std::mem::replace(&mut actions[i], Action::Close) {
                Action::Reply(bytes) => self.io.out.extend_from_slice(&bytes),
                Action::Close => return Ok(false),
                Action::StartTls => {
                    self.io.flush()?;
                    let Some(tls) = self.ctx.as_ref().and_then(|c| c.tls.clone()) else { return Ok(false) };
                    // RFC 5804 2.2: what was pipelined after STARTTLS goes with the plain stream.
                    self.io.start_tls(tls.config())?;
                    self.asm.reset();
                    self.phase = Phase::Handshake { began: Instant::now() };
                    return Ok(true);
                }
                Action::Open { user } => {
                    if let Some(handed) = self.hand_off(&user) {
                        match handed {
                            Ok(mail) => {
                                self.io.flush()?;
                                // The mail process answers the login and serves the rest.
                                self.phase = Phase::Relay(Relay::new(mail, &mut self.io)?);
                                return Ok(true);
                            }
                            Err(e) => {
                                log::warn!(
                                    "session={} event=sieve_open_failed user={user} error=\"{e}\"",
                                    self.sid
                                );
                                actions.extend(self.session.on_opened(Err(e)));
                            }
                        }
                        i += 1;
                        continue;
                    }
                    let more = match open(&self.resolver, &self.config, &user) {
                        Ok((store, owner)) => {
                            log::info!(
                                "session={} event=sieve_open user={user} home={}",
                                self.sid,
                                store.home().display()
                            );
                            self.owner = owner;
                            // Later commands of this run must go as the owner: run again.
                            self.again = owner.is_some();
                            self.session.on_opened(Ok(store))
                        }
                        Err(e) => {
                            log::warn!(
                                "session={} event=sieve_open_failed user={user} error=\"{e}\"",
                                self.sid
                            );
                            self.session.on_opened(Err(e))
                        }
                    };
                    actions.extend(more);
                }
            }
            i += 1;
        }
        Ok(true)
    }

    /// Hands the session to `user`'s mail process when their files are ones this process cannot
    /// reach as their owner (None: serve it here): the mail process's socket, or why not.
    fn hand_off(&self, user: &str) -> Option<Result<UnixStream, String>> {
        let helper = self.ctx.as_ref()?.helper.as_ref()?;
        if crate::server::privs::is_root() {
            return None;
        }
        let uid = match self.resolver.account(user) {
            Ok((acc, _, _)) => acc.uid,
            Err(e) => return Some(Err(e)),
        };
        // SAFETY: geteuid has no preconditions.
        if uid.is_none_or(|u| u == unsafe { libc::geteuid() }) {
            return None;
        }
        let tls = matches!(self.io.stream, Stream::Tls(_));
        Some(match helper.open_session(user, "sieve", &self.sid, self.peer, tls) {
            Ok((mail, Status::Ok)) => Ok(mail),
            Ok(_) => Err("the mail process could not open the scripts".into()),
            Err(e) => Err(e),
        })
    }
}

impl Connection for ManageSieve {
    fn resume(&mut self, wake: Wake, env: &Env) -> Yield {
        self.io.blocker = env.blocker.cloned();
        let result = self.run(wake, env);
        let user = Some(self.session.user().unwrap_or("-"));
        yielded(&mut self.io, result, &self.sid, self.peer, user)
    }

    fn fd(&self) -> Option<RawFd> {
        self.io.stream.fd()
    }
}

/// Finds `user`'s scripts and their owner.
fn open(resolver: &Resolver, config: &Config, user: &str) -> Result<(ScriptStore, Option<Owner>), String> {
    let (acc, local, domain) = resolver.account(user)?;
    let home = scripts::home_for(acc.home.as_deref(), &config.data_dir, &local, &domain)?;
    let owner = acc.uid.zip(acc.gid).map(|(uid, gid)| Owner { uid, gid });
    let m = &config.managesieve;
    Ok((ScriptStore::new(home, m.max_scripts, m.max_script_size), owner))
}

/// A session handed to this mail process (which runs as the user): finds the user's scripts, tells
/// the server with the status line and answers the AUTHENTICATE; the connection is then run like
/// any other. None when it ended there.
pub fn handed(sock: UnixStream, h: &Handed) -> Option<ManageSieve> {
    let req = h.req;
    let sid = req.sid.as_str();
    let peer = h.peer();
    sock.set_write_timeout(Some(Duration::from_secs(60))).ok()?;
    let mut stream = Stream::Plain(Transport::Unix(sock));
    let store = match open(h.resolver, h.config, &req.user) {
        Ok((store, _)) => store,
        Err(e) => {
            log::warn!("session={sid} event=sieve_open_failed user={} error=\"{e}\"", req.user);
            let _ = stream.write_all(Status::Temp.line());
            return None;
        }
    };
    stream.write_all(Status::Ok.line()).ok()?;
    log::info!(
        "session={sid} event=sieve_open user={} home={} in=mailproc client={peer}",
        req.user,
        store.home().display()
    );
    let params = Arc::new(Params {
        hostname: h.config.hostname.clone(),
        starttls: false,
        auth_mechanisms: Vec::new(),
        max_errors: h.config.managesieve.max_errors,
        check: crate::managesieve::script_check(),
    });
    let session = Session::handed(
        params,
        Peer { ip: peer.ip(), port: peer.port(), cleartext_auth: false },
        req.user.clone(),
        req.tls,
    );
    let now = Instant::now();
    let limit = h.config.managesieve.max_script_size;
    let mut conn = ManageSieve {
        ctx: None,
        config: Arc::clone(h.config),
        resolver: Arc::clone(h.resolver),
        io: Io::new(stream),
        session,
        asm: assembler(limit),
        asm_limit: limit,
        sid: sid.to_string(),
        peer,
        _slot: None,
        phase: Phase::Command,
        owner: None,
        again: false,
        connected: now,
        stressed: false,
        since: now,
    };
    let first = conn.session.on_opened(Ok(store));
    match conn.perform(first) {
        Ok(true) => Some(conn),
        _ => {
            let _ = conn.io.flush();
            None
        }
    }
}
