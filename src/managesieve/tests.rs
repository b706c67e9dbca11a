//! Unit tests of the ManageSieve session: RFC 5804's examples (sections 2.1-2.14) as transcripts,
//! commands in, responses out, over a real script directory in a temp dir.

use std::cell::RefCell;
use std::sync::Arc;

use super::ScriptCheck;
use super::command::{Command, parse};
use super::scripts::ScriptStore;
use super::session::{Action, Backend, Params, Peer, Session, State};
use crate::auth::sasl::tests::TestCreds;
use crate::auth::sasl::{Credentials, Mechanism, encode_base64};

struct Users {
    creds: TestCreds,
    failed: RefCell<usize>,
}

impl Backend for Users {
    fn credentials(&self) -> Option<&dyn Credentials> {
        Some(&self.creds)
    }
    fn random(&self, buf: &mut [u8]) {
        buf.fill(7);
    }
    fn auth_failed(&self, _: &str) {
        *self.failed.borrow_mut() += 1;
    }
    fn auth_blocked(&self) -> bool {
        false
    }
}

/// Stands in for the Sieve parser to show how its verdicts reach the client (RFC 5804 2.6, 2.12):
/// a line "InvalidSieveCommand" is an error, a line "warn" a warning.
struct Verdicts;

impl ScriptCheck for Verdicts {
    fn check(&self, script: &[u8]) -> Result<Vec<String>, String> {
        let text = String::from_utf8_lossy(script);
        if let Some(n) = text.lines().position(|l| l == "InvalidSieveCommand") {
            return Err(format!("line {}: Syntax error", n + 1));
        }
        Ok(text.lines().filter(|l| *l == "warn").map(|_| "line 1: warning".to_string()).collect())
    }
}

struct T {
    s: Session,
    users: Users,
    dir: tempfile::TempDir,
}

fn t_with(cleartext: bool, max_errors: usize) -> T {
    let params = Params {
        hostname: "sieve.example.com".into(),
        starttls: true,
        auth_mechanisms: vec![Mechanism::Plain, Mechanism::ScramSha256],
        max_errors,
        check: Arc::new(Verdicts),
    };
    let peer = Peer { ip: "192.0.2.7".parse().unwrap(), port: 40000, cleartext_auth: cleartext };
    T {
        s: Session::new(Arc::new(params), peer),
        users: Users { creds: TestCreds::new(&[("tim", "tanstaaftanstaaf")]), failed: RefCell::new(0) },
        dir: tempfile::tempdir().unwrap(),
    }
}

fn wire(actions: &[Action]) -> String {
    actions
        .iter()
        .map(|a| match a {
            Action::Reply(b) => String::from_utf8_lossy(b).into_owned(),
            other => format!("<{other:?}>"),
        })
        .collect()
}

impl T {
    /// Feeds one command; an `Open` is answered with the temp dir's store.
    fn c(&mut self, cmd: &str) -> String {
        let actions = self.s.on_command(cmd.as_bytes(), &self.users);
        let mut out = wire(&actions);
        if actions.iter().any(|a| matches!(a, Action::Open { .. })) {
            let store = ScriptStore::new(self.dir.path().join("tim"), 3, 1000);
            out.push_str(&wire(&self.s.on_opened(Ok(store))));
        }
        out
    }

    fn login(&mut self) {
        let ir = encode_base64(b"\0tim\0tanstaaftanstaaf");
        assert_eq!(
            self.c(&format!("AUTHENTICATE \"PLAIN\" \"{ir}\"")),
            "<Open { user: \"tim\" }>OK \"Logged in\"\r\n"
        );
        assert_eq!(self.s.state(), State::Authenticated);
    }
}

fn fresh() -> T {
    t_with(true, 20)
}

#[test]
fn greeting_lists_capabilities_rfc5804_1_7() {
    let t = t_with(false, 20);
    let g = String::from_utf8(t.s.greeting()).unwrap();
    assert!(g.starts_with("\"IMPLEMENTATION\" \"buzon\"\r\n"), "{g}");
    assert!(
        g.contains("\"SASL\" \"SCRAM-SHA-256\"\r\n"),
        "no PLAIN before TLS off the cleartext networks: {g}"
    );
    assert!(g.contains(&format!("\"SIEVE\" \"{}\"\r\n", super::sieve_extensions())), "{g}");
    assert!(g.contains("\"STARTTLS\"\r\n\"MAXREDIRECTS\" \"4\"\r\n\"VERSION\" \"1.0\"\r\nOK"), "{g}");
    assert!(g.ends_with("OK \"buzon ManageSieve ready\"\r\n"), "{g}");
    let t = fresh();
    assert!(String::from_utf8(t.s.greeting()).unwrap().contains("\"SASL\" \"PLAIN SCRAM-SHA-256\""));
}

#[test]
fn starttls_then_new_capabilities_rfc5804_2_2() {
    let mut t = t_with(false, 20);
    assert_eq!(t.c("StartTls"), "OK \"Begin TLS negotiation now\"\r\n<StartTls>");
    let caps = wire(&t.s.on_tls("TLSv1.3".into(), Vec::new()));
    assert!(caps.contains("\"SASL\" \"PLAIN SCRAM-SHA-256\""), "PLAIN under TLS: {caps}");
    assert!(!caps.contains("STARTTLS"), "{caps}");
    assert!(caps.ends_with("OK \"TLS negotiation successful\"\r\n"), "{caps}");
    assert!(t.c("STARTTLS").starts_with("NO \"TLS is already active\""));
}

#[test]
fn plain_refused_before_tls_off_cleartext_networks() {
    let mut t = t_with(false, 20);
    let ir = encode_base64(b"\0tim\0tanstaaftanstaaf");
    assert!(
        t.c(&format!("AUTHENTICATE \"PLAIN\" \"{ir}\""))
            .starts_with("NO \"Authentication mechanism needs TLS")
    );
    assert_eq!(t.s.state(), State::NotAuthenticated);
}

#[test]
fn authenticate_rfc5804_2_1() {
    let mut t = fresh();
    // With the initial response as a literal (RFC 5804 2.1: "{n+}").
    let ir = encode_base64(b"\0tim\0tanstaaftanstaaf");
    let out = t.c(&format!("Authenticate \"PLAIN\" {{{}+}}\r\n{ir}", ir.len()));
    assert_eq!(out, "<Open { user: \"tim\" }>OK \"Logged in\"\r\n");
    assert!(t.c("CAPABILITY").contains("\"OWNER\" \"tim\"\r\n\"UNAUTHENTICATE\""));
    assert!(t.c("AUTHENTICATE \"PLAIN\" \"\"").starts_with("NO \"Not allowed once authenticated\""));
    assert_eq!(t.c("UNAUTHENTICATE"), "OK \"Unauthenticated\"\r\n");
    // Without it: an empty challenge, then the response as a quoted string.
    assert_eq!(t.c("AUTHENTICATE \"PLAIN\""), "\"\"\r\n");
    assert_eq!(t.s.state(), State::Sasl);
    let bad = encode_base64(b"\0tim\0wrong");
    assert_eq!(t.c(&format!("\"{bad}\"")), "NO \"Authentication failed\"\r\n");
    assert_eq!(*t.users.failed.borrow(), 1);
    // "*" cancels (RFC 5804 2.1).
    assert_eq!(t.c("AUTHENTICATE \"PLAIN\""), "\"\"\r\n");
    assert_eq!(t.c("\"*\""), "NO \"Authentication cancelled\"\r\n");
    assert_eq!(t.c("AUTHENTICATE \"PLAIN\""), "\"\"\r\n");
    assert_eq!(t.c(&format!("{{{}+}}\r\n{ir}", ir.len())), "<Open { user: \"tim\" }>OK \"Logged in\"\r\n");
    assert!(t.c("AUTHENTICATE \"X-UNKNOWN\"").starts_with("NO"));
}

#[test]
fn scram_sha_256_round_trip() {
    let mut t = fresh();
    let client_first = "n,,n=tim,r=rOprNGfwEbeRWgbNEkqO";
    let out = t.c(&format!("AUTHENTICATE \"SCRAM-SHA-256\" \"{}\"", encode_base64(client_first.as_bytes())));
    assert!(out.starts_with('"') && out.ends_with("\"\r\n"), "a server-first challenge: {out}");
    assert_eq!(t.s.state(), State::Sasl);
    assert_eq!(t.c("\"*\""), "NO \"Authentication cancelled\"\r\n");
}

#[test]
fn commands_need_authentication_and_bad_ones_end_in_bye() {
    let mut t = t_with(true, 3);
    assert_eq!(t.c("LISTSCRIPTS"), "NO \"Authenticate first\"\r\n");
    assert_eq!(t.c("FOO"), "NO \"Unknown command\"\r\n");
    assert_eq!(t.c("NOOP"), "OK \"Done\"\r\n", "a good command between does not reset the count");
    assert_eq!(t.c("GETSCRIPT"), "NO \"Expected a space\"\r\nBYE \"Too many errors\"\r\n<Close>");
    assert_eq!(t.s.state(), State::Closed);
}

#[test]
fn noop_tag_rfc5804_2_13() {
    let mut t = fresh();
    assert_eq!(t.c("NOOP \"STARTTLS-SYNC-42\""), "OK (TAG \"STARTTLS-SYNC-42\") \"Done\"\r\n");
    assert_eq!(t.c("NOOP {16+}\r\nSTARTTLS-SYNC-42"), "OK (TAG \"STARTTLS-SYNC-42\") \"Done\"\r\n");
}

#[test]
fn putscript_listscripts_getscript_rfc5804_2_6_to_2_9() {
    let mut t = fresh();
    t.login();
    // RFC 5804 2.6's invalid script.
    let bad = "#comment\r\nInvalidSieveCommand\r\n";
    assert_eq!(
        t.c(&format!("Putscript \"foo\" {{{}+}}\r\n{bad}", bad.len())),
        "NO \"line 2: Syntax error\"\r\n"
    );
    let script = "#this is my wonderful script\r\nreject \"I reject all\";\r\n";
    assert_eq!(
        t.c(&format!("Putscript \"myscript\" {{{}+}}\r\n{script}", script.len())),
        "OK \"Script stored\"\r\n"
    );
    assert_eq!(t.c("Putscript \"clever\\\"script\" \"keep;\""), "OK \"Script stored\"\r\n");
    assert_eq!(t.c("PUTSCRIPT \"w\" \"warn\""), "OK (WARNINGS) \"line 1: warning\"\r\n");
    assert_eq!(t.c("Setactive \"myscript\""), "OK \"Script activated\"\r\n");
    assert_eq!(
        t.c("Listscripts"),
        "\"clever\\\"script\"\r\n\"myscript\" ACTIVE\r\n\"w\"\r\nOK \"Listscripts completed\"\r\n"
    );
    assert_eq!(
        t.c("Getscript \"myscript\""),
        format!("{{54}}\r\n{script}\r\nOK \"Getscript completed\"\r\n")
    );
    assert_eq!(t.c("Getscript \"nope\""), "NO (NONEXISTENT) \"There is no script by that name\"\r\n");
    assert_eq!(t.c("CHECKSCRIPT \"keep;\""), "OK \"Script is valid\"\r\n");
    assert_eq!(t.c(&format!("CHECKSCRIPT {{{}+}}\r\n{bad}", bad.len())), "NO \"line 2: Syntax error\"\r\n");
    assert_eq!(
        t.c("GETSCRIPT \"foo\""),
        "NO (NONEXISTENT) \"There is no script by that name\"\r\n",
        "not stored"
    );
}

#[test]
fn setactive_deletescript_renamescript_rfc5804_2_8_to_2_11() {
    let mut t = fresh();
    t.login();
    t.c("PUTSCRIPT \"foo\" \"keep;\"");
    t.c("PUTSCRIPT \"baz\" \"keep;\"");
    assert_eq!(t.c("Setactive \"baz\""), "OK \"Script activated\"\r\n");
    assert_eq!(
        t.c("Setactive \"vacationscript\""),
        "NO (NONEXISTENT) \"There is no script by that name\"\r\n"
    );
    assert_eq!(t.c("Deletescript \"foo\""), "OK \"Script deleted\"\r\n");
    assert_eq!(t.c("Deletescript \"baz\""), "NO (ACTIVE) \"The active script cannot be deleted\"\r\n");
    assert_eq!(t.c("Deletescript \"foo\""), "NO (NONEXISTENT) \"There is no script by that name\"\r\n");
    t.c("PUTSCRIPT \"other\" \"keep;\"");
    assert_eq!(
        t.c("Renamescript \"baz\" \"other\""),
        "NO (ALREADYEXISTS) \"A script by that name already exists\"\r\n"
    );
    assert_eq!(
        t.c("Renamescript \"nope\" \"x\""),
        "NO (NONEXISTENT) \"There is no script by that name\"\r\n"
    );
    assert_eq!(t.c("Renamescript \"baz\" \"bar\""), "OK \"Script renamed\"\r\n");
    assert!(t.c("LISTSCRIPTS").contains("\"bar\" ACTIVE\r\n"), "the active script keeps being active");
    assert_eq!(t.c("Setactive \"\""), "OK \"Scripts deactivated\"\r\n");
    assert!(!t.c("LISTSCRIPTS").contains("ACTIVE"));
    assert_eq!(t.c("Deletescript \"bar\""), "OK \"Script deleted\"\r\n");
    assert_eq!(t.c("PUTSCRIPT \"a/b\" \"keep;\""), "NO \"Script name contains \\\"/\\\"\"\r\n");
    assert_eq!(t.c("PUTSCRIPT \"\" \"keep;\""), "NO \"Script name is empty\"\r\n");
}

#[test]
fn quotas_rfc5804_2_5() {
    let mut t = fresh();
    t.login();
    assert_eq!(
        t.c("HAVESPACE \"myscript\" 999999"),
        "NO (QUOTA/MAXSIZE) \"Script too big (at most 1000 octets)\"\r\n"
    );
    assert_eq!(t.c("HAVESPACE \"foobar\" 435"), "OK \"Putscript would succeed\"\r\n");
    for n in ["a", "b", "c"] {
        assert_eq!(t.c(&format!("PUTSCRIPT \"{n}\" \"keep;\"")), "OK \"Script stored\"\r\n");
    }
    assert_eq!(t.c("PUTSCRIPT \"d\" \"keep;\""), "NO (QUOTA/MAXSCRIPTS) \"At most 3 scripts\"\r\n");
    assert_eq!(t.c("HAVESPACE \"d\" 1"), "NO (QUOTA/MAXSCRIPTS) \"At most 3 scripts\"\r\n");
    assert_eq!(t.c("PUTSCRIPT \"a\" \"stop;\""), "OK \"Script stored\"\r\n", "replacing is no new script");
    let big = "x".repeat(1001);
    assert_eq!(
        t.c(&format!("PUTSCRIPT \"a\" {{1001+}}\r\n{big}")),
        "NO (QUOTA/MAXSIZE) \"Script too big (at most 1000 octets)\"\r\n"
    );
    assert_eq!(t.s.max_literal(), 1000);
    assert_eq!(
        wire(&t.s.on_too_big(b"PUTSCRIPT \"a\" {5000+}")),
        "NO (QUOTA/MAXSIZE) \"Script too big (at most 1000 octets)\"\r\n"
    );
}

#[test]
fn logout_rfc5804_2_3() {
    let mut t = fresh();
    assert_eq!(t.c("Logout"), "OK \"Logout completed\"\r\n<Close>");
}

#[test]
fn parser_table() {
    assert_eq!(parse(b"havespace \"x\" 10"), Ok(Command::HaveSpace { name: "x".into(), size: 10 }));
    assert_eq!(
        parse(b"PUTSCRIPT \"a\" {3}\r\nabc"),
        Ok(Command::PutScript { name: "a".into(), script: b"abc".to_vec() })
    );
    assert_eq!(
        parse(b"RENAMESCRIPT {1+}\r\na \"b\\\\\""),
        Ok(Command::RenameScript { old: "a".into(), new: "b\\".into() })
    );
    for bad in [
        &b"HAVESPACE \"x\" 99999999999"[..],
        b"HAVESPACE \"x\"",
        b"GETSCRIPT \"x\" ",
        b"GETSCRIPT  \"x\"",
        b"GETSCRIPT \"x",
        b"GETSCRIPT \"\\n\"",
        b"PUTSCRIPT \"a\" {5+}\r\nabc",
        b"PUTSCRIPT \"a\" {x+}\r\nabc",
        b"GETSCRIPT \"\xff\"",
        b"LOGOUT now",
        b"",
        b"1",
    ] {
        assert!(parse(bad).is_err(), "{}", String::from_utf8_lossy(bad));
    }
}
