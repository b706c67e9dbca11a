//! The aliases(5) file of sendmail and Postfix (`name: value, value, ...`), read as text and re-read
//! when it changes (no newaliases database needed). Expansion itself is done by the resolver in
//! local.rs; this file only parses names and values.

use crate::auth::passwd_file::{Seen, Stamp};
use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// One value of an alias.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A local name, expanded further (alias, then user).
    Local(String),
    /// `user@domain`.
    Address(String),
    /// `|command`.
    Pipe(String),
    /// `/path/file`.
    File(PathBuf),
    /// `:include:/path`, a file of further values.
    Include(PathBuf),
    /// `\name`: deliver to the user `name`, no further alias expansion.
    Unexpanded(String),
}

/// Alias name (lowercase) -> values and the line that defined them.
type Table = HashMap<String, (Vec<Target>, usize)>;

#[derive(Debug)]
struct State {
    seen: Seen,
    /// The table, or the first error of this version of the file (kept until the file changes).
    table: Result<Arc<Table>, String>,
}

/// An aliases file, or a fixed table (from [`Aliases::parse`]).
#[derive(Debug)]
pub struct Aliases {
    path: Option<PathBuf>,
    state: Mutex<State>,
}

impl Aliases {
    /// Opens and parses the file. Missing is an empty table (warned once), as if no alias existed;
    /// a syntax error is an error naming `file:line`.
    pub fn open(path: &Path) -> Result<Aliases, String> {
        let a = Aliases {
            path: Some(path.to_path_buf()),
            state: Mutex::new(State { seen: Seen::Never, table: Ok(Arc::default()) }),
        };
        a.current()?;
        Ok(a)
    }

    /// A fixed table from text; `name` is used in messages.
    pub fn parse(text: &str, name: &str) -> Result<Aliases, String> {
        let table = parse_table(text, name)?;
        Ok(Aliases { path: None, state: Mutex::new(State { seen: Seen::Never, table: Ok(Arc::new(table)) }) })
    }

    /// The values of alias `name` (any case), `None` when there is no such alias. `Err` is
    /// temporary: the file cannot be read or has a syntax error now (mail waits until it is fixed).
    pub fn lookup(&self, name: &str) -> Result<Option<Vec<Target>>, String> {
        let table = self.current()?;
        Ok(table.get(&name.to_ascii_lowercase()).map(|(t, _)| t.clone()))
    }

    /// The table for the file as it is now (one stat per call), re-read if it changed.
    fn current(&self) -> Result<Arc<Table>, String> {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let Some(path) = &self.path else {
            return st.table.clone();
        };
        let shown = path.display();
        match fs::metadata(path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if st.seen != Seen::Missing {
                    log::warn!("{shown}: aliases file does not exist; no aliases until it is created");
                    st.seen = Seen::Missing;
                    st.table = Ok(Arc::default());
                }
            }
            Err(e) => return Err(format!("{shown}: {e}")),
            Ok(m) if Seen::File(Stamp::of(&m)) == st.seen => {}
            Ok(_) => {
                let (text, stamp) = read_stamped(path)?;
                let table = parse_table(&text, &shown.to_string());
                match &table {
                    Ok(t) if st.seen != Seen::Never => log::info!("{shown}: re-read, {} aliases", t.len()),
                    Ok(_) => {}
                    Err(e) => log::error!("{e}"),
                }
                st.table = table.map(Arc::new);
                st.seen = Seen::File(stamp);
            }
        }
        st.table.clone()
    }
}

/// Reads a file through one descriptor, with the stamp of what was read.
fn read_stamped(path: &Path) -> Result<(String, Stamp), String> {
    let shown = path.display();
    let mut f = File::open(path).map_err(|e| format!("{shown}: {e}"))?;
    let stamp = Stamp::of(&f.metadata().map_err(|e| format!("{shown}: {e}"))?);
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes).map_err(|e| format!("{shown}: {e}"))?;
    // Old aliases files may carry Latin-1 comments; a stray byte must not take every alias down
    // (a name spelt with one simply matches nothing).
    Ok((String::from_utf8_lossy(&bytes).into_owned(), stamp))
}

/// Reads the values of an `:include:` file: values separated by commas or newlines, `#` comments.
/// It is read at every expansion, so an edit takes effect at once.
pub fn read_include(path: &Path) -> Result<Vec<Target>, String> {
    let (text, _) = read_stamped(path)?;
    let name = path.display().to_string();
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if is_blank_or_comment(line) {
            continue;
        }
        out.extend(parse_values(line, &name, i + 1)?);
    }
    Ok(out)
}

/// aliases(5), as Postfix reads it: a line starting with a blank continues the previous entry;
/// a line whose first non-blank character is '#' is a comment (also between continuations);
/// '#' elsewhere is an ordinary character.
fn parse_table(text: &str, name: &str) -> Result<Table, String> {
    let mut table = Table::new();
    // The entry being collected: its line, name, and values so far.
    let mut cur: Option<(usize, String, Vec<Target>)> = None;
    let mut finish = |e: Option<(usize, String, Vec<Target>)>| -> Result<(), String> {
        let Some((n, alias, values)) = e else { return Ok(()) };
        if values.is_empty() {
            return Err(format!("{name}:{n}: alias {alias:?} has no values"));
        }
        if let Some((_, first)) = table.get(&alias) {
            // Postfix postalias: warn and keep the first.
            log::warn!("{name}:{n}: alias {alias:?} already defined at line {first}; entry ignored");
        } else {
            table.insert(alias, (values, n));
        }
        Ok(())
    };
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let line = line.strip_suffix('\r').unwrap_or(line);
        if is_blank_or_comment(line) {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            match &mut cur {
                Some((_, _, values)) => values.extend(parse_values(line, name, n)?),
                None => {
                    return Err(format!(
                        "{name}:{n}: continuation line (starts with a blank) without an entry"
                    ));
                }
            }
            continue;
        }
        finish(cur.take())?;
        let (lhs, rhs) = split_name(line).ok_or(format!("{name}:{n}: expected `name: value, ...`"))?;
        let lhs = lhs.trim();
        let alias = unquote(lhs).to_ascii_lowercase();
        if alias.is_empty() {
            return Err(format!("{name}:{n}: empty alias name"));
        }
        if alias.contains('@') {
            return Err(format!("{name}:{n}: alias name {alias:?} has a domain; use the local part only"));
        }
        // A quoted name may hold blanks (a quoted local part, RFC 5321 4.1.2); nothing holds controls.
        if alias.chars().any(|c| c.is_control() || (c.is_whitespace() && !lhs.starts_with('"'))) {
            return Err(format!("{name}:{n}: alias name {alias:?} contains blanks or control characters"));
        }
        cur = Some((n, alias, parse_values(rhs, name, n)?));
    }
    finish(cur.take())?;
    Ok(table)
}

fn is_blank_or_comment(line: &str) -> bool {
    let t = line.trim_start();
    t.is_empty() || t.starts_with('#')
}

/// Splits `name: values` at the first ':' outside double quotes.
fn split_name(line: &str) -> Option<(&str, &str)> {
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ':' if !quoted => return Some((&line[..i], &line[i + 1..])),
            _ => {}
        }
    }
    None
}

/// `"x"` -> `x` (with `\"` and `\\` unescaped); anything else as is.
fn unquote(s: &str) -> String {
    match s.strip_prefix('"').and_then(|x| x.strip_suffix('"')) {
        Some(inner) => {
            let mut out = String::new();
            let mut esc = false;
            for c in inner.chars() {
                if esc || c != '\\' {
                    out.push(c);
                    esc = false;
                } else {
                    esc = true;
                }
            }
            out
        }
        None => s.to_string(),
    }
}

/// Parses one line's worth of comma-separated values. Double quotes protect blanks and commas
/// (`"|/usr/bin/vacation alice"`); an unquoted blank inside a value is an error, since it usually
/// means a missing comma.
pub fn parse_values(text: &str, name: &str, n: usize) -> Result<Vec<Target>, String> {
    let err = |m: String| format!("{name}:{n}: {m}");
    let mut out = Vec::new();
    let mut cur = String::new();
    let (mut quoted, mut escaped, mut blank_after) = (false, false, false);
    let push = |cur: &mut String, out: &mut Vec<Target>| -> Result<(), String> {
        let v = std::mem::take(cur);
        if !v.is_empty() {
            out.push(classify(&v).map_err(err)?);
        }
        Ok(())
    };
    for c in text.chars() {
        if quoted {
            match c {
                _ if escaped => {
                    cur.push(c);
                    escaped = false;
                }
                '\\' => escaped = true,
                '"' => quoted = false,
                _ => cur.push(c),
            }
            continue;
        }
        match c {
            ',' => {
                push(&mut cur, &mut out)?;
                blank_after = false;
            }
            c if c.is_whitespace() => blank_after = !cur.is_empty(),
            c => {
                if blank_after {
                    return Err(err(format!(
                        "blank inside the value {:?}; separate values with commas or quote the value",
                        format!("{cur} {c}")
                    )));
                }
                if c == '"' {
                    quoted = true;
                } else {
                    cur.push(c);
                }
            }
        }
    }
    if quoted {
        return Err(err("unterminated quote".into()));
    }
    push(&mut cur, &mut out)?;
    Ok(out)
}

/// What kind of value a (non-empty, unquoted) string is.
fn classify(v: &str) -> Result<Target, String> {
    let lower = v.to_ascii_lowercase();
    if lower.starts_with(":include:") {
        let p = v[":include:".len()..].trim();
        if p.is_empty() {
            return Err(":include: without a file name".into());
        }
        return Ok(Target::Include(PathBuf::from(p)));
    }
    if let Some(cmd) = v.strip_prefix('|') {
        if cmd.trim().is_empty() {
            return Err("`|` without a command".into());
        }
        return Ok(Target::Pipe(cmd.to_string()));
    }
    if v.starts_with('/') {
        return Ok(Target::File(PathBuf::from(v)));
    }
    if let Some(user) = v.strip_prefix('\\') {
        if user.is_empty() || user.contains('@') {
            return Err(format!("{v:?}: `\\` must be followed by a local user name"));
        }
        return Ok(Target::Unexpanded(user.to_string()));
    }
    // `<user@domain>` is accepted as sendmail does.
    let bare = v.strip_prefix('<').and_then(|x| x.strip_suffix('>')).unwrap_or(v);
    if bare.is_empty() {
        return Err(format!("{v:?}: empty address"));
    }
    match bare.rsplit_once('@') {
        Some((l, d)) if l.is_empty() || d.is_empty() => Err(format!("{v:?}: incomplete address")),
        Some(_) => Ok(Target::Address(bare.to_string())),
        None => Ok(Target::Local(bare.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Target::*;

    fn get(a: &Aliases, name: &str) -> Option<Vec<Target>> {
        a.lookup(name).unwrap()
    }

    #[test]
    fn values_of_every_kind() {
        let text = r#"
# comment
root: Alice, bob@Example.ORG, "|/usr/bin/vacation alice", /var/log/mail.copy,
      :include:/etc/mail/staff, \root,   <carol@c.example>
  # a comment between continuation lines
	dave
"Quoted Name": x
sales: "a,b"
hash#tag: y
"#;
        let a = Aliases::parse(text, "aliases").unwrap();
        assert_eq!(
            get(&a, "ROOT").unwrap(),
            vec![
                Local("Alice".into()),
                Address("bob@Example.ORG".into()),
                Pipe("/usr/bin/vacation alice".into()),
                File("/var/log/mail.copy".into()),
                Include("/etc/mail/staff".into()),
                Unexpanded("root".into()),
                Address("carol@c.example".into()),
                Local("dave".into()),
            ]
        );
        assert_eq!(get(&a, "quoted name").unwrap(), vec![Local("x".into())]);
        assert_eq!(get(&a, "sales").unwrap(), vec![Local("a,b".into())]);
        assert_eq!(get(&a, "hash#tag").unwrap(), vec![Local("y".into())]);
        assert_eq!(get(&a, "nobody"), None);
    }

    #[test]
    fn errors_name_file_and_line() {
        for (text, want) in [
            ("a: b\nno colon here\n", "al:2: expected `name: value"),
            ("  b, c\n", "al:1: continuation line"),
            ("a: b\n: c\n", "al:2: empty alias name"),
            ("a@x.example: b\n", "al:1: alias name \"a@x.example\" has a domain"),
            ("a: b c\n", "al:1: blank inside the value \"b c\""),
            ("a: \"b\n", "al:1: unterminated quote"),
            ("a b: c\n", "al:1: alias name \"a b\" contains blanks"),
            ("a: b,\n\n  \"c\n", "al:3: unterminated quote"),
            ("a:\nb: c\n", "al:1: alias \"a\" has no values"),
            ("a: ,\n", "al:1: alias \"a\" has no values"),
            ("a: |\n", "al:1: `|` without a command"),
            ("a: :include:\n", "al:1: :include: without a file name"),
            ("a: \\\n", "al:1: \"\\\\\": `\\` must be followed"),
            ("a: x@\n", "al:1: \"x@\": incomplete address"),
            ("a: <>\n", "al:1: \"<>\": empty address"),
        ] {
            let e = Aliases::parse(text, "al").unwrap_err();
            assert!(e.starts_with(want), "{text:?}: {e}");
        }
    }

    #[test]
    fn duplicates_keep_the_first_and_crlf_is_fine() {
        let a = Aliases::parse("a: b\r\nA: c\r\n", "al").unwrap();
        assert_eq!(get(&a, "a").unwrap(), vec![Local("b".into())]);
    }

    #[test]
    fn include_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("staff");
        fs::write(&p, "# staff\nalice, bob\n\ncarol@c.example\n  \"|cmd x\"\n").unwrap();
        assert_eq!(
            read_include(&p).unwrap(),
            vec![
                Local("alice".into()),
                Local("bob".into()),
                Address("carol@c.example".into()),
                Pipe("cmd x".into())
            ]
        );
        fs::write(&p, b"# M\xfcller\nok\nbad value\n").unwrap();
        let e = read_include(&p).unwrap_err();
        assert!(e.starts_with(&format!("{}:3: ", p.display())), "{e}");
        assert!(read_include(&dir.path().join("missing")).is_err());
    }

    #[test]
    fn file_reload_missing_and_broken() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("aliases");
        let a = Aliases::open(&p).unwrap();
        assert_eq!(get(&a, "root"), None);
        let edit = |text: &str, secs: u64| {
            fs::write(&p, text).unwrap();
            let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
            fs::File::options().write(true).open(&p).unwrap().set_modified(t).unwrap();
        };
        edit("root: alice\n", 1_000_000);
        assert_eq!(get(&a, "root").unwrap(), vec![Local("alice".into())]);
        edit("root: carol\n", 1_000_001);
        assert_eq!(get(&a, "root").unwrap(), vec![Local("carol".into())]);
        // A broken edit makes lookups fail (temporarily) with the line, not answer "no alias".
        edit("root: carol\nroot2 carol\n", 1_000_002);
        let e = a.lookup("root").unwrap_err();
        assert!(e.ends_with("aliases:2: expected `name: value, ...`"), "{e}");
        edit("root: dave\n", 1_000_003);
        assert_eq!(get(&a, "root").unwrap(), vec![Local("dave".into())]);
        // At start a broken file is an error.
        edit("oops\n", 1_000_004);
        assert!(Aliases::open(&p).is_err());
    }
}
