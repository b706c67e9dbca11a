//! IMAP command codec: one complete command (CRLF stripped, literals inline) to a tag and a
//! [`Command`], and the [`Assembler`] that gathers a command's lines and literals. RFC 3501 6 and 9,
//! RFC 9051 6 and 9, and the extensions buzon announces: RFC 2177 IDLE, RFC 2342 NAMESPACE,
//! RFC 2971 ID, RFC 3516 BINARY, RFC 3691 UNSELECT, RFC 4315 UID EXPUNGE, RFC 4466 select params,
//! RFC 4731 ESEARCH, RFC 4959 SASL-IR, RFC 5161 ENABLE, RFC 5182 SEARCHRES, RFC 5258 LIST-EXTENDED,
//! RFC 5819 LIST-STATUS, RFC 6154 SPECIAL-USE, RFC 6851 MOVE, RFC 7888 LITERAL+, RFC 8438 STATUS SIZE;
//! RFC 5256 SORT and THREAD, RFC 5267 ESORT, RFC 5957 SORT=DISPLAY (command/sort.rs).
//! Whether a command is allowed in the current state is the session's business, not the parser's.

mod assemble;
mod fetch;
mod lexer;
mod search;
mod sort;
#[cfg(test)]
mod tests;

use std::ops::Range;

pub use assemble::{Assembler, Step, zero_literal};
use lexer::{MAX_ITEMS, PResult, Parser, is_astring_char, show};

use crate::imap::types::{Command, ListArgs, ListReturn, ListSelect, Qresync, StatusItem};

/// Why a command was refused: the server answers `tag BAD message`, or `* BAD message` when no
/// valid tag could be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    pub tag: Option<String>,
    pub message: String,
}

/// RFC 3501 9: tag = 1*<any ASTRING-CHAR except "+">.
fn is_tag_char(b: u8) -> bool {
    is_astring_char(b) && b != b'+'
}

/// The tag at the start of a command, if it is a valid one followed by a space or the end.
pub fn tag_of(buf: &[u8]) -> Option<String> {
    let n = buf.iter().take_while(|&&b| is_tag_char(b)).count();
    match buf.get(n) {
        _ if n == 0 => None,
        None | Some(b' ') => Some(String::from_utf8_lossy(buf.get(..n)?).into_owned()),
        Some(_) => None,
    }
}

/// Parses one command: `buf` is the command as on the wire without its final CRLF, literals inline
/// (`A1 LOGIN {5}\r\nalice {6+}\r\nsecret`), as [`Step::Complete`] gives it.
pub fn parse(buf: &[u8]) -> Result<(String, Command), ParseError> {
    parse_inner(buf, true).map(|(tag, cmd, _)| (tag, cmd))
}

/// Like [`parse`], but takes the buffer so that an APPEND's message is moved out of it instead of
/// copied (one message in memory, not two).
pub fn parse_owned(mut buf: Vec<u8>) -> Result<(String, Command), ParseError> {
    let (tag, mut cmd, range) = parse_inner(&buf, false)?;
    if let (Command::Append { message, .. }, Some(r)) = (&mut cmd, range) {
        buf.truncate(r.end);
        buf.drain(..r.start);
        *message = buf;
    }
    Ok((tag, cmd))
}

/// Parses the start of an APPEND whose message literal comes next (`head` ends with its `{n}`
/// and CRLF, as [`Assembler::head`] gives it): the command as if the message were empty.
pub fn append_head(head: &[u8]) -> Result<(String, Command), ParseError> {
    let mut buf = zero_literal(head);
    match parse(&buf) {
        Ok((tag, cmd @ Command::Append { .. })) => Ok((tag, cmd)),
        Ok((tag, _)) => Err(ParseError { tag: Some(tag), message: "not an APPEND".into() }),
        Err(e) => {
            // RFC 6855 4: the UTF8 form closes its parenthesis after the literal.
            buf.push(b')');
            match parse(&buf) {
                Ok((tag, cmd @ Command::Append { .. })) => Ok((tag, cmd)),
                _ => Err(e),
            }
        }
    }
}

/// Parses; with `copy` false an APPEND's message is left empty and its place in `buf` returned.
fn parse_inner(buf: &[u8], copy: bool) -> Result<(String, Command, Option<Range<usize>>), ParseError> {
    let Some(tag) = tag_of(buf) else {
        return Err(ParseError { tag: None, message: "missing or bad tag".into() });
    };
    let mut p = Parser::new(buf);
    p.take_while(is_tag_char);
    let mut append_at = None;
    let r = p.sp("command").and_then(|()| command(&mut p, copy, &mut append_at)).and_then(|c| {
        p.end()?;
        Ok(c)
    });
    match r {
        Ok(cmd) => Ok((tag, cmd, append_at)),
        Err(message) => Err(ParseError { tag: Some(tag), message }),
    }
}

/// The command name and its arguments.
fn command(p: &mut Parser, copy: bool, append_at: &mut Option<Range<usize>>) -> PResult<Command> {
    let name = p.keyword("command")?;
    let no_args = |p: &Parser, c: Command| {
        if p.at_end() { Ok(c) } else { Err(format!("{name} takes no arguments")) }
    };
    Ok(match name.as_str() {
        "CAPABILITY" => no_args(p, Command::Capability)?,
        "NOOP" => no_args(p, Command::Noop)?,
        "LOGOUT" => no_args(p, Command::Logout)?,
        "STARTTLS" => no_args(p, Command::StartTls)?,
        "NAMESPACE" => no_args(p, Command::Namespace)?,
        "CHECK" => no_args(p, Command::Check)?,
        "CLOSE" => no_args(p, Command::Close)?,
        "UNSELECT" => no_args(p, Command::Unselect)?,
        "EXPUNGE" => no_args(p, Command::Expunge)?,
        "IDLE" => no_args(p, Command::Idle)?,
        "AUTHENTICATE" => authenticate(p)?,
        // RFC 4978 5: compress = "COMPRESS" SP algorithm; algorithm = "DEFLATE" (other names are
        // the session's to refuse with a tagged BAD).
        "COMPRESS" => {
            p.sp("compression algorithm")?;
            Command::Compress(p.keyword("compression algorithm")?)
        }
        "LOGIN" => {
            p.sp("user name")?;
            let user = p.astring("user name")?;
            p.sp("password")?;
            Command::Login { user, password: p.astring("password")? }
        }
        "ENABLE" => {
            // RFC 5161 3.1: "ENABLE" 1*(SP capability); capability names are atoms.
            let mut caps = Vec::new();
            p.sp("capability")?;
            loop {
                if caps.len() >= MAX_ITEMS {
                    return Err(format!("more than {MAX_ITEMS} capabilities"));
                }
                caps.push(p.keyword("capability")?);
                if !p.more() {
                    break Command::Enable(caps);
                }
            }
        }
        "SELECT" | "EXAMINE" => {
            let mailbox = mailbox(p)?;
            // RFC 4466 2.1: select-params = SP "(" select-param *(SP select-param) ")"; buzon
            // knows CONDSTORE (RFC 7162 3.1.8).
            let mut condstore = false;
            let mut qresync = None;
            if p.more() {
                p.expect(b'(', "SELECT parameters")?;
                let mut first = true;
                while !p.eat(b')') {
                    if !first {
                        p.sp("SELECT parameter")?;
                    }
                    first = false;
                    match p.keyword("SELECT parameter")?.as_str() {
                        "CONDSTORE" => condstore = true,
                        "QRESYNC" => qresync = Some(qresync_param(p)?),
                        param => return Err(format!("unknown {name} parameter {}", show(param.as_bytes()))),
                    }
                }
            }
            Command::Select { mailbox, readonly: name == "EXAMINE", condstore, qresync }
        }
        "CREATE" => Command::Create(mailbox(p)?),
        "DELETE" => Command::Delete(mailbox(p)?),
        "SUBSCRIBE" => Command::Subscribe(mailbox(p)?),
        "UNSUBSCRIBE" => Command::Unsubscribe(mailbox(p)?),
        "RENAME" => {
            let from = mailbox(p)?;
            Command::Rename { from, to: mailbox(p)? }
        }
        "LIST" => Command::List(list(p)?),
        "LSUB" => {
            p.sp("reference")?;
            let reference = p.astring("reference")?;
            p.sp("mailbox pattern")?;
            Command::Lsub { reference, pattern: p.list_mailbox("mailbox pattern")? }
        }
        "STATUS" => {
            let mailbox = mailbox(p)?;
            p.sp("status items")?;
            Command::Status { mailbox, items: status_items(p)? }
        }
        "APPEND" => append(p, copy, append_at)?,
        "ID" => id(p)?,
        "FETCH" | "STORE" | "COPY" | "MOVE" | "SEARCH" => with_set(p, &name, false)?,
        "SORT" => sort::sort(p, false)?,
        "THREAD" => sort::thread(p, false)?,
        "UID" => {
            p.sp("UID command")?;
            let sub = p.keyword("UID command")?;
            match sub.as_str() {
                "FETCH" | "STORE" | "COPY" | "MOVE" | "SEARCH" => with_set(p, &sub, true)?,
                "SORT" => sort::sort(p, true)?,
                "THREAD" => sort::thread(p, true)?,
                // RFC 4315 2.1: "UID EXPUNGE" SP sequence-set.
                "EXPUNGE" => {
                    p.sp("sequence set")?;
                    Command::UidExpunge(p.seq_set()?)
                }
                _ => return Err(format!("unknown command UID {}", show(sub.as_bytes()))),
            }
        }
        _ => return Err(format!("unknown command {}", show(name.as_bytes()))),
    })
}

/// SP mailbox (RFC 3501 9: mailbox = "INBOX" / astring, kept as sent).
fn mailbox(p: &mut Parser) -> PResult<Vec<u8>> {
    p.sp("mailbox name")?;
    p.astring("mailbox name")
}

/// FETCH, STORE, COPY, MOVE and SEARCH, with or without the UID prefix (RFC 3501 6.4.8).
fn with_set(p: &mut Parser, name: &str, uid: bool) -> PResult<Command> {
    if name == "SEARCH" {
        return search::search(p, uid);
    }
    p.sp("sequence set")?;
    let set = p.seq_set()?;
    Ok(match name {
        "FETCH" => {
            p.sp("fetch items")?;
            let items = fetch::fetch_items(p)?;
            // RFC 4466 2.4 / RFC 7162 3.1.4.1, 3.2.6: SP "(" fetch-modifier *(SP fetch-modifier) ")",
            // CHANGEDSINCE mod-sequence-value and VANISHED.
            let (mut changed_since, mut vanished) = (None, false);
            if p.more() {
                p.expect(b'(', "FETCH modifiers")?;
                let mut first = true;
                while !p.eat(b')') {
                    if !first {
                        p.sp("FETCH modifier")?;
                    }
                    first = false;
                    match p.keyword("FETCH modifier")?.as_str() {
                        "CHANGEDSINCE" if changed_since.is_none() => {
                            p.sp("mod-sequence")?;
                            changed_since = Some(mod_sequence(p, "CHANGEDSINCE")?);
                        }
                        "VANISHED" if !vanished => vanished = true,
                        m => {
                            return Err(format!("unknown or repeated FETCH modifier {}", show(m.as_bytes())));
                        }
                    }
                }
            }
            if vanished && changed_since.is_none() {
                return Err("VANISHED needs CHANGEDSINCE".into());
            }
            Command::Fetch { uid, set, items, changed_since, vanished }
        }
        "STORE" => {
            // RFC 7162 3.1.3: "(" "UNCHANGEDSINCE" SP mod-sequence-valzer ")" before the item.
            p.sp("store item")?;
            let mut unchanged_since = None;
            if p.peek() == Some(b'(') {
                p.eat(b'(');
                p.p_keyword_is("UNCHANGEDSINCE")?;
                p.sp("mod-sequence")?;
                // RFC 7162 3.1.3: mod-sequence-valzer, 0 allowed.
                unchanged_since = Some(p.number64("UNCHANGEDSINCE mod-sequence")?);
                p.expect(b')', "STORE modifier")?;
                p.sp("store item")?;
            }
            let (op, silent, flags) = fetch::store_args(p)?;
            Command::Store { uid, set, op, silent, flags, unchanged_since }
        }
        "MOVE" => Command::Move { uid, set, mailbox: mailbox(p)? },
        _ => Command::Copy { uid, set, mailbox: mailbox(p)? },
    })
}

/// RFC 7162 7: mod-sequence-value = 1*DIGIT, 1..2^63-1.
fn mod_sequence(p: &mut Parser, what: &str) -> PResult<u64> {
    let n = p.number64(&format!("{what} mod-sequence"))?;
    if n == 0 || n > i64::MAX as u64 {
        return Err(format!("{what} mod-sequence out of range"));
    }
    Ok(n)
}

/// RFC 7162 3.2.5: SP "(" uidvalidity SP mod-sequence-value [SP known-uids]
/// [SP seq-match-data] ")", seq-match-data = "(" known-sequence-set SP known-uid-set ")".
fn qresync_param(p: &mut Parser) -> PResult<Qresync> {
    p.sp("QRESYNC parameters")?;
    p.expect(b'(', "QRESYNC parameters")?;
    let uidvalidity = p.nz_number("QRESYNC uidvalidity")?;
    p.sp("QRESYNC mod-sequence")?;
    let modseq = mod_sequence(p, "QRESYNC")?;
    let mut known_uids = None;
    if p.more() {
        if p.peek() != Some(b'(') {
            known_uids = Some(p.seq_set()?);
            if !p.more() {
                p.expect(b')', "QRESYNC parameters")?;
                return Ok(Qresync { uidvalidity, modseq, known_uids });
            }
        }
        // The sequence match data: read, not needed.
        p.expect(b'(', "QRESYNC sequence match data")?;
        p.seq_set()?;
        p.sp("QRESYNC known UIDs")?;
        p.seq_set()?;
        p.expect(b')', "QRESYNC sequence match data")?;
    }
    p.expect(b')', "QRESYNC parameters")?;
    Ok(Qresync { uidvalidity, modseq, known_uids })
}

/// RFC 3501 6.2.2 / RFC 4959 3: "AUTHENTICATE" SP auth-type [SP (base64 / "=")].
fn authenticate(p: &mut Parser) -> PResult<Command> {
    p.sp("SASL mechanism")?;
    let mechanism = p.keyword("SASL mechanism")?;
    let mut initial = None;
    if p.more() {
        let b = p.take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='));
        // RFC 4648 4: padding only at the end, at most two; "=" alone is the empty response.
        let data = b.strip_suffix(b"==").or_else(|| b.strip_suffix(b"=")).unwrap_or(b);
        if b.is_empty() || data.contains(&b'=') || (b != b"=" && !b.len().is_multiple_of(4)) {
            return Err("bad initial response (base64 expected)".into());
        }
        initial = Some(b.to_vec());
    }
    Ok(Command::Authenticate { mechanism, initial })
}

/// RFC 3501 6.3.10 status-att list: "(" status-att *(SP status-att) ")".
fn status_items(p: &mut Parser) -> PResult<Vec<StatusItem>> {
    p.expect(b'(', "status items")?;
    let mut items = Vec::new();
    loop {
        if items.len() >= MAX_ITEMS {
            return Err(format!("more than {MAX_ITEMS} status items"));
        }
        items.push(match p.keyword("status item")?.as_str() {
            "MESSAGES" => StatusItem::Messages,
            "RECENT" => StatusItem::Recent,
            "UIDNEXT" => StatusItem::UidNext,
            "UIDVALIDITY" => StatusItem::UidValidity,
            "UNSEEN" => StatusItem::Unseen,
            "SIZE" => StatusItem::Size,
            "DELETED" => StatusItem::Deleted,
            "HIGHESTMODSEQ" => StatusItem::HighestModSeq,
            other => return Err(format!("unknown status item {}", show(other.as_bytes()))),
        });
        if p.eat(b')') {
            return Ok(items);
        }
        p.sp("status item")?;
    }
}

/// RFC 3501 6.3.8 and RFC 5258 3: "LIST" [SP list-select-opts] SP mailbox SP mbox-or-pat
/// [SP list-return-opts].
fn list(p: &mut Parser) -> PResult<ListArgs> {
    p.sp("reference")?;
    let mut select = Vec::new();
    if p.eat(b'(') {
        if !p.eat(b')') {
            loop {
                if select.len() >= MAX_ITEMS {
                    return Err("too many LIST selection options".into());
                }
                select.push(match p.keyword("LIST selection option")?.as_str() {
                    "SUBSCRIBED" => ListSelect::Subscribed,
                    "REMOTE" => ListSelect::RemoteSubscribed,
                    "RECURSIVEMATCH" => ListSelect::RecursiveMatch,
                    "SPECIAL-USE" => ListSelect::SpecialUse,
                    o => return Err(format!("unknown LIST selection option {}", show(o.as_bytes()))),
                });
                if p.eat(b')') {
                    break;
                }
                p.sp("LIST selection option")?;
            }
        }
        // RFC 5258 3.1: RECURSIVEMATCH needs a base option (SUBSCRIBED, or RFC 6154 SPECIAL-USE).
        if select.contains(&ListSelect::RecursiveMatch)
            && !select.iter().any(|s| matches!(s, ListSelect::Subscribed | ListSelect::SpecialUse))
        {
            return Err("RECURSIVEMATCH needs another selection option".into());
        }
        p.sp("reference")?;
    }
    let reference = p.astring("reference")?;
    p.sp("mailbox pattern")?;
    let mut patterns = Vec::new();
    if p.eat(b'(') {
        loop {
            if patterns.len() >= MAX_ITEMS {
                return Err(format!("more than {MAX_ITEMS} mailbox patterns"));
            }
            patterns.push(p.list_mailbox("mailbox pattern")?);
            if p.eat(b')') {
                break;
            }
            p.sp("mailbox pattern")?;
        }
    } else {
        patterns.push(p.list_mailbox("mailbox pattern")?);
    }
    let mut ret = Vec::new();
    if p.more() {
        if p.keyword("RETURN")? != "RETURN" {
            return Err("RETURN expected after the mailbox pattern".into());
        }
        p.sp("LIST return options")?;
        p.expect(b'(', "LIST return options")?;
        while !p.eat(b')') {
            if !ret.is_empty() {
                p.sp("LIST return option")?;
            }
            if ret.len() >= MAX_ITEMS {
                return Err("too many LIST return options".into());
            }
            ret.push(match p.keyword("LIST return option")?.as_str() {
                "SUBSCRIBED" => ListReturn::Subscribed,
                "CHILDREN" => ListReturn::Children,
                "SPECIAL-USE" => ListReturn::SpecialUse,
                // RFC 5819 2: "STATUS" SP "(" status-att *(SP status-att) ")".
                "STATUS" => {
                    p.sp("status items")?;
                    ListReturn::Status(status_items(p)?)
                }
                o => return Err(format!("unknown LIST return option {}", show(o.as_bytes()))),
            });
        }
    }
    let extended = !select.is_empty() || !ret.is_empty() || patterns.len() > 1;
    Ok(ListArgs { select, reference, patterns, ret, extended })
}

/// RFC 3501 6.3.11: "APPEND" SP mailbox [SP flag-list] [SP date-time] SP literal; RFC 3516 4.4:
/// or a literal8.
fn append(p: &mut Parser, copy: bool, at: &mut Option<Range<usize>>) -> PResult<Command> {
    let mailbox = mailbox(p)?;
    p.sp("message literal")?;
    let mut flags = Vec::new();
    if p.peek() == Some(b'(') {
        flags = p.flag_list()?;
        p.sp("message literal")?;
    }
    let mut date = None;
    if p.peek() == Some(b'"') {
        date = Some(p.date_time()?);
        p.sp("message literal")?;
    }
    // RFC 6855 4: append-data =/ "UTF8" SP "(" literal8 ")", for a message with UTF-8 headers.
    let utf8 = matches!(p.peek(), Some(b'U' | b'u'));
    if utf8 {
        if !p.keyword("UTF8")?.eq("UTF8") {
            return Err("expected UTF8 or a message literal".into());
        }
        p.sp("UTF8 message")?;
        p.expect(b'(', "UTF8 message")?;
        if p.peek() != Some(b'~') {
            return Err("UTF8 takes a literal8 (~{n})".into());
        }
    } else if !matches!(p.peek(), Some(b'{' | b'~')) {
        return Err(p.missing("message literal"));
    }
    let binary = !utf8 && p.peek() == Some(b'~');
    let data = p.literal(true, "message")?;
    let end = p.mark();
    if utf8 {
        p.expect(b')', "UTF8 message")?;
    }
    *at = Some(end - data.len()..end);
    let message = if copy { data.to_vec() } else { Vec::new() };
    Ok(Command::Append { mailbox, flags, date, message, binary })
}

/// RFC 2971 3.3: "ID" SP id-params-list; id-params-list = "(" *(string SP nstring) ")" / nil.
fn id(p: &mut Parser) -> PResult<Command> {
    p.sp("ID parameters")?;
    if !p.eat(b'(') {
        return match p.keyword("ID parameters")?.as_str() {
            "NIL" => Ok(Command::Id(None)),
            _ => Err("bad ID parameters".into()),
        };
    }
    let text = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
    let mut params = Vec::new();
    while !p.eat(b')') {
        if !params.is_empty() {
            p.sp("ID field")?;
        }
        if params.len() >= MAX_ITEMS {
            return Err("too many ID fields".into());
        }
        let field = text(p.string("ID field")?);
        p.sp("ID value")?;
        params.push((field, p.nstring("ID value")?.map(text)));
    }
    Ok(Command::Id(Some(params)))
}
