//! Unit tests of the POP3 session state machine: transcripts in, responses and actions out.

use super::*;
use crate::auth::sasl::Credentials;
use crate::auth::sasl::tests::TestCreds;
use std::cell::RefCell;

/// mrose/tanstaaf; records failed logins.
struct Users {
    creds: Option<TestCreds>,
    failed: RefCell<Vec<String>>,
    blocked: bool,
}

impl Users {
    fn new() -> Users {
        Users {
            creds: Some(TestCreds::new(&[("mrose", "tanstaaf")])),
            failed: RefCell::default(),
            blocked: false,
        }
    }
}

impl Backend for Users {
    fn credentials(&self) -> Option<&dyn Credentials> {
        self.creds.as_ref().map(|c| c as &dyn Credentials)
    }
    fn random(&self, buf: &mut [u8]) {
        buf.fill(7);
    }
    fn auth_failed(&self, user: &str) {
        self.failed.borrow_mut().push(user.to_string());
    }
    fn auth_blocked(&self) -> bool {
        self.blocked
    }
}

/// The RFC 1939 10 example maildrop: two messages of 120 and 200 octets, RFC 1939 7 UIDL ids.
struct Drop;

impl Maildrop for Drop {
    fn count(&self) -> usize {
        2
    }
    fn size(&self, n: usize) -> u64 {
        [120, 200][n - 1]
    }
    fn uid(&self, n: usize) -> &str {
        ["whqtswO00WBw418f9t5JxYwZ", "QhdPYR:00WBw1Ph7x7"][n - 1]
    }
}

fn params(max_errors: usize, mechs: &[Mechanism]) -> Arc<Params> {
    Arc::new(Params {
        hostname: "dbc.mtview.ca.us".into(),
        max_errors,
        stls: true,
        auth_mechanisms: mechs.to_vec(),
        apop: false,
    })
}

fn session_with(cleartext: bool, max_errors: usize) -> Session {
    let peer = Peer { ip: "192.0.2.7".parse().unwrap(), port: 40000, cleartext_auth: cleartext };
    Session::new(params(max_errors, &[Mechanism::Plain, Mechanism::Login, Mechanism::ScramSha256Plus]), peer)
}

fn session() -> Session {
    session_with(true, 100)
}

/// Actions as text: replies verbatim, others as `<Debug>`.
fn wire(actions: &[Action]) -> String {
    actions
        .iter()
        .map(|a| match a {
            Action::Reply(b) => String::from_utf8(b.clone()).unwrap(),
            other => format!("<{other:?}>"),
        })
        .collect()
}

/// Feeds lines and checks each answer starts with the expected text.
fn script(s: &mut Session, users: &Users, lines: &[(&str, &str)]) {
    for (line, want) in lines {
        let got = wire(&s.on_line(line.as_bytes(), users));
        assert!(got.starts_with(want), "{line:?}: got {got:?}, want {want:?}");
    }
}

/// A session logged in as mrose with the example maildrop open.
fn logged_in(users: &Users) -> Session {
    let mut s = session();
    script(&mut s, users, &[("USER mrose", "+OK"), ("PASS tanstaaf", "<Open { user: \"mrose\" }>")]);
    assert_eq!(wire(&s.on_opened(Ok(&Drop))), "+OK Logged in, maildrop has 2 messages (320 octets)\r\n");
    assert_eq!(s.state(), State::Transaction);
    s
}

#[test]
fn rfc1939_example_session() {
    // RFC 1939 10, with USER/PASS instead of APOP.
    let users = Users::new();
    let mut s = logged_in(&users);
    assert_eq!(s.user(), Some("mrose"));
    script(
        &mut s,
        &users,
        &[
            ("STAT", "+OK 2 320\r\n"),
            ("LIST", "+OK 2 messages (320 octets)\r\n1 120\r\n2 200\r\n.\r\n"),
            ("RETR 1", "<SendMessage { n: 1, top_lines: None }>"),
            ("DELE 1", "+OK Message 1 deleted\r\n"),
            ("RETR 2", "<SendMessage { n: 2, top_lines: None }>"),
            ("DELE 2", "+OK Message 2 deleted\r\n"),
            ("QUIT", "<Update { deleted: [1, 2] }>"),
        ],
    );
    assert_eq!(s.state(), State::Update);
    assert_eq!(wire(&s.on_updated(Ok(()))), "+OK buzon POP3 server signing off (0 messages left)\r\n<Close>");
    assert_eq!(s.on_line(b"NOOP", &users), vec![Action::Close]);
}

#[test]
fn rfc1939_command_examples() {
    let users = Users::new();
    let mut s = logged_in(&users);
    script(
        &mut s,
        &users,
        &[
            ("LIST 2", "+OK 2 200\r\n"),
            ("LIST 3", "-ERR No such message\r\n"),
            (
                "UIDL",
                "+OK Unique-ID listing follows\r\n1 whqtswO00WBw418f9t5JxYwZ\r\n2 QhdPYR:00WBw1Ph7x7\r\n.\r\n",
            ),
            ("UIDL 2", "+OK 2 QhdPYR:00WBw1Ph7x7\r\n"),
            ("UIDL 3", "-ERR No such message\r\n"),
            ("TOP 1 10", "<SendMessage { n: 1, top_lines: Some(10) }>"),
            ("TOP 100 3", "-ERR No such message\r\n"),
            ("NOOP", "+OK\r\n"),
            ("DELE 1", "+OK Message 1 deleted\r\n"),
            ("DELE 1", "-ERR Message 1 already deleted\r\n"),
            ("RETR 1", "-ERR Message 1 already deleted\r\n"),
            ("TOP 1 0", "-ERR Message 1 already deleted\r\n"),
            ("LIST 1", "-ERR Message 1 already deleted\r\n"),
            ("UIDL 1", "-ERR Message 1 already deleted\r\n"),
            ("STAT", "+OK 1 200\r\n"),
            ("LIST", "+OK 1 messages (200 octets)\r\n2 200\r\n.\r\n"),
            ("UIDL", "+OK Unique-ID listing follows\r\n2 QhdPYR:00WBw1Ph7x7\r\n.\r\n"),
            ("RSET", "+OK Maildrop has 2 messages (320 octets)\r\n"),
            ("STAT", "+OK 2 320\r\n"),
            ("DELE 2", "+OK"),
            ("QUIT", "<Update { deleted: [2] }>"),
        ],
    );
    assert_eq!(
        wire(&s.on_updated(Err(UpdateError("disk full".into())))),
        "-ERR [SYS/TEMP] Some deleted messages not removed\r\n<Close>"
    );
}

#[test]
fn bad_arguments_and_states() {
    let users = Users::new();
    let mut s = session();
    script(
        &mut s,
        &users,
        &[
            ("STAT", "-ERR Not logged in\r\n"),
            ("RETR 1", "-ERR Not logged in\r\n"),
            ("NOOP", "-ERR Not logged in\r\n"),
            ("XYZZY", "-ERR Unknown command\r\n"),
            ("PASS tanstaaf", "-ERR No USER given\r\n"),
            ("USER", "-ERR USER needs a user name\r\n"),
        ],
    );
    let mut s = logged_in(&users);
    script(
        &mut s,
        &users,
        &[
            ("USER mrose", "-ERR Command not valid in TRANSACTION state\r\n"),
            ("PASS x", "-ERR Command not valid in TRANSACTION state\r\n"),
            ("AUTH PLAIN", "-ERR Command not valid in TRANSACTION state\r\n"),
            ("STLS", "-ERR Command not valid in TRANSACTION state\r\n"),
            ("RETR", "-ERR Invalid arguments\r\n"),
            ("RETR 0", "-ERR Invalid arguments\r\n"),
            ("RETR one", "-ERR Invalid arguments\r\n"),
            ("RETR 18446744073709551616", "-ERR Invalid arguments\r\n"),
            ("DELE 3", "-ERR No such message\r\n"),
            ("TOP 1", "-ERR Invalid arguments\r\n"),
            ("STAT 1", "-ERR Invalid arguments\r\n"),
        ],
    );
    assert_eq!(s.errors(), 11);
}

#[test]
fn pipelined_input_line_by_line() {
    // RFC 2449 6.6: a client may send several commands at once; each is answered in order.
    let users = Users::new();
    let mut s = logged_in(&users);
    let mut out = String::new();
    for line in b"STAT\r\nDELE 1\r\nLIST\r\nRETR 2\r\nRSET\r\nQUIT\r\n".split(|&b| b == b'\n') {
        let Some(line) = line.strip_suffix(b"\r") else { continue };
        out.push_str(&wire(&s.on_line(line, &users)));
    }
    assert_eq!(
        out,
        "+OK 2 320\r\n+OK Message 1 deleted\r\n+OK 1 messages (200 octets)\r\n2 200\r\n.\r\n\
         <SendMessage { n: 2, top_lines: None }>+OK Maildrop has 2 messages (320 octets)\r\n\
         <Update { deleted: [] }>"
    );
}

#[test]
fn user_pass_failures() {
    let users = Users::new();
    let mut s = session();
    script(
        &mut s,
        &users,
        &[
            ("USER mrose", "+OK\r\n"),
            ("PASS wrong", "-ERR [AUTH] Authentication failed\r\n"),
            // PASS must follow USER directly.
            ("PASS tanstaaf", "-ERR No USER given\r\n"),
            ("USER mrose", "+OK"),
            ("CAPA", "+OK"),
            ("PASS tanstaaf", "-ERR No USER given\r\n"),
            ("USER nobody", "+OK\r\n"),
            ("PASS tanstaaf", "-ERR [AUTH] Authentication failed\r\n"),
        ],
    );
    assert_eq!(*users.failed.borrow(), ["mrose", "nobody"]);

    // The password is the rest of the line, spaces included (RFC 1939 7).
    let spaced = Users { creds: Some(TestCreds::new(&[("mrose", "tan sta af ")])), ..Users::new() };
    script(&mut session(), &spaced, &[("USER mrose", "+OK"), ("PASS tan sta af ", "<Open")]);

    let blocked = Users { blocked: true, ..Users::new() };
    script(
        &mut session(),
        &blocked,
        &[("USER mrose", "+OK"), ("PASS tanstaaf", "-ERR [SYS/TEMP] Too many failed logins")],
    );
    let down = Users { creds: Some(TestCreds::down()), ..Users::new() };
    script(
        &mut session(),
        &down,
        &[("USER mrose", "+OK"), ("PASS tanstaaf", "-ERR [SYS/TEMP] Temporary authentication failure\r\n")],
    );
    let none = Users { creds: None, ..Users::new() };
    script(&mut session(), &none, &[("USER mrose", "+OK"), ("PASS tanstaaf", "-ERR [SYS/TEMP]")]);
}

#[test]
fn cleartext_needs_tls() {
    let users = Users::new();
    let mut s = session_with(false, 100);
    let capa = wire(&s.on_line(b"CAPA", &users));
    assert_eq!(
        capa,
        "+OK Capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\n\
         STLS\r\nIMPLEMENTATION buzon\r\n.\r\n"
    );
    script(
        &mut s,
        &users,
        &[
            ("USER mrose", "-ERR [SYS/PERM] Plaintext authentication disallowed without TLS\r\n"),
            ("AUTH PLAIN AG1yb3NlAHRhbnN0YWFm", "-ERR [SYS/PERM] Authentication mechanism needs TLS\r\n"),
            ("AUTH", "+OK\r\n.\r\n"),
            ("STLS", "+OK Begin TLS negotiation\r\n<StartTls>"),
        ],
    );
    s.on_tls("TLSv1.3 TEST".into(), vec![ChannelBinding { kind: "tls-exporter", data: vec![1; 32] }]);
    assert_eq!(s.tls(), Some("TLSv1.3 TEST"));
    let capa = wire(&s.on_line(b"CAPA", &users));
    assert_eq!(
        capa,
        "+OK Capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\n\
         USER\r\nSASL PLAIN LOGIN SCRAM-SHA-256-PLUS\r\nIMPLEMENTATION buzon\r\n.\r\n"
    );
    script(
        &mut s,
        &users,
        &[
            ("STLS", "-ERR Command not permitted when TLS active\r\n"),
            ("AUTH", "+OK\r\nPLAIN\r\nLOGIN\r\nSCRAM-SHA-256-PLUS\r\n.\r\n"),
            ("USER mrose", "+OK"),
            ("PASS tanstaaf", "<Open"),
        ],
    );
}

#[test]
fn capa_in_transaction_and_stls_not_offered() {
    let users = Users::new();
    let mut s = logged_in(&users);
    assert_eq!(
        wire(&s.on_line(b"capa", &users)),
        "+OK Capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\n\
         IMPLEMENTATION buzon\r\n.\r\n"
    );
    let peer = Peer { ip: "192.0.2.7".parse().unwrap(), port: 1, cleartext_auth: false };
    let mut s = Session::new(Arc::new(Params { stls: false, ..(*params(10, &[])).clone() }), peer);
    let capa = wire(&s.on_line(b"CAPA", &users));
    assert!(!capa.contains("STLS") && !capa.contains("SASL") && !capa.contains("USER"), "{capa}");
    script(
        &mut s,
        &users,
        &[("STLS", "-ERR STLS not offered\r\n"), ("AUTH PLAIN", "-ERR AUTH not offered\r\n")],
    );
}

#[test]
fn auth_plain() {
    let users = Users::new();
    // RFC 5034 6 style: initial response on the AUTH line; "\0mrose\0tanstaaf".
    let mut s = session();
    script(&mut s, &users, &[("AUTH PLAIN AG1yb3NlAHRhbnN0YWFm", "<Open { user: \"mrose\" }>")]);
    assert_eq!(s.state(), State::Opening);
    assert!(wire(&s.on_opened(Ok(&Drop))).starts_with("+OK Logged in"));

    // Without an initial response: an empty challenge first.
    let mut s = session();
    script(
        &mut s,
        &users,
        &[("auth plain", "+ \r\n"), ("AG1yb3NlAHRhbnN0YWFm", "<Open { user: \"mrose\" }>")],
    );

    let mut s = session();
    script(
        &mut s,
        &users,
        &[
            ("AUTH PLAIN AG1yb3NlAHdyb25n", "-ERR [AUTH] Authentication failed\r\n"),
            ("AUTH PLAIN", "+ "),
            ("*", "-ERR Authentication cancelled\r\n"),
            ("AUTH PLAIN", "+ "),
            ("not base64!", "-ERR Cannot decode the response as base64\r\n"),
            ("AUTH PLAIN ???", "-ERR Cannot decode response\r\n"),
            // An empty initial response is not a valid PLAIN message.
            ("AUTH PLAIN =", "-ERR Bad response: PLAIN message must be authzid NUL authcid NUL password\r\n"),
            ("AUTH X-UNKNOWN", "-ERR Unsupported authentication mechanism\r\n"),
            ("AUTH CRAM-MD5", "-ERR Unsupported authentication mechanism\r\n"),
            ("AUTH SCRAM-SHA-256-PLUS", "-ERR [SYS/PERM] Authentication mechanism needs TLS\r\n"),
            ("STAT", "-ERR Not logged in"),
        ],
    );
    assert_eq!(*users.failed.borrow(), [""]);

    let down = Users { creds: Some(TestCreds::down()), ..Users::new() };
    script(&mut session(), &down, &[("AUTH PLAIN AG1yb3NlAHRhbnN0YWFm", "-ERR [SYS/TEMP]")]);
    let blocked = Users { blocked: true, ..Users::new() };
    script(&mut session(), &blocked, &[("AUTH PLAIN AG1yb3NlAHRhbnN0YWFm", "-ERR [SYS/TEMP] Too many")]);
}

#[test]
fn auth_login_and_long_responses() {
    let users = Users::new();
    let mut s = session();
    script(
        &mut s,
        &users,
        &[
            ("AUTH LOGIN", "+ VXNlcm5hbWU6\r\n"),
            ("bXJvc2U=", "+ UGFzc3dvcmQ6\r\n"),
            ("dGFuc3RhYWY=", "<Open { user: \"mrose\" }>"),
        ],
    );
    // RFC 5034 4: responses may exceed 255 octets; the caller reads up to max_line().
    let mut s = session();
    assert_eq!(s.max_line(), 255);
    script(&mut s, &users, &[("AUTH LOGIN", "+ ")]);
    assert_eq!(s.max_line(), MAX_AUTH_LINE);
    let long = crate::auth::sasl::encode_base64(&[b'a'; 600]);
    script(
        &mut s,
        &users,
        &[(&long, "+ UGFzc3dvcmQ6"), ("dGFuc3RhYWY=", "-ERR [AUTH] Authentication failed")],
    );
    script(&mut s, &users, &[("AUTH LOGIN", "+ ")]);
    assert_eq!(wire(&s.on_line_too_long()), "-ERR Line too long\r\n");
    assert_eq!(s.state(), State::Authorization);
}

#[test]
fn line_too_long() {
    let users = Users::new();
    let mut s = session();
    let long = format!("USER {}", "a".repeat(249));
    script(&mut s, &users, &[(&long, "-ERR Line too long\r\n")]);
    assert_eq!(wire(&s.on_line_too_long()), "-ERR Line too long\r\n");
    assert_eq!(s.errors(), 2);
}

#[test]
fn open_failures() {
    let users = Users::new();
    let mut s = session();
    script(&mut s, &users, &[("USER mrose", "+OK"), ("PASS tanstaaf", "<Open")]);
    // The caller must answer Open before feeding more lines.
    assert_eq!(
        s.on_opened(Err(OpenError::InUse)),
        vec![err("[IN-USE] Maildrop is locked by another session")]
    );
    assert_eq!(s.state(), State::Authorization);
    assert_eq!(s.user(), None);
    script(
        &mut s,
        &users,
        &[("STAT", "-ERR Not logged in"), ("USER mrose", "+OK"), ("PASS tanstaaf", "<Open")],
    );
    assert_eq!(
        wire(&s.on_opened(Err(OpenError::Temp("EIO".into())))),
        "-ERR [SYS/TEMP] Cannot open maildrop now\r\n"
    );
    script(&mut s, &users, &[("QUIT", "+OK buzon POP3 server signing off\r\n<Close>")]);
    assert_eq!(s.state(), State::Closed);
}

#[test]
fn caller_misuse_closes() {
    let users = Users::new();
    let mut s = session();
    assert_eq!(wire(&s.on_opened(Ok(&Drop))), "-ERR [SYS/TEMP] Internal error\r\n<Close>");
    let mut s = session();
    assert_eq!(wire(&s.on_updated(Ok(()))), "-ERR [SYS/TEMP] Internal error\r\n<Close>");
    let mut s = session();
    script(&mut s, &users, &[("USER mrose", "+OK"), ("PASS tanstaaf", "<Open")]);
    assert_eq!(wire(&s.on_line(b"STAT", &users)), "-ERR [SYS/TEMP] Internal error\r\n<Close>");
    let mut s = logged_in(&users);
    script(&mut s, &users, &[("QUIT", "<Update")]);
    assert_eq!(wire(&s.on_line(b"STAT", &users)), "-ERR [SYS/TEMP] Internal error\r\n<Close>");
}

#[test]
fn too_many_errors_close() {
    let users = Users::new();
    let mut s = session_with(true, 3);
    script(
        &mut s,
        &users,
        &[
            ("FOO", "-ERR Unknown command"),
            ("BAR", "-ERR Unknown command"),
            ("CAPA", "+OK"),
            ("STAT", "-ERR Not logged in"),
            ("CAPA", "-ERR Too many errors, closing connection\r\n<Close>"),
        ],
    );
    assert_eq!(s.on_line(b"CAPA", &users), vec![Action::Close]);
}

#[test]
fn timeout_and_shutdown() {
    let mut s = logged_in(&Users::new());
    // RFC 1939 3: a timeout does not enter UPDATE, so no Update action.
    assert_eq!(wire(&s.on_timeout()), "-ERR Disconnected for inactivity\r\n<Close>");
    assert_eq!(s.state(), State::Closed);
    let mut s = session();
    assert!(wire(&s.on_shutdown()).starts_with("-ERR [SYS/TEMP]"));
    assert_eq!(s.greeting(), b"+OK buzon POP3 server ready\r\n");
    assert!(Session::busy().starts_with(b"-ERR [SYS/TEMP]"));
    assert!(message_unavailable().ends_with(b"\r\n"));
}

/// RFC 1939 7: the greeting's timestamp, then APOP name MD5(timestamp + password).
#[test]
fn apop_with_the_greeting_timestamp() {
    use md5::Digest;
    let users = Users::new();
    let p = Params { apop: true, ..(*params(10, &[])).clone() };
    let peer = Peer { ip: "192.0.2.7".parse().unwrap(), port: 40000, cleartext_auth: false };
    let mut s = Session::new(Arc::new(p), peer);
    s.set_apop_nonce(0x1234);
    let greeting = String::from_utf8(s.greeting()).unwrap();
    let stamp = &greeting[greeting.find('<').unwrap()..=greeting.find('>').unwrap()];
    assert!(stamp.ends_with(".1234@dbc.mtview.ca.us>"), "{greeting}");
    let hex = |d: &[u8]| d.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let wrong = hex(&md5::Md5::digest(format!("{stamp}wrong").as_bytes()));
    let acts = s.on_line(format!("APOP mrose {wrong}").as_bytes(), &users);
    assert!(matches!(&acts[0], Action::Reply(r) if r.starts_with(b"-ERR [AUTH]")));
    assert_eq!(users.failed.borrow().as_slice(), ["mrose"]);
    let good = hex(&md5::Md5::digest(format!("{stamp}tanstaaf").as_bytes()));
    let acts = s.on_line(format!("APOP mrose {good}").as_bytes(), &users);
    assert!(
        matches!(&acts[0], Action::Open { user } if user == "mrose"),
        "APOP works without TLS: it sends no password"
    );
    // Without pop3.apop there is no timestamp, and APOP is refused.
    let mut plain = session_with(false, 10);
    plain.set_apop_nonce(1);
    assert_eq!(plain.greeting(), b"+OK buzon POP3 server ready\r\n");
    let acts = plain.on_line(format!("APOP mrose {good}").as_bytes(), &users);
    assert!(matches!(&acts[0], Action::Reply(r) if r.starts_with(b"-ERR")));
}
