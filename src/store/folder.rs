//! The contract between the IMAP session and the message store: a user's folder tree ([`Store`]) and
//! one selected folder ([`Folder`]), with UIDs, flags and change tracking (RFC 3501 2.3, RFC 9051 2.3).
//! Implementations: Maildir++ (store/imapdir/) and the mbox INBOX (store/mboxfolder.rs).
//!
//! Names are UTF-8, hierarchy delimiter `/`, and `INBOX` (any case) is the inbox. Every message the
//! folder hands out has CRLF line ends: sizes are the CRLF sizes (RFC 3501 RFC822.SIZE).

use std::fmt;
use std::io::{Cursor, Read, Write};
use std::path::{Path, PathBuf};

/// A message's unique identifier (RFC 3501 2.3.1.1): never reused within one UIDVALIDITY.
pub type Uid = u32;

/// The hierarchy delimiter shown to clients.
pub const DELIMITER: char = '/';

/// System flag bits (RFC 3501 2.3.2). `\Recent` is not a stored flag: see [`MessageInfo::recent`].
pub const SEEN: u8 = 1;
pub const ANSWERED: u8 = 2;
pub const FLAGGED: u8 = 4;
pub const DELETED: u8 = 8;
pub const DRAFT: u8 = 16;

/// A message's stored flags: system flags and keywords (atoms; kept sorted, no duplicates).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Flags {
    pub system: u8,
    pub keywords: Vec<String>,
}

/// How a STORE changes flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlagOp {
    Replace,
    Add,
    Remove,
}

/// One message of a selected folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageInfo {
    pub uid: Uid,
    pub flags: Flags,
    /// CRLF size in octets (RFC822.SIZE).
    pub size: u64,
    /// INTERNALDATE, seconds since the epoch (Maildir: the file's mtime, as Dovecot does).
    pub internal_date: i64,
    /// `\Recent`: this session is the first to see the message (Maildir: it was in new/).
    pub recent: bool,
    /// RFC 7162 mod-sequence of its last change; 0 where the store keeps none (mbox).
    pub modseq: u64,
}

/// A folder as LIST shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FolderEntry {
    /// Full name, `/`-delimited, UTF-8; `INBOX` for the inbox.
    pub name: String,
    /// RFC 6154 attribute (`\Sent`, `\Drafts`, `\Trash`, `\Junk`, `\Archive`), if any.
    pub special_use: Option<&'static str>,
    /// `\Noselect`: a name that only exists as the parent of others.
    pub selectable: bool,
    pub subscribed: bool,
}

/// STATUS figures (RFC 3501 6.3.10, RFC 8438 SIZE, RFC 9051 DELETED).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Status {
    pub messages: u32,
    pub recent: u32,
    pub unseen: u32,
    pub deleted: u32,
    pub uidnext: Uid,
    pub uidvalidity: u32,
    /// Sum of the CRLF sizes.
    pub size: u64,
    /// RFC 7162 HIGHESTMODSEQ; 0 where the store keeps no mod-sequences.
    pub highest_modseq: u64,
}

/// What changed in a selected folder since the session last looked (deliveries, other sessions, other
/// programs).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// Message numbers (1-based) to announce with `* n EXPUNGE`, in the order to send them: each is
    /// relative to the view after the previous ones were removed.
    pub expunged: Vec<u32>,
    /// Messages now in the view, when it grew (`* n EXISTS`).
    pub exists: Option<u32>,
    /// 0-based indexes (in the view after this sync) whose flags changed (`* n FETCH (FLAGS ...)`).
    pub flags: Vec<usize>,
}

/// Why a store operation failed. Each maps to a tagged NO with a response code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FolderError {
    /// `[NONEXISTENT]` (RFC 5530).
    NotFound,
    /// `[ALREADYEXISTS]`.
    Exists,
    /// A name that is not allowed (`..`, `.` in a component, control characters, too long...);
    /// `[CANNOT]` with this text.
    BadName(String),
    /// `[CANNOT]`: the operation is not possible here (deleting INBOX, renaming onto a child...).
    Cannot(String),
    /// `[READ-ONLY]` or EXAMINE: a change was asked of a read-only folder.
    ReadOnly,
    /// `[OVERQUOTA]`/`[LIMIT]`: too big.
    TooBig,
    /// The message was expunged by someone else (`[EXPUNGEISSUED]`); the session may still list it.
    Expunged,
    /// `[SERVERBUG]`/`[UNAVAILABLE]`: an I/O error; the text is for the log.
    Temp(String),
}

impl fmt::Display for FolderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FolderError::NotFound => f.write_str("no such mailbox"),
            FolderError::Exists => f.write_str("mailbox already exists"),
            FolderError::BadName(s) | FolderError::Cannot(s) => f.write_str(s),
            FolderError::ReadOnly => f.write_str("mailbox is read-only"),
            FolderError::TooBig => f.write_str("message too big"),
            FolderError::Expunged => f.write_str("message was expunged"),
            FolderError::Temp(s) => write!(f, "temporary failure: {s}"),
        }
    }
}

/// Where a copied or appended message went (RFC 4315 COPYUID/APPENDUID).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CopyResult {
    pub uidvalidity: u32,
    /// Source UIDs and the new UIDs, in the same order.
    pub source: Vec<Uid>,
    pub dest: Vec<Uid>,
}

/// One user's folder tree. The session thread holds it for the whole login; it runs with the
/// user's identity already taken (store/owner.rs).
pub trait Store: Send {
    /// Every folder, INBOX first (it always exists). Parents without a folder of their own appear
    /// with `selectable: false`. Creates the special-use folders on first use.
    fn list(&mut self) -> Result<Vec<FolderEntry>, FolderError>;
    fn create(&mut self, name: &str) -> Result<(), FolderError>;
    /// RFC 3501 6.3.4: INBOX cannot be deleted; a folder with children becomes `\Noselect`.
    fn delete(&mut self, name: &str) -> Result<(), FolderError>;
    /// RFC 3501 6.3.5: children move too; renaming INBOX moves its messages into a new folder.
    fn rename(&mut self, from: &str, to: &str) -> Result<(), FolderError>;
    fn subscribe(&mut self, name: &str, on: bool) -> Result<(), FolderError>;
    fn status(&mut self, name: &str) -> Result<Status, FolderError>;
    /// Stores a message (CRLF or LF line ends; stored as the store keeps mail) durably before it
    /// returns. `date` is the INTERNALDATE (None: now).
    fn append(
        &mut self,
        name: &str,
        flags: &Flags,
        date: Option<i64>,
        message: &[u8],
    ) -> Result<CopyResult, FolderError>;
    /// Starts an APPEND to `name` whose message (`size` octets, INTERNALDATE `date`) is written
    /// into the returned [`Staging`] as it arrives, so it never sits whole in memory (Maildir: a
    /// file in the folder's tmp/). `binary`: it comes as a literal8 (RFC 3516 4.4), to be given
    /// back octet for octet where the store can. The default collects it in memory.
    fn stage(
        &mut self,
        _name: &str,
        _size: u64,
        _date: Option<i64>,
        _binary: bool,
    ) -> Result<Box<dyn Staging>, FolderError> {
        Ok(Box::new(Vec::new()))
    }
    /// Stores a message staged by [`Store::stage`] for `name` (as [`Store::append`]).
    fn append_staged(
        &mut self,
        name: &str,
        flags: &Flags,
        date: Option<i64>,
        staged: Staged,
    ) -> Result<CopyResult, FolderError> {
        match staged {
            Staged::Memory(m) => self.append(name, flags, date, &m),
            Staged::File { .. } => Err(FolderError::Temp("this store stages in memory".into())),
        }
    }
    /// Opens a folder for SELECT (`readonly`: EXAMINE; messages stay `\Recent` and new/).
    fn open(&mut self, name: &str, readonly: bool) -> Result<Box<dyn Folder>, FolderError>;
    /// Copies messages (0-based indexes into `from`'s view) into folder `dest`, keeping their flags
    /// (without `\Recent`) and internal dates.
    fn copy(
        &mut self,
        from: &mut dyn Folder,
        indexes: &[usize],
        dest: &str,
    ) -> Result<CopyResult, FolderError>;
}

/// A message being received for APPEND ([`Store::stage`]): written as it arrives, then finished.
/// Dropped unfinished, it leaves nothing behind.
pub trait Staging: Write + Send {
    /// The complete message, durable when it is in a file.
    fn finish(self: Box<Self>) -> Result<Staged, FolderError>;
}

impl Staging for Vec<u8> {
    fn finish(self: Box<Self>) -> Result<Staged, FolderError> {
        Ok(Staged::Memory(*self))
    }
}

/// A staged message for [`Store::append_staged`].
pub enum Staged {
    Memory(Vec<u8>),
    /// Stored form (LF line ends) in `file`, with its LF size and CRLF size.
    File {
        file: TempFile,
        lf: u64,
        crlf: u64,
    },
}

/// A file that is removed when dropped, unless [`TempFile::keep`] took it.
#[derive(Debug)]
pub struct TempFile(Option<PathBuf>);

impl TempFile {
    pub fn new(path: PathBuf) -> TempFile {
        TempFile(Some(path))
    }
    pub fn path(&self) -> &Path {
        self.0.as_deref().unwrap_or(Path::new(""))
    }
    /// The path, now the caller's to move or remove.
    pub fn keep(mut self) -> PathBuf {
        self.0.take().unwrap_or_default()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// The folder a session has selected: a view of its messages that changes only in [`Folder::sync`]
/// and in the session's own operations.
pub trait Folder: Send {
    /// The folder's name as [`Store::list`] gives it.
    fn name(&self) -> &str;
    fn readonly(&self) -> bool;
    fn uidvalidity(&self) -> u32;
    fn uidnext(&self) -> Uid;
    /// RFC 7162 HIGHESTMODSEQ of the view; None where the store keeps no mod-sequences
    /// (NOMODSEQ).
    fn highest_modseq(&self) -> Option<u64> {
        None
    }
    /// The view, in UID order: index i is message number i+1.
    fn messages(&self) -> &[MessageInfo];
    /// Keywords in use in this folder (for FLAGS and PERMANENTFLAGS).
    fn keywords(&self) -> Vec<String>;
    /// Looks for changes made by others. With `expunges == false` (during FETCH, STORE and SEARCH,
    /// RFC 3501 7.4.1) messages removed by others stay in the view and are announced at a later
    /// sync; until then reads of them give the message where the store still has it (RFC 2180
    /// 4.1.1; Maildir holds it for a while) and fail with [`FolderError::Expunged`] otherwise.
    fn sync(&mut self, expunges: bool) -> Result<Changes, FolderError>;
    /// True when a cheap check (directory mtimes, file size) says that [`Folder::sync`] would find
    /// something; IDLE calls it about once a second.
    fn changed(&mut self) -> bool;
    /// What to watch (inotify) to learn of changes as they happen: IDLE waits on these, and calls
    /// [`Folder::changed`] when one moves. Empty: IDLE looks once a second.
    fn watch_paths(&self) -> Vec<PathBuf> {
        Vec::new()
    }
    /// The whole message, CRLF line ends.
    fn read(&mut self, index: usize) -> Result<Vec<u8>, FolderError>;
    /// The header only, through the blank line (CRLF line ends): ENVELOPE and header searches.
    fn read_header(&mut self, index: usize) -> Result<Vec<u8>, FolderError> {
        let mut m = self.read(index)?;
        let end = header_end(&m);
        m.truncate(end);
        Ok(m)
    }
    /// The whole message (CRLF line ends, as [`Folder::read`] gives it) as a stream, so FETCH can
    /// send a large message in pieces: it yields `messages()[index].size` octets. The default
    /// reads the message whole; stores that keep a file per message read it as they go.
    fn reader(&mut self, index: usize) -> Result<Box<dyn Read>, FolderError> {
        Ok(Box::new(Cursor::new(self.read(index)?)))
    }
    /// A file holding the message (LF line ends) when the store keeps one per message: lets COPY
    /// hard-link instead of copying.
    fn file(&self, _index: usize) -> Option<PathBuf> {
        None
    }
    /// Changes flags; the view is updated at once. Read-only folders fail with ReadOnly.
    fn store(&mut self, indexes: &[usize], op: FlagOp, flags: &Flags) -> Result<(), FolderError>;
    /// Sets `\Seen` as a side effect of FETCH BODY[] (RFC 3501 6.4.5); no error when read-only.
    fn mark_seen(&mut self, index: usize) -> Result<(), FolderError> {
        if self.readonly() || self.messages().get(index).is_none_or(|m| m.flags.system & SEEN != 0) {
            return Ok(());
        }
        self.store(&[index], FlagOp::Add, &Flags { system: SEEN, keywords: Vec::new() })
    }
    /// Removes the `\Deleted` messages (all, or only those with these UIDs: UID EXPUNGE) and returns
    /// the message numbers to announce, in order, as [`Changes::expunged`].
    fn expunge(&mut self, uids: Option<&[Uid]>) -> Result<Vec<u32>, FolderError>;
    /// Writes pending state (flag changes of an mbox) and releases what it holds: CLOSE, LOGOUT,
    /// and a new SELECT call it.
    fn close(&mut self) -> Result<(), FolderError> {
        Ok(())
    }
    /// Cached rendering of ENVELOPE (`which == 0`) or BODYSTRUCTURE (`which == 1`) for a message.
    fn cached(&self, _index: usize, _which: u8) -> Option<String> {
        None
    }
    fn cache(&mut self, _index: usize, _which: u8, _value: String) {}
}

/// Offset just past the header (after the blank line), or the whole length when there is none.
pub fn header_end(msg: &[u8]) -> usize {
    let mut i = 0;
    while i < msg.len() {
        match msg[i..].iter().position(|&b| b == b'\n') {
            Some(n) => {
                let line = &msg[i..i + n];
                i += n + 1;
                if line.is_empty() || line == b"\r" {
                    return i;
                }
            }
            None => return msg.len(),
        }
    }
    msg.len()
}

#[cfg(test)]
mod tests {
    use super::header_end;

    #[test]
    fn header_end_finds_blank_line() {
        assert_eq!(header_end(b"A: b\r\n\r\nbody"), 8);
        assert_eq!(header_end(b"A: b\n\nbody"), 6);
        assert_eq!(header_end(b"A: b\r\n"), 6);
        assert_eq!(header_end(b""), 0);
    }
}
