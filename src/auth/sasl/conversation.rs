//! The server's side of a SASL exchange (RFC 4422) as every protocol runs it: SMTP AUTH (RFC
//! 4954), POP3 AUTH (RFC 5034), IMAP AUTHENTICATE (RFC 3501 6.2.2, SASL-IR RFC 4959). Which
//! mechanisms a connection may use now, the initial response (`=` is an empty one), the response
//! lines (`*` cancels, base64, the empty answer server-final data asks for) and what each step
//! comes to; the protocol only words its replies (334 / `+` / tagged OK and NO).

use super::{
    AuthError, ChannelBinding, Credentials, Exchange, Mechanism, Step, decode_base64, encode_base64,
};

/// What every protocol's session asks of the server to log a client in: SMTP AUTH, POP3
/// USER/PASS/APOP/AUTH, IMAP LOGIN/AUTHENTICATE. The server's connection context implements it
/// once for the three.
pub trait Login {
    /// The user database; None: no login is possible now.
    fn credentials(&self) -> Option<&dyn Credentials>;
    /// Fills `buf` with random bytes (SASL nonces).
    fn random(&self, buf: &mut [u8]);
    /// A login failed (`user` is empty when SASL did not tell); the caller counts it.
    fn auth_failed(&self, user: &str);
    /// A login succeeded.
    fn auth_succeeded(&self, _user: &str, _mechanism: &str) {}
    /// The client's address has failed too often lately: logins are refused for now.
    fn auth_blocked(&self) -> bool;
}

/// What a session knows of its TLS layer.
#[derive(Clone, Debug)]
pub struct TlsInfo {
    /// "TLSv1.3 TLS13_AES_256_GCM_SHA384", for Received: and the log.
    pub description: String,
    pub bindings: Vec<ChannelBinding>,
}

/// Whether `m` may be used on this connection now: the -PLUS mechanisms need TLS channel bindings;
/// those that send the password itself need TLS or `cleartext_ok` (a trusted network).
pub fn usable(m: Mechanism, tls: Option<&TlsInfo>, cleartext_ok: bool) -> bool {
    if m.needs_channel_binding() {
        return tls.is_some_and(|t| !t.bindings.is_empty());
    }
    !m.sends_cleartext() || tls.is_some() || cleartext_ok
}

/// An initial response as the client sent it (base64, `=` for an empty one); None when it does not
/// decode.
pub fn initial_response(arg: &[u8]) -> Option<Vec<u8>> {
    match arg {
        b"=" => Some(Vec::new()),
        b64 => std::str::from_utf8(b64).ok().and_then(decode_base64),
    }
}

/// What a step of the conversation comes to.
#[derive(Debug, PartialEq, Eq)]
pub enum Turn {
    /// Send this (base64) as a continuation and read the client's next line.
    Continue(String),
    /// The client proved it is `user`, with `mechanism`.
    Authenticated {
        user: String,
        mechanism: &'static str,
    },
    Failed(Failure),
}

/// Why a conversation ended without a login.
#[derive(Debug, PartialEq, Eq)]
pub enum Failure {
    /// The client sent `*`.
    Cancelled,
    /// Not base64, not the empty response that must follow server-final data, or a message the
    /// mechanism cannot parse; the text says which.
    Malformed(String),
    /// The user database cannot answer now.
    Temporary(String),
    /// Wrong user, password or proof, or a channel-binding mismatch (RFC 5802 6): count it.
    Rejected,
}

/// A SASL exchange in progress.
pub struct Conversation {
    exchange: Exchange,
    /// Server-final data went out in a continuation: only an empty response may follow.
    finishing: Option<String>,
}

impl Conversation {
    /// Starts `mech` (one of `offered`, usable now). Channel bindings are given to the exchange
    /// exactly when a -PLUS mechanism is offered (RFC 5802 6: only then is a SCRAM client's "y" a
    /// downgrade). `service` names the protocol for DIGEST-MD5's digest-uri ("smtp" by default).
    /// The conversation comes back when the exchange goes on.
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        mech: Mechanism,
        offered: &[Mechanism],
        tls: Option<&TlsInfo>,
        hostname: &str,
        service: Option<&'static str>,
        initial: Option<&[u8]>,
        creds: &dyn Credentials,
        random: &mut dyn FnMut(&mut [u8]),
    ) -> (Option<Conversation>, Turn) {
        let plus = offered.iter().any(|m| m.needs_channel_binding());
        let bindings = match (tls, plus) {
            (Some(t), true) => t.bindings.clone(),
            _ => Vec::new(),
        };
        let mut exchange = Exchange::new(mech, hostname, bindings, random);
        if let Some(s) = service {
            exchange = exchange.with_service(s);
        }
        let step = exchange.start(initial, creds);
        let mut c = Conversation { exchange, finishing: None };
        let turn = c.turn(step);
        (matches!(turn, Turn::Continue(_)).then_some(c), turn)
    }

    /// The client's response line (CRLF stripped). After anything but [`Turn::Continue`] the
    /// conversation is over.
    pub fn line(&mut self, line: &[u8], creds: &dyn Credentials) -> Turn {
        if line == b"*" {
            return Turn::Failed(Failure::Cancelled);
        }
        if let Some(user) = self.finishing.take() {
            return match line.is_empty() {
                true => Turn::Authenticated { user, mechanism: self.exchange.mechanism().name() },
                false => Turn::Failed(Failure::Malformed("Expected an empty response".into())),
            };
        }
        let Some(response) = std::str::from_utf8(line).ok().and_then(decode_base64) else {
            return Turn::Failed(Failure::Malformed("Cannot decode the response as base64".into()));
        };
        let step = self.exchange.step(&response, creds);
        self.turn(step)
    }

    pub fn mechanism(&self) -> Mechanism {
        self.exchange.mechanism()
    }

    /// Server-final data went out in the last [`Turn::Continue`]: the exchange has succeeded and
    /// only the client's empty response is awaited (ManageSieve sends that data in its OK instead,
    /// RFC 5804 2.1, and answers for the client with [`Conversation::line`] and an empty line).
    pub fn finishing(&self) -> bool {
        self.finishing.is_some()
    }

    fn turn(&mut self, step: Step) -> Turn {
        let mechanism = self.exchange.mechanism().name();
        match step {
            Step::Challenge(c) => Turn::Continue(encode_base64(&c)),
            // RFC 4954 4, RFC 5034 4, RFC 3501 6.2.2: server-final data goes in a continuation
            // and the client answers it empty.
            Step::Success { user, final_data: Some(data) } => {
                self.finishing = Some(user);
                Turn::Continue(encode_base64(&data))
            }
            Step::Success { user, final_data: None } => Turn::Authenticated { user, mechanism },
            Step::Failure(AuthError::Malformed(m)) => {
                Turn::Failed(Failure::Malformed(format!("Bad response: {m}")))
            }
            Step::Failure(AuthError::Temporary(e)) => Turn::Failed(Failure::Temporary(e)),
            Step::Failure(AuthError::BadCredentials | AuthError::ChannelBindingMismatch) => {
                Turn::Failed(Failure::Rejected)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::sasl::{ScramHash, ScramKeys};

    struct One;
    impl Credentials for One {
        fn verify(&self, user: &str, password: &[u8]) -> Result<Option<String>, String> {
            Ok((user == "alice" && password == b"pw").then(|| "alice".into()))
        }
        fn cram_md5(&self, _: &str, _: &[u8]) -> Result<Option<(String, [u8; 16])>, String> {
            Ok(None)
        }
        fn plaintext(&self, _: &str) -> Result<Option<(String, String)>, String> {
            Ok(None)
        }
        fn scram(&self, _: &str, _: ScramHash) -> Result<Option<(String, ScramKeys)>, String> {
            Ok(None)
        }
    }

    fn zero(b: &mut [u8]) {
        b.fill(0);
    }

    #[test]
    fn plain_with_and_without_initial_response() {
        let offered = [Mechanism::Plain, Mechanism::Login];
        let ir = initial_response(encode_base64(b"\0alice\0pw").as_bytes()).unwrap();
        let (c, turn) =
            Conversation::start(Mechanism::Plain, &offered, None, "h", None, Some(&ir), &One, &mut zero);
        assert!(c.is_none());
        assert_eq!(turn, Turn::Authenticated { user: "alice".into(), mechanism: "PLAIN" });
        let (c, turn) =
            Conversation::start(Mechanism::Plain, &offered, None, "h", None, None, &One, &mut zero);
        assert_eq!(turn, Turn::Continue(String::new()));
        let mut c = c.unwrap();
        assert_eq!(c.line(encode_base64(b"\0alice\0bad").as_bytes(), &One), Turn::Failed(Failure::Rejected));
    }

    #[test]
    fn cancel_garbage_and_empty_initial_response() {
        let offered = [Mechanism::Login];
        let (c, _) = Conversation::start(Mechanism::Login, &offered, None, "h", None, None, &One, &mut zero);
        let mut c = c.unwrap();
        assert_eq!(c.line(b"*", &One), Turn::Failed(Failure::Cancelled));
        let (c, _) = Conversation::start(Mechanism::Login, &offered, None, "h", None, None, &One, &mut zero);
        assert!(matches!(c.unwrap().line(b"%%%", &One), Turn::Failed(Failure::Malformed(_))));
        assert_eq!(initial_response(b"="), Some(Vec::new()));
        assert_eq!(initial_response(b"not base64!"), None);
    }

    #[test]
    fn plus_needs_bindings_and_cleartext_needs_tls_or_trust() {
        let tls = TlsInfo { description: "TLSv1.3".into(), bindings: Vec::new() };
        assert!(!usable(Mechanism::ScramSha256Plus, Some(&tls), true));
        assert!(usable(Mechanism::ScramSha256, None, false));
        assert!(!usable(Mechanism::Plain, None, false));
        assert!(usable(Mechanism::Plain, None, true));
        assert!(usable(Mechanism::Plain, Some(&tls), false));
    }
}
