//! Test-case files (`*.toml`) and the insta snapshots they produce
//! (`snapshots/`). This crate holds data; it exists so that `cargo insta
//! review` and `cargo insta accept`, which look for snapshots inside
//! workspace packages, find them.

use std::path::{Path, PathBuf};

/// The directory holding the test-case files.
pub fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_owned()
}
