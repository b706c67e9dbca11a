//! ManageSieve (RFC 5804): remote editing of a user's Sieve scripts (RFC 5228), as Thunderbird's
//! Sieve add-on, Roundcube's managesieve plugin and `sieveshell` speak it. The protocol pieces
//! live here, free of network I/O: [`command`] parses a complete command (its string literals
//! inline), [`session`] is the state machine that answers it, [`scripts`] keeps the scripts on
//! disk in Dovecot Pigeonhole's layout. The network driver is server/drivers/managesieve.rs.
//!
//! Scripts are checked by a [`ScriptCheck`] given to the session: that is where the Sieve
//! language parser plugs in, so PUTSCRIPT and CHECKSCRIPT refuse a script delivery could not run
//! (RFC 5804 2.6, 2.12). [`script_check`] gives [`SieveCheck`]: UTF-8 text without NUL (RFC 5228
//! 2.2), then the Sieve parser of src/sieve/ (unknown commands, extensions not required, syntax),
//! so a stored script is one delivery can run.

pub mod command;
pub mod scripts;
pub mod session;

#[cfg(test)]
mod tests;

/// The Sieve extensions (RFC 5804 1.7 "SIEVE" capability) announced to clients: the ones the
/// interpreter that runs the scripts at delivery implements.
pub fn sieve_extensions() -> &'static str {
    "fileinto reject ereject envelope body variables imap4flags copy vacation mailbox encoded-character relational \
     subaddress"
}

/// The script check every ManageSieve session is given (the server's and a mail process's):
/// the one place where the Sieve language parser's [`ScriptCheck`] replaces [`TextCheck`].
pub fn script_check() -> std::sync::Arc<dyn ScriptCheck> {
    std::sync::Arc::new(SieveCheck)
}

/// [`TextCheck`], then the Sieve language parser (crate::sieve::parse): the error names its line.
pub struct SieveCheck;

impl ScriptCheck for SieveCheck {
    fn check(&self, script: &[u8]) -> Result<Vec<String>, String> {
        let warnings = TextCheck.check(script)?;
        crate::sieve::parse(script).map(|_| warnings).map_err(|e| e.to_string())
    }
}

/// Checks a script before it is stored (PUTSCRIPT) or only checked (CHECKSCRIPT).
///
/// The Sieve parser implements this: `Ok(warnings)` when the script is valid (the warnings, if any,
/// go to the client as `OK (WARNINGS)`, RFC 5804 1.3), `Err(text)` when it is not, the text naming
/// the line of the first error (it becomes the human-readable string of the `NO`, RFC 5804 2.6:
/// "the server MUST ... report the error").
pub trait ScriptCheck: Send + Sync {
    fn check(&self, script: &[u8]) -> Result<Vec<String>, String>;
}

/// The first half of [`SieveCheck`]: a script must be UTF-8 text
/// (RFC 5228 2.2) without NUL octets; its Sieve syntax is the parser's business.
pub struct TextCheck;

impl ScriptCheck for TextCheck {
    fn check(&self, script: &[u8]) -> Result<Vec<String>, String> {
        let text = match std::str::from_utf8(script) {
            Ok(t) => t,
            Err(e) => {
                let line = 1 + script
                    .get(..e.valid_up_to())
                    .unwrap_or_default()
                    .iter()
                    .filter(|&&b| b == b'\n')
                    .count();
                return Err(format!("line {line}: the script is not UTF-8 text (RFC 5228 2.2)"));
            }
        };
        if let Some(at) = text.find('\0') {
            let line = 1 + text[..at].matches('\n').count();
            return Err(format!("line {line}: NUL character in the script"));
        }
        Ok(Vec::new())
    }
}
