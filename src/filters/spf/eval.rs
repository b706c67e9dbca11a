//! check_host() (RFC 7208 4, 5, 6): fetching and evaluating records, every mechanism, include and
//! redirect, the explanation, and the processing limits of 4.6.4: 10 DNS-querying terms, 10 MX
//! and PTR names per mechanism, 2 void lookups.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::SpfResult;
use super::macros::{MacroString, Vars};
use super::record::{self, Mechanism, Qualifier, Record};
use crate::dns::{DnsError, Lookup};

/// RFC 7208 4.6.4: terms that query DNS (include, a, mx, ptr, exists, redirect) per check.
const MAX_DNS_TERMS: u32 = 10;
/// RFC 7208 4.6.4: MX names per "mx", PTR names per "ptr" (and per %{p}).
const MAX_NAMES: usize = 10;
/// RFC 7208 4.6.4: void lookups (NXDOMAIN or no answer) per check.
const MAX_VOID: u32 = 2;

/// Why evaluation stopped early.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Abort {
    Temp(String),
    Perm(String),
}

type Outcome<T> = Result<T, Abort>;

/// The state of one check: the inputs and the counters shared by the whole recursion.
pub struct Check<'a> {
    pub dns: &'a dyn Lookup,
    pub ip: IpAddr,
    pub sender: String,
    pub local: String,
    pub sender_domain: String,
    pub helo: String,
    pub receiver: String,
    terms: Cell<u32>,
    voids: Cell<u32>,
    validated: RefCell<HashMap<String, String>>,
}

/// The variables of one record's evaluation: the check plus the current <domain>.
struct Scope<'c, 'a> {
    check: &'c Check<'a>,
    domain: &'c str,
}

impl Vars for Scope<'_, '_> {
    fn sender(&self) -> &str {
        &self.check.sender
    }
    fn local_part(&self) -> &str {
        &self.check.local
    }
    fn sender_domain(&self) -> &str {
        &self.check.sender_domain
    }
    fn domain(&self) -> &str {
        self.domain
    }
    fn ip(&self) -> IpAddr {
        self.check.ip
    }
    fn helo(&self) -> &str {
        &self.check.helo
    }
    fn receiver(&self) -> &str {
        &self.check.receiver
    }
    fn validated_domain(&self) -> String {
        self.check.validated_domain(self.domain)
    }
    fn timestamp(&self) -> u64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
    }
}

/// RFC 7208 4.3: a usable domain: at most 253 octets, labels of 1 to 63 printable octets or spaces (%_ makes them, RFC 7208 7.3), more
/// than one label. A single trailing dot is allowed and dropped.
pub fn valid_domain(domain: &str) -> Option<String> {
    let d = domain.strip_suffix('.').unwrap_or(domain);
    let ok = !d.is_empty()
        && d.len() <= 253
        && d.contains('.')
        && d.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| (b.is_ascii_graphic() || b == b' ') && !b"\\[]@".contains(&b))
        });
    ok.then(|| d.to_ascii_lowercase())
}

/// RFC 7208 4.8: an expanded name longer than 253 octets loses labels from the left.
fn truncate(name: &str) -> &str {
    let name = name.strip_suffix('.').unwrap_or(name);
    let mut n = name;
    while n.len() > 253 {
        match n.split_once('.') {
            Some((_, rest)) => n = rest,
            None => break,
        }
    }
    n
}

fn in_net4(a: Ipv4Addr, net: Ipv4Addr, len: u8) -> bool {
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - u32::from(len.min(32))) };
    u32::from(a) & mask == u32::from(net) & mask
}

fn in_net6(a: Ipv6Addr, net: Ipv6Addr, len: u8) -> bool {
    let mask = if len == 0 { 0 } else { u128::MAX << (128 - u32::from(len.min(128))) };
    u128::from(a) & mask == u128::from(net) & mask
}

impl<'a> Check<'a> {
    pub fn new(dns: &'a dyn Lookup, ip: IpAddr, sender: &str, helo: &str, receiver: &str) -> Check<'a> {
        // RFC 7208 4.3: a sender without a local part gets "postmaster".
        let (local, domain) = match sender.rsplit_once('@') {
            Some(("", d)) => ("postmaster", d),
            Some((l, d)) => (l, d),
            None => ("postmaster", sender),
        };
        let sender = format!("{local}@{domain}");
        Check {
            dns,
            ip,
            sender,
            local: local.to_string(),
            sender_domain: domain.to_string(),
            helo: helo.to_string(),
            receiver: if receiver.is_empty() { "unknown".into() } else { receiver.to_string() },
            terms: Cell::new(0),
            voids: Cell::new(0),
            validated: RefCell::new(HashMap::new()),
        }
    }

    /// RFC 7208 4: check_host(<ip>, <domain>, <sender>) as (result, explanation).
    pub fn check_host(&self, domain: &str) -> Outcome<(SpfResult, Option<String>)> {
        // RFC 7208 4.3: a malformed domain, or one that does not exist, has no policy.
        let Some(domain) = valid_domain(domain) else {
            return Ok((SpfResult::None, None));
        };
        let txts = match self.dns.txt(&domain) {
            Ok(t) => t,
            Err(DnsError::NxDomain) => return Ok((SpfResult::None, None)),
            Err(e) => return Err(Abort::Temp(format!("TXT lookup of {domain}: {e}"))),
        };
        let text = match record::select(&txts) {
            Ok(Some(t)) => t,
            Ok(None) => return Ok((SpfResult::None, None)),
            Err(e) => return Err(Abort::Perm(format!("{domain}: {e}"))),
        };
        let rec = record::parse(&text).map_err(|e| Abort::Perm(format!("{domain}: {e}")))?;
        self.evaluate(&domain, &rec)
    }

    fn evaluate(&self, domain: &str, rec: &Record) -> Outcome<(SpfResult, Option<String>)> {
        let scope = Scope { check: self, domain };
        for d in &rec.directives {
            if self.matches(&scope, &d.mechanism)? {
                let result = match d.qualifier {
                    Qualifier::Pass => SpfResult::Pass,
                    Qualifier::Fail => SpfResult::Fail,
                    Qualifier::SoftFail => SpfResult::SoftFail,
                    Qualifier::Neutral => SpfResult::Neutral,
                };
                let exp = match (&rec.exp, result) {
                    (Some(exp), SpfResult::Fail) => self.explanation(&scope, exp),
                    _ => None,
                };
                return Ok((result, exp));
            }
        }
        // RFC 7208 6.1: redirect applies only when no mechanism matched (and "all" wins over it).
        if let Some(target) = &rec.redirect {
            self.count_term()?;
            let name = self.target(&scope, target)?;
            return match self.check_host(&name)? {
                (SpfResult::None, _) => {
                    Err(Abort::Perm(format!("redirect to {name}, which has no SPF record")))
                }
                other => Ok(other),
            };
        }
        Ok((SpfResult::Neutral, None))
    }

    fn count_term(&self) -> Outcome<()> {
        let n = self.terms.get() + 1;
        self.terms.set(n);
        if n > MAX_DNS_TERMS {
            return Err(Abort::Perm(format!("more than {MAX_DNS_TERMS} DNS-querying terms")));
        }
        Ok(())
    }

    /// Counts a void lookup (RFC 7208 4.6.4): NXDOMAIN or an empty answer.
    fn void(&self, what: &str) -> Outcome<()> {
        let n = self.voids.get() + 1;
        self.voids.set(n);
        if n > MAX_VOID {
            return Err(Abort::Perm(format!("more than {MAX_VOID} void lookups (last: {what})")));
        }
        Ok(())
    }

    /// Expands a target name; an expansion error is a permerror (RFC 7208 7).
    fn target(&self, scope: &Scope, spec: &MacroString) -> Outcome<String> {
        let name = spec.expand(scope, false).map_err(Abort::Perm)?;
        Ok(truncate(&name).to_string())
    }

    fn matches(&self, scope: &Scope, m: &Mechanism) -> Outcome<bool> {
        if m.queries_dns() {
            self.count_term()?;
        }
        let name_or_domain = |spec: &Option<MacroString>| -> Outcome<String> {
            match spec {
                Some(s) => self.target(scope, s),
                None => Ok(scope.domain.to_string()),
            }
        };
        match m {
            Mechanism::All => Ok(true),
            Mechanism::Ip4(net, len) => Ok(matches!(self.ip, IpAddr::V4(a) if in_net4(a, *net, *len))),
            Mechanism::Ip6(net, len) => Ok(matches!(self.ip, IpAddr::V6(a) if in_net6(a, *net, *len))),
            Mechanism::Include(spec) => {
                let name = self.target(scope, spec)?;
                // RFC 7208 5.2: pass matches; fail, softfail and neutral do not; none is a permerror.
                match self.check_host(&name)?.0 {
                    SpfResult::Pass => Ok(true),
                    SpfResult::None => {
                        Err(Abort::Perm(format!("include of {name}, which has no SPF record")))
                    }
                    _ => Ok(false),
                }
            }
            Mechanism::A { domain, v4, v6 } => {
                let name = name_or_domain(domain)?;
                let addrs = self.addresses(&name, true)?;
                Ok(addrs.iter().any(|a| self.in_cidr(*a, *v4, *v6)))
            }
            Mechanism::Mx { domain, v4, v6 } => {
                let name = name_or_domain(domain)?;
                let Some(valid) = valid_domain(&name) else {
                    self.void(&name)?;
                    return Ok(false);
                };
                let hosts = match self.dns.mx(&valid) {
                    Ok(h) if h.is_empty() => return self.void(&valid).map(|_| false),
                    Ok(h) => h,
                    Err(DnsError::NxDomain) => return self.void(&valid).map(|_| false),
                    Err(e) => return Err(Abort::Temp(format!("MX lookup of {valid}: {e}"))),
                };
                // RFC 7208 4.6.4: more than 10 MX names is a permerror.
                if hosts.len() > MAX_NAMES {
                    return Err(Abort::Perm(format!("{valid} has more than {MAX_NAMES} MX records")));
                }
                for host in hosts {
                    let addrs = self.addresses(&host, false)?;
                    if addrs.iter().any(|a| self.in_cidr(*a, *v4, *v6)) {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            Mechanism::Ptr(spec) => {
                let target = name_or_domain(spec)?.to_ascii_lowercase();
                let names = self.validated_names()?;
                Ok(names.iter().any(|n| n == &target || n.ends_with(&format!(".{target}"))))
            }
            Mechanism::Exists(spec) => {
                let name = self.target(scope, spec)?;
                let Some(valid) = valid_domain(&name) else {
                    self.void(&name)?;
                    return Ok(false);
                };
                // RFC 7208 5.7: always an A query, whatever the client's address family.
                match self.dns.a(&valid) {
                    Ok(a) if !a.is_empty() => Ok(true),
                    Ok(_) | Err(DnsError::NxDomain) => self.void(&valid).map(|_| false),
                    Err(e) => Err(Abort::Temp(format!("A lookup of {valid}: {e}"))),
                }
            }
        }
    }

    fn in_cidr(&self, a: IpAddr, v4: u8, v6: u8) -> bool {
        match (self.ip, a) {
            (IpAddr::V4(ip), IpAddr::V4(a)) => in_net4(ip, a, v4),
            (IpAddr::V6(ip), IpAddr::V6(a)) => in_net6(ip, a, v6),
            _ => false,
        }
    }

    /// The A (IPv4 client) or AAAA (IPv6 client) records of `name` (RFC 7208 5.3); `counted`
    /// makes an empty answer a void lookup (the name of an "a" term; MX hosts are not counted).
    fn addresses(&self, name: &str, counted: bool) -> Outcome<Vec<IpAddr>> {
        let Some(valid) = valid_domain(name) else {
            if counted {
                self.void(name)?;
            }
            return Ok(Vec::new());
        };
        let found: Result<Vec<IpAddr>, DnsError> = match self.ip {
            IpAddr::V4(_) => self.dns.a(&valid).map(|v| v.into_iter().map(IpAddr::V4).collect()),
            IpAddr::V6(_) => self.dns.aaaa(&valid).map(|v| v.into_iter().map(IpAddr::V6).collect()),
        };
        match found {
            Ok(v) if !v.is_empty() => Ok(v),
            Ok(_) | Err(DnsError::NxDomain) => {
                if counted {
                    self.void(&valid)?;
                }
                Ok(Vec::new())
            }
            Err(e) => Err(Abort::Temp(format!("address lookup of {valid}: {e}"))),
        }
    }

    /// RFC 7208 5.5: the PTR names of the client whose addresses include it (first 10 names
    /// only; a DNS error on the PTR query means no names, on a name's address query skips it).
    fn validated_names(&self) -> Outcome<Vec<String>> {
        let names = match self.dns.ptr(self.ip) {
            Ok(n) if n.is_empty() => return self.void("PTR").map(|_| Vec::new()),
            Ok(n) => n,
            Err(DnsError::NxDomain) => return self.void("PTR").map(|_| Vec::new()),
            Err(_) => return Ok(Vec::new()),
        };
        Ok(self.validate(&names))
    }

    fn validate(&self, names: &[String]) -> Vec<String> {
        let mut out = Vec::new();
        for name in names.iter().take(MAX_NAMES) {
            let Some(valid) = valid_domain(name) else { continue };
            let ok = match self.ip {
                IpAddr::V4(ip) => self.dns.a(&valid).is_ok_and(|v| v.contains(&ip)),
                IpAddr::V6(ip) => self.dns.aaaa(&valid).is_ok_and(|v| v.contains(&ip)),
            };
            if ok {
                out.push(valid);
            }
        }
        out
    }

    /// RFC 7208 7.3: %{p}, a validated name of the client, preferring <domain> or a subdomain of
    /// it; "unknown" when there is none. Remembered per <domain>, so repeated %{p} costs nothing.
    fn validated_domain(&self, domain: &str) -> String {
        if let Some(v) = self.validated.borrow().get(domain) {
            return v.clone();
        }
        let names = self.dns.ptr(self.ip).map(|n| self.validate(&n)).unwrap_or_default();
        let domain_lc = domain.to_ascii_lowercase();
        let best = names
            .iter()
            .find(|n| **n == domain_lc)
            .or_else(|| names.iter().find(|n| n.ends_with(&format!(".{domain_lc}"))))
            .or(names.first())
            .cloned()
            .unwrap_or_else(|| "unknown".into());
        self.validated.borrow_mut().insert(domain.to_string(), best.clone());
        best
    }

    /// RFC 7208 6.2: the explanation for a fail; any failure to make one means none.
    fn explanation(&self, scope: &Scope, spec: &MacroString) -> Option<String> {
        let name = spec.expand(scope, false).ok()?;
        let name = valid_domain(truncate(&name))?;
        let txts = self.dns.txt(&name).ok()?;
        let [strings] = txts.as_slice() else { return None };
        let text = String::from_utf8(strings.concat()).ok()?;
        let exp = MacroString::parse(&text, true).ok()?.expand(scope, true).ok()?;
        // Only printable ASCII goes back to the client (RFC 7208 6.2).
        exp.bytes().all(|b| (0x20..0x7f).contains(&b)).then_some(exp)
    }
}
