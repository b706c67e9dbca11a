//! Frames over the helper's socketpair: a 4-byte big-endian length and the payload, with at most
//! one file descriptor passed alongside (SCM_RIGHTS, unix(7)) on the frame's first byte.

use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

use super::proto::MAX_FRAME;

/// Sends one frame, with `fd` attached when given.
pub fn send(sock: &mut UnixStream, payload: &[u8], fd: Option<RawFd>) -> io::Result<()> {
    if payload.len() > MAX_FRAME {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "frame too long"));
    }
    let mut data = Vec::with_capacity(4 + payload.len());
    data.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    data.extend_from_slice(payload);
    let Some(fd) = fd else { return sock.write_all(&data) };
    // The descriptor goes with the first sendmsg; the rest of the frame follows as plain bytes.
    let mut iov = libc::iovec { iov_base: data.as_ptr() as *mut libc::c_void, iov_len: data.len() };
    // SAFETY: CMSG_SPACE is a pure computation.
    let space = unsafe { libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) } as usize;
    let mut cbuf = vec![0u8; space];
    // SAFETY: a zeroed msghdr is valid; the pointers set below outlive the sendmsg call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr().cast();
    msg.msg_controllen = space as _;
    // SAFETY: the control buffer has room for one cmsghdr carrying one descriptor.
    let sent = unsafe {
        let c = libc::CMSG_FIRSTHDR(&msg);
        if c.is_null() {
            return Err(io::Error::other("no room for the descriptor"));
        }
        (*c).cmsg_level = libc::SOL_SOCKET;
        (*c).cmsg_type = libc::SCM_RIGHTS;
        (*c).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<RawFd>(), fd);
        libc::sendmsg(sock.as_raw_fd(), &msg, libc::MSG_NOSIGNAL)
    };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    sock.write_all(&data[sent as usize..])
}

/// Receives one frame and the descriptor passed with it, if any. Ok(None) at end of file.
pub fn recv(sock: &mut UnixStream) -> io::Result<Option<(Vec<u8>, Option<OwnedFd>)>> {
    let mut len = [0u8; 4];
    let mut iov = libc::iovec { iov_base: len.as_mut_ptr().cast(), iov_len: 4 };
    // SAFETY: as in send.
    let space = unsafe { libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) } as usize;
    let mut cbuf = vec![0u8; space];
    // SAFETY: a zeroed msghdr is valid; the buffers outlive the call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr().cast();
    msg.msg_controllen = space as _;
    // SAFETY: recvmsg into the buffers above; MSG_CMSG_CLOEXEC so no child inherits the descriptor.
    let n = unsafe { libc::recvmsg(sock.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    if n == 0 {
        return Ok(None);
    }
    let mut fd = None;
    // SAFETY: walking the control messages the kernel wrote into cbuf.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let payload = (*c).cmsg_len as usize - libc::CMSG_LEN(0) as usize;
                let count = payload / std::mem::size_of::<RawFd>();
                for i in 0..count {
                    let raw = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<RawFd>().add(i));
                    // The first is ours; any extra is closed at once (only one is ever sent).
                    let owned = OwnedFd::from_raw_fd(raw);
                    if fd.is_none() {
                        fd = Some(owned);
                    }
                }
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    if msg.msg_flags & libc::MSG_CTRUNC != 0 {
        return Err(io::Error::other("descriptors were truncated"));
    }
    sock.read_exact(&mut len[n as usize..])?;
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "frame too long"));
    }
    let mut payload = vec![0u8; len];
    sock.read_exact(&mut payload)?;
    Ok(Some((payload, fd)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Seek;

    #[test]
    fn frames_and_descriptors() {
        let (mut a, mut b) = UnixStream::pair().unwrap();
        send(&mut a, b"hello", None).unwrap();
        let (p, fd) = recv(&mut b).unwrap().unwrap();
        assert_eq!((p.as_slice(), fd.is_none()), (&b"hello"[..], true));
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(b"message").unwrap();
        f.rewind().unwrap();
        send(&mut a, b"deliver", Some(f.as_raw_fd())).unwrap();
        let (p, fd) = recv(&mut b).unwrap().unwrap();
        assert_eq!(p, b"deliver");
        let mut got = String::new();
        std::fs::File::from(fd.unwrap()).read_to_string(&mut got).unwrap();
        assert_eq!(got, "message");
        a.write_all(&((MAX_FRAME + 1) as u32).to_be_bytes()).unwrap();
        assert!(recv(&mut b).is_err(), "an oversized frame ends the conversation");
        drop(a);
        assert!(recv(&mut b).unwrap().is_none());
    }
}
