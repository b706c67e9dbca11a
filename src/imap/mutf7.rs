//! STUB (being written): modified UTF-7 mailbox names (RFC 3501 5.1.3).
pub fn decode(s: &[u8]) -> Option<String> {
    String::from_utf8(s.to_vec()).ok()
}
pub fn encode(s: &str) -> String {
    s.to_string()
}
