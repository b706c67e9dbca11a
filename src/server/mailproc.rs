//! Mail processes: when the server has dropped root, a system user's IMAP, POP3 and ManageSieve sessions run in a
//! process of that user's own (their groups, gid and uid, their home as working directory), started
//! by the privileged helper's login worker and reused by the user's concurrent sessions, as
//! Dovecot's imap and pop3 processes serve what its login processes authenticated. The server keeps
//! the client's connection and TLS and relays plaintext to the session over a socketpair
//! (relay.rs), so the mail process never sees the network or the keys, and the server never opens a
//! user's files.
//!
//! A session is granted only to a user whose password the helper has just checked: a good check
//! returns a token (random, one use, valid for [`TOKEN_LIFE`]) that the session request must bring
//! back. Root never gets a mail process. A mail process with no session left exits after
//! [`LINGER`]; one that does not take a session in time is killed and replaced.
//!
//! Between the two processes, before the relay starts, the mail process writes one status line on
//! the session socket: `ok` (the store is open; relay), `in-use` (a POP3 maildrop is locked) or
//! `temp` (it could not be opened; the text is in the mail process's log).

use std::collections::HashMap;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Token};

use super::drivers::{self, Connection, Env, Wake, Watcher, Yield};
use super::eventloop::{EventLoop, NOTIFY};
use super::helper::frame;
use super::helper::lane::Lane;
use super::helper::proto::{self, Request, SessionRequest};
use crate::config::{Config, MailboxKind};
use crate::local::{Resolver, ResolverConfig};

/// How long a login's token may wait for its session request.
const TOKEN_LIFE: Duration = Duration::from_secs(60);
/// Tokens kept per user (a client opening many connections at once).
const MAX_TOKENS: usize = 64;
/// How long a mail process with no session waits for another before it exits.
const LINGER: Duration = Duration::from_secs(10);
/// How long the login worker waits for a mail process to take a session.
const TAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the server waits for the mail process's status line (a POP3 mbox lock included).
pub const STATUS_TIMEOUT: Duration = Duration::from_secs(30);

/// What the mail process says about a session before the relay starts.
#[derive(Debug, PartialEq, Eq)]
pub enum Status {
    Ok,
    InUse,
    Temp,
}

impl Status {
    pub fn line(&self) -> &'static [u8] {
        match self {
            Status::Ok => b"ok\n",
            Status::InUse => b"in-use\n",
            Status::Temp => b"temp\n",
        }
    }
}

/// The server reads the status line (one short line, byte by byte so nothing after it is taken).
pub fn read_status(sock: &mut UnixStream) -> Result<Status, String> {
    sock.set_read_timeout(Some(STATUS_TIMEOUT)).map_err(|e| e.to_string())?;
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    while line.len() < 16 {
        match sock.read(&mut b) {
            Ok(0) => return Err("the mail process closed the session".into()),
            Ok(_) if b[0] == b'\n' => {
                let _ = sock.set_read_timeout(None);
                return match &line[..] {
                    b"ok" => Ok(Status::Ok),
                    b"in-use" => Ok(Status::InUse),
                    b"temp" => Ok(Status::Temp),
                    _ => Err("bad status from the mail process".into()),
                };
            }
            Ok(_) => line.push(b[0]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("mail process: {e}")),
        }
    }
    Err("bad status from the mail process".into())
}

/// A random token, 32 hex digits, from the kernel.
fn new_token() -> String {
    let mut b = [0u8; 16];
    crate::server::context::fill_random(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// One user's mail process, as the login worker knows it.
struct Proc {
    pid: libc::pid_t,
    ctl: Lane,
}

/// The login worker's side: tokens of recent logins and the mail processes it started.
#[derive(Default)]
pub struct Sessions {
    tokens: HashMap<String, Vec<(String, Instant)>>,
    procs: HashMap<u32, Proc>,
}

impl Sessions {
    /// A good password check for `user`: the token its session request brings back.
    pub fn grant(&mut self, user: &str) -> String {
        let now = Instant::now();
        self.tokens.retain(|_, v| {
            v.retain(|(_, t)| now.duration_since(*t) < TOKEN_LIFE);
            !v.is_empty()
        });
        let token = new_token();
        let v = self.tokens.entry(user.to_string()).or_default();
        if v.len() >= MAX_TOKENS {
            v.remove(0);
        }
        v.push((token.clone(), now));
        token
    }

    fn take(&mut self, user: &str, token: &str) -> bool {
        let Some(v) = self.tokens.get_mut(user) else { return false };
        let now = Instant::now();
        let found = v.iter().position(|(t, at)| t == token && now.duration_since(*at) < TOKEN_LIFE);
        found.map(|i| v.remove(i)).is_some()
    }

    /// Hands a session to `req.user`'s mail process (started when there is none) and returns the
    /// server's end of the session socket. `channel` is the worker's own channel to the server,
    /// which a new mail process closes.
    pub fn open(
        &mut self,
        req: &SessionRequest,
        config: &Arc<Config>,
        channel: RawFd,
    ) -> Result<OwnedFd, String> {
        if !self.take(&req.user, &req.token) {
            return Err("refused: no login for this session".into());
        }
        let acc = crate::auth::system::getpwnam(&req.user)?.ok_or("refused: no such user")?;
        let (Some(uid), Some(gid)) = (acc.uid, acc.gid) else { return Err("refused: no uid".into()) };
        if uid == 0 {
            return Err("refused: root's mail is not served over IMAP or POP3".into());
        }
        self.reap();
        let body = Request::Session(req.clone()).encode();
        for attempt in 0..2 {
            if !self.procs.contains_key(&uid) {
                let p = self.spawn(&acc.name, uid, gid, acc.home.as_deref(), config, channel)?;
                self.procs.insert(uid, p);
            }
            let (ours, theirs) = UnixStream::pair().map_err(|e| format!("socketpair: {e}"))?;
            let Some(p) = self.procs.get_mut(&uid) else { continue };
            match p.ctl.ask(&body, Some(theirs.as_raw_fd())) {
                Ok((answer, _)) if answer == b"ok" => return Ok(OwnedFd::from(ours)),
                Ok((answer, _)) => return Err(format!("mail process: {}", String::from_utf8_lossy(&answer))),
                Err(e) => {
                    log::warn!("event=mailproc_replaced user={} attempt={attempt} error=\"{e}\"", req.user);
                    if let Some(p) = self.procs.remove(&uid) {
                        // SAFETY: signalling and reaping our own child.
                        unsafe {
                            libc::kill(p.pid, libc::SIGKILL);
                            libc::waitpid(p.pid, std::ptr::null_mut(), 0);
                        }
                    }
                }
            }
        }
        Err("the mail process did not take the session".into())
    }

    /// Forgets the mail processes that have exited.
    fn reap(&mut self) {
        loop {
            // SAFETY: reaping our own children without blocking.
            let pid = unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) };
            if pid <= 0 {
                return;
            }
            self.procs.retain(|_, p| p.pid != pid);
        }
    }

    /// Forks a mail process for the user: it closes what is not its own, takes the user's groups,
    /// gid and uid for good, moves to their home and serves sessions until it has none.
    fn spawn(
        &mut self,
        name: &str,
        uid: u32,
        gid: u32,
        home: Option<&std::path::Path>,
        config: &Arc<Config>,
        channel: RawFd,
    ) -> Result<Proc, String> {
        let mut groups = group_list(name, gid);
        // An mbox INBOX in a mail spool: the spool's group, for the dot-lock (as mail(1) has it).
        if let Ok(r) = Resolver::new(ResolverConfig::from_config(config))
            && let Ok(h) = r.mail_home(name)
            && h.inbox.kind == MailboxKind::Mbox
            && let Some(g) = crate::store::owner::spool_group(&h.inbox.path)
            && !groups.contains(&g)
        {
            groups.push(g);
        }
        let (ours, theirs) = UnixStream::pair().map_err(|e| format!("socketpair: {e}"))?;
        let others: Vec<RawFd> = self.procs.values().filter_map(|p| p.ctl.fd()).collect();
        // SAFETY: the login worker is single-threaded.
        match unsafe { libc::fork() } {
            -1 => Err(format!("fork: {}", io::Error::last_os_error())),
            0 => {
                drop(ours);
                // SAFETY: descriptors this process inherited and must not keep.
                unsafe {
                    libc::close(channel);
                    for fd in others {
                        libc::close(fd);
                    }
                }
                close_listeners();
                let owner = crate::store::Owner { uid, gid };
                if let Err(e) = super::helper::become_for_good(owner, &groups) {
                    log::error!("event=mailproc_failed user={name} error=\"{e}\"");
                    // SAFETY: end the child without the parent's exit handlers.
                    unsafe { libc::_exit(1) }
                }
                if home.is_none_or(|h| std::env::set_current_dir(h).is_err()) {
                    let _ = std::env::set_current_dir("/");
                }
                let e = exec_self(theirs.as_raw_fd(), name);
                log::error!("event=mailproc_failed user={name} error=\"exec: {e}\"");
                // SAFETY: as above.
                unsafe { libc::_exit(1) }
            }
            pid => {
                drop(theirs);
                // The new image learns its configuration first (it reads no file: the server's may
                // be unreadable to the user, and the embedded default has none).
                let text = crate::server::helper::proto::b64(config.render().as_bytes());
                let mut ours = ours;
                if let Err(e) = frame::send(&mut ours, format!("0 config {text}").as_bytes(), None) {
                    // SAFETY: reaping our own child, which cannot be used.
                    unsafe {
                        libc::kill(pid, libc::SIGKILL);
                        libc::waitpid(pid, std::ptr::null_mut(), 0);
                    }
                    return Err(format!("mail process: {e}"));
                }
                let mut ctl = Lane::new(TAKE_TIMEOUT, true);
                ctl.attach(ours);
                Ok(Proc { pid, ctl })
            }
        }
    }
}

/// Replaces the child's image with a fresh `buzon mail-process USER` (so nothing of the helper's
/// memory, such as other users' passwords, stays in a process the user owns), with the control
/// socket on descriptor 3 and standard input and output on /dev/null; standard error too when it
/// is a socket (inetd mode: the client's connection), and then the log goes to syslog. Returns
/// only on failure.
fn exec_self(ctl: RawFd, user: &str) -> io::Error {
    let syslog = crate::server::inetd::stderr_is_socket();
    let (Ok(exe), Ok(arg0), Ok(cmd), Ok(name), Ok(log)) = (
        std::ffi::CString::new("/proc/self/exe"),
        std::ffi::CString::new("buzon"),
        std::ffi::CString::new("mail-process"),
        std::ffi::CString::new(user),
        std::ffi::CString::new(if syslog { "--syslog" } else { "--stderr" }),
    ) else {
        return io::Error::other("a NUL in an argument");
    };
    // SAFETY: plain descriptor calls in a single-threaded child about to exec; every pointer is
    // valid for the call.
    unsafe {
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        if null < 0 {
            return io::Error::last_os_error();
        }
        libc::dup2(null, 0);
        libc::dup2(null, 1);
        if syslog {
            libc::dup2(null, 2);
        }
        if null > 2 && null != ctl {
            libc::close(null);
        }
        // dup2 leaves the copy without close-on-exec; fd 3 itself may have it.
        if ctl != CTL_FD {
            if libc::dup2(ctl, CTL_FD) < 0 {
                return io::Error::last_os_error();
            }
        } else {
            libc::fcntl(CTL_FD, libc::F_SETFD, 0);
        }
        let argv = [arg0.as_ptr(), cmd.as_ptr(), name.as_ptr(), log.as_ptr(), std::ptr::null()];
        libc::execv(exe.as_ptr(), argv.as_ptr());
    }
    io::Error::last_os_error()
}

/// The descriptor a mail process finds its control socket on.
const CTL_FD: RawFd = 3;

/// `buzon mail-process USER --syslog|--stderr`: the image [`exec_self`] starts. Refuses to run as
/// root or without its control socket; reads its configuration from it, then serves sessions.
pub fn exec_main(args: &[String], init_logging: impl FnOnce(&Config, bool)) -> Result<(), String> {
    let [user, log] = args else { return Err("usage: buzon mail-process USER --syslog|--stderr".into()) };
    // SAFETY: geteuid and getuid have no preconditions.
    if unsafe { libc::geteuid() == 0 || libc::getuid() == 0 } {
        return Err("a mail process never runs as root".into());
    }
    // SAFETY: fstat with valid output space.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(CTL_FD, &mut st) } != 0 || st.st_mode & libc::S_IFMT != libc::S_IFSOCK {
        return Err("it is started by the privileged helper, with its socket on descriptor 3".into());
    }
    // SAFETY: descriptor 3 is this process's control socket (checked above), taken once.
    let mut ctl = unsafe { <UnixStream as std::os::fd::FromRawFd>::from_raw_fd(CTL_FD) };
    let _ = ctl.set_read_timeout(Some(TAKE_TIMEOUT));
    let text = match frame::recv(&mut ctl) {
        Ok(Some((payload, _))) => payload
            .strip_prefix(b"0 config ")
            .and_then(|t| std::str::from_utf8(t).ok())
            .and_then(|t| crate::server::helper::proto::unb64(t, proto::MAX_FRAME).ok())
            .ok_or("no configuration from the helper")?,
        _ => return Err("no configuration from the helper".into()),
    };
    let _ = ctl.set_read_timeout(None);
    let text = String::from_utf8(text).map_err(|_| "configuration is not UTF-8")?;
    let config = Arc::new(Config::parse(&text, "<helper>").map_err(|e| e.to_string())?);
    init_logging(&config, log == "--syslog" || config.log_syslog);
    // SAFETY: getuid has no preconditions.
    let uid = unsafe { libc::getuid() };
    log::info!("event=mailproc_started user={user} uid={uid} pid={}", std::process::id());
    run(ctl, user, &config);
    Ok(())
}

/// The user's groups from the group database (initgroups(3)'s list), the primary one first.
fn group_list(name: &str, gid: u32) -> Vec<u32> {
    let Ok(c) = std::ffi::CString::new(name) else { return vec![gid] };
    let mut n: libc::c_int = 64;
    loop {
        let mut buf = vec![0 as libc::gid_t; n as usize];
        // SAFETY: buf holds n entries; n is updated with the count needed.
        let r = unsafe { libc::getgrouplist(c.as_ptr(), gid, buf.as_mut_ptr(), &mut n) };
        if r >= 0 {
            buf.truncate(n as usize);
            let mut out = vec![gid];
            out.extend(buf.into_iter().filter(|&g| g != gid));
            return out;
        }
        if n as usize <= buf.len() || n > 65536 {
            return vec![gid];
        }
    }
}

/// Closes the listening sockets the process inherited from the server (it must never hold a port).
fn close_listeners() {
    for fd in 3..1024 {
        let mut v: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: getsockopt on any descriptor number only reads; a non-socket fails with ENOTSOCK.
        let r = unsafe {
            libc::getsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_ACCEPTCONN,
                (&mut v as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        if r == 0 && v != 0 {
            // SAFETY: a listener this process does not use.
            unsafe { libc::close(fd) };
        }
    }
}

/// How often the mail process looks at its linger time when nothing happens.
const TICK: Duration = Duration::from_secs(1);
/// The login worker's socket in the mail process's event loop.
const CTL: Token = Token(usize::MAX - 8);

/// The mail process's loop: takes sessions over `ctl` and runs them in an event loop of its own,
/// as the server does (a session that waits for its client holds no thread; IDLE is woken by
/// inotify); exits when the login worker is gone and no session is left, or after [`LINGER`]
/// without a session.
fn run(mut ctl: UnixStream, user: &str, config: &Arc<Config>) {
    let resolver = match Resolver::new(ResolverConfig::from_config(config)) {
        Ok(r) => Arc::new(r),
        Err(e) => {
            log::error!("event=mailproc_failed user={user} error=\"{e}\"");
            return;
        }
    };
    let watcher: Option<Arc<dyn Watcher + Send>> =
        super::notify::Notifier::new().ok().map(|n| Arc::new(n) as Arc<dyn Watcher + Send>);
    let mut lp = match EventLoop::new(config.workers().min(4), watcher.clone()) {
        Ok(lp) => lp,
        Err(e) => {
            log::error!("event=mailproc_failed user={user} error=\"event loop: {e}\"");
            return;
        }
    };
    let registered = lp.poll.registry().register(&mut SourceFd(&ctl.as_raw_fd()), CTL, Interest::READABLE);
    let watched = watcher
        .as_ref()
        .map(|w| lp.poll.registry().register(&mut SourceFd(&w.fd()), NOTIFY, Interest::READABLE));
    if let Err(e) = registered.and(watched.unwrap_or(Ok(()))) {
        log::error!("event=mailproc_failed user={user} error=\"event loop: {e}\"");
        return;
    }
    let mut events = Events::with_capacity(64);
    let mut idle_since = Instant::now();
    // Requests that came before the loop was ready.
    let mut ctl_open = take_sessions(&mut ctl, user, config, &resolver, &mut lp);
    loop {
        if !lp.is_empty() {
            idle_since = Instant::now();
        } else if !ctl_open || idle_since.elapsed() >= LINGER {
            log::info!("event=mailproc_exit user={user}");
            return;
        }
        let timeout = lp.next_timeout().map_or(TICK, |t| t.min(TICK));
        if super::eventloop::wait(&mut lp.poll, &mut events, Some(timeout)).is_err() {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        }
        for ev in events.iter() {
            match ev.token() {
                CTL if ctl_open => ctl_open = take_sessions(&mut ctl, user, config, &resolver, &mut lp),
                CTL => {}
                t => {
                    lp.event(t);
                }
            }
        }
        lp.timers();
    }
}

/// Takes the session requests waiting on `ctl`; false when the login worker is gone.
fn take_sessions(
    ctl: &mut UnixStream,
    user: &str,
    config: &Arc<Config>,
    resolver: &Arc<Resolver>,
    lp: &mut EventLoop,
) -> bool {
    loop {
        match crate::netio::wait_readable(ctl.as_raw_fd(), Duration::ZERO) {
            Ok(true) => {}
            Ok(false) => return true,
            Err(_) => return false,
        }
        let (payload, fd) = match frame::recv(ctl) {
            Ok(Some(x)) => x,
            _ => return false,
        };
        let Ok((id, body)) = proto::untag(&payload) else { continue };
        let answer = match (Request::decode(body), fd) {
            (Ok(Request::Session(req)), Some(fd)) if req.user == user => {
                lp.start(Box::new(Arriving {
                    setup: Some((req, fd)),
                    config: Arc::clone(config),
                    resolver: Arc::clone(resolver),
                    conn: None,
                }));
                "ok"
            }
            _ => "refused: not a session of this user",
        };
        if frame::send(ctl, proto::tag(id, answer).as_bytes(), None).is_err() {
            return false;
        }
    }
}

/// A session just handed over: its first run (on a worker) opens the store and sends the status
/// line; from then on it is its protocol's driver.
struct Arriving {
    setup: Option<(SessionRequest, OwnedFd)>,
    config: Arc<Config>,
    resolver: Arc<Resolver>,
    conn: Option<Box<dyn Connection>>,
}

impl Connection for Arriving {
    fn resume(&mut self, wake: Wake, env: &Env) -> Yield {
        if let Some((req, fd)) = self.setup.take() {
            let sock = UnixStream::from(fd);
            let h = Handed { config: &self.config, resolver: &self.resolver, req: &req };
            self.conn = match req.service.as_str() {
                "imap" => drivers::imap::handed(sock, &h).map(|c| Box::new(c) as Box<dyn Connection>),
                "sieve" => drivers::managesieve::handed(sock, &h).map(|c| Box::new(c) as Box<dyn Connection>),
                _ => drivers::pop3::handed(sock, &h).map(|c| Box::new(c) as Box<dyn Connection>),
            };
        }
        match &mut self.conn {
            Some(c) => c.resume(wake, env),
            None => Yield::Done,
        }
    }

    fn fd(&self) -> Option<RawFd> {
        self.conn.as_ref().and_then(|c| c.fd())
    }
}

/// What a session handed to a mail process starts from.
pub struct Handed<'a> {
    pub config: &'a Arc<Config>,
    pub resolver: &'a Arc<Resolver>,
    pub req: &'a SessionRequest,
}

impl Handed<'_> {
    /// The client's address as the server saw it (for the session's log lines and limits).
    pub fn peer(&self) -> std::net::SocketAddr {
        self.req.peer.parse().unwrap_or_else(|_| std::net::SocketAddr::from(([0, 0, 0, 0], 0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_opens_one_session_of_its_user() {
        let mut s = Sessions::default();
        let t = s.grant("alice");
        assert_eq!(t.len(), 32);
        assert!(!s.take("bob", &t), "another user's token");
        assert!(s.take("alice", &t));
        assert!(!s.take("alice", &t), "one use only");
        let t1 = s.grant("alice");
        let t2 = s.grant("alice");
        assert_ne!(t1, t2);
        assert!(s.take("alice", &t2) && s.take("alice", &t1));
    }

    #[test]
    fn status_lines() {
        for st in [Status::Ok, Status::InUse, Status::Temp] {
            let (mut a, mut b) = UnixStream::pair().unwrap();
            std::io::Write::write_all(&mut a, st.line()).unwrap();
            std::io::Write::write_all(&mut a, b"* rest").unwrap();
            assert_eq!(read_status(&mut b).unwrap(), st);
            let mut rest = [0u8; 6];
            b.read_exact(&mut rest).unwrap();
            assert_eq!(&rest, b"* rest", "nothing after the status line is taken");
        }
        let (mut a, mut b) = UnixStream::pair().unwrap();
        std::io::Write::write_all(&mut a, b"whatever is this\n").unwrap();
        assert!(read_status(&mut b).is_err());
    }
}
