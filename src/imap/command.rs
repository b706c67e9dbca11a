//! STUB (being written): IMAP command parser.
use crate::imap::types::Command;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    pub tag: Option<String>,
    pub message: String,
}

pub fn parse(_buf: &[u8]) -> Result<(String, Command), ParseError> {
    Err(ParseError { tag: None, message: "not yet".into() })
}
