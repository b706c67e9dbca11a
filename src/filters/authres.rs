//! Authentication-Results (placeholder until the module lands).
