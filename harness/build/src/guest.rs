//! The in-VM runner is an ordinary workspace binary built for a static musl
//! target, so the initramfs needs no libc or loader.

use std::{
    io,
    path::{Path, PathBuf},
    process::Command,
};

pub const GUEST_TARGET: &str = "x86_64-unknown-linux-musl";

#[derive(Debug, thiserror::Error)]
pub enum GuestBuildError {
    #[error(
        "the Rust target {GUEST_TARGET} is not installed and `rustup target add {GUEST_TARGET}` failed: {0}"
    )]
    Target(String),
    #[error("building the in-VM runner failed ({status}); see cargo's output above")]
    Cargo { status: String },
    #[error("running cargo: {0}")]
    Io(io::Error),
}

fn target_installed() -> Option<bool> {
    let out = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .ok()?;
    Some(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .any(|l| l.trim() == GUEST_TARGET),
    )
}

/// Builds `package` (the runner) for [`GUEST_TARGET`] in release mode and
/// returns the binary's path. Installs the target with rustup when missing.
pub fn build_guest_runner(
    workspace: &Path,
    target_dir: &Path,
    package: &str,
) -> Result<PathBuf, GuestBuildError> {
    if target_installed() == Some(false) {
        eprintln!("note: installing the Rust target {GUEST_TARGET} for the in-VM runner");
        let out = Command::new("rustup")
            .args(["target", "add", GUEST_TARGET])
            .output()
            .map_err(|e| GuestBuildError::Target(e.to_string()))?;
        if !out.status.success() {
            return Err(GuestBuildError::Target(
                String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            ));
        }
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(workspace)
        .args([
            "build",
            "--quiet",
            "--release",
            "--package",
            package,
            "--target",
            GUEST_TARGET,
        ])
        .arg("--target-dir")
        .arg(target_dir)
        .status()
        .map_err(GuestBuildError::Io)?;
    if !status.success() {
        return Err(GuestBuildError::Cargo {
            status: status.to_string(),
        });
    }
    Ok(target_dir.join(GUEST_TARGET).join("release").join(package))
}
