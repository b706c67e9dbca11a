//! A Unix user's ~/.forward (forward(5) of sendmail and Postfix local(8)): the addresses, files and
//! commands that replace delivery to the user's mailbox, read with the user's own rights and used
//! only when the user (or root) owns it and nobody else can write it.

use crate::aliases::{self, ListFileError, Target};
use crate::auth::Account;
use crate::store::owner::{Owner, become_owner};
use std::path::PathBuf;

/// The Unix identity a command or file delivery runs as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunAs {
    /// The login name (`USER`, `LOGNAME` of a command).
    pub user: String,
    pub uid: u32,
    pub gid: u32,
    /// `HOME` of a command, and its working directory when it exists; `/` when the user has none.
    pub home: PathBuf,
}

impl RunAs {
    /// The identity of a Unix account (`None` for an account without uid and gid).
    pub fn of(acc: &Account) -> Option<RunAs> {
        Some(RunAs {
            user: acc.name.clone(),
            uid: acc.uid?,
            gid: acc.gid?,
            home: acc.home.clone().unwrap_or_else(|| PathBuf::from("/")),
        })
    }

    /// As a store owner.
    pub fn owner(&self) -> Owner {
        Owner { uid: self.uid, gid: self.gid }
    }
}

/// The targets of `acc`'s ~/.forward and whom they run as, or `None` when the mail goes to the
/// mailbox: no such file, an empty one, or one that is not safe or does not parse (each logged:
/// the user's mail must not stop because of their own typo). `Err` is temporary (an I/O error).
pub(super) fn read_forward(
    acc: &Account,
    reader: Option<&super::ForwardReader>,
) -> Result<Option<(Vec<Target>, RunAs)>, String> {
    let (Some(home), Some(run_as)) = (&acc.home, RunAs::of(acc)) else {
        return Ok(None);
    };
    let path = home.join(".forward");
    let read = match reader {
        // The helper reads it as the user (the server, no longer root, cannot).
        Some(r) => (r.0)(&acc.name).and_then(|bytes| aliases::parse_list_bytes(&bytes, &path, run_as.uid)),
        None => {
            // Read as the user, so a .forward can only name what its owner could read anyway.
            let _as = become_owner(Some(run_as.owner()), None)?;
            aliases::read_list_file(&path, &[run_as.uid, 0], true)
        }
    };
    match read {
        Ok(inc) if inc.targets.is_empty() => Ok(None),
        Ok(inc) => Ok(Some((inc.targets, run_as))),
        Err(ListFileError::Missing) => Ok(None),
        Err(e @ (ListFileError::Unsafe(_) | ListFileError::Syntax(_))) => {
            log::warn!(
                "user={} event=forward_ignored reason=\"{}\"; delivering to the mailbox",
                acc.name,
                e.message(&path)
            );
            Ok(None)
        }
        Err(ListFileError::Io(m)) => Err(format!("~{}/.forward: {m}", acc.name)),
    }
}
