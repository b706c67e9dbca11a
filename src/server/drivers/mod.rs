//! Connection drivers: one per protocol (smtp.rs, pop3.rs, imap.rs, managesieve.rs, http.rs), each carrying a connection's
//! bytes to its I/O-free session and the session's replies back. A driver runs on a worker only
//! while its connection has something to do; when it must wait for the client (the next command,
//! the rest of a line, the next piece of a message, a TLS record, the end of an IDLE) it returns
//! [`Yield::Wait`] and the event loop (server/eventloop.rs) keeps the connection, its session and
//! its buffers, holding no thread, until the client's bytes, a timer or a mailbox change wake it.
//! The same drivers run to their end on one thread with [`run_here`] where there is no loop
//! (inetd mode, a mail process's sessions).

pub mod deliver;
pub mod http;
pub mod imap;
pub mod io;
pub mod managesieve;
pub mod pop3;
pub mod relay;
pub mod smtp;

use std::os::fd::RawFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Why a connection is being resumed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wake {
    /// Just accepted.
    Start,
    /// The client (or the other descriptor) is ready.
    Ready,
    /// The deadline it asked for has come.
    Timer,
    /// A mailbox it watches has changed.
    Notify,
    /// The server is stopping: say goodbye unless in the middle of something.
    Shutdown,
}

/// What a parked connection waits for; whichever comes first wakes it.
#[derive(Clone, Copy, Debug, Default)]
pub struct Wait {
    /// The client's descriptor becoming readable.
    pub read: bool,
    /// The client's descriptor becoming writable (a client that stopped reading a long answer).
    pub write: bool,
    /// Another descriptor (a mail process's socket while relaying): readable, and writable when asked.
    pub other: Option<(RawFd, bool)>,
    /// A time to be woken with [`Wake::Timer`].
    pub until: Option<Instant>,
}

/// What a driver gives back to whoever runs it.
#[derive(Debug)]
pub enum Yield {
    Wait(Wait),
    /// The connection has ended; dropping the driver closes it.
    Done,
}

/// Mailbox-change notifications (inotify) a waiting IMAP IDLE asks for.
pub trait Watcher: Sync {
    /// Wake `key`'s connection with [`Wake::Notify`] when something in `paths` changes.
    fn watch(&self, key: u64, paths: &[PathBuf]) -> std::io::Result<()>;
    fn unwatch(&self, key: u64);
    /// The event loop's side: the descriptor that becomes readable on a change, and the keys
    /// whose paths changed since the last call.
    fn fd(&self) -> RawFd;
    fn changed(&self) -> Vec<u64>;
}

/// What the runner tells a driver along with the wake-up.
pub struct Env<'a> {
    /// The connection's key for [`Watcher`].
    pub key: u64,
    pub watcher: Option<&'a dyn Watcher>,
    pub shutting_down: bool,
    /// Connections fill most of `max_connections`: idle timeouts shrink (`stress_timeout`).
    pub stress: bool,
    /// The worker's pool, told when the connection waits for its client to read (io.rs).
    pub blocker: Option<&'a std::sync::Arc<crate::server::pool::Blocker>>,
}

impl Env<'_> {
    /// A runner with no loop behind it.
    pub fn alone() -> Env<'static> {
        Env { key: 0, watcher: None, shutting_down: false, stress: false, blocker: None }
    }
}

/// The login machinery of a session in a mail process: it was logged in before it started, so
/// there is nothing to check and every login is refused.
pub struct NoLogin;

impl crate::auth::sasl::Login for NoLogin {
    fn credentials(&self) -> Option<&dyn crate::auth::sasl::Credentials> {
        None
    }
    fn random(&self, buf: &mut [u8]) {
        crate::server::context::fill_random(buf)
    }
    fn auth_failed(&self, _user: &str) {}
    fn auth_blocked(&self) -> bool {
        true
    }
}

/// A connection a runner can resume.
pub trait Connection: Send {
    fn resume(&mut self, wake: Wake, env: &Env) -> Yield;
    /// The client's descriptor (None once it is gone).
    fn fd(&self) -> Option<RawFd>;
}

/// What a driver's run came to, as a [`Yield`]: park (buffers released), or the end (replies
/// flushed, the disconnect logged with the user when there is one).
pub fn yielded(
    io: &mut io::Io,
    result: std::io::Result<Option<Wait>>,
    sid: &str,
    peer: std::net::SocketAddr,
    user: Option<&str>,
) -> Yield {
    if let Ok(Some(wait)) = result {
        io.shrink();
        return Yield::Wait(wait);
    }
    let _ = io.flush();
    let user = user.map(|u| format!(" user={u}")).unwrap_or_default();
    match result {
        Err(e) => log::info!("session={sid} event=disconnect client={peer}{user} error=\"{e}\""),
        _ => log::info!("session={sid} event=disconnect client={peer}{user}"),
    }
    Yield::Done
}

/// What one step of a connection's TLS handshake came to.
pub enum Handshake {
    /// Complete: what the session is told (protocol and cipher, channel bindings).
    Done(Option<(String, Vec<crate::auth::sasl::ChannelBinding>)>),
    /// Waiting for the client's next records.
    Wait(Wait),
    /// Failed or out of time (logged): close.
    Failed,
}

/// Advances the TLS handshake (implicit TLS, or after STARTTLS) begun at `began`, which must be
/// over within `limit` (so a client trickling its records cannot hold the connection).
pub fn handshake(io: &mut io::Io, began: Instant, limit: Duration, sid: &str) -> Handshake {
    match io.handshake() {
        Ok(true) => Handshake::Done(crate::netio::tls_details(&io.stream, sid)),
        Ok(false) => {
            let deadline = began + limit;
            if Instant::now() >= deadline {
                log::info!("session={sid} event=tls_failed error=\"TLS handshake timed out\"");
                return Handshake::Failed;
            }
            Handshake::Wait(Wait { read: true, until: Some(deadline), ..Wait::default() })
        }
        Err(e) => {
            log::info!("session={sid} event=tls_failed error=\"{e}\"");
            Handshake::Failed
        }
    }
}

/// Runs `conn` to its end on this thread, waiting with poll(2) where the event loop would park it.
pub fn run_here(conn: &mut dyn Connection) {
    let env = Env::alone();
    let mut wake = Wake::Start;
    loop {
        let wait = match conn.resume(wake, &env) {
            Yield::Done => return,
            Yield::Wait(w) => w,
        };
        let mut fds = Vec::with_capacity(2);
        if let (true, Some(fd)) = (wait.read || wait.write, conn.fd()) {
            let events =
                if wait.read { libc::POLLIN } else { 0 } | if wait.write { libc::POLLOUT } else { 0 };
            fds.push(libc::pollfd { fd, events, revents: 0 });
        }
        if let Some((fd, write)) = wait.other {
            let events = libc::POLLIN | if write { libc::POLLOUT } else { 0 };
            fds.push(libc::pollfd { fd, events, revents: 0 });
        }
        let ms = match wait.until {
            Some(t) => t.saturating_duration_since(Instant::now()).as_millis().min(i32::MAX as u128) as i32,
            None if fds.is_empty() => return,
            None => -1,
        };
        // SAFETY: fds is a valid array of fds.len() pollfds for the duration of the call.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
        wake = match n {
            0 => Wake::Timer,
            n if n > 0 => Wake::Ready,
            _ if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted => Wake::Ready,
            _ => {
                std::thread::sleep(Duration::from_millis(10));
                Wake::Ready
            }
        };
    }
}
