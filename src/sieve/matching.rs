//! Comparators and match types: i;octet, i;ascii-casemap and i;ascii-numeric (RFC 4790 9),
//! :is, :contains and :matches (RFC 5228 2.7.1) and the relational :value and :count
//! (RFC 5231). `:matches` runs in O(text x pattern) time whatever the pattern (a star is
//! re-extended only from the last one seen, never by recursion) and yields the strings the
//! wildcards took, for RFC 5229 3.2 match variables.

use std::cmp::Ordering;

use super::ast::{Cmp, Mt, Rel};

fn eq_char(cmp: Cmp, a: char, b: char) -> bool {
    match cmp {
        Cmp::AsciiCasemap => a.eq_ignore_ascii_case(&b),
        _ => a == b,
    }
}

/// RFC 4790 9.1: the number a string starts with, or None (positive infinity) when it does not
/// start with a digit. Kept as its digits without leading zeros so any length compares.
fn numeric(s: &str) -> Option<&str> {
    let end = s.bytes().position(|b| !b.is_ascii_digit()).unwrap_or(s.len());
    if end == 0 {
        return None;
    }
    let d = s[..end].trim_start_matches('0');
    Some(d)
}

/// The ordering of two values under a comparator (RFC 4790 9).
pub(crate) fn order(cmp: Cmp, a: &str, b: &str) -> Ordering {
    match cmp {
        Cmp::Octet => a.as_bytes().cmp(b.as_bytes()),
        Cmp::AsciiCasemap => {
            a.bytes().map(|c| c.to_ascii_uppercase()).cmp(b.bytes().map(|c| c.to_ascii_uppercase()))
        }
        Cmp::AsciiNumeric => match (numeric(a), numeric(b)) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Greater,
            (Some(_), None) => Ordering::Less,
            (Some(x), Some(y)) => x.len().cmp(&y.len()).then_with(|| x.cmp(y)),
        },
    }
}

fn rel_holds(rel: Rel, o: Ordering) -> bool {
    match rel {
        Rel::Gt => o == Ordering::Greater,
        Rel::Ge => o != Ordering::Less,
        Rel::Lt => o == Ordering::Less,
        Rel::Le => o != Ordering::Greater,
        Rel::Eq => o == Ordering::Equal,
        Rel::Ne => o != Ordering::Equal,
    }
}

/// One value against one key. `Some(captures)` when it matches; the captures are non-empty only
/// for :matches (`${0}` the whole value, then one per wildcard).
pub(crate) fn matches(cmp: Cmp, mt: Mt, value: &str, key: &str) -> Option<Vec<String>> {
    let ok = match mt {
        Mt::Is => order(cmp, value, key) == Ordering::Equal,
        Mt::Contains => contains(cmp, value, key),
        Mt::Value(rel) => rel_holds(rel, order(cmp, value, key)),
        // :count compares the number of values, not a value: see `count`.
        Mt::Count(_) => false,
        Mt::Matches => return wildcard(cmp, value, key),
    };
    ok.then(Vec::new)
}

/// RFC 5231 4.2: the number of values against a key.
pub(crate) fn count(cmp: Cmp, rel: Rel, n: usize, key: &str) -> bool {
    rel_holds(rel, order(cmp, &n.to_string(), key))
}

fn contains(cmp: Cmp, value: &str, key: &str) -> bool {
    match cmp {
        Cmp::AsciiCasemap => {
            let (v, k) = (value.as_bytes(), key.as_bytes());
            k.is_empty() || v.windows(k.len()).any(|w| w.eq_ignore_ascii_case(k))
        }
        _ => value.contains(key),
    }
}

#[derive(Clone, Copy)]
enum P {
    Lit(char),
    One,
    Star,
}

/// RFC 5228 2.7.1 :matches: `*` any run, `?` one character, `\` quotes the next character. Stars
/// take as little as they can, leftmost first (as RFC 5229 3.2's examples read).
fn wildcard(cmp: Cmp, value: &str, key: &str) -> Option<Vec<String>> {
    let mut pat = Vec::with_capacity(key.len());
    let mut it = key.chars();
    while let Some(c) = it.next() {
        pat.push(match c {
            '\\' => match it.next() {
                Some(n) => P::Lit(n),
                None => break,
            },
            '*' => {
                // Runs of stars are one star for matching, but each still counts as a capture.
                P::Star
            }
            '?' => P::One,
            c => P::Lit(c),
        });
    }
    let text: Vec<(usize, char)> = value.char_indices().collect();
    let n = text.len();
    let byte_at = |i: usize| text.get(i).map_or(value.len(), |&(b, _)| b);
    // caps: (start, end) in characters, one per wildcard seen so far.
    let mut caps: Vec<(usize, usize)> = Vec::new();
    // The last star: its pattern index, where its capture starts and ends now, and caps before it.
    let mut star: Option<(usize, usize, usize, usize)> = None;
    let (mut p, mut t) = (0usize, 0usize);
    loop {
        match pat.get(p) {
            Some(P::Star) => {
                caps.push((t, t));
                star = Some((p, t, t, caps.len()));
                p += 1;
                continue;
            }
            Some(P::One) if t < n => {
                caps.push((t, t + 1));
                p += 1;
                t += 1;
                continue;
            }
            Some(P::Lit(c)) if t < n && text.get(t).is_some_and(|&(_, x)| eq_char(cmp, *c, x)) => {
                p += 1;
                t += 1;
                continue;
            }
            None if t == n => break,
            _ => {}
        }
        // Mismatch: let the last star take one more character and retry what follows it.
        match star {
            Some((sp, start, end, cl)) if end < n => {
                star = Some((sp, start, end + 1, cl));
                caps.truncate(cl);
                if let Some(last) = caps.last_mut() {
                    *last = (start, end + 1);
                }
                p = sp + 1;
                t = end + 1;
            }
            _ => return None,
        }
    }
    let mut out = Vec::with_capacity(caps.len() + 1);
    out.push(value.to_string());
    for (s, e) in caps.into_iter().take(9) {
        out.push(value[byte_at(s)..byte_at(e)].to_string());
    }
    Some(out)
}
