//! KVM or TCG: probed once per host (a short KVM boot), remembered, and
//! abandoned for the rest of the run if KVM breaks mid-way.

use std::{path::Path, time::Duration};

use harness_events::Event;
use harness_protocol::INIT_MODE_PROBE;
use harness_vm::{Accel, VmError};

use crate::{Matrix, MatrixError, vm};

/// Decides the accelerator, booting a probe VM the first time on this host.
pub(crate) fn decide(
    m: &Matrix<'_>,
    first_kernel: &Path,
    initramfs: &Path,
) -> Result<Accel, MatrixError> {
    let opts = m.options;
    let fingerprint = harness_vm::host_fingerprint(&harness_vm::qemu_version(&opts.qemu)?);
    let decision = harness_vm::choose_accel(
        opts.accel,
        Path::new(harness_vm::KVM_DEVICE),
        &opts.accel_state,
        &fingerprint,
        || {
            let mut cfg = vm::config(m, first_kernel, initramfs, Accel::Kvm);
            cfg.timeout = Duration::from_secs(15);
            cfg.init_args = vec![INIT_MODE_PROBE.to_owned()];
            harness_vm::run(&cfg, &mut |_| {})
                .map(drop)
                .map_err(|e| first_line_of_failure(&e))
        },
    );
    if !decision.remembered {
        m.events.event(Event::AccelChosen {
            accel: decision.accel.to_string(),
            reason: decision.reason.clone(),
            fallback: decision.accel != Accel::Kvm,
        });
    }
    Ok(decision.accel)
}

/// What QEMU said, else the error's first line.
pub(crate) fn first_line_of_failure(e: &VmError) -> String {
    e.qemu_stderr()
        .filter(|s| !s.is_empty())
        .map_or_else(|| e.to_string(), str::to_owned)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

pub(crate) fn is_kvm_failure(e: &VmError) -> bool {
    e.qemu_stderr()
        .is_some_and(|s| s.contains("KVM") || s.contains("kvm"))
}

/// KVM broke during a run: say so once and remember TCG for this host.
pub(crate) fn fall_back_to_tcg(m: &Matrix<'_>, e: &VmError) {
    let reason = format!(
        "KVM failed during a run ({}); using TCG from now on",
        first_line_of_failure(e)
    );
    m.events.event(Event::AccelChosen {
        accel: Accel::Tcg.to_string(),
        reason: reason.clone(),
        fallback: true,
    });
    if let Ok(v) = harness_vm::qemu_version(&m.options.qemu) {
        harness_vm::remember_accel(
            &m.options.accel_state,
            &harness_vm::host_fingerprint(&v),
            Accel::Tcg,
            &reason,
        );
    }
}
