use std::{
    path::PathBuf,
    process::ExitCode,
    sync::{Arc, atomic::AtomicBool},
    time::Duration,
};

use harness_kernels::KernelRequest;
use harness_suite::{RunOptions, SuiteError, TestOptions};
use harness_vm::AccelChoice;

#[derive(clap::Args)]
pub struct Options {
    /// Kernels: Debian lines (5.10, 6.1, 6.12, 7.2), `host`, or a bzImage path; comma-separated.
    #[arg(long, short, default_value = "6.1", value_parser = parse_kernels)]
    kernel: Kernels,
    /// KVM or TCG; `auto` probes KVM once per host and remembers the answer.
    #[arg(long, default_value = "auto", env = "HARNESS_ACCEL")]
    accel: AccelChoice,
    /// Debian mirror for kernel downloads [default: from HARNESS_DEBIAN_MIRROR or apt's configuration].
    #[arg(long)]
    debian_mirror: Option<String>,
    /// Verifier log level: 1 (the kernel keeps only statistics of accepted programs, and the full path of rejected ones) or 2 (every state of every program; large).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=2))]
    log_level: u32,
    /// Seconds a VM may take, boot included, before it is killed.
    #[arg(long, default_value_t = 300)]
    timeout: u64,
    /// VMs to run at once [default: number of CPUs].
    #[arg(long)]
    jobs: Option<usize>,
    /// QEMU binary.
    #[arg(long, default_value = "qemu-system-x86_64")]
    qemu: PathBuf,
    /// Do not install missing system packages; fail instead.
    #[arg(long)]
    no_install: bool,
}

#[derive(Clone)]
struct Kernels(Vec<KernelRequest>);

fn parse_kernels(s: &str) -> Result<Kernels, String> {
    harness_kernels::parse_kernel_list(s)
        .map(Kernels)
        .map_err(|e| e.to_string())
}

/// Ctrl-C sets a flag the VMs watch, so QEMU is stopped and temporary files
/// are removed before we exit.
pub fn interrupt_flag() -> anyhow::Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, flag.clone())?;
    }
    Ok(flag)
}

pub fn run(o: Options) -> anyhow::Result<ExitCode> {
    let project = crate::project()?;
    let kernels = o.kernel.0;
    let needs_vm = kernels.iter().any(|k| !matches!(k, KernelRequest::Host));
    let missing = harness_suite::prereq::missing(needs_vm);
    if o.no_install && !missing.is_empty() {
        let names: Vec<_> = missing.iter().map(|m| m.package).collect();
        anyhow::bail!(
            "missing packages: {} (run `apt-get install {}`)",
            names.join(", "),
            names.join(" ")
        );
    }
    harness_suite::prereq::install(&missing).map_err(anyhow::Error::msg)?;
    let opts = TestOptions {
        kernels,
        accel: o.accel,
        mirror: o.debian_mirror,
        log_level: o.log_level,
        snapshots: harness_snapshots::UpdateMode::from_env(),
        run: RunOptions {
            timeout: Duration::from_secs(o.timeout),
            jobs: o.jobs.unwrap_or(RunOptions::default().jobs),
            qemu: o.qemu,
            ..RunOptions::default()
        },
    };
    match harness_suite::test(&project, &opts, interrupt_flag()?) {
        Ok(report) => {
            print!("{}", report.render());
            Ok(if report.ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        // Already rendered with file, line and column.
        Err(e @ SuiteError::Cases(_)) => {
            eprintln!("{e}");
            Ok(ExitCode::FAILURE)
        }
        Err(SuiteError::Interrupted) => {
            eprintln!("interrupted: QEMU stopped, temporary files removed");
            Ok(ExitCode::from(130))
        }
        Err(e) => Err(e.into()),
    }
}
