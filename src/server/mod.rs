//! The server process: listeners, the mio acceptor, the worker pool, the
//! connection registry (per-IP limits, graceful shutdown) and start-up order
//! (bind, pid file, spool, privileges, then threads).

pub mod acceptor;
pub mod activation;
pub mod helper;
pub mod inetd;
pub mod listen;
pub mod mailproc;
pub mod pickup;
pub mod pool;
pub mod privs;
pub mod relay;
pub mod reload;

use std::collections::HashMap;
use std::net::{IpAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::config::Config;

/// What a listener serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    Smtp,
    Submission,
    /// Submission over implicit TLS (RFC 8314).
    Submissions,
    Pop3,
    /// POP3 over implicit TLS (RFC 8314).
    Pop3s,
    Imap,
    /// IMAP over implicit TLS (RFC 8314).
    Imaps,
}

impl Service {
    pub fn name(self) -> &'static str {
        match self {
            Service::Smtp => "smtp",
            Service::Submission => "submission",
            Service::Submissions => "submissions",
            Service::Pop3 => "pop3",
            Service::Pop3s => "pop3s",
            Service::Imap => "imap",
            Service::Imaps => "imaps",
        }
    }
}

/// Each service with the addresses `*.listen` gives it, in one order for binding, socket activation
/// and the log.
pub fn listen_table(config: &Config) -> [(Service, &[std::net::SocketAddr]); 7] {
    [
        (Service::Smtp, &config.smtp_listen),
        (Service::Submission, &config.submission_listen),
        (Service::Submissions, &config.submissions_listen),
        (Service::Pop3, &config.pop3_listen),
        (Service::Pop3s, &config.pop3s_listen),
        (Service::Imap, &config.imap_listen),
        (Service::Imaps, &config.imaps_listen),
    ]
}

/// What is done while still root, in DESIGN.md's order, for the daemon and for inetd mode alike:
/// read the TLS keys (often root's only), fork the privileged helper when system users need it (no
/// thread exists yet), then drop to `user`. The caller has bound its sockets before.
pub struct Privileged {
    pub tls: Option<Arc<crate::tls::ServerTls>>,
    pub helper: Option<Arc<helper::PasswordHelper>>,
}

pub fn keys_helper_and_drop(config: &Arc<Config>) -> Result<Privileged, String> {
    let tls = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => Some(Arc::new(crate::tls::ServerTls::load(cert, key)?)),
        _ => None,
    };
    // System users' passwords are in /etc/shadow and their mailboxes are theirs: a helper keeps
    // root for those two jobs when the server drops it.
    let helper = match (privs::is_root(), &config.user, &config.users) {
        (true, Some(_), crate::config::UsersSpec::System) => {
            Some(Arc::new(helper::PasswordHelper::spawn(config)?))
        }
        _ => None,
    };
    privs::drop_if_configured(config)?;
    Ok(Privileged { tls, helper })
}

/// The recipient resolver of a server: users' ~/.forward files are read by the helper when there is
/// one (the server, no longer root, cannot read them as their owners).
pub fn resolver(
    config: &Config,
    helper: &Option<Arc<helper::PasswordHelper>>,
) -> Result<crate::local::Resolver, String> {
    let reader =
        helper.clone().map(|h| crate::local::ForwardReader(Arc::new(move |user: &str| h.read_forward(user))));
    Ok(crate::local::Resolver::new(crate::local::ResolverConfig::from_config(config))?
        .with_forward_reader(reader))
}

/// Every live connection, so the acceptor can enforce per-IP limits and wake
/// idle sessions at shutdown.
#[derive(Default)]
pub struct Registry {
    conns: Mutex<HashMap<u64, Entry>>,
    next: AtomicU64,
    shutdown: AtomicBool,
}

struct Entry {
    ip: IpAddr,
    stream: Option<TcpStream>,
    idle: Arc<AtomicBool>,
}

/// A connection's place in the registry; leaving it (drop) frees the slot.
pub struct Slot {
    id: u64,
    reg: Arc<Registry>,
    idle: Arc<AtomicBool>,
}

impl Registry {
    fn lock(&self) -> MutexGuard<'_, HashMap<u64, Entry>> {
        self.conns.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a connection unless `ip` already has `per_ip` of them.
    pub fn enter(self: &Arc<Self>, ip: IpAddr, stream: Option<TcpStream>, per_ip: usize) -> Option<Slot> {
        let mut m = self.lock();
        if m.values().filter(|e| e.ip == ip).count() >= per_ip {
            return None;
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let idle = Arc::new(AtomicBool::new(false));
        m.insert(id, Entry { ip, stream, idle: Arc::clone(&idle) });
        Some(Slot { id, reg: Arc::clone(self), idle })
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn shutting_down(&self) -> bool {
        self.shutdown.load(Ordering::SeqCst)
    }

    /// Starts the shutdown: sessions waiting for a command are woken (their
    /// read ends) and say goodbye; sessions inside a transaction finish it first.
    pub fn begin_shutdown(&self) {
        self.shutdown.store(true, Ordering::SeqCst);
        for e in self.lock().values() {
            if let (true, Some(s)) = (e.idle.load(Ordering::SeqCst), &e.stream) {
                let _ = s.shutdown(std::net::Shutdown::Read);
            }
        }
    }
}

impl Slot {
    /// Marks the session idle (waiting for a command outside a transaction)
    /// or busy. Returns true when the server is shutting down and the
    /// session is idle, i.e. it should say goodbye now instead of reading.
    pub fn set_idle(&self, idle: bool) -> bool {
        self.idle.store(idle, Ordering::SeqCst);
        idle && self.reg.shutting_down()
    }

    pub fn shutting_down(&self) -> bool {
        self.reg.shutting_down()
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.reg.lock().remove(&self.id);
    }
}

/// Runs the server until SIGTERM/SIGINT and the end of the grace period.
pub fn serve(config: Arc<Config>) -> Result<(), String> {
    acceptor::run(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_ip_limit_and_release() {
        let reg = Arc::new(Registry::default());
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        let a = reg.enter(ip, None, 2).unwrap();
        let _b = reg.enter(ip, None, 2).unwrap();
        assert!(reg.enter(ip, None, 2).is_none());
        assert!(reg.enter(other, None, 2).is_some());
        drop(a);
        assert!(reg.enter(ip, None, 2).is_some());
    }

    #[test]
    fn idle_sessions_learn_of_shutdown() {
        let reg = Arc::new(Registry::default());
        let s = reg.enter("192.0.2.1".parse().unwrap(), None, 1).unwrap();
        assert!(!s.set_idle(true));
        reg.begin_shutdown();
        assert!(!s.set_idle(false), "a session in a transaction keeps going");
        assert!(s.set_idle(true));
    }
}
