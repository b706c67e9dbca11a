//! DKIM, both sides: verifying the signatures of inbound mail and signing outbound mail (RFC 6376,
//! RFC 8463 ed25519-sha256, RFC 8301 algorithm and key-size rules), with results named as in
//! RFC 8601 for Authentication-Results. Keys come from DNS through [`crate::dns::Lookup`] and,
//! for signing, from `DATA_DIR/dkim/DOMAIN.SELECTOR.{rsa,ed25519}.pem`.
//!
//! Submodules: `canon` (3.4 canonicalization, streamed body hash), `header` (tag lists and the
//! DKIM-Signature field), `key` (key records, DER, key files), `verify`, `sign`, `cli`.

mod canon;
mod cli;
mod header;
mod key;
mod sign;
mod verify;

#[cfg(test)]
mod tests;

pub use cli::{cli, zone_line};
pub use key::{SigningKey, keys_for};
pub use sign::Signer;
pub use verify::{MAX_SIGNATURES, Verifier};

/// A DKIM result (RFC 8601 2.7.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DkimResult {
    None,
    Pass,
    Fail,
    Neutral,
    TempError,
    PermError,
    Policy,
}

impl DkimResult {
    pub fn as_str(self) -> &'static str {
        match self {
            DkimResult::None => "none",
            DkimResult::Pass => "pass",
            DkimResult::Fail => "fail",
            DkimResult::Neutral => "neutral",
            DkimResult::TempError => "temperror",
            DkimResult::PermError => "permerror",
            DkimResult::Policy => "policy",
        }
    }
}

/// The outcome of one signature, with what it claimed (empty strings where a tag was missing).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub result: DkimResult,
    /// `d=` (lowercase).
    pub domain: String,
    /// `s=`.
    pub selector: String,
    /// `a=`.
    pub algorithm: String,
    /// The first 8 characters of `b=`, for `header.b` (RFC 6008).
    pub header_b: String,
    /// `i=` as written, when present.
    pub identity: Option<String>,
    /// Why it is not a pass.
    pub reason: Option<String>,
}
