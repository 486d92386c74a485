//! Running the plan on each target: VMs in parallel (as many as there are
//! cores), the host in-process.

use std::{
    fs,
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use harness_kernels::Cache;
use harness_protocol::{GUEST_OBJECT_DIR, GUEST_PLAN_PATH, INIT_MODE_PROBE, Record};
use harness_vm::{Accel, AccelChoice, Initramfs, VmConfig, VmError};

use crate::{Prepared, Project, SuiteError, Target, error::io_err, ui};

#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Wall-clock limit per VM, boot included.
    pub timeout: Duration,
    /// VMs at once.
    pub jobs: usize,
    pub memory_mb: u32,
    pub cpus: u32,
    pub qemu: PathBuf,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(300),
            jobs: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory_mb: 1024,
            cpus: 1,
            qemu: PathBuf::from("qemu-system-x86_64"),
        }
    }
}

/// What one target produced.
#[derive(Debug)]
pub struct KernelRun {
    pub target: Target,
    pub accel: Option<Accel>,
    /// The complete record stream, or why there is none.
    pub result: Result<Vec<Record>, String>,
    pub boot_time: Option<Duration>,
    pub total_time: Duration,
}

/// The guest's initramfs: the runner as `/init`, the plan, the objects.
pub fn guest_initramfs(prepared: &Prepared, runner: &Path) -> Result<Initramfs, SuiteError> {
    let plan = prepared.plan(|o| format!("{GUEST_OBJECT_DIR}/{}.bpf.o", o.name));
    let mut fs = Initramfs::new();
    fs.file(
        "/init",
        fs::read(runner).map_err(io_err(format!("reading {}", runner.display())))?,
        true,
    );
    fs.file(
        GUEST_PLAN_PATH,
        serde_json::to_vec(&plan).expect("plans serialise"),
        false,
    );
    for o in &prepared.objects {
        let data = fs::read(&o.path).map_err(io_err(format!("reading {}", o.path.display())))?;
        fs.file(&format!("{GUEST_OBJECT_DIR}/{}.bpf.o", o.name), data, false);
    }
    for d in ["/dev", "/proc", "/sys", "/tmp"] {
        fs.dir(d);
    }
    Ok(fs)
}

/// Builds the static in-VM runner (cargo decides whether anything changed).
pub(crate) fn build_runner(project: &Project) -> Result<PathBuf, SuiteError> {
    ui::status("Building", "in-VM runner (static musl)");
    Ok(harness_build::build_guest_runner(
        &project.root,
        &project.target_dir,
        &project.guest_package,
    )?)
}

/// Writes the initramfs every VM of this run boots.
/// Each run writes its own file (removed when dropped), so concurrent runs in
/// one workspace never boot each other's half-written initramfs.
pub(crate) fn write_initramfs(
    project: &Project,
    prepared: &Prepared,
    runner: &Path,
) -> Result<tempfile::TempPath, SuiteError> {
    let initramfs = guest_initramfs(prepared, runner)?;
    let dir = project.results_dir.clone();
    fs::create_dir_all(&dir).map_err(io_err(format!("creating {}", dir.display())))?;
    let file = tempfile::Builder::new()
        .prefix("initramfs-")
        .suffix(".cpio")
        .tempfile_in(&dir)
        .map_err(io_err(format!(
            "creating an initramfs in {}",
            dir.display()
        )))?;
    let path = file.into_temp_path();
    initramfs
        .write_to(&path)
        .map_err(io_err(format!("writing {}", path.display())))?;
    Ok(path)
}

/// Writes through a temporary file and a rename, so readers never see a
/// half-written file when runs overlap. An unchanged file is left alone.
/// The old file is unlinked before the rename: ext4 flushes a file to disk
/// when a rename replaces another (`auto_da_alloc`), which made writing
/// results the costliest part of a host `verify`.
fn write_atomic(path: &Path, data: &[u8]) -> Result<(), SuiteError> {
    if fs::read(path).is_ok_and(|old| old == data) {
        return Ok(());
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    fs::write(&tmp, data)
        .and_then(|()| match fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => fs::rename(&tmp, path),
        })
        .inspect_err(|_| {
            let _ = fs::remove_file(&tmp);
        })
        .map_err(io_err(format!("writing {}", path.display())))
}

fn vm_config(
    bzimage: &Path,
    initramfs: &Path,
    accel: Accel,
    opts: &RunOptions,
    interrupt: &Arc<AtomicBool>,
) -> VmConfig {
    VmConfig {
        qemu: opts.qemu.clone(),
        kernel: bzimage.to_owned(),
        initramfs: initramfs.to_owned(),
        accel,
        memory_mb: opts.memory_mb,
        cpus: opts.cpus,
        cmdline_extra: Vec::new(),
        init_args: Vec::new(),
        timeout: opts.timeout,
        interrupt: Some(interrupt.clone()),
        debugcon: true,
    }
}

/// Decides KVM or TCG, booting a probe VM the first time on this host.
pub(crate) fn decide_accel(
    choice: AccelChoice,
    first_kernel: &Path,
    initramfs: &Path,
    opts: &RunOptions,
    interrupt: &Arc<AtomicBool>,
) -> Result<Accel, SuiteError> {
    let fingerprint = harness_vm::host_fingerprint(&harness_vm::qemu_version(&opts.qemu)?);
    let state = Cache::default_root().join("accel.json");
    let decision = harness_vm::choose_accel(
        choice,
        Path::new(harness_vm::KVM_DEVICE),
        &state,
        &fingerprint,
        || {
            let mut cfg = vm_config(first_kernel, initramfs, Accel::Kvm, opts, interrupt);
            cfg.timeout = Duration::from_secs(15);
            cfg.init_args = vec![INIT_MODE_PROBE.to_owned()];
            match harness_vm::run(&cfg, &mut |_| {}) {
                Ok(_) => Ok(()),
                Err(e) => Err(e.qemu_stderr().filter(|s| !s.is_empty()).map_or_else(
                    || e.to_string().lines().next().unwrap_or_default().to_owned(),
                    |s| s.lines().next().unwrap_or_default().to_owned(),
                )),
            }
        },
    );
    if decision.probed || choice != AccelChoice::Auto {
        ui::status(
            if decision.accel == Accel::Kvm {
                "Accel"
            } else {
                "Warning"
            },
            &decision.reason,
        );
    }
    Ok(decision.accel)
}

fn write_outputs(
    project: &Project,
    run: &KernelRun,
    console: Option<&str>,
) -> Result<(), SuiteError> {
    let dir = project.results_dir.clone().join(run.target.label());
    fs::create_dir_all(&dir).map_err(io_err(format!("creating {}", dir.display())))?;
    if let Ok(records) = &run.result {
        let text: String = records.iter().map(harness_protocol::encode_line).collect();
        write_atomic(&dir.join("records.jsonl"), text.as_bytes())?;
        // Full verifier logs, never truncated, one file per program.
        for r in records {
            if let Record::Program(p) = r {
                let d = dir.join("verifier").join(&p.object);
                fs::create_dir_all(&d).map_err(io_err(format!("creating {}", d.display())))?;
                write_atomic(&d.join(format!("{}.log", p.program)), p.log.as_bytes())?;
            }
        }
    }
    if let Some(console) = console {
        write_atomic(&dir.join("console.log"), console.as_bytes())?;
    }
    Ok(())
}

fn run_host(prepared: &Prepared) -> Result<Vec<Record>, SuiteError> {
    if !nix::unistd::geteuid().is_root() {
        return Err(SuiteError::NotRoot);
    }
    let plan = prepared.plan(|o| o.path.display().to_string());
    let mut records = Vec::new();
    // Load and BPF_PROG_TEST_RUN only: nothing is attached, and everything
    // created is closed when the executor returns.
    harness_exec::execute(&plan, &mut |r| {
        records.push(r);
        Ok(())
    })
    .map_err(io_err("running on the host"))?;
    records.push(Record::Done(harness_protocol::Done { error: None }));
    Ok(records)
}

fn is_kvm_failure(e: &VmError) -> bool {
    e.qemu_stderr()
        .is_some_and(|s| s.contains("KVM") || s.contains("kvm"))
}

/// Runs every target and writes each one's records, console and verifier
/// logs under `target/harness/<label>/`.
pub fn run_targets(
    project: &Project,
    prepared: &Prepared,
    targets: &[Target],
    runner: Option<&Path>,
    accel: AccelChoice,
    opts: &RunOptions,
    interrupt: Arc<AtomicBool>,
) -> Result<Vec<KernelRun>, SuiteError> {
    let vms: Vec<&Target> = targets
        .iter()
        .filter(|t| matches!(t, Target::Vm { .. }))
        .collect();
    let mut guest = None;
    if let Some(Target::Vm { bzimage, .. }) = vms.first() {
        let runner = match runner {
            Some(r) => r.to_owned(),
            None => build_runner(project)?,
        };
        let initramfs = write_initramfs(project, prepared, &runner)?;
        let accel = decide_accel(accel, bzimage, &initramfs, opts, &interrupt)?;
        guest = Some((initramfs, Mutex::new(accel)));
    }

    let mut workers = opts.jobs.clamp(1, targets.len().max(1));
    if !vms.is_empty()
        && let Some(v) = crate::prereq::qemu_version(&opts.qemu.to_string_lossy())
        && v < crate::prereq::MIN_QEMU
    {
        ui::status(
            "Warning",
            &format!(
                "QEMU {}.{}'s TCG crashes guests at random under load; running VMs one at a time. Install QEMU 8.0 or newer (Debian 12: bookworm-backports)",
                v.0, v.1
            ),
        );
        workers = 1;
    }
    let results: Mutex<Vec<Option<KernelRun>>> =
        Mutex::new((0..targets.len()).map(|_| None).collect());
    let next = Mutex::new(0usize);
    let fatal: Mutex<Option<SuiteError>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let i = {
                        let mut n = next.lock().expect("no panics while holding it");
                        let i = *n;
                        *n += 1;
                        i
                    };
                    if i >= targets.len() || interrupt.load(Ordering::Relaxed) {
                        return;
                    }
                    let target = &targets[i];
                    let started = Instant::now();
                    let (run, console) = match target {
                        Target::Host { .. } => {
                            ui::status("Running", "host kernel (load and test_run only)");
                            match run_host(prepared) {
                                Ok(records) => (
                                    KernelRun {
                                        target: target.clone(),
                                        accel: None,
                                        result: Ok(records),
                                        boot_time: None,
                                        total_time: started.elapsed(),
                                    },
                                    None,
                                ),
                                Err(SuiteError::NotRoot) => {
                                    *fatal.lock().expect("unpoisoned") = Some(SuiteError::NotRoot);
                                    return;
                                }
                                Err(e) => (
                                    KernelRun {
                                        target: target.clone(),
                                        accel: None,
                                        result: Err(e.to_string()),
                                        boot_time: None,
                                        total_time: started.elapsed(),
                                    },
                                    None,
                                ),
                            }
                        }
                        Target::Vm { label, bzimage, .. } => {
                            let (initramfs, accel_cell) =
                                guest.as_ref().expect("built for VM targets");
                            let mut accel = *accel_cell.lock().expect("unpoisoned");
                            ui::status("Running", &format!("{label} ({accel})"));
                            let mut outcome = harness_vm::run(
                                &vm_config(bzimage, initramfs, accel, opts, &interrupt),
                                &mut |_| {},
                            );
                            if accel == Accel::Kvm
                                && matches!(&outcome, Err(e) if is_kvm_failure(e))
                            {
                                // KVM broke mid-run: remember, say so once, retry under TCG.
                                let mut shared = accel_cell.lock().expect("unpoisoned");
                                if *shared == Accel::Kvm {
                                    *shared = Accel::Tcg;
                                    let reason = format!(
                                        "KVM failed during a run ({}); using TCG from now on",
                                        outcome
                                            .as_ref()
                                            .err()
                                            .and_then(|e| e.qemu_stderr())
                                            .unwrap_or_default()
                                            .lines()
                                            .next()
                                            .unwrap_or_default()
                                    );
                                    ui::status("Warning", &reason);
                                    if let Ok(v) = harness_vm::qemu_version(&opts.qemu) {
                                        harness_vm::remember_accel(
                                            &Cache::default_root().join("accel.json"),
                                            &harness_vm::host_fingerprint(&v),
                                            Accel::Tcg,
                                            &reason,
                                        );
                                    }
                                }
                                drop(shared);
                                accel = Accel::Tcg;
                                outcome = harness_vm::run(
                                    &vm_config(bzimage, initramfs, accel, opts, &interrupt),
                                    &mut |_| {},
                                );
                            }
                            match outcome {
                                Ok(o) => {
                                    ui::status(
                                        "Finished",
                                        &format!(
                                            "{label} in {:.1}s (boot {:.1}s)",
                                            o.total_time.as_secs_f64(),
                                            o.boot_time.as_secs_f64()
                                        ),
                                    );
                                    (
                                        KernelRun {
                                            target: target.clone(),
                                            accel: Some(accel),
                                            result: Ok(o.records),
                                            boot_time: Some(o.boot_time),
                                            total_time: o.total_time,
                                        },
                                        Some(o.console),
                                    )
                                }
                                Err(VmError::Interrupted) => return,
                                Err(e) => {
                                    ui::status(
                                        "Failed",
                                        &format!(
                                            "{label}: {}",
                                            e.to_string().lines().next().unwrap_or_default()
                                        ),
                                    );
                                    let console = e.console().map(str::to_owned);
                                    (
                                        KernelRun {
                                            target: target.clone(),
                                            accel: Some(accel),
                                            result: Err(e.to_string()),
                                            boot_time: None,
                                            total_time: started.elapsed(),
                                        },
                                        console,
                                    )
                                }
                            }
                        }
                    };
                    if let Err(e) = write_outputs(project, &run, console.as_deref()) {
                        *fatal.lock().expect("unpoisoned") = Some(e);
                    }
                    results.lock().expect("unpoisoned")[i] = Some(run);
                }
            });
        }
    });
    if interrupt.load(Ordering::Relaxed) {
        return Err(SuiteError::Interrupted);
    }
    if let Some(e) = fatal.into_inner().expect("unpoisoned") {
        return Err(e);
    }
    Ok(results
        .into_inner()
        .expect("unpoisoned")
        .into_iter()
        .flatten()
        .collect())
}
