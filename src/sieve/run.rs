//! The Sieve interpreter (RFC 5228 2.10, 4, 5): runs a [`Script`] against a message and its
//! envelope, collects actions, resolves the implicit keep (2.10.2), merges duplicates (a mailbox
//! or an address used twice is acted on once, 4.1, 4.2), refuses conflicting actions (RFC 5429
//! 2.1, RFC 5230 4.7) and enforces the per-run limits. Any runtime error cancels every action
//! and keeps the message (2.10.6).

use super::ast::{Cmd, FlagOp, Match, Mt, Part, Stmt, Test, Transform};
use super::matching::{count, matches};
use super::msg::{MailAddr, Message, html_text};
use super::vars::{Vars, modify};
use super::{Action, Envelope, MAX_ACTIONS, MAX_MATCH_WORK, Options, Outcome, RunError, Script, vacation};

/// Runs `script` for one delivery.
pub fn run(script: &Script, msg: &Message, env: &Envelope, opts: &Options) -> Outcome {
    let mut r = Runner {
        script,
        msg,
        env,
        opts,
        vars: Vars::default(),
        flags: Vec::new(),
        actions: Vec::new(),
        implicit_keep: true,
        notes: Vec::new(),
        vacation_seen: false,
        line: 0,
        work: 0,
    };
    match r.block(&script.cmds) {
        Ok(_) => r.finish(),
        Err(error) => Outcome {
            actions: vec![Action::Keep { flags: Vec::new() }],
            implicit_keep: true,
            error: Some(error),
            notes: r.notes,
        },
    }
}

/// The address a redirect goes to, when `s` is one (RFC 5228 4.2: an RFC 5322 address; angle
/// brackets are allowed around it).
pub(crate) fn redirect_target(s: &str) -> Option<String> {
    let s = s.trim();
    let s = match (s.find('<'), s.rfind('>')) {
        (Some(a), Some(b)) if a < b => &s[a + 1..b],
        _ => s,
    };
    crate::addr::Address::parse(s.trim()).ok().map(|a| a.to_string())
}

enum Flow {
    Go,
    Stop,
}

struct Runner<'s, 'm> {
    script: &'s Script,
    msg: &'m Message<'m>,
    env: &'m Envelope,
    opts: &'m Options<'m>,
    vars: Vars,
    /// RFC 5232 3: the internal flags variable.
    flags: Vec<String>,
    /// Actions with the line that took them.
    actions: Vec<(Action, u32)>,
    implicit_keep: bool,
    notes: Vec<String>,
    vacation_seen: bool,
    /// The line of the command running, for errors raised inside its tests.
    line: u32,
    /// Comparison work done so far (see `compare`).
    work: u64,
}

fn fail(line: u32, message: impl Into<String>) -> RunError {
    RunError { line, message: message.into() }
}

/// RFC 5232 3: flags are separated by spaces; duplicates (case-insensitive) collapse.
fn add_flags(set: &mut Vec<String>, list: &[String]) {
    for f in list.iter().flat_map(|s| s.split_whitespace()) {
        if !set.iter().any(|x| x.eq_ignore_ascii_case(f)) {
            set.push(f.to_string());
        }
    }
}

fn remove_flags(set: &mut Vec<String>, list: &[String]) {
    for f in list.iter().flat_map(|s| s.split_whitespace()) {
        set.retain(|x| !x.eq_ignore_ascii_case(f));
    }
}

fn is_inbox(m: &str) -> bool {
    m.eq_ignore_ascii_case("INBOX")
}

impl Runner<'_, '_> {
    fn x(&self, s: &str) -> String {
        if self.script.variables { self.vars.expand(s) } else { s.to_string() }
    }

    fn xs(&self, v: &[String]) -> Vec<String> {
        v.iter().map(|s| self.x(s)).collect()
    }

    fn block(&mut self, cmds: &[Stmt]) -> Result<Flow, RunError> {
        for s in cmds {
            if let Flow::Stop = self.stmt(s)? {
                return Ok(Flow::Stop);
            }
        }
        Ok(Flow::Go)
    }

    fn stmt(&mut self, s: &Stmt) -> Result<Flow, RunError> {
        let line = s.line;
        self.line = line;
        match &s.cmd {
            Cmd::If(branches, else_) => {
                for (test, body) in branches {
                    self.line = line;
                    if self.test(test)? {
                        return self.block(body);
                    }
                }
                if let Some(body) = else_ {
                    return self.block(body);
                }
            }
            Cmd::Stop => return Ok(Flow::Stop),
            Cmd::Keep { flags } => {
                let flags = self.flags_of(flags.as_deref());
                self.implicit_keep = false;
                self.add(Action::Keep { flags }, line)?;
            }
            Cmd::Discard => {
                self.implicit_keep = false;
                self.add(Action::Discard, line)?;
            }
            Cmd::FileInto { mailbox, flags, copy, create } => {
                let flags = self.flags_of(flags.as_deref());
                let mailbox = self.x(mailbox);
                if mailbox.is_empty() {
                    return Err(fail(line, "fileinto: empty mailbox name"));
                }
                // RFC 3894 3: with :copy the implicit keep stays.
                if !copy {
                    self.implicit_keep = false;
                }
                self.add(Action::FileInto { mailbox, flags, copy: *copy, create: *create }, line)?;
            }
            Cmd::Redirect { address, copy } => {
                let a = self.x(address);
                let Some(address) = redirect_target(&a) else {
                    return Err(fail(line, format!("redirect: invalid address \"{a}\"")));
                };
                if !copy {
                    self.implicit_keep = false;
                }
                self.add(Action::Redirect { address, copy: *copy }, line)?;
            }
            Cmd::Reject { reason, extended } => {
                let reason = self.x(reason);
                if self.vacation_seen {
                    return Err(fail(line, "reject conflicts with vacation"));
                }
                self.implicit_keep = false;
                self.add(if *extended { Action::Ereject(reason) } else { Action::Reject(reason) }, line)?;
            }
            Cmd::Set { name, value, mods } => {
                let v = modify(self.x(value), mods);
                if !self.vars.set(name, v) {
                    return Err(fail(line, format!("set: more than {} variables", super::MAX_VARIABLES)));
                }
            }
            Cmd::Flag { op, var, flags } => {
                let list = self.xs(flags);
                let mut set = match var {
                    Some(v) => self.vars.get(v).split_whitespace().map(str::to_string).collect(),
                    None => std::mem::take(&mut self.flags),
                };
                match op {
                    FlagOp::Set => {
                        set.clear();
                        add_flags(&mut set, &list);
                    }
                    FlagOp::Add => add_flags(&mut set, &list),
                    FlagOp::Remove => remove_flags(&mut set, &list),
                }
                match var {
                    Some(v) => {
                        if !self.vars.set(v, set.join(" ")) {
                            return Err(fail(line, format!("more than {} variables", super::MAX_VARIABLES)));
                        }
                    }
                    None => self.flags = set,
                }
            }
            Cmd::Vacation(args) => {
                // RFC 5230 4.7: one vacation per run.
                if self.vacation_seen {
                    return Err(fail(line, "vacation: more than one vacation action"));
                }
                self.vacation_seen = true;
                // RFC 5230 4.7: reject and vacation both answer the sender; checked whether or
                // not a reply turns out to be due.
                if let Some((_, ol)) =
                    self.actions.iter().find(|(a, _)| matches!(a, Action::Reject(_) | Action::Ereject(_)))
                {
                    return Err(fail(line, format!("vacation conflicts with reject at line {ol}")));
                }
                let args = super::ast::VacationArgs {
                    days: args.days,
                    subject: args.subject.as_deref().map(|s| self.x(s)),
                    from: args.from.as_deref().map(|s| self.x(s)),
                    addresses: self.xs(&args.addresses),
                    mime: args.mime,
                    handle: args.handle.as_deref().map(|s| self.x(s)),
                    reason: self.x(&args.reason),
                };
                match vacation::decide(&args, self.msg, self.env, &self.opts.user_addresses) {
                    Ok(v) => self.add(Action::Vacation(v), line)?,
                    Err(why) => self.notes.push(format!("line {line}: vacation reply not due: {why}")),
                }
            }
        }
        Ok(Flow::Go)
    }

    /// The flags a keep or fileinto stores: its own :flags, or the internal variable (RFC 5232 5).
    fn flags_of(&self, given: Option<&[String]>) -> Vec<String> {
        match given {
            Some(list) => {
                let mut v = Vec::new();
                add_flags(&mut v, &self.xs(list));
                v
            }
            None => self.flags.clone(),
        }
    }

    /// Records an action, merging duplicates and checking conflicts and limits.
    fn add(&mut self, a: Action, line: u32) -> Result<(), RunError> {
        let delivers =
            |a: &Action| matches!(a, Action::Keep { .. } | Action::FileInto { .. } | Action::Redirect { .. });
        let rejects = |a: &Action| matches!(a, Action::Reject(_) | Action::Ereject(_));
        for (o, ol) in &self.actions {
            // RFC 5429 2.1: reject cannot go with an action that delivers the message, nor with
            // vacation (RFC 5230 4.7: both answer the sender); two rejects are one too many.
            let clash = (rejects(&a) && (delivers(o) || rejects(o) || matches!(o, Action::Vacation(_))))
                || (rejects(o) && (delivers(&a) || matches!(a, Action::Vacation(_))));
            if clash {
                return Err(fail(line, format!("{} conflicts with {} at line {ol}", name(&a), name(o))));
            }
        }
        // RFC 5228 4.1, 4.2: the same mailbox, or the same address, is acted on once.
        let target = |a: &Action| -> Option<String> {
            match a {
                Action::Keep { .. } => Some("INBOX".into()),
                Action::FileInto { mailbox, .. } if is_inbox(mailbox) => Some("INBOX".into()),
                Action::FileInto { mailbox, .. } => Some(format!("mbox:{mailbox}")),
                Action::Redirect { address, .. } => Some(format!("addr:{}", address.to_ascii_lowercase())),
                Action::Discard => Some("discard".into()),
                _ => None,
            }
        };
        if let Some(t) = target(&a)
            && let Some(i) = self.actions.iter().position(|(o, _)| target(o).as_deref() == Some(t.as_str()))
        {
            // Merge the flags into the first (RFC 5232 does not say; Pigeonhole adds them).
            let new_flags = match &a {
                Action::Keep { flags } | Action::FileInto { flags, .. } => flags.clone(),
                _ => Vec::new(),
            };
            if let Some((Action::Keep { flags } | Action::FileInto { flags, .. }, _)) =
                self.actions.get_mut(i)
            {
                add_flags(flags, &new_flags);
            }
            return Ok(());
        }
        if matches!(a, Action::Redirect { .. }) {
            let n = self.actions.iter().filter(|(o, _)| matches!(o, Action::Redirect { .. })).count();
            if n >= self.opts.max_redirects {
                return Err(fail(line, format!("more than {} redirects", self.opts.max_redirects)));
            }
        }
        if self.actions.len() >= MAX_ACTIONS {
            return Err(fail(line, format!("more than {MAX_ACTIONS} actions")));
        }
        self.actions.push((a, line));
        Ok(())
    }

    fn finish(mut self) -> Outcome {
        let mut implicit = false;
        if self.implicit_keep {
            let flags = self.flags.clone();
            let has_keep = self.actions.iter().any(|(a, _)| match a {
                Action::Keep { .. } => true,
                Action::FileInto { mailbox, .. } => is_inbox(mailbox),
                _ => false,
            });
            if !has_keep {
                // RFC 5228 2.10.2: the implicit keep stores with the current flags (RFC 5232 5).
                self.actions.push((Action::Keep { flags }, 0));
                implicit = true;
            }
        }
        Outcome {
            actions: self.actions.into_iter().map(|(a, _)| a).collect(),
            implicit_keep: implicit,
            error: None,
            notes: self.notes,
        }
    }

    fn test(&mut self, t: &Test) -> Result<bool, RunError> {
        Ok(match t {
            Test::True => true,
            Test::False => false,
            Test::Not(t) => !self.test(t)?,
            Test::AllOf(v) => {
                for t in v {
                    if !self.test(t)? {
                        return Ok(false);
                    }
                }
                true
            }
            Test::AnyOf(v) => {
                for t in v {
                    if self.test(t)? {
                        return Ok(true);
                    }
                }
                false
            }
            Test::Exists(names) => self.xs(names).iter().all(|n| self.msg.exists(n)),
            Test::Size { over, limit } => {
                if *over {
                    self.msg.size() > *limit
                } else {
                    self.msg.size() < *limit
                }
            }
            Test::Header { m, names, keys } => {
                let values: Vec<String> = self.xs(names).iter().flat_map(|n| self.msg.header(n)).collect();
                self.compare(m, &values, keys)?
            }
            Test::Address { m, part, names, keys } => {
                let values: Vec<String> = self
                    .xs(names)
                    .iter()
                    .flat_map(|n| self.msg.addresses(n))
                    .filter_map(|a| address_part(&a, *part))
                    .collect();
                self.compare(m, &values, keys)?
            }
            Test::Envelope { m, part, names, keys } => {
                let mut values = Vec::new();
                for n in self.xs(names) {
                    let v = match n.to_ascii_lowercase().as_str() {
                        "from" => Some(self.env.from.clone()),
                        "to" => Some(self.env.to.clone()),
                        "auth" => self.env.auth.clone(),
                        _ => None,
                    };
                    let Some(v) = v else { continue };
                    if v.is_empty() {
                        // RFC 5228 5.4: the null reverse-path compares as the empty string.
                        if *part == Part::All {
                            values.push(String::new());
                        }
                        continue;
                    }
                    let (local, domain) = match v.rsplit_once('@') {
                        Some((l, d)) => (l.to_string(), Some(d.to_string())),
                        None => (v.clone(), None),
                    };
                    values.extend(address_part(&MailAddr { local, domain }, *part));
                }
                self.compare(m, &values, keys)?
            }
            Test::Body { m, transform, keys } => {
                let values: Vec<String> = match transform {
                    Transform::Raw => vec![self.msg.raw_body()],
                    Transform::Text => self
                        .msg
                        .parts()
                        .iter()
                        .filter(|p| p.mtype == "text")
                        .map(|p| if p.subtype == "html" { html_text(&p.text) } else { p.text.clone() })
                        .collect(),
                    Transform::Content(types) => {
                        let types = self.xs(types);
                        self.msg
                            .parts()
                            .iter()
                            .filter(|p| {
                                types.iter().any(|t| {
                                    let t = t.to_ascii_lowercase();
                                    // RFC 5173 5.2: "" is every part, "type" its subtypes too.
                                    match t.split_once('/') {
                                        None => t.is_empty() || t == p.mtype,
                                        Some((ty, sub)) => ty == p.mtype && sub == p.subtype,
                                    }
                                })
                            })
                            .map(|p| p.text.clone())
                            .collect()
                    }
                };
                // RFC 5173 5: the body test is a substring search over each part.
                self.compare(m, &values, keys)?
            }
            Test::String { m, sources, keys } => {
                let values = self.xs(sources);
                // RFC 5229 5: for :count, empty strings are not counted.
                let values: Vec<String> = match m.mt {
                    Mt::Count(_) => values.into_iter().filter(|v| !v.is_empty()).collect(),
                    _ => values,
                };
                self.compare(m, &values, keys)?
            }
            Test::HasFlag { m, vars, keys } => {
                let mut set = Vec::new();
                if vars.is_empty() {
                    set = self.flags.clone();
                } else {
                    for v in vars {
                        let v = self.vars.get(v).split_whitespace().map(str::to_string).collect::<Vec<_>>();
                        add_flags(&mut set, &v);
                    }
                }
                self.compare(m, &set, keys)?
            }
            Test::MailboxExists(names) => {
                let names = self.xs(names);
                match self.opts.mailbox_exists {
                    Some(f) => names.iter().all(|n| f(n)),
                    None => false,
                }
            }
        })
    }

    /// Values against keys (RFC 5228 2.7): true when any value matches any key; a successful
    /// :matches sets the match variables (RFC 5229 3.2).
    fn compare(&mut self, m: &Match, values: &[String], keys: &[String]) -> Result<bool, RunError> {
        let keys = self.xs(keys);
        if let Mt::Count(rel) = m.mt {
            return Ok(keys.iter().any(|k| count(m.cmp, rel, values.len(), k)));
        }
        for v in values {
            for k in &keys {
                // What one comparison may cost at worst: substring and wildcard searches are
                // O(value x key); the run has MAX_MATCH_WORK of it.
                let cost = match m.mt {
                    Mt::Contains | Mt::Matches => (v.len() as u64 + 1) * (k.len() as u64 + 1),
                    _ => v.len() as u64 + k.len() as u64 + 1,
                };
                self.work = self.work.saturating_add(cost);
                if self.work > MAX_MATCH_WORK {
                    return Err(fail(self.line, "too much matching work for one message"));
                }
                if let Some(caps) = matches(m.cmp, m.mt, v, k) {
                    if m.mt == Mt::Matches && self.script.variables {
                        self.vars.matched = caps;
                    }
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }
}

fn address_part(a: &MailAddr, part: Part) -> Option<String> {
    Some(match part {
        Part::All => match &a.domain {
            Some(d) => format!("{}@{d}", a.local),
            None => a.local.clone(),
        },
        Part::Local => a.local.clone(),
        Part::Domain => a.domain.clone()?,
        // RFC 5233 4: the separator is "+"; without one, :user is the local part and :detail absent.
        Part::User => a.local.split_once('+').map_or(a.local.as_str(), |(u, _)| u).to_string(),
        Part::Detail => a.local.split_once('+')?.1.to_string(),
    })
}

fn name(a: &Action) -> &'static str {
    match a {
        Action::Keep { .. } => "keep",
        Action::FileInto { .. } => "fileinto",
        Action::Redirect { .. } => "redirect",
        Action::Reject(_) => "reject",
        Action::Ereject(_) => "ereject",
        Action::Discard => "discard",
        Action::Vacation(_) => "vacation",
    }
}
