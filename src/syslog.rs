//! Logging to the system log through /dev/log (`log = syslog`), facility mail, as syslog(3) writes
//! it (RFC 3164 4.1: `<PRI>Mmm dd hh:mm:ss tag[pid]: message`). No global state beyond the logger the
//! `log` crate holds; the socket reconnects when the log daemon restarts.

use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// RFC 3164 4.1.1 / RFC 5424 6.2.1: facility 2 is the mail system.
const FACILITY_MAIL: u8 = 2;

pub struct Syslog {
    path: PathBuf,
    sock: Mutex<Option<UnixDatagram>>,
    level: log::LevelFilter,
    pid: u32,
}

impl Syslog {
    /// A logger writing to `path` (normally /dev/log). Fails when no log daemon listens there.
    pub fn open(path: impl Into<PathBuf>, level: log::LevelFilter) -> std::io::Result<Syslog> {
        let path = path.into();
        let sock = connect(&path)?;
        Ok(Syslog { path, sock: Mutex::new(Some(sock)), level, pid: std::process::id() })
    }

    /// Installs it as the process's logger.
    pub fn install(self) -> Result<(), log::SetLoggerError> {
        let level = self.level;
        log::set_logger(Box::leak(Box::new(self)))?;
        log::set_max_level(level);
        Ok(())
    }

    fn send(&self, line: &[u8]) {
        let Ok(mut guard) = self.sock.lock() else { return };
        for _ in 0..2 {
            if guard.is_none() {
                *guard = connect(&self.path).ok();
            }
            match guard.as_ref().map(|s| s.send(line)) {
                Some(Ok(_)) => return,
                // The daemon restarted (ECONNREFUSED/ENOTCONN): reconnect once and retry.
                Some(Err(_)) => *guard = None,
                None => return,
            }
        }
    }
}

fn connect(path: &std::path::Path) -> std::io::Result<UnixDatagram> {
    let s = UnixDatagram::unbound()?;
    s.connect(path)?;
    Ok(s)
}

/// RFC 5424 6.2.1 severities.
fn severity(level: log::Level) -> u8 {
    match level {
        log::Level::Error => 3,
        log::Level::Warn => 4,
        log::Level::Info => 6,
        log::Level::Debug | log::Level::Trace => 7,
    }
}

/// `<PRI>Mmm dd hh:mm:ss buzon[pid]: level message` (UTC; the daemon may restamp it).
pub fn format(level: log::Level, now: SystemTime, pid: u32, msg: &str) -> String {
    const MONTHS: [&str; 12] =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let secs = now.duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    let (_, m, d) = crate::timefmt::civil_from_days(secs.div_euclid(86400));
    let t = secs.rem_euclid(86400);
    let month = MONTHS.get((m - 1).clamp(0, 11) as usize).copied().unwrap_or("Jan");
    // RFC 3164 4.1.2: no control characters in the message; a newline would split the record.
    let msg: String = msg.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    format!(
        "<{}>{month} {d:>2} {:02}:{:02}:{:02} buzon[{pid}]: {} {msg}",
        FACILITY_MAIL * 8 + severity(level),
        t / 3600,
        t / 60 % 60,
        t % 60,
        level.as_str().to_ascii_lowercase()
    )
}

impl log::Log for Syslog {
    fn enabled(&self, m: &log::Metadata) -> bool {
        m.level() <= self.level
    }
    fn log(&self, r: &log::Record) {
        if self.enabled(r.metadata()) {
            self.send(format(r.level(), SystemTime::now(), self.pid, &r.args().to_string()).as_bytes());
        }
    }
    fn flush(&self) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_as_syslog3_does() {
        let t = UNIX_EPOCH + Duration::from_secs(1_795_847_358); // 2026-11-28 06:29:18 UTC
        assert_eq!(
            format(log::Level::Info, t, 42, "session=1 event=connect"),
            "<22>Nov 28 06:29:18 buzon[42]: info session=1 event=connect"
        );
        assert!(format(log::Level::Error, t, 1, "a\nb").starts_with("<19>"));
        assert!(format(log::Level::Error, t, 1, "a\nb").ends_with("error a b"));
    }

    #[test]
    fn sends_datagrams_to_the_log_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let daemon = UnixDatagram::bind(&path).unwrap();
        let s = Syslog::open(&path, log::LevelFilter::Info).unwrap();
        log::Log::log(&s, &log::Record::builder().level(log::Level::Warn).args(format_args!("x=1")).build());
        log::Log::log(&s, &log::Record::builder().level(log::Level::Debug).args(format_args!("no")).build());
        let mut buf = [0u8; 256];
        let n = daemon.recv(&mut buf).unwrap();
        let got = std::str::from_utf8(&buf[..n]).unwrap();
        assert!(got.starts_with("<20>") && got.ends_with("warn x=1"), "{got}");
        daemon.set_nonblocking(true).unwrap();
        assert!(daemon.recv(&mut buf).is_err(), "debug is below the level");
    }
}
