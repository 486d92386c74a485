use std::{path::PathBuf, process::ExitCode};

use harness_suite::HeaderOutput;

use crate::{
    ProjectAt,
    run::{Kernels, parse_kernels},
};

#[derive(clap::Args)]
pub struct Options {
    /// Kernels whose types to write: Debian lines, lines pinned in the lock file, `host`, or bzImage paths; comma-separated [default: the project's `kernels`, else 6.1].
    #[arg(long, short, value_parser = parse_kernels)]
    kernel: Option<Kernels>,
    /// A directory (vmlinux-<line>.h per kernel) or, for one kernel, a .h file [default: the project's first include directory].
    #[arg(long, short)]
    output: Option<PathBuf>,
    /// Debian mirror [default: from HARNESS_DEBIAN_MIRROR or apt's configuration].
    #[arg(long)]
    debian_mirror: Option<String>,
}

/// Writes `vmlinux.h` for each kernel from its BTF (bpftool, installed if
/// missing).
pub fn run(o: Options, at: &ProjectAt) -> anyhow::Result<ExitCode> {
    let project = at.project()?;
    let kernels = crate::run::kernels_or_default(o.kernel, &project, "6.1")?;
    let status = harness_report::Status::new();
    harness_setup::install(&harness_setup::missing_bpftool(), &status)?;
    let output = HeaderOutput::choose(&project, o.output);
    for (label, path) in harness_suite::vmlinux_headers(
        &project,
        &kernels.0,
        o.debian_mirror.as_deref(),
        &output,
        &status,
    )? {
        status.line("Wrote", &format!("{} ({label})", project.relative(&path)));
    }
    Ok(ExitCode::SUCCESS)
}
