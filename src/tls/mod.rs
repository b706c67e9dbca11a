//! TLS for buzon (RFC 3207 STARTTLS, RFC 8314 implicit TLS) on rustls with the ring provider, TLS 1.2 and
//! 1.3: client configs for outbound SMTP (`client`), the reloadable server config from PEM files
//! (`server`), the blocking server stream sessions run over (`stream`), and a minimal DER reader for the
//! certificate fields rustls does not expose (`der`).

mod client;
pub mod der;
mod server;
mod stream;

use std::sync::Arc;

use rustls::crypto::CryptoProvider;

pub use client::{Verdict, client_opportunistic, client_verified, describe, system_roots};
pub use server::ServerTls;
pub use stream::TlsStream;

/// The ring provider every config in buzon is built on.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// "TLSv1.3 TLS13_AES_256_GCM_SHA384": version and cipher suite of either side of a connection.
fn describe_state(state: &rustls::CommonState) -> String {
    let version = match state.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3".to_string(),
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2".to_string(),
        Some(v) => format!("{v:?}"),
        None => "TLS".to_string(),
    };
    match state.negotiated_cipher_suite() {
        Some(s) => format!("{version} {:?}", s.suite()),
        None => version,
    }
}
