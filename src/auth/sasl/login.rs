//! SASL LOGIN (draft-murchison-sasl-login, never an RFC but what Outlook and old clients speak):
//! challenges "Username:" and "Password:", each answered with the bare value. Offer it only under TLS.

use super::{Credentials, Step, bad, malformed, temporary};

#[derive(Default)]
pub(super) struct Login {
    user: Option<String>,
}

const USERNAME: &[u8] = b"Username:";
const PASSWORD: &[u8] = b"Password:";

impl Login {
    pub(super) fn start(&mut self, initial: Option<&[u8]>, creds: &dyn Credentials) -> Step {
        match initial {
            None => Step::Challenge(USERNAME.to_vec()),
            // Some clients send the user name as the initial response (`AUTH LOGIN dXNlcg==`).
            Some(user) => self.step(user, creds),
        }
    }

    pub(super) fn step(&mut self, response: &[u8], creds: &dyn Credentials) -> Step {
        match self.user.take() {
            None => {
                let user = match std::str::from_utf8(response) {
                    Ok(u) if !u.is_empty() && !u.contains('\0') => u,
                    _ => return malformed("LOGIN user name must be non-empty UTF-8 without NUL"),
                };
                self.user = Some(user.to_string());
                Step::Challenge(PASSWORD.to_vec())
            }
            Some(user) => {
                if response.is_empty() {
                    return malformed("LOGIN password must not be empty");
                }
                match creds.verify(&user, response) {
                    Ok(Some(user)) => Step::Success { user, final_data: None },
                    Ok(None) => bad(),
                    Err(e) => temporary(e),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{TestCreds, no_nonce};
    use super::super::{AuthError, Exchange, Mechanism};
    use super::*;

    fn creds() -> TestCreds {
        TestCreds::new(&[("tim", "tanstaaftanstaaf")])
    }

    #[test]
    fn username_then_password() {
        let creds = creds();
        let mut ex = Exchange::new(Mechanism::Login, "h", vec![], &mut no_nonce);
        assert_eq!(ex.start(None, &creds), Step::Challenge(b"Username:".to_vec()));
        assert_eq!(ex.step(b"tim", &creds), Step::Challenge(b"Password:".to_vec()));
        assert_eq!(
            ex.step(b"tanstaaftanstaaf", &creds),
            Step::Success { user: "tim".into(), final_data: None }
        );
    }

    #[test]
    fn username_as_initial_response() {
        let creds = creds();
        let mut ex = Exchange::new(Mechanism::Login, "h", vec![], &mut no_nonce);
        assert_eq!(ex.start(Some(b"tim"), &creds), Step::Challenge(b"Password:".to_vec()));
        assert_eq!(ex.step(b"nope", &creds), Step::Failure(AuthError::BadCredentials));
    }

    #[test]
    fn failures() {
        let creds = creds();
        type Case = (&'static [u8], &'static [u8], fn(&Step) -> bool);
        let cases: &[Case] = &[
            (b"nobody", b"tanstaaftanstaaf", |s| *s == Step::Failure(AuthError::BadCredentials)),
            (b"tim", b"", |s| matches!(s, Step::Failure(AuthError::Malformed(_)))),
            (b"", b"x", |s| matches!(s, Step::Failure(AuthError::Malformed(_)))),
            (b"t\0m", b"x", |s| matches!(s, Step::Failure(AuthError::Malformed(_)))),
            (b"t\xffm", b"x", |s| matches!(s, Step::Failure(AuthError::Malformed(_)))),
        ];
        for (user, pass, want) in cases {
            let mut ex = Exchange::new(Mechanism::Login, "h", vec![], &mut no_nonce);
            let _ = ex.start(None, &creds);
            let mut last = ex.step(user, &creds);
            if !ex.is_done() {
                last = ex.step(pass, &creds);
            }
            assert!(want(&last), "{user:?} {pass:?}: {last:?}");
        }
        let mut ex = Exchange::new(Mechanism::Login, "h", vec![], &mut no_nonce);
        let _ = ex.start(Some(b"tim"), &TestCreds::down());
        assert!(matches!(ex.step(b"pw", &TestCreds::down()), Step::Failure(AuthError::Temporary(_))));
    }
}
