//! The SMTP driver: one connection's bytes to the I/O-free [`Session`] and its replies back; DATA
//! and BDAT streamed into the spool as they arrive; local delivery (all recipients or none) before
//! the final reply. Between commands, inside a partial line and between pieces of a message the
//! connection waits in the event loop, not on a worker. Deadlines: a command line must be complete
//! within `smtp.timeout` of its first byte; a message within `smtp.timeout` plus its size at
//! `smtp.min_data_rate`; an idle client is dropped after `smtp.timeout` (`stress_timeout` while the
//! server is near `max_connections`). RFC 5321 (4.4 trace fields, 4.5.3.2 timeouts), RFC 2920
//! (reply batching), RFC 3030 (BDAT), RFC 3207 (STARTTLS).

use std::cell::Cell;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::RawFd;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::deliver::{self, Inbound};
use super::io::{Bytes, Input, Io};
use super::{Connection, Env, Handshake, Wait, Wake, Yield, handshake, yielded};
use crate::config::in_networks;
use crate::netio::Stream;
use crate::server::context::{ConnBackend, Context};
use crate::server::{Service, Slot};
use crate::smtp::data::{ChunkDecoder, DataDecoder};
use crate::smtp::reply::Reply;
use crate::smtp::session::{MessageResult, Next, Peer, Session, Step};
use crate::spool::{self, Incoming};
use crate::timefmt;
use crate::transport::Transport;

/// Replies are sent once this much has gathered even while pipelined commands keep coming.
const OUT_FLUSH: usize = 16 * 1024;

/// The reply for a connection refused because the server is full.
pub fn busy(hostname: &str) -> Vec<u8> {
    let mut out = Vec::new();
    Session::busy(hostname).write_to(&mut out);
    out
}

/// The reply for a client over its per-IP connection limit.
pub fn too_many_from(hostname: &str) -> Vec<u8> {
    let mut out = Vec::new();
    Reply::new(421, "4.7.0", format!("{hostname} Error: too many connections from your address"))
        .write_to(&mut out);
    out
}

enum Phase {
    /// The TLS handshake (implicit TLS, or after STARTTLS), begun then.
    Handshake {
        began: Instant,
        greet: bool,
    },
    /// Port 25's pause before the greeting (`smtp.greet_pause`): a client that talks before it is
    /// refused (a spam engine that does not wait for the server).
    Pause(Instant),
    Command,
    /// A failed login's answer, held back until then (the brute-force brake), as a timer.
    Held(Instant, Step),
    /// Message text after DATA, up to CRLF.CRLF.
    Data {
        dec: DataDecoder,
        began: Instant,
    },
    /// `left` of a BDAT chunk's octets (RFC 3030 2); `discard`: thrown away, already answered.
    Chunk {
        left: u64,
        size: u64,
        last: bool,
        discard: bool,
        began: Instant,
    },
}

pub struct Smtp {
    ctx: Arc<Context>,
    io: Io,
    session: Session,
    sid: String,
    peer: SocketAddr,
    service: Service,
    _slot: Slot,
    phase: Phase,
    inbound: Option<Inbound>,
    /// When the client was last answered: the idle timeout counts from here.
    since: Instant,
    /// Stress mode was on during the current wait: the shorter idle limit stands for it, even if
    /// stress mode ends before the limit comes (otherwise the clients it drops would end stress
    /// mode and hand the ones still waiting their long limit back).
    stressed: bool,
    /// A TCP connection (not inetd's pipe or unix socket, whose other end is a local program).
    tcp: bool,
}

impl Smtp {
    /// A connection accepted on `service`'s listener (or handed over by inetd).
    pub fn new(ctx: Arc<Context>, stream: Transport, peer: SocketAddr, service: Service, slot: Slot) -> Smtp {
        let relay_allowed = in_networks(&ctx.config.relay_networks, peer.ip());
        let cleartext_auth = in_networks(&ctx.config.auth_cleartext_networks, peer.ip());
        let session = Session::new(
            ctx.params(service),
            Peer { ip: peer.ip(), port: peer.port(), relay_allowed, cleartext_auth },
        );
        let now = Instant::now();
        let tcp = matches!(stream, Transport::Tcp(_));
        Smtp {
            tcp,
            io: Io::new(Stream::Plain(stream)),
            session,
            sid: spool::new_queue_id(),
            peer,
            service,
            _slot: slot,
            phase: Phase::Command,
            inbound: None,
            since: now,
            stressed: false,
            ctx,
        }
    }

    /// Whether this connection waits `smtp.greet_pause` before its greeting: port 25 only, and not
    /// for clients the checks trust (relay.networks, checks.skip_networks).
    fn greet_pause(&self) -> bool {
        self.untrusted_intake() && !self.ctx.config.filters.greet_pause.is_zero()
    }

    /// A port 25 TCP client the checks do not trust (not in relay.networks nor
    /// checks.skip_networks).
    fn untrusted_intake(&self) -> bool {
        let c = &self.ctx.config;
        self.service == Service::Smtp
            && self.tcp
            && !in_networks(&c.relay_networks, self.peer.ip())
            && crate::server::checks::applies(c, self.peer.ip())
    }

    fn timeout(&self) -> Duration {
        self.ctx.config.smtp_timeout
    }

    /// Runs until the connection must wait (Some) or has ended (None).
    fn run(&mut self, wake: Wake, env: &Env) -> io::Result<Option<Wait>> {
        if wake == Wake::Start {
            log::info!(
                "session={} event=connect service={} client={}",
                self.sid,
                self.service.name(),
                self.peer
            );
            if env.shutting_down {
                self.session.on_shutdown().write_to(&mut self.io.out);
                return Ok(None);
            }
            if self.service == Service::Submissions {
                // RFC 8314 3.3: the handshake comes before the greeting.
                self.start_tls()?;
                self.phase = Phase::Handshake { began: Instant::now(), greet: true };
            } else if self.untrusted_intake()
                && !self.ctx.checks.connections.allow(
                    self.peer.ip(),
                    Instant::now(),
                    self.ctx.config.filters.connection_rate,
                )
            {
                log::info!("session={} event=reject reason=connection_rate client={}", self.sid, self.peer);
                let text = format!(
                    "{} Error: too many connections from {}",
                    self.ctx.config.hostname,
                    self.peer.ip()
                );
                Reply::new(421, "4.7.0", text).write_to(&mut self.io.out);
                return Ok(None);
            } else if self.greet_pause() {
                self.phase = Phase::Pause(Instant::now() + self.ctx.config.filters.greet_pause);
            } else {
                self.session.greeting().write_to(&mut self.io.out);
            }
        }
        loop {
            let now = Instant::now();
            match &mut self.phase {
                Phase::Handshake { began, greet } => {
                    let (began, greet) = (*began, *greet);
                    let limit = self.timeout();
                    match handshake(&mut self.io, began, limit, &self.sid) {
                        Handshake::Done(details) => {
                            if let Some((description, bindings)) = details {
                                self.session.on_tls(description, bindings);
                            }
                            if greet {
                                self.session.greeting().write_to(&mut self.io.out);
                            }
                            self.since = now;
                            self.phase = Phase::Command;
                        }
                        Handshake::Wait(w) => return Ok(Some(w)),
                        Handshake::Failed => return Ok(None),
                    }
                }
                Phase::Pause(until) => {
                    let until = *until;
                    match self.io.bytes()? {
                        Bytes::Data(_) => {
                            log::info!(
                                "session={} event=reject reason=pregreet client={}",
                                self.sid,
                                self.peer
                            );
                            let text =
                                format!("{} Error: talking before the greeting", self.ctx.config.hostname);
                            Reply::new(554, "5.5.1", text).write_to(&mut self.io.out);
                            return Ok(None);
                        }
                        Bytes::Eof => return Ok(None),
                        Bytes::Pending if now < until => {
                            return Ok(Some(Wait { read: true, until: Some(until), ..Wait::default() }));
                        }
                        Bytes::Pending => {
                            self.session.greeting().write_to(&mut self.io.out);
                            self.since = now;
                            self.phase = Phase::Command;
                        }
                    }
                }
                Phase::Held(until, _) => {
                    if now < *until {
                        return Ok(Some(Wait { until: Some(*until), ..Wait::default() }));
                    }
                    let Phase::Held(_, step) = std::mem::replace(&mut self.phase, Phase::Command) else {
                        return Ok(None);
                    };
                    if !self.apply(step)? {
                        return Ok(None);
                    }
                }
                Phase::Command => {
                    let max_line = self.session.max_line(self.ctx.config.smtp_max_line_length);
                    let backend = ConnBackend {
                        ctx: &self.ctx,
                        ip: self.peer.ip(),
                        sid: &self.sid,
                        delay: Cell::new(Duration::ZERO),
                    };
                    let step = match self.io.line(max_line)? {
                        Input::Line(l) => self.session.on_line(l, &backend),
                        Input::TooLong => self.session.on_line_too_long(),
                        Input::Eof => {
                            if env.shutting_down && self.session.transaction().is_none() {
                                self.session.on_shutdown().write_to(&mut self.io.out);
                            }
                            return Ok(None);
                        }
                        Input::Pending => {
                            // RFC 2920 3.1: replies wait while pipelined input is pending, no longer.
                            self.io.flush()?;
                            if env.shutting_down && self.session.transaction().is_none() {
                                self.session.on_shutdown().write_to(&mut self.io.out);
                                return Ok(None);
                            }
                            self.stressed |= env.stress;
                            let idle = match self.stressed {
                                true => self.ctx.config.stress_timeout.min(self.timeout()),
                                false => self.timeout(),
                            };
                            let deadline = match self.io.started {
                                Some(first_byte) => first_byte + self.timeout(),
                                None => self.since + idle,
                            };
                            if now >= deadline {
                                log::info!("session={} event=timeout", self.sid);
                                self.session.on_timeout().write_to(&mut self.io.out);
                                return Ok(None);
                            }
                            return Ok(Some(Wait { read: true, until: Some(deadline), ..Wait::default() }));
                        }
                    };
                    self.since = now;
                    self.stressed = false;
                    let delay = backend.delay.take();
                    if !delay.is_zero() {
                        self.io.flush()?;
                        self.phase = Phase::Held(now + delay, step);
                        continue;
                    }
                    if !self.apply(step)? {
                        return Ok(None);
                    }
                    if self.io.out.len() >= OUT_FLUSH {
                        self.io.flush()?;
                    }
                }
                Phase::Data { dec, began } => {
                    let began = *began;
                    let data = match self.io.bytes()? {
                        Bytes::Data(d) => d,
                        Bytes::Eof => return Err(closed("DATA")),
                        Bytes::Pending => {
                            let octets = dec.message_octets();
                            return self.wait_for_message(now, began, octets);
                        }
                    };
                    let mut decoded = Vec::with_capacity(data.len() + 16);
                    let end = dec.feed(data, &mut decoded);
                    let used = end.unwrap_or(data.len());
                    let octets = dec.message_octets();
                    self.io.consume(used);
                    let limit = self.ctx.config.message_size_limit;
                    if let Some(i) = self.inbound.as_mut() {
                        i.store(&decoded, octets, limit);
                    }
                    if end.is_some() {
                        self.phase = Phase::Command;
                        let Some(inbound) = self.inbound.take() else { return Ok(None) };
                        let result = deliver::finish(inbound, &self.session, &self.ctx, &self.sid);
                        let step = self.session.on_message(result);
                        self.since = Instant::now();
                        if !self.apply(step)? {
                            return Ok(None);
                        }
                    }
                }
                Phase::Chunk { left, size, last, discard, began } => {
                    let (size, last, discard, began) = (*size, *last, *discard, *began);
                    if *left > 0 {
                        let data = match self.io.bytes()? {
                            Bytes::Data(d) => d,
                            Bytes::Eof => return Err(closed("BDAT")),
                            Bytes::Pending => {
                                let got = size - *left;
                                return self.wait_for_message(now, began, got);
                            }
                        };
                        let n = data.len().min(usize::try_from(*left).unwrap_or(usize::MAX));
                        *left -= n as u64;
                        if !discard && let Some(i) = self.inbound.as_mut() {
                            let mut decoded = Vec::with_capacity(n + 16);
                            i.chunks.feed(data.get(..n).unwrap_or_default(), &mut decoded);
                            let octets = i.chunks.message_octets();
                            i.store(&decoded, octets, self.ctx.config.message_size_limit);
                        }
                        self.io.consume(n);
                        continue;
                    }
                    self.phase = Phase::Command;
                    let step = if discard {
                        match last {
                            true => self.session.on_message(MessageResult::Perm("chunk discarded".into())),
                            false => self.session.on_chunk(size, true),
                        }
                    } else if last {
                        let Some(mut inbound) = self.inbound.take() else { return Ok(None) };
                        let mut decoded = Vec::new();
                        inbound.chunks.finish(&mut decoded);
                        let octets = inbound.chunks.message_octets();
                        inbound.store(&decoded, octets, self.ctx.config.message_size_limit);
                        let result = deliver::finish(inbound, &self.session, &self.ctx, &self.sid);
                        self.session.on_message(result)
                    } else {
                        let too_big = self.inbound.as_ref().is_some_and(|i| i.too_big);
                        self.session.on_chunk(size, too_big)
                    };
                    self.since = Instant::now();
                    if !self.apply(step)? {
                        return Ok(None);
                    }
                }
            }
        }
    }

    /// Parks a connection in the middle of a message: it must arrive within `smtp.timeout` plus
    /// its size at `smtp.min_data_rate` (as Postfix's smtpd_min_data_rate), counted from its start.
    fn wait_for_message(&mut self, now: Instant, began: Instant, octets: u64) -> io::Result<Option<Wait>> {
        let rate = self.ctx.config.smtp_min_data_rate;
        let allowance =
            octets.checked_div(rate).map_or(Duration::from_secs(86400 * 365), Duration::from_secs);
        let deadline =
            began.checked_add(self.timeout() + allowance).unwrap_or(now + Duration::from_secs(86400));
        if now >= deadline {
            log::info!("session={} event=timeout during=message octets={octets}", self.sid);
            self.session.on_timeout().write_to(&mut self.io.out);
            return Ok(None);
        }
        Ok(Some(Wait { read: true, until: Some(deadline), ..Wait::default() }))
    }

    /// Carries out a session step: its reply, then what comes next. False: close.
    fn apply(&mut self, step: Step) -> io::Result<bool> {
        if let Some(r) = &step.reply {
            r.write_to(&mut self.io.out);
        }
        let now = Instant::now();
        match step.next {
            Next::Command => {}
            Next::Close => return Ok(false),
            Next::StartTls => {
                self.io.flush()?;
                self.start_tls()?;
                self.phase = Phase::Handshake { began: now, greet: false };
            }
            Next::Data => {
                self.io.flush()?;
                self.inbound = Some(self.begin());
                self.phase = Phase::Data { dec: DataDecoder::new(), began: now };
            }
            Next::Chunk { size, last, discard } => {
                if !discard && self.inbound.is_none() {
                    self.inbound = Some(self.begin());
                }
                self.phase = Phase::Chunk { left: size, size, last, discard, began: now };
            }
        }
        if self.session.transaction().is_none() {
            self.inbound = None; // RSET or a finished message drops a half-received BDAT message
        }
        Ok(true)
    }

    /// STARTTLS or implicit TLS (the handshake follows in [`Phase::Handshake`]).
    fn start_tls(&mut self) -> io::Result<()> {
        let Some(tls) = &self.ctx.tls else { return Err(io::Error::other("TLS without a certificate")) };
        self.io.start_tls(tls.config())
    }

    /// Opens the spool file and writes the trace headers (RFC 5321 4.4).
    fn begin(&self) -> Inbound {
        let id = spool::new_queue_id();
        let header = trace_headers(&self.session, &self.ctx, &id, self.peer.ip());
        let body_offset = header.find('\n').map_or(0, |n| n as u64 + 1);
        let mut inbound = Inbound {
            id,
            file: None,
            error: None,
            too_big: false,
            octets: 0,
            body_offset,
            trace_len: header.len() as u64,
            chunks: ChunkDecoder::new(),
        };
        match Incoming::create(&self.ctx.config.data_dir, &inbound.id)
            .and_then(|mut f| f.write(header.as_bytes()).map(|_| f))
        {
            Ok(f) => inbound.file = Some(f),
            Err(e) => inbound.error = Some(e),
        }
        inbound
    }
}

fn closed(during: &str) -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, format!("connection closed during {during}"))
}

impl Connection for Smtp {
    fn resume(&mut self, wake: Wake, env: &Env) -> Yield {
        self.io.blocker = env.blocker.cloned();
        let result = self.run(wake, env);
        yielded(&mut self.io, result, &self.sid, self.peer, None)
    }

    fn fd(&self) -> Option<RawFd> {
        self.io.stream.fd()
    }
}

/// `Return-Path:` (RFC 5322 3.6.7, added at final delivery) and `Received:`
/// (RFC 5321 4.4; protocol names from RFC 3848 / RFC 6531).
fn trace_headers(session: &Session, ctx: &Context, id: &str, ip: IpAddr) -> String {
    let (sender, rcpts) = match session.transaction() {
        Some(t) => (t.sender.as_ref().map(|a| a.to_string()).unwrap_or_default(), t.recipients.as_slice()),
        None => (String::new(), &[][..]),
    };
    let helo = session.helo_name().unwrap_or("unknown");
    let for_clause = match rcpts {
        [one] => format!("\n\tfor <{one}>"),
        _ => String::new(),
    };
    format!(
        "Return-Path: <{sender}>\nReceived: from {helo} ([{ip}])\n\tby {} (buzon) with {} id {id}{for_clause};\n\t{}\n",
        ctx.config.hostname,
        session.protocol(),
        timefmt::rfc5322(SystemTime::now())
    )
}
