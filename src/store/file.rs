//! Delivery to a `/path` target of aliases(5) or ~/.forward: the message is appended in mbox format
//! (RFC 4155, mboxrd quoting) with the dotlock and fcntl lock of mbox delivery, as the target's
//! identity, so it takes part in the two-phase delivery of its message like any mailbox.
//! `/dev/null` discards, as in sendmail and Postfix.

use std::path::Path;

use super::{Dest, Owner, StoreError};
use crate::config::MailboxKind;

/// The store destination for appending to `path` as `owner`; `Ok(None)`: `/dev/null`, nothing to
/// write. The directory must exist (a file target never creates directories); the file itself is
/// created 0600 when missing. mbox.rs refuses symlinks, non-regular files and hard-linked files.
pub fn dest(path: &Path, owner: Option<Owner>) -> Result<Option<Dest>, StoreError> {
    if path == Path::new("/dev/null") {
        return Ok(None);
    }
    if !path.is_absolute() {
        return Err(StoreError::permanent(format!("{}: not an absolute path", path.display())));
    }
    match path.parent() {
        Some(dir) if dir.is_dir() => {}
        _ => {
            return Err(StoreError::permanent(format!("{}: the directory does not exist", path.display())));
        }
    }
    Ok(Some(Dest { kind: MailboxKind::Mbox, path: path.to_path_buf(), owner, account: None }))
}

#[cfg(test)]
mod tests {
    use super::super::tests::{BODY, msg, opts, spool};
    use super::*;
    use std::fs;

    #[test]
    fn file_targets() {
        let d = tempfile::tempdir().unwrap();
        assert!(dest(Path::new("/dev/null"), None).unwrap().is_none());
        assert!(dest(Path::new("rel/x"), None).unwrap_err().permanent);
        assert!(dest(&d.path().join("no/such/dir/x"), None).unwrap_err().permanent);
        let log = d.path().join("copy.log");
        let dst = dest(&log, None).unwrap().unwrap();
        let src = spool(d.path(), BODY);
        let m = msg(&src, BODY.len() as u64);
        super::super::deliver_all(&[dst.clone(), dst], &m, &opts()).unwrap();
        let text = fs::read(&log).unwrap();
        assert!(text.starts_with(b"From a@b.example Sat Nov 28 03:48:08 2026\nReturn-Path:"));
        assert!(text.windows(11).any(|w| w == b">>From ther"), "mboxrd quoting");
        assert_eq!(text.windows(16).filter(|w| *w == b"From a@b.example").count(), 1);
    }
}
