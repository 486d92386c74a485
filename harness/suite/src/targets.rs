//! Turning `--kernel` requests into bootable images (or the host).

use std::path::PathBuf;

use harness_kernels::{
    BarProgress, Cache, KernelRequest, LockFile, Mirror, bzimage_version, line_of_release,
};

use crate::{Project, SuiteError, ui};

/// Where one run of the suite happens.
#[derive(Clone, Debug)]
pub enum Target {
    Vm {
        /// What the user asked for: `6.1`, or the image's file name.
        label: String,
        /// Kernel line used to key snapshots (`6.1`).
        line: String,
        release: String,
        bzimage: PathBuf,
        /// Debian package and version, for the summary.
        origin: String,
    },
    Host {
        line: String,
        release: String,
    },
}

impl Target {
    pub fn label(&self) -> &str {
        match self {
            Self::Vm { label, .. } => label,
            Self::Host { .. } => "host",
        }
    }

    pub fn line(&self) -> &str {
        match self {
            Self::Vm { line, .. } | Self::Host { line, .. } => line,
        }
    }
}

fn host_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// Resolves each request: pinned Debian kernels are fetched into the shared
/// cache (verified), custom images are read for their version.
pub fn resolve_targets(
    project: &Project,
    requests: &[KernelRequest],
    mirror: Option<&str>,
) -> Result<Vec<Target>, SuiteError> {
    let cache = Cache::new(Cache::default_root());
    let mut lock: Option<LockFile> = None;
    let mut resolved_mirror: Option<Mirror> = None;
    let mut targets = Vec::new();
    for request in requests {
        match request {
            KernelRequest::Host => {
                let release = host_release();
                targets.push(Target::Host {
                    line: line_of_release(&release).unwrap_or_else(|| release.clone()),
                    release,
                });
            }
            KernelRequest::Image(path) => {
                let version = bzimage_version(path)?;
                let release = version
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                let label = path.file_name().map_or_else(
                    || path.display().to_string(),
                    |n| n.to_string_lossy().into_owned(),
                );
                targets.push(Target::Vm {
                    line: line_of_release(&release).unwrap_or_else(|| label.clone()),
                    label,
                    release,
                    bzimage: path.clone(),
                    origin: format!("custom image {}", path.display()),
                });
            }
            KernelRequest::Line(line) => {
                if lock.is_none() {
                    lock = Some(LockFile::load(&project.lock_file)?);
                }
                let locked = lock
                    .as_ref()
                    .expect("loaded above")
                    .require(line, &project.lock_file)?
                    .clone();
                if resolved_mirror.is_none() {
                    resolved_mirror = Some(Mirror::resolve(mirror)?);
                }
                let image = cache.kernel(
                    &locked,
                    resolved_mirror.as_ref().expect("resolved above"),
                    &BarProgress::new(),
                )?;
                targets.push(Target::Vm {
                    label: line.clone(),
                    line: line.clone(),
                    release: image.release.clone(),
                    bzimage: image.bzimage,
                    origin: format!("{} {}", locked.package, locked.version),
                });
            }
        }
    }
    for t in &targets {
        if let Target::Vm { label, origin, .. } = t {
            ui::status("Kernel", &format!("{label}: {origin}"));
        }
    }
    Ok(targets)
}
