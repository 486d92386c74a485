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
    /// Verifier log level: 1 (the kernel keeps only statistics of accepted programs, and the full path of rejected ones) or 2 (every state of every program; large).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=2))]
    log_level: u32,
    #[command(flatten)]
    vm: VmArgs,
}

/// How kernels are fetched and VMs run; shared by `test` and `verify`.
#[derive(clap::Args)]
pub struct VmArgs {
    /// KVM or TCG; `auto` probes KVM once per host and remembers the answer.
    #[arg(long, default_value = "auto", env = "HARNESS_ACCEL")]
    pub accel: AccelChoice,
    /// Debian mirror for kernel downloads [default: from HARNESS_DEBIAN_MIRROR or apt's configuration].
    #[arg(long)]
    pub debian_mirror: Option<String>,
    /// Seconds a VM may take, boot included, before it is killed.
    #[arg(long, default_value_t = 300)]
    pub timeout: u64,
    /// VMs to run at once [default: number of CPUs].
    #[arg(long)]
    pub jobs: Option<usize>,
    /// QEMU binary.
    #[arg(long, default_value = "qemu-system-x86_64")]
    pub qemu: PathBuf,
    /// Do not install missing system packages; fail instead.
    #[arg(long)]
    pub no_install: bool,
}

impl VmArgs {
    /// Installs what running on `kernels` needs, unless told not to.
    pub fn prepare_machine(&self, kernels: &[KernelRequest]) -> anyhow::Result<()> {
        let needs_vm = kernels.iter().any(|k| !matches!(k, KernelRequest::Host));
        let missing = harness_suite::prereq::missing(needs_vm);
        if self.no_install && !missing.is_empty() {
            let names: Vec<_> = missing.iter().map(|m| m.package).collect();
            anyhow::bail!(
                "missing packages: {} (run `apt-get install {}`)",
                names.join(", "),
                names.join(" ")
            );
        }
        harness_suite::prereq::install(&missing).map_err(anyhow::Error::msg)
    }

    pub fn run_options(&self) -> RunOptions {
        RunOptions {
            timeout: Duration::from_secs(self.timeout),
            jobs: self.jobs.unwrap_or(RunOptions::default().jobs),
            qemu: self.qemu.clone(),
            ..RunOptions::default()
        }
    }
}

#[derive(Clone)]
pub struct Kernels(pub Vec<KernelRequest>);

pub fn parse_kernels(s: &str) -> Result<Kernels, String> {
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
    o.vm.prepare_machine(&kernels)?;
    let opts = TestOptions {
        kernels,
        accel: o.vm.accel,
        mirror: o.vm.debian_mirror.clone(),
        log_level: o.log_level,
        snapshots: harness_snapshots::UpdateMode::from_env(),
        run: o.vm.run_options(),
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
        Err(e) => exit_for(e),
    }
}

/// How a run that could not complete ends the process.
pub fn exit_for(e: SuiteError) -> anyhow::Result<ExitCode> {
    match e {
        // Already rendered with file, line and column.
        SuiteError::Cases(_) => {
            eprintln!("{e}");
            Ok(ExitCode::FAILURE)
        }
        SuiteError::Interrupted => {
            eprintln!("interrupted: QEMU stopped, temporary files removed");
            Ok(ExitCode::from(130))
        }
        e => Err(e.into()),
    }
}
