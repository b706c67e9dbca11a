//! buzon: a small mail server (SMTP in, Maildir/mbox out) for small Unix machines.
//! The binary in main.rs only dispatches argv; everything else lives here so
//! that fuzz targets and tests can reach the parsers.

pub mod addr;
pub mod aliases;
pub mod auth;
pub mod cert;
pub mod compress;
pub mod config;
pub mod dns;
pub mod durable;
pub mod filters;
pub mod imap;
pub mod local;
pub mod managesieve;
pub mod netio;
pub mod pop3;
pub mod queue;
pub mod records;
pub mod sendmail;
pub mod server;
pub mod sieve;
pub mod smtp;
pub mod spool;
pub mod store;
pub mod syslog;
pub mod timefmt;
pub mod tls;
pub mod transport;
pub mod web;
