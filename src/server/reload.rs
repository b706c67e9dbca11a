//! SIGHUP: the configuration file is read again and what sessions use (domains, users, mailboxes,
//! aliases switches, limits, AUTH and TLS settings, IMAP and POP3 options) takes effect for new
//! connections; established ones finish with what they started with. Keys that shape the process
//! itself (listeners, `user`, `data_dir`, `users`, `mailbox`, the pool size, the queue runner's
//! settings) need a
//! restart: they are named in the log and keep their old values. A file that no longer parses
//! changes nothing. Certificates are reloaded by the caller.

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::config::Config;

/// Keys whose new value needs a restart.
const RESTART: &[&str] = &[
    "hostname",
    "users",
    "mailbox",
    "smtp.listen",
    "submission.listen",
    "submissions.listen",
    "pop3.listen",
    "pop3s.listen",
    "imap.listen",
    "imaps.listen",
    "user",
    "data_dir",
    "max_connections",
    "workers",
    "pid_file",
    "log",
    "dns.servers",
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
    "tls.cert",
    "tls.key",
];

/// What a reload found: the new configuration (with the restart-only keys kept as they were) and the
/// keys that changed, split into applied and waiting for a restart.
pub struct Reloaded {
    pub config: Arc<Config>,
    pub applied: Vec<String>,
    pub need_restart: Vec<String>,
}

/// Reads `old`'s file again. Err when it has no file (the embedded default) or does not parse.
pub fn reread(old: &Config) -> Result<Reloaded, String> {
    let Some(path) = &old.source else { return Err("the embedded default has no file to read again".into()) };
    let mut new = Config::load(path).map_err(|e| e.to_string())?;
    let (before, after) = (lines(&old.render()), lines(&new.render()));
    let changed: BTreeSet<String> = before
        .symmetric_difference(&after)
        .filter_map(|l| l.split(" = ").next())
        .map(str::to_string)
        .collect();
    let (need_restart, applied): (Vec<String>, Vec<String>) =
        changed.into_iter().partition(|k| RESTART.contains(&k.as_str()));
    // What cannot change now keeps its running value, so every part of the process agrees.
    new.smtp_listen = old.smtp_listen.clone();
    new.submission_listen = old.submission_listen.clone();
    new.submissions_listen = old.submissions_listen.clone();
    new.pop3_listen = old.pop3_listen.clone();
    new.pop3s_listen = old.pop3s_listen.clone();
    new.imap_listen = old.imap_listen.clone();
    new.imaps_listen = old.imaps_listen.clone();
    new.hostname = old.hostname.clone();
    new.users = old.users.clone();
    new.mailbox = old.mailbox.clone();
    new.user = old.user.clone();
    new.data_dir = old.data_dir.clone();
    new.max_connections = old.max_connections;
    new.workers = old.workers;
    new.pid_file = old.pid_file.clone();
    new.log_syslog = old.log_syslog;
    new.tls_cert = old.tls_cert.clone();
    new.tls_key = old.tls_key.clone();
    Ok(Reloaded { config: Arc::new(new), applied, need_restart })
}

fn lines(rendered: &str) -> BTreeSet<String> {
    rendered.lines().filter(|l| l.contains(" = ")).map(str::to_string).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changed_keys_are_sorted_into_applied_and_restart() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.conf");
        std::fs::write(&p, "smtp.listen = 127.0.0.1:2525\nlocal_domains = a.example\n").unwrap();
        let old = Config::load(&p).unwrap();
        std::fs::write(
            &p,
            "smtp.listen = 127.0.0.1:2526\nlocal_domains = b.example\nmessage_size_limit = 1M\n",
        )
        .unwrap();
        let r = reread(&old).unwrap();
        assert_eq!(r.applied, ["local_domains", "message_size_limit"]);
        assert_eq!(r.need_restart, ["smtp.listen"]);
        assert_eq!(r.config.smtp_listen, old.smtp_listen, "the listener stays as bound");
        assert_eq!(r.config.local_domains, ["b.example"]);
        std::fs::write(&p, "smtp.listen = 127.0.0.1:2525\nbogus = 1\n").unwrap();
        assert!(reread(&old).is_err(), "a broken file changes nothing");
        assert!(reread(&Config::embedded()).is_err());
    }
}
