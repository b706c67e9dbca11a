//! Outbound SMTP: one delivery attempt to one server over a blocking TcpStream with timeouts (RFC 5321
//! client side, RFC 3207 STARTTLS, RFC 2920 PIPELINING, RFC 1870 SIZE, RFC 6152 8BITMIME, RFC 6531 SMTPUTF8,
//! RFC 4954 AUTH PLAIN). The protocol pieces are I/O-free in `reply` (server replies, EHLO capabilities)
//! and `encode` (commands, data transparency); this file is the conversation.

pub mod encode;
pub mod reply;
#[cfg(test)]
mod tests;

use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::ClientConnection;
use rustls::pki_types::ServerName;

use crate::tls;
use encode::DataEncoder;
use reply::{Capabilities, ReplyParser, ServerReply};

/// When to use TLS with the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsPolicy {
    /// Never STARTTLS.
    None,
    /// STARTTLS when offered; an unverifiable certificate is used and recorded as untrusted (Postfix
    /// `may`). STARTTLS refused by the server: go on in clear. A failed handshake: the attempt fails
    /// temporarily (no retry in clear).
    May,
    /// STARTTLS required and the certificate must verify, else the attempt fails temporarily.
    Verify,
    /// TLS from the first byte (RFC 8314, port 465), verified.
    Implicit,
}

/// How to talk to servers; built once from the configuration.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Our host name, sent in EHLO/HELO.
    pub helo_name: String,
    pub tls: TlsPolicy,
    /// (user, password) for AUTH PLAIN; only ever sent over TLS (an attempt without TLS fails temporarily).
    pub auth: Option<(String, String)>,
    pub connect_timeout: Duration,
    /// RFC 5321 4.5.3.2: greeting, EHLO, MAIL, RCPT, DATA (5 minutes).
    pub command_timeout: Duration,
    /// RFC 5321 4.5.3.2.5: each write of message data (3 minutes). The reply to the final dot
    /// (4.5.3.2.6, 10 minutes) is waited for 10/3 of this.
    pub data_timeout: Duration,
    /// Trust anchors; `None` uses the system's (loaded once per process).
    pub roots: Option<Arc<rustls::RootCertStore>>,
}

impl ClientConfig {
    /// RFC 5321 4.5.3.2 timeouts, opportunistic TLS, no AUTH, system roots.
    pub fn new(helo_name: impl Into<String>) -> ClientConfig {
        ClientConfig { helo_name: helo_name.into(), ..ClientConfig::default() }
    }
}

/// As [`ClientConfig::new`] with the name `localhost`; callers set `helo_name`.
impl Default for ClientConfig {
    fn default() -> ClientConfig {
        ClientConfig {
            helo_name: "localhost".to_string(),
            tls: TlsPolicy::May,
            auth: None,
            connect_timeout: Duration::from_secs(30),
            command_timeout: Duration::from_secs(300),
            data_timeout: Duration::from_secs(180),
            roots: None,
        }
    }
}

/// The message to send.
pub struct Outbound<'a> {
    /// `""` is the null sender `<>`.
    pub sender: &'a str,
    /// Addresses as stored (local@domain).
    pub recipients: &'a [String],
    /// For SIZE= (RFC 1870).
    pub size: u64,
    /// BODY=8BITMIME when the server offers it (RFC 6152).
    pub eight_bit: bool,
}

/// The outcome for one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RcptResult {
    Accepted,
    /// `reply` is the server's reply as one line, e.g. "550 5.1.1 <x>: Recipient address rejected".
    Failed {
        permanent: bool,
        reply: String,
    },
}

/// A finished conversation: the message was offered and each recipient has an outcome.
#[derive(Debug)]
pub struct Attempt {
    /// "mx1.example.test[127.0.0.2]:25"
    pub relay: String,
    /// "TLSv1.3 TLS13_AES_256_GCM_SHA384 verified" or "... untrusted"; `None` in clear.
    pub tls: Option<String>,
    /// One per recipient, in order. A 4xx/5xx to DATA or to the final dot fails every accepted one.
    pub results: Vec<RcptResult>,
    /// The final reply to the message, e.g. "250 2.0.0 Ok: queued as X", or the reply that failed it.
    pub reply: String,
}

/// A failure of the whole attempt: no recipient got an outcome of its own. The text is what logs and
/// bounces show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionError {
    /// Try again later (or the next MX).
    Temp(String),
    /// Give up on every recipient.
    Perm(String),
}

impl std::fmt::Display for SessionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SessionError::Temp(s) | SessionError::Perm(s) => f.write_str(s),
        }
    }
}

/// Most commands written in one pipelined group (RFC 2920 3.1 lets the client choose the grouping);
/// bounds what either side buffers before reading.
const PIPELINE_GROUP: usize = 100;

/// One delivery attempt to one address. `body` yields the message as stored on disk (LF line ends, from
/// the first header to transmit); it is sent with CRLF line ends, dot-stuffed, ending with CRLF.CRLF.
/// Recipients with a non-ASCII address (or all, if the sender is one) fail permanently with 5.6.7 when
/// the server lacks SMTPUTF8 (RFC 6531 3.2); if none is left, no transaction is started.
pub fn send(
    addr: SocketAddr,
    host: &str,
    cfg: &ClientConfig,
    msg: &Outbound,
    body: &mut dyn Read,
) -> Result<Attempt, SessionError> {
    let peer = format!("{host}[{}]", addr.ip());
    let relay = format!("{peer}:{}", addr.port());
    if !encode::address_is_safe(msg.sender) {
        return Err(SessionError::Perm(format!("bad sender address syntax: {}", msg.sender.escape_debug())));
    }
    let tcp = TcpStream::connect_timeout(&addr, at_least(cfg.connect_timeout))
        .map_err(|e| SessionError::Temp(format!("connect to {relay}: {}", os_text(&e))))?;
    let _ = tcp.set_nodelay(true);
    let mut conn = Conn {
        tcp,
        tls: None,
        tls_info: None,
        inbuf: Vec::new(),
        parser: ReplyParser::new(),
        peer,
        cfg,
        broken: false,
    };
    let outcome = conn.session(host, addr.ip(), msg, body);
    conn.quit();
    let (results, reply) = outcome?;
    log::info!(
        "smtp_client event=sent relay={relay} tls={:?} reply={:?}",
        conn.tls_info.as_deref().unwrap_or("none"),
        reply
    );
    Ok(Attempt { relay, tls: conn.tls_info, results, reply })
}

/// One connection to one server.
struct Conn<'a> {
    tcp: TcpStream,
    tls: Option<Box<ClientConnection>>,
    tls_info: Option<String>,
    /// Bytes read and not yet parsed; never more than one partial line plus one read.
    inbuf: Vec<u8>,
    parser: ReplyParser,
    /// "mx.example[192.0.2.1]"
    peer: String,
    cfg: &'a ClientConfig,
    /// An I/O or protocol error happened: the stream is out of step, no QUIT.
    broken: bool,
}

impl Conn<'_> {
    /// Greeting to final dot. Returns the per-recipient results and the final reply.
    fn session(
        &mut self,
        host: &str,
        ip: IpAddr,
        msg: &Outbound,
        body: &mut dyn Read,
    ) -> Result<(Vec<RcptResult>, String), SessionError> {
        let policy = self.cfg.tls;
        if policy == TlsPolicy::Implicit {
            self.start_tls(host, ip, true)?;
        }
        let greeting = self.read_reply(self.cfg.command_timeout, "receiving the initial server greeting")?;
        if !(200..300).contains(&greeting.code) {
            // RFC 5321 3.1: a 554 (or 4xx) greeting; QUIT follows. Temporary for every code, so that
            // the next MX is tried.
            return Err(SessionError::Temp(format!("host {} refused to talk to me: {greeting}", self.peer)));
        }
        let mut caps = self.hello()?;
        match policy {
            TlsPolicy::None | TlsPolicy::Implicit => {}
            TlsPolicy::May | TlsPolicy::Verify if caps.starttls => {
                self.write(b"STARTTLS\r\n", self.cfg.command_timeout, "sending STARTTLS")?;
                let r = self.read_reply(self.cfg.command_timeout, "sending STARTTLS")?;
                if (200..300).contains(&r.code) {
                    self.start_tls(host, ip, policy == TlsPolicy::Verify)?;
                    // RFC 3207 4.2: forget what was said in clear and ask again.
                    caps = self.hello()?;
                } else if policy == TlsPolicy::Verify {
                    return Err(SessionError::Temp(said(&self.peer, &r, "STARTTLS")));
                } else {
                    log::info!(
                        "smtp_client event=starttls_refused host={} reply={:?}",
                        self.peer,
                        r.to_string()
                    );
                }
            }
            TlsPolicy::May => {}
            TlsPolicy::Verify => {
                return Err(SessionError::Temp(format!(
                    "TLS is required, but was not offered by host {}",
                    self.peer
                )));
            }
        }
        self.auth(&caps)?;

        // RFC 1870 6: a message larger than the server's fixed limit would be refused anyway.
        if let Some(limit) = caps.size.filter(|&n| n > 0 && msg.size > n) {
            return Err(SessionError::Perm(format!(
                "message size {} exceeds size limit {limit} of server {}",
                msg.size, self.peer
            )));
        }

        let mut results =
            vec![RcptResult::Failed { permanent: false, reply: String::new() }; msg.recipients.len()];
        let mut sendable = Vec::new();
        let need_utf8 = !msg.sender.is_ascii() || msg.recipients.iter().any(|r| !r.is_ascii());
        for (i, rcpt) in msg.recipients.iter().enumerate() {
            if !encode::address_is_safe(rcpt) {
                results[i] = RcptResult::Failed {
                    permanent: true,
                    reply: "501 5.1.3 bad recipient address syntax".to_string(),
                };
            } else if !caps.smtputf8 && (!msg.sender.is_ascii() || !rcpt.is_ascii()) {
                // RFC 6531 3.2: without SMTPUTF8 a non-ASCII address cannot be sent.
                results[i] = RcptResult::Failed {
                    permanent: true,
                    reply: format!(
                        "550 5.6.7 SMTPUTF8 is required, but was not offered by host {}",
                        self.peer
                    ),
                };
            } else {
                sendable.push(i);
            }
        }
        if sendable.is_empty() {
            let reply = match results.first() {
                Some(RcptResult::Failed { reply, .. }) => reply.clone(),
                _ => "no recipients".to_string(),
            };
            return Ok((results, reply));
        }
        let mail = encode::mail_from(
            msg.sender,
            caps.size.map(|_| msg.size),
            msg.eight_bit && caps.eight_bit_mime,
            need_utf8 && caps.smtputf8,
        );
        let reply = self.transaction(&caps, &mail, msg.recipients, &sendable, &mut results, body)?;
        Ok((results, reply))
    }

    /// EHLO, or HELO if EHLO is refused with 5xx (RFC 5321 3.2). Returns what the server offers.
    fn hello(&mut self) -> Result<Capabilities, SessionError> {
        let stage = "performing the EHLO handshake";
        let ehlo = format!("EHLO {}\r\n", self.cfg.helo_name);
        self.write(ehlo.as_bytes(), self.cfg.command_timeout, stage)?;
        let r = self.read_reply(self.cfg.command_timeout, stage)?;
        if (200..300).contains(&r.code) {
            return Ok(Capabilities::parse(&r));
        }
        if !r.is_permanent() {
            return Err(SessionError::Temp(said(&self.peer, &r, "EHLO")));
        }
        let stage = "performing the HELO handshake";
        let helo = format!("HELO {}\r\n", self.cfg.helo_name);
        self.write(helo.as_bytes(), self.cfg.command_timeout, stage)?;
        let r = self.read_reply(self.cfg.command_timeout, stage)?;
        match r.code {
            200..300 => Ok(Capabilities::default()),
            500.. => Err(SessionError::Perm(said(&self.peer, &r, "HELO"))),
            _ => Err(SessionError::Temp(said(&self.peer, &r, "HELO"))),
        }
    }

    /// RFC 4954 AUTH PLAIN with an initial response, when credentials are configured. Credentials never
    /// travel in clear, so no TLS means the attempt fails temporarily. Any refusal is temporary (as
    /// Postfix's smtp_sasl_auth_soft_bounce): the password may be fixed before the retry.
    fn auth(&mut self, caps: &Capabilities) -> Result<(), SessionError> {
        let Some((user, password)) = &self.cfg.auth else { return Ok(()) };
        if self.tls.is_none() {
            return Err(SessionError::Temp(format!(
                "not sending AUTH credentials to host {} over an unencrypted connection",
                self.peer
            )));
        }
        if !caps.auth.iter().any(|m| m == "PLAIN") {
            return Err(SessionError::Temp(format!("host {} offers no AUTH PLAIN", self.peer)));
        }
        let stage = "performing the SASL authentication";
        self.write(encode::auth_plain(user, password).as_bytes(), self.cfg.command_timeout, stage)?;
        let r = self.read_reply(self.cfg.command_timeout, stage)?;
        if r.code == 334 {
            // A challenge after an initial response: cancel (RFC 4954 4) and give up for now.
            self.write(b"*\r\n", self.cfg.command_timeout, stage)?;
            let _ = self.read_reply(self.cfg.command_timeout, stage)?;
        }
        if (200..300).contains(&r.code) {
            return Ok(());
        }
        Err(SessionError::Temp(format!("SASL authentication failed; server {} said: {r}", self.peer)))
    }

    /// MAIL, RCPT for each sendable recipient, DATA, message, final dot. With PIPELINING the commands go
    /// in groups and the replies are read in order (RFC 2920 3.1); without, one by one, stopping at a
    /// MAIL failure and skipping DATA when no recipient was accepted.
    fn transaction(
        &mut self,
        caps: &Capabilities,
        mail: &str,
        recipients: &[String],
        sendable: &[usize],
        results: &mut [RcptResult],
        body: &mut dyn Read,
    ) -> Result<String, SessionError> {
        #[derive(Clone, Copy, PartialEq)]
        enum Cmd {
            Mail,
            Rcpt(usize),
            Data,
        }
        let mut cmds = vec![Cmd::Mail];
        cmds.extend(sendable.iter().map(|&i| Cmd::Rcpt(i)));
        cmds.push(Cmd::Data);
        let group = if caps.pipelining { PIPELINE_GROUP } else { 1 };
        let timeout = self.cfg.command_timeout;
        let stage = |c: Cmd| match c {
            Cmd::Mail => "sending MAIL FROM",
            Cmd::Rcpt(_) => "sending RCPT TO",
            Cmd::Data => "sending DATA command",
        };

        let mut mail_failed: Option<ServerReply> = None;
        let mut last_rcpt_failure: Option<String> = None;
        let mut accepted = 0usize;
        let mut data_reply: Option<ServerReply> = None;
        let mut at = 0;
        while at < cmds.len() && mail_failed.is_none() {
            if !caps.pipelining && cmds[at] == Cmd::Data && accepted == 0 {
                break;
            }
            let end = (at + group).min(cmds.len());
            let mut out = String::new();
            for &c in &cmds[at..end] {
                match c {
                    Cmd::Mail => out.push_str(mail),
                    Cmd::Rcpt(i) => out.push_str(&encode::rcpt_to(&recipients[i])),
                    Cmd::Data => out.push_str("DATA\r\n"),
                }
            }
            self.write(out.as_bytes(), timeout, stage(cmds[at]))?;
            for &c in &cmds[at..end] {
                let r = self.read_reply(timeout, stage(c))?;
                match c {
                    Cmd::Mail if !(200..300).contains(&r.code) => mail_failed = Some(r),
                    Cmd::Mail => {}
                    Cmd::Rcpt(i) => {
                        results[i] = if (200..300).contains(&r.code) {
                            accepted += 1;
                            RcptResult::Accepted
                        } else {
                            // RFC 5321 4.5.3.1.10: a 452 for too many recipients is only temporary;
                            // the queue retries those later.
                            last_rcpt_failure = Some(r.to_string());
                            RcptResult::Failed { permanent: r.is_permanent(), reply: r.to_string() }
                        };
                    }
                    Cmd::Data => data_reply = Some(r),
                }
            }
            at = end;
        }

        // RFC 2920 3.1: a pipelined DATA may be answered 354 although nothing before it was accepted;
        // end that empty message with a lone dot.
        if data_reply.as_ref().is_some_and(|r| r.code == 354) && (mail_failed.is_some() || accepted == 0) {
            let stage = "sending end of data";
            self.write(b".\r\n", self.cfg.data_timeout, stage)?;
            let _ = self.read_reply(self.dot_timeout(), stage)?;
        }
        if let Some(r) = mail_failed {
            let text = said(&self.peer, &r, "MAIL FROM");
            return Err(if r.is_permanent() { SessionError::Perm(text) } else { SessionError::Temp(text) });
        }
        let data_reply = match data_reply {
            Some(r) if accepted > 0 => r,
            Some(r) => return Ok(last_rcpt_failure.unwrap_or_else(|| r.to_string())),
            None => return Ok(last_rcpt_failure.unwrap_or_else(|| "no recipients accepted".to_string())),
        };
        let final_reply = if data_reply.code == 354 {
            self.send_body(body)?;
            self.read_reply(self.dot_timeout(), "sending end of data -- message may be sent more than once")?
        } else {
            data_reply
        };
        if !(200..300).contains(&final_reply.code) {
            let reply = final_reply.to_string();
            for r in results.iter_mut().filter(|r| **r == RcptResult::Accepted) {
                *r = RcptResult::Failed { permanent: final_reply.is_permanent(), reply: reply.clone() };
            }
        }
        Ok(final_reply.to_string())
    }

    /// Streams the message in DATA form. A read error of the message file leaves the data unfinished:
    /// the connection is dropped without the final dot, so the server discards it.
    fn send_body(&mut self, body: &mut dyn Read) -> Result<(), SessionError> {
        let mut enc = DataEncoder::new();
        let mut chunk = vec![0u8; 16 * 1024];
        let mut out = Vec::with_capacity(34 * 1024);
        loop {
            let n = match body.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.broken = true;
                    return Err(SessionError::Temp(format!("error reading the queued message: {e}")));
                }
            };
            enc.encode(&chunk[..n], &mut out);
            self.write(&out, self.cfg.data_timeout, "sending message body")?;
            out.clear();
        }
        enc.finish(&mut out);
        self.write(&out, self.cfg.data_timeout, "sending end of data -- message may be sent more than once")
    }

    /// RFC 5321 4.5.3.2.6: 10 minutes for the final reply, against 3 for a data block.
    fn dot_timeout(&self) -> Duration {
        self.cfg.data_timeout.saturating_mul(10) / 3
    }

    /// TLS handshake on the open connection, then everything said in clear is forgotten.
    fn start_tls(&mut self, host: &str, ip: IpAddr, verify: bool) -> Result<(), SessionError> {
        let temp = |s: String| SessionError::Temp(s);
        let roots = self.cfg.roots.clone().unwrap_or_else(tls::system_roots);
        let (config, verdict) = if verify {
            (tls::client_verified(roots).map_err(temp)?, None)
        } else {
            let (c, v) = tls::client_opportunistic(roots).map_err(temp)?;
            (c, Some(v))
        };
        // SNI and the name checked: the MX host name (RFC 7672 would use DANE; not here).
        let name = match ServerName::try_from(host.trim_end_matches('.').to_string()) {
            Ok(n) => n,
            Err(_) => ServerName::IpAddress(ip.into()),
        };
        let mut conn = ClientConnection::new(config, name).map_err(|e| temp(format!("TLS setup: {e}")))?;
        // RFC 3207 4.2 (and the STARTTLS injection attacks): discard anything received in clear.
        self.inbuf.clear();
        self.parser = ReplyParser::new();
        let stage = "performing the TLS handshake";
        let deadline = Instant::now() + self.cfg.command_timeout;
        while conn.is_handshaking() {
            let left = deadline.saturating_duration_since(Instant::now());
            let _ = self.tcp.set_read_timeout(Some(at_least(left)));
            let _ = self.tcp.set_write_timeout(Some(at_least(left)));
            match conn.complete_io(&mut self.tcp) {
                Ok((0, 0)) => {
                    self.broken = true;
                    return Err(temp(format!("lost connection with {} while {stage}", self.peer)));
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                    self.broken = true;
                    return Err(temp(format!("TLS handshake with {} failed: {e}", self.peer)));
                }
                Err(e) => return Err(self.io_fail(&e, stage)),
            }
        }
        let trust = match verdict.and_then(|v| v.error()) {
            None => "verified".to_string(),
            Some(e) => {
                log::info!("smtp_client event=tls_untrusted host={} error={e:?}", self.peer);
                "untrusted".to_string()
            }
        };
        self.tls_info = Some(format!("{} {trust}", tls::describe(&conn)));
        self.tls = Some(Box::new(conn));
        Ok(())
    }

    /// Reads one whole reply within `timeout` (a deadline for the whole reply, not per read).
    fn read_reply(&mut self, timeout: Duration, stage: &str) -> Result<ServerReply, SessionError> {
        let deadline = Instant::now() + timeout;
        let mut chunk = [0u8; 4096];
        loop {
            match self.parser.feed(&self.inbuf) {
                Ok((used, reply)) => {
                    self.inbuf.drain(..used);
                    if let Some(r) = reply {
                        return Ok(r);
                    }
                }
                Err(e) => {
                    self.broken = true;
                    return Err(SessionError::Temp(format!("host {} sent {e} while {stage}", self.peer)));
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(self.io_fail(&io::ErrorKind::TimedOut.into(), stage));
            }
            let _ = self.tcp.set_read_timeout(Some(at_least(left)));
            let got = match &mut self.tls {
                Some(t) => rustls::Stream::new(t.as_mut(), &mut self.tcp).read(&mut chunk),
                None => self.tcp.read(&mut chunk),
            };
            match got {
                Ok(0) => return Err(self.io_fail(&io::ErrorKind::UnexpectedEof.into(), stage)),
                Ok(n) => self.inbuf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.io_fail(&e, stage)),
            }
        }
    }

    /// Writes and flushes `data`; `timeout` applies to each write.
    fn write(&mut self, data: &[u8], timeout: Duration, stage: &str) -> Result<(), SessionError> {
        let _ = self.tcp.set_write_timeout(Some(at_least(timeout)));
        let done = match &mut self.tls {
            Some(t) => {
                let mut s = rustls::Stream::new(t.as_mut(), &mut self.tcp);
                s.write_all(data).and_then(|()| s.flush())
            }
            None => self.tcp.write_all(data),
        };
        done.map_err(|e| self.io_fail(&e, stage))
    }

    /// Postfix's wording for a broken conversation; marks the connection unusable.
    fn io_fail(&mut self, e: &io::Error, stage: &str) -> SessionError {
        self.broken = true;
        let peer = &self.peer;
        SessionError::Temp(match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                format!("conversation with {peer} timed out while {stage}")
            }
            io::ErrorKind::UnexpectedEof => format!("lost connection with {peer} while {stage}"),
            _ => format!("lost connection with {peer} while {stage}: {}", os_text(e)),
        })
    }

    /// QUIT (RFC 5321 4.1.1.10) and TLS close_notify, errors ignored; skipped on a broken connection.
    fn quit(&mut self) {
        if self.broken {
            return;
        }
        let timeout = self.cfg.command_timeout.min(Duration::from_secs(30));
        if self.write(b"QUIT\r\n", timeout, "sending QUIT").is_ok() {
            let _ = self.read_reply(timeout, "sending QUIT");
        }
        if let Some(t) = &mut self.tls {
            t.send_close_notify();
            let _ = t.complete_io(&mut self.tcp);
        }
    }
}

/// "host mx[192.0.2.1] said: 550 5.7.1 ... (in reply to MAIL FROM command)"
fn said(peer: &str, r: &ServerReply, command: &str) -> String {
    format!("host {peer} said: {r} (in reply to {command} command)")
}

/// An OS error without Rust's " (os error 111)" suffix, as a log or bounce shows it.
fn os_text(e: &io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// Socket timeouts must not be zero (std rejects it and zero would mean "none").
fn at_least(d: Duration) -> Duration {
    d.max(Duration::from_millis(1))
}
