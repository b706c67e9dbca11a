//! User databases: who has an account here (the Unix users, or a Dovecot-style passwd-file of
//! virtual users), with uid, gid and home. Authentication (password schemes, SASL) builds on this.

pub mod passwd_file;
pub mod system;

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
    fn missing_file_is_empty_not_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let db = UserDb::open(&UsersSpec::File(dir.path().join("nope/passwd"))).unwrap();
        assert_eq!(db.lookup("alice", "a.example").unwrap(), None);
    }
}
