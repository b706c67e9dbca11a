//! Listening sockets: SO_REUSEADDR so a restart never waits for TIME_WAIT,
//! and IPV6_V6ONLY on IPv6 sockets, so `0.0.0.0:25 [::]:25` binds both
//! families side by side as Postfix does, whatever net.ipv6.bindv6only says.

use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};

/// Backlog of pending connections; the kernel caps it at somaxconn.
const BACKLOG: i32 = 1024;

/// Binds a non-blocking listener on `addr`.
pub fn bind(addr: SocketAddr) -> std::io::Result<mio::net::TcpListener> {
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    sock.set_reuse_address(true)?;
    if addr.is_ipv6() {
        sock.set_only_v6(true)?;
    }
    sock.set_cloexec(true)?;
    sock.set_nonblocking(true)?;
    sock.bind(&addr.into())?;
    sock.listen(BACKLOG)?;
    Ok(mio::net::TcpListener::from_std(sock.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_families_on_one_port() {
        let v4 = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let port = v4.local_addr().unwrap().port();
        match bind(SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, port))) {
            Ok(v6) => assert_eq!(v6.local_addr().unwrap().port(), port),
            // A machine without IPv6 loopback cannot show it.
            Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::AddrNotAvailable, "{e}"),
        }
    }
}
