//! The HTTP driver: one web connection's requests to the webmail and client-setup routes (app.rs)
//! and their responses back, HTTP/1.1 with keep-alive (RFC 9112), over plain HTTP or HTTPS. Between
//! requests the connection waits in the event loop, holding no thread. Bounds: the request head
//! (16 KiB), the body (`web.max_body`), the time a request may take from its first byte and the
//! time a kept-alive connection may wait for the next one (`web.timeout`). Plain HTTP is served
//! to loopback clients only, unless `web.behind_proxy` says a proxy on this host does TLS.

pub mod app;
pub mod compose;
pub mod mail;
pub mod state;
pub mod webmail;

use std::io;
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::io::{Bytes, Io};
use super::{Connection, Env, Handshake, Wait, Wake, Yield, handshake, yielded};
use crate::netio::Stream;
use crate::server::context::Context;
use crate::server::{Service, Slot};
use crate::transport::Transport;
use crate::web::http::{self, Limits, Method, Parsed, Response};

/// Requests served on one connection before it is closed (a browser opens another).
const MAX_REQUESTS: u32 = 1000;

enum Phase {
    Handshake {
        began: Instant,
    },
    Request,
    /// A failed login's answer, held back until then (the brute-force brake), and whether the
    /// connection stays open after it.
    Held(Instant, Vec<u8>, bool),
    /// After an error answer: our side is shut, what the client still sends is read and dropped
    /// for a moment, so closing does not reset the connection before the client reads the answer.
    Linger(Instant),
}

/// How long a refused request's client may go on sending before the connection is closed.
const LINGER: Duration = Duration::from_secs(2);

pub struct Http {
    ctx: Arc<Context>,
    io: Io,
    sid: String,
    peer: SocketAddr,
    service: Service,
    _slot: Slot,
    phase: Phase,
    /// When the last response went out: a kept-alive connection's wait counts from here.
    since: Instant,
    /// When the first byte of the request being read arrived.
    began: Option<Instant>,
    served: u32,
    /// `100 Continue` was said for the request being read.
    continued: bool,
}

/// A complete response for a client refused before it is served (limits, a plain-HTTP client
/// that is not local).
pub fn refusal(status: u16, text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    Response::text(status, &format!("{text}\n")).write_to(&mut out, false, false);
    out
}

impl Http {
    pub fn new(ctx: Arc<Context>, stream: Transport, peer: SocketAddr, service: Service, slot: Slot) -> Http {
        let now = Instant::now();
        Http {
            ctx,
            io: Io::new(Stream::Plain(stream)),
            sid: crate::spool::new_queue_id(),
            peer,
            service,
            _slot: slot,
            phase: Phase::Request,
            since: now,
            began: None,
            served: 0,
            continued: false,
        }
    }

    /// Whether the client reached us over TLS (ours, or a local proxy's that says so).
    fn secure(&self) -> bool {
        matches!(self.io.stream, Stream::Tls(_)) || self.ctx.config.web.behind_proxy
    }

    fn limits(&self) -> Limits {
        let max_body = self.ctx.config.web.max_body(self.ctx.config.message_size_limit);
        Limits { max_body: usize::try_from(max_body).unwrap_or(usize::MAX), ..Limits::default() }
    }

    fn run(&mut self, wake: Wake, env: &Env) -> io::Result<Option<Wait>> {
        let timeout = self.ctx.config.web.timeout;
        if wake == Wake::Start {
            log::info!(
                "session={} event=connect service={} client={}",
                self.sid,
                self.service.name(),
                self.peer
            );
            match (self.service, self.ctx.tls.clone()) {
                (Service::Https, Some(tls)) => {
                    self.io.start_tls(tls.config())?;
                    self.phase = Phase::Handshake { began: self.since };
                }
                (Service::Https, None) => return Ok(None),
                _ if !local(self.peer) && !self.ctx.config.web.behind_proxy => {
                    // Passwords and session cookies never cross a network in cleartext.
                    log::info!("session={} event=reject reason=plain_http client={}", self.sid, self.peer);
                    self.io.out.extend_from_slice(&refusal(
                        403,
                        "Plain HTTP is served to this host only: use HTTPS (web.tls_listen).",
                    ));
                    return Ok(None);
                }
                _ => {}
            }
        }
        loop {
            let now = Instant::now();
            match &mut self.phase {
                Phase::Handshake { began } => match handshake(&mut self.io, *began, timeout, &self.sid) {
                    Handshake::Done(_) => {
                        self.phase = Phase::Request;
                        self.since = now;
                    }
                    Handshake::Wait(w) => return Ok(Some(w)),
                    Handshake::Failed => return Ok(None),
                },
                Phase::Linger(until) => {
                    let until = *until;
                    let n = self.io.buffered().len();
                    self.io.consume(n);
                    match self.io.more()? {
                        Bytes::Data(_) => continue,
                        Bytes::Eof => return Ok(None),
                        Bytes::Pending if now >= until => return Ok(None),
                        Bytes::Pending => {
                            return Ok(Some(Wait { read: true, until: Some(until), ..Wait::default() }));
                        }
                    }
                }
                Phase::Held(until, bytes, keep) => {
                    if now < *until {
                        return Ok(Some(Wait { until: Some(*until), ..Wait::default() }));
                    }
                    let keep = *keep;
                    self.io.out.append(bytes);
                    self.phase = Phase::Request;
                    self.io.flush()?;
                    self.since = Instant::now();
                    if !keep {
                        return Ok(None);
                    }
                }
                Phase::Request => {
                    if env.shutting_down && self.io.buffered().is_empty() {
                        return Ok(None);
                    }
                    match http::parse(self.io.buffered(), &self.limits()) {
                        Parsed::Complete(req, used) => {
                            self.io.consume(used);
                            self.continued = false;
                            self.began = (!self.io.buffered().is_empty()).then_some(now);
                            self.served += 1;
                            let keep = req.keep_alive() && self.served < MAX_REQUESTS && !env.shutting_down;
                            let secure = self.secure();
                            let call = app::Call {
                                ctx: &self.ctx,
                                req: &req,
                                sid: &self.sid,
                                peer: self.peer,
                                secure,
                                blocker: env.blocker,
                            };
                            let (resp, delay) = app::handle(&call);
                            log::info!(
                                "session={} event=http method={} path=\"{}\" status={}",
                                self.sid,
                                method_name(&req.method),
                                crate::server::checks::log_text(&req.path),
                                resp.status
                            );
                            let mut bytes = Vec::new();
                            resp.write_to(&mut bytes, req.method == Method::Head, keep);
                            if !delay.is_zero() {
                                self.phase = Phase::Held(now + delay, bytes, keep);
                                continue;
                            }
                            self.io.out.append(&mut bytes);
                            self.io.flush()?;
                            self.since = Instant::now();
                            if !keep {
                                return Ok(None);
                            }
                        }
                        Parsed::Error(status) => {
                            log::info!("session={} event=http_error status={status}", self.sid);
                            self.io.out.extend_from_slice(&refusal(status, http::reason(status)));
                            self.io.flush()?;
                            if let Some(tcp) = self.io.stream.tcp() {
                                let _ = tcp.shutdown(std::net::Shutdown::Write);
                            }
                            self.phase = Phase::Linger(now + LINGER);
                        }
                        Parsed::Partial
                            if !self.continued
                                && http::expects_continue(self.io.buffered(), &self.limits()) =>
                        {
                            // RFC 9110 10.1.1: the head is acceptable, the client may send the body.
                            self.continued = true;
                            self.io.out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
                            self.io.flush()?;
                        }
                        Parsed::Partial => match self.io.more()? {
                            Bytes::Data(_) => {
                                self.began.get_or_insert(now);
                            }
                            Bytes::Eof => return Ok(None),
                            Bytes::Pending => {
                                let deadline = match self.began {
                                    Some(first) => first + timeout,
                                    None => self.since + keep_alive(timeout, env.stress),
                                };
                                if now >= deadline {
                                    if self.began.is_some() {
                                        self.io.out.extend_from_slice(&refusal(408, "Request Timeout"));
                                    }
                                    return Ok(None);
                                }
                                return Ok(Some(Wait {
                                    read: true,
                                    until: Some(deadline),
                                    ..Wait::default()
                                }));
                            }
                        },
                    }
                }
            }
        }
    }
}

/// How long a kept-alive connection waits for its next request (less when the server is near its
/// connection limit).
fn keep_alive(timeout: Duration, stress: bool) -> Duration {
    match stress {
        true => timeout.min(Duration::from_secs(2)),
        false => timeout,
    }
}

fn method_name(m: &Method) -> &str {
    match m {
        Method::Get => "GET",
        Method::Head => "HEAD",
        Method::Post => "POST",
        Method::Other(s) => s,
    }
}

/// A client on this host (loopback, IPv4 or IPv6, or IPv4-mapped loopback).
fn local(peer: SocketAddr) -> bool {
    match peer.ip() {
        std::net::IpAddr::V4(a) => a.is_loopback(),
        std::net::IpAddr::V6(a) => a.is_loopback() || a.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
    }
}

impl Connection for Http {
    fn resume(&mut self, wake: Wake, env: &Env) -> Yield {
        self.io.blocker = env.blocker.cloned();
        let result = self.run(wake, env);
        yielded(&mut self.io, result, &self.sid, self.peer, None)
    }

    fn fd(&self) -> Option<RawFd> {
        self.io.stream.fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_is_for_this_host_only() {
        let a = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert!(local(a("127.0.0.1:1")));
        assert!(local(a("127.8.9.10:1")));
        assert!(local(a("[::1]:1")));
        assert!(local(a("[::ffff:127.0.0.1]:1")), "IPv4-mapped loopback on a dual-stack socket");
        assert!(!local(a("192.168.1.10:1")));
        assert!(!local(a("[::ffff:192.168.1.10]:1")));
        assert!(!local(a("[2001:db8::1]:1")));
        assert_eq!(keep_alive(Duration::from_secs(30), true), Duration::from_secs(2));
        assert_eq!(keep_alive(Duration::from_secs(30), false), Duration::from_secs(30));
    }
}
