//! Typed values of the configuration file and their parsers: addresses,
//! networks, sizes, durations, mailbox templates (see buzon.conf(5)).

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UsersSpec {
    /// The Unix user database (getpwnam).
    System,
    /// A Dovecot-style passwd-file.
    File(PathBuf),
}

/// The on-disk mailbox format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MailboxKind {
    Maildir,
    Mbox,
}

/// `mailbox = maildir:TEMPLATE` or `mbox:TEMPLATE`. The template expands
/// `~` (home), `%u` (user), `%n` (local part), `%d` (domain), `%%`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MailboxTemplate {
    pub kind: MailboxKind,
    pub template: String,
}

/// An IPv4 or IPv6 network in CIDR notation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .map_err(|_| format!("{s:?} is not an IP network (expected e.g. 192.0.2.0/24 or ::1/128)"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            None => max,
            Some(p) => match p.parse::<u8>() {
                Ok(n) if n <= max => n,
                _ => return Err(format!("{s:?}: prefix length must be 0..={max}")),
            },
        };
        Ok(Cidr { addr, prefix })
    }

    /// Whether `ip` lies in this network (IPv4-mapped IPv6 addresses match IPv4 networks).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(a)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(net) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(a)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(net) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// How outbound SMTP uses STARTTLS (`outbound.tls`), as Postfix's
/// smtp_tls_security_level none / may / verify.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutboundTls {
    None,
    May,
    Verify,
}

/// How the smarthost is reached (`relay.smarthost_tls`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmarthostTls {
    /// STARTTLS required and the certificate verified.
    Starttls,
    /// TLS from the first byte (port 465), verified.
    Implicit,
    /// Plain text (a relay on the local network); AUTH is never sent then.
    None,
}

/// `relay.smarthost = HOST[:PORT]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Smarthost {
    pub host: String,
    pub port: u16,
}

impl fmt::Display for Smarthost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// Whether `ip` is in any of `nets`.
pub fn in_networks(nets: &[Cidr], ip: IpAddr) -> bool {
    nets.iter().any(|n| n.contains(ip))
}

/// The whole effective configuration. Built once, shared as `Arc<Config>`.
pub(super) const LOOPBACK4: Cidr = Cidr { addr: IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), prefix: 8 };
pub(super) const LOOPBACK6: Cidr = Cidr { addr: IpAddr::V6(std::net::Ipv6Addr::LOCALHOST), prefix: 128 };

pub(super) fn dedup(mut v: Vec<String>) -> Vec<String> {
    let mut seen = Vec::new();
    v.retain(|x| {
        let keep = !seen.contains(x);
        seen.push(x.clone());
        keep
    });
    v
}

pub(super) fn non_empty(v: &str) -> Result<&str, String> {
    if v.is_empty() { Err("must not be empty".into()) } else { Ok(v) }
}

pub(super) fn valid_domain(d: &str) -> bool {
    !d.is_empty()
        && d.len() <= 253
        && d.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

pub(super) fn parse_hostname(v: &str) -> Result<String, String> {
    let h = v.trim_end_matches('.').to_ascii_lowercase();
    if valid_domain(&h) {
        Ok(h)
    } else {
        Err(format!("{v:?} is not a valid host name (letters, digits, '-' and '.')"))
    }
}

pub(super) fn parse_domains(v: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for d in v.split_whitespace() {
        let d = d.trim_end_matches(',');
        out.push(parse_hostname(d).map_err(|_| format!("{d:?} is not a valid domain name"))?);
    }
    Ok(dedup(out))
}

pub(super) fn parse_users(v: &str) -> Result<UsersSpec, String> {
    if v == "system" {
        return Ok(UsersSpec::System);
    }
    match v.strip_prefix("file:") {
        Some(p) if !p.is_empty() => Ok(UsersSpec::File(PathBuf::from(p))),
        _ => Err(format!("{v:?}: expected `system` or `file:PATH`")),
    }
}

pub(super) fn parse_mailbox(v: &str) -> Result<MailboxTemplate, String> {
    let (kind, t) = if let Some(t) = v.strip_prefix("maildir:") {
        (MailboxKind::Maildir, t)
    } else if let Some(t) = v.strip_prefix("mbox:") {
        (MailboxKind::Mbox, t)
    } else {
        return Err(format!("{v:?}: expected `maildir:TEMPLATE` or `mbox:TEMPLATE`"));
    };
    if t.is_empty() {
        return Err("the template after the colon is empty".into());
    }
    let mut chars = t.chars();
    while let Some(ch) = chars.next() {
        if ch == '%' {
            match chars.next() {
                Some('u' | 'n' | 'd' | '%') => {}
                other => {
                    return Err(format!(
                        "unknown escape %{} (use %u user, %n local part, %d domain, %% percent)",
                        other.map(String::from).unwrap_or_default()
                    ));
                }
            }
        }
    }
    if t.starts_with('~') && !(t == "~" || t.starts_with("~/")) {
        return Err("`~` is only allowed as `~` or `~/...` (the recipient's home)".into());
    }
    Ok(MailboxTemplate { kind, template: t.to_string() })
}

pub(super) fn parse_listen(v: &str) -> Result<Vec<SocketAddr>, String> {
    v.split_whitespace()
        .map(|a| {
            a.parse::<SocketAddr>()
                .map_err(|_| format!("{a:?} is not ADDR:PORT (e.g. 0.0.0.0:25 or [::]:25)"))
        })
        .collect()
}

pub(super) fn parse_nets(v: &str) -> Result<Vec<Cidr>, String> {
    v.split_whitespace().map(|x| Cidr::parse(x.trim_end_matches(','))).collect()
}

pub(super) fn parse_count(v: &str, min: usize, max: usize) -> Result<usize, String> {
    match v.parse::<usize>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(format!("{v:?}: expected a whole number from {min} to {max}")),
    }
}

/// Bytes, with an optional K, M or G suffix (powers of 1024).
pub fn parse_size(v: &str) -> Result<u64, String> {
    let bad = || format!("{v:?}: expected a size in bytes, optionally with K, M or G (e.g. 25M)");
    let (num, mult) = match v.char_indices().last() {
        Some((i, 'k' | 'K')) => (&v[..i], 1024),
        Some((i, 'm' | 'M')) => (&v[..i], 1024 * 1024),
        Some((i, 'g' | 'G')) => (&v[..i], 1024 * 1024 * 1024),
        _ => (v, 1),
    };
    let n: u64 = num.trim().parse().map_err(|_| bad())?;
    match n.checked_mul(mult) {
        Some(x) if x > 0 => Ok(x),
        _ => Err(bad()),
    }
}

/// Seconds, with an optional s, m, h or d suffix.
pub fn parse_duration(v: &str) -> Result<Duration, String> {
    let bad = || format!("{v:?}: expected a duration such as 30s, 5m, 2h or 5d");
    let (num, mult) = match v.char_indices().last() {
        Some((i, 's')) => (&v[..i], 1),
        Some((i, 'm')) => (&v[..i], 60),
        Some((i, 'h')) => (&v[..i], 3600),
        Some((i, 'd')) => (&v[..i], 86400),
        _ => (v, 1),
    };
    let n: u64 = num.trim().parse().map_err(|_| bad())?;
    match n.checked_mul(mult) {
        Some(x) if x > 0 => Ok(Duration::from_secs(x)),
        _ => Err(bad()),
    }
}

pub(super) fn parse_level(v: &str) -> Result<log::LevelFilter, String> {
    v.parse::<log::LevelFilter>()
        .map_err(|_| format!("{v:?}: expected one of off, error, warn, info, debug, trace"))
}

/// The known key closest to a misspelt one, if any is close enough.
pub(super) fn closest(key: &str) -> Option<&'static str> {
    super::all_keys()
        .map(|k| (levenshtein(key, k), k))
        .filter(|(d, k)| *d <= 3.max(k.len() / 4))
        .min()
        .map(|(_, k)| k)
}

pub(super) fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

pub(super) fn parse_outbound_tls(v: &str) -> Result<OutboundTls, String> {
    match v {
        "none" => Ok(OutboundTls::None),
        "may" => Ok(OutboundTls::May),
        "verify" => Ok(OutboundTls::Verify),
        _ => Err(format!("{v:?}: expected none, may or verify")),
    }
}

pub(super) fn parse_smarthost_tls(v: &str) -> Result<SmarthostTls, String> {
    match v {
        "starttls" => Ok(SmarthostTls::Starttls),
        "implicit" => Ok(SmarthostTls::Implicit),
        "none" => Ok(SmarthostTls::None),
        _ => Err(format!("{v:?}: expected starttls, implicit or none")),
    }
}

/// `HOST[:PORT]` (an IPv6 literal in brackets); the port defaults to 25.
pub(super) fn parse_smarthost(v: &str) -> Result<Smarthost, String> {
    let bad = || format!("{v:?}: expected HOST or HOST:PORT, e.g. smtp.example.net:587");
    let (host, port) = if let Some(rest) = v.strip_prefix('[') {
        let (h, after) = rest.split_once(']').ok_or_else(bad)?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p),
            None if after.is_empty() => None,
            None => return Err(bad()),
        };
        (h.to_string(), port)
    } else {
        match v.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (v.to_string(), None),
        }
    };
    let port = match port {
        Some(p) => p.parse::<u16>().ok().filter(|&p| p > 0).ok_or_else(bad)?,
        None => 25,
    };
    if host.parse::<std::net::IpAddr>().is_err() && !valid_domain(&host) {
        return Err(bad());
    }
    Ok(Smarthost { host: host.to_ascii_lowercase(), port })
}

/// `ADDR[:PORT]` name servers; the port defaults to 53.
pub(super) fn parse_dns_servers(v: &str) -> Result<Vec<SocketAddr>, String> {
    v.split_whitespace()
        .map(|a| {
            a.parse::<SocketAddr>()
                .or_else(|_| a.trim_matches(['[', ']']).parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
                .map_err(|_| format!("{a:?} is not ADDR or ADDR:PORT (e.g. 127.0.0.1 or [::1]:5353)"))
        })
        .collect()
}

pub(super) fn parse_port(v: &str) -> Result<u16, String> {
    v.parse::<u16>().ok().filter(|&p| p > 0).ok_or_else(|| format!("{v:?}: expected a port from 1 to 65535"))
}

/// A space-separated list of SASL mechanism names, each known.
pub(super) fn parse_mechanisms(v: &str) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for m in v.split_whitespace() {
        let up = m.to_ascii_uppercase();
        if !super::KNOWN_MECHANISMS.contains(&up.as_str()) {
            return Err(format!("unknown mechanism {m:?} (known: {})", super::KNOWN_MECHANISMS.join(" ")));
        }
        if !out.contains(&up) {
            out.push(up);
        }
    }
    Ok(out)
}

pub(super) fn parse_bool(v: &str) -> Result<bool, String> {
    match v {
        "yes" | "true" | "on" => Ok(true),
        "no" | "false" | "off" => Ok(false),
        _ => Err(format!("{v:?}: expected yes or no")),
    }
}

/// `imap.folders`: a Maildir++ root template (the escapes of `mailbox`), or empty for the default.
pub(super) fn parse_folders(v: &str) -> Result<Option<String>, String> {
    let v = v.strip_prefix("maildir:").unwrap_or(v);
    if v.is_empty() {
        return Ok(None);
    }
    parse_mailbox(&format!("maildir:{v}")).map(|m| Some(m.template))
}

/// `aliases.pipe_user`: a Unix user name (looked up when a command or file is delivered, so a
/// user created later works); `root` is refused here, uid 0 at delivery (commands never run as root).
pub(super) fn parse_pipe_user(v: &str) -> Result<String, String> {
    if v.is_empty()
        || v.starts_with('-')
        || v.contains(|c: char| c.is_whitespace() || c.is_control() || c == ':')
    {
        return Err(format!("{v:?} is not a Unix user name"));
    }
    if v == "root" {
        return Err("commands and files are never delivered as root; name an unprivileged user".into());
    }
    Ok(v.to_string())
}

/// A part of `max_connections` kept for one service class: a count or a percentage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Share {
    Count(usize),
    Percent(u8),
}

impl Share {
    /// The connections this share keeps out of `max`.
    pub fn of(self, max: usize) -> usize {
        match self {
            Share::Count(n) => n.min(max),
            Share::Percent(p) => max * usize::from(p) / 100,
        }
    }
}

impl std::fmt::Display for Share {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Share::Count(n) => write!(f, "{n}"),
            Share::Percent(p) => write!(f, "{p}%"),
        }
    }
}

pub(super) fn parse_share(v: &str) -> Result<Share, String> {
    let bad = || format!("{v:?}: expected a number of connections or a percentage (e.g. 10%)");
    match v.strip_suffix('%') {
        Some(p) => match p.trim().parse::<u8>() {
            Ok(p) if p <= 50 => Ok(Share::Percent(p)),
            Ok(_) => Err(format!("{v:?}: at most 50% may be kept for one service")),
            Err(_) => Err(bad()),
        },
        None => v.parse::<usize>().map(Share::Count).map_err(|_| bad()),
    }
}
