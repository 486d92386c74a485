//! One plan on N kernels.
//!
//! Every [`Target`] runs the same [`Plan`]: VMs boot in parallel (as many as
//! `jobs`), KVM when it works and TCG otherwise (probed once per host and
//! remembered), the host in-process (load and test_run only, as root). Each
//! target's records, console and full verifier logs land in its own output
//! directory. This crate knows nothing of test cases, expectations or
//! snapshots: it hands back what each kernel said ([`KernelRun`]), including
//! every record that arrived before a VM died.

mod accel;
mod host;
mod initramfs;
mod outputs;
mod schedule;
mod vm;

use std::{
    io,
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use harness_events::{Event, EventSink};
use harness_kernels::{Boot, Target};
use harness_protocol::{ExecTimings, Plan, Record};
use harness_vm::{Accel, AccelChoice, QemuVersion, VmError};

pub use initramfs::guest_initramfs;
pub use outputs::verifier_log;

/// How VMs run.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Wall-clock limit per VM, boot included.
    pub timeout: Duration,
    /// VMs at once.
    pub jobs: usize,
    pub memory_mb: u32,
    pub cpus: u32,
    pub qemu: PathBuf,
    pub accel: AccelChoice,
    /// Where the KVM/TCG verdict for this host is remembered.
    pub accel_state: PathBuf,
    /// Arguments for the guest's init, after the plan (the harness's own
    /// tests use `hang-after N`); empty normally.
    pub init_args: Vec<String>,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(300),
            jobs: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory_mb: 1024,
            cpus: 1,
            qemu: PathBuf::from("qemu-system-x86_64"),
            accel: AccelChoice::Auto,
            accel_state: harness_kernels::Cache::default_root().join("accel.json"),
            init_args: Vec::new(),
        }
    }
}

/// What one target produced.
#[derive(Debug)]
pub struct KernelRun {
    pub target: Target,
    /// `None` on the host.
    pub accel: Option<Accel>,
    /// Every record that arrived, in order; complete (ending in `done`) when
    /// there is no `failure`.
    pub records: Vec<Record>,
    /// Why the stream is not complete.
    pub failure: Option<RunFailure>,
    pub boot_time: Option<Duration>,
    pub total_time: Duration,
}

impl KernelRun {
    /// Where the executor's time went, from the `done` record of a
    /// complete run.
    pub fn exec_timings(&self) -> Option<ExecTimings> {
        match self.records.last() {
            Some(Record::Done(d)) if self.failure.is_none() => d.timings,
            _ => None,
        }
    }
}

/// Why a kernel did not finish the plan.
#[derive(Debug, thiserror::Error)]
pub enum RunFailure {
    #[error(transparent)]
    Vm(VmError),
    #[error("running on the host: {0}")]
    Host(io::Error),
}

/// What stops the whole matrix.
#[derive(Debug, thiserror::Error)]
pub enum MatrixError {
    #[error(
        "--kernel host needs root: loading programs and BPF_PROG_TEST_RUN need CAP_BPF and CAP_NET_ADMIN. \
         Run as root (sudo -E cargo xtask test --kernel host) or pick a VM kernel such as --kernel 6.1"
    )]
    NotRoot,
    #[error("interrupted")]
    Interrupted,
    #[error("VM targets need the in-VM runner, and none was given")]
    NoRunner,
    #[error(transparent)]
    Vm(#[from] VmError),
    #[error("{what}: {error}")]
    Io { what: String, error: io::Error },
    /// A case runs programs in the guest and the host has none to give it.
    #[error("a live case runs a program in the VM, but {0}")]
    GuestTools(String),
}

/// Kinds of the files a run writes for itself in the outputs directory
/// (named with its pid, see [`harness_vm::leftovers`]).
pub(crate) const INITRAMFS_KIND: &str = "initramfs-";
pub(crate) const STAGING_KIND: &str = ".staging-";

pub(crate) fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> MatrixError {
    let what = what.into();
    move |error| MatrixError::Io { what, error }
}

/// One plan, the kernels it runs on, and where results go.
pub struct Matrix<'a> {
    /// Objects at their paths on the host.
    pub plan: &'a Plan,
    /// The static in-VM runner (PID 1); needed when a target is a VM.
    pub runner: Option<&'a Path>,
    pub options: &'a RunOptions,
    /// Each target writes to `<outputs>/<label>/`.
    pub outputs: &'a Path,
    pub events: &'a dyn EventSink,
    pub interrupt: &'a Arc<AtomicBool>,
}

impl Matrix<'_> {
    /// Runs every target, in parallel up to `jobs`, the costliest first
    /// (`schedule.rs`), and writes each one's outputs. Results come back in
    /// the order of `targets`.
    pub fn run(&self, targets: &[Target]) -> Result<Vec<KernelRun>, MatrixError> {
        self.sweep_leftovers();
        let guest = self.prepare_guest(targets)?;
        let accel = guest.as_ref().map(|g| *g.accel.lock().expect("unpoisoned"));
        let workers = self.workers(targets, accel);
        let order = schedule::order(targets, &schedule::load(self.outputs));
        let results: Mutex<Vec<Option<KernelRun>>> =
            Mutex::new((0..targets.len()).map(|_| None).collect());
        let next = Mutex::new(0usize);
        let fatal: Mutex<Option<MatrixError>> = Mutex::new(None);
        std::thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| {
                    while let Some(i) = self.take(&next, targets.len()).map(|n| order[n]) {
                        match self.run_one(&targets[i], guest.as_ref()) {
                            Ok(Some(run)) => results.lock().expect("unpoisoned")[i] = Some(run),
                            Ok(None) => return,
                            Err(e) => {
                                fatal.lock().expect("unpoisoned").get_or_insert(e);
                                return;
                            }
                        }
                    }
                });
            }
        });
        if self.interrupt.load(Ordering::Relaxed) {
            return Err(MatrixError::Interrupted);
        }
        if let Some(e) = fatal.into_inner().expect("unpoisoned") {
            return Err(e);
        }
        let runs: Vec<KernelRun> = results
            .into_inner()
            .expect("unpoisoned")
            .into_iter()
            .flatten()
            .collect();
        let timings: Vec<(String, f64)> = runs
            .iter()
            .map(|r| (r.target.label.clone(), r.total_time.as_secs_f64()))
            .collect();
        schedule::save(self.outputs, &timings);
        Ok(runs)
    }

    /// KVM or TCG for a VM booting `kernel` with `initramfs`, as a run would
    /// choose it (benchmarks boot bare VMs the same way).
    pub fn decide_accel(&self, kernel: &Path, initramfs: &Path) -> Result<Accel, MatrixError> {
        accel::decide(self, kernel, initramfs)
    }

    /// Removes what killed runs left: VM temporary directories, initramfs
    /// images and half-written outputs. A failure to sweep only costs disk.
    fn sweep_leftovers(&self) {
        let places = [
            (std::env::temp_dir(), harness_vm::TEMP_DIR_KIND),
            (self.outputs.to_owned(), INITRAMFS_KIND),
            (self.outputs.to_owned(), STAGING_KIND),
        ];
        let removed: usize = places
            .iter()
            .filter_map(|(dir, kind)| harness_vm::leftovers::sweep(dir, kind).ok())
            .map(|r| r.len())
            .sum();
        if removed > 0 {
            self.events.event(Event::Note {
                message: format!("removed {removed} leftovers of runs that were killed"),
            });
        }
    }

    /// The next target index, unless all are taken or the run was interrupted.
    fn take(&self, next: &Mutex<usize>, len: usize) -> Option<usize> {
        let mut n = next.lock().expect("unpoisoned");
        let i = *n;
        *n += 1;
        (i < len && !self.interrupt.load(Ordering::Relaxed)).then_some(i)
    }

    /// The initramfs every VM boots and the accelerator they share (a VM
    /// that finds KVM broken switches everyone to TCG).
    fn prepare_guest(&self, targets: &[Target]) -> Result<Option<vm::Guest>, MatrixError> {
        let Some(first) = targets.iter().find_map(Target::bzimage) else {
            return Ok(None);
        };
        let runner = self.runner.ok_or(MatrixError::NoRunner)?;
        let initramfs = initramfs::write(self.plan, runner, self.outputs)?;
        let accel = accel::decide(self, first, &initramfs)?;
        Ok(Some(vm::Guest {
            initramfs,
            accel: Mutex::new(accel),
        }))
    }

    /// VMs at once: `jobs`, or one when TCG runs them on a QEMU whose TCG
    /// is unreliable (KVM is not affected).
    fn workers(&self, targets: &[Target], accel: Option<Accel>) -> usize {
        let workers = self.options.jobs.clamp(1, targets.len().max(1));
        // Asking QEMU costs a process; the host and KVM need no answer.
        if targets.iter().all(Target::is_host) || accel == Some(Accel::Kvm) {
            return workers;
        }
        match QemuVersion::of(&self.options.qemu) {
            Some(v) if v < QemuVersion::RELIABLE_TCG => {
                self.events.event(Event::Warning {
                    message: format!(
                        "QEMU {v}'s TCG crashes guests at random under load; running VMs one at a time. Install QEMU 8.0 or newer (Debian 12: bookworm-backports)"
                    ),
                });
                1
            }
            _ => workers,
        }
    }

    /// Runs one target; `None` when interrupted.
    fn run_one(
        &self,
        target: &Target,
        guest: Option<&vm::Guest>,
    ) -> Result<Option<KernelRun>, MatrixError> {
        outputs::clear(self.outputs, &target.label)?;
        let started = Instant::now();
        let (run, console) = match &target.boot {
            Boot::Host => (host::run(self, target, started)?, None),
            Boot::Vm {
                bzimage, config, ..
            } => {
                let guest = guest.expect("prepared for VM targets");
                let kconfig = config
                    .as_deref()
                    .map(|c| {
                        initramfs::with_kconfig(&guest.initramfs, c, &target.release, self.outputs)
                    })
                    .transpose()?;
                let initramfs = kconfig.as_deref().unwrap_or(&guest.initramfs);
                match vm::run(self, target, bzimage, initramfs, guest, started) {
                    Some(out) => out,
                    None => return Ok(None),
                }
            }
        };
        outputs::write(self.outputs, &target.label, &run, console.as_deref())?;
        Ok(Some(run))
    }
}

#[cfg(test)]
mod tests {
    use std::{fs, os::unix::fs::PermissionsExt as _};

    use harness_kernels::Origin;

    use super::*;

    /// Records the warnings a matrix sends.
    #[derive(Default)]
    struct Warnings(Mutex<Vec<String>>);

    impl EventSink for Warnings {
        fn event(&self, event: Event) {
            if let Event::Warning { message } = event {
                self.0.lock().unwrap().push(message);
            }
        }
    }

    fn vm(label: &str) -> Target {
        Target {
            label: label.into(),
            version: None,
            release: String::new(),
            boot: Boot::Vm {
                bzimage: "/nonexistent/bzImage".into(),
                origin: Origin::Image {
                    path: "/nonexistent/bzImage".into(),
                },
                config: None,
            },
        }
    }

    #[test]
    fn an_old_qemu_runs_one_vm_at_a_time_under_tcg_only() {
        let dir = tempfile::tempdir().unwrap();
        let qemu = dir.path().join("qemu-system-x86_64");
        fs::write(
            &qemu,
            "#!/bin/sh\necho 'QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18)'\n",
        )
        .unwrap();
        fs::set_permissions(&qemu, fs::Permissions::from_mode(0o755)).unwrap();
        let options = RunOptions {
            jobs: 2,
            qemu: qemu.clone(),
            ..RunOptions::default()
        };
        let plan = Plan::default();
        let warnings = Warnings::default();
        let interrupt = Arc::new(AtomicBool::new(false));
        let m = Matrix {
            plan: &plan,
            runner: None,
            options: &options,
            outputs: dir.path(),
            events: &warnings,
            interrupt: &interrupt,
        };
        let targets = [vm("5.10"), vm("6.1"), vm("7.2")];
        assert_eq!(m.workers(&targets, Some(Accel::Kvm)), 2);
        assert!(warnings.0.lock().unwrap().is_empty());
        assert_eq!(m.workers(&targets, Some(Accel::Tcg)), 1);
        let said = warnings.0.lock().unwrap().join("\n");
        assert!(
            said.contains("QEMU 7.2") && said.contains("one at a time"),
            "{said}"
        );
        // QEMU 8 and later: as many as asked for, never more than targets.
        fs::write(&qemu, "#!/bin/sh\necho 'QEMU emulator version 10.0.2'\n").unwrap();
        assert_eq!(m.workers(&targets, Some(Accel::Tcg)), 2);
        assert_eq!(m.workers(&targets[..1], Some(Accel::Tcg)), 1);
    }
}
