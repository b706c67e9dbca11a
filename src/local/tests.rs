//! Tests of the resolver: aliases, includes, files, commands, ~/.forward, loops and depth.
use super::*;
use std::fs;
use std::path::Path;

const PASSWD: &str = "\
alice:{PLAIN}a:1001:1001::/home/alice
bob@b.example:{PLAIN}b:1002:1002::/home/bob
carol:{PLAIN}c
root:{PLAIN}r:0:0::/root
../x:{PLAIN}x
.hidden:{PLAIN}h
";

const ALIASES: &str = r#"
info: alice, bob@b.example
team: :include:DIR/team
root: root, alice
a: b
b: a
l1: l2
l2: l1, alice
shout: ALICE
fwd: someone@remote.example
pipe: "|/bin/cat"
file: /tmp/x
broken: alice, nosuchuser
carol: \carol, alice
direct: \nosuch
dup: alice, ALICE, Alice@A.Example, info
traverse: ../x, alice
hidden: .hidden
d1: d2
d2: d3
d3: d4
d4: d5
d5: alice
self-inc: :include:DIR/self
missing-inc: alice, :include:DIR/nothere
"#;

struct Setup {
    dir: tempfile::TempDir,
    cfg: ResolverConfig,
}

fn setup(passwd: Option<&str>, aliases: Option<&str>, template: &str) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let pw = dir.path().join("passwd");
    if let Some(p) = passwd {
        fs::write(&pw, p).unwrap();
    }
    let al = aliases.map(|a| {
        let p = dir.path().join("aliases");
        fs::write(&p, a.replace("DIR", &d)).unwrap();
        p
    });
    fs::write(dir.path().join("team"), "carol, bob@B.example\n").unwrap();
    fs::write(dir.path().join("self"), format!("alice, :include:{d}/self\n")).unwrap();
    let cfg = ResolverConfig {
        local_domains: vec!["a.example".into(), "B.Example.".into()],
        hostname: "mx.example.net".into(),
        users: UsersSpec::File(pw),
        mailbox: MailboxTemplate { kind: MailboxKind::Maildir, template: template.replace("DIR", &d) },
        aliases: al,
        alias_max_depth: 20,
        folders: None,
        folders_fallback: PathBuf::from("/nonexistent"),
        allow_pipes: false,
        allow_files: false,
        pipe_user: "nobody".into(),
        forward_files: false,
    };
    Setup { dir, cfg }
}

/// A compact, comparable form: `alice bob@b.example`, `Unknown`, `Temp: ...`.
fn show(r: &Resolution) -> String {
    match r {
        Resolution::NotLocal => "NotLocal".into(),
        Resolution::Unknown => "Unknown".into(),
        Resolution::Deliver(v) => {
            let mut parts: Vec<String> = v.mailboxes.iter().map(|d| d.account.clone()).collect();
            parts.extend(v.files.iter().map(|f| format!("{}({})", f.path.display(), f.run_as.user)));
            parts.extend(v.pipes.iter().map(|p| format!("|{}({})", p.command, p.run_as.user)));
            parts.extend(v.forwards.iter().map(|a| format!(">{a}")));
            parts.join(" ")
        }
        Resolution::Temp(m) => format!("Temp: {m}"),
        Resolution::Perm(m) => format!("Perm: {m}"),
    }
}

#[test]
fn resolution_table() {
    let s = setup(Some(PASSWD), Some(ALIASES), "DIR/mail/%d/%n");
    let r = Resolver::new(s.cfg.clone()).unwrap();
    for (local, domain, want) in [
        ("alice", "a.example", "alice"),
        ("ALICE", "A.EXAMPLE.", "alice"),
        ("alice", "b.example", "alice"),
        ("alice", "other.example", "NotLocal"),
        ("bob", "b.example", "bob@b.example"),
        ("bob", "a.example", "Unknown"),
        ("nobody", "a.example", "Unknown"),
        ("", "a.example", "Unknown"),
        ("info", "a.example", "alice bob@b.example"),
        ("Info", "b.example", "alice bob@b.example"),
        ("team", "a.example", "carol alice bob@b.example"),
        ("root", "a.example", "root alice"),
        ("a", "a.example", "Perm: alias a leads to no mailbox (loop)"),
        ("l1", "a.example", "alice"),
        ("shout", "a.example", "alice"),
        ("dup", "a.example", "alice bob@b.example"),
        ("carol", "a.example", "carol alice"),
        ("self-inc", "a.example", "alice"),
        ("d1", "a.example", "alice"),
        ("fwd", "a.example", ">someone@remote.example"),
        ("missing-inc", "a.example", "Temp: alias include: DIR/nothere: No such file or directory"),
        (
            "pipe",
            "a.example",
            "Perm: alias pipe: delivery to commands is disabled (aliases.allow_pipes = no)",
        ),
        ("file", "a.example", "Perm: alias file: delivery to files is disabled (aliases.allow_files = no)"),
        ("broken", "a.example", "Perm: alias broken: nosuchuser@a.example: no such user"),
        ("direct", "a.example", "Perm: alias direct: \\nosuch: no such user"),
        ("traverse", "a.example", "Perm: user name \"../x\" cannot be used in a mailbox path"),
        ("hidden", "a.example", "Perm: user name \".hidden\" cannot be used in a mailbox path"),
    ] {
        let want = want.replace("DIR", &s.dir.path().display().to_string());
        assert_eq!(show(&r.resolve(local, domain)), want, "{local}@{domain}");
    }
}

#[test]
fn destinations_carry_path_kind_and_ids() {
    let s = setup(Some(PASSWD), Some(ALIASES), "DIR/mail/%d/%n/Maildir");
    let r = Resolver::new(s.cfg.clone()).unwrap();
    let Resolution::Deliver(v) = r.resolve("info", "A.example") else { panic!() };
    let base = s.dir.path().join("mail");
    assert_eq!(
        v.mailboxes,
        vec![
            Destination {
                account: "alice".into(),
                kind: MailboxKind::Maildir,
                path: base.join("a.example/alice/Maildir"),
                uid: Some(1001),
                gid: Some(1001),
            },
            Destination {
                account: "bob@b.example".into(),
                kind: MailboxKind::Maildir,
                path: base.join("b.example/bob/Maildir"),
                uid: Some(1002),
                gid: Some(1002),
            },
        ]
    );
}

#[test]
fn dedup_is_by_mailbox_path() {
    // One shared mailbox: every name leads to the same file, delivered once.
    let s = setup(Some(PASSWD), Some(ALIASES), "DIR/shared");
    let r = Resolver::new(s.cfg).unwrap();
    assert_eq!(show(&r.resolve("info", "a.example")), "alice");
}

#[test]
fn depth_limit() {
    let mut s = setup(Some(PASSWD), Some(ALIASES), "DIR/%n");
    s.cfg.alias_max_depth = 5;
    assert_eq!(show(&Resolver::new(s.cfg.clone()).unwrap().resolve("d1", "a.example")), "alice");
    s.cfg.alias_max_depth = 4;
    let r = Resolver::new(s.cfg.clone()).unwrap();
    assert_eq!(show(&r.resolve("d1", "a.example")), "Perm: alias expansion too deep");
    assert_eq!(show(&r.resolve("d4", "a.example")), "alice");
}

#[test]
fn users_appear_without_restart() {
    let s = setup(None, None, "DIR/%n");
    let r = Resolver::new(s.cfg.clone()).unwrap();
    assert_eq!(r.resolve("dave", "a.example"), Resolution::Unknown);
    let UsersSpec::File(pw) = &s.cfg.users else { panic!() };
    crate::auth::passwd_file::set_password(pw, "dave", "pw").unwrap();
    assert_eq!(show(&r.resolve("dave", "a.example")), "dave");
}

#[test]
fn broken_aliases_file_is_temporary() {
    let s = setup(Some(PASSWD), Some("info: alice\n"), "DIR/%n");
    let r = Resolver::new(s.cfg.clone()).unwrap();
    let path = s.cfg.aliases.clone().unwrap();
    fs::write(&path, "info alice and some more\n").unwrap();
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
    fs::File::options().write(true).open(&path).unwrap().set_modified(later).unwrap();
    assert!(show(&r.resolve("alice", "a.example")).starts_with("Temp: "));
    // And one named at start is an error.
    assert!(Resolver::new(s.cfg).is_err());
}

#[test]
fn postmaster_is_always_deliverable() {
    let pm_alias = "postmaster: alice\n";
    let pm_pipe = "postmaster: \"|/bin/cat\"\n";
    let no_root = "alice:{PLAIN}a:1:1::/home/alice\n";
    let with_pm = "postmaster:{PLAIN}p\nroot:{PLAIN}r\n";
    for (passwd, aliases, template, local, domain, want) in [
        (PASSWD, Some(pm_alias), "DIR/%n", "postmaster", "a.example", "alice"),
        (PASSWD, Some(pm_alias), "DIR/%n", "PostMaster", "mx.example.net.", "alice"),
        (with_pm, None, "DIR/%n", "postmaster", "b.example", "postmaster"),
        (PASSWD, None, "DIR/%n", "postmaster", "a.example", "root"),
        (PASSWD, Some(pm_pipe), "DIR/%n", "postmaster", "a.example", "root"),
        (no_root, None, "DIR/%d/%n", "postmaster", "a.example", "postmaster"),
        (
            no_root,
            None,
            "~/Maildir",
            "postmaster",
            "a.example",
            "Temp: postmaster has no mailbox: add an alias",
        ),
        (PASSWD, None, "DIR/%n", "alice", "mx.example.net", "NotLocal"),
    ] {
        let s = setup(Some(passwd), aliases, template);
        let r = Resolver::new(s.cfg).unwrap();
        assert_eq!(
            show(&r.resolve(local, domain)),
            want,
            "{passwd:?} {aliases:?} {template} {local}@{domain}"
        );
    }
    // The last-resort mailbox is the template's for the name "postmaster".
    let s = setup(Some(no_root), None, "DIR/%d/%n");
    let r = Resolver::new(s.cfg).unwrap();
    let Resolution::Deliver(v) = r.resolve("postmaster", "a.example") else { panic!() };
    assert_eq!((v[0].path.clone(), v[0].uid), (s.dir.path().join("a.example/postmaster"), None));
}

#[test]
fn template_expansion() {
    let acc = |name: &str, home: Option<&str>| Account {
        name: name.into(),
        uid: None,
        gid: None,
        home: home.map(PathBuf::from),
    };
    let ok = |t: &str, a: &Account| match expand_template(t, a, "rcpt.example") {
        Ok(p) => p.display().to_string(),
        Err(Fail::Temp(m)) => format!("Temp: {m}"),
        Err(Fail::Perm(m)) => format!("Perm: {m}"),
        Err(Fail::Unknown) => "Unknown".into(),
    };
    let alice = acc("alice", Some("/home/alice"));
    let virt = acc("bob@b.example", None);
    for (t, a, want) in [
        ("~/Maildir", &alice, "/home/alice/Maildir"),
        ("~", &alice, "/home/alice"),
        ("/var/mail/%u", &alice, "/var/mail/alice"),
        ("/var/mail/%d/%n", &alice, "/var/mail/rcpt.example/alice"),
        ("/var/vmail/%d/%n/Maildir", &virt, "/var/vmail/b.example/bob/Maildir"),
        ("/var/vmail/%u", &virt, "/var/vmail/bob@b.example"),
        ("mail/100%%/%n", &alice, "mail/100%/alice"),
        ("/m/~%n", &alice, "/m/~alice"),
        ("~/Maildir", &virt, "Temp: user bob@b.example has no home directory"),
        ("/m/%n", &acc("../etc", None), "Perm: user name \"../etc\" cannot be used in a mailbox path"),
        ("/m/%u", &acc("a/b", None), "Perm: user name \"a/b\" cannot be used in a mailbox path"),
        ("/m/%n", &acc(".x", None), "Perm: user name \".x\" cannot be used in a mailbox path"),
        ("/m/%d/%n", &acc("x@../y", None), "Perm: domain \"../y\" cannot be used in a mailbox path"),
        ("/m/%d/%n", &acc("x@", None), "Perm: domain \"\" cannot be used in a mailbox path"),
        ("/m/%n", &acc("@d", None), "Perm: user name \"\" cannot be used in a mailbox path"),
        // The home itself is trusted, dots and all.
        ("~/Maildir", &acc("h", Some("/srv/.mail/h")), "/srv/.mail/h/Maildir"),
    ] {
        assert_eq!(ok(t, a), want, "{t} {a:?}");
    }
}

#[test]
fn system_users() {
    let cfg = ResolverConfig {
        local_domains: vec!["localhost".into()],
        hostname: "localhost".into(),
        users: UsersSpec::System,
        mailbox: MailboxTemplate { kind: MailboxKind::Mbox, template: "~/mbox".into() },
        aliases: None,
        alias_max_depth: 20,
        folders: None,
        folders_fallback: PathBuf::from("/nonexistent"),
        allow_pipes: false,
        allow_files: false,
        pipe_user: "nobody".into(),
        forward_files: true,
    };
    let r = Resolver::new(cfg).unwrap();
    let h = r.mail_home("root").unwrap();
    assert_eq!(
        h.folders,
        crate::auth::system::getpwnam("root").unwrap().unwrap().home.unwrap().join("Maildir")
    );
    let Resolution::Deliver(v) = r.resolve("Root", "LOCALHOST") else { panic!() };
    let home = crate::auth::system::getpwnam("root").unwrap().unwrap().home.unwrap();
    assert_eq!(v[0].path, home.join("mbox"));
    assert_eq!((v[0].uid, v[0].kind), (Some(0), MailboxKind::Mbox));
    assert_eq!(r.resolve("no-such-user-xyzzy", "localhost"), Resolution::Unknown);
    // postmaster falls back to root on every Unix machine.
    let Resolution::Deliver(v) = r.resolve("postmaster", "localhost") else { panic!() };
    assert_eq!(v[0].account, "root");
}

#[test]
fn resolver_is_shareable() {
    fn check<T: Send + Sync>() {}
    check::<Resolver>();
    let _ = Path::new("");
}

fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() }
}

fn chmod(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn commands_files_and_forwards_when_allowed() {
    let aliases = "\
pipe: \"|/bin/cat\", alice
file: /var/log/x, /var/log/x
null: /dev/null
mixed: alice, Someone@Remote.example, someone@remote.example, \"|/bin/cat\", /dev/null
remote-inc: :include:DIR/remote
open-inc: :include:DIR/open
rel-inc: :include:relative
";
    let mut s = setup(Some(PASSWD), Some(aliases), "DIR/%n");
    let d = s.dir.path().to_path_buf();
    fs::write(d.join("remote"), "x@remote.example, \"|/bin/true\"\n").unwrap();
    fs::write(d.join("open"), "alice\n").unwrap();
    chmod(&d.join("open"), 0o666);
    s.cfg.allow_pipes = true;
    s.cfg.allow_files = true;
    let r = Resolver::new(s.cfg.clone()).unwrap();
    let dd = d.display().to_string();
    for (local, want) in [
        // Commands and files of the aliases file run as aliases.pipe_user.
        ("pipe", "alice |/bin/cat(nobody)".to_string()),
        ("file", "/var/log/x(nobody)".into()),
        ("null", "/dev/null(nobody)".into()),
        ("mixed", "alice /dev/null(nobody) |/bin/cat(nobody) >Someone@Remote.example".into()),
        ("remote-inc", "|/bin/true(nobody) >x@remote.example".into()),
        (
            "open-inc",
            format!("Temp: alias include: {dd}/open: writable by group or others (mode 666); not used"),
        ),
        ("rel-inc", "Temp: alias include: relative is not an absolute path".into()),
    ] {
        assert_eq!(show(&r.resolve(local, "a.example")), want, "{local}");
    }
    let Resolution::Deliver(v) = r.resolve("pipe", "A.example") else { panic!() };
    assert_eq!(v.pipes[0].recipient, "pipe@a.example");
    assert_eq!(
        (v.pipes[0].run_as.uid, v.pipes[0].run_as.home.clone()),
        (65534, PathBuf::from("/nonexistent"))
    );
    // /dev/null is allowed even when files are not.
    s.cfg.allow_files = false;
    let r = Resolver::new(s.cfg.clone()).unwrap();
    assert_eq!(show(&r.resolve("null", "a.example")), "/dev/null(nobody)");
    // A pipe user that is root, or missing, refuses commands.
    s.cfg.pipe_user = "no-such-user-xyzzy".into();
    let r = Resolver::new(s.cfg.clone()).unwrap();
    assert_eq!(
        show(&r.resolve("pipe", "a.example")),
        "Temp: aliases.pipe_user \"no-such-user-xyzzy\" does not exist"
    );
    s.cfg.pipe_user = "root".into();
    let r = Resolver::new(s.cfg).unwrap();
    assert_eq!(show(&r.resolve("pipe", "a.example")), "Perm: aliases.pipe_user \"root\" is root; refusing");
}

#[test]
fn include_owned_by_someone_else_is_refused() {
    if euid() != 0 {
        return; // chown needs root
    }
    let s = setup(Some(PASSWD), Some("x: :include:DIR/theirs\n"), "DIR/%n");
    let p = s.dir.path().join("theirs");
    fs::write(&p, "alice\n").unwrap();
    std::os::unix::fs::chown(&p, Some(4242), None).unwrap();
    let r = Resolver::new(s.cfg).unwrap();
    assert_eq!(
        show(&r.resolve("x", "a.example")),
        format!("Temp: alias include: {}: owned by uid 4242; not used", p.display())
    );
}

/// Users with homes under a temp dir, owned (when root) by uid 1001.. so checks are real.
struct Homes {
    s: Setup,
    uid: u32,
}

fn homes(users: &[&str], forwards: &[(&str, &str)], aliases: &str) -> Homes {
    let uid = if euid() == 0 { 1001 } else { euid() };
    let mut passwd = String::new();
    let mut s = setup(None, Some(aliases), "DIR/mail/%n");
    chmod(s.dir.path(), 0o755);
    for u in users {
        let home = s.dir.path().join("home").join(u);
        fs::create_dir_all(&home).unwrap();
        passwd.push_str(&format!("{u}:{{PLAIN}}x:{uid}:{uid}::{}\n", home.display()));
        chmod(&s.dir.path().join("home"), 0o755);
        if euid() == 0 {
            std::os::unix::fs::chown(&home, Some(uid), Some(uid)).unwrap();
        }
    }
    for (u, text) in forwards {
        let p = s.dir.path().join("home").join(u).join(".forward");
        fs::write(&p, text).unwrap();
        chmod(&p, 0o644);
        if euid() == 0 {
            std::os::unix::fs::chown(&p, Some(uid), Some(uid)).unwrap();
        }
    }
    let UsersSpec::File(pw) = &s.cfg.users else { panic!() };
    fs::write(pw, passwd).unwrap();
    s.cfg.forward_files = true;
    s.cfg.allow_pipes = true;
    s.cfg.allow_files = true;
    Homes { s, uid }
}

#[test]
fn dot_forward() {
    let h = homes(
        &["fw", "plain", "open", "selfish", "ping", "pong", "empty", "broken", "link", "nopipe"],
        &[
            ("fw", "bob@remote.example, \\fw\n\"|/usr/bin/procmail -a x\"\n/tmp/fw.log\n"),
            ("open", "bob@remote.example\n"),
            ("selfish", "selfish, bob@remote.example\n"),
            ("ping", "pong\n"),
            ("pong", "ping\n"),
            ("empty", "# nothing yet\n"),
            ("broken", "bob@remote.example carol\n"),
            ("nopipe", "\"|/bin/true\"\n"),
        ],
        "team: fw, plain\ndirect: \\fw\n",
    );
    let home = |u: &str| h.s.dir.path().join("home").join(u);
    chmod(&home("open").join(".forward"), 0o666);
    std::os::unix::fs::symlink(home("fw").join(".forward"), home("link").join(".forward")).unwrap();
    let r = Resolver::new(h.s.cfg.clone()).unwrap();
    for (local, want) in [
        // Its targets replace the mailbox; `\fw` is the mailbox itself; commands and files run
        // as the user.
        ("fw", "fw /tmp/fw.log(fw) |/usr/bin/procmail -a x(fw) >bob@remote.example"),
        ("plain", "plain"),
        ("team", "fw plain /tmp/fw.log(fw) |/usr/bin/procmail -a x(fw) >bob@remote.example"),
        // `\user` from the aliases file skips the .forward.
        ("direct", "fw"),
        // Unsafe ones are ignored (logged): the mail goes to the mailbox.
        ("open", "open"),
        ("link", "link"),
        ("broken", "broken"),
        ("empty", "empty"),
        // The user named in their own .forward is their mailbox; a loop between two users ends
        // in the mailbox of the first.
        ("selfish", "selfish >bob@remote.example"),
        ("ping", "ping"),
    ] {
        assert_eq!(show(&r.resolve(local, "a.example")), want, "{local}");
    }
    let Resolution::Deliver(v) = r.resolve("fw", "a.example") else { panic!() };
    assert_eq!(v.pipes[0].run_as, RunAs { user: "fw".into(), uid: h.uid, gid: h.uid, home: home("fw") });
    // The same switches hold for a .forward.
    let mut cfg = h.s.cfg.clone();
    cfg.allow_pipes = false;
    let r = Resolver::new(cfg).unwrap();
    assert_eq!(
        show(&r.resolve("nopipe", "a.example")),
        "Perm: alias ~nopipe/.forward: delivery to commands is disabled (aliases.allow_pipes = no)"
    );
    // Owned by another user: ignored.
    if euid() == 0 {
        std::os::unix::fs::chown(home("fw").join(".forward"), Some(4242), None).unwrap();
        let r = Resolver::new(h.s.cfg.clone()).unwrap();
        assert_eq!(show(&r.resolve("fw", "a.example")), "fw");
    }
    // Without forward_files (virtual users), no .forward is read.
    let mut cfg = h.s.cfg.clone();
    cfg.forward_files = false;
    assert_eq!(show(&Resolver::new(cfg).unwrap().resolve("selfish", "a.example")), "selfish");
}
