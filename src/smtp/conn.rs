//! One SMTP connection: drives the I/O-free [`Session`] over a blocking
//! socket with timeouts, streams DATA/BDAT into the spool, delivers locally
//! (all recipients or none) before the final reply, and logs one line per event.
//! RFC 5321 (4.4 trace fields, 4.5.3.2 timeouts), RFC 2920 (reply batching).

use std::cell::Cell;
use std::io;
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use crate::config::in_networks;
use crate::netio::{Line, LineReader, Stream, flush_out, open_session_stream, tls_details};
use crate::server::Service;
use crate::server::acceptor::Job;
use crate::smtp::backend::ConnBackend;
pub use crate::smtp::backend::Context;
use crate::smtp::data::{ChunkDecoder, DataDecoder};
use crate::smtp::deliver;
use crate::smtp::reply::Reply;
use crate::smtp::session::{MessageResult, Next, Peer, Session, Step};
use crate::spool::{self, Incoming};
use crate::timefmt;

/// The reply for a connection refused because every worker is busy.
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

/// A message being received over one or more BDAT chunks, or one DATA.
pub(super) struct Inbound {
    pub id: String,
    pub file: Option<Incoming>,
    pub error: Option<io::Error>,
    pub too_big: bool,
    pub octets: u64,
    /// Length of the Return-Path line, which relaying leaves out.
    pub body_offset: u64,
    /// One decoder for all BDAT chunks of the message: a CR ending one chunk pairs with the LF that
    /// opens the next (RFC 3030 allows a chunk to end anywhere).
    pub chunks: ChunkDecoder,
}

/// Serves one connection to its end. Never panics on peer input; I/O errors
/// end the session (nothing was acknowledged that is not on disk).
pub fn run(job: Job, ctx: &Context) {
    let Job { stream, peer, service, slot } = job;
    let sid = spool::new_queue_id();
    log::info!("session={sid} event=connect service={} client={peer}", service.name());
    let implicit = match (service, &ctx.tls) {
        (Service::Submissions, Some(t)) => Some(t.config()),
        (Service::Submissions, None) => return,
        _ => None,
    };
    let Some(stream) = open_session_stream(stream, ctx.config.smtp_timeout, implicit, &sid) else { return };
    let relay_allowed = in_networks(&ctx.config.relay_networks, peer.ip());
    let cleartext_auth = in_networks(&ctx.config.auth_cleartext_networks, peer.ip());
    let mut session = Session::new(
        ctx.params(service),
        Peer { ip: peer.ip(), port: peer.port(), relay_allowed, cleartext_auth },
    );
    tls_started(&mut session, &stream, &sid);
    let backend = ConnBackend { ctx, ip: peer.ip(), sid: &sid, delay: Cell::new(Duration::ZERO) };
    let mut conn =
        Conn { reader: LineReader::new(stream), out: Vec::with_capacity(512), inbound: None, ip: peer.ip() };
    let result = conn.serve(&mut session, &backend, &slot);
    match result {
        Ok(()) => log::info!("session={sid} event=disconnect client={peer}"),
        Err(e) => log::info!("session={sid} event=disconnect client={peer} error=\"{e}\""),
    }
}

/// Tells the session about its new TLS layer, if there is one.
fn tls_started(session: &mut Session, stream: &Stream, sid: &str) {
    if let Some((description, bindings)) = tls_details(stream, sid) {
        session.on_tls(description, bindings);
    }
}

struct Conn {
    reader: LineReader<Stream>,
    out: Vec<u8>,
    inbound: Option<Inbound>,
    ip: IpAddr,
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
}

impl Conn {
    fn flush(&mut self) -> io::Result<()> {
        flush_out(self.reader.get_mut(), &mut self.out)
    }

    fn serve(
        &mut self,
        session: &mut Session,
        backend: &ConnBackend,
        slot: &crate::server::Slot,
    ) -> io::Result<()> {
        let (ctx, sid) = (backend.ctx, backend.sid);
        if slot.shutting_down() {
            session.on_shutdown().write_to(&mut self.out);
            return self.flush();
        }
        session.greeting().write_to(&mut self.out);
        loop {
            // RFC 2920 3.1: replies may wait while more pipelined input is pending.
            if self.reader.buffered().is_empty() {
                self.flush()?;
                if slot.set_idle(session.transaction().is_none()) {
                    session.on_shutdown().write_to(&mut self.out);
                    return self.flush();
                }
            }
            let max_line = session.max_line(ctx.config.smtp_max_line_length);
            let step = match self.reader.read_line(max_line) {
                Ok(Line::Line(l)) => session.on_line(l, backend),
                Ok(Line::TooLong) => session.on_line_too_long(),
                Ok(Line::Eof) => {
                    if slot.shutting_down() && session.transaction().is_none() {
                        session.on_shutdown().write_to(&mut self.out);
                        let _ = self.flush();
                    }
                    return Ok(());
                }
                Err(e) if is_timeout(&e) => {
                    log::info!("session={sid} event=timeout");
                    session.on_timeout().write_to(&mut self.out);
                    return self.flush();
                }
                Err(e) => return Err(e),
            };
            slot.set_idle(false);
            // Brute-force defence: a failed login's answer is held back.
            let delay = backend.delay.take();
            if !delay.is_zero() {
                self.flush()?;
                std::thread::sleep(delay);
            }
            if !self.step(step, session, ctx, sid)? {
                return self.flush();
            }
        }
    }

    /// Carries out a step and those it leads to. Returns false to close.
    fn step(&mut self, mut step: Step, session: &mut Session, ctx: &Context, sid: &str) -> io::Result<bool> {
        loop {
            if let Some(r) = &step.reply {
                r.write_to(&mut self.out);
            }
            step = match step.next {
                Next::Command => return Ok(true),
                Next::Close => return Ok(false),
                Next::StartTls => {
                    self.flush()?;
                    self.start_tls(session, ctx, sid)?;
                    return Ok(true);
                }
                Next::Data => {
                    self.flush()?;
                    let mut inbound = self.begin(session, ctx);
                    self.read_data(&mut inbound, ctx)?;
                    let result = deliver::finish(inbound, session, ctx, sid);
                    session.on_message(result)
                }
                Next::Chunk { size, last, discard } => {
                    if discard {
                        self.skip(size)?;
                        match last {
                            true => session.on_message(MessageResult::Perm("chunk discarded".into())),
                            false => session.on_chunk(size, true),
                        }
                    } else {
                        let mut inbound = match self.inbound.take() {
                            Some(i) => i,
                            None => self.begin(session, ctx),
                        };
                        self.read_chunk(&mut inbound, size, last, ctx)?;
                        if last {
                            let result = deliver::finish(inbound, session, ctx, sid);
                            session.on_message(result)
                        } else {
                            let too_big = inbound.too_big;
                            self.inbound = Some(inbound);
                            session.on_chunk(size, too_big)
                        }
                    }
                }
            };
            if session.transaction().is_none() {
                self.inbound = None; // RSET or a finished message drops a half-received BDAT message
            }
        }
    }

    /// STARTTLS: the handshake over the bare socket. Whatever the client sent
    /// after STARTTLS before the handshake is thrown away with the old reader
    /// (RFC 3207 4.2; CVE-2011-0411 command injection).
    fn start_tls(&mut self, session: &mut Session, ctx: &Context, sid: &str) -> io::Result<()> {
        let Some(tls) = &ctx.tls else { return Err(io::Error::other("STARTTLS without a certificate")) };
        let reader = std::mem::replace(&mut self.reader, LineReader::new(Stream::Closed));
        let stream = reader.into_inner().start_tls(tls.config())?;
        tls_started(session, &stream, sid);
        self.reader = LineReader::new(stream);
        Ok(())
    }

    /// Opens the spool file and writes the trace headers (RFC 5321 4.4).
    fn begin(&self, session: &Session, ctx: &Context) -> Inbound {
        let id = spool::new_queue_id();
        let header = trace_headers(session, ctx, &id, self.ip);
        let body_offset = header.find('\n').map_or(0, |n| n as u64 + 1);
        let mut inbound = Inbound {
            id,
            file: None,
            error: None,
            too_big: false,
            octets: 0,
            body_offset,
            chunks: ChunkDecoder::new(),
        };
        match Incoming::create(&ctx.config.data_dir, &inbound.id)
            .and_then(|mut f| f.write(header.as_bytes()).map(|_| f))
        {
            Ok(f) => inbound.file = Some(f),
            Err(e) => inbound.error = Some(e),
        }
        inbound
    }

    /// Writes decoded message bytes unless the message already failed.
    fn store(inbound: &mut Inbound, decoded: &[u8], octets: u64, limit: u64) {
        inbound.octets = octets;
        if octets > limit {
            inbound.too_big = true;
        }
        if inbound.too_big || inbound.error.is_some() {
            return;
        }
        if let Some(Err(e)) = inbound.file.as_mut().map(|f| f.write(decoded)) {
            inbound.error = Some(e);
        }
    }

    /// Reads DATA up to CRLF.CRLF, whatever happens to the spool file.
    fn read_data(&mut self, inbound: &mut Inbound, ctx: &Context) -> io::Result<()> {
        let mut dec = DataDecoder::new();
        let mut decoded = Vec::with_capacity(crate::netio::BUF_SIZE + 16);
        loop {
            if self.reader.buffered().is_empty() && self.reader.fill()? == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed during DATA"));
            }
            decoded.clear();
            let end = dec.feed(self.reader.buffered(), &mut decoded);
            let used = end.unwrap_or(self.reader.buffered().len());
            self.reader.consume(used);
            Self::store(inbound, &decoded, dec.message_octets(), ctx.config.message_size_limit);
            if end.is_some() {
                return Ok(());
            }
        }
    }

    /// Reads one BDAT chunk of exactly `size` octets (RFC 3030 2) through the message's one decoder,
    /// which holds back a trailing CR until the next chunk (or LAST) says what follows it.
    fn read_chunk(&mut self, inbound: &mut Inbound, size: u64, last: bool, ctx: &Context) -> io::Result<()> {
        let mut decoded = Vec::with_capacity(crate::netio::BUF_SIZE + 16);
        let mut left = size;
        while left > 0 {
            if self.reader.buffered().is_empty() && self.reader.fill()? == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed during BDAT"));
            }
            let avail = self.reader.buffered();
            let n = avail.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            decoded.clear();
            inbound.chunks.feed(&avail[..n], &mut decoded);
            self.reader.consume(n);
            left -= n as u64;
            let octets = inbound.chunks.message_octets();
            Self::store(inbound, &decoded, octets, ctx.config.message_size_limit);
        }
        if last {
            decoded.clear();
            inbound.chunks.finish(&mut decoded);
            let octets = inbound.chunks.message_octets();
            Self::store(inbound, &decoded, octets, ctx.config.message_size_limit);
        }
        Ok(())
    }

    fn skip(&mut self, mut size: u64) -> io::Result<()> {
        while size > 0 {
            if self.reader.buffered().is_empty() && self.reader.fill()? == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed during BDAT"));
            }
            let n = self.reader.buffered().len().min(usize::try_from(size).unwrap_or(usize::MAX));
            self.reader.consume(n);
            size -= n as u64;
        }
        Ok(())
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
