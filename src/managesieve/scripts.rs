//! A user's Sieve scripts on disk, in Dovecot Pigeonhole's layout so a migrated user keeps theirs:
//! every script is `<home>/sieve/<name>.sieve` and the active one is the symlink
//! `<home>/.dovecot.sieve` -> `sieve/<name>.sieve` (no link: no script runs). `<home>` is a system
//! user's home directory, or for a virtual user `data_dir/sieve/<domain>/<localpart>` (the driver
//! chooses). Writes are durable (DESIGN rule 6, src/durable.rs): a temp file, fsync, rename, fsync
//! of the directory; the link is replaced the same way. The caller has taken the owner's identity
//! (src/store/owner.rs), so what is made here is theirs.
//!
//! Names follow RFC 5804 1.6 (UTF-8, no control characters, no U+2028/U+2029) and, to be a file
//! name, no "/" and at most [`MAX_NAME`] octets. Quotas (RFC 5804 1.3 QUOTA/MAXSCRIPTS,
//! QUOTA/MAXSIZE): at most `max_scripts` scripts of at most `max_size` octets each.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::durable::{self, Place};

/// The longest script name in octets (with ".sieve" it stays well within NAME_MAX).
pub const MAX_NAME: usize = 200;
/// The file name ending of a script.
const EXT: &str = ".sieve";
/// The active script's link, in the home directory (Pigeonhole's `sieve = ~/.dovecot.sieve`).
pub const ACTIVE_LINK: &str = ".dovecot.sieve";
/// The scripts' directory, in the home directory (Pigeonhole's `sieve_dir = ~/sieve`).
pub const SCRIPT_DIR: &str = "sieve";
/// What a regular file found where the active link goes is kept as (Pigeonhole does the same).
const ORIGINAL: &str = "dovecot.orig";

/// Why an operation failed, as RFC 5804 1.3's response codes tell it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScriptError {
    /// RFC 5804 1.3 NONEXISTENT.
    NonExistent,
    /// RFC 5804 1.3 ALREADYEXISTS.
    AlreadyExists,
    /// RFC 5804 1.3 ACTIVE: the active script cannot be deleted.
    Active,
    /// RFC 5804 1.3 QUOTA/MAXSCRIPTS.
    MaxScripts(usize),
    /// RFC 5804 1.3 QUOTA/MAXSIZE.
    MaxSize(u64),
    /// The name breaks RFC 5804 1.6 (or cannot be a file name).
    BadName(&'static str),
    /// The file system failed (RFC 5804 1.3 TRYLATER); the text is for the log.
    Io(String),
}

impl From<io::Error> for ScriptError {
    fn from(e: io::Error) -> ScriptError {
        ScriptError::Io(e.to_string())
    }
}

/// RFC 5804 1.6: a script name is UTF-8 (the caller has it as a `str`), not empty, without
/// control characters (U+0000-001F, U+007F-009F), LINE SEPARATOR or PARAGRAPH SEPARATOR; "/"
/// is refused here as it cannot be in a file name.
pub fn check_name(name: &str) -> Result<(), ScriptError> {
    if name.is_empty() {
        return Err(ScriptError::BadName("Script name is empty"));
    }
    if name.len() > MAX_NAME {
        return Err(ScriptError::BadName("Script name is too long"));
    }
    if name.chars().any(|c| c.is_control() || c == '\u{2028}' || c == '\u{2029}') {
        return Err(ScriptError::BadName("Script name contains control characters"));
    }
    if name.contains('/') {
        return Err(ScriptError::BadName("Script name contains \"/\""));
    }
    Ok(())
}

/// Where a user's scripts live: their home directory when the account has one (a system user, or
/// a passwd-file line with a home, as Dovecot reads it), else `data_dir/sieve/<domain>/<localpart>`
/// for a virtual user (beside the mail the server's own user keeps under data_dir).
pub fn home_for(home: Option<&Path>, data_dir: &Path, local: &str, domain: &str) -> Result<PathBuf, String> {
    if let Some(h) = home {
        return Ok(h.to_path_buf());
    }
    let part = |p: &str| !p.is_empty() && p != "." && p != ".." && !p.contains('/') && !p.contains('\0');
    if !part(local) || !part(domain) {
        return Err(format!("no place for the scripts of {local:?}@{domain:?}"));
    }
    Ok(data_dir.join("sieve").join(domain).join(local))
}

/// One user's scripts.
#[derive(Clone, Debug)]
pub struct ScriptStore {
    home: PathBuf,
    max_scripts: usize,
    max_size: u64,
}

impl ScriptStore {
    /// The scripts under `home` (which need not exist yet: it is made at the first PUTSCRIPT).
    pub fn new(home: PathBuf, max_scripts: usize, max_size: u64) -> ScriptStore {
        ScriptStore { home, max_scripts, max_size }
    }

    pub fn max_size(&self) -> u64 {
        self.max_size
    }

    pub fn home(&self) -> &Path {
        &self.home
    }

    fn dir(&self) -> PathBuf {
        self.home.join(SCRIPT_DIR)
    }

    fn link(&self) -> PathBuf {
        self.home.join(ACTIVE_LINK)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir().join(format!("{name}{EXT}"))
    }

    fn exists(&self, name: &str) -> io::Result<bool> {
        match fs::symlink_metadata(self.path(name)) {
            Ok(m) => Ok(m.is_file()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The scripts' names, sorted, and which one is active.
    pub fn list(&self) -> Result<(Vec<String>, Option<String>), ScriptError> {
        let mut names = Vec::new();
        let entries = match fs::read_dir(self.dir()) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((names, None)),
            Err(e) => return Err(e.into()),
        };
        for entry in entries {
            let entry = entry?;
            let Ok(file) = entry.file_name().into_string() else { continue };
            let Some(name) = file.strip_suffix(EXT) else { continue };
            // Temp files (".x.tmp") never end in .sieve; a name that breaks the rules is not listed.
            if check_name(name).is_err() || !entry.file_type().is_ok_and(|t| t.is_file()) {
                continue;
            }
            names.push(name.to_string());
        }
        names.sort();
        let active = self.active()?.filter(|a| names.contains(a));
        Ok((names, active))
    }

    /// The active script's name: the link's target when it is `sieve/<name>.sieve` (relative, as
    /// Pigeonhole writes it, or the same path absolute).
    pub fn active(&self) -> Result<Option<String>, ScriptError> {
        let target = match fs::read_link(self.link()) {
            Ok(t) => t,
            Err(e) if matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::InvalidInput) => {
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        };
        let dir = if target.is_absolute() {
            target.parent() == Some(&self.dir())
        } else {
            target.parent() == Some(Path::new(SCRIPT_DIR))
        };
        let name = target.file_name().and_then(|f| f.to_str()).and_then(|f| f.strip_suffix(EXT));
        Ok(name.filter(|_| dir).map(str::to_string))
    }

    /// The script's content.
    pub fn get(&self, name: &str) -> Result<Vec<u8>, ScriptError> {
        check_name(name)?;
        match fs::read(self.path(name)) {
            Ok(data) => Ok(data),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(ScriptError::NonExistent),
            Err(e) => Err(e.into()),
        }
    }

    /// RFC 5804 2.5 HAVESPACE: whether a script `name` of `size` octets would fit (a new name
    /// counts against `max_scripts`, an existing one is replaced).
    pub fn have_space(&self, name: &str, size: u64) -> Result<(), ScriptError> {
        check_name(name)?;
        if size > self.max_size {
            return Err(ScriptError::MaxSize(self.max_size));
        }
        if !self.exists(name)? {
            let (names, _) = self.list()?;
            if names.len() >= self.max_scripts {
                return Err(ScriptError::MaxScripts(self.max_scripts));
            }
        }
        Ok(())
    }

    /// RFC 5804 2.6 PUTSCRIPT: stores (or replaces) the script durably.
    pub fn put(&self, name: &str, script: &[u8]) -> Result<(), ScriptError> {
        self.have_space(name, script.len() as u64)?;
        make_dir(&self.home)?;
        make_dir(&self.dir())?;
        durable::write(&self.path(name), Place::Replace, 0o600, script)?;
        Ok(())
    }

    /// RFC 5804 2.10 DELETESCRIPT: never the active script.
    pub fn delete(&self, name: &str) -> Result<(), ScriptError> {
        check_name(name)?;
        if !self.exists(name)? {
            return Err(ScriptError::NonExistent);
        }
        if self.active()?.as_deref() == Some(name) {
            return Err(ScriptError::Active);
        }
        fs::remove_file(self.path(name))?;
        durable::fsync_dir(&self.dir())?;
        Ok(())
    }

    /// RFC 5804 2.11.1 RENAMESCRIPT: an active script stays active under its new name.
    pub fn rename(&self, old: &str, new: &str) -> Result<(), ScriptError> {
        check_name(old)?;
        check_name(new)?;
        if !self.exists(old)? {
            return Err(ScriptError::NonExistent);
        }
        if self.exists(new)? {
            return Err(ScriptError::AlreadyExists);
        }
        if old == new {
            return Ok(());
        }
        let was_active = self.active()?.as_deref() == Some(old);
        if !was_active {
            durable::move_noreplace(&self.path(old), &self.path(new)).map_err(exists_as)?;
            durable::fsync_dir(&self.dir())?;
            return Ok(());
        }
        // The link always names a script that is there: the new name first, then the link, then
        // the old name goes.
        match fs::hard_link(self.path(old), self.path(new)) {
            Ok(()) => {
                durable::fsync_dir(&self.dir())?;
                self.link_to(Some(new))?;
                fs::remove_file(self.path(old))?;
                durable::fsync_dir(&self.dir())?;
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Err(ScriptError::AlreadyExists),
            Err(_) => {
                durable::move_noreplace(&self.path(old), &self.path(new)).map_err(exists_as)?;
                durable::fsync_dir(&self.dir())?;
                self.link_to(Some(new))?;
            }
        }
        Ok(())
    }

    /// RFC 5804 2.8 SETACTIVE: `None` (the empty name) deactivates.
    pub fn set_active(&self, name: Option<&str>) -> Result<(), ScriptError> {
        if let Some(name) = name {
            check_name(name)?;
            if !self.exists(name)? {
                return Err(ScriptError::NonExistent);
            }
        }
        self.link_to(name)
    }

    /// Points the active link at `name` (or removes it), durably. A regular file in its place (a
    /// script written by hand) is kept as the script "dovecot.orig" first, as Pigeonhole does.
    fn link_to(&self, name: Option<&str>) -> Result<(), ScriptError> {
        let link = self.link();
        match fs::symlink_metadata(&link) {
            Ok(m) if m.is_file() => {
                make_dir(&self.dir())?;
                durable::move_noreplace(&link, &self.path(ORIGINAL))?;
                durable::fsync_dir(&self.dir())?;
                log::info!("event=sieve_kept_original path={}", self.path(ORIGINAL).display());
            }
            Ok(m) if !m.file_type().is_symlink() => {
                return Err(ScriptError::Io(format!("{} is not a symbolic link", link.display())));
            }
            _ => {}
        }
        match name {
            None => match fs::remove_file(&link) {
                Ok(()) => durable::fsync_dir(&self.home)?,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            },
            Some(name) => {
                let tmp = durable::temp_path(&link);
                std::os::unix::fs::symlink(format!("{SCRIPT_DIR}/{name}{EXT}"), &tmp)?;
                if let Err(e) = fs::rename(&tmp, &link) {
                    let _ = fs::remove_file(&tmp);
                    return Err(e.into());
                }
                durable::fsync_dir(&self.home)?;
            }
        }
        Ok(())
    }
}

fn exists_as(e: io::Error) -> ScriptError {
    if e.kind() == io::ErrorKind::AlreadyExists { ScriptError::AlreadyExists } else { e.into() }
}

/// Makes a directory (and its parents) for the owner's eyes only.
fn make_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    durable::fsync_dir(&durable::parent(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(max_scripts: usize, max_size: u64) -> (tempfile::TempDir, ScriptStore) {
        let t = tempfile::tempdir().unwrap();
        let s = ScriptStore::new(t.path().join("home"), max_scripts, max_size);
        (t, s)
    }

    #[test]
    fn names_follow_rfc5804_1_6() {
        for ok in ["vacation", "my script", "régles été", "a.b", ".hidden", "x".repeat(MAX_NAME).as_str()]
        {
            assert_eq!(check_name(ok), Ok(()), "{ok}");
        }
        for bad in ["", "a/b", "tab\there", "nl\n", "del\u{7f}", "c1\u{85}", "ls\u{2028}", "ps\u{2029}"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_name(&"x".repeat(MAX_NAME + 1)).is_err());
    }

    #[test]
    fn pigeonhole_layout_and_active_link() {
        let (_t, s) = store(20, 1000);
        assert_eq!(s.list().unwrap(), (vec![], None), "nothing yet, no directory");
        s.put("b", b"keep;\r\n").unwrap();
        s.put("a", b"stop;\r\n").unwrap();
        assert_eq!(fs::read(s.home().join("sieve/a.sieve")).unwrap(), b"stop;\r\n");
        s.set_active(Some("a")).unwrap();
        assert_eq!(fs::read_link(s.home().join(".dovecot.sieve")).unwrap(), Path::new("sieve/a.sieve"));
        assert_eq!(fs::read(s.home().join(".dovecot.sieve")).unwrap(), b"stop;\r\n", "the link resolves");
        assert_eq!(s.list().unwrap(), (vec!["a".into(), "b".into()], Some("a".into())));
        assert_eq!(s.delete("a"), Err(ScriptError::Active));
        s.rename("a", "c").unwrap();
        assert_eq!(s.active().unwrap().as_deref(), Some("c"), "the active script stays active");
        assert!(!s.home().join("sieve/a.sieve").exists());
        assert_eq!(s.rename("c", "b"), Err(ScriptError::AlreadyExists));
        assert_eq!(s.rename("zz", "y"), Err(ScriptError::NonExistent));
        s.set_active(None).unwrap();
        assert!(fs::symlink_metadata(s.home().join(".dovecot.sieve")).is_err());
        s.delete("c").unwrap();
        assert_eq!(s.get("c"), Err(ScriptError::NonExistent));
        assert_eq!(s.set_active(Some("c")), Err(ScriptError::NonExistent));
        let names: Vec<_> =
            fs::read_dir(s.home().join("sieve")).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("b.sieve")], "no temp file is left");
    }

    #[test]
    fn where_scripts_live() {
        let d = Path::new("/var/lib/buzon");
        assert_eq!(
            home_for(Some(Path::new("/home/tim")), d, "tim", "x.org").unwrap(),
            Path::new("/home/tim")
        );
        assert_eq!(home_for(None, d, "tim", "x.org").unwrap(), Path::new("/var/lib/buzon/sieve/x.org/tim"));
        for (l, dom) in [("..", "x.org"), ("a/b", "x.org"), ("tim", ".."), ("", "x.org")] {
            assert!(home_for(None, d, l, dom).is_err(), "{l}@{dom}");
        }
    }

    #[test]
    fn quotas() {
        let (_t, s) = store(2, 10);
        s.put("a", b"1").unwrap();
        s.put("b", b"2").unwrap();
        assert_eq!(s.put("c", b"3"), Err(ScriptError::MaxScripts(2)));
        s.put("a", b"replaced").unwrap();
        assert_eq!(s.put("a", b"12345678901"), Err(ScriptError::MaxSize(10)));
        assert_eq!(s.have_space("x", 1), Err(ScriptError::MaxScripts(2)));
        assert_eq!(s.have_space("a", 11), Err(ScriptError::MaxSize(10)));
        assert_eq!(s.have_space("a", 10), Ok(()));
    }

    #[test]
    fn a_hand_written_active_file_is_kept() {
        let (_t, s) = store(20, 1000);
        fs::create_dir_all(s.home()).unwrap();
        fs::write(s.home().join(".dovecot.sieve"), b"discard;\n").unwrap();
        s.put("new", b"keep;\n").unwrap();
        s.set_active(Some("new")).unwrap();
        assert_eq!(s.get("dovecot.orig").unwrap(), b"discard;\n");
        assert_eq!(s.active().unwrap().as_deref(), Some("new"));
    }
}
