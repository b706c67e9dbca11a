//! Inbound sender checks and outbound signing, as functions over the envelope, the message and DNS
//! answers ([`crate::dns::Lookup`]), with no sockets of their own except the content scanners':
//! SPF (RFC 7208), DKIM (RFC 6376, RFC 8463), DMARC (RFC 7489), Authentication-Results (RFC 8601),
//! and the clamd/spamd/rspamd clients. The SMTP driver calls them at the stage where each belongs.

pub mod authres;
pub mod cli;
pub mod dkim;
pub mod dmarc;
pub mod dnsbl;
pub mod greylist;
pub mod rate;
pub mod scan;
pub mod spf;
