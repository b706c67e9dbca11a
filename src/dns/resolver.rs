//! Blocking stub resolver: UDP with EDNS0 and TCP fallback on truncation, strict answer matching,
//! CNAME chasing and a TTL cache (RFC 1035 7, RFC 2181, RFC 2308, RFC 5321 5.1, RFC 6891, RFC 7505,
//! RFC 5452 id/port randomisation). One `Resolver` is shared by many threads.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use super::cache::{Cache, MAX_ENTRIES};
use super::wire::{self, Message, RData};
use super::{DnsError, MxLookup, resolvconf};

/// RFC 1034 3.6.2 allows chains; like other resolvers we give up after this many links.
const MAX_CNAME_LINKS: usize = 8;
/// The EDNS0 UDP payload size recommended by DNS Flag Day 2020 (RFC 6891 6.2.5).
const EDNS_PAYLOAD: u16 = 1232;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolverOptions {
    /// Tried in order, `attempts` rounds over the whole list.
    pub servers: Vec<SocketAddr>,
    /// How long to wait for each server in each round.
    pub timeout: Duration,
    pub attempts: u32,
    /// From resolv.conf; unused, since mail lookups are absolute and search domains are ignored.
    pub ndots: u32,
}

impl Default for ResolverOptions {
    fn default() -> ResolverOptions {
        ResolverOptions {
            servers: vec![SocketAddr::from((Ipv4Addr::LOCALHOST, 53))],
            timeout: Duration::from_secs(5),
            attempts: 2,
            ndots: 1,
        }
    }
}

impl ResolverOptions {
    /// Options from parsed resolv.conf text: its nameservers unless `override_servers` is
    /// non-empty, 127.0.0.1:53 when neither gives one (resolv.conf(5)).
    pub fn from_resolv_conf(rc: &resolvconf::ResolvConf, override_servers: &[SocketAddr]) -> Self {
        let servers = if !override_servers.is_empty() {
            override_servers.to_vec()
        } else if !rc.nameservers.is_empty() {
            rc.nameservers.clone()
        } else {
            ResolverOptions::default().servers
        };
        ResolverOptions { servers, timeout: rc.timeout, attempts: rc.attempts, ndots: rc.ndots }
    }
}

/// What the cache remembers about (name, type), after CNAME chasing.
#[derive(Debug, Clone)]
enum Outcome {
    Data(Vec<RData>),
    NoData,
    NxDomain,
}

/// A stub resolver; `Send + Sync`, meant to be shared (`Arc<Resolver>`) by the queue's workers.
pub struct Resolver {
    opts: ResolverOptions,
    cache: Cache<Outcome>,
}

impl Resolver {
    pub fn new(opts: ResolverOptions) -> Resolver {
        Resolver { opts, cache: Cache::new(MAX_ENTRIES) }
    }

    /// From /etc/resolv.conf (a missing file means the defaults, as in the C library), with
    /// `override_servers` (config key `dns.servers`) winning when non-empty.
    pub fn from_system(override_servers: &[SocketAddr]) -> Result<Resolver, String> {
        let text = match std::fs::read_to_string("/etc/resolv.conf") {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(format!("/etc/resolv.conf: {e}")),
        };
        let rc = resolvconf::parse(&text);
        Ok(Resolver::new(ResolverOptions::from_resolv_conf(&rc, override_servers)))
    }

    pub fn options(&self) -> &ResolverOptions {
        &self.opts
    }

    /// The MX hosts of `domain` (RFC 5321 5.1): sorted by preference, equal preferences shuffled;
    /// `NoMx` when the domain exists without MX (use its address records), `NullMx` for RFC 7505.
    pub fn mx(&self, domain: &str) -> Result<MxLookup, DnsError> {
        let mut hosts: Vec<(u16, String)> = self
            .lookup(domain, wire::TYPE_MX)?
            .into_iter()
            .filter_map(|d| match d {
                RData::Mx { preference, exchange } => Some((preference, exchange)),
                _ => None,
            })
            .collect();
        if hosts.is_empty() {
            return Ok(MxLookup::NoMx);
        }
        // RFC 7505 3: "0 ." alone means no mail. A root exchange mixed with real ones is a
        // misconfiguration; the root entries are unusable, so we drop them and use the rest.
        if hosts.iter().all(|(_, h)| h.is_empty()) {
            return Ok(MxLookup::NullMx);
        }
        hosts.retain(|(_, h)| !h.is_empty());
        hosts.sort();
        hosts.dedup();
        // RFC 5321 5.1: hosts of equal preference are tried in random order.
        let mut i = 0;
        while i < hosts.len() {
            let j = hosts[i..].iter().take_while(|(p, _)| *p == hosts[i].0).count() + i;
            shuffle(&mut hosts[i..j])?;
            i = j;
        }
        Ok(MxLookup::Hosts(hosts))
    }

    /// The addresses of `host`: AAAA answers first, then A (RFC 3596), CNAMEs chased. `Ok(empty)`
    /// when the name exists but has neither. Partial results win over a failure of the other type.
    pub fn ip_addrs(&self, host: &str) -> Result<Vec<IpAddr>, DnsError> {
        let v6 = self.lookup(host, wire::TYPE_AAAA);
        if v6 == Err(DnsError::NxDomain) {
            return Err(DnsError::NxDomain);
        }
        let v4 = self.lookup(host, wire::TYPE_A);
        let mut addrs: Vec<IpAddr> = Vec::new();
        for d in v6.iter().chain(v4.iter()).flatten() {
            let ip = match d {
                RData::Aaaa(a) => IpAddr::V6(*a),
                RData::A(a) => IpAddr::V4(*a),
                _ => continue,
            };
            if !addrs.contains(&ip) {
                addrs.push(ip);
            }
        }
        if addrs.is_empty() {
            v4?;
            v6?;
        }
        Ok(addrs)
    }

    /// TXT records of `name`, each record's character-strings concatenated (RFC 7208 3.3).
    pub fn txt(&self, name: &str) -> Result<Vec<Vec<u8>>, DnsError> {
        Ok(self
            .lookup(name, wire::TYPE_TXT)?
            .into_iter()
            .filter_map(|d| match d {
                RData::Txt(strings) => Some(strings.concat()),
                _ => None,
            })
            .collect())
    }

    /// PTR names of `ip` under in-addr.arpa / ip6.arpa (RFC 1035 3.5, RFC 3596 2.5).
    pub fn ptr(&self, ip: IpAddr) -> Result<Vec<String>, DnsError> {
        Ok(self
            .lookup(&reverse_name(ip), wire::TYPE_PTR)?
            .into_iter()
            .filter_map(|d| match d {
                RData::Ptr(n) => Some(n),
                _ => None,
            })
            .collect())
    }

    /// Records of `qtype` (a `wire::TYPE_*`) for `name` after CNAME chasing, from the cache or the
    /// servers. `Ok(empty)` is NODATA, `Err(NxDomain)` a name that does not exist.
    pub fn records(&self, name: &str, qtype: u16) -> Result<Vec<RData>, DnsError> {
        self.lookup(name, qtype)
    }

    fn lookup(&self, name: &str, qtype: u16) -> Result<Vec<RData>, DnsError> {
        let name = wire::normalize_name(name).map_err(|e| DnsError::Malformed(format!("{name:?}: {e}")))?;
        match self.cache.get(&name, qtype, Instant::now()) {
            Some(Outcome::Data(d)) => return Ok(d),
            Some(Outcome::NoData) => return Ok(Vec::new()),
            Some(Outcome::NxDomain) => return Err(DnsError::NxDomain),
            None => {}
        }
        let mut chain = vec![name.clone()];
        let mut ttl = u32::MAX;
        loop {
            let asked = chain.last().cloned().unwrap_or_default();
            let msg = self.exchange(&asked, qtype)?;
            let (outcome, outcome_ttl) = match follow(&msg, &mut chain, qtype, &mut ttl)? {
                Step::Requery => continue, // RFC 1034 5.3.3: restart at the CNAME target
                Step::Data(d) => (Outcome::Data(d), Some(ttl)),
                Step::NoData => (Outcome::NoData, negative_ttl(&msg).map(|n| n.min(ttl))),
                Step::NxDomain => (Outcome::NxDomain, negative_ttl(&msg).map(|n| n.min(ttl))),
            };
            // RFC 2308 5: a negative answer without SOA is not cached.
            if let Some(t) = outcome_ttl {
                self.cache.insert(&name, qtype, outcome.clone(), t, Instant::now());
            }
            return match outcome {
                Outcome::Data(d) => Ok(d),
                Outcome::NoData => Ok(Vec::new()),
                Outcome::NxDomain => Err(DnsError::NxDomain),
            };
        }
    }

    /// One question to the servers in order, `attempts` rounds; returns the first NOERROR or
    /// NXDOMAIN answer. SERVFAIL, REFUSED and the like move on to the next server.
    fn exchange(&self, name: &str, qtype: u16) -> Result<Message, DnsError> {
        if self.opts.servers.is_empty() {
            return Err(DnsError::ServFail("no DNS servers configured".into()));
        }
        let mut failure: Option<DnsError> = None;
        for _ in 0..self.opts.attempts.max(1) {
            for &server in &self.opts.servers {
                match self.ask(server, name, qtype) {
                    Ok(msg) => match msg.rcode() {
                        wire::RCODE_NOERROR | wire::RCODE_NXDOMAIN => return Ok(msg),
                        rc => {
                            log::debug!("dns: {server} answered {name} type {qtype} with rcode {rc}");
                            failure = Some(DnsError::ServFail(format!("{server}: {}", rcode_name(rc))));
                        }
                    },
                    Err(DnsError::Timeout) => log::debug!("dns: {server} timed out for {name}"),
                    Err(e) => {
                        log::debug!("dns: {server} failed for {name}: {e}");
                        failure = Some(e);
                    }
                }
            }
        }
        Err(failure.unwrap_or(DnsError::Timeout))
    }

    /// One query to one server over UDP, then TCP if truncated (RFC 1035 4.2.1, RFC 7766).
    fn ask(&self, server: SocketAddr, name: &str, qtype: u16) -> Result<Message, DnsError> {
        let malformed = |e: wire::WireError| DnsError::Malformed(e.to_string());
        let id = random_u16()?;
        let query = wire::encode_query(id, name, qtype, Some(EDNS_PAYLOAD)).map_err(malformed)?;
        let mut msg = udp_exchange(server, &query, id, name, qtype, self.opts.timeout)?;
        // RFC 6891 7: a FORMERR without OPT may be a server that predates EDNS; ask plainly.
        if msg.rcode() == wire::RCODE_FORMERR && !msg.additional.iter().any(|r| r.rtype == wire::TYPE_OPT) {
            let id = random_u16()?;
            let query = wire::encode_query(id, name, qtype, None).map_err(malformed)?;
            msg = udp_exchange(server, &query, id, name, qtype, self.opts.timeout)?;
        }
        if msg.header.tc {
            let id = random_u16()?;
            let query = wire::encode_query(id, name, qtype, Some(EDNS_PAYLOAD)).map_err(malformed)?;
            msg = tcp_exchange(server, &query, id, name, qtype, self.opts.timeout)?;
        }
        Ok(msg)
    }
}

enum Step {
    Data(Vec<RData>),
    NoData,
    NxDomain,
    /// The answer ended at a CNAME target with nothing known about it: ask for the target.
    Requery,
}

/// Walks the answer section from the last name of `chain`, following in-answer CNAMEs
/// (RFC 1034 3.6.2, RFC 2181 10.1). Only records owned by names on the chain are used; `ttl`
/// becomes the smallest TTL seen along the way.
fn follow(msg: &Message, chain: &mut Vec<String>, qtype: u16, ttl: &mut u32) -> Result<Step, DnsError> {
    let asked = chain.last().cloned().unwrap_or_default();
    loop {
        let current = chain.last().cloned().unwrap_or_default();
        let owned = |r: &&wire::Record| r.class == wire::CLASS_IN && r.name == current;
        let data: Vec<&wire::Record> =
            msg.answers.iter().filter(owned).filter(|r| r.rtype == qtype).collect();
        if !data.is_empty() {
            *ttl = data.iter().map(|r| r.ttl).fold(*ttl, u32::min);
            return Ok(Step::Data(data.into_iter().map(|r| r.data.clone()).collect()));
        }
        let cname = msg.answers.iter().filter(owned).find_map(|r| match &r.data {
            RData::Cname(target) => Some((r.ttl, target.clone())),
            _ => None,
        });
        let Some((cname_ttl, target)) = cname else { break };
        if chain.len() > MAX_CNAME_LINKS || chain.contains(&target) || target.is_empty() {
            return Err(DnsError::CnameLoop);
        }
        *ttl = (*ttl).min(cname_ttl);
        chain.push(target);
    }
    // RFC 6604 2.1: with a CNAME chain the RCODE describes the last name in it.
    if msg.rcode() == wire::RCODE_NXDOMAIN {
        return Ok(Step::NxDomain);
    }
    let moved = chain.last() != Some(&asked);
    let has_soa = msg.authority.iter().any(|r| r.rtype == wire::TYPE_SOA);
    Ok(if moved && !has_soa { Step::Requery } else { Step::NoData })
}

/// RFC 2308 5: a negative answer lives for min(SOA TTL, SOA MINIMUM); none without an SOA.
fn negative_ttl(msg: &Message) -> Option<u32> {
    msg.authority.iter().find_map(|r| match r.data {
        RData::Soa { minimum, .. } => Some(minimum.min(r.ttl)),
        _ => None,
    })
}

/// Why an answer does not belong to our query: `None` to ignore it silently (not ours at all),
/// `Some` when it claims to be ours but is broken.
fn check_reply(bytes: &[u8], id: u16, name: &str, qtype: u16) -> Result<Message, Option<DnsError>> {
    // RFC 5452 9.1: match the id first, cheaply; then QR and the question.
    if bytes.len() < 12 || u16::from_be_bytes([bytes[0], bytes[1]]) != id || bytes[2] & 0x80 == 0 {
        return Err(None);
    }
    let msg = wire::decode_response(bytes).map_err(|e| Some(DnsError::Malformed(e.to_string())))?;
    let same_question = msg.questions.len() == 1
        && msg.questions[0].name == name
        && msg.questions[0].qtype == qtype
        && msg.questions[0].qclass == wire::CLASS_IN;
    if !same_question {
        return Err(Some(DnsError::Malformed("answer to a different question".into())));
    }
    if msg.header.opcode != 0 {
        return Err(Some(DnsError::Malformed("answer with a non-QUERY opcode".into())));
    }
    Ok(msg)
}

fn udp_exchange(
    server: SocketAddr,
    query: &[u8],
    id: u16,
    name: &str,
    qtype: u16,
    timeout: Duration,
) -> Result<Message, DnsError> {
    let io_err = |e: io::Error| DnsError::ServFail(format!("{server}: {e}"));
    // RFC 5452 4.5: a fresh socket on a kernel-chosen (random) port for every query.
    let local: SocketAddr = match server {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let sock = UdpSocket::bind(local).map_err(io_err)?;
    // Connecting lets the kernel drop other senders' datagrams and report ICMP refusals.
    sock.connect(server).map_err(io_err)?;
    sock.send(query).map_err(io_err)?;
    let deadline = Instant::now() + timeout;
    let mut buf = vec![0u8; 65535];
    let mut broken: Option<DnsError> = None;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(broken.unwrap_or(DnsError::Timeout));
        }
        sock.set_read_timeout(Some(left)).map_err(io_err)?;
        match sock.recv_from(&mut buf) {
            // Keep waiting past anything that is not our answer (RFC 5452 9.1).
            Ok((_, from)) if from.ip() != server.ip() || from.port() != server.port() => {}
            Ok((n, _)) => match check_reply(&buf[..n], id, name, qtype) {
                Ok(msg) => return Ok(msg),
                Err(None) => {}
                Err(Some(e)) => broken = Some(e),
            },
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
                ) => {}
            Err(e) => return Err(broken.unwrap_or_else(|| io_err(e))),
        }
    }
}

fn tcp_exchange(
    server: SocketAddr,
    query: &[u8],
    id: u16,
    name: &str,
    qtype: u16,
    timeout: Duration,
) -> Result<Message, DnsError> {
    let deadline = Instant::now() + timeout;
    let io_err = |e: io::Error| match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => DnsError::Timeout,
        _ => DnsError::ServFail(format!("{server} (tcp): {e}")),
    };
    let mut stream = TcpStream::connect_timeout(&server, timeout).map_err(io_err)?;
    stream.set_write_timeout(Some(timeout)).map_err(io_err)?;
    // RFC 1035 4.2.2: two-octet length prefix.
    let len = u16::try_from(query.len()).map_err(|_| DnsError::Malformed("query too long".into()))?;
    let mut framed = len.to_be_bytes().to_vec();
    framed.extend_from_slice(query);
    stream.write_all(&framed).map_err(io_err)?;
    let mut len = [0u8; 2];
    read_full(&mut stream, &mut len, deadline).map_err(io_err)?;
    let mut body = vec![0u8; usize::from(u16::from_be_bytes(len))];
    read_full(&mut stream, &mut body, deadline).map_err(io_err)?;
    check_reply(&body, id, name, qtype).map_err(|e| {
        e.unwrap_or_else(|| DnsError::Malformed(format!("{server} (tcp): answer with the wrong id")))
    })
}

/// read_exact with one deadline for the whole buffer, so a trickling server cannot stretch it.
fn read_full(stream: &mut TcpStream, buf: &mut [u8], deadline: Instant) -> io::Result<()> {
    let mut done = 0;
    while done < buf.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        stream.set_read_timeout(Some(left))?;
        match stream.read(&mut buf[done..]) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn rcode_name(rc: u16) -> String {
    match rc {
        1 => "FORMERR".into(),
        2 => "SERVFAIL".into(),
        4 => "NOTIMP".into(),
        5 => "REFUSED".into(),
        16 => "BADVERS".into(),
        n => format!("rcode {n}"),
    }
}

/// RFC 1035 3.5 in-addr.arpa, RFC 3596 2.5 ip6.arpa (nibbles, least significant first).
pub fn reverse_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(a) => {
            let o = a.octets();
            format!("{}.{}.{}.{}.in-addr.arpa", o[3], o[2], o[1], o[0])
        }
        IpAddr::V6(a) => {
            let mut s = String::with_capacity(72);
            for b in a.octets().iter().rev() {
                s.push_str(&format!("{:x}.{:x}.", b & 0xf, b >> 4));
            }
            s.push_str("ip6.arpa");
            s
        }
    }
}

/// Random octets from getrandom(2), falling back to /dev/urandom (RFC 5452 9.2: unpredictable ids).
fn fill_random(buf: &mut [u8]) -> Result<(), DnsError> {
    // SAFETY: the pointer and length describe `buf`, which is valid for writes.
    let n = unsafe { libc::getrandom(buf.as_mut_ptr().cast(), buf.len(), 0) };
    if usize::try_from(n).ok() == Some(buf.len()) {
        return Ok(());
    }
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(buf))
        .map_err(|e| DnsError::ServFail(format!("no randomness for query ids: {e}")))
}

fn random_u16() -> Result<u16, DnsError> {
    let mut b = [0u8; 2];
    fill_random(&mut b)?;
    Ok(u16::from_ne_bytes(b))
}

/// Fisher–Yates with getrandom; the slight modulo bias is irrelevant for ordering MX hosts.
fn shuffle<T>(items: &mut [T]) -> Result<(), DnsError> {
    if items.len() < 2 {
        return Ok(());
    }
    let mut r = vec![0u8; 4 * items.len()];
    fill_random(&mut r)?;
    for i in (1..items.len()).rev() {
        let x = u32::from_ne_bytes([r[4 * i], r[4 * i + 1], r[4 * i + 2], r[4 * i + 3]]);
        items.swap(i, x as usize % (i + 1));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reverse_names() {
        assert_eq!(reverse_name("192.0.2.10".parse().unwrap()), "10.2.0.192.in-addr.arpa");
        assert_eq!(
            reverse_name("2001:db8::567:89ab".parse().unwrap()),
            "b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"
        );
    }

    #[test]
    fn options_from_resolv_conf() {
        let rc = resolvconf::parse("nameserver 192.0.2.1\noptions timeout:1 attempts:3\n");
        let o = ResolverOptions::from_resolv_conf(&rc, &[]);
        assert_eq!(o.servers, vec!["192.0.2.1:53".parse().unwrap()]);
        assert_eq!((o.timeout, o.attempts), (Duration::from_secs(1), 3));
        let over: SocketAddr = "127.0.0.1:5353".parse().unwrap();
        assert_eq!(ResolverOptions::from_resolv_conf(&rc, &[over]).servers, vec![over]);
        let empty = resolvconf::parse("");
        assert_eq!(
            ResolverOptions::from_resolv_conf(&empty, &[]).servers,
            vec!["127.0.0.1:53".parse().unwrap()]
        );
    }

    #[test]
    fn shuffle_keeps_elements_and_varies_order() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            let mut v = [1, 2, 3, 4];
            shuffle(&mut v).unwrap();
            let mut s = v;
            s.sort();
            assert_eq!(s, [1, 2, 3, 4]);
            seen.insert(v);
        }
        assert!(seen.len() > 10, "only {} orders in 200 shuffles", seen.len());
    }

    #[test]
    fn bad_names_are_malformed_without_network() {
        // No server is contacted: 192.0.2.1 (TEST-NET) would time out if it were.
        let r = Resolver::new(ResolverOptions {
            servers: vec!["192.0.2.1:53".parse().unwrap()],
            timeout: Duration::from_secs(30),
            attempts: 1,
            ndots: 1,
        });
        for bad in ["", "a..b", "bücher.example", &"a".repeat(64)] {
            assert!(matches!(r.mx(bad), Err(DnsError::Malformed(_))), "{bad:?}");
        }
    }
}
