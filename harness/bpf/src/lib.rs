//! BPF objects as a test harness needs them.
//!
//! aya parses and relocates objects well but keeps the verifier log only when
//! a load fails, and asks for it only on a retry. A harness needs the log of
//! every load, at a chosen level, complete. So this crate uses `aya-obj` for
//! ELF, BTF and relocations, `aya` for feature detection and map creation, and
//! issues `BPF_PROG_LOAD`, `BPF_PROG_TEST_RUN` and the map commands itself.
//!
//! Every program of an object is loaded on its own with its own log; one
//! rejected program never prevents the others from loading.

mod log;
mod map;
mod object;
mod probe;
mod program;
mod sections;
mod sys;
mod test_run;

pub use log::{LogOptions, VerifierLog};
pub use map::{Entry, Map, MapKind};
pub use object::{
    LoadedObject, LoadedProgram, MapSpec, NotLoadable, ObjectError, ObjectFile, ProgramLoadError,
    ProgramSpec,
};
pub use program::ProgramKind;
pub mod probes {
    //! Feature probes, see [`crate::probe`].
    pub use crate::probe::{ProbeError, ProbeResult, helper, map_type, prog_type, test_run_ctx};
}
pub use sys::{ProgInfo, possible_cpus, prog_info};
pub use test_run::{TestRunInput, TestRunOutput, test_run};
