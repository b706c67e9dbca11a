//! STUB (being written): SEARCH evaluation and sequence sets.
use crate::imap::types::{SearchKey, SeqSet};
use crate::store::folder::{Folder, FolderError, MessageInfo, Uid};

/// 0-based indexes of the messages a sequence set names, ascending, without duplicates.
pub fn resolve(_set: &SeqSet, _messages: &[MessageInfo], _uid: bool, _saved: &[Uid]) -> Vec<usize> {
    Vec::new()
}

/// 0-based indexes of the messages matching `key`, ascending.
pub fn search(_folder: &mut dyn Folder, _key: &SearchKey, _saved: &[Uid]) -> Result<Vec<usize>, FolderError> {
    Ok(Vec::new())
}
