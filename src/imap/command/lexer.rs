//! The IMAP command tokens (RFC 3501 9, RFC 9051 9): atoms, astrings, quoted strings, literals
//! (RFC 7888 LITERAL+, RFC 3516 literal8), numbers, sequence sets (RFC 5182 `$`), flags and dates.
//! A cursor over one complete command; every error is a human message for the tagged BAD.

use crate::imap::types::{Date, DateTime, Flag, SeqNum, SeqRange, SeqSet};
use crate::timefmt::days_from_civil;

/// Most elements in any one list of a command (sequence ranges, fetch items, search keys, flags, ...).
pub(super) const MAX_ITEMS: usize = 1000;
/// Ranges in one sequence set. They cost 16 octets each and are merged before use
/// (search::resolve_ranges), so a set may repeat itself as often as a command line allows.
pub(super) const MAX_SEQ_RANGES: usize = 32 * 1024;
/// Deepest nesting of SEARCH parentheses, NOT and OR.
pub(super) const MAX_DEPTH: usize = 32;

pub(super) type PResult<T> = Result<T, String>;

/// RFC 3501 9: ATOM-CHAR = any CHAR except atom-specials
/// (`(` `)` `{` SP CTL `%` `*` `"` `\` `]`).
pub(super) fn is_atom_char(b: u8) -> bool {
    b > 0x20 && b < 0x7f && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']')
}

/// RFC 3501 9: ASTRING-CHAR = ATOM-CHAR / resp-specials (`]`).
pub(super) fn is_astring_char(b: u8) -> bool {
    is_atom_char(b) || b == b']'
}

/// RFC 3501 9: list-char = ATOM-CHAR / list-wildcards / resp-specials.
fn is_list_char(b: u8) -> bool {
    is_astring_char(b) || b == b'%' || b == b'*'
}

/// Shows a client's token in an error message: printable ASCII only, bounded.
pub(super) fn show(b: &[u8]) -> String {
    let mut s: String =
        b.iter().take(40).map(|&c| if (0x21..0x7f).contains(&c) { c as char } else { '?' }).collect();
    if b.len() > 40 {
        s.push_str("...");
    }
    s
}

/// A cursor over one command, CRLF stripped, literals inline.
pub(super) struct Parser<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Parser<'a> {
    pub(super) fn new(buf: &'a [u8]) -> Self {
        Parser { buf, pos: 0 }
    }

    pub(super) fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    pub(super) fn peek_at(&self, n: usize) -> Option<u8> {
        self.buf.get(self.pos.saturating_add(n)).copied()
    }

    /// The position, to come back to with [`Parser::reset`].
    pub(super) fn mark(&self) -> usize {
        self.pos
    }

    pub(super) fn reset(&mut self, mark: usize) {
        self.pos = mark;
    }

    pub(super) fn at_end(&self) -> bool {
        self.pos >= self.buf.len()
    }

    /// Consumes `b` if it is next.
    pub(super) fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    pub(super) fn expect(&mut self, b: u8, what: &str) -> PResult<()> {
        if self.eat(b) { Ok(()) } else { Err(self.missing(what)) }
    }

    /// "missing X" at the end of the command, "bad X" elsewhere.
    pub(super) fn missing(&self, what: &str) -> String {
        if self.at_end() { format!("missing {what}") } else { format!("bad {what}") }
    }

    /// RFC 3501 9: exactly one SP between tokens, then something must follow.
    pub(super) fn sp(&mut self, what: &str) -> PResult<()> {
        match self.peek() {
            None => Err(format!("missing {what}")),
            Some(b' ') => {
                self.pos += 1;
                match self.peek() {
                    None => Err(format!("missing {what} after the space")),
                    Some(b' ') => Err("more than one space between arguments".into()),
                    Some(_) => Ok(()),
                }
            }
            Some(b')') => Err(format!("missing {what}")),
            Some(_) => Err(format!("expected a space before {what}")),
        }
    }

    /// Consumes one SP if another argument follows (optional arguments).
    pub(super) fn more(&mut self) -> bool {
        if self.peek() == Some(b' ') && self.peek_at(1).is_some_and(|b| b != b' ') {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// The command must end here.
    pub(super) fn end(&self) -> PResult<()> {
        match self.buf.get(self.pos..) {
            None | Some([]) => Ok(()),
            Some([b' ']) => Err("trailing space".into()),
            Some([b' ', b' ', ..]) => Err("more than one space between arguments".into()),
            Some([b' ', rest @ ..]) | Some(rest) => {
                Err(format!("unexpected characters at the end: {}", show(rest)))
            }
        }
    }

    /// The longest run of bytes matching `f` (possibly empty).
    pub(super) fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &'a [u8] {
        let buf: &'a [u8] = self.buf;
        let start = self.pos.min(buf.len());
        let len = buf.get(start..).map_or(0, |r| r.iter().take_while(|&&b| f(b)).count());
        self.pos = start + len;
        buf.get(start..start + len).unwrap_or_default()
    }

    /// RFC 3501 9: atom = 1*ATOM-CHAR.
    pub(super) fn atom(&mut self, what: &str) -> PResult<&'a [u8]> {
        let a = self.take_while(is_atom_char);
        if a.is_empty() { Err(self.missing(what)) } else { Ok(a) }
    }

    /// An atom read as an upper-cased keyword (IMAP keywords are case-insensitive).
    pub(super) fn keyword(&mut self, what: &str) -> PResult<String> {
        Ok(String::from_utf8_lossy(self.atom(what)?).to_ascii_uppercase())
    }

    /// The keyword `want` (case-insensitive), or an error naming it.
    pub(super) fn p_keyword_is(&mut self, want: &str) -> PResult<()> {
        match self.keyword(want)? {
            k if k == want => Ok(()),
            k => Err(format!("expected {want}, not {}", show(k.as_bytes()))),
        }
    }

    /// RFC 3501 9: astring = 1*ASTRING-CHAR / string.
    pub(super) fn astring(&mut self, what: &str) -> PResult<Vec<u8>> {
        match self.peek() {
            Some(b'"' | b'{') => self.string(what),
            _ => {
                let a = self.take_while(is_astring_char);
                if a.is_empty() { Err(self.missing(what)) } else { Ok(a.to_vec()) }
            }
        }
    }

    /// An astring that must be text (UTF-8).
    pub(super) fn astring_utf8(&mut self, what: &str) -> PResult<String> {
        String::from_utf8(self.astring(what)?).map_err(|_| format!("{what} is not UTF-8"))
    }

    /// RFC 3501 9: string = quoted / literal.
    pub(super) fn string(&mut self, what: &str) -> PResult<Vec<u8>> {
        match self.peek() {
            Some(b'"') => self.quoted(what),
            Some(b'{') => Ok(self.literal(false, what)?.to_vec()),
            _ => Err(self.missing(what)),
        }
    }

    /// RFC 3501 9: nstring = string / nil.
    pub(super) fn nstring(&mut self, what: &str) -> PResult<Option<Vec<u8>>> {
        if self.peek().is_some_and(|b| b == b'N' || b == b'n') {
            let save = self.pos;
            if self.atom(what)?.eq_ignore_ascii_case(b"NIL") {
                return Ok(None);
            }
            self.pos = save;
        }
        self.string(what).map(Some)
    }

    /// RFC 3501 9 quoted: DQUOTE *QUOTED-CHAR DQUOTE, where only `"` and `\` may be escaped;
    /// RFC 9051 9 (and RFC 6855 3) also allow UTF-8 in it.
    fn quoted(&mut self, what: &str) -> PResult<Vec<u8>> {
        self.expect(b'"', what)?;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None => return Err(format!("unterminated quoted string in {what}")),
                Some(b'"') => {
                    self.pos += 1;
                    break;
                }
                Some(b'\\') => {
                    match self.peek_at(1) {
                        Some(c @ (b'"' | b'\\')) => out.push(c),
                        _ => return Err(format!("bad escape in quoted {what}")),
                    }
                    self.pos += 2;
                }
                Some(0 | b'\r' | b'\n') => return Err(format!("NUL, CR or LF in quoted {what}")),
                Some(c) => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
        if !out.is_ascii() && std::str::from_utf8(&out).is_err() {
            return Err(format!("8-bit quoted {what} is not UTF-8"));
        }
        Ok(out)
    }

    /// RFC 3501 9 literal `{n}CRLF`, RFC 7888 `{n+}CRLF`; with `eight`, also RFC 3516 literal8
    /// `~{n}CRLF` (whose bytes may include NUL). Returns the literal's bytes.
    pub(super) fn literal(&mut self, eight: bool, what: &str) -> PResult<&'a [u8]> {
        let is8 = eight && self.eat(b'~');
        self.expect(b'{', what)?;
        let len = self.number64("literal length")?;
        self.eat(b'+');
        if !(self.eat(b'}') && self.eat(b'\r') && self.eat(b'\n')) {
            return Err(format!("bad literal in {what}"));
        }
        let buf: &'a [u8] = self.buf;
        let data = usize::try_from(len)
            .ok()
            .and_then(|n| buf.get(self.pos..self.pos.checked_add(n)?))
            .ok_or_else(|| format!("literal in {what} is shorter than announced"))?;
        // RFC 3501 9: a literal is CHAR8 (no NUL); RFC 3516 4.2: literal8 is any OCTET.
        if !is8 && data.contains(&0) {
            return Err(format!("NUL in literal {what} (only a literal8 may hold NUL)"));
        }
        self.pos += data.len();
        Ok(data)
    }

    /// RFC 3501 9 list-mailbox = 1*list-char / string (`%`, `*` and `]` unquoted).
    pub(super) fn list_mailbox(&mut self, what: &str) -> PResult<Vec<u8>> {
        match self.peek() {
            Some(b'"' | b'{') => self.string(what),
            _ => {
                let a = self.take_while(is_list_char);
                if a.is_empty() { Err(self.missing(what)) } else { Ok(a.to_vec()) }
            }
        }
    }

    fn digits(&mut self, what: &str) -> PResult<&'a [u8]> {
        let d = self.take_while(|b| b.is_ascii_digit());
        if d.is_empty() { Err(self.missing(what)) } else { Ok(d) }
    }

    /// RFC 9051 9 number64: 0 ..= 2^63-1, overflow-checked.
    pub(super) fn number64(&mut self, what: &str) -> PResult<u64> {
        let d = self.digits(what)?;
        let n = d.iter().try_fold(0u64, |n, &c| n.checked_mul(10)?.checked_add(u64::from(c - b'0')));
        match n {
            Some(n) if n <= i64::MAX as u64 => Ok(n),
            _ => Err(format!("{what} is too large")),
        }
    }

    /// RFC 3501 9 number: an unsigned 32-bit integer.
    pub(super) fn number(&mut self, what: &str) -> PResult<u32> {
        u32::try_from(self.number64(what)?).map_err(|_| format!("{what} is too large"))
    }

    /// RFC 3501 9 nz-number.
    pub(super) fn nz_number(&mut self, what: &str) -> PResult<u32> {
        match self.number(what)? {
            0 => Err(format!("{what} must not be 0")),
            n => Ok(n),
        }
    }

    /// RFC 3501 9 sequence-set; RFC 5182 2.1 `$` (the saved search result) stands alone.
    pub(super) fn seq_set(&mut self) -> PResult<SeqSet> {
        if self.eat(b'$') {
            return match self.peek() {
                None | Some(b' ' | b')') => Ok(SeqSet::Saved),
                Some(_) => Err("bad sequence set: $ stands alone".into()),
            };
        }
        if self.at_end() {
            return Err("missing sequence set".into());
        }
        let mut ranges = Vec::new();
        loop {
            if ranges.len() >= MAX_SEQ_RANGES {
                return Err(format!("more than {MAX_SEQ_RANGES} ranges in a sequence set"));
            }
            let start = self.seq_num()?;
            let end = if self.eat(b':') { self.seq_num()? } else { start };
            ranges.push(SeqRange { start, end });
            if !self.eat(b',') {
                break;
            }
        }
        // A sequence set ends at SP, `)` or the end of the command.
        match self.peek() {
            None | Some(b' ' | b')') => Ok(SeqSet::Ranges(ranges)),
            Some(_) => Err("bad sequence set".into()),
        }
    }

    /// RFC 3501 9 seq-number = nz-number / "*".
    fn seq_num(&mut self) -> PResult<SeqNum> {
        if self.eat(b'*') {
            return Ok(SeqNum::Star);
        }
        match self.peek() {
            Some(c) if c.is_ascii_digit() => match self.number("sequence number") {
                Ok(0) => Err("bad sequence set: 0 is not a message number".into()),
                Ok(n) => Ok(SeqNum::Value(n)),
                Err(_) => Err("bad sequence set: number too large".into()),
            },
            _ => Err("bad sequence set".into()),
        }
    }

    /// RFC 3501 9 flag: a system flag (case-insensitive), `\Recent` only when `recent_ok`
    /// (flag-fetch; never in STORE or APPEND), or a keyword atom. Unknown `\Foo` is refused
    /// (buzon offers no flag-extension).
    pub(super) fn flag(&mut self, recent_ok: bool) -> PResult<Flag> {
        if self.eat(b'\\') {
            let name = self.atom("flag name")?;
            let f = match name.to_ascii_uppercase().as_slice() {
                b"SEEN" => Flag::Seen,
                b"ANSWERED" => Flag::Answered,
                b"FLAGGED" => Flag::Flagged,
                b"DELETED" => Flag::Deleted,
                b"DRAFT" => Flag::Draft,
                b"RECENT" if recent_ok => Flag::Recent,
                b"RECENT" => return Err("\\Recent cannot be set by a client".into()),
                _ => return Err(format!("unknown system flag \\{}", show(name))),
            };
            return Ok(f);
        }
        let a = self.atom("flag")?;
        Ok(Flag::Keyword(String::from_utf8_lossy(a).into_owned()))
    }

    /// RFC 3501 9 flag-list = "(" [flag *(SP flag)] ")".
    pub(super) fn flag_list(&mut self) -> PResult<Vec<Flag>> {
        self.expect(b'(', "flag list")?;
        let mut flags = Vec::new();
        if self.eat(b')') {
            return Ok(flags);
        }
        loop {
            if flags.len() >= MAX_ITEMS {
                return Err(format!("more than {MAX_ITEMS} flags"));
            }
            flags.push(self.flag(false)?);
            if self.eat(b')') {
                return Ok(flags);
            }
            self.sp("flag")?;
        }
    }

    /// RFC 3501 9 date = date-text / DQUOTE date-text DQUOTE, date-text = `1-Feb-1994`.
    pub(super) fn date(&mut self) -> PResult<Date> {
        let quoted = self.eat(b'"');
        let day = self.day(false)?;
        let date = self.month_year(day)?;
        if quoted && !self.eat(b'"') {
            return Err("bad date".into());
        }
        Ok(date)
    }

    /// date-day = 1*2DIGIT; in date-day-fixed, a leading space stands for a missing digit.
    fn day(&mut self, fixed: bool) -> PResult<u8> {
        if fixed {
            self.eat(b' ');
        }
        let d = self.take_while(|b| b.is_ascii_digit());
        match d {
            [a] => Ok(a - b'0'),
            [a, b] => Ok((a - b'0') * 10 + (b - b'0')),
            _ => Err(self.missing("date")),
        }
    }

    /// `-Mon-yyyy` after the day, checked against the calendar.
    fn month_year(&mut self, day: u8) -> PResult<Date> {
        const MONTHS: [&[u8; 3]; 12] =
            [b"JAN", b"FEB", b"MAR", b"APR", b"MAY", b"JUN", b"JUL", b"AUG", b"SEP", b"OCT", b"NOV", b"DEC"];
        let bad = || "bad date".to_string();
        self.expect(b'-', "date")?;
        let m = self.buf.get(self.pos..self.pos + 3).ok_or_else(bad)?.to_ascii_uppercase();
        let month = MONTHS.iter().position(|n| n[..] == m[..]).ok_or_else(bad)? as u8 + 1;
        self.pos += 3;
        self.expect(b'-', "date")?;
        let y = self.take_while(|b| b.is_ascii_digit());
        if y.len() != 4 {
            return Err(bad());
        }
        let year = y.iter().fold(0u16, |n, &c| n * 10 + u16::from(c - b'0'));
        let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
        let days = match month {
            2 if leap => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
        if day == 0 || day > days {
            return Err(bad());
        }
        Ok(Date { year, month, day })
    }

    /// RFC 3501 9 date-time = DQUOTE date-day-fixed "-" date-month "-" date-year SP time SP zone
    /// DQUOTE (`"17-Jul-1996 02:44:25 -0700"`), as Unix seconds (UTC) and the zone.
    pub(super) fn date_time(&mut self) -> PResult<DateTime> {
        let bad = || "bad date-time".to_string();
        self.expect(b'"', "date-time")?;
        let day = self.day(true).map_err(|_| bad())?;
        let d = self.month_year(day).map_err(|_| bad())?;
        let two = |p: &mut Self, sep: Option<u8>| -> PResult<i64> {
            if let Some(s) = sep
                && !p.eat(s)
            {
                return Err(bad());
            }
            match p.buf.get(p.pos..p.pos + 2) {
                Some([a, b]) if a.is_ascii_digit() && b.is_ascii_digit() => {
                    p.pos += 2;
                    Ok(i64::from((a - b'0') * 10 + (b - b'0')))
                }
                _ => Err(bad()),
            }
        };
        let (h, mi, s) = (two(self, Some(b' '))?, two(self, Some(b':'))?, two(self, Some(b':'))?);
        if !self.eat(b' ') {
            return Err(bad());
        }
        let sign = match self.peek() {
            Some(b'+') => 1,
            Some(b'-') => -1,
            _ => return Err(bad()),
        };
        self.pos += 1;
        let (zh, zm) = (two(self, None)?, two(self, None)?);
        // RFC 3501 9 time; a leap second (60) is allowed as in RFC 5322 3.3.
        if h > 23 || mi > 59 || s > 60 || zh > 23 || zm > 59 || !self.eat(b'"') {
            return Err(bad());
        }
        let zone = sign * (zh * 60 + zm);
        let days = days_from_civil(i64::from(d.year), i64::from(d.month), i64::from(d.day));
        let unix = days * 86400 + h * 3600 + mi * 60 + s - zone * 60;
        Ok(DateTime { unix, zone_minutes: zone as i32 })
    }
}
