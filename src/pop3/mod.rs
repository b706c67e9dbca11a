//! POP3 server (RFC 1939; RFC 2449 CAPA and response codes; RFC 2595 STLS; RFC 5034 SASL AUTH;
//! RFC 3206 SYS and AUTH response codes). [`command`] parses command lines, [`session`] is the I/O-free
//! state machine; the connection glue and the maildrop readers live elsewhere.

pub mod command;
pub mod session;
