//! DMARC (placeholder until the module lands).

use std::io::Write;

use super::cli::CliError;
use crate::config::Config;

/// `buzon dmarc ...`.
pub fn cli(_config: &Config, _args: &[String], _out: &mut dyn Write) -> Result<(), CliError> {
    Err(CliError::Failed("dmarc: not built yet".into()))
}
