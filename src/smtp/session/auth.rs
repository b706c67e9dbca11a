//! STARTTLS (RFC 3207) and AUTH (RFC 4954, SASL RFC 4422) in the SMTP
//! session: still no I/O. The caller performs the TLS handshake after
//! `Next::StartTls` and reports it with [`Session::on_tls`]; SASL exchanges
//! run through `auth::sasl::Exchange` with the backend's user database.

use super::{Backend, Command, Next, Phase, Session, Step};
use crate::auth::sasl::{self, ChannelBinding, Conversation, Failure, Mechanism, TlsInfo, Turn};
use crate::smtp::reply::Reply;

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

    /// Cleartext mechanisms need TLS (or a trusted network); -PLUS needs TLS channel bindings.
    fn mechanism_usable(&self, m: &Mechanism) -> bool {
        sasl::usable(*m, self.tls.as_ref(), self.peer.cleartext_auth)
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
        // RFC 4954 4: "=" is an empty initial response.
        let initial = match initial.map(|a| sasl::initial_response(a.as_bytes())) {
            None => None,
            Some(Some(v)) => Some(v),
            Some(None) => return self.fail(Reply::new(501, "5.5.2", "Cannot decode response")),
        };
        let mut random = |buf: &mut [u8]| backend.random(buf);
        let (sasl, turn) = Conversation::start(
            mech,
            &self.params.auth_mechanisms,
            self.tls.as_ref(),
            &self.params.hostname,
            None,
            initial.as_deref(),
            creds,
            &mut random,
        );
        self.sasl = sasl;
        self.sasl_turn(turn, backend)
    }

    /// One SASL response line while `Phase::Auth` (RFC 4954 4: "*" cancels).
    pub(super) fn sasl_line(&mut self, line: &[u8], backend: &dyn Backend) -> Step {
        let Some(creds) = backend.credentials() else { return self.out_of_order() };
        let Some(sasl) = self.sasl.as_mut() else { return self.out_of_order() };
        let turn = sasl.line(line, creds);
        self.sasl_turn(turn, backend)
    }

    fn sasl_turn(&mut self, turn: Turn, backend: &dyn Backend) -> Step {
        match turn {
            Turn::Continue(text) => {
                self.phase = Phase::Auth;
                Step::reply(Reply::new(334, "", text))
            }
            Turn::Authenticated { user, mechanism } => {
                backend.auth_succeeded(&user, mechanism);
                self.logged_in(user)
            }
            Turn::Failed(f) => {
                self.sasl = None;
                self.phase = Phase::Ready;
                match f {
                    Failure::Cancelled => self.fail(Reply::new(501, "5.0.0", "Authentication cancelled")),
                    Failure::Malformed(m) => self.fail(Reply::new(501, "5.5.2", m)),
                    Failure::Temporary(_) => {
                        self.fail(Reply::new(454, "4.7.0", "Temporary authentication failure"))
                    }
                    Failure::Rejected => {
                        backend.auth_failed("");
                        self.fail(Reply::new(535, "5.7.8", "Error: authentication failed"))
                    }
                }
            }
        }
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
