//! Sieve mail filtering (RFC 5228), I/O-free: [`parse`] turns a script into a [`Script`], [`run`]
//! evaluates it against one message and its envelope and returns the actions to take, implicit
//! keep resolved and conflicts checked. The caller (local delivery) performs the actions; nothing
//! here touches a file, a socket or a clock.
//!
//! Extensions: fileinto, reject and ereject (RFC 5429), envelope, body (RFC 5173), variables
//! (RFC 5229), imap4flags (RFC 5232), copy (RFC 3894), vacation (RFC 5230), mailbox (RFC 5490),
//! encoded-character (RFC 5228 2.4.2.4), relational (RFC 5231), subaddress (RFC 5233), and the
//! comparators i;octet, i;ascii-casemap and i;ascii-numeric (RFC 4790).
//!
//! Limits (a script cannot drive the parser or the interpreter past them): [`MAX_SCRIPT`] octets
//! of script, [`MAX_DEPTH`] levels of nested blocks and tests, [`MAX_STRING`] octets in a string,
//! [`MAX_LIST`] strings in a list, [`MAX_ACTIONS`] actions and [`MAX_REDIRECTS`] redirects per run
//! (RFC 5228 4.2 asks for a limit), [`MAX_VARIABLES`] variables of at most [`MAX_VAR_LEN`]
//! octets, at most [`MAX_MATCH_WORK`] of comparison work, and the body test examines at most
//! [`BODY_MAX`] octets of the body.

mod ast;
pub mod cli;
mod grammar;
mod lex;
mod matching;
mod msg;
mod parse;
mod run;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_run;
mod vacation;
mod vars;

use std::fmt;

pub use msg::Message;
pub use parse::parse;
pub use run::run;

/// Largest script accepted, in octets.
pub const MAX_SCRIPT: usize = 1024 * 1024;
/// Deepest nesting of blocks and tests (`if` inside `if`, `not` inside `anyof`...).
pub const MAX_DEPTH: usize = 32;
/// Longest string, in octets.
pub const MAX_STRING: usize = 64 * 1024;
/// Most strings in one string list (or tests in one test list).
pub const MAX_LIST: usize = 1024;
/// Most actions one run may take (Pigeonhole's default too).
pub const MAX_ACTIONS: usize = 32;
/// Most redirects one run may take (RFC 5228 4.2: implementations should limit them).
pub const MAX_REDIRECTS: usize = 4;
/// Most distinct variables one run may set (RFC 5229 3 lets an implementation limit them).
pub const MAX_VARIABLES: usize = 255;
/// Longest value of a variable, in octets; longer values are cut (RFC 5229 3).
pub const MAX_VAR_LEN: usize = 4096;
/// Comparison work one run may do (octets of value times octets of key for :contains and
/// :matches): a script cannot make one delivery spin; past it the run fails and the message is kept.
pub const MAX_MATCH_WORK: u64 = 200_000_000;
/// Octets of the body the body test examines (RFC 5173 leaves the bound to the implementation);
/// what lies beyond is not seen.
pub const BODY_MAX: usize = 512 * 1024;

/// A script that parsed: commands checked against the extensions it requires.
#[derive(Clone, Debug)]
pub struct Script {
    pub(crate) cmds: Vec<ast::Stmt>,
    /// The variables extension is on: strings are expanded at run time (RFC 5229 3).
    pub(crate) variables: bool,
}

/// Why a script was refused: the line and what is wrong there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    pub line: u32,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for ParseError {}

/// The SMTP envelope of the delivery (RFC 5228 5.4).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Envelope {
    /// The return path (MAIL FROM), empty for the null path `<>`.
    pub from: String,
    /// The recipient this delivery is for (RCPT TO).
    pub to: String,
    /// The authenticated submitter, when there was one.
    pub auth: Option<String>,
}

/// What the caller supplies beyond the message and envelope.
pub struct Options<'a> {
    /// RFC 5490 3.1 mailboxexists: true when the user has this mailbox. None: no mailbox exists.
    pub mailbox_exists: Option<&'a dyn Fn(&str) -> bool>,
    /// Most redirects (at most [`MAX_REDIRECTS`] is sensible).
    pub max_redirects: usize,
    /// The user's other addresses, for the vacation checks (RFC 5230 4.5), besides `Envelope::to`.
    pub user_addresses: Vec<String>,
}

impl Default for Options<'_> {
    fn default() -> Self {
        Options { mailbox_exists: None, max_redirects: MAX_REDIRECTS, user_addresses: Vec::new() }
    }
}

/// One action for delivery to perform, in the order the script took them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Store in INBOX with these IMAP flags (RFC 5232 5).
    Keep { flags: Vec<String> },
    /// Store in `mailbox`; `create`: make it first when missing (RFC 5490 3.2).
    FileInto { mailbox: String, flags: Vec<String>, copy: bool, create: bool },
    /// Resend to `address` (RFC 5228 4.2), keeping the envelope sender.
    Redirect { address: String, copy: bool },
    /// Refuse with a DSN/MDN carrying this text (RFC 5429 2.2).
    Reject(String),
    /// Refuse at the SMTP level when possible (RFC 5429 2.1).
    Ereject(String),
    /// The script discarded the message (RFC 5228 4.4); other actions may still deliver it.
    Discard,
    /// An auto-reply is due (RFC 5230): the checks that depend on the message alone passed.
    Vacation(Vacation),
}

/// An auto-reply to send, unless one was already sent for `key` within `days` (that record is the
/// caller's, RFC 5230 4.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vacation {
    /// Where the reply goes: the return path (RFC 5230 4.3).
    pub to: String,
    /// `:from`, or None for the recipient's own address.
    pub from: Option<String>,
    /// `:subject`, or "Auto: " and the original subject (RFC 5230 4.4).
    pub subject: String,
    /// The reply body (a MIME entity when `mime`).
    pub reason: String,
    pub mime: bool,
    /// Days between two replies to the same sender for this key (RFC 5230 4.1), at least 1.
    pub days: u32,
    /// The Message-ID of the message answered, for In-Reply-To and References (RFC 5230 5.8).
    pub in_reply_to: Option<String>,
    /// A stable key for "already replied": the sender and the handle (RFC 5230 4.2), hashed.
    pub key: String,
}

/// Why the run failed (RFC 5228 2.10.6): the caller keeps the message in INBOX and logs this.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunError {
    pub line: u32,
    pub message: String,
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// What a run decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// Actions in order. On an error, a single `Keep` (RFC 5228 2.10.6). Neither a keep, a
    /// fileinto, a redirect nor a reject in the list means the message is discarded.
    pub actions: Vec<Action>,
    /// The last `Keep` is the implicit keep (RFC 5228 2.10.2), not one the script asked for.
    pub implicit_keep: bool,
    /// A runtime error: the actions are cancelled and the message kept.
    pub error: Option<RunError>,
    /// Things worth a log line that are not errors (a vacation reply not due, and why).
    pub notes: Vec<String>,
}
