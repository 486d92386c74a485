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
    LoadedObject, LoadedProgram, MapSpec, ObjectError, ObjectFile, ProgramLoadError, ProgramSpec,
};
pub use program::ProgramKind;
pub mod probes {
    //! Feature probes, see [`crate::probe`].
    pub use crate::probe::{ProbeResult, helper, map_type, prog_type, test_run_ctx};
}
pub use sys::{ProgInfo, possible_cpus, prog_info};
pub use test_run::{TestRunInput, TestRunOutput, test_run};

/// Names of the `BPF_MAP_TYPE_*` constants, for reports.
pub fn map_type_name(map_type: u32) -> String {
    use aya_obj::generated::bpf_map_type::*;
    let name = match map_type {
        x if x == BPF_MAP_TYPE_HASH as u32 => "hash",
        x if x == BPF_MAP_TYPE_ARRAY as u32 => "array",
        x if x == BPF_MAP_TYPE_PROG_ARRAY as u32 => "prog_array",
        x if x == BPF_MAP_TYPE_PERF_EVENT_ARRAY as u32 => "perf_event_array",
        x if x == BPF_MAP_TYPE_PERCPU_HASH as u32 => "percpu_hash",
        x if x == BPF_MAP_TYPE_PERCPU_ARRAY as u32 => "percpu_array",
        x if x == BPF_MAP_TYPE_LRU_HASH as u32 => "lru_hash",
        x if x == BPF_MAP_TYPE_LRU_PERCPU_HASH as u32 => "lru_percpu_hash",
        x if x == BPF_MAP_TYPE_LPM_TRIE as u32 => "lpm_trie",
        x if x == BPF_MAP_TYPE_RINGBUF as u32 => "ringbuf",
        x if x == BPF_MAP_TYPE_QUEUE as u32 => "queue",
        x if x == BPF_MAP_TYPE_STACK as u32 => "stack",
        x if x == BPF_MAP_TYPE_ARRAY_OF_MAPS as u32 => "array_of_maps",
        x if x == BPF_MAP_TYPE_HASH_OF_MAPS as u32 => "hash_of_maps",
        x if x == BPF_MAP_TYPE_BLOOM_FILTER as u32 => "bloom_filter",
        x if x == BPF_MAP_TYPE_SK_STORAGE as u32 => "sk_storage",
        x if x == BPF_MAP_TYPE_INODE_STORAGE as u32 => "inode_storage",
        x if x == BPF_MAP_TYPE_TASK_STORAGE as u32 => "task_storage",
        _ => return format!("map_type_{map_type}"),
    };
    name.to_owned()
}
