//! TLS client side: rustls client configs for outbound SMTP (RFC 3207 STARTTLS, RFC 8314 implicit TLS)
//! with the system trust anchors, in a verifying and an opportunistic flavour (RFC 7435: an unverifiable
//! certificate still encrypts, and is recorded as untrusted).

use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::provider;

/// The system's trust anchors (rustls-native-certs), loaded on first use and kept for the life of the
/// process: a cache of files, not configuration. Certificates that fail to load are logged and skipped;
/// an empty store means `Verify` fails and `May` records every peer as untrusted.
pub fn system_roots() -> Arc<RootCertStore> {
    static ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let loaded = rustls_native_certs::load_native_certs();
            for e in &loaded.errors {
                log::warn!("tls event=roots_error error={e}");
            }
            let mut store = RootCertStore::empty();
            let (added, ignored) = store.add_parsable_certificates(loaded.certs);
            log::info!("tls event=roots_loaded added={added} ignored={ignored}");
            Arc::new(store)
        })
        .clone()
}

/// A client config that requires a certificate chaining to `roots` and matching the server name.
pub fn client_verified(roots: Arc<RootCertStore>) -> Result<Arc<rustls::ClientConfig>, String> {
    let provider = provider();
    let verifier = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
        .build()
        .map_err(|e| format!("cannot build certificate verifier: {e}"))?;
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_webpki_verifier(verifier)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// What the opportunistic verifier concluded about the peer's certificate.
#[derive(Default)]
pub struct Verdict(Mutex<Option<String>>);

impl Verdict {
    /// `None`: the certificate verified (or no handshake happened yet); `Some`: why it did not.
    pub fn error(&self) -> Option<String> {
        self.0.lock().map(|g| g.clone()).unwrap_or_else(|p| p.into_inner().clone())
    }

    fn set(&self, e: String) {
        match self.0.lock() {
            Ok(mut g) => *g = Some(e),
            Err(p) => *p.into_inner() = Some(e),
        }
    }
}

/// Wraps the webpki verifier: a chain or name error is recorded in the [`Verdict`] instead of failing
/// the handshake. The handshake signature is still checked, so the session is bound to the key in the
/// certificate the peer showed.
struct Opportunistic {
    inner: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<CryptoProvider>,
    verdict: Arc<Verdict>,
}

impl fmt::Debug for Opportunistic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Opportunistic")
    }
}

impl ServerCertVerifier for Opportunistic {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let outcome = match &self.inner {
            Some(v) => v.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now),
            None => Err(rustls::Error::General("no trust anchors".into())),
        };
        if let Err(e) = outcome {
            self.verdict.set(e.to_string());
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// A client config for opportunistic TLS (Postfix `may`): any certificate is accepted, and the returned
/// [`Verdict`] tells after the handshake whether it verified against `roots`. Build one per connection.
pub fn client_opportunistic(
    roots: Arc<RootCertStore>,
) -> Result<(Arc<rustls::ClientConfig>, Arc<Verdict>), String> {
    let provider = provider();
    // An empty store cannot build a webpki verifier; every certificate is then untrusted.
    let inner = WebPkiServerVerifier::builder_with_provider(roots, provider.clone()).build().ok();
    let verdict = Arc::new(Verdict::default());
    let verifier = Arc::new(Opportunistic { inner, provider: provider.clone(), verdict: verdict.clone() });
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok((Arc::new(config), verdict))
}

/// "TLSv1.3 TLS13_AES_256_GCM_SHA384": the negotiated version and cipher suite, for logs.
pub fn describe(conn: &rustls::ClientConnection) -> String {
    super::describe_state(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_roots_verified_fails_opportunistic_builds() {
        let empty = Arc::new(RootCertStore::empty());
        assert!(client_verified(empty.clone()).is_err());
        let (_, verdict) = client_opportunistic(empty).expect("opportunistic config");
        assert_eq!(verdict.error(), None);
    }

    #[test]
    fn verdict_records() {
        let v = Verdict::default();
        v.set("bad".into());
        assert_eq!(v.error().as_deref(), Some("bad"));
    }
}
