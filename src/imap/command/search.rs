//! SEARCH arguments: RFC 3501 6.4.4 keys and CHARSET, RFC 4731 / RFC 5182 RETURN options
//! (ESEARCH, SAVE), RFC 9051 6.4.4. Nesting and the number of keys are bounded.

use super::fetch::field_name;
use super::lexer::{MAX_DEPTH, MAX_ITEMS, PResult, Parser, show};
use crate::imap::types::{Command, SearchKey, SearchReturn};

/// How the strings of a search are turned into text.
#[derive(Clone, Copy)]
enum Charset {
    /// No CHARSET, US-ASCII or UTF-8: the strings must be UTF-8.
    Utf8,
    /// ISO-8859-1: each byte is the code point of the same value.
    Latin1,
    /// Anything else: the session answers NO [BADCHARSET] (RFC 3501 6.4.4), so the strings are only
    /// carried along (lossily).
    Other,
}

struct Search<'p, 'a> {
    p: &'p mut Parser<'a>,
    charset: Charset,
    keys: usize,
}

/// The arguments after `SEARCH` (at the space that follows it).
pub(super) fn search(p: &mut Parser, uid: bool) -> PResult<Command> {
    p.sp("search criteria")?;
    let mut ret = None;
    let mut charset = None;
    let mut mark = p.mark();
    let mut first = p.take_while(|b| b.is_ascii_alphabetic()).to_ascii_uppercase();
    // RFC 4731 3: search-return-opts = SP "RETURN" SP "(" [search-return-opt *(SP ...)] ")".
    if first == b"RETURN" {
        p.sp("search return options")?;
        ret = Some(return_opts(p)?);
        p.sp("search criteria")?;
        mark = p.mark();
        first = p.take_while(|b| b.is_ascii_alphabetic()).to_ascii_uppercase();
    }
    // RFC 3501 6.4.4: CHARSET comes before the keys, once.
    if first == b"CHARSET" {
        p.sp("charset")?;
        charset = Some(p.astring_utf8("charset")?);
        p.sp("search criteria")?;
    } else {
        p.reset(mark);
    }
    let key = keys(p, charset.as_deref())?;
    Ok(Command::Search { uid, ret, charset, key })
}

/// The search keys to the end of the command (RFC 3501 9: 1*(SP search-key), the first space
/// already read), their strings read in `charset`: SEARCH's and those of SORT and THREAD
/// (RFC 5256 4).
pub(super) fn keys(p: &mut Parser, charset: Option<&str>) -> PResult<SearchKey> {
    let mode = match charset.map(str::to_ascii_uppercase).as_deref() {
        None | Some("UTF-8" | "US-ASCII") => Charset::Utf8,
        Some("ISO-8859-1" | "LATIN1") => Charset::Latin1,
        Some(_) => Charset::Other,
    };
    let mut s = Search { p, charset: mode, keys: 0 };
    let mut keys = vec![s.key(0)?];
    while s.p.more() {
        keys.push(s.key(0)?);
    }
    Ok(if keys.len() == 1 { keys.pop().unwrap_or(SearchKey::All) } else { SearchKey::And(keys) })
}

/// `(MIN MAX ALL COUNT SAVE)`; `()` is `Some(vec![])`, which RFC 4731 3.1 reads as ALL.
pub(super) fn return_opts(p: &mut Parser) -> PResult<Vec<SearchReturn>> {
    p.expect(b'(', "search return options")?;
    let mut opts = Vec::new();
    if p.eat(b')') {
        return Ok(opts);
    }
    loop {
        if opts.len() >= MAX_ITEMS {
            return Err("too many search return options".into());
        }
        opts.push(match p.keyword("search return option")?.as_str() {
            "MIN" => SearchReturn::Min,
            "MAX" => SearchReturn::Max,
            "ALL" => SearchReturn::All,
            "COUNT" => SearchReturn::Count,
            "SAVE" => SearchReturn::Save,
            other => return Err(format!("unknown search return option {}", show(other.as_bytes()))),
        });
        if p.eat(b')') {
            return Ok(opts);
        }
        p.sp("search return option")?;
    }
}

impl Search<'_, '_> {
    /// RFC 3501 9 search-key.
    fn key(&mut self, depth: usize) -> PResult<SearchKey> {
        use SearchKey::*;
        self.keys += 1;
        if self.keys > MAX_ITEMS {
            return Err(format!("more than {MAX_ITEMS} search keys"));
        }
        if depth > MAX_DEPTH {
            return Err("search keys nested too deep".into());
        }
        let p = &mut *self.p;
        match p.peek() {
            // RFC 3501 9: "(" search-key *(SP search-key) ")".
            Some(b'(') => {
                p.eat(b'(');
                let mut keys = vec![self.key(depth + 1)?];
                loop {
                    if self.p.eat(b')') {
                        return Ok(And(keys));
                    }
                    self.p.sp("search key")?;
                    keys.push(self.key(depth + 1)?);
                }
            }
            Some(b'0'..=b'9' | b'*' | b'$') => return Ok(Seq(p.seq_set()?)),
            _ => {}
        }
        let name = p.keyword("search key")?;
        Ok(match name.as_str() {
            "ALL" => All,
            "ANSWERED" => Answered,
            "DELETED" => Deleted,
            "DRAFT" => Draft,
            "FLAGGED" => Flagged,
            "NEW" => New,
            "OLD" => Old,
            "RECENT" => Recent,
            "SEEN" => Seen,
            "UNANSWERED" => Unanswered,
            "UNDELETED" => Undeleted,
            "UNDRAFT" => Undraft,
            "UNFLAGGED" => Unflagged,
            "UNSEEN" => Unseen,
            "BCC" => Bcc(self.text("BCC")?),
            "BODY" => Body(self.text("BODY")?),
            "CC" => Cc(self.text("CC")?),
            "FROM" => From(self.text("FROM")?),
            "SUBJECT" => Subject(self.text("SUBJECT")?),
            "TEXT" => Text(self.text("TEXT")?),
            "TO" => To(self.text("TO")?),
            "BEFORE" => Before(self.date("BEFORE")?),
            "ON" => On(self.date("ON")?),
            "SINCE" => Since(self.date("SINCE")?),
            "SENTBEFORE" => SentBefore(self.date("SENTBEFORE")?),
            "SENTON" => SentOn(self.date("SENTON")?),
            "SENTSINCE" => SentSince(self.date("SENTSINCE")?),
            "KEYWORD" => Keyword(self.flag_keyword("KEYWORD")?),
            "UNKEYWORD" => Unkeyword(self.flag_keyword("UNKEYWORD")?),
            "LARGER" => Larger(self.size("LARGER")?),
            "SMALLER" => Smaller(self.size("SMALLER")?),
            // RFC 7162 3.1.5: "MODSEQ" [SP entry-name SP entry-type-req] SP mod-sequence-valzer.
            "MODSEQ" => {
                self.p.sp("MODSEQ value")?;
                if self.p.peek() == Some(b'"') {
                    self.p.astring("MODSEQ entry name")?;
                    self.p.sp("MODSEQ entry type")?;
                    match self.p.keyword("MODSEQ entry type")?.as_str() {
                        "PRIV" | "SHARED" | "ALL" => {}
                        t => return Err(format!("unknown MODSEQ entry type {}", show(t.as_bytes()))),
                    }
                    self.p.sp("MODSEQ value")?;
                }
                ModSeq(self.p.number64("MODSEQ value")?)
            }
            "UID" => {
                self.p.sp("UID set")?;
                Uid(self.p.seq_set()?)
            }
            "HEADER" => {
                self.p.sp("header field name")?;
                let field = field_name(self.p)?;
                Header(field, self.text("HEADER")?)
            }
            "NOT" => {
                self.p.sp("search key after NOT")?;
                Not(Box::new(self.key(depth + 1)?))
            }
            "OR" => {
                self.p.sp("search key after OR")?;
                let a = self.key(depth + 1)?;
                self.p.sp("second search key after OR")?;
                Or(Box::new(a), Box::new(self.key(depth + 1)?))
            }
            "CHARSET" => return Err("CHARSET must come before the search keys".into()),
            _ => return Err(format!("unknown search key {}", show(name.as_bytes()))),
        })
    }

    /// SP astring, as text in the search's charset.
    fn text(&mut self, key: &str) -> PResult<String> {
        self.p.sp(&format!("string after {key}"))?;
        let b = self.p.astring(&format!("{key} string"))?;
        match self.charset {
            Charset::Utf8 => String::from_utf8(b).map_err(|_| format!("{key} string is not UTF-8")),
            Charset::Latin1 => Ok(b.iter().map(|&c| char::from(c)).collect()),
            Charset::Other => Ok(String::from_utf8_lossy(&b).into_owned()),
        }
    }

    fn date(&mut self, key: &str) -> PResult<crate::imap::types::Date> {
        self.p.sp(&format!("date after {key}"))?;
        self.p.date()
    }

    /// RFC 3501 9 flag-keyword = atom.
    fn flag_keyword(&mut self, key: &str) -> PResult<String> {
        self.p.sp(&format!("keyword after {key}"))?;
        Ok(String::from_utf8_lossy(self.p.atom(&format!("keyword after {key}"))?).into_owned())
    }

    /// RFC 9051 9: LARGER/SMALLER number64.
    fn size(&mut self, key: &str) -> PResult<u64> {
        self.p.sp(&format!("size after {key}"))?;
        self.p.number64(&format!("{key} size"))
    }
}
