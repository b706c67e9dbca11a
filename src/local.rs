//! Local recipient resolution: which accounts and mailboxes receive mail for `local@domain` of one of
//! our domains (aliases first, then the user database, then the mailbox template). Follows RFC 5321
//! 4.5.1 (postmaster is always deliverable) and the aliases(5) expansion rules of sendmail.

use crate::aliases::{self, Aliases, Target};
use crate::auth::{Account, UserDb};
use crate::config::{MailboxKind, MailboxTemplate, UsersSpec};
use std::path::PathBuf;

/// What the resolver needs from the configuration.
#[derive(Clone, Debug)]
pub struct ResolverConfig {
    pub local_domains: Vec<String>,
    pub hostname: String,
    pub users: UsersSpec,
    pub mailbox: MailboxTemplate,
    pub aliases: Option<PathBuf>,
    pub alias_max_depth: usize,
    /// `imap.folders`: the Maildir++ root template for IMAP folders when INBOX is an mbox.
    pub folders: Option<String>,
    /// Where IMAP folders of users without a home go when INBOX is an mbox: data_dir/folders.
    pub folders_fallback: PathBuf,
}

impl ResolverConfig {
    /// The resolver's part of the whole configuration.
    pub fn from_config(c: &crate::config::Config) -> ResolverConfig {
        ResolverConfig {
            local_domains: c.local_domains.clone(),
            hostname: c.hostname.clone(),
            users: c.users.clone(),
            mailbox: c.mailbox.clone(),
            aliases: c.aliases.clone(),
            alias_max_depth: c.alias_max_depth,
            folders: c.imap_folders.clone(),
            folders_fallback: c.data_dir.join("folders"),
        }
    }
}

/// One mailbox a message is to be written to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Destination {
    /// The account as its database stores it (`alice` or `alice@example.org`).
    pub account: String,
    pub kind: MailboxKind,
    pub path: PathBuf,
    /// Who should own the written file; `None`: the server's own user.
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

/// Where a logged-in user's mail is (IMAP, POP3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MailHome {
    /// INBOX: the user's own mailbox, where their address is delivered.
    pub inbox: Destination,
    /// The Maildir++ root of the other folders: INBOX's own Maildir when INBOX is one, else
    /// `imap.folders` (default `~/Maildir`).
    pub folders: PathBuf,
}

/// The answer for one recipient.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolution {
    /// Not one of our domains (relay or refuse; not this module's business).
    NotLocal,
    /// Ours, but no alias or user has that name (550 5.1.1).
    Unknown,
    /// Deliver to each of these (deduplicated by mailbox path, never empty).
    Deliver(Vec<Destination>),
    /// Cannot decide now (I/O, broken configuration file): 4xx, the sender retries.
    Temp(String),
    /// Can never be delivered as configured: 5xx.
    Perm(String),
}

/// Why a branch of the expansion stopped.
#[derive(Debug)]
enum Fail {
    Unknown,
    Temp(String),
    Perm(String),
}

/// The state of one expansion: names being expanded (for loop detection) and results so far.
#[derive(Default)]
struct Walk {
    chain: Vec<String>,
    out: Vec<Destination>,
}

/// Resolves recipients; shared by every session (`Send + Sync`, files re-read when they change).
#[derive(Debug)]
pub struct Resolver {
    domains: Vec<String>,
    hostname: String,
    users: UserDb,
    mailbox: MailboxTemplate,
    aliases: Option<Aliases>,
    max_depth: usize,
    folders: Option<String>,
    folders_fallback: PathBuf,
}

/// Domains compare without case (RFC 5321 2.4) and without a trailing root dot.
fn norm_domain(d: &str) -> String {
    d.trim_end_matches('.').to_ascii_lowercase()
}

impl Resolver {
    /// Opens the user database and the aliases file.
    pub fn new(cfg: ResolverConfig) -> Result<Resolver, String> {
        Ok(Resolver {
            domains: cfg.local_domains.iter().map(|d| norm_domain(d)).collect(),
            hostname: norm_domain(&cfg.hostname),
            users: UserDb::open(&cfg.users)?,
            mailbox: cfg.mailbox,
            aliases: cfg.aliases.as_deref().map(Aliases::open).transpose()?,
            max_depth: cfg.alias_max_depth.max(1),
            folders: cfg.folders,
            folders_fallback: cfg.folders_fallback,
        })
    }

    /// Whether `domain` (any case, trailing dot ignored) is one of ours.
    pub fn is_local_domain(&self, domain: &str) -> bool {
        self.domains.contains(&norm_domain(domain))
    }

    /// Whether mail for `local@domain` is ours to deliver: a local domain, or postmaster at our
    /// host name (RFC 5321 4.5.1), even when the host name is not a local domain.
    fn is_ours(&self, local: &str, domain: &str) -> bool {
        self.domains.iter().any(|d| d == domain) || (local == "postmaster" && domain == self.hostname)
    }

    /// Resolves `local@domain`. Called at RCPT time and again at delivery time, so edits of the
    /// passwd-file and aliases take effect between the two.
    pub fn resolve(&self, local: &str, domain: &str) -> Resolution {
        let domain = norm_domain(domain);
        // RFC 5321 2.4: local parts may be case-sensitive, but "exploiting the case sensitivity of
        // mailbox local-parts impedes interoperability and is discouraged": we fold them.
        let local = local.to_ascii_lowercase();
        if !self.is_ours(&local, &domain) {
            return Resolution::NotLocal;
        }
        if local.is_empty() {
            return Resolution::Unknown;
        }
        let mut walk = Walk::default();
        let r = self.expand_name(&local, &domain, &mut walk, true);
        if local == "postmaster" {
            return self.postmaster(r, walk, &domain);
        }
        match r {
            Ok(()) if walk.out.is_empty() => {
                Resolution::Perm(format!("alias {local} leads to no mailbox (loop)"))
            }
            Ok(()) => Resolution::Deliver(walk.out),
            Err(Fail::Unknown) => Resolution::Unknown,
            Err(Fail::Temp(m)) => Resolution::Temp(m),
            Err(Fail::Perm(m)) => Resolution::Perm(m),
        }
    }

    /// The mailbox and folder root of the account `login` (`alice` or `alice@example.org`; a name
    /// without a domain is in the first local domain), without alias expansion.
    pub fn mail_home(&self, login: &str) -> Result<MailHome, String> {
        let (local, domain) = match login.rsplit_once('@') {
            Some((l, d)) => (l.to_string(), norm_domain(d)),
            None => (login.to_string(), self.domains.first().cloned().unwrap_or_default()),
        };
        let fail = |f: Fail| match f {
            Fail::Unknown => format!("no account {login}"),
            Fail::Temp(m) | Fail::Perm(m) => m,
        };
        let acc = self.users.lookup(&local, &domain)?.ok_or_else(|| format!("no account {login}"))?;
        let inbox =
            self.destination(&acc, expand_template(&self.mailbox.template, &acc, &domain).map_err(fail)?);
        let folders = match (&self.folders, inbox.kind) {
            (_, MailboxKind::Maildir) => inbox.path.clone(),
            (Some(t), MailboxKind::Mbox) => expand_template(t, &acc, &domain).map_err(fail)?,
            (None, MailboxKind::Mbox) => match expand_template("~/Maildir", &acc, &domain) {
                Ok(p) => p,
                // A virtual user: their mail belongs to the server's user, as data_dir does.
                Err(_) => expand_template("%d/%n", &acc, &domain)
                    .map(|p| self.folders_fallback.join(p))
                    .map_err(fail)?,
            },
        };
        Ok(MailHome { inbox, folders })
    }

    /// RFC 5321 4.5.1: "postmaster" MUST be accepted. The alias if it works, else the user
    /// postmaster, else root, else the template's mailbox for the name "postmaster".
    fn postmaster(&self, r: Result<(), Fail>, walk: Walk, domain: &str) -> Resolution {
        match r {
            Ok(()) if !walk.out.is_empty() => return Resolution::Deliver(walk.out),
            Err(Fail::Temp(m)) => return Resolution::Temp(m),
            Err(Fail::Perm(m)) => log::warn!("postmaster@{domain}: {m}; delivering to the fallback mailbox"),
            _ => {}
        }
        for name in ["postmaster", "root"] {
            match self.users.lookup(name, domain) {
                Ok(Some(acc)) => return self.single(&acc, domain),
                Ok(None) => {}
                Err(e) => return Resolution::Temp(e),
            }
        }
        let acc = Account { name: "postmaster".into(), uid: None, gid: None, home: None };
        match expand_template(&self.mailbox.template, &acc, domain) {
            Ok(path) => Resolution::Deliver(vec![self.destination(&acc, path)]),
            // Never a 5xx for postmaster: this corner needs the administrator.
            Err(_) => Resolution::Temp("postmaster has no mailbox: add an alias".into()),
        }
    }

    fn single(&self, acc: &Account, domain: &str) -> Resolution {
        match expand_template(&self.mailbox.template, acc, domain) {
            Ok(path) => Resolution::Deliver(vec![self.destination(acc, path)]),
            Err(Fail::Perm(m)) => Resolution::Perm(m),
            Err(Fail::Temp(m)) => Resolution::Temp(m),
            Err(Fail::Unknown) => Resolution::Unknown,
        }
    }

    fn destination(&self, acc: &Account, path: PathBuf) -> Destination {
        Destination { account: acc.name.clone(), kind: self.mailbox.kind, path, uid: acc.uid, gid: acc.gid }
    }

    fn alias(&self, name: &str) -> Result<Option<Vec<Target>>, Fail> {
        match &self.aliases {
            Some(a) => a.lookup(name).map_err(Fail::Temp),
            None => Ok(None),
        }
    }

    fn user(&self, name: &str, domain: &str) -> Result<Option<Account>, Fail> {
        self.users.lookup(name, domain).map_err(Fail::Temp)
    }

    /// Adds the mailbox of `acc`, unless another name already led to the same mailbox.
    fn add(&self, acc: &Account, domain: &str, walk: &mut Walk) -> Result<(), Fail> {
        let path = expand_template(&self.mailbox.template, acc, domain)?;
        if !walk.out.iter().any(|d| d.path == path) {
            walk.out.push(self.destination(acc, path));
        }
        Ok(())
    }

    /// The alias chain so far, for messages: `a -> b -> c`.
    fn chain(walk: &Walk) -> String {
        walk.chain.join(" -> ")
    }

    /// Expands a local name (lowercase): alias (recursively), else the user of that name.
    fn expand_name(&self, name: &str, domain: &str, walk: &mut Walk, top: bool) -> Result<(), Fail> {
        if walk.chain.iter().any(|c| c == name) {
            // A loop. As sendmail does for `root: root, other`: the user of that name gets it if
            // there is one; otherwise this branch ends here.
            return match self.user(name, domain)? {
                Some(acc) => self.add(&acc, domain, walk),
                None => {
                    log::info!("alias loop {} -> {name} dropped", Self::chain(walk));
                    Ok(())
                }
            };
        }
        if let Some(targets) = self.alias(name)? {
            if walk.chain.len() >= self.max_depth {
                return Err(Fail::Perm("alias expansion too deep".into()));
            }
            walk.chain.push(name.to_string());
            for t in &targets {
                self.expand_target(t, domain, walk)?;
            }
            walk.chain.pop();
            return Ok(());
        }
        match self.user(name, domain)? {
            Some(acc) => self.add(&acc, domain, walk),
            None if top => Err(Fail::Unknown),
            // Not a 550 for the original name, which exists: the alias is broken (sendmail would
            // bounce that member only; with no bounces yet, refusing says it at once).
            None => Err(Fail::Perm(format!("alias {}: {name}@{domain}: no such user", Self::chain(walk)))),
        }
    }

    fn expand_target(&self, t: &Target, domain: &str, walk: &mut Walk) -> Result<(), Fail> {
        match t {
            Target::Local(n) => self.expand_name(&n.to_ascii_lowercase(), domain, walk, false),
            Target::Unexpanded(n) => match self.user(&n.to_ascii_lowercase(), domain)? {
                Some(acc) => self.add(&acc, domain, walk),
                None => Err(Fail::Perm(format!("alias {}: \\{n}: no such user", Self::chain(walk)))),
            },
            Target::Address(a) => {
                let (l, d) = a.rsplit_once('@').unwrap_or((a.as_str(), domain));
                let (l, d) = (l.to_ascii_lowercase(), norm_domain(d));
                if self.is_ours(&l, &d) {
                    self.expand_name(&l, &d, walk, false)
                } else {
                    Err(Fail::Temp(format!(
                        "alias target <{a}> is on another domain; outbound delivery is not available yet"
                    )))
                }
            }
            Target::Pipe(_) | Target::File(_) => {
                Err(Fail::Perm("pipe and file alias targets are not supported".into()))
            }
            Target::Include(p) => {
                let key = format!(":include:{}", p.display());
                if walk.chain.contains(&key) {
                    log::info!("alias loop {} -> {key} dropped", Self::chain(walk));
                    return Ok(());
                }
                if walk.chain.len() >= self.max_depth {
                    return Err(Fail::Perm("alias expansion too deep".into()));
                }
                let targets =
                    aliases::read_include(p).map_err(|e| Fail::Temp(format!("alias include: {e}")))?;
                walk.chain.push(key);
                for t in &targets {
                    self.expand_target(t, domain, walk)?;
                }
                walk.chain.pop();
                Ok(())
            }
        }
    }
}

/// Expands a mailbox template for `acc`: a leading `~` is the home, `%u` the account name as stored,
/// `%n` its part before '@', `%d` its part after '@' (else the recipient's domain), `%%` a '%'.
/// A value that contains '/' or starts with '.' is refused, so no name can leave the mail tree.
fn expand_template(template: &str, acc: &Account, rcpt_domain: &str) -> Result<PathBuf, Fail> {
    // The home may not be UTF-8; the rest is built as text and appended.
    let mut home_part = std::ffi::OsString::new();
    let mut out = String::new();
    let mut rest = template;
    if let Some(r) = template.strip_prefix('~') {
        let Some(home) = &acc.home else {
            // Temporary: the administrator can add it, and the mail waits meanwhile.
            return Err(Fail::Temp(format!("user {} has no home directory", acc.name)));
        };
        home_part.push(home.as_os_str());
        rest = r;
    }
    let (n, d) = match acc.name.split_once('@') {
        Some((n, d)) => (n, d),
        None => (acc.name.as_str(), rcpt_domain),
    };
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let (what, value) = match chars.next() {
            Some('u') => ("user name", acc.name.as_str()),
            Some('n') => ("user name", n),
            Some('d') => ("domain", d),
            Some('%') => {
                out.push('%');
                continue;
            }
            // config.rs refuses other escapes; keep anything else literally.
            Some(o) => {
                out.push('%');
                out.push(o);
                continue;
            }
            None => {
                out.push('%');
                continue;
            }
        };
        if value.is_empty() || value.contains(['/', '\0']) || value.starts_with('.') {
            return Err(Fail::Perm(format!("{what} {value:?} cannot be used in a mailbox path")));
        }
        out.push_str(value);
    }
    home_part.push(out);
    Ok(PathBuf::from(home_part))
}

#[cfg(test)]
mod tests {
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
        };
        Setup { dir, cfg }
    }

    /// A compact, comparable form: `alice bob@b.example`, `Unknown`, `Temp: ...`.
    fn show(r: &Resolution) -> String {
        match r {
            Resolution::NotLocal => "NotLocal".into(),
            Resolution::Unknown => "Unknown".into(),
            Resolution::Deliver(v) => v.iter().map(|d| d.account.as_str()).collect::<Vec<_>>().join(" "),
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
            (
                "fwd",
                "a.example",
                "Temp: alias target <someone@remote.example> is on another domain; \
                 outbound delivery is not available yet",
            ),
            (
                "missing-inc",
                "a.example",
                "Temp: alias include: DIR/nothere: No such file or directory (os error 2)",
            ),
            ("pipe", "a.example", "Perm: pipe and file alias targets are not supported"),
            ("file", "a.example", "Perm: pipe and file alias targets are not supported"),
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
            v,
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
}
