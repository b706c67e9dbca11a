//! The outbound queue: durable envelopes beside message files, the retry schedule, DSN bounces
//! (RFC 3464, RFC 6522, RFC 3834), the runner's wake-up channel and the `buzon queue` command.
//!
//! Layout under `data_dir/queue/` (all 0700, files 0600):
//! - `msg/<id>`: the message as spooled (a hard link to, or fsynced copy of, `incoming/<id>`); its first
//!   `body_offset` bytes are the `Return-Path:` line that only final delivery may add.
//! - `env/<id>`: the envelope (format in envelope.rs). A queue entry exists exactly when its envelope
//!   file does; the message file is written first and removed last.
//! - `corrupt/<id>.env`, `corrupt/<id>.msg`: entries whose envelope could not be parsed, set aside
//!   for the postmaster and never deleted.
//! - `wake.sock`: the server's datagram socket (wake.rs).
//!
//! Processes that queue mail (the server, inetd-mode sessions) call [`Queue::open`], which creates
//! the directories and removes nothing; only the server also calls [`Queue::sweep`], which removes
//! old orphan message files and temp files under the queue lock. `buzon queue` uses
//! [`Queue::attach`], which changes nothing at open.

pub mod bounce;
pub mod cli;
pub mod envelope;
pub mod route;
pub mod runner;
pub mod schedule;
pub mod store;
pub mod wake;

use std::time::SystemTime;

pub use bounce::{DsnKind, Failure, build_dsn};
pub use schedule::Schedule;
pub use store::Queue;
pub use wake::{Wake, Waker, poke};

/// Where one recipient stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RcptState {
    /// Not tried yet.
    Pending,
    /// Accepted by `relay` (a host name, or "local") with `reply`: done.
    Sent { relay: String, reply: String },
    /// Failed permanently (or expired); `status` is the RFC 3463 code, e.g. "5.1.1". Done: a DSN
    /// has been or is being sent for it.
    Bounced { reply: String, status: String },
    /// Failed temporarily; `reply` is the last reason (shown by `mailq`).
    Deferred { reply: String },
}

impl RcptState {
    /// Still to be delivered (pending or deferred).
    pub fn is_open(&self) -> bool {
        matches!(self, RcptState::Pending | RcptState::Deferred { .. })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueuedRcpt {
    pub addr: String,
    pub state: RcptState,
}

/// The envelope of one queued message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    /// The queue id (same as the spool id; 16 hex digits).
    pub id: String,
    /// The reverse-path; "" is the null sender (RFC 5321 4.5.5).
    pub sender: String,
    pub recipients: Vec<QueuedRcpt>,
    pub arrival: SystemTime,
    /// Delivery attempts made so far.
    pub attempts: u32,
    pub next_attempt: SystemTime,
    /// Bytes at the start of the message file to skip when relaying (the `Return-Path:` line).
    pub body_offset: u64,
    /// RFC 6531: the message needs SMTPUTF8 downstream.
    pub smtputf8: bool,
    /// RFC 6152: the message was received with BODY=8BITMIME.
    pub eight_bit: bool,
    /// A delay warning DSN has been sent.
    pub warned: bool,
}

impl Envelope {
    /// A fresh envelope: every recipient pending, due at once.
    pub fn new(id: &str, sender: &str, recipients: &[String], arrival: SystemTime) -> Envelope {
        Envelope {
            id: id.to_string(),
            sender: sender.to_string(),
            recipients: recipients
                .iter()
                .map(|a| QueuedRcpt { addr: a.clone(), state: RcptState::Pending })
                .collect(),
            arrival,
            attempts: 0,
            next_attempt: arrival,
            body_offset: 0,
            smtputf8: false,
            eight_bit: false,
            warned: false,
        }
    }

    /// Recipients still to be delivered.
    pub fn open_recipients(&self) -> impl Iterator<Item = &QueuedRcpt> {
        self.recipients.iter().filter(|r| r.state.is_open())
    }

    /// Nothing left to do: every recipient was sent or bounced.
    pub fn is_done(&self) -> bool {
        self.open_recipients().next().is_none()
    }
}

/// A queue id is exactly 16 hex digits (see spool::new_queue_id). Checked before any id becomes part
/// of a path, so `buzon queue delete ../x` never reaches the file system.
pub fn valid_id(id: &str) -> bool {
    id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit())
}
