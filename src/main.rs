//! buzon's command line: argv dispatch only (see buzon(8)).

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use buzon::config::{Config, UsersSpec};

const DEFAULT_CONFIG: &str = "/etc/buzon/buzon.conf";

const USAGE: &str = "usage: buzon serve [-c file]
       buzon smtpd | pop3d | imapd --inetd [--submission] [--tls] [-c file]
       buzon check-config [-c file]
       buzon newaliases [-c file]
       buzon passwd [-c file] [-s scheme] user
       buzon queue list | flush [id] | delete id [-c file]
       buzon cert self-signed [-c file] [--days n] [--force] [name ...]
       buzon dkim keygen DOMAIN [--selector S] [--ed25519] [-c file] | dkim sign | dkim verify
       buzon spf check IP SENDER [HELO] | dmarc check FROM-DOMAIN ... [-c file]
       buzon dns-records DOMAIN [-c file]
       buzon sieve-test SCRIPT MESSAGE [-f envelope-from] [-a recipient]
       buzon sendmail [-t] [-i] [-f sender] [-F name] [-C file] [recipient ...]
       sendmail ... | mailq [-C file] | newaliases [-C file]
       buzon version";

/// Exit codes from sysexits(3).
const EX_USAGE: u8 = 64;
const EX_NOINPUT: u8 = 66;
const EX_CONFIG: u8 = 78;
const EX_SOFTWARE: u8 = 70;

fn main() -> ExitCode {
    let argv0 = std::env::args().next().unwrap_or_default();
    let name =
        std::path::Path::new(&argv0).file_name().and_then(|n| n.to_str()).unwrap_or("buzon").to_string();
    let args: Vec<String> = std::env::args().skip(1).collect();
    // Invoked by its classic names (symlinks): sendmail(8) and newaliases.
    if name == "sendmail" || name == "newaliases" {
        return ExitCode::from(buzon::sendmail::run(&name, &args));
    }
    // Invoked by its classic name (a symlink): mailq is `buzon queue list`.
    if name == "mailq" {
        let args: Vec<String> =
            args.iter().map(|a| if a == "-C" { "-c".to_string() } else { a.clone() }).collect();
        return match split_config_flag(&args) {
            Ok((path, _)) => queue(path, &["list".to_string()]),
            Err(e) => {
                eprintln!("mailq: {e}");
                ExitCode::from(EX_USAGE)
            }
        };
    }
    let Some(cmd) = args.first() else {
        eprintln!("{USAGE}");
        return ExitCode::from(EX_USAGE);
    };
    let rest = &args[1..];
    if cmd == "mail-process" {
        // Not for people: the image the privileged helper starts for a user's IMAP and POP3 sessions.
        return match buzon::server::mailproc::exec_main(rest, |c, syslog| init_logging(c.log_level, syslog)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("buzon mail-process: {e}");
                ExitCode::from(EX_USAGE)
            }
        };
    }
    if cmd == "sendmail" || cmd == "newaliases" {
        // sendmail's own options (-C, not -c) are parsed by sendmail.rs; `buzon newaliases -c FILE`
        // takes buzon's spelling too.
        let rest: Vec<String> = match cmd.as_str() {
            "newaliases" => {
                rest.iter().map(|a| if a == "-c" { "-C".to_string() } else { a.clone() }).collect()
            }
            _ => rest.to_vec(),
        };
        return ExitCode::from(buzon::sendmail::run(cmd, &rest));
    }
    let (config_path, operands) = match split_config_flag(rest) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("buzon: {e}\n{USAGE}");
            return ExitCode::from(EX_USAGE);
        }
    };
    match cmd.as_str() {
        "serve" if operands.is_empty() => serve(config_path),
        "smtpd" | "pop3d" | "imapd" => inetd(cmd, config_path, &operands),
        "check-config" if operands.is_empty() => check_config(config_path),
        "passwd" if !operands.is_empty() => passwd(config_path, &operands),
        "queue" | "mailq" if !operands.is_empty() || cmd == "mailq" => {
            let ops = if cmd == "mailq" { vec!["list".to_string()] } else { operands };
            queue(config_path, &ops)
        }
        "cert" => cert(config_path, &operands),
        "spf" | "dkim" | "dmarc" | "dns-records" => filters(cmd, config_path, &operands),
        "sieve-test" => buzon::sieve::cli::main(&operands),
        "version" | "-V" | "--version" => {
            println!("buzon {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        "help" | "-h" | "--help" => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(EX_USAGE)
        }
    }
}

/// Takes `-c FILE` out of the arguments.
fn split_config_flag(args: &[String]) -> Result<(Option<PathBuf>, Vec<String>), String> {
    let mut path = None;
    let mut rest = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "-c" {
            path = Some(PathBuf::from(it.next().ok_or("-c needs a file name")?));
        } else if let Some(p) = a.strip_prefix("-c") {
            path = Some(PathBuf::from(p));
        } else {
            rest.push(a.clone());
        }
    }
    Ok((path, rest))
}

/// `-c FILE`, else $BUZON_CONFIG, else /etc/buzon/buzon.conf if it exists,
/// else the embedded default.
fn load_config(flag: Option<PathBuf>) -> Result<Config, String> {
    let path = flag.or_else(|| std::env::var_os("BUZON_CONFIG").filter(|v| !v.is_empty()).map(PathBuf::from));
    match path {
        Some(p) => Config::load(&p).map_err(|e| e.to_string()),
        None if std::path::Path::new(DEFAULT_CONFIG).exists() => {
            Config::load(std::path::Path::new(DEFAULT_CONFIG)).map_err(|e| e.to_string())
        }
        None => Ok(Config::embedded()),
    }
}

/// Sets up logging: the system log when asked for (falling back to standard error when no log daemon
/// listens on /dev/log), else standard error.
fn init_logging(level: log::LevelFilter, syslog: bool) {
    if syslog {
        match buzon::syslog::Syslog::open("/dev/log", level) {
            Ok(s) => {
                let _ = s.install();
                return;
            }
            Err(e) => eprintln!("buzon: /dev/log: {e}; logging to standard error"),
        }
    }
    let mut b = env_logger::Builder::new();
    b.filter_level(level);
    if let Ok(spec) = std::env::var("RUST_LOG") {
        b.parse_filters(&spec);
    }
    b.format(|f, r| {
        let now = buzon::timefmt::rfc5322(std::time::SystemTime::now());
        writeln!(
            f,
            "{now} buzon[{}]: {} {}",
            std::process::id(),
            r.level().as_str().to_ascii_lowercase(),
            r.args()
        )
    });
    b.init();
}

fn serve(flag: Option<PathBuf>) -> ExitCode {
    let mut config = match load_config(flag) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("buzon: {e}");
            return ExitCode::from(EX_CONFIG);
        }
    };
    init_logging(config.log_level, config.log_syslog);
    if config.source.is_none() {
        // The embedded default serves TLS too, with a certificate made on first start.
        let names = vec![config.hostname.clone(), "localhost".to_string()];
        match buzon::cert::ensure_self_signed(&config.data_dir.join("tls"), &names) {
            Ok((cert, key)) => {
                config.tls_cert = Some(cert);
                config.tls_key = Some(key);
            }
            Err(e) => eprintln!("buzon: no TLS for the embedded default: {e}"),
        }
        print_embedded_notice(&config);
    }
    match buzon::server::serve(Arc::new(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("event=fatal error=\"{e}\"");
            eprintln!("buzon: {e}");
            ExitCode::from(EX_SOFTWARE)
        }
    }
}

/// `buzon smtpd|pop3d|imapd --inetd`: one connection on standard input (and output). Standard error
/// may be the client's connection too, so errors go to the system log, and to standard error only
/// when it is not a socket.
fn inetd(cmd: &str, flag: Option<PathBuf>, operands: &[String]) -> ExitCode {
    let fatal = |e: &str, code: u8| {
        if !buzon::server::inetd::stderr_is_socket() {
            eprintln!("buzon {cmd} --inetd: {e}");
        }
        // The system log, unless a logger is installed already.
        if !log::log_enabled!(log::Level::Error)
            && let Ok(s) = buzon::syslog::Syslog::open("/dev/log", log::LevelFilter::Error)
        {
            let _ = s.install();
        }
        log::error!("event=fatal mode=inetd error=\"{e}\"");
        ExitCode::from(code)
    };
    let has = |f: &str| operands.iter().any(|o| o == f);
    let known = ["--inetd", "--submission", "--tls"];
    let service = buzon::server::inetd::service_for(cmd, has("--submission"), has("--tls"));
    let (Some(service), true, true) =
        (service, has("--inetd"), operands.iter().all(|o| known.contains(&o.as_str())))
    else {
        eprintln!("{USAGE}");
        return ExitCode::from(EX_USAGE);
    };
    let config = match load_config(flag) {
        Ok(c) => c,
        Err(e) => return fatal(&e, EX_CONFIG),
    };
    if let Ok(s) = buzon::syslog::Syslog::open("/dev/log", config.log_level) {
        let _ = s.install();
    }
    let client = match buzon::server::inetd::take_client() {
        Ok(c) => c,
        Err(e) => return fatal(&e, EX_NOINPUT),
    };
    match buzon::server::inetd::run(Arc::new(config), service, client) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fatal(&e, EX_SOFTWARE),
    }
}

fn queue(flag: Option<PathBuf>, args: &[String]) -> ExitCode {
    let config = match load_config(flag) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("buzon: {e}");
            return ExitCode::from(EX_CONFIG);
        }
    };
    let mut out = std::io::stdout();
    match buzon::queue::cli::run(&config.data_dir, args, &mut out) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("buzon: {e}");
            ExitCode::from(EX_USAGE)
        }
    }
}

/// `buzon spf|dkim|dmarc ...`: the sender checks and DKIM keys by hand (filters/cli.rs).
fn filters(cmd: &str, flag: Option<PathBuf>, args: &[String]) -> ExitCode {
    let config = match load_config(flag) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("buzon: {e}");
            return ExitCode::from(EX_CONFIG);
        }
    };
    match buzon::filters::cli::run(cmd, &config, args, &mut std::io::stdout()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("buzon {cmd}: {e}");
            ExitCode::from(match e {
                buzon::filters::cli::CliError::Usage(_) => EX_USAGE,
                buzon::filters::cli::CliError::Failed(_) => 1,
            })
        }
    }
}

/// `buzon cert self-signed ...`: a new key and self-signed certificate (see cert.rs).
fn cert(flag: Option<PathBuf>, args: &[String]) -> ExitCode {
    const EX_CANTCREAT: u8 = 73;
    let config = match load_config(flag) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("buzon: {e}");
            return ExitCode::from(EX_CONFIG);
        }
    };
    match buzon::cert::run(&config, args, &mut std::io::stdout()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("buzon: {e}");
            ExitCode::from(match e {
                buzon::cert::CertError::Usage(_) => EX_USAGE,
                buzon::cert::CertError::Exists(_) | buzon::cert::CertError::Failed(_) => EX_CANTCREAT,
            })
        }
    }
}

fn print_embedded_notice(c: &Config) {
    let addrs = |v: &[std::net::SocketAddr]| v.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(" ");
    let users = match &c.users {
        UsersSpec::File(p) => p.display().to_string(),
        UsersSpec::System => "the system's users".into(),
    };
    eprintln!(
        "buzon: no {DEFAULT_CONFIG}: running on the embedded default (loopback only)\n\
         \x20 SMTP on {}, submission on {}\n\
         \x20 IMAP on {}, POP3 on {}, webmail on http://{}/\n\
         \x20 local domains: {}\n\
         \x20 users in {users}, mail under {}\n\
         \x20 add a user:  buzon passwd alice@localhost\n\
         \x20 then try:    swaks --server 127.0.0.1:2525 --to alice@localhost",
        addrs(&c.smtp_listen),
        addrs(&c.submission_listen),
        addrs(&c.imap_listen),
        addrs(&c.pop3_listen),
        addrs(&c.web.listen),
        c.local_domains.join(" "),
        c.mailbox.template,
    );
}

fn check_config(flag: Option<PathBuf>) -> ExitCode {
    match load_config(flag) {
        Ok(c) => {
            print!("{}", c.render());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("buzon: {e}");
            ExitCode::from(EX_CONFIG)
        }
    }
}

/// `buzon passwd [-c FILE] [-s SCHEME] USER` (operands after `-c` is taken out).
fn passwd(flag: Option<PathBuf>, operands: &[String]) -> ExitCode {
    use buzon::auth::scheme::{DEFAULT_SCHEME, Scheme};
    let (scheme, user) = match operands {
        [user] if !user.starts_with('-') => (DEFAULT_SCHEME, user.as_str()),
        [s, user] if s.len() > 2 && s.starts_with("-s") => match s[2..].parse::<Scheme>() {
            Ok(scheme) => (scheme, user.as_str()),
            Err(e) => {
                eprintln!("buzon: {e}");
                return ExitCode::from(EX_USAGE);
            }
        },
        [s, name, user] if s == "-s" => match name.parse::<Scheme>() {
            Ok(scheme) => (scheme, user.as_str()),
            Err(e) => {
                eprintln!("buzon: {e} (try SHA512-CRYPT, CRYPT, ARGON2ID, SCRAM-SHA-256, CRAM-MD5, PLAIN)");
                return ExitCode::from(EX_USAGE);
            }
        },
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(EX_USAGE);
        }
    };
    let config = match load_config(flag) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("buzon: {e}");
            return ExitCode::from(EX_CONFIG);
        }
    };
    let UsersSpec::File(path) = &config.users else {
        eprintln!("buzon: users = system: set Unix passwords with passwd(1)");
        return ExitCode::from(EX_CONFIG);
    };
    if user.is_empty() || user.contains([':', '\n', ' ']) {
        eprintln!("buzon: {user:?}: a user name may not be empty or contain ':', spaces or newlines");
        return ExitCode::from(EX_USAGE);
    }
    let password = match read_password() {
        Ok(p) if !p.is_empty() => p,
        Ok(_) => {
            eprintln!("buzon: empty password refused");
            return ExitCode::from(EX_USAGE);
        }
        Err(e) => {
            eprintln!("buzon: reading the password: {e}");
            return ExitCode::from(EX_USAGE);
        }
    };
    match buzon::auth::passwd_file::set_password_scheme(path, user, &password, scheme) {
        Ok(()) => {
            println!("buzon: password set for {user} in {} ({scheme})", path.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("buzon: {}: {e}", path.display());
            ExitCode::from(EX_SOFTWARE)
        }
    }
}

/// One line from stdin; on a terminal, asked for with echo off.
fn read_password() -> std::io::Result<String> {
    let stdin = std::io::stdin();
    let tty = stdin.is_terminal();
    let mut line = String::new();
    if tty {
        eprint!("New password: ");
        let _echo = EchoOff::new();
        stdin.read_line(&mut line)?;
        eprintln!();
    } else {
        stdin.lock().take(4096).read_to_string(&mut line)?;
        line = line.lines().next().unwrap_or("").to_string();
    }
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

/// Turns terminal echo off while it lives.
struct EchoOff(Option<libc::termios>);

impl EchoOff {
    fn new() -> EchoOff {
        // SAFETY: tcgetattr/tcsetattr on fd 0 with a struct we own.
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(0, &mut t) != 0 {
                return EchoOff(None);
            }
            let old = t;
            t.c_lflag &= !libc::ECHO;
            libc::tcsetattr(0, libc::TCSANOW, &t);
            EchoOff(Some(old))
        }
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        if let Some(t) = &self.0 {
            // SAFETY: restores the settings read in new().
            unsafe { libc::tcsetattr(0, libc::TCSANOW, t) };
        }
    }
}
