//! The privileged helper. When the server starts as root and drops to `user`, a small child forked
//! before the drop (while no thread exists) stays root and does two things only, asked over a
//! socketpair in the strict format of [`proto`]: check a system user's password against
//! /etc/shadow, and deliver a message to system users' mailboxes. For a delivery it finds each
//! account's mailbox itself (the user database and the `mailbox` template; never a path from the
//! server), reads the message only through the descriptor the server passes (so it cannot be made
//! to read another file), and forks a child per message that writes each mailbox with its owner's
//! identity (store/owner.rs), all or nothing, and is killed at a deadline. The helper is a master
//! that only forks: one worker for password checks and one for deliveries, each on its own
//! channel ([`lane`]), so a slow delivery never holds up a login. Every request carries an id
//! that its answer echoes; a channel that times out or fails is closed and its worker replaced.
//! Each exits when the server closes its end.

pub mod frame;
pub(super) mod lane;
pub mod proto;

use lane::Lane;

use super::mailproc;
use std::collections::HashMap;

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use proto::{Request, Response};

use crate::config::{Config, MailboxKind};
use crate::local::{Resolver, ResolverConfig};
use crate::store::{self, Dest, StoreError, StoreOptions};

/// How long the server waits for a password check before it gives up on that worker.
const LOGIN_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a delivery child may run beyond the mbox lock timeout before it is killed.
const DELIVERY_GRACE: Duration = Duration::from_secs(120);
/// The master only forks: it answers at once.
const MASTER_TIMEOUT: Duration = Duration::from_secs(10);

/// The helper's two kinds of work, each on its own worker and channel, so a slow delivery never
/// holds up a login.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Login = 0,
    Delivery = 1,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Login => "login",
            Kind::Delivery => "delivery",
        }
    }
}

/// The server's ends of the helper's channels: one to the master, which forks a worker for each
/// kind of work on request (and kills the one it replaces), and one to each worker.
pub struct PasswordHelper {
    master: Mutex<Lane>,
    lanes: [Mutex<Lane>; 2],
    /// Tokens of recent good password checks, per user: each opens one mail session.
    tokens: Mutex<HashMap<String, Vec<String>>>,
}

/// The helper by what it does now.
pub type Helper = PasswordHelper;

impl PasswordHelper {
    /// Forks the helper's master. Must be called while the process is still root and has no
    /// other thread.
    pub fn spawn(config: &Arc<Config>) -> Result<PasswordHelper, String> {
        let (ours, theirs) = UnixStream::pair().map_err(|e| format!("helper: socketpair: {e}"))?;
        // SAFETY: no thread exists yet (see the module comment), so the child is a full copy of a
        // single-threaded process and may run ordinary Rust code.
        match unsafe { libc::fork() } {
            -1 => Err(format!("helper: fork: {}", io::Error::last_os_error())),
            0 => {
                drop(ours);
                master(theirs, config);
                // SAFETY: leave the child without running the parent's exit handlers.
                unsafe { libc::_exit(0) }
            }
            pid => {
                drop(theirs);
                log::info!("event=helper_started pid={pid}");
                let mut master = Lane::new(MASTER_TIMEOUT, false);
                master.attach(ours);
                let delivery = config.mbox_lock_timeout + DELIVERY_GRACE + Duration::from_secs(10);
                Ok(PasswordHelper {
                    master: Mutex::new(master),
                    lanes: [
                        Mutex::new(Lane::new(LOGIN_TIMEOUT, true)),
                        Mutex::new(Lane::new(delivery, true)),
                    ],
                    tokens: Mutex::new(HashMap::new()),
                })
            }
        }
    }

    fn ask(&self, kind: Kind, req: &Request, fd: Option<&File>) -> Result<Response, String> {
        self.ask_fd(kind, req, fd).map(|(r, _)| r)
    }

    fn ask_fd(
        &self,
        kind: Kind,
        req: &Request,
        fd: Option<&File>,
    ) -> Result<(Response, Option<OwnedFd>), String> {
        let mut lane = self.lanes[kind as usize].lock().unwrap_or_else(|p| p.into_inner());
        if !lane.is_open() {
            lane.attach(self.open(kind)?);
        }
        let (payload, fd) = lane.ask(&req.encode(), fd.map(|f| f.as_raw_fd()))?;
        Ok((Response::decode(&payload).map_err(|e| format!("helper: {e}"))?, fd))
    }

    /// Asks the master for a (new) worker of `kind`.
    fn open(&self, kind: Kind) -> Result<UnixStream, String> {
        let mut master = self.master.lock().unwrap_or_else(|p| p.into_inner());
        match master.ask(&format!("open {}", kind.name()), None)? {
            (ok, Some(fd)) if ok == b"ok" => {
                log::info!("event=helper_worker_started kind={}", kind.name());
                Ok(UnixStream::from(fd))
            }
            (answer, _) => {
                Err(format!("helper: no {} worker: {}", kind.name(), String::from_utf8_lossy(&answer)))
            }
        }
    }

    /// Ok(true) when `password` is the system user `user`'s.
    pub fn verify(&self, user: &str, password: &[u8]) -> Result<bool, String> {
        if user.len() > proto::MAX_NAME || password.len() > proto::MAX_PASSWORD {
            return Ok(false);
        }
        match self.ask(
            Kind::Login,
            &Request::Verify { user: user.into(), password: password.to_vec() },
            None,
        )? {
            Response::Yes(token) => {
                let mut t = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
                let v = t.entry(user.to_string()).or_default();
                if v.len() >= 64 {
                    v.remove(0);
                }
                v.push(token);
                Ok(true)
            }
            Response::No => Ok(false),
            Response::Error(e) => Err(format!("helper: {e}")),
            other => Err(format!("helper: unexpected answer {other:?}")),
        }
    }

    /// Opens a session of `user` (who has just logged in) in their mail process: the server's end
    /// of the session socket, after the mail process's status line (mailproc.rs).
    pub fn open_session(
        &self,
        user: &str,
        service: &str,
        sid: &str,
        peer: std::net::SocketAddr,
        tls: bool,
    ) -> Result<(UnixStream, mailproc::Status), String> {
        let token = {
            let mut t = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
            let token = t.get_mut(user).and_then(|v| v.pop());
            if t.get(user).is_some_and(|v| v.is_empty()) {
                t.remove(user);
            }
            token.ok_or("no recent login of this user")?
        };
        let req = proto::SessionRequest {
            user: user.into(),
            token,
            service: service.into(),
            sid: sid.into(),
            peer: peer.to_string(),
            tls,
        };
        match self.ask_fd(Kind::Login, &Request::Session(req), None)? {
            (Response::Ok(_), Some(fd)) => {
                let mut sock = UnixStream::from(fd);
                let status = mailproc::read_status(&mut sock)?;
                Ok((sock, status))
            }
            (Response::Error(e), _) => Err(format!("helper: {e}")),
            (other, _) => Err(format!("helper: unexpected answer {other:?}")),
        }
    }

    /// A system user's ~/.forward, read by the helper with the owner's identity: its content, or
    /// why it is not used.
    pub fn read_forward(&self, user: &str) -> Result<Vec<u8>, crate::aliases::ListFileError> {
        use crate::aliases::ListFileError;
        match self.ask(Kind::Login, &Request::Forward { user: user.into() }, None) {
            Ok(Response::Data(d)) => Ok(d),
            Ok(Response::No) => Err(ListFileError::Missing),
            Ok(Response::Fail { permanent: true, text, .. }) => Err(ListFileError::Unsafe(text)),
            Ok(Response::Fail { text, .. }) | Ok(Response::Error(text)) | Err(text) => {
                Err(ListFileError::Io(text))
            }
            Ok(other) => Err(ListFileError::Io(format!("helper: unexpected answer {other:?}"))),
        }
    }
}

impl store::Privileged for PasswordHelper {
    /// Delivers the message in `file` to the mailboxes of `accounts` (as the user database names
    /// them: `alice`), all or nothing, as store::deliver_all does. Err carries the failing index.
    fn deliver(
        &self,
        sender: &str,
        arrival: SystemTime,
        accounts: &[String],
        file: &File,
    ) -> Result<Vec<PathBuf>, (usize, StoreError)> {
        let arrival = arrival.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let req = Request::Deliver { sender: sender.into(), arrival, accounts: accounts.to_vec() };
        match self.ask(Kind::Delivery, &req, Some(file)) {
            Ok(Response::Ok(paths)) if paths.len() == accounts.len() => {
                Ok(paths.into_iter().map(PathBuf::from).collect())
            }
            Ok(Response::Fail { index, permanent, text }) => {
                Err((index.min(accounts.len().saturating_sub(1)), StoreError { message: text, permanent }))
            }
            Ok(Response::Error(e)) | Err(e) => Err((0, StoreError { message: e, permanent: false })),
            Ok(other) => Err((
                0,
                StoreError { message: format!("helper: unexpected answer {other:?}"), permanent: false },
            )),
        }
    }
}

/// The master's loop: on each `open <kind>` it kills that kind's previous worker (a channel the
/// server gave up on), forks a new one and passes the server its end of the new socketpair.
fn master(mut sock: UnixStream, config: &Arc<Config>) {
    let mut workers: [Option<libc::pid_t>; 2] = [None, None];
    loop {
        reap(&mut workers);
        let (payload, _) = match frame::recv(&mut sock) {
            Ok(Some(x)) => x,
            _ => return,
        };
        let Ok((id, body)) = proto::untag(&payload) else { continue };
        let kind = match body {
            b"open login" => Kind::Login,
            b"open delivery" => Kind::Delivery,
            _ => {
                let _ = frame::send(&mut sock, proto::tag(id, "refused").as_bytes(), None);
                continue;
            }
        };
        if let Some(pid) = workers[kind as usize].take() {
            // SAFETY: signalling and reaping our own child.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, std::ptr::null_mut(), 0);
            }
        }
        let (ours, theirs) = match UnixStream::pair() {
            Ok(p) => p,
            Err(e) => {
                let _ = frame::send(&mut sock, proto::tag(id, &format!("socketpair: {e}")).as_bytes(), None);
                continue;
            }
        };
        // SAFETY: the master is single-threaded.
        match unsafe { libc::fork() } {
            -1 => {
                let e = io::Error::last_os_error();
                let _ = frame::send(&mut sock, proto::tag(id, &format!("fork: {e}")).as_bytes(), None);
            }
            0 => {
                drop(sock);
                drop(ours);
                serve(theirs, config);
                // SAFETY: leave the worker without running exit handlers.
                unsafe { libc::_exit(0) }
            }
            pid => {
                drop(theirs);
                workers[kind as usize] = Some(pid);
                if frame::send(&mut sock, proto::tag(id, "ok").as_bytes(), Some(ours.as_raw_fd())).is_err() {
                    return;
                }
            }
        }
    }
}

/// Reaps the workers that have exited (their channel was closed).
fn reap(workers: &mut [Option<libc::pid_t>; 2]) {
    loop {
        // SAFETY: reaping our own children without blocking.
        let pid = unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) };
        if pid <= 0 {
            return;
        }
        for w in workers.iter_mut() {
            if *w == Some(pid) {
                *w = None;
            }
        }
    }
}

/// A worker's loop: one request, one answer with the request's id, until the server closes its end.
fn serve(mut sock: UnixStream, config: &Arc<Config>) {
    let resolver = Resolver::new(ResolverConfig::from_config(config));
    let opts = StoreOptions { lock_timeout: config.mbox_lock_timeout, privileged: None };
    let deadline = config.mbox_lock_timeout + DELIVERY_GRACE;
    let mut sessions = mailproc::Sessions::default();
    loop {
        let (payload, fd) = match frame::recv(&mut sock) {
            Ok(Some(x)) => x,
            _ => return,
        };
        let (id, body) = match proto::untag(&payload) {
            Ok(x) => x,
            Err(e) => {
                let refused = Response::Error(format!("refused: {e}")).encode();
                if frame::send(&mut sock, proto::tag(0, &refused).as_bytes(), None).is_err() {
                    return;
                }
                continue;
            }
        };
        let mut session_fd = None;
        let answer = match Request::decode(body) {
            Err(e) => Response::Error(format!("refused: {e}")),
            Ok(Request::Verify { user, password }) => {
                match crate::auth::shadow::verify_system(&user, &password) {
                    Ok(true) => Response::Yes(sessions.grant(&user)),
                    Ok(false) => Response::No,
                    Err(_) => Response::Error("cannot read the shadow file".into()),
                }
            }
            Ok(Request::Deliver { sender, arrival, accounts }) => match (&resolver, fd) {
                (Err(e), _) => Response::Error(format!("user database: {e}")),
                (_, None) => Response::Error("refused: no message descriptor".into()),
                (Ok(r), Some(fd)) => {
                    in_child(deadline, || deliver(r, &opts, &sender, arrival, &accounts, fd))
                }
            },
            Ok(Request::Session(req)) => match sessions.open(&req, config, sock.as_raw_fd()) {
                Ok(fd) => {
                    session_fd = Some(fd);
                    Response::Ok(Vec::new())
                }
                Err(e) => Response::Error(e),
            },
            Ok(Request::Forward { user }) => read_forward(&user),
        };
        let fd = session_fd.as_ref().map(|f| f.as_raw_fd());
        if frame::send(&mut sock, proto::tag(id, &answer.encode()).as_bytes(), fd).is_err() {
            return;
        }
    }
}

/// Reads `user`'s ~/.forward with the owner's file-system identity (store/owner.rs), with the same
/// checks as every list file (aliases::read_list_bytes): the server, no longer root, cannot.
fn read_forward(user: &str) -> Response {
    use crate::aliases::ListFileError;
    let acc = match crate::auth::system::getpwnam(user) {
        Ok(Some(a)) => a,
        Ok(None) => return Response::No,
        Err(e) => return Response::Error(e),
    };
    let (Some(home), Some(uid), Some(gid)) = (&acc.home, acc.uid, acc.gid) else { return Response::No };
    let _as = match store::owner::become_owner(Some(store::Owner { uid, gid }), None) {
        Ok(g) => g,
        Err(e) => return Response::Error(e),
    };
    match crate::aliases::read_list_bytes(&home.join(".forward"), &[uid, 0], true) {
        Ok((bytes, _)) if bytes.len() <= proto::MAX_DATA => Response::Data(bytes),
        Ok(_) => Response::Fail { index: 0, permanent: true, text: format!("~{user}/.forward: too large") },
        Err(ListFileError::Missing) => Response::No,
        Err(ListFileError::Unsafe(m) | ListFileError::Syntax(m)) => {
            Response::Fail { index: 0, permanent: true, text: m }
        }
        Err(ListFileError::Io(m)) => Response::Fail { index: 0, permanent: false, text: m },
    }
}

/// Runs `work` in a child process, so that nothing a delivery does (a crash, a hung lock) can take
/// the helper down; its answer comes back over a pipe.
fn in_child(deadline: Duration, work: impl FnOnce() -> Response) -> Response {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Response::Error(format!("pipe: {}", io::Error::last_os_error()));
    }
    // SAFETY: the descriptors were just created and are owned here.
    let (mut rd, mut wr) =
        unsafe { (File::from(OwnedFd::from_raw_fd(fds[0])), File::from(OwnedFd::from_raw_fd(fds[1]))) };
    // SAFETY: the helper is single-threaded.
    match unsafe { libc::fork() } {
        -1 => Response::Error(format!("fork: {}", io::Error::last_os_error())),
        0 => {
            drop(rd);
            // SAFETY: the child dies with its worker, and at its deadline (SIGALRM's default
            // action ends it; the worker then reads end of file and answers a temporary failure).
            unsafe {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                libc::alarm(u32::try_from(deadline.as_secs().max(1)).unwrap_or(u32::MAX));
            }
            let answer = work();
            let _ = wr.write_all(answer.encode().as_bytes());
            // SAFETY: end the child without the parent's exit handlers.
            unsafe { libc::_exit(0) }
        }
        pid => {
            drop(wr);
            let mut out = Vec::new();
            let _ = (&mut rd).take(proto::MAX_FRAME as u64).read_to_end(&mut out);
            let mut status = 0;
            // SAFETY: waiting for our own child.
            unsafe { libc::waitpid(pid, &mut status, 0) };
            Response::decode(&out).unwrap_or_else(|_| Response::Error("the delivery process failed".into()))
        }
    }
}

/// The owner of every destination, when they all have the same one and it is not root.
fn single_owner(dests: &[Dest]) -> Option<store::Owner> {
    let first = dests.first()?.owner?;
    (first.uid != 0
        && dests.iter().all(|d| d.owner.is_some_and(|o| o.uid == first.uid && o.gid == first.gid)))
    .then_some(first)
}

/// setgroups, setgid, setuid, in that order, then checks that root cannot be had back.
pub(super) fn become_for_good(o: store::Owner, groups: &[u32]) -> Result<(), String> {
    let groups: Vec<libc::gid_t> = groups.iter().map(|&g| g as libc::gid_t).collect();
    // SAFETY: plain credential calls in a single-threaded child; the slice outlives the call.
    unsafe {
        if libc::setgroups(groups.len(), groups.as_ptr()) != 0 {
            return Err(format!("setgroups: {}", io::Error::last_os_error()));
        }
        if libc::setgid(o.gid) != 0 {
            return Err(format!("setgid({}): {}", o.gid, io::Error::last_os_error()));
        }
        if libc::setuid(o.uid) != 0 {
            return Err(format!("setuid({}): {}", o.uid, io::Error::last_os_error()));
        }
        if libc::setuid(0) == 0 {
            return Err("root could be had back after setuid".into());
        }
    }
    Ok(())
}

/// Finds each account's mailbox and delivers the message read from `fd` into all of them.
fn deliver(
    resolver: &Resolver,
    opts: &StoreOptions,
    sender: &str,
    arrival: u64,
    accounts: &[String],
    fd: OwnedFd,
) -> Response {
    let mut dests = Vec::with_capacity(accounts.len());
    for (i, account) in accounts.iter().enumerate() {
        match resolver.mail_home(account) {
            Ok(home) => {
                let d = home.inbox;
                let owner = d.uid.zip(d.gid).map(|(uid, gid)| store::Owner { uid, gid });
                dests.push(Dest { kind: d.kind, path: d.path, owner, account: None });
            }
            Err(e) => return Response::Fail { index: i, permanent: false, text: e },
        }
    }
    // One owner (the usual case): the child becomes that user for good (groups, gid, uid) before
    // it writes anything. Several owners: it stays root and writes each mailbox with the owner's
    // file-system identity (store/owner.rs), so the message still goes to all of them or none.
    if let Some(o) = single_owner(&dests) {
        let mut groups = vec![o.gid];
        groups.extend(
            dests
                .iter()
                .filter(|d| d.kind == MailboxKind::Mbox)
                .filter_map(|d| store::owner::spool_group(&d.path)),
        );
        if let Err(e) = become_for_good(o, &groups) {
            return Response::Fail { index: 0, permanent: false, text: e };
        }
    }
    let file = File::from(fd);
    let size = match file.metadata() {
        Ok(m) if m.is_file() => m.len(),
        _ => return Response::Error("refused: the descriptor is not a regular file".into()),
    };
    // The message is read through the descriptor only; the path lets Maildir delivery try a hard
    // link, which fails across this magic link and falls back to copying.
    let path = PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()));
    let msg = store::Message {
        path: &path,
        file: &file,
        sender,
        arrival: UNIX_EPOCH + Duration::from_secs(arrival),
        size,
    };
    match store::deliver_all(&dests, &msg, opts) {
        Ok(paths) => Response::Ok(paths.iter().map(|p| p.display().to_string()).collect()),
        Err((index, e)) => Response::Fail { index, permanent: e.permanent, text: e.message },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(sock: &mut UnixStream, payload: &[u8], fd: Option<&File>) -> Response {
        let mut tagged = b"42 ".to_vec();
        tagged.extend_from_slice(payload);
        frame::send(sock, &tagged, fd.map(|f| f.as_raw_fd())).unwrap();
        let (answer, _) = frame::recv(sock).unwrap().unwrap();
        let (id, body) = proto::untag(&answer).unwrap();
        assert_eq!(id, 42, "the answer echoes the request's id");
        Response::decode(body).unwrap()
    }

    #[test]
    fn the_helper_refuses_malformed_requests_and_stays() {
        let config = Arc::new(Config::parse("smtp.listen = 127.0.0.1:2525\n", "t").unwrap());
        let (mut ours, theirs) = UnixStream::pair().unwrap();
        let server = std::thread::spawn(move || serve(theirs, &config));
        let refused = |r: Response| matches!(r, Response::Error(ref t) if t.starts_with("refused"));
        assert!(refused(ask(&mut ours, b"rm -rf /", None)));
        assert!(refused(ask(&mut ours, b"deliver", None)));
        frame::send(&mut ours, b"verify without an id", None).unwrap();
        let (answer, _) = frame::recv(&mut ours).unwrap().unwrap();
        assert!(answer.starts_with(b"0 error "), "{:?}", String::from_utf8_lossy(&answer));
        let no_fd = Request::Deliver { sender: String::new(), arrival: 0, accounts: vec!["root".into()] };
        assert!(
            refused(ask(&mut ours, no_fd.encode().as_bytes(), None)),
            "a delivery needs the message descriptor"
        );
        // (A delivery forks, which a multi-threaded test must not do: tests/test_privsep.py runs it.)
        let r = ask(
            &mut ours,
            Request::Verify { user: "no-such-user-x".into(), password: b"x".to_vec() }.encode().as_bytes(),
            None,
        );
        assert!(matches!(r, Response::No | Response::Error(_)), "{r:?}");
        drop(ours);
        server.join().unwrap();
    }
}
