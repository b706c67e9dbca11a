//! Queue storage: message files in queue/msg, envelopes in queue/env, written durably (temp file in the
//! same directory, fsync, rename or link, fsync the directory) so that a `250` said after
//! [`Queue::enqueue`] returns is never lost.

use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::envelope;
use super::{Envelope, valid_id};
use crate::durable::{self, Place, fsync_dir};

/// How old (last written or linked) a message file without an envelope, or a temp file, must be
/// before [`Queue::sweep`] removes it. An enqueue under way holds it for milliseconds.
pub const ORPHAN_AGE: Duration = Duration::from_secs(10 * 60);

/// The queue under `data_dir/queue`. Holds no open files, so it is Send + Sync and cheap to share.
#[derive(Debug)]
pub struct Queue {
    dir: PathBuf,
    msg: PathBuf,
    env: PathBuf,
    corrupt: PathBuf,
    /// queue/lock: flock(2)ed around every envelope rewrite (see [`Queue::update`]).
    lock: PathBuf,
}

fn bad_id(id: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, format!("{id:?} is not a queue id (16 hex digits)"))
}

fn mkdir(dir: &Path) -> io::Result<()> {
    fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

/// Whether the file name is a temp file of ours (`.<id>.<pid>.<n>.tmp`).
fn is_temp(name: &OsStr) -> bool {
    name.to_str().is_some_and(|n| n.starts_with('.') && n.ends_with(".tmp"))
}

impl Queue {
    fn at(data_dir: &Path) -> Queue {
        let dir = data_dir.join("queue");
        Queue {
            msg: dir.join("msg"),
            env: dir.join("env"),
            corrupt: dir.join("corrupt"),
            lock: dir.join("lock"),
            dir,
        }
    }

    /// For every process that queues mail (the server, an inetd-run session): creates
    /// data_dir/queue/{msg,env} (0700) and queue/lock if missing, and removes nothing, since
    /// another process may be between the two writes of [`Queue::enqueue`] right now. The server
    /// then calls [`Queue::sweep`].
    pub fn open(data_dir: &Path) -> io::Result<Queue> {
        let q = Queue::at(data_dir);
        mkdir(&q.msg)?;
        mkdir(&q.env)?;
        // Created by the server's user (inetd mode drops privileges first): a root `buzon queue`
        // must not own it.
        OpenOptions::new().write(true).create(true).truncate(false).mode(0o600).open(&q.lock)?;
        Ok(q)
    }

    /// For the server only (at start, then now and then): under the queue lock, removes temp files
    /// and message files without an envelope (a crash between the two writes of
    /// [`Queue::enqueue`]: never acknowledged) once they are [`ORPHAN_AGE`] old. A younger one may
    /// belong to an enqueue under way in another process. Returns the number removed.
    pub fn sweep(&self) -> io::Result<usize> {
        self.sweep_at(SystemTime::now())
    }

    fn sweep_at(&self, now: SystemTime) -> io::Result<usize> {
        let _lock = self.lock()?;
        // None: the file vanished meanwhile (an enqueue failed and cleaned up, or finished a temp).
        let stale = |entry: &fs::DirEntry| -> io::Result<bool> {
            match entry.metadata() {
                Ok(m) => Ok(m.is_file() && crate::spool::idle_for(&m, now) >= ORPHAN_AGE),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
                Err(e) => Err(e),
            }
        };
        let remove = |path: &Path| match fs::remove_file(path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        };
        let mut removed = 0;
        for entry in fs::read_dir(&self.env)? {
            let entry = entry?;
            if is_temp(&entry.file_name()) && stale(&entry)? {
                remove(&entry.path())?;
                removed += 1;
            }
        }
        for entry in fs::read_dir(&self.msg)? {
            let entry = entry?;
            let name = entry.file_name();
            match name.to_str() {
                Some(id) if valid_id(id) => {
                    if !self.env.join(id).exists() && stale(&entry)? {
                        log::info!("event=queue_orphan id={id} action=removed");
                        remove(&entry.path())?;
                        removed += 1;
                    }
                }
                _ if is_temp(&name) => {
                    if stale(&entry)? {
                        remove(&entry.path())?;
                        removed += 1;
                    }
                }
                _ => log::warn!("event=queue_stray file={:?} action=ignored", entry.path()),
            }
        }
        if removed > 0 {
            fsync_dir(&self.msg)?;
            fsync_dir(&self.env)?;
        }
        Ok(removed)
    }

    /// For other processes (`buzon queue`): the existing queue, changing nothing. NotFound when the
    /// server never created it.
    pub fn attach(data_dir: &Path) -> io::Result<Queue> {
        let q = Queue::at(data_dir);
        if !q.env.is_dir() || !q.msg.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{}: no queue here", q.dir.display()),
            ));
        }
        Ok(q)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// queue/msg/<id> (the id must be valid: see [`valid_id`]).
    pub fn message_path(&self, id: &str) -> PathBuf {
        self.msg.join(id)
    }

    fn env_path(&self, id: &str) -> PathBuf {
        self.env.join(id)
    }

    /// Commits a message: hard-links (or copies and fsyncs) `msg` to queue/msg/<id>, fsyncs that
    /// directory, then writes the envelope (temp, fsync, link into queue/env, fsync the directory).
    /// Returns only when both are durable; on error nothing is left behind. AlreadyExists if the id is
    /// queued already.
    pub fn enqueue(&self, msg: &Path, env: &Envelope) -> io::Result<()> {
        if !valid_id(&env.id) {
            return Err(bad_id(&env.id));
        }
        if self.env_path(&env.id).exists() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} is queued already", env.id),
            ));
        }
        let dest = self.message_path(&env.id);
        // A message file without an envelope is the remains of a failed attempt: never acknowledged.
        match fs::remove_file(&dest) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let r = self.place_message(msg, &dest).and_then(|()| self.write_envelope(env, Place::New));
        if r.is_err() {
            let _ = fs::remove_file(&dest);
        }
        r
    }

    /// Hard-links `msg` to `dest` and fsyncs queue/msg; or copies it durably (temp file, fsync,
    /// link into place, fsync the directory).
    fn place_message(&self, msg: &Path, dest: &Path) -> io::Result<()> {
        match fs::hard_link(msg, dest) {
            Ok(()) => fsync_dir(&self.msg),
            Err(e) if e.kind() == io::ErrorKind::NotFound || e.kind() == io::ErrorKind::AlreadyExists => {
                Err(e)
            }
            // EXDEV (another file system), EPERM (no hard links here): copy and fsync instead.
            Err(_) => {
                let mut from = File::open(msg)?;
                durable::write_file(dest, Place::New, 0o600, |to| io::copy(&mut from, to).map(|_| ()))
            }
        }
    }

    /// Writes env/<id> durably (temp file, fsync, into place, fsync the directory). `Place::New`: it
    /// must not exist. `Place::ReplaceExisting`: it must, and is swapped atomically (NotFound if it
    /// was removed meanwhile, so a save racing `queue delete` or the runner's removal never
    /// resurrects an entry).
    fn write_envelope(&self, env: &Envelope, place: Place) -> io::Result<()> {
        durable::write_file(&self.env_path(&env.id), place, 0o600, |f| {
            f.write_all(envelope::render(env).as_bytes())?;
            self.give_to_queue_owner(f)
        })
    }

    /// Run as root (`buzon queue flush` by the admin), files would be unreadable by the server's
    /// user: give them to the owner of the queue directory.
    fn give_to_queue_owner(&self, f: &File) -> io::Result<()> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Ok(());
        }
        let m = fs::metadata(&self.dir)?;
        std::os::unix::fs::fchown(f, Some(m.uid()), Some(m.gid()))
    }

    /// Rewrites an existing envelope atomically (after an attempt). NotFound if the entry is gone
    /// (delivered and removed, or deleted by the postmaster).
    pub fn save(&self, env: &Envelope) -> io::Result<()> {
        if !valid_id(&env.id) {
            return Err(bad_id(&env.id));
        }
        let _lock = self.lock()?;
        self.write_envelope(env, Place::ReplaceExisting)
    }

    /// Reads, changes and rewrites one envelope under the queue lock, so that no [`Queue::save`]
    /// (the runner's, after an attempt) lands between the read and the write and is undone: used by
    /// `buzon queue flush`. None if there is no such entry.
    pub fn update(&self, id: &str, change: impl FnOnce(&mut Envelope)) -> io::Result<Option<Envelope>> {
        let _lock = self.lock()?;
        let Some(mut env) = self.load(id)? else { return Ok(None) };
        change(&mut env);
        env.id = id.to_string();
        match self.write_envelope(&env, Place::ReplaceExisting) {
            Ok(()) => Ok(Some(env)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// An exclusive flock(2) on queue/lock, released when the file is dropped. Held only while one
    /// envelope is rewritten. None when the lock file does not exist (no server ever started here,
    /// so nothing runs concurrently).
    fn lock(&self) -> io::Result<Option<File>> {
        use std::os::fd::AsRawFd;
        let f = match File::open(&self.lock) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        loop {
            // SAFETY: flock on a descriptor we own; no memory is involved.
            if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } == 0 {
                return Ok(Some(f));
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }

    /// The entry, None if there is none; InvalidData if the envelope cannot be parsed.
    pub fn load(&self, id: &str) -> io::Result<Option<Envelope>> {
        if !valid_id(id) {
            return Err(bad_id(id));
        }
        let text = match fs::read(self.env_path(id)) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let env = envelope::parse(&text)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("queue/env/{id}: {e}")))?;
        if env.id != id {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("queue/env/{id}: line 2: id {} does not match the file name", env.id),
            ));
        }
        Ok(Some(env))
    }

    /// Every entry, oldest first. An envelope that cannot be read or parsed is logged and moved with
    /// its message to queue/corrupt/ for the postmaster; it never stops the others.
    pub fn list(&self) -> io::Result<Vec<Envelope>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.env)? {
            let entry = entry?;
            let name = entry.file_name();
            let Some(id) = name.to_str().filter(|n| valid_id(n)) else {
                if !is_temp(&name) {
                    log::warn!("event=queue_stray file={:?} action=ignored", entry.path());
                }
                continue;
            };
            match self.load(id) {
                Ok(Some(env)) => out.push(env),
                Ok(None) => {} // removed meanwhile
                Err(e) => {
                    log::error!("event=queue_corrupt id={id} error=\"{e}\"");
                    if let Err(e) = self.set_aside(id) {
                        log::error!("event=queue_corrupt id={id} action=set_aside error=\"{e}\"");
                    }
                }
            }
        }
        out.sort_by(|a, b| a.arrival.cmp(&b.arrival).then_with(|| a.id.cmp(&b.id)));
        Ok(out)
    }

    /// Moves env/<id> and msg/<id> to corrupt/<id>.env and corrupt/<id>.msg (the message goes too, or
    /// the next start would remove it as an orphan).
    fn set_aside(&self, id: &str) -> io::Result<()> {
        mkdir(&self.corrupt)?;
        fs::rename(self.env_path(id), self.corrupt.join(format!("{id}.env")))?;
        match fs::rename(self.message_path(id), self.corrupt.join(format!("{id}.msg"))) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        fsync_dir(&self.corrupt)?;
        fsync_dir(&self.env)
    }

    /// Removes an entry: the envelope first (durably: the entry is gone), then the message.
    /// NotFound if there is no such entry.
    pub fn remove(&self, id: &str) -> io::Result<()> {
        if !valid_id(id) {
            return Err(bad_id(id));
        }
        fs::remove_file(self.env_path(id))?;
        fsync_dir(&self.env)?;
        match fs::remove_file(self.message_path(id)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Size in bytes of the message as it will be relayed (without the first body_offset bytes).
    pub fn message_size(&self, env: &Envelope) -> io::Result<u64> {
        Ok(fs::metadata(self.message_path(&env.id))?.len().saturating_sub(env.body_offset))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::RcptState;
    use std::time::UNIX_EPOCH;

    const ID: &str = "00000000000000A1";

    fn env(id: &str, secs: u64) -> Envelope {
        let mut e = Envelope::new(
            id,
            "alice@example.org",
            &["bob@example.net".into(), "carol@example.net".into()],
            UNIX_EPOCH + Duration::from_secs(secs),
        );
        e.body_offset = 28;
        e
    }

    fn spool(dir: &Path, id: &str) -> PathBuf {
        let p = dir.join(format!("in-{id}"));
        fs::write(&p, "Return-Path: <alice@example.org>\nSubject: hi\n\nbody\n").unwrap();
        p
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = match fs::read_dir(dir) {
            Ok(rd) => rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect(),
            Err(_) => vec![],
        };
        v.sort();
        v
    }

    #[test]
    fn enqueue_load_save_list_remove() {
        let d = tempfile::tempdir().unwrap();
        let q = Queue::open(d.path()).unwrap();
        let mode = fs::metadata(q.dir().join("env")).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o700);
        let e = env(ID, 100);
        let src = spool(d.path(), ID);
        q.enqueue(&src, &e).unwrap();
        assert_eq!(fs::read(q.message_path(ID)).unwrap(), fs::read(&src).unwrap());
        assert_eq!(fs::metadata(q.dir().join("env").join(ID)).unwrap().mode() & 0o777, 0o600);
        assert_eq!(q.load(ID).unwrap(), Some(e.clone()));
        assert_eq!(q.message_size(&e).unwrap(), fs::metadata(&src).unwrap().len() - 28);
        assert_eq!(q.enqueue(&src, &e).unwrap_err().kind(), io::ErrorKind::AlreadyExists);

        let mut e2 = e.clone();
        e2.attempts = 1;
        e2.recipients[0].state = RcptState::Sent { relay: "mx".into(), reply: "250 ok".into() };
        e2.recipients[1].state = RcptState::Deferred { reply: "451 later".into() };
        q.save(&e2).unwrap();
        assert_eq!(q.load(ID).unwrap(), Some(e2.clone()));
        assert_eq!(names(&q.dir().join("env")), vec![ID.to_string()], "no temp files left");

        let older = env("00000000000000B2", 50);
        q.enqueue(&spool(d.path(), "b"), &older).unwrap();
        let all = q.list().unwrap();
        assert_eq!(all.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), vec!["00000000000000B2", ID]);

        q.remove(ID).unwrap();
        assert_eq!(q.load(ID).unwrap(), None);
        assert!(!q.message_path(ID).exists());
        assert_eq!(q.remove(ID).unwrap_err().kind(), io::ErrorKind::NotFound);
        // A save after removal must not resurrect the entry.
        assert_eq!(q.save(&e2).unwrap_err().kind(), io::ErrorKind::NotFound);
        assert_eq!(q.load(ID).unwrap(), None);
        assert_eq!(q.list().unwrap().len(), 1);
    }

    #[test]
    fn update_changes_one_entry_under_the_lock() {
        let d = tempfile::tempdir().unwrap();
        let q = Queue::open(d.path()).unwrap();
        q.enqueue(&spool(d.path(), ID), &env(ID, 1)).unwrap();
        let now = UNIX_EPOCH + Duration::from_secs(99);
        let got = q.update(ID, |e| e.next_attempt = now).unwrap().unwrap();
        assert_eq!(got.next_attempt, now);
        assert_eq!(q.load(ID).unwrap().unwrap(), got);
        assert_eq!(q.update("00000000000000FF", |_| {}).unwrap(), None);
        // While someone holds the lock, update waits.
        let held = q.lock().unwrap().unwrap();
        std::thread::scope(|s| {
            let t = s.spawn(|| q.update(ID, |e| e.attempts = 7).unwrap());
            std::thread::sleep(Duration::from_millis(100));
            assert_eq!(q.load(ID).unwrap().unwrap().attempts, 0);
            drop(held);
            assert_eq!(t.join().unwrap().unwrap().attempts, 7);
        });
        q.remove(ID).unwrap();
        assert_eq!(q.update(ID, |_| {}).unwrap(), None);
    }

    #[test]
    fn ids_are_checked_before_the_file_system() {
        let d = tempfile::tempdir().unwrap();
        let q = Queue::open(d.path()).unwrap();
        for bad in ["../x", "", "0123456789ABCDEG", "0123456789ABCDEF0", "../../../../etc/pw"] {
            assert_eq!(q.load(bad).unwrap_err().kind(), io::ErrorKind::InvalidInput, "{bad}");
            assert_eq!(q.remove(bad).unwrap_err().kind(), io::ErrorKind::InvalidInput, "{bad}");
            let e = env(bad, 1);
            assert_eq!(q.save(&e).unwrap_err().kind(), io::ErrorKind::InvalidInput);
            assert_eq!(q.enqueue(&spool(d.path(), "x"), &e).unwrap_err().kind(), io::ErrorKind::InvalidInput);
        }
    }

    #[test]
    fn open_never_removes_and_sweep_removes_only_old_orphans() {
        let d = tempfile::tempdir().unwrap();
        let q = Queue::open(d.path()).unwrap();
        q.enqueue(&spool(d.path(), ID), &env(ID, 1)).unwrap();
        // A message file without an envelope yet: another process's enqueue under way.
        let orphan = "00000000000000C3";
        fs::write(q.message_path(orphan), "x").unwrap();
        fs::write(q.dir().join("env/.00000000000000C3.1.0.tmp"), "v 1\n").unwrap();
        fs::write(q.dir().join("msg/.00000000000000C3.1.1.tmp"), "x").unwrap();
        fs::write(q.dir().join("msg/README"), "mine").unwrap();
        let all_msg =
            vec![".00000000000000C3.1.1.tmp".to_string(), ID.into(), orphan.into(), "README".into()];
        let all_env = vec![".00000000000000C3.1.0.tmp".to_string(), ID.into()];
        // attach (`buzon queue`) and open (inetd mode, and the server before its sweep) touch nothing.
        let other = Queue::attach(d.path()).unwrap();
        assert_eq!(other.list().unwrap().len(), 1);
        drop(Queue::open(d.path()).unwrap());
        assert_eq!(names(&q.dir().join("msg")), all_msg);
        assert_eq!(names(&q.dir().join("env")), all_env);
        // The server's sweep leaves young files alone too.
        assert_eq!(q.sweep().unwrap(), 0);
        let almost = SystemTime::now() + ORPHAN_AGE - Duration::from_secs(30);
        assert_eq!(q.sweep_at(almost).unwrap(), 0);
        assert_eq!(names(&q.dir().join("msg")), all_msg);
        // Once they are old, the orphan and both temp files go; the entry and the stray stay.
        let later = SystemTime::now() + ORPHAN_AGE + Duration::from_secs(5);
        assert_eq!(q.sweep_at(later).unwrap(), 3);
        assert_eq!(names(&q.dir().join("msg")), vec![ID.to_string(), "README".into()]);
        assert_eq!(names(&q.dir().join("env")), vec![ID.to_string()]);
        assert_eq!(names(q.dir()), vec!["env", "lock", "msg"]);
        assert_eq!(q.load(ID).unwrap().unwrap().id, ID);
        assert!(Queue::attach(&d.path().join("nowhere")).is_err());
    }

    #[test]
    fn sweep_waits_for_the_queue_lock() {
        let d = tempfile::tempdir().unwrap();
        let q = Queue::open(d.path()).unwrap();
        fs::write(q.message_path("00000000000000C3"), "x").unwrap();
        let later = SystemTime::now() + ORPHAN_AGE + Duration::from_secs(5);
        let held = q.lock().unwrap().unwrap();
        std::thread::scope(|s| {
            let t = s.spawn(|| q.sweep_at(later).unwrap());
            std::thread::sleep(Duration::from_millis(100));
            assert!(q.message_path("00000000000000C3").exists());
            drop(held);
            assert_eq!(t.join().unwrap(), 1);
        });
    }

    #[test]
    fn a_corrupt_envelope_is_set_aside_with_its_message() {
        let d = tempfile::tempdir().unwrap();
        let q = Queue::open(d.path()).unwrap();
        let bad = "00000000000000D4";
        q.enqueue(&spool(d.path(), ID), &env(ID, 1)).unwrap();
        q.enqueue(&spool(d.path(), bad), &env(bad, 2)).unwrap();
        fs::write(q.dir().join("env").join(bad), "v 1\nid 00000000000000D4\nsender x\n").unwrap();
        let err = q.load(bad).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("line 3"), "{err}");
        let all = q.list().unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].id, ID);
        assert_eq!(names(&q.dir().join("corrupt")), vec![format!("{bad}.env"), format!("{bad}.msg")]);
        assert_eq!(q.load(bad).unwrap(), None);
        // An envelope whose id does not match its file name is corrupt too.
        let mut wrong = env(ID, 3);
        wrong.id = "00000000000000E5".into();
        fs::write(q.dir().join("env").join(ID), envelope::render(&wrong)).unwrap();
        assert!(q.load(ID).unwrap_err().to_string().contains("does not match"));
    }

    #[test]
    fn copies_across_file_systems_and_leaves_nothing_on_failure() {
        let d = tempfile::tempdir().unwrap();
        let q = Queue::open(d.path()).unwrap();
        // A directory cannot be hard-linked nor copied: the attempt leaves nothing behind.
        assert!(q.enqueue(d.path(), &env(ID, 1)).is_err());
        assert!(names(&q.dir().join("msg")).is_empty());
        assert!(names(&q.dir().join("env")).is_empty());
        // From another file system (EXDEV) the message is copied.
        let Ok(other) = tempfile::tempdir_in("/dev/shm") else { return };
        if fs::metadata(other.path()).unwrap().dev() == fs::metadata(d.path()).unwrap().dev() {
            return;
        }
        let src = spool(other.path(), ID);
        q.enqueue(&src, &env(ID, 1)).unwrap();
        assert_eq!(fs::read(q.message_path(ID)).unwrap(), fs::read(&src).unwrap());
        assert_eq!(fs::metadata(q.message_path(ID)).unwrap().nlink(), 1);
        assert_eq!(names(&q.dir().join("msg")), vec![ID.to_string()]);
    }
}
