//! Content scanners (placeholder until the module lands).
