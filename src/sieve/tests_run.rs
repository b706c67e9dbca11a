//! Interpreter tests: the examples of RFC 5228 (sections 2-5, 9), RFC 5229, RFC 5230 and
//! RFC 5232, implicit keep, conflicts, limits and matching.

use super::ast::{Cmp, Mt, Rel};
use super::matching::matches;
use super::{Action, Envelope, Message, Options, Outcome, cli, parse, run};

const MSG: &str = "Return-Path: <tim@example.com>\r\n\
From: Tim <tim@example.com>\r\n\
Sender: owner-ietf-mta-filters@imc.org\r\n\
To: me@example.com, =?utf-8?q?J=C3=BCrgen?= <juergen+sieve@example.de>\r\n\
Cc: Team: ann@example.net, \"Bo (B)\" <bo@example.net>;\r\n\
Subject: =?utf-8?q?Make_money_fast_=E2=82=AC?=\r\n\
List-ID: Coyote list <coyotes@lists.example.org>\r\n\
X-Score: 12\r\n\
Message-ID: <42@example.com>\r\n\
\r\n\
Hello there.\r\n";

fn env() -> Envelope {
    Envelope { from: "tim@example.com".into(), to: "me@example.com".into(), auth: None }
}

fn go_with(script: &str, msg: &str, env: &Envelope) -> Outcome {
    let s = match parse(script.as_bytes()) {
        Ok(s) => s,
        Err(e) => panic!("{script:?}: {e}"),
    };
    let exists = |m: &str| m == "INBOX" || m == "Archive";
    let opts = Options { mailbox_exists: Some(&exists), ..Options::default() };
    run(&s, &Message::new(msg.as_bytes()), env, &opts)
}

fn go(script: &str) -> Outcome {
    go_with(script, MSG, &env())
}

/// The outcome in the CLI's stable text, without vacation keys.
fn text(o: &Outcome) -> String {
    cli::render(o).lines().map(|l| l.split(" key=").next().unwrap_or("")).collect::<Vec<_>>().join("\n")
}

fn boxes(o: &Outcome) -> Vec<String> {
    o.actions
        .iter()
        .filter_map(|a| match a {
            Action::FileInto { mailbox, .. } => Some(mailbox.clone()),
            Action::Keep { .. } => Some("INBOX".into()),
            _ => None,
        })
        .collect()
}

#[test]
fn implicit_keep() {
    // RFC 5228 2.10.2: an empty script keeps.
    let o = go("");
    assert_eq!(o.actions, vec![Action::Keep { flags: vec![] }]);
    assert!(o.implicit_keep);
    // discard cancels it.
    assert_eq!(go("discard;").actions, vec![Action::Discard]);
    // fileinto cancels it, fileinto :copy does not (RFC 3894 3).
    assert_eq!(boxes(&go("require \"fileinto\"; fileinto \"A\";")), vec!["A"]);
    assert_eq!(boxes(&go("require [\"fileinto\", \"copy\"]; fileinto :copy \"A\";")), vec!["A", "INBOX"]);
    // redirect :copy keeps too.
    let o = go("require \"copy\"; redirect :copy \"x@example.net\";");
    assert_eq!(text(&o), "redirect \"x@example.net\" copy=yes\nkeep (implicit) flags=\"\"");
    // stop ends the script; the implicit keep stays.
    assert_eq!(boxes(&go("stop; discard;")), vec!["INBOX"]);
}

#[test]
fn rfc5228_section_9() {
    let script = r#"require ["fileinto"];
if header :is "Sender" "owner-ietf-mta-filters@imc.org" { fileinto "filter"; }
elsif address :DOMAIN :is ["From", "To"] "example.com" { keep; }
elsif anyof (NOT address :all :contains ["To", "Cc", "Bcc"] "me@example.com",
             header :matches "subject" ["*make*money*fast*", "*university*dipl*mas*"]) {
  fileinto "spam";
} else { fileinto "personal"; }"#;
    assert_eq!(boxes(&go(script)), vec!["filter"]);
    let m2 = MSG.replace("Sender: owner-ietf-mta-filters@imc.org\r\n", "");
    assert_eq!(boxes(&go_with(script, &m2, &env())), vec!["INBOX"]);
    let m3 =
        m2.replace("From: Tim <tim@example.com>", "From: x@spam.example").replace("me@example.com, ", "");
    assert_eq!(boxes(&go_with(script, &m3, &env())), vec!["spam"]);
    let m4 = m3.replace("Make_money_fast", "Hello");
    let m4 = m4.replace("To: ", "To: me@example.com.au, ");
    assert_eq!(boxes(&go_with(script, &m4, &env())), vec!["personal"]);
}

#[test]
fn header_and_address_tests() {
    // RFC 5228 2.7.2: encoded words are decoded before comparing.
    assert_eq!(
        boxes(&go("require \"fileinto\"; if header :contains \"subject\" \"fast €\" { fileinto \"A\"; }")),
        vec!["A"]
    );
    // :comparator i;octet is case-sensitive; the default i;ascii-casemap is not.
    assert_eq!(
        boxes(&go("if header :contains :comparator \"i;octet\" \"Subject\" \"MAKE MONEY\" { discard; }")),
        vec!["INBOX"]
    );
    assert!(
        go("if header :contains \"Subject\" \"MAKE MONEY\" { discard; }").actions == vec![Action::Discard]
    );
    // Address parts, groups and display names (RFC 5228 2.7.4, 5.1).
    for (test, hit) in [
        ("address :is :all \"from\" \"tim@example.com\"", true),
        ("address :is :localpart \"to\" \"juergen+sieve\"", true),
        ("address :is :domain \"cc\" \"EXAMPLE.NET\"", true),
        ("address :is \"cc\" \"bo@example.net\"", true),
        ("address :contains \"cc\" \"Team\"", false),
        ("address :contains \"to\" \"Jürgen\"", false),
        ("header :contains \"to\" \"Jürgen\"", true),
        ("exists [\"From\", \"X-Score\"]", true),
        ("exists [\"From\", \"X-Nope\"]", false),
        ("size :over 100", true),
        ("size :under 100", false),
        ("not size :over 10K", true),
    ] {
        let o = go(&format!("if {test} {{ discard; }}"));
        assert_eq!(o.actions == vec![Action::Discard], hit, "{test}");
    }
}

#[test]
fn subaddress_and_envelope() {
    // RFC 5233 4.
    let pre = "require [\"subaddress\", \"envelope\", \"fileinto\"];";
    assert_eq!(
        boxes(&go(&format!("{pre} if address :user \"to\" \"juergen\" {{ fileinto \"U\"; }}"))),
        vec!["U"]
    );
    assert_eq!(
        boxes(&go(&format!("{pre} if address :detail \"to\" \"sieve\" {{ fileinto \"D\"; }}"))),
        vec!["D"]
    );
    assert_eq!(
        boxes(&go(&format!("{pre} if address :detail \"from\" \"\" {{ fileinto \"D\"; }}"))),
        vec!["INBOX"]
    );
    // RFC 5228 5.4: the envelope, and the null return path as "".
    assert_eq!(
        boxes(&go(&format!("{pre} if envelope :domain \"from\" \"example.com\" {{ fileinto \"E\"; }}"))),
        vec!["E"]
    );
    let null = Envelope { from: String::new(), ..env() };
    assert_eq!(
        boxes(&go_with(&format!("{pre} if envelope :is \"from\" \"\" {{ fileinto \"N\"; }}"), MSG, &null)),
        vec!["N"]
    );
    let auth = Envelope { auth: Some("tim".into()), ..env() };
    assert_eq!(
        boxes(&go_with(&format!("{pre} if envelope \"auth\" \"tim\" {{ fileinto \"A\"; }}"), MSG, &auth)),
        vec!["A"]
    );
}

#[test]
fn matching_is_linear_and_captures() {
    let m = |v: &str, k: &str| matches(Cmp::AsciiCasemap, Mt::Matches, v, k);
    assert_eq!(m("List <a@b.c>", "*<*@*").unwrap(), vec!["List <a@b.c>", "List ", "a", "b.c>"]);
    // RFC 5229 3.2: with "**" the first star takes nothing.
    assert_eq!(m("coyote@example.com", "coyote@**.com").unwrap(), vec!["coyote@example.com", "", "example"]);
    assert_eq!(m("abc", "a?c").unwrap(), vec!["abc", "b"]);
    assert!(m("a*c", "a\\*c").is_some());
    assert!(m("abc", "a\\*c").is_none());
    assert!(m("", "*").is_some());
    assert!(m("x", "").is_none());
    assert!(m("Über", "über").is_none() && m("ÜBER", "Üb?r").is_some());
    // A pattern that is exponential for naive backtracking returns at once.
    let text = "a".repeat(20_000);
    let pat = "*a".repeat(50) + "b";
    let t = std::time::Instant::now();
    assert!(m(&text, &pat).is_none());
    assert!(t.elapsed() < std::time::Duration::from_secs(5));
}

#[test]
fn comparators_and_relational() {
    let v = |c, r, a: &str, b: &str| matches(c, Mt::Value(r), a, b).is_some();
    assert!(v(Cmp::AsciiNumeric, Rel::Gt, "12", "5"));
    assert!(v(Cmp::AsciiNumeric, Rel::Eq, "007", "7"));
    // RFC 4790 9.1: a value that is no number is positive infinity.
    assert!(v(Cmp::AsciiNumeric, Rel::Gt, "abc", "99999999999999999999999"));
    assert!(v(Cmp::AsciiNumeric, Rel::Eq, "x", "y"));
    // RFC 4790 9.2: i;ascii-casemap orders after mapping to upper case ("[" sorts after "B").
    assert!(v(Cmp::AsciiCasemap, Rel::Gt, "[devel]", "b"));
    assert!(v(Cmp::Octet, Rel::Lt, "B", "b"));
    let pre = "require [\"relational\", \"comparator-i;ascii-numeric\", \"fileinto\"];";
    let o = go(&format!(
        "{pre} if header :value \"ge\" :comparator \"i;ascii-numeric\" \"x-score\" \"10\" {{ fileinto \"High\"; }}
         if address :count \"eq\" :comparator \"i;ascii-numeric\" [\"to\", \"cc\"] \"4\" {{ fileinto \"Four\"; }}
         if header :count \"gt\" :comparator \"i;ascii-numeric\" \"received\" \"0\" {{ fileinto \"Never\"; }}"
    ));
    assert_eq!(boxes(&o), vec!["High", "Four"]);
}

#[test]
fn rfc5229_variables() {
    let o = go(r#"require ["variables", "reject"];
set "honorific"  "Mr";
set "first_name" "Wile";
set "last_name"  "Coyote";
set "vacation" text:
Dear ${HONORIFIC} ${last_name},
I'm out, please leave a message after the meep.
.
;
reject "${vacation}";"#);
    assert_eq!(
        o.actions,
        vec![Action::Reject("Dear Mr Coyote,\r\nI'm out, please leave a message after the meep.\r\n".into())]
    );
    // RFC 5229 4.1 modifier examples.
    for (mods, want) in [
        (":length", "15"),
        (":lower", "jumbled letters"),
        (":upperfirst", "JuMBlEd lETteRS"),
        (":upperfirst :lower", "Jumbled letters"),
        (":lowerfirst :upper", "jUMBLED LETTERS"),
    ] {
        let o = go(&format!(
            "require [\"variables\", \"reject\"]; set \"a\" \"juMBlEd lETteRS\"; set {mods} \"b\" \"${{a}}\"; reject \"${{b}}\";"
        ));
        assert_eq!(o.actions, vec![Action::Reject(want.into())], "{mods}");
    }
    let o =
        go("require [\"variables\", \"reject\"]; set :quotewildcard \"b\" \"Rock*?\\\\\"; reject \"${b}\";");
    assert_eq!(o.actions, vec![Action::Reject("Rock\\*\\?\\\\".into())]);
    // RFC 5229 3.2: match variables; unknown and malformed references.
    let o = go(r#"require ["fileinto", "variables"];
if header :matches "List-ID" "*<*@*" { fileinto "INBOX.lists.${2}"; stop; }"#);
    assert_eq!(boxes(&o), vec!["INBOX.lists.coyotes"]);
    let o = go(r#"require ["variables", "reject"]; set "x" "${nope}|${1}|${bad-name}|${"; reject "${x}";"#);
    assert_eq!(o.actions, vec![Action::Reject("||${bad-name}|${".into())]);
    // RFC 5229 5: the string test, :count ignores empty strings.
    let o = go(r#"require ["variables", "relational", "comparator-i;ascii-numeric", "fileinto"];
set "a" ""; set "b" "x";
if string :count "eq" :comparator "i;ascii-numeric" ["${a}", "${b}"] "1" { fileinto "One"; }
if string :is "${a}" "" { fileinto "Empty"; }"#);
    assert_eq!(boxes(&o), vec!["One", "Empty"]);
}

#[test]
fn rfc5232_flags() {
    let o = go(r#"require ["imap4flags", "fileinto", "variables"];
if size :over 10 {
  addflag "MyFlags" "Big";
  if header :contains "From" "tim@example.com" { addflag "MyFlags" ["\\Flagged", "$Important"]; }
  fileinto :flags "${MyFlags}" "INBOX.From Tim";
}
setflag "\\Seen";
addflag "\\Seen $Todo";
removeflag "$todo";
if hasflag :contains "seen" { fileinto "Seen"; }
if hasflag :count "ge" :comparator "i;ascii-numeric" "MyFlags" "3" { fileinto "Three"; }"#
        .replace(
            "\"fileinto\", \"variables\"",
            "\"fileinto\", \"variables\", \"relational\", \"comparator-i;ascii-numeric\"",
        )
        .as_str());
    assert_eq!(
        text(&o),
        "fileinto \"INBOX.From Tim\" flags=\"Big \\\\Flagged $Important\" copy=no create=no\n\
         fileinto \"Seen\" flags=\"\\\\Seen\" copy=no create=no\n\
         fileinto \"Three\" flags=\"\\\\Seen\" copy=no create=no"
    );
    // The implicit keep carries the internal flags (RFC 5232 5).
    let o = go("require \"imap4flags\"; addflag \"\\\\Answered\";");
    assert_eq!(o.actions, vec![Action::Keep { flags: vec!["\\Answered".into()] }]);
}

#[test]
fn duplicates_conflicts_and_limits() {
    // RFC 5228 4.1, 4.2: once per mailbox or address; keep and fileinto "INBOX" are one.
    let o = go(r#"require "fileinto"; fileinto "A"; fileinto "A"; fileinto "INBOX"; keep;
redirect "x@example.net"; redirect "<X@example.net>";"#);
    assert_eq!(
        text(&o),
        "fileinto \"A\" flags=\"\" copy=no create=no\nfileinto \"INBOX\" flags=\"\" copy=no create=no\nredirect \"x@example.net\" copy=no"
    );
    // RFC 5429 2.1: reject with a delivering action is a runtime error; the message is kept.
    for s in [
        "fileinto \"A\"; reject \"no\";",
        "reject \"no\"; keep;",
        "reject \"no\"; redirect \"a@b.example\";",
        "reject \"a\"; reject \"b\";",
    ] {
        let o = go(&format!("require [\"fileinto\", \"reject\"]; {s}"));
        assert_eq!(o.actions, vec![Action::Keep { flags: vec![] }], "{s}");
        assert!(o.error.as_ref().is_some_and(|e| e.message.contains("conflicts")), "{s}");
    }
    // reject and vacation both answer the sender (RFC 5230 4.7).
    assert!(go("require [\"reject\", \"vacation\"]; reject \"x\"; vacation \"y\";").error.is_some());
    // reject and discard go together.
    assert_eq!(
        go("require \"reject\"; reject \"no\"; discard;").actions,
        vec![Action::Reject("no".into()), Action::Discard]
    );
    // RFC 5228 4.2: a limit on redirects.
    let five: String = (0..5).map(|i| format!("redirect \"r{i}@example.net\";")).collect();
    let o = go(&five);
    assert_eq!(o.error.as_ref().map(|e| e.line), Some(1));
    assert!(o.error.is_some_and(|e| e.message.contains("more than 4 redirects")));
    let many: String = (0..40).map(|i| format!("fileinto \"b{i}\";\n")).collect();
    let o = go(&format!("require \"fileinto\";\n{many}"));
    assert_eq!(o.error.map(|e| e.line), Some(34));
    // A redirect whose variable makes no address fails at run time.
    let o = go("require [\"variables\"]; set \"a\" \"no address\"; redirect \"${a}\";");
    assert!(o.error.is_some_and(|e| e.message.contains("invalid address")));
    // One vacation per run.
    assert!(go("require \"vacation\"; vacation \"a\"; vacation \"b\";").error.is_some());
}

#[test]
fn rfc5230_vacation() {
    let script = r#"require "vacation";
if header :contains "subject" "cyrus" {
    vacation "I'm out -- send mail to cyrus-bugs";
} else {
    vacation "I'm out -- call me at +1 304 555 0123";
}"#;
    let plain = MSG.replace("List-ID: Coyote list <coyotes@lists.example.org>\r\n", "");
    let o = go_with(script, &plain, &env());
    let Some(Action::Vacation(v)) = o.actions.first() else { panic!("{o:?}") };
    assert_eq!(
        (v.to.as_str(), v.days, v.subject.as_str()),
        ("tim@example.com", 7, "Auto: Make money fast €")
    );
    assert_eq!(v.in_reply_to.as_deref(), Some("<42@example.com>"));
    assert_eq!(v.reason, "I'm out -- call me at +1 304 555 0123");
    assert!(o.implicit_keep);
    // The key is stable, and differs by sender and by handle (RFC 5230 4.2).
    let key = v.key.clone();
    let again = go_with(script, &plain, &env());
    let Some(Action::Vacation(v2)) = again.actions.first() else { panic!() };
    assert_eq!(v2.key, key);
    let other = go_with(script, &plain, &Envelope { from: "ann@example.net".into(), ..env() });
    let Some(Action::Vacation(v3)) = other.actions.first() else { panic!() };
    assert_ne!(v3.key, key);
    let o = go_with(
        r#"require "vacation"; vacation :days 23 :addresses ["tjs@example.edu", "ts4z@landru.example.edu"]
  :subject "Away" :from "me@example.com" :handle "h" :mime "I'm away until October 19.";"#,
        &plain,
        &env(),
    );
    let Some(Action::Vacation(v)) = o.actions.first() else { panic!("{o:?}") };
    assert_eq!(
        (v.days, v.subject.as_str(), v.from.as_deref(), v.mime),
        (23, "Away", Some("me@example.com"), true)
    );
    assert_eq!(go_with("require \"vacation\"; vacation :days 0 \"x\";", &plain, &env()).actions.len(), 2);
    // Not due: each rule of RFC 5230 4.5-4.6 and RFC 3834 2.
    let not_due = |msg: &str, env: &Envelope, why: &str| {
        let o = go_with("require \"vacation\"; vacation \"away\";", msg, env);
        assert!(!o.actions.iter().any(|a| matches!(a, Action::Vacation(_))), "{why}");
        assert!(o.notes.iter().any(|n| n.contains(why)), "{why}: {:?}", o.notes);
    };
    not_due(&plain, &Envelope { from: String::new(), ..env() }, "return path is empty");
    not_due(&plain, &Envelope { from: "MAILER-DAEMON@example.com".into(), ..env() }, "system address");
    not_due(&plain, &Envelope { from: "owner-x@example.com".into(), ..env() }, "system address");
    not_due(&plain, &Envelope { from: "list-request@example.com".into(), ..env() }, "system address");
    not_due(MSG, &env(), "mailing list");
    not_due(&plain.replace("X-Score", "Auto-Submitted: auto-generated\r\nX-Score"), &env(), "Auto-Submitted");
    not_due(&plain.replace("X-Score", "Precedence: bulk\r\nX-Score"), &env(), "Precedence");
    not_due(&plain, &Envelope { to: "other@example.com".into(), ..env() }, "none of the user's addresses");
    not_due(&plain, &Envelope { from: "me@example.com".into(), ..env() }, "is the user");
    // Auto-Submitted: no is a person.
    let o = go_with(
        "require \"vacation\"; vacation \"away\";",
        &plain.replace("X-Score", "Auto-Submitted: no\r\nX-Score"),
        &env(),
    );
    assert!(matches!(o.actions.first(), Some(Action::Vacation(_))));
    // :addresses names the user's other addresses.
    let o = go_with(
        "require \"vacation\"; vacation :addresses \"bo@example.net\" \"away\";",
        &plain,
        &Envelope { to: "bob@example.org".into(), ..env() },
    );
    assert!(matches!(o.actions.first(), Some(Action::Vacation(_))));
}

#[test]
fn body_test() {
    let mp = "From: a@example.org\r\nTo: me@example.com\r\nSubject: x\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/alternative; boundary=b\r\n\r\npreamble\r\n--b\r\n\
Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n\
Caf=E9 cr=E8me\r\n--b\r\nContent-Type: text/html\r\nContent-Transfer-Encoding: base64\r\n\r\n\
PGI+Ym9sZDwvYj4gdGV4dA==\r\n--b--\r\n";
    let t = |test: &str| {
        let o = go_with(&format!("require \"body\"; if {test} {{ discard; }}"), mp, &env());
        o.actions == vec![Action::Discard]
    };
    assert!(t("body :text :contains \"Café crème\""));
    assert!(t("body :contains \"bold text\""));
    assert!(!t("body :text :contains \"<b>\""));
    assert!(t("body :content \"text/html\" :contains \"<b>bold\""));
    assert!(t("body :content \"text\" :contains \"crème\""));
    assert!(!t("body :content \"image\" :contains \"\""));
    assert!(t("body :raw :contains \"Caf=E9\""));
    assert!(!t("body :text :contains \"preamble\""));
}

#[test]
fn mailbox_extension() {
    let o = go(r#"require ["mailbox", "fileinto"];
if mailboxexists "Archive" { fileinto :create "Archive/2026"; }
if mailboxexists ["Archive", "Nope"] { fileinto "Never"; }"#);
    assert_eq!(
        o.actions[0],
        Action::FileInto { mailbox: "Archive/2026".into(), flags: vec![], copy: false, create: true }
    );
    assert_eq!(o.actions.len(), 1);
}

#[test]
fn truncated_message_and_garbage() {
    // A message cut in its header, no blank line, binary junk: no panic, defined answers.
    for m in [
        "",
        "From",
        "From: <",
        "To: a@\r\n\r",
        "\u{0}\u{1}\r\n\r\n\u{ff}",
        "Content-Type: multipart/mixed; boundary=\"\r\n\r\n--",
    ] {
        let o = go_with(
            "require [\"body\", \"vacation\"]; if anyof (address :all \"to\" \"a\", body :contains \"x\") { keep; } vacation \"v\";",
            m,
            &env(),
        );
        assert!(o.error.is_none());
    }
}

#[test]
fn matching_work_is_bounded() {
    // A key list that would cost far more than MAX_MATCH_WORK fails the run (message kept).
    let msg = format!("Subject: {}\r\n\r\nx\r\n", "a".repeat(60_000));
    let keys = vec![format!("\"{}b\"", "a".repeat(50_000)); 20].join(", ");
    let o = go_with(&format!("\n\nif header :contains \"subject\" [{keys}] {{ discard; }}"), &msg, &env());
    assert_eq!(o.actions, vec![Action::Keep { flags: vec![] }]);
    assert_eq!(
        o.error.map(|e| (e.line, e.message)),
        Some((3, "too much matching work for one message".into()))
    );
}
