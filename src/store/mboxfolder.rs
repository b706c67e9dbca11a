//! STUB (being written): an mbox file served as an IMAP folder.
use std::path::Path;
use std::time::Duration;

use crate::store::folder::{CopyResult, Flags, FolderError, Status};

pub struct MboxFolder;

impl MboxFolder {
    pub fn open(_path: &Path, _readonly: bool, _lock_timeout: Duration) -> Result<MboxFolder, FolderError> {
        Err(FolderError::Temp("not yet".into()))
    }
}

pub fn status(_path: &Path, _lock_timeout: Duration) -> Result<Status, FolderError> {
    Err(FolderError::Temp("not yet".into()))
}

pub fn append(
    _path: &Path,
    _lock_timeout: Duration,
    _flags: &Flags,
    _date: Option<i64>,
    _message: &[u8],
) -> Result<CopyResult, FolderError> {
    Err(FolderError::Temp("not yet".into()))
}

use crate::store::folder::{Changes, FlagOp, Folder, MessageInfo, Uid};

impl Folder for MboxFolder {
    fn name(&self) -> &str {
        "INBOX"
    }
    fn readonly(&self) -> bool {
        true
    }
    fn uidvalidity(&self) -> u32 {
        1
    }
    fn uidnext(&self) -> Uid {
        1
    }
    fn messages(&self) -> &[MessageInfo] {
        &[]
    }
    fn keywords(&self) -> Vec<String> {
        Vec::new()
    }
    fn sync(&mut self, _expunges: bool) -> Result<Changes, FolderError> {
        Ok(Changes::default())
    }
    fn changed(&mut self) -> bool {
        false
    }
    fn read(&mut self, _index: usize) -> Result<Vec<u8>, FolderError> {
        Err(FolderError::Temp("not yet".into()))
    }
    fn store(
        &mut self,
        _indexes: &[usize],
        _op: FlagOp,
        _flags: &crate::store::folder::Flags,
    ) -> Result<(), FolderError> {
        Err(FolderError::ReadOnly)
    }
    fn expunge(&mut self, _uids: Option<&[Uid]>) -> Result<Vec<u32>, FolderError> {
        Ok(Vec::new())
    }
}
