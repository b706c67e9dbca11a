//! Web sessions: who is logged in (a random token in an HttpOnly cookie), the session's CSRF token,
//! and its channel to the user's own IMAP session (mail.rs). A session unused for
//! `web.session_timeout` ends, and so does its channel; logging out ends it at once. The table
//! outlives configuration reloads, as the login limiter does.

use std::collections::HashMap;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::server::eventloop::Spawner;
use crate::web::imapc::Client;

/// Sessions kept in all; past it the oldest unused one ends first.
const MAX_SESSIONS: usize = 1000;

/// The sessions of the process, and how it starts in-process IMAP sessions for them.
pub struct Web {
    sessions: Mutex<HashMap<String, Arc<Session>>>,
    pub spawner: Option<Spawner>,
}

/// One logged-in browser.
pub struct Session {
    pub user: String,
    /// The address mail is sent from.
    pub email: String,
    /// The CSRF token every form of the session carries; a POST is refused unless it brings this
    /// token back (compared in constant time).
    pub csrf: String,
    last: Mutex<Instant>,
    /// The channel to the user's IMAP session, one request at a time.
    pub mail: Mutex<Client<UnixStream>>,
}

impl Session {
    pub fn mail(&self) -> MutexGuard<'_, Client<UnixStream>> {
        self.mail.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A token of 32 random octets, base64url without padding (43 characters).
pub fn token() -> String {
    use base64::Engine;
    let mut b = [0u8; 32];
    crate::server::context::fill_random(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// Compares two tokens in constant time.
pub fn same(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

impl Web {
    pub fn new(spawner: Option<Spawner>) -> Web {
        Web { sessions: Mutex::new(HashMap::new()), spawner }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Arc<Session>>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts a session; its token goes into the cookie.
    pub fn create(&self, user: &str, email: &str, mail: Client<UnixStream>, timeout: Duration) -> String {
        let now = Instant::now();
        let session = Arc::new(Session {
            user: user.to_string(),
            email: email.to_string(),
            csrf: token(),
            last: Mutex::new(now),
            mail: Mutex::new(mail),
        });
        let key = token();
        let mut s = self.lock();
        s.retain(|_, v| now.duration_since(*v.last.lock().unwrap_or_else(|p| p.into_inner())) < timeout);
        if s.len() >= MAX_SESSIONS {
            let oldest = s
                .iter()
                .min_by_key(|(_, v)| *v.last.lock().unwrap_or_else(|p| p.into_inner()))
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                s.remove(&k);
            }
        }
        s.insert(key.clone(), session);
        key
    }

    /// The session of a cookie's token, if it is alive; using it keeps it alive.
    pub fn get(&self, key: &str, timeout: Duration) -> Option<Arc<Session>> {
        let mut s = self.lock();
        let session = s.get(key)?;
        let now = Instant::now();
        let mut last = session.last.lock().unwrap_or_else(|p| p.into_inner());
        if now.duration_since(*last) >= timeout {
            drop(last);
            s.remove(key);
            return None;
        }
        *last = now;
        drop(last);
        Some(Arc::clone(session))
    }

    /// Ends a session (logout, or its channel broke).
    pub fn end(&self, key: &str) {
        self.lock().remove(key);
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens() {
        let (a, b) = (token(), token());
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
        assert!(same(&a, &a.clone()));
        assert!(!same(&a, &b));
        assert!(!same(&a, ""));
    }

    #[test]
    fn sessions_expire_and_end() {
        let web = Web::new(None);
        let (x, _y) = UnixStream::pair().unwrap();
        let key = web.create("alice", "alice@example.org", Client::new(x), Duration::from_secs(60));
        assert_eq!(web.get(&key, Duration::from_secs(60)).map(|s| s.user.clone()).as_deref(), Some("alice"));
        assert!(web.get("nope", Duration::from_secs(60)).is_none());
        assert!(web.get(&key, Duration::ZERO).is_none(), "expired");
        assert!(web.get(&key, Duration::from_secs(60)).is_none(), "and gone");
        let (x, _y) = UnixStream::pair().unwrap();
        let key = web.create("bob", "bob@example.org", Client::new(x), Duration::from_secs(60));
        web.end(&key);
        assert!(web.is_empty());
    }
}
