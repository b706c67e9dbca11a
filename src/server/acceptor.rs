//! The acceptor: one mio Poll over every listener and a signal pipe. It
//! accepts, checks the per-IP and total limits, and hands each connection to
//! the worker pool; it never blocks on a client. A full pool is answered at
//! once with the protocol's "too busy" reply and the connection is closed.
//! SIGTERM/SIGINT stop accepting and wait up to `shutdown_timeout` for
//! running sessions to finish; SIGHUP is logged (nothing to reload yet).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token};

use super::pool::Pool;
use super::{Registry, Service, Slot};
use crate::config::{Config, in_networks};
use crate::local::Resolver;
use crate::queue::Queue;
use crate::queue::runner::Runner;
use crate::queue::wake::Waker;
use crate::smtp;
use crate::transport::Transport;

const STOP: Token = Token(usize::MAX);
const HUP: Token = Token(usize::MAX - 1);

/// One accepted connection on its way to a worker.
pub struct Job {
    pub stream: Transport,
    pub peer: SocketAddr,
    pub service: Service,
    pub slot: Slot,
}

/// Binds everything, drops privileges, then runs the accept loop until shutdown.
pub fn run(config: Arc<Config>) -> Result<(), String> {
    let removed = crate::spool::prepare(&config.data_dir)
        .map_err(|e| format!("data_dir {}: {e}", config.data_dir.display()))?;
    if removed > 0 {
        log::info!("event=spool_cleanup removed={removed} reason=\"never acknowledged\"");
    }
    let mut listeners = Vec::new();
    if let Some(passed) = super::activation::take(&config)? {
        // The service manager bound the sockets: the *.listen addresses only name them.
        for (service, l) in &passed {
            let addr = l.local_addr().map(|a| a.to_string()).unwrap_or_default();
            log::info!("event=listen service={} address={addr} source=socket-activation", service.name());
        }
        listeners = passed;
    } else {
        for (service, addrs) in super::listen_table(&config) {
            for addr in addrs {
                let l = super::listen::bind(*addr)
                    .map_err(|e| format!("{}.listen = {addr}: cannot listen: {e}", service.name()))?;
                listeners.push((service, l));
            }
        }
    }
    if let Some(p) = &config.pid_file {
        std::fs::write(p, format!("{}\n", std::process::id()))
            .map_err(|e| format!("pid_file {}: {e}", p.display()))?;
    }
    let super::Privileged { tls, helper } = super::keys_helper_and_drop(&config)?;

    let resolver = Arc::new(super::resolver(&config, &helper)?);
    let queue = Arc::new(
        Queue::open(&config.data_dir).map_err(|e| format!("queue in {}: {e}", config.data_dir.display()))?,
    );
    // Only the server sweeps (inetd-mode sessions may be enqueueing right now: see Queue::sweep).
    match queue.sweep() {
        Ok(0) => {}
        Ok(n) => log::info!("event=queue_cleanup removed={n} reason=\"never acknowledged\""),
        Err(e) => log::warn!("event=queue_cleanup error=\"{e}\""),
    }
    let waker = Arc::new(Waker::bind(queue.dir()).map_err(|e| format!("queue wake socket: {e}"))?);
    let runner = Runner::new(
        Arc::clone(&config),
        Arc::clone(&queue),
        Arc::clone(&waker),
        Arc::clone(&resolver),
        helper.clone().map(|h| h as Arc<dyn crate::store::Privileged>),
    )?;
    Arc::new(runner).start()?;
    // Local submission (sendmail): held until the server stops, so a file in hand is finished.
    let _pickup = super::pickup::Pickup::start(Arc::clone(&config), Arc::clone(&queue), Arc::clone(&waker))?;
    // One limiter for the process: a reload gives it new limits, never a new table.
    let limiter = smtp::conn::Context::limiter(&config);
    let context = |config: &Arc<Config>, resolver: Arc<Resolver>| {
        smtp::conn::Context::new(
            Arc::clone(config),
            resolver,
            Arc::clone(&queue),
            Arc::clone(&waker),
            tls.clone(),
            helper.clone(),
            Arc::clone(&limiter),
        )
    };
    // Sessions take the context current when they start; SIGHUP replaces it (reload.rs).
    let current = Arc::new(RwLock::new(Arc::new(context(&config, resolver)?)));
    let registry = Arc::new(Registry::default());
    let pool = {
        let current = Arc::clone(&current);
        Pool::new(config.max_connections, move |job: Job| {
            let ctx = Arc::clone(&current.read().unwrap_or_else(|p| p.into_inner()));
            match job.service {
                Service::Pop3 | Service::Pop3s => crate::pop3::conn::run(job, &ctx),
                Service::Imap | Service::Imaps => crate::imap::conn::run(job, &ctx),
                _ => smtp::conn::run(job, &ctx),
            }
        })
    };
    let mut config = config;

    let mut poll = Poll::new().map_err(|e| format!("poll: {e}"))?;
    let mut stop_rx = signal_pipe(&poll, &[libc::SIGTERM, libc::SIGINT], STOP)?;
    let mut hup_rx = signal_pipe(&poll, &[libc::SIGHUP], HUP)?;
    for (i, (_, l)) in listeners.iter_mut().enumerate() {
        poll.registry().register(l, Token(i), Interest::READABLE).map_err(|e| e.to_string())?;
    }
    let bound: Vec<String> = listeners
        .iter()
        .map(|(s, l)| format!("{}:{}", s.name(), l.local_addr().map(|a| a.to_string()).unwrap_or_default()))
        .collect();
    log::info!(
        "event=start hostname={} listen={} pid={}",
        config.hostname,
        bound.join(","),
        std::process::id()
    );

    let mut events = Events::with_capacity(64);
    'run: loop {
        if let Err(e) = poll.poll(&mut events, None) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(format!("poll: {e}"));
        }
        for ev in events.iter() {
            if ev.token() == STOP {
                if drain(&mut stop_rx) {
                    break 'run;
                }
                continue;
            }
            if ev.token() == HUP {
                if drain(&mut hup_rx) {
                    // New connections get the new certificate; established ones keep theirs.
                    if let Some(t) = &tls {
                        match t.reload() {
                            Ok(()) => log::info!("event=sighup action=tls_reloaded"),
                            Err(e) => log::error!("event=sighup action=tls_reload_failed error=\"{e}\""),
                        }
                    }
                    match super::reload::reread(&config).and_then(|r| {
                        let resolver = Arc::new(super::resolver(&r.config, &helper)?);
                        Ok((context(&r.config, resolver)?, r))
                    }) {
                        Ok((ctx, r)) => {
                            *current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(ctx);
                            log::set_max_level(r.config.log_level);
                            config = r.config;
                            log::info!(
                                "event=sighup action=config_reloaded applied=\"{}\" need_restart=\"{}\"",
                                r.applied.join(" "),
                                r.need_restart.join(" ")
                            );
                        }
                        Err(e) => log::error!("event=sighup action=config_unchanged error=\"{e}\""),
                    }
                }
                continue;
            }
            let Some((service, listener)) = listeners.get(ev.token().0) else { continue };
            accept_all(*service, listener, &config, &registry, &pool);
        }
    }

    log::info!("event=shutdown active={} grace={}s", registry.len(), config.shutdown_timeout.as_secs());
    drop(listeners);
    registry.begin_shutdown();
    let deadline = Instant::now() + config.shutdown_timeout;
    while !registry.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    if !registry.is_empty() {
        log::warn!("event=shutdown_timeout abandoned={}", registry.len());
    }
    if let Some(p) = &config.pid_file {
        let _ = std::fs::remove_file(p);
    }
    log::info!("event=stop");
    Ok(())
}

/// A non-blocking socket pair whose read end becomes readable when one of
/// `signals` arrives (the handler only writes a byte: async-signal-safe).
fn signal_pipe(poll: &Poll, signals: &[libc::c_int], token: Token) -> Result<mio::net::UnixStream, String> {
    let err = |e: io::Error| format!("signal pipe: {e}");
    let (rx, tx) = UnixStream::pair().map_err(err)?;
    tx.set_nonblocking(true).map_err(err)?;
    rx.set_nonblocking(true).map_err(err)?;
    for &sig in signals {
        let tx = tx.try_clone().map_err(err)?;
        signal_hook::low_level::pipe::register(sig, tx).map_err(|e| format!("signal {sig}: {e}"))?;
    }
    let mut rx = mio::net::UnixStream::from_std(rx);
    poll.registry().register(&mut rx, token, Interest::READABLE).map_err(err)?;
    Ok(rx)
}

/// Empties a signal pipe; true when at least one signal was pending.
fn drain(rx: &mut mio::net::UnixStream) -> bool {
    let mut buf = [0u8; 64];
    let mut got = false;
    while let Ok(n) = rx.read(&mut buf) {
        if n == 0 {
            break;
        }
        got = true;
    }
    got
}

fn accept_all(
    service: Service,
    listener: &TcpListener,
    config: &Config,
    registry: &Arc<Registry>,
    pool: &Pool<Job>,
) {
    loop {
        let (stream, peer) = match listener.accept() {
            Ok(x) => x,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                // EMFILE and friends: log and let the next readiness event retry.
                log::warn!("event=accept_failed service={} error=\"{e}\"", service.name());
                return;
            }
        };
        let stream = TcpStream::from(OwnedFd::from(stream));
        // As Postfix exempts $mynetworks from its client limits, so are relay.networks.
        let per_ip = match in_networks(&config.relay_networks, peer.ip()) {
            true => usize::MAX,
            false => config.max_connections_per_ip,
        };
        let Some(slot) = registry.enter(peer.ip(), stream.try_clone().ok(), per_ip) else {
            log::warn!(
                "event=reject reason=per_ip_limit client={peer} limit={}",
                config.max_connections_per_ip
            );
            let reply = match service {
                Service::Pop3 | Service::Pop3s => {
                    b"-ERR [SYS/TEMP] Too many connections from your address\r\n".to_vec()
                }
                Service::Imap | Service::Imaps => {
                    b"* BYE [UNAVAILABLE] Too many connections from your address\r\n".to_vec()
                }
                _ => smtp::conn::too_many_from(&config.hostname),
            };
            refuse(stream, &reply);
            continue;
        };
        if let Err(job) = pool.try_submit(Job { stream: Transport::Tcp(stream), peer, service, slot }) {
            log::warn!("event=reject reason=busy client={peer} limit={}", config.max_connections);
            let Job { stream, slot, .. } = job;
            drop(slot);
            let reply = match service {
                Service::Pop3 | Service::Pop3s => crate::pop3::conn::busy(),
                Service::Imap | Service::Imaps => crate::imap::conn::busy(),
                _ => smtp::conn::busy(&config.hostname),
            };
            refuse(stream, &reply);
        }
    }
}

/// Best-effort goodbye on the still non-blocking socket, then close.
fn refuse(mut stream: impl Write, reply: &[u8]) {
    let _ = stream.write(reply);
}
