//! One SMTP connection: drives the I/O-free [`Session`] over a blocking
//! socket with timeouts, streams DATA/BDAT into the spool, delivers locally
//! (all recipients or none) before the final reply, and logs one line per event.
//! RFC 5321 (4.4 trace fields, 4.5.3.2 timeouts), RFC 2920 (reply batching).

use std::io;
use std::net::TcpStream;
use std::sync::Arc;
use std::time::SystemTime;

use crate::addr::Address;
use crate::config::{Config, in_networks};
use crate::local::{Resolution, Resolver};
use crate::netio::{Line, LineReader, flush_out};
use crate::queue::wake::{Wake, Waker};
use crate::queue::{Envelope, Queue, QueuedRcpt, RcptState};
use crate::server::acceptor::Job;
use crate::smtp::data::{ChunkDecoder, DataDecoder};
use crate::smtp::reply::Reply;
use crate::smtp::session::{Backend, MessageResult, Next, Params, Peer, RcptCheck, Session, Step};
use crate::spool::{self, Incoming};
use crate::store::{self, StoreOptions};
use crate::timefmt;

/// What every SMTP session shares.
pub struct Context {
    config: Arc<Config>,
    params: Arc<Params>,
    resolver: Arc<Resolver>,
    store: StoreOptions,
    queue: Arc<Queue>,
    waker: Arc<Waker>,
}

impl Context {
    pub fn new(
        config: Arc<Config>,
        resolver: Arc<Resolver>,
        queue: Arc<Queue>,
        waker: Arc<Waker>,
    ) -> Context {
        let params = Arc::new(Params {
            hostname: config.hostname.clone(),
            message_size_limit: config.message_size_limit,
            max_recipients: config.smtp_max_recipients,
            max_errors: config.smtp_max_errors,
        });
        let store = StoreOptions { lock_timeout: config.mbox_lock_timeout };
        Context { config, params, resolver, store, queue, waker }
    }
}

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

struct Rcpts<'a>(&'a Resolver);

impl Backend for Rcpts<'_> {
    fn check_rcpt(&self, rcpt: &Address) -> RcptCheck {
        match self.0.resolve(rcpt.local(), rcpt.domain()) {
            Resolution::NotLocal => RcptCheck::NotLocal,
            Resolution::Unknown => RcptCheck::UnknownUser,
            Resolution::Deliver(_) => RcptCheck::Accept,
            Resolution::Temp(m) => RcptCheck::Temp(m),
            Resolution::Perm(m) => RcptCheck::Perm(m),
        }
    }
}

/// A message being received over one or more BDAT chunks, or one DATA.
struct Inbound {
    id: String,
    file: Option<Incoming>,
    error: Option<io::Error>,
    too_big: bool,
    octets: u64,
    /// Length of the Return-Path line, which relaying leaves out.
    body_offset: u64,
}

/// Serves one connection to its end. Never panics on peer input; I/O errors
/// end the session (nothing was acknowledged that is not on disk).
pub fn run(job: Job, ctx: &Context) {
    let Job { stream, peer, service, slot } = job;
    let sid = spool::new_queue_id();
    let timeout = Some(ctx.config.smtp_timeout);
    if stream
        .set_nonblocking(false)
        .and(stream.set_read_timeout(timeout))
        .and(stream.set_write_timeout(timeout))
        .is_err()
    {
        return;
    }
    let _ = stream.set_nodelay(true);
    log::info!("session={sid} event=connect service={} client={peer}", service.name());
    let relay_allowed = in_networks(&ctx.config.relay_networks, peer.ip());
    let mut session =
        Session::new(Arc::clone(&ctx.params), Peer { ip: peer.ip(), port: peer.port(), relay_allowed });
    let mut conn = Conn { reader: LineReader::new(&stream), out: Vec::with_capacity(512), inbound: None };
    let result = conn.serve(&mut session, ctx, &slot, &sid, &stream);
    match result {
        Ok(()) => log::info!("session={sid} event=disconnect client={peer}"),
        Err(e) => log::info!("session={sid} event=disconnect client={peer} error=\"{e}\""),
    }
}

struct Conn<'s> {
    reader: LineReader<&'s TcpStream>,
    out: Vec<u8>,
    inbound: Option<Inbound>,
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
}

impl<'s> Conn<'s> {
    fn serve(
        &mut self,
        session: &mut Session,
        ctx: &Context,
        slot: &crate::server::Slot,
        sid: &str,
        mut w: &'s TcpStream,
    ) -> io::Result<()> {
        if slot.shutting_down() {
            session.on_shutdown().write_to(&mut self.out);
            return flush_out(&mut w, &mut self.out);
        }
        session.greeting().write_to(&mut self.out);
        let max_line = ctx.config.smtp_max_line_length;
        loop {
            // RFC 2920 3.1: replies may wait while more pipelined input is pending.
            if self.reader.buffered().is_empty() {
                flush_out(&mut w, &mut self.out)?;
                if slot.set_idle(session.transaction().is_none()) {
                    session.on_shutdown().write_to(&mut self.out);
                    return flush_out(&mut w, &mut self.out);
                }
            }
            let step = match self.reader.read_line(max_line) {
                Ok(Line::Line(l)) => session.on_line(l, &Rcpts(&ctx.resolver)),
                Ok(Line::TooLong) => session.on_line_too_long(),
                Ok(Line::Eof) => {
                    if slot.shutting_down() && session.transaction().is_none() {
                        session.on_shutdown().write_to(&mut self.out);
                        let _ = flush_out(&mut w, &mut self.out);
                    }
                    return Ok(());
                }
                Err(e) if is_timeout(&e) => {
                    log::info!("session={sid} event=timeout");
                    session.on_timeout().write_to(&mut self.out);
                    return flush_out(&mut w, &mut self.out);
                }
                Err(e) => return Err(e),
            };
            slot.set_idle(false);
            if !self.step(step, session, ctx, sid, w)? {
                return flush_out(&mut w, &mut self.out);
            }
        }
    }

    /// Carries out a step and those it leads to. Returns false to close.
    fn step(
        &mut self,
        mut step: Step,
        session: &mut Session,
        ctx: &Context,
        sid: &str,
        mut w: &'s TcpStream,
    ) -> io::Result<bool> {
        loop {
            if let Some(r) = &step.reply {
                r.write_to(&mut self.out);
            }
            step = match step.next {
                Next::Command => return Ok(true),
                Next::Close => return Ok(false),
                Next::Data => {
                    flush_out(&mut w, &mut self.out)?;
                    let mut inbound = self.begin(session, ctx);
                    self.read_data(&mut inbound, ctx)?;
                    let result = finish(inbound, session, ctx, sid);
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
                            let result = finish(inbound, session, ctx, sid);
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

    /// Opens the spool file and writes the trace headers (RFC 5321 4.4).
    fn begin(&self, session: &Session, ctx: &Context) -> Inbound {
        let id = spool::new_queue_id();
        let header = trace_headers(session, ctx, &id, self.reader.get_ref());
        let body_offset = header.find('\n').map_or(0, |n| n as u64 + 1);
        let mut inbound = Inbound { id, file: None, error: None, too_big: false, octets: 0, body_offset };
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

    /// Reads one BDAT chunk of exactly `size` octets (RFC 3030 2).
    fn read_chunk(&mut self, inbound: &mut Inbound, size: u64, last: bool, ctx: &Context) -> io::Result<()> {
        let mut dec = ChunkDecoder::new();
        let mut decoded = Vec::with_capacity(crate::netio::BUF_SIZE + 16);
        let base = inbound.octets;
        let mut left = size;
        while left > 0 {
            if self.reader.buffered().is_empty() && self.reader.fill()? == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed during BDAT"));
            }
            let avail = self.reader.buffered();
            let n = avail.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            decoded.clear();
            dec.feed(&avail[..n], &mut decoded);
            self.reader.consume(n);
            left -= n as u64;
            if left == 0 && last {
                dec.finish(&mut decoded);
            }
            Self::store(inbound, &decoded, base + dec.message_octets(), ctx.config.message_size_limit);
        }
        if !last {
            // A CR at the end of a chunk may pair with an LF opening the next one.
            decoded.clear();
            dec.finish(&mut decoded);
            Self::store(inbound, &decoded, base + dec.message_octets(), ctx.config.message_size_limit);
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
fn trace_headers(session: &Session, ctx: &Context, id: &str, stream: &TcpStream) -> String {
    let (sender, rcpts) = match session.transaction() {
        Some(t) => (t.sender.as_ref().map(|a| a.to_string()).unwrap_or_default(), t.recipients.as_slice()),
        None => (String::new(), &[][..]),
    };
    let ip = stream.peer_addr().map(|a| a.ip().to_string()).unwrap_or_else(|_| "unknown".into());
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

/// Delivers a completely received message: local recipients into their
/// mailboxes (all or none), and whatever cannot be delivered now (other
/// domains, a local failure) into the queue. Only then is it acknowledged.
fn finish(inbound: Inbound, session: &Session, ctx: &Context, sid: &str) -> MessageResult {
    let Inbound { id, file, error, too_big, octets, body_offset } = inbound;
    if too_big {
        log::info!(
            "session={sid} id={id} event=reject reason=size size={octets} limit={}",
            ctx.config.message_size_limit
        );
        return MessageResult::TooBig;
    }
    let Some(tx) = session.transaction() else {
        return MessageResult::Perm("no transaction".into());
    };
    let mut file = match (file, error) {
        (Some(f), None) => f,
        (_, e) => {
            let e = e.map(|e| e.to_string()).unwrap_or_default();
            log::error!("session={sid} id={id} event=spool_error error=\"{e}\"");
            return MessageResult::Temp("Error: local error writing the message; try again later".into());
        }
    };
    if let Err(e) = file.finish() {
        log::error!("session={sid} id={id} event=spool_error error=\"{e}\"");
        return MessageResult::Temp("Error: local error writing the message; try again later".into());
    }
    let sender = tx.sender.as_ref().map(|a| a.to_string()).unwrap_or_default();
    let all: Vec<String> = tx.recipients.iter().map(|r| r.to_string()).collect();
    let mut dests = Vec::new();
    let mut owners = Vec::new();
    let mut remote = false;
    for rcpt in &tx.recipients {
        match ctx.resolver.resolve(rcpt.local(), rcpt.domain()) {
            Resolution::Deliver(ds) => {
                for d in ds {
                    let owner = d.uid.zip(d.gid).map(|(uid, gid)| store::Owner { uid, gid });
                    dests.push(store::Dest { kind: d.kind, path: d.path, owner });
                    owners.push(rcpt.to_string());
                }
            }
            // Only a client allowed to relay got a foreign recipient past RCPT.
            Resolution::NotLocal => remote = true,
            other => {
                let why = match other {
                    Resolution::Temp(m) | Resolution::Perm(m) => m,
                    _ => "recipient no longer exists".into(),
                };
                log::warn!("session={sid} id={id} to=<{rcpt}> event=refused reason=\"{why}\"");
                return MessageResult::Temp(format!(
                    "<{rcpt}>: {why}; nothing was accepted, try again later"
                ));
            }
        }
    }
    let size = file.size();
    let queued = |next_attempt: SystemTime, why: &str| -> MessageResult {
        let env = Envelope {
            id: id.clone(),
            sender: sender.clone(),
            recipients: all
                .iter()
                .map(|a| QueuedRcpt { addr: a.clone(), state: RcptState::Pending })
                .collect(),
            arrival: SystemTime::now(),
            attempts: 0,
            next_attempt,
            body_offset,
            smtputf8: tx.smtputf8,
            eight_bit: tx.eight_bit,
            warned: false,
        };
        match ctx.queue.enqueue(file.path(), &env) {
            Ok(()) => {
                log::info!(
                    "session={sid} id={id} event=queued from=<{sender}> size={size} nrcpt={} reason=\"{why}\"",
                    all.len()
                );
                ctx.waker.wake(Wake::NewMail(id.clone()));
                MessageResult::Stored { queue_id: id.clone() }
            }
            Err(e) => {
                log::error!("session={sid} id={id} event=queue_error error=\"{e}\"");
                MessageResult::Temp("Error: local error queueing the message; try again later".into())
            }
        }
    };
    if remote {
        // Everything goes through the queue; the runner delivers the local part too.
        return queued(SystemTime::now(), "relay");
    }
    let source = match std::fs::File::open(file.path()) {
        Ok(f) => f,
        Err(e) => {
            log::error!("session={sid} id={id} event=spool_error error=\"{e}\"");
            return MessageResult::Temp("Error: local error reading the message; try again later".into());
        }
    };
    let msg = store::Message {
        path: file.path(),
        file: &source,
        sender: &sender,
        arrival: SystemTime::now(),
        size,
    };
    match store::deliver_all(&dests, &msg, &ctx.store) {
        Ok(stored) => {
            log::info!(
                "session={sid} id={id} event=accepted from=<{sender}> size={size} nrcpt={}",
                all.len()
            );
            for (i, path) in stored.iter().enumerate() {
                let to = owners.get(i).map(String::as_str).unwrap_or("");
                log::info!("id={id} to=<{to}> relay=local mailbox={} status=delivered", path.display());
            }
            file.remove();
            MessageResult::Stored { queue_id: id }
        }
        Err((i, e)) => {
            let to = owners.get(i).map(String::as_str).unwrap_or("");
            log::warn!(
                "session={sid} id={id} to=<{to}> event=delivery_failed permanent={} error=\"{}\"",
                e.permanent,
                e.message
            );
            // The details stay in the log; the client learns whom it concerns and what to do.
            if e.permanent && all.len() == 1 {
                return MessageResult::Perm(format!("<{to}>: mailbox unavailable"));
            }
            // Nothing was delivered (all or nothing): the queue retries every recipient.
            queued(SystemTime::now() + ctx.config.queue_min_backoff, "local delivery deferred")
        }
    }
}
