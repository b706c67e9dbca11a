//! Where mail for a domain goes (RFC 5321 5.1): the smarthost when one is
//! set; else the domain's MX hosts by preference (equal preferences in random
//! order, from the DNS client), each host's AAAA and A addresses in turn; the
//! domain itself when it has no MX (implicit MX). A null MX (RFC 7505) or a
//! domain that does not exist bounces at once; DNS trouble defers. This host
//! and every MX not preferred over it are left out, so mail never loops back.

use std::net::{IpAddr, SocketAddr};

use crate::config::{Config, OutboundTls, SmarthostTls};
use crate::dns::{self, DnsError, MxLookup};
use crate::smtp::client::{ClientConfig, TlsPolicy};

/// One address to try.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hop {
    pub host: String,
    pub ip: IpAddr,
    pub port: u16,
}

impl Hop {
    /// `mx.example.org[192.0.2.1]:25`, as logs and bounces name a relay.
    pub fn label(&self) -> String {
        format!("{}[{}]:{}", self.host, self.ip, self.port)
    }
}

/// Why there is nowhere to try.
#[derive(Debug, PartialEq, Eq)]
pub enum RouteError {
    /// Permanent: the recipients bounce with this status and text.
    Bounce { status: String, reply: String },
    /// Temporary: try again later.
    Defer(String),
}

/// The addresses to try for `domain`, best first.
pub fn hops(config: &Config, dns: &dns::Resolver, domain: &str) -> Result<Vec<Hop>, RouteError> {
    if let Some(sh) = &config.relay_smarthost {
        let ips = match sh.host.parse::<IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) => addresses(dns, &sh.host).map_err(|e| match e {
                DnsError::NxDomain => RouteError::Defer(format!("smarthost {}: host not found", sh.host)),
                e => RouteError::Defer(format!("smarthost {}: {e}", sh.host)),
            })?,
        };
        if ips.is_empty() {
            return Err(RouteError::Defer(format!("smarthost {} has no address", sh.host)));
        }
        return Ok(ips.into_iter().map(|ip| Hop { host: sh.host.clone(), ip, port: sh.port }).collect());
    }
    let hosts: Vec<String> = match dns.mx(domain) {
        Ok(MxLookup::Hosts(list)) => {
            // RFC 5321 5.1: drop this host and every MX not preferred over it.
            let me = config.hostname.as_str();
            let limit = list.iter().filter(|(_, h)| h == me).map(|(p, _)| *p).min();
            let kept: Vec<String> =
                list.into_iter().filter(|(p, _)| limit.is_none_or(|l| *p < l)).map(|(_, h)| h).collect();
            if kept.is_empty() {
                return Err(loops(domain));
            }
            kept
        }
        Ok(MxLookup::NoMx) => vec![domain.to_string()],
        Ok(MxLookup::NullMx) => {
            return Err(RouteError::Bounce {
                status: "5.1.10".into(),
                reply: format!("{domain} does not accept mail (null MX, RFC 7505)"),
            });
        }
        Err(DnsError::NxDomain) => {
            return Err(RouteError::Bounce {
                status: "5.1.2".into(),
                reply: format!("Host or domain name not found: {domain} (NXDOMAIN)"),
            });
        }
        Err(e) => return Err(RouteError::Defer(format!("4.4.3 MX lookup of {domain} failed: {e}"))),
    };
    let mut out = Vec::new();
    let mut temp: Option<String> = None;
    let mut skipped_self = false;
    for host in hosts {
        match addresses(dns, &host) {
            Ok(ips) => {
                for ip in ips {
                    if is_self(config, ip, config.outbound_port) {
                        skipped_self = true;
                        continue;
                    }
                    out.push(Hop { host: host.clone(), ip, port: config.outbound_port });
                }
            }
            Err(DnsError::NxDomain) => {}
            Err(e) => temp = Some(format!("4.4.3 address lookup of {host} failed: {e}")),
        }
    }
    if !out.is_empty() {
        return Ok(out);
    }
    match (temp, skipped_self) {
        (Some(t), _) => Err(RouteError::Defer(t)),
        (None, true) => Err(loops(domain)),
        (None, false) => Err(RouteError::Bounce {
            status: "5.4.4".into(),
            reply: format!("no address found for the mail exchangers of {domain}"),
        }),
    }
}

fn loops(domain: &str) -> RouteError {
    RouteError::Bounce { status: "5.4.6".into(), reply: format!("mail for {domain} loops back to myself") }
}

fn addresses(dns: &dns::Resolver, host: &str) -> Result<Vec<IpAddr>, DnsError> {
    match host.parse::<IpAddr>() {
        Ok(ip) => Ok(vec![ip]),
        Err(_) => dns.ip_addrs(host),
    }
}

/// Whether `ip:port` is one of our own listeners (an unspecified listen
/// address counts for loopback addresses).
fn is_self(config: &Config, ip: IpAddr, port: u16) -> bool {
    config.smtp_listen.iter().chain(&config.submission_listen).any(|l: &SocketAddr| {
        l.port() == port && (l.ip() == ip || (l.ip().is_unspecified() && ip.is_loopback()))
    })
}

/// The client settings for mail exchangers, and for the smarthost when one is set.
pub fn client_configs(config: &Config) -> Result<(ClientConfig, Option<ClientConfig>), String> {
    let base = ClientConfig {
        helo_name: config.hostname.clone(),
        tls: match config.outbound_tls {
            OutboundTls::None => TlsPolicy::None,
            OutboundTls::May => TlsPolicy::May,
            OutboundTls::Verify => TlsPolicy::Verify,
        },
        ..ClientConfig::default()
    };
    if config.relay_smarthost.is_none() {
        return Ok((base, None));
    }
    let tls = match config.relay_smarthost_tls {
        SmarthostTls::Starttls => TlsPolicy::Verify,
        SmarthostTls::Implicit => TlsPolicy::Implicit,
        SmarthostTls::None => TlsPolicy::None,
    };
    let auth = match &config.relay_smarthost_auth {
        None => None,
        Some(_) if tls == TlsPolicy::None => {
            return Err(
                "relay.smarthost_auth: a password is never sent without TLS (relay.smarthost_tls = none)"
                    .into(),
            );
        }
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .map_err(|e| format!("relay.smarthost_auth {}: {e}", p.display()))?;
            let line =
                text.lines().map(str::trim).find(|l| !l.is_empty() && !l.starts_with('#')).unwrap_or("");
            let (u, pw) = line.split_once(':').ok_or_else(|| {
                format!("relay.smarthost_auth {}: expected one line `user:password`", p.display())
            })?;
            Some((u.to_string(), pw.to_string()))
        }
    };
    Ok((base.clone(), Some(ClientConfig { tls, auth, ..base })))
}
