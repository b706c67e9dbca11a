//! `buzon cert self-signed`: a new ECDSA P-256 key and a self-signed X.509 certificate (RFC 5280) for the
//! server's names, so a fresh install can offer STARTTLS (RFC 3207) and implicit TLS (RFC 8314) at once
//! and a client can pin the certificate by its SHA-256 fingerprint.

use std::fs::{self, DirBuilder};
use std::io::{self, Write};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::config::Config;
use crate::durable::{self, Place};
use crate::tls::der;

/// Default lifetime: 825 days, the longest Apple platforms accept for a TLS server certificate.
pub const DEFAULT_DAYS: u32 = 825;

/// Why a `cert` command failed; the binary maps these to sysexits(3) codes.
#[derive(Debug, PartialEq, Eq)]
pub enum CertError {
    /// Bad arguments (EX_USAGE).
    Usage(String),
    /// A file is in the way and --force was not given (EX_CANTCREAT).
    Exists(String),
    /// Key generation, signing or writing failed (EX_CANTCREAT / EX_SOFTWARE).
    Failed(String),
}

impl std::fmt::Display for CertError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CertError::Usage(m) | CertError::Exists(m) | CertError::Failed(m) => f.write_str(m),
        }
    }
}

pub const USAGE: &str = "usage: buzon cert self-signed [-c file] [--days N] [--force] [name...]";

/// Where the certificate and key go: the config's `tls.cert` and `tls.key`, else `data_dir/tls/cert.pem`
/// and `key.pem` (the config requires both or neither).
pub fn default_paths(config: &Config) -> (PathBuf, PathBuf) {
    let dir = config.data_dir.join("tls");
    (
        config.tls_cert.clone().unwrap_or_else(|| dir.join("cert.pem")),
        config.tls_key.clone().unwrap_or_else(|| dir.join("key.pem")),
    )
}

/// `buzon cert ARGS`: parses the arguments, writes the pair, reports on `out`.
pub fn run(config: &Config, args: &[String], out: &mut dyn Write) -> Result<(), CertError> {
    let usage = |m: &str| CertError::Usage(format!("{m}\n{USAGE}"));
    let Some((sub, rest)) = args.split_first() else {
        return Err(usage("cert: missing subcommand"));
    };
    if sub != "self-signed" {
        return Err(usage(&format!("cert: unknown subcommand {sub:?}")));
    }
    let mut days = DEFAULT_DAYS;
    let mut force = false;
    let mut names = Vec::new();
    let mut it = rest.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--force" | "-f" => force = true,
            "--days" => {
                let v = it.next().ok_or_else(|| usage("--days needs a number"))?;
                days = v.parse().ok().filter(|d| (1..=36500).contains(d)).ok_or_else(|| {
                    usage(&format!("--days {v:?}: expected a whole number of days from 1 to 36500"))
                })?;
            }
            s if s.starts_with('-') => return Err(usage(&format!("unknown option {s:?}"))),
            s => names.push(s.to_ascii_lowercase()),
        }
    }
    if names.is_empty() {
        names.push(config.hostname.clone());
        if config.hostname != "localhost" {
            names.push("localhost".into());
        }
    }
    let (cert, key) = default_paths(config);
    let fp = create_self_signed(&cert, &key, &names, days, force)?;
    let w = |e: io::Error| CertError::Failed(format!("writing the report: {e}"));
    writeln!(out, "certificate: {} ({}; {days} days)", cert.display(), names.join(" ")).map_err(w)?;
    writeln!(out, "private key: {}", key.display()).map_err(w)?;
    writeln!(out, "SHA-256 fingerprint: {fp}").map_err(w)?;
    Ok(())
}

/// Creates the pair in `dir` (`cert.pem`, `key.pem`) unless both already exist; used by the embedded
/// default so that `make run` serves TLS. One file without the other is an error, not overwritten.
pub fn ensure_self_signed(dir: &Path, names: &[String]) -> Result<(PathBuf, PathBuf), String> {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    match (cert.exists(), key.exists()) {
        (true, true) => {}
        (false, false) => {
            let fp =
                create_self_signed(&cert, &key, names, DEFAULT_DAYS, false).map_err(|e| e.to_string())?;
            log::info!("tls event=self_signed cert={} sha256={fp}", cert.display());
        }
        (true, false) => return Err(format!("{}: missing, but {} exists", key.display(), cert.display())),
        (false, true) => return Err(format!("{}: missing, but {} exists", cert.display(), key.display())),
    }
    Ok((cert, key))
}

/// "AB:CD:…": the SHA-256 of a DER certificate, as browsers and `openssl x509 -fingerprint -sha256` show it.
pub fn fingerprint(der: &[u8]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, der);
    d.as_ref().iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":")
}

/// Writes a new key (mode 0600) and a certificate valid from today (00:00 UTC) for `days` days, for
/// `names` (DNS names or IP addresses; the first is also the subject CN). Refuses to replace existing
/// files unless `force`. Returns the certificate's SHA-256 fingerprint.
pub fn create_self_signed(
    cert: &Path,
    key: &Path,
    names: &[String],
    days: u32,
    force: bool,
) -> Result<String, CertError> {
    if names.is_empty() {
        return Err(CertError::Usage("at least one name is needed".into()));
    }
    if let Some(bad) = names.iter().find(|n| !valid_name(n)) {
        return Err(CertError::Usage(format!("{bad:?}: not a host name or IP address")));
    }
    if !force {
        for p in [cert, key] {
            if p.exists() {
                return Err(CertError::Exists(format!(
                    "{}: exists (use --force to replace it)",
                    p.display()
                )));
            }
        }
    }
    let (cert_pem, der_bytes, key_pem) = generate(names, days, unix_now())?;
    let fp = fingerprint(&der_bytes);
    for p in [cert, key] {
        if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| CertError::Failed(format!("{}: cannot create: {e}", dir.display())))?;
        }
    }
    publish(key, key_pem.as_bytes(), 0o600, force)?;
    if let Err(e) = publish(cert, cert_pem.as_bytes(), 0o644, force) {
        if !force {
            // Do not leave a key without its certificate behind.
            let _ = fs::remove_file(key);
        }
        return Err(e);
    }
    Ok(fp)
}

/// An IP address, or a host name (RFC 1123 2.1 labels, optionally a leading `*.` wildcard, RFC 6125 6.4.3).
fn valid_name(name: &str) -> bool {
    if name.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    let host = name.strip_prefix("*.").unwrap_or(name);
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// (certificate PEM, certificate DER, key PEM).
fn generate(names: &[String], days: u32, now: i64) -> Result<(String, Vec<u8>, String), CertError> {
    let fail = |what: &str, e: rcgen::Error| CertError::Failed(format!("{what}: {e}"));
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .map_err(|e| fail("generating the key", e))?;
    let mut params = rcgen::CertificateParams::new(names.to_vec())
        .map_err(|e| CertError::Usage(format!("bad name in {}: {e}", names.join(" "))))?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(rcgen::DnType::CommonName, names[0].as_str());
    let ymd = |days_since_epoch: i64| {
        let (y, m, d) = der::civil_from_days(days_since_epoch);
        rcgen::date_time_ymd(y as i32, m as u8, d as u8)
    };
    let today = now.div_euclid(86400);
    params.not_before = ymd(today);
    params.not_after = ymd(today + i64::from(days));
    let cert = params.self_signed(&key).map_err(|e| fail("signing the certificate", e))?;
    Ok((cert.pem(), cert.der().to_vec(), key.serialize_pem()))
}

/// Durably writes `data` to `path` (durable.rs): replacing it when `force`, else only if absent.
fn publish(path: &Path, data: &[u8], mode: u32, force: bool) -> Result<(), CertError> {
    let place = if force { Place::Replace } else { Place::New };
    durable::write(path, place, mode, data).map_err(|e| {
        if e.kind() == io::ErrorKind::AlreadyExists {
            CertError::Exists(format!("{}: exists (use --force to replace it)", path.display()))
        } else {
            CertError::Failed(format!("{}: cannot write: {e}", path.display()))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn config(dir: &Path) -> Config {
        let mut c = Config::embedded();
        c.data_dir = dir.to_path_buf();
        c.hostname = "mx.example.org".into();
        c
    }

    fn run_args(c: &Config, args: &[&str]) -> (Result<(), CertError>, String) {
        let mut out = Vec::new();
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let r = run(c, &args, &mut out);
        (r, String::from_utf8_lossy(&out).into_owned())
    }

    #[test]
    fn self_signed_writes_loadable_pair_and_refuses_overwrite() {
        let tmp = tempfile::tempdir().unwrap();
        let c = config(tmp.path());
        let (r, out) = run_args(&c, &["self-signed"]);
        r.unwrap();
        let (cert, key) = default_paths(&c);
        assert_eq!(fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
        assert!(out.contains("mx.example.org localhost"), "{out}");
        // The printed fingerprint is the one of the file's certificate.
        let pem = fs::read(&cert).unwrap();
        let der: Vec<_> = {
            use rustls::pki_types::{CertificateDer, pem::PemObject};
            CertificateDer::pem_slice_iter(&pem).collect::<Result<_, _>>().unwrap()
        };
        assert_eq!(der.len(), 1);
        let fp = fingerprint(&der[0]);
        assert_eq!(fp.len(), 32 * 3 - 1);
        assert!(out.contains(&fp), "{out}");
        // Valid from today for DEFAULT_DAYS.
        let (nb, na) = der::validity(&der[0]).unwrap();
        assert!(nb <= unix_now() && unix_now() - nb < 86400);
        assert_eq!(na - nb, i64::from(DEFAULT_DAYS) * 86400);
        crate::tls::ServerTls::load(&cert, &key).unwrap();

        let (r, _) = run_args(&c, &["self-signed", "other.example"]);
        assert!(matches!(r, Err(CertError::Exists(ref m)) if m.contains("--force")), "{r:?}");
        assert_eq!(fs::read(&cert).unwrap(), pem, "untouched without --force");

        let (r, out) = run_args(
            &c,
            &["self-signed", "--force", "--days", "30", "Other.Example", "192.0.2.1", "*.example.net"],
        );
        r.unwrap();
        assert!(out.contains("other.example 192.0.2.1 *.example.net; 30 days"), "{out}");
        assert_ne!(fs::read(&cert).unwrap(), pem);
        assert_eq!(fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
        crate::tls::ServerTls::load(&cert, &key).unwrap();
        // No temp files left behind.
        let left: Vec<_> =
            fs::read_dir(cert.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left.len(), 2, "{left:?}");
    }

    #[test]
    fn configured_paths_win() {
        let tmp = tempfile::tempdir().unwrap();
        let mut c = config(tmp.path());
        assert_eq!(default_paths(&c), (tmp.path().join("tls/cert.pem"), tmp.path().join("tls/key.pem")));
        c.tls_cert = Some(tmp.path().join("etc/mx.crt"));
        c.tls_key = Some(tmp.path().join("private/mx.key"));
        run_args(&c, &["self-signed"]).0.unwrap();
        crate::tls::ServerTls::load(&tmp.path().join("etc/mx.crt"), &tmp.path().join("private/mx.key"))
            .unwrap();
    }

    #[test]
    fn bad_arguments() {
        let tmp = tempfile::tempdir().unwrap();
        let c = config(tmp.path());
        for args in [
            &[][..],
            &["renew"][..],
            &["self-signed", "--days"][..],
            &["self-signed", "--days", "0"][..],
            &["self-signed", "--days", "x"][..],
            &["self-signed", "--bogus"][..],
            &["self-signed", "bad name"][..],
            &["self-signed", "x-.example"][..],
            &["self-signed", "a..b"][..],
            &["self-signed", "ex\u{e1}mple.org"][..],
        ] {
            let (r, _) = run_args(&c, args);
            assert!(matches!(r, Err(CertError::Usage(_))), "{args:?}: {r:?}");
        }
        assert!(!tmp.path().join("tls").exists());
    }

    #[test]
    fn ensure_creates_once_and_refuses_half_pairs() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("tls");
        let names = vec!["localhost".to_string()];
        let (cert, key) = ensure_self_signed(&dir, &names).unwrap();
        let first = fs::read(&cert).unwrap();
        assert_eq!(ensure_self_signed(&dir, &names).unwrap(), (cert.clone(), key.clone()));
        assert_eq!(fs::read(&cert).unwrap(), first, "existing pair kept");
        fs::remove_file(&key).unwrap();
        let e = ensure_self_signed(&dir, &names).unwrap_err();
        assert!(e.contains("key.pem: missing"), "{e}");
    }
}
