//! The IMAP command dispatch table: every command's handler and the states that allow it.

use super::State::{self, Authenticated, NotAuthenticated, Selected};
use super::{Backend, Session, Tagged};
use crate::imap::types::Command;

/// The command families of the dispatch table (UID variants share a row).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verb {
    Capability,
    Noop,
    Logout,
    StartTls,
    Authenticate,
    Login,
    Enable,
    Select,
    Create,
    Delete,
    Rename,
    Subscribe,
    Unsubscribe,
    List,
    Lsub,
    Namespace,
    Status,
    Append,
    Check,
    Close,
    Unselect,
    Expunge,
    UidExpunge,
    Search,
    Sort,
    Thread,
    Fetch,
    Store,
    Copy,
    Move,
    Idle,
    Id,
    Compress,
}

impl Verb {
    pub fn of(cmd: &Command) -> Verb {
        match cmd {
            Command::Capability => Verb::Capability,
            Command::Noop => Verb::Noop,
            Command::Logout => Verb::Logout,
            Command::StartTls => Verb::StartTls,
            Command::Authenticate { .. } => Verb::Authenticate,
            Command::Login { .. } => Verb::Login,
            Command::Enable(_) => Verb::Enable,
            Command::Select { .. } => Verb::Select,
            Command::Create(_) => Verb::Create,
            Command::Delete(_) => Verb::Delete,
            Command::Rename { .. } => Verb::Rename,
            Command::Subscribe(_) => Verb::Subscribe,
            Command::Unsubscribe(_) => Verb::Unsubscribe,
            Command::List(_) => Verb::List,
            Command::Lsub { .. } => Verb::Lsub,
            Command::Namespace => Verb::Namespace,
            Command::Status { .. } => Verb::Status,
            Command::Append { .. } => Verb::Append,
            Command::Check => Verb::Check,
            Command::Close => Verb::Close,
            Command::Unselect => Verb::Unselect,
            Command::Expunge => Verb::Expunge,
            Command::UidExpunge(_) => Verb::UidExpunge,
            Command::Search { .. } => Verb::Search,
            Command::Sort { .. } => Verb::Sort,
            Command::Thread { .. } => Verb::Thread,
            Command::Fetch { .. } => Verb::Fetch,
            Command::Store { .. } => Verb::Store,
            Command::Copy { .. } => Verb::Copy,
            Command::Move { .. } => Verb::Move,
            Command::Idle => Verb::Idle,
            Command::Id(_) => Verb::Id,
            Command::Compress(_) => Verb::Compress,
        }
    }
}

/// What a handler answers: the tagged completion, or `None` when the completion comes later: a
/// continuation was written (SASL, IDLE) or the responses are the caller's to send (FETCH).
pub(super) type Reply = Option<Tagged>;

/// A command's handler: the untagged responses go to the buffer, the tagged one is returned.
type Handler = fn(&mut Session, &str, Command, &dyn Backend, &mut Vec<u8>) -> Reply;

/// One row of the dispatch table.
pub struct Entry {
    pub verb: Verb,
    /// States in which the command is accepted; elsewhere a tagged BAD answers.
    pub allowed: &'static [State],
    pub(super) handler: Handler,
}

const ANY: &[State] = &[NotAuthenticated, Authenticated, Selected];
const AUTH: &[State] = &[Authenticated, Selected];
pub(super) const SEL: &[State] = &[Selected];

/// RFC 3501 6.1-6.4 and the extensions: which command in which state, in one place.
pub const TABLE: &[Entry] = &[
    Entry { verb: Verb::Capability, allowed: ANY, handler: Session::capability },
    Entry { verb: Verb::Noop, allowed: ANY, handler: Session::noop },
    Entry { verb: Verb::Logout, allowed: ANY, handler: Session::logout },
    Entry { verb: Verb::Id, allowed: ANY, handler: Session::id },
    Entry { verb: Verb::StartTls, allowed: &[NotAuthenticated], handler: Session::starttls },
    Entry { verb: Verb::Authenticate, allowed: &[NotAuthenticated], handler: Session::authenticate },
    Entry { verb: Verb::Login, allowed: &[NotAuthenticated], handler: Session::login },
    // RFC 5161 3.1: ENABLE only in the authenticated state (RFC 6855 3: before any SELECT).
    Entry { verb: Verb::Enable, allowed: &[Authenticated], handler: Session::enable },
    Entry { verb: Verb::Select, allowed: AUTH, handler: Session::select },
    Entry { verb: Verb::Create, allowed: AUTH, handler: Session::create },
    Entry { verb: Verb::Delete, allowed: AUTH, handler: Session::delete },
    Entry { verb: Verb::Rename, allowed: AUTH, handler: Session::rename },
    Entry { verb: Verb::Subscribe, allowed: AUTH, handler: Session::subscribe },
    Entry { verb: Verb::Unsubscribe, allowed: AUTH, handler: Session::subscribe },
    Entry { verb: Verb::List, allowed: AUTH, handler: Session::list },
    Entry { verb: Verb::Lsub, allowed: AUTH, handler: Session::lsub },
    Entry { verb: Verb::Namespace, allowed: AUTH, handler: Session::namespace },
    Entry { verb: Verb::Status, allowed: AUTH, handler: Session::status },
    Entry { verb: Verb::Append, allowed: AUTH, handler: Session::append },
    // RFC 2177 3: IDLE in the authenticated state too.
    Entry { verb: Verb::Idle, allowed: AUTH, handler: Session::idle },
    Entry { verb: Verb::Check, allowed: SEL, handler: Session::check },
    Entry { verb: Verb::Close, allowed: SEL, handler: Session::close },
    Entry { verb: Verb::Unselect, allowed: SEL, handler: Session::unselect },
    Entry { verb: Verb::Expunge, allowed: SEL, handler: Session::expunge },
    Entry { verb: Verb::UidExpunge, allowed: SEL, handler: Session::expunge },
    Entry { verb: Verb::Search, allowed: SEL, handler: Session::search },
    // RFC 5256 3: SORT and THREAD in the selected state.
    Entry { verb: Verb::Sort, allowed: SEL, handler: Session::sort },
    Entry { verb: Verb::Thread, allowed: SEL, handler: Session::thread },
    Entry { verb: Verb::Fetch, allowed: SEL, handler: Session::fetch },
    Entry { verb: Verb::Store, allowed: SEL, handler: Session::store },
    Entry { verb: Verb::Copy, allowed: SEL, handler: Session::copy },
    Entry { verb: Verb::Move, allowed: SEL, handler: Session::copy },
    // RFC 4978 3: COMPRESS in the authenticated and selected states.
    Entry { verb: Verb::Compress, allowed: AUTH, handler: Session::compress },
];
