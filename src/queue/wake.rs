//! Waking the queue runner: within the server a Condvar-guarded list of [`Wake`]s; from other
//! processes (`buzon queue flush`) a datagram to the Unix socket queue/wake.sock, which a small
//! reader thread turns into the same list. Datagrams are `new ID`, `flush` or `flush ID` (ASCII);
//! anything else is ignored. The socket lives in the 0700 queue directory, so only the queue's
//! owner (and root) can poke it.

use std::collections::VecDeque;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::valid_id;

const SOCKET: &str = "wake.sock";
/// Beyond this many unread wakes they collapse into one `Flush(None)`.
const MAX_PENDING: usize = 1024;
/// The reader thread also wakes this often to see whether it should stop.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the runner was woken.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Wake {
    /// A message was just queued: try it now.
    NewMail(String),
    /// `buzon queue flush [ID]`: make that entry (None: every entry) due now.
    Flush(Option<String>),
}

impl Wake {
    fn encode(&self) -> String {
        match self {
            Wake::NewMail(id) => format!("new {id}"),
            Wake::Flush(None) => "flush".into(),
            Wake::Flush(Some(id)) => format!("flush {id}"),
        }
    }

    fn decode(b: &[u8]) -> Option<Wake> {
        let s = std::str::from_utf8(b).ok()?;
        match s.split_once(' ') {
            None if s == "flush" => Some(Wake::Flush(None)),
            Some(("flush", id)) if valid_id(id) => Some(Wake::Flush(Some(id.to_string()))),
            Some(("new", id)) if valid_id(id) => Some(Wake::NewMail(id.to_string())),
            _ => None,
        }
    }
}

struct Shared {
    pending: Mutex<VecDeque<Wake>>,
    cond: Condvar,
    stop: AtomicBool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, VecDeque<Wake>> {
        // A panic elsewhere while holding the lock leaves a valid list: keep going.
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn push(&self, w: Wake) {
        let mut q = self.lock();
        if q.len() >= MAX_PENDING {
            q.clear();
            q.push_back(Wake::Flush(None));
        } else if !q.contains(&w) {
            q.push_back(w);
        }
        drop(q);
        self.cond.notify_one();
    }
}

/// The server's end: bound to queue/wake.sock while it lives (the socket file is removed on drop).
pub struct Waker {
    shared: Arc<Shared>,
    path: PathBuf,
    reader: Option<JoinHandle<()>>,
    /// Not bound: wakes go to the runner of a server in another process (inetd mode).
    remote: bool,
}

impl Waker {
    /// Binds queue_dir/wake.sock, removing a stale socket file; AddrInUse if another server is
    /// listening on it.
    pub fn bind(queue_dir: &Path) -> io::Result<Waker> {
        let path = queue_dir.join(SOCKET);
        if path.exists() {
            let probe = UnixDatagram::unbound()?;
            if probe.connect(&path).is_ok() {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!("{}: another server is listening", path.display()),
                ));
            }
            std::fs::remove_file(&path)?;
        }
        let sock = UnixDatagram::bind(&path)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
        sock.set_read_timeout(Some(READ_TIMEOUT))?;
        let shared = Arc::new(Shared {
            pending: Mutex::new(VecDeque::new()),
            cond: Condvar::new(),
            stop: false.into(),
        });
        let s = Arc::clone(&shared);
        let reader = std::thread::Builder::new()
            .name("queue-wake".into())
            .stack_size(64 * 1024)
            .spawn(move || read_loop(&sock, &s));
        let reader = match reader {
            Ok(h) => h,
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                return Err(e);
            }
        };
        Ok(Waker { shared, path, reader: Some(reader), remote: false })
    }

    /// A waker for a process without a runner of its own (a session started by inetd): each wake is
    /// passed to the server listening on queue_dir/wake.sock, if one is.
    pub fn remote(queue_dir: &Path) -> Waker {
        let shared = Arc::new(Shared {
            pending: Mutex::new(VecDeque::new()),
            cond: Condvar::new(),
            stop: true.into(),
        });
        Waker { shared, path: queue_dir.join(SOCKET), reader: None, remote: true }
    }

    /// The next wake, or None after `timeout` without one.
    pub fn wait(&self, timeout: Duration) -> Option<Wake> {
        let deadline = Instant::now() + timeout;
        let mut q = self.shared.lock();
        loop {
            if let Some(w) = q.pop_front() {
                return Some(w);
            }
            let left = deadline.checked_duration_since(Instant::now()).filter(|d| !d.is_zero())?;
            q = match self.shared.cond.wait_timeout(q, left) {
                Ok((g, _)) => g,
                Err(e) => e.into_inner().0,
            };
        }
    }

    /// Wakes the runner from within the process (an SMTP session that just queued a message).
    pub fn wake(&self, w: Wake) {
        if self.remote {
            if let Some(dir) = self.path.parent() {
                let _ = poke(dir, &w);
            }
            return;
        }
        self.shared.push(w);
    }
}

fn read_loop(sock: &UnixDatagram, shared: &Shared) {
    let mut buf = [0u8; 64];
    loop {
        let r = sock.recv(&mut buf);
        if shared.stop.load(Ordering::Acquire) {
            return;
        }
        match r {
            Ok(n) => match Wake::decode(&buf[..n]) {
                Some(w) => shared.push(w),
                None => log::warn!("event=queue_wake error=\"unknown datagram\" bytes={n}"),
            },
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                log::error!("event=queue_wake error=\"{e}\"");
                std::thread::sleep(READ_TIMEOUT);
            }
        }
    }
}

impl Drop for Waker {
    fn drop(&mut self) {
        if self.remote {
            return;
        }
        self.shared.stop.store(true, Ordering::Release);
        // Unblock the reader at once; failing that, its read timeout ends it.
        if let Ok(s) = UnixDatagram::unbound() {
            let _ = s.send_to(b"", &self.path);
        }
        if let Some(h) = self.reader.take() {
            let _ = h.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Wakes the server's runner from another process. Ok(false): no server is listening.
pub fn poke(queue_dir: &Path, w: &Wake) -> io::Result<bool> {
    let s = UnixDatagram::unbound()?;
    // A full socket buffer means wakes are pending already: never block on it.
    s.set_nonblocking(true)?;
    match s.send_to(w.encode().as_bytes(), queue_dir.join(SOCKET)) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(true),
        Err(e) if matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused) => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0123456789ABCDEF";

    #[test]
    fn in_process() {
        let d = tempfile::tempdir().unwrap();
        let w = Waker::bind(d.path()).unwrap();
        assert_eq!(w.wait(Duration::from_millis(20)), None);
        std::thread::scope(|s| {
            s.spawn(|| {
                std::thread::sleep(Duration::from_millis(50));
                w.wake(Wake::NewMail(ID.into()));
            });
            assert_eq!(w.wait(Duration::from_secs(10)), Some(Wake::NewMail(ID.into())));
        });
        w.wake(Wake::Flush(None));
        w.wake(Wake::Flush(None)); // duplicates coalesce
        w.wake(Wake::NewMail(ID.into()));
        assert_eq!(w.wait(Duration::ZERO), Some(Wake::Flush(None)));
        assert_eq!(w.wait(Duration::ZERO), Some(Wake::NewMail(ID.into())));
        assert_eq!(w.wait(Duration::ZERO), None);
        for i in 0..MAX_PENDING + 5 {
            w.wake(Wake::NewMail(format!("{i:016X}")));
        }
        assert!(w.shared.lock().len() <= MAX_PENDING);
    }

    #[test]
    fn across_processes() {
        let d = tempfile::tempdir().unwrap();
        assert!(!poke(d.path(), &Wake::Flush(None)).unwrap(), "nobody listening");
        let w = Waker::bind(d.path()).unwrap();
        assert_eq!(Waker::bind(d.path()).err().map(|e| e.kind()), Some(io::ErrorKind::AddrInUse));
        for wake in [Wake::Flush(Some(ID.into())), Wake::Flush(None), Wake::NewMail(ID.into())] {
            assert!(poke(d.path(), &wake).unwrap());
            assert_eq!(w.wait(Duration::from_secs(10)), Some(wake));
        }
        // Garbage is ignored, not fatal.
        let s = UnixDatagram::unbound().unwrap();
        s.send_to(b"flush ../../x", d.path().join(SOCKET)).unwrap();
        s.send_to(b"\xff\x00", d.path().join(SOCKET)).unwrap();
        assert!(poke(d.path(), &Wake::Flush(None)).unwrap());
        assert_eq!(w.wait(Duration::from_secs(10)), Some(Wake::Flush(None)));
        drop(w);
        assert!(!d.path().join(SOCKET).exists());
        assert!(!poke(d.path(), &Wake::Flush(None)).unwrap());
        // A stale socket file (a crashed server) is replaced.
        drop(UnixDatagram::bind(d.path().join(SOCKET)).unwrap());
        assert!(d.path().join(SOCKET).exists());
        assert!(!poke(d.path(), &Wake::Flush(None)).unwrap());
        let w = Waker::bind(d.path()).unwrap();
        assert!(poke(d.path(), &Wake::NewMail(ID.into())).unwrap());
        assert_eq!(w.wait(Duration::from_secs(10)), Some(Wake::NewMail(ID.into())));
    }

    #[test]
    fn datagrams() {
        for (b, want) in [
            (&b"flush"[..], Some(Wake::Flush(None))),
            (b"flush 0123456789abcdef", Some(Wake::Flush(Some("0123456789abcdef".into())))),
            (b"new 0123456789ABCDEF", Some(Wake::NewMail(ID.into()))),
            (b"new", None),
            (b"new ", None),
            (b"flush ", None),
            (b"flush  0123456789ABCDEF", None),
            (b"FLUSH", None),
            (b"", None),
        ] {
            assert_eq!(Wake::decode(b), want, "{:?}", String::from_utf8_lossy(b));
            if let Some(w) = want {
                assert_eq!(Wake::decode(w.encode().as_bytes()), Some(w));
            }
        }
    }
}
