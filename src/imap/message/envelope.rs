//! ENVELOPE (RFC 3501 7.4.2, RFC 9051 7.5.2) and the RFC 5322 3.4 address lists it holds, groups
//! included. Values are raw: no RFC 2047 decoding, only unfolding and the removal of quoting from
//! display names, as RFC 3501 asks.

use super::lex::{Tok, lex};
use super::mime::{fields, unfold};
use crate::imap::encode;

/// One member of an ENVELOPE address list (RFC 3501 9 address).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Addr {
    Mailbox {
        name: Option<Vec<u8>>,
        /// Source route (obsolete `@a,@b:`).
        adl: Option<Vec<u8>>,
        mailbox: Vec<u8>,
        host: Vec<u8>,
    },
    /// RFC 3501 7.4.2: `(NIL NIL "group name" NIL)` opens a group...
    GroupStart(Vec<u8>),
    /// ...and `(NIL NIL NIL NIL)` closes it.
    GroupEnd,
}

/// What stands in for a missing local part or domain (as Dovecot writes them): a NIL host would
/// read as group syntax.
pub(crate) const MISSING_MAILBOX: &[u8] = b"MISSING_MAILBOX";
pub(crate) const MISSING_DOMAIN: &[u8] = b"MISSING_DOMAIN";

/// The ENVELOPE of a message header (RFC 3501 7.4.2): date, subject, from, sender, reply-to, to, cc,
/// bcc, in-reply-to, message-id. When a field is repeated (RFC 5322 3.6 allows one), the last one
/// counts, as in Dovecot.
pub fn envelope(header: &[u8], utf8: bool) -> Vec<u8> {
    const NAMES: [&str; 10] =
        ["date", "subject", "from", "sender", "reply-to", "to", "cc", "bcc", "in-reply-to", "message-id"];
    let mut vals: [Option<&[u8]>; 10] = [None; 10];
    for f in fields(header) {
        if let Some(i) = NAMES.iter().position(|n| f.name.eq_ignore_ascii_case(n.as_bytes()))
            && let Some(slot) = vals.get_mut(i)
        {
            *slot = Some(f.value);
        }
    }
    let [date, subject, from, sender, reply_to, to, cc, bcc, in_reply_to, message_id] = vals;
    let from = from.map(addresses).unwrap_or_default();
    // RFC 3501 7.4.2: an absent or empty Sender or Reply-To is the From.
    let or_from = |v: Option<&[u8]>| {
        let list = v.map(addresses).unwrap_or_default();
        if list.is_empty() { from.clone() } else { list }
    };
    let sender = or_from(sender);
    let reply_to = or_from(reply_to);
    let mut out = Vec::with_capacity(256);
    out.push(b'(');
    text(&mut out, date, utf8);
    out.push(b' ');
    text(&mut out, subject, utf8);
    for list in [&from, &sender, &reply_to] {
        out.push(b' ');
        write_addrs(&mut out, list, utf8);
    }
    for v in [to, cc, bcc] {
        out.push(b' ');
        write_addrs(&mut out, &v.map(addresses).unwrap_or_default(), utf8);
    }
    out.push(b' ');
    text(&mut out, in_reply_to, utf8);
    out.push(b' ');
    text(&mut out, message_id, utf8);
    out.push(b')');
    out
}

fn string(out: &mut Vec<u8>, s: &[u8], utf8: bool) {
    if utf8 { encode::string_utf8(out, s) } else { encode::string(out, s) }
}

fn nstring(out: &mut Vec<u8>, s: Option<&[u8]>, utf8: bool) {
    match s {
        Some(s) => string(out, s, utf8),
        None => out.extend_from_slice(b"NIL"),
    }
}

/// An unstructured field as an nstring: unfolded, NIL when absent or empty.
fn text(out: &mut Vec<u8>, value: Option<&[u8]>, utf8: bool) {
    let v = value.map(unfold).filter(|v| !v.is_empty());
    nstring(out, v.as_deref(), utf8);
}

fn write_addrs(out: &mut Vec<u8>, list: &[Addr], utf8: bool) {
    if list.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for a in list {
        match a {
            Addr::Mailbox { name, adl, mailbox, host } => {
                out.push(b'(');
                nstring(out, name.as_deref(), utf8);
                out.push(b' ');
                nstring(out, adl.as_deref(), utf8);
                out.push(b' ');
                string(out, mailbox, utf8);
                out.push(b' ');
                string(out, host, utf8);
                out.push(b')');
            }
            Addr::GroupStart(name) => {
                out.extend_from_slice(b"(NIL NIL ");
                string(out, name, utf8);
                out.extend_from_slice(b" NIL)");
            }
            Addr::GroupEnd => out.extend_from_slice(b"(NIL NIL NIL NIL)"),
        }
    }
    out.push(b')');
}

/// Parses an address list (RFC 5322 3.4 address-list, with the obsolete forms of 4.4 tolerated):
/// mailboxes, `name <addr>`, source routes, and groups `name: a, b;`. Garbage gives fewer
/// addresses, never an error.
pub(crate) fn addresses(value: &[u8]) -> Vec<Addr> {
    let toks = lex(value, false);
    let mut out = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        if matches!(toks.get(i), Some(Tok::Special(b',' | b';' | b'>'))) {
            i += 1;
            continue;
        }
        // A group when a colon comes before anything that makes this a mailbox.
        let colon = toks[i..]
            .iter()
            .position(|t| matches!(t, Tok::Special(b':' | b'<' | b'@' | b',' | b';')))
            .filter(|&p| matches!(toks.get(i + p), Some(Tok::Special(b':'))));
        if let Some(p) = colon {
            out.push(Addr::GroupStart(phrase(&toks[i..i + p])));
            i += p + 1;
            while i < toks.len() {
                match toks.get(i) {
                    Some(Tok::Special(b';')) => {
                        i += 1;
                        break;
                    }
                    Some(Tok::Special(b',')) => i += 1,
                    _ => i = mailbox(&toks, i, true, &mut out),
                }
            }
            out.push(Addr::GroupEnd);
        } else {
            i = mailbox(&toks, i, false, &mut out);
        }
    }
    out
}

/// Parses one mailbox starting at `i` up to the next `,` (or `;` in a group) outside angle
/// brackets; pushes it when it holds an address. Returns the index of the stop token.
fn mailbox(toks: &[Tok<'_>], i: usize, in_group: bool, out: &mut Vec<Addr>) -> usize {
    let mut end = i;
    let mut angle = false;
    while let Some(t) = toks.get(end) {
        match t {
            Tok::Special(b'<') => angle = true,
            Tok::Special(b'>') => angle = false,
            Tok::Special(b',') if !angle => break,
            Tok::Special(b';') if in_group => break,
            _ => {}
        }
        end += 1;
    }
    let seg = &toks[i..end];
    let addr = match seg.iter().position(|t| matches!(t, Tok::Special(b'<'))) {
        Some(lt) => {
            let name = phrase(&seg[..lt]);
            let inside = &seg[lt + 1..];
            let inside = &inside
                [..inside.iter().position(|t| matches!(t, Tok::Special(b'>'))).unwrap_or(inside.len())];
            // RFC 5322 4.4 obs-route: `@a,@b:` before the addr-spec.
            let (adl, spec) = match inside.iter().position(|t| matches!(t, Tok::Special(b':'))) {
                Some(c) if matches!(inside.first(), Some(Tok::Special(b'@'))) => {
                    (Some(concat(&inside[..c], false)), &inside[c + 1..])
                }
                _ => (None, inside),
            };
            addr_spec(spec, (!name.is_empty()).then_some(name), adl)
        }
        None if is_bare_phrase(seg) => {
            // A display name with no address (`Someone Else`): Dovecot keeps the name and marks
            // both halves of the address missing.
            Some(Addr::Mailbox {
                name: Some(phrase(seg)),
                adl: None,
                mailbox: MISSING_MAILBOX.to_vec(),
                host: MISSING_DOMAIN.to_vec(),
            })
        }
        None => {
            // `user@host (Real Name)`: the comment names the mailbox (RFC 822 custom).
            let name = seg.iter().rev().find_map(|t| match t {
                Tok::Comment(c) => Some(unfold(c)).filter(|c| !c.is_empty()),
                _ => None,
            });
            addr_spec(seg, name, None)
        }
    };
    if let Some(a) = addr {
        out.push(a);
    }
    end
}

/// Two or more words and no `@`: a phrase, not a local part (RFC 5322 3.4.1 local parts are
/// one dot-atom or quoted string).
fn is_bare_phrase(seg: &[Tok<'_>]) -> bool {
    let words = seg.iter().filter(|t| matches!(t, Tok::Word(_) | Tok::Quoted(_))).count();
    words >= 2 && !seg.iter().any(|t| matches!(t, Tok::Special(b'@')))
}

/// `local@domain` from tokens (comments ignored). The last `@` splits them; missing halves are
/// filled in; no address at all (a lone name or comment) gives None.
fn addr_spec(toks: &[Tok<'_>], name: Option<Vec<u8>>, adl: Option<Vec<u8>>) -> Option<Addr> {
    let (local, domain) = match toks.iter().rposition(|t| matches!(t, Tok::Special(b'@'))) {
        Some(at) => (concat(&toks[..at], true), concat(&toks[at + 1..], false)),
        None => (concat(toks, true), Vec::new()),
    };
    if local.is_empty() && domain.is_empty() {
        return None;
    }
    Some(Addr::Mailbox {
        name,
        adl,
        mailbox: if local.is_empty() { MISSING_MAILBOX.to_vec() } else { local },
        host: if domain.is_empty() { MISSING_DOMAIN.to_vec() } else { domain },
    })
}

/// Tokens glued together as written without white space (a local part, a domain or a route);
/// quoted strings keep their quotes in a local part (RFC 5322 3.4.1).
fn concat(toks: &[Tok<'_>], requote: bool) -> Vec<u8> {
    let mut s = Vec::new();
    for t in toks {
        match t {
            Tok::Word(w) | Tok::DomainLiteral(w) => s.extend_from_slice(w),
            Tok::Quoted(q) if requote => {
                s.push(b'"');
                for &b in q {
                    if b == b'"' || b == b'\\' {
                        s.push(b'\\');
                    }
                    s.push(b);
                }
                s.push(b'"');
            }
            Tok::Quoted(q) => s.extend_from_slice(q),
            Tok::Special(b @ (b'@' | b',' | b'.')) => s.push(*b),
            Tok::Special(_) | Tok::Comment(_) => {}
        }
    }
    s
}

/// A display name: words and unquoted strings joined by single spaces (RFC 3501 7.4.2: "after
/// removing RFC 822 quoting").
fn phrase(toks: &[Tok<'_>]) -> Vec<u8> {
    let mut s = Vec::new();
    for t in toks {
        let w: &[u8] = match t {
            Tok::Word(w) => w,
            Tok::Quoted(q) => q,
            Tok::Special(b'.') => b".",
            _ => continue,
        };
        if !s.is_empty() {
            s.push(b' ');
        }
        s.extend_from_slice(w);
    }
    s
}
