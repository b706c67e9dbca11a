//! Local recipient resolution: what receives mail for `local@domain` of one of our domains (aliases
//! first, then the user database and the user's ~/.forward, then the mailbox template): mailboxes,
//! files, commands and addresses elsewhere. Follows RFC 5321 4.5.1 (postmaster is always
//! deliverable) and the aliases(5)/forward(5) expansion rules of sendmail and Postfix local(8).

mod forward;
#[cfg(test)]
mod tests;

use crate::aliases::{self, Aliases, ListFileError, Target};
use crate::auth::{Account, UserDb};
use crate::config::{MailboxKind, MailboxTemplate, UsersSpec};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use forward::RunAs;

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
    /// `aliases.allow_pipes`, `aliases.allow_files`, `aliases.pipe_user`.
    pub allow_pipes: bool,
    pub allow_files: bool,
    pub pipe_user: String,
    /// Read users' ~/.forward (true for `users = system`: only Unix users own a home and files).
    pub forward_files: bool,
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
            allow_pipes: c.aliases_allow_pipes,
            allow_files: c.aliases_allow_files,
            pipe_user: c.aliases_pipe_user.clone(),
            forward_files: c.users == UsersSpec::System,
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

/// A `/path` target: the message is appended to the file in mbox format, as `run_as`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileTarget {
    pub path: PathBuf,
    pub run_as: RunAs,
}

/// A `|command` target: `/bin/sh -c command` reads the message, as `run_as`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PipeTarget {
    pub command: String,
    pub run_as: RunAs,
    /// The recipient address whose expansion led here (`RECIPIENT` of the command's environment).
    pub recipient: String,
}

/// Everything one recipient expands to, each list deduplicated. Never wholly empty.
///
/// It dereferences to its mailboxes, so code that only cares about mailboxes (the POP3 maildrop,
/// the submission sender check) reads it as the slice it used to be.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Delivery {
    /// Mailboxes of accounts (Maildir or mbox, per the `mailbox` template).
    pub mailboxes: Vec<Destination>,
    /// Files (`aliases.allow_files`); `/dev/null` is one, and discards.
    pub files: Vec<FileTarget>,
    /// Commands (`aliases.allow_pipes`).
    pub pipes: Vec<PipeTarget>,
    /// Addresses in domains that are not ours, to relay through the queue.
    pub forwards: Vec<String>,
}

impl Delivery {
    /// Nothing at all (a loop that ended nowhere).
    pub fn is_empty(&self) -> bool {
        self.mailboxes.is_empty()
            && self.files.is_empty()
            && self.pipes.is_empty()
            && self.forwards.is_empty()
    }

    fn mailbox(d: Destination) -> Delivery {
        Delivery { mailboxes: vec![d], ..Delivery::default() }
    }
}

impl std::ops::Deref for Delivery {
    type Target = [Destination];
    fn deref(&self) -> &[Destination] {
        &self.mailboxes
    }
}

impl IntoIterator for Delivery {
    type Item = Destination;
    type IntoIter = std::vec::IntoIter<Destination>;
    /// The mailboxes (see the type's comment).
    fn into_iter(self) -> Self::IntoIter {
        self.mailboxes.into_iter()
    }
}

/// The answer for one recipient.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolution {
    /// Not one of our domains (relay or refuse; not this module's business).
    NotLocal,
    /// Ours, but no alias or user has that name (550 5.1.1).
    Unknown,
    /// Deliver to all of these (never empty).
    Deliver(Delivery),
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
    out: Delivery,
    /// The recipient being resolved, `local@domain`.
    rcpt: String,
}

/// Whose targets are being expanded: whom commands and files run as, and who may own includes.
#[derive(Clone, Debug)]
enum Ctx {
    /// The aliases file (and `:include:` files it names): `aliases.pipe_user`.
    System,
    /// A user's ~/.forward (and `:include:` files it names): that user.
    User(RunAs),
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
    allow_pipes: bool,
    allow_files: bool,
    pipe_user: String,
    forward_files: bool,
    /// Reads a user's ~/.forward where this process cannot (the privileged helper, for a server
    /// that dropped root); None: read it here, with the owner's identity when root.
    forward_reader: Option<ForwardReader>,
}

/// Reads the named user's ~/.forward elsewhere: its bytes, or why it is not used.
/// The function behind a [`ForwardReader`].
pub type ReadForwardFn = dyn Fn(&str) -> Result<Vec<u8>, crate::aliases::ListFileError> + Send + Sync;

#[derive(Clone)]
pub struct ForwardReader(pub Arc<ReadForwardFn>);

impl std::fmt::Debug for ForwardReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ForwardReader")
    }
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
            allow_pipes: cfg.allow_pipes,
            allow_files: cfg.allow_files,
            pipe_user: cfg.pipe_user,
            forward_files: cfg.forward_files,
            forward_reader: None,
        })
    }

    /// Has `reader` read users' ~/.forward files (see [`ForwardReader`]).
    pub fn with_forward_reader(mut self, reader: Option<ForwardReader>) -> Resolver {
        self.forward_reader = reader;
        self
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
        let mut walk = Walk { rcpt: format!("{local}@{domain}"), ..Walk::default() };
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
    /// The account of login name `login` (as [`Resolver::mail_home`] finds it), with the local part
    /// and domain it was found under (ManageSieve places a virtual user's scripts by them).
    pub fn account(&self, login: &str) -> Result<(crate::auth::Account, String, String), String> {
        let (local, domain) = match login.rsplit_once('@') {
            Some((l, d)) => (l.to_string(), norm_domain(d)),
            None => (login.to_string(), self.domains.first().cloned().unwrap_or_default()),
        };
        let acc = self.users.lookup(&local, &domain)?.ok_or_else(|| format!("no account {login}"))?;
        Ok((acc, local.to_ascii_lowercase(), domain))
    }

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
            Ok(path) => Resolution::Deliver(Delivery::mailbox(self.destination(&acc, path))),
            // Never a 5xx for postmaster: this corner needs the administrator.
            Err(_) => Resolution::Temp("postmaster has no mailbox: add an alias".into()),
        }
    }

    fn single(&self, acc: &Account, domain: &str) -> Resolution {
        match expand_template(&self.mailbox.template, acc, domain) {
            Ok(path) => Resolution::Deliver(Delivery::mailbox(self.destination(acc, path))),
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
        if !walk.out.mailboxes.iter().any(|d| d.path == path) {
            walk.out.mailboxes.push(self.destination(acc, path));
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
                Some(acc) => self.deliver_user(&acc, domain, walk),
                None => {
                    log::info!("alias loop {} -> {name} dropped", Self::chain(walk));
                    Ok(())
                }
            };
        }
        if let Some(targets) = self.alias(name)? {
            self.descend(name.to_string(), &targets, domain, walk, &Ctx::System)?;
            return Ok(());
        }
        match self.user(name, domain)? {
            Some(acc) => self.deliver_user(&acc, domain, walk),
            None if top => Err(Fail::Unknown),
            // Not a 550 for the original name, which exists: the alias is broken (sendmail would
            // bounce that member only; with no bounces yet, refusing says it at once).
            None => Err(Fail::Perm(format!("alias {}: {name}@{domain}: no such user", Self::chain(walk)))),
        }
    }

    /// Expands `targets` one level down under `key` (an alias name, an include, a .forward).
    fn descend(
        &self,
        key: String,
        targets: &[Target],
        domain: &str,
        walk: &mut Walk,
        ctx: &Ctx,
    ) -> Result<(), Fail> {
        if walk.chain.len() >= self.max_depth {
            return Err(Fail::Perm("alias expansion too deep".into()));
        }
        walk.chain.push(key);
        for t in targets {
            self.expand_target(t, domain, walk, ctx)?;
        }
        walk.chain.pop();
        Ok(())
    }

    /// A user reached by name: their ~/.forward if they have a usable one (forward(5)), else
    /// their mailbox.
    fn deliver_user(&self, acc: &Account, domain: &str, walk: &mut Walk) -> Result<(), Fail> {
        if !self.forward_files {
            return self.add(acc, domain, walk);
        }
        let key = format!("~{}/.forward", acc.name);
        if walk.chain.contains(&key) {
            // The user named in their own .forward (or a loop back to them): their mailbox.
            return self.add(acc, domain, walk);
        }
        match forward::read_forward(acc, self.forward_reader.as_ref()).map_err(Fail::Temp)? {
            Some((targets, run_as)) => self.descend(key, &targets, domain, walk, &Ctx::User(run_as)),
            None => self.add(acc, domain, walk),
        }
    }

    /// Who commands and files of `ctx` run as: the user of a .forward, else `aliases.pipe_user`;
    /// never root (root's own .forward runs as the pipe user too, as Postfix's default_privs).
    fn run_as(&self, ctx: &Ctx) -> Result<RunAs, Fail> {
        if let Ctx::User(r) = ctx
            && r.uid != 0
        {
            return Ok(r.clone());
        }
        match crate::auth::system::getpwnam(&self.pipe_user).map_err(Fail::Temp)? {
            None => Err(Fail::Temp(format!("aliases.pipe_user {:?} does not exist", self.pipe_user))),
            Some(Account { uid: Some(0), .. }) => {
                Err(Fail::Perm(format!("aliases.pipe_user {:?} is root; refusing", self.pipe_user)))
            }
            Some(acc) => RunAs::of(&acc).ok_or_else(|| Fail::Temp(format!("{}: no uid", self.pipe_user))),
        }
    }

    fn expand_target(&self, t: &Target, domain: &str, walk: &mut Walk, ctx: &Ctx) -> Result<(), Fail> {
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
                    if !walk.out.forwards.iter().any(|f| f.eq_ignore_ascii_case(a)) {
                        walk.out.forwards.push(a.clone());
                    }
                    Ok(())
                }
            }
            Target::Pipe(command) => {
                if !self.allow_pipes {
                    return Err(Fail::Perm(format!(
                        "alias {}: delivery to commands is disabled (aliases.allow_pipes = no)",
                        Self::chain(walk)
                    )));
                }
                let run_as = self.run_as(ctx)?;
                let p = PipeTarget { command: command.clone(), run_as, recipient: walk.rcpt.clone() };
                if !walk.out.pipes.contains(&p) {
                    walk.out.pipes.push(p);
                }
                Ok(())
            }
            Target::File(path) => {
                // /dev/null discards, and is always allowed (a common `name: /dev/null`).
                if path != Path::new("/dev/null") && !self.allow_files {
                    return Err(Fail::Perm(format!(
                        "alias {}: delivery to files is disabled (aliases.allow_files = no)",
                        Self::chain(walk)
                    )));
                }
                let run_as = self.run_as(ctx)?;
                if !walk.out.files.iter().any(|f| f.path == *path) {
                    walk.out.files.push(FileTarget { path: path.clone(), run_as });
                }
                Ok(())
            }
            Target::Include(p) => {
                let key = format!(":include:{}", p.display());
                if walk.chain.contains(&key) {
                    log::info!("alias loop {} -> {key} dropped", Self::chain(walk));
                    return Ok(());
                }
                let targets = self.include(p, ctx)?;
                self.descend(key, &targets, domain, walk, ctx)
            }
        }
    }

    /// Reads an `:include:` file. Named by the aliases file, it must belong to root (or the
    /// server's own user) and is read with the server's rights; named by a user's .forward, it
    /// must belong to that user or root and is read with the user's rights. Never writable by
    /// group or others. A problem is temporary: the file is the administrator's (or user's) to fix.
    fn include(&self, p: &Path, ctx: &Ctx) -> Result<Vec<Target>, Fail> {
        if !p.is_absolute() {
            return Err(Fail::Temp(format!("alias include: {} is not an absolute path", p.display())));
        }
        let r = match ctx {
            Ctx::System => aliases::read_list_file(p, &aliases::system_include_owners(), false),
            Ctx::User(u) => {
                let owner = crate::store::Owner { uid: u.uid, gid: u.gid };
                let _as = crate::store::owner::become_owner(Some(owner), None).map_err(Fail::Temp)?;
                aliases::read_list_file(p, &[u.uid, 0], true)
            }
        };
        r.map(|inc| inc.targets).map_err(|e| {
            let m = format!("alias include: {}", e.message(p));
            if matches!(e, ListFileError::Unsafe(_)) {
                log::warn!("{m}");
            }
            Fail::Temp(m)
        })
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
