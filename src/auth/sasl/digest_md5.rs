//! SASL DIGEST-MD5 (RFC 2831), server side, authentication only (qop=auth, no integrity or
//! confidentiality layer, no subsequent authentication). RFC 6331 made it historic; it is here for
//! old clients. Needs the cleartext password.

use md5::{Digest, Md5};

use super::{Credentials, Step, bad, ct_eq, hex, malformed, temporary};

pub(super) struct DigestMd5 {
    nonce: String,
    realm: String,
    service: &'static str,
    state: State,
}

enum State {
    New,
    /// The digest-challenge is out; waiting for the digest-response.
    Challenged,
    /// rspauth is out; waiting for the client's empty answer (RFC 2831 2.1.3).
    Verified(String),
}

/// The fields of a digest-response this server uses (RFC 2831 2.1.2).
#[derive(Default)]
struct Response {
    username: Option<Vec<u8>>,
    realm: Option<Vec<u8>>,
    nonce: Option<Vec<u8>>,
    cnonce: Option<Vec<u8>>,
    nc: Option<Vec<u8>>,
    qop: Option<Vec<u8>>,
    digest_uri: Option<Vec<u8>>,
    response: Option<Vec<u8>>,
    charset: Option<Vec<u8>>,
    authzid: Option<Vec<u8>>,
}

impl DigestMd5 {
    pub(super) fn new(nonce: String, hostname: &str) -> DigestMd5 {
        DigestMd5 { nonce, realm: hostname.to_string(), service: "smtp", state: State::New }
    }

    pub(super) fn set_service(&mut self, service: &'static str) {
        self.service = service;
    }

    pub(super) fn start(&mut self, initial: Option<&[u8]>) -> Step {
        // RFC 4422 3.3: the server speaks first; subsequent authentication (RFC 2831 2.2) is not offered.
        if initial.is_some() {
            return malformed("DIGEST-MD5 takes no initial response");
        }
        self.state = State::Challenged;
        // RFC 2831 2.1.1: digest-challenge. Our nonce is base64-alphabet text and needs no escaping.
        Step::Challenge(
            format!(
                "realm={},nonce=\"{}\",qop=\"auth\",algorithm=md5-sess,charset=utf-8",
                quote(&self.realm),
                self.nonce
            )
            .into_bytes(),
        )
    }

    pub(super) fn step(&mut self, msg: &[u8], creds: &dyn Credentials) -> Step {
        match std::mem::replace(&mut self.state, State::New) {
            State::New => malformed("DIGEST-MD5 exchange not started"),
            State::Challenged => self.check_response(msg, creds),
            // RFC 2831 2.1.3: after rspauth the client sends an empty response.
            State::Verified(user) if msg.is_empty() => Step::Success { user, final_data: None },
            State::Verified(_) => malformed("DIGEST-MD5 expects an empty response after rspauth"),
        }
    }

    fn check_response(&mut self, msg: &[u8], creds: &dyn Credentials) -> Step {
        let r = match parse_response(msg) {
            Ok(r) => r,
            Err(e) => return malformed(e),
        };
        let (Some(username), Some(nonce), Some(cnonce), Some(nc), Some(uri), Some(response)) =
            (r.username, r.nonce, r.cnonce, r.nc, r.digest_uri, r.response)
        else {
            return malformed("DIGEST-MD5 response lacks a required directive");
        };
        // RFC 2831 2.1.2: charset=utf-8 is the only value; without it names are ISO 8859-1.
        let utf8 = match r.charset.as_deref() {
            None => false,
            Some(c) if c.eq_ignore_ascii_case(b"utf-8") => true,
            Some(_) => return malformed("DIGEST-MD5 charset must be utf-8"),
        };
        let username = if utf8 {
            match String::from_utf8(username) {
                Ok(u) => u,
                Err(_) => return malformed("DIGEST-MD5 username is not UTF-8"),
            }
        } else {
            username.iter().map(|&b| char::from(b)).collect()
        };
        if username.is_empty() {
            return malformed("DIGEST-MD5 username is empty");
        }
        // RFC 2831 2.1.2: qop defaults to "auth"; we offered nothing else.
        let qop = r.qop.unwrap_or_else(|| b"auth".to_vec());
        if qop != b"auth" {
            return malformed("DIGEST-MD5 qop must be auth");
        }
        // RFC 2831 2.1.2: nc counts uses of the nonce; ours are single-use.
        if nc != b"00000001" {
            return malformed("DIGEST-MD5 nc must be 00000001");
        }
        if response.len() != 32 || !response.iter().all(u8::is_ascii_hexdigit) {
            return malformed("DIGEST-MD5 response must be 32 hex digits");
        }
        if cnonce.is_empty() {
            return malformed("DIGEST-MD5 cnonce is empty");
        }
        if nonce != self.nonce.as_bytes() {
            return bad();
        }
        // RFC 2831 2.1.2: the realm, if sent, is one we offered; absent means empty.
        let realm = r.realm.unwrap_or_default();
        if !realm.is_empty() && realm != self.realm.as_bytes() {
            return bad();
        }
        // RFC 2831 2.1.2: digest-uri is "serv-type/host[/serv-name]". The service must be ours; the
        // host is whatever name or address the client dialled, which a server cannot know, and the
        // response is bound to our fresh nonce anyway, so it cannot be replayed elsewhere.
        if !uri_matches(&uri, self.service) {
            return bad();
        }
        // No proxy authorization: an authzid must name the user itself.
        if r.authzid.as_ref().is_some_and(|a| a.as_slice() != username.as_bytes()) {
            return bad();
        }
        let (user, password) = match creds.plaintext(&username) {
            Ok(Some(found)) => found,
            Ok(None) => return bad(),
            Err(e) => return temporary(e),
        };
        // RFC 2831 2.1.2.1: A1 = { H({ username-value, ":", realm-value, ":", passwd }), ":", nonce-value,
        // ":", cnonce-value [, ":", authzid-value] }, names and password in ISO 8859-1 when they fit.
        let mut secret = Md5::new();
        secret.update(latin1_if_possible(&username));
        secret.update(b":");
        secret.update(&realm);
        secret.update(b":");
        secret.update(latin1_if_possible(&password));
        let mut a1 = secret.finalize().to_vec();
        for part in [&b":"[..], &nonce, b":", &cnonce] {
            a1.extend_from_slice(part);
        }
        if let Some(a) = &r.authzid {
            a1.push(b':');
            a1.extend_from_slice(a);
        }
        let ha1 = hex(&Md5::digest(&a1));
        let kd = |a2_prefix: &[u8]| {
            // RFC 2831 2.1.2.1: response-value = HEX(KD(HEX(H(A1)), { nonce, ":", nc, ":", cnonce, ":",
            // qop, ":", HEX(H(A2)) })), with A2 = { "AUTHENTICATE:", digest-uri } for the client and
            // A2 = { ":", digest-uri } for rspauth (2.1.3).
            let ha2 = hex(&Md5::digest([a2_prefix, &uri].concat()));
            let mut h = Md5::new();
            for part in
                [ha1.as_bytes(), b":", &nonce, b":", &nc, b":", &cnonce, b":", &qop, b":", ha2.as_bytes()]
            {
                h.update(part);
            }
            hex(&h.finalize())
        };
        if !ct_eq(kd(b"AUTHENTICATE:").as_bytes(), &response.to_ascii_lowercase()) {
            return bad();
        }
        self.state = State::Verified(user);
        Step::Challenge(format!("rspauth={}", kd(b":")).into_bytes())
    }
}

/// `"..."` with `"` and `\` escaped (RFC 2831 7.2 quoted-string).
fn quote(s: &str) -> String {
    let mut q = String::with_capacity(s.len() + 2);
    q.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            q.push('\\');
        }
        q.push(c);
    }
    q.push('"');
    q
}

/// RFC 2831 2.1.2.1: a name or password made only of ISO 8859-1 characters is hashed in ISO 8859-1,
/// even under charset=utf-8; otherwise in UTF-8.
fn latin1_if_possible(s: &str) -> Vec<u8> {
    match s.chars().map(|c| u8::try_from(u32::from(c)).ok()).collect::<Option<Vec<u8>>>() {
        Some(latin1) => latin1,
        None => s.as_bytes().to_vec(),
    }
}

/// `service/host` or `service/host/serv-name`, host compared without regard to case.
fn uri_matches(uri: &[u8], service: &str) -> bool {
    let mut parts = uri.split(|&b| b == b'/');
    let (Some(s), Some(h)) = (parts.next(), parts.next()) else { return false };
    s == service.as_bytes() && !h.is_empty() && parts.nth(1).is_none()
}

/// Parses a digest-response: `#( name "=" ( token | quoted-string ) )` with optional white space and
/// empty list elements (RFC 2831 7.1). Unknown directives are ignored; known ones may appear once.
fn parse_response(msg: &[u8]) -> Result<Response, &'static str> {
    let mut r = Response::default();
    let mut i = 0;
    let lws = |i: &mut usize| {
        while msg.get(*i).is_some_and(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n')) {
            *i += 1;
        }
    };
    loop {
        while msg.get(i).is_some_and(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n' | b',')) {
            i += 1;
        }
        if i >= msg.len() {
            return Ok(r);
        }
        let start = i;
        while msg.get(i).is_some_and(|&b| is_token(b)) {
            i += 1;
        }
        let name = msg[start..i].to_ascii_lowercase();
        if name.is_empty() {
            return Err("DIGEST-MD5 directive name expected");
        }
        lws(&mut i);
        if msg.get(i) != Some(&b'=') {
            return Err("DIGEST-MD5 directive lacks '='");
        }
        i += 1;
        lws(&mut i);
        let mut value = Vec::new();
        if msg.get(i) == Some(&b'"') {
            i += 1;
            loop {
                match msg.get(i) {
                    None => return Err("DIGEST-MD5 unterminated quoted string"),
                    Some(b'"') => break,
                    Some(b'\\') => {
                        let Some(&c) = msg.get(i + 1) else {
                            return Err("DIGEST-MD5 unterminated quoted string");
                        };
                        value.push(c);
                        i += 2;
                    }
                    Some(&c) => {
                        value.push(c);
                        i += 1;
                    }
                }
            }
            i += 1;
        } else {
            let start = i;
            while msg.get(i).is_some_and(|&b| is_token(b)) {
                i += 1;
            }
            value.extend_from_slice(&msg[start..i]);
        }
        lws(&mut i);
        if i < msg.len() && msg[i] != b',' {
            return Err("DIGEST-MD5 directives must be separated by commas");
        }
        let slot = match name.as_slice() {
            b"username" => &mut r.username,
            b"realm" => &mut r.realm,
            b"nonce" => &mut r.nonce,
            b"cnonce" => &mut r.cnonce,
            b"nc" => &mut r.nc,
            b"qop" => &mut r.qop,
            b"digest-uri" => &mut r.digest_uri,
            b"response" => &mut r.response,
            b"charset" => &mut r.charset,
            b"authzid" => &mut r.authzid,
            _ => continue,
        };
        if slot.replace(value).is_some() {
            return Err("DIGEST-MD5 directive repeated");
        }
    }
}

/// RFC 2616 token characters (RFC 2831 7.1 borrows its grammar).
fn is_token(b: u8) -> bool {
    b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::super::tests::TestCreds;
    use super::super::{AuthError, Exchange, Mechanism};
    use super::*;

    const HOST: &str = "elwood.innosoft.com";
    // RFC 2831 4 example 1 (IMAP), chris/secret, with the RFC's nonce and cnonce.
    const RFC_RESPONSE: &str = "charset=utf-8,username=\"chris\",realm=\"elwood.innosoft.com\",\
        nonce=\"OA6MG9tEQGm2hh\",nc=00000001,cnonce=\"OA6MHXh6VqTrRk\",\
        digest-uri=\"imap/elwood.innosoft.com\",response=d388dad90d4bbd760a152321f2143af7,qop=auth";

    fn exchange(service: &'static str) -> Exchange {
        Exchange::with_nonce(Mechanism::DigestMd5, HOST, vec![], "OA6MG9tEQGm2hh".into())
            .with_service(service)
    }

    fn run(service: &'static str, response: &str, creds: &TestCreds) -> Step {
        let mut ex = exchange(service);
        let Step::Challenge(_) = ex.start(None, creds) else { panic!("no challenge") };
        ex.step(response.as_bytes(), creds)
    }

    #[test]
    fn rfc2831_example() {
        let creds = TestCreds::new(&[("chris", "secret")]);
        let mut ex = exchange("imap");
        assert_eq!(
            ex.start(None, &creds),
            Step::Challenge(
                b"realm=\"elwood.innosoft.com\",nonce=\"OA6MG9tEQGm2hh\",qop=\"auth\",algorithm=md5-sess,\
                  charset=utf-8"
                    .to_vec()
            )
        );
        assert_eq!(
            ex.step(RFC_RESPONSE.as_bytes(), &creds),
            Step::Challenge(b"rspauth=ea40f60335c427b5527b84dbabcdfffd".to_vec())
        );
        assert_eq!(ex.step(b"", &creds), Step::Success { user: "chris".into(), final_data: None });
    }

    #[test]
    fn smtp_service_is_the_default() {
        let creds = TestCreds::new(&[("chris", "secret")]);
        // The IMAP response does not authenticate for SMTP (digest-uri names another service).
        assert_eq!(run("smtp", RFC_RESPONSE, &creds), bad());
        let mut ex = Exchange::with_nonce(Mechanism::DigestMd5, HOST, vec![], "OA6MG9tEQGm2hh".into());
        let _ = ex.start(None, &creds);
        let ours = client_response("chris", "secret", "smtp/elwood.innosoft.com");
        assert!(matches!(ex.step(ours.as_bytes(), &creds), Step::Challenge(c) if c.starts_with(b"rspauth=")));
        assert!(matches!(ex.step(b"x", &creds), Step::Failure(AuthError::Malformed(_))));
    }

    /// What a client computes (RFC 2831 2.1.2.1), for tests beyond the RFC's one example.
    fn client_response(user: &str, pass: &str, uri: &str) -> String {
        let mut a1 = Md5::digest(format!("{user}:{HOST}:{pass}")).to_vec();
        a1.extend_from_slice(b":OA6MG9tEQGm2hh:abc");
        let ha2 = hex(&Md5::digest(format!("AUTHENTICATE:{uri}")));
        let kd = format!("{}:OA6MG9tEQGm2hh:00000001:abc:auth:{ha2}", hex(&Md5::digest(&a1)));
        format!(
            "username=\"{user}\" , realm=\"{HOST}\",,nonce=\"OA6MG9tEQGm2hh\",nc=00000001,cnonce=\"abc\",\
             digest-uri=\"{uri}\",response={}",
            hex(&Md5::digest(kd))
        )
    }

    #[test]
    fn failures() {
        let creds = TestCreds::new(&[("chris", "secret")]);
        let uri = "imap/elwood.innosoft.com";
        assert_eq!(run("imap", &client_response("chris", "wrong", uri), &creds), bad());
        assert_eq!(run("imap", &client_response("nobody", "secret", uri), &creds), bad());
        assert_eq!(
            run("imap", &client_response("chris", "secret", "pop/elwood.innosoft.com"), &creds),
            bad()
        );
        assert_eq!(run("imap", &RFC_RESPONSE.replace("hh\",nc", "hX\",nc"), &creds), bad());
        assert_eq!(run("imap", &RFC_RESPONSE.replace("realm=\"elwood", "realm=\"x"), &creds), bad());
        assert_eq!(run("imap", &format!("{RFC_RESPONSE},authzid=\"root\""), &creds), bad());
        let down = run("imap", RFC_RESPONSE, &TestCreds::down());
        assert!(matches!(down, Step::Failure(AuthError::Temporary(_))));
        for broken in [
            RFC_RESPONSE.replace("nc=00000001", "nc=00000002"),
            RFC_RESPONSE.replace("qop=auth", "qop=auth-conf"),
            RFC_RESPONSE.replace("charset=utf-8", "charset=latin1"),
            RFC_RESPONSE.replace("username=\"chris\",", ""),
            RFC_RESPONSE.replace("cnonce=\"OA6MHXh6VqTrRk\"", "cnonce=\"\""),
            RFC_RESPONSE.replace("3af7", "3af"),
            format!("{RFC_RESPONSE},nc=00000001"),
            RFC_RESPONSE.replace("\"chris\"", "\"chris"),
            RFC_RESPONSE.replace("\"chris\"", "\"ch\"ris\""),
            RFC_RESPONSE.replace("username=", "username"),
            RFC_RESPONSE.replace("username=\"chris\"", "username=\"\\\""),
            String::new(),
        ] {
            assert!(
                matches!(run("imap", &broken, &creds), Step::Failure(AuthError::Malformed(_))),
                "{broken}"
            );
        }
        let mut ex = exchange("imap");
        assert!(matches!(ex.start(Some(b""), &creds), Step::Failure(AuthError::Malformed(_))));
    }

    #[test]
    fn parser_details() {
        let r = parse_response(b" , Username = \"a\\\"b\" ,x=y,realm=tok,").unwrap();
        assert_eq!(r.username.as_deref(), Some(&b"a\"b"[..]));
        assert_eq!(r.realm.as_deref(), Some(&b"tok"[..]));
        assert_eq!(quote("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(latin1_if_possible("caf\u{e9}"), b"caf\xe9");
        assert_eq!(latin1_if_possible("\u{20ac}"), "\u{20ac}".as_bytes());
        assert!(uri_matches(b"smtp/Mail.Example", "smtp"));
        assert!(uri_matches(b"smtp/127.0.0.1", "smtp"), "the host is whatever the client dialled");
        assert!(uri_matches(b"smtp/mail.example/mail.example", "smtp"));
        assert!(!uri_matches(b"smtp", "smtp"));
        assert!(!uri_matches(b"smtp/", "smtp"));
        assert!(!uri_matches(b"imap/mail.example", "smtp"));
        assert!(!uri_matches(b"smtp/a/b/c", "smtp"));
    }

    #[test]
    fn latin1_names_without_charset() {
        // Without charset=utf-8 the client hashes ISO 8859-1; the username arrives in it too.
        let creds = TestCreds::new(&[("jos\u{e9}", "s\u{e9}same")]);
        let mut a1 = Md5::digest([&b"jos\xe9:"[..], HOST.as_bytes(), b":s\xe9same"].concat()).to_vec();
        a1.extend_from_slice(b":OA6MG9tEQGm2hh:abc");
        let ha2 = hex(&Md5::digest("AUTHENTICATE:smtp/elwood.innosoft.com"));
        let kd = format!("{}:OA6MG9tEQGm2hh:00000001:abc:auth:{ha2}", hex(&Md5::digest(&a1)));
        let mut msg = b"username=\"jos\xe9\",nonce=\"OA6MG9tEQGm2hh\",nc=00000001,cnonce=\"abc\",".to_vec();
        msg.extend_from_slice(format!("realm={HOST},digest-uri=\"smtp/{HOST}\",response=").as_bytes());
        msg.extend_from_slice(hex(&Md5::digest(kd)).as_bytes());
        let mut ex = exchange("smtp");
        let _ = ex.start(None, &creds);
        assert!(matches!(ex.step(&msg, &creds), Step::Challenge(_)));
    }
}
