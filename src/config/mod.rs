//! The configuration file (`key = value`, see buzon.conf(5)) parsed into one
//! immutable, typed [`Config`]. Errors carry `file:line`; unknown keys and bad
//! values are errors with a hint. Without a file, [`Config::embedded`] gives
//! the loopback-only default that `buzon serve` runs for a first try.

use std::collections::HashMap;
use std::fmt;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where recipients' accounts come from.
pub mod filters;
pub mod managesieve;
mod values;
pub mod web;

pub use filters::Filters;
pub use managesieve::ManageSieve;
use values::*;
pub use values::{
    Cidr, MailboxKind, MailboxTemplate, OutboundTls, Share, Smarthost, SmarthostTls, UsersSpec, in_networks,
    parse_duration, parse_size,
};
pub use web::Web;

#[derive(Clone, Debug)]
pub struct Config {
    /// The file it came from; `None` for the embedded default.
    pub source: Option<PathBuf>,
    pub hostname: String,
    pub data_dir: PathBuf,
    pub local_domains: Vec<String>,
    pub users: UsersSpec,
    pub mailbox: MailboxTemplate,
    pub aliases: Option<PathBuf>,
    pub alias_max_depth: usize,
    /// `aliases.allow_pipes`: deliver to `|command` targets of aliases, includes and ~/.forward.
    pub aliases_allow_pipes: bool,
    /// `aliases.allow_files`: deliver to `/path` targets (appended in mbox format).
    pub aliases_allow_files: bool,
    /// `aliases.pipe_user`: the Unix user commands and files of the aliases file run as (never root).
    pub aliases_pipe_user: String,
    pub smtp_listen: Vec<SocketAddr>,
    pub submission_listen: Vec<SocketAddr>,
    pub submissions_listen: Vec<SocketAddr>,
    pub pop3_listen: Vec<SocketAddr>,
    pub pop3s_listen: Vec<SocketAddr>,
    pub pop3_apop: bool,
    pub imap_listen: Vec<SocketAddr>,
    pub imaps_listen: Vec<SocketAddr>,
    /// Where a user's IMAP folders other than INBOX live when INBOX is an mbox (a Maildir++ root, a
    /// template like `mailbox`); `None`: `~/Maildir`. A Maildir INBOX holds its folders itself.
    pub imap_folders: Option<String>,
    /// RFC 3501 5.4: the autologout timer (at least 30 minutes), also the longest IDLE.
    pub imap_timeout: Duration,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub auth_mechanisms: Vec<String>,
    pub auth_max_failures: u32,
    pub auth_failure_window: Duration,
    pub auth_block_time: Duration,
    pub auth_sender_check: bool,
    pub relay_networks: Vec<Cidr>,
    pub auth_cleartext_networks: Vec<Cidr>,
    pub message_size_limit: u64,
    /// `spool.min_free`: free space data_dir's file system must keep; MAIL FROM is answered
    /// 452 4.3.1 below it (plus the declared SIZE), as Postfix's queue_minfree.
    pub spool_min_free: u64,
    /// Connections in all, parked ones included (default 4096).
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    /// Worker threads that run connections with work to do (0: four per CPU, at least four).
    pub workers: usize,
    /// Connections kept for each service class whatever the others hold: SMTP intake, submission
    /// (both ports), POP3 (both), IMAP (both); see [`Config::reserved`].
    pub reserved: [Share; 4],
    /// While connections fill more than 80% of `max_connections`, waits for a client's next command
    /// shrink to this (Postfix's stress mode).
    pub stress_timeout: Duration,
    /// IMAP and POP3 sessions must log in within this.
    pub login_timeout: Duration,
    pub smtp_junk_command_limit: usize,
    /// Octets a second a DATA or BDAT transfer must keep up, beyond `smtp.timeout` (0: no minimum).
    pub smtp_min_data_rate: u64,
    pub imap_max_errors: usize,
    pub pop3_max_errors: usize,
    /// RFC 1939 3: POP3's autologout timer (at least 10 minutes).
    pub pop3_timeout: Duration,
    pub smtp_max_recipients: usize,
    pub smtp_max_errors: usize,
    pub smtp_max_line_length: usize,
    pub smtp_timeout: Duration,
    pub mbox_lock_timeout: Duration,
    pub shutdown_timeout: Duration,
    pub user: Option<String>,
    pub pid_file: Option<PathBuf>,
    pub log_level: log::LevelFilter,
    /// Where log lines go: standard error, or the system log (facility mail).
    pub log_syslog: bool,
    pub dns_servers: Vec<SocketAddr>,
    pub outbound_port: u16,
    pub outbound_tls: OutboundTls,
    pub outbound_max_parallel: usize,
    pub outbound_per_destination: usize,
    pub relay_smarthost: Option<Smarthost>,
    pub relay_smarthost_auth: Option<PathBuf>,
    pub relay_smarthost_tls: SmarthostTls,
    pub queue_lifetime: Duration,
    pub queue_min_backoff: Duration,
    pub queue_max_backoff: Duration,
    pub queue_delay_warning: Option<Duration>,
    /// The inbound checks, content scanners and DKIM signing (config/filters.rs).
    pub filters: Filters,
    /// The webmail and client-setup listeners (config/web.rs).
    pub web: Web,
    /// The ManageSieve listener and script limits (config/managesieve.rs).
    pub managesieve: ManageSieve,
}

/// A configuration error: where, and what is wrong.
#[derive(Debug)]
pub struct ConfigError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "{}:{}: {}", self.file, self.line, self.message)
        } else {
            write!(f, "{}: {}", self.file, self.message)
        }
    }
}

/// Every key the file may set, in the order `check-config` prints them.
pub const KEYS: &[&str] = &[
    "hostname",
    "data_dir",
    "local_domains",
    "users",
    "mailbox",
    "aliases",
    "alias_max_depth",
    "aliases.allow_pipes",
    "aliases.allow_files",
    "aliases.pipe_user",
    "smtp.listen",
    "submission.listen",
    "submissions.listen",
    "pop3.listen",
    "pop3s.listen",
    "pop3.apop",
    "imap.listen",
    "imaps.listen",
    "imap.folders",
    "imap.timeout",
    "tls.cert",
    "tls.key",
    "dns.servers",
    "relay.networks",
    "auth.cleartext_networks",
    "message_size_limit",
    "spool.min_free",
    "max_connections",
    "max_connections_per_ip",
    "workers",
    "smtp.reserved_connections",
    "submission.reserved_connections",
    "pop3.reserved_connections",
    "imap.reserved_connections",
    "stress_timeout",
    "login_timeout",
    "smtp.junk_command_limit",
    "smtp.min_data_rate",
    "imap.max_errors",
    "pop3.max_errors",
    "pop3.timeout",
    "smtp.max_recipients",
    "smtp.max_errors",
    "smtp.max_line_length",
    "smtp.timeout",
    "mbox.lock_timeout",
    "shutdown_timeout",
    "user",
    "pid_file",
    "log_level",
    "log",
    "auth.mechanisms",
    "auth.max_failures",
    "auth.failure_window",
    "auth.block_time",
    "auth.sender_check",
    "outbound.port",
    "outbound.tls",
    "outbound.max_parallel",
    "outbound.per_destination",
    "relay.smarthost",
    "relay.smarthost_auth",
    "relay.smarthost_tls",
    "queue.lifetime",
    "queue.min_backoff",
    "queue.max_backoff",
    "queue.delay_warning",
];

/// Every key the file may set: [`KEYS`], then the Fighting spam keys ([`filters::KEYS`]).
pub fn all_keys() -> impl Iterator<Item = &'static str> {
    KEYS.iter().chain(filters::KEYS).chain(web::KEYS).chain(managesieve::KEYS).copied()
}

/// SASL mechanisms offered by default (DIGEST-MD5 is historic, RFC 6331: only on request).
pub const DEFAULT_MECHANISMS: &[&str] =
    &["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-1", "CRAM-MD5", "PLAIN", "LOGIN"];

/// Every mechanism buzon can serve.
pub const KNOWN_MECHANISMS: &[&str] = &[
    "SCRAM-SHA-256-PLUS",
    "SCRAM-SHA-256",
    "SCRAM-SHA-1-PLUS",
    "SCRAM-SHA-1",
    "CRAM-MD5",
    "DIGEST-MD5",
    "PLAIN",
    "LOGIN",
];

/// Keys reserved for capabilities this version does not serve yet. Setting
/// one is an error, so nobody believes a port is served when it is not.
const NOT_YET: &[(&str, &str)] = &[];

/// The system's host name (uname nodename), or `localhost`.
pub fn system_hostname() -> String {
    // SAFETY: uname fills a zeroed struct; nodename is NUL-terminated by the kernel.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    if unsafe { libc::uname(&mut u) } != 0 {
        return "localhost".into();
    }
    let bytes: Vec<u8> = u.nodename.iter().take_while(|&&c| c != 0).map(|&c| c as u8).collect();
    match String::from_utf8(bytes) {
        Ok(s) if !s.is_empty() => s.to_ascii_lowercase(),
        _ => "localhost".into(),
    }
}

impl Config {
    /// Worker threads: `workers`, or four per CPU (at least four).
    pub fn workers(&self) -> usize {
        match self.workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()).saturating_mul(4).clamp(4, 64),
            n => n,
        }
    }

    /// Connections kept for service class `class` (0 SMTP, 1 submission, 2 POP3, 3 IMAP); a class
    /// with no listener keeps nothing.
    pub fn reserved(&self, class: usize) -> usize {
        let listens = match class {
            0 => !self.smtp_listen.is_empty(),
            1 => !self.submission_listen.is_empty() || !self.submissions_listen.is_empty(),
            2 => !self.pop3_listen.is_empty() || !self.pop3s_listen.is_empty(),
            3 => !self.imap_listen.is_empty() || !self.imaps_listen.is_empty(),
            _ => false,
        };
        match listens {
            true => self.reserved.get(class).map_or(0, |s| s.of(self.max_connections)),
            false => 0,
        }
    }

    /// The built-in defaults every key falls back to.
    fn defaults() -> Config {
        let hostname = system_hostname();
        Config {
            source: None,
            hostname: hostname.clone(),
            data_dir: PathBuf::from("/var/lib/buzon"),
            local_domains: dedup(vec!["localhost".into(), hostname]),
            users: UsersSpec::System,
            mailbox: MailboxTemplate { kind: MailboxKind::Maildir, template: "~/Maildir".into() },
            aliases: None,
            alias_max_depth: 20,
            aliases_allow_pipes: false,
            aliases_allow_files: false,
            aliases_pipe_user: "nobody".into(),
            smtp_listen: Vec::new(),
            submission_listen: Vec::new(),
            submissions_listen: Vec::new(),
            pop3_listen: Vec::new(),
            pop3s_listen: Vec::new(),
            pop3_apop: false,
            imap_listen: Vec::new(),
            imaps_listen: Vec::new(),
            imap_folders: None,
            imap_timeout: Duration::from_secs(30 * 60),
            tls_cert: None,
            tls_key: None,
            auth_mechanisms: DEFAULT_MECHANISMS.iter().map(|m| m.to_string()).collect(),
            auth_max_failures: 5,
            auth_failure_window: Duration::from_secs(600),
            auth_block_time: Duration::from_secs(900),
            auth_sender_check: true,
            relay_networks: Vec::new(),
            auth_cleartext_networks: Vec::new(),
            message_size_limit: 25 * 1024 * 1024,
            spool_min_free: 64 * 1024 * 1024,
            max_connections: 4096,
            max_connections_per_ip: 16,
            workers: 0,
            reserved: [Share::Percent(10); 4],
            stress_timeout: Duration::from_secs(10),
            login_timeout: Duration::from_secs(60),
            smtp_junk_command_limit: 100,
            smtp_min_data_rate: 500,
            imap_max_errors: 10,
            pop3_max_errors: 10,
            pop3_timeout: Duration::from_secs(600),
            smtp_max_recipients: 100,
            smtp_max_errors: 10,
            smtp_max_line_length: 512,
            smtp_timeout: Duration::from_secs(300),
            mbox_lock_timeout: Duration::from_secs(30),
            shutdown_timeout: Duration::from_secs(30),
            user: None,
            pid_file: None,
            log_level: log::LevelFilter::Info,
            log_syslog: false,
            dns_servers: Vec::new(),
            outbound_port: 25,
            outbound_tls: OutboundTls::May,
            outbound_max_parallel: 8,
            outbound_per_destination: 2,
            relay_smarthost: None,
            relay_smarthost_auth: None,
            relay_smarthost_tls: SmarthostTls::Starttls,
            queue_lifetime: Duration::from_secs(5 * 86400),
            queue_min_backoff: Duration::from_secs(300),
            queue_max_backoff: Duration::from_secs(3600),
            queue_delay_warning: None,
            filters: Filters::default(),
            web: Web::default(),
            managesieve: ManageSieve::default(),
        }
    }

    /// The embedded default: loopback only, unprivileged ports, everything
    /// under `./buzon-data`, virtual users from `./buzon-data/passwd`.
    pub fn embedded() -> Config {
        let mut c = Config::defaults();
        let lo = |p: u16| vec![SocketAddr::from(([127, 0, 0, 1], p))];
        c.data_dir = PathBuf::from("buzon-data");
        c.users = UsersSpec::File(PathBuf::from("buzon-data/passwd"));
        c.mailbox =
            MailboxTemplate { kind: MailboxKind::Maildir, template: "buzon-data/mail/%d/%n/Maildir".into() };
        c.smtp_listen = lo(2525);
        c.submission_listen = lo(2587);
        c.pop3_listen = lo(1110);
        c.imap_listen = lo(1143);
        c.web.listen = lo(8080);
        c.relay_networks = vec![Cidr::parse("127.0.0.0/8").unwrap_or(LOOPBACK4), LOOPBACK6];
        c.auth_cleartext_networks = c.relay_networks.clone();
        c
    }

    /// Reads and parses a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: name.clone(),
            line: 0,
            message: format!("cannot read: {e}"),
        })?;
        Config::parse(&text, &name).map(|mut c| {
            c.source = Some(path.to_path_buf());
            c
        })
    }

    /// Parses config text; `name` is used in error messages.
    pub fn parse(text: &str, name: &str) -> Result<Config, ConfigError> {
        let err = |line: usize, message: String| ConfigError { file: name.to_string(), line, message };
        let mut seen: HashMap<String, usize> = HashMap::new();
        let mut c = Config::defaults();
        let mut local_domains_set = false;
        for (i, raw) in text.lines().enumerate() {
            let n = i + 1;
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                return Err(err(n, format!("expected `key = value`, found {line:?}")));
            };
            let key = key.trim();
            let value = value.trim();
            if !KEYS.contains(&key)
                && !filters::KEYS.contains(&key)
                && !web::KEYS.contains(&key)
                && !managesieve::KEYS.contains(&key)
            {
                let hint = match closest(key) {
                    Some(k) => format!(" (did you mean `{k}`?)"),
                    None => " (see buzon.conf(5) for the list of keys)".to_string(),
                };
                return Err(err(n, format!("unknown key `{key}`{hint}")));
            }
            if let Some(first) = seen.insert(key.to_string(), n) {
                return Err(err(n, format!("`{key}` is set twice (first at line {first})")));
            }
            if let Some((_, what)) = NOT_YET.iter().find(|(k, _)| *k == key) {
                if !value.is_empty() {
                    return Err(err(
                        n,
                        format!("`{key}`: {what} is not available in this version of buzon; remove the line"),
                    ));
                }
                continue;
            }
            let v = |r: Result<(), String>| r.map_err(|m| err(n, format!("`{key}`: {m}")));
            match key {
                "hostname" => v(parse_hostname(value).map(|h| c.hostname = h))?,
                "data_dir" => v(non_empty(value).map(|p| c.data_dir = PathBuf::from(p)))?,
                "local_domains" => {
                    local_domains_set = true;
                    v(parse_domains(value).map(|d| c.local_domains = d))?
                }
                "users" => v(parse_users(value).map(|u| c.users = u))?,
                "mailbox" => v(parse_mailbox(value).map(|m| c.mailbox = m))?,
                "aliases" => c.aliases = (!value.is_empty()).then(|| PathBuf::from(value)),
                "alias_max_depth" => v(parse_count(value, 1, 1000).map(|x| c.alias_max_depth = x))?,
                "aliases.allow_pipes" => v(parse_bool(value).map(|x| c.aliases_allow_pipes = x))?,
                "aliases.allow_files" => v(parse_bool(value).map(|x| c.aliases_allow_files = x))?,
                "aliases.pipe_user" => v(parse_pipe_user(value).map(|u| c.aliases_pipe_user = u))?,
                "smtp.listen" => v(parse_listen(value).map(|l| c.smtp_listen = l))?,
                "submission.listen" => v(parse_listen(value).map(|l| c.submission_listen = l))?,
                "submissions.listen" => v(parse_listen(value).map(|l| c.submissions_listen = l))?,
                "pop3.listen" => v(parse_listen(value).map(|l| c.pop3_listen = l))?,
                "pop3s.listen" => v(parse_listen(value).map(|l| c.pop3s_listen = l))?,
                "pop3.apop" => v(parse_bool(value).map(|x| c.pop3_apop = x))?,
                "imap.listen" => v(parse_listen(value).map(|l| c.imap_listen = l))?,
                "imaps.listen" => v(parse_listen(value).map(|l| c.imaps_listen = l))?,
                "imap.folders" => v(parse_folders(value).map(|f| c.imap_folders = f))?,
                "imap.timeout" => v(parse_duration(value).and_then(|d| {
                    // RFC 3501 5.4: an inactivity autologout timer MUST be at least 30 minutes.
                    if d < Duration::from_secs(30 * 60) {
                        Err("RFC 3501 5.4 asks for at least 30 minutes".into())
                    } else {
                        c.imap_timeout = d;
                        Ok(())
                    }
                }))?,
                "tls.cert" => c.tls_cert = (!value.is_empty()).then(|| PathBuf::from(value)),
                "tls.key" => c.tls_key = (!value.is_empty()).then(|| PathBuf::from(value)),
                "auth.mechanisms" => v(parse_mechanisms(value).map(|x| c.auth_mechanisms = x))?,
                "auth.max_failures" => {
                    v(parse_count(value, 1, 1000).map(|x| c.auth_max_failures = x as u32))?
                }
                "auth.failure_window" => v(parse_duration(value).map(|x| c.auth_failure_window = x))?,
                "auth.block_time" => v(parse_duration(value).map(|x| c.auth_block_time = x))?,
                "auth.sender_check" => v(parse_bool(value).map(|x| c.auth_sender_check = x))?,
                "relay.networks" => v(parse_nets(value).map(|x| c.relay_networks = x))?,
                "auth.cleartext_networks" => v(parse_nets(value).map(|x| c.auth_cleartext_networks = x))?,
                "message_size_limit" => v(parse_size(value).map(|x| c.message_size_limit = x))?,
                "spool.min_free" => v(parse_size(value).map(|x| c.spool_min_free = x))?,
                "max_connections" => v(parse_count(value, 1, 100_000).map(|x| c.max_connections = x))?,
                "max_connections_per_ip" => {
                    v(parse_count(value, 1, 100_000).map(|x| c.max_connections_per_ip = x))?
                }
                "workers" => v(parse_count(value, 1, 1024).map(|x| c.workers = x))?,
                "smtp.reserved_connections" => v(parse_share(value).map(|x| c.reserved[0] = x))?,
                "submission.reserved_connections" => v(parse_share(value).map(|x| c.reserved[1] = x))?,
                "pop3.reserved_connections" => v(parse_share(value).map(|x| c.reserved[2] = x))?,
                "imap.reserved_connections" => v(parse_share(value).map(|x| c.reserved[3] = x))?,
                "stress_timeout" => v(parse_duration(value).map(|x| c.stress_timeout = x))?,
                "login_timeout" => v(parse_duration(value).map(|x| c.login_timeout = x))?,
                "smtp.junk_command_limit" => {
                    v(parse_count(value, 1, 100_000).map(|x| c.smtp_junk_command_limit = x))?
                }
                "smtp.min_data_rate" => v(parse_size(value).map(|x| c.smtp_min_data_rate = x))?,
                "imap.max_errors" => v(parse_count(value, 1, 10_000).map(|x| c.imap_max_errors = x))?,
                "pop3.max_errors" => v(parse_count(value, 1, 10_000).map(|x| c.pop3_max_errors = x))?,
                "pop3.timeout" => v(parse_duration(value).and_then(|d| {
                    // RFC 1939 3: an autologout timer MUST be at least 10 minutes.
                    if d < Duration::from_secs(600) {
                        Err("RFC 1939 3 asks for at least 10 minutes".into())
                    } else {
                        c.pop3_timeout = d;
                        Ok(())
                    }
                }))?,
                "smtp.max_recipients" => {
                    v(parse_count(value, 1, 100_000).map(|x| c.smtp_max_recipients = x))?
                }
                "smtp.max_errors" => v(parse_count(value, 1, 10_000).map(|x| c.smtp_max_errors = x))?,
                "smtp.max_line_length" => {
                    v(parse_count(value, 512, 65_536).map(|x| c.smtp_max_line_length = x))?
                }
                "smtp.timeout" => v(parse_duration(value).map(|x| c.smtp_timeout = x))?,
                "mbox.lock_timeout" => v(parse_duration(value).map(|x| c.mbox_lock_timeout = x))?,
                "shutdown_timeout" => v(parse_duration(value).map(|x| c.shutdown_timeout = x))?,
                "user" => c.user = (!value.is_empty()).then(|| value.to_string()),
                "pid_file" => c.pid_file = (!value.is_empty()).then(|| PathBuf::from(value)),
                "log_level" => v(parse_level(value).map(|x| c.log_level = x))?,
                "log" => v(match value {
                    "stderr" | "syslog" => {
                        c.log_syslog = value == "syslog";
                        Ok(())
                    }
                    _ => Err(format!("{value:?}: expected stderr or syslog")),
                })?,
                "dns.servers" => v(parse_dns_servers(value).map(|x| c.dns_servers = x))?,
                "outbound.port" => v(parse_port(value).map(|x| c.outbound_port = x))?,
                "outbound.tls" => v(parse_outbound_tls(value).map(|x| c.outbound_tls = x))?,
                "outbound.max_parallel" => {
                    v(parse_count(value, 1, 1000).map(|x| c.outbound_max_parallel = x))?
                }
                "outbound.per_destination" => {
                    v(parse_count(value, 1, 1000).map(|x| c.outbound_per_destination = x))?
                }
                "relay.smarthost" => {
                    if !value.is_empty() {
                        v(parse_smarthost(value).map(|x| c.relay_smarthost = Some(x)))?
                    }
                }
                "relay.smarthost_auth" => {
                    c.relay_smarthost_auth = (!value.is_empty()).then(|| PathBuf::from(value))
                }
                "relay.smarthost_tls" => v(parse_smarthost_tls(value).map(|x| c.relay_smarthost_tls = x))?,
                "queue.lifetime" => v(parse_duration(value).map(|x| c.queue_lifetime = x))?,
                "queue.min_backoff" => v(parse_duration(value).map(|x| c.queue_min_backoff = x))?,
                "queue.max_backoff" => v(parse_duration(value).map(|x| c.queue_max_backoff = x))?,
                "queue.delay_warning" => {
                    if !value.is_empty() {
                        v(parse_duration(value).map(|x| c.queue_delay_warning = Some(x)))?
                    }
                }
                k if filters::KEYS.contains(&k) => v(c.filters.set(k, value))?,
                k if web::KEYS.contains(&k) => v(c.web.set(k, value))?,
                k if managesieve::KEYS.contains(&k) => v(c.managesieve.set(k, value))?,
                _ => return Err(err(n, format!("key `{key}` is known but not handled (a bug)"))),
            }
        }
        if !local_domains_set && !c.local_domains.contains(&c.hostname) {
            c.local_domains = dedup(vec!["localhost".into(), c.hostname.clone()]);
        }
        if c.relay_smarthost_auth.is_some() && c.relay_smarthost_tls == SmarthostTls::None {
            return Err(err(
                0,
                "`relay.smarthost_auth`: a password is never sent without TLS; set `relay.smarthost_tls` \
                 to starttls or implicit"
                    .into(),
            ));
        }
        if c.tls_cert.is_some() != c.tls_key.is_some() {
            return Err(err(0, "`tls.cert` and `tls.key` go together: set both or neither".into()));
        }
        if !c.pop3s_listen.is_empty() && c.tls_cert.is_none() {
            return Err(err(0, "`pop3s.listen` is implicit TLS: set `tls.cert` and `tls.key`".into()));
        }
        if !c.imaps_listen.is_empty() && c.tls_cert.is_none() {
            return Err(err(0, "`imaps.listen` is implicit TLS: set `tls.cert` and `tls.key`".into()));
        }
        if !c.web.tls_listen.is_empty() && c.tls_cert.is_none() {
            return Err(err(0, "`web.tls_listen` is HTTPS: set `tls.cert` and `tls.key`".into()));
        }
        if !c.submissions_listen.is_empty() && c.tls_cert.is_none() {
            return Err(err(
                0,
                "`submissions.listen` is implicit TLS: set `tls.cert` and `tls.key` (see `buzon cert self-signed`)"
                    .into(),
            ));
        }
        if c.smtp_listen.is_empty()
            && c.submission_listen.is_empty()
            && c.submissions_listen.is_empty()
            && c.pop3_listen.is_empty()
            && c.pop3s_listen.is_empty()
            && c.imap_listen.is_empty()
            && c.imaps_listen.is_empty()
            && c.web.listen.is_empty()
            && c.web.tls_listen.is_empty()
            && c.managesieve.listen.is_empty()
        {
            return Err(err(
                0,
                "no listener configured: set `smtp.listen` (e.g. `smtp.listen = 0.0.0.0:25`)".into(),
            ));
        }
        let kept: usize = (0..4).map(|class| c.reserved(class)).sum();
        if kept >= c.max_connections {
            return Err(err(
                0,
                format!(
                    "the services' *.reserved_connections ({kept}) leave nothing of max_connections ({}): lower them",
                    c.max_connections
                ),
            ));
        }
        Ok(c)
    }

    /// The effective settings, one `key = value` line each, as `check-config` prints them.
    pub fn render(&self) -> String {
        let list = |v: &[String]| v.join(" ");
        let addrs = |v: &[SocketAddr]| v.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(" ");
        let nets = |v: &[Cidr]| v.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(" ");
        let secs = |d: Duration| format!("{}s", d.as_secs());
        let mut o = String::new();
        let src = match &self.source {
            Some(p) => p.display().to_string(),
            None => "embedded default".into(),
        };
        let _ = writeln!(o, "# effective configuration from {src}");
        let mut kv = |k: &str, v: String| {
            let _ = writeln!(o, "{k} = {v}");
        };
        kv("hostname", self.hostname.clone());
        kv("data_dir", self.data_dir.display().to_string());
        kv("local_domains", list(&self.local_domains));
        kv(
            "users",
            match &self.users {
                UsersSpec::System => "system".into(),
                UsersSpec::File(p) => format!("file:{}", p.display()),
            },
        );
        let kind = match self.mailbox.kind {
            MailboxKind::Maildir => "maildir",
            MailboxKind::Mbox => "mbox",
        };
        kv("mailbox", format!("{kind}:{}", self.mailbox.template));
        kv("aliases", self.aliases.as_ref().map(|p| p.display().to_string()).unwrap_or_default());
        kv("alias_max_depth", self.alias_max_depth.to_string());
        kv("aliases.allow_pipes", if self.aliases_allow_pipes { "yes" } else { "no" }.into());
        kv("aliases.allow_files", if self.aliases_allow_files { "yes" } else { "no" }.into());
        kv("aliases.pipe_user", self.aliases_pipe_user.clone());
        kv("smtp.listen", addrs(&self.smtp_listen));
        kv("submission.listen", addrs(&self.submission_listen));
        kv("submissions.listen", addrs(&self.submissions_listen));
        kv("pop3.listen", addrs(&self.pop3_listen));
        kv("pop3s.listen", addrs(&self.pop3s_listen));
        kv("pop3.apop", if self.pop3_apop { "yes" } else { "no" }.into());
        kv("imap.listen", addrs(&self.imap_listen));
        kv("imaps.listen", addrs(&self.imaps_listen));
        kv("imap.folders", self.imap_folders.clone().unwrap_or_default());
        kv("imap.timeout", secs(self.imap_timeout));
        kv("tls.cert", self.tls_cert.as_ref().map(|p| p.display().to_string()).unwrap_or_default());
        kv("tls.key", self.tls_key.as_ref().map(|p| p.display().to_string()).unwrap_or_default());
        kv("relay.networks", nets(&self.relay_networks));
        kv("auth.cleartext_networks", nets(&self.auth_cleartext_networks));
        kv("message_size_limit", self.message_size_limit.to_string());
        kv("spool.min_free", self.spool_min_free.to_string());
        kv("max_connections", self.max_connections.to_string());
        kv("max_connections_per_ip", self.max_connections_per_ip.to_string());
        kv("workers", self.workers().to_string());
        for (i, class) in ["smtp", "submission", "pop3", "imap"].iter().enumerate() {
            kv(&format!("{class}.reserved_connections"), self.reserved[i].to_string());
        }
        kv("stress_timeout", secs(self.stress_timeout));
        kv("login_timeout", secs(self.login_timeout));
        kv("smtp.junk_command_limit", self.smtp_junk_command_limit.to_string());
        kv("smtp.min_data_rate", self.smtp_min_data_rate.to_string());
        kv("imap.max_errors", self.imap_max_errors.to_string());
        kv("pop3.max_errors", self.pop3_max_errors.to_string());
        kv("pop3.timeout", secs(self.pop3_timeout));
        kv("smtp.max_recipients", self.smtp_max_recipients.to_string());
        kv("smtp.max_errors", self.smtp_max_errors.to_string());
        kv("smtp.max_line_length", self.smtp_max_line_length.to_string());
        kv("smtp.timeout", secs(self.smtp_timeout));
        kv("mbox.lock_timeout", secs(self.mbox_lock_timeout));
        kv("shutdown_timeout", secs(self.shutdown_timeout));
        kv("user", self.user.clone().unwrap_or_default());
        kv("pid_file", self.pid_file.as_ref().map(|p| p.display().to_string()).unwrap_or_default());
        kv("log_level", self.log_level.to_string().to_ascii_lowercase());
        kv("log", if self.log_syslog { "syslog" } else { "stderr" }.into());
        kv("auth.mechanisms", self.auth_mechanisms.join(" "));
        kv("auth.max_failures", self.auth_max_failures.to_string());
        kv("auth.failure_window", secs(self.auth_failure_window));
        kv("auth.block_time", secs(self.auth_block_time));
        kv("auth.sender_check", if self.auth_sender_check { "yes" } else { "no" }.into());
        kv("dns.servers", addrs(&self.dns_servers));
        kv("outbound.port", self.outbound_port.to_string());
        let otls = match self.outbound_tls {
            OutboundTls::None => "none",
            OutboundTls::May => "may",
            OutboundTls::Verify => "verify",
        };
        kv("outbound.tls", otls.into());
        kv("outbound.max_parallel", self.outbound_max_parallel.to_string());
        kv("outbound.per_destination", self.outbound_per_destination.to_string());
        kv("relay.smarthost", self.relay_smarthost.as_ref().map(|s| s.to_string()).unwrap_or_default());
        kv(
            "relay.smarthost_auth",
            self.relay_smarthost_auth.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
        );
        let stls = match self.relay_smarthost_tls {
            SmarthostTls::Starttls => "starttls",
            SmarthostTls::Implicit => "implicit",
            SmarthostTls::None => "none",
        };
        kv("relay.smarthost_tls", stls.into());
        kv("queue.lifetime", secs(self.queue_lifetime));
        kv("queue.min_backoff", secs(self.queue_min_backoff));
        kv("queue.max_backoff", secs(self.queue_max_backoff));
        kv("queue.delay_warning", self.queue_delay_warning.map(secs).unwrap_or_default());
        self.filters.print(&mut kv);
        self.web.print(&mut kv);
        self.managesieve.print(&mut kv);
        o
    }

    /// Whether `domain` (any case) is one of ours.
    pub fn is_local_domain(&self, domain: &str) -> bool {
        let d = domain.trim_end_matches('.');
        self.local_domains.iter().any(|l| l.eq_ignore_ascii_case(d))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(t: &str) -> Result<Config, ConfigError> {
        Config::parse(t, "test.conf")
    }

    #[test]
    fn minimal_file() {
        let c = parse("smtp.listen = 127.0.0.1:25\nhostname = MX.Example.ORG\n").unwrap();
        assert_eq!(c.hostname, "mx.example.org");
        assert_eq!(c.smtp_listen, vec!["127.0.0.1:25".parse().unwrap()]);
        assert!(c.is_local_domain("MX.example.org."));
    }

    #[test]
    fn unknown_key_has_hint_and_line() {
        let e = parse("# c\n\nsmtp.listen = 127.0.0.1:25\nhostnme = x\n").unwrap_err();
        assert_eq!(e.line, 4);
        assert!(e.to_string().starts_with("test.conf:4: unknown key `hostnme`"), "{e}");
        assert!(e.message.contains("did you mean `hostname`"), "{e}");
    }

    #[test]
    fn bad_values_are_errors() {
        for (t, want) in [
            ("message_size_limit = lots", "message_size_limit"),
            ("submission.listen = 25", "ADDR:PORT"),
            ("mailbox = ~/Maildir", "maildir:TEMPLATE"),
            ("mailbox = maildir:/x/%q", "unknown escape"),
            ("users = ldap", "file:PATH"),
            ("relay.networks = 10.0.0.0/33", "prefix"),
            ("smtp.timeout = soon", "duration"),
            ("imap.timeout = 10m", "30 minutes"),
            ("outbound.tls = always", "none, may or verify"),
            ("relay.smarthost = smtp.example.net:0", "HOST:PORT"),
            ("dns.servers = nameserver", "ADDR"),
            ("no equals sign", "key = value"),
            ("workers = 0", "from 1 to 1024"),
            ("imap.reserved_connections = 80%", "at most 50%"),
            ("smtp.reserved_connections = lots", "percentage"),
            ("pop3.timeout = 1m", "10 minutes"),
        ] {
            let e = parse(&format!("smtp.listen = 127.0.0.1:25\n{t}\n")).unwrap_err();
            assert_eq!(e.line, 2, "{t}");
            assert!(e.message.contains(want), "{t}: {e}");
        }
    }

    #[test]
    fn reserved_shares_must_leave_room_and_count_only_for_listeners() {
        let c = parse("smtp.listen = 127.0.0.1:25\nimap.reserved_connections = 40%\nmax_connections = 100\n")
            .unwrap();
        assert_eq!((c.reserved(0), c.reserved(3)), (10, 0), "IMAP does not listen: it keeps nothing");
        let e = parse(
            "smtp.listen = 127.0.0.1:25\nimap.listen = 127.0.0.1:143\nmax_connections = 100\n\
             smtp.reserved_connections = 60\nimap.reserved_connections = 40\n",
        )
        .unwrap_err();
        assert!(e.message.contains("leave nothing of max_connections"), "{e}");
    }

    #[test]
    fn outbound_keys() {
        let c = parse(
            "smtp.listen = 127.0.0.1:25\nrelay.smarthost = [::1]:587\ndns.servers = 127.0.0.1:5353 ::1\n\
             queue.delay_warning = 4h\noutbound.tls = verify\n",
        )
        .unwrap();
        assert_eq!(c.relay_smarthost, Some(Smarthost { host: "::1".into(), port: 587 }));
        assert_eq!(c.dns_servers, vec!["127.0.0.1:5353".parse().unwrap(), "[::1]:53".parse().unwrap()]);
        assert_eq!(c.queue_delay_warning, Some(Duration::from_secs(4 * 3600)));
        assert_eq!(c.outbound_tls, OutboundTls::Verify);
        let again = parse(&c.render()).unwrap();
        assert_eq!(again.render(), c.render());
        let h = parse("smtp.listen = 127.0.0.1:25\nrelay.smarthost = SMTP.example.net\n").unwrap();
        assert_eq!(h.relay_smarthost, Some(Smarthost { host: "smtp.example.net".into(), port: 25 }));
    }

    #[test]
    fn duplicate_key() {
        let e = parse("smtp.listen = 127.0.0.1:25\nsmtp.listen = 127.0.0.1:26\n").unwrap_err();
        assert!(e.message.contains("first at line 1"), "{e}");
    }

    #[test]
    fn no_listener_is_an_error() {
        assert!(parse("hostname = a.example\n").is_err());
    }

    #[test]
    fn sizes_and_durations() {
        assert_eq!(parse_size("25M").unwrap(), 25 * 1024 * 1024);
        assert_eq!(parse_size("1000").unwrap(), 1000);
        assert!(parse_size("0").is_err());
        assert!(parse_size("99999999999999G").is_err());
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("2d").unwrap(), Duration::from_secs(172800));
    }

    #[test]
    fn cidr() {
        let n = Cidr::parse("192.0.2.0/24").unwrap();
        assert!(n.contains("192.0.2.77".parse().unwrap()));
        assert!(!n.contains("192.0.3.1".parse().unwrap()));
        assert!(n.contains("::ffff:192.0.2.1".parse().unwrap()));
        let z = Cidr::parse("0.0.0.0/0").unwrap();
        assert!(z.contains("203.0.113.9".parse().unwrap()));
        let six = Cidr::parse("2001:db8::/32").unwrap();
        assert!(six.contains("2001:db8::1".parse().unwrap()));
        assert!(!six.contains("2001:db9::1".parse().unwrap()));
    }

    #[test]
    fn render_round_trips() {
        let c = parse("smtp.listen = 127.0.0.1:2525\nlocal_domains = a.example b.example\nmailbox = mbox:/var/mail/%u\n")
            .unwrap();
        let again = parse(&c.render()).unwrap();
        assert_eq!(again.render(), c.render());
        let e = Config::embedded();
        assert!(parse(&e.render()).is_ok(), "{}", e.render());
    }
}
