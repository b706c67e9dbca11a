//! The event loop: one mio Poll over every listener, every connection that waits for its client
//! (parked), the mailbox watcher and the workers' returns. It accepts, applies the limits, and hands
//! a connection to the worker pool only when it has something to do: bytes from its client, its
//! timer, a change of the mailbox it waits on in IDLE. A worker gives the connection back when it
//! must wait again ([`Yield::Wait`]); a parked connection holds its session and buffers, no thread.
//!
//! Descriptors are registered while parked and deregistered while on a worker, so only one thread
//! ever touches a connection; registering checks readiness at once (epoll), so bytes that came
//! between the worker's last read and the park are not missed. A mailbox change for a connection
//! that is on a worker is kept and delivered when it parks.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};

use super::drivers::{Connection, Env, Wait, Wake, Watcher, Yield};
use super::pool::{Blocker, Pool};

/// Tokens of the loop's own sources; listeners are 0.., connections CONN_BASE + key.
pub const WAKER: Token = Token(usize::MAX - 2);
pub const NOTIFY: Token = Token(usize::MAX - 3);
const CONN_BASE: usize = 1 << 24;

/// A connection on its way to a worker.
pub struct Job {
    key: usize,
    conn: Box<dyn Connection>,
    wake: Wake,
}

/// A connection back from its worker: parked (with what it waits for) or ended; or a new
/// connection a worker made (the webmail's channel to a user's IMAP session), see [`Spawner`].
enum Back {
    Conn { key: usize, conn: Option<(Box<dyn Connection>, Wait)> },
    New(Box<dyn Connection>),
}

/// Starts connections on the loop from a worker.
#[derive(Clone)]
pub struct Spawner(Arc<Shared>);

impl Spawner {
    /// The loop takes `conn` and starts it on a worker, as it does an accepted connection.
    pub fn spawn(&self, conn: Box<dyn Connection>) {
        let _ = self.0.back.lock().unwrap_or_else(|p| p.into_inner()).send(Back::New(conn));
        let _ = self.0.waker.wake();
    }
}

/// What the workers share with the loop.
struct Shared {
    back: Mutex<Sender<Back>>,
    waker: mio::Waker,
    watcher: Option<Arc<dyn Watcher + Send>>,
    shutting_down: AtomicBool,
    stress: AtomicBool,
}

struct Entry {
    conn: Option<Box<dyn Connection>>,
    /// Descriptors registered while parked.
    fds: [Option<RawFd>; 2],
    /// The connection's one live entry in the timer heap (others there are stale): its time and
    /// number. Kept while the connection runs, so a connection that parks again and again (every
    /// command) adds no entries: a timer that comes early only gives the driver a look.
    timer: Option<(Instant, u64)>,
    /// A mailbox change came while the connection was on a worker.
    notify: bool,
    told_shutdown: bool,
}

pub struct EventLoop {
    pub poll: Poll,
    pool: Pool<Job>,
    shared: Arc<Shared>,
    back: Receiver<Back>,
    entries: Vec<Option<Entry>>,
    free: Vec<usize>,
    timers: BinaryHeap<Reverse<(Instant, usize, u64)>>,
    seq: u64,
}

impl EventLoop {
    /// A loop with `workers` threads at most; `watcher` wakes IDLE sessions on mailbox changes.
    pub fn new(workers: usize, watcher: Option<Arc<dyn Watcher + Send>>) -> io::Result<EventLoop> {
        let poll = Poll::new()?;
        let waker = mio::Waker::new(poll.registry(), WAKER)?;
        let (tx, rx) = channel();
        let shared = Arc::new(Shared {
            back: Mutex::new(tx),
            waker,
            watcher,
            shutting_down: AtomicBool::new(false),
            stress: AtomicBool::new(false),
        });
        let s = Arc::clone(&shared);
        let pool = Pool::new(workers, move |job: Job, blocker: &Arc<Blocker>| {
            let Job { key, mut conn, wake } = job;
            let env = Env {
                key: key as u64,
                watcher: s.watcher.as_deref().map(|w| w as &dyn Watcher),
                shutting_down: s.shutting_down.load(Ordering::Relaxed),
                stress: s.stress.load(Ordering::Relaxed),
                blocker: Some(blocker),
            };
            let back = match conn.resume(wake, &env) {
                Yield::Wait(w) => Back::Conn { key, conn: Some((conn, w)) },
                Yield::Done => {
                    drop(conn); // closes the socket here, not on the loop's thread
                    Back::Conn { key, conn: None }
                }
            };
            let _ = s.back.lock().unwrap_or_else(|p| p.into_inner()).send(back);
            let _ = s.waker.wake();
        });
        Ok(EventLoop {
            poll,
            pool,
            shared,
            back: rx,
            entries: Vec::new(),
            free: Vec::new(),
            timers: BinaryHeap::new(),
            seq: 0,
        })
    }

    /// Connections the loop knows (parked or on a worker).
    pub fn len(&self) -> usize {
        self.entries.len() - self.free.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn spawner(&self) -> Spawner {
        Spawner(Arc::clone(&self.shared))
    }

    pub fn set_stress(&self, on: bool) {
        self.shared.stress.store(on, Ordering::Relaxed);
    }

    /// Takes a new connection and starts it on a worker.
    pub fn start(&mut self, conn: Box<dyn Connection>) {
        let entry = Entry { conn: None, fds: [None; 2], timer: None, notify: false, told_shutdown: false };
        let key = match self.free.pop() {
            Some(k) => {
                self.entries[k] = Some(entry);
                k
            }
            None => {
                self.entries.push(Some(entry));
                self.entries.len() - 1
            }
        };
        self.pool.submit(Job { key, conn, wake: Wake::Start });
    }

    /// How long poll may sleep before the next timer.
    pub fn next_timeout(&self) -> Option<Duration> {
        self.timers.peek().map(|Reverse((t, _, _))| t.saturating_duration_since(Instant::now()))
    }

    /// Handles one readiness event; false when the token is not the loop's.
    pub fn event(&mut self, token: Token) -> bool {
        match token {
            WAKER => self.returns(),
            NOTIFY => {
                if let Some(w) = self.shared.watcher.clone() {
                    for key in notified(&*w) {
                        self.notify(key as usize);
                    }
                }
            }
            Token(t) if (CONN_BASE..NOTIFY.0).contains(&t) => self.unpark(t - CONN_BASE, Wake::Ready),
            _ => return false,
        }
        true
    }

    /// Wakes the connections whose timers have come.
    pub fn timers(&mut self) {
        let now = Instant::now();
        while let Some(Reverse((t, key, seq))) = self.timers.peek().copied() {
            if t > now {
                break;
            }
            self.timers.pop();
            let Some(Some(e)) = self.entries.get_mut(key) else { continue };
            if e.timer.is_some_and(|(_, s)| s == seq) {
                e.timer = None;
                // On a worker now: it parks again with the deadline it still has.
                if e.conn.is_some() {
                    self.unpark(key, Wake::Timer);
                }
            }
        }
    }

    /// Starts the shutdown: every parked connection is told (and says goodbye unless busy).
    pub fn shutdown(&mut self) {
        self.shared.shutting_down.store(true, Ordering::SeqCst);
        for key in 0..self.entries.len() {
            self.tell_shutdown(key);
        }
    }

    fn tell_shutdown(&mut self, key: usize) {
        let Some(Some(e)) = self.entries.get_mut(key) else { return };
        if e.told_shutdown || e.conn.is_none() {
            return;
        }
        e.told_shutdown = true;
        self.unpark(key, Wake::Shutdown);
    }

    fn notify(&mut self, key: usize) {
        let Some(Some(e)) = self.entries.get_mut(key) else { return };
        match e.conn.is_some() {
            true => self.unpark(key, Wake::Notify),
            false => e.notify = true,
        }
    }

    /// Connections coming back from workers.
    fn returns(&mut self) {
        while let Ok(back) = self.back.try_recv() {
            let (key, conn) = match back {
                Back::Conn { key, conn } => (key, conn),
                Back::New(conn) => {
                    self.start(conn);
                    continue;
                }
            };
            match conn {
                None => {
                    if let Some(w) = &self.shared.watcher {
                        w.unwatch(key as u64);
                    }
                    if let Some(slot) = self.entries.get_mut(key)
                        && slot.take().is_some()
                    {
                        self.free.push(key);
                    }
                }
                Some((conn, wait)) => self.park(key, conn, wait),
            }
        }
    }

    fn park(&mut self, key: usize, conn: Box<dyn Connection>, wait: Wait) {
        let token = Token(CONN_BASE + key);
        let mut fds = [None; 2];
        let mut failed = None;
        let interest = match (wait.read, wait.write) {
            (true, true) => Some(Interest::READABLE | Interest::WRITABLE),
            (true, false) => Some(Interest::READABLE),
            (false, true) => Some(Interest::WRITABLE),
            (false, false) => None,
        };
        if let Some(interest) = interest
            && let Some(fd) = conn.fd()
        {
            match self.poll.registry().register(&mut SourceFd(&fd), token, interest) {
                Ok(()) => fds[0] = Some(fd),
                Err(e) => failed = Some(e),
            }
        }
        if let Some((fd, write)) = wait.other {
            let interest = if write { Interest::READABLE | Interest::WRITABLE } else { Interest::READABLE };
            match self.poll.registry().register(&mut SourceFd(&fd), token, interest) {
                Ok(()) => fds[1] = Some(fd),
                Err(e) => failed = Some(e),
            }
        }
        let shutting_down = self.shared.shutting_down.load(Ordering::Relaxed);
        let Some(Some(e)) = self.entries.get_mut(key) else { return };
        e.conn = Some(conn);
        e.fds = fds;
        if let Some(until) = wait.until
            && e.timer.is_none_or(|(t, _)| t > until)
        {
            self.seq += 1;
            e.timer = Some((until, self.seq));
            self.timers.push(Reverse((until, key, self.seq)));
        }
        if let Some(err) = failed {
            // It cannot wait here (a closed descriptor, no room in epoll): close it rather than
            // run it again and again.
            log::warn!("event=park_failed error=\"{err}\"");
            for fd in e.fds.iter_mut().filter_map(Option::take) {
                let _ = self.poll.registry().deregister(&mut SourceFd(&fd));
            }
            drop(e.conn.take());
            self.entries[key] = None;
            self.free.push(key);
            if let Some(w) = &self.shared.watcher {
                w.unwatch(key as u64);
            }
        } else if std::mem::take(&mut e.notify) {
            self.unpark(key, Wake::Notify);
        } else if shutting_down && !e.told_shutdown {
            self.tell_shutdown(key);
        } else if wait.until.is_none() && fds == [None, None] {
            // Nothing could ever wake it.
            self.unpark(key, Wake::Timer);
        }
    }

    /// Takes a parked connection out of the loop and gives it to a worker.
    fn unpark(&mut self, key: usize, wake: Wake) {
        let Some(Some(e)) = self.entries.get_mut(key) else { return };
        let Some(conn) = e.conn.take() else { return };
        for fd in e.fds.iter_mut().filter_map(Option::take) {
            let _ = self.poll.registry().deregister(&mut SourceFd(&fd));
        }
        self.pool.submit(Job { key, conn, wake });
    }
}

/// The keys a watcher reports, if it is the server's inotify watcher.
fn notified(w: &(dyn Watcher + Send)) -> Vec<u64> {
    w.changed()
}

/// Waits for events with `poll`, retrying on EINTR.
pub fn wait(poll: &mut Poll, events: &mut Events, timeout: Option<Duration>) -> io::Result<()> {
    match poll.poll(events, timeout) {
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(()),
        r => r,
    }
}

impl Watcher for super::notify::Notifier {
    fn watch(&self, key: u64, paths: &[std::path::PathBuf]) -> io::Result<()> {
        super::notify::Notifier::watch(self, key, paths)
    }
    fn unwatch(&self, key: u64) {
        super::notify::Notifier::unwatch(self, key)
    }
    fn fd(&self) -> RawFd {
        super::notify::Notifier::fd(self)
    }
    fn changed(&self) -> Vec<u64> {
        self.read_events()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;
    use std::sync::atomic::AtomicUsize;

    /// Echoes what arrives; wakes on its timer once and says so.
    struct Echo {
        sock: UnixStream,
        timer: Option<Instant>,
        running: Arc<AtomicUsize>,
        most: Arc<AtomicUsize>,
    }

    impl Connection for Echo {
        fn resume(&mut self, wake: Wake, _env: &Env) -> Yield {
            let now_running = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.most.fetch_max(now_running, Ordering::SeqCst);
            if wake == Wake::Timer {
                let _ = self.sock.write_all(b"timer\n");
                self.timer = None;
            }
            let mut buf = [0u8; 64];
            let result = match self.sock.read(&mut buf) {
                Ok(0) => Yield::Done,
                Ok(n) => {
                    let _ = self.sock.write_all(&buf[..n]);
                    Yield::Wait(Wait { read: true, until: self.timer, ..Wait::default() })
                }
                Err(_) => Yield::Wait(Wait { read: true, until: self.timer, ..Wait::default() }),
            };
            self.running.fetch_sub(1, Ordering::SeqCst);
            result
        }
        fn fd(&self) -> Option<RawFd> {
            Some(self.sock.as_raw_fd())
        }
    }

    fn spin(lp: &mut EventLoop, events: &mut Events, time: Duration) {
        let end = Instant::now() + time;
        while Instant::now() < end {
            let t = lp.next_timeout().unwrap_or(Duration::MAX).min(Duration::from_millis(5));
            wait(&mut lp.poll, events, Some(t)).unwrap();
            for ev in events.iter() {
                lp.event(ev.token());
            }
            lp.timers();
        }
    }

    #[test]
    fn one_worker_serves_many_parked_connections() {
        let mut lp = EventLoop::new(1, None).unwrap();
        let mut events = Events::with_capacity(64);
        let (running, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let mut clients = Vec::new();
        for i in 0..200 {
            let (a, b) = UnixStream::pair().unwrap();
            a.set_nonblocking(true).unwrap();
            let timer = (i == 7).then(|| Instant::now() + Duration::from_millis(200));
            lp.start(Box::new(Echo { sock: a, timer, running: running.clone(), most: most.clone() }));
            b.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            clients.push(b);
        }
        spin(&mut lp, &mut events, Duration::from_millis(50));
        assert_eq!(lp.len(), 200, "every connection is parked, none has ended");
        for (i, c) in clients.iter_mut().enumerate() {
            c.write_all(format!("{i}\n").as_bytes()).unwrap();
        }
        spin(&mut lp, &mut events, Duration::from_millis(400));
        for (i, c) in clients.iter_mut().enumerate() {
            let mut got = vec![0u8; 64];
            let n = c.read(&mut got).unwrap();
            let text = String::from_utf8_lossy(&got[..n]).to_string();
            assert!(text.contains(&format!("{i}\n")), "client {i} got {text:?}");
            if i == 7 && !text.contains("timer") {
                let n = c.read(&mut got).unwrap();
                assert_eq!(&got[..n], b"timer\n", "the timer woke its connection");
            }
        }
        assert_eq!(most.load(Ordering::SeqCst), 1, "one worker, one connection at a time");
        clients.truncate(100);
        spin(&mut lp, &mut events, Duration::from_millis(100));
        assert_eq!(lp.len(), 100, "closed connections leave the loop");
    }
}
