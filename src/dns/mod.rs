//! buzon's own strict DNS stub resolver for finding MX hosts and addresses (RFC 1035, RFC 2181,
//! RFC 5321 5.1, RFC 7505 null MX, RFC 6891 EDNS0, RFC 3596 AAAA). Temporary and permanent
//! failures are told apart by `DnsError::is_permanent`.

pub mod cache;
pub mod lookup;
pub mod resolvconf;
pub mod resolver;
pub mod wire;

use std::fmt;

pub use lookup::{Lookup, Table};
pub use resolver::{Resolver, ResolverOptions};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DnsError {
    /// The name does not exist (RCODE 3 from the server): permanent.
    NxDomain,
    /// SERVFAIL/REFUSED/other RCODE, or a network error, from every server: temporary.
    ServFail(String),
    /// No answer from any server within timeout × attempts: temporary.
    Timeout,
    /// An unusable name, or an unparseable / mismatching answer from every server: temporary.
    Malformed(String),
    /// A CNAME chain longer than 8 links or looping: temporary (RFC 1034 3.6.2).
    CnameLoop,
}

impl DnsError {
    /// Only a non-existent domain justifies a bounce; everything else is retried later.
    pub fn is_permanent(&self) -> bool {
        matches!(self, DnsError::NxDomain)
    }
}

impl fmt::Display for DnsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DnsError::NxDomain => write!(f, "domain name not found"),
            DnsError::ServFail(why) => write!(f, "DNS server failure: {why}"),
            DnsError::Timeout => write!(f, "DNS lookup timed out"),
            DnsError::Malformed(why) => write!(f, "malformed DNS data: {why}"),
            DnsError::CnameLoop => write!(f, "CNAME chain too long or looping"),
        }
    }
}

impl std::error::Error for DnsError {}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MxLookup {
    /// (preference, exchange host: lowercase, no trailing dot), by ascending preference; equal
    /// preferences in random order (RFC 5321 5.1).
    Hosts(Vec<(u16, String)>),
    /// The name exists but has no MX: deliver to its A/AAAA (RFC 5321 5.1 implicit MX).
    NoMx,
    /// A single MX "0 ." (RFC 7505): the domain accepts no mail.
    NullMx,
}

#[cfg(test)]
mod tests {
    //! End-to-end tests against fake servers on loopback and, when installed, dnsmasq.
    use super::wire::{self, CLASS_IN};
    use super::*;
    use std::io::{Read, Write};
    use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};
    use std::process::{Child, Command, Stdio};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    fn opts(servers: Vec<SocketAddr>, timeout_ms: u64, attempts: u32) -> ResolverOptions {
        ResolverOptions { servers, timeout: Duration::from_millis(timeout_ms), attempts, ndots: 1 }
    }

    fn enc_name(name: &str) -> Vec<u8> {
        let mut v = Vec::new();
        for l in name.split('.').filter(|l| !l.is_empty()) {
            v.push(l.len() as u8);
            v.extend_from_slice(l.as_bytes());
        }
        v.push(0);
        v
    }

    struct Rr<'a>(&'a str, u16, u32, Vec<u8>);

    fn mx_rdata(pref: u16, host: &str) -> Vec<u8> {
        let mut v = pref.to_be_bytes().to_vec();
        v.extend(enc_name(host));
        v
    }

    fn soa_rdata(minimum: u32) -> Vec<u8> {
        let mut v = enc_name("ns.test");
        v.extend(enc_name("host.test"));
        for n in [1u32, 2, 3, 4, minimum] {
            v.extend_from_slice(&n.to_be_bytes());
        }
        v
    }

    /// A response to `query` (our own uncompressed encoding) with its id and question.
    fn reply(query: &[u8], id_delta: u16, flags: u16, answers: &[Rr], authority: &[Rr]) -> Vec<u8> {
        let mut end = 12;
        while query[end] != 0 {
            end += 1 + usize::from(query[end]);
        }
        end += 5;
        let id = u16::from_be_bytes([query[0], query[1]]).wrapping_add(id_delta);
        let mut v = id.to_be_bytes().to_vec();
        v.extend_from_slice(&(0x8180 | flags).to_be_bytes());
        for c in [1, answers.len() as u16, authority.len() as u16, 0] {
            v.extend_from_slice(&c.to_be_bytes());
        }
        v.extend_from_slice(&query[12..end]);
        for Rr(owner, t, ttl, rdata) in answers.iter().chain(authority) {
            v.extend(enc_name(owner));
            v.extend_from_slice(&t.to_be_bytes());
            v.extend_from_slice(&CLASS_IN.to_be_bytes());
            v.extend_from_slice(&ttl.to_be_bytes());
            v.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
            v.extend_from_slice(rdata);
        }
        v
    }

    fn qname(query: &[u8]) -> String {
        wire::decode_response(query).map(|m| m.questions[0].name.clone()).unwrap_or_default()
    }

    /// A UDP server on loopback answering each query with the datagrams `f` returns.
    fn fake_udp<F>(f: F) -> (SocketAddr, Arc<AtomicUsize>)
    where
        F: Fn(&[u8]) -> Vec<Vec<u8>> + Send + 'static,
    {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let addr = sock.local_addr().unwrap();
        let hits = Arc::new(AtomicUsize::new(0));
        let h = hits.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while let Ok((n, from)) = sock.recv_from(&mut buf) {
                h.fetch_add(1, Ordering::SeqCst);
                for d in f(&buf[..n]) {
                    let _ = sock.send_to(&d, from);
                }
            }
        });
        (addr, hits)
    }

    #[test]
    fn silent_server_times_out_within_timeout_times_attempts() {
        let (addr, hits) = fake_udp(|_| vec![]);
        let r = Resolver::new(opts(vec![addr], 200, 2));
        let t0 = Instant::now();
        assert_eq!(r.mx("example.org"), Err(DnsError::Timeout));
        let took = t0.elapsed();
        assert!(took >= Duration::from_millis(400) && took < Duration::from_millis(1500), "{took:?}");
        assert_eq!(hits.load(Ordering::SeqCst), 2);
        assert!(!DnsError::Timeout.is_permanent() && DnsError::NxDomain.is_permanent());
    }

    #[test]
    fn spoofed_and_mismatching_answers_are_ignored() {
        let (addr, _) = fake_udp(|q| {
            let a = |ip: [u8; 4]| vec![Rr("spoof.test", wire::TYPE_A, 60, ip.to_vec())];
            // Wrong id, a query echo (QR=0), a different question, then the real answer.
            let mut echo = q.to_vec();
            echo[2] &= 0x7f;
            let mut other = reply(q, 0, 0, &a([6, 6, 6, 6]), &[]);
            other[13 + 1] ^= 0x20; // "spoof" -> "sPoof" is the same name: must still match
            let mut wrong_q = reply(q, 0, 0, &a([6, 6, 6, 7]), &[]);
            wrong_q[13] = b'x';
            if wire::decode_response(q).map(|m| m.questions[0].qtype) == Ok(wire::TYPE_AAAA) {
                return vec![reply(q, 0, 0, &[], &[])];
            }
            vec![reply(q, 1, 0, &a([6, 6, 6, 8]), &[]), echo, wrong_q, other]
        });
        let r = Resolver::new(opts(vec![addr], 1000, 1));
        assert_eq!(r.ip_addrs("spoof.test"), Ok(vec!["6.6.6.6".parse::<IpAddr>().unwrap()]));
    }

    #[test]
    fn truncated_udp_answer_is_retried_over_tcp() {
        let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = tcp.local_addr().unwrap();
        let udp = UdpSocket::bind(addr).unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            if let Ok((n, from)) = udp.recv_from(&mut buf) {
                let _ = udp.send_to(&reply(&buf[..n], 0, 0x0200, &[], &[]), from);
            }
        });
        std::thread::spawn(move || {
            if let Ok((mut s, _)) = tcp.accept() {
                let mut len = [0u8; 2];
                s.read_exact(&mut len).unwrap();
                let mut q = vec![0u8; usize::from(u16::from_be_bytes(len))];
                s.read_exact(&mut q).unwrap();
                let big: Vec<Rr> =
                    (0..60).map(|i| Rr("big.test", 15, 60, mx_rdata(i, "mx.big.test"))).collect();
                let r = reply(&q, 0, 0, &big, &[]);
                s.write_all(&(r.len() as u16).to_be_bytes()).unwrap();
                s.write_all(&r).unwrap();
            }
        });
        let r = Resolver::new(opts(vec![addr], 2000, 1));
        match r.mx("big.test") {
            Ok(MxLookup::Hosts(h)) => assert_eq!((h.len(), h[0].0, h[59].0), (60, 0, 59)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn servfail_moves_to_the_next_server_and_cnames_are_chased() {
        let (bad, _) = fake_udp(|q| vec![reply(q, 0, 2, &[], &[])]);
        let (good, hits) = fake_udp(|q| {
            let cname = |o: &'static str, t: &str| Rr(o, wire::TYPE_CNAME, 300, enc_name(t));
            match qname(q).as_str() {
                // In-answer chain, then a chain ending at a target the server did not chase.
                "alias.test" => vec![reply(
                    q,
                    0,
                    0,
                    &[cname("alias.test", "mid.test"), cname("mid.test", "real.test")],
                    &[],
                )],
                "real.test" => {
                    vec![reply(q, 0, 0, &[Rr("real.test", 15, 100, mx_rdata(5, "MX.Real.Test."))], &[])]
                }
                "loop.test" => vec![reply(q, 0, 0, &[cname("loop.test", "loop2.test")], &[])],
                "loop2.test" => vec![reply(q, 0, 0, &[cname("loop2.test", "loop.test")], &[])],
                "null.test" => vec![reply(q, 0, 0, &[Rr("null.test", 15, 100, mx_rdata(0, ""))], &[])],
                "nodata.test" => vec![reply(q, 0, 0, &[], &[Rr("test", 6, 100, soa_rdata(30))])],
                _ => vec![reply(q, 0, 3, &[], &[Rr("test", 6, 100, soa_rdata(30))])],
            }
        });
        let r = Resolver::new(opts(vec![bad, good], 1000, 1));
        assert_eq!(r.mx("Alias.Test."), Ok(MxLookup::Hosts(vec![(5, "mx.real.test".into())])));
        assert_eq!(hits.load(Ordering::SeqCst), 2, "alias.test, then real.test");
        // Cached now: no more queries.
        assert_eq!(r.mx("alias.test"), Ok(MxLookup::Hosts(vec![(5, "mx.real.test".into())])));
        assert_eq!(hits.load(Ordering::SeqCst), 2);
        assert_eq!(r.mx("loop.test"), Err(DnsError::CnameLoop));
        assert_eq!(r.mx("null.test"), Ok(MxLookup::NullMx));
        assert_eq!(r.mx("nodata.test"), Ok(MxLookup::NoMx));
        assert_eq!(r.mx("gone.test"), Err(DnsError::NxDomain));
        let before = hits.load(Ordering::SeqCst);
        assert_eq!(r.mx("gone.test"), Err(DnsError::NxDomain), "NXDOMAIN is cached");
        assert_eq!(r.txt("nodata.test"), Ok(vec![]));
        assert_eq!(hits.load(Ordering::SeqCst), before + 1);

        let only_bad = Resolver::new(opts(vec![bad], 1000, 2));
        assert!(matches!(only_bad.mx("x.test"), Err(DnsError::ServFail(_))));
    }

    #[test]
    fn long_cname_chain_is_a_loop_error() {
        let (addr, _) = fake_udp(|q| {
            let name = qname(q);
            let n: u32 = name.trim_start_matches('c').trim_end_matches(".test").parse().unwrap_or(0);
            let next = format!("c{}.test", n + 1);
            vec![reply(q, 0, 0, &[Rr(&name, wire::TYPE_CNAME, 60, enc_name(&next))], &[])]
        });
        let r = Resolver::new(opts(vec![addr], 1000, 1));
        assert_eq!(r.ip_addrs("c0.test"), Err(DnsError::CnameLoop));
    }

    #[test]
    fn concurrent_lookups_share_one_resolver() {
        let (addr, _) = fake_udp(|q| {
            let name = qname(q);
            if name.starts_with("h") && wire::decode_response(q).map(|m| m.questions[0].qtype) == Ok(1) {
                vec![reply(q, 0, 0, &[Rr(&name, 1, 0, vec![10, 0, 0, name.len() as u8])], &[])]
            } else {
                vec![reply(q, 0, 0, &[], &[])]
            }
        });
        let r = Arc::new(Resolver::new(opts(vec![addr], 2000, 2)));
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let r = r.clone();
                std::thread::spawn(move || {
                    let host = format!("h{}.test", "x".repeat(i));
                    assert_eq!(r.ip_addrs(&host), Ok(vec![IpAddr::from([10, 0, 0, host.len() as u8])]));
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
    }

    /// dnsmasq on a free loopback port, killed on drop.
    struct Dnsmasq(Child, SocketAddr);

    impl Drop for Dnsmasq {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    fn start_dnsmasq() -> Option<Dnsmasq> {
        let bin = ["/usr/sbin/dnsmasq", "/usr/bin/dnsmasq", "/sbin/dnsmasq"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())?;
        // A port free for both UDP and TCP at the time we look.
        let port = (0..50).find_map(|_| {
            let u = UdpSocket::bind("127.0.0.1:0").ok()?;
            let port = u.local_addr().ok()?.port();
            TcpListener::bind(("127.0.0.1", port)).ok().map(|_| port)
        })?;
        let child = Command::new(bin)
            .args([
                "--no-daemon",
                &format!("--port={port}"),
                "--listen-address=127.0.0.1",
                "--bind-interfaces",
                "--no-resolv",
                "--no-hosts",
                "--conf-file=/dev/null",
                "--pid-file=",
                "--user=",
                "--local=/test/",
                "--mx-host=example.test,mx1.example.test,10",
                "--mx-host=example.test,mx2.example.test,20",
                "--mx-host=same.test,a.same.test,5",
                "--mx-host=same.test,b.same.test,5",
                "--mx-host=same.test,c.same.test,5",
                "--mx-host=nullmx.test,.,0",
                "--host-record=mx1.example.test,127.0.0.2",
                "--host-record=mx2.example.test,127.0.0.3,::1",
                "--cname=alias.example.test,mx2.example.test",
                "--txt-record=example.test,v=spf1 -all",
                "--txt-record=split.example.test,part one ,part two",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let d = Dnsmasq(child, SocketAddr::from(([127, 0, 0, 1], port)));
        // Wait until it answers.
        let probe = Resolver::new(opts(vec![d.1], 100, 1));
        for _ in 0..50 {
            if probe.ip_addrs("mx1.example.test").is_ok() {
                return Some(d);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }

    #[test]
    fn against_dnsmasq() {
        let Some(d) = start_dnsmasq() else {
            eprintln!("NOTE: dnsmasq not installed or not starting; skipping the dnsmasq test");
            return;
        };
        let r = Resolver::new(opts(vec![d.1], 2000, 2));
        assert_eq!(
            r.mx("Example.Test."),
            Ok(MxLookup::Hosts(vec![(10, "mx1.example.test".into()), (20, "mx2.example.test".into())]))
        );
        assert_eq!(r.ip_addrs("mx1.example.test"), Ok(vec!["127.0.0.2".parse::<IpAddr>().unwrap()]));
        let both: Vec<IpAddr> = vec!["::1".parse().unwrap(), "127.0.0.3".parse().unwrap()];
        assert_eq!(r.ip_addrs("mx2.example.test"), Ok(both.clone()));
        assert_eq!(r.ip_addrs("alias.example.test"), Ok(both));
        assert_eq!(r.mx("mx1.example.test"), Ok(MxLookup::NoMx));
        assert_eq!(r.mx("nosuch.example.test"), Err(DnsError::NxDomain));
        assert_eq!(r.ip_addrs("nosuch.test"), Err(DnsError::NxDomain));
        assert_eq!(r.txt("example.test"), Ok(vec![b"v=spf1 -all".to_vec()]));
        assert_eq!(r.txt("split.example.test"), Ok(vec![b"part one part two".to_vec()]));
        assert_eq!(r.ptr("127.0.0.2".parse().unwrap()), Ok(vec!["mx1.example.test".to_string()]));
        assert_eq!(r.mx("nullmx.test"), Ok(MxLookup::NullMx));
        // Equal preferences come back in more than one order (fresh resolvers: no cache).
        let mut orders = std::collections::HashSet::new();
        for _ in 0..40 {
            let r = Resolver::new(opts(vec![d.1], 2000, 2));
            if let Ok(MxLookup::Hosts(h)) = r.mx("same.test") {
                assert!(h.iter().all(|(p, _)| *p == 5) && h.len() == 3);
                orders.insert(h);
            }
        }
        assert!(orders.len() > 1, "equal-preference MX never shuffled");
    }
}
