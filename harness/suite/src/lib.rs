//! The harness's main job: build the project's BPF programs, compile its
//! test cases, run everything on each requested kernel (a QEMU VM per
//! Debian kernel line or custom image, or the host kernel through
//! `BPF_PROG_TEST_RUN` only), then judge, snapshot and summarise.
//!
//! `xtask` is a thin CLI over this crate; another project can call
//! [`test`] with its own [`Project`] layout.

mod bench;
mod error;
mod prepare;
pub mod prereq;
pub mod programs;
mod project;
mod report;
mod run;
mod targets;
pub mod ui;
mod verify;

pub use bench::{
    BootBench, CasesBench, VerifyBench, bench_boot, bench_cases, bench_verify, generated_cases,
    median as bench_median,
};
pub use error::SuiteError;
pub use prepare::{Prepared, PreparedObject, ProgramExpectation, prepare, prepare_with};
pub use project::Project;
pub use report::{KernelSummary, Report, report};
pub use run::{KernelRun, RunOptions, guest_initramfs, run_targets};
pub use targets::{Target, resolve_targets};
pub use verify::{Gate, Row as VerifyRow, VerifyOptions, VerifyReport, verify};

use std::sync::{Arc, atomic::AtomicBool};

use harness_kernels::KernelRequest;
use harness_snapshots::UpdateMode;
use harness_vm::AccelChoice;

/// Everything `cargo xtask test` takes.
#[derive(Clone, Debug)]
pub struct TestOptions {
    pub kernels: Vec<KernelRequest>,
    pub accel: AccelChoice,
    /// Debian mirror; else `HARNESS_DEBIAN_MIRROR`, else apt's configuration.
    pub mirror: Option<String>,
    /// Verifier log level for the snapshots: 1 or 2 (stats are always on).
    pub log_level: u32,
    /// What to do with snapshots that do not match.
    pub snapshots: UpdateMode,
    pub run: RunOptions,
}

/// Builds, runs on every kernel, and reports. The returned report says
/// whether everything passed; errors are problems that stopped the run.
pub fn test(
    project: &Project,
    opts: &TestOptions,
    interrupt: Arc<AtomicBool>,
) -> Result<Report, SuiteError> {
    // Building the in-VM runner (a cargo invocation) overlaps with compiling
    // programs and verifying kernel images.
    let needs_vm = opts
        .kernels
        .iter()
        .any(|k| !matches!(k, KernelRequest::Host));
    let (prepared, targets, runner) = std::thread::scope(|s| {
        let runner = needs_vm.then(|| s.spawn(|| run::build_runner(project)));
        let prepared = prepare(project, opts.log_level);
        let targets = resolve_targets(project, &opts.kernels, opts.mirror.as_deref());
        let runner = runner
            .map(|h| h.join().expect("building the runner does not panic"))
            .transpose();
        (prepared, targets, runner)
    });
    let (prepared, targets, runner) = (prepared?, targets?, runner?);
    let runs = run_targets(
        project,
        &prepared,
        &targets,
        runner.as_deref(),
        opts.accel,
        &opts.run,
        interrupt,
    )?;
    report(project, &prepared, &runs, opts.snapshots)
}
