//! The server's end of one channel to the helper. Every request carries a fresh id and only the
//! answer with that id is taken; a frame with another id (a late answer to an earlier request) is
//! dropped. A worker channel that times out or fails is poisoned: it is closed, the request fails
//! temporarily, and the next request asks the helper for a new worker (the old one is killed).

use std::os::fd::{OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use super::{frame, proto};

pub struct Lane {
    sock: Option<UnixStream>,
    next_id: u64,
    timeout: Duration,
    /// False for the master's channel, which cannot be replaced: a late answer is dropped by id.
    poison_on_timeout: bool,
}

impl Lane {
    pub fn new(timeout: Duration, poison_on_timeout: bool) -> Lane {
        Lane { sock: None, next_id: 1, timeout, poison_on_timeout }
    }

    pub fn is_open(&self) -> bool {
        self.sock.is_some()
    }

    /// The channel's descriptor, if open.
    pub fn fd(&self) -> Option<RawFd> {
        use std::os::fd::AsRawFd;
        self.sock.as_ref().map(|s| s.as_raw_fd())
    }

    pub fn attach(&mut self, sock: UnixStream) {
        self.sock = Some(sock);
    }

    /// Sends `body` (with `fd` attached) and waits for the answer that carries its id.
    pub fn ask(&mut self, body: &str, fd: Option<RawFd>) -> Result<(Vec<u8>, Option<OwnedFd>), String> {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1).max(1);
        let timeout = self.timeout;
        let Some(sock) = self.sock.as_mut() else { return Err("helper: no channel".into()) };
        let result = exchange(sock, id, body, fd, timeout);
        if let Err((e, fatal)) = &result
            && (*fatal || self.poison_on_timeout)
        {
            log::warn!("event=helper_channel_poisoned error=\"{e}\"");
            self.sock = None;
        }
        result.map_err(|(e, _)| format!("helper: {e}"))
    }
}

/// One request and its answer. Err carries whether the failure was more than a timeout.
fn exchange(
    sock: &mut UnixStream,
    id: u64,
    body: &str,
    fd: Option<RawFd>,
    timeout: Duration,
) -> Result<(Vec<u8>, Option<OwnedFd>), (String, bool)> {
    let deadline = Instant::now() + timeout;
    frame::send(sock, proto::tag(id, body).as_bytes(), fd).map_err(|e| (e.to_string(), true))?;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(("no answer in time".into(), false));
        }
        sock.set_read_timeout(Some(left)).map_err(|e| (e.to_string(), true))?;
        match frame::recv(sock) {
            Ok(Some((payload, fd))) => match proto::untag(&payload) {
                Ok((got, rest)) if got == id => return Ok((rest.to_vec(), fd)),
                Ok((got, _)) => log::warn!("event=helper_stale_answer id={got} expected={id}"),
                Err(e) => return Err((format!("malformed answer: {e}"), true)),
            },
            Ok(None) => return Err(("it has exited".into(), true)),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                return Err(("no answer in time".into(), false));
            }
            Err(e) => return Err((e.to_string(), true)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(sock: &mut UnixStream, id: u64, body: &str) {
        frame::send(sock, proto::tag(id, body).as_bytes(), None).unwrap();
    }

    fn request_id(sock: &mut UnixStream) -> u64 {
        let (payload, _) = frame::recv(sock).unwrap().unwrap();
        proto::untag(&payload).unwrap().0
    }

    #[test]
    fn an_answer_with_another_id_is_dropped() {
        let (ours, mut theirs) = UnixStream::pair().unwrap();
        let mut lane = Lane::new(Duration::from_secs(5), true);
        lane.attach(ours);
        let peer = std::thread::spawn(move || {
            let id = request_id(&mut theirs);
            answer(&mut theirs, id.wrapping_sub(1), "yes"); // a late answer to an earlier request
            answer(&mut theirs, id, "no");
            theirs
        });
        assert_eq!(lane.ask("verify x y", None).unwrap().0, b"no");
        drop(peer.join().unwrap());
        assert!(lane.is_open());
    }

    #[test]
    fn a_timeout_poisons_a_worker_channel_so_the_late_answer_is_never_taken() {
        let (ours, mut theirs) = UnixStream::pair().unwrap();
        let mut lane = Lane::new(Duration::from_millis(200), true);
        lane.attach(ours);
        let first = lane.ask("verify alice right", None);
        assert!(first.is_err(), "{first:?}");
        assert!(!lane.is_open(), "a channel that timed out is closed");
        // The slow answer comes after the timeout: the channel it would go to is gone, so it can
        // never be read as the answer to the next request.
        let id = request_id(&mut theirs);
        assert!(frame::send(&mut theirs, proto::tag(id, "yes").as_bytes(), None).is_err());
        assert!(lane.ask("verify mallory wrong", None).is_err());
    }

    #[test]
    fn the_master_channel_survives_a_timeout_and_drops_the_late_answer() {
        let (ours, mut theirs) = UnixStream::pair().unwrap();
        let mut lane = Lane::new(Duration::from_millis(200), false);
        lane.attach(ours);
        assert!(lane.ask("open login", None).is_err());
        assert!(lane.is_open());
        let late = request_id(&mut theirs);
        answer(&mut theirs, late, "late");
        let peer = std::thread::spawn(move || {
            let id = request_id(&mut theirs);
            answer(&mut theirs, id, "fresh");
            theirs
        });
        assert_eq!(lane.ask("open login", None).unwrap().0, b"fresh");
        drop(peer.join().unwrap());
    }

    #[test]
    fn an_exited_peer_poisons_the_channel() {
        let (ours, theirs) = UnixStream::pair().unwrap();
        let mut lane = Lane::new(Duration::from_secs(5), false);
        lane.attach(ours);
        drop(theirs);
        assert!(lane.ask("verify a b", None).is_err());
        assert!(!lane.is_open());
    }
}
