//! `buzon sieve-test SCRIPT MESSAGE [-f FROM] [-a RCPT]`: runs a Sieve script (RFC 5228) on a
//! message file and prints the actions, one a line, in a plain format that stays stable:
//!
//! ```text
//! keep flags="\\Seen"            (the script's keep; "keep (implicit)" for RFC 5228 2.10.2)
//! fileinto "Work" flags="" copy=no create=no
//! redirect "a@example.org" copy=no
//! reject "text" | ereject "text" | discard
//! vacation to="a@example.org" days=7 subject="Auto: hi" key=...
//! note: ...                      (a vacation reply not due, and why)
//! error: line 3: ...             (a runtime error: the message is kept, RFC 5228 2.10.6)
//! ```
//!
//! No mail store is at hand: of the mailboxes, only INBOX exists (RFC 5490 mailboxexists).
//! A script that does not parse prints `line N: what` on standard error and exits 1.

use std::process::ExitCode;

use super::{Action, Envelope, Message, Options, Outcome, parse, run};

/// Runs the command with its operands (after `sieve-test`); exit status as sysexits(3).
pub fn main(args: &[String]) -> ExitCode {
    let mut env = Envelope { from: String::new(), to: "recipient@localhost".into(), auth: None };
    let mut files = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-f" | "-a" => {
                let Some(v) = it.next() else {
                    eprintln!("buzon sieve-test: {a} needs an address");
                    return ExitCode::from(64);
                };
                let v = v.trim_start_matches('<').trim_end_matches('>').to_string();
                if a == "-f" { env.from = v } else { env.to = v }
            }
            _ => files.push(a),
        }
    }
    let [script, message] = files[..] else {
        eprintln!("usage: buzon sieve-test SCRIPT MESSAGE [-f envelope-from] [-a recipient]");
        return ExitCode::from(64);
    };
    let (src, msg) = match (std::fs::read(script), std::fs::read(message)) {
        (Ok(s), Ok(m)) => (s, m),
        (Err(e), _) => {
            eprintln!("buzon sieve-test: {script}: {e}");
            return ExitCode::from(66);
        }
        (_, Err(e)) => {
            eprintln!("buzon sieve-test: {message}: {e}");
            return ExitCode::from(66);
        }
    };
    let script = match parse(&src) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{script}: {e}");
            return ExitCode::from(1);
        }
    };
    // No mail store here: only INBOX exists (RFC 5490 mailboxexists).
    let inbox_only = |m: &str| m.eq_ignore_ascii_case("INBOX");
    let opts = Options { mailbox_exists: Some(&inbox_only), ..Options::default() };
    print!("{}", render(&run(&script, &Message::new(&msg), &env, &opts)));
    ExitCode::SUCCESS
}

fn flags(f: &[String]) -> String {
    format!("{:?}", f.join(" "))
}

fn yn(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// The outcome as text, one line an action, then notes and the error.
pub fn render(o: &Outcome) -> String {
    let mut s = String::new();
    let last = o.actions.len().saturating_sub(1);
    for (i, a) in o.actions.iter().enumerate() {
        let line = match a {
            Action::Keep { flags: f } if o.implicit_keep && i == last => {
                format!("keep (implicit) flags={}", flags(f))
            }
            Action::Keep { flags: f } => format!("keep flags={}", flags(f)),
            Action::FileInto { mailbox, flags: f, copy, create } => {
                format!("fileinto {mailbox:?} flags={} copy={} create={}", flags(f), yn(*copy), yn(*create))
            }
            Action::Redirect { address, copy } => format!("redirect {address:?} copy={}", yn(*copy)),
            Action::Reject(r) => format!("reject {r:?}"),
            Action::Ereject(r) => format!("ereject {r:?}"),
            Action::Discard => "discard".to_string(),
            Action::Vacation(v) => format!(
                "vacation to={:?} days={} subject={:?} from={:?} mime={} key={}",
                v.to,
                v.days,
                v.subject,
                v.from.as_deref().unwrap_or(""),
                yn(v.mime),
                v.key
            ),
        };
        s.push_str(&line);
        s.push('\n');
    }
    for n in &o.notes {
        s.push_str(&format!("note: {n}\n"));
    }
    if let Some(e) = &o.error {
        s.push_str(&format!("error: {e}\n"));
    }
    s
}
