//! Sieve script checking (RFC 5228 3-5, 2.10.5): every command and test is known, its arguments
//! are of the right kinds, and each extension it uses was named by `require` (RFC 5228 3.2, which
//! must come first). The result is the [`Script`] the interpreter runs.

use std::collections::VecDeque;

use super::ast::{Cmd, Cmp, FlagOp, Match, Modifier, Mt, Part, Rel, Stmt, Test, Transform, VacationArgs};
use super::grammar::{Arg, GArg, GCmd, GTest, Grammar};
use super::{MAX_SCRIPT, ParseError, Script, lex, vars};

/// The extensions `require` accepts.
const EXTENSIONS: [&str; 16] = [
    "fileinto",
    "reject",
    "ereject",
    "envelope",
    "body",
    "variables",
    "imap4flags",
    "copy",
    "vacation",
    "mailbox",
    "encoded-character",
    "relational",
    "subaddress",
    "comparator-i;octet",
    "comparator-i;ascii-casemap",
    "comparator-i;ascii-numeric",
];

fn err(line: u32, message: impl Into<String>) -> ParseError {
    ParseError { line, message: message.into() }
}

/// Parses and checks a script.
pub fn parse(src: &[u8]) -> Result<Script, ParseError> {
    if src.len() > MAX_SCRIPT {
        return Err(err(1, format!("script larger than {MAX_SCRIPT} octets")));
    }
    // RFC 5228 2.2: scripts are UTF-8.
    let src = std::str::from_utf8(src).map_err(|e| {
        let line = src[..e.valid_up_to()].iter().filter(|&&b| b == b'\n').count() as u32 + 1;
        err(line, "the script is not UTF-8")
    })?;
    let toks = lex::lex(src)?;
    let tree = Grammar::new(&toks).script()?;
    let mut c = Checker { exts: Vec::new() };
    let cmds = c.commands(tree, true)?;
    Ok(Script { cmds, variables: c.has("variables") })
}

struct Checker {
    exts: Vec<String>,
}

/// The arguments of one command or test, consumed front to back.
struct Args {
    v: VecDeque<GArg>,
    what: String,
    line: u32,
}

impl Args {
    fn new(v: Vec<GArg>, what: String, line: u32) -> Self {
        Args { v: v.into(), what, line }
    }

    fn tag(&mut self) -> Option<(String, u32)> {
        match self.v.front() {
            Some(GArg { arg: Arg::Tag(t), line }) => {
                let r = (t.clone(), *line);
                self.v.pop_front();
                Some(r)
            }
            _ => None,
        }
    }

    fn strings(&mut self, c: &Checker, name: &str) -> Result<Vec<String>, ParseError> {
        match self.v.pop_front() {
            Some(GArg { arg: Arg::Strs(v, _), .. }) => Ok(v.into_iter().map(|s| c.text(s)).collect()),
            Some(GArg { line, .. }) => Err(err(line, format!("{}: {name} must be a string list", self.what))),
            None => Err(err(self.line, format!("{}: missing {name}", self.what))),
        }
    }

    fn string(&mut self, c: &Checker, name: &str) -> Result<String, ParseError> {
        match self.v.pop_front() {
            Some(GArg { arg: Arg::Strs(mut v, false), .. }) if v.len() == 1 => Ok(c.text(v.remove(0))),
            Some(GArg { line, .. }) => Err(err(line, format!("{}: {name} must be a string", self.what))),
            None => Err(err(self.line, format!("{}: missing {name}", self.what))),
        }
    }

    fn number(&mut self, name: &str) -> Result<u64, ParseError> {
        match self.v.pop_front() {
            Some(GArg { arg: Arg::Num(n), .. }) => Ok(n),
            Some(GArg { line, .. }) => Err(err(line, format!("{}: {name} must be a number", self.what))),
            None => Err(err(self.line, format!("{}: missing {name}", self.what))),
        }
    }

    /// Positional arguments left (tags among them are errors).
    fn positional(&self) -> Result<usize, ParseError> {
        if let Some(GArg { arg: Arg::Tag(t), line }) = self.v.iter().find(|a| matches!(a.arg, Arg::Tag(_))) {
            return Err(err(*line, format!("{}: unknown or misplaced tag \":{t}\"", self.what)));
        }
        Ok(self.v.len())
    }

    fn done(&self) -> Result<(), ParseError> {
        match self.v.front() {
            None => Ok(()),
            Some(GArg { arg: Arg::Tag(t), line }) => {
                Err(err(*line, format!("{}: unknown or misplaced tag \":{t}\"", self.what)))
            }
            Some(GArg { line, .. }) => Err(err(*line, format!("{}: too many arguments", self.what))),
        }
    }
}

/// The tags shared by the comparison tests while they are being read.
#[derive(Default)]
struct MatchTags {
    cmp: Option<Cmp>,
    mt: Option<Mt>,
    part: Option<Part>,
}

impl Checker {
    fn has(&self, ext: &str) -> bool {
        self.exts.iter().any(|e| e == ext)
    }

    fn need(&self, ext: &str, what: &str, line: u32) -> Result<(), ParseError> {
        if self.has(ext) {
            Ok(())
        } else {
            // RFC 5228 2.10.5: an extension that was not required is an error.
            Err(err(line, format!("{what} needs require \"{ext}\"")))
        }
    }

    /// A string as the interpreter sees it: RFC 5228 2.4.2.4 encoded characters decoded when that
    /// extension is on.
    fn text(&self, s: String) -> String {
        if self.has("encoded-character") && s.contains("${") { vars::decode_encoded(&s) } else { s }
    }

    fn commands(&mut self, cmds: Vec<GCmd>, top: bool) -> Result<Vec<Stmt>, ParseError> {
        let mut out: Vec<Stmt> = Vec::new();
        let mut others = false;
        for g in cmds {
            let line = g.line;
            match g.name.as_str() {
                "require" => {
                    // RFC 5228 3.2: require comes before any other command.
                    if !top || others {
                        return Err(err(line, "require must come before any other command"));
                    }
                    let mut a = self.plain(g, "require")?;
                    for ext in a.strings(self, "the extension list")? {
                        let e = ext.to_ascii_lowercase();
                        if !EXTENSIONS.contains(&e.as_str()) {
                            return Err(err(line, format!("unsupported extension \"{ext}\"")));
                        }
                        self.exts.push(e);
                    }
                    a.done()?;
                    continue;
                }
                "elsif" | "else" => {
                    let else_ = g.name == "else";
                    let Some(Stmt { cmd: Cmd::If(branches, last), .. }) = out.last_mut() else {
                        return Err(err(line, format!("\"{}\" without a preceding \"if\"", g.name)));
                    };
                    if last.is_some() {
                        return Err(err(line, format!("\"{}\" after \"else\"", g.name)));
                    }
                    let (test, block) = self.if_parts(g, !else_)?;
                    match test {
                        Some(t) => branches.push((t, block)),
                        None => *last = Some(block),
                    }
                }
                "if" => {
                    let (test, block) = self.if_parts(g, true)?;
                    let test = test.unwrap_or(Test::False);
                    out.push(Stmt { line, cmd: Cmd::If(vec![(test, block)], None) });
                }
                _ => {
                    let cmd = self.command(g)?;
                    out.push(Stmt { line, cmd });
                }
            }
            others = true;
        }
        Ok(out)
    }

    /// A command that takes neither tests nor a block.
    fn plain(&self, g: GCmd, name: &str) -> Result<Args, ParseError> {
        if !g.tests.is_empty() {
            return Err(err(g.line, format!("command \"{name}\" takes no test")));
        }
        if g.block.is_some() {
            return Err(err(g.line, format!("command \"{name}\" takes no block")));
        }
        Ok(Args::new(g.args, format!("command \"{name}\""), g.line))
    }

    fn if_parts(&mut self, g: GCmd, with_test: bool) -> Result<(Option<Test>, Vec<Stmt>), ParseError> {
        let name = g.name.clone();
        if !g.args.is_empty() {
            return Err(err(g.line, format!("\"{name}\" takes no arguments")));
        }
        let Some(block) = g.block else { return Err(err(g.line, format!("\"{name}\" needs a block"))) };
        let test = if with_test {
            let mut tests = g.tests;
            if tests.len() != 1 || g.list {
                return Err(err(g.line, format!("\"{name}\" needs one test")));
            }
            Some(self.test(tests.remove(0))?)
        } else {
            if !g.tests.is_empty() {
                return Err(err(g.line, "\"else\" takes no test"));
            }
            None
        };
        Ok((test, self.commands(block, false)?))
    }

    fn command(&mut self, g: GCmd) -> Result<Cmd, ParseError> {
        let line = g.line;
        let name = g.name.clone();
        let ext = match name.as_str() {
            "fileinto" | "reject" | "ereject" | "vacation" => Some(name.as_str()),
            "set" => Some("variables"),
            "setflag" | "addflag" | "removeflag" => Some("imap4flags"),
            "keep" | "discard" | "stop" | "redirect" => None,
            _ => return Err(err(line, format!("unknown command \"{name}\""))),
        };
        if let Some(ext) = ext {
            self.need(ext, &format!("command \"{name}\""), line)?;
        }
        let mut a = self.plain(g, &name)?;
        let cmd = match name.as_str() {
            "stop" => Cmd::Stop,
            "discard" => Cmd::Discard,
            "keep" => {
                let mut flags = None;
                while let Some((t, tl)) = a.tag() {
                    match t.as_str() {
                        "flags" => {
                            self.need("imap4flags", "tag \":flags\"", tl)?;
                            flags = Some(a.strings(self, "the flag list")?);
                        }
                        _ => return Err(err(tl, format!("command \"keep\": unknown tag \":{t}\""))),
                    }
                }
                Cmd::Keep { flags }
            }
            "fileinto" => {
                let (mut flags, mut copy, mut create) = (None, false, false);
                while let Some((t, tl)) = a.tag() {
                    match t.as_str() {
                        "flags" => {
                            self.need("imap4flags", "tag \":flags\"", tl)?;
                            flags = Some(a.strings(self, "the flag list")?);
                        }
                        "copy" => {
                            self.need("copy", "tag \":copy\"", tl)?;
                            copy = true;
                        }
                        "create" => {
                            self.need("mailbox", "tag \":create\"", tl)?;
                            create = true;
                        }
                        _ => return Err(err(tl, format!("command \"fileinto\": unknown tag \":{t}\""))),
                    }
                }
                let mailbox = a.string(self, "the mailbox name")?;
                if mailbox.is_empty() {
                    return Err(err(line, "command \"fileinto\": empty mailbox name"));
                }
                Cmd::FileInto { mailbox, flags, copy, create }
            }
            "redirect" => {
                let mut copy = false;
                while let Some((t, tl)) = a.tag() {
                    match t.as_str() {
                        "copy" => {
                            self.need("copy", "tag \":copy\"", tl)?;
                            copy = true;
                        }
                        _ => return Err(err(tl, format!("command \"redirect\": unknown tag \":{t}\""))),
                    }
                }
                let address = a.string(self, "the address")?;
                // RFC 5228 4.2: the address must be valid; checked now unless a variable fills it.
                if !(self.has("variables") && address.contains("${"))
                    && super::run::redirect_target(&address).is_none()
                {
                    return Err(err(line, format!("command \"redirect\": invalid address \"{address}\"")));
                }
                Cmd::Redirect { address, copy }
            }
            "reject" | "ereject" => {
                Cmd::Reject { reason: a.string(self, "the reason")?, extended: name == "ereject" }
            }
            "set" => {
                let mut mods: Vec<Modifier> = Vec::new();
                while let Some((t, tl)) = a.tag() {
                    let m = match t.as_str() {
                        "lower" => Modifier::Lower,
                        "upper" => Modifier::Upper,
                        "lowerfirst" => Modifier::LowerFirst,
                        "upperfirst" => Modifier::UpperFirst,
                        "quotewildcard" => Modifier::QuoteWildcard,
                        "length" => Modifier::Length,
                        _ => return Err(err(tl, format!("command \"set\": unknown modifier \":{t}\""))),
                    };
                    // RFC 5229 4.1: two modifiers of one precedence are an error.
                    if mods.iter().any(|o| o.precedence() == m.precedence()) {
                        return Err(err(
                            tl,
                            format!("command \"set\": modifier \":{t}\" conflicts with another"),
                        ));
                    }
                    mods.push(m);
                }
                mods.sort_by_key(|m| std::cmp::Reverse(m.precedence()));
                let name = a.string(self, "the variable name")?;
                if !vars::valid_name(&name) {
                    return Err(err(line, format!("command \"set\": invalid variable name \"{name}\"")));
                }
                let value = a.string(self, "the value")?;
                Cmd::Set { name: name.to_ascii_lowercase(), value, mods }
            }
            "setflag" | "addflag" | "removeflag" => {
                let op = match name.as_str() {
                    "setflag" => FlagOp::Set,
                    "addflag" => FlagOp::Add,
                    _ => FlagOp::Remove,
                };
                let var = match a.positional()? {
                    2 => {
                        let v = a.string(self, "the variable name")?;
                        if !vars::valid_name(&v) {
                            return Err(err(
                                line,
                                format!("command \"{name}\": invalid variable name \"{v}\""),
                            ));
                        }
                        Some(v.to_ascii_lowercase())
                    }
                    _ => None,
                };
                Cmd::Flag { op, var, flags: a.strings(self, "the flag list")? }
            }
            "vacation" => Cmd::Vacation(Box::new(self.vacation(&mut a)?)),
            _ => return Err(err(line, format!("unknown command \"{name}\""))),
        };
        a.done()?;
        Ok(cmd)
    }

    fn vacation(&self, a: &mut Args) -> Result<VacationArgs, ParseError> {
        let mut v = VacationArgs {
            days: None,
            subject: None,
            from: None,
            addresses: Vec::new(),
            mime: false,
            handle: None,
            reason: String::new(),
        };
        while let Some((t, tl)) = a.tag() {
            match t.as_str() {
                "days" => v.days = Some(a.number("the days")?),
                "subject" => v.subject = Some(a.string(self, "the subject")?),
                "from" => v.from = Some(a.string(self, "the from address")?),
                "addresses" => v.addresses = a.strings(self, "the address list")?,
                "mime" => v.mime = true,
                "handle" => v.handle = Some(a.string(self, "the handle")?),
                _ => return Err(err(tl, format!("command \"vacation\": unknown tag \":{t}\""))),
            }
        }
        v.reason = a.string(self, "the reason")?;
        Ok(v)
    }

    fn test(&mut self, g: GTest) -> Result<Test, ParseError> {
        let line = g.line;
        let name = g.name.clone();
        match name.as_str() {
            "not" => {
                let mut tests = g.tests;
                if !g.args.is_empty() || tests.len() != 1 || g.list {
                    return Err(err(line, "test \"not\" takes one test"));
                }
                return Ok(Test::Not(Box::new(self.test(tests.remove(0))?)));
            }
            "allof" | "anyof" => {
                if !g.args.is_empty() || !g.list {
                    return Err(err(line, format!("test \"{name}\" takes a test list in parentheses")));
                }
                let v = g.tests.into_iter().map(|t| self.test(t)).collect::<Result<Vec<_>, _>>()?;
                return Ok(if name == "allof" { Test::AllOf(v) } else { Test::AnyOf(v) });
            }
            _ => {}
        }
        let ext = match name.as_str() {
            "envelope" | "body" => Some(name.as_str()),
            "string" => Some("variables"),
            "hasflag" => Some("imap4flags"),
            "mailboxexists" => Some("mailbox"),
            "true" | "false" | "header" | "address" | "exists" | "size" => None,
            _ => return Err(err(line, format!("unknown test \"{name}\""))),
        };
        if let Some(ext) = ext {
            self.need(ext, &format!("test \"{name}\""), line)?;
        }
        if !g.tests.is_empty() {
            return Err(err(line, format!("test \"{name}\" takes no tests")));
        }
        let mut a = Args::new(g.args, format!("test \"{name}\""), line);
        let test = match name.as_str() {
            "true" => Test::True,
            "false" => Test::False,
            "exists" => Test::Exists(a.strings(self, "the header names")?),
            "mailboxexists" => Test::MailboxExists(a.strings(self, "the mailbox names")?),
            "size" => {
                let over = match a.tag() {
                    Some((t, _)) if t == "over" => true,
                    Some((t, _)) if t == "under" => false,
                    _ => return Err(err(line, "test \"size\" needs :over or :under")),
                };
                Test::Size { over, limit: a.number("the size")? }
            }
            "header" | "address" | "envelope" => {
                let part_ok = name != "header";
                let mut mt = MatchTags::default();
                while let Some((t, tl)) = a.tag() {
                    self.match_tag(&t, tl, &mut a, &mut mt, part_ok)?;
                }
                let m = self.finish_match(&mt, line)?;
                let names = a.strings(self, "the header names")?;
                let keys = a.strings(self, "the key list")?;
                let part = mt.part.unwrap_or(Part::All);
                match name.as_str() {
                    "header" => Test::Header { m, names, keys },
                    "address" => Test::Address { m, part, names, keys },
                    _ => {
                        for n in &names {
                            let n = n.to_ascii_lowercase();
                            if !(n == "from" || n == "to" || n == "auth" || n.contains("${")) {
                                return Err(err(
                                    line,
                                    format!("test \"envelope\": unknown envelope part \"{n}\""),
                                ));
                            }
                        }
                        Test::Envelope { m, part, names, keys }
                    }
                }
            }
            "body" => {
                let mut mt = MatchTags::default();
                let mut transform = None;
                while let Some((t, tl)) = a.tag() {
                    let tr = match t.as_str() {
                        "raw" => Transform::Raw,
                        "text" => Transform::Text,
                        "content" => Transform::Content(a.strings(self, "the content types")?),
                        _ => {
                            self.match_tag(&t, tl, &mut a, &mut mt, false)?;
                            continue;
                        }
                    };
                    if transform.replace(tr).is_some() {
                        return Err(err(tl, "test \"body\": more than one transform"));
                    }
                }
                let m = self.finish_match(&mt, line)?;
                Test::Body {
                    m,
                    transform: transform.unwrap_or(Transform::Text),
                    keys: a.strings(self, "the key list")?,
                }
            }
            "string" | "hasflag" => {
                let mut mt = MatchTags::default();
                while let Some((t, tl)) = a.tag() {
                    self.match_tag(&t, tl, &mut a, &mut mt, false)?;
                }
                let m = self.finish_match(&mt, line)?;
                if name == "string" {
                    let sources = a.strings(self, "the source list")?;
                    Test::String { m, sources, keys: a.strings(self, "the key list")? }
                } else {
                    let vars =
                        if a.positional()? == 2 { a.strings(self, "the variable list")? } else { Vec::new() };
                    if let Some(v) = vars.iter().find(|v| !vars::valid_name(v)) {
                        return Err(err(line, format!("test \"hasflag\": invalid variable name \"{v}\"")));
                    }
                    let vars = vars.into_iter().map(|v| v.to_ascii_lowercase()).collect();
                    Test::HasFlag { m, vars, keys: a.strings(self, "the flag list")? }
                }
            }
            _ => return Err(err(line, format!("unknown test \"{name}\""))),
        };
        a.done()?;
        Ok(test)
    }

    /// One of the comparison tags (RFC 5228 2.7, RFC 5231, RFC 5233).
    fn match_tag(
        &self,
        t: &str,
        tl: u32,
        a: &mut Args,
        mt: &mut MatchTags,
        part_ok: bool,
    ) -> Result<(), ParseError> {
        let what = a.what.clone();
        let dup = |x: &str| err(tl, format!("{what}: more than one {x}"));
        match t {
            "comparator" => {
                let c = a.string(self, "the comparator name")?;
                let cmp = match c.to_ascii_lowercase().as_str() {
                    "i;octet" => Cmp::Octet,
                    "i;ascii-casemap" => Cmp::AsciiCasemap,
                    "i;ascii-numeric" => {
                        self.need("comparator-i;ascii-numeric", "comparator \"i;ascii-numeric\"", tl)?;
                        Cmp::AsciiNumeric
                    }
                    _ => return Err(err(tl, format!("{}: unknown comparator \"{c}\"", a.what))),
                };
                if mt.cmp.replace(cmp).is_some() {
                    return Err(dup("comparator"));
                }
            }
            "is" | "contains" | "matches" | "count" | "value" => {
                let m = match t {
                    "is" => Mt::Is,
                    "contains" => Mt::Contains,
                    "matches" => Mt::Matches,
                    _ => {
                        self.need("relational", &format!("match type \":{t}\""), tl)?;
                        let op = a.string(self, "the relational operator")?;
                        let rel = match op.to_ascii_lowercase().as_str() {
                            "gt" => Rel::Gt,
                            "ge" => Rel::Ge,
                            "lt" => Rel::Lt,
                            "le" => Rel::Le,
                            "eq" => Rel::Eq,
                            "ne" => Rel::Ne,
                            _ => {
                                return Err(err(
                                    tl,
                                    format!("{}: unknown relational operator \"{op}\"", a.what),
                                ));
                            }
                        };
                        if t == "count" { Mt::Count(rel) } else { Mt::Value(rel) }
                    }
                };
                if mt.mt.replace(m).is_some() {
                    return Err(dup("match type"));
                }
            }
            "all" | "localpart" | "domain" | "user" | "detail" if part_ok => {
                let p = match t {
                    "all" => Part::All,
                    "localpart" => Part::Local,
                    "domain" => Part::Domain,
                    _ => {
                        self.need("subaddress", &format!("address part \":{t}\""), tl)?;
                        if t == "user" { Part::User } else { Part::Detail }
                    }
                };
                if mt.part.replace(p).is_some() {
                    return Err(dup("address part"));
                }
            }
            _ => return Err(err(tl, format!("{}: unknown tag \":{t}\"", a.what))),
        }
        Ok(())
    }

    fn finish_match(&self, mt: &MatchTags, line: u32) -> Result<Match, ParseError> {
        // RFC 5228 2.7.3: the default comparator is i;ascii-casemap; 2.7.1: the default match is :is.
        let m = Match { cmp: mt.cmp.unwrap_or(Cmp::AsciiCasemap), mt: mt.mt.unwrap_or(Mt::Is) };
        // RFC 4790 9.1: i;ascii-numeric has no substring operation.
        if m.cmp == Cmp::AsciiNumeric && matches!(m.mt, Mt::Contains | Mt::Matches) {
            return Err(err(
                line,
                "comparator \"i;ascii-numeric\" cannot be used with :contains or :matches",
            ));
        }
        Ok(m)
    }
}
