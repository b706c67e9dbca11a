//! DNS message encoding and decoding, pure and without I/O (RFC 1035 4.1 and 3.3, RFC 2181,
//! RFC 3596 AAAA, RFC 6891 EDNS0 OPT). Every length is checked against the input; decoding never
//! panics and allocates at most in proportion to the input.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

pub const TYPE_A: u16 = 1;
pub const TYPE_NS: u16 = 2;
pub const TYPE_CNAME: u16 = 5;
pub const TYPE_SOA: u16 = 6;
pub const TYPE_PTR: u16 = 12;
pub const TYPE_MX: u16 = 15;
pub const TYPE_TXT: u16 = 16;
pub const TYPE_AAAA: u16 = 28;
pub const TYPE_OPT: u16 = 41;
pub const CLASS_IN: u16 = 1;

pub const RCODE_NOERROR: u16 = 0;
pub const RCODE_FORMERR: u16 = 1;
pub const RCODE_NXDOMAIN: u16 = 3;

/// RFC 1035 2.3.4: labels are 63 octets or less, names 255 octets or less on the wire.
const MAX_LABEL: usize = 63;
const MAX_WIRE_NAME: usize = 255;
/// RFC 1035 2.3.4 in text form: 255 wire octets are at most 253 characters without the final dot.
const MAX_TEXT_NAME: usize = 253;
/// A compressed name has at most 127 labels, so no honest name needs more pointer hops.
const MAX_POINTERS: usize = 127;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireError {
    /// The input ended inside a field.
    Truncated,
    /// A domain name that breaks RFC 1035 2.3.4 / 4.1.4 (text says which rule).
    BadName(&'static str),
    /// A record or header that is well-delimited but makes no sense (text says why).
    Invalid(&'static str),
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::Truncated => write!(f, "truncated DNS message"),
            WireError::BadName(why) => write!(f, "bad domain name: {why}"),
            WireError::Invalid(why) => write!(f, "invalid DNS message: {why}"),
        }
    }
}

impl std::error::Error for WireError {}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub id: u16,
    pub qr: bool,
    pub opcode: u8,
    pub aa: bool,
    pub tc: bool,
    pub rd: bool,
    pub ra: bool,
    /// The 4-bit header RCODE; see `Message::rcode` for the EDNS-extended one.
    pub rcode: u8,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    /// Lowercase, no trailing dot, root is "" (see `read_name` for escaping).
    pub name: String,
    pub qtype: u16,
    pub qclass: u16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RData {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    Mx {
        preference: u16,
        exchange: String,
    },
    Cname(String),
    Ns(String),
    Ptr(String),
    /// The character-strings of one TXT record, in order (RFC 1035 3.3.14).
    Txt(Vec<Vec<u8>>),
    Soa {
        mname: String,
        rname: String,
        serial: u32,
        refresh: u32,
        retry: u32,
        expire: u32,
        minimum: u32,
    },
    /// RFC 6891 6.1.2: the options, raw; payload size and extended RCODE live in class and ttl.
    Opt(Vec<u8>),
    Other(Vec<u8>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub name: String,
    pub rtype: u16,
    pub class: u16,
    pub ttl: u32,
    pub data: RData,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub header: Header,
    pub questions: Vec<Question>,
    pub answers: Vec<Record>,
    pub authority: Vec<Record>,
    pub additional: Vec<Record>,
}

impl Message {
    /// The full RCODE: RFC 6891 6.1.3 puts the upper 8 bits in the OPT record's TTL.
    pub fn rcode(&self) -> u16 {
        let ext =
            self.additional.iter().find(|r| r.rtype == TYPE_OPT).map(|r| (r.ttl >> 24) as u16).unwrap_or(0);
        (ext << 4) | u16::from(self.header.rcode)
    }
}

/// Checks and canonicalises a textual domain name: ASCII only (U-labels must be converted to
/// A-labels by the caller), lowercase, one trailing dot stripped, no empty label, labels at most
/// 63 octets and the name at most 253 characters (RFC 1035 2.3.4, RFC 2181 11).
pub fn normalize_name(name: &str) -> Result<String, WireError> {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() {
        return Err(WireError::BadName("empty name"));
    }
    if !name.is_ascii() {
        return Err(WireError::BadName("non-ASCII name (convert U-labels to A-labels first)"));
    }
    if name.len() > MAX_TEXT_NAME {
        return Err(WireError::BadName("name longer than 253 octets"));
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err(WireError::BadName("empty label"));
        }
        if label.len() > MAX_LABEL {
            return Err(WireError::BadName("label longer than 63 octets"));
        }
        // RFC 2181 11 allows any octet, but a name we send must round-trip through our own
        // decoder unescaped: printable ASCII or space (SPF macros make names with spaces, RFC 7208
        // 7.3), other than the escape character.
        if label.bytes().any(|b| !(b.is_ascii_graphic() || b == b' ') || b == b'\\') {
            return Err(WireError::BadName("control character or backslash in name"));
        }
    }
    Ok(name.to_ascii_lowercase())
}

/// A standard query with RD=1 (RFC 1035 4.1.1) for `name` IN `qtype`; with `edns_payload`, an
/// OPT pseudo-record advertising that UDP payload size (RFC 6891 6.1.2, version 0, DO=0).
pub fn encode_query(
    id: u16,
    name: &str,
    qtype: u16,
    edns_payload: Option<u16>,
) -> Result<Vec<u8>, WireError> {
    let name = normalize_name(name)?;
    let mut out = Vec::with_capacity(12 + name.len() + 2 + 4 + 11);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&0x0100u16.to_be_bytes()); // QR=0 OPCODE=QUERY RD=1
    out.extend_from_slice(&1u16.to_be_bytes()); // QDCOUNT
    out.extend_from_slice(&[0, 0, 0, 0]); // ANCOUNT, NSCOUNT
    out.extend_from_slice(&u16::from(edns_payload.is_some()).to_be_bytes()); // ARCOUNT
    for label in name.split('.') {
        out.push(label.len() as u8); // at most 63, checked above
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    out.extend_from_slice(&qtype.to_be_bytes());
    out.extend_from_slice(&CLASS_IN.to_be_bytes());
    if let Some(payload) = edns_payload {
        // RFC 6891 6.1.2: root owner, TYPE=OPT, CLASS=payload, TTL=0 (rcode/version/flags), RDLEN=0.
        out.push(0);
        out.extend_from_slice(&TYPE_OPT.to_be_bytes());
        out.extend_from_slice(&payload.max(512).to_be_bytes());
        out.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    }
    Ok(out)
}

/// Decodes a whole DNS message. Trailing octets after the counted records are an error.
pub fn decode_response(bytes: &[u8]) -> Result<Message, WireError> {
    let mut r = Reader { buf: bytes, pos: 0 };
    let id = r.u16()?;
    let flags = r.u16()?;
    let header = Header {
        id,
        qr: flags & 0x8000 != 0,
        opcode: ((flags >> 11) & 0xf) as u8,
        aa: flags & 0x0400 != 0,
        tc: flags & 0x0200 != 0,
        rd: flags & 0x0100 != 0,
        ra: flags & 0x0080 != 0,
        rcode: (flags & 0xf) as u8,
    };
    let qd = r.u16()?;
    let an = r.u16()?;
    let ns = r.u16()?;
    let ar = r.u16()?;
    // Vectors grow only as records are actually read, so a lying count cannot make us allocate.
    let mut questions = Vec::new();
    for _ in 0..qd {
        let name = r.name()?;
        let qtype = r.u16()?;
        let qclass = r.u16()?;
        questions.push(Question { name, qtype, qclass });
    }
    let answers = r.records(an)?;
    let authority = r.records(ns)?;
    let additional = r.records(ar)?;
    if additional.iter().filter(|x| x.rtype == TYPE_OPT).count() > 1 {
        return Err(WireError::Invalid("more than one OPT record")); // RFC 6891 6.1.1
    }
    if r.pos != bytes.len() {
        return Err(WireError::Invalid("trailing octets after the last record"));
    }
    Ok(Message { header, questions, answers, authority, additional })
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], WireError> {
        let end = self.pos.checked_add(n).ok_or(WireError::Truncated)?;
        let s = self.buf.get(self.pos..end).ok_or(WireError::Truncated)?;
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, WireError> {
        let s = self.take(2)?;
        Ok(u16::from_be_bytes([s[0], s[1]]))
    }

    fn u32(&mut self) -> Result<u32, WireError> {
        let s = self.take(4)?;
        Ok(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
    }

    /// Reads a possibly compressed name (RFC 1035 4.1.4) and leaves `pos` after it. Each pointer
    /// must point before the start of the segment it ends (so the walk cannot loop) and there
    /// are at most 127 of them; the expanded
    /// name must fit in 255 octets. Returned lowercase without the final dot; octets outside
    /// printable ASCII, and '.' or '\' inside a label, are written as `\DDD` (RFC 1035 5.1).
    fn name(&mut self) -> Result<String, WireError> {
        let mut out = String::new();
        let mut wire_len = 1usize; // the root label
        let mut at = self.pos;
        let mut segment_start = self.pos;
        let mut resume: Option<usize> = None;
        let mut hops = 0;
        loop {
            let len = *self.buf.get(at).ok_or(WireError::Truncated)?;
            match len & 0xc0 {
                0x00 if len == 0 => {
                    self.pos = resume.unwrap_or(at + 1);
                    return Ok(out);
                }
                0x00 => {
                    let len = usize::from(len);
                    wire_len += len + 1;
                    if wire_len > MAX_WIRE_NAME {
                        return Err(WireError::BadName("name longer than 255 octets"));
                    }
                    let label = self.buf.get(at + 1..at + 1 + len).ok_or(WireError::Truncated)?;
                    if !out.is_empty() {
                        out.push('.');
                    }
                    for &b in label {
                        if (b.is_ascii_graphic() || b == b' ') && b != b'.' && b != b'\\' {
                            out.push(char::from(b.to_ascii_lowercase()));
                        } else {
                            out.push_str(&format!("\\{b:03}"));
                        }
                    }
                    at += 1 + len;
                }
                0xc0 => {
                    let low = *self.buf.get(at + 1).ok_or(WireError::Truncated)?;
                    let target = (usize::from(len & 0x3f) << 8) | usize::from(low);
                    hops += 1;
                    if target >= segment_start || hops > MAX_POINTERS {
                        return Err(WireError::BadName("compression pointer loop or forward pointer"));
                    }
                    if resume.is_none() {
                        resume = Some(at + 2);
                    }
                    at = target;
                    segment_start = target;
                }
                // 0x40 and 0x80: extended label types (RFC 6891 5) are not in use.
                _ => return Err(WireError::BadName("unknown label type")),
            }
        }
    }

    fn records(&mut self, count: u16) -> Result<Vec<Record>, WireError> {
        let mut v = Vec::new();
        for _ in 0..count {
            v.push(self.record()?);
        }
        Ok(v)
    }

    fn record(&mut self) -> Result<Record, WireError> {
        let name = self.name()?;
        let rtype = self.u16()?;
        let class = self.u16()?;
        let ttl = self.u32()?;
        let rdlen = usize::from(self.u16()?);
        let start = self.pos;
        let end = start + rdlen;
        if end > self.buf.len() {
            return Err(WireError::Truncated);
        }
        // RFC 2181 8: a TTL with the top bit set is to be treated as zero.
        let ttl = if rtype != TYPE_OPT && ttl > 0x7fff_ffff { 0 } else { ttl };
        let data = match rtype {
            TYPE_A => {
                let s = self.exact(rdlen, 4)?;
                RData::A(Ipv4Addr::new(s[0], s[1], s[2], s[3]))
            }
            TYPE_AAAA => {
                let s = self.exact(rdlen, 16)?;
                let mut a = [0u8; 16];
                a.copy_from_slice(s);
                RData::Aaaa(Ipv6Addr::from(a))
            }
            TYPE_MX => {
                let preference = self.u16()?;
                RData::Mx { preference, exchange: self.name()? }
            }
            TYPE_CNAME => RData::Cname(self.name()?),
            TYPE_NS => RData::Ns(self.name()?),
            TYPE_PTR => RData::Ptr(self.name()?),
            TYPE_SOA => RData::Soa {
                mname: self.name()?,
                rname: self.name()?,
                serial: self.u32()?,
                refresh: self.u32()?,
                retry: self.u32()?,
                expire: self.u32()?,
                minimum: self.u32()?,
            },
            TYPE_TXT => {
                // RFC 1035 3.3.14: one or more <character-string>s filling RDATA exactly.
                if rdlen == 0 {
                    return Err(WireError::Invalid("empty TXT RDATA"));
                }
                let mut strings = Vec::new();
                while self.pos < end {
                    let n = usize::from(self.u8()?);
                    if self.pos + n > end {
                        return Err(WireError::Invalid("TXT string overruns RDATA"));
                    }
                    strings.push(self.take(n)?.to_vec());
                }
                RData::Txt(strings)
            }
            TYPE_OPT => {
                if !name.is_empty() {
                    return Err(WireError::Invalid("OPT record not owned by the root"));
                }
                RData::Opt(self.take(rdlen)?.to_vec())
            }
            _ => RData::Other(self.take(rdlen)?.to_vec()),
        };
        if self.pos != end {
            return Err(WireError::Invalid("RDATA length does not match its contents"));
        }
        Ok(Record { name, rtype, class, ttl, data })
    }

    fn exact(&mut self, rdlen: usize, want: usize) -> Result<&[u8], WireError> {
        if rdlen != want {
            return Err(WireError::Invalid("address RDATA of the wrong length"));
        }
        self.take(want)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A response header: id 0x1234, QR=1 RD=1 RA=1, the given rcode and counts.
    fn header(rcode: u8, qd: u16, an: u16, ns: u16, ar: u16) -> Vec<u8> {
        let mut v = vec![0x12, 0x34, 0x81, 0x80 | rcode];
        for c in [qd, an, ns, ar] {
            v.extend_from_slice(&c.to_be_bytes());
        }
        v
    }

    fn rr(v: &mut Vec<u8>, owner: &[u8], rtype: u16, ttl: u32, rdata: &[u8]) {
        v.extend_from_slice(owner);
        v.extend_from_slice(&rtype.to_be_bytes());
        v.extend_from_slice(&CLASS_IN.to_be_bytes());
        v.extend_from_slice(&ttl.to_be_bytes());
        v.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        v.extend_from_slice(rdata);
    }

    /// An MX answer for Example.COM with two compressed exchanges.
    fn mx_packet() -> Vec<u8> {
        let mut v = header(0, 1, 2, 0, 0);
        // offset 12: question name
        v.extend_from_slice(b"\x07Example\x03COM\x00");
        v.extend_from_slice(&TYPE_MX.to_be_bytes());
        v.extend_from_slice(&CLASS_IN.to_be_bytes());
        // owner = pointer to 12; exchange = "mx1" + pointer to 12
        rr(&mut v, &[0xc0, 12], TYPE_MX, 300, &[0, 10, 3, b'm', b'x', b'1', 0xc0, 12]);
        // second exchange: "MX2" + pointer to "com" (offset 20)
        rr(&mut v, &[0xc0, 12], TYPE_MX, 300, &[0, 20, 3, b'M', b'X', b'2', 0xc0, 20]);
        v
    }

    #[test]
    fn decodes_compressed_mx_answer() {
        let m = decode_response(&mx_packet()).unwrap();
        assert_eq!(m.header.id, 0x1234);
        assert!(m.header.qr && m.header.rd && m.header.ra && !m.header.tc);
        assert_eq!(m.rcode(), RCODE_NOERROR);
        assert_eq!(m.questions, vec![Question { name: "example.com".into(), qtype: TYPE_MX, qclass: 1 }]);
        let mx: Vec<_> = m.answers.iter().map(|r| (r.name.as_str(), r.ttl, &r.data)).collect();
        assert_eq!(
            mx,
            vec![
                ("example.com", 300, &RData::Mx { preference: 10, exchange: "mx1.example.com".into() }),
                ("example.com", 300, &RData::Mx { preference: 20, exchange: "mx2.com".into() }),
            ]
        );
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let p = mx_packet();
        for n in 0..p.len() {
            assert!(decode_response(&p[..n]).is_err(), "prefix of {n} octets accepted");
        }
        let mut long = p.clone();
        long.push(0);
        assert_eq!(decode_response(&long), Err(WireError::Invalid("trailing octets after the last record")));
    }

    #[test]
    fn typed_rdata() {
        let mut v = header(0, 0, 6, 1, 1);
        rr(&mut v, b"\x01a\x00", TYPE_A, 5, &[192, 0, 2, 1]);
        let mut six = [0u8; 16];
        six[0] = 0x20;
        six[1] = 0x01;
        six[15] = 1;
        rr(&mut v, b"\x01a\x00", TYPE_AAAA, 5, &six);
        rr(&mut v, b"\x01b\x00", TYPE_CNAME, 5, b"\x01a\x00");
        rr(&mut v, b"\x01t\x00", TYPE_TXT, 5, b"\x03abc\x00\x02de");
        rr(&mut v, b"\x01p\x00", TYPE_PTR, 5, b"\x01A\x00");
        rr(&mut v, b"\x01x\x00", 99, 0x8000_0000, b"\xff\x00");
        let mut soa = b"\x02ns\x00\x01h\x00".to_vec();
        for n in [1u32, 2, 3, 4, 60] {
            soa.extend_from_slice(&n.to_be_bytes());
        }
        rr(&mut v, b"\x00", TYPE_SOA, 7, &soa);
        // OPT: payload 1232, extended rcode 1 -> full rcode 16 (BADVERS)
        v.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 1, 0, 0, 0, 0, 0]);
        let m = decode_response(&v).unwrap();
        let data: Vec<_> = m.answers.iter().map(|r| r.data.clone()).collect();
        assert_eq!(
            data,
            vec![
                RData::A(Ipv4Addr::new(192, 0, 2, 1)),
                RData::Aaaa("2001::1".parse().unwrap()),
                RData::Cname("a".into()),
                RData::Txt(vec![b"abc".to_vec(), vec![], b"de".to_vec()]),
                RData::Ptr("a".into()),
                RData::Other(vec![0xff, 0]),
            ]
        );
        assert_eq!(m.answers[5].ttl, 0, "RFC 2181 8: top-bit TTL is zero");
        assert_eq!(
            m.authority[0].data,
            RData::Soa {
                mname: "ns".into(),
                rname: "h".into(),
                serial: 1,
                refresh: 2,
                retry: 3,
                expire: 4,
                minimum: 60
            }
        );
        assert_eq!(m.additional[0].class, 1232);
        assert_eq!(m.rcode(), 16);
    }

    #[test]
    fn bad_rdata_is_rejected() {
        let cases: &[(u16, &[u8])] = &[
            (TYPE_A, &[1, 2, 3]),
            (TYPE_A, &[1, 2, 3, 4, 5]),
            (TYPE_AAAA, &[0; 4]),
            (TYPE_TXT, b""),
            (TYPE_TXT, b"\x05abc"),
            (TYPE_CNAME, b"\x01a\x00junk"),
            (TYPE_MX, b"\x00"),
            (TYPE_SOA, b"\x00\x00\x00\x00"),
        ];
        for (t, rdata) in cases {
            let mut v = header(0, 0, 1, 0, 0);
            rr(&mut v, b"\x00", *t, 1, rdata);
            assert!(decode_response(&v).is_err(), "type {t} rdata {rdata:?} accepted");
        }
    }

    #[test]
    fn name_limits_and_pointer_loops() {
        let decode_q = |name: &[u8]| {
            let mut v = header(0, 1, 0, 0, 0);
            v.extend_from_slice(name);
            v.extend_from_slice(&[0, 1, 0, 1]);
            decode_response(&v).map(|m| m.questions[0].name.clone())
        };
        // A pointer to itself, a pointer forward, a two-pointer loop.
        assert!(matches!(decode_q(&[0xc0, 12]), Err(WireError::BadName(_))));
        assert!(matches!(decode_q(&[0xc0, 14, 0]), Err(WireError::BadName(_))));
        assert!(matches!(decode_q(&[1, b'a', 0xc0, 12]), Err(WireError::BadName(_))));
        // Pointer into the header region: "\x12\x34..." is a 0x12-long label, fine to read but
        // the header then goes on with counts; just make sure it does not panic.
        let _ = decode_q(&[0xc0, 0]);
        // Extended label types 0x40 / 0x80.
        assert!(decode_q(&[0x41, 0]).is_err());
        assert!(decode_q(&[0x81, 0]).is_err());
        // 4 labels of 63 = 256 wire octets with root: too long. 3×63 + 61: 255, fine.
        let mut long = Vec::new();
        for _ in 0..4 {
            long.push(63);
            long.extend_from_slice(&[b'a'; 63]);
        }
        long.push(0);
        assert_eq!(decode_q(&long), Err(WireError::BadName("name longer than 255 octets")));
        let mut max = long[..192].to_vec();
        max.push(61);
        max.extend_from_slice(&[b'a'; 61]);
        max.push(0);
        assert_eq!(decode_q(&max).unwrap().len(), 253);
        // Odd octets are escaped, case is folded.
        assert_eq!(decode_q(b"\x04A.b\\\x02\xffZ\x00").unwrap(), "a\\046b\\092.\\255z");
        assert_eq!(decode_q(b"\x00").unwrap(), "");
    }

    #[test]
    fn encodes_query_with_edns() {
        let q = encode_query(0xbeef, "Mail.Example.org.", TYPE_MX, Some(1232)).unwrap();
        let mut want = vec![0xbe, 0xef, 1, 0, 0, 1, 0, 0, 0, 0, 0, 1];
        want.extend_from_slice(b"\x04mail\x07example\x03org\x00\x00\x0f\x00\x01");
        want.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(q, want);
        let m = decode_response(&q).unwrap();
        assert!(!m.header.qr);
        assert_eq!(m.questions[0].name, "mail.example.org");
        let plain = encode_query(1, "a.b", TYPE_A, None).unwrap();
        assert_eq!(plain.len(), 12 + 5 + 4);
        assert_eq!(&plain[10..12], &[0, 0]);
    }

    #[test]
    fn name_normalization() {
        let ok = [("Example.COM.", "example.com"), ("_dmarc.x.org", "_dmarc.x.org"), ("a", "a")];
        for (i, o) in ok {
            assert_eq!(normalize_name(i).as_deref(), Ok(o));
        }
        let label63 = "a".repeat(63);
        assert!(normalize_name(&label63).is_ok());
        let name253 = format!("{label63}.{label63}.{label63}.{}", "b".repeat(61));
        assert_eq!(name253.len(), 253);
        assert!(normalize_name(&name253).is_ok());
        let bad = [
            "".to_string(),
            ".".into(),
            "a..b".into(),
            ".a".into(),
            "a.b..".into(),
            "a".repeat(64),
            format!("{name253}c"),
            "bücher.de".into(),
            "a\tb.c".into(),
            "a\\.b".into(),
        ];
        for b in bad {
            assert!(normalize_name(&b).is_err(), "{b:?} accepted");
        }
        // A space is an octet like another (RFC 2181 11; SPF's %_ macro makes such names).
        assert_eq!(normalize_name("A B.c").unwrap(), "a b.c");
    }
}
