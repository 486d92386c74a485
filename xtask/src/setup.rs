use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Options {
    /// Debian mirror [default: from HARNESS_DEBIAN_MIRROR or apt's configuration].
    #[arg(long)]
    debian_mirror: Option<String>,
}

/// Everything a fresh machine needs, ahead of time: system packages, the
/// static in-VM runner, and the pinned kernels.
pub fn run(o: Options) -> anyhow::Result<ExitCode> {
    let project = crate::project()?;
    let status = harness_report::Status::new();
    harness_setup::install(&harness_setup::missing(true), &status)?;
    harness_suite::build_runner(&project, &status)?;
    for (k, image) in harness_setup::fetch_pinned_kernels(
        &project.lock_file,
        o.debian_mirror.as_deref(),
        &status,
    )? {
        status.line(
            "Kernel",
            &format!("{} {} ({})", k.line, image.release, image.bzimage.display()),
        );
    }
    Ok(ExitCode::SUCCESS)
}
