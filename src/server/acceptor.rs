//! The daemon: binds (or takes the service manager's sockets), drops privileges, starts the queue
//! runner and the sendmail pickup, then runs the event loop (eventloop.rs) over the listeners,
//! the signals and the connections. It accepts and applies the limits (`max_connections` with each
//! service's reserved share, `max_connections_per_ip`): a refused client gets the protocol's
//! "too busy" reply at once, never a hang. Near the limit it enters stress mode (shorter idle
//! timeouts) and logs it. SIGTERM/SIGINT stop accepting, tell waiting sessions goodbye and wait up
//! to `shutdown_timeout` for the busy ones; SIGHUP reloads the configuration and certificate.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::TcpListener;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};

use super::drivers::{self, Connection, Watcher};
use super::eventloop::{EventLoop, NOTIFY};
use super::{Limits, Refusal, Registry, Service, Slot};
use crate::config::{Config, in_networks};
use crate::local::Resolver;
use crate::queue::Queue;
use crate::queue::runner::Runner;
use crate::queue::wake::Waker;
use crate::server::context::Context;
use crate::transport::Transport;

const STOP: Token = Token(usize::MAX);
const HUP: Token = Token(usize::MAX - 1);

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
    let watcher: Option<Arc<dyn Watcher + Send>> = match super::notify::Notifier::new() {
        Ok(n) => Some(Arc::new(n)),
        Err(e) => {
            log::warn!(
                "event=inotify_unavailable error=\"{e}\" effect=\"IDLE looks for changes every second\""
            );
            None
        }
    };
    let mut lp = EventLoop::new(config.workers(), watcher.clone()).map_err(|e| format!("event loop: {e}"))?;
    // Web sessions outlive reloads; their in-process IMAP sessions start on this loop.
    let web = Arc::new(super::drivers::http::state::Web::new(Some(lp.spawner())));
    // One limiter for the process: a reload gives it new limits, never a new table.
    let limiter = Context::limiter(&config);
    let context = |config: &Arc<Config>, resolver: Arc<Resolver>| {
        Context::new(
            Arc::clone(config),
            resolver,
            Arc::clone(&queue),
            Arc::clone(&waker),
            tls.clone(),
            helper.clone(),
            Arc::clone(&limiter),
        )
        .map(|c| c.with_web(Arc::clone(&web)))
    };
    // Sessions take the context current when they start; SIGHUP replaces it (reload.rs).
    let mut current = Arc::new(context(&config, resolver)?);
    let registry = Arc::new(Registry::default());
    let mut config = config;
    raise_fd_limit(&config);

    let mut stop_rx = signal_pipe(&lp.poll, &[libc::SIGTERM, libc::SIGINT], STOP)?;
    let mut hup_rx = signal_pipe(&lp.poll, &[libc::SIGHUP], HUP)?;
    for (i, (_, l)) in listeners.iter_mut().enumerate() {
        lp.poll.registry().register(l, Token(i), Interest::READABLE).map_err(|e| e.to_string())?;
    }
    if let Some(w) = &watcher {
        lp.poll
            .registry()
            .register(&mut SourceFd(&w.fd()), NOTIFY, Interest::READABLE)
            .map_err(|e| format!("inotify: {e}"))?;
    }
    let bound: Vec<String> = listeners
        .iter()
        .map(|(s, l)| format!("{}:{}", s.name(), l.local_addr().map(|a| a.to_string()).unwrap_or_default()))
        .collect();
    log::info!(
        "event=start hostname={} listen={} pid={} workers={} max_connections={}",
        config.hostname,
        bound.join(","),
        std::process::id(),
        config.workers(),
        config.max_connections
    );

    let mut events = Events::with_capacity(256);
    let mut accept_paused: Option<Instant> = None;
    let mut grace: Option<Instant> = None;
    let mut stress = false;
    loop {
        if let Some(end) = grace
            && (lp.is_empty() || Instant::now() >= end)
        {
            break;
        }
        let timeout =
            [lp.next_timeout(), accept_paused.map(until), grace.map(until)].into_iter().flatten().min();
        super::eventloop::wait(&mut lp.poll, &mut events, timeout).map_err(|e| format!("poll: {e}"))?;
        for ev in events.iter() {
            match ev.token() {
                STOP => {
                    if drain(&mut stop_rx) && grace.is_none() {
                        log::info!(
                            "event=shutdown active={} grace={}s",
                            registry.len(),
                            config.shutdown_timeout.as_secs()
                        );
                        for (_, l) in listeners.iter_mut() {
                            let _ = lp.poll.registry().deregister(l);
                        }
                        listeners.clear();
                        grace = Some(Instant::now() + config.shutdown_timeout);
                        lp.shutdown();
                    }
                }
                HUP => {
                    if drain(&mut hup_rx) {
                        reload(&tls, &helper, &mut config, &mut current, &context);
                    }
                }
                t if t.0 < listeners.len() => {
                    if accept_paused.is_none() {
                        let limits = limits(&config);
                        let (service, listener) = &listeners[t.0];
                        let paused =
                            accept_all(*service, listener, &config, &limits, &registry, &current, &mut lp);
                        if paused {
                            accept_paused = Some(Instant::now() + ACCEPT_PAUSE);
                        }
                    }
                }
                t => {
                    lp.event(t);
                }
            }
        }
        lp.timers();
        if accept_paused.is_some_and(|t| Instant::now() >= t) {
            accept_paused = None;
            let limits = limits(&config);
            for (service, listener) in &listeners {
                if accept_all(*service, listener, &config, &limits, &registry, &current, &mut lp) {
                    accept_paused = Some(Instant::now() + ACCEPT_PAUSE);
                    break;
                }
            }
        }
        // Postfix's stress mode: near the limit, idle clients get less time. It starts at 80% and
        // ends below 60%, so a server hovering at the threshold does not flap (or fill the log).
        let used = registry.len() * 5;
        let now_stress =
            if stress { used >= config.max_connections * 3 } else { used >= config.max_connections * 4 };
        if now_stress != stress {
            stress = now_stress;
            lp.set_stress(stress);
            match stress {
                true => log::warn!(
                    "event=stress state=on connections={} limit={} idle_timeout={}s",
                    registry.len(),
                    config.max_connections,
                    config.stress_timeout.as_secs()
                ),
                false => log::info!("event=stress state=off connections={}", registry.len()),
            }
        }
    }
    if !lp.is_empty() {
        log::warn!("event=shutdown_timeout abandoned={}", lp.len());
    }
    if let Some(p) = &config.pid_file {
        let _ = std::fs::remove_file(p);
    }
    log::info!("event=stop");
    Ok(())
}

/// How long accepting pauses when the process is out of descriptors (EMFILE), so the listener's
/// backlog waits instead of the loop spinning.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

fn until(t: Instant) -> Duration {
    t.saturating_duration_since(Instant::now())
}

/// The connection limits of `config`.
fn limits(config: &Config) -> Limits {
    let reserved = [0, 1, 2, 3].map(|class| config.reserved(class));
    Limits { max: config.max_connections, per_ip: config.max_connections_per_ip, reserved }
}

/// Builds the sessions' context for a configuration.
type MakeContext<'a> = dyn Fn(&Arc<Config>, Arc<Resolver>) -> Result<Context, String> + 'a;

/// SIGHUP: new certificate and configuration for new connections; established ones keep theirs.
fn reload(
    tls: &Option<Arc<crate::tls::ServerTls>>,
    helper: &Option<Arc<super::helper::PasswordHelper>>,
    config: &mut Arc<Config>,
    current: &mut Arc<Context>,
    context: &MakeContext<'_>,
) {
    if let Some(t) = tls {
        match t.reload() {
            Ok(()) => log::info!("event=sighup action=tls_reloaded"),
            Err(e) => log::error!("event=sighup action=tls_reload_failed error=\"{e}\""),
        }
    }
    match super::reload::reread(config).and_then(|r| {
        let resolver = Arc::new(super::resolver(&r.config, helper)?);
        Ok((context(&r.config, resolver)?, r))
    }) {
        Ok((ctx, r)) => {
            *current = Arc::new(ctx);
            log::set_max_level(r.config.log_level);
            *config = r.config;
            log::info!(
                "event=sighup action=config_reloaded applied=\"{}\" need_restart=\"{}\"",
                r.applied.join(" "),
                r.need_restart.join(" ")
            );
        }
        Err(e) => log::error!("event=sighup action=config_unchanged error=\"{e}\""),
    }
}

/// Raises the descriptor limit so `max_connections` can be served (two descriptors each when a
/// session is relayed to a mail process), and says so when it cannot be.
fn raise_fd_limit(config: &Config) {
    let want = (config.max_connections as u64).saturating_mul(2).saturating_add(256);
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit with a valid rlimit struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return;
        }
        if lim.rlim_cur >= want {
            return;
        }
        let raised = libc::rlimit { rlim_cur: want, rlim_max: lim.rlim_max.max(want) };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
            return;
        }
        let capped = libc::rlimit { rlim_cur: lim.rlim_max, rlim_max: lim.rlim_max };
        let _ = libc::setrlimit(libc::RLIMIT_NOFILE, &capped);
        log::warn!(
            "event=fd_limit max_connections={} descriptors={} effect=\"accepting pauses when they run out\"",
            config.max_connections,
            lim.rlim_max
        );
    }
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

/// Accepts what the listener has; true when out of descriptors (pause accepting).
fn accept_all(
    service: Service,
    listener: &TcpListener,
    config: &Config,
    limits: &Limits,
    registry: &Arc<Registry>,
    ctx: &Arc<Context>,
    lp: &mut EventLoop,
) -> bool {
    loop {
        let (stream, peer) = match listener.accept() {
            Ok(x) => x,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                // EMFILE and friends: the backlog waits until descriptors are free again.
                log::warn!("event=accept_failed service={} error=\"{e}\"", service.name());
                return true;
            }
        };
        let stream = TcpStream::from(OwnedFd::from(stream));
        // As Postfix exempts $mynetworks from its client limits, so are relay.networks.
        let mut l = *limits;
        if in_networks(&config.relay_networks, peer.ip()) {
            l.per_ip = usize::MAX;
        }
        let slot = match registry.enter(peer.ip(), service.class(), &l) {
            Ok(slot) => slot,
            Err(why) => {
                let (reason, reply) = match why {
                    Refusal::PerIp => ("per_ip_limit", too_many_from(service, &config.hostname)),
                    Refusal::Full => ("busy", busy(service, &config.hostname)),
                };
                log::warn!(
                    "event=reject reason={reason} service={} client={peer} connections={}",
                    service.name(),
                    registry.len()
                );
                // On an implicit-TLS port a plaintext reply is noise to the client: just close.
                if !matches!(service, Service::Submissions | Service::Pop3s | Service::Imaps | Service::Https)
                {
                    refuse(stream, &reply);
                }
                continue;
            }
        };
        match prepare(&stream, service, config) {
            Ok(()) => lp.start(connection(Arc::clone(ctx), Transport::Tcp(stream), peer, service, slot)),
            Err(e) => log::info!("event=accept_failed client={peer} error=\"{e}\""),
        }
    }
}

/// An accepted socket for its driver: blocking, so a reply waits for a slow reader up to the
/// write timeout (reads never wait: see drivers/io.rs), and no Nagle delay (replies go whole).
fn prepare(stream: &TcpStream, service: Service, config: &Config) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    let _ = stream.set_nodelay(true);
    stream.set_write_timeout(Some(write_timeout(service, config)))
}

/// How long a reply may wait for a client that does not read.
pub fn write_timeout(service: Service, config: &Config) -> Duration {
    match service.class() {
        0 | 1 => config.smtp_timeout.min(WRITE_TIMEOUT),
        _ => WRITE_TIMEOUT,
    }
}

const WRITE_TIMEOUT: Duration = Duration::from_secs(60);

/// The driver of `service` for a new connection.
pub fn connection(
    ctx: Arc<Context>,
    stream: Transport,
    peer: SocketAddr,
    service: Service,
    slot: Slot,
) -> Box<dyn Connection> {
    match service {
        Service::Pop3 | Service::Pop3s => {
            Box::new(drivers::pop3::Pop3::new(ctx, stream, peer, service, slot))
        }
        Service::Imap | Service::Imaps => {
            Box::new(drivers::imap::Imap::new(ctx, stream, peer, service, slot))
        }
        Service::Http | Service::Https => {
            Box::new(drivers::http::Http::new(ctx, stream, peer, service, slot))
        }
        Service::ManageSieve => Box::new(drivers::managesieve::ManageSieve::new(ctx, stream, peer, slot)),
        _ => Box::new(drivers::smtp::Smtp::new(ctx, stream, peer, service, slot)),
    }
}

/// The protocol's answer to a client refused because the server is full.
fn busy(service: Service, hostname: &str) -> Vec<u8> {
    if service == Service::ManageSieve {
        return crate::managesieve::session::Session::busy();
    }
    match service.class() {
        2 => b"-ERR [SYS/TEMP] Server too busy, try again later\r\n".to_vec(),
        3 => b"* BYE [UNAVAILABLE] Server too busy, try again later\r\n".to_vec(),
        4 => drivers::http::refusal(503, "Server too busy, try again later"),
        _ => drivers::smtp::busy(hostname),
    }
}

fn too_many_from(service: Service, hostname: &str) -> Vec<u8> {
    if service == Service::ManageSieve {
        return b"BYE (TRYLATER) \"Too many connections from your address\"\r\n".to_vec();
    }
    match service.class() {
        2 => b"-ERR [SYS/TEMP] Too many connections from your address\r\n".to_vec(),
        3 => b"* BYE [UNAVAILABLE] Too many connections from your address\r\n".to_vec(),
        4 => drivers::http::refusal(429, "Too many connections from your address"),
        _ => drivers::smtp::too_many_from(hostname),
    }
}

/// Best-effort goodbye on the still non-blocking socket, then close.
fn refuse(mut stream: impl Write, reply: &[u8]) {
    let _ = stream.write(reply);
}
