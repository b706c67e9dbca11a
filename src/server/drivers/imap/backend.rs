//! What an IMAP session reaches of the server during one run on a worker: the shared login
//! machinery, and the user's mail store opened here with the owner's file-system identity, or in
//! the user's mail process when this process cannot take that identity.

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use super::super::NoLogin;
use crate::auth::sasl::{Credentials, Login};
use crate::config::MailboxKind;
use crate::imap::session::{self, Opened};
use crate::local::Resolver;
use crate::server::context::ConnBackend;
use crate::server::mailproc::Status;
use crate::store::folder::Store;
use crate::store::imapdir::{Inbox, MaildirStore};
use crate::store::owner::{AsOwner, Owner, become_owner, spool_group};

/// Whose files the session works on: the owner's identity and the mail spool's group.
pub(super) type Identity = (Option<Owner>, Option<u32>);

/// An opened store, whose it is, and that identity taken for the current run.
pub(super) type OpenedHere = (Box<dyn Store>, Identity, Option<AsOwner>);

/// The IMAP session's view of the server for one run on a worker: the shared login machinery plus
/// the user's mail store.
pub(super) struct Backend<'a> {
    pub(super) conn: ConnBackend<'a>,
    pub(super) peer: SocketAddr,
    pub(super) tls: bool,
    /// The identity taken at login, for the rest of this run (and kept for the next ones).
    pub(super) guard: RefCell<Option<AsOwner>>,
    pub(super) identity: Cell<Option<Identity>>,
    /// The mail process's socket of a login handed over ([`Opened::Elsewhere`]).
    pub(super) handoff: RefCell<Option<UnixStream>>,
}

impl Login for Backend<'_> {
    fn credentials(&self) -> Option<&dyn Credentials> {
        self.conn.credentials()
    }
    fn random(&self, buf: &mut [u8]) {
        self.conn.random(buf)
    }
    fn auth_failed(&self, user: &str) {
        self.conn.auth_failed(user)
    }
    fn auth_succeeded(&self, user: &str, mechanism: &str) {
        self.conn.auth_succeeded(user, mechanism)
    }
    fn auth_blocked(&self) -> bool {
        self.conn.auth_blocked()
    }
}

impl session::Backend for Backend<'_> {
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
                let (sock, status) = helper.open_session(user, "imap", self.conn.sid, self.peer, self.tls)?;
                return match status {
                    Status::Ok => {
                        *self.handoff.borrow_mut() = Some(sock);
                        Ok(Opened::Elsewhere)
                    }
                    _ => Err("the mail process could not open the mailbox".into()),
                };
            }
        }
        let (store, identity, guard) =
            open_here(&ctx.resolver, ctx.config.mbox_lock_timeout, self.conn.sid, user)?;
        *self.guard.borrow_mut() = guard;
        self.identity.set(Some(identity));
        Ok(Opened::Here(store))
    }
}

/// A session in a mail process was logged in before it started.
impl session::Backend for NoLogin {
    fn open_store(&self, _user: &str) -> Result<Opened, String> {
        Err("already logged in".into())
    }
}

/// Opens `user`'s folders here with the owner's file-system identity (taken now, when running as
/// root; the guard holds it for this run).
pub(super) fn open_here(
    resolver: &Resolver,
    lock_timeout: Duration,
    sid: &str,
    user: &str,
) -> Result<OpenedHere, String> {
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
    Ok((Box::new(store), (owner, group), guard))
}
