//! Folder names: IMAP names (UTF-8, `/` delimiter, RFC 3501 5.1) checked and mapped to Maildir++
//! directories as Dovecot and Courier lay them out ("Archive/2024" is `<root>/.Archive.2024`, each
//! component in modified UTF-7, RFC 3501 5.1.3), and Dovecot's `subscriptions` file.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::Path;

use super::lock::DotLock;
use super::msgfile::{temp, write_durably};
use crate::imap::mutf7;
use crate::store::folder::FolderError;

/// Longest name accepted, in bytes (UTF-8 and on disk).
pub const MAX_NAME: usize = 255;
/// Deepest hierarchy accepted.
pub const MAX_LEVELS: usize = 16;
pub const SUBSCRIPTIONS: &str = "subscriptions";
const SUBSCRIPTIONS_TMP: &str = "subscriptions.buzon-tmp";
/// Dovecot's version 2 subscriptions header; names then use TAB as the hierarchy separator.
const SUBS_V2: &str = "V\t2\n\n";

fn bad(why: &str) -> FolderError {
    FolderError::BadName(why.to_string())
}

/// Checks a name given by a client and returns its components (`INBOX` in any case becomes
/// `INBOX`). Refused: empty names and components, `.` and `..`, a `.` inside a component (the
/// on-disk separator), a leading `/`, control characters, more than 255 bytes or 16 levels. So no
/// name reaches outside the root.
pub fn parse(name: &str) -> Result<Vec<String>, FolderError> {
    if name.is_empty() {
        return Err(bad("empty mailbox name"));
    }
    if name.len() > MAX_NAME {
        return Err(bad("mailbox name too long"));
    }
    if name.chars().any(char::is_control) {
        return Err(bad("control character in mailbox name"));
    }
    if name.starts_with('/') {
        return Err(bad("mailbox name starts with the hierarchy delimiter"));
    }
    let mut parts: Vec<String> = Vec::new();
    for (i, c) in name.split('/').enumerate() {
        if c.is_empty() {
            return Err(bad("empty level in mailbox name"));
        }
        if c.contains('.') {
            return Err(bad("'.' is not allowed in mailbox names"));
        }
        if i == 0 && c.eq_ignore_ascii_case("INBOX") {
            parts.push("INBOX".into());
        } else {
            parts.push(c.to_string());
        }
    }
    if parts.len() > MAX_LEVELS {
        return Err(bad("mailbox hierarchy too deep"));
    }
    Ok(parts)
}

/// The canonical name (INBOX normalised).
pub fn canonical(parts: &[String]) -> String {
    parts.join("/")
}

/// The directory name under the root: "." + components in modified UTF-7 joined with ".".
pub fn dir_name(parts: &[String]) -> Result<String, FolderError> {
    let mut out = String::new();
    for p in parts {
        out.push('.');
        let enc = mutf7::encode(p);
        if enc.contains(['.', '/']) || enc.is_empty() {
            return Err(bad("mailbox name cannot be stored"));
        }
        out.push_str(&enc);
    }
    if out.len() > MAX_NAME {
        return Err(bad("mailbox name too long"));
    }
    Ok(out)
}

/// The folder name of a root entry (".a.b"), if it is one: not "..x" (Dovecot's trash), every
/// component valid modified UTF-7 and the result a name [`parse`] accepts.
pub fn from_dir_name(entry: &str) -> Option<String> {
    let rest = entry.strip_prefix('.')?;
    let mut parts = Vec::new();
    for c in rest.split('.') {
        if c.is_empty() {
            return None;
        }
        parts.push(mutf7::decode(c.as_bytes())?);
    }
    let name = parts.join("/");
    parse(&name).ok().map(|p| canonical(&p))
}

/// Subscribed names from `<root>/subscriptions`: Dovecot's version 2 (header "V\t2", TAB-separated
/// levels) or the plain form (one name a line; '.' is read as a level separator, as a Dovecot
/// Maildir++ namespace writes it, since buzon names never contain '.').
pub fn read_subscriptions(root: &Path) -> Result<Vec<String>, FolderError> {
    let path = root.join(SUBSCRIPTIONS);
    let mut text = String::new();
    match File::open(&path) {
        Ok(f) => {
            f.take(1024 * 1024).read_to_string(&mut text).map_err(|e| temp("cannot read", &path, &e))?;
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(temp("cannot open", &path, &e)),
    }
    let (v2, body) = match text.strip_prefix(SUBS_V2) {
        Some(b) => (true, b),
        None => (false, text.as_str()),
    };
    let mut out = Vec::new();
    for line in body.lines().filter(|l| !l.is_empty()) {
        let name = if v2 { line.replace('\t', "/") } else { line.replace('.', "/") };
        if let Ok(p) = parse(&name) {
            let n = canonical(&p);
            if !out.contains(&n) {
                out.push(n);
            }
        }
    }
    Ok(out)
}

/// Adds or removes a name, under `subscriptions.lock`, written durably in the form the file already
/// has (plain lines with '/' for a new file).
pub fn set_subscribed(root: &Path, name: &str, on: bool) -> Result<(), FolderError> {
    let _lock = DotLock::acquire(&root.join(SUBSCRIPTIONS))?;
    let v2 = fs::read(root.join(SUBSCRIPTIONS)).is_ok_and(|t| t.starts_with(SUBS_V2.as_bytes()));
    let mut names = read_subscriptions(root)?;
    let had = names.iter().any(|n| n == name);
    if had == on {
        return Ok(());
    }
    if on {
        names.push(name.to_string());
    } else {
        names.retain(|n| n != name);
    }
    let mut text = if v2 { SUBS_V2.to_string() } else { String::new() };
    for n in &names {
        text.push_str(&if v2 { n.replace('/', "\t") } else { n.clone() });
        text.push('\n');
    }
    write_durably(root, SUBSCRIPTIONS, SUBSCRIPTIONS_TMP, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_names_that_escape_or_break_the_layout() {
        let long = "x".repeat(256);
        let deep = vec!["a"; 17].join("/");
        let bad_names = [
            "",
            "../x",
            "/etc",
            "a/../../b",
            "a\0b",
            ".hidden",
            "a/.",
            "a//b",
            "a/",
            "..",
            "a.b",
            "a\nb",
            "a\u{7f}b",
            &long,
            &deep,
        ];
        for n in bad_names {
            assert!(matches!(parse(n), Err(FolderError::BadName(_))), "{n:?}");
        }
        assert_eq!(parse("inbox/x").unwrap(), vec!["INBOX", "x"]);
        assert_eq!(parse("Archive/2024").unwrap(), vec!["Archive", "2024"]);
        assert_eq!(parse("a/inbox").unwrap(), vec!["a", "inbox"]);
        assert!(parse(&vec!["a"; 16].join("/")).is_ok());
    }

    #[test]
    fn maps_to_maildirplusplus() {
        let cases = [("Archive/2024", ".Archive.2024"), ("INBOX/x", ".INBOX.x"), ("Sent", ".Sent")];
        for (name, dir) in cases {
            assert_eq!(dir_name(&parse(name).unwrap()).unwrap(), dir);
            assert_eq!(from_dir_name(dir).as_deref(), Some(name));
        }
        for not_folder in ["..DOVECOT-TRASH", ".", "..", ".a..b", "cur", ".a."] {
            assert_eq!(from_dir_name(not_folder), None, "{not_folder}");
        }
        assert_eq!(from_dir_name(".inbox.y").as_deref(), Some("INBOX/y"));
    }

    #[test]
    fn subscriptions_both_formats() {
        let d = tempfile::tempdir().unwrap();
        assert!(read_subscriptions(d.path()).unwrap().is_empty());
        fs::write(d.path().join(SUBSCRIPTIONS), "INBOX\nArchive.2024\nSent\n").unwrap();
        assert_eq!(read_subscriptions(d.path()).unwrap(), vec!["INBOX", "Archive/2024", "Sent"]);
        set_subscribed(d.path(), "Sent", false).unwrap();
        set_subscribed(d.path(), "a/b", true).unwrap();
        assert_eq!(fs::read_to_string(d.path().join(SUBSCRIPTIONS)).unwrap(), "INBOX\nArchive/2024\na/b\n");
        fs::write(d.path().join(SUBSCRIPTIONS), "V\t2\n\nArchive\t2024\n").unwrap();
        set_subscribed(d.path(), "x/y", true).unwrap();
        assert_eq!(
            fs::read_to_string(d.path().join(SUBSCRIPTIONS)).unwrap(),
            "V\t2\n\nArchive\t2024\nx\ty\n"
        );
        assert_eq!(read_subscriptions(d.path()).unwrap(), vec!["Archive/2024", "x/y"]);
        assert!(!d.path().join("subscriptions.lock").exists());
    }
}
