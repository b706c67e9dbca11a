//! TLS server side: the rustls server config for STARTTLS (RFC 3207) and implicit TLS (RFC 8314) listeners,
//! built from a PEM certificate chain and private key, checked at load (key matches, certificate in its
//! validity period) and swapped atomically on reload (SIGHUP): new connections get the new certificate,
//! established ones keep theirs.

use std::fmt;
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use rustls::ServerConfig;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::{der, provider};

/// PEM files larger than this are refused rather than read into memory (a chain is a few KiB).
const MAX_PEM: u64 = 1 << 20;

/// The server's TLS configuration, shared by all listeners and reloadable.
pub struct ServerTls {
    cert: PathBuf,
    key: PathBuf,
    current: RwLock<Arc<ServerConfig>>,
}

impl fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerTls").field("cert", &self.cert).field("key", &self.key).finish()
    }
}

impl ServerTls {
    /// Loads the PEM certificate chain (end entity first) and private key (RSA PKCS#1/PKCS#8, ECDSA
    /// SEC1/PKCS#8, Ed25519 PKCS#8). Errors name the file and what is wrong with it.
    pub fn load(cert: &Path, key: &Path) -> Result<ServerTls, String> {
        let config = build(cert, key, unix_now())?;
        Ok(ServerTls { cert: cert.to_path_buf(), key: key.to_path_buf(), current: RwLock::new(config) })
    }

    /// Re-reads the files. On error the old config stays in force and the error is returned.
    pub fn reload(&self) -> Result<(), String> {
        let config = build(&self.cert, &self.key, unix_now())?;
        match self.current.write() {
            Ok(mut g) => *g = config,
            Err(p) => *p.into_inner() = config,
        }
        log::info!("tls event=reloaded cert={} key={}", self.cert.display(), self.key.display());
        Ok(())
    }

    /// The config for the next connection.
    pub fn config(&self) -> Arc<ServerConfig> {
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// The certificate and key files this config is read from.
    pub fn paths(&self) -> (&Path, &Path) {
        (&self.cert, &self.key)
    }
}

fn unix_now() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    }
}

/// Always presents the one certificate (no SNI selection: a small server has one name set).
#[derive(Debug)]
struct Fixed(Arc<CertifiedKey>);

impl ResolvesServerCert for Fixed {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

fn build(cert: &Path, key: &Path, now: i64) -> Result<Arc<ServerConfig>, String> {
    let certified = load_certified_key(cert, key, now)?;
    let config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| format!("cannot build TLS server config: {e}"))?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(Fixed(Arc::new(certified))));
    Ok(Arc::new(config))
}

/// Reads a PEM file whole, with errors that say "missing" or "unreadable" and name it.
fn read_pem(path: &Path) -> Result<Vec<u8>, String> {
    let file = std::fs::File::open(path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => format!("{}: file not found", path.display()),
        _ => format!("{}: cannot open: {e}", path.display()),
    })?;
    let mut data = Vec::new();
    file.take(MAX_PEM + 1)
        .read_to_end(&mut data)
        .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    if data.len() as u64 > MAX_PEM {
        return Err(format!("{}: larger than {MAX_PEM} bytes, not a PEM certificate or key", path.display()));
    }
    Ok(data)
}

fn pem_error(path: &Path, e: pem::Error) -> String {
    format!("{}: bad PEM: {e}", path.display())
}

/// Loads and checks a certificate chain and its key. `now` is Unix seconds.
fn load_certified_key(cert_path: &Path, key_path: &Path, now: i64) -> Result<CertifiedKey, String> {
    let data = read_pem(cert_path)?;
    let chain = CertificateDer::pem_slice_iter(&data)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(cert_path, e))?;
    let Some(leaf) = chain.first() else {
        return Err(format!(
            "{}: no certificate in it (expected a -----BEGIN CERTIFICATE----- block)",
            cert_path.display()
        ));
    };
    let (not_before, not_after) = der::validity(leaf).map_err(|e| {
        format!("{}: first certificate is not a valid X.509 certificate ({e})", cert_path.display())
    })?;
    if now > not_after {
        return Err(format!(
            "{}: certificate expired on {}",
            cert_path.display(),
            der::format_utc(not_after)
        ));
    }
    if now < not_before {
        return Err(format!(
            "{}: certificate not valid before {}",
            cert_path.display(),
            der::format_utc(not_before)
        ));
    }

    let data = read_pem(key_path)?;
    let key = match PrivateKeyDer::from_pem_slice(&data) {
        Ok(k) => k,
        Err(pem::Error::NoItemsFound) => {
            return Err(format!(
                "{}: no private key in it (expected a PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY block)",
                key_path.display()
            ));
        }
        Err(e) => return Err(pem_error(key_path, e)),
    };
    if let Ok(meta) = std::fs::metadata(key_path)
        && meta.mode() & 0o077 != 0
    {
        log::warn!("tls event=key_permissions file={} mode={:o}", key_path.display(), meta.mode() & 0o777);
    }
    let signing = provider()
        .key_provider
        .load_private_key(key)
        .map_err(|e| format!("{}: unusable private key: {e}", key_path.display()))?;
    let certified = CertifiedKey::new(chain, signing);
    match certified.keys_match() {
        Ok(()) => Ok(certified),
        // ring can derive the public key of every key type it loads; should one not, the handshake
        // signature would still fail on a mismatch, so accept it.
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => Ok(certified),
        Err(rustls::Error::InconsistentKeys(_)) => Err(format!(
            "{}: private key does not match the certificate in {}",
            key_path.display(),
            cert_path.display()
        )),
        Err(e) => Err(format!("{}: bad certificate: {e}", cert_path.display())),
    }
}

#[cfg(test)]
#[path = "server_tests.rs"]
pub(crate) mod tests;
