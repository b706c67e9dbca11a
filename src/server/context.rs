//! What every connection's driver shares and asks of the server: the configuration, each
//! service's session parameters, the recipient resolver, the user database for AUTH (RFC 4954)
//! with the brute-force limiter, sender ownership for submission (RFC 6409 6.1), the TLS
//! configuration, the queue, the privileged helper. One [`Context`] per configuration (SIGHUP
//! makes a new one, with the same limiter); one [`ConnBackend`] per connection run implements the
//! sessions' backends (SMTP's here, POP3's and IMAP's beside their drivers).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::addr::Address;
use crate::auth::limiter::{Limiter, Limits};
use crate::auth::sasl::{Credentials, Login, Mechanism, ScramHash, ScramKeys};
use crate::auth::{UserDb, scheme::Stored};
use crate::config::{Config, UsersSpec};
use crate::local::{Resolution, Resolver};
use crate::queue::Queue;
use crate::queue::wake::Waker;
use crate::server::Service;
use crate::server::helper::PasswordHelper;
use crate::smtp::session::{Backend, MailCheck, Params, RcptCheck};
use crate::store::StoreOptions;
use crate::tls::ServerTls;

/// What every SMTP session shares.
pub struct Context {
    pub(crate) config: Arc<Config>,
    smtp: Arc<Params>,
    submission: Arc<Params>,
    submissions: Arc<Params>,
    pub(crate) resolver: Arc<Resolver>,
    pub(crate) store: StoreOptions,
    pub(crate) queue: Arc<Queue>,
    pub(crate) waker: Arc<Waker>,
    pub(crate) tls: Option<Arc<ServerTls>>,
    /// The privileged helper, when the server dropped root for system users.
    pub(crate) helper: Option<Arc<PasswordHelper>>,
    /// The inbound checks' DNS and greylist.
    pub(crate) checks: crate::server::checks::Checks,
    users: DbCredentials,
    limiter: Arc<Limiter>,
    pop3: Arc<crate::pop3::session::Params>,
    pop3s: Arc<crate::pop3::session::Params>,
    imap: Arc<crate::imap::session::Params>,
    imaps: Arc<crate::imap::session::Params>,
    managesieve: Arc<crate::managesieve::session::Params>,
    /// The web sessions (the daemon's; none in inetd mode or a mail process).
    pub(crate) web: Option<Arc<crate::server::drivers::http::state::Web>>,
}

impl Context {
    /// The context with the process's web sessions (they outlive reloads, as the limiter does).
    pub fn with_web(mut self, web: Arc<crate::server::drivers::http::state::Web>) -> Context {
        self.web = Some(web);
        self
    }

    pub fn new(
        config: Arc<Config>,
        resolver: Arc<Resolver>,
        queue: Arc<Queue>,
        waker: Arc<Waker>,
        tls: Option<Arc<ServerTls>>,
        helper: Option<Arc<PasswordHelper>>,
        limiter: Arc<Limiter>,
    ) -> Result<Context, String> {
        // Only mechanisms the user database can serve: a crypt(3) hash only checks a cleartext password.
        let mechanisms: Vec<Mechanism> = config
            .auth_mechanisms
            .iter()
            .filter_map(|m| Mechanism::from_name(m))
            .filter(|m| !matches!(config.users, UsersSpec::System) || m.sends_cleartext())
            .collect();
        let base = Params {
            hostname: config.hostname.clone(),
            message_size_limit: config.message_size_limit,
            max_recipients: config.smtp_max_recipients,
            max_errors: config.smtp_max_errors,
            starttls: tls.is_some(),
            auth_mechanisms: Vec::new(),
            require_auth: false,
            min_free: config.spool_min_free,
            junk_limit: config.smtp_junk_command_limit,
        };
        let submission = Params { auth_mechanisms: mechanisms, require_auth: true, ..base.clone() };
        let submissions = Params { starttls: false, ..submission.clone() };
        let pop3 = crate::pop3::session::Params {
            hostname: config.hostname.clone(),
            max_errors: config.pop3_max_errors,
            stls: tls.is_some(),
            auth_mechanisms: submission.auth_mechanisms.clone(),
            apop: config.pop3_apop,
        };
        let pop3s = crate::pop3::session::Params { stls: false, ..pop3.clone() };
        let imap = crate::imap::session::Params {
            hostname: config.hostname.clone(),
            max_errors: config.imap_max_errors,
            starttls: tls.is_some(),
            auth_mechanisms: submission.auth_mechanisms.clone(),
            max_append: config.message_size_limit,
        };
        let imaps = crate::imap::session::Params { starttls: false, ..imap.clone() };
        let managesieve = crate::managesieve::session::Params {
            hostname: config.hostname.clone(),
            starttls: tls.is_some(),
            auth_mechanisms: submission.auth_mechanisms.clone(),
            max_errors: config.managesieve.max_errors,
            check: crate::managesieve::script_check(),
        };
        let users = DbCredentials {
            db: UserDb::open(&config.users)?,
            helper: helper.clone(),
            local_domains: config.local_domains.clone(),
        };
        // The counts stay; the limits are this configuration's.
        limiter.set_limits(limits(&config));
        let checks = crate::server::checks::Checks::new(&config)?;
        Ok(Context {
            checks,
            pop3: Arc::new(pop3),
            pop3s: Arc::new(pop3s),
            imap: Arc::new(imap),
            imaps: Arc::new(imaps),
            managesieve: Arc::new(managesieve),
            smtp: Arc::new(base),
            submission: Arc::new(submission),
            submissions: Arc::new(submissions),
            store: StoreOptions {
                lock_timeout: config.mbox_lock_timeout,
                privileged: helper.clone().map(|h| h as Arc<dyn crate::store::Privileged>),
            },
            users,
            limiter,
            config,
            resolver,
            queue,
            waker,
            tls,
            helper,
            web: None,
        })
    }

    /// The one limiter of a process (SIGHUP keeps it): its table is `data_dir/auth-failures`,
    /// shared with every other process on the data_dir (inetd mode runs one per connection).
    pub fn limiter(config: &Config) -> Arc<Limiter> {
        Arc::new(Limiter::shared(limits(config), config.data_dir.join("auth-failures")))
    }

    /// The SMTP session parameters of a listener's service.
    pub fn params(&self, service: Service) -> Arc<Params> {
        Arc::clone(match service {
            Service::Submission => &self.submission,
            Service::Submissions => &self.submissions,
            _ => &self.smtp,
        })
    }

    /// The IMAP session parameters of a listener's service.
    pub fn imap_params(&self, service: Service) -> Arc<crate::imap::session::Params> {
        Arc::clone(if service == Service::Imaps { &self.imaps } else { &self.imap })
    }

    /// The ManageSieve session parameters.
    pub fn managesieve_params(&self) -> Arc<crate::managesieve::session::Params> {
        Arc::clone(&self.managesieve)
    }

    /// The POP3 session parameters of a listener's service.
    pub fn pop3_params(&self, service: Service) -> Arc<crate::pop3::session::Params> {
        Arc::clone(if service == Service::Pop3s { &self.pop3s } else { &self.pop3 })
    }
}

fn limits(config: &Config) -> Limits {
    Limits {
        max_failures: config.auth_max_failures,
        window: config.auth_failure_window,
        block_time: config.auth_block_time,
    }
}

/// The session's view of the server, for one connection.
pub struct ConnBackend<'a> {
    pub ctx: &'a Context,
    pub ip: IpAddr,
    pub sid: &'a str,
    /// How long the last failed login's answer should be held back.
    pub delay: std::cell::Cell<Duration>,
}

impl Backend for ConnBackend<'_> {
    fn check_rcpt(&self, rcpt: &Address) -> RcptCheck {
        match self.ctx.resolver.resolve(rcpt.local(), rcpt.domain()) {
            Resolution::NotLocal => RcptCheck::NotLocal,
            Resolution::Unknown => RcptCheck::UnknownUser,
            Resolution::Deliver(_) => RcptCheck::Accept,
            Resolution::Temp(m) => RcptCheck::Temp(m),
            Resolution::Perm(m) => RcptCheck::Perm(m),
        }
    }

    fn spool_free(&self) -> Option<u64> {
        free_space(&self.ctx.config.data_dir)
    }

    fn check_mail(&self, sender: Option<&Address>, helo: &str) -> MailCheck {
        crate::server::checks::mail(self.ctx, self.sid, self.ip, sender, helo)
    }

    fn check_recipient(&self, sender: Option<&Address>, rcpt: &Address) -> Option<crate::smtp::reply::Reply> {
        crate::server::checks::recipient(self.ctx, self.sid, self.ip, sender, rcpt)
    }

    /// RFC 6409 6.1: a user sends as addresses that are theirs: delivered to
    /// their account (their own address, aliases that lead to them).
    fn sender_allowed(&self, user: &str, sender: Option<&Address>) -> bool {
        let Some(sender) = sender else { return true }; // the null sender: notifications
        if !self.ctx.config.auth_sender_check {
            return true;
        }
        match self.ctx.resolver.resolve(sender.local(), sender.domain()) {
            Resolution::Deliver(dests) => dests.iter().any(|d| same_user(&d.account, user)),
            _ => false,
        }
    }
}

/// The login machinery the three protocols share: the user database, the brute-force limiter.
impl Login for ConnBackend<'_> {
    fn credentials(&self) -> Option<&dyn Credentials> {
        Some(&self.ctx.users)
    }

    fn random(&self, buf: &mut [u8]) {
        fill_random(buf);
    }

    fn auth_failed(&self, _user: &str) {
        let v = self.ctx.limiter.failed(self.ip, SystemTime::now());
        log::warn!(
            "session={} event=auth_failed client={} failures={} blocked={}",
            self.sid,
            self.ip,
            v.failures,
            v.blocked
        );
        self.delay.set(v.delay);
    }

    fn auth_succeeded(&self, user: &str, mechanism: &str) {
        self.ctx.limiter.succeeded(self.ip);
        log::info!("session={} event=auth user={user} mechanism={mechanism} client={}", self.sid, self.ip);
    }

    fn auth_blocked(&self) -> bool {
        let blocked = self.ctx.limiter.blocked(self.ip, SystemTime::now());
        if blocked {
            log::warn!("session={} event=auth_refused reason=blocked client={}", self.sid, self.ip);
        }
        blocked
    }
}

/// Login names compare without case; a passwd-file user `alice@example.org`
/// is also `alice` when the file holds plain names.
fn same_user(account: &str, user: &str) -> bool {
    account.eq_ignore_ascii_case(user)
}

/// Random bytes from the kernel (getrandom(2)); a short read is retried.
pub fn fill_random(buf: &mut [u8]) {
    let mut done = 0;
    while done < buf.len() {
        // SAFETY: the pointer and length describe the unfilled part of `buf`.
        let n = unsafe { libc::getrandom(buf[done..].as_mut_ptr().cast(), buf.len() - done, 0) };
        if n > 0 {
            done += n as usize;
        } else if std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            // getrandom cannot fail on Linux >= 3.17 once the pool is initialised; never use a weak nonce.
            log::error!("event=getrandom_failed error=\"{}\"", std::io::Error::last_os_error());
            std::process::abort();
        }
    }
}

/// SASL's view of the user database.
struct DbCredentials {
    db: UserDb,
    /// Checks system users' passwords when the server itself is no longer root.
    helper: Option<Arc<PasswordHelper>>,
    local_domains: Vec<String>,
}

impl DbCredentials {
    fn secret(&self, user: &str) -> Result<Option<(String, Stored)>, String> {
        Ok(self.db.secret(user)?.map(|(account, stored)| (account.name, stored)))
    }

    /// A Unix login typed as a full address (`alice@example.org`, as phones
    /// do) is the login `alice` when the domain is one of ours.
    fn system_login<'u>(&self, user: &'u str) -> &'u str {
        match user.rsplit_once('@') {
            Some((local, domain)) if self.local_domains.iter().any(|d| d.eq_ignore_ascii_case(domain)) => {
                local
            }
            _ => user,
        }
    }
}

impl Credentials for DbCredentials {
    fn verify(&self, user: &str, password: &[u8]) -> Result<Option<String>, String> {
        if matches!(self.db, UserDb::System) {
            let login = self.system_login(user).to_ascii_lowercase();
            if let Some(helper) = &self.helper {
                let Some(account) = crate::auth::system::getpwnam(&login)? else { return Ok(None) };
                return Ok(helper.verify(&account.name, password)?.then_some(account.name));
            }
            return Ok(self.db.verify_password(&login, password)?.map(|a| a.name));
        }
        Ok(self.db.verify_password(user, password)?.map(|a| a.name))
    }

    fn cram_md5(&self, user: &str, challenge: &[u8]) -> Result<Option<(String, [u8; 16])>, String> {
        Ok(self.secret(user)?.and_then(|(name, s)| s.cram_md5(challenge).map(|d| (name, d))))
    }

    fn plaintext(&self, user: &str) -> Result<Option<(String, String)>, String> {
        Ok(self.secret(user)?.and_then(|(name, s)| s.plaintext().map(|p| (name, p.to_string()))))
    }

    fn scram(&self, user: &str, hash: ScramHash) -> Result<Option<(String, ScramKeys)>, String> {
        Ok(self.secret(user)?.and_then(|(name, s)| s.scram(hash).map(|k| (name, k))))
    }
}

/// Octets an unprivileged process may still write on the file system of `dir` (statvfs f_bavail).
pub fn free_space(dir: &std::path::Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: a zeroed statvfs is valid output space; the path is NUL-terminated.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    Some((st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
}
