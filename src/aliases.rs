//! The aliases(5) file of sendmail and Postfix (`name: value, value, ...`), read as text and re-read
//! when it changes (no newaliases database needed), `:include:` files (with their owner and mode
//! checks) and `newaliases`' validation. Expansion itself is done by the resolver in local.rs; this
//! file only parses names and values. RFC 5321 4.5.1 (postmaster) is the resolver's business.

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

/// The largest `:include:` or `.forward` file read (a list of addresses, not a mailbox).
pub const MAX_LIST_FILE: u64 = 1024 * 1024;

/// An `:include:` file as read: its values and its owner.
#[derive(Debug)]
pub struct Include {
    pub targets: Vec<Target>,
    pub uid: u32,
}

/// Why an `:include:` or `.forward` file was not used.
#[derive(Debug, PartialEq, Eq)]
pub enum ListFileError {
    /// There is no such file.
    Missing,
    /// The file may not be trusted (owner, mode, type): it is not used, and says why.
    Unsafe(String),
    /// A line does not parse (`file:line: message`).
    Syntax(String),
    /// Reading failed (an I/O error that may heal).
    Io(String),
}

impl ListFileError {
    /// The message, for logs and replies.
    pub fn message(&self, path: &Path) -> String {
        match self {
            ListFileError::Missing => format!("{}: No such file or directory", path.display()),
            ListFileError::Unsafe(m) | ListFileError::Syntax(m) | ListFileError::Io(m) => m.clone(),
        }
    }
}

/// Opens a list file (`:include:` or `~/.forward`) and checks that it may be trusted: a regular
/// file (never a symlink's target when `nofollow`), owned by one of `owners`, not writable by group
/// or others (anyone who can edit it could make the server run commands), at most
/// [`MAX_LIST_FILE`] bytes. The checks are made on the opened descriptor (fstat), so the file
/// cannot be swapped between check and read. Returns the values (same syntax as the right side of
/// an alias, one or more per line, `#` comments) and the owner.
pub fn read_list_file(path: &Path, owners: &[u32], nofollow: bool) -> Result<Include, ListFileError> {
    let (bytes, uid) = read_list_bytes(path, owners, nofollow)?;
    parse_list_bytes(&bytes, path, uid)
}

/// A list file's values from its bytes (read by [`read_list_bytes`], here or in the helper).
pub fn parse_list_bytes(bytes: &[u8], path: &Path, uid: u32) -> Result<Include, ListFileError> {
    let text = String::from_utf8_lossy(bytes);
    parse_list(&text, &path.display().to_string())
        .map(|targets| Include { targets, uid })
        .map_err(ListFileError::Syntax)
}

/// The checks and the read of [`read_list_file`]: the bytes and the owner's uid.
pub fn read_list_bytes(path: &Path, owners: &[u32], nofollow: bool) -> Result<(Vec<u8>, u32), ListFileError> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let shown = path.display();
    let mut flags = libc::O_NONBLOCK | libc::O_CLOEXEC;
    if nofollow {
        flags |= libc::O_NOFOLLOW;
    }
    let f = match fs::OpenOptions::new().read(true).custom_flags(flags).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(ListFileError::Missing),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(ListFileError::Unsafe(format!("{shown}: is a symbolic link; not used")));
        }
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            return Err(ListFileError::Unsafe(format!("{shown}: {e}")));
        }
        Err(e) => return Err(ListFileError::Io(format!("{shown}: {e}"))),
    };
    let m = f.metadata().map_err(|e| ListFileError::Io(format!("{shown}: {e}")))?;
    if !m.is_file() {
        return Err(ListFileError::Unsafe(format!("{shown}: not a regular file; not used")));
    }
    if !owners.contains(&m.uid()) {
        return Err(ListFileError::Unsafe(format!("{shown}: owned by uid {}; not used", m.uid())));
    }
    if m.mode() & 0o022 != 0 {
        return Err(ListFileError::Unsafe(format!(
            "{shown}: writable by group or others (mode {:o}); not used",
            m.mode() & 0o7777
        )));
    }
    let mut bytes = Vec::new();
    f.take(MAX_LIST_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| ListFileError::Io(format!("{shown}: {e}")))?;
    if bytes.len() as u64 > MAX_LIST_FILE {
        return Err(ListFileError::Syntax(format!("{shown}: larger than {MAX_LIST_FILE} bytes")));
    }
    Ok((bytes, m.uid()))
}

/// The values of a list file's text: values separated by commas or newlines, `#` comments.
pub fn parse_list(text: &str, name: &str) -> Result<Vec<Target>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if is_blank_or_comment(line) {
            continue;
        }
        out.extend(parse_values(line, name, i + 1)?);
    }
    Ok(out)
}

/// aliases(5), as Postfix reads it: a line starting with a blank continues the previous entry;
/// a line whose first non-blank character is '#' is a comment (also between continuations);
/// '#' elsewhere is an ordinary character. The first error wins.
fn parse_table(text: &str, name: &str) -> Result<Table, String> {
    let mut errors = Vec::new();
    let table = parse_table_all(text, name, &mut errors);
    match errors.into_iter().next() {
        Some(e) => Err(e),
        None => Ok(table),
    }
}

/// [`parse_table`] that goes on after an error (the broken entry is left out), collecting every
/// error as `file:line: message`, for `newaliases`.
fn parse_table_all(text: &str, name: &str, errors: &mut Vec<String>) -> Table {
    let mut table = Table::new();
    // The entry being collected: its line, name, and values so far (None after an error in it).
    let mut cur: Option<(usize, String, Vec<Target>)> = None;
    let mut broken = false;
    let finish = |e: Option<(usize, String, Vec<Target>)>, table: &mut Table, errors: &mut Vec<String>| {
        let Some((n, alias, values)) = e else { return };
        if values.is_empty() {
            errors.push(format!("{name}:{n}: alias {alias:?} has no values"));
        } else if let Some((_, first)) = table.get(&alias) {
            // Postfix postalias: warn and keep the first.
            log::warn!("{name}:{n}: alias {alias:?} already defined at line {first}; entry ignored");
        } else {
            table.insert(alias, (values, n));
        }
    };
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let line = line.strip_suffix('\r').unwrap_or(line);
        if is_blank_or_comment(line) {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            match (&mut cur, broken) {
                (_, true) => {}
                (Some((_, _, values)), false) => match parse_values(line, name, n) {
                    Ok(v) => values.extend(v),
                    Err(e) => {
                        errors.push(e);
                        cur = None;
                        broken = true;
                    }
                },
                (None, false) => errors
                    .push(format!("{name}:{n}: continuation line (starts with a blank) without an entry")),
            }
            continue;
        }
        finish(cur.take(), &mut table, errors);
        broken = true;
        let Some((lhs, rhs)) = split_name(line) else {
            errors.push(format!("{name}:{n}: expected `name: value, ...`"));
            continue;
        };
        let lhs = lhs.trim();
        let alias = unquote(lhs).to_ascii_lowercase();
        let bad = if alias.is_empty() {
            Some("empty alias name".to_string())
        } else if alias.contains('@') {
            Some(format!("alias name {alias:?} has a domain; use the local part only"))
        } else if alias.chars().any(|c| c.is_control() || (c.is_whitespace() && !lhs.starts_with('"'))) {
            // A quoted name may hold blanks (a quoted local part, RFC 5321 4.1.2); nothing holds
            // controls.
            Some(format!("alias name {alias:?} contains blanks or control characters"))
        } else {
            None
        };
        if let Some(m) = bad {
            errors.push(format!("{name}:{n}: {m}"));
            continue;
        }
        match parse_values(rhs, name, n) {
            Ok(v) => {
                cur = Some((n, alias, v));
                broken = false;
            }
            Err(e) => errors.push(e),
        }
    }
    finish(cur.take(), &mut table, errors);
    table
}

/// What `newaliases` found in a good aliases file.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Names defined.
    pub aliases: usize,
    /// Distinct `:include:` files read.
    pub includes: usize,
    /// Things that work but may not do what was meant (commands or files while they are disabled).
    pub warnings: Vec<String>,
}

/// What `newaliases` checks beyond the syntax.
#[derive(Clone, Copy, Debug, Default)]
pub struct ValidateOptions {
    pub allow_pipes: bool,
    pub allow_files: bool,
    /// How deep `:include:` files may nest (alias_max_depth).
    pub max_depth: usize,
}

/// `newaliases`: checks the aliases file as the server would read it (syntax of every entry, every
/// `:include:` file readable, safe and well-formed, recursively) and reports every problem as
/// `file:line: message` (no database is built: buzon reads the text file itself).
pub fn validate(path: &Path, opts: ValidateOptions) -> Result<Summary, Vec<String>> {
    let (text, _) = read_stamped(path).map_err(|e| vec![e])?;
    let mut errors = Vec::new();
    let table = parse_table_all(&text, &path.display().to_string(), &mut errors);
    let mut summary = Summary { aliases: table.len(), ..Summary::default() };
    let mut entries: Vec<(&String, &(Vec<Target>, usize))> = table.iter().collect();
    entries.sort_by_key(|(_, (_, n))| *n);
    let mut seen: Vec<PathBuf> = Vec::new();
    for (alias, (targets, n)) in entries {
        let at = format!("{}:{n}", path.display());
        check_targets(targets, &at, alias, opts, 0, &mut seen, &mut summary, &mut errors);
    }
    summary.includes = seen.len();
    if errors.is_empty() { Ok(summary) } else { Err(errors) }
}

/// `newaliases` (and `sendmail -bi`): validates the configured aliases file with the server's
/// switches (see [`validate`]). The caller prints `PATH: N aliases` and the warnings, or each error
/// line and exits non-zero.
pub fn newaliases(cfg: &crate::config::Config) -> Result<Summary, Vec<String>> {
    let Some(path) = &cfg.aliases else {
        return Err(vec!["no aliases file is configured (`aliases` in buzon.conf)".into()]);
    };
    let opts = ValidateOptions {
        allow_pipes: cfg.aliases_allow_pipes,
        allow_files: cfg.aliases_allow_files,
        max_depth: cfg.alias_max_depth,
    };
    validate(path, opts)
}

/// The owners an `:include:` named by the aliases file may have: root, or the server's own user.
pub fn system_include_owners() -> Vec<u32> {
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    if me == 0 { vec![0] } else { vec![0, me] }
}

#[allow(clippy::too_many_arguments)]
fn check_targets(
    targets: &[Target],
    at: &str,
    alias: &str,
    opts: ValidateOptions,
    depth: usize,
    seen: &mut Vec<PathBuf>,
    summary: &mut Summary,
    errors: &mut Vec<String>,
) {
    for t in targets {
        match t {
            Target::Pipe(c) if !opts.allow_pipes => summary
                .warnings
                .push(format!("{at}: {alias}: command \"|{c}\" is refused while aliases.allow_pipes = no")),
            Target::File(p) if !opts.allow_files && p != Path::new("/dev/null") => summary.warnings.push(
                format!("{at}: {alias}: file {} is refused while aliases.allow_files = no", p.display()),
            ),
            Target::Include(p) => {
                if seen.contains(p) {
                    continue;
                }
                seen.push(p.clone());
                if depth + 1 >= opts.max_depth.max(1) {
                    errors.push(format!("{at}: {alias}: :include: files nest too deep"));
                    continue;
                }
                if !p.is_absolute() {
                    errors.push(format!("{at}: {alias}: :include:{} is not an absolute path", p.display()));
                    continue;
                }
                match read_list_file(p, &system_include_owners(), false) {
                    Ok(inc) => {
                        let inner = format!("{} (included at {at})", p.display());
                        check_targets(&inc.targets, &inner, alias, opts, depth + 1, seen, summary, errors);
                    }
                    Err(e) => errors.push(format!("{at}: {alias}: :include: {}", e.message(p))),
                }
            }
            _ => {}
        }
    }
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

    fn me() -> u32 {
        // SAFETY: geteuid has no preconditions.
        unsafe { libc::geteuid() }
    }

    fn chmod(p: &Path, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn include_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("staff");
        fs::write(&p, "# staff\nalice, bob\n\ncarol@c.example\n  \"|cmd x\"\n").unwrap();
        chmod(&p, 0o644);
        let inc = read_list_file(&p, &[me()], true).unwrap();
        assert_eq!(
            inc.targets,
            vec![
                Local("alice".into()),
                Local("bob".into()),
                Address("carol@c.example".into()),
                Pipe("cmd x".into())
            ]
        );
        assert_eq!(inc.uid, me());
        fs::write(&p, b"# M\xfcller\nok\nbad value\n").unwrap();
        let e = read_list_file(&p, &[me()], true).unwrap_err();
        assert!(
            matches!(&e, ListFileError::Syntax(m) if m.starts_with(&format!("{}:3: ", p.display()))),
            "{e:?}"
        );
        assert_eq!(
            read_list_file(&dir.path().join("missing"), &[me()], true).unwrap_err(),
            ListFileError::Missing
        );
    }

    #[test]
    fn list_files_must_be_safe() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("list");
        fs::write(&p, "alice\n").unwrap();
        let unsafe_msg = |r: Result<super::Include, ListFileError>| match r {
            Err(ListFileError::Unsafe(m)) => m,
            other => panic!("{other:?}"),
        };
        for (mode, ok) in
            [(0o600, true), (0o644, true), (0o640, true), (0o664, false), (0o646, false), (0o666, false)]
        {
            chmod(&p, mode);
            let r = read_list_file(&p, &[me()], true);
            if ok {
                assert!(r.is_ok(), "mode {mode:o}");
            } else {
                assert!(unsafe_msg(r).contains("writable by group or others"), "mode {mode:o}");
            }
        }
        chmod(&p, 0o600);
        // Owned by someone not allowed.
        assert!(unsafe_msg(read_list_file(&p, &[me() + 1], true)).contains("owned by uid"));
        // A symlink: refused when nofollow (a .forward), followed otherwise (an admin's include).
        let l = dir.path().join("link");
        std::os::unix::fs::symlink(&p, &l).unwrap();
        assert!(unsafe_msg(read_list_file(&l, &[me()], true)).contains("symbolic link"));
        assert!(read_list_file(&l, &[me()], false).is_ok());
        // A directory, a FIFO: not regular files (and the FIFO open never blocks).
        assert!(unsafe_msg(read_list_file(dir.path(), &[me()], true)).contains("not a regular file"));
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert!(unsafe_msg(read_list_file(&fifo, &[me()], true)).contains("not a regular file"));
        // Too big.
        fs::write(&p, vec![b'a'; MAX_LIST_FILE as usize + 1]).unwrap();
        assert!(
            matches!(read_list_file(&p, &[me()], true), Err(ListFileError::Syntax(m)) if m.contains("larger"))
        );
    }

    #[test]
    fn validate_reports_every_error_with_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let inc = dir.path().join("staff");
        fs::write(&inc, "alice, bob\n").unwrap();
        chmod(&inc, 0o644);
        let bad_inc = dir.path().join("bad");
        fs::write(&bad_inc, "alice\nx y\n").unwrap();
        chmod(&bad_inc, 0o644);
        let open_inc = dir.path().join("open");
        fs::write(&open_inc, "alice\n").unwrap();
        chmod(&open_inc, 0o666);
        let al = dir.path().join("aliases");
        let d = dir.path().display();
        let opts = ValidateOptions { allow_pipes: false, allow_files: true, max_depth: 20 };
        fs::write(&al, format!("root: alice\nstaff: :include:{d}/staff\nnull: /dev/null\nlog: /var/log/x\nvac: \"|vacation\"\n")).unwrap();
        let s = validate(&al, opts).unwrap();
        assert_eq!((s.aliases, s.includes), (5, 1));
        assert_eq!(
            s.warnings,
            vec![format!(
                "{d}/aliases:5: vac: command \"|vacation\" is refused while aliases.allow_pipes = no"
            )]
        );
        fs::write(
            &al,
            format!(
                "root: alice\nbroken line\nx: a b\n  c\ny: :include:{d}/bad\nz: :include:{d}/nothere\nw: :include:{d}/open\nv: :include:rel\nu: ok\n  \"unterminated\n"
            ),
        )
        .unwrap();
        let e = validate(&al, opts).unwrap_err();
        let want = [
            format!("{d}/aliases:2: expected `name: value, ...`"),
            format!(
                "{d}/aliases:3: blank inside the value \"a b\"; separate values with commas or quote the value"
            ),
            format!("{d}/aliases:10: unterminated quote"),
            format!(
                "{d}/aliases:5: y: :include: {d}/bad:2: blank inside the value \"x y\"; separate values with commas or quote the value"
            ),
            format!("{d}/aliases:6: z: :include: {d}/nothere: No such file or directory"),
            format!("{d}/aliases:7: w: :include: {d}/open: writable by group or others (mode 666); not used"),
            format!("{d}/aliases:8: v: :include:rel is not an absolute path"),
        ];
        assert_eq!(e, want);
        assert!(validate(&dir.path().join("none"), opts).is_err());
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
