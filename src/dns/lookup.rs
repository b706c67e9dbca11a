//! The lookups the sender checks (SPF, DKIM, DMARC, DNSBL) make, as one small trait: the real
//! [`Resolver`] answers them from the network, a [`Table`] from memory (unit tests, fuzz targets,
//! `buzon spf check --dns-file`). Results keep RFC 7208's distinctions: `Ok(empty)` is NODATA (the
//! name exists without records of that type), `Err(NxDomain)` a name that does not exist, any other
//! error a temporary failure.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::wire::{self, RData};
use super::{DnsError, MxLookup, Resolver};

pub trait Lookup {
    /// TXT records of `name`, each record's character-strings kept apart (DKIM and SPF join them
    /// as their RFCs say: RFC 7208 3.3 and RFC 6376 3.6.2.2 both concatenate without spaces).
    fn txt(&self, name: &str) -> Result<Vec<Vec<Vec<u8>>>, DnsError>;
    fn a(&self, name: &str) -> Result<Vec<Ipv4Addr>, DnsError>;
    fn aaaa(&self, name: &str) -> Result<Vec<Ipv6Addr>, DnsError>;
    /// MX exchanges of `name` by preference (no implicit MX: `Ok(empty)` when there are none).
    fn mx(&self, name: &str) -> Result<Vec<String>, DnsError>;
    /// PTR names of `ip`.
    fn ptr(&self, ip: IpAddr) -> Result<Vec<String>, DnsError>;
}

impl Lookup for Resolver {
    fn txt(&self, name: &str) -> Result<Vec<Vec<Vec<u8>>>, DnsError> {
        Ok(self
            .records(name, wire::TYPE_TXT)?
            .into_iter()
            .filter_map(|d| match d {
                RData::Txt(strings) => Some(strings),
                _ => None,
            })
            .collect())
    }

    fn a(&self, name: &str) -> Result<Vec<Ipv4Addr>, DnsError> {
        Ok(self
            .records(name, wire::TYPE_A)?
            .into_iter()
            .filter_map(|d| match d {
                RData::A(a) => Some(a),
                _ => None,
            })
            .collect())
    }

    fn aaaa(&self, name: &str) -> Result<Vec<Ipv6Addr>, DnsError> {
        Ok(self
            .records(name, wire::TYPE_AAAA)?
            .into_iter()
            .filter_map(|d| match d {
                RData::Aaaa(a) => Some(a),
                _ => None,
            })
            .collect())
    }

    fn mx(&self, name: &str) -> Result<Vec<String>, DnsError> {
        Ok(match Resolver::mx(self, name)? {
            MxLookup::Hosts(hosts) => hosts.into_iter().map(|(_, h)| h).collect(),
            MxLookup::NoMx | MxLookup::NullMx => Vec::new(),
        })
    }

    fn ptr(&self, ip: IpAddr) -> Result<Vec<String>, DnsError> {
        Resolver::ptr(self, ip)
    }
}

/// Answers from memory. Names are matched without case and without a trailing dot; a name with
/// no entry at all is NXDOMAIN, a name with entries of other types only is NODATA; a name marked
/// with [`Table::fail`] answers every type with a timeout.
#[derive(Debug, Default, Clone)]
pub struct Table {
    records: HashMap<String, Vec<RData>>,
    failing: Vec<String>,
}

fn key(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

impl Table {
    pub fn new() -> Table {
        Table::default()
    }

    /// Adds a record; `Txt` holds the character-strings of one TXT record.
    pub fn add(&mut self, name: &str, data: RData) -> &mut Table {
        self.records.entry(key(name)).or_default().push(data);
        self
    }

    /// Adds a TXT record of one character-string.
    pub fn add_txt(&mut self, name: &str, text: &str) -> &mut Table {
        self.add(name, RData::Txt(vec![text.as_bytes().to_vec()]))
    }

    /// Makes `name` exist with no records (NODATA for every type).
    pub fn exists(&mut self, name: &str) -> &mut Table {
        self.records.entry(key(name)).or_default();
        self
    }

    /// Makes every lookup of `name` time out.
    pub fn fail(&mut self, name: &str) -> &mut Table {
        self.failing.push(key(name));
        self
    }

    fn get(&self, name: &str) -> Result<&[RData], DnsError> {
        let k = key(name);
        if self.failing.contains(&k) {
            return Err(DnsError::Timeout);
        }
        self.records.get(&k).map(Vec::as_slice).ok_or(DnsError::NxDomain)
    }
}

impl Lookup for Table {
    fn txt(&self, name: &str) -> Result<Vec<Vec<Vec<u8>>>, DnsError> {
        Ok(self
            .get(name)?
            .iter()
            .filter_map(|d| if let RData::Txt(s) = d { Some(s.clone()) } else { None })
            .collect())
    }
    fn a(&self, name: &str) -> Result<Vec<Ipv4Addr>, DnsError> {
        Ok(self.get(name)?.iter().filter_map(|d| if let RData::A(a) = d { Some(*a) } else { None }).collect())
    }
    fn aaaa(&self, name: &str) -> Result<Vec<Ipv6Addr>, DnsError> {
        Ok(self
            .get(name)?
            .iter()
            .filter_map(|d| if let RData::Aaaa(a) = d { Some(*a) } else { None })
            .collect())
    }
    fn mx(&self, name: &str) -> Result<Vec<String>, DnsError> {
        let mut mx: Vec<(u16, String)> = self
            .get(name)?
            .iter()
            .filter_map(|d| match d {
                RData::Mx { preference, exchange } => Some((*preference, exchange.clone())),
                _ => None,
            })
            .collect();
        mx.sort();
        Ok(mx.into_iter().map(|(_, h)| h).collect())
    }
    fn ptr(&self, ip: IpAddr) -> Result<Vec<String>, DnsError> {
        let name = super::resolver::reverse_name(ip);
        Ok(self
            .get(&name)?
            .iter()
            .filter_map(|d| if let RData::Ptr(p) = d { Some(p.clone()) } else { None })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_tells_nxdomain_nodata_and_failure_apart() {
        let mut t = Table::new();
        t.add_txt("Example.COM.", "v=spf1 -all").add("example.com", RData::A(Ipv4Addr::new(192, 0, 2, 1)));
        t.exists("empty.example").fail("down.example");
        assert_eq!(Lookup::txt(&t, "example.com").unwrap(), vec![vec![b"v=spf1 -all".to_vec()]]);
        assert_eq!(t.a("EXAMPLE.com").unwrap(), vec![Ipv4Addr::new(192, 0, 2, 1)]);
        assert!(t.aaaa("example.com").unwrap().is_empty());
        assert_eq!(Lookup::mx(&t, "empty.example").unwrap(), Vec::<String>::new());
        assert_eq!(t.a("nowhere.example"), Err(DnsError::NxDomain));
        assert_eq!(t.a("down.example"), Err(DnsError::Timeout));
    }
}
