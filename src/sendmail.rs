//! `buzon sendmail` (also run as `sendmail` and `newaliases`): the sendmail(8) command that mail(1),
//! cron and scripts use to send mail, with Sendmail's and Postfix's options (see buzon-sendmail(8)).
//!
//! Submission needs no network listener and no set-uid program, as Postfix's maildrop: the command
//! writes the message as the invoking user into `data_dir/maildrop/` (mode 1733: anyone may create
//! a file, nobody but the server's user may list or remove them), in the format of
//! [`maildrop`], and exits 0 only once the file is durable there. The server's pickup thread
//! (server/pickup.rs) takes it from there: it knows the submitting user by the file's owner, adds the
//! missing header fields and puts the message into the queue. Exit codes follow sysexits(3).

pub mod compose;
pub mod header;
pub mod maildrop;
pub mod options;
pub mod smtp;
pub mod submit;

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::addr::Address;
use crate::config::Config;
use crate::local::{Resolution, Resolver, ResolverConfig};
use options::{Mode, Options};
use submit::{Dots, SubmitError};

pub const EX_OK: u8 = 0;
pub const EX_USAGE: u8 = 64;
pub const EX_DATAERR: u8 = 65;
pub const EX_NOUSER: u8 = 67;
pub const EX_SOFTWARE: u8 = 70;
pub const EX_TEMPFAIL: u8 = 75;
pub const EX_CONFIG: u8 = 78;

const DEFAULT_CONFIG: &str = "/etc/buzon/buzon.conf";

/// The maildrop directory under `data_dir`.
pub fn maildrop_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("maildrop")
}

/// Run as root before the server ever started (a fresh install, cron at boot): makes data_dir
/// (0711) and the maildrop (1733), given to the server's `user` when there is one, as the server
/// would have made them, so the message waits there until the server runs. Others get the
/// temporary failure of a missing maildrop.
fn ensure_maildrop(config: &Config) -> Result<(), String> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let md = maildrop_dir(&config.data_dir);
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 || std::fs::symlink_metadata(&md).is_ok() {
        return Ok(());
    }
    let err = |p: &Path, e: io::Error| format!("cannot create {}: {e}", p.display());
    let made_data_dir = !config.data_dir.exists();
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o711)
        .create(&config.data_dir)
        .map_err(|e| err(&config.data_dir, e))?;
    std::fs::DirBuilder::new().mode(0o700).create(&md).map_err(|e| err(&md, e))?;
    std::fs::set_permissions(&md, std::fs::Permissions::from_mode(0o1733)).map_err(|e| err(&md, e))?;
    let owner = match &config.user {
        Some(user) => crate::auth::system::getpwnam(user)?.and_then(|a| a.uid.zip(a.gid)),
        None => None,
    };
    if let Some((uid, gid)) = owner {
        let dirs =
            if made_data_dir { vec![config.data_dir.as_path(), md.as_path()] } else { vec![md.as_path()] };
        for d in dirs {
            std::os::unix::fs::lchown(d, Some(uid), Some(gid))
                .map_err(|e| format!("chown {}: {e}", d.display()))?;
        }
    }
    Ok(())
}

/// The pickup's wake-up socket (any datagram means "look now").
pub fn pickup_socket(data_dir: &Path) -> PathBuf {
    data_dir.join("pickup.sock")
}

/// The domain given to bare names (recipients, and the submitting user's own address): the first
/// local domain, else the host name (Postfix's myorigin, which defaults to the host name).
pub fn origin_domain(config: &Config) -> String {
    config.local_domains.first().cloned().unwrap_or_else(|| config.hostname.clone())
}

/// `-C FILE`, else $BUZON_CONFIG, else /etc/buzon/buzon.conf when it exists, else the embedded default.
fn load_config(flag: Option<&Path>) -> Result<Config, String> {
    let env = std::env::var_os("BUZON_CONFIG").filter(|v| !v.is_empty()).map(PathBuf::from);
    match flag.map(Path::to_path_buf).or(env) {
        Some(p) => Config::load(&p).map_err(|e| e.to_string()),
        None if Path::new(DEFAULT_CONFIG).exists() => {
            Config::load(Path::new(DEFAULT_CONFIG)).map_err(|e| e.to_string())
        }
        None => Ok(Config::embedded()),
    }
}

/// Runs the command; `prog` is the name it was called by (`sendmail`, `newaliases`, `mailq`), `args`
/// the arguments after it. Returns the exit code.
pub fn run(prog: &str, args: &[String]) -> u8 {
    let opts = match options::parse(prog, args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!(
                "{prog}: {e}\nusage: {prog} [-t] [-i] [-f sender] [-F name] [-C config] [recipient ...]"
            );
            return EX_USAGE;
        }
    };
    let config = match load_config(opts.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{prog}: {e}");
            return EX_CONFIG;
        }
    };
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let code = match opts.mode {
        Mode::Deliver => deliver(prog, &opts, &config),
        Mode::Smtp => {
            if let Err(e) = ensure_maildrop(&config) {
                eprintln!("{prog}: {e}");
                return EX_TEMPFAIL;
            }
            let maildrop = maildrop_dir(&config.data_dir);
            let sock = pickup_socket(&config.data_dir);
            let stdin = io::stdin();
            let r = smtp::session(
                &mut stdin.lock(),
                &mut out,
                &config.hostname,
                &maildrop,
                &sock,
                config.message_size_limit,
            );
            match r {
                Ok(()) => EX_OK,
                Err(e) => {
                    eprintln!("{prog}: {e}");
                    EX_TEMPFAIL
                }
            }
        }
        Mode::ListQueue => list_queue(prog, &config, &mut out),
        Mode::Flush => {
            submit::wake(&pickup_socket(&config.data_dir));
            queue_cli(prog, &config, "flush", &mut out)
        }
        Mode::Aliases => newaliases(prog, &config, &mut out),
        Mode::Verify => verify(prog, &opts, &config, &mut out),
    };
    let _ = out.flush();
    code
}

/// -bm: read the message from standard input into the maildrop.
fn deliver(prog: &str, opts: &Options, config: &Config) -> u8 {
    let recipients = match options::recipient_addresses(&opts.recipients) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{prog}: bad recipient {e}");
            return EX_USAGE;
        }
    };
    if recipients.is_empty() && !opts.extract {
        eprintln!(
            "{prog}: no recipients given (name them as arguments, or use -t to read the To/Cc/Bcc fields)"
        );
        return EX_USAGE;
    }
    let sub = maildrop::Submission {
        sender: opts.sender.clone(),
        full_name: opts.full_name.clone(),
        extract: opts.extract,
        recipients,
    };
    if let Err(e) = maildrop::validate(&sub) {
        eprintln!("{prog}: {e}");
        return EX_USAGE;
    }
    let dots = if opts.ignore_dots { Dots::Ignore } else { Dots::End };
    if let Err(e) = ensure_maildrop(config) {
        eprintln!("{prog}: message not sent: {e}");
        return EX_TEMPFAIL;
    }
    let maildrop = maildrop_dir(&config.data_dir);
    let stdin = io::stdin();
    match submit::submit(&maildrop, &sub, &mut stdin.lock(), dots, config.message_size_limit) {
        Ok(done) => {
            submit::wake(&pickup_socket(&config.data_dir));
            if opts.verbose {
                eprintln!("{prog}: {} bytes queued in {} as {}", done.size, maildrop.display(), done.name);
            }
            EX_OK
        }
        Err(e) => {
            eprintln!("{prog}: message not sent: {e}");
            match e {
                SubmitError::Temp(_) | SubmitError::Aborted => EX_TEMPFAIL,
                SubmitError::Data(_) => EX_DATAERR,
                SubmitError::NoRecipients => EX_USAGE,
            }
        }
    }
}

fn queue_cli(prog: &str, config: &Config, what: &str, out: &mut dyn Write) -> u8 {
    match crate::queue::cli::run(&config.data_dir, &[what.to_string()], out) {
        Ok(()) => EX_OK,
        Err(e) => {
            eprintln!("{prog}: {e}");
            EX_TEMPFAIL
        }
    }
}

/// -bp: the queue, and what waits in the maildrop when this user may see it.
fn list_queue(prog: &str, config: &Config, out: &mut dyn Write) -> u8 {
    let code = queue_cli(prog, config, "list", out);
    if let Ok(dir) = std::fs::read_dir(maildrop_dir(&config.data_dir)) {
        let waiting = dir
            .filter_map(Result::ok)
            .filter(|e| !e.file_name().to_string_lossy().starts_with("tmp."))
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .count();
        if waiting > 0 {
            let _ = writeln!(out, "-- {waiting} message(s) in the maildrop, waiting for the server's pickup");
        }
    }
    code
}

/// -bi: checks the aliases file (buzon reads it as text, so there is no database to build) and
/// prints a summary in newaliases' words.
fn newaliases(prog: &str, config: &Config, out: &mut dyn Write) -> u8 {
    let Some(path) = &config.aliases else {
        eprintln!("{prog}: no aliases file configured (set `aliases = /etc/aliases` in the configuration)");
        return EX_CONFIG;
    };
    let shown = path.display().to_string();
    // The same checks as the server's: syntax, includes (owner, mode), targets and their switches.
    match crate::aliases::newaliases(config) {
        Ok(summary) => {
            for w in &summary.warnings {
                eprintln!("{prog}: warning: {w}");
            }
            let text =
                std::fs::read(path).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
            let s = summarize_aliases(&text);
            let _ = writeln!(
                out,
                "{shown}: {} aliases, longest {} bytes, {} bytes total",
                summary.aliases, s.1, s.2
            );
            EX_OK
        }
        Err(errors) => {
            for e in errors {
                eprintln!("{prog}: {e}");
            }
            EX_DATAERR
        }
    }
}

/// (distinct names, longest entry, total bytes of entries) of a file that parsed.
fn summarize_aliases(text: &str) -> (usize, usize, usize) {
    let mut names = std::collections::HashSet::new();
    let (mut longest, mut total, mut cur) = (0, 0, 0);
    for line in text.lines() {
        let t = line.trim_start();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            cur += line.trim().len();
        } else {
            longest = longest.max(cur);
            cur = line.trim().len();
            if let Some((name, _)) = line.split_once(':') {
                names.insert(name.trim().trim_matches('"').to_ascii_lowercase());
            }
        }
        total += line.trim().len();
    }
    (names.len(), longest.max(cur), total)
}

/// -bv: how each recipient would be delivered, without sending anything.
fn verify(prog: &str, opts: &Options, config: &Config, out: &mut dyn Write) -> u8 {
    let recipients = match options::recipient_addresses(&opts.recipients) {
        Ok(r) if !r.is_empty() => r,
        Ok(_) => {
            eprintln!("{prog}: -bv needs recipients");
            return EX_USAGE;
        }
        Err(e) => {
            eprintln!("{prog}: bad recipient {e}");
            return EX_USAGE;
        }
    };
    let resolver = match Resolver::new(ResolverConfig::from_config(config)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{prog}: {e}");
            return EX_TEMPFAIL;
        }
    };
    let domain = origin_domain(config);
    let mut code = EX_OK;
    for r in recipients {
        let line = match header::qualify(&r, &domain)
            .and_then(|a| Address::parse(&a).map_err(|e| e.to_string()))
        {
            Err(e) => {
                code = code.max(EX_DATAERR);
                format!("{r}... bad address: {e}")
            }
            Ok(a) => match resolver.resolve(a.local(), a.domain()) {
                Resolution::Deliver(ds) => ds
                    .iter()
                    .map(|d| format!("{a}... deliverable: mailbox {} of {}", d.path.display(), d.account))
                    .collect::<Vec<_>>()
                    .join("\n"),
                Resolution::NotLocal => match &config.relay_smarthost {
                    Some(_) => format!("{a}... deliverable: relayed through the smarthost"),
                    None => format!("{a}... deliverable: remote, to the mail exchangers of {}", a.domain()),
                },
                Resolution::Unknown => {
                    code = code.max(EX_NOUSER);
                    format!("{a}... User unknown")
                }
                Resolution::Perm(m) => {
                    code = code.max(EX_NOUSER);
                    format!("{a}... undeliverable: {m}")
                }
                Resolution::Temp(m) => {
                    code = code.max(EX_TEMPFAIL);
                    format!("{a}... deferred: {m}")
                }
            },
        };
        let _ = writeln!(out, "{line}");
    }
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alias_summary() {
        let text = "# comment\npostmaster: root\nroot: alice,\n  bob\n\nALICE: \\alice\n";
        assert_eq!(summarize_aliases(text), (3, 16, 44));
    }

    #[test]
    fn origin() {
        let mut c = Config::embedded();
        c.local_domains = vec!["example.test".into(), "other.test".into()];
        assert_eq!(origin_domain(&c), "example.test");
        c.local_domains.clear();
        c.hostname = "mx.example.test".into();
        assert_eq!(origin_domain(&c), "mx.example.test");
    }
}
