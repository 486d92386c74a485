use serde::{Deserialize, Serialize};

use crate::Bytes;

/// Everything one kernel is asked to do in one run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub verifier: VerifierOptions,
    /// Feature probes to evaluate before any case runs; cases refer to them by name.
    #[serde(default)]
    pub probes: Vec<Probe>,
    pub objects: Vec<ObjectPlan>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifierOptions {
    /// `log_level` passed to `BPF_PROG_LOAD`: 1 (instructions and states at
    /// branches) or 2 (every state); the stats bit (4) is added by `stats`.
    pub log_level: u32,
    pub stats: bool,
    /// Log a rejected program's walk (level 1 or 2) only if it processed at
    /// most this many instructions; `None`: the loader's default. A larger
    /// budget lets a complexity rejection show where its instructions went,
    /// at the cost of formatting that walk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub walk_budget: Option<u32>,
}

impl Default for VerifierOptions {
    fn default() -> Self {
        Self {
            log_level: 1,
            stats: true,
            walk_budget: None,
        }
    }
}

impl VerifierOptions {
    /// The `log_level` bits for `BPF_PROG_LOAD`.
    pub fn bits(self) -> u32 {
        self.log_level | if self.stats { 4 } else { 0 }
    }
}

/// A named question about the kernel, answered by trying it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Probe {
    /// Can a map of this `BPF_MAP_TYPE_*` number be created?
    MapType { name: String, map_type: u32 },
    /// Can a program of this `BPF_PROG_TYPE_*` number be loaded?
    ProgType { name: String, prog_type: u32 },
    /// Can a program of this type call the helper with this id?
    Helper {
        name: String,
        prog_type: u32,
        helper: u32,
    },
    /// Does `BPF_PROG_TEST_RUN` take a context (`ctx_in`) for this program
    /// type? (XDP: since 5.13.)
    TestRunCtx { name: String, prog_type: u32 },
    /// Is this LSM (`bpf`) among the active ones? BPF LSM programs load
    /// without it but never run.
    ActiveLsm { name: String, lsm: String },
}

impl Probe {
    pub fn name(&self) -> &str {
        match self {
            Self::MapType { name, .. }
            | Self::ProgType { name, .. }
            | Self::Helper { name, .. }
            | Self::TestRunCtx { name, .. }
            | Self::ActiveLsm { name, .. } => name,
        }
    }
}

/// One object file and the cases that drive its programs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectPlan {
    /// Name used in reports: a project object's file stem (`xdp_firewall`),
    /// or the path of an object given on the command line
    /// (`build/prog.bpf.o`); see [`file_name_of`] for using it in a path.
    pub name: String,
    /// Path of the object as the executor sees it.
    pub path: String,
    #[serde(default)]
    pub cases: Vec<CasePlan>,
}

/// An object's or program's name as one file-name component: object names
/// given by path hold `/`, so `%` and `/` are escaped (`%25`, `%2F`), as are
/// the dots of `.` and `..`. Distinct names stay distinct, and nothing
/// escapes the directory the result is joined to.
pub fn file_name_of(name: &str) -> String {
    if name.is_empty() || name == "." || name == ".." {
        return name.replace('.', "%2E") + "%";
    }
    name.replace('%', "%25").replace('/', "%2F")
}

/// One case of one program: reset the object's maps, write `setup`, perform
/// the action, dump the maps.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CasePlan {
    /// Stable identifier chosen by the host (file and case name).
    pub id: String,
    pub program: String,
    #[serde(default)]
    pub setup: Vec<MapWrite>,
    pub action: Action,
    /// Probe names that must succeed for the case to run; otherwise it is
    /// reported as skipped with the failing probe.
    #[serde(default)]
    pub requires: Vec<String>,
    /// Dump every map of the object after the run.
    #[serde(default)]
    pub dump_maps: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MapWrite {
    pub map: String,
    pub key: Bytes,
    pub value: MapValue,
}

/// A map value: one for ordinary maps, one per possible CPU for per-CPU maps
/// (a single value is then written to every CPU).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MapValue {
    Single(Bytes),
    PerCpu(Vec<Bytes>),
}

/// What a case does with its program once the maps are set up.
///
/// The executor dispatches on this enum and answers with a matching
/// [`crate::ActionOutput`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Run the program through `BPF_PROG_TEST_RUN`.
    TestRun(RunInput),
    /// Steps in order with the maps carried between them: test runs, and,
    /// inside a VM only, programs attached for the whole case while a
    /// workload process performs actions, their events collected from ring
    /// buffers.
    Steps(StepsPlan),
}

/// A case made of steps (see [`Action::Steps`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepsPlan {
    /// Programs attached before the first step and detached after the last
    /// (cgroup programs to the case's own fresh cgroup, which the workload
    /// joins). Attaching is refused outside a VM.
    #[serde(default)]
    pub attach: Vec<String>,
    /// Files created before anything is attached.
    #[serde(default)]
    pub files: Vec<FileSetup>,
    pub steps: Vec<Step>,
    /// Ring buffers (map names) whose records are collected, in order.
    #[serde(default)]
    pub ring_buffers: Vec<String>,
    /// The deadline of the whole case: a step still running then is killed
    /// and the case fails.
    pub timeout_ms: u32,
}

impl StepsPlan {
    /// Whether the case touches the running kernel beyond test runs
    /// (attaches, or acts as a workload): only ever done inside a VM.
    pub fn is_live(&self) -> bool {
        !self.attach.is_empty() || self.steps.iter().any(Step::is_live)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileSetup {
    pub path: String,
    pub content: Bytes,
}

/// One step of [`StepsPlan`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    /// `BPF_PROG_TEST_RUN` of one program of the object.
    TestRun {
        program: String,
        input: RunInput,
    },
    /// Run a binary (the workload forks and waits for it).
    Exec {
        argv: Vec<String>,
    },
    /// Open a path (and close it again).
    Open {
        path: String,
        mode: OpenMode,
    },
    /// Connect a socket; to a loopback address the workload listens first
    /// (TCP), so an allowed connection succeeds.
    Connect {
        transport: Transport,
        address: String,
    },
    /// `setresuid(2)`: later steps run with these ids.
    SetUid {
        ruid: u32,
        euid: u32,
        suid: u32,
    },
    /// `setresgid(2)`.
    SetGid {
        rgid: u32,
        egid: u32,
        sgid: u32,
    },
    Sleep {
        ms: u32,
    },
}

impl std::fmt::Display for Step {
    /// The step in words: `exec /bin/true x`, `open /tmp/a (read)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TestRun { program, .. } => write!(f, "test run of {program}"),
            Self::Exec { argv } => write!(f, "exec {}", argv.join(" ")),
            Self::Open { path, mode } => {
                let mode = match mode {
                    OpenMode::Read => "read",
                    OpenMode::Write => "write",
                    OpenMode::Create => "create",
                };
                write!(f, "open {path} ({mode})")
            }
            Self::Connect { transport, address } => {
                let scheme = match transport {
                    Transport::Tcp => "tcp",
                    Transport::Udp => "udp",
                };
                write!(f, "connect {scheme}://{address}")
            }
            Self::SetUid { ruid, euid, suid } => write!(f, "setresuid({ruid}, {euid}, {suid})"),
            Self::SetGid { rgid, egid, sgid } => write!(f, "setresgid({rgid}, {egid}, {sgid})"),
            Self::Sleep { ms } => write!(f, "sleep {ms} ms"),
        }
    }
}

impl Step {
    /// Performed by the workload process (not a test run).
    pub fn is_live(&self) -> bool {
        !matches!(self, Self::TestRun { .. })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpenMode {
    Read,
    Write,
    /// Create (or truncate) and write.
    Create,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    Tcp,
    Udp,
}

/// Input of one `BPF_PROG_TEST_RUN`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunInput {
    pub data: Bytes,
    /// Context (`struct __sk_buff`, `struct xdp_md`, raw tracepoint args, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ctx: Option<Bytes>,
    /// Room for the output packet; programs may grow it (bpf_xdp_adjust_head).
    pub data_out_size: u32,
    /// Room for the output context, 0 to not read it back.
    #[serde(default)]
    pub ctx_out_size: u32,
    pub repeat: u32,
    #[serde(default)]
    pub flags: u32,
}

impl Default for RunInput {
    fn default() -> Self {
        Self {
            data: Bytes::default(),
            ctx: None,
            data_out_size: 0,
            ctx_out_size: 0,
            repeat: 1,
            flags: 0,
        }
    }
}
