//! The IMAP driver: one connection's commands (with their literals, RFC 3501 4.3, RFC 7888
//! LITERAL+) to the I/O-free [`Session`] and its responses back, over plain, STARTTLS (RFC 3501
//! 6.2.1 / RFC 2595) or implicit TLS (imaps, RFC 8314). Between commands and inside IDLE (RFC 2177)
//! the connection waits in the event loop; an IDLE is woken at once by a change of its mailbox
//! (inotify on the folder's files, through the loop's [`Watcher`](super::Watcher)), or looks once a
//! second where there is no watcher (a mail process). An APPEND's message goes to the store as it
//! arrives. A FETCH is sent a message at a time ([`FetchJob`]): once 64 KiB wait for a client that
//! is not reading, the connection waits in the loop for the socket to drain (60 s at most without
//! progress), so a reader that stalls holds no thread. A system user's mailbox that the server (no longer root) cannot open as its owner is
//! served by the user's mail process, to which the connection is then relayed (relay.rs).
//! Deadlines: `login_timeout` from connect until a login, and for a line once begun; a literal
//! within `login_timeout` plus its size at `smtp.min_data_rate`; `imap.timeout` (RFC 3501 5.4
//! autologout, also the longest IDLE) between commands. The mailbox owner's file-system identity is
//! taken for each run on a worker and given back before the connection parks.

use std::cell::{Cell, RefCell};
use std::io::{self, Write};
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::io::{Bytes, ClientWriter, Input, Io};
use super::relay::Relay;
use super::{Connection, Env, Handshake, NoLogin, Wait, Wake, Yield, handshake, yielded};
use crate::config::{Config, in_networks};
use crate::imap::command::{self, Assembler, Step};
use crate::imap::fetch::FetchJob;
use crate::imap::session::{self, Action, AppendStart, Mode, Outcome, Peer, Session};
use crate::netio::Stream;
use crate::server::context::{ConnBackend, Context};
use crate::server::mailproc::{Handed, Status};
use crate::server::{Service, Slot};
use crate::store::owner::become_owner;
use crate::transport::Transport;

/// The longest command line (without literals); RFC 7162 3 asks for at least 8192 octets.
const MAX_LINE: usize = 64 * 1024;
/// The longest literal outside APPEND (names, search strings, passwords).
const MAX_LITERAL: u64 = 64 * 1024;
/// How often an IDLE with no watcher looks for changes.
const IDLE_TICK: Duration = Duration::from_secs(1);

mod backend;
use backend::{Backend, Identity, open_here};

/// The most a FETCH response holds before it waits for the client (within one message's response;
/// between two messages the connection waits in the loop once 64 KiB are waiting).
const FETCH_BUFFER: usize = 256 * 1024;

/// Buffers a FETCH's responses and passes them to the client in pieces of at most
/// [`FETCH_BUFFER`], so the literals of a large message never sit in memory.
struct Out<'a> {
    buf: &'a mut Vec<u8>,
    stream: ClientWriter<'a>,
}

impl<'a> Out<'a> {
    fn to(io: &'a mut Io) -> Out<'a> {
        let (buf, stream) = io.client();
        Out { buf, stream }
    }
}

impl Write for Out<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= FETCH_BUFFER {
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

/// Where a literal's octets go.
enum Sink {
    /// Into the command being assembled.
    Command(Vec<u8>),
    /// To the store, an APPEND's message as it arrives.
    Append,
    /// Nowhere (a refused APPEND whose literal comes anyway, RFC 7888 4).
    Drop,
}

enum Phase {
    Handshake {
        began: Instant,
        greet: bool,
    },
    Command,
    /// `left` octets of a literal still to come.
    Literal {
        left: u64,
        len: u64,
        sink: Sink,
        began: Instant,
    },
    /// A failed login's answer, held back until then (the brute-force brake).
    Held(Instant, Outcome),
    /// In IDLE since then; `watching`: the loop wakes it on changes.
    Idle {
        began: Instant,
        watching: bool,
    },
    /// Sending a FETCH's responses; `stalled`: since when the client has not been reading.
    Fetching {
        job: FetchJob,
        stalled: Option<Instant>,
    },
    /// The rest of the session is the user's mail process's.
    Relay(Relay),
}

pub struct Imap {
    ctx: Option<Arc<Context>>,
    config: Arc<Config>,
    io: Io,
    session: Session,
    sid: String,
    peer: SocketAddr,
    service: Service,
    _slot: Option<Slot>,
    phase: Phase,
    identity: Option<Identity>,
    asm: Assembler,
    logged_in: bool,
    /// A command is being assembled (literals pending).
    partial: bool,
    /// The command being assembled is an APPEND.
    append: bool,
    /// The command was answered before its end (a refused APPEND).
    skip: bool,
    /// What that answer asked for, done once the command's end is read.
    skipped: Outcome,
    /// How long a FETCH waits for a client that does not read.
    write_timeout: Duration,
    connected: Instant,
    /// Stress mode was on while it waited to log in: the shorter limit stands (see the SMTP driver).
    stressed: bool,
    since: Instant,
}

/// Before login no literal may be larger than MAX_LITERAL: an APPEND's size is for users only.
fn assembler(logged_in: bool, max_append: u64) -> Assembler {
    match logged_in {
        // An APPEND's message (over MAX_LITERAL) goes to the store as it arrives, so what a command
        // holds in memory stays within a few lines and literals.
        true => Assembler::new(MAX_LINE, max_append.max(MAX_LITERAL), 4 * MAX_LINE).stream_above(MAX_LITERAL),
        false => Assembler::new(MAX_LINE, MAX_LITERAL, 4 * MAX_LINE),
    }
}

impl Imap {
    /// A connection accepted on an IMAP listener.
    pub fn new(ctx: Arc<Context>, stream: Transport, peer: SocketAddr, service: Service, slot: Slot) -> Imap {
        let sid = crate::spool::new_queue_id();
        let cleartext_auth = in_networks(&ctx.config.auth_cleartext_networks, peer.ip());
        let session = Session::new(
            ctx.imap_params(service),
            Peer {
                ip: peer.ip(),
                port: peer.port(),
                cleartext_auth,
                tls: service == Service::Imaps,
                sid: sid.clone(),
            },
        );
        let now = Instant::now();
        let write_timeout = crate::server::acceptor::write_timeout(service, &ctx.config);
        Imap {
            config: Arc::clone(&ctx.config),
            asm: assembler(false, ctx.config.message_size_limit),
            ctx: Some(ctx),
            io: Io::new(Stream::Plain(stream)),
            session,
            sid,
            peer,
            service,
            _slot: Some(slot),
            phase: Phase::Command,
            identity: None,
            logged_in: false,
            partial: false,
            append: false,
            skip: false,
            skipped: Outcome::Continue,
            write_timeout,
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
                self.service.name(),
                self.peer
            );
            if env.shutting_down {
                let actions = self.session.shutdown();
                self.perform(actions);
                return Ok(None);
            }
            match (self.service, self.ctx.as_ref().and_then(|c| c.tls.clone())) {
                (Service::Imaps, Some(tls)) => {
                    self.io.start_tls(tls.config())?;
                    self.phase = Phase::Handshake { began: self.connected, greet: true };
                }
                (Service::Imaps, None) => return Ok(None),
                _ => self.io.out.extend_from_slice(&self.session.greeting()),
            }
        }
        // The owner's identity for this run (fsuid and groups of this worker thread only).
        let _as = match self.identity {
            Some((owner, group)) => become_owner(owner, group).map_err(io::Error::other)?,
            None => None,
        };
        let ctx = self.ctx.clone();
        let sid = self.sid.clone();
        let backend = ctx.as_ref().map(|ctx| Backend {
            conn: ConnBackend { ctx, ip: self.peer.ip(), sid: &sid, delay: Cell::new(Duration::ZERO) },
            peer: self.peer,
            tls: matches!(self.io.stream, Stream::Tls(_)),
            guard: RefCell::new(None),
            identity: Cell::new(None),
            handoff: RefCell::new(None),
        });
        let result = self.run_with(wake, env, backend.as_ref());
        if let Some(b) = &backend
            && let Some(id) = b.identity.take()
        {
            self.identity = Some(id);
        }
        result
    }

    fn run_with(&mut self, wake: Wake, env: &Env, backend: Option<&Backend>) -> io::Result<Option<Wait>> {
        let b: &dyn session::Backend = match backend {
            Some(b) => b,
            None => &NoLogin,
        };
        let mut wake = wake;
        loop {
            let now = Instant::now();
            if !self.partial && self.logged_in != self.session.logged_in_user().is_some() {
                self.logged_in = !self.logged_in;
                self.asm = assembler(self.logged_in, self.config.message_size_limit);
            }
            let outcome = match &mut self.phase {
                Phase::Relay(relay) => {
                    if wake == Wake::Shutdown {
                        return Ok(None);
                    }
                    return relay.step(&mut self.io);
                }
                Phase::Handshake { began, greet } => {
                    let (began, greet) = (*began, *greet);
                    match handshake(&mut self.io, began, self.config.login_timeout, &self.sid) {
                        Handshake::Done(details) => {
                            if details.is_some() {
                                self.session.on_tls(details);
                            }
                            if greet {
                                self.io.out.extend_from_slice(&self.session.greeting());
                            }
                            self.phase = Phase::Command;
                            continue;
                        }
                        Handshake::Wait(w) => return Ok(Some(w)),
                        Handshake::Failed => return Ok(None),
                    }
                }
                Phase::Held(until, outcome) => {
                    if now < *until {
                        return Ok(Some(Wait { until: Some(*until), ..Wait::default() }));
                    }
                    let outcome = *outcome;
                    self.phase = Phase::Command;
                    outcome
                }
                Phase::Literal { left, len, sink, began } => {
                    let (len, began) = (*len, *began);
                    let data = match self.io.bytes()? {
                        Bytes::Data(d) => d,
                        Bytes::Eof => {
                            return Err(io::Error::new(
                                io::ErrorKind::UnexpectedEof,
                                "connection closed inside a literal",
                            ));
                        }
                        Bytes::Pending => {
                            let got = len - *left;
                            let rate = self.config.smtp_min_data_rate;
                            let allowance = got
                                .checked_div(rate)
                                .map_or(Duration::from_secs(86400 * 365), Duration::from_secs);
                            let deadline = began + self.config.login_timeout + allowance;
                            if now >= deadline {
                                log::info!("session={} event=timeout during=literal octets={got}", self.sid);
                                self.io.out.extend_from_slice(b"* BYE Timed out inside a literal\r\n");
                                return Ok(None);
                            }
                            return Ok(Some(Wait { read: true, until: Some(deadline), ..Wait::default() }));
                        }
                    };
                    let n = data.len().min(usize::try_from(*left).unwrap_or(usize::MAX));
                    let piece = data.get(..n).unwrap_or_default();
                    match sink {
                        Sink::Command(buf) => buf.extend_from_slice(piece),
                        Sink::Append => self.session.append_write(piece),
                        Sink::Drop => {}
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
                            Sink::Append | Sink::Drop => self.asm.literal_elsewhere(),
                        }
                    }
                    continue;
                }
                Phase::Idle { began, watching } => {
                    let (began, watching) = (*began, *watching);
                    if matches!(wake, Wake::Notify | Wake::Timer) {
                        let actions = self.session.idle_poll();
                        if self.perform(actions) == Outcome::Close {
                            return Ok(None);
                        }
                        wake = Wake::Ready;
                    }
                    let actions = match self.io.line(MAX_LINE)? {
                        Input::Line(l) => {
                            let l = l.to_vec();
                            self.session.idle_done(&l)
                        }
                        Input::TooLong => self.session.idle_done(b""),
                        Input::Eof => return Ok(None),
                        Input::Pending => {
                            self.io.flush()?;
                            if env.shutting_down || self.session.mode() == Mode::Closed {
                                let actions = self.session.shutdown();
                                self.perform(actions);
                                return Ok(None);
                            }
                            // RFC 2177 3: clients re-issue IDLE at least every 29 minutes.
                            let end = began + self.config.imap_timeout;
                            if now >= end {
                                log::info!("session={} event=timeout", self.sid);
                                let actions = self.session.autologout();
                                self.perform(actions);
                                return Ok(None);
                            }
                            let until = if watching { end } else { end.min(now + IDLE_TICK) };
                            return Ok(Some(Wait { read: true, until: Some(until), ..Wait::default() }));
                        }
                    };
                    if let Some(w) = env.watcher {
                        w.unwatch(env.key);
                    }
                    self.phase = Phase::Command;
                    self.since = now;
                    self.perform(actions)
                }
                Phase::Fetching { job, stalled } => {
                    // A message at a time; once 64 KiB wait for a client that is not reading, the
                    // connection waits in the loop (holding no thread) until it reads again.
                    let parks = self.io.blocker.is_some();
                    loop {
                        if self.io.out.len() >= 64 * 1024 {
                            if parks && !self.io.writable_now() {
                                let since = *stalled.get_or_insert(now);
                                let limit = since + self.write_timeout;
                                if now >= limit {
                                    log::info!("session={} event=timeout during=fetch", self.sid);
                                    return Ok(None);
                                }
                                return Ok(Some(Wait { write: true, until: Some(limit), ..Wait::default() }));
                            }
                            *stalled = None;
                            self.io.flush()?;
                        }
                        let Some(folder) = self.session.fetch_folder() else { break };
                        if !job.step(folder, &mut Out::to(&mut self.io))? {
                            break;
                        }
                    }
                    let Phase::Fetching { job, .. } = std::mem::replace(&mut self.phase, Phase::Command)
                    else {
                        return Ok(None);
                    };
                    let actions = self.session.fetch_done(job);
                    self.perform(actions)
                }
                Phase::Command => match self.session.mode() {
                    Mode::Closed => return Ok(None),
                    Mode::HandedOff => {
                        self.io.flush()?;
                        // The rest of the session is the mail process's: relay to it until either side ends.
                        let Some(mail) = backend.and_then(|b| b.handoff.borrow_mut().take()) else {
                            return Ok(None);
                        };
                        self.phase = Phase::Relay(Relay::new(mail, &mut self.io)?);
                        continue;
                    }
                    Mode::Idle => {
                        self.io.flush()?;
                        let paths = self.session.idle_paths();
                        let watching = match env.watcher {
                            Some(w) if !paths.is_empty() => match w.watch(env.key, &paths) {
                                Ok(()) => true,
                                Err(e) => {
                                    log::info!(
                                        "session={} event=idle_watch_failed error=\"{e}\" effect=\"checks every second\"",
                                        self.sid
                                    );
                                    false
                                }
                            },
                            _ => false,
                        };
                        // What changed before the watch was set is seen now.
                        self.phase = Phase::Idle { began: now, watching };
                        let actions = self.session.idle_poll();
                        if self.perform(actions) == Outcome::Close {
                            return Ok(None);
                        }
                        continue;
                    }
                    Mode::SaslResponse => match self.io.line(MAX_LINE)? {
                        Input::Line(l) => {
                            let l = l.to_vec();
                            let actions = self.session.on_sasl_line(&l, b);
                            self.perform(actions)
                        }
                        Input::TooLong => {
                            let actions = self.session.on_parse_error(command::ParseError {
                                tag: None,
                                message: "line too long".into(),
                            });
                            self.perform(actions)
                        }
                        Input::Eof => return Ok(None),
                        Input::Pending => return self.wait_for_command(now, env),
                    },
                    Mode::Command => match self.io.line(MAX_LINE)? {
                        Input::Eof => return Ok(None),
                        Input::Pending => return self.wait_for_command(now, env),
                        Input::TooLong => {
                            self.asm.reset();
                            self.session.append_abort();
                            // A command's first line carries its tag: the answer is tagged, so the
                            // client is not left waiting (the line was read to its end: in sync).
                            let tag =
                                (!self.partial).then(|| command::tag_of(&self.io.too_long_head)).flatten();
                            self.partial = false;
                            self.skip = false;
                            let actions = self.session.on_parse_error(command::ParseError {
                                tag,
                                message: format!("command line too long (at most {MAX_LINE} octets)"),
                            });
                            self.perform(actions)
                        }
                        Input::Line(l) => {
                            let l = l.to_vec();
                            match self.line(l, b, now)? {
                                Some(outcome) => outcome,
                                None => continue,
                            }
                        }
                    },
                },
            };
            self.since = now;
            // A failed login is answered late (brute-force throttling, shared with SMTP and POP3).
            let delay = backend.map(|b| b.conn.delay.take()).unwrap_or_default();
            if !delay.is_zero() {
                self.io.flush()?;
                self.phase = Phase::Held(now + delay, outcome);
                continue;
            }
            match outcome {
                Outcome::Continue => {
                    if self.io.out.len() >= 64 * 1024 {
                        self.io.flush()?;
                    }
                }
                Outcome::Close => return Ok(None),
                Outcome::Compress => {
                    // RFC 4978 3: the tagged OK goes out as it is; both directions are compressed
                    // from the octet after its CRLF (here, or in the user's mail process when the
                    // session was handed there: the relay in front copies the compressed octets).
                    self.io.flush()?;
                    self.io.start_compress();
                }
                Outcome::StartTls => {
                    self.io.flush()?;
                    let Some(tls) = self.ctx.as_ref().and_then(|c| c.tls.clone()) else { return Ok(None) };
                    // RFC 3501 6.2.1 / RFC 2595 3.1: anything pipelined after STARTTLS is thrown away.
                    self.io.start_tls(tls.config())?;
                    self.phase = Phase::Handshake { began: now, greet: false };
                }
            }
        }
    }

    /// No complete command yet: park until the deadline (or end it, or say goodbye at shutdown).
    fn wait_for_command(&mut self, now: Instant, env: &Env) -> io::Result<Option<Wait>> {
        self.io.flush()?;
        if env.shutting_down && !self.partial {
            let actions = self.session.shutdown();
            self.perform(actions);
            return Ok(None);
        }
        let c = &self.config;
        let deadline = if let Some(first_byte) = self.io.started {
            first_byte + c.login_timeout
        } else if self.session.logged_in_user().is_none() {
            self.stressed |= env.stress;
            self.connected
                + if self.stressed { c.login_timeout.min(c.stress_timeout) } else { c.login_timeout }
        } else {
            self.since + c.imap_timeout
        };
        if now >= deadline {
            log::info!("session={} event=timeout", self.sid);
            let actions = self.session.autologout();
            self.perform(actions);
            return Ok(None);
        }
        Ok(Some(Wait { read: true, until: Some(deadline), ..Wait::default() }))
    }

    /// One line of a command: the command's outcome once it is complete, or None while its
    /// literals are still to come (the phase says where they go).
    fn line(&mut self, l: Vec<u8>, b: &dyn session::Backend, now: Instant) -> io::Result<Option<Outcome>> {
        if !self.partial {
            self.append = is_append(&l);
        }
        let out = &mut self.io.out;
        Ok(Some(match self.asm.line(&l) {
            Step::Complete(_) if std::mem::take(&mut self.skip) => {
                self.partial = false;
                std::mem::replace(&mut self.skipped, Outcome::Continue)
            }
            Step::Complete(buf) => {
                self.partial = false;
                let actions = match command::parse_owned(buf) {
                    Ok((tag, cmd)) => self.session.on_command(tag, cmd, b),
                    Err(e) => self.session.on_parse_error(e),
                };
                self.session.append_abort();
                self.perform(actions)
            }
            // RFC 3501 6.3.11: an APPEND's message is written to the store as it arrives, never held whole.
            Step::NeedLiteral { len, sync } if len > MAX_LITERAL && self.append => {
                self.partial = true;
                let start = self.session.append_begin(self.asm.head(), len, b);
                let sink = match start {
                    AppendStart::Stream => {
                        if sync {
                            // RFC 3501 7.5: the command continuation request.
                            self.io.out.extend_from_slice(b"+ Ready for literal data\r\n");
                            self.io.flush()?;
                        }
                        Sink::Append
                    }
                    AppendStart::Answered(actions) if sync => {
                        // The client waits for `+`: the command ends here.
                        self.asm.reset();
                        self.partial = false;
                        return Ok(Some(self.perform(actions)));
                    }
                    // RFC 7888 4: a non-synchronizing literal comes anyway; it and the rest of the
                    // command are read and dropped (what the answer says next waits until then).
                    AppendStart::Answered(actions) => {
                        self.skip = true;
                        self.skipped = self.perform(actions);
                        Sink::Drop
                    }
                };
                self.phase = Phase::Literal { left: len, len, sink, began: now };
                return Ok(None);
            }
            // Only an APPEND's message may be larger than MAX_LITERAL.
            Step::NeedLiteral { len, sync } if len > MAX_LITERAL && !self.append => {
                self.asm.reset();
                self.partial = false;
                log::info!("session={} event=imap_too_big size={len}", self.sid);
                if !sync {
                    out.extend_from_slice(b"* BYE [TOOBIG] Literal too big\r\n");
                    return Ok(Some(Outcome::Close));
                }
                let t = command::tag_of(&l).unwrap_or_else(|| "*".into());
                out.extend_from_slice(
                    format!("{t} NO [TOOBIG] Literal too big (at most {MAX_LITERAL} octets here)\r\n")
                        .as_bytes(),
                );
                Outcome::Continue
            }
            Step::NeedLiteral { len, sync } => {
                self.partial = true;
                if sync {
                    // RFC 3501 7.5: the command continuation request.
                    out.extend_from_slice(b"+ Ready for literal data\r\n");
                    self.io.flush()?;
                }
                let cap = usize::try_from(len).unwrap_or(0).min(1 << 20);
                self.phase = Phase::Literal {
                    left: len,
                    len,
                    sink: Sink::Command(Vec::with_capacity(cap)),
                    began: now,
                };
                return Ok(None);
            }
            Step::TooBig { tag, sync, len, message } => {
                self.partial = false;
                self.skip = false;
                self.session.append_abort();
                log::info!("session={} event=imap_too_big size={len}", self.sid);
                if !sync {
                    // RFC 7888 4: the client sends a non-synchronizing literal anyway; there is no way
                    // to skip it safely, so the connection ends.
                    out.extend_from_slice(format!("* BYE [TOOBIG] {message}\r\n").as_bytes());
                    return Ok(Some(Outcome::Close));
                }
                let t = tag.unwrap_or_else(|| "*".into());
                out.extend_from_slice(format!("{t} NO [TOOBIG] {message}\r\n").as_bytes());
                Outcome::Continue
            }
        }))
    }
}

/// Whether a command's first line is an APPEND (`tag APPEND ...`), whose message literal may be as
/// large as a message.
fn is_append(line: &[u8]) -> bool {
    let mut words = line.splitn(3, |&b| b == b' ');
    words.next();
    words.next().is_some_and(|w| w.eq_ignore_ascii_case(b"APPEND"))
}

impl Imap {
    /// Carries out the session's actions: replies into the output buffer, a FETCH into the phase
    /// that sends it; what comes after them is the outcome.
    fn perform(&mut self, actions: Vec<Action>) -> Outcome {
        let mut next = Outcome::Continue;
        for action in actions {
            match action {
                Action::Reply(bytes) => self.io.out.extend_from_slice(&bytes),
                Action::Fetch(job) => self.phase = Phase::Fetching { job, stalled: None },
                Action::StartTls => next = Outcome::StartTls,
                Action::Close => next = Outcome::Close,
                Action::Compress => next = Outcome::Compress,
            }
        }
        next
    }
}

impl Connection for Imap {
    fn resume(&mut self, wake: Wake, env: &Env) -> Yield {
        self.io.blocker = env.blocker.cloned();
        let result = self.run(wake, env);
        let user = Some(self.session.logged_in_user().unwrap_or("-"));
        yielded(&mut self.io, result, &self.sid, self.peer, user)
    }

    fn fd(&self) -> Option<RawFd> {
        self.io.stream.fd()
    }
}

/// Sent when the server is full (RFC 3501 7.1.5).
pub fn busy() -> Vec<u8> {
    Session::busy()
}

/// A session for the webmail, in this process: `user`'s folders opened here with the owner's
/// identity (taken again at each run, as after a login), logged in from the start, on one end of a
/// socketpair whose other end is the webmail's IMAP client. No greeting: the client speaks first.
pub fn preauth_here(
    ctx: Arc<Context>,
    sock: UnixStream,
    user: &str,
    peer: SocketAddr,
) -> Result<Imap, String> {
    let sid = crate::spool::new_queue_id();
    sock.set_write_timeout(Some(Duration::from_secs(60))).map_err(|e| e.to_string())?;
    let (store, identity, guard) = open_here(&ctx.resolver, ctx.config.mbox_lock_timeout, &sid, user)?;
    drop(guard);
    log::info!("session={sid} event=webmail_session user={user} client={peer}");
    let p = Peer { ip: peer.ip(), port: peer.port(), cleartext_auth: false, tls: true, sid: sid.clone() };
    let session = Session::preauth(ctx.imap_params(Service::Imap), p, user.to_string(), store);
    let config = Arc::clone(&ctx.config);
    let stream = Stream::Plain(Transport::Unix(sock));
    Ok(logged_in(Some(ctx), config, stream, session, sid, peer, Some(identity)))
}

/// A session that is logged in from its start, on a socket pair (the webmail's, a mail process's).
fn logged_in(
    ctx: Option<Arc<Context>>,
    config: Arc<Config>,
    stream: Stream,
    session: Session,
    sid: String,
    peer: SocketAddr,
    identity: Option<Identity>,
) -> Imap {
    let now = Instant::now();
    Imap {
        asm: assembler(true, config.message_size_limit),
        config,
        ctx,
        io: Io::new(stream),
        session,
        sid,
        peer,
        service: Service::Imap,
        _slot: None,
        phase: Phase::Command,
        identity,
        logged_in: true,
        partial: false,
        append: false,
        skip: false,
        skipped: Outcome::Continue,
        write_timeout: Duration::from_secs(60),
        connected: now,
        stressed: false,
        since: now,
    }
}

/// A session handed to this mail process: opens the user's folders (as this process's user) and
/// tells the server with the status line; the connection is then run like any other. None when it
/// ended there.
pub fn handed(sock: UnixStream, h: &Handed) -> Option<Imap> {
    let req = h.req;
    let sid = req.sid.as_str();
    let peer = h.peer();
    sock.set_write_timeout(Some(Duration::from_secs(60))).ok()?;
    let mut stream = Stream::Plain(Transport::Unix(sock));
    let store = match open_here(h.resolver, h.config.mbox_lock_timeout, sid, &req.user) {
        Ok((store, _, _)) => store,
        Err(e) => {
            log::warn!("session={sid} event=imap_store_open_failed user={} error=\"{e}\"", req.user);
            let _ = stream.write_all(Status::Temp.line());
            return None;
        }
    };
    stream.write_all(Status::Ok.line()).ok()?;
    log::info!("session={sid} event=mailproc_session service=imap user={} client={peer}", req.user);
    let params = Arc::new(session::Params {
        hostname: h.config.hostname.clone(),
        max_errors: h.config.imap_max_errors,
        starttls: false,
        auth_mechanisms: Vec::new(),
        max_append: h.config.message_size_limit,
    });
    let p =
        Peer { ip: peer.ip(), port: peer.port(), cleartext_auth: false, tls: req.tls, sid: sid.to_string() };
    let session = Session::preauth(params, p, req.user.clone(), store);
    Some(logged_in(None, Arc::clone(h.config), stream, session, sid.to_string(), peer, None))
}
