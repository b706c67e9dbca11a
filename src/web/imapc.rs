//! The webmail's IMAP client: a blocking [`Client`] over any byte stream (in buzon, a socketpair to
//! the user's own IMAP session, already logged in and sending no greeting), built on [`Reader`], an
//! I/O-free response reader fed bytes that yields whole responses. It follows RFC 9051 / RFC 3501
//! (7 responses, 4.3 strings and literals, 5.1.3 modified UTF-7 mailbox names, 9 grammar), RFC 7888
//! LITERAL+ (its literals need no `+`, but for text past LITERAL-'s 4096 octets), RFC 3516 literal8,
//! RFC 4315 UIDPLUS (APPENDUID, UID EXPUNGE), RFC 6851 MOVE, RFC 6154 SPECIAL-USE, RFC 5258
//! LIST-EXTENDED and RFC 4731 ESEARCH.
//!
//! Nothing the server sends can panic the reader or make it allocate past the response cap given
//! at construction; a response it does not know is [`Untagged::Other`], never an error.

use std::collections::HashMap;
use std::fmt;
use std::io::{self, Read, Write};

use crate::imap::mutf7;

/// The cap on one response, literals included, for [`Client::new`]: a FETCH of a whole message
/// must fit (the server's message size limit is 25 MiB by default).
pub const DEFAULT_MAX_RESPONSE: usize = 64 << 20;

/// The longest string sent quoted; longer ones go as literals.
const MAX_QUOTED: usize = 1000;

/// The longest string sent as a non-synchronizing literal (RFC 7888 4 LITERAL-).
const MAX_NONSYNC: usize = 4096;

/// How deep parenthesized lists may nest in a response (BODYSTRUCTURE nests with the MIME tree).
const MAX_DEPTH: usize = 100;

/// The special-use attributes a [`Mailbox`] is known by (RFC 6154 2).
const SPECIAL_USES: [&str; 5] = ["\\Sent", "\\Drafts", "\\Trash", "\\Junk", "\\Archive"];

pub type Result<T> = std::result::Result<T, Error>;

/// What went wrong, in words a web page can show ([`fmt::Display`]).
#[derive(Debug)]
pub enum Error {
    /// Reading or writing failed, the connection was closed, or a read timed out.
    Io(io::Error),
    /// The command failed: the server's text, as sent (RFC 9051 7.1.2).
    No(String),
    /// The server did not accept the command: its text (RFC 9051 7.1.3).
    Bad(String),
    /// The server ended the session: its text (RFC 9051 7.1.5).
    Bye(String),
    /// The server's answer could not be read: malformed, or larger than the cap.
    Protocol(String),
    /// An argument the client will not send (an atom that would break the command line).
    Argument(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(e) => match e.kind() {
                io::ErrorKind::UnexpectedEof => f.write_str("The mail server closed the connection"),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                    f.write_str("The mail server took too long to answer")
                }
                _ => write!(f, "Could not talk to the mail server: {e}"),
            },
            Error::No(t) if t.is_empty() => f.write_str("The mail server refused"),
            Error::No(t) => f.write_str(t),
            Error::Bad(t) => write!(f, "The mail server did not accept the request: {t}"),
            Error::Bye(t) => write!(f, "The mail server ended the session: {t}"),
            Error::Protocol(t) => write!(f, "The mail server sent an answer that could not be read: {t}"),
            Error::Argument(t) => write!(f, "The request cannot be sent: {t}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Error {
        Error::Io(e)
    }
}

/// The status of a tagged response (RFC 9051 7.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Ok,
    No,
    Bad,
}

/// One whole server response (RFC 9051 2.2.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    /// A command's completion; `code` is the response code without its brackets (RFC 9051 7.1).
    Tagged {
        tag: String,
        status: Status,
        code: Option<String>,
        text: String,
    },
    Untagged(Untagged),
    /// A command continuation request `+ text` (RFC 9051 7.5).
    Continue(String),
}

/// The untagged responses the client reads; the rest are [`Untagged::Other`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Untagged {
    Ok {
        code: Option<String>,
        text: String,
    },
    No {
        code: Option<String>,
        text: String,
    },
    Bad {
        code: Option<String>,
        text: String,
    },
    Bye {
        code: Option<String>,
        text: String,
    },
    /// RFC 9051 7.2.2, names upper-cased.
    Capability(Vec<String>),
    /// RFC 9051 7.4.1.
    Exists(u32),
    /// RFC 9051 7.5.1.
    Expunge(u32),
    /// RFC 9051 7.4.6.
    Flags(Vec<String>),
    /// RFC 9051 7.3.1; the name decoded from modified UTF-7 (RFC 3501 5.1.3), or taken as UTF-8
    /// when it is not valid modified UTF-7 (a server in UTF-8 mode, RFC 6855 3).
    List {
        flags: Vec<String>,
        delimiter: Option<char>,
        name: String,
    },
    /// RFC 9051 7.3.4, item names upper-cased.
    Status {
        name: String,
        items: Vec<(String, u64)>,
    },
    /// `* SEARCH` (RFC 3501 7.2.5), or the ALL of `* ESEARCH` (RFC 4731 3.1).
    Search(Vec<u32>),
    /// RFC 9051 7.5.2.
    Fetch {
        seq: u32,
        items: FetchData,
    },
    /// Anything else, as received (CRLF stripped).
    Other(Vec<u8>),
}

/// The data items of a FETCH response the client reads (RFC 9051 7.5.2).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FetchData {
    pub uid: Option<u32>,
    pub flags: Option<Vec<String>>,
    pub size: Option<u64>,
    pub internaldate: Option<String>,
    /// Body sections (BODY[...], BINARY[...], RFC822*) by [`section_key`], e.g. `BODY[]` or
    /// `BODY[HEADER.FIELDS (FROM SUBJECT)]`; NIL is empty.
    pub sections: Vec<(String, Vec<u8>)>,
}

impl FetchData {
    /// The section a request named (`BODY.PEEK[HEADER]` finds `BODY[HEADER]`).
    pub fn section(&self, name: &str) -> Option<&[u8]> {
        let key = section_key(name.as_bytes());
        self.sections.iter().find(|(k, _)| *k == key).map(|(_, v)| v.as_slice())
    }

    /// Adds what a later response for the same message says.
    fn merge(&mut self, more: FetchData) {
        self.uid = self.uid.or(more.uid);
        self.flags = more.flags.or(self.flags.take());
        self.size = more.size.or(self.size);
        self.internaldate = more.internaldate.or(self.internaldate.take());
        for (k, v) in more.sections {
            self.sections.retain(|(old, _)| *old != k);
            self.sections.push((k, v));
        }
    }
}

/// A command argument.
#[derive(Clone, Copy, Debug)]
pub enum Arg<'a> {
    /// Sent as it is (a keyword, a set, a parenthesized item list); refused when it holds a
    /// control character, 8-bit byte, or ends in `}` (it would read as a literal).
    Atom(&'a str),
    /// A string: quoted when short 7-bit text without CR or LF, else a LITERAL+ literal (RFC 9051
    /// 4.3, RFC 7888), past 4096 octets a synchronizing one; so no text can break the command.
    /// Text with NUL is refused (no IMAP string holds it).
    Str(&'a str),
    /// A mailbox name in UTF-8, sent in modified UTF-7 (RFC 3501 5.1.3) as a string.
    Mailbox(&'a str),
    /// Always a LITERAL+ literal (an APPEND's message); a literal8 when it holds NUL (RFC 3516 4.4).
    Bytes(&'a [u8]),
}

/// A mailbox from LIST.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mailbox {
    pub name: String,
    pub delimiter: Option<char>,
    pub flags: Vec<String>,
    /// `\Sent`, `\Drafts`, `\Trash`, `\Junk` or `\Archive` when the flags have it (RFC 6154 2).
    pub special: Option<String>,
}

/// STATUS figures (RFC 9051 6.3.11); an item the server left out is 0.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MailboxStatus {
    pub messages: u32,
    pub unseen: u32,
    pub uidnext: u32,
    pub uidvalidity: u32,
}

/// What SELECT or EXAMINE said (RFC 9051 6.3.2); an item the server left out is 0.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Selected {
    pub exists: u32,
    pub uidvalidity: u32,
    pub uidnext: u32,
}

/// A command's responses so far.
struct Collected {
    tag: String,
    logout: bool,
    untagged: Vec<Untagged>,
    bye: bool,
}

/// A completed command: its untagged responses and the tagged OK's response code.
struct Done {
    untagged: Vec<Untagged>,
    code: Option<String>,
}

/// A blocking IMAP client, one command at a time, tagged `a1`, `a2`, ... A read timeout is set by
/// the caller on the stream; a timeout, EOF, I/O error, unreadable response or BYE ends the
/// client (later commands fail with [`Error::Io`] without writing).
pub struct Client<S> {
    stream: S,
    reader: Reader,
    tags: u64,
    caps: Option<Vec<String>>,
    closed: bool,
}

impl<S: Read + Write> Client<S> {
    /// A client over a logged-in connection whose greeting, if any, was read.
    pub fn new(stream: S) -> Client<S> {
        Client::with_max_response(stream, DEFAULT_MAX_RESPONSE)
    }

    /// A client refusing any single response larger than `max_response` octets.
    pub fn with_max_response(stream: S, max_response: usize) -> Client<S> {
        Client { stream, reader: Reader::new(max_response), tags: 0, caps: None, closed: false }
    }

    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    pub fn get_mut(&mut self) -> &mut S {
        &mut self.stream
    }

    pub fn into_inner(self) -> S {
        self.stream
    }

    /// Sends one command (the tag is added) and returns its untagged responses once the tagged
    /// OK has come; NO, BAD and BYE are errors.
    pub fn command(&mut self, parts: &[Arg]) -> Result<Vec<Untagged>> {
        self.run(parts, false).map(|d| d.untagged)
    }

    /// The server's capabilities, upper-cased (asked once, RFC 9051 6.1.1; kept up to date from
    /// CAPABILITY responses and codes).
    pub fn capabilities(&mut self) -> Result<Vec<String>> {
        if self.caps.is_none() {
            self.run(&[Arg::Atom("CAPABILITY")], false)?;
        }
        Ok(self.caps.clone().unwrap_or_default())
    }

    pub fn has_capability(&mut self, name: &str) -> Result<bool> {
        Ok(self.capabilities()?.iter().any(|c| c.eq_ignore_ascii_case(name)))
    }

    /// Every mailbox: `LIST "" "*"`, with `RETURN (SPECIAL-USE)` when offered (RFC 6154 5.1,
    /// RFC 5258 3.2); a plain LIST may carry the attributes too (RFC 6154 2).
    pub fn list(&mut self) -> Result<Vec<Mailbox>> {
        let mut args = vec![Arg::Atom("LIST"), Arg::Str(""), Arg::Str("*")];
        if self.has_capability("SPECIAL-USE")? && self.has_capability("LIST-EXTENDED")? {
            args.extend([Arg::Atom("RETURN"), Arg::Atom("(SPECIAL-USE)")]);
        }
        let done = self.run(&args, false)?;
        Ok(done
            .untagged
            .into_iter()
            .filter_map(|u| match u {
                Untagged::List { flags, delimiter, name } => {
                    let special = flags
                        .iter()
                        .find_map(|f| SPECIAL_USES.iter().find(|s| s.eq_ignore_ascii_case(f)))
                        .map(|s| s.to_string());
                    Some(Mailbox { name, delimiter, flags, special })
                }
                _ => None,
            })
            .collect())
    }

    /// RFC 9051 6.3.11: MESSAGES UNSEEN UIDNEXT UIDVALIDITY.
    pub fn status(&mut self, mailbox: &str) -> Result<MailboxStatus> {
        let items = Arg::Atom("(MESSAGES UNSEEN UIDNEXT UIDVALIDITY)");
        let done = self.run(&[Arg::Atom("STATUS"), Arg::Mailbox(mailbox), items], false)?;
        let mut found = None;
        for u in done.untagged {
            if let Untagged::Status { name, items } = u {
                let exact = name == mailbox;
                if exact || found.is_none() {
                    found = Some(items);
                }
                if exact {
                    break;
                }
            }
        }
        let items = found.ok_or_else(|| Error::Protocol("no STATUS response".into()))?;
        let get = |k: &str| {
            items.iter().find(|(n, _)| n == k).map_or(0, |&(_, v)| u32::try_from(v).unwrap_or(u32::MAX))
        };
        Ok(MailboxStatus {
            messages: get("MESSAGES"),
            unseen: get("UNSEEN"),
            uidnext: get("UIDNEXT"),
            uidvalidity: get("UIDVALIDITY"),
        })
    }

    /// SELECT, or EXAMINE when `read_only` (RFC 9051 6.3.2-3).
    pub fn select(&mut self, mailbox: &str, read_only: bool) -> Result<Selected> {
        let verb = if read_only { "EXAMINE" } else { "SELECT" };
        let done = self.run(&[Arg::Atom(verb), Arg::Mailbox(mailbox)], false)?;
        let mut s = Selected::default();
        for u in done.untagged {
            match u {
                Untagged::Exists(n) => s.exists = n,
                Untagged::Ok { code: Some(code), .. } => {
                    let (name, value) = code.split_once(' ').unwrap_or((&code, ""));
                    let value = value.trim().parse().unwrap_or(0);
                    match name.to_ascii_uppercase().as_str() {
                        "UIDVALIDITY" => s.uidvalidity = value,
                        "UIDNEXT" => s.uidnext = value,
                        _ => {}
                    }
                }
                _ => {}
            }
        }
        Ok(s)
    }

    /// UID SEARCH (RFC 9051 6.4.4): the UIDs, ascending. `CHARSET UTF-8` when a string is not
    /// ASCII; `RETURN (ALL)` when ESEARCH is offered (RFC 4731), for a compact answer.
    pub fn uid_search(&mut self, criteria: &[Arg]) -> Result<Vec<u32>> {
        let utf8 = criteria.iter().any(|a| match a {
            Arg::Str(s) => !s.is_ascii(),
            Arg::Bytes(b) => !b.is_ascii(),
            _ => false,
        });
        let mut args = vec![Arg::Atom("UID"), Arg::Atom("SEARCH")];
        if self.has_capability("ESEARCH")? {
            args.extend([Arg::Atom("RETURN"), Arg::Atom("(ALL)")]);
        }
        if utf8 {
            args.extend([Arg::Atom("CHARSET"), Arg::Atom("UTF-8")]);
        }
        args.extend_from_slice(criteria);
        let done = self.run(&args, false)?;
        let mut uids: Vec<u32> = done
            .untagged
            .into_iter()
            .flat_map(|u| match u {
                Untagged::Search(v) => v,
                _ => Vec::new(),
            })
            .collect();
        uids.sort_unstable();
        uids.dedup();
        Ok(uids)
    }

    /// UID FETCH (RFC 9051 6.4.9) of `items` (e.g. `(UID FLAGS BODY.PEEK[])`) for the UID set
    /// `uids`: one [`FetchData`] per message that came with a UID, by UID ascending, its responses
    /// merged (unsolicited flag updates without a UID are left out).
    pub fn uid_fetch(&mut self, uids: &str, items: &str) -> Result<Vec<FetchData>> {
        check_set(uids)?;
        let done =
            self.run(&[Arg::Atom("UID"), Arg::Atom("FETCH"), Arg::Atom(uids), Arg::Atom(items)], false)?;
        let mut out: Vec<FetchData> = Vec::new();
        let mut at: HashMap<u32, usize> = HashMap::new();
        for u in done.untagged {
            let Untagged::Fetch { items, .. } = u else { continue };
            let Some(uid) = items.uid else { continue };
            match at.get(&uid).and_then(|&i| out.get_mut(i)) {
                Some(d) => d.merge(items),
                None => {
                    at.insert(uid, out.len());
                    out.push(items);
                }
            }
        }
        out.sort_by_key(|d| d.uid);
        Ok(out)
    }

    /// UID STORE (RFC 9051 6.4.6): `op` is `FLAGS`, `+FLAGS`, `-FLAGS`, with `.SILENT` or not.
    pub fn uid_store(&mut self, uids: &str, op: &str, flags: &[&str]) -> Result<()> {
        check_set(uids)?;
        let list = flag_list(flags)?;
        self.run(
            &[Arg::Atom("UID"), Arg::Atom("STORE"), Arg::Atom(uids), Arg::Atom(op), Arg::Atom(&list)],
            false,
        )?;
        Ok(())
    }

    /// UID MOVE (RFC 6851 3.2); without MOVE, UID COPY, `\Deleted` and UID EXPUNGE (RFC 4315 2.1).
    pub fn uid_move(&mut self, uids: &str, to: &str) -> Result<()> {
        check_set(uids)?;
        if self.has_capability("MOVE")? {
            self.run(&[Arg::Atom("UID"), Arg::Atom("MOVE"), Arg::Atom(uids), Arg::Mailbox(to)], false)?;
            return Ok(());
        }
        self.uid_copy(uids, to)?;
        self.uid_store(uids, "+FLAGS.SILENT", &["\\Deleted"])?;
        self.uid_expunge(uids)
    }

    /// UID COPY (RFC 9051 6.4.7).
    pub fn uid_copy(&mut self, uids: &str, to: &str) -> Result<()> {
        check_set(uids)?;
        self.run(&[Arg::Atom("UID"), Arg::Atom("COPY"), Arg::Atom(uids), Arg::Mailbox(to)], false)?;
        Ok(())
    }

    /// UID EXPUNGE (RFC 4315 2.1, RFC 9051 6.4.9): only these messages, if `\Deleted`.
    pub fn uid_expunge(&mut self, uids: &str) -> Result<()> {
        check_set(uids)?;
        self.run(&[Arg::Atom("UID"), Arg::Atom("EXPUNGE"), Arg::Atom(uids)], false)?;
        Ok(())
    }

    /// APPEND (RFC 9051 6.3.12) with a LITERAL+ literal: the new message's UID when the server
    /// gives APPENDUID (RFC 4315 3).
    pub fn append(&mut self, mailbox: &str, flags: &[&str], message: &[u8]) -> Result<Option<u32>> {
        let list = flag_list(flags)?;
        let mut args = vec![Arg::Atom("APPEND"), Arg::Mailbox(mailbox)];
        if !flags.is_empty() {
            args.push(Arg::Atom(&list));
        }
        args.push(Arg::Bytes(message));
        let done = self.run(&args, false)?;
        // RFC 4315 3: resp-code-apnd = "APPENDUID" SP nz-number SP append-uid.
        let uid = done.code.as_deref().and_then(|c| {
            let mut w = c.split_ascii_whitespace();
            let _ = w.next().filter(|n| n.eq_ignore_ascii_case("APPENDUID"))?;
            let _ = w.next()?;
            w.next()?.parse::<u32>().ok()
        });
        Ok(uid)
    }

    /// CREATE (RFC 9051 6.3.4).
    pub fn create(&mut self, mailbox: &str) -> Result<()> {
        self.run(&[Arg::Atom("CREATE"), Arg::Mailbox(mailbox)], false)?;
        Ok(())
    }

    /// NOOP (RFC 9051 6.1.2): the updates it brings (EXISTS, EXPUNGE, FETCH FLAGS).
    pub fn noop(&mut self) -> Result<Vec<Untagged>> {
        self.command(&[Arg::Atom("NOOP")])
    }

    /// LOGOUT (RFC 9051 6.1.3): BYE, then the tagged OK; the server closing after BYE is fine.
    pub fn logout(&mut self) -> Result<()> {
        self.run(&[Arg::Atom("LOGOUT")], true).map(|_| ())
    }

    /// Sends a command and reads up to its tagged response. A command with synchronizing
    /// literals goes in pieces, each after the server's `+` (RFC 9051 7.5); a completion instead
    /// of the `+` ends the command there.
    fn run(&mut self, parts: &[Arg], logout: bool) -> Result<Done> {
        if self.closed {
            return Err(Error::Io(io::Error::new(
                io::ErrorKind::NotConnected,
                "the IMAP connection is closed",
            )));
        }
        self.tags += 1;
        let tag = format!("a{}", self.tags);
        let mut pieces = vec![tag.clone().into_bytes()];
        for p in parts {
            if let Some(last) = pieces.last_mut() {
                last.push(b' ');
            }
            encode_arg(&mut pieces, p)?;
        }
        if let Some(last) = pieces.last_mut() {
            last.extend_from_slice(b"\r\n");
        }
        let mut got = Collected { tag, logout, untagged: Vec::new(), bye: false };
        let count = pieces.len();
        for (i, piece) in pieces.iter().enumerate() {
            if let Err(e) = self.stream.write_all(piece).and_then(|()| self.stream.flush()) {
                self.closed = true;
                return Err(Error::Io(e));
            }
            if let Some(done) = self.collect(&mut got, i + 1 < count)? {
                return Ok(done);
            }
        }
        Err(Error::Protocol("the command was not completed".into()))
    }

    /// Reads responses until the command's completion, or (`until_continue`) a continuation
    /// request, which gives `Ok(None)`.
    fn collect(&mut self, got: &mut Collected, until_continue: bool) -> Result<Option<Done>> {
        loop {
            let r = match self.read_response() {
                Ok(r) => r,
                Err(_) if got.bye && got.logout => {
                    return Ok(Some(Done { untagged: std::mem::take(&mut got.untagged), code: None }));
                }
                Err(e) => {
                    self.closed = true;
                    return Err(e);
                }
            };
            match r {
                Response::Tagged { tag, status, code, text } if tag == got.tag => {
                    self.closed |= got.logout;
                    return match status {
                        Status::Ok => {
                            self.note_caps(code.as_deref());
                            Ok(Some(Done { untagged: std::mem::take(&mut got.untagged), code }))
                        }
                        Status::No => Err(Error::No(text)),
                        Status::Bad => Err(Error::Bad(text)),
                    };
                }
                // Another command's completion cannot come (one command at a time).
                Response::Tagged { .. } => {}
                Response::Continue(_) if until_continue => return Ok(None),
                // RFC 7888 4: a LITERAL+ literal needs no `+`; one that comes anyway asks nothing.
                Response::Continue(_) => {}
                Response::Untagged(Untagged::Bye { text, .. }) => {
                    self.closed = true;
                    if !got.logout {
                        return Err(Error::Bye(text));
                    }
                    got.bye = true;
                }
                Response::Untagged(u) => {
                    match &u {
                        Untagged::Capability(c) => self.caps = Some(c.clone()),
                        Untagged::Ok { code, .. } => self.note_caps(code.as_deref()),
                        _ => {}
                    }
                    got.untagged.push(u);
                }
            }
        }
    }

    /// RFC 9051 7.1: a `[CAPABILITY ...]` response code updates what is known.
    fn note_caps(&mut self, code: Option<&str>) {
        let Some(code) = code else { return };
        let mut w = code.split_ascii_whitespace();
        if w.next().is_some_and(|n| n.eq_ignore_ascii_case("CAPABILITY")) {
            self.caps = Some(w.map(str::to_ascii_uppercase).collect());
        }
    }

    fn read_response(&mut self) -> Result<Response> {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            if let Some(r) = self.reader.next()? {
                return Ok(r);
            }
            let n = loop {
                match self.stream.read(&mut chunk) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(Error::Io(e)),
                }
            };
            if n == 0 {
                return Err(Error::Io(io::ErrorKind::UnexpectedEof.into()));
            }
            self.reader.feed(chunk.get(..n).unwrap_or(&[]));
        }
    }
}

/// Appends one argument to the last piece of a command (RFC 9051 4.3 strings); a synchronizing
/// literal ends a piece, its octets start the next.
fn encode_arg(pieces: &mut Vec<Vec<u8>>, arg: &Arg) -> Result<()> {
    let mut next = None;
    let Some(out) = pieces.last_mut() else { return Ok(()) };
    match *arg {
        Arg::Atom(a) => {
            if a.is_empty() || a.ends_with('}') || a.bytes().any(|b| !(0x20..0x7f).contains(&b)) {
                return Err(Error::Argument(format!("{a:?} is not an atom")));
            }
            out.extend_from_slice(a.as_bytes());
        }
        Arg::Str(s) => next = string(out, s.as_bytes())?,
        Arg::Mailbox(m) => next = string(out, mutf7::encode(m).as_bytes())?,
        // RFC 3516 4.4: a message with NUL can only go as a literal8.
        Arg::Bytes(b) => {
            let eight = if b.contains(&0) { "~" } else { "" };
            out.extend_from_slice(format!("{eight}{{{}+}}\r\n", b.len()).as_bytes());
            out.extend_from_slice(b);
        }
    }
    pieces.extend(next);
    Ok(())
}

/// RFC 9051 4.3: quoted when short 7-bit text without CR or LF (`"` and `\` escaped), else a
/// LITERAL+ literal (RFC 7888 3), or a synchronizing one past LITERAL-'s 4096 octets (RFC 7888 4),
/// which a server may refuse without ending the session; then the octets are returned, to go after
/// the `+`. No string form holds NUL (RFC 9051 9 CHAR8).
fn string(out: &mut Vec<u8>, s: &[u8]) -> Result<Option<Vec<u8>>> {
    if s.contains(&0) {
        return Err(Error::Argument("text with a NUL character".into()));
    }
    if s.len() > MAX_NONSYNC {
        out.extend_from_slice(format!("{{{}}}\r\n", s.len()).as_bytes());
        return Ok(Some(s.to_vec()));
    }
    if s.len() > MAX_QUOTED || s.iter().any(|&b| b == b'\r' || b == b'\n' || b >= 0x80) {
        out.extend_from_slice(format!("{{{}+}}\r\n", s.len()).as_bytes());
        out.extend_from_slice(s);
        return Ok(None);
    }
    crate::imap::encode::quoted(out, s);
    Ok(None)
}

/// A UID set as sent: digits, `:`, `,`, `*` (RFC 9051 9 sequence-set) or `$` (RFC 5182).
fn check_set(set: &str) -> Result<()> {
    if set.is_empty() || !set.bytes().all(|b| b.is_ascii_digit() || matches!(b, b':' | b',' | b'*' | b'$')) {
        return Err(Error::Argument(format!("{set:?} is not a UID set")));
    }
    Ok(())
}

/// `(flag ...)` with each flag checked (RFC 9051 9 flag: `\` atom, or a keyword atom).
fn flag_list(flags: &[&str]) -> Result<String> {
    for f in flags {
        let word = f.strip_prefix('\\').unwrap_or(f);
        let atom_char = |b: u8| {
            b > b' ' && b < 0x7f && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']')
        };
        if word.is_empty() || !word.bytes().all(atom_char) {
            return Err(Error::Argument(format!("{f:?} is not a flag")));
        }
    }
    Ok(format!("({})", flags.join(" ")))
}

mod reader;
pub use reader::{Reader, section_key};

#[cfg(test)]
mod tests;
