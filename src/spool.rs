//! The incoming spool: a message being received is streamed into
//! `data_dir/incoming/<queue id>` (never held whole in memory), fsynced, then
//! handed to local delivery. Files left here by a crash were never
//! acknowledged with 250, so the server removes them at start once they are stale.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A new queue id: 16 upper-case hex digits from the time in microseconds,
/// the process id and a counter, so two processes never collide.
pub fn new_queue_id() -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let micros = now.as_micros() as u64;
    let pid = std::process::id();
    format!("{:09X}{:04X}{:03X}", micros & 0xF_FFFF_FFFF, pid & 0xFFFF, n & 0xFFF)
}

/// The directory of messages being received.
pub fn incoming_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("incoming")
}

/// Creates the spool directories (0700) and leaves their contents alone: an inetd-run session shares
/// them with others that may be receiving at the same time.
pub fn prepare_dirs(data_dir: &Path) -> io::Result<()> {
    fs::DirBuilder::new().recursive(true).mode(0o700).create(incoming_dir(data_dir))
}

/// How long an incoming file must have been left alone before the server's start removes it: an
/// inetd-run session (its own process) may be receiving into it right now, and a live session
/// writes to its file at least every few minutes (RFC 5321 4.5.3.2.5: 3 minutes per data block).
pub const INCOMING_STALE: Duration = Duration::from_secs(60 * 60);

/// How long ago the file was last written or linked (the newer of mtime and ctime; ctime moves
/// with every link(2) and cannot be set back). Zero for a file from the future.
pub fn idle_for(meta: &fs::Metadata, now: SystemTime) -> Duration {
    use std::os::unix::fs::MetadataExt;
    let secs = meta.mtime().max(meta.ctime());
    let last = UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).unwrap_or(0));
    now.duration_since(last).unwrap_or(Duration::ZERO)
}

/// For the server, at start: creates the spool directories (0700) and removes what an earlier
/// run left half-received (untouched for [`INCOMING_STALE`]). Returns the number removed.
pub fn prepare(data_dir: &Path) -> io::Result<usize> {
    prepare_at(data_dir, SystemTime::now())
}

fn prepare_at(data_dir: &Path, now: SystemTime) -> io::Result<usize> {
    let dir = incoming_dir(data_dir);
    fs::DirBuilder::new().recursive(true).mode(0o700).create(&dir)?;
    let mut removed = 0;
    for entry in fs::read_dir(&dir)? {
        let entry = entry?;
        let meta = match entry.metadata() {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue, // its session finished
            Err(e) => return Err(e),
        };
        if meta.is_file() && idle_for(&meta, now) >= INCOMING_STALE {
            match fs::remove_file(entry.path()) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => removed += 1,
            }
        }
    }
    Ok(removed)
}

use std::os::unix::fs::DirBuilderExt;

/// A message file being written.
pub struct Incoming {
    out: BufWriter<File>,
    path: PathBuf,
    written: u64,
    done: bool,
}

impl Incoming {
    /// Creates `incoming/<id>` exclusively, mode 0600.
    pub fn create(data_dir: &Path, id: &str) -> io::Result<Incoming> {
        let path = incoming_dir(data_dir).join(id);
        let file = OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path)?;
        Ok(Incoming { out: BufWriter::with_capacity(64 * 1024, file), path, written: 0, done: false })
    }

    pub fn write(&mut self, b: &[u8]) -> io::Result<()> {
        self.written += b.len() as u64;
        self.out.write_all(b)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.written
    }

    /// Flushes and fsyncs the file: after this it is safe to link or copy.
    pub fn finish(&mut self) -> io::Result<()> {
        self.out.flush()?;
        self.out.get_ref().sync_all()
    }

    /// Inserts `text` at offset `at` of the finished file (header fields the checks add below the
    /// Return-Path line) and leaves out the byte ranges in `drop` (sorted, after `at`: fields
    /// removed from the message's header): a new file is written beside it, copied in the kernel
    /// where it can be, fsynced and renamed over the old one; on error the old file is as it was.
    pub fn splice(&mut self, at: u64, text: &[u8], drop: &[std::ops::Range<u64>]) -> io::Result<()> {
        self.out.flush()?;
        let tmp = self.path.with_extension("splice");
        let mut src = File::open(&self.path)?;
        let result = (|| {
            let mut dst = OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
            io::copy(&mut (&mut src).take(at), &mut dst)?;
            dst.write_all(text)?;
            let mut pos = at;
            let mut dropped = 0;
            for r in drop {
                if r.start < pos || r.end < r.start {
                    return Err(io::Error::other("splice: ranges out of order"));
                }
                io::copy(&mut (&mut src).take(r.start - pos), &mut dst)?;
                src.seek(io::SeekFrom::Start(r.end))?;
                dropped += r.end - r.start;
                pos = r.end;
            }
            io::copy(&mut src, &mut dst)?;
            dst.sync_all()?;
            fs::rename(&tmp, &self.path)?;
            Ok((dst, dropped))
        })();
        match result {
            Ok((dst, dropped)) => {
                self.out = BufWriter::with_capacity(64 * 1024, dst);
                self.written = self.written + text.len() as u64 - dropped;
                Ok(())
            }
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                Err(e)
            }
        }
    }

    /// Removes the spool file (after delivery, or when the message is refused).
    pub fn remove(mut self) {
        self.done = true;
        let _ = fs::remove_file(&self.path);
    }
}

impl Drop for Incoming {
    fn drop(&mut self) {
        if !self.done {
            let _ = fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splice_inserts_and_drops() {
        let d = tempfile::tempdir().unwrap();
        prepare_dirs(d.path()).unwrap();
        let mut f = Incoming::create(d.path(), "s1").unwrap();
        f.write(b"Return-Path: <a@b>\nX-A: 1\nX-B: 2\n\nbody\n").unwrap();
        f.finish().unwrap();
        f.splice(19, b"New: yes\n", &[19..26, 26..26]).unwrap();
        assert_eq!(fs::read(f.path()).unwrap(), b"Return-Path: <a@b>\nNew: yes\nX-B: 2\n\nbody\n");
        assert_eq!(f.size(), 41);
        assert!(f.splice(19, b"", &[30..31, 20..21]).is_err());
        assert_eq!(fs::read(f.path()).unwrap(), b"Return-Path: <a@b>\nNew: yes\nX-B: 2\n\nbody\n");
        assert_eq!(fs::read_dir(incoming_dir(d.path())).unwrap().count(), 1, "no temp file left");
    }

    #[test]
    fn ids_are_unique_and_sortable_width() {
        let a = new_queue_id();
        let b = new_queue_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), 16);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn leftovers_are_removed_and_drop_cleans_up() {
        let d = tempfile::tempdir().unwrap();
        prepare(d.path()).unwrap();
        fs::write(incoming_dir(d.path()).join("OLD"), b"x").unwrap();
        // Fresh: another process (an inetd session) may be writing it.
        assert_eq!(prepare(d.path()).unwrap(), 0);
        let later = SystemTime::now() + INCOMING_STALE + Duration::from_secs(5);
        assert_eq!(prepare_at(d.path(), later).unwrap(), 1);
        assert!(!incoming_dir(d.path()).join("OLD").exists());
        let path;
        {
            let mut m = Incoming::create(d.path(), "ABC").unwrap();
            m.write(b"hello\n").unwrap();
            m.finish().unwrap();
            path = m.path().to_path_buf();
            assert_eq!(fs::read(&path).unwrap(), b"hello\n");
            assert_eq!(m.size(), 6);
        }
        assert!(!path.exists());
    }
}
