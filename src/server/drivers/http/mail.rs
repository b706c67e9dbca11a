//! The webmail's reach into the mail system, through the same doors as every other client: a
//! user's folders through their own IMAP session (in this process with the owner's identity, or
//! in the user's mail process when this process has dropped root, exactly as an IMAP login would
//! be served), and outgoing mail into the queue as a logged-in submission is (signed with DKIM when
//! the domain has a key, then delivered or relayed by the queue runner).

use std::io::Read;
use std::net::SocketAddr;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::app::Call;
use crate::queue::Envelope;
use crate::queue::wake::Wake;
use crate::server::context::Context;
use crate::server::mailproc::Status;
use crate::spool::Incoming;
use crate::web::imapc::Client;

/// How long the webmail waits for its IMAP session's answer.
pub const IMAP_WAIT: Duration = Duration::from_secs(60);

/// Opens `user`'s IMAP session for the webmail (the password was checked just before).
pub fn open(
    ctx: &Arc<Context>,
    user: &str,
    sid: &str,
    peer: SocketAddr,
    tls: bool,
) -> Result<Client<UnixStream>, String> {
    if let Some(helper) = &ctx.helper
        && !crate::server::privs::is_root()
    {
        let dest = ctx.resolver.mail_home(user)?.inbox;
        // SAFETY: geteuid has no preconditions.
        if dest.uid.is_some_and(|u| u != unsafe { libc::geteuid() }) {
            let (sock, status) = helper.open_session(user, "imap", sid, peer, tls)?;
            if status != Status::Ok {
                return Err("the mail process could not open the mailbox".into());
            }
            sock.set_read_timeout(Some(IMAP_WAIT)).map_err(|e| e.to_string())?;
            return Ok(Client::new(sock));
        }
    }
    let spawner = ctx.web.as_ref().and_then(|w| w.spawner.clone()).ok_or("no event loop for the session")?;
    let (ours, theirs) = UnixStream::pair().map_err(|e| e.to_string())?;
    let imap = super::super::imap::preauth_here(Arc::clone(ctx), theirs, user, peer)?;
    spawner.spawn(Box::new(imap));
    ours.set_read_timeout(Some(IMAP_WAIT)).map_err(|e| e.to_string())?;
    let mut ours = ours;
    skip_greeting(&mut ours)?;
    Ok(Client::new(ours))
}

/// Reads the session's greeting line (an in-process session greets as any IMAP session does).
fn skip_greeting(sock: &mut UnixStream) -> Result<(), String> {
    let mut b = [0u8; 1];
    for _ in 0..1024 {
        match sock.read(&mut b) {
            Ok(0) => return Err("the IMAP session closed".into()),
            Ok(_) if b[0] == b'\n' => return Ok(()),
            Ok(_) => {}
            Err(e) => return Err(format!("the IMAP session did not greet: {e}")),
        }
    }
    Err("the IMAP session's greeting is too long".into())
}

/// Queues a message the webmail composed (CRLF or LF line ends) from `sender` to `recipients`:
/// written to the spool with a Return-Path and a Received field, DKIM-signed when the domain has a
/// key, queued, and the runner woken. Returns the queue id.
pub fn submit(
    call: &Call,
    user: &str,
    sender: &str,
    recipients: &[String],
    message: &[u8],
) -> Result<String, String> {
    let (ctx, sid, client, secure) = (call.ctx.as_ref(), call.sid, call.peer, call.secure);
    let id = crate::spool::new_queue_id();
    let mut incoming = Incoming::create(&ctx.config.data_dir, &id).map_err(|e| format!("spool: {e}"))?;
    let return_path = format!("Return-Path: <{sender}>\n");
    // RFC 5321 4.4: the trace field of this hop.
    let received = format!(
        "Received: from [{}] by {} (buzon webmail) with {}\n\tid {id}; {}\n",
        client.ip(),
        ctx.config.hostname,
        if secure { "HTTPS" } else { "HTTP" },
        crate::timefmt::rfc5322(SystemTime::now())
    );
    let body = lf(message);
    let eight_bit = body.iter().any(|&b| b >= 0x80);
    let write = |inc: &mut Incoming| -> std::io::Result<()> {
        inc.write(return_path.as_bytes())?;
        inc.write(received.as_bytes())?;
        inc.write(&body)?;
        inc.finish()
    };
    write(&mut incoming).map_err(|e| format!("spool: {e}"))?;
    let offset = return_path.len() as u64;
    let signature = crate::server::checks::dkim_signature(&ctx.config, &id, incoming.path(), offset);
    if !signature.is_empty() {
        incoming.splice(offset, signature.as_bytes(), &[]).map_err(|e| format!("spool: {e}"))?;
    }
    let mut env = Envelope::new(&id, sender, recipients, SystemTime::now());
    env.body_offset = offset;
    env.eight_bit = eight_bit;
    env.smtputf8 = !sender.is_ascii() || recipients.iter().any(|r| !r.is_ascii());
    ctx.queue.enqueue(incoming.path(), &env).map_err(|e| format!("queue: {e}"))?;
    log::info!(
        "session={sid} id={id} event=queued from=<{sender}> size={} nrcpt={} user={user} via=webmail",
        body.len(),
        recipients.len()
    );
    ctx.waker.wake(Wake::NewMail(id.clone()));
    incoming.remove();
    Ok(id)
}

/// The spool keeps LF line ends.
fn lf(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len());
    let mut i = 0;
    while i < message.len() {
        if message[i] == b'\r' && message.get(i + 1) == Some(&b'\n') {
            i += 1;
            continue;
        }
        out.push(message[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_ends() {
        assert_eq!(lf(b"a\r\nb\nc\r\n"), b"a\nb\nc\n");
        assert_eq!(lf(b"a\rb"), b"a\rb", "a bare CR stays");
    }
}
