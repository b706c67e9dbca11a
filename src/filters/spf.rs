//! SPF (placeholder until the module lands).

use std::io::Write;

use super::cli::CliError;
use crate::config::Config;

/// `buzon spf ...`.
pub fn cli(_config: &Config, _args: &[String], _out: &mut dyn Write) -> Result<(), CliError> {
    Err(CliError::Failed("spf: not built yet".into()))
}

// Placeholder API (replaced by the SPF module when it lands).
use crate::dns::Lookup;
use std::net::IpAddr;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpfResult {
    None,
    Neutral,
    Pass,
    Fail,
    SoftFail,
    TempError,
    PermError,
}

impl SpfResult {
    pub fn as_str(self) -> &'static str {
        "none"
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    MailFrom,
    Helo,
}

#[derive(Clone, Debug)]
pub struct Spf {
    pub result: SpfResult,
    pub scope: Scope,
    pub domain: String,
    pub sender: String,
    pub explanation: Option<String>,
    pub problem: Option<String>,
}

impl Spf {
    pub fn received_spf(&self, _ip: IpAddr, _helo: &str, _receiver: &str) -> String {
        String::new()
    }
}

pub fn check(_dns: &dyn Lookup, _ip: IpAddr, mail_from: &str, _helo: &str, _receiver: &str) -> Spf {
    Spf {
        result: SpfResult::None,
        scope: Scope::MailFrom,
        domain: String::new(),
        sender: mail_from.into(),
        explanation: None,
        problem: None,
    }
}
