//! Delivery to a `|command` target of aliases(5) or ~/.forward, as sendmail's prog mailer and
//! Postfix local(8) do it: `/bin/sh -c command` with the message (after a `From sender date` line)
//! on standard input, run as an unprivileged user (never root) in its own process group, with a
//! clean environment and a time limit. The exit status decides (sysexits(3)): 0 delivered,
//! EX_TEMPFAIL (75) or death by a signal try again later, anything else (and the time limit) fails
//! for good, as Postfix's pipe does.

use std::io::{self, Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::{Message, Owner, StoreError};

/// sysexits(3) EX_TEMPFAIL: "temporary failure, the user is invited to retry".
pub const EX_TEMPFAIL: i32 = 75;
/// How long a command may run (Postfix's command_time_limit is 1000 s; a Pi's mail hook is short).
pub const TIME_LIMIT: Duration = Duration::from_secs(60);
/// How much of the command's output is kept for the log and the bounce.
const OUTPUT_KEPT: usize = 512;
/// PATH of the command: the system's, nothing a user or the server's environment could plant.
const PATH: &str = "/usr/bin:/bin";

/// One command to run.
pub struct Pipe<'a> {
    pub command: &'a str,
    /// Run as this user when the server is root; otherwise the server's own user runs it.
    pub owner: Owner,
    /// `USER`/`LOGNAME` and `HOME` of the command (the working directory when it exists).
    pub user: &'a str,
    pub home: &'a Path,
    /// `RECIPIENT` (split into `LOCAL` and `DOMAIN`).
    pub recipient: &'a str,
    pub time_limit: Duration,
}

/// Runs the command with the message on its standard input; Ok: delivered.
pub fn deliver(p: &Pipe, msg: &Message) -> Result<(), StoreError> {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if root && p.owner.uid == 0 {
        return Err(StoreError::permanent(format!("|{}: refusing to run a command as root", p.command)));
    }
    let (local, domain) = p.recipient.rsplit_once('@').unwrap_or((p.recipient, ""));
    let (out_r, out_w) = io::pipe().map_err(|e| StoreError::temporary(format!("pipe: {e}")))?;
    let out_w2 = out_w.try_clone().map_err(|e| StoreError::temporary(format!("pipe: {e}")))?;
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(p.command)
        .env_clear()
        .env("PATH", PATH)
        .env("SHELL", "/bin/sh")
        .env("HOME", p.home)
        .env("USER", p.user)
        .env("LOGNAME", p.user)
        .env("SENDER", msg.sender)
        .env("RECIPIENT", p.recipient)
        .env("LOCAL", local)
        .env("DOMAIN", domain)
        .current_dir(if p.home.is_dir() { p.home } else { Path::new("/") })
        .stdin(Stdio::piped())
        .stdout(out_w)
        .stderr(out_w2)
        // Its own process group, so the time limit kills whatever it started too.
        .process_group(0);
    if root {
        // std sets the gid, drops supplementary groups (setgroups(0)), then sets the uid, in the
        // child before exec.
        cmd.uid(p.owner.uid).gid(p.owner.gid);
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| StoreError::temporary(format!("|{}: cannot start /bin/sh: {e}", p.command)))?;
    drop(cmd); // closes our copies of the output pipe's write end
    let pid = child.id() as libc::pid_t;

    // The output: the first bytes kept, the rest drained so the command never blocks on it.
    let (out_tx, out_rx) = mpsc::channel::<Vec<u8>>();
    spawn_small("pipe-out", move || {
        let mut out_r = out_r;
        let mut kept = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match out_r.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let room = OUTPUT_KEPT.saturating_sub(kept.len());
                    kept.extend_from_slice(&buf[..n.min(room)]);
                }
            }
        }
        let _ = out_tx.send(kept);
    });
    // The input, from its own thread so a command that does not read cannot stall the clock.
    let stdin = child.stdin.take();
    let source = super::open_source(msg);
    let from = super::mbox::from_line(msg.sender, msg.arrival);
    spawn_small("pipe-in", move || {
        let (Some(mut stdin), Ok(mut src)) = (stdin, source) else { return };
        // A command may exit without reading everything (EPIPE): its status decides, not us.
        let _ = stdin.write_all(from.as_bytes()).and_then(|()| io::copy(&mut src, &mut stdin).map(|_| ()));
    });

    let deadline = Instant::now() + p.time_limit;
    let mut pause = Duration::from_millis(5);
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) if Instant::now() >= deadline => {
                // SAFETY: kill(2) on the command's own process group (it is the group leader).
                unsafe { libc::kill(-pid, libc::SIGKILL) };
                let _ = child.wait();
                break None;
            }
            Ok(None) => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(200));
            }
            Err(e) => return Err(StoreError::temporary(format!("|{}: wait: {e}", p.command))),
        }
    };
    // A background process may hold the output open: wait a moment, not for it.
    let output = out_rx.recv_timeout(Duration::from_secs(1)).unwrap_or_default();
    let said = String::from_utf8_lossy(&output).split_whitespace().collect::<Vec<_>>().join(" ");
    let said = if said.is_empty() { String::new() } else { format!(": {said}") };
    let Some(status) = status else {
        return Err(StoreError::permanent(format!(
            "|{}: time limit of {}s exceeded{said}",
            p.command,
            p.time_limit.as_secs()
        )));
    };
    match (status.code(), status.signal()) {
        (Some(0), _) => Ok(()),
        (Some(EX_TEMPFAIL), _) => Err(StoreError::temporary(format!(
            "|{}: temporary failure (exit {EX_TEMPFAIL}){said}",
            p.command
        ))),
        (Some(c), _) => Err(StoreError::permanent(format!("|{}: exit status {c}{said}", p.command))),
        (None, Some(sig)) => {
            Err(StoreError::temporary(format!("|{}: killed by signal {sig}{said}", p.command)))
        }
        (None, None) => Err(StoreError::temporary(format!("|{}: ended abnormally{said}", p.command))),
    }
}

/// A helper thread with a small stack; if it cannot start, the work is skipped (the command then
/// sees EOF or a closed output, and its exit status still decides).
fn spawn_small(name: &str, f: impl FnOnce() + Send + 'static) {
    if let Err(e) = std::thread::Builder::new().name(name.into()).stack_size(64 * 1024).spawn(f) {
        log::error!("event=thread_spawn_failed name={name} error=\"{e}\"");
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{BODY, msg, spool};
    use super::*;
    use std::fs;

    fn run(command: &str, home: &Path, limit: Duration) -> Result<(), StoreError> {
        let d = tempfile::tempdir().unwrap();
        let src = spool(d.path(), BODY);
        let m = msg(&src, BODY.len() as u64);
        // SAFETY: getuid/getgid have no preconditions.
        let me = unsafe { Owner { uid: libc::getuid(), gid: libc::getgid() } };
        // As root, run as a made-up unprivileged uid (as aliases.pipe_user would).
        let owner = if me.uid == 0 { Owner { uid: 65534, gid: 65534 } } else { me };
        let p = Pipe { command, owner, user: "nobody", home, recipient: "info@a.example", time_limit: limit };
        deliver(&p, &m)
    }

    #[test]
    fn exit_status_decides() {
        let d = tempfile::tempdir().unwrap();
        let long = Duration::from_secs(20);
        assert!(run("cat >/dev/null", d.path(), long).is_ok());
        assert!(run("exit 0", d.path(), long).is_ok(), "not reading stdin is fine");
        let e = run("echo no such list >&2; exit 67", d.path(), long).unwrap_err();
        assert!(e.permanent && e.message.ends_with("exit status 67: no such list"), "{e}");
        let e = run("exit 75", d.path(), long).unwrap_err();
        assert!(!e.permanent && e.message.contains("temporary failure"), "{e}");
        let e = run("kill -TERM $$", d.path(), long).unwrap_err();
        assert!(!e.permanent && e.message.contains("signal 15"), "{e}");
        let t = Instant::now();
        let e = run("sleep 30 & sleep 30", d.path(), Duration::from_millis(300)).unwrap_err();
        assert!(e.permanent && e.message.contains("time limit"), "{e}");
        assert!(t.elapsed() < Duration::from_secs(5), "the whole group is killed");
    }

    #[test]
    fn message_environment_and_identity() {
        let d = tempfile::tempdir().unwrap();
        // SAFETY: chmod-like permission change for the unprivileged test user.
        std::fs::set_permissions(d.path(), std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
        let out = d.path().join("out");
        let cmd = format!(
            "{{ cat; echo \"$SENDER|$RECIPIENT|$LOCAL|$DOMAIN|$HOME|$PATH|$USER|$(pwd)|$(id -u)\"; env | wc -l; }} > {}",
            out.display()
        );
        run(&cmd, d.path(), Duration::from_secs(20)).unwrap();
        let text = fs::read_to_string(&out).unwrap();
        assert!(
            text.starts_with("From a@b.example Sat Nov 28 03:48:08 2026\nReturn-Path: <a@b.example>\n"),
            "{text}"
        );
        assert!(text.contains("\nFrom here on\n>From there\n"), "no quoting for a command: {text}");
        // SAFETY: getuid has no preconditions.
        let uid = if unsafe { libc::getuid() } == 0 { 65534 } else { unsafe { libc::getuid() } };
        let dir = d.path().display();
        assert!(
            text.contains(&format!(
                "a@b.example|info@a.example|info|a.example|{dir}|/usr/bin:/bin|nobody|{dir}|{uid}\n"
            )),
            "{text}"
        );
        // PATH SHELL HOME USER LOGNAME SENDER RECIPIENT LOCAL DOMAIN, plus what sh adds (PWD, ...).
        let n: usize = text.lines().last().unwrap().trim().parse().unwrap();
        assert!(n <= 12, "clean environment: {n} variables");
    }

    #[test]
    fn never_as_root() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let src = spool(d.path(), BODY);
        let m = msg(&src, BODY.len() as u64);
        let p = Pipe {
            command: "true",
            owner: Owner { uid: 0, gid: 0 },
            user: "root",
            home: Path::new("/"),
            recipient: "r@a.example",
            time_limit: TIME_LIMIT,
        };
        assert!(deliver(&p, &m).unwrap_err().permanent);
    }
}
