//! The web listener's protocol side, all without I/O: the HTTP/1.1 request codec (http.rs), the
//! webmail's IMAP client over a socketpair to the user's own IMAP session (imapc.rs), the
//! self-configuration documents for mail clients (autoconfig.rs), and the webmail's pages
//! (pages.rs, html.rs, assets/). The driver that carries bytes is server/drivers/http.rs.

pub mod autoconfig;
pub mod html;
pub mod http;
pub mod imapc;
pub mod pages;
