//! The privileged password helper: when the server drops root but checks
//! system users' passwords, a small child process forked before the drop
//! (while no thread exists) stays root and answers one question only, "is
//! this the password of this Unix user?", by reading /etc/shadow. It speaks
//! over a socketpair with length-prefixed frames, reads nothing else, and
//! exits when the server closes its end. The server never holds the shadow
//! file or root rights itself.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::Mutex;
use std::time::Duration;

/// The largest user name or password the helper reads.
const MAX_FIELD: u32 = 1024;

/// The server's end of the helper's socket.
pub struct PasswordHelper {
    sock: Mutex<UnixStream>,
}

impl PasswordHelper {
    /// Forks the helper. Must be called while the process is still root and
    /// has no other thread.
    pub fn spawn() -> Result<PasswordHelper, String> {
        let (ours, theirs) = UnixStream::pair().map_err(|e| format!("password helper: socketpair: {e}"))?;
        // SAFETY: no thread exists yet (see the module comment), so the child is a full copy of a
        // single-threaded process and may run ordinary Rust code.
        match unsafe { libc::fork() } {
            -1 => Err(format!("password helper: fork: {}", io::Error::last_os_error())),
            0 => {
                drop(ours);
                serve(theirs);
                // SAFETY: leave the child without running the parent's exit handlers.
                unsafe { libc::_exit(0) }
            }
            pid => {
                drop(theirs);
                log::info!("event=password_helper_started pid={pid}");
                let _ = ours.set_read_timeout(Some(Duration::from_secs(30)));
                Ok(PasswordHelper { sock: Mutex::new(ours) })
            }
        }
    }

    /// Asks the helper; Ok(true) when `password` is `user`'s.
    pub fn verify(&self, user: &str, password: &[u8]) -> Result<bool, String> {
        if user.len() > MAX_FIELD as usize || password.len() > MAX_FIELD as usize {
            return Ok(false);
        }
        let mut sock = self.sock.lock().unwrap_or_else(|p| p.into_inner());
        let mut frame = Vec::with_capacity(8 + user.len() + password.len());
        for field in [user.as_bytes(), password] {
            frame.extend_from_slice(&(field.len() as u32).to_be_bytes());
            frame.extend_from_slice(field);
        }
        sock.write_all(&frame).map_err(|e| format!("password helper: {e}"))?;
        let mut answer = [0u8; 1];
        sock.read_exact(&mut answer).map_err(|e| format!("password helper: {e}"))?;
        match answer[0] {
            b'y' => Ok(true),
            b'n' => Ok(false),
            _ => Err("password helper: cannot read the shadow file".into()),
        }
    }
}

/// The helper's loop: one request, one byte of answer, until EOF.
fn serve(mut sock: UnixStream) {
    loop {
        let (Some(user), Some(password)) = (read_field(&mut sock), read_field(&mut sock)) else { return };
        let answer = match std::str::from_utf8(&user) {
            Ok(u) => match crate::auth::shadow::verify_system(u, &password) {
                Ok(true) => b'y',
                Ok(false) => b'n',
                Err(_) => b'e',
            },
            Err(_) => b'n',
        };
        if sock.write_all(&[answer]).is_err() {
            return;
        }
    }
}

fn read_field(sock: &mut UnixStream) -> Option<Vec<u8>> {
    let mut len = [0u8; 4];
    sock.read_exact(&mut len).ok()?;
    let len = u32::from_be_bytes(len);
    if len > MAX_FIELD {
        return None;
    }
    let mut buf = vec![0u8; len as usize];
    sock.read_exact(&mut buf).ok()?;
    Some(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_bounded() {
        let (mut a, mut b) = UnixStream::pair().unwrap();
        a.write_all(&5u32.to_be_bytes()).unwrap();
        a.write_all(b"alice").unwrap();
        assert_eq!(read_field(&mut b).unwrap(), b"alice");
        a.write_all(&(MAX_FIELD + 1).to_be_bytes()).unwrap();
        assert_eq!(read_field(&mut b), None, "an oversized frame ends the conversation");
        drop(a);
        assert_eq!(read_field(&mut b), None);
    }
}
