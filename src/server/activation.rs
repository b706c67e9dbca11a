//! Listening sockets handed over by the service manager (systemd socket activation, sd_listen_fds(3)):
//! `LISTEN_PID` must be this process, `LISTEN_FDS` sockets start at fd 3, and `LISTEN_FDNAMES` names
//! them (`FileDescriptorName=` in the .socket unit). A name says the protocol: `smtp`, `submission`,
//! `submissions` (or `smtps`), `pop3`, `pop3s`, `imap`, `imaps`, `sieve` (or `managesieve`); an unnamed socket is recognised by a
//! configured `*.listen` address or by its well-known port.

use std::net::{SocketAddr, TcpListener};
use std::os::fd::{FromRawFd, RawFd};

use crate::config::Config;
use crate::server::Service;

/// sd_listen_fds(3): the first passed descriptor.
const FIRST_FD: RawFd = 3;

/// The passed sockets with their services, or `None` when the process was not socket-activated.
/// The variables are removed from the environment so that no child inherits them.
pub fn take(config: &Config) -> Result<Option<Vec<(Service, mio::net::TcpListener)>>, String> {
    let (Some(pid), Some(fds)) = (std::env::var_os("LISTEN_PID"), std::env::var_os("LISTEN_FDS")) else {
        return Ok(None);
    };
    let names = std::env::var("LISTEN_FDNAMES").unwrap_or_default();
    // SAFETY (for the three calls): the process is still single-threaded when listeners are set up.
    unsafe {
        std::env::remove_var("LISTEN_PID");
        std::env::remove_var("LISTEN_FDS");
        std::env::remove_var("LISTEN_FDNAMES");
    }
    if pid.to_str().and_then(|p| p.parse::<u32>().ok()) != Some(std::process::id()) {
        return Ok(None); // meant for another process (a parent that did not clear them)
    }
    let n: RawFd = fds
        .to_str()
        .and_then(|n| n.parse().ok())
        .filter(|n| (1..=64).contains(n))
        .ok_or_else(|| format!("LISTEN_FDS={fds:?}: expected a count of sockets from 1 to 64"))?;
    let names: Vec<&str> = names.split(':').collect();
    let mut out = Vec::new();
    for i in 0..n {
        let fd = FIRST_FD + i;
        // SAFETY: sd_listen_fds(3) hands these descriptors to this process; each is taken once.
        let std_listener = unsafe { TcpListener::from_raw_fd(fd) };
        let addr = std_listener
            .local_addr()
            .map_err(|e| format!("socket activation: descriptor {fd} is not a TCP listener: {e}"))?;
        let name = names.get(i as usize).copied().unwrap_or("");
        let service = service_for(name, addr, config).ok_or_else(|| {
            format!(
                "socket activation: descriptor {fd} ({addr}, name {name:?}) has no known service; name it \
                 with FileDescriptorName=smtp|submission|submissions|pop3|pop3s|imap|imaps|sieve"
            )
        })?;
        set_cloexec(fd);
        std_listener.set_nonblocking(true).map_err(|e| format!("descriptor {fd}: {e}"))?;
        out.push((service, mio::net::TcpListener::from_std(std_listener)));
    }
    Ok(Some(out))
}

/// The service of a passed socket: its name, else a configured address, else its port.
pub fn service_for(name: &str, addr: SocketAddr, config: &Config) -> Option<Service> {
    let by_name = match name {
        "smtp" => Some(Service::Smtp),
        "submission" => Some(Service::Submission),
        "submissions" | "smtps" => Some(Service::Submissions),
        "pop3" => Some(Service::Pop3),
        "pop3s" => Some(Service::Pop3s),
        "imap" | "imap2" => Some(Service::Imap),
        "imaps" => Some(Service::Imaps),
        "http" | "web" => Some(Service::Http),
        "https" => Some(Service::Https),
        "sieve" | "managesieve" => Some(Service::ManageSieve),
        _ => None,
    };
    if by_name.is_some() {
        return by_name;
    }
    for (service, addrs) in super::listen_table(config) {
        if addrs.contains(&addr) {
            return Some(service);
        }
    }
    match addr.port() {
        25 => Some(Service::Smtp),
        587 => Some(Service::Submission),
        465 => Some(Service::Submissions),
        110 => Some(Service::Pop3),
        995 => Some(Service::Pop3s),
        143 => Some(Service::Imap),
        993 => Some(Service::Imaps),
        80 => Some(Service::Http),
        443 => Some(Service::Https),
        4190 => Some(Service::ManageSieve),
        _ => None,
    }
}

fn set_cloexec(fd: RawFd) {
    // SAFETY: fcntl on a descriptor this process owns.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFD);
        if flags >= 0 {
            libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_by_name_address_and_port() {
        let mut c = Config::parse("smtp.listen = 127.0.0.1:2525\n", "t").unwrap();
        c.imap_listen = vec!["127.0.0.1:1143".parse().unwrap()];
        let a = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert_eq!(service_for("imaps", a("0.0.0.0:10993"), &c), Some(Service::Imaps));
        assert_eq!(service_for("smtps", a("0.0.0.0:1"), &c), Some(Service::Submissions));
        assert_eq!(service_for("", a("127.0.0.1:1143"), &c), Some(Service::Imap));
        assert_eq!(service_for("unknown", a("127.0.0.1:2525"), &c), Some(Service::Smtp));
        assert_eq!(service_for("", a("[::]:587"), &c), Some(Service::Submission));
        assert_eq!(service_for("web", a("0.0.0.0:8080"), &c), Some(Service::Http));
        assert_eq!(service_for("", a("0.0.0.0:443"), &c), Some(Service::Https));
        assert_eq!(service_for("other", a("0.0.0.0:8081"), &c), None);
    }
}
