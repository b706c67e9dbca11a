//! STUB (being written): FETCH responses.
use std::io::{self, Write};

use crate::imap::types::FetchAtt;
use crate::store::folder::{Flags, Folder, FolderError};

#[derive(Clone, Copy, Debug, Default)]
pub struct FetchOpts {
    /// UID FETCH: UID is always in the response (RFC 3501 6.4.8).
    pub uid: bool,
    /// UTF8=ACCEPT or IMAP4rev2 is enabled (strings may be UTF-8).
    pub utf8: bool,
    /// IMAP4rev2 is enabled (no \Recent, RFC 9051 changes).
    pub rev2: bool,
}

#[derive(Debug)]
pub enum FetchError {
    Folder(FolderError),
    Io(io::Error),
}

/// Writes `* n FETCH (...)\r\n` for the message at `index` (n = index + 1).
pub fn fetch(
    _out: &mut dyn Write,
    _folder: &mut dyn Folder,
    _index: usize,
    _items: &[FetchAtt],
    _opts: FetchOpts,
) -> Result<(), FetchError> {
    Err(FetchError::Folder(FolderError::Temp("not yet".into())))
}

/// Appends `(\Seen \Flagged kw ...)`, with `\Recent` when `recent`.
pub fn write_flags(out: &mut Vec<u8>, flags: &Flags, recent: bool) {
    let _ = (out, flags, recent);
}
