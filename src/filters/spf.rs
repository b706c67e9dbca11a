//! SPF (placeholder until the module lands).

use std::io::Write;

use super::cli::CliError;
use crate::config::Config;

/// `buzon spf ...`.
pub fn cli(_config: &Config, _args: &[String], _out: &mut dyn Write) -> Result<(), CliError> {
    Err(CliError::Failed("spf: not built yet".into()))
}
