//! Dovecot-compatible passwd-file of virtual users (`user[@domain]:{SCHEME}secret:uid:gid:gecos:home:
//! shell:extra`), re-read when it changes, and `buzon passwd`, which sets a secret in any scheme of
//! `scheme` (`{SHA512-CRYPT}` by default) with an atomic, durable rewrite.

use super::scheme::{self, Scheme};
use super::{Account, system};
use std::collections::HashMap;
use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// One line of the file: the account and its secret.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswdEntry {
    pub account: Account,
    /// The password field as written, usually `{SCHEME}...`; never logged.
    pub secret: String,
    /// Dovecot's space-separated `key=value` extra fields (unused so far).
    pub extra: String,
    /// Where it came from, for messages.
    pub line: usize,
}

impl fmt::Debug for PasswdEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The secret stays out of logs and test output.
        f.debug_struct("PasswdEntry")
            .field("account", &self.account)
            .field("extra", &self.extra)
            .field("line", &self.line)
            .finish_non_exhaustive()
    }
}

/// The users of one passwd-file, keyed by lowercase name.
type Table = Arc<HashMap<String, PasswdEntry>>;

/// Identity of one version of a file: a change of any of these means "read it again". (Shared with
/// the aliases file, which reloads the same way.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    pub(crate) fn of(m: &fs::Metadata) -> Stamp {
        Stamp {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        }
    }
}

/// What the last check of a file found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Seen {
    Never,
    Missing,
    File(Stamp),
}

#[derive(Debug)]
struct State {
    seen: Seen,
    /// The users, or why this version of the file is unusable (kept until it changes, so a garbled
    /// file is reported once, not re-read and re-logged at every lookup).
    users: Result<Table, String>,
}

/// A passwd-file, re-read when its inode, size, mtime or ctime change (one stat per lookup), so
/// adding a user needs no restart.
#[derive(Debug)]
pub struct PasswdFile {
    path: PathBuf,
    state: Mutex<State>,
}

impl PasswdFile {
    /// Opens and reads the file. Missing is fine (no users yet, warned once); unreadable or garbled
    /// (binary, or no usable line at all) is an error.
    pub fn open(path: &Path) -> Result<PasswdFile, String> {
        let f = PasswdFile {
            path: path.to_path_buf(),
            state: Mutex::new(State { seen: Seen::Never, users: Ok(Arc::new(HashMap::new())) }),
        };
        f.current()?;
        Ok(f)
    }

    /// The path it reads.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Finds `name` (any case). A name with a domain, `local@domain`, is looked up as written and
    /// then as plain `local`: a plain entry is a user of every local domain. `Err` is temporary.
    pub fn lookup(&self, name: &str) -> Result<Option<PasswdEntry>, String> {
        let users = self.current()?;
        let name = name.to_ascii_lowercase();
        let found = users.get(&name).or_else(|| name.rsplit_once('@').and_then(|(l, _)| users.get(l)));
        Ok(found.cloned())
    }

    /// The table for the file as it is now, re-read if it changed since the last call.
    fn current(&self) -> Result<Table, String> {
        let shown = self.path.display();
        // A panic elsewhere while holding the lock leaves a consistent State (it is replaced whole).
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match fs::metadata(&self.path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if st.seen != Seen::Missing {
                    log::warn!(
                        "{shown}: passwd-file does not exist; no virtual users until it is created \
                         (buzon passwd USER)"
                    );
                    st.seen = Seen::Missing;
                    st.users = Ok(Arc::new(HashMap::new()));
                }
            }
            Err(e) => return Err(format!("{shown}: {e}")),
            Ok(m) if Seen::File(Stamp::of(&m)) == st.seen => {}
            Ok(_) => {
                // Read through one descriptor and stamp what was read, not what was stat'ed.
                let mut file = File::open(&self.path).map_err(|e| format!("{shown}: {e}"))?;
                let stamp = Stamp::of(&file.metadata().map_err(|e| format!("{shown}: {e}"))?);
                let mut bytes = Vec::new();
                file.read_to_end(&mut bytes).map_err(|e| format!("{shown}: {e}"))?;
                let users = parse(&bytes, &shown.to_string());
                match &users {
                    Ok(u) if st.seen != Seen::Never => log::info!("{shown}: re-read, {} users", u.len()),
                    Ok(_) => {}
                    Err(e) => log::error!("{e}"),
                }
                st.users = users.map(Arc::new);
                st.seen = Seen::File(stamp);
            }
        }
        st.users.clone()
    }
}

/// Parses the whole file. Malformed lines are logged with `file:line` and skipped; the result is an
/// error only when the file is garbled as a whole.
fn parse(bytes: &[u8], name: &str) -> Result<HashMap<String, PasswdEntry>, String> {
    if bytes.contains(&0) {
        return Err(format!("{name}: contains NUL bytes; this is not a passwd-file"));
    }
    let mut users: HashMap<String, PasswdEntry> = HashMap::new();
    let mut bad = 0usize;
    for (i, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let n = i + 1;
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.iter().all(u8::is_ascii_whitespace) || raw.first() == Some(&b'#') {
            continue;
        }
        match parse_line(raw, n) {
            Ok(e) => {
                let key = e.account.name.to_ascii_lowercase();
                if let Some(first) = users.get(&key) {
                    log::warn!(
                        "{name}:{n}: user {key:?} already defined at line {}; line ignored",
                        first.line
                    );
                } else {
                    users.insert(key, e);
                }
            }
            Err(m) => {
                bad += 1;
                log::warn!("{name}:{n}: {m}; line ignored");
            }
        }
    }
    if users.is_empty() && bad > 0 {
        return Err(format!("{name}: no valid line (expected user:{{SCHEME}}password:uid:gid:gecos:home)"));
    }
    Ok(users)
}

/// `user:password[:uid:gid:gecos:home:shell:extra_fields]`, as Dovecot reads it.
fn parse_line(raw: &[u8], n: usize) -> Result<PasswdEntry, String> {
    let line = std::str::from_utf8(raw).map_err(|_| "not valid UTF-8".to_string())?;
    let f: Vec<&str> = line.split(':').collect();
    if f.len() < 2 {
        return Err("expected user:password".into());
    }
    check_user_name(f[0]).map_err(|e| e.to_string())?;
    let field = |i: usize| f.get(i).copied().unwrap_or("");
    let uid = match field(2) {
        "" => None,
        s => Some(match s.parse::<u32>() {
            Ok(n) => n,
            // Dovecot also takes a user name here.
            Err(_) => system::getpwnam(s)?.and_then(|a| a.uid).ok_or(format!("uid {s:?}: no such user"))?,
        }),
    };
    let gid = match field(3) {
        "" => None,
        s => Some(match s.parse::<u32>() {
            Ok(n) => n,
            Err(_) => system::getgrnam(s)?.ok_or(format!("gid {s:?}: no such group"))?,
        }),
    };
    let home = match field(5) {
        "" => None,
        h if h.starts_with('/') => Some(PathBuf::from(h)),
        h => return Err(format!("home {h:?} is not an absolute path")),
    };
    Ok(PasswdEntry {
        account: Account { name: f[0].to_string(), uid, gid, home },
        secret: f[1].to_string(),
        extra: f.get(7..).map(|x| x.join(":")).unwrap_or_default(),
        line: n,
    })
}

/// What may be a user name in the file: no separators, blanks or controls, and not a comment.
fn check_user_name(user: &str) -> io::Result<()> {
    let bad = |m: &str| Err(io::Error::new(io::ErrorKind::InvalidInput, format!("user {user:?}: {m}")));
    if user.is_empty() {
        return bad("empty user name");
    }
    if user.starts_with('#') {
        return bad("a user name cannot start with '#'");
    }
    if user.chars().any(|c| c == ':' || c.is_whitespace() || c.is_control()) {
        return bad("a user name cannot contain ':', blanks or control characters");
    }
    Ok(())
}

/// `buzon passwd USER`: sets USER's password in [`scheme::DEFAULT_SCHEME`]; see
/// [`set_password_scheme`].
pub fn set_password(path: &Path, user: &str, password: &str) -> io::Result<()> {
    set_password_scheme(path, user, password, scheme::DEFAULT_SCHEME)
}

/// `buzon passwd -s SCHEME USER`: sets USER's password as `{SCHEME}...` (random salt). An
/// existing line (any case) keeps everything but its secret and every other line stays
/// byte-identical; otherwise `USER:{SHA512-CRYPT}...` is appended. The file (and its directory) is
/// created if missing, mode 0600; an existing file keeps its owner and mode, minus any access for
/// others. Written atomically: temp file in the same directory, fsync, rename, fsync the directory.
pub fn set_password_scheme(path: &Path, user: &str, password: &str, scheme: Scheme) -> io::Result<()> {
    check_user_name(user)?;
    if password.is_empty() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "the password is empty"));
    }
    // Edit the file a symlink points to rather than replace the link.
    let path = match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => fs::canonicalize(path)?,
        _ => path.to_path_buf(),
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if path.file_name().is_none() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("{}: not a file", path.display())));
    }
    fs::create_dir_all(&dir)?;
    let dir_fd = File::open(&dir)?;
    // Two `buzon passwd` at once must not lose one another's change.
    lock(&dir_fd)?;

    let (old, meta) = match fs::read(&path) {
        Ok(b) => (b, Some(fs::metadata(&path)?)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => (Vec::new(), None),
        Err(e) => return Err(e),
    };
    let secret = scheme::hash(scheme, password).map_err(io::Error::other)?;
    let new = replace_secret(&old, user, &secret);
    let mode = meta.as_ref().map(|m| m.permissions().mode() & 0o770).unwrap_or(0o600);
    crate::durable::write_file(&path, crate::durable::Place::Replace, 0o600, |f| {
        if let Some(m) = &meta {
            // SAFETY: fchown on a descriptor we own; failure (not root) is handled below.
            if unsafe { libc::fchown(f.as_raw_fd(), m.uid(), m.gid()) } != 0 {
                log::warn!(
                    "{}: cannot keep owner {}:{}: {}",
                    path.display(),
                    m.uid(),
                    m.gid(),
                    io::Error::last_os_error()
                );
            }
            f.set_permissions(fs::Permissions::from_mode(mode))?;
        }
        f.write_all(&new)
    })
}

/// The file with `user`'s secret set: the first line for that user (as lookups find it) gets the new
/// secret, or a new line is appended. Everything else is copied byte for byte.
fn replace_secret(old: &[u8], user: &str, secret: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(old.len() + user.len() + secret.len() + 2);
    let mut done = false;
    for line in old.split_inclusive(|&b| b == b'\n') {
        let first_colon = line.iter().position(|&b| b == b':');
        match first_colon {
            Some(c) if !done && line[..c].eq_ignore_ascii_case(user.as_bytes()) => {
                let rest = &line[c + 1..];
                // The secret ends at the next ':' or at the end of the line (before CR LF / LF).
                let end = rest.iter().position(|&b| b == b':').unwrap_or_else(|| {
                    let mut e = rest.len();
                    for t in [b'\n', b'\r'] {
                        if e > 0 && rest[e - 1] == t {
                            e -= 1;
                        }
                    }
                    e
                });
                out.extend_from_slice(&line[..=c]);
                out.extend_from_slice(secret.as_bytes());
                out.extend_from_slice(&rest[end..]);
                done = true;
            }
            _ => out.extend_from_slice(line),
        }
    }
    if !done {
        if !out.is_empty() && !out.ends_with(b"\n") {
            out.push(b'\n');
        }
        out.extend_from_slice(format!("{user}:{secret}\n").as_bytes());
    }
    out
}

/// An exclusive flock(2) on the directory, released when the descriptor closes. File systems
/// without locks (some NFS) are tolerated: concurrent `buzon passwd` runs are rare.
fn lock(dir: &File) -> io::Result<()> {
    // SAFETY: flock on a descriptor we own.
    if unsafe { libc::flock(dir.as_raw_fd(), libc::LOCK_EX) } == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::ENOLCK | libc::EOPNOTSUPP) => Ok(()),
        _ => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::scheme::Stored;

    fn verifies(secret: &str, password: &str) -> bool {
        Stored::parse(secret).is_ok_and(|s| s.verify(password.as_bytes()))
    }

    const SAMPLE: &str = "\
# virtual users
alice@a.example:{PLAIN}pw:1001:1001::/home/alice::userdb_quota_rule=*:storage=1G
Bob:{SHA512-CRYPT}$6$x$y:1002:1002:Bob B:/home/bob:/bin/false

carol:{PLAIN}c
";

    fn write(dir: &Path, text: &[u8]) -> PathBuf {
        let p = dir.join("passwd");
        fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn parses_fields() {
        let t = parse(SAMPLE.as_bytes(), "t").unwrap();
        assert_eq!(t.len(), 3);
        let a = &t["alice@a.example"];
        assert_eq!(a.account.uid, Some(1001));
        assert_eq!(a.account.home.as_deref(), Some(Path::new("/home/alice")));
        assert_eq!(a.secret, "{PLAIN}pw");
        assert_eq!(a.extra, "userdb_quota_rule=*:storage=1G");
        assert_eq!(t["bob"].account.name, "Bob");
        assert_eq!(t["bob"].line, 3);
        let c = &t["carol"].account;
        assert_eq!((c.uid, c.gid, &c.home), (None, None, &None));
    }

    #[test]
    fn malformed_lines_are_skipped() {
        let cases: &[(&[u8], &[&str])] = &[
            (b"nocolon\nok:{PLAIN}x\n", &["ok"]),
            (b":{PLAIN}x\nok:x\n", &["ok"]),
            (b"a b:x\nok:x\n", &["ok"]),
            (b"bad:x:notanumber-nor-user-xyzzy\nok:x\n", &["ok"]),
            (b"bad:x:1:1::relative/home\nok:x\n", &["ok"]),
            (b"bad\xff:x\nok:x\r\n", &["ok"]),
            (b"ok:x\nok:y\n", &["ok"]),
            (b"ok:x\nhalf-writ", &["ok"]),
            (b"root:x:root:root\n", &["root"]),
            (b"", &[]),
            (b"# only a comment\n\n   \n", &[]),
        ];
        for (text, want) in cases {
            let t = parse(text, "t").unwrap();
            let mut got: Vec<&str> = t.keys().map(String::as_str).collect();
            got.sort();
            assert_eq!(&got, want, "{:?}", String::from_utf8_lossy(text));
        }
        assert_eq!(parse(b"ok:first\nOK:second\n", "t").unwrap()["ok"].secret, "first");
        assert_eq!(parse(b"root:x:root:root\n", "t").unwrap()["root"].account.uid, Some(0));
    }

    #[test]
    fn garbled_files_are_errors() {
        for text in [&b"a:b\0c\n"[..], b"nothing valid\nhere either\n"] {
            let e = parse(text, "f").unwrap_err();
            assert!(e.starts_with("f: "), "{e}");
        }
        let dir = tempfile::tempdir().unwrap();
        assert!(PasswdFile::open(dir.path()).is_err(), "a directory is not a passwd-file");
        let p = write(dir.path(), b"\0\0\0");
        assert!(PasswdFile::open(&p).is_err());
    }

    #[test]
    fn lookup_domain_then_plain_any_case() {
        let dir = tempfile::tempdir().unwrap();
        let f = PasswdFile::open(&write(dir.path(), SAMPLE.as_bytes())).unwrap();
        for (q, want) in [
            ("alice@a.example", Some("alice@a.example")),
            ("ALICE@A.Example", Some("alice@a.example")),
            ("alice@b.example", None),
            ("alice", None),
            ("bob@any.example", Some("Bob")),
            ("bob", Some("Bob")),
            ("nobody@a.example", None),
        ] {
            let got = f.lookup(q).unwrap().map(|e| e.account.name);
            assert_eq!(got.as_deref(), want, "{q}");
        }
    }

    #[test]
    fn reloads_after_edit_and_survives_removal() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("passwd");
        let f = PasswdFile::open(&p).unwrap();
        assert!(f.lookup("dave").unwrap().is_none());
        // Same size, same inode, edited in place: the mtime tells. (The kernel's clock for file
        // times is coarse, so the test sets distinct times rather than relying on the writes.)
        let edit = |text: &str, secs: u64| {
            fs::write(&p, text).unwrap();
            let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
            File::options().write(true).open(&p).unwrap().set_modified(t).unwrap();
        };
        edit("dave:{PLAIN}d\n", 1_000_000);
        assert!(f.lookup("dave").unwrap().is_some());
        edit("erin:{PLAIN}d\n", 1_000_001);
        assert!(f.lookup("dave").unwrap().is_none());
        assert!(f.lookup("erin").unwrap().is_some());
        // A garbled rewrite is a temporary error, not "no such user".
        edit("erin {PLAIN}d\n", 1_000_002);
        assert!(f.lookup("erin").is_err());
        fs::remove_file(&p).unwrap();
        assert!(f.lookup("erin").unwrap().is_none());
    }

    #[test]
    fn set_password_round_trip_keeps_other_lines() {
        let dir = tempfile::tempdir().unwrap();
        let original: &[u8] =
            b"# users\r\nalice:{PLAIN}old:1:2:g:/h:/s:extra=1\r\nbob:{PLAIN}b\nodd\xff:x\ncarol:{PLAIN}c";
        let p = write(dir.path(), original);
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();

        set_password(&p, "ALICE", "s3cret").unwrap();
        let after = fs::read(&p).unwrap();
        let lines: Vec<&[u8]> = after.split(|&b| b == b'\n').collect();
        let orig: Vec<&[u8]> = original.split(|&b| b == b'\n').collect();
        assert_eq!(lines.len(), orig.len());
        for (i, (a, o)) in lines.iter().zip(&orig).enumerate() {
            if i != 1 {
                assert_eq!(a, o, "line {}", i + 1);
            }
        }
        let alice = String::from_utf8(lines[1].to_vec()).unwrap();
        let fields: Vec<&str> = alice.split(':').collect();
        assert_eq!(fields[0], "alice");
        assert_eq!(&fields[2..], ["1", "2", "g", "/h", "/s", "extra=1\r"]);
        assert!(fields[1].starts_with("{SHA512-CRYPT}$6$"), "{}", fields[1]);
        assert!(verifies(fields[1], "s3cret") && !verifies(fields[1], "wrong"));
        // The mode loses world access and nothing else.
        assert_eq!(fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o640);

        // A new user is appended (after a newline the last line lacked); salts differ.
        set_password(&p, "dave@d.example", "s3cret").unwrap();
        let f = PasswdFile::open(&p).unwrap();
        let dave = f.lookup("dave@d.example").unwrap().unwrap().secret;
        let alice = f.lookup("alice").unwrap().unwrap().secret;
        assert_ne!(dave, alice);
        assert!(verifies(&dave, "s3cret"));
        let text = String::from_utf8_lossy(&fs::read(&p).unwrap()).into_owned();
        assert!(text.contains("carol:{PLAIN}c\ndave@d.example:{SHA512-CRYPT}$6$"), "{text}");
        assert_eq!(f.lookup("carol").unwrap().unwrap().secret, "{PLAIN}c");
        // No temp files are left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn set_password_creates_file_and_directory() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("etc/buzon/passwd");
        set_password(&p, "eve", "pw").unwrap();
        assert_eq!(fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        let text = fs::read_to_string(&p).unwrap();
        assert!(
            text.starts_with("eve:{SHA512-CRYPT}$6$") && text.ends_with('\n') && text.lines().count() == 1
        );
        for (user, pw) in [("", "x"), ("a:b", "x"), ("a b", "x"), ("#a", "x"), ("ok", "")] {
            let e = set_password(&p, user, pw).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{user:?}");
        }
    }

    #[test]
    fn set_password_in_other_schemes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("passwd");
        for (scheme, prefix) in [
            (Scheme::ScramSha256, "{SCRAM-SHA-256}4096,"),
            (Scheme::CramMd5, "{CRAM-MD5}"),
            (Scheme::Plain, "{PLAIN.B64}"),
            (Scheme::Crypt, "{CRYPT}$"),
        ] {
            set_password_scheme(&p, "u", "with:colon", scheme).unwrap();
            let e = PasswdFile::open(&p).unwrap().lookup("u").unwrap().unwrap();
            assert!(e.secret.starts_with(prefix), "{}", e.secret);
            assert!(verifies(&e.secret, "with:colon"));
        }
        let e = set_password_scheme(&p, "u", "pw", Scheme::DigestMd5).unwrap_err();
        assert!(e.to_string().contains("DIGEST-MD5"), "{e}");
    }

    #[test]
    fn replace_secret_cases() {
        for (old, want) in [
            ("", "u:S\n"),
            ("a:x", "a:x\nu:S\n"),
            ("u:old\n", "u:S\n"),
            ("u:old", "u:S"),
            ("u:old\r\n", "u:S\r\n"),
            ("u:\n", "u:S\n"),
            ("U:old:1:2\nu:second\n", "U:S:1:2\nu:second\n"),
            ("#u:old\nu\nu:x:\n", "#u:old\nu\nu:S:\n"),
            ("uu:x\n", "uu:x\nu:S\n"),
        ] {
            let got = replace_secret(old.as_bytes(), "u", "S");
            assert_eq!(String::from_utf8(got).unwrap(), want, "{old:?}");
        }
    }
}
