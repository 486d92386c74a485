use crate::ProjectAt;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Options {
    /// Debian mirror [default: from HARNESS_DEBIAN_MIRROR or apt's configuration].
    #[arg(long)]
    debian_mirror: Option<String>,
    /// Only make the Debian 13 chroot with veristat (root, debootstrap) and print its wrapper, for `bench verify`.
    #[arg(long)]
    veristat: bool,
}

/// Everything a fresh machine needs, ahead of time: system packages (with
/// bpftool, for `vmlinux-h`), the
/// static in-VM runner, and the pinned kernels; or, with `--veristat`, the
/// veristat chroot.
pub fn run(o: Options, at: &ProjectAt) -> anyhow::Result<ExitCode> {
    let status = harness_report::Status::new();
    if o.veristat {
        let chroot = harness_setup::VeristatChroot::in_default_cache();
        let wrapper = chroot.install(o.debian_mirror.as_deref(), &status)?;
        status.line("Veristat", &wrapper.display().to_string());
        return Ok(ExitCode::SUCCESS);
    }
    let project = at.project()?;
    let mut missing = harness_setup::missing(true);
    missing.extend(harness_setup::missing_bpftool());
    harness_setup::install(&missing, &status)?;
    harness_suite::build_runner(&status)?;
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
