//! The keys of buzon.conf(5)'s "Fighting spam" section: the inbound sender checks (SPF, DKIM,
//! DMARC, DNSBL, greylisting), the content scanners and outbound DKIM signing.

use std::time::Duration;

use super::values::{Cidr, parse_bool, parse_duration, parse_nets};

/// What an inbound check does with its result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Off,
    /// The result goes into the message's headers only.
    Tag,
    /// A failure is refused (SPF `fail`: 550 5.7.23); DMARC's `enforce` applies the domain's policy.
    Reject,
}

/// What happens to a message when a configured scanner cannot be reached or fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScanFailure {
    /// 451 4.7.1: the client retries later (nothing unscanned gets in).
    Tempfail,
    /// Accepted unscanned (logged).
    Accept,
}

#[derive(Clone, Debug)]
pub struct Filters {
    pub spf: Mode,
    /// `Reject` is spelt `enforce`.
    pub dmarc: Mode,
    pub dkim_verify: bool,
    /// The signing selector; `None`: the newest key's.
    pub dkim_selector: Option<String>,
    pub dnsbl: Vec<String>,
    pub greylist: bool,
    /// How long a new (client, sender, recipient) triplet waits before it is accepted.
    pub greylist_delay: Duration,
    /// Clients whose mail skips the inbound checks (as relay.networks and logged-in clients do).
    pub skip_networks: Vec<Cidr>,
    pub clamd: Option<String>,
    pub spamd: Option<String>,
    pub rspamd: Option<String>,
    pub spam_junk_score: f64,
    pub spam_reject_score: f64,
    pub scan_failure: ScanFailure,
    pub scan_timeout: Duration,
    /// Port 25 waits this long before its greeting; a client that talks first is refused.
    pub greet_pause: Duration,
    /// Connections to port 25 a client address may open a minute (0: no limit).
    pub connection_rate: u32,
    /// Messages (MAIL commands) a client address may send a minute (0: no limit).
    pub message_rate: u32,
}

pub const KEYS: &[&str] = &[
    "spf",
    "dkim.verify",
    "dkim.selector",
    "dmarc",
    "dnsbl",
    "greylist",
    "greylist.delay",
    "checks.skip_networks",
    "clamd",
    "spamd",
    "rspamd",
    "spam.junk_score",
    "spam.reject_score",
    "scan.on_failure",
    "scan.timeout",
    "smtp.greet_pause",
    "smtp.connection_rate",
    "smtp.message_rate",
];

impl Default for Filters {
    fn default() -> Filters {
        Filters {
            spf: Mode::Tag,
            dmarc: Mode::Reject,
            dkim_verify: true,
            dkim_selector: None,
            dnsbl: Vec::new(),
            greylist: false,
            greylist_delay: Duration::from_secs(300),
            skip_networks: parse_nets("127.0.0.0/8 ::1").unwrap_or_default(),
            clamd: None,
            spamd: None,
            rspamd: None,
            spam_junk_score: 5.0,
            spam_reject_score: 15.0,
            scan_failure: ScanFailure::Tempfail,
            scan_timeout: Duration::from_secs(30),
            greet_pause: Duration::from_secs(1),
            connection_rate: 0,
            message_rate: 0,
        }
    }
}

fn parse_mode(v: &str, reject: &str) -> Result<Mode, String> {
    match v {
        "off" | "no" => Ok(Mode::Off),
        "tag" => Ok(Mode::Tag),
        _ if v == reject => Ok(Mode::Reject),
        _ => Err(format!("{v:?}: expected off, tag or {reject}")),
    }
}

fn parse_score(v: &str) -> Result<f64, String> {
    match v.parse::<f64>() {
        Ok(x) if x.is_finite() => Ok(x),
        _ => Err(format!("{v:?}: expected a number such as 5 or 7.5")),
    }
}

fn parse_rate(v: &str) -> Result<u32, String> {
    v.parse::<u32>().map_err(|_| format!("{v:?}: expected a number a minute (0: no limit)"))
}

fn opt(v: &str) -> Option<String> {
    (!v.is_empty()).then(|| v.to_string())
}

impl Filters {
    /// Sets one of [`KEYS`].
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        match key {
            "spf" => self.spf = parse_mode(value, "reject")?,
            "dmarc" => self.dmarc = parse_mode(value, "enforce")?,
            "dkim.verify" => self.dkim_verify = parse_bool(value)?,
            "dkim.selector" => {
                if !value.is_empty() && !value.split('.').all(is_label) {
                    return Err(format!("{value:?}: a selector is one or more DNS labels"));
                }
                self.dkim_selector = opt(value)
            }
            "dnsbl" => {
                self.dnsbl =
                    value.split_whitespace().map(|z| z.trim_end_matches('.').to_ascii_lowercase()).collect();
                if let Some(bad) = self.dnsbl.iter().find(|z| !z.split('.').all(is_label)) {
                    return Err(format!("{bad:?} is not a DNS zone name"));
                }
            }
            "greylist" => {
                self.greylist = match value {
                    "on" => true,
                    "off" => false,
                    _ => parse_bool(value)?,
                }
            }
            "greylist.delay" => self.greylist_delay = parse_duration(value)?,
            "checks.skip_networks" => self.skip_networks = parse_nets(value)?,
            "clamd" | "spamd" => {
                if !value.is_empty() {
                    crate::filters::scan::ScanAddr::parse(value)?;
                }
                match key {
                    "clamd" => self.clamd = opt(value),
                    _ => self.spamd = opt(value),
                }
            }
            "rspamd" => {
                if !value.is_empty() && !value.starts_with("http://") {
                    return Err(format!("{value:?}: expected an http:// URL such as http://127.0.0.1:11333"));
                }
                self.rspamd = opt(value)
            }
            "spam.junk_score" => self.spam_junk_score = parse_score(value)?,
            "spam.reject_score" => self.spam_reject_score = parse_score(value)?,
            "scan.on_failure" => {
                self.scan_failure = match value {
                    "tempfail" => ScanFailure::Tempfail,
                    "accept" => ScanFailure::Accept,
                    _ => return Err(format!("{value:?}: expected tempfail or accept")),
                }
            }
            "scan.timeout" => self.scan_timeout = parse_duration(value)?,
            "smtp.connection_rate" => self.connection_rate = parse_rate(value)?,
            "smtp.message_rate" => self.message_rate = parse_rate(value)?,
            "smtp.greet_pause" => {
                self.greet_pause = match value {
                    "0" | "0s" => Duration::ZERO,
                    _ => parse_duration(value)?,
                }
            }
            _ => return Err(format!("`{key}` is not a filter key")),
        }
        Ok(())
    }

    /// The effective values, as `check-config` prints them.
    pub fn print(&self, kv: &mut dyn FnMut(&str, String)) {
        let mode = |m: Mode, reject: &str| match m {
            Mode::Off => "off".to_string(),
            Mode::Tag => "tag".into(),
            Mode::Reject => reject.into(),
        };
        let yes = |b: bool| if b { "yes" } else { "no" }.to_string();
        kv("spf", mode(self.spf, "reject"));
        kv("dkim.verify", yes(self.dkim_verify));
        kv("dkim.selector", self.dkim_selector.clone().unwrap_or_default());
        kv("dmarc", mode(self.dmarc, "enforce"));
        kv("dnsbl", self.dnsbl.join(" "));
        kv("greylist", if self.greylist { "on" } else { "off" }.into());
        kv("greylist.delay", format!("{}s", self.greylist_delay.as_secs()));
        kv(
            "checks.skip_networks",
            self.skip_networks.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(" "),
        );
        kv("clamd", self.clamd.clone().unwrap_or_default());
        kv("spamd", self.spamd.clone().unwrap_or_default());
        kv("rspamd", self.rspamd.clone().unwrap_or_default());
        kv("spam.junk_score", self.spam_junk_score.to_string());
        kv("spam.reject_score", self.spam_reject_score.to_string());
        let failure = match self.scan_failure {
            ScanFailure::Tempfail => "tempfail",
            ScanFailure::Accept => "accept",
        };
        kv("scan.on_failure", failure.into());
        kv("scan.timeout", format!("{}s", self.scan_timeout.as_secs()));
        kv("smtp.greet_pause", format!("{}s", self.greet_pause.as_secs()));
        kv("smtp.connection_rate", self.connection_rate.to_string());
        kv("smtp.message_rate", self.message_rate.to_string());
    }
}

/// A DNS label of letters, digits, `-` and `_` (RFC 1035 2.3.1, with the underscore names use).
fn is_label(l: &str) -> bool {
    !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_errors() {
        let mut f = Filters::default();
        assert_eq!((f.spf, f.dmarc, f.dkim_verify, f.greylist), (Mode::Tag, Mode::Reject, true, false));
        f.set("spf", "reject").unwrap();
        f.set("dmarc", "tag").unwrap();
        f.set("dnsbl", "zen.spamhaus.org. bl.example").unwrap();
        f.set("greylist", "on").unwrap();
        assert_eq!(f.dnsbl, vec!["zen.spamhaus.org", "bl.example"]);
        assert!(f.set("spf", "enforce").unwrap_err().contains("off, tag or reject"));
        assert!(f.set("dmarc", "reject").unwrap_err().contains("off, tag or enforce"));
        assert!(f.set("dnsbl", "bad zone!").is_err());
        assert!(f.set("spam.junk_score", "NaN").is_err());
        assert!(f.set("scan.on_failure", "maybe").is_err());
        assert!(f.set("clamd", "unix:").is_err());
        assert!(f.set("rspamd", "https://x").is_err());
        f.set("clamd", "unix:/run/clamav/clamd.ctl").unwrap();
        f.set("spamd", "127.0.0.1:783").unwrap();
        let mut out = Vec::new();
        f.print(&mut |k, v| out.push(format!("{k} = {v}")));
        assert!(out.contains(&"spf = reject".to_string()));
        assert!(out.contains(&"greylist = on".to_string()));
        assert_eq!(out.len(), KEYS.len());
    }
}
