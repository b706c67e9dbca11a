//! IMAP session: LIST and LSUB (RFC 3501 6.3.8-9, RFC 9051 6.3.9) with LIST-EXTENDED selection and
//! return options (RFC 5258), CHILDREN attributes (RFC 3348), LIST-STATUS (RFC 5819) and SPECIAL-USE
//! (RFC 6154); and the `*`/`%` pattern matching.

use super::{Backend, Reply, Session, bad, folder_error, normalize_inbox, ok};
use crate::imap::types::{Command, ListReturn, ListSelect, StatusItem};
use crate::store::folder::{DELIMITER, FolderEntry, FolderError};

/// Longest pattern (reference included) matched; longer ones are refused (the matcher costs
/// pattern length times name length per folder).
const MAX_PATTERN: usize = 1024;

/// What a LIST asked for, decoded.
struct Query {
    patterns: Vec<String>,
    /// Selection options (RFC 5258 3.1).
    subscribed: bool,
    special: bool,
    recursive: bool,
    /// Return options (RFC 5258 3.2, RFC 5819, RFC 6154).
    ret_subscribed: bool,
    status: Option<Vec<StatusItem>>,
    extended: bool,
}

impl Session {
    pub(super) fn list(&mut self, _: &str, cmd: Command, _: &dyn Backend, out: &mut Vec<u8>) -> Reply {
        let Command::List(args) = cmd else { return Some(bad("Internal error")) };
        let has = |o: ListSelect| args.select.contains(&o);
        let subscribed = has(ListSelect::Subscribed);
        let special = has(ListSelect::SpecialUse);
        let recursive = has(ListSelect::RecursiveMatch);
        // RFC 5258 3.1: RECURSIVEMATCH alone (or with REMOTE only) is a BAD.
        if recursive && !subscribed && !special {
            return Some(bad("RECURSIVEMATCH needs another selection option"));
        }
        // A reference or pattern that does not decode matches no mailbox: an empty answer.
        let Ok(reference) = self.pattern_text(&args.reference) else { return Some(ok("LIST completed")) };
        let raw: Vec<String> = args.patterns.iter().filter_map(|p| self.pattern_text(p).ok()).collect();
        if raw.is_empty() && !args.patterns.is_empty() {
            return Some(ok("LIST completed"));
        }
        // RFC 3501 6.3.8: an empty pattern asks for the delimiter and the reference's root.
        if raw.iter().all(String::is_empty) && args.select.is_empty() {
            let root = reference.find(DELIMITER).and_then(|i| reference.get(..=i)).unwrap_or("");
            let mut buf = b"* LIST (\\Noselect) \"/\" ".to_vec();
            self.write_mailbox(&mut buf, root);
            buf.extend_from_slice(b"\r\n");
            out.extend_from_slice(&buf);
            return Some(ok("LIST completed"));
        }
        let patterns: Vec<String> = raw
            .iter()
            .filter(|p| !p.is_empty())
            .map(|p| normalize_inbox(format!("{reference}{p}")))
            .collect();
        if patterns.iter().any(|p| p.len() > MAX_PATTERN) {
            return Some(bad("Pattern too long"));
        }
        let q = Query {
            patterns,
            subscribed,
            special,
            recursive,
            // RFC 5258 3.1: the SUBSCRIBED selection option implies the SUBSCRIBED return option.
            ret_subscribed: subscribed || args.ret.contains(&ListReturn::Subscribed),
            status: args.ret.iter().find_map(|r| match r {
                ListReturn::Status(items) => Some(items.clone()),
                _ => None,
            }),
            extended: args.extended,
        };
        let entries = match self.folders() {
            Ok(e) => e,
            Err(e) => return Some(folder_error(&self.peer.sid, &e)),
        };
        let tree = Tree::new(&entries);
        for (i, e) in entries.iter().enumerate() {
            if !q.patterns.iter().any(|p| matches(p.as_bytes(), e.name.as_bytes())) {
                continue;
            }
            // Children that exist: a subscription alone (RFC 3501 6.3.6) is not a child.
            let has_children = tree.descendants(i).any(|d| entries.get(d).is_some_and(|c| c.selectable));
            // A name that is neither a folder nor a parent is only a subscription left behind: shown
            // only when subscriptions are asked for (RFC 5258 3.4 \NonExistent).
            if !e.selectable && !has_children && !q.subscribed {
                continue;
            }
            let picked = q.picks(e);
            // RFC 5258 3.1, 3.5: with RECURSIVEMATCH a listed mailbox with a descendant that the
            // selection options pick gets CHILDINFO; a mailbox not picked itself is listed for
            // such a descendant only when the patterns do not list that descendant anyway (the
            // "%" case of RFC 5258 5 example 9; Dovecot does the same).
            let mut child_picked = false;
            let mut child_hidden = false;
            if q.recursive {
                for c in tree.descendants(i).filter_map(|d| entries.get(d)).filter(|c| q.picks(c)) {
                    child_picked = true;
                    if !q.patterns.iter().any(|p| matches(p.as_bytes(), c.name.as_bytes())) {
                        child_hidden = true;
                        break;
                    }
                }
            }
            if !picked && !child_hidden {
                continue;
            }
            let mut buf = Vec::with_capacity(96);
            let listed = self.list_line(&mut buf, e, has_children, &q, picked);
            if child_picked {
                let mut info = Vec::new();
                if q.subscribed {
                    info.push("\"SUBSCRIBED\"");
                }
                if q.special {
                    info.push("\"SPECIAL-USE\"");
                }
                buf.extend_from_slice(format!(" (\"CHILDINFO\" ({}))", info.join(" ")).as_bytes());
            }
            buf.extend_from_slice(b"\r\n");
            // RFC 5819 1: a STATUS after the LIST line of each selectable mailbox; none when it fails.
            if let (Some(items), true) = (&q.status, listed) {
                match self.status_of(&e.name) {
                    Ok(st) => self.status_line(&mut buf, &e.name, &st, items),
                    Err(err) => {
                        log::debug!("session={} event=list_status_skipped error=\"{err}\"", self.peer.sid)
                    }
                }
            }
            out.extend_from_slice(&buf);
        }
        Some(ok("LIST completed"))
    }

    /// RFC 3501 6.3.9: subscribed names matching; with a trailing `%`, unsubscribed parents of
    /// subscribed names too, as `\Noselect`.
    pub(super) fn lsub(&mut self, _: &str, cmd: Command, _: &dyn Backend, out: &mut Vec<u8>) -> Reply {
        let Command::Lsub { reference, pattern } = cmd else { return Some(bad("Internal error")) };
        let (reference, pattern) = match (self.pattern_text(&reference), self.pattern_text(&pattern)) {
            (Ok(r), Ok(p)) => (r, p),
            _ => return Some(ok("LSUB completed")),
        };
        if pattern.is_empty() {
            let root = reference.find(DELIMITER).and_then(|i| reference.get(..=i)).unwrap_or("");
            let mut buf = b"* LSUB (\\Noselect) \"/\" ".to_vec();
            self.write_mailbox(&mut buf, root);
            buf.extend_from_slice(b"\r\n");
            out.extend_from_slice(&buf);
            return Some(ok("LSUB completed"));
        }
        let full = normalize_inbox(format!("{reference}{pattern}"));
        if full.len() > MAX_PATTERN {
            return Some(bad("Pattern too long"));
        }
        let entries = match self.folders() {
            Ok(e) => e,
            Err(e) => return Some(folder_error(&self.peer.sid, &e)),
        };
        let tree = Tree::new(&entries);
        let trailing_percent = full.ends_with('%');
        for (i, e) in entries.iter().enumerate() {
            if !matches(full.as_bytes(), e.name.as_bytes()) {
                continue;
            }
            let noselect = if e.subscribed {
                !e.selectable
            } else if trailing_percent
                && tree.descendants(i).any(|d| entries.get(d).is_some_and(|c| c.subscribed))
            {
                true
            } else {
                continue;
            };
            let mut buf =
                if noselect { b"* LSUB (\\Noselect) \"/\" ".to_vec() } else { b"* LSUB () \"/\" ".to_vec() };
            self.write_mailbox(&mut buf, &e.name);
            buf.extend_from_slice(b"\r\n");
            out.extend_from_slice(&buf);
        }
        Some(ok("LSUB completed"))
    }

    /// A reference or pattern as text (same encoding as mailbox names; wildcards are ASCII).
    fn pattern_text(&self, raw: &[u8]) -> Result<String, super::Tagged> {
        if raw.is_empty() {
            return Ok(String::new());
        }
        self.mailbox_name(raw)
    }

    fn folders(&mut self) -> Result<Vec<FolderEntry>, FolderError> {
        match self.store.as_mut() {
            Some(s) => s.list(),
            None => Err(FolderError::Temp("no store".into())),
        }
    }

    /// Writes `* LIST (attributes) "/" name` (no CRLF); true when the mailbox can be selected (it
    /// may get a LIST-STATUS line).
    fn list_line(
        &self,
        buf: &mut Vec<u8>,
        e: &FolderEntry,
        has_children: bool,
        q: &Query,
        picked: bool,
    ) -> bool {
        let mut attrs: Vec<&str> = Vec::new();
        // A name with no mailbox of its own (a Maildir++ parent, a subscription left behind) is
        // \NonExistent in the extended form (RFC 5258 3: it implies \Noselect), \Noselect else.
        if !e.selectable {
            attrs.push(if q.extended { "\\NonExistent" } else { "\\Noselect" });
        }
        // RFC 3348 / RFC 5258 4: children attributes, always sent, except on a name that is only a
        // subscription (nothing there, nothing below).
        if e.selectable || has_children {
            attrs.push(if has_children { "\\HasChildren" } else { "\\HasNoChildren" });
        }
        if q.ret_subscribed && e.subscribed && picked {
            attrs.push("\\Subscribed");
        }
        // RFC 6154 2: special-use attributes (always: servers may send them unasked).
        if let Some(su) = e.special_use {
            attrs.push(su);
        }
        buf.extend_from_slice(format!("* LIST ({}) \"/\" ", attrs.join(" ")).as_bytes());
        self.write_mailbox(buf, &e.name);
        e.selectable
    }
}

impl Query {
    /// Whether the selection options pick this entry by itself.
    fn picks(&self, e: &FolderEntry) -> bool {
        (!self.subscribed || e.subscribed) && (!self.special || e.special_use.is_some())
    }
}

/// The folder names sorted, to find a folder's descendants (a contiguous run starting with `name/`).
struct Tree<'a> {
    entries: &'a [FolderEntry],
    /// Indexes into `entries`, sorted by name.
    sorted: Vec<usize>,
}

impl<'a> Tree<'a> {
    fn new(entries: &'a [FolderEntry]) -> Tree<'a> {
        let mut sorted: Vec<usize> = (0..entries.len()).collect();
        sorted.sort_by(|&a, &b| {
            let name = |i: usize| entries.get(i).map_or("", |e| e.name.as_str());
            name(a).cmp(name(b))
        });
        Tree { entries, sorted }
    }

    fn name(&self, i: usize) -> &'a str {
        self.entries.get(i).map_or("", |e| e.name.as_str())
    }

    /// Indexes (into the entries) of the folders below entry `i`.
    fn descendants(&self, i: usize) -> impl Iterator<Item = usize> + '_ {
        let prefix = format!("{}{DELIMITER}", self.name(i));
        let start = self.sorted.partition_point(|&j| self.name(j) < prefix.as_str());
        self.sorted
            .get(start..)
            .unwrap_or(&[])
            .iter()
            .copied()
            .take_while(move |&j| self.name(j).starts_with(prefix.as_str()))
    }
}

/// RFC 3501 6.3.8: `*` matches any characters, `%` any but the hierarchy delimiter; the rest matches
/// itself (INBOX's case is normalised beforehand). Dynamic programming over the name: O(pattern ×
/// name) time, O(name) memory, no recursion.
pub(super) fn matches(pattern: &[u8], name: &[u8]) -> bool {
    // reach[j]: the pattern so far matches name[..j].
    let mut reach = vec![false; name.len() + 1];
    if let Some(r) = reach.first_mut() {
        *r = true;
    }
    for &p in pattern {
        match p {
            b'*' => {
                let mut any = false;
                for r in reach.iter_mut() {
                    any |= *r;
                    *r = any;
                }
            }
            b'%' => {
                let mut prev = false;
                for (j, r) in reach.iter_mut().enumerate() {
                    let step = prev && j > 0 && name.get(j - 1).is_some_and(|&c| c != DELIMITER as u8);
                    *r = *r || step;
                    prev = *r;
                }
            }
            c => {
                let mut prev_old = false;
                for (j, r) in reach.iter_mut().enumerate() {
                    let old = *r;
                    *r = prev_old && j > 0 && name.get(j - 1) == Some(&c);
                    prev_old = old;
                }
            }
        }
        if !reach.contains(&true) {
            return false;
        }
    }
    reach.last().copied().unwrap_or(false)
}
