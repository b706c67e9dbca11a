//! One IMAP connection: drives the I/O-free [`Session`] over a blocking socket (plain, STARTTLS per
//! RFC 3501 6.2.1 / RFC 2595, or implicit TLS on imaps per RFC 8314), assembles commands with their
//! literals (RFC 3501 4.3, RFC 7888 LITERAL+), waits in IDLE (RFC 2177) and enforces the autologout
//! timer (RFC 3501 5.4). After login the thread works with the mailbox owner's file-system identity.

use std::cell::{Cell, RefCell};
use std::io::{self, Write};
use std::net::SocketAddr;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::auth::sasl::Credentials;
use crate::config::{MailboxKind, in_networks};
use crate::imap::command::{self, Assembler, Step};
use crate::imap::session::{self, AppendStart, Mode, Opened, Outcome, Peer, Session};
use crate::local::Resolver;
use crate::netio::{Line, LineReader, Stream, open_session_stream, tls_details};
use crate::server::Service;
use crate::server::acceptor::Job;
use crate::server::mailproc::{Handed, Status};
use crate::smtp::backend::{ConnBackend, Context};
use crate::store::folder::Store;
use crate::store::imapdir::{Inbox, MaildirStore};
use crate::store::owner::{AsOwner, Owner, become_owner, spool_group};

/// The longest command line (without literals); RFC 7162 3 asks for at least 8192 octets.
const MAX_LINE: usize = 64 * 1024;
/// The longest literal outside APPEND (names, search strings, passwords).
const MAX_LITERAL: u64 = 64 * 1024;
/// How often IDLE looks for changes (RFC 2177: "immediately" in practice means within a second).
const IDLE_TICK: Duration = Duration::from_secs(1);

/// What the command loop needs of where it runs, besides the session's backend: the server's
/// connection ([`Backend`]) or a mail process's session ([`MailBackend`]).
trait Driver: session::Backend {
    fn sid(&self) -> &str;
    /// How long to hold back the answer to a failed login (brute-force throttling); taken once.
    fn take_delay(&self) -> Duration;
    fn tls(&self) -> Option<Arc<rustls::ServerConfig>>;
    /// The TLS layer has started.
    fn tls_started(&self) {}
    /// The mail process's socket of a login handed over ([`Opened::Elsewhere`]).
    fn take_handoff(&self) -> Option<UnixStream>;
}

/// The IMAP session's view of the server: the shared login machinery plus the user's mail store.
struct Backend<'a> {
    conn: ConnBackend<'a>,
    peer: SocketAddr,
    /// The client's connection is TLS (told to a mail process the session is handed to).
    tls: Cell<bool>,
    /// The owner's identity, taken at login for the rest of the session.
    owner: RefCell<Option<AsOwner>>,
    /// The user's mail process, when the session was handed to it.
    handoff: RefCell<Option<UnixStream>>,
}

impl Driver for Backend<'_> {
    fn sid(&self) -> &str {
        self.conn.sid
    }
    fn take_delay(&self) -> Duration {
        self.conn.delay.take()
    }
    fn tls(&self) -> Option<Arc<rustls::ServerConfig>> {
        self.conn.ctx.tls.as_ref().map(|t| t.config())
    }
    fn tls_started(&self) {
        self.tls.set(true);
    }
    fn take_handoff(&self) -> Option<UnixStream> {
        self.handoff.borrow_mut().take()
    }
}

/// Opens `user`'s folders here, taking the owner's file-system identity (when running as root) for
/// the rest of the session.
fn open_here(
    resolver: &Resolver,
    lock_timeout: Duration,
    sid: &str,
    user: &str,
) -> Result<(Box<dyn Store>, Option<AsOwner>), String> {
    let home = resolver.mail_home(user)?;
    let dest = &home.inbox;
    let owner = dest.uid.zip(dest.gid).map(|(uid, gid)| Owner { uid, gid });
    let group = match dest.kind {
        MailboxKind::Mbox => spool_group(&dest.path),
        MailboxKind::Maildir => None,
    };
    let guard = become_owner(owner, group)?;
    let inbox = match dest.kind {
        MailboxKind::Maildir => Inbox::Maildir,
        MailboxKind::Mbox => Inbox::Mbox { path: dest.path.clone(), lock_timeout },
    };
    log::info!(
        "session={sid} event=imap_open user={user} inbox={} folders={}",
        dest.path.display(),
        home.folders.display()
    );
    let mut store = MaildirStore::new(home.folders, inbox);
    // The special-use folders (Sent, Drafts, Trash, Junk, Archive) exist from the first login on,
    // so a client may APPEND to Sent before it ever LISTs; a failure here shows at LIST again.
    if let Err(e) = store.list() {
        log::warn!("session={sid} event=imap_folders_failed user={user} error=\"{e}\"");
    }
    Ok((Box::new(store), guard))
}

impl session::Backend for Backend<'_> {
    fn credentials(&self) -> Option<&dyn Credentials> {
        crate::smtp::session::Backend::credentials(&self.conn)
    }
    fn random(&self, buf: &mut [u8]) {
        crate::smtp::session::Backend::random(&self.conn, buf)
    }
    fn auth_failed(&self, user: &str) {
        crate::smtp::session::Backend::auth_failed(&self.conn, user)
    }
    fn auth_succeeded(&self, user: &str, mechanism: &str) {
        crate::smtp::session::Backend::auth_succeeded(&self.conn, user, mechanism)
    }
    fn auth_blocked(&self) -> bool {
        crate::smtp::session::Backend::auth_blocked(&self.conn)
    }
    fn open_store(&self, user: &str) -> Result<Opened, String> {
        let ctx = self.conn.ctx;
        // A system user's mailbox that this process (no longer root) cannot open as its owner: the
        // session goes on in the user's mail process (server/mailproc.rs).
        if let Some(helper) = &ctx.helper
            && !crate::server::privs::is_root()
        {
            let dest = ctx.resolver.mail_home(user)?.inbox;
            // SAFETY: geteuid has no preconditions.
            if dest.uid.is_some_and(|u| u != unsafe { libc::geteuid() }) {
                let (sock, status) =
                    helper.open_session(user, "imap", self.conn.sid, self.peer, self.tls.get())?;
                return match status {
                    Status::Ok => {
                        *self.handoff.borrow_mut() = Some(sock);
                        Ok(Opened::Elsewhere)
                    }
                    _ => Err("the mail process could not open the mailbox".into()),
                };
            }
        }
        let (store, guard) = open_here(&ctx.resolver, ctx.config.mbox_lock_timeout, self.conn.sid, user)?;
        *self.owner.borrow_mut() = guard;
        Ok(Opened::Here(store))
    }
}

/// A session in a mail process: logged in before it started, so nothing of the login machinery.
struct MailBackend<'a> {
    sid: &'a str,
}

impl session::Backend for MailBackend<'_> {
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
    fn open_store(&self, _user: &str) -> Result<Opened, String> {
        Err("already logged in".into())
    }
}

impl Driver for MailBackend<'_> {
    fn sid(&self) -> &str {
        self.sid
    }
    fn take_delay(&self) -> Duration {
        Duration::ZERO
    }
    fn tls(&self) -> Option<Arc<rustls::ServerConfig>> {
        None
    }
    fn take_handoff(&self) -> Option<UnixStream> {
        None
    }
}

/// Buffers what the session writes and passes it to the socket in 64 KiB pieces, so a FETCH of a
/// whole mailbox never sits in memory.
struct Out<'a> {
    buf: &'a mut Vec<u8>,
    stream: &'a mut Stream,
}

impl Write for Out<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= 64 * 1024 {
            self.flush()?;
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            self.stream.write_all(self.buf)?;
            self.buf.clear();
        }
        self.stream.flush()
    }
}

/// Serves one IMAP connection to its end.
pub fn run(job: Job, ctx: &Context) {
    let Job { stream, peer, service, slot } = job;
    let sid = crate::spool::new_queue_id();
    log::info!("session={sid} event=connect service={} client={peer}", service.name());
    let implicit = match (service, &ctx.tls) {
        (Service::Imaps, Some(t)) => Some(t.config()),
        (Service::Imaps, None) => return,
        _ => None,
    };
    // RFC 3501 5.4: the autologout timer is at least 30 minutes.
    let timeout = ctx.config.imap_timeout;
    let Some(stream) = open_session_stream(stream, timeout, implicit.clone(), &sid) else { return };
    let cleartext_auth = in_networks(&ctx.config.auth_cleartext_networks, peer.ip());
    let mut session = Session::new(
        ctx.imap_params(service),
        Peer { ip: peer.ip(), port: peer.port(), cleartext_auth, tls: implicit.is_some(), sid: sid.clone() },
    );
    tls_started(&mut session, &stream, &sid);
    let backend = Backend {
        conn: ConnBackend { ctx, ip: peer.ip(), sid: &sid, delay: Cell::new(Duration::ZERO) },
        peer,
        tls: Cell::new(implicit.is_some()),
        owner: RefCell::new(None),
        handoff: RefCell::new(None),
    };
    let mut reader = LineReader::new(stream);
    let mut out = Vec::with_capacity(4096);
    let max_append = ctx.config.message_size_limit;
    let result = serve(&mut session, &backend, &slot, &mut reader, &mut out, max_append, timeout, true);
    let user = session.logged_in_user().unwrap_or("-").to_string();
    match result {
        Ok(()) => log::info!("session={sid} event=disconnect client={peer} user={user}"),
        Err(e) => log::info!("session={sid} event=disconnect client={peer} user={user} error=\"{e}\""),
    }
    // Give the thread its own identity back before the pool reuses it.
    drop(backend);
}

/// Serves a session handed to this mail process: opens the user's folders (as this process's user),
/// tells the server with the status line, then runs the command loop over the relayed socket.
pub fn serve_handed(sock: UnixStream, h: &Handed) {
    let req = h.req;
    let sid = req.sid.as_str();
    let peer = h.peer();
    let timeout = h.config.imap_timeout;
    if sock.set_read_timeout(Some(timeout)).and(sock.set_write_timeout(Some(timeout))).is_err() {
        return;
    }
    let mut stream = Stream::Plain(crate::transport::Transport::Unix(sock));
    let store = match open_here(h.resolver, h.config.mbox_lock_timeout, sid, &req.user) {
        Ok((store, _)) => store,
        Err(e) => {
            log::warn!("session={sid} event=imap_store_open_failed user={} error=\"{e}\"", req.user);
            let _ = stream.write_all(Status::Temp.line());
            return;
        }
    };
    if stream.write_all(Status::Ok.line()).is_err() {
        return;
    }
    log::info!("session={sid} event=mailproc_session service=imap user={} client={peer}", req.user);
    let params = Arc::new(session::Params {
        hostname: h.config.hostname.clone(),
        max_errors: h.config.smtp_max_errors,
        starttls: false,
        auth_mechanisms: Vec::new(),
        max_append: h.config.message_size_limit,
    });
    let p =
        Peer { ip: peer.ip(), port: peer.port(), cleartext_auth: false, tls: req.tls, sid: sid.to_string() };
    let mut session = Session::preauth(params, p, req.user.clone(), store);
    let registry = Arc::new(crate::server::Registry::default());
    let Some(slot) = registry.enter(peer.ip(), None, usize::MAX) else { return };
    let backend = MailBackend { sid };
    let mut reader = LineReader::new(stream);
    let mut out = Vec::with_capacity(4096);
    let result = serve(
        &mut session,
        &backend,
        &slot,
        &mut reader,
        &mut out,
        h.config.message_size_limit,
        timeout,
        false,
    );
    match result {
        Ok(()) => log::info!("session={sid} event=disconnect client={peer} user={}", req.user),
        Err(e) => log::info!("session={sid} event=disconnect client={peer} user={} error=\"{e}\"", req.user),
    }
}

fn tls_started(session: &mut Session, stream: &Stream, sid: &str) {
    if let Some(details) = tls_details(stream, sid) {
        session.on_tls(Some(details));
    }
}

/// The command loop. `greet`: write the greeting first (not for a session handed over logged in).
#[allow(clippy::too_many_arguments)]
fn serve<B: Driver>(
    session: &mut Session,
    backend: &B,
    slot: &crate::server::Slot,
    reader: &mut LineReader<Stream>,
    out: &mut Vec<u8>,
    max_append: u64,
    timeout: Duration,
    greet: bool,
) -> io::Result<()> {
    let sid = backend.sid();
    macro_rules! w {
        () => {
            &mut Out { buf: &mut *out, stream: reader.get_mut() }
        };
    }
    if slot.shutting_down() {
        session.shutdown(w!())?;
        return w!().flush();
    }
    if greet {
        out.extend_from_slice(&session.greeting());
    }
    // Before login no literal may be larger than MAX_LITERAL: an APPEND's size is for users only.
    let assembler = |logged_in: bool| match logged_in {
        // An APPEND's message (over MAX_LITERAL) goes to the store as it arrives, so what a command
        // holds in memory stays within a few lines and literals.
        true => Assembler::new(MAX_LINE, max_append.max(MAX_LITERAL), 4 * MAX_LINE).stream_above(MAX_LITERAL),
        false => Assembler::new(MAX_LINE, MAX_LITERAL, 4 * MAX_LINE),
    };
    let mut logged_in = false;
    let mut asm = assembler(logged_in);
    let mut partial = false; // a command is being assembled (literals pending)
    let mut append = false; // the command being assembled is an APPEND
    let mut skip = false; // the command was answered before its end (a refused APPEND)
    loop {
        if !partial && logged_in != session.logged_in_user().is_some() {
            logged_in = !logged_in;
            asm = assembler(logged_in);
        }
        if reader.buffered().is_empty() {
            w!().flush()?;
            if slot.set_idle(!partial) {
                session.shutdown(w!())?;
                return w!().flush();
            }
        }
        let outcome = match session.mode() {
            Mode::Closed => return w!().flush(),
            Mode::HandedOff => {
                w!().flush()?;
                // The rest of the session is the mail process's: relay to it until either side ends.
                return match backend.take_handoff() {
                    Some(mail) => crate::server::relay::relay(reader, mail, slot),
                    None => Ok(()),
                };
            }
            Mode::Idle => {
                w!().flush()?;
                idle(session, slot, reader, out, timeout)?
            }
            Mode::SaslResponse => match read(reader, sid)? {
                Input::Line(l) => session.on_sasl_line(&l, backend, w!())?,
                Input::TooLong => session.on_parse_error(
                    command::ParseError { tag: None, message: "line too long".into() },
                    w!(),
                )?,
                Input::Eof => return Ok(()),
                Input::Timeout => {
                    session.autologout(w!())?;
                    return w!().flush();
                }
            },
            Mode::Command => {
                match read(reader, sid)? {
                    Input::Eof => return Ok(()),
                    Input::Timeout => {
                        session.autologout(w!())?;
                        return w!().flush();
                    }
                    Input::TooLong => {
                        asm.reset();
                        session.append_abort();
                        partial = false;
                        skip = false;
                        session.on_parse_error(
                            command::ParseError { tag: None, message: "command line too long".into() },
                            w!(),
                        )?
                    }
                    Input::Line(l) => {
                        slot.set_idle(false);
                        if !partial {
                            append = is_append(&l);
                        }
                        match asm.line(&l) {
                            Step::Complete(_) if std::mem::take(&mut skip) => {
                                partial = false;
                                Outcome::Continue
                            }
                            Step::Complete(buf) => {
                                partial = false;
                                let outcome = match command::parse_owned(buf) {
                                    Ok((tag, cmd)) => session.on_command(tag, cmd, backend, w!())?,
                                    Err(e) => session.on_parse_error(e, w!())?,
                                };
                                session.append_abort();
                                outcome
                            }
                            // RFC 3501 6.3.11: an APPEND's message is written to the store as it
                            // arrives, never held whole.
                            Step::NeedLiteral { len, sync } if len > MAX_LITERAL && append => {
                                partial = true;
                                let start = session.append_begin(asm.head(), len, backend, w!())?;
                                match start {
                                    AppendStart::Stream if sync => {
                                        // RFC 3501 7.5: the command continuation request.
                                        out.extend_from_slice(b"+ Ready for literal data\r\n");
                                        w!().flush()?;
                                    }
                                    AppendStart::Stream => {}
                                    AppendStart::Answered(outcome) if sync => {
                                        // The client waits for `+`: the command ends here.
                                        asm.reset();
                                        partial = false;
                                        if outcome == Outcome::Close {
                                            return w!().flush();
                                        }
                                        continue;
                                    }
                                    // RFC 7888 4: a non-synchronizing literal comes anyway; it and
                                    // the rest of the command are read and dropped.
                                    AppendStart::Answered(_) => skip = true,
                                }
                                let streamed = matches!(start, AppendStart::Stream);
                                copy_literal(reader, len, |piece| {
                                    if streamed {
                                        session.append_write(piece);
                                    }
                                })?;
                                asm.literal_elsewhere();
                                continue;
                            }
                            // Only an APPEND's message may be larger than MAX_LITERAL.
                            Step::NeedLiteral { len, sync } if len > MAX_LITERAL && !append => {
                                asm.reset();
                                partial = false;
                                log::info!("session={sid} event=imap_too_big size={len}");
                                if !sync {
                                    out.extend_from_slice(b"* BYE [TOOBIG] Literal too big\r\n");
                                    return w!().flush();
                                }
                                let t = command::tag_of(&l).unwrap_or_else(|| "*".into());
                                out.extend_from_slice(
                                format!("{t} NO [TOOBIG] Literal too big (at most {MAX_LITERAL} octets here)\r\n")
                                    .as_bytes(),
                            );
                                Outcome::Continue
                            }
                            Step::NeedLiteral { len, sync } => {
                                partial = true;
                                if sync {
                                    // RFC 3501 7.5: the command continuation request.
                                    out.extend_from_slice(b"+ Ready for literal data\r\n");
                                    w!().flush()?;
                                }
                                let data = read_exact(reader, len)?;
                                asm.literal(&data);
                                continue;
                            }
                            Step::TooBig { tag, sync, len, message } => {
                                partial = false;
                                skip = false;
                                session.append_abort();
                                log::info!("session={sid} event=imap_too_big size={len}");
                                if !sync {
                                    // RFC 7888 4: the client sends a non-synchronizing literal anyway;
                                    // there is no way to skip it safely, so the connection ends.
                                    out.extend_from_slice(format!("* BYE [TOOBIG] {message}\r\n").as_bytes());
                                    return w!().flush();
                                }
                                let t = tag.unwrap_or_else(|| "*".into());
                                out.extend_from_slice(format!("{t} NO [TOOBIG] {message}\r\n").as_bytes());
                                Outcome::Continue
                            }
                        }
                    }
                }
            }
        };
        // A failed login is answered late (brute-force throttling, shared with SMTP and POP3).
        let delay = backend.take_delay();
        if !delay.is_zero() {
            w!().flush()?;
            std::thread::sleep(delay);
        }
        match outcome {
            Outcome::Continue => {}
            Outcome::Close => return w!().flush(),
            Outcome::StartTls => {
                w!().flush()?;
                let Some(tls) = backend.tls() else { return Ok(()) };
                // RFC 3501 6.2.1 / RFC 2595 3.1: anything pipelined after STARTTLS is thrown away.
                let old = std::mem::replace(reader, LineReader::new(Stream::Closed));
                *reader = LineReader::new(old.into_inner().start_tls(tls)?);
                tls_started(session, reader.get_ref(), sid);
                backend.tls_started();
            }
        }
    }
}

/// Whether a command's first line is an APPEND (`tag APPEND ...`), whose message literal may be as
/// large as a message.
fn is_append(line: &[u8]) -> bool {
    let mut words = line.splitn(3, |&b| b == b' ');
    words.next();
    words.next().is_some_and(|w| w.eq_ignore_ascii_case(b"APPEND"))
}

enum Input {
    Line(Vec<u8>),
    TooLong,
    Eof,
    Timeout,
}

fn read(reader: &mut LineReader<Stream>, sid: &str) -> io::Result<Input> {
    match reader.read_line(MAX_LINE) {
        Ok(Line::Line(l)) => Ok(Input::Line(l.to_vec())),
        Ok(Line::TooLong) => Ok(Input::TooLong),
        Ok(Line::Eof) => Ok(Input::Eof),
        Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
            log::info!("session={sid} event=timeout");
            Ok(Input::Timeout)
        }
        Err(e) => Err(e),
    }
}

/// Passes a literal's `len` octets to `sink` in the pieces they arrive in (at most the reader's
/// buffer at a time).
fn copy_literal(reader: &mut LineReader<Stream>, len: u64, mut sink: impl FnMut(&[u8])) -> io::Result<()> {
    let mut left = len;
    while left > 0 {
        if reader.buffered().is_empty() && reader.fill()? == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed inside a literal"));
        }
        let b = reader.buffered();
        let n = b.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        sink(b.get(..n).unwrap_or_default());
        reader.consume(n);
        left -= n as u64;
    }
    Ok(())
}

/// Reads a literal's `len` octets (already bounded by the assembler).
fn read_exact(reader: &mut LineReader<Stream>, len: u64) -> io::Result<Vec<u8>> {
    let len = usize::try_from(len).map_err(|_| io::Error::other("literal too long"))?;
    let mut data = Vec::with_capacity(len.min(1 << 20));
    while data.len() < len {
        if reader.buffered().is_empty() && reader.fill()? == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed inside a literal"));
        }
        let b = reader.buffered();
        let n = b.len().min(len - data.len());
        data.extend_from_slice(&b[..n]);
        reader.consume(n);
    }
    Ok(data)
}

/// RFC 2177: waits for DONE, telling the client about changes about once a second; the IDLE ends
/// with an autologout after `timeout` (RFC 2177 3: clients re-issue IDLE at least every 29 minutes).
fn idle(
    session: &mut Session,
    slot: &crate::server::Slot,
    reader: &mut LineReader<Stream>,
    out: &mut Vec<u8>,
    timeout: Duration,
) -> io::Result<Outcome> {
    let start = Instant::now();
    slot.set_idle(true);
    loop {
        if !reader.buffered().is_empty() || readable(reader.get_ref(), IDLE_TICK)? {
            slot.set_idle(false);
            return match reader.read_line(MAX_LINE) {
                Ok(Line::Line(l)) => {
                    let l = l.to_vec();
                    session.idle_done(&l, &mut Out { buf: out, stream: reader.get_mut() })
                }
                Ok(Line::TooLong) => session.idle_done(b"", &mut Out { buf: out, stream: reader.get_mut() }),
                Ok(Line::Eof) => Ok(Outcome::Close),
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                    Ok(Outcome::Close)
                }
                Err(e) => Err(e),
            };
        }
        let mut w = Out { buf: out, stream: reader.get_mut() };
        if slot.shutting_down() {
            session.shutdown(&mut w)?;
            w.flush()?;
            return Ok(Outcome::Close);
        }
        if start.elapsed() >= timeout {
            session.autologout(&mut w)?;
            w.flush()?;
            return Ok(Outcome::Close);
        }
        session.idle_poll(&mut w)?;
        w.flush()?;
        if session.mode() == Mode::Closed {
            return Ok(Outcome::Close);
        }
    }
}

/// Waits up to `wait` for input on the connection's socket.
fn readable(stream: &Stream, wait: Duration) -> io::Result<bool> {
    match stream.fd() {
        Some(fd) => crate::netio::wait_readable(fd, wait),
        None => Ok(true),
    }
}

/// Sent when every worker is busy (RFC 3501 7.1.5).
pub fn busy() -> Vec<u8> {
    Session::busy()
}
