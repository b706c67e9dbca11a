//! Strings at run time: RFC 5228 2.4.2.4 encoded characters (`${hex:..}`, `${unicode:..}`,
//! decoded when the script is parsed) and RFC 5229 variables (`${name}`, `${N}` match variables,
//! expanded when a command or test runs; `set` modifiers, 4).

use std::collections::HashMap;

use super::ast::Modifier;
use super::{MAX_VAR_LEN, MAX_VARIABLES};

/// RFC 5229 3: identifier = (ALPHA / "_") *(ALPHA / DIGIT / "_").
pub(crate) fn valid_name(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(f) if f.is_ascii_alphabetic() || f == '_')
        && c.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// RFC 5228 2.4.2.4: `${hex: 41 42}` and `${unicode: 263a}` become the characters they name; a
/// sequence that is not valid stays as written.
pub(crate) fn decode_encoded(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(p) = rest.find("${") {
        out.push_str(&rest[..p]);
        let after = &rest[p + 2..];
        let decoded = after.find('}').and_then(|end| {
            let inner = &after[..end];
            let (kind, body) = inner.split_once(':')?;
            let kind = kind.to_ascii_lowercase();
            let units: Vec<&str> = body.split([' ', '\t', '\r', '\n']).filter(|u| !u.is_empty()).collect();
            let text = match kind.as_str() {
                "hex" => {
                    let bytes = units
                        .iter()
                        .map(|u| if u.len() <= 2 { u8::from_str_radix(u, 16).ok() } else { None })
                        .collect::<Option<Vec<u8>>>()?;
                    String::from_utf8(bytes).ok()?
                }
                "unicode" => units
                    .iter()
                    .map(|u| {
                        if u.len() <= 6 {
                            u32::from_str_radix(u, 16).ok().and_then(char::from_u32)
                        } else {
                            None
                        }
                    })
                    .collect::<Option<String>>()?,
                _ => return None,
            };
            Some((text, end))
        });
        match decoded {
            Some((text, end)) => {
                out.push_str(&text);
                rest = &after[end + 1..];
            }
            None => {
                out.push_str("${");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The variables of one run.
#[derive(Default)]
pub(crate) struct Vars {
    named: HashMap<String, String>,
    /// `${0}`..`${9}` from the last :matches that succeeded (RFC 5229 3.2).
    pub matched: Vec<String>,
}

/// Cuts `s` to at most `max` octets on a character boundary.
pub(crate) fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

impl Vars {
    pub fn get(&self, name: &str) -> &str {
        self.named.get(name).map_or("", String::as_str)
    }

    /// Sets a variable (the name already lowercase); false when the table is full.
    pub fn set(&mut self, name: &str, value: String) -> bool {
        if !self.named.contains_key(name) && self.named.len() >= MAX_VARIABLES {
            return false;
        }
        self.named.insert(name.to_string(), truncate(value, MAX_VAR_LEN));
        true
    }

    /// RFC 5229 3: `${name}` and `${N}` replaced by their values (unknown ones by nothing);
    /// anything else that looks like a reference stays as written. Not recursive.
    pub fn expand(&self, s: &str) -> String {
        if !s.contains("${") {
            return s.to_string();
        }
        let mut out = String::with_capacity(s.len());
        let mut rest = s;
        while let Some(p) = rest.find("${") {
            out.push_str(&rest[..p]);
            let after = &rest[p + 2..];
            let name = after.find('}').map(|e| &after[..e]);
            match name {
                Some(n) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => {
                    let i: usize = n.trim_start_matches('0').parse().unwrap_or(0);
                    if n.len() <= 3 {
                        out.push_str(self.matched.get(i).map_or("", String::as_str));
                    }
                    rest = &after[n.len() + 1..];
                }
                Some(n) if valid_name(n) => {
                    out.push_str(self.get(&n.to_ascii_lowercase()));
                    rest = &after[n.len() + 1..];
                }
                _ => {
                    out.push_str("${");
                    rest = after;
                }
            }
            if out.len() > super::MAX_STRING {
                break;
            }
        }
        out.push_str(rest);
        truncate(out, super::MAX_STRING)
    }
}

/// RFC 5229 4.1: modifiers, highest precedence first (the parser sorted them).
pub(crate) fn modify(mut v: String, mods: &[Modifier]) -> String {
    for m in mods {
        v = match m {
            Modifier::Lower => v.to_lowercase(),
            Modifier::Upper => v.to_uppercase(),
            Modifier::LowerFirst | Modifier::UpperFirst => {
                let mut c = v.chars();
                match c.next() {
                    Some(f) if *m == Modifier::LowerFirst => f.to_lowercase().chain(c).collect(),
                    Some(f) => f.to_uppercase().chain(c).collect(),
                    None => v,
                }
            }
            Modifier::QuoteWildcard => {
                let mut o = String::with_capacity(v.len());
                for ch in v.chars() {
                    if matches!(ch, '*' | '?' | '\\') {
                        o.push('\\');
                    }
                    o.push(ch);
                }
                o
            }
            Modifier::Length => v.chars().count().to_string(),
        };
    }
    v
}
