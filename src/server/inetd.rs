//! inetd mode: one connection on standard input (inetd `nowait`, tcpserver, systemd `Accept=yes`),
//! tcpserver, s6, socat EXEC, or a pipe pair for a try by hand), served by the same session code as
//! the daemon, in this process, then exit. Nothing is written to standard output or standard error
//! while they may be the client's connection (inetd(8) passes the socket as descriptors 0, 1 and
//! 2): log lines go to the system log; what stops the start goes to standard error too when that
//! is not a socket.

use std::fs::File;
use std::net::{SocketAddr, TcpStream};
use std::os::fd::FromRawFd;
use std::os::unix::net::UnixStream;
use std::sync::Arc;

use super::{Registry, Service};
use crate::config::Config;
use crate::queue::Queue;
use crate::queue::wake::Waker;
use crate::server::context::Context;
use crate::transport::Transport;

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

/// What standard input is, and who is on the other side.
pub fn take_client() -> Result<(Transport, SocketAddr), String> {
    // SAFETY: fstat on descriptor 0 with valid output space.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(0, &mut st) } != 0 {
        return Err(format!("standard input: {}", std::io::Error::last_os_error()));
    }
    if st.st_mode & libc::S_IFMT != libc::S_IFSOCK {
        // A pipe pair (or a terminal) on 0 and 1: a protocol tried by hand, `printf ... | buzon smtpd
        // --inetd`; the peer is whatever the super-server says, else unknown (no relaying, no
        // cleartext passwords).
        // SAFETY: descriptors 0 and 1 belong to this process for its whole life; taken once, here.
        let (input, output) = unsafe { (File::from_raw_fd(0), File::from_raw_fd(1)) };
        let t = Transport::Pipe { input, output, read_timeout: None, write_timeout: None };
        return Ok((t, env_peer().unwrap_or(UNKNOWN)));
    }
    let int = |opt| {
        let mut v: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: getsockopt of an int option into an int.
        let r = unsafe {
            libc::getsockopt(0, libc::SOL_SOCKET, opt, (&mut v as *mut libc::c_int).cast(), &mut len)
        };
        (r == 0).then_some(v)
    };
    if int(libc::SO_ACCEPTCONN) == Some(1) {
        return Err("standard input is a listening socket, not a client's connection: \
                    run it from inetd with `nowait` (or systemd with Accept=yes)"
            .into());
    }
    if int(libc::SO_TYPE) != Some(libc::SOCK_STREAM) {
        return Err("standard input is not a stream socket (inetd.conf: use `stream tcp`)".into());
    }
    match int(libc::SO_DOMAIN) {
        Some(libc::AF_INET | libc::AF_INET6) => {
            // SAFETY: as above.
            let tcp = unsafe { TcpStream::from_raw_fd(0) };
            let peer = tcp.peer_addr().map_err(|e| format!("standard input: the client's address: {e}"))?;
            Ok((Transport::Tcp(tcp), peer))
        }
        // socat's EXEC socketpair, s6-ipcserver: the peer from the environment.
        Some(libc::AF_UNIX) => {
            // SAFETY: as above.
            let u = unsafe { UnixStream::from_raw_fd(0) };
            Ok((Transport::Unix(u), env_peer().unwrap_or(UNKNOWN)))
        }
        _ => Err("standard input is a socket of an unknown family".into()),
    }
}

/// Whether standard error is a socket (then it is the client's connection: inetd passes it on 0-2).
pub fn stderr_is_socket() -> bool {
    // SAFETY: fstat on descriptor 2 with valid output space.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    unsafe { libc::fstat(2, &mut st) == 0 && st.st_mode & libc::S_IFMT == libc::S_IFSOCK }
}

/// An unknown client: the unspecified address, which is in no network list.
const UNKNOWN: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 0);

/// The client's address as the super-server tells it: UCSPI's TCPREMOTEIP/TCPREMOTEPORT (tcpserver,
/// s6-tcpserver) or socat's SOCAT_PEERADDR/SOCAT_PEERPORT.
fn env_peer() -> Option<SocketAddr> {
    for (ip, port) in [("TCPREMOTEIP", "TCPREMOTEPORT"), ("SOCAT_PEERADDR", "SOCAT_PEERPORT")] {
        if let Ok(ip) = std::env::var(ip).unwrap_or_default().parse::<std::net::IpAddr>() {
            let port = std::env::var(port).ok().and_then(|p| p.parse().ok()).unwrap_or(0);
            return Some(SocketAddr::new(ip, port));
        }
    }
    None
}

/// Serves the connection on descriptors 0 and 1 as `service`. Mail for other domains is queued and the
/// runner of a `buzon serve` on the same data_dir is woken; without one it waits for
/// `buzon queue flush` from a running server.
pub fn run(config: Arc<Config>, service: Service, client: (Transport, SocketAddr)) -> Result<(), String> {
    let (stream, peer) = client;
    crate::spool::prepare_dirs(&config.data_dir)
        .map_err(|e| format!("data_dir {}: {e}", config.data_dir.display()))?;
    let super::Privileged { tls, helper } = super::keys_helper_and_drop(&config)?;
    let resolver = Arc::new(super::resolver(&config, &helper)?);
    let queue = Arc::new(
        Queue::open(&config.data_dir).map_err(|e| format!("queue in {}: {e}", config.data_dir.display()))?,
    );
    let waker = Arc::new(Waker::remote(queue.dir()));
    // The failure table is data_dir/auth-failures: this process's failures count for the next.
    let limiter = Context::limiter(&config);
    let ctx = Context::new(Arc::clone(&config), resolver, queue, waker, tls, helper, limiter)?;
    let registry = Arc::new(Registry::default());
    let limits = super::Limits { max: usize::MAX, per_ip: usize::MAX, reserved: [0; 4] };
    let slot =
        registry.enter(peer.ip(), service.class(), &limits).map_err(|_| "connection registry refused")?;
    log::info!("event=inetd service={} client={peer}", service.name());
    let mut stream = stream;
    stream
        .set_write_timeout(Some(super::acceptor::write_timeout(service, &config)))
        .map_err(|e| format!("standard input: {e}"))?;
    let mut conn = super::acceptor::connection(Arc::new(ctx), stream, peer, service, slot);
    super::drivers::run_here(conn.as_mut());
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
