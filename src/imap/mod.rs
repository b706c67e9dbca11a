//! IMAP4rev1 (RFC 3501) and IMAP4rev2 (RFC 9051): the codec, the session state machine without I/O,
//! message rendering and search, and the connection glue.

pub mod command;
pub mod encode;
pub mod fetch;
pub mod message;
pub mod mutf7;
pub mod search;
pub mod session;
pub mod sort;
pub mod thread;
pub mod types;
