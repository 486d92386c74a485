//! Builds what the harness runs: BPF objects from C, the static in-VM
//! runner, and `vmlinux.h` from a kernel's BTF.

mod bpf;
mod fresh;
mod guest;
mod vmlinux;

pub use bpf::{
    BpfBuild, BuildError, BuiltObject, HeaderHint, header_hint, header_package, object_name,
};
pub use guest::{
    GUEST_TARGET, GuestBuildError, build_guest_runner, harness_sources, runner_target_dir,
};
pub use vmlinux::{VmlinuxError, bpftool, vmlinux_header};
