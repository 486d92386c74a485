//! Runs a kernel in QEMU with a generated initramfs and collects what the
//! guest reports.
//!
//! The guest's PID 1 writes a compressed stream of JSON records into memory
//! shared with the host (an `ivshmem-plain` device backed by a file we map),
//! or to QEMU's ISA debug console (or, failing that, the second serial
//! port), which we read from a Unix socket; the first serial port is the kernel console, which
//! we watch for panics and oopses and keep for error reports. A VM either
//! ends with a complete record stream or fails with a reason and the console
//! tail: panic, timeout, QEMU error, interrupted, or a stream cut short.

mod accel;
mod initramfs;
pub mod leftovers;
mod qemu;
mod shared;
pub mod tools;

pub use accel::{
    Accel, AccelChoice, AccelDecision, KVM_DEVICE, choose_accel, host_fingerprint, remember_accel,
};
pub use initramfs::Initramfs;

/// The kind of the temporary directory each VM run makes (holding its
/// results socket), for [`leftovers::sweep`] of `std::env::temp_dir()`.
pub const TEMP_DIR_KIND: &str = "harness-vm-";
pub use qemu::{
    QemuVersion, VmConfig, VmError, VmOutcome, console_tail, qemu_has_device, qemu_version, run,
    time_boot,
};
