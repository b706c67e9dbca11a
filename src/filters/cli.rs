//! `buzon spf ...`, `buzon dkim ...`, `buzon dmarc ...`: the checks and the key tools by hand;
//! `buzon dns-records DOMAIN`: what to publish.

use std::io::Write;

use crate::config::Config;

/// Why a command failed: a usage error (exit 64) or the work itself (exit 1).
#[derive(Debug)]
pub enum CliError {
    Usage(String),
    Failed(String),
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CliError::Usage(s) | CliError::Failed(s) => f.write_str(s),
        }
    }
}

/// Runs `buzon COMMAND ARGS...` for COMMAND `spf`, `dkim`, `dmarc` or `dns-records`.
pub fn run(command: &str, config: &Config, args: &[String], out: &mut dyn Write) -> Result<(), CliError> {
    match command {
        "spf" => super::spf::cli(config, args, out),
        "dkim" => super::dkim::cli(config, args, out),
        "dmarc" => super::dmarc::cli(config, args, out),
        "dns-records" => crate::records::cli(config, args, out),
        _ => Err(CliError::Usage(format!("unknown command {command}"))),
    }
}
