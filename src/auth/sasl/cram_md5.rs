//! SASL CRAM-MD5 (RFC 2195): the server sends `<random.number@hostname>`, the client answers
//! `user SP hex(HMAC-MD5(password, challenge))`. Needs a stored secret that allows the HMAC.

use super::{Credentials, Step, bad, ct_eq, hex, malformed, temporary};

pub(super) struct CramMd5 {
    challenge: Vec<u8>,
}

impl CramMd5 {
    /// `unique` is the random part: the challenge is `<unique@hostname>` (RFC 2195 2).
    pub(super) fn new(unique: &str, hostname: &str) -> CramMd5 {
        CramMd5 { challenge: format!("<{unique}@{hostname}>").into_bytes() }
    }

    pub(super) fn start(&mut self, initial: Option<&[u8]>) -> Step {
        // RFC 4422 3.3: the server speaks first here, so an initial response is a protocol error.
        if initial.is_some() {
            return malformed("CRAM-MD5 takes no initial response");
        }
        Step::Challenge(self.challenge.clone())
    }

    pub(super) fn step(&mut self, response: &[u8], creds: &dyn Credentials) -> Step {
        // RFC 2195 2: "user name, a space, and the digest" as 32 lower-case hex digits. The name may
        // itself hold spaces, so split at the last one. Upper-case hex is accepted too.
        let Ok(text) = std::str::from_utf8(response) else {
            return malformed("CRAM-MD5 response must be UTF-8");
        };
        let Some((user, digest)) = text.rsplit_once(' ') else {
            return malformed("CRAM-MD5 response must be user SP digest");
        };
        if user.is_empty() || digest.len() != 32 || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
            return malformed("CRAM-MD5 response must be user SP 32 hex digits");
        }
        match creds.cram_md5(user, &self.challenge) {
            Ok(Some((user, want)))
                if ct_eq(hex(&want).as_bytes(), digest.to_ascii_lowercase().as_bytes()) =>
            {
                Step::Success { user, final_data: None }
            }
            Ok(_) => bad(),
            Err(e) => temporary(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{TestCreds, no_nonce};
    use super::super::{AuthError, Exchange, Mechanism};
    use super::*;

    const HOST: &str = "postoffice.reston.mci.net";

    fn rfc2195(response: &[u8]) -> Step {
        let creds = TestCreds::new(&[("tim", "tanstaaftanstaaf")]);
        // RFC 2195 2 example: challenge <1896.697170952@postoffice.reston.mci.net>. Its two numbers
        // come from the nonce source: 1896 from the first four bytes, 697170952 from the next eight.
        let mut src = |b: &mut [u8]| {
            b[..4].copy_from_slice(&1896u32.to_be_bytes());
            b[4..12].copy_from_slice(&697170952u64.to_be_bytes());
        };
        let mut ex = Exchange::new(Mechanism::CramMd5, HOST, vec![], &mut src);
        assert_eq!(
            ex.start(None, &creds),
            Step::Challenge(b"<1896.697170952@postoffice.reston.mci.net>".to_vec())
        );
        ex.step(response, &creds)
    }

    #[test]
    fn rfc2195_example() {
        let ok = Step::Success { user: "tim".into(), final_data: None };
        assert_eq!(rfc2195(b"tim b913a602c7eda7a495b4e6e7334d3890"), ok);
        assert_eq!(rfc2195(b"tim B913A602C7EDA7A495B4E6E7334D3890"), ok);
    }

    #[test]
    fn failures() {
        let bad = Step::Failure(AuthError::BadCredentials);
        assert_eq!(rfc2195(b"tim b913a602c7eda7a495b4e6e7334d3891"), bad);
        assert_eq!(rfc2195(b"tom b913a602c7eda7a495b4e6e7334d3890"), bad);
        for m in [
            &b"timb913a602c7eda7a495b4e6e7334d3890"[..],
            b"tim b913a602c7eda7a495b4e6e7334d389",
            b"tim b913a602c7eda7a495b4e6e7334d38900",
            b"tim b913a602c7eda7a495b4e6e7334d389g",
            b" b913a602c7eda7a495b4e6e7334d3890",
            b"t\xffm b913a602c7eda7a495b4e6e7334d3890",
            b"tim \xc3\xa9913a602c7eda7a495b4e6e7334d389",
            b"",
        ] {
            assert!(matches!(rfc2195(m), Step::Failure(AuthError::Malformed(_))), "{m:?}");
        }
        let mut ex = Exchange::new(Mechanism::CramMd5, HOST, vec![], &mut no_nonce);
        assert!(matches!(ex.start(Some(b"tim"), &TestCreds::down()), Step::Failure(AuthError::Malformed(_))));
        let mut ex = Exchange::new(Mechanism::CramMd5, HOST, vec![], &mut no_nonce);
        let _ = ex.start(None, &TestCreds::down());
        let r = ex.step(b"tim b913a602c7eda7a495b4e6e7334d3890", &TestCreds::down());
        assert!(matches!(r, Step::Failure(AuthError::Temporary(_))));
    }
}
