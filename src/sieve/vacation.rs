//! Whether a vacation reply is due (RFC 5230 4.5-4.6, RFC 3834 2), judged from the message and the
//! envelope alone, and the reply's parameters. The record of earlier replies (RFC 5230 4.2:
//! "already answered this sender within :days") is the caller's; [`Vacation::key`] names it.

use sha2::{Digest, Sha256};

use super::ast::VacationArgs;
use super::{Envelope, Message, Vacation};

/// RFC 5230 4.1: the shortest and longest :days buzon honours.
const DAYS_MIN: u64 = 1;
const DAYS_MAX: u64 = 60;
const DAYS_DEFAULT: u64 = 7;

/// RFC 5230 4.6 (and RFC 3834 2): local parts that name a system, not a person.
fn system_sender(local: &str) -> bool {
    let l = local.to_ascii_lowercase();
    l == "mailer-daemon"
        || l == "listserv"
        || l == "majordomo"
        || l.starts_with("owner-")
        || l.ends_with("-request")
}

/// Compares two addresses: local part as written, domain case-insensitively.
fn same_address(a: &str, b: &str) -> bool {
    let a = a.trim().trim_start_matches('<').trim_end_matches('>');
    let b = b.trim().trim_start_matches('<').trim_end_matches('>');
    match (a.rsplit_once('@'), b.rsplit_once('@')) {
        (Some((la, da)), Some((lb, db))) => la.eq_ignore_ascii_case(lb) && da.eq_ignore_ascii_case(db),
        _ => a.eq_ignore_ascii_case(b),
    }
}

/// The reply, or why none is due.
pub(crate) fn decide(
    args: &VacationArgs,
    msg: &Message,
    env: &Envelope,
    more: &[String],
) -> Result<Vacation, String> {
    let sender = env.from.trim();
    // RFC 5230 4.6 / RFC 3834 2: never answer the null return path.
    if sender.is_empty() {
        return Err("the return path is empty".into());
    }
    let local = sender.rsplit_once('@').map_or(sender, |(l, _)| l);
    if system_sender(local) {
        return Err(format!("the sender <{sender}> is a system address"));
    }
    // RFC 3834 2: no reply to what was itself sent automatically.
    if let Some(v) = msg.header("Auto-Submitted").first()
        && !v.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case("no")
    {
        return Err(format!("the message is Auto-Submitted: {v}"));
    }
    // RFC 5230 4.6: no reply to mailing lists or bulk mail.
    for f in [
        "List-Id",
        "List-Help",
        "List-Subscribe",
        "List-Unsubscribe",
        "List-Post",
        "List-Owner",
        "List-Archive",
    ] {
        if msg.exists(f) {
            return Err(format!("the message is from a mailing list ({f})"));
        }
    }
    if let Some(p) = msg.header("Precedence").iter().find(|p| {
        let p = p.trim().to_ascii_lowercase();
        p == "bulk" || p == "list" || p == "junk"
    }) {
        return Err(format!("the message has Precedence: {p}"));
    }
    let mut mine: Vec<&str> = vec![env.to.as_str()];
    mine.extend(args.addresses.iter().map(String::as_str));
    mine.extend(more.iter().map(String::as_str));
    mine.retain(|a| !a.is_empty());
    // RFC 5230 4.5: never to oneself...
    if mine.iter().any(|a| same_address(a, sender)) {
        return Err(format!("the sender <{sender}> is the user"));
    }
    // ...and only when the user is a visible recipient.
    let visible = ["To", "Cc", "Bcc", "Resent-To", "Resent-Cc", "Resent-Bcc"].iter().any(|h| {
        msg.addresses(h).iter().any(|a| {
            let full = match &a.domain {
                Some(d) => format!("{}@{d}", a.local),
                None => a.local.clone(),
            };
            mine.iter().any(|m| same_address(m, &full))
        })
    });
    if !visible {
        return Err("none of the user's addresses is in To, Cc or Bcc".into());
    }
    let subject = match &args.subject {
        Some(s) => s.clone(),
        // RFC 5230 4.4: a subject made from the original one.
        None => format!("Auto: {}", msg.header("Subject").first().map_or("", String::as_str)),
    };
    // RFC 5230 4.2: without :handle, the reply's own parameters identify it.
    let handle = match &args.handle {
        Some(h) => h.clone(),
        None => format!(
            "{}\0{}\0{}\0{}",
            args.reason,
            args.subject.as_deref().unwrap_or(""),
            args.from.as_deref().unwrap_or(""),
            args.mime
        ),
    };
    let mut h = Sha256::new();
    h.update(sender.to_ascii_lowercase().as_bytes());
    h.update(b"\0");
    h.update(handle.as_bytes());
    let key = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    Ok(Vacation {
        to: sender.to_string(),
        from: args.from.clone(),
        subject,
        reason: args.reason.clone(),
        mime: args.mime,
        days: args.days.unwrap_or(DAYS_DEFAULT).clamp(DAYS_MIN, DAYS_MAX) as u32,
        in_reply_to: msg.header("Message-ID").into_iter().next(),
        key,
    })
}
