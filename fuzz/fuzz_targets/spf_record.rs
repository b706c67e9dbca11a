//! Fuzz target: arbitrary octets as an SPF record (RFC 7208 4.5, 4.6, 5, 6, 7) through the parser
//! and through check_host() against DNS where every name answers that same record as TXT (so
//! include and redirect recurse into it), and has addresses, MX and PTR names. It must never
//! panic, and must end quickly: the 4.6.4 limits bound the work whatever the record says.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use buzon::dns::{DnsError, Lookup};
use buzon::filters::spf;
use libfuzzer_sys::fuzz_target;

/// Every name answers the record; names starting with "nx" do not exist, "tmp" ones time out.
struct Everywhere<'a>(&'a [u8]);

impl Everywhere<'_> {
    fn gate(&self, name: &str) -> Result<(), DnsError> {
        if name.starts_with("nx") {
            Err(DnsError::NxDomain)
        } else if name.starts_with("tmp") {
            Err(DnsError::Timeout)
        } else {
            Ok(())
        }
    }
}

impl Lookup for Everywhere<'_> {
    fn txt(&self, name: &str) -> Result<Vec<Vec<Vec<u8>>>, DnsError> {
        self.gate(name)?;
        Ok(vec![self.0.chunks(255).map(<[u8]>::to_vec).collect(), vec![b"unrelated text".to_vec()]])
    }
    fn a(&self, name: &str) -> Result<Vec<Ipv4Addr>, DnsError> {
        self.gate(name)?;
        Ok(vec![Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(198, 51, 100, (name.len() % 256) as u8)])
    }
    fn aaaa(&self, name: &str) -> Result<Vec<Ipv6Addr>, DnsError> {
        self.gate(name)?;
        Ok(vec![Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)])
    }
    fn mx(&self, name: &str) -> Result<Vec<String>, DnsError> {
        self.gate(name)?;
        Ok((0..name.len() % 12).map(|i| format!("mx{i}.{name}")).collect())
    }
    fn ptr(&self, ip: IpAddr) -> Result<Vec<String>, DnsError> {
        Ok((0..12).map(|i| format!("host{i}.{ip}.example")).collect())
    }
}

fuzz_target!(|data: &[u8]| {
    let _ = spf::parse_record(data);
    let dns = Everywhere(data);
    for ip in [IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1))] {
        let start = std::time::Instant::now();
        let (result, explanation, problem) =
            spf::check_host(&dns, ip, "example.com", "user@example.com", "helo.example", "mx.example");
        assert!(start.elapsed().as_secs() < 2, "check_host took {:?}", start.elapsed());
        assert!(explanation.is_none() || result == spf::SpfResult::Fail);
        assert_eq!(
            problem.is_some(),
            matches!(result, spf::SpfResult::PermError | spf::SpfResult::TempError)
        );
        let s = spf::check(&dns, ip, "", "helo.example", "mx.example");
        let field = s.received_spf(ip, "helo.example", "mx.example");
        assert!(!field.ends_with('\n') && field.starts_with("Received-SPF: "));
    }
});
