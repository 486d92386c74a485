//! BPF objects as a test harness needs them.
//!
//! Objects are opened and loaded by libbpf itself (vendored, linked
//! statically), so every section name, CO-RE relocation, map of maps, prog
//! array initialisation, global data section and extern behaves as in the
//! projects whose programs we test. Each program gets its own verifier log
//! at a chosen level, complete; one rejected program never prevents the
//! others from loading. `BPF_PROG_TEST_RUN`, the map commands and feature
//! probes are issued directly.

mod attach;
mod libbpf;
mod log;
mod map;
mod object;
mod permission;
mod probe;
mod program;
mod sys;
mod test_run;

pub use attach::{AttachError, EventBuffer, Link};
pub use log::{LogOptions, VerifierLog};
pub use map::{Entry, Map, MapKind};
pub use object::{
    CodeRange, LoadedObject, LoadedProgram, MapSpec, NotLoadable, ObjectError, ObjectFile,
    ProgramLoadError, ProgramSpec,
};
pub use permission::{Denial, explain_permission_denied};
pub use program::ProgramKind;
pub mod probes {
    //! Feature probes, see [`crate::probe`].
    pub use crate::probe::{ProbeError, ProbeResult, helper, map_type, prog_type, test_run_ctx};
}
pub use sys::{ProgInfo, possible_cpus, prog_info};
pub use test_run::{TestRunInput, TestRunOutput, test_run};
