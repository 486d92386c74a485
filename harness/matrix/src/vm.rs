//! One VM target: boot, collect records as they arrive, retry under TCG if
//! KVM breaks.

use std::{path::Path, sync::Mutex, time::Instant};

use harness_events::Event;
use harness_kernels::Target;
use harness_protocol::Record;
use harness_vm::{Accel, VmConfig, VmError, VmOutcome};

use crate::{KernelRun, Matrix, RunFailure, accel};

/// What every VM of a run shares.
pub(crate) struct Guest {
    pub initramfs: tempfile::TempPath,
    pub accel: Mutex<Accel>,
}

pub(crate) fn config(m: &Matrix<'_>, bzimage: &Path, initramfs: &Path, accel: Accel) -> VmConfig {
    let opts = m.options;
    VmConfig {
        qemu: opts.qemu.clone(),
        kernel: bzimage.to_owned(),
        initramfs: initramfs.to_owned(),
        accel,
        memory_mb: opts.memory_mb,
        cpus: opts.cpus,
        cmdline_extra: Vec::new(),
        init_args: opts.init_args.clone(),
        timeout: opts.timeout,
        interrupt: Some(m.interrupt.clone()),
        debugcon: true,
        shared_memory: true,
    }
}

/// Boots `target`; `None` when the run was interrupted. The console comes
/// back beside the run for the outputs.
pub(crate) fn run(
    m: &Matrix<'_>,
    target: &Target,
    bzimage: &Path,
    initramfs: &Path,
    guest: &Guest,
    started: Instant,
) -> Option<(KernelRun, Option<String>)> {
    let label = &target.label;
    let mut accel = *guest.accel.lock().expect("unpoisoned");
    m.events.event(Event::Running {
        target: label.clone(),
        accel: Some(accel.to_string()),
    });
    let mut records = Vec::new();
    let mut outcome = boot(m, bzimage, initramfs, accel, &mut records);
    if accel == Accel::Kvm
        && let Err(e) = &outcome
        && accel::is_kvm_failure(e)
    {
        let mut shared = guest.accel.lock().expect("unpoisoned");
        if *shared == Accel::Kvm {
            *shared = Accel::Tcg;
            accel::fall_back_to_tcg(m, e);
        }
        drop(shared);
        accel = Accel::Tcg;
        records.clear();
        outcome = boot(m, bzimage, initramfs, accel, &mut records);
    }
    let run = |failure, boot_time, total_time| KernelRun {
        target: target.clone(),
        accel: Some(accel),
        records,
        failure,
        boot_time,
        total_time,
    };
    Some(match outcome {
        Ok(o) => {
            m.events.event(Event::Finished {
                target: label.clone(),
                total: o.total_time,
                boot: Some(o.boot_time),
            });
            (run(None, Some(o.boot_time), o.total_time), Some(o.console))
        }
        Err(VmError::Interrupted) => return None,
        Err(e) => {
            m.events.event(Event::Failed {
                target: label.clone(),
                error: e.to_string().lines().next().unwrap_or_default().to_owned(),
            });
            let console = e.console().map(str::to_owned);
            (
                run(Some(RunFailure::Vm(e)), None, started.elapsed()),
                console,
            )
        }
    })
}

/// One boot; every record that arrives lands in `records`, so a VM that
/// dies keeps what it reported.
fn boot(
    m: &Matrix<'_>,
    bzimage: &Path,
    initramfs: &Path,
    accel: Accel,
    records: &mut Vec<Record>,
) -> Result<VmOutcome, VmError> {
    harness_vm::run(&config(m, bzimage, initramfs, accel), &mut |r| {
        records.push(r.clone());
    })
}
