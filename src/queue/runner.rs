//! The queue runner: one scheduler thread picks due entries and hands each to
//! a delivery thread (at most `outbound.max_parallel`, at most
//! `outbound.per_destination` per domain). A delivery groups the pending
//! recipients by domain: local domains go to the mailbox store, others to
//! their mail exchangers (RFC 5321 5.1, see route.rs) or the smarthost.
//! A local recipient's alias expansion is delivered here too: mailboxes and
//! files all or none, commands between the two phases, and addresses it
//! forwards to added to the entry as new recipients, relayed in the same
//! attempt. Results are saved per recipient; when nothing is left to try the entry is
//! removed, and the sender gets one DSN (RFC 3464) listing every recipient
//! that failed. Log lines follow Postfix's `to= relay= delay= status=`.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use super::bounce::{self, DsnKind, Failure};
use super::route::{self, RouteError};
use super::schedule::Schedule;
use super::wake::{Wake, Waker};
use super::{Envelope, Queue, QueuedRcpt, RcptState};
use crate::config::Config;
use crate::dns;
use crate::local::{Delivery, Resolution, Resolver};
use crate::smtp::client::{self, ClientConfig, Outbound, RcptResult, SessionError};
use crate::store::{self, StoreOptions};

/// Stack of a delivery thread: DNS and a TLS handshake need more than a session.
const STACK_SIZE: usize = 256 * 1024;
/// The longest the scheduler sleeps without looking at the queue.
const IDLE_SCAN: Duration = Duration::from_secs(60);
/// How often the scheduler sweeps the queue for orphans (see [`Queue::sweep`]).
const SWEEP_EVERY: Duration = Duration::from_secs(60 * 60);

/// What delivery threads share.
pub struct Runner {
    config: Arc<Config>,
    queue: Arc<Queue>,
    waker: Arc<Waker>,
    schedule: Schedule,
    dns: dns::Resolver,
    resolver: Arc<Resolver>,
    store: StoreOptions,
    client: ClientConfig,
    smarthost_client: Option<ClientConfig>,
    busy: Mutex<Busy>,
}

#[derive(Default)]
struct Busy {
    ids: HashSet<String>,
    per_domain: HashMap<String, usize>,
}

impl Runner {
    pub fn new(
        config: Arc<Config>,
        queue: Arc<Queue>,
        waker: Arc<Waker>,
        resolver: Arc<Resolver>,
        privileged: Option<Arc<dyn crate::store::Privileged>>,
    ) -> Result<Runner, String> {
        let dns = dns::Resolver::from_system(&config.dns_servers)?;
        let (client, smarthost_client) = route::client_configs(&config)?;
        Ok(Runner {
            schedule: Schedule {
                min_backoff: config.queue_min_backoff,
                max_backoff: config.queue_max_backoff,
                lifetime: config.queue_lifetime,
                delay_warning: config.queue_delay_warning,
            },
            store: StoreOptions { lock_timeout: config.mbox_lock_timeout, privileged },
            config,
            queue,
            waker,
            dns,
            resolver,
            client,
            smarthost_client,
            busy: Mutex::new(Busy::default()),
        })
    }

    fn busy(&self) -> MutexGuard<'_, Busy> {
        self.busy.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts the scheduler thread.
    pub fn start(self: Arc<Self>) -> Result<(), String> {
        std::thread::Builder::new()
            .name("queue".into())
            .stack_size(STACK_SIZE)
            .spawn(move || self.schedule_loop())
            .map(|_| ())
            .map_err(|e| format!("queue runner: {e}"))
    }

    fn schedule_loop(self: Arc<Self>) {
        let mut sleep = Duration::ZERO;
        // The server swept at start; orphans of a crash since then go once they are old.
        let mut last_sweep = std::time::Instant::now();
        loop {
            if let Some(w) = self.waker.wait(sleep) {
                log::debug!("event=queue_wake reason={}", wake_name(&w));
            }
            if last_sweep.elapsed() >= SWEEP_EVERY {
                last_sweep = std::time::Instant::now();
                match self.queue.sweep() {
                    Ok(0) => {}
                    Ok(n) => log::info!("event=queue_cleanup removed={n} reason=\"never acknowledged\""),
                    Err(e) => log::warn!("event=queue_cleanup error=\"{e}\""),
                }
            }
            sleep = self.scan();
        }
    }

    /// Starts every due entry there is room for; returns how long to sleep.
    fn scan(self: &Arc<Self>) -> Duration {
        let entries = match self.queue.list() {
            Ok(e) => e,
            Err(e) => {
                log::error!("event=queue_scan_failed error=\"{e}\"");
                return Duration::from_secs(10);
            }
        };
        let now = SystemTime::now();
        let mut next = now + IDLE_SCAN;
        for env in entries {
            if env.next_attempt > now {
                next = next.min(env.next_attempt);
                continue;
            }
            let domain = first_pending_domain(&env);
            {
                let mut b = self.busy();
                if b.ids.contains(&env.id) {
                    continue;
                }
                let per = b.per_domain.get(&domain).copied().unwrap_or(0);
                if b.ids.len() >= self.config.outbound_max_parallel
                    || per >= self.config.outbound_per_destination
                {
                    // Retried when a delivery ends (it wakes the scheduler).
                    continue;
                }
                b.ids.insert(env.id.clone());
                *b.per_domain.entry(domain.clone()).or_default() += 1;
            }
            let me = Arc::clone(self);
            let id = env.id.clone();
            let spawned = std::thread::Builder::new().name("delivery".into()).stack_size(STACK_SIZE).spawn({
                let domain = domain.clone();
                move || {
                    me.attempt(&id);
                    me.release(&id, &domain);
                }
            });
            if let Err(e) = spawned {
                log::error!("id={} event=thread_spawn_failed error=\"{e}\"", env.id);
                self.release(&env.id, &domain);
                return Duration::from_secs(5);
            }
        }
        next.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO)
    }

    fn release(&self, id: &str, domain: &str) {
        {
            let mut b = self.busy();
            b.ids.remove(id);
            if let Some(n) = b.per_domain.get_mut(domain) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    b.per_domain.remove(domain);
                }
            }
        }
        self.waker.wake(Wake::Flush(None));
    }

    /// One delivery attempt of one queue entry.
    fn attempt(&self, id: &str) {
        let mut env = match self.queue.load(id) {
            Ok(Some(e)) => e,
            Ok(None) => return, // delivered or deleted meanwhile
            Err(e) => {
                log::error!("id={id} event=queue_load_failed error=\"{e}\"");
                return;
            }
        };
        // Two rounds: the second relays the addresses local aliases forwarded to in the first.
        let mut start = 0;
        for _round in 0..2 {
            let end = env.recipients.len();
            let mut groups: Vec<(String, Vec<usize>)> = Vec::new();
            for (i, r) in env.recipients.iter().enumerate().take(end).skip(start) {
                if matches!(r.state, RcptState::Pending | RcptState::Deferred { .. }) {
                    let d = domain_of(&r.addr);
                    match groups.iter_mut().find(|(g, _)| *g == d) {
                        Some((_, v)) => v.push(i),
                        None => groups.push((d, vec![i])),
                    }
                }
            }
            for (domain, idxs) in &groups {
                if self.config.is_local_domain(domain) {
                    self.deliver_local(&mut env, idxs);
                } else {
                    self.deliver_remote(&mut env, domain, idxs);
                }
            }
            if env.recipients.len() == end {
                break;
            }
            start = end;
        }
        self.finish(env);
    }

    fn deliver_local(&self, env: &mut Envelope, idxs: &[usize]) {
        let path = self.queue.message_path(&env.id);
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) => {
                let why = format!("cannot open queued message: {e}");
                for &i in idxs {
                    self.set(env, i, "local", RcptState::Deferred { reply: why.clone() });
                }
                return;
            }
        };
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        let sender = env.sender.clone();
        let msg = store::Message { path: &path, file: &file, sender: &sender, arrival: env.arrival, size };
        for &i in idxs {
            let addr = env.recipients[i].addr.clone();
            let (local, domain) = addr.rsplit_once('@').unwrap_or((addr.as_str(), ""));
            let state = match self.resolver.resolve(local, domain) {
                Resolution::Deliver(d) => self.deliver_expansion(env, &addr, d, &msg),
                Resolution::Unknown | Resolution::NotLocal => {
                    RcptState::Bounced { reply: "user unknown".into(), status: "5.1.1".into() }
                }
                Resolution::Perm(m) => RcptState::Bounced { reply: m, status: "5.1.1".into() },
                Resolution::Temp(m) => RcptState::Deferred { reply: m },
            };
            self.set(env, i, "local", state);
        }
    }

    /// Delivers everything one local recipient expands to (see local.rs): mailboxes and files
    /// prepared, then the commands run, then all committed, or all aborted when a command fails
    /// temporarily (the recipient is retried: commands that had succeeded run again, mailboxes
    /// never get a second copy). A command or file that fails for good bounces alone: the
    /// recipient counts as delivered when anything else got it, and an extra bounced entry carries
    /// the failure into the DSN. Forwarded addresses become new recipients of this entry.
    fn deliver_expansion(
        &self,
        env: &mut Envelope,
        addr: &str,
        d: Delivery,
        msg: &store::Message,
    ) -> RcptState {
        let mut dests: Vec<store::Dest> = d
            .mailboxes
            .into_iter()
            .map(|m| store::Dest {
                kind: m.kind,
                path: m.path,
                owner: m.uid.zip(m.gid).map(|(uid, gid)| store::Owner { uid, gid }),
                account: Some(m.account),
            })
            .collect();
        let mut failed: Vec<String> = Vec::new();
        let mut done: Vec<String> = Vec::new();
        for f in &d.files {
            match store::file::dest(&f.path, Some(f.run_as.owner())) {
                Ok(Some(dest)) => dests.push(dest),
                Ok(None) => done.push(format!("discarded to {}", f.path.display())),
                Err(e) => failed.push(e.message),
            }
        }
        let pipes = &d.pipes;
        let id = env.id.clone();
        let mut ran: Vec<String> = Vec::new();
        let result = store::deliver_all_then(&dests, msg, &self.store, || {
            for p in pipes {
                let pipe = store::pipe::Pipe {
                    command: &p.command,
                    owner: p.run_as.owner(),
                    user: &p.run_as.user,
                    home: &p.run_as.home,
                    recipient: &p.recipient,
                    time_limit: store::pipe::TIME_LIMIT,
                };
                match store::pipe::deliver(&pipe, msg) {
                    Ok(()) => {
                        log::info!(
                            "id={id} to=<{addr}> relay=local command=\"|{}\" user={} status=sent",
                            p.command,
                            p.run_as.user
                        );
                        ran.push(format!("piped to |{}", p.command));
                    }
                    Err(e) if e.permanent => failed.push(e.message),
                    Err(e) => return Err(e),
                }
            }
            Ok(())
        });
        let at = match result {
            Ok(at) => at,
            Err((_, e)) if e.permanent => {
                return RcptState::Bounced {
                    reply: format!("mailbox unavailable: {}", e.message),
                    status: "5.2.0".into(),
                };
            }
            Err((_, e)) => {
                return RcptState::Deferred { reply: format!("mailbox unavailable: {}", e.message) };
            }
        };
        done.extend(at.iter().map(|p| format!("delivered to {}", p.display())));
        done.extend(ran);
        for a in d.forwards {
            if !env.recipients.iter().any(|r| r.state.is_open() && r.addr.eq_ignore_ascii_case(&a)) {
                log::info!("id={} to=<{a}> orig_to=<{addr}> event=forwarded", env.id);
                env.recipients.push(QueuedRcpt { addr: a.clone(), state: RcptState::Pending });
            }
            done.push(format!("forwarded to <{a}>"));
        }
        if failed.is_empty() {
            return RcptState::Sent { relay: "local".into(), reply: done.join("; ") };
        }
        let failure = RcptState::Bounced { reply: failed.join("; "), status: "5.3.0".into() };
        if done.is_empty() {
            return failure;
        }
        let i = env.recipients.len();
        env.recipients.push(QueuedRcpt { addr: addr.to_string(), state: RcptState::Pending });
        self.set(env, i, "local", failure);
        RcptState::Sent { relay: "local".into(), reply: done.join("; ") }
    }

    fn deliver_remote(&self, env: &mut Envelope, domain: &str, idxs: &[usize]) {
        let hops = match route::hops(&self.config, &self.dns, domain) {
            Ok(h) => h,
            Err(RouteError::Bounce { status, reply }) => {
                for &i in idxs {
                    self.set(
                        env,
                        i,
                        "none",
                        RcptState::Bounced { reply: reply.clone(), status: status.clone() },
                    );
                }
                return;
            }
            Err(RouteError::Defer(reply)) => {
                for &i in idxs {
                    self.set(env, i, "none", RcptState::Deferred { reply: reply.clone() });
                }
                return;
            }
        };
        let rcpts: Vec<String> = idxs.iter().map(|&i| env.recipients[i].addr.clone()).collect();
        let cfg = match (&self.smarthost_client, self.config.relay_smarthost.is_some()) {
            (Some(c), true) => c,
            _ => &self.client,
        };
        let mut last = format!("no mail exchanger of {domain} could be reached");
        for hop in &hops {
            let mut body = match self.open_body(env) {
                Ok(b) => b,
                Err(e) => {
                    last = format!("cannot read queued message: {e}");
                    break;
                }
            };
            let size = body.1;
            let out = Outbound { sender: &env.sender, recipients: &rcpts, size, eight_bit: env.eight_bit };
            let addr = SocketAddr::new(hop.ip, hop.port);
            match client::send(addr, &hop.host, cfg, &out, &mut body.0) {
                Ok(attempt) => {
                    let relay = attempt.relay.clone();
                    for (k, &i) in idxs.iter().enumerate() {
                        let state = match attempt.results.get(k) {
                            Some(RcptResult::Accepted) => {
                                RcptState::Sent { relay: relay.clone(), reply: attempt.reply.clone() }
                            }
                            Some(RcptResult::Failed { permanent: true, reply }) => RcptState::Bounced {
                                reply: format!("host {relay} said: {reply}"),
                                status: status_of(reply, '5'),
                            },
                            Some(RcptResult::Failed { permanent: false, reply }) => {
                                RcptState::Deferred { reply: format!("host {relay} said: {reply}") }
                            }
                            None => RcptState::Deferred { reply: "no answer for this recipient".into() },
                        };
                        self.set(env, i, &relay, state);
                    }
                    return;
                }
                Err(SessionError::Perm(e)) => {
                    for &i in idxs {
                        let status = status_of(&e, '5');
                        self.set(env, i, &hop.label(), RcptState::Bounced { reply: e.clone(), status });
                    }
                    return;
                }
                Err(SessionError::Temp(e)) => {
                    // RFC 5321 5.1: a host that is down or answers 4xx: try the next one.
                    log::info!("id={} relay={} event=try_next reason=\"{e}\"", env.id, hop.label());
                    last = e;
                }
            }
        }
        for &i in idxs {
            self.set(env, i, "none", RcptState::Deferred { reply: last.clone() });
        }
    }

    /// The queued message from its first byte to relay (after Return-Path).
    fn open_body(&self, env: &Envelope) -> std::io::Result<(std::io::Take<File>, u64)> {
        let mut f = File::open(self.queue.message_path(&env.id))?;
        let len = f.metadata()?.len();
        f.seek(SeekFrom::Start(env.body_offset.min(len)))?;
        let size = len.saturating_sub(env.body_offset);
        Ok((f.take(size), size))
    }

    /// Records one recipient's result and logs it as Postfix users expect.
    fn set(&self, env: &mut Envelope, i: usize, relay: &str, state: RcptState) {
        let delay = SystemTime::now().duration_since(env.arrival).unwrap_or_default().as_secs_f64();
        let Some(r) = env.recipients.get_mut(i) else { return };
        let (status, text) = match &state {
            RcptState::Sent { reply, .. } => ("sent", reply.as_str()),
            RcptState::Bounced { reply, .. } => ("bounced", reply.as_str()),
            RcptState::Deferred { reply } => ("deferred", reply.as_str()),
            RcptState::Pending => ("pending", ""),
        };
        log::info!("id={} to=<{}> relay={relay} delay={delay:.1} status={status} ({text})", env.id, r.addr);
        r.state = state;
    }

    /// Saves the entry after an attempt, or ends it: bounces, expiry, warnings.
    fn finish(&self, mut env: Envelope) {
        let now = SystemTime::now();
        let open =
            env.recipients.iter().any(|r| matches!(r.state, RcptState::Pending | RcptState::Deferred { .. }));
        env.attempts += 1;
        if open && self.schedule.expired(&env, now) {
            let attempts = env.attempts;
            for r in env.recipients.iter_mut() {
                let reply = match &r.state {
                    RcptState::Deferred { reply } => {
                        format!("message expired after {attempts} attempts: {reply}")
                    }
                    RcptState::Pending => "message expired".to_string(),
                    _ => continue,
                };
                log::info!("id={} to=<{}> status=expired ({reply})", env.id, r.addr);
                r.state = RcptState::Bounced { reply, status: "4.4.7".into() };
            }
        } else if open {
            if self.schedule.warn_due(&env, now) && !env.warned {
                self.notify(&env, DsnKind::Delayed);
                env.warned = true;
            }
            env.next_attempt = self.schedule.next_attempt(&env, now);
            if let Err(e) = self.queue.save(&env) {
                log::error!("id={} event=queue_save_failed error=\"{e}\"", env.id);
            }
            return;
        }
        self.notify(&env, DsnKind::Failed);
        match self.queue.remove(&env.id) {
            Ok(()) => log::info!("id={} event=removed", env.id),
            Err(e) => log::error!("id={} event=queue_remove_failed error=\"{e}\"", env.id),
        }
    }

    /// Sends the sender a DSN for the failed (or, for a warning, delayed) recipients.
    fn notify(&self, env: &Envelope, kind: DsnKind) {
        let failures: Vec<Failure> = env
            .recipients
            .iter()
            .filter_map(|r| match (&r.state, &kind) {
                (RcptState::Bounced { reply, status }, DsnKind::Failed) => Some(failure(r, reply, status)),
                (RcptState::Deferred { reply }, DsnKind::Delayed) => Some(failure(r, reply, "4.0.0")),
                (RcptState::Pending, DsnKind::Delayed) => Some(failure(r, "not yet delivered", "4.0.0")),
                _ => None,
            })
            .collect();
        if failures.is_empty() {
            return;
        }
        let dsn = match File::open(self.queue.message_path(&env.id)).and_then(|mut f| {
            f.seek(SeekFrom::Start(env.body_offset))?;
            bounce::build_dsn(&self.config.hostname, env, &failures, kind, &mut f)
        }) {
            Ok(Some(d)) => d,
            Ok(None) => return, // null sender: a bounce is never bounced
            Err(e) => {
                log::error!("id={} event=dsn_failed error=\"{e}\"", env.id);
                return;
            }
        };
        match inject(&self.queue, &self.config, &dsn, &env.sender) {
            Ok(id) => {
                log::info!(
                    "id={} event=dsn dsn_id={id} to=<{}> kind={}",
                    env.id,
                    env.sender,
                    kind_name(&kind)
                );
                self.waker.wake(Wake::NewMail(id));
            }
            Err(e) => log::error!("id={} event=dsn_enqueue_failed error=\"{e}\"", env.id),
        }
    }
}

/// Queues a message made here (a DSN) from the null sender to `to`.
pub fn inject(queue: &Queue, config: &Config, message: &[u8], to: &str) -> std::io::Result<String> {
    let id = crate::spool::new_queue_id();
    let return_path = "Return-Path: <>\n";
    let mut file = crate::spool::Incoming::create(&config.data_dir, &id)?;
    file.write(return_path.as_bytes())?;
    file.write(message)?;
    file.finish()?;
    let now = SystemTime::now();
    let env = Envelope {
        id: id.clone(),
        sender: String::new(),
        recipients: vec![QueuedRcpt { addr: to.to_string(), state: RcptState::Pending }],
        arrival: now,
        attempts: 0,
        next_attempt: now,
        body_offset: return_path.len() as u64,
        smtputf8: !to.is_ascii(),
        eight_bit: !message.is_ascii(),
        warned: false,
    };
    queue.enqueue(file.path(), &env)?;
    Ok(id)
}

fn failure(r: &QueuedRcpt, reply: &str, status: &str) -> Failure {
    let remote_mta = reply.strip_prefix("host ").and_then(|s| s.split_once('[')).map(|(h, _)| h.to_string());
    Failure { rcpt: r.addr.clone(), status: status.to_string(), reply: reply.to_string(), remote_mta }
}

fn kind_name(k: &DsnKind) -> &'static str {
    match k {
        DsnKind::Failed => "failed",
        DsnKind::Delayed => "delayed",
    }
}

fn wake_name(w: &Wake) -> &'static str {
    match w {
        Wake::NewMail(_) => "new_mail",
        Wake::Flush(_) => "flush",
    }
}

fn domain_of(addr: &str) -> String {
    addr.rsplit_once('@').map(|(_, d)| d.to_ascii_lowercase()).unwrap_or_default()
}

fn first_pending_domain(env: &Envelope) -> String {
    env.recipients
        .iter()
        .find(|r| matches!(r.state, RcptState::Pending | RcptState::Deferred { .. }))
        .map(|r| domain_of(&r.addr))
        .unwrap_or_default()
}

/// The enhanced status code in a reply ("550 5.1.1 ..." -> "5.1.1"), else
/// `class`.0.0 (RFC 3463).
pub fn status_of(reply: &str, class: char) -> String {
    for word in reply.split_whitespace().take(8) {
        let parts: Vec<&str> = word.split('.').collect();
        if parts.len() == 3
            && matches!(parts[0], "2" | "4" | "5")
            && parts[1..]
                .iter()
                .all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()))
        {
            return word.to_string();
        }
    }
    format!("{class}.0.0")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes_from_replies() {
        assert_eq!(status_of("host mx[1.2.3.4] said: 550 5.1.1 <a@b>: unknown", '5'), "5.1.1");
        assert_eq!(status_of("550 no such user", '5'), "5.0.0");
        assert_eq!(status_of("connect: refused", '4'), "4.0.0");
    }
}
