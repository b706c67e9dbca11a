//! Final delivery of a received message, before the client hears the
//! answer to its final dot: local recipients into their mailboxes (all or
//! none), and what cannot be delivered now (other domains, a local failure)
//! into the durable queue (RFC 5321 6.1: "250" means the message is safe).

use std::time::SystemTime;

use super::conn::{Context, Inbound};
use crate::local::Resolution;
use crate::queue::wake::Wake;
use crate::queue::{Envelope, QueuedRcpt, RcptState};
use crate::smtp::session::{MessageResult, Session};
use crate::store;

/// Delivers a completely received message: local recipients into their
/// mailboxes (all or none), and whatever cannot be delivered now (other
/// domains, a local failure) into the queue. Only then is it acknowledged.
pub(super) fn finish(inbound: Inbound, session: &Session, ctx: &Context, sid: &str) -> MessageResult {
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
