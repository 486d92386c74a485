use serde::{Deserialize, Serialize};

use crate::Bytes;

/// One line of the executor's output stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "snake_case")]
pub enum Record {
    Hello(GuestInfo),
    Probe(ProbeReport),
    /// An object that could not be prepared at all (unreadable, BTF or map
    /// creation failed). Its programs and cases are not reported separately.
    ObjectError {
        object: String,
        error: String,
    },
    Program(ProgramReport),
    Case(CaseReport),
    Done(Done),
}

/// Who is answering: identifies the kernel the records are about.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestInfo {
    /// `uname -r`.
    pub release: String,
    /// `uname -v`.
    pub version: String,
    pub machine: String,
    pub possible_cpus: u32,
    /// Active LSMs (`/sys/kernel/security/lsm`), empty when unreadable.
    pub lsm: String,
    /// Filesystems the runner mounted; failures are listed with their reason.
    pub mounts: Vec<String>,
    /// The device records travel on (`debugcon`, or `ttyS1` as a fallback).
    #[serde(default)]
    pub results_port: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeReport {
    pub name: String,
    pub available: bool,
    pub detail: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgramReport {
    pub object: String,
    pub program: String,
    /// ELF section the program came from.
    pub section: String,
    /// Program type as the loader understood it (e.g. `xdp`).
    pub prog_type: String,
    pub verdict: Verdict,
    /// The complete verifier log, never truncated by the runner (plain
    /// text: the record stream is compressed as a whole).
    pub log: String,
    pub log_level: u32,
    /// The kernel itself cut the log short (buffer limit reached).
    pub log_truncated: bool,
    /// From `BPF_OBJ_GET_INFO_BY_FD`, when the program loaded.
    pub info: Option<ProgInfo>,
    /// Wall time of the successful `BPF_PROG_LOAD` call.
    pub load_ns: u64,
    /// Instructions handed to the kernel (veristat's "program size").
    #[serde(default)]
    pub insn_cnt: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    Accepted,
    /// The kernel refused the program (`errno` from `BPF_PROG_LOAD`).
    Rejected {
        errno: i32,
        message: String,
    },
    /// The harness could not even attempt the load (unknown section, missing
    /// attach target, ...).
    NotLoaded {
        reason: String,
    },
}

impl Verdict {
    pub fn is_accepted(&self) -> bool {
        matches!(self, Self::Accepted)
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgInfo {
    pub id: u32,
    pub xlated_len: u32,
    pub jited_len: u32,
    /// Instructions the verifier processed (kernel 5.16+, else 0).
    pub verified_insns: u32,
    pub nr_map_ids: u32,
    pub tag: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseReport {
    pub id: String,
    pub outcome: CaseOutcome,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum CaseOutcome {
    /// The action ran; `maps` holds every keyed map afterwards when the plan
    /// asked for dumps.
    Ran {
        output: ActionOutput,
        #[serde(default)]
        maps: Vec<MapDump>,
    },
    /// A probe the case requires failed on this kernel.
    Skipped { reason: String },
    /// The case could not run to the end.
    Error { step: CaseStep, error: String },
}

/// What an [`crate::Action`] produced, one variant per action.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum ActionOutput {
    TestRun(TestRunOutput),
    Steps(StepsOutput),
}

/// What an [`crate::Action::Steps`] produced: one output per step that
/// ran (a failing step ends the case: its error is the case's), and every
/// ring-buffer record in the order the kernel committed them per buffer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepsOutput {
    pub steps: Vec<StepOutput>,
    #[serde(default)]
    pub events: Vec<EventRecord>,
    /// Records a perf buffer reported lost (it overflowed), per map.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lost: Vec<LostEvents>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LostEvents {
    pub map: String,
    pub count: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "output", rename_all = "snake_case")]
pub enum StepOutput {
    TestRun(TestRunOutput),
    /// A workload action: `errno` 0 when the system call succeeded; for
    /// `exec`, the exit status of the program it ran.
    Done {
        errno: i32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        exit_status: Option<i32>,
    },
}

/// One record read from a ring buffer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRecord {
    pub map: String,
    /// The step that was running (or had just run) when it was read.
    pub step: u32,
    pub data: Bytes,
}

/// What `BPF_PROG_TEST_RUN` handed back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestRunOutput {
    pub retval: u32,
    pub data_out: Bytes,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ctx_out: Option<Bytes>,
    /// Average run time reported by the kernel, per repetition.
    pub duration_ns: u32,
}

/// Where a case stopped, so a failure can say what went wrong without the
/// host parsing the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseStep {
    /// Finding the program (absent, or it did not load).
    Program,
    /// Emptying the maps or writing the case's entries.
    Setup,
    /// Performing the action (the kernel refused the input, ...).
    Action,
    /// Reading the maps back.
    Dump,
    /// A probe named by the case is not in the plan.
    Requires,
    /// Attaching the case's programs (or creating its cgroup or files).
    Attach,
    /// One step of an [`crate::Action::Steps`] (its index is in the error).
    Step,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MapDump {
    pub name: String,
    pub map_type: crate::MapType,
    pub key_size: u32,
    pub value_size: u32,
    /// Sorted by key bytes so dumps are deterministic.
    pub entries: Vec<MapEntry>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MapEntry {
    pub key: Bytes,
    /// One element for ordinary maps, one per possible CPU for per-CPU maps.
    pub values: Vec<Bytes>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Done {
    /// Set when the executor itself failed (plan unreadable, ...).
    pub error: Option<String>,
    /// Where the executor's time went, on the executor's own clock (absent
    /// when it failed, and from runners that predate it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timings: Option<ExecTimings>,
}

/// The executor's time by phase, in nanoseconds of its own clock: inside a
/// VM the guest's, so a bench can tell the guest's work from the host's
/// (booting, waiting, judging) and the kernel's from the harness's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecTimings {
    /// Feature probes.
    pub probes_ns: u64,
    /// Reading objects and learning their programs and maps (libbpf opens
    /// each once for that, and again to load it).
    pub parse_ns: u64,
    /// libbpf opening and loading each object: relocations, maps created,
    /// every program handed to the verifier (retries alone included).
    pub load_ns: u64,
    /// Each program's `BPF_OBJ_GET_INFO_BY_FD` and its report built.
    pub report_ns: u64,
    /// Cases: maps set up, programs run, maps read back, live steps (a
    /// live case's fresh copy of its object loaded included).
    pub cases_ns: u64,
    /// Records encoded, compressed and handed to the channel.
    pub emit_ns: u64,
    /// From the executor's start to its end (the phases and what lies
    /// between them).
    pub total_ns: u64,
}
