//! Unit tests of the IMAP session: commands in, responses out, transcripts in the style of RFC 3501 8,
//! over an in-memory store (fake.rs). Tests whose output depends on SEARCH's sequence sets or on
//! FETCH rendering skip themselves while those modules are still stubs.

mod compress;
mod fake;
mod flows;
mod sort;

use super::*;
use crate::auth::sasl::{self, tests::TestCreds};
use crate::imap::types::{DateTime, ListArgs, ListReturn, ListSelect, SeqRange, StatusItem};
use fake::Shared;
use std::cell::RefCell;

const BASE: &str = "IMAP4rev1 IMAP4rev2 LITERAL+ SASL-IR ID ENABLE IDLE NAMESPACE UNSELECT UIDPLUS MOVE \
                    CHILDREN LIST-EXTENDED LIST-STATUS SPECIAL-USE ESEARCH SEARCHRES STATUS=SIZE BINARY UTF8=ACCEPT \
                    CONDSTORE QRESYNC SORT SORT=DISPLAY THREAD=ORDEREDSUBJECT THREAD=REFERENCES ESORT";

/// mrose/tanstaaf, one shared world; records failed logins.
struct TestBackend {
    creds: TestCreds,
    world: Shared,
    failed: RefCell<Vec<String>>,
    blocked: bool,
    store_down: bool,
    /// open_store hands the session to a mail process.
    elsewhere: bool,
}

impl TestBackend {
    fn new() -> TestBackend {
        TestBackend {
            creds: TestCreds::new(&[("mrose", "tanstaaf")]),
            world: Shared::new(),
            failed: RefCell::default(),
            blocked: false,
            store_down: false,
            elsewhere: false,
        }
    }

    /// INBOX with three messages (1 seen, 2 and 3 unseen), all \Recent.
    fn with_inbox() -> TestBackend {
        let b = TestBackend::new();
        b.world.deliver("INBOX", "a", folder::SEEN);
        b.world.deliver("INBOX", "b", 0);
        b.world.deliver("INBOX", "c", 0);
        b
    }
}

impl Login for TestBackend {
    fn credentials(&self) -> Option<&dyn crate::auth::sasl::Credentials> {
        Some(&self.creds)
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

impl Backend for TestBackend {
    fn open_store(&self, _user: &str) -> Result<Opened, String> {
        if self.store_down {
            Err("/var/mail/mrose: permission denied".into())
        } else if self.elsewhere {
            Ok(Opened::Elsewhere)
        } else {
            Ok(Opened::Here(self.world.store()))
        }
    }
}

fn params(max_errors: usize) -> Arc<Params> {
    Arc::new(Params {
        hostname: "imap.example.org".into(),
        max_errors,
        starttls: true,
        auth_mechanisms: vec![
            Mechanism::Plain,
            Mechanism::Login,
            Mechanism::ScramSha256,
            Mechanism::ScramSha256Plus,
        ],
        max_append: 1000,
    })
}

fn peer(cleartext_auth: bool) -> Peer {
    Peer { ip: "192.0.2.7".parse().unwrap(), port: 40000, cleartext_auth, tls: false, sid: "t1".into() }
}

fn session_with(cleartext: bool, max_errors: usize) -> Session {
    Session::new(params(max_errors), peer(cleartext))
}

/// One command; its output as text.
fn run(s: &mut Session, b: &TestBackend, tag: &str, cmd: Command) -> String {
    run_outcome(s, b, tag, cmd).0
}

fn run_outcome(s: &mut Session, b: &TestBackend, tag: &str, cmd: Command) -> (String, Outcome) {
    let mut out = Vec::new();
    let actions = s.on_command(tag.to_string(), cmd, b);
    let o = s.perform_into(actions, &mut out).unwrap();
    (String::from_utf8(out).unwrap(), o)
}

/// Carries out what a session call gave, into `out`.
fn act(s: &mut Session, out: &mut Vec<u8>, f: impl FnOnce(&mut Session) -> Vec<Action>) -> Outcome {
    let actions = f(s);
    s.perform_into(actions, out).unwrap()
}

/// Output with every flag list after `FLAGS ` written as `_`, so that tests do not depend on how
/// fetch::write_flags orders flags (or on it being a stub).
fn norm(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("FLAGS ") {
        out.push_str(&rest[..i + 6]);
        rest = &rest[i + 6..];
        out.push('_');
        if rest.starts_with('(') {
            let end = rest.find(')').unwrap();
            rest = &rest[end + 1..];
        }
    }
    out.push_str(rest);
    out
}

/// A session logged in as mrose (cleartext allowed).
fn logged_in(b: &TestBackend) -> Session {
    let mut s = session_with(true, 10);
    let got = run(&mut s, b, "a0", login_cmd("mrose", "tanstaaf"));
    assert!(got.starts_with("a0 OK [CAPABILITY "), "{got}");
    s
}

/// Logged in with INBOX selected.
fn selected(b: &TestBackend) -> Session {
    let mut s = logged_in(b);
    let got = run(&mut s, b, "a1", select("INBOX"));
    assert!(got.ends_with("a1 OK [READ-WRITE] SELECT completed\r\n"), "{got}");
    s
}

fn login_cmd(user: &str, pass: &str) -> Command {
    Command::Login { user: user.as_bytes().to_vec(), password: pass.as_bytes().to_vec() }
}

fn select(name: &str) -> Command {
    Command::Select { mailbox: name.as_bytes().to_vec(), readonly: false, condstore: false, qresync: None }
}

fn examine(name: &str) -> Command {
    Command::Select { mailbox: name.as_bytes().to_vec(), readonly: true, condstore: false, qresync: None }
}

fn list(reference: &str, pattern: &str) -> Command {
    Command::List(ListArgs {
        select: vec![],
        reference: reference.as_bytes().to_vec(),
        patterns: vec![pattern.as_bytes().to_vec()],
        ret: vec![],
        extended: false,
    })
}

fn list_ext(select: Vec<ListSelect>, pattern: &str, ret: Vec<ListReturn>) -> Command {
    Command::List(ListArgs {
        select,
        reference: Vec::new(),
        patterns: vec![pattern.as_bytes().to_vec()],
        ret,
        extended: true,
    })
}

/// A sequence set from its text (`1:3,5,*`, `$`).
fn set(s: &str) -> SeqSet {
    if s == "$" {
        return SeqSet::Saved;
    }
    let num = |t: &str| if t == "*" { SeqNum::Star } else { SeqNum::Value(t.parse().unwrap()) };
    SeqSet::Ranges(
        s.split(',')
            .map(|r| match r.split_once(':') {
                Some((a, b)) => SeqRange { start: num(a), end: num(b) },
                None => SeqRange { start: num(r), end: num(r) },
            })
            .collect(),
    )
}

fn mailbox(name: &str) -> Vec<u8> {
    name.as_bytes().to_vec()
}

/// Whether search::resolve is the real one yet (the stub names nothing).
fn resolve_ready() -> bool {
    let m = folder::MessageInfo {
        uid: 1,
        flags: Flags::default(),
        size: 1,
        internal_date: 0,
        recent: false,
        modseq: 0,
    };
    let ready = !crate::imap::search::resolve(&set("1"), &[m], false, &[]).is_empty();
    if !ready {
        eprintln!("search::resolve is still a stub: skipping");
    }
    ready
}

// --- greeting, CAPABILITY, STARTTLS ---

#[test]
fn greeting_and_capability_follow_the_cleartext_rule() {
    let b = TestBackend::new();
    let mut s = session_with(false, 10);
    let pre = format!("{BASE} STARTTLS AUTH=SCRAM-SHA-256 LOGINDISABLED");
    assert_eq!(
        String::from_utf8(s.greeting()).unwrap(),
        format!("* OK [CAPABILITY {pre}] imap.example.org buzon IMAP ready\r\n")
    );
    assert_eq!(s.mode(), Mode::Command);
    assert_eq!(
        run(&mut s, &b, "abcd", Command::Capability),
        format!("* CAPABILITY {pre}\r\nabcd OK CAPABILITY completed\r\n")
    );

    // RFC 3501 6.2.1: after STARTTLS the capabilities change.
    let (got, outcome) = run_outcome(&mut s, &b, "a002", Command::StartTls);
    assert_eq!(got, "a002 OK Begin TLS negotiation now\r\n");
    assert_eq!(outcome, Outcome::StartTls);
    let binding = crate::auth::sasl::ChannelBinding { kind: "tls-exporter", data: vec![1; 32] };
    s.on_tls(Some(("TLSv1.3 TLS13_AES_256_GCM_SHA384".into(), vec![binding])));
    assert_eq!(s.tls(), Some("TLSv1.3 TLS13_AES_256_GCM_SHA384"));
    let post = format!("{BASE} AUTH=PLAIN AUTH=LOGIN AUTH=SCRAM-SHA-256 AUTH=SCRAM-SHA-256-PLUS");
    assert_eq!(
        run(&mut s, &b, "a003", Command::Capability),
        format!("* CAPABILITY {post}\r\na003 OK CAPABILITY completed\r\n")
    );
    assert_eq!(run(&mut s, &b, "a004", Command::StartTls), "a004 BAD TLS is already active\r\n");
}

#[test]
fn implicit_tls_and_trusted_networks_allow_login() {
    let mut p = peer(false);
    p.tls = true;
    let s = Session::new(params(10), p);
    let g = String::from_utf8(s.greeting()).unwrap();
    assert!(g.contains("AUTH=PLAIN AUTH=LOGIN AUTH=SCRAM-SHA-256]"), "{g}");
    assert!(!g.contains("STARTTLS") && !g.contains("LOGINDISABLED"), "{g}");
    let g = String::from_utf8(session_with(true, 10).greeting()).unwrap();
    assert!(g.contains("STARTTLS AUTH=PLAIN AUTH=LOGIN AUTH=SCRAM-SHA-256]"), "{g}");
}

#[test]
fn starttls_not_configured_is_bad() {
    let b = TestBackend::new();
    let mut p = (*params(10)).clone();
    p.starttls = false;
    let mut s = Session::new(Arc::new(p), peer(false));
    assert!(!String::from_utf8(s.greeting()).unwrap().contains("STARTTLS"));
    assert_eq!(run(&mut s, &b, "a", Command::StartTls), "a BAD STARTTLS is not offered\r\n");
}

// --- LOGIN and AUTHENTICATE ---

#[test]
fn login_success_and_capabilities_after() {
    let b = TestBackend::new();
    let mut s = session_with(true, 10);
    assert_eq!(
        run(&mut s, &b, "a001", login_cmd("mrose", "tanstaaf")),
        format!("a001 OK [CAPABILITY {BASE} COMPRESS=DEFLATE] Logged in\r\n")
    );
    assert_eq!(s.logged_in_user(), Some("mrose"));
    assert_eq!(s.state(), State::Authenticated);
    assert_eq!(run(&mut s, &b, "a002", login_cmd("mrose", "tanstaaf")), "a002 BAD Already logged in\r\n");
}

#[test]
fn login_failures() {
    let b = TestBackend::new();
    let mut s = session_with(true, 10);
    assert_eq!(
        run(&mut s, &b, "a1", login_cmd("mrose", "wrong")),
        "a1 NO [AUTHENTICATIONFAILED] Authentication failed\r\n"
    );
    assert_eq!(*b.failed.borrow(), ["mrose"]);
    assert_eq!(s.errors(), 1);
    assert_eq!(s.state(), State::NotAuthenticated);

    // RFC 3501 6.2.3: LOGINDISABLED without TLS.
    let mut s = session_with(false, 10);
    assert_eq!(
        run(&mut s, &b, "a2", login_cmd("mrose", "tanstaaf")),
        "a2 NO [PRIVACYREQUIRED] LOGIN is disabled without TLS; use STARTTLS first\r\n"
    );
    assert_eq!(s.logged_in_user(), None);

    let mut blocked = TestBackend::new();
    blocked.blocked = true;
    let mut s = session_with(true, 10);
    assert_eq!(
        run(&mut s, &blocked, "a3", login_cmd("mrose", "tanstaaf")),
        "a3 NO [UNAVAILABLE] Too many failed logins, try again later\r\n"
    );

    // The store cannot be opened: no path in the reply.
    let mut down = TestBackend::new();
    down.store_down = true;
    let mut s = session_with(true, 10);
    assert_eq!(
        run(&mut s, &down, "a4", login_cmd("mrose", "tanstaaf")),
        "a4 NO [UNAVAILABLE] Mailbox cannot be opened now, try again later\r\n"
    );
    assert_eq!(s.state(), State::NotAuthenticated);
}

#[test]
fn a_login_handed_to_a_mail_process_says_ok_then_relays() {
    let mut b = TestBackend::new();
    b.elsewhere = true;
    let mut s = session_with(true, 10);
    let reply = run(&mut s, &b, "a1", login_cmd("mrose", "tanstaaf"));
    assert!(reply.starts_with("a1 OK [CAPABILITY IMAP4rev1"), "{reply}");
    assert!(reply.ends_with("] Logged in\r\n"), "{reply}");
    assert_eq!(s.mode(), Mode::HandedOff, "the rest of the session is the mail process's");
    assert_eq!(s.logged_in_user(), Some("mrose"));
}

#[test]
fn a_preauthenticated_session_serves_the_user_at_once() {
    let b = TestBackend::with_inbox();
    let mut s = Session::preauth(params(10), peer(true), "mrose".into(), b.world.store());
    assert_eq!(s.state(), State::Authenticated);
    let reply = run(&mut s, &b, "a1", select("INBOX"));
    assert!(reply.contains("* 3 EXISTS\r\n") && reply.contains("a1 OK [READ-WRITE]"), "{reply}");
}

fn plain_ir() -> Vec<u8> {
    sasl::encode_base64(b"\0mrose\0tanstaaf").into_bytes()
}

#[test]
fn authenticate_plain_with_sasl_ir() {
    // RFC 4959 3.
    let b = TestBackend::new();
    let mut s = session_with(true, 10);
    let got =
        run(&mut s, &b, "a1", Command::Authenticate { mechanism: "PLAIN".into(), initial: Some(plain_ir()) });
    assert_eq!(got, format!("a1 OK [CAPABILITY {BASE} COMPRESS=DEFLATE] Logged in\r\n"));
    assert_eq!(s.logged_in_user(), Some("mrose"));
}

#[test]
fn authenticate_plain_with_continuation_and_cancel() {
    let b = TestBackend::new();
    let mut s = session_with(true, 10);
    let auth = || Command::Authenticate { mechanism: "plain".into(), initial: None };
    assert_eq!(run(&mut s, &b, "a1", auth()), "+ \r\n");
    assert_eq!(s.mode(), Mode::SaslResponse);
    let mut out = Vec::new();
    // RFC 3501 6.2.2: "*" cancels with BAD.
    act(&mut s, &mut out, |s| s.on_sasl_line(b"*", &b));
    assert_eq!(String::from_utf8(out).unwrap(), "a1 BAD Authentication cancelled\r\n");
    assert_eq!(s.mode(), Mode::Command);

    assert_eq!(run(&mut s, &b, "a2", auth()), "+ \r\n");
    let mut out = Vec::new();
    act(&mut s, &mut out, |s| s.on_sasl_line(b"not base64!", &b));
    assert_eq!(String::from_utf8(out).unwrap(), "a2 BAD Cannot decode the response as base64\r\n");

    assert_eq!(run(&mut s, &b, "a3", auth()), "+ \r\n");
    let mut out = Vec::new();
    act(&mut s, &mut out, |s| s.on_sasl_line(sasl::encode_base64(b"\0mrose\0nope").as_bytes(), &b));
    assert_eq!(String::from_utf8(out).unwrap(), "a3 NO [AUTHENTICATIONFAILED] Authentication failed\r\n");

    assert_eq!(run(&mut s, &b, "a4", auth()), "+ \r\n");
    let mut out = Vec::new();
    assert_eq!(act(&mut s, &mut out, |s| s.on_sasl_line(&plain_ir(), &b)), Outcome::Continue);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        format!("a4 OK [CAPABILITY {BASE} COMPRESS=DEFLATE] Logged in\r\n")
    );
    assert_eq!(s.state(), State::Authenticated);
}

#[test]
fn authenticate_refusals() {
    let b = TestBackend::new();
    let mut s = session_with(false, 10);
    let got =
        run(&mut s, &b, "a1", Command::Authenticate { mechanism: "PLAIN".into(), initial: Some(plain_ir()) });
    assert_eq!(got, "a1 NO [PRIVACYREQUIRED] This mechanism is disabled without TLS; use STARTTLS first\r\n");
    let got = run(&mut s, &b, "a2", Command::Authenticate { mechanism: "X-FOO".into(), initial: None });
    assert_eq!(got, "a2 NO Unsupported authentication mechanism\r\n");
    let got = run(
        &mut s,
        &b,
        "a3",
        Command::Authenticate { mechanism: "SCRAM-SHA-256-PLUS".into(), initial: None },
    );
    assert_eq!(got, "a3 NO [PRIVACYREQUIRED] This mechanism needs TLS channel binding\r\n");
    let mut s = session_with(true, 10);
    let got = run(
        &mut s,
        &b,
        "a4",
        Command::Authenticate { mechanism: "PLAIN".into(), initial: Some(b"@@@".to_vec()) },
    );
    assert_eq!(got, "a4 BAD Cannot decode the initial response as base64\r\n");
}

#[test]
fn commands_outside_their_state() {
    let b = TestBackend::new();
    let mut s = session_with(true, 10);
    assert_eq!(run(&mut s, &b, "a1", select("INBOX")), "a1 BAD Not logged in\r\n");
    assert_eq!(run(&mut s, &b, "a2", Command::Enable(vec!["IMAP4rev2".into()])), "a2 BAD Not logged in\r\n");
    let mut s = logged_in(&b);
    assert_eq!(run(&mut s, &b, "a3", Command::Expunge), "a3 BAD No mailbox selected\r\n");
    assert_eq!(run(&mut s, &b, "a4", Command::StartTls), "a4 BAD Already logged in\r\n");
}

#[test]
fn logout_id_noop_namespace() {
    let b = TestBackend::new();
    let mut s = logged_in(&b);
    assert_eq!(run(&mut s, &b, "a1", Command::Noop), "a1 OK NOOP completed\r\n");
    assert_eq!(
        run(&mut s, &b, "a2", Command::Id(Some(vec![("name".into(), Some("sodr".into()))]))),
        format!(
            "* ID (\"name\" \"buzon\" \"version\" \"{}\")\r\na2 OK ID completed\r\n",
            env!("CARGO_PKG_VERSION")
        )
    );
    assert_eq!(
        run(&mut s, &b, "a3", Command::Namespace),
        "* NAMESPACE ((\"\" \"/\")) NIL NIL\r\na3 OK NAMESPACE completed\r\n"
    );
    let (got, o) = run_outcome(&mut s, &b, "A023", Command::Logout);
    assert_eq!(got, "* BYE buzon IMAP server logging out\r\nA023 OK LOGOUT completed\r\n");
    assert_eq!(o, Outcome::Close);
    assert_eq!(s.mode(), Mode::Closed);
    assert_eq!(run_outcome(&mut s, &b, "a4", Command::Noop), (String::new(), Outcome::Close));
}

#[test]
fn enable_lists_what_it_turned_on() {
    let b = TestBackend::new();
    let mut s = logged_in(&b);
    let en = |v: &[&str]| Command::Enable(v.iter().map(|c| c.to_string()).collect());
    assert_eq!(
        run(&mut s, &b, "a1", en(&["IMAP4rev2", "CONDSTORE", "utf8=accept"])),
        "* ENABLED IMAP4rev2 CONDSTORE UTF8=ACCEPT\r\na1 OK ENABLE completed\r\n"
    );
    assert_eq!(run(&mut s, &b, "a2", en(&["IMAP4rev2"])), "* ENABLED\r\na2 OK ENABLE completed\r\n");
}

// --- errors ---

#[test]
fn error_limit_closes_with_bye() {
    let b = TestBackend::new();
    let mut s = session_with(true, 3);
    let perr =
        |tag: Option<&str>| ParseError { tag: tag.map(String::from), message: "Unknown command".into() };
    let mut out = Vec::new();
    assert_eq!(act(&mut s, &mut out, |s| s.on_parse_error(perr(Some("x1")))), Outcome::Continue);
    assert_eq!(act(&mut s, &mut out, |s| s.on_parse_error(perr(None))), Outcome::Continue);
    assert_eq!(String::from_utf8(out).unwrap(), "x1 BAD Unknown command\r\n* BAD Unknown command\r\n");
    // A failed login counts too.
    let (got, o) = run_outcome(&mut s, &b, "x3", login_cmd("mrose", "guess"));
    assert_eq!(got, "x3 NO [AUTHENTICATIONFAILED] Authentication failed\r\n* BYE Too many errors\r\n");
    assert_eq!(o, Outcome::Close);
    assert_eq!(s.mode(), Mode::Closed);
}

#[test]
fn autologout_and_shutdown_say_bye() {
    let b = TestBackend::new();
    let mut s = selected(&b);
    let mut out = Vec::new();
    act(&mut s, &mut out, |s| s.autologout());
    assert_eq!(out, b"* BYE Autologout; idle for too long\r\n");
    assert_eq!(s.mode(), Mode::Closed);
    let mut s = logged_in(&b);
    let mut out = Vec::new();
    act(&mut s, &mut out, |s| s.shutdown());
    assert_eq!(out, b"* BYE Server shutting down\r\n");
}

// --- SELECT / EXAMINE ---

#[test]
fn select_rev1() {
    // RFC 3501 6.3.1 example, with this store's figures.
    let b = TestBackend::with_inbox();
    let mut s = logged_in(&b);
    assert_eq!(
        run(&mut s, &b, "A142", select("inbox")),
        "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n\
         * OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] Flags permitted\r\n\
         * 3 EXISTS\r\n\
         * 3 RECENT\r\n\
         * OK [UNSEEN 2] First unseen\r\n\
         * OK [UIDVALIDITY 1001] UIDs valid\r\n\
         * OK [UIDNEXT 4] Predicted next UID\r\n\
         A142 OK [READ-WRITE] SELECT completed\r\n"
    );
    assert_eq!(s.state(), State::Selected);
    // RFC 3501 6.3.2: EXAMINE; the old mailbox is closed first.
    b.world.add_box("Archive");
    assert_eq!(
        run(&mut s, &b, "A932", examine("Archive")),
        "* OK [CLOSED] Previous mailbox closed\r\n\
         * FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n\
         * OK [PERMANENTFLAGS ()] No permanent flags permitted\r\n\
         * 0 EXISTS\r\n\
         * 0 RECENT\r\n\
         * OK [UIDVALIDITY 1002] UIDs valid\r\n\
         * OK [UIDNEXT 1] Predicted next UID\r\n\
         A932 OK [READ-ONLY] EXAMINE completed\r\n"
    );
    // A failed SELECT leaves no mailbox selected.
    assert_eq!(
        run(&mut s, &b, "A933", select("Nope")),
        "* OK [CLOSED] Previous mailbox closed\r\nA933 NO [NONEXISTENT] Mailbox does not exist\r\n"
    );
    assert_eq!(s.state(), State::Authenticated);
}

#[test]
fn select_rev2() {
    // RFC 9051 6.3.2: no RECENT or UNSEEN; a LIST response.
    let b = TestBackend::with_inbox();
    let mut s = logged_in(&b);
    run(&mut s, &b, "a1", Command::Enable(vec!["IMAP4rev2".into()]));
    b.world.lock().boxes.get_mut("INBOX").unwrap().msgs[0].flags.keywords = vec!["$Forwarded".into()];
    assert_eq!(
        run(&mut s, &b, "A142", select("INBOX")),
        "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Forwarded)\r\n\
         * OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Forwarded \\*)] Flags permitted\r\n\
         * 3 EXISTS\r\n\
         * OK [UIDVALIDITY 1001] UIDs valid\r\n\
         * OK [UIDNEXT 4] Predicted next UID\r\n\
         * LIST () \"/\" \"INBOX\"\r\n\
         A142 OK [READ-WRITE] SELECT completed\r\n"
    );
}

#[test]
fn close_and_unselect() {
    let b = TestBackend::with_inbox();
    let mut s = selected(&b);
    b.world.lock().boxes.get_mut("INBOX").unwrap().msgs[1].flags.system |= folder::DELETED;
    assert_eq!(
        norm(&run(&mut s, &b, "a1", Command::Noop)),
        "* 2 FETCH (FLAGS _)\r\na1 OK NOOP completed\r\n"
    );
    // RFC 3501 6.4.2: CLOSE expunges silently.
    assert_eq!(run(&mut s, &b, "a2", Command::Close), "a2 OK CLOSE completed\r\n");
    assert_eq!(b.world.uids("INBOX"), [1, 3]);
    assert_eq!(s.state(), State::Authenticated);
    // EXAMINE + CLOSE does not expunge; UNSELECT never does.
    b.world.lock().boxes.get_mut("INBOX").unwrap().msgs[0].flags.system |= folder::DELETED;
    run(&mut s, &b, "a3", examine("INBOX"));
    assert_eq!(run(&mut s, &b, "a4", Command::Close), "a4 OK CLOSE completed\r\n");
    run(&mut s, &b, "a5", select("INBOX"));
    assert_eq!(run(&mut s, &b, "a6", Command::Unselect), "a6 OK UNSELECT completed\r\n");
    assert_eq!(b.world.uids("INBOX"), [1, 3]);
    assert_eq!(run(&mut s, &b, "a7", Command::Close), "a7 BAD No mailbox selected\r\n");
}

// --- mailbox management ---

#[test]
fn create_rename_delete_codes() {
    let b = TestBackend::new();
    let mut s = logged_in(&b);
    let create = |n: &str| Command::Create(mailbox(n));
    assert_eq!(run(&mut s, &b, "a1", create("Work/")), "a1 OK CREATE completed\r\n");
    assert!(b.world.lock().boxes.contains_key("Work"));
    assert_eq!(run(&mut s, &b, "a2", create("Work")), "a2 NO [ALREADYEXISTS] Mailbox already exists\r\n");
    assert_eq!(run(&mut s, &b, "a3", create("inbox")), "a3 NO [ALREADYEXISTS] INBOX always exists\r\n");
    assert_eq!(run(&mut s, &b, "a4", create("a/../b")), "a4 NO [CANNOT] Invalid mailbox name\r\n");
    assert_eq!(run(&mut s, &b, "a5", create("Work/Reports")), "a5 OK CREATE completed\r\n");
    assert_eq!(
        run(&mut s, &b, "a6", create("50%")),
        "a6 NO [CANNOT] Mailbox names cannot contain * or %\r\n"
    );
    let rename = |f: &str, t: &str| Command::Rename { from: mailbox(f), to: mailbox(t) };
    assert_eq!(run(&mut s, &b, "b1", rename("Nope", "X")), "b1 NO [NONEXISTENT] Mailbox does not exist\r\n");
    assert_eq!(
        run(&mut s, &b, "b2", rename("Work", "INBOX")),
        "b2 NO [ALREADYEXISTS] INBOX always exists\r\n"
    );
    assert_eq!(run(&mut s, &b, "b3", rename("Work", "Play")), "b3 OK RENAME completed\r\n");
    assert!(b.world.lock().boxes.contains_key("Play/Reports"));
    let delete = |n: &str| Command::Delete(mailbox(n));
    assert_eq!(run(&mut s, &b, "c1", delete("INBOX")), "c1 NO [CANNOT] INBOX cannot be deleted\r\n");
    assert_eq!(run(&mut s, &b, "c2", delete("Work")), "c2 NO [NONEXISTENT] Mailbox does not exist\r\n");
    // Deleting the selected mailbox closes it first.
    run(&mut s, &b, "c3", select("Play/Reports"));
    assert_eq!(
        run(&mut s, &b, "c4", delete("Play/Reports")),
        "* OK [CLOSED] Mailbox closed\r\nc4 OK DELETE completed\r\n"
    );
    assert_eq!(s.state(), State::Authenticated);
    assert!(!b.world.lock().boxes.contains_key("Play/Reports"));
    assert_eq!(run(&mut s, &b, "c5", Command::Subscribe(mailbox("Play"))), "c5 OK SUBSCRIBE completed\r\n");
    assert!(b.world.lock().subs.contains("Play"));
    assert_eq!(
        run(&mut s, &b, "c6", Command::Unsubscribe(mailbox("Play"))),
        "c6 OK UNSUBSCRIBE completed\r\n"
    );
    assert!(b.world.lock().subs.is_empty());
}

#[test]
fn mailbox_names_must_decode() {
    let b = TestBackend::new();
    let mut s = logged_in(&b);
    run(&mut s, &b, "a0", Command::Enable(vec!["UTF8=ACCEPT".into()]));
    assert_eq!(
        run(&mut s, &b, "a1", Command::Create(vec![b'X', 0xff])),
        "a1 NO [CANNOT] Mailbox name is not valid UTF-8\r\n"
    );
    assert_eq!(run(&mut s, &b, "a2", Command::Create(mailbox("Entwürfe"))), "a2 OK CREATE completed\r\n");
    assert_eq!(
        run(&mut s, &b, "a3", list("", "Entw*")),
        "* LIST (\\HasNoChildren) \"/\" \"Entwürfe\"\r\na3 OK LIST completed\r\n"
    );
}

#[test]
fn a_name_that_is_not_modified_utf7_names_nothing() {
    let b = TestBackend::with_inbox();
    let mut s = logged_in(&b);
    for (tag, cmd) in [
        (
            "b1",
            Command::Select { mailbox: b"&Jjo".to_vec(), readonly: false, condstore: false, qresync: None },
        ),
        ("b2", Command::Create(b"a&".to_vec())),
    ] {
        assert_eq!(
            run(&mut s, &b, tag, cmd),
            format!("{tag} NO [CANNOT] Mailbox name is not valid modified UTF-7\r\n")
        );
    }
    assert_eq!(run(&mut s, &b, "b3", list("", "&Jjo*")), "b3 OK LIST completed\r\n");
    assert_eq!(run(&mut s, &b, "b4", list("&AGE", "*")), "b4 OK LIST completed\r\n");
    assert_eq!(run(&mut s, &b, "b5", Command::Noop), "b5 OK NOOP completed\r\n");
}

#[test]
fn status_items_in_order() {
    let b = TestBackend::with_inbox();
    let mut s = logged_in(&b);
    let all = vec![
        StatusItem::Messages,
        StatusItem::Recent,
        StatusItem::UidNext,
        StatusItem::UidValidity,
        StatusItem::Unseen,
        StatusItem::Size,
        StatusItem::Deleted,
    ];
    assert_eq!(
        run(&mut s, &b, "A042", Command::Status { mailbox: mailbox("INBOX"), items: all.clone() }),
        "* STATUS \"INBOX\" (MESSAGES 3 RECENT 3 UIDNEXT 4 UIDVALIDITY 1001 UNSEEN 2 SIZE 3 DELETED 0)\r\n\
         A042 OK STATUS completed\r\n"
    );
    assert_eq!(
        run(&mut s, &b, "A043", Command::Status { mailbox: mailbox("Nope"), items: all.clone() }),
        "A043 NO [NONEXISTENT] Mailbox does not exist\r\n"
    );
    // On the selected mailbox: the session's view (still \Recent for it).
    run(&mut s, &b, "A044", select("INBOX"));
    assert_eq!(
        run(
            &mut s,
            &b,
            "A045",
            Command::Status { mailbox: mailbox("INBOX"), items: vec![StatusItem::Recent] }
        ),
        "* STATUS \"INBOX\" (RECENT 3)\r\nA045 OK STATUS completed\r\n"
    );
}

#[test]
fn append_codes() {
    let b = TestBackend::with_inbox();
    let mut s = logged_in(&b);
    let append = |n: &str, flags: Vec<Flag>, msg: &[u8]| Command::Append {
        mailbox: mailbox(n),
        flags,
        date: Some(DateTime { unix: 837_570_265, zone_minutes: -420 }),
        message: msg.to_vec(),
        binary: false,
    };
    let msg = b"Subject: afternoon meeting\r\n\r\nHello Joe\r\n";
    assert_eq!(
        run(&mut s, &b, "A002", append("Saved", vec![], msg)),
        "A002 NO [TRYCREATE] Mailbox does not exist\r\n"
    );
    assert_eq!(
        run(&mut s, &b, "A003", append("INBOX", vec![Flag::Seen], msg)),
        "A003 OK [APPENDUID 1001 4] APPEND completed\r\n"
    );
    {
        let w = b.world.lock();
        let m = w.boxes.get("INBOX").unwrap().msgs.last().unwrap().clone();
        assert_eq!(
            (m.uid, m.flags.system, m.date, m.body.as_slice()),
            (4, folder::SEEN, 837_570_265, &msg[..])
        );
    }
    assert_eq!(
        run(&mut s, &b, "A004", append("INBOX", vec![], &[b'x'; 1001])),
        "A004 NO [TOOBIG] Message too big (limit 1000 octets)\r\n"
    );
    assert_eq!(
        run(&mut s, &b, "A005", append("INBOX", vec![Flag::Recent], msg)),
        "A005 BAD \\Recent cannot be set\r\n"
    );
    // Appending to the selected mailbox: the new message is announced before the tagged OK.
    run(&mut s, &b, "A006", select("INBOX"));
    assert_eq!(
        run(&mut s, &b, "A007", append("INBOX", vec![], msg)),
        "* 5 EXISTS\r\n* 5 RECENT\r\nA007 OK [APPENDUID 1001 5] APPEND completed\r\n"
    );
}

#[test]
fn seq_text_compresses_runs() {
    assert_eq!(seq_text(&[]), "");
    assert_eq!(seq_text(&[1, 2, 3]), "1:3");
    assert_eq!(seq_text(&[1, 2, 3, 5, 7, 8]), "1:3,5,7:8");
    assert_eq!(seq_text(&[5, 3, 4]), "5,3:4");
    assert_eq!(seq_text(&[u32::MAX - 1, u32::MAX]), "4294967294:4294967295");
}

#[test]
fn inbox_is_case_insensitive() {
    assert_eq!(normalize_inbox("inbox".into()), "INBOX");
    assert_eq!(normalize_inbox("Inbox/Sub".into()), "INBOX/Sub");
    assert_eq!(normalize_inbox("Inboxes".into()), "Inboxes");
    assert_eq!(normalize_inbox("Work/inbox".into()), "Work/inbox");
}
