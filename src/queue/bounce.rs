//! Delivery status notifications: RFC 3464 multipart/report (RFC 6522) with a human-readable part
//! in Postfix's wording, a message/delivery-status part and the original message's headers
//! (text/rfc822-headers; RFC 6533 message/global-* types when SMTPUTF8 addresses are involved),
//! marked Auto-Submitted: auto-replied (RFC 3834). Output has Unix LF line ends.

use std::io::{self, BufRead, BufReader, Read};
use std::time::{SystemTime, UNIX_EPOCH};

use super::Envelope;
use crate::timefmt;

/// At most this much of the original's header block is returned.
const MAX_HEADERS: u64 = 256 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DsnKind {
    /// Undeliverable: permanent failure or expiry (RFC 3464 Action: failed).
    Failed,
    /// Still being retried (Action: delayed).
    Delayed,
}

/// One recipient to report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub rcpt: String,
    /// RFC 3463 status, e.g. "5.1.1"; a malformed one is reported as 5.0.0 (4.0.0 when delayed).
    pub status: String,
    /// The remote (or local) reply; multi-line replies are joined with spaces.
    pub reply: String,
    /// The host that gave the reply, when it came from one.
    pub remote_mta: Option<String>,
}

/// Builds one DSN for the message of `env` listing every recipient in `failures`, to be sent from
/// the null reverse-path (RFC 5321 4.5.5) to `env.sender`. `original` is the queued message positioned
/// at `env.body_offset` (past the `Return-Path:` line); only its header block is read.
/// None when there is nobody to tell: a null sender (never bounce a bounce) or no failures.
pub fn build_dsn(
    hostname: &str,
    env: &Envelope,
    failures: &[Failure],
    kind: DsnKind,
    original: &mut dyn Read,
) -> io::Result<Option<Vec<u8>>> {
    if env.sender.is_empty() || failures.is_empty() {
        return Ok(None);
    }
    build_at(hostname, env, failures, kind, original, SystemTime::now()).map(Some)
}

fn build_at(
    hostname: &str,
    env: &Envelope,
    failures: &[Failure],
    kind: DsnKind,
    original: &mut dyn Read,
    now: SystemTime,
) -> io::Result<Vec<u8>> {
    let host = clean(hostname);
    let headers = read_headers(original)?;
    let global = env.smtputf8 || failures.iter().any(|f| !f.rcpt.is_ascii()) || !env.sender.is_ascii();

    let text = human_part(&host, env, failures, kind, now);
    let status = status_part(&host, env, failures, kind);

    let micros = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_micros();
    let mut boundary = format!("{}.{micros}/{host}", env.id);
    let needle = |b: &str| format!("--{b}");
    while [&text, &status].iter().any(|p| p.contains(&needle(&boundary)))
        || contains(&headers, needle(&boundary).as_bytes())
    {
        boundary.push_str(".=");
    }
    let eight = |b: &[u8]| if b.is_ascii() { "7bit" } else { "8bit" };
    let tag = match kind {
        DsnKind::Failed => "failed",
        DsnKind::Delayed => "delayed",
    };
    let subject = match kind {
        DsnKind::Failed => "Undelivered Mail Returned to Sender",
        DsnKind::Delayed => "Delayed Mail (still being retried)",
    };
    let (status_type, headers_type) = if global {
        ("message/global-delivery-status", "message/global-headers")
    } else {
        ("message/delivery-status", "text/rfc822-headers")
    };
    let any8 = !text.is_ascii() || !status.is_ascii() || !headers.is_ascii();

    let mut out = Vec::with_capacity(2048 + headers.len());
    let mut put = |s: &str| out.extend_from_slice(s.as_bytes());
    put(&format!("Date: {}\n", timefmt::rfc5322(now)));
    put(&format!("From: MAILER-DAEMON@{host} (Mail Delivery System)\n"));
    put(&format!("To: {}\n", clean(&env.sender)));
    put(&format!("Subject: {subject}\n"));
    put(&format!("Message-ID: <{}.{tag}.{micros}@{host}>\n", env.id));
    // RFC 3834 5: an automatic response, never to be answered automatically.
    put("Auto-Submitted: auto-replied\n");
    put("MIME-Version: 1.0\n");
    put(&format!(
        "Content-Type: multipart/report; report-type=delivery-status;\n\tboundary=\"{boundary}\"\n"
    ));
    put(&format!("Content-Transfer-Encoding: {}\n\n", if any8 { "8bit" } else { "7bit" }));
    put("This is a MIME-encapsulated message.\n\n");
    let charset = if text.is_ascii() { "us-ascii" } else { "utf-8" };
    put(&format!("--{boundary}\nContent-Description: Notification\n"));
    put(&format!("Content-Type: text/plain; charset={charset}\n"));
    put(&format!("Content-Transfer-Encoding: {}\n\n{text}\n", eight(text.as_bytes())));
    put(&format!("--{boundary}\nContent-Description: Delivery report\nContent-Type: {status_type}\n"));
    put(&format!("Content-Transfer-Encoding: {}\n\n{status}\n", eight(status.as_bytes())));
    put(&format!(
        "--{boundary}\nContent-Description: Undelivered Message Headers\nContent-Type: {headers_type}\n"
    ));
    put(&format!("Content-Transfer-Encoding: {}\n\n", eight(&headers)));
    out.extend_from_slice(&headers);
    out.extend_from_slice(format!("\n--{boundary}--\n").as_bytes());
    Ok(out)
}

/// The human-readable part, in Postfix's words.
fn human_part(host: &str, env: &Envelope, failures: &[Failure], kind: DsnKind, now: SystemTime) -> String {
    let mut s = format!("This is the mail system at host {host}.\n\n");
    match kind {
        DsnKind::Failed => s.push_str(
            "I'm sorry to have to inform you that your message could not\n\
             be delivered to one or more recipients. Its headers are attached below.\n\n\
             For further assistance, please send mail to postmaster.\n\n\
             If you do so, please include this problem report.\n\n",
        ),
        DsnKind::Delayed => {
            let hours = now.duration_since(env.arrival).unwrap_or_default().as_secs() / 3600;
            s.push_str(
                "####################################################################\n\
                 # THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #\n\
                 ####################################################################\n\n",
            );
            s.push_str(&format!(
                "Your message could not be delivered for more than {hours} hour(s).\n\
                 It will be retried until it is too old; you will be told if it fails.\n\n\
                 For further assistance, please send mail to postmaster.\n\n\
                 If you do so, please include this problem report.\n\n"
            ));
        }
    }
    s.push_str("                   The mail system\n");
    for f in failures {
        let reply = clean(&f.reply);
        let line = match &f.remote_mta {
            Some(h) => format!("<{}>: host {} said: {reply}", clean(&f.rcpt), clean(h)),
            None => format!("<{}>: {reply}", clean(&f.rcpt)),
        };
        s.push('\n');
        s.push_str(&fold(&line, 0, "    "));
        s.push('\n');
    }
    s
}

/// The RFC 3464 2.2 per-message and 2.3 per-recipient fields.
fn status_part(host: &str, env: &Envelope, failures: &[Failure], kind: DsnKind) -> String {
    let mut s = format!("Reporting-MTA: dns; {host}\n");
    s.push_str(&format!("X-Buzon-Queue-ID: {}\n", env.id));
    s.push_str(&format!("X-Buzon-Sender: rfc822; {}\n", clean(&env.sender)));
    s.push_str(&format!("Arrival-Date: {}\n", timefmt::rfc5322(env.arrival)));
    let (action, class) = match kind {
        DsnKind::Failed => ("failed", '5'),
        DsnKind::Delayed => ("delayed", '4'),
    };
    for f in failures {
        let rcpt = clean(&f.rcpt);
        // RFC 6533 3: a UTF-8 address has the address type "utf-8".
        let atype = if rcpt.is_ascii() { "rfc822" } else { "utf-8" };
        s.push_str(&format!("\nFinal-Recipient: {atype}; {rcpt}\n"));
        s.push_str(&format!("Action: {action}\n"));
        let status = if valid_status(&f.status) { f.status.clone() } else { format!("{class}.0.0") };
        s.push_str(&format!("Status: {status}\n"));
        if let Some(h) = &f.remote_mta {
            s.push_str(&format!("Remote-MTA: dns; {}\n", clean(h)));
        }
        let reply = clean(&f.reply);
        if !reply.is_empty() {
            // RFC 3464 2.3.6: the diagnostic type is "smtp" for an SMTP reply.
            let b = reply.as_bytes();
            let smtp = b.len() >= 3
                && b[..3].iter().all(u8::is_ascii_digit)
                && matches!(b.get(3), None | Some(b' ' | b'-'));
            let dtype = if smtp { "smtp" } else { "x-unix" };
            s.push_str(&fold(&format!("Diagnostic-Code: {dtype}; {reply}"), 0, "    "));
            s.push('\n');
        }
    }
    s
}

/// RFC 3463 2: class "." subject "." detail, each 1-3 digits, class 2, 4 or 5.
fn valid_status(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() == 3
        && matches!(parts[0], "2" | "4" | "5")
        && parts.iter().all(|p| (1..=3).contains(&p.len()) && p.bytes().all(|c| c.is_ascii_digit()))
}

/// One line of text: controls (CR, LF of multi-line replies, TAB...) become single spaces.
fn clean(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let c = if c.is_control() { ' ' } else { c };
        if !(c == ' ' && (out.is_empty() || out.ends_with(' '))) {
            out.push(c);
        }
    }
    out.truncate(out.trim_end().len());
    out
}

/// Folds a long line at spaces to about 78 columns (RFC 5322 2.2.3), continuing with `indent`.
fn fold(line: &str, start: usize, indent: &str) -> String {
    let mut out = String::with_capacity(line.len() + 16);
    let mut col = start;
    for (i, word) in line.split(' ').enumerate() {
        if i > 0 {
            if col + 1 + word.chars().count() > 78 && col > indent.len() {
                out.push('\n');
                out.push_str(indent);
                col = indent.len();
            } else {
                out.push(' ');
                col += 1;
            }
        }
        out.push_str(word);
        col += word.chars().count();
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The original's header block with LF line ends: up to the empty line, or the end, or MAX_HEADERS
/// (then cut at a line end).
fn read_headers(original: &mut dyn Read) -> io::Result<Vec<u8>> {
    let mut r = BufReader::new(original.take(MAX_HEADERS));
    let mut out = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        if r.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        if !line.ends_with(b"\n") {
            // The message or the limit ended mid-line: keep a whole last line only at the true end.
            if (out.len() + line.len()) as u64 >= MAX_HEADERS {
                break;
            }
            line.push(b'\n');
        }
        if line.ends_with(b"\r\n") {
            line.truncate(line.len() - 2);
            line.push(b'\n');
        }
        if line == b"\n" {
            break;
        }
        out.extend_from_slice(&line);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::{QueuedRcpt, RcptState};
    use std::time::Duration;

    const ORIGINAL: &str = "Return-Path: <alice@example.org>\n\
        Received: from client.example.org by mx.example.org\n\
        From: Alice <alice@example.org>\n\
        To: bob@example.net\n\
        Subject: lunch\n\
        Message-ID: <x1@example.org>\n\
        \n\
        SECRET BODY LINE\n\
        --not-a-boundary\n";

    fn env() -> Envelope {
        let mut e = Envelope::new(
            "0123456789ABCDEF",
            "alice@example.org",
            &["bob@example.net".into(), "carol@example.net".into()],
            UNIX_EPOCH + Duration::from_secs(1_795_844_888),
        );
        e.body_offset = "Return-Path: <alice@example.org>\n".len() as u64;
        e
    }

    fn failures() -> Vec<Failure> {
        vec![
            Failure {
                rcpt: "bob@example.net".into(),
                status: "5.1.1".into(),
                reply:
                    "550-5.1.1 The email account that you tried to reach does not exist.\n550 5.1.1 Please \
                        try double-checking the recipient's email address for typos or unnecessary spaces."
                        .into(),
                remote_mta: Some("mx.example.net".into()),
            },
            Failure {
                rcpt: "carol@example.net".into(),
                status: "bogus".into(),
                reply: "mailbox is full".into(),
                remote_mta: None,
            },
        ]
    }

    /// The queued message as the runner hands it over: positioned at body_offset.
    fn after_offset(e: &Envelope) -> &'static [u8] {
        &ORIGINAL.as_bytes()[e.body_offset as usize..]
    }

    fn body(p: &mailparse::ParsedMail) -> String {
        String::from_utf8(p.get_body_raw().unwrap()).unwrap()
    }

    #[test]
    fn failed_dsn_parses_back() {
        let e = env();
        let now = e.arrival + Duration::from_secs(7200);
        let dsn =
            build_at("mx.example.org", &e, &failures(), DsnKind::Failed, &mut after_offset(&e), now).unwrap();
        assert!(!dsn.contains(&b'\r'), "LF line ends only");
        let text = String::from_utf8(dsn.clone()).unwrap();
        assert!(!text.contains("SECRET BODY"), "headers only");
        let m = mailparse::parse_mail(&dsn).unwrap();
        use mailparse::MailHeaderMap;
        let h = |k: &str| m.headers.get_first_value(k).unwrap_or_default();
        assert_eq!(h("From"), "MAILER-DAEMON@mx.example.org (Mail Delivery System)");
        assert_eq!(h("To"), "alice@example.org");
        assert_eq!(h("Subject"), "Undelivered Mail Returned to Sender");
        assert_eq!(h("Auto-Submitted"), "auto-replied");
        assert!(h("Message-ID").starts_with("<0123456789ABCDEF.failed."), "{}", h("Message-ID"));
        assert!(h("Message-ID").ends_with("@mx.example.org>"));
        assert!(!h("Date").is_empty());
        assert_eq!(m.ctype.mimetype, "multipart/report");
        assert_eq!(m.ctype.params.get("report-type").map(String::as_str), Some("delivery-status"));
        assert_eq!(m.subparts.len(), 3);

        let human = &m.subparts[0];
        assert_eq!(human.ctype.mimetype, "text/plain");
        let t = body(human);
        assert!(t.starts_with("This is the mail system at host mx.example.org.\n"), "{t}");
        assert!(t.contains("I'm sorry to have to inform you that your message could not\nbe delivered"));
        assert!(
            t.contains("<bob@example.net>: host mx.example.net said: 550-5.1.1 The email account"),
            "{t}"
        );
        assert!(t.contains("<carol@example.net>: mailbox is full"), "{t}");
        assert!(t.lines().all(|l| l.len() <= 80), "{t}");

        let report = &m.subparts[1];
        assert_eq!(report.ctype.mimetype, "message/delivery-status");
        let r = body(report);
        let groups: Vec<&str> = r.trim_end().split("\n\n").collect();
        assert_eq!(groups.len(), 3, "{r}");
        assert!(groups[0].starts_with("Reporting-MTA: dns; mx.example.org\n"), "{r}");
        assert!(groups[0].contains("\nArrival-Date: "), "{r}");
        // Each group parses as a header block.
        let g1 = format!("{}\n\n", groups[1]);
        let (bob, _) = mailparse::parse_headers(g1.as_bytes()).unwrap();
        let f = |k: &str| bob.get_first_value(k).unwrap_or_default();
        assert_eq!(f("Final-Recipient"), "rfc822; bob@example.net");
        assert_eq!(f("Action"), "failed");
        assert_eq!(f("Status"), "5.1.1");
        assert_eq!(f("Remote-MTA"), "dns; mx.example.net");
        let diag = f("Diagnostic-Code");
        assert!(
            diag.starts_with("smtp; 550-5.1.1 The email account") && diag.ends_with("unnecessary spaces."),
            "{diag}"
        );
        let g2 = format!("{}\n\n", groups[2]);
        let (carol, _) = mailparse::parse_headers(g2.as_bytes()).unwrap();
        assert_eq!(carol.get_first_value("Status").as_deref(), Some("5.0.0"));
        assert_eq!(carol.get_first_value("Remote-MTA"), None);
        assert_eq!(carol.get_first_value("Diagnostic-Code").as_deref(), Some("x-unix; mailbox is full"));

        let orig = &m.subparts[2];
        assert_eq!(orig.ctype.mimetype, "text/rfc822-headers");
        let o = body(orig);
        let want = &ORIGINAL[e.body_offset as usize..ORIGINAL.find("\n\n").unwrap() + 1];
        assert_eq!(o.trim_end(), want.trim_end());
        assert!(!o.contains("Return-Path"));
    }

    #[test]
    fn delayed_dsn_and_null_sender() {
        let mut e = env();
        let now = e.arrival + Duration::from_secs(5 * 3600);
        let mut f = failures();
        f[0].status = "4.4.1".into();
        f[0].reply = "connect to mx.example.net: Connection refused".into();
        let dsn = build_at("h", &e, &f[..1], DsnKind::Delayed, &mut after_offset(&e), now).unwrap();
        let m = mailparse::parse_mail(&dsn).unwrap();
        use mailparse::MailHeaderMap;
        assert_eq!(
            m.headers.get_first_value("Subject").as_deref(),
            Some("Delayed Mail (still being retried)")
        );
        let t = body(&m.subparts[0]);
        assert!(t.contains("THIS IS A WARNING ONLY") && t.contains("for more than 5 hour(s)"), "{t}");
        let r = body(&m.subparts[1]);
        assert!(r.contains("Action: delayed\nStatus: 4.4.1\n"), "{r}");
        assert!(r.contains("Diagnostic-Code: x-unix; connect to"), "{r}");

        assert_eq!(
            build_dsn("h", &e, &f, DsnKind::Failed, &mut after_offset(&e)).unwrap().map(|_| ()),
            Some(())
        );
        assert_eq!(build_dsn("h", &e, &[], DsnKind::Failed, &mut after_offset(&e)).unwrap(), None);
        e.sender.clear();
        assert_eq!(build_dsn("h", &e, &f, DsnKind::Failed, &mut after_offset(&e)).unwrap(), None);
        let _ = QueuedRcpt { addr: String::new(), state: RcptState::Pending };
    }

    #[test]
    fn utf8_addresses_use_the_global_types() {
        let mut e = env();
        e.smtputf8 = true;
        let original = "Subject: Grüße\r\n\r\nbody\n";
        let f = [Failure {
            rcpt: "jösé@exämple.net".into(),
            status: "5.1.1".into(),
            reply: "550 no".into(),
            remote_mta: None,
        }];
        let dsn =
            build_at("h", &e, &f, DsnKind::Failed, &mut original.as_bytes(), SystemTime::now()).unwrap();
        let m = mailparse::parse_mail(&dsn).unwrap();
        assert_eq!(m.subparts[1].ctype.mimetype, "message/global-delivery-status");
        assert!(body(&m.subparts[1]).contains("Final-Recipient: utf-8; jösé@exämple.net\n"));
        assert_eq!(m.subparts[2].ctype.mimetype, "message/global-headers");
        assert_eq!(body(&m.subparts[2]).trim_end(), "Subject: Grüße");
        assert!(!dsn.contains(&b'\r'));
    }

    #[test]
    fn header_reading_edges() {
        let cases: [(&str, &str); 5] = [
            ("A: 1\nB: 2\n\nbody\n", "A: 1\nB: 2\n"),
            ("A: 1\r\nB: 2\r\n\r\nbody\r\n", "A: 1\nB: 2\n"),
            ("A: 1\nB: 2", "A: 1\nB: 2\n"),
            ("A: 1\n\nB: 2\n", "A: 1\n"),
            ("\nbody only\n", ""),
        ];
        for (input, want) in cases {
            assert_eq!(read_headers(&mut input.as_bytes()).unwrap(), want.as_bytes(), "{input:?}");
        }
        let huge = format!("X: {}\n", "y".repeat(MAX_HEADERS as usize * 2));
        let h = read_headers(&mut huge.as_bytes()).unwrap();
        assert!(h.is_empty(), "a partial line is dropped");
        assert!(
            valid_status("4.7.1") && valid_status("5.1.10") && !valid_status("3.1.1") && !valid_status("5.1")
        );
        assert_eq!(clean(" a\r\n  b\tc "), "a b c");
    }
}
