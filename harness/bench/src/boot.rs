//! `bench boot`: what the harness costs on top of booting a kernel.
//!
//! For each kernel, alternately: a bare boot (same QEMU settings, same
//! initramfs, but init powers off at once) and a full harness run on that
//! kernel alone, from the start of `test` to its judgement. Medians over the
//! runs, and their ratio.

use std::{
    sync::{Arc, atomic::AtomicBool},
    time::{Duration, Instant},
};

use harness_events::{Event, EventSink, Silent};
use harness_kernels::{Boot, KernelRequest, Origin, Target};
use harness_project::{PrepareOptions, Project};
use harness_protocol::INIT_MODE_POWEROFF;
use harness_suite::SuiteOptions;
use harness_vm::VmConfig;

use crate::{BenchError, check_runs, median};

#[derive(Clone, Debug)]
pub struct BootBench {
    pub label: String,
    pub bare: Vec<Duration>,
    pub harness: Vec<Duration>,
}

impl BootBench {
    pub fn ratio(&self) -> f64 {
        median(&self.harness).as_secs_f64() / median(&self.bare).as_secs_f64().max(1e-9)
    }
}

/// Measures each VM kernel of `opts.kernels`, one after another so they do
/// not compete for cores.
pub fn boot(
    project: &Project,
    opts: &SuiteOptions,
    runs: usize,
    events: &dyn EventSink,
    interrupt: &Arc<AtomicBool>,
) -> Result<Vec<BootBench>, BenchError> {
    check_runs(runs)?;
    let prepared = harness_project::prepare(
        project,
        PrepareOptions {
            log_level: opts.log_level,
            cases: true,
        },
        events,
    )
    .map_err(harness_suite::SuiteError::from)?;
    let targets =
        harness_suite::resolve_targets(project, &opts.kernels, opts.mirror.as_deref(), events)?;
    let runner = harness_suite::build_runner(events).map_err(harness_suite::SuiteError::from)?;
    let initramfs =
        tempfile::NamedTempFile::new().map_err(crate::io_err("creating an initramfs"))?;
    harness_matrix::guest_initramfs(&prepared.plan(), &runner)?
        .write_to(initramfs.path())
        .map_err(crate::io_err("writing an initramfs"))?;
    let plan = prepared.plan();
    let matrix = harness_matrix::Matrix {
        plan: &plan,
        runner: Some(&runner),
        options: &opts.run,
        outputs: &project.results_dir,
        events,
        interrupt,
    };
    let mut out = Vec::new();
    for target in &targets {
        let Boot::Vm { bzimage, .. } = &target.boot else {
            continue;
        };
        let accel = matrix.decide_accel(bzimage, initramfs.path())?;
        let bare_cfg = VmConfig {
            qemu: opts.run.qemu.clone(),
            kernel: bzimage.clone(),
            initramfs: initramfs.path().to_owned(),
            accel,
            memory_mb: opts.run.memory_mb,
            cpus: opts.run.cpus,
            cmdline_extra: Vec::new(),
            init_args: vec![INIT_MODE_POWEROFF.to_owned()],
            timeout: opts.run.timeout,
            interrupt: Some(interrupt.clone()),
            debugcon: true,
        };
        let single = SuiteOptions {
            kernels: vec![request(target)],
            ..opts.clone()
        };
        let mut bench = BootBench {
            label: target.label.clone(),
            bare: Vec::new(),
            harness: Vec::new(),
        };
        events.event(Event::Measuring {
            what: format!(
                "{}: {runs} bare boots and {runs} harness runs ({accel})",
                target.label
            ),
        });
        for _ in 0..runs {
            bench.bare.push(harness_vm::time_boot(&bare_cfg)?);
            let start = Instant::now();
            harness_suite::test(project, &single, &Silent, interrupt)?;
            bench.harness.push(start.elapsed());
        }
        out.push(bench);
    }
    Ok(out)
}

/// The request that resolves to `target` again.
pub(crate) fn request(target: &Target) -> KernelRequest {
    match (&target.boot, target.version) {
        (Boot::Host, _) => KernelRequest::Host,
        (
            Boot::Vm {
                origin: Origin::Debian { .. },
                ..
            },
            Some(line),
        ) => KernelRequest::Line(line),
        (Boot::Vm { bzimage, .. }, _) => KernelRequest::Image(bzimage.clone()),
    }
}
