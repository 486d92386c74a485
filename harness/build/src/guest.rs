//! The in-VM runner is the harness's own `vm-runner` package, built from the
//! harness's sources (never the user's workspace) and linked fully statically
//! (glibc with `crt-static`, a static-pie), so the initramfs needs no libc or
//! loader. Not musl: libbpf-sys's vendored elfutils does not build there.

use harness_events::{Event, EventSink};
use std::{
    io,
    path::{Path, PathBuf},
    process::Command,
};

pub const GUEST_TARGET: &str = "x86_64-unknown-linux-gnu";

/// The runner's package in the harness's workspace.
const RUNNER_PACKAGE: &str = "vm-runner";

/// The harness's workspace, as it was when this crate was built: a
/// checkout, or where `cargo install --git`/`--path` left the sources.
pub fn harness_sources() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), Path::to_owned)
}

/// Where the runner is built: `HARNESS_RUNNER_TARGET_DIR`, else
/// `CARGO_TARGET_DIR`, else the harness's own `target/`, so every project
/// shares one runner build (its first build compiles libbpf: minutes).
pub fn runner_target_dir() -> PathBuf {
    ["HARNESS_RUNNER_TARGET_DIR", "CARGO_TARGET_DIR"]
        .into_iter()
        .find_map(std::env::var_os)
        .map_or_else(|| harness_sources().join("target"), PathBuf::from)
}

/// Given to the runner's crates only (cargo applies a target's rustflags to
/// neither build scripts nor proc macros when `--target` is passed).
const STATIC_RUSTFLAGS: (&str, &str) = (
    "CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS",
    "-C target-feature=+crt-static",
);

#[derive(Debug, thiserror::Error)]
pub enum GuestBuildError {
    #[error(
        "the Rust target {GUEST_TARGET} is not installed and `rustup target add {GUEST_TARGET}` failed: {0}"
    )]
    Target(String),
    #[error("building the in-VM runner failed ({status}); see cargo's output above")]
    Cargo { status: String },
    #[error(
        "the in-VM runner's sources are not at {}: install the harness from its repository \
         (`cargo install --git <url> ebpf-harness` or `--path`), whose checkout holds them",
        .0.display()
    )]
    NoSources(PathBuf),
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

/// Builds the runner from the harness's sources for [`GUEST_TARGET`] in
/// release mode into `target_dir` and returns the binary's path. Installs
/// the target with rustup when missing.
pub fn build_guest_runner(
    target_dir: &Path,
    events: &dyn EventSink,
) -> Result<PathBuf, GuestBuildError> {
    let workspace = harness_sources();
    let manifest = workspace.join(RUNNER_PACKAGE).join("Cargo.toml");
    if !manifest.is_file() {
        return Err(GuestBuildError::NoSources(workspace));
    }
    let package = RUNNER_PACKAGE;
    let binary = target_dir.join(GUEST_TARGET).join("release").join(package);
    if cargo_binary().is_some_and(|cargo| runner_is_fresh(&workspace, &binary, &cargo)) {
        return Ok(binary);
    }
    events.event(Event::BuildingRunner);
    if target_installed() == Some(false) {
        events.event(Event::InstallingTarget {
            target: GUEST_TARGET.to_owned(),
        });
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
        .current_dir(&workspace)
        .arg("build")
        .arg("--manifest-path")
        .arg(&manifest)
        .args([
            "--quiet",
            "--release",
            "--package",
            package,
            "--target",
            GUEST_TARGET,
        ])
        .arg("--target-dir")
        .arg(target_dir)
        .env(STATIC_RUSTFLAGS.0, STATIC_RUSTFLAGS.1)
        .status()
        .map_err(GuestBuildError::Io)?;
    if !status.success() {
        return Err(GuestBuildError::Cargo {
            status: status.to_string(),
        });
    }
    Ok(binary)
}

/// The cargo that builds the runner: cargo's own when it runs us
/// (`cargo xtask`), else the first on `PATH` (an installed `ebpf-harness`),
/// so the freshness check spares both the 100 ms of asking cargo.
fn cargo_binary() -> Option<PathBuf> {
    cargo_from(std::env::var_os("CARGO"), std::env::var_os("PATH"))
}

/// [`cargo_binary`] given `CARGO` and `PATH`.
fn cargo_from(
    cargo: Option<std::ffi::OsString>,
    path: Option<std::ffi::OsString>,
) -> Option<PathBuf> {
    if let Some(cargo) = cargo {
        return Some(PathBuf::from(cargo));
    }
    std::env::split_paths(&path?)
        .map(|d| d.join("cargo"))
        .find(|p| p.is_file())
}

/// Whether the runner binary is newer than its sources (cargo's dep-info),
/// the manifests, the lock file, cargo's configuration and the toolchain:
/// then asking cargo (70-100 ms with rustup) can be skipped.
fn runner_is_fresh(workspace: &Path, binary: &Path, cargo: &Path) -> bool {
    let depfile = binary.with_extension("d");
    let Ok(text) = std::fs::read_to_string(&depfile) else {
        return false;
    };
    // Each local crate's manifest sits above its `src/`.
    let mut manifests: Vec<PathBuf> = crate::fresh::parse_depfile(&text)
        .iter()
        .filter_map(|dep| {
            Path::new(dep)
                .ancestors()
                .find(|d| d.file_name().is_some_and(|n| n == "src"))
                .and_then(Path::parent)
                .map(|crate_dir| crate_dir.join("Cargo.toml"))
        })
        .collect();
    manifests.sort();
    manifests.dedup();
    let mut extra: Vec<PathBuf> = vec![
        workspace.join("Cargo.toml"),
        workspace.join("Cargo.lock"),
        cargo.to_owned(),
    ];
    extra.extend(manifests);
    // Optional files count only when present.
    for optional in [
        ".cargo/config.toml",
        "rust-toolchain.toml",
        "rust-toolchain",
    ] {
        let p = workspace.join(optional);
        if p.exists() {
            extra.push(p);
        }
    }
    let extra: Vec<&Path> = extra.iter().map(PathBuf::as_path).collect();
    crate::fresh::newer_than_deps(binary, &depfile, &extra)
}

#[cfg(test)]
mod tests {
    use std::{fs, thread::sleep, time::Duration};

    use super::*;

    #[test]
    fn cargo_is_cargos_own_else_the_first_on_path() {
        let dirs = tempfile::tempdir().unwrap();
        let (empty, bin) = (dirs.path().join("empty"), dirs.path().join("bin"));
        fs::create_dir_all(&empty).unwrap();
        fs::create_dir_all(bin.join("cargo/")).unwrap();
        let path = std::env::join_paths([&empty, &bin]).unwrap();
        // A directory named cargo is not cargo.
        assert_eq!(cargo_from(None, Some(path.clone())), None);
        fs::remove_dir(bin.join("cargo")).unwrap();
        fs::write(bin.join("cargo"), "").unwrap();
        assert_eq!(
            cargo_from(None, Some(path.clone())),
            Some(bin.join("cargo"))
        );
        assert_eq!(
            cargo_from(Some("/opt/cargo".into()), Some(path)),
            Some(PathBuf::from("/opt/cargo"))
        );
        assert_eq!(cargo_from(None, None), None);
    }

    #[test]
    fn the_runner_is_rebuilt_when_a_source_or_manifest_changes() {
        let ws = tempfile::tempdir().unwrap();
        let w = ws.path();
        for f in [
            "Cargo.toml",
            "Cargo.lock",
            "runner/Cargo.toml",
            "runner/src/main.rs",
            "cargo",
        ] {
            let p = w.join(f);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(&p, "x").unwrap();
        }
        let binary = w.join("target/release/runner");
        let cargo = w.join("cargo");
        assert!(!runner_is_fresh(w, &binary, &cargo), "never built");
        sleep(Duration::from_millis(20));
        fs::create_dir_all(binary.parent().unwrap()).unwrap();
        fs::write(&binary, "elf").unwrap();
        assert!(!runner_is_fresh(w, &binary, &cargo), "no dep-info");
        let main = w.join("runner/src/main.rs");
        fs::write(
            binary.with_extension("d"),
            format!("{}: {}\n", binary.display(), main.display()),
        )
        .unwrap();
        assert!(runner_is_fresh(w, &binary, &cargo));
        for changed in ["runner/src/main.rs", "runner/Cargo.toml", "Cargo.lock"] {
            sleep(Duration::from_millis(20));
            fs::write(w.join(changed), "y").unwrap();
            assert!(!runner_is_fresh(w, &binary, &cargo), "{changed} changed");
            sleep(Duration::from_millis(20));
            fs::write(&binary, "elf").unwrap();
            assert!(runner_is_fresh(w, &binary, &cargo));
        }
        fs::remove_file(&main).unwrap();
        assert!(!runner_is_fresh(w, &binary, &cargo), "a source is gone");
    }
}
