//! inetd mode: one connection on standard input (inetd `nowait`, tcpserver, systemd `Accept=yes`),
//! served by the same session code as the daemon, in this process, then exit. Nothing is written to
//! standard output or standard error when they are the client's connection too (inetd(8) passes the
//! socket as descriptors 0, 1 and 2): log lines go to the system log; a fatal error also goes to
//! standard error when that is not a socket (run by hand, or by a service manager with a journal).

use std::net::TcpStream;
use std::os::fd::FromRawFd;
use std::sync::Arc;

use super::acceptor::Job;
use super::{Registry, Service};
use crate::config::Config;
use crate::local::{Resolver, ResolverConfig};
use crate::queue::Queue;
use crate::queue::wake::Waker;
use crate::smtp;

/// The service a `buzon smtpd|pop3d|imapd [--submission] [--tls]` command serves.
pub fn service_for(command: &str, submission: bool, implicit_tls: bool) -> Option<Service> {
    Some(match (command, submission, implicit_tls) {
        ("smtpd", false, false) => Service::Smtp,
        ("smtpd", true, false) => Service::Submission,
        ("smtpd", _, true) => Service::Submissions,
        ("pop3d", false, false) => Service::Pop3,
        ("pop3d", false, true) => Service::Pop3s,
        ("imapd", false, false) => Service::Imap,
        ("imapd", false, true) => Service::Imaps,
        _ => return None,
    })
}

/// What makes descriptor 0 unusable for inetd mode, or None when it is a connected TCP socket.
/// Checked before anything else, so that `buzon smtpd --inetd` run by hand says what is wrong.
pub fn stdin_problem() -> Option<String> {
    let kind = |fd| {
        // SAFETY: a zeroed stat is valid output space; fstat only writes it.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        (unsafe { libc::fstat(fd, &mut st) } == 0).then_some(st.st_mode & libc::S_IFMT)
    };
    let what = match kind(0) {
        None => return Some("standard input is closed".into()),
        Some(libc::S_IFSOCK) => None,
        Some(libc::S_IFCHR) if std::io::IsTerminal::is_terminal(&std::io::stdin()) => Some("a terminal"),
        Some(libc::S_IFCHR) => Some("a character device (such as /dev/null)"),
        Some(libc::S_IFIFO) => Some("a pipe"),
        Some(libc::S_IFREG) => Some("a file"),
        Some(libc::S_IFDIR) => Some("a directory"),
        Some(_) => Some("not a socket"),
    };
    if let Some(what) = what {
        return Some(format!("standard input is {what}, not a TCP connection"));
    }
    let mut ty: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `ty` and `len` are valid output space of the sizes given.
    let r = unsafe {
        libc::getsockopt(0, libc::SOL_SOCKET, libc::SO_TYPE, (&mut ty as *mut libc::c_int).cast(), &mut len)
    };
    // SAFETY: a zeroed sockaddr_storage is valid output space; getsockname writes at most `alen`.
    let mut addr: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut alen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    let named =
        unsafe { libc::getsockname(0, (&mut addr as *mut libc::sockaddr_storage).cast(), &mut alen) } == 0;
    let family = libc::c_int::from(addr.ss_family);
    if r != 0 || ty != libc::SOCK_STREAM || !named || !(family == libc::AF_INET || family == libc::AF_INET6) {
        return Some("standard input is a socket but not a TCP one (a Unix or datagram socket)".into());
    }
    // SAFETY: as for getsockname.
    let mut peer: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut plen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    if unsafe { libc::getpeername(0, (&mut peer as *mut libc::sockaddr_storage).cast(), &mut plen) } != 0 {
        return Some(
            "standard input is a TCP socket with no client connected (a listening socket: inetd's \"wait\" \
             mode; use \"nowait\")"
                .into(),
        );
    }
    None
}

/// Whether standard error may carry a message for a person: it is open and not a socket (in inetd
/// mode a socket there is the client's connection, which hears nothing but the protocol).
pub fn stderr_for_people() -> bool {
    // SAFETY: a zeroed stat is valid output space; fstat only writes it.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    let open = unsafe { libc::fstat(2, &mut st) } == 0;
    open && st.st_mode & libc::S_IFMT != libc::S_IFSOCK
}

/// Serves the connection on descriptor 0 as `service`. Mail for other domains is queued and the
/// runner of a `buzon serve` on the same data_dir is woken; without one it waits for
/// `buzon queue flush` from a running server.
pub fn run(config: Arc<Config>, service: Service) -> Result<(), String> {
    // SAFETY: descriptor 0 belongs to this process for its whole life; it is taken once, here.
    let tcp = unsafe { TcpStream::from_raw_fd(0) };
    let peer = match tcp.peer_addr() {
        Ok(p) => p,
        Err(e) => {
            std::mem::forget(tcp); // not ours to close if it is not a socket
            return Err(format!("standard input is not a TCP connection: {e}"));
        }
    };
    crate::spool::prepare_dirs(&config.data_dir)
        .map_err(|e| format!("data_dir {}: {e}", config.data_dir.display()))?;
    let super::Privileged { tls, helper } = super::keys_helper_and_drop(&config)?;
    let resolver = Arc::new(Resolver::new(ResolverConfig::from_config(&config))?);
    // Creates what is missing, removes nothing: the server and other sessions may be enqueueing.
    let queue = Arc::new(
        Queue::open(&config.data_dir).map_err(|e| format!("queue in {}: {e}", config.data_dir.display()))?,
    );
    let waker = Arc::new(Waker::remote(queue.dir()));
    // The failure table is data_dir/auth-failures: this process's failures count for the next.
    let limiter = smtp::conn::Context::limiter(&config);
    let ctx = smtp::conn::Context::new(Arc::clone(&config), resolver, queue, waker, tls, helper, limiter)?;
    let registry = Arc::new(Registry::default());
    let slot = registry.enter(peer.ip(), None, usize::MAX).ok_or("connection registry refused")?;
    log::info!("event=inetd service={} client={peer}", service.name());
    let job = Job { stream: tcp, peer, service, slot };
    match service {
        Service::Pop3 | Service::Pop3s => crate::pop3::conn::run(job, &ctx),
        Service::Imap | Service::Imaps => crate::imap::conn::run(job, &ctx),
        _ => smtp::conn::run(job, &ctx),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_name_services() {
        assert_eq!(service_for("smtpd", false, false), Some(Service::Smtp));
        assert_eq!(service_for("smtpd", true, false), Some(Service::Submission));
        assert_eq!(service_for("smtpd", false, true), Some(Service::Submissions));
        assert_eq!(service_for("imapd", false, true), Some(Service::Imaps));
        assert_eq!(service_for("pop3d", true, false), None);
        assert_eq!(service_for("ftpd", false, false), None);
    }
}
