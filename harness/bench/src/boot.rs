//! `bench boot`: what the harness costs on top of booting a kernel.
//!
//! For each kernel, in turn: the floor (the fastest QEMU configuration that
//! boots the image to an init that powers off at once: a static busybox as
//! init, 512 MiB, no device beyond the console), a bare boot with the
//! harness's own settings (its QEMU flags, memory and initramfs, its init
//! powering off at once), and a full harness run on that kernel alone (the
//! firewall and one packet case), from the start of `test` to its judgement, split into phases by the run's own
//! events. Medians over the runs, and the ratios to both floors.

use std::{
    path::Path,
    sync::{Arc, atomic::AtomicBool},
    time::{Duration, Instant},
};

use harness_events::{Event, EventSink, Silent};
use harness_kernels::{Boot, KernelRequest, Origin, Target};
use harness_project::{PrepareOptions, Project};
use harness_protocol::{ExecTimings, INIT_MODE_POWEROFF};
use harness_suite::SuiteOptions;
use harness_vm::VmConfig;

use crate::{BenchError, check_runs, median};

#[derive(Clone, Debug)]
pub struct BootBench {
    pub label: String,
    /// Busybox init, 512 MiB, no extra devices.
    pub floor: Vec<Duration>,
    /// The harness's QEMU settings and initramfs, init powering off.
    pub bare: Vec<Duration>,
    pub harness: Vec<Duration>,
    /// Where each harness run's time went.
    pub phases: Vec<Phases>,
}

/// A harness run cut at its events: before the kernel starts (compile
/// check, runner build check, kernel resolution, initramfs), the guest's
/// boot as it reports it, the plan in the guest, and after (judging,
/// snapshots, outputs).
#[derive(Clone, Copy, Debug, Default)]
pub struct Phases {
    pub before: Duration,
    pub boot: Duration,
    pub plan: Duration,
    pub after: Duration,
    /// The part of `plan` the executor itself took (guest clock), and its
    /// phases; the rest of `plan` is reading the plan, powering off and
    /// QEMU's exit.
    pub executor: Duration,
    pub probes: Duration,
    pub parse: Duration,
    pub load: Duration,
    pub cases: Duration,
    /// Records encoded and sent.
    pub sent: Duration,
}

impl BootBench {
    pub fn ratio(&self) -> f64 {
        ratio(median(&self.harness), median(&self.bare))
    }

    /// The harness against the floor.
    pub fn floor_ratio(&self) -> f64 {
        ratio(median(&self.harness), median(&self.floor))
    }

    /// The median of each phase.
    pub fn median_phases(&self) -> Phases {
        let of =
            |f: fn(&Phases) -> Duration| median(&self.phases.iter().map(f).collect::<Vec<_>>());
        Phases {
            before: of(|p| p.before),
            boot: of(|p| p.boot),
            plan: of(|p| p.plan),
            after: of(|p| p.after),
            executor: of(|p| p.executor),
            probes: of(|p| p.probes),
            parse: of(|p| p.parse),
            load: of(|p| p.load),
            cases: of(|p| p.cases),
            sent: of(|p| p.sent),
        }
    }
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(1e-9)
}

/// Timestamps of a run's events, for [`Phases`].
#[derive(Default)]
struct Clock {
    start: Option<Instant>,
    running: std::sync::Mutex<Option<Instant>>,
    finished: std::sync::Mutex<Option<(Instant, Option<Duration>)>>,
}

impl EventSink for Clock {
    fn event(&self, event: Event) {
        match event {
            Event::Running { .. } => {
                *self.running.lock().expect("unpoisoned") = Some(Instant::now());
            }
            Event::Finished { boot, .. } => {
                *self.finished.lock().expect("unpoisoned") = Some((Instant::now(), boot));
            }
            _ => {}
        }
    }
}

impl Clock {
    fn phases(&self, end: Instant, exec: Option<ExecTimings>) -> Phases {
        let start = self.start.expect("started");
        let running = self.running.lock().expect("unpoisoned").unwrap_or(start);
        let (finished, boot) = self
            .finished
            .lock()
            .expect("unpoisoned")
            .unwrap_or((running, None));
        let boot = boot.unwrap_or_default();
        let of = |f: fn(&ExecTimings) -> u64| Duration::from_nanos(exec.as_ref().map_or(0, f));
        Phases {
            before: running - start,
            boot,
            plan: (finished - running).saturating_sub(boot),
            after: end - finished,
            executor: of(|e| e.total_ns),
            probes: of(|e| e.probes_ns),
            parse: of(|e| e.parse_ns),
            load: of(|e| e.load_ns),
            cases: of(|e| e.cases_ns),
            sent: of(|e| e.emit_ns),
        }
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
    // The smallest real run: the firewall and one packet case, so the
    // harness's own cost is not hidden behind a large plan.
    let tmp = tempfile::tempdir().map_err(crate::io_err("creating a scratch project"))?;
    let small = crate::cases::scratch(project, tmp.path(), 1)?;
    let project = &small;
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
    let floor = tempfile::NamedTempFile::new().map_err(crate::io_err("creating an initramfs"))?;
    floor_initramfs()?
        .write_to(floor.path())
        .map_err(crate::io_err("writing an initramfs"))?;
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
            shared_memory: true,
        };
        let single = SuiteOptions {
            kernels: vec![request(target)],
            ..opts.clone()
        };
        let mut bench = BootBench {
            label: target.label.clone(),
            floor: Vec::new(),
            bare: Vec::new(),
            harness: Vec::new(),
            phases: Vec::new(),
        };
        events.event(Event::Measuring {
            what: format!(
                "{}: {runs} floor boots, {runs} bare boots and {runs} harness runs ({accel})",
                target.label
            ),
        });
        // Warm: objects, runner, kernel image.
        harness_suite::test(project, &single, &Silent, interrupt)?;
        for _ in 0..runs {
            bench.floor.push(floor_boot(
                &opts.run.qemu,
                bzimage,
                &floor,
                accel,
                opts.run.timeout,
            )?);
            bench.bare.push(harness_vm::time_boot(&bare_cfg)?);
            let clock = Clock {
                start: Some(Instant::now()),
                ..Clock::default()
            };
            let j = harness_suite::test(project, &single, &clock, interrupt)?;
            let end = Instant::now();
            bench.harness.push(end - clock.start.expect("set"));
            bench
                .phases
                .push(clock.phases(end, j.kernels.first().and_then(|k| k.exec)));
        }
        out.push(bench);
    }
    Ok(out)
}

/// The floor's initramfs: a static busybox whose init powers off at once.
fn floor_initramfs() -> Result<harness_vm::Initramfs, BenchError> {
    let busybox = harness_vm::tools::static_busybox().map_err(BenchError::Nonsense)?;
    let data =
        std::fs::read(&busybox).map_err(crate::io_err(format!("reading {}", busybox.display())))?;
    let mut fs = harness_vm::Initramfs::new();
    fs.dir("/bin").file("/bin/busybox", data, true).file(
        "/init",
        b"#!/bin/busybox sh\n/bin/busybox poweroff -f\n".to_vec(),
        true,
    );
    Ok(fs)
}

/// Boots `kernel` to busybox's poweroff: 512 MiB, one CPU, the console
/// discarded, no other device.
fn floor_boot(
    qemu: &Path,
    kernel: &Path,
    initramfs: &tempfile::NamedTempFile,
    accel: harness_vm::Accel,
    timeout: Duration,
) -> Result<Duration, BenchError> {
    let (accel, cpu) = match accel {
        harness_vm::Accel::Kvm => ("kvm", "host"),
        harness_vm::Accel::Tcg => ("tcg", "max"),
    };
    let start = Instant::now();
    let mut child = std::process::Command::new(qemu)
        .args([
            "-nodefaults",
            "-no-user-config",
            "-no-reboot",
            "-display",
            "none",
        ])
        .args(["-accel", accel, "-cpu", cpu, "-m", "512", "-smp", "1"])
        .arg("-kernel")
        .arg(kernel)
        .arg("-initrd")
        .arg(initramfs.path())
        .args(["-append", "console=ttyS0 quiet panic=-1", "-serial", "null"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(crate::io_err(format!("running {}", qemu.display())))?;
    loop {
        if let Some(status) = child
            .try_wait()
            .map_err(crate::io_err("waiting for QEMU"))?
        {
            if !status.success() {
                return Err(BenchError::Nonsense(format!(
                    "the floor boot of {} failed: {status}",
                    kernel.display()
                )));
            }
            return Ok(start.elapsed());
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            return Err(BenchError::Nonsense(format!(
                "the floor boot of {} did not power off within {timeout:?}",
                kernel.display()
            )));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
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
