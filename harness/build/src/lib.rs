//! Builds what the harness runs: BPF objects from C, and the static in-VM
//! runner.

mod bpf;
mod fresh;
mod guest;

pub use bpf::{
    BpfBuild, BuildError, BuiltObject, HeaderHint, header_hint, header_package, object_name,
};
pub use guest::{
    GUEST_TARGET, GuestBuildError, build_guest_runner, harness_sources, runner_target_dir,
};
