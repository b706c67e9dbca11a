//! DKIM (placeholder until the module lands).

use std::io::Write;

use super::cli::CliError;
use crate::config::Config;

/// `buzon dkim ...`.
pub fn cli(_config: &Config, _args: &[String], _out: &mut dyn Write) -> Result<(), CliError> {
    Err(CliError::Failed("dkim: not built yet".into()))
}
