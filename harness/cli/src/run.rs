//! What `test`, `verify` and the benches share: kernels, VM options, the
//! machine's prerequisites, Ctrl-C, and how an unfinished run ends.

use std::{
    path::PathBuf,
    process::ExitCode,
    sync::{Arc, atomic::AtomicBool},
    time::Duration,
};

use harness_events::EventSink;
use harness_kernels::KernelRequest;
use harness_matrix::RunOptions;
use harness_project::PrepareError;
use harness_suite::{SuiteError, SuiteOptions};
use harness_vm::AccelChoice;

/// `--kernel`: the requests, and the text they were parsed from.
#[derive(Clone)]
pub struct Kernels(pub Vec<KernelRequest>, pub String);

pub fn parse_kernels(s: &str) -> Result<Kernels, String> {
    harness_kernels::parse_kernel_list(s)
        .map(|k| Kernels(k, s.to_owned()))
        .map_err(|e| e.to_string())
}

/// `--kernel` when given, else the project's `kernels`, else `fallback`.
pub fn kernels_or_default(
    given: Option<Kernels>,
    project: &harness_project::Project,
    fallback: &str,
) -> anyhow::Result<Kernels> {
    if let Some(k) = given {
        return Ok(k);
    }
    match &project.kernels {
        Some(d) => {
            parse_kernels(&d.list).map_err(|e| anyhow::anyhow!("{}: kernels: {e}", d.written))
        }
        None => parse_kernels(fallback).map_err(anyhow::Error::msg),
    }
}

/// The kernels a run loads programs on and how much of the verifier's log
/// it keeps; shared by `test`, `verify` and `explain`.
#[derive(clap::Args)]
pub struct LoadArgs {
    /// Kernels: Debian lines (5.10, 6.1, 6.12, 7.2, 7.3), lines pinned in the lock file, `host`, or a bzImage path; comma-separated [default: the project's `kernels`, else 6.1 for test and 5.10,6.1,6.12,7.2 for verify and explain].
    #[arg(long, short, value_parser = parse_kernels)]
    pub kernel: Option<Kernels>,
    /// Verifier log level: 1 (statistics of accepted programs, the full path of rejected ones) or 2 (every state of every program; large).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=2))]
    pub log_level: u32,
}

/// What `verify` and `explain` run on without `--kernel` or a configured list.
pub const MATRIX: &str = "5.10,6.1,6.12,7.2";

/// A count that must be at least 1 (`--jobs`, `--runs`).
pub fn at_least_one(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
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
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: u64,
    /// VMs to run at once [default: number of CPUs].
    #[arg(long, value_parser = at_least_one)]
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
    pub fn prepare_machine(
        &self,
        kernels: &[KernelRequest],
        events: &dyn EventSink,
    ) -> anyhow::Result<()> {
        // Before anything is built: the host needs root, VMs only QEMU.
        if kernels.iter().any(|k| matches!(k, KernelRequest::Host))
            && !nix::unistd::geteuid().is_root()
        {
            return Err(harness_matrix::MatrixError::NotRoot.into());
        }
        let needs_vm = kernels.iter().any(|k| !matches!(k, KernelRequest::Host));
        let missing = harness_setup::missing(needs_vm);
        if self.no_install && !missing.is_empty() {
            let names: Vec<_> = missing.iter().map(|m| m.package).collect();
            anyhow::bail!(
                "missing packages: {} (run `apt-get install {}`)",
                names.join(", "),
                names.join(" ")
            );
        }
        Ok(harness_setup::install(&missing, events)?)
    }

    pub fn run_options(&self) -> RunOptions {
        let defaults = RunOptions::default();
        RunOptions {
            timeout: Duration::from_secs(self.timeout),
            jobs: self.jobs.unwrap_or(defaults.jobs),
            qemu: self.qemu.clone(),
            accel: self.accel,
            ..defaults
        }
    }

    pub fn suite_options(&self, kernels: Vec<KernelRequest>, log_level: u32) -> SuiteOptions {
        SuiteOptions {
            kernels,
            mirror: self.debian_mirror.clone(),
            log_level,
            snapshots: harness_snapshots::UpdateMode::from_env(),
            run: self.run_options(),
        }
    }
}

/// What a CI job keeps of `test` and `verify`.
#[derive(clap::Args)]
pub struct CiArgs {
    /// Write JUnit XML here: a test per case (and program) per kernel.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Write the results as JSON here, for `merge` (shards, kernels of a CI matrix).
    #[arg(long, value_name = "FILE")]
    pub results: Option<PathBuf>,
    /// On failure, write DIR/<command>-<kernel>/ for each failing kernel: verifier logs, console log, objects, pending snapshots, results and FAILURES.txt.
    #[arg(long, value_name = "DIR")]
    pub artifacts: Option<PathBuf>,
    /// Run part I of N (from 1): the objects, with their programs and cases, split the same way on every machine.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<harness_project::Shard>,
}

impl CiArgs {
    /// The outputs, with GitHub Actions' when running as its step; every
    /// path tried before the run.
    pub fn outputs(&self) -> anyhow::Result<harness_suite::CiOutputs> {
        let outputs = harness_suite::CiOutputs {
            junit: self.junit.clone(),
            results: self.results.clone(),
            artifacts: self.artifacts.clone(),
            github: harness_suite::GitHub::from_env(),
        };
        outputs.check()?;
        Ok(outputs)
    }
}

/// Writes a run's CI outputs and names what was written.
pub fn publish(
    outputs: &harness_suite::CiOutputs,
    project: &harness_project::Project,
    outcomes: &harness_judge::Outcomes,
    status: &harness_report::Status,
) -> anyhow::Result<()> {
    for path in outputs.publish(project, outcomes)? {
        status.line("Wrote", &path.display().to_string());
    }
    Ok(())
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

/// How long a command may take to wind down after Ctrl-C (stop QEMU, remove
/// its files) before the process ends anyway.
const GRACE: Duration = Duration::from_secs(5);

/// Runs `job` on a thread of its own, so Ctrl-C ends the process promptly
/// even while the job is stuck in I/O nothing can interrupt (a stalled
/// mirror holds a read for a minute). The job sees `interrupt` and usually
/// stops by itself; if it has not within [`GRACE`], the process exits with
/// 130 and the kernel cache removes the partial download on its next use.
pub fn interruptible(
    interrupt: &Arc<AtomicBool>,
    job: impl FnOnce() -> anyhow::Result<ExitCode> + Send + 'static,
) -> anyhow::Result<ExitCode> {
    let (done, result) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // A panic drops `done`: the receiver then reports it.
        let _ = done.send(job());
    });
    let mut since: Option<std::time::Instant> = None;
    loop {
        // Wakes as soon as the job ends; looks at the flag in between.
        match result.recv_timeout(Duration::from_millis(50)) {
            Ok(outcome) => return outcome,
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                anyhow::bail!("the command panicked")
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
        }
        if interrupt.load(std::sync::atomic::Ordering::Relaxed) {
            let at = *since.get_or_insert_with(std::time::Instant::now);
            if at.elapsed() > GRACE {
                anstream::eprintln!("interrupted");
                return Ok(ExitCode::from(130));
            }
        }
    }
}

/// How a run that could not complete ends the process.
pub fn exit_for(e: SuiteError) -> anyhow::Result<ExitCode> {
    match e {
        // Already rendered with file, line and column.
        SuiteError::Prepare(PrepareError::Cases(_)) => {
            anstream::eprintln!("{e}");
            Ok(ExitCode::FAILURE)
        }
        e if e.is_interrupted() => {
            anstream::eprintln!("interrupted: QEMU stopped, temporary files removed");
            Ok(ExitCode::from(130))
        }
        e => Err(e.into()),
    }
}
