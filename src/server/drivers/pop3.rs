//! The POP3 driver: one connection's lines to the I/O-free [`Session`] and its actions carried out
//! (plain, STLS per RFC 2595, or implicit TLS on pop3s per RFC 8314): the maildrop opened at login
//! with its owner's file-system identity, messages streamed, deletions applied only at QUIT (RFC
//! 1939 6). A system user's maildrop that the server (no longer root) cannot open as its owner is
//! served by the user's mail process, to which the connection is relayed (relay.rs). Between
//! commands the connection waits in the event loop. Deadlines: `login_timeout` from connect until
//! a login, and for a line once begun; `pop3.timeout` (RFC 1939 3 autologout) between commands.

use std::cell::Cell;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::io::{Input, Io};
use super::relay::Relay;
use super::{Connection, Env, Handshake, NoLogin, Wait, Wake, Yield, handshake, yielded};
use crate::config::{Config, MailboxKind, in_networks};
use crate::local::Resolver;
use crate::netio::Stream;
use crate::pop3::session::{self, Action, OpenError, Peer, Session, UpdateError};
use crate::server::context::{ConnBackend, Context};
use crate::server::mailproc::{Handed, Status};
use crate::server::{Service, Slot};
use crate::store::maildrop::{DropError, Maildrop};
use crate::store::owner::{Owner, become_owner};
use crate::transport::Transport;

/// The session's view of an opened maildrop.
struct View<'a>(&'a Maildrop);

impl session::Maildrop for View<'_> {
    fn count(&self) -> usize {
        self.0.count()
    }
    fn size(&self, n: usize) -> u64 {
        self.0.size(n).unwrap_or(0)
    }
    fn uid(&self, n: usize) -> &str {
        self.0.uid(n).unwrap_or("-")
    }
}

/// The longest a login waits for an mbox's lock.
const MBOX_OPEN_WAIT: Duration = Duration::from_secs(3);

/// An opened maildrop and whose it is.
struct Opened {
    drop: Maildrop,
    owner: Option<Owner>,
}

enum Phase {
    Handshake {
        began: Instant,
        greet: bool,
    },
    Command,
    /// A failed login's answer, held back until then (the brute-force brake).
    Held(Instant, Vec<Action>),
    /// The rest of the session is the user's mail process's.
    Relay(Relay),
}

pub struct Pop3 {
    /// The server's context; None in a mail process.
    ctx: Option<Arc<Context>>,
    config: Arc<Config>,
    resolver: Arc<Resolver>,
    io: Io,
    session: Session,
    sid: String,
    peer: SocketAddr,
    service: Service,
    _slot: Option<Slot>,
    phase: Phase,
    opened: Option<Opened>,
    connected: Instant,
    /// Stress mode was on while it waited to log in: the shorter limit stands (see the SMTP driver).
    stressed: bool,
    /// When the client was last answered.
    since: Instant,
}

impl Pop3 {
    /// A connection accepted on a POP3 listener.
    pub fn new(ctx: Arc<Context>, stream: Transport, peer: SocketAddr, service: Service, slot: Slot) -> Pop3 {
        let cleartext_auth = in_networks(&ctx.config.auth_cleartext_networks, peer.ip());
        let mut session =
            Session::new(ctx.pop3_params(service), Peer { ip: peer.ip(), port: peer.port(), cleartext_auth });
        let mut nonce = [0u8; 8];
        crate::server::context::fill_random(&mut nonce);
        session.set_apop_nonce(u64::from_be_bytes(nonce));
        let now = Instant::now();
        Pop3 {
            config: Arc::clone(&ctx.config),
            resolver: Arc::clone(&ctx.resolver),
            ctx: Some(ctx),
            io: Io::new(Stream::Plain(stream)),
            session,
            sid: crate::spool::new_queue_id(),
            peer,
            service,
            _slot: Some(slot),
            phase: Phase::Command,
            opened: None,
            connected: now,
            stressed: false,
            since: now,
        }
    }

    fn backend<'a>(ctx: &'a Option<Arc<Context>>, ip: std::net::IpAddr, sid: &'a str) -> Backend<'a> {
        match ctx {
            Some(ctx) => Backend::Server(ConnBackend { ctx, ip, sid, delay: Cell::new(Duration::ZERO) }),
            None => Backend::Mail,
        }
    }

    fn run(&mut self, wake: Wake, env: &Env) -> io::Result<Option<Wait>> {
        if wake == Wake::Start && self.ctx.is_some() {
            log::info!(
                "session={} event=connect service={} client={}",
                self.sid,
                self.service.name(),
                self.peer
            );
            if env.shutting_down {
                let actions = self.session.on_shutdown();
                self.perform(actions)?;
                return Ok(None);
            }
            match (self.service, self.ctx.as_ref().and_then(|c| c.tls.clone())) {
                (Service::Pop3s, Some(tls)) => {
                    self.io.start_tls(tls.config())?;
                    self.phase = Phase::Handshake { began: self.connected, greet: true };
                }
                (Service::Pop3s, None) => return Ok(None),
                _ => self.io.out.extend_from_slice(&self.session.greeting()),
            }
        }
        loop {
            let now = Instant::now();
            match &mut self.phase {
                Phase::Relay(relay) => {
                    if env.shutting_down && wake == Wake::Shutdown {
                        return Ok(None);
                    }
                    return relay.step(&mut self.io);
                }
                Phase::Handshake { began, greet } => {
                    let (began, greet) = (*began, *greet);
                    match handshake(&mut self.io, began, self.config.login_timeout, &self.sid) {
                        Handshake::Done(details) => {
                            if let Some((description, bindings)) = details {
                                self.session.on_tls(description, bindings);
                            }
                            if greet {
                                self.io.out.extend_from_slice(&self.session.greeting());
                            }
                            self.phase = Phase::Command;
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
                    if !self.perform(actions)? {
                        return Ok(None);
                    }
                }
                Phase::Command => {
                    let backend = Self::backend(&self.ctx, self.peer.ip(), &self.sid);
                    let actions = match self.io.line(self.session.max_line())? {
                        Input::Line(l) => self.session.on_line(l, backend.get()),
                        Input::TooLong => self.session.on_line_too_long(),
                        Input::Eof => return Ok(None), // RFC 1939 6: no QUIT, nothing is deleted
                        Input::Pending => {
                            self.io.flush()?;
                            // A session with its maildrop open holds the lock: it may finish at shutdown.
                            if env.shutting_down && self.opened.is_none() {
                                let actions = self.session.on_shutdown();
                                self.perform(actions)?;
                                return Ok(None);
                            }
                            self.stressed |= env.stress;
                            let deadline = self.deadline();
                            if now >= deadline {
                                log::info!("session={} event=timeout", self.sid);
                                let actions = self.session.on_timeout();
                                self.perform(actions)?;
                                return Ok(None);
                            }
                            return Ok(Some(Wait { read: true, until: Some(deadline), ..Wait::default() }));
                        }
                    };
                    let delay = backend.delay();
                    self.since = now;
                    if !delay.is_zero() {
                        self.io.flush()?;
                        self.phase = Phase::Held(now + delay, actions);
                        continue;
                    }
                    if !self.perform(actions)? {
                        return Ok(None);
                    }
                }
            }
        }
    }

    /// When a client waiting between commands is logged out.
    fn deadline(&self) -> Instant {
        let c = &self.config;
        if let Some(first_byte) = self.io.started {
            return first_byte + c.login_timeout;
        }
        if self.session.user().is_none() {
            let limit = if self.stressed { c.login_timeout.min(c.stress_timeout) } else { c.login_timeout };
            return self.connected + limit;
        }
        self.since + c.pop3_timeout
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
                    // RFC 2595 4: what was pipelined after STLS goes with the plain stream.
                    self.io.start_tls(tls.config())?;
                    self.phase = Phase::Handshake { began: Instant::now(), greet: false };
                    return Ok(true);
                }
                Action::Open { user } => {
                    if let Some(handed) = self.hand_off(&user) {
                        match handed {
                            Ok(mail) => {
                                self.io.flush()?;
                                // The mail process answers the login and serves the rest of the session.
                                self.phase = Phase::Relay(Relay::new(mail, &mut self.io)?);
                                return Ok(true);
                            }
                            Err(e) => {
                                if let OpenError::Temp(m) = &e {
                                    log::warn!(
                                        "session={} event=pop3_open_failed user={user} error=\"{m}\"",
                                        self.sid
                                    );
                                }
                                actions.extend(self.session.on_opened(Err(e)));
                            }
                        }
                        i += 1;
                        continue;
                    }
                    let more = match open(&self.resolver, &self.config, &user) {
                        Ok(o) => {
                            log::info!(
                                "session={} event=pop3_open user={user} messages={}",
                                self.sid,
                                o.drop.count()
                            );
                            let more = self.session.on_opened(Ok(&View(&o.drop)));
                            self.opened = Some(o);
                            more
                        }
                        Err(e) => {
                            log::warn!(
                                "session={} event=pop3_open_failed user={user} error=\"{e:?}\"",
                                self.sid
                            );
                            self.session.on_opened(Err(e))
                        }
                    };
                    actions.extend(more);
                }
                Action::SendMessage { n, top_lines } => {
                    let Some(o) = self.opened.as_ref() else {
                        self.io.out.extend_from_slice(&session::message_unavailable());
                        i += 1;
                        continue;
                    };
                    self.io.out.extend_from_slice(b"+OK message follows\r\n");
                    self.io.flush()?;
                    // Read with the owner's identity, as the maildrop was opened and is expunged.
                    let _as = become_owner(o.owner, None).map_err(io::Error::other)?;
                    let (_, client) = self.io.client();
                    let mut w = io::BufWriter::with_capacity(64 * 1024, client);
                    o.drop.write_message(n, top_lines, &mut w)?;
                    w.write_all(b".\r\n")?;
                    w.flush()?;
                }
                Action::Update { deleted } => {
                    let result = match self.opened.take() {
                        Some(o) => {
                            let n = deleted.len();
                            match become_owner(o.owner, None) {
                                Ok(_as) => o
                                    .drop
                                    .expunge(&deleted)
                                    .map(|()| n)
                                    .map_err(|e| UpdateError(e.to_string())),
                                Err(e) => Err(UpdateError(e)),
                            }
                        }
                        None => Ok(0),
                    };
                    if let Ok(n) = &result {
                        log::info!("session={} event=pop3_update deleted={n}", self.sid);
                    }
                    actions.extend(self.session.on_updated(result.map(|_| ())));
                }
            }
            i += 1;
        }
        Ok(true)
    }

    /// Hands the session to `user`'s mail process when their maildrop is one this process cannot
    /// open as its owner (None: open it here): the mail process's socket, or why it could not.
    fn hand_off(&self, user: &str) -> Option<Result<UnixStream, OpenError>> {
        let helper = self.ctx.as_ref()?.helper.as_ref()?;
        if crate::server::privs::is_root() {
            return None;
        }
        let dest = match self.resolver.mail_home(user) {
            Ok(h) => h.inbox,
            Err(e) => return Some(Err(OpenError::Temp(e))),
        };
        // SAFETY: geteuid has no preconditions.
        if dest.uid.is_none_or(|u| u == unsafe { libc::geteuid() }) {
            return None;
        }
        let tls = matches!(self.io.stream, Stream::Tls(_));
        Some(match helper.open_session(user, "pop3", &self.sid, self.peer, tls) {
            Ok((mail, Status::Ok)) => Ok(mail),
            Ok((_, Status::InUse)) => Err(OpenError::InUse),
            Ok((_, Status::Temp)) => {
                Err(OpenError::Temp("the mail process could not open the maildrop".into()))
            }
            Err(e) => Err(OpenError::Temp(e)),
        })
    }
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

    /// How long to hold back the answer (a failed login).
    fn delay(&self) -> Duration {
        match self {
            Backend::Server(b) => b.delay.take(),
            Backend::Mail => Duration::ZERO,
        }
    }
}

impl Connection for Pop3 {
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

/// A session handed to this mail process: opens the user's maildrop (as this process's user),
/// tells the server with the status line and answers the login; the connection is then run like
/// any other. None when it ended there.
pub fn handed(sock: UnixStream, h: &Handed) -> Option<Pop3> {
    let req = h.req;
    let sid = req.sid.as_str();
    let peer = h.peer();
    sock.set_write_timeout(Some(Duration::from_secs(60))).ok()?;
    let mut stream = Stream::Plain(Transport::Unix(sock));
    let o = match open(h.resolver, h.config, &req.user) {
        Ok(o) => o,
        Err(e) => {
            log::warn!("session={sid} event=pop3_open_failed user={} error=\"{e:?}\"", req.user);
            let status = if e == OpenError::InUse { Status::InUse } else { Status::Temp };
            let _ = stream.write_all(status.line());
            return None;
        }
    };
    stream.write_all(Status::Ok.line()).ok()?;
    log::info!(
        "session={sid} event=pop3_open user={} messages={} in=mailproc client={peer}",
        req.user,
        o.drop.count()
    );
    let params = Arc::new(session::Params {
        hostname: h.config.hostname.clone(),
        max_errors: h.config.pop3_max_errors,
        stls: false,
        auth_mechanisms: Vec::new(),
        apop: false,
    });
    let session = Session::handed(
        params,
        Peer { ip: peer.ip(), port: peer.port(), cleartext_auth: false },
        req.user.clone(),
    );
    let now = Instant::now();
    let mut conn = Pop3 {
        ctx: None,
        config: Arc::clone(h.config),
        resolver: Arc::clone(h.resolver),
        io: Io::new(stream),
        session,
        sid: sid.to_string(),
        peer,
        service: Service::Pop3,
        _slot: None,
        phase: Phase::Command,
        opened: None,
        connected: now,
        stressed: false,
        since: now,
    };
    let first = conn.session.on_opened(Ok(&View(&o.drop)));
    conn.opened = Some(o);
    match conn.perform(first) {
        Ok(true) => Some(conn),
        _ => {
            let _ = conn.io.flush();
            None
        }
    }
}

/// Finds and locks `user`'s maildrop: the mailbox their own address is delivered to.
fn open(resolver: &Resolver, config: &Config, user: &str) -> Result<Opened, OpenError> {
    // The account's own mailbox, whatever its aliases or ~/.forward say about new mail.
    let dest = resolver.mail_home(user).map_err(OpenError::Temp)?.inbox;
    let owner = dest.uid.zip(dest.gid).map(|(uid, gid)| Owner { uid, gid });
    let _as = become_owner(owner, None).map_err(OpenError::Temp)?;
    let drop = match dest.kind {
        MailboxKind::Maildir => Maildrop::open_maildir(&dest.path),
        // A delivery holds the lock for milliseconds; another POP3 session for its whole length, so a
        // short wait tells the two apart and the client hears [IN-USE] promptly.
        MailboxKind::Mbox => Maildrop::open_mbox(&dest.path, config.mbox_lock_timeout.min(MBOX_OPEN_WAIT)),
    };
    match drop {
        Ok(drop) => Ok(Opened { drop, owner }),
        Err(DropError::InUse) => Err(OpenError::InUse),
        Err(e) => Err(OpenError::Temp(e.to_string())),
    }
}
