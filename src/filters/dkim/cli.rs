//! `buzon dkim keygen|sign|verify`: make a signing key and print its TXT record (RFC 6376 3.6.1,
//! RFC 8463 4), sign a message from standard input, verify one and print the results (RFC 8601
//! names).

use std::io::{Read, Write};
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use super::header::valid_dns_name;
use super::key::{self, KeyType, SigningKey};
use super::{Signer, Verdict, Verifier};
use crate::config::Config;
use crate::durable::{self, Place};
use crate::filters::cli::CliError;

pub const USAGE: &str = "usage: buzon dkim keygen DOMAIN [--selector S] [--ed25519]\n       \
                         buzon dkim sign DOMAIN [--selector S] < message\n       buzon dkim verify < message";

fn usage(m: &str) -> CliError {
    CliError::Usage(format!("dkim: {m}\n{USAGE}"))
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn write_err(e: std::io::Error) -> CliError {
    CliError::Failed(format!("dkim: writing the output: {e}"))
}

/// `buzon dkim ARGS`.
pub fn cli(config: &Config, args: &[String], out: &mut dyn Write) -> Result<(), CliError> {
    let Some((sub, rest)) = args.split_first() else {
        return Err(usage("missing subcommand"));
    };
    let mut domain = None;
    let mut selector = None;
    let mut ed25519 = false;
    let mut it = rest.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--selector" | "-s" => {
                let s = it.next().ok_or_else(|| usage("--selector needs a value"))?;
                if !valid_dns_name(s) {
                    return Err(usage(&format!("--selector {s:?}: not a valid selector")));
                }
                selector = Some(s.clone());
            }
            "--ed25519" if sub == "keygen" => ed25519 = true,
            s if s.starts_with('-') => return Err(usage(&format!("unknown option {s:?}"))),
            s if domain.is_none() => {
                let d = s.trim_end_matches('.').to_ascii_lowercase();
                if !valid_dns_name(&d) {
                    return Err(usage(&format!("{s:?}: not a domain name")));
                }
                domain = Some(d);
            }
            s => return Err(usage(&format!("unexpected argument {s:?}"))),
        }
    }
    let need_domain = || domain.clone().ok_or_else(|| usage("missing DOMAIN"));
    match sub.as_str() {
        "keygen" => keygen(config, &need_domain()?, selector, ed25519, out),
        "sign" => {
            let mut msg = Vec::new();
            std::io::stdin()
                .read_to_end(&mut msg)
                .map_err(|e| CliError::Failed(format!("reading stdin: {e}")))?;
            let dir = config.data_dir.join("dkim");
            let keys = key::keys_for(&dir, &need_domain()?, selector.as_deref()).map_err(CliError::Failed)?;
            if keys.is_empty() {
                return Err(CliError::Failed(format!(
                    "dkim: no key for {} in {} (make one with `buzon dkim keygen`)",
                    need_domain()?,
                    dir.display()
                )));
            }
            sign_message(keys, &msg, now(), out)
        }
        "verify" => {
            if domain.is_some() || selector.is_some() {
                return Err(usage("verify takes no arguments"));
            }
            let mut msg = Vec::new();
            std::io::stdin()
                .read_to_end(&mut msg)
                .map_err(|e| CliError::Failed(format!("reading stdin: {e}")))?;
            let dns = crate::dns::Resolver::from_system(&config.dns_servers).map_err(CliError::Failed)?;
            let verdicts = verify_message(&msg, &dns, now());
            if verdicts.is_empty() {
                writeln!(out, "dkim=none").map_err(write_err)?;
            }
            for v in verdicts {
                writeln!(out, "{}", describe(&v)).map_err(write_err)?;
            }
            Ok(())
        }
        other => Err(usage(&format!("unknown subcommand {other:?}"))),
    }
}

/// A message from a file or pipe: (header, body, whether it had bare LF line ends), with CRLF
/// line ends either way (RFC 6376 5.3: signing and verifying see the SMTP form).
fn split_message(msg: &[u8]) -> (Vec<u8>, Vec<u8>, bool) {
    let lf = !msg.windows(2).any(|w| w == b"\r\n") && msg.contains(&b'\n');
    let msg: Vec<u8> = if lf {
        msg.iter().flat_map(|&b| if b == b'\n' { vec![b'\r', b'\n'] } else { vec![b] }).collect()
    } else {
        msg.to_vec()
    };
    if msg.starts_with(b"\r\n") {
        return (Vec::new(), msg[2..].to_vec(), lf);
    }
    match msg.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(i) => (msg[..i + 2].to_vec(), msg[i + 4..].to_vec(), lf),
        None => (msg, Vec::new(), lf),
    }
}

/// Signs `msg` and writes it with the signatures on top, in the message's own line ends.
pub fn sign_message(
    keys: Vec<SigningKey>,
    msg: &[u8],
    now: u64,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let (header, body, lf) = split_message(msg);
    let mut signer = Signer::new(keys, &header, now);
    signer.feed(&body);
    let sigs = signer.finish().map_err(|e| CliError::Failed(format!("dkim: {e}")))?;
    for s in sigs {
        let s = if lf { s.replace("\r\n", "\n") } else { s };
        out.write_all(s.as_bytes()).map_err(write_err)?;
        out.write_all(if lf { b"\n" } else { b"\r\n" }).map_err(write_err)?;
    }
    out.write_all(msg).map_err(write_err)
}

/// Verifies a whole message held in memory.
pub fn verify_message(msg: &[u8], dns: &dyn crate::dns::Lookup, now: u64) -> Vec<Verdict> {
    let (header, body, _) = split_message(msg);
    let mut v = Verifier::new(&header);
    v.feed(&body);
    v.finish(dns, now)
}

/// One verdict as an Authentication-Results method (RFC 8601 2.7.1, RFC 6008 header.b).
pub fn describe(v: &Verdict) -> String {
    let mut s = format!("dkim={}", v.result.as_str());
    if !v.domain.is_empty() {
        s.push_str(&format!(" header.d={}", v.domain));
    }
    if !v.selector.is_empty() {
        s.push_str(&format!(" header.s={}", v.selector));
    }
    if !v.algorithm.is_empty() {
        s.push_str(&format!(" header.a={}", v.algorithm));
    }
    if !v.header_b.is_empty() {
        s.push_str(&format!(" header.b={}", v.header_b));
    }
    if let Some(i) = &v.identity {
        s.push_str(&format!(" header.i={i}"));
    }
    if let Some(r) = &v.reason {
        s.push_str(&format!(" ({r})"));
    }
    s
}

/// The default selector: `s` (RSA) or `e` (Ed25519) and the year and month, e.g. `s202612`: one
/// selector per algorithm, since a verifier may read only the first TXT record of a name.
fn default_selector(now: u64, ed25519: bool) -> String {
    let (y, m, _) = crate::timefmt::civil_from_days((now / 86_400) as i64);
    format!("{}{y:04}{m:02}", if ed25519 { 'e' } else { 's' })
}

fn keygen(
    config: &Config,
    domain: &str,
    selector: Option<String>,
    ed25519: bool,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let failed = |m: String| CliError::Failed(format!("dkim keygen: {m}"));
    let selector = selector.unwrap_or_else(|| default_selector(now(), ed25519));
    let kind = if ed25519 { KeyType::Ed25519 } else { KeyType::Rsa };
    let dir = config.data_dir.join("dkim");
    let path = dir.join(key::file_name(domain, &selector, kind));
    if path.exists() {
        return Err(failed(format!("{}: exists; not overwritten", path.display())));
    }
    let pem = if ed25519 { ed25519_pem()? } else { rsa_pem()? };
    let key = SigningKey::from_pem(domain, &selector, pem.as_bytes()).map_err(failed)?;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(|e| failed(format!("{}: cannot create: {e}", dir.display())))?;
    durable::write(&path, Place::New, 0o600, pem.as_bytes())
        .map_err(|e| failed(format!("{}: cannot write: {e}", path.display())))?;
    give_to_service_user(config, &[&dir, &path]).map_err(failed)?;
    writeln!(out, "; key: {}", path.display()).map_err(write_err)?;
    let other = if ed25519 { KeyType::Rsa } else { KeyType::Ed25519 };
    if dir.join(key::file_name(domain, &selector, other)).exists() {
        // Two TXT records at one name: buzon picks the one of the signature's k=, but verifiers
        // that read only the first record (dkimpy, for one) fail one of the two signatures.
        writeln!(
            out,
            "; note: selector {selector} now has an RSA and an Ed25519 key: publish both TXT records; \
             some verifiers read only one record per name, a selector per algorithm avoids that"
        )
        .map_err(write_err)?;
    }
    writeln!(out, "{}", zone_line(domain, &selector, &key.record())).map_err(write_err)
}

/// `S._domainkey.DOMAIN. IN TXT ( "..." "..." )`, each string at most 255 octets (RFC 1035 3.3).
pub fn zone_line(domain: &str, selector: &str, record: &str) -> String {
    let strings: Vec<String> =
        record.as_bytes().chunks(255).map(|c| format!("\"{}\"", String::from_utf8_lossy(c))).collect();
    format!("{selector}._domainkey.{domain}. IN TXT ( {} )", strings.join(" "))
}

fn ed25519_pem() -> Result<String, CliError> {
    let rng = ring::rand::SystemRandom::new();
    let doc = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng)
        .map_err(|_| CliError::Failed("dkim keygen: Ed25519 key generation failed".into()))?;
    Ok(key::pem_encode("PRIVATE KEY", doc.as_ref()))
}

/// RSA 2048 through `openssl genpkey` (ring signs with RSA keys but cannot make them; an RSA crate
/// would add to every binary what one command run once per key does).
fn rsa_pem() -> Result<String, CliError> {
    let run = std::process::Command::new("openssl")
        .args(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .output();
    let output = match run {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(CliError::Failed(
                "dkim keygen: making an RSA key needs the openssl command (install the openssl \
                 package), or make an Ed25519 key with --ed25519"
                    .into(),
            ));
        }
        Err(e) => return Err(CliError::Failed(format!("dkim keygen: running openssl: {e}"))),
    };
    if !output.status.success() {
        return Err(CliError::Failed(format!("dkim keygen: openssl genpkey failed ({})", output.status)));
    }
    String::from_utf8(output.stdout).map_err(|_| CliError::Failed("dkim keygen: openssl wrote no PEM".into()))
}

/// Run as root with a `user` configured: the key directory and file go to that user, who signs.
fn give_to_service_user(config: &Config, paths: &[&Path]) -> Result<(), String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(());
    }
    let Some(user) = &config.user else { return Ok(()) };
    let account =
        crate::auth::system::getpwnam(user)?.ok_or_else(|| format!("user = {user}: no such Unix user"))?;
    let (Some(uid), Some(gid)) = (account.uid, account.gid) else {
        return Err(format!("user = {user}: the account has no uid/gid"));
    };
    for p in paths {
        std::os::unix::fs::lchown(p, Some(uid), Some(gid))
            .map_err(|e| format!("chown {}: {e}", p.display()))?;
    }
    Ok(())
}
