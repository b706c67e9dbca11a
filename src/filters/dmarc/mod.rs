//! DMARC (RFC 7489): whether a message's RFC5322.From domain is authenticated by an aligned SPF or
//! DKIM pass (3.1), the policy its owner published (6.3 record, 6.6.3 discovery at the From
//! domain then at its Organizational Domain, 3.2), and what to do with a failing message after the
//! `pct` sampling (6.6.4). Pure over the SPF and DKIM results the SMTP side already has and a
//! [`Lookup`]; the random draw for `pct` is a parameter, so tests choose it.
//!
//! Submodules: [`record`] parses a policy record, [`from`] finds the From domain in a header
//! section, [`orgdomain`] holds the Public Suffix List, `command` is `buzon dmarc`.

mod command;
pub mod from;
mod idna;
pub mod orgdomain;
pub mod record;
#[cfg(test)]
mod tests;

use crate::dns::{DnsError, Lookup};

pub use command::cli;
pub use from::from_domain;
pub use orgdomain::organizational_domain;
use record::{Alignment, Record, RecordError};

/// A Domain Owner's requested handling of failing mail (6.3 `p`, `sp`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    None,
    Quarantine,
    Reject,
}

impl Policy {
    pub fn as_str(self) -> &'static str {
        match self {
            Policy::None => "none",
            Policy::Quarantine => "quarantine",
            Policy::Reject => "reject",
        }
    }
}

/// The DMARC result, as Authentication-Results names it (RFC 7489 11.2, RFC 8601 2.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DmarcResult {
    /// No policy published (or discovery ended without one: several records, 6.6.3 step 5).
    None,
    Pass,
    Fail,
    /// A DNS failure while looking for the record: try again later.
    TempError,
    /// A DMARC record that cannot be used (bad syntax, no valid `p` and no `rua`), or a From
    /// domain that is not a domain name.
    PermError,
}

impl DmarcResult {
    pub fn as_str(self) -> &'static str {
        match self {
            DmarcResult::None => "none",
            DmarcResult::Pass => "pass",
            DmarcResult::Fail => "fail",
            DmarcResult::TempError => "temperror",
            DmarcResult::PermError => "permerror",
        }
    }
}

/// What SPF and DKIM found, as the SMTP side has it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Evidence<'a> {
    /// The domain SPF checked (the MAIL FROM domain, or the HELO name for a null sender) and
    /// whether SPF passed.
    pub spf: Option<(&'a str, bool)>,
    /// Each DKIM signature's `d=` and whether it verified.
    pub dkim: &'a [(&'a str, bool)],
}

/// The outcome of [`evaluate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dmarc {
    pub result: DmarcResult,
    /// Lowercased, without a trailing dot, U-labels as A-labels.
    pub from_domain: String,
    /// Where the record was found: the From domain or its Organizational Domain.
    pub policy_domain: Option<String>,
    /// The `p` (or, for a subdomain's mail under an Organizational Domain's record, the `sp`) that
    /// applies; `None` without a usable record.
    pub policy: Policy,
    /// What to do with the message: the policy when the result is `fail` and the `pct` draw
    /// selected it, the next milder one when it did not (6.6.4), `None` otherwise.
    pub disposition: Policy,
    /// Why, in words, for logs and `buzon dmarc check`.
    pub reason: Option<String>,
}

impl Dmarc {
    fn new(result: DmarcResult, from_domain: &str, reason: String) -> Dmarc {
        Dmarc {
            result,
            from_domain: from_domain.to_string(),
            policy_domain: None,
            policy: Policy::None,
            disposition: Policy::None,
            reason: Some(reason),
        }
    }

    /// Adds `dmarc=RESULT header.from=DOMAIN` to an Authentication-Results field (RFC 7489 11.2).
    pub fn add_to(&self, ar: &mut super::authres::AuthResults) {
        ar.add("dmarc", self.result.as_str(), None, &[("header.from", &self.from_domain)]);
    }
}

/// A uniform draw in 0..=99 for [`evaluate`]'s `pct` sampling, from the system's random source;
/// 0 (the policy applies) if that fails.
pub fn draw() -> u8 {
    use ring::rand::{SecureRandom, SystemRandom};
    let rng = SystemRandom::new();
    for _ in 0..8 {
        let mut b = [0u8; 1];
        if rng.fill(&mut b).is_err() {
            break;
        }
        if b[0] < 200 {
            return b[0] % 100; // rejection sampling: no bias toward low numbers
        }
    }
    0
}

/// What looking up `_dmarc.DOMAIN` gave (6.6.3 steps 1, 2 and 5).
enum Found {
    /// No DMARC record (NXDOMAIN, NODATA, or only TXT records that are not DMARC).
    Nothing,
    One(Result<Record, String>),
    Several(usize),
    DnsFailure(DnsError),
}

fn discover(dns: &dyn Lookup, domain: &str) -> Found {
    let name = format!("_dmarc.{domain}");
    if name.len() > 253 || !name.is_ascii() {
        return Found::Nothing; // no such name can exist in the DNS (RFC 1035 2.3.4)
    }
    let txts = match dns.txt(&name) {
        Ok(t) => t,
        Err(DnsError::NxDomain) => return Found::Nothing,
        Err(e) => return Found::DnsFailure(e),
    };
    // A TXT record's character-strings are joined without spaces (as SPF, RFC 7208 3.3, and DKIM).
    let records: Vec<Vec<u8>> =
        txts.into_iter().map(|strings| strings.concat()).filter(|t| record::is_dmarc(t)).collect();
    match records.as_slice() {
        [] => Found::Nothing,
        [one] => Found::One(record::parse(one).map_err(|e| match e {
            RecordError::NotDmarc => "not a DMARC record".to_string(),
            RecordError::Invalid(why) => why,
        })),
        many => Found::Several(many.len()),
    }
}

fn domain_ok(d: &str) -> bool {
    !d.is_empty()
        && d.len() <= 253
        && d.split('.').all(|l| !l.is_empty() && l.len() <= 63 && !l.bytes().any(|b| b <= b' ' || b == 0x7f))
}

/// Whether `id` is aligned with the From domain (3.1.1, 3.1.2): the same name (strict), or the
/// same Organizational Domain (relaxed).
fn aligned(id: &str, from: &str, from_org: &str, mode: Alignment) -> bool {
    let id = idna::to_ascii(id.trim_end_matches('.'));
    match mode {
        Alignment::Strict => id == from,
        Alignment::Relaxed => id == from || organizational_domain(&id) == from_org,
    }
}

/// Evaluates DMARC for a message whose RFC5322.From domain is `from_domain`. `draw` is a uniform
/// random number in 0..=99 (see [`draw`]); the policy is enacted when `draw < pct`.
pub fn evaluate(dns: &dyn Lookup, from_domain: &str, ev: &Evidence, draw: u8) -> Dmarc {
    let from = idna::to_ascii(from_domain.trim_end_matches('.'));
    if !domain_ok(&from) {
        return Dmarc::new(DmarcResult::PermError, &from, format!("invalid From domain {from:?}"));
    }
    let org = organizational_domain(&from);

    // 6.6.3 steps 1-4: the From domain's record, else (only when there is none at all) the
    // Organizational Domain's.
    let mut policy_domain = from.clone();
    let mut found = discover(dns, &from);
    if matches!(found, Found::Nothing) && org != from {
        policy_domain = org.clone();
        found = discover(dns, &org);
    }
    let rec = match found {
        Found::One(Ok(rec)) => rec,
        Found::Nothing => return Dmarc::new(DmarcResult::None, &from, "no DMARC record".into()),
        Found::Several(n) => {
            // Step 5: several records end discovery; DMARC does not apply.
            let mut d =
                Dmarc::new(DmarcResult::None, &from, format!("{n} DMARC records at _dmarc.{policy_domain}"));
            d.policy_domain = Some(policy_domain);
            return d;
        }
        Found::DnsFailure(e) => {
            let mut d = Dmarc::new(DmarcResult::TempError, &from, format!("_dmarc.{policy_domain}: {e}"));
            d.policy_domain = Some(policy_domain);
            return d;
        }
        Found::One(Err(why)) => {
            // Step 6: no valid p and no usable rua: no DMARC processing; reported as permerror.
            let mut d = Dmarc::new(DmarcResult::PermError, &from, format!("_dmarc.{policy_domain}: {why}"));
            d.policy_domain = Some(policy_domain);
            return d;
        }
    };

    // 6.3: sp applies to subdomains of the Organizational Domain whose record was found there;
    // a record without a valid p (step 6, kept for its rua) counts as p=none.
    let policy = match (policy_domain != from, rec.sp, rec.p) {
        (true, Some(sp), _) => sp,
        (_, _, Some(p)) => p,
        (_, _, None) => Policy::None,
    };

    let dkim_pass = ev.dkim.iter().find(|(d, pass)| *pass && aligned(d, &from, &org, rec.adkim));
    let spf_pass = ev.spf.filter(|(d, pass)| *pass && aligned(d, &from, &org, rec.aspf));
    let (result, mut reason) = match (dkim_pass, spf_pass) {
        (Some((d, _)), _) => (DmarcResult::Pass, format!("DKIM d={d} aligned")),
        (None, Some((d, _))) => (DmarcResult::Pass, format!("SPF {d} aligned")),
        (None, None) => (DmarcResult::Fail, "no aligned SPF or DKIM pass".to_string()),
    };

    // 6.6.4: enact the policy on pct% of failing mail; the rest gets the next milder treatment.
    let disposition = if result != DmarcResult::Fail {
        Policy::None
    } else if draw < rec.pct {
        policy
    } else {
        reason.push_str(&format!("; not sampled (pct={})", rec.pct));
        match policy {
            Policy::Reject => Policy::Quarantine,
            Policy::Quarantine | Policy::None => Policy::None,
        }
    };
    Dmarc {
        result,
        from_domain: from,
        policy_domain: Some(policy_domain),
        policy,
        disposition,
        reason: Some(reason),
    }
}
