//! Final delivery of a received message, before the client hears the
//! answer to its final dot: local recipients into their mailboxes and alias
//! files (all or none), and what cannot be delivered now (other domains,
//! addresses aliases forward to, recipients with commands, a local failure)
//! into the durable queue (RFC 5321 6.1: "250" means the message is safe).

use std::time::SystemTime;

use crate::config::MailboxKind;
use crate::local::Resolution;
use crate::queue::wake::Wake;
use crate::queue::{Envelope, QueuedRcpt, RcptState};
use crate::server::checks::{self, Inspected};
use crate::server::context::Context;
use crate::smtp::data::ChunkDecoder;
use crate::smtp::reply::Reply;
use crate::smtp::session::{MessageResult, Session};
use crate::spool::Incoming;
use crate::store;

/// A message being received over one or more BDAT chunks, or one DATA.
pub struct Inbound {
    pub id: String,
    pub file: Option<Incoming>,
    pub error: Option<std::io::Error>,
    pub too_big: bool,
    pub octets: u64,
    /// Length of the Return-Path line, which relaying leaves out.
    pub body_offset: u64,
    /// Length of the trace fields (Return-Path, Received): the message itself starts there.
    pub trace_len: u64,
    /// One decoder for all BDAT chunks of the message: a CR ending one chunk pairs with the LF that
    /// opens the next (RFC 3030 allows a chunk to end anywhere).
    pub chunks: ChunkDecoder,
}

impl Inbound {
    /// Writes decoded message bytes unless the message already failed; `octets` so far.
    pub fn store(&mut self, decoded: &[u8], octets: u64, limit: u64) {
        self.octets = octets;
        if octets > limit {
            self.too_big = true;
        }
        if self.too_big || self.error.is_some() {
            return;
        }
        if let Some(Err(e)) = self.file.as_mut().map(|f| f.write(decoded)) {
            self.error = Some(e);
        }
    }
}

/// Delivers a completely received message: local recipients into their
/// mailboxes (all or none), and whatever cannot be delivered now (other
/// domains, a local failure) into the queue. Only then is it acknowledged.
pub fn finish(inbound: Inbound, session: &Session, ctx: &Context, sid: &str) -> MessageResult {
    let Inbound { id, file, error, too_big, octets, body_offset, trace_len, .. } = inbound;
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
    let peer = session.peer();
    let trusted = session.user().is_some() || peer.relay_allowed;
    let junk = match checks::message(ctx, sid, peer.ip, tx, trusted, file.path(), trace_len) {
        Inspected::Accept { fields, drop, junk } => {
            if !(fields.is_empty() && drop.is_empty())
                && let Err(e) = file.splice(body_offset, fields.as_bytes(), &drop)
            {
                log::error!("session={sid} id={id} event=spool_error error=\"{e}\"");
                return MessageResult::Temp("Error: local error writing the message; try again later".into());
            }
            junk
        }
        Inspected::Refuse(reply) => {
            log::info!(
                "session={sid} id={id} event=reject reason=\"{}\"",
                reply.text_lines().join(" ").replace('"', "'")
            );
            return MessageResult::Refused(reply);
        }
        Inspected::Defer(why) => {
            log::warn!("session={sid} id={id} event=deferred reason=\"{why}\"");
            return MessageResult::Refused(Reply::new(451, "4.7.1", format!("{why}; try again later")));
        }
    };
    let sender = tx.sender.as_ref().map(|a| a.to_string()).unwrap_or_default();
    let all: Vec<String> = tx.recipients.iter().map(|r| r.to_string()).collect();
    let mut dests = Vec::new();
    let mut owners = Vec::new();
    let mut remote = false;
    // What the queue takes over: addresses aliases forward to, and recipients whose expansion runs
    // a command (the runner runs it, with retries; they are queued as themselves).
    let mut to_queue: Vec<String> = Vec::new();
    for rcpt in &tx.recipients {
        match ctx.resolver.resolve(rcpt.local(), rcpt.domain()) {
            Resolution::Deliver(d) if !d.pipes.is_empty() => push_once(&mut to_queue, rcpt.to_string()),
            Resolution::Deliver(d) => {
                for m in d.mailboxes {
                    let owner = m.uid.zip(m.gid).map(|(uid, gid)| store::Owner { uid, gid });
                    // Mail the checks call spam goes to the Maildir++ Junk folder (RFC 6154 \\Junk);
                    // an mbox user gets it in the inbox, marked by its X-Spam header.
                    let path = match (junk, m.kind) {
                        (true, MailboxKind::Maildir) => m.path.join(".Junk"),
                        _ => m.path,
                    };
                    dests.push(store::Dest { kind: m.kind, path, owner, account: Some(m.account) });
                    owners.push(rcpt.to_string());
                }
                for f in d.files {
                    match store::file::dest(&f.path, Some(f.run_as.owner())) {
                        Ok(Some(dest)) => {
                            dests.push(dest);
                            owners.push(rcpt.to_string());
                        }
                        Ok(None) => log::info!(
                            "session={sid} id={id} to=<{rcpt}> relay=local file=/dev/null status=discarded"
                        ),
                        Err(e) => {
                            // Resolved a moment ago, refused now: the queue retries and reports it.
                            log::warn!(
                                "session={sid} id={id} to=<{rcpt}> event=file_refused error=\"{}\"",
                                e.message
                            );
                            push_once(&mut to_queue, rcpt.to_string());
                        }
                    }
                }
                for a in d.forwards {
                    log::info!("session={sid} id={id} to=<{a}> orig_to=<{rcpt}> event=forwarded");
                    push_once(&mut to_queue, a);
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
    let enqueue = |rcpts: &[String], next_attempt: SystemTime| -> std::io::Result<()> {
        let env = Envelope {
            id: id.clone(),
            sender: sender.clone(),
            recipients: rcpts
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
        ctx.queue.enqueue(file.path(), &env)
    };
    let queued = |next_attempt: SystemTime, why: &str| -> MessageResult {
        match enqueue(&all, next_attempt) {
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
    // The queued part is made durable between the two phases: the mailboxes get the message
    // exactly when the rest of it is safe in the queue (RFC 5321 6.1), and the 250 comes after both.
    let queued_part = std::cell::Cell::new(false);
    let queue_part = || -> Result<(), store::StoreError> {
        queued_part.set(true);
        if to_queue.is_empty() {
            return Ok(());
        }
        enqueue(&to_queue, SystemTime::now()).map_err(|e| store::StoreError::temporary(format!("queue: {e}")))
    };
    match store::deliver_all_then(&dests, &msg, &ctx.store, queue_part) {
        Ok(stored) => {
            log::info!(
                "session={sid} id={id} event=accepted from=<{sender}> size={size} nrcpt={}",
                all.len()
            );
            if !to_queue.is_empty() {
                log::info!("session={sid} id={id} event=queued nrcpt={} reason=\"aliases\"", to_queue.len());
                ctx.waker.wake(Wake::NewMail(id.clone()));
            }
            for (i, path) in stored.iter().enumerate() {
                let to = owners.get(i).map(String::as_str).unwrap_or("");
                log::info!("id={id} to=<{to}> relay=local mailbox={} status=delivered", path.display());
            }
            file.remove();
            MessageResult::Stored { queue_id: id }
        }
        Err((i, e)) if i == dests.len() => {
            log::error!("session={sid} id={id} event=queue_error error=\"{}\"", e.message);
            MessageResult::Temp("Error: local error queueing the message; try again later".into())
        }
        Err((i, e)) => {
            let to = owners.get(i).map(String::as_str).unwrap_or("");
            log::warn!(
                "session={sid} id={id} to=<{to}> event=delivery_failed permanent={} error=\"{}\"",
                e.permanent,
                e.message
            );
            if queued_part.get() && !to_queue.is_empty() {
                // A commit failed after the queued part was made durable: the client must retry the
                // local part, and the forwarded copies may then go out twice (never lost).
                return MessageResult::Temp(format!("<{to}>: local delivery failed; try again later"));
            }
            // The details stay in the log; the client learns whom it concerns and what to do.
            if e.permanent && all.len() == 1 {
                return MessageResult::Perm(format!("<{to}>: mailbox unavailable"));
            }
            // Nothing was delivered (all or nothing): the queue retries every recipient.
            queued(SystemTime::now() + ctx.config.queue_min_backoff, "local delivery deferred")
        }
    }
}

/// Adds `a` unless it is there already (addresses compare without case, as the queue's do).
fn push_once(v: &mut Vec<String>, a: String) {
    if !v.iter().any(|x| x.eq_ignore_ascii_case(&a)) {
        v.push(a);
    }
}
