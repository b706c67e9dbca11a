//! `buzon queue list|flush [ID]|delete ID` (and `mailq`, which is `queue list`): the postmaster's
//! view of the queue, in the layout sendmail's mailq has and Postfix keeps.
//!
//! `flush` sets `next_attempt` to now on disk (under the queue lock, so it never undoes the runner's
//! own save of the same entry), then pokes the running server (wake.rs) so that it rescans at once.

use std::io::{self, Write};
use std::path::Path;
use std::time::SystemTime;

use super::{Envelope, Queue, RcptState, Wake, poke, valid_id};
use crate::timefmt;

pub const USAGE: &str = "usage: buzon queue list | flush [ID] | delete ID";

/// Runs one `buzon queue` command; Err is the message for stderr (exit status non-zero).
pub fn run(data_dir: &Path, args: &[String], out: &mut dyn Write) -> Result<(), String> {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let w = |e: io::Error| format!("writing output: {e}");
    match args.as_slice() {
        ["list"] => list(data_dir, out),
        ["flush"] => flush(data_dir, None, out),
        ["flush", id] => flush(data_dir, Some(id), out),
        ["delete", id] => delete(data_dir, id, out),
        _ => Err(USAGE.to_string()),
    }
    .and_then(|()| out.flush().map_err(w))
}

fn check_id(id: &str) -> Result<(), String> {
    if valid_id(id) { Ok(()) } else { Err(format!("{id:?}: not a queue id (16 hex digits)")) }
}

fn attach(data_dir: &Path) -> Result<Option<Queue>, String> {
    match Queue::attach(data_dir) {
        Ok(q) => Ok(Some(q)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{}: {e}", data_dir.display())),
    }
}

fn list(data_dir: &Path, out: &mut dyn Write) -> Result<(), String> {
    let Some(q) = attach(data_dir)? else {
        return writeln!(out, "Mail queue is empty").map_err(|e| e.to_string());
    };
    let entries = q.list().map_err(|e| format!("{}: {e}", q.dir().display()))?;
    let text = render_list(&q, &entries);
    out.write_all(text.as_bytes()).map_err(|e| e.to_string())
}

/// Postfix's mailq layout, widened for 16-digit ids: id, size, arrival, sender; then each recipient
/// still to be delivered, under its last deferral reason in parentheses; a total at the end.
fn render_list(q: &Queue, entries: &[Envelope]) -> String {
    if entries.is_empty() {
        return "Mail queue is empty\n".into();
    }
    let indent = " ".repeat(16 + 2 + 8 + 1 + 20 + 2);
    let mut s = format!("{:-<16}  --Size-- ----Arrival Time---- -Sender/Recipient-------\n", "-Queue ID-");
    let mut total = 0u64;
    for env in entries {
        let size = q.message_size(env).unwrap_or(0);
        total += size;
        let sender = if env.sender.is_empty() { "MAILER-DAEMON".to_string() } else { printable(&env.sender) };
        s.push_str(&format!("{:<16}  {size:>8} {:>20}  {sender}\n", env.id, mailq_date(env.arrival)));
        let mut last_reason: Option<&str> = None;
        for r in env.open_recipients() {
            let reason = match &r.state {
                RcptState::Deferred { reply } if !reply.is_empty() => Some(reply.as_str()),
                _ => None,
            };
            if reason.is_some() && reason != last_reason {
                s.push_str(&format!("({})\n", printable(reason.unwrap_or_default())));
            }
            last_reason = reason;
            s.push_str(&format!("{indent}{}\n", printable(&r.addr)));
        }
        s.push('\n');
    }
    let n = entries.len();
    s.push_str(&format!(
        "-- {} Kbytes in {n} Request{}.\n",
        total.div_ceil(1024),
        if n == 1 { "" } else { "s" }
    ));
    s
}

/// Controls (multi-line replies) as spaces, so one item stays on one line.
fn printable(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

/// "Sat Nov 28 03:48:08" in local time, as mailq prints it (from timefmt's RFC 5322 form).
fn mailq_date(t: SystemTime) -> String {
    let full = timefmt::rfc5322(t); // "Sat, 28 Nov 2026 03:48:08 +0100"
    match full.split(' ').collect::<Vec<_>>().as_slice() {
        [wday, day, mon, _year, time, _zone] => {
            format!("{} {mon} {day:>2} {time}", wday.trim_end_matches(','))
        }
        _ => full,
    }
}

fn flush(data_dir: &Path, id: Option<&str>, out: &mut dyn Write) -> Result<(), String> {
    if let Some(id) = id {
        check_id(id)?;
    }
    let Some(q) = attach(data_dir)? else {
        return match id {
            Some(id) => Err(format!("{id}: no such message in the queue")),
            None => writeln!(out, "Mail queue is empty").map_err(|e| e.to_string()),
        };
    };
    let qerr = |e: io::Error| format!("{}: {e}", q.dir().display());
    let entries: Vec<Envelope> = match id {
        Some(id) => match q.load(id).map_err(qerr)? {
            Some(e) => vec![e],
            None => return Err(format!("{id}: no such message in the queue")),
        },
        None => q.list().map_err(qerr)?,
    };
    if entries.is_empty() {
        return writeln!(out, "Mail queue is empty").map_err(|e| e.to_string());
    }
    let now = SystemTime::now();
    let mut n = 0;
    for env in entries {
        // Under the queue lock: never undoes a save the runner makes meanwhile.
        match q.update(&env.id, |e| e.next_attempt = now) {
            Ok(Some(_)) => n += 1,
            Ok(None) => {} // delivered or deleted meanwhile
            Err(e) => return Err(format!("{}: {e}", env.id)),
        }
    }
    let wake = Wake::Flush(id.map(str::to_string));
    let woken = poke(q.dir(), &wake).map_err(|e| format!("waking the server: {e}"))?;
    let w = |e: io::Error| e.to_string();
    if woken {
        writeln!(out, "buzon: {n} message(s) due now; the server is delivering").map_err(w)
    } else {
        writeln!(
            out,
            "buzon: {n} message(s) due now; no server is running: they will be tried when buzon serve starts"
        )
        .map_err(w)
    }
}

fn delete(data_dir: &Path, id: &str, out: &mut dyn Write) -> Result<(), String> {
    check_id(id)?;
    let unknown = || format!("{id}: no such message in the queue");
    let Some(q) = attach(data_dir)? else { return Err(unknown()) };
    match q.remove(id) {
        Ok(()) => writeln!(out, "{id}: removed").map_err(|e| e.to_string()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(unknown()),
        Err(e) => Err(format!("{id}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::Waker;
    use std::time::{Duration, UNIX_EPOCH};

    const A: &str = "00000000000000AA";
    const B: &str = "00000000000000BB";

    fn cmd(dir: &Path, args: &[&str]) -> Result<String, String> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let mut out = Vec::new();
        run(dir, &args, &mut out).map(|()| String::from_utf8(out).unwrap())
    }

    /// Two entries: A with one deferred and one pending recipient, B from the null sender.
    fn prepared() -> (tempfile::TempDir, Queue) {
        let d = tempfile::tempdir().unwrap();
        let q = Queue::open(d.path()).unwrap();
        let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut a = Envelope::new(
            A,
            "alice@example.org",
            &["bob@example.net".into(), "carol@example.net".into(), "dave@example.net".into()],
            t,
        );
        a.recipients[0].state = RcptState::Deferred { reply: "451 4.7.1 Try\nlater".into() };
        a.recipients[1].state = RcptState::Sent { relay: "mx".into(), reply: "250 ok".into() };
        a.body_offset = 10;
        let msg = d.path().join("m");
        std::fs::write(&msg, vec![b'x'; 2000 + 10]).unwrap();
        q.enqueue(&msg, &a).unwrap();
        let b = Envelope::new(B, "", &["alice@example.org".into()], t + Duration::from_secs(60));
        q.enqueue(&msg, &b).unwrap();
        (d, q)
    }

    #[test]
    fn list_prints_mailq_format() {
        let (d, _q) = prepared();
        let got = cmd(d.path(), &["list"]).unwrap();
        let date = |secs: u64| mailq_date(UNIX_EPOCH + Duration::from_secs(secs));
        let ind = " ".repeat(49);
        let want = format!(
            "-Queue ID-------  --Size-- ----Arrival Time---- -Sender/Recipient-------\n\
             {A}      2000 {:>20}  alice@example.org\n\
             (451 4.7.1 Try later)\n\
             {ind}bob@example.net\n\
             {ind}dave@example.net\n\
             \n\
             {B}      2010 {:>20}  MAILER-DAEMON\n\
             {ind}alice@example.org\n\
             \n\
             -- 4 Kbytes in 2 Requests.\n",
            date(1_700_000_000),
            date(1_700_000_060)
        );
        assert_eq!(got, want);
        assert_eq!(date(1_700_000_000).len(), 19);
        assert!(date(1_700_000_000).contains(" Nov "), "2023-11-14");
    }

    #[test]
    fn empty_queue() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(cmd(d.path(), &["list"]).unwrap(), "Mail queue is empty\n");
        drop(Queue::open(d.path()).unwrap());
        assert_eq!(cmd(d.path(), &["list"]).unwrap(), "Mail queue is empty\n");
        assert_eq!(cmd(d.path(), &["flush"]).unwrap(), "Mail queue is empty\n");
    }

    #[test]
    fn flush_without_and_with_a_server() {
        let (d, q) = prepared();
        let out = cmd(d.path(), &["flush", A]).unwrap();
        assert!(out.contains("1 message(s) due now; no server is running"), "{out}");
        let a = q.load(A).unwrap().unwrap();
        assert!(a.next_attempt > UNIX_EPOCH + Duration::from_secs(1_700_000_000));
        assert_eq!(q.load(B).unwrap().unwrap().next_attempt, UNIX_EPOCH + Duration::from_secs(1_700_000_060));
        assert!(cmd(d.path(), &["flush"]).unwrap().contains("2 message(s)"));

        let w = Waker::bind(q.dir()).unwrap();
        let out = cmd(d.path(), &["flush", B]).unwrap();
        assert!(out.contains("1 message(s) due now; the server is delivering"), "{out}");
        assert_eq!(w.wait(Duration::from_secs(10)), Some(Wake::Flush(Some(B.into()))));
        assert!(q.load(B).unwrap().unwrap().next_attempt > UNIX_EPOCH + Duration::from_secs(1_700_000_060));
        cmd(d.path(), &["flush"]).unwrap();
        assert_eq!(w.wait(Duration::from_secs(10)), Some(Wake::Flush(None)));

        assert!(cmd(d.path(), &["flush", "00000000000000CC"]).unwrap_err().contains("no such message"));
        assert!(cmd(d.path(), &["flush", "../x"]).unwrap_err().contains("not a queue id"));
    }

    #[test]
    fn delete_and_usage() {
        let (d, q) = prepared();
        assert_eq!(cmd(d.path(), &["delete", A]).unwrap(), format!("{A}: removed\n"));
        assert_eq!(q.load(A).unwrap(), None);
        assert!(!q.message_path(A).exists());
        assert!(cmd(d.path(), &["delete", A]).unwrap_err().contains("no such message"));
        std::fs::write(d.path().join("x"), "keep").unwrap();
        assert!(cmd(d.path(), &["delete", "../../x"]).unwrap_err().contains("not a queue id"));
        assert!(d.path().join("x").exists());
        assert_eq!(q.list().unwrap().len(), 1);
        for bad in [&[][..], &["frobnicate"], &["delete"], &["list", "x"], &["flush", A, B]] {
            assert_eq!(cmd(d.path(), bad).unwrap_err(), USAGE, "{bad:?}");
        }
    }
}
