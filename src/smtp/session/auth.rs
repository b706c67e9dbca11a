//! STARTTLS (RFC 3207) and AUTH (RFC 4954, SASL RFC 4422) in the SMTP
//! session: still no I/O. The caller performs the TLS handshake after
//! `Next::StartTls` and reports it with [`Session::on_tls`]; SASL exchanges
//! run through `auth::sasl::Exchange` with the backend's user database.

use super::{Backend, Command, Next, Phase, Session, Step};
use crate::auth::sasl::{self, AuthError, ChannelBinding, Exchange, Mechanism};
use crate::smtp::reply::Reply;

/// What the session knows of its TLS layer.
pub(super) struct TlsInfo {
    pub description: String,
    pub bindings: Vec<ChannelBinding>,
}

/// A SASL exchange in progress.
pub(super) struct Sasl {
    exchange: Exchange,
    /// Server-final data was sent in a 334; only an empty response may follow (RFC 4954 4).
    finishing: Option<String>,
}

/// RFC 4954 4: the longest AUTH line or SASL response we read.
pub const MAX_AUTH_LINE: usize = 12288;

impl Session {
    /// The TLS handshake after STARTTLS (or at connect, for implicit TLS) is
    /// done. RFC 3207 4.2: everything learnt before is forgotten, the SASL
    /// authentication too; the client must say EHLO (and AUTH) again.
    pub fn on_tls(&mut self, description: String, bindings: Vec<ChannelBinding>) {
        self.tls = Some(TlsInfo { description, bindings });
        self.reset_transaction();
        self.user = None;
        self.sasl = None;
        self.helo = None;
        self.ehlo = false;
        self.phase = Phase::Connected;
    }

    /// The longest command line to read: where AUTH is offered, its line and
    /// the SASL responses may be up to 12288 octets (RFC 4954 4).
    pub fn max_line(&self, normal: usize) -> usize {
        if self.params.auth_mechanisms.is_empty() { normal } else { normal.max(MAX_AUTH_LINE) }
    }

    /// The mechanisms to list after AUTH in EHLO, if any may be used now.
    pub(super) fn offered_mechanisms(&self) -> Option<String> {
        if self.user.is_some() {
            return None;
        }
        let names: Vec<&str> = self
            .params
            .auth_mechanisms
            .iter()
            .filter(|m| self.mechanism_usable(m))
            .map(|m| m.name())
            .collect();
        (!names.is_empty()).then(|| names.join(" "))
    }

    /// Cleartext mechanisms need TLS (or a trusted network); -PLUS needs TLS.
    fn mechanism_usable(&self, m: &Mechanism) -> bool {
        let plus = matches!(m, Mechanism::ScramSha1Plus | Mechanism::ScramSha256Plus);
        if plus {
            return self.tls.as_ref().is_some_and(|t| !t.bindings.is_empty());
        }
        !m.sends_cleartext() || self.tls.is_some() || self.peer.cleartext_auth
    }

    pub(super) fn starttls(&mut self, _: Command, _: &dyn Backend) -> Step {
        if !self.params.starttls {
            return self.fail(Reply::not_implemented());
        }
        if self.tls.is_some() {
            return self.fail(Reply::new(503, "5.5.1", "Error: TLS already active"));
        }
        if self.transaction.is_some() {
            return self.fail(Reply::new(503, "5.5.1", "Error: MAIL transaction in progress"));
        }
        Step { reply: Some(Reply::new(220, "2.0.0", "Ready to start TLS")), next: Next::StartTls }
    }

    pub(super) fn auth(&mut self, cmd: Command, backend: &dyn Backend) -> Step {
        let Command::Auth(args) = cmd else { return self.out_of_order() };
        if self.params.auth_mechanisms.is_empty() {
            return self.fail(Reply::not_implemented());
        }
        // RFC 4954 4: after EHLO, and never inside a mail transaction.
        match self.phase {
            Phase::Ready => {}
            Phase::Connected => return self.fail(Reply::new(503, "5.5.1", "Error: send EHLO first")),
            _ => return self.fail(Reply::new(503, "5.5.1", "Error: MAIL transaction in progress")),
        }
        if self.user.is_some() {
            return self.fail(Reply::new(503, "5.5.1", "Error: already authenticated"));
        }
        let mut parts = args.splitn(2, ' ');
        let name = parts.next().unwrap_or("");
        let initial = parts.next().map(str::trim);
        let Some(mech) = Mechanism::from_name(name).filter(|m| self.params.auth_mechanisms.contains(m))
        else {
            return self.fail(Reply::new(504, "5.5.4", "Unrecognized authentication type"));
        };
        if !self.mechanism_usable(&mech) {
            // RFC 4954 6: 538 when the mechanism needs an encrypted connection first.
            let text = "Encryption required for requested authentication mechanism";
            return self.fail(Reply::new(538, "5.7.11", text));
        }
        if backend.auth_blocked() {
            return self.fail(Reply::new(454, "4.7.0", "Too many failed logins; try again later"));
        }
        let Some(creds) = backend.credentials() else {
            return self.fail(Reply::new(454, "4.7.0", "Temporary authentication failure"));
        };
        let initial = match initial {
            None => None,
            // RFC 4954 4: "=" is an empty initial response.
            Some("=") => Some(Vec::new()),
            Some(b64) => match sasl::decode_base64(b64) {
                Some(v) => Some(v),
                None => return self.fail(Reply::new(501, "5.5.2", "Cannot decode response")),
            },
        };
        // RFC 5802 6: offer channel bindings (and so refuse a "y" client) only when -PLUS is advertised.
        let plus = self.params.auth_mechanisms.iter().any(|m| m.needs_channel_binding());
        let bindings = match (&self.tls, plus) {
            (Some(t), true) => t.bindings.clone(),
            _ => Vec::new(),
        };
        let mut random = |buf: &mut [u8]| backend.random(buf);
        let mut exchange = Exchange::new(mech, &self.params.hostname, bindings, &mut random);
        let step = exchange.start(initial.as_deref(), creds);
        self.sasl = Some(Sasl { exchange, finishing: None });
        self.sasl_step(step, backend)
    }

    /// One SASL response line while `Phase::Auth`.
    pub(super) fn sasl_line(&mut self, line: &[u8], backend: &dyn Backend) -> Step {
        // RFC 4954 4: "*" cancels the exchange.
        if line == b"*" {
            self.sasl = None;
            self.phase = Phase::Ready;
            return self.fail(Reply::new(501, "5.0.0", "Authentication cancelled"));
        }
        let Some(mut sasl) = self.sasl.take() else { return self.out_of_order() };
        if let Some(user) = sasl.finishing.take() {
            if line.is_empty() {
                return self.logged_in(user);
            }
            self.phase = Phase::Ready;
            return self.fail(Reply::new(501, "5.5.2", "Expected an empty response"));
        }
        let Some(response) = std::str::from_utf8(line).ok().and_then(sasl::decode_base64) else {
            self.phase = Phase::Ready;
            return self.fail(Reply::new(501, "5.5.2", "Cannot decode response"));
        };
        let Some(creds) = backend.credentials() else { return self.out_of_order() };
        let step = sasl.exchange.step(&response, creds);
        self.sasl = Some(sasl);
        self.sasl_step(step, backend)
    }

    fn sasl_step(&mut self, step: sasl::Step, backend: &dyn Backend) -> Step {
        match step {
            sasl::Step::Challenge(c) => {
                self.phase = Phase::Auth;
                Step::reply(Reply::new(334, "", sasl::encode_base64(&c)))
            }
            sasl::Step::Success { user, final_data: Some(data) } => {
                self.note_login(&user, backend);
                // RFC 4954 4: additional data with success goes in a 334; the client answers empty.
                if let Some(s) = self.sasl.as_mut() {
                    s.finishing = Some(user);
                }
                self.phase = Phase::Auth;
                Step::reply(Reply::new(334, "", sasl::encode_base64(&data)))
            }
            sasl::Step::Success { user, final_data: None } => {
                self.note_login(&user, backend);
                self.logged_in(user)
            }
            sasl::Step::Failure(e) => {
                self.sasl = None;
                self.phase = Phase::Ready;
                match e {
                    AuthError::Malformed(m) => {
                        self.fail(Reply::new(501, "5.5.2", format!("Bad response: {m}")))
                    }
                    AuthError::Temporary(_) => {
                        self.fail(Reply::new(454, "4.7.0", "Temporary authentication failure"))
                    }
                    AuthError::BadCredentials | AuthError::ChannelBindingMismatch => {
                        backend.auth_failed("");
                        self.fail(Reply::new(535, "5.7.8", "Error: authentication failed"))
                    }
                }
            }
        }
    }

    fn note_login(&self, user: &str, backend: &dyn Backend) {
        let mech = self.sasl.as_ref().map(|s| s.exchange.mechanism().name()).unwrap_or("");
        backend.auth_succeeded(user, mech);
    }

    fn logged_in(&mut self, user: String) -> Step {
        self.sasl = None;
        self.phase = Phase::Ready;
        // RFC 4954: an authenticated client may submit mail for any domain.
        self.peer.relay_allowed = true;
        self.user = Some(user);
        Step::reply(Reply::new(235, "2.7.0", "Authentication successful"))
    }
}
