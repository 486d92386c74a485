use std::process::ExitCode;

use harness_kernels::{BarProgress, Cache, LockFile, Mirror};

#[derive(clap::Args)]
pub struct Options {
    /// Debian mirror [default: from HARNESS_DEBIAN_MIRROR or apt's configuration].
    #[arg(long)]
    debian_mirror: Option<String>,
}

/// Everything a fresh machine needs, ahead of time: system packages, the
/// musl target of the in-VM runner, and the pinned kernels.
pub fn run(o: Options) -> anyhow::Result<ExitCode> {
    let project = crate::project()?;
    harness_suite::prereq::install(&harness_suite::prereq::missing(true))
        .map_err(anyhow::Error::msg)?;
    harness_build::build_guest_runner(&project.root, &project.target_dir, &project.guest_package)?;
    let lock = LockFile::load(&project.lock_file)?;
    let mirror = Mirror::resolve(o.debian_mirror.as_deref())?;
    let cache = Cache::new(Cache::default_root());
    for k in &lock.kernels {
        let image = cache.kernel(k, &mirror, &BarProgress::new())?;
        harness_suite::ui::status(
            "Kernel",
            &format!("{} {} ({})", k.line, image.release, image.bzimage.display()),
        );
    }
    Ok(ExitCode::SUCCESS)
}
