//! DNS blocklists (RFC 5782): is the client's address listed in a zone, and what the zone's answer
//! means. Answers outside 127.0.0.0/8, and the 127.255.255.0/24 codes some zones (Spamhaus) give
//! when they refuse to answer (a public resolver, over quota), are not listings: they are logged
//! and the client passes.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};

use crate::dns::{DnsError, Lookup};

/// A listing: the zone's A answers and its TXT reason, if it gives one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listing {
    pub zone: String,
    pub codes: Vec<Ipv4Addr>,
    pub text: Option<String>,
}

impl Listing {
    /// What the answer codes mean, as far as the zone's documentation says (RFC 5782 2.1: 127.0.0.2
    /// is the generic "listed").
    pub fn meaning(&self) -> String {
        let mut out = String::new();
        for code in &self.codes {
            if !out.is_empty() {
                out.push_str(", ");
            }
            let o = code.octets();
            let spamhaus = self.zone.ends_with("spamhaus.org") || self.zone.ends_with("spamhaus.net");
            let what = match (spamhaus, o[3]) {
                (true, 2) => "SBL: a spam source or operation",
                (true, 3) => "CSS: a spam-sending host (snowshoe)",
                (true, 4..=7) => "XBL: an exploited or infected host",
                (true, 9) => "DROP: a hijacked network",
                (true, 10 | 11) => "PBL: an end-user address that should not send mail directly",
                (false, 2) => "listed",
                _ => "listed (see the zone's documentation)",
            };
            let _ = write!(out, "{code} {what}");
        }
        out
    }
}

/// The name to ask about `ip` in `zone`: the address's octets (IPv4) or nibbles (IPv6) reversed
/// (RFC 5782 2.1, 2.4).
pub fn query_name(ip: IpAddr, zone: &str) -> String {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    };
    let mut name = String::new();
    match ip {
        IpAddr::V4(v4) => {
            for o in v4.octets().iter().rev() {
                let _ = write!(name, "{o}.");
            }
        }
        IpAddr::V6(v6) => {
            for o in v6.octets().iter().rev() {
                let _ = write!(name, "{:x}.{:x}.", o & 0xf, o >> 4);
            }
        }
    }
    name.push_str(zone);
    name
}

/// Whether `ip` is listed in `zone`. `Ok(None)`: not listed (or the zone refused to answer, which
/// is logged). A DNS failure is returned: the caller lets the client pass.
pub fn check(dns: &dyn Lookup, ip: IpAddr, zone: &str) -> Result<Option<Listing>, DnsError> {
    let name = query_name(ip, zone);
    let answers = match dns.a(&name) {
        Ok(a) => a,
        Err(DnsError::NxDomain) => return Ok(None),
        Err(e) => return Err(e),
    };
    let (refusals, codes): (Vec<Ipv4Addr>, Vec<Ipv4Addr>) = answers
        .into_iter()
        .filter(|a| a.octets()[0] == 127)
        .partition(|a| a.octets()[..3] == [127, 255, 255]);
    if let Some(r) = refusals.first() {
        log::warn!("event=dnsbl_refused zone={zone} answer={r} (the zone does not answer this resolver)");
    }
    if codes.is_empty() {
        return Ok(None);
    }
    let text = dns.txt(&name).ok().and_then(|records| {
        records.into_iter().next().map(|strings| String::from_utf8_lossy(&strings.concat()).into_owned())
    });
    Ok(Some(Listing { zone: zone.to_string(), codes, text }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::Table;
    use crate::dns::wire::RData;

    #[test]
    fn names() {
        assert_eq!(query_name("192.0.2.99".parse().unwrap(), "bl.example"), "99.2.0.192.bl.example");
        assert_eq!(query_name("::ffff:192.0.2.99".parse().unwrap(), "bl.example"), "99.2.0.192.bl.example");
        let v6 = query_name("2001:db8:1:2:3:4:567:89ab".parse().unwrap(), "bl.example");
        assert_eq!(v6, "b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2.bl.example");
    }

    #[test]
    fn listed_not_listed_refused_and_failing() {
        let mut t = Table::new();
        t.add("2.0.0.127.zen.spamhaus.org", RData::A(Ipv4Addr::new(127, 0, 0, 4)));
        t.add_txt("2.0.0.127.zen.spamhaus.org", "https://check.spamhaus.org/query/ip/127.0.0.2");
        t.add("3.0.0.127.zen.spamhaus.org", RData::A(Ipv4Addr::new(127, 255, 255, 254)));
        t.add("4.0.0.127.bl.example", RData::A(Ipv4Addr::new(10, 0, 0, 2)));
        t.fail("5.0.0.127.bl.example");
        let l = check(&t, "127.0.0.2".parse().unwrap(), "zen.spamhaus.org").unwrap().unwrap();
        assert_eq!(l.meaning(), "127.0.0.4 XBL: an exploited or infected host");
        assert!(l.text.unwrap().contains("spamhaus"));
        assert_eq!(check(&t, "127.0.0.3".parse().unwrap(), "zen.spamhaus.org"), Ok(None));
        assert_eq!(check(&t, "127.0.0.4".parse().unwrap(), "bl.example"), Ok(None));
        assert_eq!(check(&t, "127.0.0.9".parse().unwrap(), "bl.example"), Ok(None));
        assert_eq!(check(&t, "127.0.0.5".parse().unwrap(), "bl.example"), Err(DnsError::Timeout));
    }
}
