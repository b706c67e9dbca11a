//! One POP3 connection: drives the I/O-free [`Session`] over a blocking
//! socket (plain, STLS per RFC 2595, or implicit TLS on pop3s per RFC 8314),
//! opens the user's maildrop at login, streams messages, and expunges only
//! at QUIT (RFC 1939 6). The maildrop is opened and changed with the
//! mailbox owner's file-system identity when the server runs as root.

use std::cell::Cell;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::Duration;

use crate::auth::sasl::Credentials;
use crate::config::{Config, MailboxKind, in_networks};
use crate::local::Resolver;
use crate::netio::{Line, LineReader, Stream, flush_out, open_session_stream, tls_details};
use crate::pop3::session::{self, Action, OpenError, Peer, Session, UpdateError};
use crate::server::Service;
use crate::server::acceptor::Job;
use crate::server::helper::PasswordHelper;
use crate::server::mailproc::{Handed, Status};
use crate::smtp::backend::{ConnBackend, Context};
use crate::store::maildrop::{DropError, Maildrop};
use crate::store::owner::{Owner, become_owner};

impl session::Backend for ConnBackend<'_> {
    fn credentials(&self) -> Option<&dyn Credentials> {
        crate::smtp::session::Backend::credentials(self)
    }
    fn random(&self, buf: &mut [u8]) {
        crate::smtp::session::Backend::random(self, buf)
    }
    fn auth_failed(&self, user: &str) {
        crate::smtp::session::Backend::auth_failed(self, user)
    }
    fn auth_succeeded(&self, user: &str, mechanism: &str) {
        crate::smtp::session::Backend::auth_succeeded(self, user, mechanism)
    }
    fn auth_blocked(&self) -> bool {
        crate::smtp::session::Backend::auth_blocked(self)
    }
}

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

/// A session in a mail process: logged in before it started, so nothing of the login machinery.
struct MailBackend;

impl session::Backend for MailBackend {
    fn credentials(&self) -> Option<&dyn Credentials> {
        None
    }
    fn random(&self, buf: &mut [u8]) {
        crate::smtp::backend::fill_random(buf)
    }
    fn auth_failed(&self, _user: &str) {}
    fn auth_blocked(&self) -> bool {
        true
    }
}

/// Where the command loop runs: in the server (with the login machinery, TLS, and the helper that
/// hands system users' sessions to their mail processes) or in a mail process.
struct Env<'a> {
    backend: &'a dyn session::Backend,
    sid: &'a str,
    /// The answer to a failed login is held back this long (the server's brute-force brake).
    delay: Option<&'a Cell<Duration>>,
    tls: Option<Arc<rustls::ServerConfig>>,
    resolver: &'a Resolver,
    config: &'a Config,
    /// The helper and what a mail process is told of the client (its address, TLS or not).
    handoff: Option<(&'a PasswordHelper, SocketAddr, Cell<bool>)>,
}

/// The longest a login waits for an mbox's lock.
const MBOX_OPEN_WAIT: Duration = Duration::from_secs(3);

/// An opened maildrop and whose it is.
struct Opened {
    drop: Maildrop,
    owner: Option<Owner>,
}

/// Serves one POP3 connection to its end.
pub fn run(job: Job, ctx: &Context) {
    let Job { stream, peer, service, slot } = job;
    let sid = crate::spool::new_queue_id();
    log::info!("session={sid} event=connect service={} client={peer}", service.name());
    let implicit = match (service, &ctx.tls) {
        (Service::Pop3s, Some(t)) => Some(t.config()),
        (Service::Pop3s, None) => return,
        _ => None,
    };
    // RFC 1939 3: the autologout timer is at least 10 minutes.
    let timeout = ctx.config.smtp_timeout.max(Duration::from_secs(600));
    let Some(stream) = open_session_stream(stream, timeout, implicit, &sid) else { return };
    let cleartext_auth = in_networks(&ctx.config.auth_cleartext_networks, peer.ip());
    let mut session =
        Session::new(ctx.pop3_params(service), Peer { ip: peer.ip(), port: peer.port(), cleartext_auth });
    let mut nonce = [0u8; 8];
    crate::smtp::backend::fill_random(&mut nonce);
    session.set_apop_nonce(u64::from_be_bytes(nonce));
    tls_started(&mut session, &stream, &sid);
    let backend = ConnBackend { ctx, ip: peer.ip(), sid: &sid, delay: Cell::new(Duration::ZERO) };
    let is_tls = matches!(stream, Stream::Tls(_));
    let env = Env {
        backend: &backend,
        sid: &sid,
        delay: Some(&backend.delay),
        tls: ctx.tls.as_ref().map(|t| t.config()),
        resolver: &ctx.resolver,
        config: &ctx.config,
        // A system user's maildrop that this process (no longer root) cannot open as its owner.
        handoff: ctx
            .helper
            .as_deref()
            .filter(|_| !crate::server::privs::is_root())
            .map(|h| (h, peer, Cell::new(is_tls))),
    };
    let mut reader = LineReader::new(stream);
    let mut out = Vec::with_capacity(512);
    if !slot.shutting_down() {
        out.extend_from_slice(&session.greeting());
    }
    let result = serve(&mut session, &env, &slot, &mut reader, &mut out, None);
    match result {
        Ok(()) => log::info!("session={sid} event=disconnect client={peer}"),
        Err(e) => log::info!("session={sid} event=disconnect client={peer} error=\"{e}\""),
    }
}

fn tls_started(session: &mut Session, stream: &Stream, sid: &str) {
    if let Some((description, bindings)) = tls_details(stream, sid) {
        session.on_tls(description, bindings);
    }
}

/// Serves a session handed to this mail process: opens the user's maildrop (as this process's
/// user), tells the server with the status line, then answers the client and runs the command loop
/// over the relayed socket.
pub fn serve_handed(sock: UnixStream, h: &Handed) {
    let req = h.req;
    let sid = req.sid.as_str();
    let peer = h.peer();
    let timeout = h.config.smtp_timeout.max(Duration::from_secs(600));
    if sock.set_read_timeout(Some(timeout)).and(sock.set_write_timeout(Some(timeout))).is_err() {
        return;
    }
    let mut stream = Stream::Plain(crate::transport::Transport::Unix(sock));
    let o = match open(h.resolver, h.config, &req.user) {
        Ok(o) => o,
        Err(e) => {
            log::warn!("session={sid} event=pop3_open_failed user={} error=\"{e:?}\"", req.user);
            let status = if e == OpenError::InUse { Status::InUse } else { Status::Temp };
            let _ = stream.write_all(status.line());
            return;
        }
    };
    if stream.write_all(Status::Ok.line()).is_err() {
        return;
    }
    log::info!(
        "session={sid} event=pop3_open user={} messages={} in=mailproc client={peer}",
        req.user,
        o.drop.count()
    );
    let params = Arc::new(session::Params {
        hostname: h.config.hostname.clone(),
        max_errors: h.config.smtp_max_errors,
        stls: false,
        auth_mechanisms: Vec::new(),
        apop: false,
    });
    let mut session = Session::handed(
        params,
        Peer { ip: peer.ip(), port: peer.port(), cleartext_auth: false },
        req.user.clone(),
    );
    let registry = Arc::new(crate::server::Registry::default());
    let Some(slot) = registry.enter(peer.ip(), None, usize::MAX) else { return };
    let env = Env {
        backend: &MailBackend,
        sid,
        delay: None,
        tls: None,
        resolver: h.resolver,
        config: h.config,
        handoff: None,
    };
    let mut reader = LineReader::new(stream);
    let mut out = Vec::with_capacity(512);
    let first = session.on_opened(Ok(&View(&o.drop)));
    let result = serve(&mut session, &env, &slot, &mut reader, &mut out, Some((first, o)));
    match result {
        Ok(()) => log::info!("session={sid} event=disconnect client={peer} user={}", req.user),
        Err(e) => log::info!("session={sid} event=disconnect client={peer} user={} error=\"{e}\"", req.user),
    }
}

/// The command loop. `start`: a session handed over with its maildrop open, and the actions that
/// answer the login.
fn serve(
    session: &mut Session,
    env: &Env,
    slot: &crate::server::Slot,
    reader: &mut LineReader<Stream>,
    out: &mut Vec<u8>,
    start: Option<(Vec<Action>, Opened)>,
) -> io::Result<()> {
    let sid = env.sid;
    if slot.shutting_down() {
        return perform(session.on_shutdown(), session, env, slot, reader, out, &mut None).map(|_| ());
    }
    let mut opened: Option<Opened> = None;
    if let Some((actions, o)) = start {
        opened = Some(o);
        if !perform(actions, session, env, slot, reader, out, &mut opened)? {
            return flush_out(reader.get_mut(), out);
        }
    }
    loop {
        if reader.buffered().is_empty() {
            flush_out(reader.get_mut(), out)?;
            // A session with its maildrop open holds the lock: let it finish at shutdown.
            if slot.set_idle(opened.is_none()) {
                return perform(session.on_shutdown(), session, env, slot, reader, out, &mut opened)
                    .map(|_| ());
            }
        }
        let actions = match reader.read_line(session.max_line()) {
            Ok(Line::Line(l)) => session.on_line(l, env.backend),
            Ok(Line::TooLong) => session.on_line_too_long(),
            Ok(Line::Eof) => return Ok(()), // RFC 1939 6: no QUIT, nothing is deleted
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                log::info!("session={sid} event=timeout");
                return perform(session.on_timeout(), session, env, slot, reader, out, &mut opened)
                    .map(|_| ());
            }
            Err(e) => return Err(e),
        };
        slot.set_idle(false);
        let delay = env.delay.map(|d| d.take()).unwrap_or_default();
        if !delay.is_zero() {
            flush_out(reader.get_mut(), out)?;
            std::thread::sleep(delay);
        }
        if !perform(actions, session, env, slot, reader, out, &mut opened)? {
            return flush_out(reader.get_mut(), out);
        }
    }
}

/// Carries out actions (and those they lead to). Returns false to close.
fn perform(
    mut actions: Vec<Action>,
    session: &mut Session,
    env: &Env,
    slot: &crate::server::Slot,
    reader: &mut LineReader<Stream>,
    out: &mut Vec<u8>,
    opened: &mut Option<Opened>,
) -> io::Result<bool> {
    let mut i = 0;
    while i < actions.len() {
        match std::mem::replace(&mut actions[i], Action::Close) {
            Action::Reply(bytes) => out.extend_from_slice(&bytes),
            Action::Close => {
                flush_out(reader.get_mut(), out)?;
                return Ok(false);
            }
            Action::StartTls => {
                flush_out(reader.get_mut(), out)?;
                let Some(tls) = env.tls.clone() else { return Ok(false) };
                // RFC 2595 4: what was pipelined after STLS goes with the plain reader.
                let old = std::mem::replace(reader, LineReader::new(Stream::Closed));
                *reader = LineReader::new(old.into_inner().start_tls(tls)?);
                tls_started(session, reader.get_ref(), env.sid);
                if let Some((_, _, is_tls)) = &env.handoff {
                    is_tls.set(true);
                }
            }
            Action::Open { user } => {
                if let Some(handed) = hand_off(env, &user) {
                    match handed {
                        Ok(mail) => {
                            flush_out(reader.get_mut(), out)?;
                            // The mail process answers the login and serves the rest of the session.
                            crate::server::relay::relay(reader, mail, slot)?;
                            return Ok(false);
                        }
                        Err(e) => {
                            if let OpenError::Temp(m) = &e {
                                log::warn!(
                                    "session={} event=pop3_open_failed user={user} error=\"{m}\"",
                                    env.sid
                                );
                            }
                            actions.extend(session.on_opened(Err(e)));
                        }
                    }
                    i += 1;
                    continue;
                }
                let more = match open(env.resolver, env.config, &user) {
                    Ok(o) => {
                        log::info!(
                            "session={} event=pop3_open user={user} messages={}",
                            env.sid,
                            o.drop.count()
                        );
                        let more = session.on_opened(Ok(&View(&o.drop)));
                        *opened = Some(o);
                        more
                    }
                    Err(e) => {
                        log::warn!("session={} event=pop3_open_failed user={user} error=\"{e:?}\"", env.sid);
                        session.on_opened(Err(e))
                    }
                };
                actions.extend(more);
            }
            Action::SendMessage { n, top_lines } => {
                let Some(o) = opened.as_ref() else {
                    out.extend_from_slice(&session::message_unavailable());
                    i += 1;
                    continue;
                };
                out.extend_from_slice(b"+OK message follows\r\n");
                flush_out(reader.get_mut(), out)?;
                // Read with the owner's identity, as the maildrop was opened and is expunged.
                let _as = become_owner(o.owner, None).map_err(io::Error::other)?;
                let mut w = io::BufWriter::with_capacity(64 * 1024, reader.get_mut());
                o.drop.write_message(n, top_lines, &mut w)?;
                w.write_all(b".\r\n")?;
                w.flush()?;
            }
            Action::Update { deleted } => {
                let result = match opened.take() {
                    Some(o) => {
                        let n = deleted.len();
                        match become_owner(o.owner, None) {
                            Ok(_as) => {
                                o.drop.expunge(&deleted).map(|()| n).map_err(|e| UpdateError(e.to_string()))
                            }
                            Err(e) => Err(UpdateError(e)),
                        }
                    }
                    None => Ok(0),
                };
                if let Ok(n) = &result {
                    log::info!("session={} event=pop3_update deleted={n}", env.sid);
                }
                actions.extend(session.on_updated(result.map(|_| ())));
            }
        }
        i += 1;
    }
    Ok(true)
}

/// Hands the session to `user`'s mail process when their maildrop is one this process cannot open
/// as its owner (None: open it here): the mail process's socket, or why it could not open it.
fn hand_off(env: &Env, user: &str) -> Option<Result<UnixStream, OpenError>> {
    let (helper, peer, tls) = env.handoff.as_ref()?;
    let dest = match env.resolver.mail_home(user) {
        Ok(h) => h.inbox,
        Err(e) => return Some(Err(OpenError::Temp(e))),
    };
    // SAFETY: geteuid has no preconditions.
    if dest.uid.is_none_or(|u| u == unsafe { libc::geteuid() }) {
        return None;
    }
    Some(match helper.open_session(user, "pop3", env.sid, *peer, tls.get()) {
        Ok((mail, Status::Ok)) => Ok(mail),
        Ok((_, Status::InUse)) => Err(OpenError::InUse),
        Ok((_, Status::Temp)) => Err(OpenError::Temp("the mail process could not open the maildrop".into())),
        Err(e) => Err(OpenError::Temp(e)),
    })
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

/// Sent when every worker is busy.
pub fn busy() -> Vec<u8> {
    Session::busy()
}
