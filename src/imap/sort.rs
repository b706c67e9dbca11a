//! SORT (RFC 5256 3 and 4; RFC 5957 DISPLAYFROM/DISPLAYTO): messages ordered by a list of
//! criteria compared with i;ascii-casemap (RFC 4790 9.2), ties broken by message number. The
//! keys come from keys.rs (one header read per message, cached per folder); the base subject
//! from subject.rs. No I/O here.

pub mod keys;
pub mod subject;

use std::cmp::Ordering;

pub use keys::{KeyCache, Keys};

use crate::imap::types::{SortCriterion, SortKey};

/// One message to sort or thread.
#[derive(Clone, Copy, Debug)]
pub struct Item<'k> {
    /// 0-based index in the folder's view (message number - 1): the final tie-break.
    pub index: usize,
    /// RFC822.SIZE.
    pub size: u64,
    /// INTERNALDATE, seconds since the epoch.
    pub arrival: i64,
    pub keys: &'k Keys,
}

impl Item<'_> {
    /// RFC 5256 2.2: the sent date, or INTERNALDATE when the Date: field is missing or invalid.
    pub fn sent(&self) -> i64 {
        self.keys.sent.unwrap_or(self.arrival)
    }

    /// RFC 5256 2.2 order: sent date, then message number.
    pub fn date_order(&self, other: &Item<'_>) -> Ordering {
        self.sent().cmp(&other.sent()).then(self.index.cmp(&other.index))
    }
}

/// RFC 5256 3: orders `items` by the criteria in turn (REVERSE turning one round), then by message
/// number when all of them are equal.
pub fn sort(items: &mut [Item<'_>], criteria: &[SortCriterion]) {
    items.sort_by(|a, b| {
        for c in criteria {
            let o = compare(c.key, a, b);
            let o = if c.reverse { o.reverse() } else { o };
            if o != Ordering::Equal {
                return o;
            }
        }
        a.index.cmp(&b.index)
    });
}

/// One criterion. Strings are stored ASCII upper-cased (keys.rs), so octet order is RFC 4790's
/// i;ascii-casemap; a missing address or subject is the empty string, which sorts first.
fn compare(key: SortKey, a: &Item<'_>, b: &Item<'_>) -> Ordering {
    let (x, y) = (a.keys, b.keys);
    match key {
        SortKey::Arrival => a.arrival.cmp(&b.arrival),
        SortKey::Date => a.sent().cmp(&b.sent()),
        SortKey::Size => a.size.cmp(&b.size),
        SortKey::Subject => x.subject.cmp(&y.subject),
        SortKey::From => x.from.cmp(&y.from),
        SortKey::To => x.to.cmp(&y.to),
        SortKey::Cc => x.cc.cmp(&y.cc),
        SortKey::DisplayFrom => x.display_from.cmp(&y.display_from),
        SortKey::DisplayTo => x.display_to.cmp(&y.display_to),
    }
}

#[cfg(test)]
mod tests;
