//! The message as a Sieve script sees it: header fields decoded from RFC 2047 encoded words
//! (RFC 5228 2.7.2), the addresses of address fields with groups and comments understood
//! (RFC 5228 5.1, RFC 5322 3.4), the body for the body test (RFC 5173) within [`BODY_MAX`], and the
//! size (RFC 5228 5.9). The decoders are those IMAP SEARCH uses (imap::message).

use std::cell::OnceCell;

use super::BODY_MAX;
use crate::imap::message::{self as m, Addr, ContentPart};

/// One message: its octets (the whole message, or at least its header and the start of its body)
/// and its full size.
pub struct Message<'a> {
    data: &'a [u8],
    size: u64,
    header: &'a [u8],
    parts: OnceCell<Vec<ContentPart>>,
}

/// One address of an address field: local part and domain as written (no decoding applies to them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct MailAddr {
    pub local: String,
    /// None when the address has no domain (`root`).
    pub domain: Option<String>,
}

impl<'a> Message<'a> {
    /// A message held whole in memory.
    pub fn new(data: &'a [u8]) -> Self {
        Message::with_size(data, data.len() as u64)
    }

    /// `data` is the start of a message of `size` octets (its header and as much body as the
    /// caller read: the body test looks at no more than [`BODY_MAX`] octets of it anyway).
    pub fn with_size(data: &'a [u8], size: u64) -> Self {
        Message { data, size, header: m::header(data), parts: OnceCell::new() }
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// The decoded, unfolded values of every field `name` (RFC 5228 5.7), in order.
    pub fn header(&self, name: &str) -> Vec<String> {
        m::header_values(self.header, name).into_iter().map(|v| v.trim().to_string()).collect()
    }

    pub fn exists(&self, name: &str) -> bool {
        m::fields(self.header).any(|f| f.name.eq_ignore_ascii_case(name.as_bytes()))
    }

    /// The addresses in every field `name` (RFC 5228 5.1): group members count, group names and
    /// display names do not.
    pub(crate) fn addresses(&self, name: &str) -> Vec<MailAddr> {
        let mut out = Vec::new();
        for raw in raw_values(self.header, name) {
            for a in m::addresses(raw) {
                if let Addr::Mailbox { mailbox, host, .. } = a {
                    if mailbox == m::MISSING_MAILBOX {
                        continue;
                    }
                    let domain =
                        (host != m::MISSING_DOMAIN).then(|| String::from_utf8_lossy(&host).into_owned());
                    out.push(MailAddr { local: String::from_utf8_lossy(&mailbox).into_owned(), domain });
                }
            }
        }
        out
    }

    /// The body after the header, cut at [`BODY_MAX`] octets.
    fn body(&self) -> &[u8] {
        let b = m::body(self.data);
        &b[..b.len().min(BODY_MAX)]
    }

    /// RFC 5173 5.1 :raw: the body as it is, undecoded.
    pub(crate) fn raw_body(&self) -> String {
        String::from_utf8_lossy(self.body()).into_owned()
    }

    /// The decoded leaf parts of the (cut) message, computed once.
    pub(crate) fn parts(&self) -> &[ContentPart] {
        self.parts.get_or_init(|| {
            let end = (self.header.len() + BODY_MAX).min(self.data.len());
            m::content_parts(&self.data[..end])
        })
    }
}

/// The raw (undecoded) values of every field `name`: address parsing must see the structure
/// before any encoded word is decoded (RFC 2047 5).
fn raw_values<'h>(header: &'h [u8], name: &str) -> Vec<&'h [u8]> {
    m::fields(header).filter(|f| f.name.eq_ignore_ascii_case(name.as_bytes())).map(|f| f.value).collect()
}

/// Elements that run within a line: they leave no space behind.
const INLINE: [&str; 12] =
    ["a", "b", "i", "u", "em", "strong", "span", "font", "small", "big", "code", "sup"];

/// RFC 5173 5.3 :text for an HTML part: the text between the tags (a tag that breaks the flow
/// becomes a space), entities left as they are.
pub(crate) fn html_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(lt) = rest.find('<') {
        out.push_str(&rest[..lt]);
        let Some(gt) = rest[lt..].find('>') else {
            rest = "";
            break;
        };
        let tag = rest[lt + 1..lt + gt].trim_start_matches('/');
        let name: String =
            tag.chars().take_while(|c| c.is_ascii_alphanumeric()).collect::<String>().to_ascii_lowercase();
        if !INLINE.contains(&name.as_str()) {
            out.push(' ');
        }
        rest = &rest[lt + gt + 1..];
    }
    out.push_str(rest);
    out
}
