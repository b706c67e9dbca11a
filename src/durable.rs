//! Durable writes (DESIGN rule 6): a temp file in the same directory, fsync, then into place
//! without replacing (renameat2 RENAME_NOREPLACE, else link and unlink) or replacing (rename(2),
//! or RENAME_EXCHANGE where only an existing file may be replaced), then fsync the directory.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Makes temp names unique within the process (the pid does across processes).
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// How a finished temp file takes its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    /// The name must be free: AlreadyExists otherwise, and nothing is replaced.
    New,
    /// Replaces whatever is there, or creates it (rename(2) is atomic: readers see old or new).
    Replace,
    /// Replaces a file that must still be there: NotFound if it was removed meanwhile, so a
    /// rewrite racing a removal never brings the file back.
    ReplaceExisting,
}

/// The directory `path` is in ("." for a bare name).
pub fn parent(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// fsync(2) on a directory, so that names created, renamed or removed in it are on disk.
pub fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// A temp name beside `path`: `.<name>.<pid>.<n>.tmp` (hidden, and ending in `.tmp` so that
/// sweeps recognise it).
pub fn temp_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    parent(path).join(format!(".{name}.{}.{n}.tmp", std::process::id()))
}

/// Writes `path` durably: `fill` writes a new temp file beside it (created 0600-or-`mode`, never
/// through a symlink), which is fsynced, placed as `place` says and the directory fsynced. On error
/// nothing is left behind and `path` is as it was.
pub fn write_file(
    path: &Path,
    place: Place,
    mode: u32,
    fill: impl FnOnce(&mut File) -> io::Result<()>,
) -> io::Result<()> {
    write_at(&temp_path(path), true, path, place, mode, fill)
}

/// [`write_file`] with bytes.
pub fn write(path: &Path, place: Place, mode: u32, data: &[u8]) -> io::Result<()> {
    write_file(path, place, mode, |f| io::Write::write_all(f, data))
}

/// [`write_file`] through the caller's temp name `tmp` (in the same directory; a fixed name the
/// caller holds a lock for): a leftover from a crash is truncated and reused.
pub fn write_via(
    tmp: &Path,
    path: &Path,
    place: Place,
    mode: u32,
    fill: impl FnOnce(&mut File) -> io::Result<()>,
) -> io::Result<()> {
    write_at(tmp, false, path, place, mode, fill)
}

fn write_at(
    tmp: &Path,
    exclusive: bool,
    path: &Path,
    place: Place,
    mode: u32,
    fill: impl FnOnce(&mut File) -> io::Result<()>,
) -> io::Result<()> {
    let r = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .create_new(exclusive)
            .truncate(true)
            .mode(mode)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(tmp)?;
        fill(&mut f)?;
        f.sync_all()?;
        drop(f);
        match place {
            Place::New => move_noreplace(tmp, path),
            Place::Replace => fs::rename(tmp, path),
            Place::ReplaceExisting => replace_existing(tmp, path),
        }
    })();
    // After ReplaceExisting the temp name holds the old file; after an error, the new one.
    if r.is_err() || place == Place::ReplaceExisting {
        let _ = fs::remove_file(tmp);
    }
    r?;
    fsync_dir(&parent(path))
}

/// rename(2) that fails with AlreadyExists instead of replacing `to`: renameat2 RENAME_NOREPLACE;
/// where the kernel or file system lacks it, link then unlink (qmail's way); where there are no
/// hard links either (vfat), check then rename (a tiny window; names are unique anyway).
pub fn move_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        // The raw syscall, not glibc's renameat2 wrapper (glibc >= 2.28 only).
        match renameat2(from, to, libc::RENAME_NOREPLACE) {
            Ok(()) => return Ok(()),
            Err(e) if !matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ENOSYS)) => return Err(e),
            Err(_) => {} // Old kernel or a file system without RENAME_NOREPLACE: fall through.
        }
    }
    match fs::hard_link(from, to) {
        Ok(()) => match fs::remove_file(from) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                log::warn!("event=durable_unlink_failed path={} error=\"{e}\"", from.display());
                Ok(())
            }
            _ => Ok(()),
        },
        Err(e) if matches!(e.raw_os_error(), Some(libc::EPERM | libc::EOPNOTSUPP | libc::EMLINK)) => {
            match fs::symlink_metadata(to) {
                Ok(_) => Err(io::Error::from_raw_os_error(libc::EEXIST)),
                Err(_) => fs::rename(from, to),
            }
        }
        Err(e) => Err(e),
    }
}

/// rename(2) that only replaces: RENAME_EXCHANGE swaps atomically and fails with NotFound when the
/// target is gone (`tmp` then holds the old file); where the file system lacks it, check then rename.
pub fn replace_existing(tmp: &Path, dest: &Path) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        match renameat2(tmp, dest, libc::RENAME_EXCHANGE) {
            Ok(()) => return Ok(()),
            Err(e) if !matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ENOSYS)) => return Err(e),
            Err(_) => {}
        }
    }
    if fs::symlink_metadata(dest).is_err() {
        return Err(io::Error::new(io::ErrorKind::NotFound, format!("{}: no such file", dest.display())));
    }
    fs::rename(tmp, dest)
}

#[cfg(target_os = "linux")]
fn renameat2(from: &Path, to: &Path, flags: libc::c_uint) -> io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| {
        CString::new(p.as_os_str().as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in path"))
    };
    let (f, t) = (c(from)?, c(to)?);
    // SAFETY: both paths are valid NUL-terminated strings that outlive the call; renameat2 only
    // reads them.
    let r = unsafe {
        libc::syscall(libc::SYS_renameat2, libc::AT_FDCWD, f.as_ptr(), libc::AT_FDCWD, t.as_ptr(), flags)
    };
    if r == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn new_writes_once_and_never_replaces() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a");
        write(&p, Place::New, 0o640, b"one").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"one");
        assert_eq!(fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o640);
        let e = write(&p, Place::New, 0o600, b"two").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&p).unwrap(), b"one");
        assert_eq!(names(d.path()), ["a"], "no temp file left");
    }

    #[test]
    fn replace_creates_or_replaces() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("b");
        write(&p, Place::Replace, 0o600, b"one").unwrap();
        write(&p, Place::Replace, 0o600, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(names(d.path()), ["b"]);
    }

    #[test]
    fn replace_existing_never_resurrects() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("c");
        assert_eq!(
            write(&p, Place::ReplaceExisting, 0o600, b"x").unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        assert!(names(d.path()).is_empty());
        fs::write(&p, b"old").unwrap();
        write(&p, Place::ReplaceExisting, 0o600, b"new").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"new");
        assert_eq!(names(d.path()), ["c"], "the swapped-out old file is removed");
    }

    #[test]
    fn a_failed_fill_leaves_nothing_and_the_old_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("d");
        fs::write(&p, b"old").unwrap();
        let e = write_file(&p, Place::Replace, 0o600, |f| {
            io::Write::write_all(f, b"half")?;
            Err(io::Error::other("disk full"))
        })
        .unwrap_err();
        assert_eq!(e.to_string(), "disk full");
        assert_eq!(fs::read(&p).unwrap(), b"old");
        assert_eq!(names(d.path()), ["d"]);
    }

    #[test]
    fn a_fixed_temp_name_is_reused_and_never_followed() {
        let d = tempfile::tempdir().unwrap();
        let (tmp, p) = (d.path().join("e.tmp"), d.path().join("e"));
        fs::write(&tmp, b"leftover from a crash, longer than the new contents").unwrap();
        write_via(&tmp, &p, Place::Replace, 0o600, |f| io::Write::write_all(f, b"fresh")).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"fresh");
        assert!(!tmp.exists());
        // A symlink planted at the temp name is not written through.
        let victim = d.path().join("victim");
        fs::write(&victim, b"keep").unwrap();
        std::os::unix::fs::symlink(&victim, &tmp).unwrap();
        assert!(write_via(&tmp, &p, Place::Replace, 0o600, |f| io::Write::write_all(f, b"evil")).is_err());
        assert_eq!(fs::read(&victim).unwrap(), b"keep");
        assert_eq!(fs::read(&p).unwrap(), b"fresh");
    }

    #[test]
    fn move_noreplace_moves_or_refuses() {
        let d = tempfile::tempdir().unwrap();
        let (a, b) = (d.path().join("a"), d.path().join("b"));
        fs::write(&a, b"1").unwrap();
        move_noreplace(&a, &b).unwrap();
        assert_eq!(names(d.path()), ["b"]);
        fs::write(&a, b"2").unwrap();
        assert_eq!(move_noreplace(&a, &b).unwrap_err().kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&b).unwrap(), b"1");
        assert_eq!(fs::read(&a).unwrap(), b"2");
    }

    #[test]
    fn temp_names_are_hidden_unique_and_beside_the_file() {
        let a = temp_path(Path::new("/x/y/env"));
        let b = temp_path(Path::new("/x/y/env"));
        assert_ne!(a, b);
        assert_eq!(a.parent(), Some(Path::new("/x/y")));
        let n = a.file_name().unwrap().to_str().unwrap();
        assert!(n.starts_with(".env.") && n.ends_with(".tmp"), "{n}");
        assert_eq!(parent(Path::new("bare")), Path::new("."));
    }
}
