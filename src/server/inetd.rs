//! inetd mode: one connection on standard input (inetd `nowait`, tcpserver, systemd `Accept=yes`),
//! served by the same session code as the daemon, in this process, then exit. Nothing is written to
//! standard output or standard error, which are the client's connection too (inetd(8) passes the
//! socket as descriptors 0, 1 and 2): log lines go to the system log only.

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
