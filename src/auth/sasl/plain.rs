//! SASL PLAIN (RFC 4616): one message `[authzid] NUL authcid NUL passwd`, checked against the
//! user database. Offer it only under TLS (RFC 4616 6, RFC 4954 4).

use super::{Credentials, Step, bad, malformed, temporary};

/// PLAIN keeps no state: everything arrives in one message.
pub(super) struct Plain;

impl Plain {
    pub(super) fn start(&mut self, initial: Option<&[u8]>, creds: &dyn Credentials) -> Step {
        match initial {
            // RFC 4422 5: without an initial response the server sends an empty challenge.
            None => Step::Challenge(Vec::new()),
            Some(msg) => self.step(msg, creds),
        }
    }

    pub(super) fn step(&mut self, msg: &[u8], creds: &dyn Credentials) -> Step {
        let (authzid, authcid, passwd) = match parse(msg) {
            Ok(parts) => parts,
            Err(e) => return malformed(e),
        };
        let user = match creds.verify(authcid, passwd.as_bytes()) {
            Ok(Some(user)) => user,
            Ok(None) => return bad(),
            Err(e) => return temporary(e),
        };
        // RFC 4616 2: the authzid, if given, is who the client acts as. We allow no proxying: it must
        // name the authenticated user itself (as typed, or canonical).
        if !authzid.is_empty() && authzid != authcid && authzid != user {
            return bad();
        }
        Step::Success { user, final_data: None }
    }
}

/// Splits the message into (authzid, authcid, passwd).
fn parse(msg: &[u8]) -> Result<(&str, &str, &str), &'static str> {
    // RFC 4616 2: message = [authzid] UTF8NUL authcid UTF8NUL passwd; each field UTF8-SAFE (no NUL).
    let mut parts = msg.split(|&b| b == 0);
    let (Some(authzid), Some(authcid), Some(passwd), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("PLAIN message must be authzid NUL authcid NUL password");
    };
    let utf8 = |b| std::str::from_utf8(b).map_err(|_| "PLAIN fields must be UTF-8");
    let (authzid, authcid, passwd) = (utf8(authzid)?, utf8(authcid)?, utf8(passwd)?);
    // RFC 4616 2: authcid and passwd are 1*SAFE.
    if authcid.is_empty() || passwd.is_empty() {
        return Err("PLAIN user name and password must not be empty");
    }
    Ok((authzid, authcid, passwd))
}

#[cfg(test)]
mod tests {
    use super::super::tests::{TestCreds, no_nonce};
    use super::super::{AuthError, Exchange, Mechanism};
    use super::*;

    fn run(initial: Option<&[u8]>, then: Option<&[u8]>) -> Step {
        // RFC 4616 4 examples: tim/tanstaaftanstaaf, authzid Ursel with authcid Kurt.
        let creds = TestCreds::new(&[("tim", "tanstaaftanstaaf"), ("Kurt", "xipj3plmq"), ("Ursel", "u")]);
        let mut ex = Exchange::new(Mechanism::Plain, "h", vec![], &mut no_nonce);
        let first = ex.start(initial, &creds);
        match then {
            None => first,
            Some(r) => {
                assert_eq!(first, Step::Challenge(Vec::new()));
                ex.step(r, &creds)
            }
        }
    }

    fn ok(user: &str) -> Step {
        Step::Success { user: user.into(), final_data: None }
    }

    #[test]
    fn rfc4616_examples_and_failures() {
        let cases: &[(&[u8], Step)] = &[
            (b"\0tim\0tanstaaftanstaaf", ok("tim")),
            (b"tim\0tim\0tanstaaftanstaaf", ok("tim")),
            // Kurt may not act as Ursel here: no proxy authorization.
            (b"Ursel\0Kurt\0xipj3plmq", bad()),
            (b"\0Kurt\0xipj3plmq", ok("Kurt")),
            (b"\0tim\0wrong", bad()),
            (b"\0nobody\0tanstaaftanstaaf", bad()),
            (b"\0tim", malformed("")),
            (b"\0tim\0tanstaaftanstaaf\0", malformed("")),
            (b"\0\0tanstaaftanstaaf", malformed("")),
            (b"\0tim\0", malformed("")),
            (b"\0tim\0tanstaaf\xfftanstaaf", malformed("")),
            (b"", malformed("")),
        ];
        for (msg, want) in cases {
            for got in [run(Some(msg), None), run(None, Some(msg))] {
                match (want, &got) {
                    (Step::Failure(AuthError::Malformed(_)), Step::Failure(AuthError::Malformed(_))) => {}
                    _ => assert_eq!(&got, want, "{msg:?}"),
                }
            }
        }
    }

    #[test]
    fn empty_initial_response_is_a_malformed_message() {
        // RFC 4954 4: "=" is a zero-length initial response, not a request for a challenge.
        assert!(matches!(run(Some(b""), None), Step::Failure(AuthError::Malformed(_))));
    }
}
