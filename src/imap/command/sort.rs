//! SORT and THREAD arguments (RFC 5256 4: sort-criteria, thread-alg, the mandatory charset and
//! the search keys of SEARCH), RFC 5957 DISPLAYFROM/DISPLAYTO, and RFC 5267 ESORT's
//! `RETURN (...)` before the criteria.

use super::lexer::{MAX_ITEMS, PResult, Parser, show};
use super::search::{keys, return_opts};
use crate::imap::types::{Command, SortCriterion, SortKey, ThreadAlgorithm};

/// The arguments after `SORT` (at the space that follows it). RFC 5256 4:
/// sort = ["UID" SP] "SORT" SP sort-criteria SP search-criteria;
/// sort-criteria = "(" sort-criterion *(SP sort-criterion) ")";
/// sort-criterion = ["REVERSE" SP] sort-key; search-criteria = charset 1*(SP search-key).
pub(super) fn sort(p: &mut Parser, uid: bool) -> PResult<Command> {
    p.sp("sort criteria")?;
    let mut ret = None;
    // RFC 5267 3.2: sort =/ ["UID" SP] "SORT" SP sort-return-opts SP sort-criteria ...
    if matches!(p.peek(), Some(b'R' | b'r')) {
        if p.keyword("sort criteria")? != "RETURN" {
            return Err("sort criteria must be a parenthesised list".into());
        }
        p.sp("sort return options")?;
        ret = Some(return_opts(p)?);
        p.sp("sort criteria")?;
    }
    p.expect(b'(', "sort criteria")?;
    let mut criteria = Vec::new();
    loop {
        if criteria.len() >= MAX_ITEMS {
            return Err(format!("more than {MAX_ITEMS} sort criteria"));
        }
        let mut name = p.keyword("sort key")?;
        let reverse = name == "REVERSE";
        if reverse {
            p.sp("sort key after REVERSE")?;
            name = p.keyword("sort key after REVERSE")?;
        }
        let key = match name.as_str() {
            "ARRIVAL" => SortKey::Arrival,
            "CC" => SortKey::Cc,
            "DATE" => SortKey::Date,
            "FROM" => SortKey::From,
            "SIZE" => SortKey::Size,
            "SUBJECT" => SortKey::Subject,
            "TO" => SortKey::To,
            "DISPLAYFROM" => SortKey::DisplayFrom,
            "DISPLAYTO" => SortKey::DisplayTo,
            other => return Err(format!("unknown sort key {}", show(other.as_bytes()))),
        };
        criteria.push(SortCriterion { reverse, key });
        if p.eat(b')') {
            break;
        }
        p.sp("sort key")?;
    }
    let (charset, key) = charset_and_keys(p)?;
    Ok(Command::Sort { uid, ret, criteria, charset, key })
}

/// The arguments after `THREAD`. RFC 5256 4: thread = ["UID" SP] "THREAD" SP thread-alg SP
/// search-criteria; thread-alg = "ORDEREDSUBJECT" / "REFERENCES" / thread-alg-ext.
pub(super) fn thread(p: &mut Parser, uid: bool) -> PResult<Command> {
    p.sp("threading algorithm")?;
    let algorithm = match p.keyword("threading algorithm")?.as_str() {
        "ORDEREDSUBJECT" => ThreadAlgorithm::OrderedSubject,
        "REFERENCES" => ThreadAlgorithm::References,
        other => return Err(format!("unknown threading algorithm {}", show(other.as_bytes()))),
    };
    let (charset, key) = charset_and_keys(p)?;
    Ok(Command::Thread { uid, algorithm, charset, key })
}

/// SP charset SP search keys (RFC 5256 4 search-criteria: the charset is not optional here).
fn charset_and_keys(p: &mut Parser) -> PResult<(String, crate::imap::types::SearchKey)> {
    p.sp("charset")?;
    let charset = p.astring_utf8("charset")?;
    p.sp("search criteria")?;
    let key = keys(p, Some(&charset))?;
    Ok((charset, key))
}

#[cfg(test)]
mod tests {
    use crate::imap::command::parse;
    use crate::imap::types::{Command, SearchKey, SearchReturn, SortCriterion, SortKey, ThreadAlgorithm};

    #[test]
    fn sort_and_thread_parse() {
        let (tag, cmd) = parse(b"A282 SORT (SUBJECT REVERSE DATE) UTF-8 ALL").unwrap();
        assert_eq!(tag, "A282");
        let crit = |reverse, key| SortCriterion { reverse, key };
        assert_eq!(
            cmd,
            Command::Sort {
                uid: false,
                ret: None,
                criteria: vec![crit(false, SortKey::Subject), crit(true, SortKey::Date)],
                charset: "UTF-8".into(),
                key: SearchKey::All,
            }
        );
        let (_, cmd) =
            parse(b"t uid sort return (min count) (displayfrom) \"us-ascii\" SUBJECT {3}\r\nabc").unwrap();
        assert_eq!(
            cmd,
            Command::Sort {
                uid: true,
                ret: Some(vec![SearchReturn::Min, SearchReturn::Count]),
                criteria: vec![crit(false, SortKey::DisplayFrom)],
                charset: "us-ascii".into(),
                key: SearchKey::Subject("abc".into()),
            }
        );
        let (_, cmd) = parse(b"t UID THREAD ORDEREDSUBJECT UTF-8 SINCE 5-MAR-2000 UNSEEN").unwrap();
        let Command::Thread { uid: true, algorithm: ThreadAlgorithm::OrderedSubject, charset, key } = cmd
        else {
            panic!("{cmd:?}")
        };
        assert_eq!(charset, "UTF-8");
        assert!(matches!(key, SearchKey::And(k) if k.len() == 2));
        // Strings in an unknown charset are carried along for the session to refuse.
        assert!(parse(b"t THREAD REFERENCES KOI8-R SUBJECT {1}\r\n\xc1").is_ok());
        for bad in [
            &b"t SORT"[..],
            b"t SORT (DATE",
            b"t SORT (DATE)UTF-8 ALL",
            b"t SORT (DATE) UTF-8 ALL)",
            b"t SORT (REVERSE REVERSE DATE) UTF-8 ALL",
            b"t SORT RETURNS (DATE) UTF-8 ALL",
            b"t THREAD",
            b"t THREAD REFERENCES UTF-8 ",
        ] {
            assert!(parse(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }
}
