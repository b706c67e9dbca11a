//! The server process: listeners, the mio acceptor, the worker pool, the
//! connection registry (per-IP limits, graceful shutdown) and start-up order
//! (bind, pid file, spool, privileges, then threads).

pub mod acceptor;
pub mod activation;
pub mod checks;
pub mod context;
pub mod drivers;
pub mod eventloop;
pub mod helper;
pub mod inetd;
pub mod listen;
pub mod mailproc;
pub mod notify;
pub mod pickup;
pub mod pool;
pub mod privs;
pub mod reload;

use std::collections::HashMap;
use std::net::IpAddr;
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
    /// The webmail and client setup over plain HTTP (loopback or behind a proxy).
    Http,
    /// The same over HTTPS.
    Https,
    /// ManageSieve (RFC 5804), port 4190.
    ManageSieve,
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
            Service::Http => "http",
            Service::Https => "https",
            Service::ManageSieve => "managesieve",
        }
    }
}

/// Each service with the addresses `*.listen` gives it, in one order for binding, socket activation
/// and the log.
pub fn listen_table(config: &Config) -> [(Service, &[std::net::SocketAddr]); 10] {
    [
        (Service::Smtp, &config.smtp_listen),
        (Service::Submission, &config.submission_listen),
        (Service::Submissions, &config.submissions_listen),
        (Service::Pop3, &config.pop3_listen),
        (Service::Pop3s, &config.pop3s_listen),
        (Service::Imap, &config.imap_listen),
        (Service::Imaps, &config.imaps_listen),
        (Service::Http, &config.web.listen),
        (Service::Https, &config.web.tls_listen),
        (Service::ManageSieve, &config.managesieve.listen),
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

impl Service {
    /// The class whose share of `max_connections` the service draws on: 0 SMTP intake,
    /// 1 submission (both ports), 2 POP3 (both), 3 IMAP (both); the web and ManageSieve are class 4,
    /// which keeps no share of its own.
    pub fn class(self) -> usize {
        match self {
            Service::Smtp => 0,
            Service::Submission | Service::Submissions => 1,
            Service::Pop3 | Service::Pop3s => 2,
            Service::Imap | Service::Imaps => 3,
            Service::Http | Service::Https | Service::ManageSieve => 4,
        }
    }
}

/// Connections counted in all, per service class and per client address, for the limits.
#[derive(Default)]
pub struct Registry {
    counts: Mutex<Counts>,
}

#[derive(Default)]
struct Counts {
    per_ip: HashMap<IpAddr, usize>,
    class: [usize; 4],
    total: usize,
}

/// Why [`Registry::enter`] refused a connection.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The client's address has `max_connections_per_ip` already.
    PerIp,
    /// The server, or what the other services' reserved shares leave of it, is full.
    Full,
}

/// What admits a connection: the limits of the configuration in force.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max: usize,
    pub per_ip: usize,
    /// Connections kept for each class (0 for a class with no listener).
    pub reserved: [usize; 4],
}

/// A connection's place in the registry; leaving it (drop) frees the slot.
pub struct Slot {
    reg: Arc<Registry>,
    ip: IpAddr,
    class: usize,
}

impl Registry {
    fn lock(&self) -> MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Admits a connection of `class` from `ip`: under the per-address limit, and under
    /// `max` once the other classes' unused reserved shares are set aside.
    pub fn enter(self: &Arc<Self>, ip: IpAddr, class: usize, limits: &Limits) -> Result<Slot, Refusal> {
        let mut c = self.lock();
        if c.per_ip.get(&ip).copied().unwrap_or(0) >= limits.per_ip {
            return Err(Refusal::PerIp);
        }
        let kept_for_others: usize =
            (0..4).filter(|&d| d != class).map(|d| limits.reserved[d].saturating_sub(c.class[d])).sum();
        if c.total + kept_for_others >= limits.max {
            return Err(Refusal::Full);
        }
        *c.per_ip.entry(ip).or_default() += 1;
        if let Some(n) = c.class.get_mut(class) {
            *n += 1;
        }
        c.total += 1;
        Ok(Slot { reg: Arc::clone(self), ip, class })
    }

    /// Connections in all.
    pub fn len(&self) -> usize {
        self.lock().total
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut c = self.reg.lock();
        if let Some(n) = c.per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                c.per_ip.remove(&self.ip);
            }
        }
        if let Some(n) = c.class.get_mut(self.class) {
            *n = n.saturating_sub(1);
        }
        c.total = c.total.saturating_sub(1);
    }
}

/// Runs the server until SIGTERM/SIGINT and the end of the grace period.
pub fn serve(config: Arc<Config>) -> Result<(), String> {
    acceptor::run(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max: usize, per_ip: usize, reserved: [usize; 4]) -> Limits {
        Limits { max, per_ip, reserved }
    }

    #[test]
    fn per_ip_limit_and_release() {
        let reg = Arc::new(Registry::default());
        let l = limits(100, 2, [0; 4]);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        let a = reg.enter(ip, 0, &l).unwrap();
        let _b = reg.enter(ip, 0, &l).unwrap();
        assert_eq!(reg.enter(ip, 0, &l).err(), Some(Refusal::PerIp));
        assert!(reg.enter(other, 0, &l).is_ok());
        drop(a);
        assert!(reg.enter(ip, 0, &l).is_ok());
    }

    #[test]
    fn reserved_shares_keep_room_for_each_class() {
        let reg = Arc::new(Registry::default());
        // 10 in all, 3 kept for IMAP (class 3) and 2 for SMTP (class 0).
        let l = limits(10, 100, [2, 0, 0, 3]);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let smtp: Vec<Slot> = (0..7).map(|_| reg.enter(ip, 0, &l).unwrap()).collect();
        assert_eq!(reg.enter(ip, 0, &l).err(), Some(Refusal::Full), "SMTP may not take IMAP's three");
        let imap: Vec<Slot> = (0..3).map(|_| reg.enter(ip, 3, &l).unwrap()).collect();
        assert_eq!(reg.enter(ip, 3, &l).err(), Some(Refusal::Full), "and now all ten are taken");
        drop(smtp);
        drop(imap);
        let imap: Vec<Slot> = (0..8).map(|_| reg.enter(ip, 3, &l).unwrap()).collect();
        assert_eq!(reg.enter(ip, 3, &l).err(), Some(Refusal::Full), "IMAP may not take SMTP's two");
        let smtp: Vec<Slot> = (0..2).map(|_| reg.enter(ip, 0, &l).unwrap()).collect();
        assert_eq!(reg.len(), 10);
        assert_eq!(reg.enter(ip, 0, &l).err(), Some(Refusal::Full));
        drop(smtp);
        drop(imap);
        assert_eq!(reg.len(), 0);
    }
}
