//! `bench boot`: what the harness costs on top of booting a kernel.
//!
//! For each kernel, alternately: a bare boot (same QEMU settings, same
//! initramfs, but init powers off at once) and a full harness run on that
//! kernel alone, from the start of `test` to its report. Medians over the
//! runs, and their ratio.

use std::{
    sync::{Arc, atomic::AtomicBool},
    time::{Duration, Instant},
};

use harness_protocol::INIT_MODE_POWEROFF;
use harness_vm::VmConfig;

use crate::{
    Project, SuiteError, Target, TestOptions, prepare, resolve_targets,
    run::{build_runner, decide_accel, write_initramfs},
};

#[derive(Clone, Debug)]
pub struct BootBench {
    pub label: String,
    pub bare: Vec<Duration>,
    pub harness: Vec<Duration>,
}

pub fn median(v: &[Duration]) -> Duration {
    let mut v = v.to_vec();
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

impl BootBench {
    pub fn ratio(&self) -> f64 {
        median(&self.harness).as_secs_f64() / median(&self.bare).as_secs_f64().max(1e-9)
    }
}

/// Runs the benchmark; `opts.kernels` are measured one after another so
/// they do not compete for cores.
pub fn bench_boot(
    project: &Project,
    opts: &TestOptions,
    runs: usize,
    interrupt: Arc<AtomicBool>,
) -> Result<Vec<BootBench>, SuiteError> {
    let prepared = prepare(project, opts.log_level)?;
    let targets = resolve_targets(project, &opts.kernels, opts.mirror.as_deref())?;
    let initramfs = write_initramfs(project, &prepared, &build_runner(project)?)?;
    let mut out = Vec::new();
    for target in &targets {
        let Target::Vm { label, bzimage, .. } = target else {
            continue;
        };
        let accel = decide_accel(opts.accel, bzimage, &initramfs, &opts.run, &interrupt)?;
        let bare_cfg = VmConfig {
            qemu: opts.run.qemu.clone(),
            kernel: bzimage.clone(),
            initramfs: initramfs.to_path_buf(),
            accel,
            memory_mb: opts.run.memory_mb,
            cpus: opts.run.cpus,
            cmdline_extra: Vec::new(),
            init_args: vec![INIT_MODE_POWEROFF.to_owned()],
            timeout: opts.run.timeout,
            interrupt: Some(interrupt.clone()),
        };
        let single = TestOptions {
            kernels: vec![kernel_request(target)],
            ..opts.clone()
        };
        let mut bench = BootBench {
            label: label.clone(),
            bare: Vec::new(),
            harness: Vec::new(),
        };
        crate::ui::status(
            "Measuring",
            &format!("{label}: {runs} bare boots and {runs} harness runs ({accel})"),
        );
        crate::ui::set_quiet(true);
        for _ in 0..runs {
            bench.bare.push(harness_vm::time_boot(&bare_cfg)?);
            let start = Instant::now();
            let report = crate::test(project, &single, interrupt.clone());
            bench.harness.push(start.elapsed());
            if let Err(e) = report {
                crate::ui::set_quiet(false);
                return Err(e);
            }
        }
        crate::ui::set_quiet(false);
        out.push(bench);
    }
    Ok(out)
}

fn kernel_request(target: &Target) -> harness_kernels::KernelRequest {
    match target {
        Target::Vm {
            label,
            bzimage,
            origin,
            ..
        } if origin.starts_with("custom") => {
            let _ = label;
            harness_kernels::KernelRequest::Image(bzimage.clone())
        }
        Target::Vm { label, .. } => harness_kernels::KernelRequest::Line(label.clone()),
        Target::Host { .. } => harness_kernels::KernelRequest::Host,
    }
}
