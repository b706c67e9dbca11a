//! SPF, RFC 7208: is this client allowed to send mail for the MAIL FROM (or HELO) domain? The
//! SMTP side calls [`check`] and puts [`Spf::received_spf`] in the message; [`check_host`] is the
//! RFC's function; `buzon spf check IP SENDER [HELO]` runs it by hand ([`cli`]). DNS goes through
//! [`crate::dns::Lookup`], so tests and fuzzing answer from a [`crate::dns::Table`].
//!
//! Submodules: `record` (syntax, 4.5, 4.6, 5, 6, 12), `macros` (7), `eval` (check_host, limits).

mod eval;
mod macros;
mod record;
#[cfg(test)]
mod tests;

use std::io::Write;
use std::net::IpAddr;

use super::cli::CliError;
use crate::config::Config;
use crate::dns::Lookup;

pub use record::{Directive, Mechanism, Qualifier, Record, parse as parse_record};

/// The results of RFC 7208 2.6.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpfResult {
    None,
    Neutral,
    Pass,
    Fail,
    SoftFail,
    TempError,
    PermError,
}

impl SpfResult {
    /// The result's name as RFC 7208 2.6 and 9.1 spell it.
    pub fn as_str(&self) -> &'static str {
        match self {
            SpfResult::None => "none",
            SpfResult::Neutral => "neutral",
            SpfResult::Pass => "pass",
            SpfResult::Fail => "fail",
            SpfResult::SoftFail => "softfail",
            SpfResult::TempError => "temperror",
            SpfResult::PermError => "permerror",
        }
    }
}

impl std::fmt::Display for SpfResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which identity was checked (RFC 7208 2.3, 2.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    MailFrom,
    Helo,
}

/// The outcome of the SMTP-level check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spf {
    pub result: SpfResult,
    pub scope: Scope,
    /// The domain checked.
    pub domain: String,
    /// The sender used: the MAIL FROM address, or postmaster@HELO for a null reverse-path.
    pub sender: String,
    /// For a fail: the domain's explanation (RFC 7208 6.2), when it published one that worked.
    pub explanation: Option<String>,
    /// Why, for permerror and temperror (for logs and the Received-SPF field).
    pub problem: Option<String>,
}

/// RFC 7208 4: check_host(<ip>, <domain>, <sender>), with the HELO name and the receiver's name
/// for the macros. Returns the result, the explanation (fail only) and the problem (errors only).
pub fn check_host(
    dns: &dyn Lookup,
    ip: IpAddr,
    domain: &str,
    sender: &str,
    helo: &str,
    receiver: &str,
) -> (SpfResult, Option<String>, Option<String>) {
    let ip = ip.to_canonical();
    let check = eval::Check::new(dns, ip, sender, helo, receiver);
    match check.check_host(domain) {
        Ok((result, explanation)) => (result, explanation, None),
        Err(eval::Abort::Temp(why)) => (SpfResult::TempError, None, Some(why)),
        Err(eval::Abort::Perm(why)) => (SpfResult::PermError, None, Some(why)),
    }
}

/// The SMTP-level check (RFC 7208 2.3, 2.4): the MAIL FROM domain, or postmaster@HELO when the
/// reverse-path is null. IPv4-mapped IPv6 clients are checked as IPv4.
pub fn check(dns: &dyn Lookup, ip: IpAddr, mail_from: &str, helo: &str, receiver: &str) -> Spf {
    let mail_from = mail_from.trim();
    let mail_from = mail_from.strip_prefix('<').and_then(|m| m.strip_suffix('>')).unwrap_or(mail_from);
    let (scope, sender, domain) = if mail_from.is_empty() {
        (Scope::Helo, format!("postmaster@{helo}"), helo.to_string())
    } else {
        match mail_from.rsplit_once('@') {
            // RFC 7208 4.3: a missing local part is "postmaster".
            Some(("", d)) => (Scope::MailFrom, format!("postmaster@{d}"), d.to_string()),
            Some((_, d)) => (Scope::MailFrom, mail_from.to_string(), d.to_string()),
            None => (Scope::MailFrom, format!("postmaster@{mail_from}"), mail_from.to_string()),
        }
    };
    let (result, explanation, problem) = check_host(dns, ip, &domain, &sender, helo, receiver);
    Spf { result, scope, domain, sender, explanation, problem }
}

/// Folds header text at spaces so lines stay under 78 columns where words allow (RFC 5322 2.2.3).
fn fold(words: &[String]) -> String {
    let mut out = String::new();
    let mut col = 0;
    for w in words {
        if out.is_empty() {
        } else if col + 1 + w.len() > 78 {
            out.push_str("\r\n\t");
            col = 8;
        } else {
            out.push(' ');
            col += 1;
        }
        out.push_str(w);
        col += w.len();
    }
    out
}

/// A key-value value: dot-atom when it is one, else a quoted-string (RFC 7208 9.1, RFC 5322 3.2).
fn kv_value(v: &str) -> String {
    let atext = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c);
    let dot_atom = !v.is_empty() && v.split('.').all(|a| !a.is_empty() && a.chars().all(atext));
    if dot_atom {
        return v.to_string();
    }
    let mut q = String::from("\"");
    for c in v.chars().filter(|c| !c.is_control()) {
        if c == '"' || c == '\\' {
            q.push('\\');
        }
        q.push(c);
    }
    q.push('"');
    q
}

/// Comment text with parentheses and backslashes quoted (RFC 5322 3.2.2 quoted-pair).
fn comment_text(v: &str) -> String {
    let mut s = String::new();
    for c in v.chars().filter(|c| !c.is_control()) {
        if matches!(c, '(' | ')' | '\\') {
            s.push('\\');
        }
        s.push(c);
    }
    s
}

impl Spf {
    /// The `Received-SPF:` header field (RFC 7208 9.1), folded with CRLF TAB under 78 columns
    /// where words allow, without the final CRLF.
    pub fn received_spf(&self, ip: IpAddr, helo: &str, receiver: &str) -> String {
        let ip = ip.to_canonical();
        let who = comment_text(&self.sender);
        let comment = match self.result {
            SpfResult::Pass => format!("domain of {who} designates {ip} as permitted sender"),
            SpfResult::Fail => format!("domain of {who} does not designate {ip} as permitted sender"),
            SpfResult::SoftFail => {
                format!("domain of transitioning {who} does not designate {ip} as permitted sender")
            }
            SpfResult::Neutral => format!("{ip} is neither permitted nor denied by domain of {who}"),
            SpfResult::None => format!("domain of {who} does not designate permitted sender hosts"),
            SpfResult::TempError => format!("temporary error in processing the SPF record of {who}"),
            SpfResult::PermError => format!("permanent error in processing the SPF record of {who}"),
        };
        let mut words: Vec<String> = vec!["Received-SPF:".into(), self.result.as_str().into()];
        let comment = format!("({}: {comment})", comment_text(receiver));
        words.extend(comment.split(' ').filter(|w| !w.is_empty()).map(String::from));
        let identity = match self.scope {
            Scope::MailFrom => "mailfrom",
            Scope::Helo => "helo",
        };
        let mut pairs = vec![
            ("client-ip", ip.to_string()),
            ("envelope-from", self.sender.clone()),
            ("helo", helo.to_string()),
            ("receiver", receiver.to_string()),
            ("identity", identity.to_string()),
        ];
        if let Some(p) = &self.problem {
            pairs.push(("problem", p.clone()));
        }
        for (k, v) in pairs {
            // Long quoted values may fold at their spaces (FWS inside a quoted-string).
            let pair = format!("{k}={};", kv_value(&v));
            words.extend(pair.split(' ').filter(|w| !w.is_empty()).map(String::from));
        }
        fold(&words)
    }
}

const USAGE: &str = "usage: buzon spf check IP SENDER [HELO]";

/// `buzon spf check IP SENDER [HELO]`: prints the result, the explanation or problem, and the
/// Received-SPF field, asking the system's DNS servers (or `dns.servers`).
pub fn cli(config: &Config, args: &[String], out: &mut dyn Write) -> Result<(), CliError> {
    let [cmd, ip, sender, rest @ ..] = args else {
        return Err(CliError::Usage(USAGE.into()));
    };
    if cmd != "check" || rest.len() > 1 {
        return Err(CliError::Usage(USAGE.into()));
    }
    let ip: IpAddr = ip.parse().map_err(|_| CliError::Usage(format!("{ip:?} is not an IP address")))?;
    let helo = match rest.first() {
        Some(h) => h.clone(),
        None => sender.rsplit_once('@').map(|(_, d)| d).unwrap_or(sender).to_string(),
    };
    if sender.is_empty() && helo.is_empty() {
        return Err(CliError::Usage("an empty SENDER needs a HELO name".into()));
    }
    let dns = crate::dns::Resolver::from_system(&config.dns_servers).map_err(CliError::Failed)?;
    let spf = check(&dns, ip, sender, &helo, &config.hostname);
    let io = |e: std::io::Error| CliError::Failed(e.to_string());
    writeln!(out, "{}", spf.result).map_err(io)?;
    if let Some(e) = &spf.explanation {
        writeln!(out, "explanation: {e}").map_err(io)?;
    }
    if let Some(p) = &spf.problem {
        writeln!(out, "problem: {p}").map_err(io)?;
    }
    writeln!(out, "{}", spf.received_spf(ip, &helo, &config.hostname).replace("\r\n", "\n")).map_err(io)?;
    Ok(())
}
