//! User databases: who has an account here (the Unix users, or a Dovecot-style passwd-file of
//! virtual users), with uid, gid and home, and their stored secrets for authentication (RFC 4954
//! SMTP AUTH; the schemes are in `scheme`, SASL builds on `UserDb::secret`).

pub mod limiter;
pub mod passwd_file;
pub mod sasl;
pub mod scheme;
pub mod shadow;
pub mod system;

use scheme::Stored;
use std::path::PathBuf;

/// One account as a user database stores it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    /// The name as stored: `alice` or `alice@example.org`.
    pub name: String,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub home: Option<PathBuf>,
}

/// Where accounts come from (`users = system` or `users = file:PATH`).
#[derive(Debug)]
pub enum UserDb {
    System,
    File(passwd_file::PasswdFile),
}

impl UserDb {
    /// Opens the database the configuration names. A missing passwd-file is not an error (nobody
    /// has an account yet; it is picked up once `buzon passwd` creates it); an unreadable or
    /// garbled one is.
    pub fn open(spec: &crate::config::UsersSpec) -> Result<UserDb, String> {
        match spec {
            crate::config::UsersSpec::System => Ok(UserDb::System),
            crate::config::UsersSpec::File(path) => passwd_file::PasswdFile::open(path).map(UserDb::File),
        }
    }

    /// Looks up the account receiving mail for `local@domain` (`domain` is one of ours, lowercase).
    /// The local part is matched without regard to case. `Err` is a temporary failure (I/O),
    /// `Ok(None)` means there is no such user.
    pub fn lookup(&self, local: &str, domain: &str) -> Result<Option<Account>, String> {
        let local = local.to_ascii_lowercase();
        match self {
            // Unix user names have no domain: every local domain shares them.
            UserDb::System => system::getpwnam(&local),
            UserDb::File(f) => Ok(f.lookup(&format!("{local}@{domain}"))?.map(|e| e.account)),
        }
    }

    /// The account and stored secret of login name `user`, any case: a passwd-file entry
    /// `user@domain` or plain `user` (found as `lookup` finds it), or a Unix user whose shadow hash
    /// becomes `{CRYPT}` (locked, empty or expired: a secret no password matches). `Ok(None)`: no such
    /// user. `Err` is temporary: the database is unreadable (for system users, not running as root),
    /// or this user's secret is garbled (logged here, without the secret).
    pub fn secret(&self, user: &str) -> Result<Option<(Account, Stored)>, String> {
        let user = user.to_ascii_lowercase();
        match self {
            UserDb::System => {
                let Some(account) = system::getpwnam(&user)? else { return Ok(None) };
                // In passwd but not in shadow (no shadow entry at all): nothing can verify.
                let stored = shadow::secret(&account.name)?.unwrap_or_else(Stored::locked);
                Ok(Some((account, stored)))
            }
            UserDb::File(f) => {
                let Some(e) = f.lookup(&user)? else { return Ok(None) };
                match Stored::parse(&e.secret) {
                    Ok(s) => Ok(Some((e.account, s))),
                    Err(why) => {
                        let m =
                            format!("{}:{}: user {:?}: {why}", f.path().display(), e.line, e.account.name);
                        log::error!("{m}");
                        Err(m)
                    }
                }
            }
        }
    }

    /// Checks a cleartext password (AUTH PLAIN, LOGIN). `Ok(None)`: unknown user or wrong password
    /// (the caller must not tell which); `Err`: temporary failure.
    pub fn verify_password(&self, user: &str, password: &[u8]) -> Result<Option<Account>, String> {
        let Some((account, stored)) = self.secret(user)? else { return Ok(None) };
        Ok(stored.verify_user(&account.name, password).then_some(account))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::UsersSpec;

    #[test]
    fn system_db_finds_root_in_any_case() {
        let db = UserDb::open(&UsersSpec::System).unwrap();
        let root = db.lookup("ROOT", "example.org").unwrap().unwrap();
        assert_eq!((root.name.as_str(), root.uid), ("root", Some(0)));
        assert_eq!(db.lookup("no-such-user-xyzzy", "example.org").unwrap(), None);
    }

    #[test]
    fn file_db_domain_then_plain() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("passwd");
        std::fs::write(&path, "alice@a.example:{PLAIN}x:1:1::/home/a::\nbob:{PLAIN}y\n").unwrap();
        let db = UserDb::open(&UsersSpec::File(path)).unwrap();
        let a = db.lookup("Alice", "a.example").unwrap().unwrap();
        assert_eq!((a.name.as_str(), a.uid), ("alice@a.example", Some(1)));
        assert_eq!(db.lookup("alice", "b.example").unwrap(), None);
        assert_eq!(db.lookup("bob", "b.example").unwrap().unwrap().name, "bob");
    }

    #[test]
    fn file_db_verifies_passwords() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("passwd");
        let text = "alice@a.example:{PLAIN}pw-a:1:1::/home/a::\n\
                    bob:{SHA512-CRYPT}$6$CG0NHO9jIXQi7YeK$FUyRqCKdBpgZJbkt6TFj5QwktXuf.N1hwd/Uo23i1ymeoX0M2SpuetBx1Phvsukp8eCsljwh7DUJoJHrIfjvi0\n\
                    dig@realm.example:{DIGEST-MD5}36ddd23766a05a553702bd7befba5d2c\n\
                    broken:{SHA256}tooshort\n";
        std::fs::write(&path, text).unwrap();
        let db = UserDb::open(&UsersSpec::File(path)).unwrap();
        for (user, pw, want) in [
            ("alice@a.example", "pw-a", Some("alice@a.example")),
            ("ALICE@A.EXAMPLE", "pw-a", Some("alice@a.example")),
            ("alice@a.example", "pw-A", None),
            ("alice", "pw-a", None),
            ("bob", "secret", Some("bob")),
            ("Bob@any.example", "secret", Some("bob")),
            ("bob", "secret ", None),
            ("nobody", "secret", None),
            ("dig@realm.example", "secret", Some("dig@realm.example")),
            ("dig@realm.example", "Secret", None),
        ] {
            let got = db.verify_password(user, pw.as_bytes()).unwrap().map(|a| a.name);
            assert_eq!(got.as_deref(), want, "{user} {pw}");
        }
        let (acct, stored) = db.secret("Alice@a.example").unwrap().unwrap();
        assert_eq!((acct.uid, stored.plaintext()), (Some(1), Some("pw-a")));
        assert_eq!(stored.scheme(), scheme::Scheme::Plain);
        // A garbled secret is a temporary failure, not "wrong password".
        assert!(db.secret("broken").is_err());
        assert!(db.verify_password("broken", b"x").is_err());
    }

    #[test]
    fn system_db_secret_needs_root() {
        let db = UserDb::open(&UsersSpec::System).unwrap();
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            let (acct, stored) = db.secret("ROOT").unwrap().unwrap();
            assert_eq!((acct.uid, stored.scheme()), (Some(0), scheme::Scheme::Crypt));
            assert_eq!(db.verify_password("root", b"not-the-password-xyzzy").unwrap(), None);
            assert!(db.secret("no-such-user-xyzzy").unwrap().is_none());
        } else {
            assert!(db.secret("root").is_err());
        }
    }

    #[test]
    fn missing_file_is_empty_not_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let db = UserDb::open(&UsersSpec::File(dir.path().join("nope/passwd"))).unwrap();
        assert_eq!(db.lookup("alice", "a.example").unwrap(), None);
    }
}
