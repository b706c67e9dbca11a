//! The pickup: a server thread that moves what `buzon sendmail` left in `data_dir/maildrop/` into
//! the queue (as Postfix's pickup(8) does). It scans the directory at start, every
//! [`SCAN_INTERVAL`], and whenever a datagram arrives on `data_dir/pickup.sock`.
//!
//! For each complete file (temp files are named `tmp.*`): open without following links, check it is
//! a regular file with one link, take its owner as the submitting user, compose the message
//! (sendmail/compose.rs: Received, missing Date/From/Message-ID, -t, Bcc removed, bare names in the
//! origin domain), write it to the incoming spool, [`Queue::enqueue`] it, wake the runner (which
//! delivers local and remote recipients alike), then remove the maildrop file. A file that can
//! never be queued (malformed, no recipients, too big, not a regular file) is moved to
//! `data_dir/corrupt/` with one log line: never deleted, never retried. A temporary failure (disk
//! full, queue error) leaves it where it is and the scan pauses for [`RETRY_PAUSE`].
//!
//! A crash between the enqueue and the removal delivers that message twice; nothing is ever lost.

use std::collections::HashSet;
use std::ffi::{CStr, OsString};
use std::fs::{self, OpenOptions};
use std::io::{self, BufReader, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use crate::config::Config;
use crate::queue::wake::{Wake, Waker};
use crate::queue::{Envelope, Queue};
use crate::sendmail::compose::{self, ComposeError, Submitter};
use crate::sendmail::{maildrop_dir, origin_domain, pickup_socket};
use crate::spool::{self, Incoming};
use crate::timefmt;

/// How often the directory is scanned without a wake-up.
pub const SCAN_INTERVAL: Duration = Duration::from_secs(2);
/// The pause after a temporary failure.
pub const RETRY_PAUSE: Duration = Duration::from_secs(30);
/// Temp files older than this are the remains of a killed `sendmail`: removed.
const STALE_TEMP: Duration = Duration::from_secs(24 * 3600);
/// Most names taken from one directory listing (the rest wait for the next scan).
const MAX_SCAN: usize = 10_000;
const STACK_SIZE: usize = 256 * 1024;

/// The directory for files that could not be picked up.
pub fn corrupt_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("corrupt")
}

fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() }
}

/// Creates `maildrop/` (mode 1733: sticky, anyone may create files, only its owner lists them) and
/// `corrupt/` (0700), and makes `data_dir` searchable (`o+x`, not readable) so that other users reach
/// the maildrop; everything else the server keeps there is 0700 or 0600. Run after the privilege
/// drop, so the maildrop belongs to the server's user; refuses one owned by someone else.
pub fn prepare(data_dir: &Path) -> Result<(), String> {
    let me = euid();
    let err = |p: &Path, e: io::Error| format!("{}: {e}", p.display());
    let meta = fs::metadata(data_dir).map_err(|e| err(data_dir, e))?;
    let mode = meta.mode() & 0o7777;
    if mode & 0o001 == 0 {
        if meta.uid() == me {
            fs::set_permissions(data_dir, fs::Permissions::from_mode(mode | 0o011))
                .map_err(|e| err(data_dir, e))?;
            log::info!(
                "event=maildrop_setup data_dir={} mode={:o} reason=\"other users must reach maildrop/\"",
                data_dir.display(),
                mode | 0o011
            );
        } else {
            log::warn!(
                "event=maildrop_setup data_dir={} warning=\"not searchable by others: only its owner can use sendmail\"",
                data_dir.display()
            );
        }
    }
    let md = maildrop_dir(data_dir);
    match fs::symlink_metadata(&md) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::DirBuilder::new().mode(0o700).create(&md).map_err(|e| err(&md, e))?;
        }
        Err(e) => return Err(err(&md, e)),
        Ok(m) if !m.file_type().is_dir() => return Err(format!("{}: not a directory", md.display())),
        Ok(m) if m.uid() != me => {
            return Err(format!(
                "{}: owned by uid {}, not by the server's uid {me}: chown it to the server's user",
                md.display(),
                m.uid()
            ));
        }
        Ok(_) => {}
    }
    fs::set_permissions(&md, fs::Permissions::from_mode(0o1733)).map_err(|e| err(&md, e))?;
    let corrupt = corrupt_dir(data_dir);
    fs::DirBuilder::new().mode(0o700).recursive(true).create(&corrupt).map_err(|e| err(&corrupt, e))?;
    // data_dir is now searchable: say so if something in it is open to other users.
    if let Ok(entries) = fs::read_dir(data_dir) {
        for e in entries.flatten() {
            let name = e.file_name();
            if name == "maildrop" || name == "pickup.sock" {
                continue;
            }
            if let Ok(m) = e.path().symlink_metadata()
                && m.mode() & 0o005 != 0
                && !m.file_type().is_symlink()
            {
                log::warn!(
                    "event=maildrop_setup path={} mode={:o} warning=\"readable by other users, and data_dir is searchable\"",
                    e.path().display(),
                    m.mode() & 0o7777
                );
            }
        }
    }
    Ok(())
}

/// The running pickup thread; dropping it stops the thread (after the file in hand) and removes
/// the socket.
pub struct Pickup {
    stop: Arc<AtomicBool>,
    socket: PathBuf,
    thread: Option<JoinHandle<()>>,
}

impl Pickup {
    /// Prepares the directories, binds `pickup.sock` (mode 0666: any local user may ask for a scan;
    /// the content of a datagram is ignored) and starts the thread.
    pub fn start(config: Arc<Config>, queue: Arc<Queue>, waker: Arc<Waker>) -> Result<Pickup, String> {
        prepare(&config.data_dir)?;
        let socket = pickup_socket(&config.data_dir);
        // The queue's wake socket was bound first, so no other server runs on this data_dir.
        match fs::remove_file(&socket) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                return Err(format!("{}: {e}", socket.display()));
            }
            _ => {}
        }
        let sock = UnixDatagram::bind(&socket).map_err(|e| format!("{}: {e}", socket.display()))?;
        fs::set_permissions(&socket, fs::Permissions::from_mode(0o666))
            .map_err(|e| format!("{}: {e}", socket.display()))?;
        let stop = Arc::new(AtomicBool::new(false));
        let mut worker = Worker {
            maildrop: maildrop_dir(&config.data_dir),
            corrupt: corrupt_dir(&config.data_dir),
            config,
            queue,
            waker,
            stuck: HashSet::new(),
            stop: Arc::clone(&stop),
        };
        let thread = std::thread::Builder::new()
            .name("pickup".into())
            .stack_size(STACK_SIZE)
            .spawn(move || worker.run(&sock))
            .map_err(|e| format!("pickup thread: {e}"))?;
        Ok(Pickup { stop, socket, thread: Some(thread) })
    }
}

impl Drop for Pickup {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Ok(s) = UnixDatagram::unbound() {
            let _ = s.send_to(b"stop", &self.socket);
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = fs::remove_file(&self.socket);
    }
}

/// Why one file was not picked up.
#[derive(Debug)]
enum Fault {
    /// Gone meanwhile (another scan, the user): nothing to do.
    Gone,
    /// Never acceptable: set aside.
    Malformed(String),
    /// Try again later.
    Temp(String),
}

struct Worker {
    config: Arc<Config>,
    queue: Arc<Queue>,
    waker: Arc<Waker>,
    maildrop: PathBuf,
    corrupt: PathBuf,
    /// Names that could be neither queued nor set aside (a directory a user made): not retried.
    stuck: HashSet<OsString>,
    stop: Arc<AtomicBool>,
}

struct Spool<'a>(&'a mut Incoming);

impl Write for Spool<'_> {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.0.write(b).map(|()| b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Worker {
    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    fn run(&mut self, sock: &UnixDatagram) {
        let mut buf = [0u8; 64];
        while !self.stopping() {
            let pause = match self.scan() {
                Ok(()) => None,
                Err(e) => {
                    log::error!("event=pickup_deferred error=\"{e}\" retry_in={}s", RETRY_PAUSE.as_secs());
                    Some(RETRY_PAUSE)
                }
            };
            // Wait for a datagram or the interval; during a pause only the stop request counts.
            let deadline = Instant::now() + pause.unwrap_or(SCAN_INTERVAL);
            while let Some(left) = deadline.checked_duration_since(Instant::now()).filter(|d| !d.is_zero()) {
                if self.stopping() {
                    return;
                }
                let _ = sock.set_read_timeout(Some(left));
                match sock.recv(&mut buf) {
                    Ok(_) if pause.is_none() => {
                        // Many wake-ups make one scan.
                        let _ = sock.set_nonblocking(true);
                        while sock.recv(&mut buf).is_ok() {}
                        let _ = sock.set_nonblocking(false);
                        break;
                    }
                    Ok(_) => {}
                    Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {}
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        log::error!("event=pickup_socket error=\"{e}\"");
                        std::thread::sleep(SCAN_INTERVAL);
                    }
                }
            }
        }
    }

    /// Picks up every complete file, oldest name first. Err: a temporary failure stopped the scan.
    fn scan(&mut self) -> Result<(), String> {
        let dir = fs::read_dir(&self.maildrop).map_err(|e| format!("{}: {e}", self.maildrop.display()))?;
        let mut names: Vec<OsString> =
            dir.filter_map(Result::ok).map(|e| e.file_name()).take(MAX_SCAN).collect();
        names.sort();
        if self.stuck.len() > MAX_SCAN {
            self.stuck.clear();
        }
        for name in names {
            if self.stopping() {
                break;
            }
            if name.to_string_lossy().starts_with("tmp.") {
                self.remove_if_stale(&name);
                continue;
            }
            if self.stuck.contains(&name) {
                continue;
            }
            match self.pick_up(&name) {
                Ok(()) | Err(Fault::Gone) => {}
                Err(Fault::Malformed(why)) => self.set_aside(&name, &why),
                Err(Fault::Temp(why)) => return Err(format!("{}: {why}", name.to_string_lossy())),
            }
        }
        Ok(())
    }

    fn remove_if_stale(&self, name: &OsString) {
        let path = self.maildrop.join(name);
        let Ok(m) = path.symlink_metadata() else { return };
        let old = m.modified().ok().and_then(|t| t.elapsed().ok()).is_some_and(|age| age > STALE_TEMP);
        if old && m.file_type().is_file() && fs::remove_file(&path).is_ok() {
            log::info!("event=pickup_stale_temp file={:?} uid={} action=removed", name, m.uid());
        }
    }

    /// Moves a file that can never be queued to corrupt/, with one log line.
    fn set_aside(&mut self, name: &OsString, why: &str) {
        let from = self.maildrop.join(name);
        let uid = from.symlink_metadata().map(|m| m.uid()).ok();
        let safe: String = name
            .to_string_lossy()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '_' })
            .collect();
        let mut to = self.corrupt.join(format!("maildrop.{safe}"));
        for n in 1..100 {
            if to.symlink_metadata().is_err() {
                break;
            }
            to = self.corrupt.join(format!("maildrop.{safe}.{n}"));
        }
        let uid = uid.map(|u| u.to_string()).unwrap_or_else(|| "-".into());
        match fs::rename(&from, &to) {
            Ok(()) => log::warn!(
                "event=maildrop_corrupt file={name:?} uid={uid} reason=\"{why}\" moved_to={}",
                to.display()
            ),
            Err(e) => {
                log::error!(
                    "event=maildrop_corrupt file={name:?} uid={uid} reason=\"{why}\" error=\"cannot move it aside: {e}\" action=ignored"
                );
                self.stuck.insert(name.clone());
            }
        }
    }

    /// One file into the queue.
    fn pick_up(&mut self, name: &OsString) -> Result<(), Fault> {
        let path = self.maildrop.join(name);
        // O_NOFOLLOW: a symbolic link is refused (ELOOP); O_NONBLOCK: a FIFO does not hang us.
        let file = match OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(&path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(Fault::Gone),
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
                return Err(Fault::Malformed("a symbolic link".into()));
            }
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                return Err(Fault::Malformed(format!("unreadable by the server: {e}")));
            }
            Err(e) => return Err(Fault::Temp(e.to_string())),
        };
        let meta = file.metadata().map_err(|e| Fault::Temp(e.to_string()))?;
        if !meta.file_type().is_file() {
            return Err(Fault::Malformed("not a regular file".into()));
        }
        if meta.nlink() != 1 {
            return Err(Fault::Malformed(format!("{} hard links (want 1)", meta.nlink())));
        }
        let submitter = submitter(meta.uid());
        let submitted = meta.modified().unwrap_or_else(|_| SystemTime::now());
        let id = spool::new_queue_id();
        let mut incoming =
            Incoming::create(&self.config.data_dir, &id).map_err(|e| Fault::Temp(format!("spool: {e}")))?;
        let domain = origin_domain(&self.config);
        let (submitted_text, now) = (timefmt::rfc5322(submitted), timefmt::rfc5322(SystemTime::now()));
        let cx = compose::Context {
            hostname: &self.config.hostname,
            domain: &domain,
            id: &id,
            submitted: &submitted_text,
            now: &now,
            submitter: &submitter,
            size_limit: self.config.message_size_limit,
        };
        let mut reader = BufReader::with_capacity(64 * 1024, file);
        let composed = match compose::compose(&mut reader, &mut Spool(&mut incoming), &cx) {
            Ok(c) => c,
            Err(ComposeError::Malformed(m)) => return Err(Fault::Malformed(m)),
            Err(ComposeError::Io(e)) => return Err(Fault::Temp(e.to_string())),
        };
        incoming.finish().map_err(|e| Fault::Temp(format!("spool: {e}")))?;
        // Local mail leaving for the world is signed like a logged-in user's.
        let signature =
            crate::server::checks::dkim_signature(&self.config, &id, incoming.path(), composed.body_offset);
        if !signature.is_empty() {
            incoming
                .splice(composed.body_offset, signature.as_bytes(), &[])
                .map_err(|e| Fault::Temp(format!("spool: {e}")))?;
        }
        let mut env = Envelope::new(&id, &composed.sender, &composed.recipients, SystemTime::now());
        env.body_offset = composed.body_offset;
        env.smtputf8 = composed.smtputf8;
        env.eight_bit = composed.eight_bit;
        self.queue.enqueue(incoming.path(), &env).map_err(|e| Fault::Temp(format!("queue: {e}")))?;
        log::info!(
            "id={id} event=pickup uid={} user={} from=<{}> nrcpt={} size={} added=\"{}\" maildrop={}",
            submitter.uid,
            submitter.login,
            composed.sender,
            composed.recipients.len(),
            composed.size,
            composed.added.join(","),
            name.to_string_lossy()
        );
        self.waker.wake(Wake::NewMail(id.clone()));
        incoming.remove();
        match fs::remove_file(&path) {
            Ok(()) => {
                let _ = crate::durable::fsync_dir(&self.maildrop);
            }
            Err(e) => {
                // Queued already: never pick it up again in this run.
                log::error!("id={id} event=pickup_remove_failed file={name:?} error=\"{e}\"");
                self.stuck.insert(name.clone());
            }
        }
        Ok(())
    }
}

/// The submitting user from the passwd database (getpwuid_r).
fn submitter(uid: u32) -> Submitter {
    match getpwuid(uid) {
        Some((login, gecos)) => {
            let full_name = compose::gecos_name(&gecos, &login);
            Submitter { uid, login, full_name }
        }
        None => Submitter { uid, login: format!("uid{uid}"), full_name: None },
    }
}

/// (login, gecos) of `uid`, None when it has no entry or the database fails.
fn getpwuid(uid: u32) -> Option<(String, String)> {
    let mut size = 1024usize;
    loop {
        let mut buf: Vec<libc::c_char> = vec![0; size];
        // SAFETY: an all-zero passwd is a valid value; it is read only after getpwuid_r filled it.
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the call; buf.len() is the real buffer size.
        let rc = unsafe { libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut result) };
        match rc {
            0 if result.is_null() => return None,
            0 => {
                // SAFETY: on success the strings point into `buf` (or are null), NUL-terminated.
                let s = |p: *const libc::c_char| {
                    (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
                };
                let login = s(pwd.pw_name).filter(|n| !n.is_empty())?;
                return Some((login, s(pwd.pw_gecos).unwrap_or_default()));
            }
            libc::ERANGE if size < (1 << 20) => size *= 2,
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sendmail::maildrop::{Submission, render};

    // Fields drop in order: the worker (and its wake socket) before the directory.
    struct Setup {
        worker: Worker,
        data: PathBuf,
        _dir: tempfile::TempDir,
    }

    fn setup() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        fs::create_dir(&data).unwrap();
        fs::set_permissions(&data, fs::Permissions::from_mode(0o700)).unwrap();
        spool::prepare(&data).unwrap();
        prepare(&data).unwrap();
        let mut config = Config::embedded();
        config.data_dir = data.clone();
        config.hostname = "mx.example.test".into();
        config.local_domains = vec!["example.test".into()];
        config.message_size_limit = 10_000;
        let queue = Arc::new(Queue::open(&data).unwrap());
        let waker = Arc::new(Waker::bind(queue.dir()).unwrap());
        let worker = Worker {
            maildrop: maildrop_dir(&data),
            corrupt: corrupt_dir(&data),
            config: Arc::new(config),
            queue,
            waker,
            stuck: HashSet::new(),
            stop: Arc::new(AtomicBool::new(false)),
        };
        Setup { worker, data, _dir: dir }
    }

    fn drop_file(s: &Setup, name: &str, text: &str) {
        fs::write(maildrop_dir(&s.data).join(name), text).unwrap();
    }

    #[test]
    fn directories() {
        let s = setup();
        let md = fs::metadata(maildrop_dir(&s.data)).unwrap();
        assert_eq!(md.mode() & 0o7777, 0o1733);
        assert_eq!(fs::metadata(&s.data).unwrap().mode() & 0o7777, 0o711);
        assert_eq!(fs::metadata(corrupt_dir(&s.data)).unwrap().mode() & 0o7777, 0o700);
        prepare(&s.data).unwrap(); // again: no change, no error
        fs::remove_dir(maildrop_dir(&s.data)).unwrap();
        fs::write(maildrop_dir(&s.data), "x").unwrap();
        assert!(prepare(&s.data).unwrap_err().contains("not a directory"));
    }

    #[test]
    fn queues_good_files_and_sets_aside_bad_ones() {
        let mut s = setup();
        let good =
            Submission { recipients: vec!["bob".into(), "carol@remote.test".into()], ..Default::default() };
        drop_file(&s, "0001.good", &format!("{}Subject: hi\n\nbody\n", render(&good)));
        drop_file(&s, "0002.bad", "not a maildrop file\n");
        let none = Submission { extract: true, ..Default::default() };
        drop_file(&s, "0003.norcpt", &format!("{}Subject: hi\n\nbody\n", render(&none)));
        drop_file(&s, "0004.big", &format!("{}{}", render(&good), "x".repeat(20_000)));
        drop_file(&s, "tmp.inprogress", "half");
        std::os::unix::fs::symlink("/etc/passwd", maildrop_dir(&s.data).join("0005.link")).unwrap();
        fs::create_dir(maildrop_dir(&s.data).join("0006.dir")).unwrap();
        s.worker.scan().unwrap();
        let left: Vec<String> = fs::read_dir(maildrop_dir(&s.data))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(left, ["tmp.inprogress"], "temp files stay; everything else is gone");
        let mut corrupt: Vec<String> = fs::read_dir(corrupt_dir(&s.data))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        corrupt.sort();
        assert_eq!(
            corrupt,
            [
                "maildrop.0002.bad",
                "maildrop.0003.norcpt",
                "maildrop.0004.big",
                "maildrop.0005.link",
                "maildrop.0006.dir"
            ]
        );
        let queued = s.worker.queue.list().unwrap();
        assert_eq!(queued.len(), 1);
        let env = &queued[0];
        let rcpts: Vec<&str> = env.recipients.iter().map(|r| r.addr.as_str()).collect();
        assert_eq!(rcpts, ["bob@example.test", "carol@remote.test"]);
        let (login, _) = getpwuid(euid()).unwrap_or(("uid0".into(), String::new()));
        assert_eq!(env.sender, format!("{login}@example.test"));
        let msg = fs::read_to_string(s.worker.queue.message_path(&env.id)).unwrap();
        assert!(
            msg.starts_with(&format!(
                "Return-Path: <{login}@example.test>\nReceived: by mx.example.test (buzon sendmail, uid {})",
                euid()
            )),
            "{msg}"
        );
        assert!(msg.contains(&format!("\nMessage-ID: <{}@mx.example.test>\n", env.id)), "{msg}");
        assert!(msg.ends_with("\n\nbody\n"));
        assert_eq!(s.worker.waker.wait(Duration::ZERO), Some(Wake::NewMail(env.id.clone())));
        // The incoming spool is empty again.
        assert_eq!(fs::read_dir(spool::incoming_dir(&s.data)).unwrap().count(), 0);
        // A second scan changes nothing and logs nothing new.
        s.worker.scan().unwrap();
        assert_eq!(s.worker.queue.list().unwrap().len(), 1);
    }

    #[test]
    fn hard_links_are_refused() {
        let mut s = setup();
        let good = Submission { recipients: vec!["bob".into()], ..Default::default() };
        drop_file(&s, "0001.x", &format!("{}body\n", render(&good)));
        fs::hard_link(maildrop_dir(&s.data).join("0001.x"), s.data.join("other")).unwrap();
        s.worker.scan().unwrap();
        assert!(s.worker.queue.list().unwrap().is_empty());
        assert!(corrupt_dir(&s.data).join("maildrop.0001.x").exists());
    }

    #[test]
    fn the_thread_picks_up_when_woken() {
        let Setup { worker, data, _dir } = setup();
        let queue = Arc::clone(&worker.queue);
        let p =
            Pickup::start(Arc::clone(&worker.config), Arc::clone(&queue), Arc::clone(&worker.waker)).unwrap();
        let sub = Submission { recipients: vec!["bob".into()], ..Default::default() };
        let name = crate::sendmail::submit::submit(
            &maildrop_dir(&data),
            &sub,
            &mut "hello\n".as_bytes(),
            crate::sendmail::submit::Dots::End,
            10_000,
        )
        .unwrap()
        .name;
        crate::sendmail::submit::wake(&pickup_socket(&data));
        let deadline = Instant::now() + Duration::from_secs(10);
        while (queue.list().unwrap().is_empty() || maildrop_dir(&data).join(&name).exists())
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(queue.list().unwrap().len(), 1);
        assert!(!maildrop_dir(&data).join(name).exists());
        drop(p);
        assert!(!pickup_socket(&data).exists());
        drop(worker);
        drop(_dir);
    }

    #[test]
    fn gecos_lookup() {
        let (login, _) = getpwuid(0).expect("root exists");
        assert_eq!(login, "root");
        assert_eq!(submitter(4_000_000_000).login, "uid4000000000");
    }
}
