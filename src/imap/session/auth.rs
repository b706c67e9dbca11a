//! IMAP session: STARTTLS (RFC 3501 6.2.1, RFC 9051 6.2.1), LOGIN (RFC 3501 6.2.3) and AUTHENTICATE
//! with SASL-IR (RFC 3501 6.2.2, RFC 4959, SASL RFC 4422), the cleartext rule (RFC 8314, RFC 3501
//! LOGINDISABLED) and the RFC 5530 codes of failed logins.

use super::{Action, Backend, Outcome, Reply, Session, State, Tagged, bad, clean_text, no, ok_code};
use crate::auth::sasl::{self, ChannelBinding, Conversation, Failure, Mechanism, TlsInfo, Turn};
use crate::imap::types::Command;

/// An AUTHENTICATE exchange in progress, and the tag that ends it (RFC 3501 6.2.2).
pub(super) struct Sasl {
    tag: String,
    conversation: Conversation,
}

impl Session {
    /// The TLS handshake is done (after STARTTLS, or at connect for imaps). RFC 3501 6.2.1: what was
    /// learnt before is forgotten; the capabilities change.
    pub fn on_tls(&mut self, details: Option<(String, Vec<ChannelBinding>)>) {
        if let Some((description, bindings)) = details {
            self.tls = Some(TlsInfo { description, bindings });
        }
    }

    /// One SASL response line while [`super::Mode::SaslResponse`] (CRLF stripped). RFC 3501
    /// 6.2.2: "*" cancels and the server answers BAD; a response that is not base64 gets BAD.
    pub fn on_sasl_line(&mut self, line: &[u8], b: &dyn Backend) -> Vec<Action> {
        let mut out = Vec::new();
        let Some(mut sasl) = self.sasl.take() else {
            return self.answer("*", bad("No authentication in progress"), out);
        };
        let Some(creds) = b.credentials() else {
            return self.answer(&sasl.tag, no("UNAVAILABLE", "Temporary authentication failure"), out);
        };
        let turn = sasl.conversation.line(line, creds);
        let tag = sasl.tag.clone();
        self.sasl = Some(sasl);
        match self.sasl_turn(turn, b, &mut out) {
            Some(reply) => {
                self.sasl = None;
                self.answer(&tag, reply, out)
            }
            None => super::actions(out, Outcome::Continue),
        }
    }

    /// RFC 8314 / RFC 3501 6.2.3: passwords in the clear only under TLS or from trusted networks.
    pub(super) fn cleartext_allowed(&self) -> bool {
        self.tls_active() || self.peer.cleartext_auth
    }

    pub(super) fn tls_active(&self) -> bool {
        self.tls.is_some() || self.peer.tls
    }

    /// Cleartext mechanisms need TLS (or a trusted network); -PLUS needs TLS channel bindings.
    pub(super) fn mechanism_usable(&self, m: &Mechanism) -> bool {
        sasl::usable(*m, self.tls.as_ref(), self.cleartext_allowed())
    }

    pub(super) fn starttls(&mut self, _: &str, _: Command, _: &dyn Backend, _: &mut Vec<u8>) -> Reply {
        if !self.params.starttls {
            return Some(bad("STARTTLS is not offered"));
        }
        if self.tls_active() {
            return Some(bad("TLS is already active"));
        }
        Some(super::ok("Begin TLS negotiation now").then(Outcome::StartTls))
    }

    pub(super) fn login(&mut self, _: &str, cmd: Command, b: &dyn Backend, _: &mut Vec<u8>) -> Reply {
        let Command::Login { user, password } = cmd else { return Some(bad("Internal error")) };
        if !self.cleartext_allowed() {
            // RFC 3501 6.2.3 LOGINDISABLED; RFC 5530 PRIVACYREQUIRED.
            return Some(no("PRIVACYREQUIRED", "LOGIN is disabled without TLS; use STARTTLS first"));
        }
        if b.auth_blocked() {
            return Some(no("UNAVAILABLE", "Too many failed logins, try again later"));
        }
        let Some(creds) = b.credentials() else {
            return Some(no("UNAVAILABLE", "Temporary authentication failure"));
        };
        let Ok(name) = String::from_utf8(user) else {
            b.auth_failed("");
            return Some(auth_failed());
        };
        match creds.verify(&name, &password) {
            Ok(Some(user)) => {
                b.auth_succeeded(&user, "LOGIN");
                Some(self.logged_in(user, "LOGIN", b))
            }
            Ok(None) => {
                b.auth_failed(&name);
                Some(auth_failed())
            }
            Err(e) => {
                log::warn!("session={} event=imap_auth_error error=\"{}\"", self.peer.sid, clean_text(&e));
                Some(no("UNAVAILABLE", "Temporary authentication failure"))
            }
        }
    }

    pub(super) fn authenticate(
        &mut self,
        tag: &str,
        cmd: Command,
        b: &dyn Backend,
        out: &mut Vec<u8>,
    ) -> Reply {
        let Command::Authenticate { mechanism, initial } = cmd else {
            return Some(bad("Internal error"));
        };
        let Some(mech) = Mechanism::from_name(&mechanism).filter(|m| self.params.auth_mechanisms.contains(m))
        else {
            // RFC 3501 6.2.2: an unsupported mechanism gets a tagged NO.
            return Some(super::tagged("NO", None, "Unsupported authentication mechanism").counted());
        };
        if !self.mechanism_usable(&mech) {
            let text = if mech.needs_channel_binding() {
                "This mechanism needs TLS channel binding"
            } else {
                "This mechanism is disabled without TLS; use STARTTLS first"
            };
            return Some(no("PRIVACYREQUIRED", text));
        }
        if b.auth_blocked() {
            return Some(no("UNAVAILABLE", "Too many failed logins, try again later"));
        }
        let Some(creds) = b.credentials() else {
            return Some(no("UNAVAILABLE", "Temporary authentication failure"));
        };
        // RFC 4959 3: "=" is an empty initial response.
        let initial = match initial.as_deref().map(sasl::initial_response) {
            None => None,
            Some(Some(v)) => Some(v),
            Some(None) => return Some(bad("Cannot decode the initial response as base64")),
        };
        let mut random = |buf: &mut [u8]| b.random(buf);
        let (conversation, turn) = Conversation::start(
            mech,
            &self.params.auth_mechanisms,
            self.tls.as_ref(),
            &self.params.hostname,
            Some("imap"),
            initial.as_deref(),
            creds,
            &mut random,
        );
        self.sasl = conversation.map(|conversation| Sasl { tag: tag.to_string(), conversation });
        let reply = self.sasl_turn(turn, b, out);
        if reply.is_some() {
            self.sasl = None;
        }
        reply
    }

    /// Writes a continuation (the exchange goes on: `None`) or says how it ended.
    fn sasl_turn(&mut self, turn: Turn, b: &dyn Backend, out: &mut Vec<u8>) -> Option<Tagged> {
        match turn {
            Turn::Continue(text) => {
                // RFC 3501 7.5: "+ " and the base64 challenge.
                out.extend_from_slice(format!("+ {text}\r\n").as_bytes());
                None
            }
            Turn::Authenticated { user, mechanism } => {
                b.auth_succeeded(&user, mechanism);
                Some(self.logged_in(user, mechanism, b))
            }
            Turn::Failed(f) => Some(match f {
                Failure::Cancelled => bad("Authentication cancelled"),
                Failure::Malformed(m) => bad(m),
                Failure::Temporary(e) => {
                    log::warn!(
                        "session={} event=imap_auth_error error=\"{}\"",
                        self.peer.sid,
                        clean_text(&e)
                    );
                    no("UNAVAILABLE", "Temporary authentication failure")
                }
                Failure::Rejected => {
                    b.auth_failed("");
                    auth_failed()
                }
            }),
        }
    }

    /// Credentials are good: open the user's folders and enter the authenticated state with the new
    /// capabilities (RFC 3501 7.1 CAPABILITY code in the tagged OK).
    fn logged_in(&mut self, user: String, mech: &str, b: &dyn Backend) -> Tagged {
        self.sasl = None;
        match b.open_store(&user) {
            Ok(opened) => {
                let here = match opened {
                    super::Opened::Here(store) => {
                        self.store = Some(store);
                        "session"
                    }
                    super::Opened::Elsewhere => {
                        self.handed_off = true;
                        "mailproc"
                    }
                };
                log::info!("session={} event=login user={user} mechanism={mech} in={here}", self.peer.sid);
                self.user = Some(user);
                self.state = State::Authenticated;
                ok_code(format!("CAPABILITY {}", self.capabilities()), "Logged in")
            }
            Err(e) => {
                log::warn!(
                    "session={} event=imap_store_open_failed user={user} error=\"{}\"",
                    self.peer.sid,
                    clean_text(&e)
                );
                no("UNAVAILABLE", "Mailbox cannot be opened now, try again later")
            }
        }
    }
}

/// RFC 5530 AUTHENTICATIONFAILED, counted towards the error limit as a brake on guessing.
fn auth_failed() -> Tagged {
    no("AUTHENTICATIONFAILED", "Authentication failed").counted()
}

impl Tagged {
    /// Counts this reply towards `max_errors`.
    pub(super) fn counted(mut self) -> Tagged {
        self.counts = true;
        self
    }
}
