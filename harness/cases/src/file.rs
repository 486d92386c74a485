//! The test-case file format, as serde reads it. Everything a later error
//! must point at is kept `Spanned`.

use std::collections::BTreeMap;

use harness_packet::{Hex, NameOrNumber, PacketDef};
use serde::Deserialize;
use toml::{Spanned, Value};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileDef {
    /// Object under `sample-programs/` (the `.bpf.c` stem).
    pub object: Spanned<String>,
    /// Program every case drives unless it names another.
    pub program: Option<Spanned<String>>,
    #[serde(default, rename = "case")]
    pub cases: Vec<Spanned<CaseDef>>,
    /// Expected verifier outcomes per kernel range.
    #[serde(default)]
    pub verifier: Vec<Spanned<VerifierDef>>,
}

/// `[[verifier]]`: what the verifier should do with a program on which
/// kernels, like the `__accepted`/`__rejected` macros in C.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifierDef {
    pub program: Spanned<String>,
    /// `all`, `6.1`, `>=5.17`, `<5.17`, `5.10..6.1`.
    #[serde(default = "all_kernels")]
    pub kernels: Spanned<String>,
    /// `accepted`, `rejected` or `not loaded`.
    pub verdict: Spanned<String>,
    /// Regular expression the log (or, for `not loaded`, the reason) must match.
    pub message: Option<Spanned<String>>,
}

fn all_kernels() -> Spanned<String> {
    Spanned::new(0..0, "all".to_owned())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseDef {
    pub name: Spanned<String>,
    pub program: Option<Spanned<String>>,
    /// Feature probes that must pass for the case to run on a kernel.
    #[serde(default)]
    pub requires: Vec<Spanned<String>>,
    /// Input packet, layer by layer.
    pub packet: Option<Spanned<PacketDef>>,
    /// Input packet(s) from a capture file.
    pub pcap: Option<Spanned<PcapDef>>,
    /// Raw input bytes (`"de ad be ef"`), for programs that do not take a packet.
    pub data: Option<Spanned<Hex>>,
    /// Context fields (`struct xdp_md`, `struct __sk_buff`, raw tracepoint `args`).
    pub ctx: Option<Spanned<toml::Table>>,
    /// Map contents before the run; every other map starts empty.
    #[serde(default)]
    pub maps: BTreeMap<Spanned<String>, Spanned<Vec<Spanned<EntryDef>>>>,
    /// Run the program this many times (the kernel's `repeat`).
    pub repeat: Option<Spanned<u32>>,
    /// How per-CPU values appear in the map snapshot: `sum` (default) or `each`.
    pub percpu: Option<Spanned<String>>,
    /// Snapshot the object's maps after the run (default true).
    pub snapshot_maps: Option<bool>,
    /// Steps in order (test runs and live actions), the maps carried from
    /// one to the next. A case with steps takes its inputs there.
    #[serde(default)]
    pub steps: Vec<Spanned<StepDef>>,
    /// Programs attached for the whole case, inside a VM only (default:
    /// the case's program, when a step is a live action).
    pub attach: Option<Spanned<Vec<Spanned<String>>>>,
    /// Files created before anything is attached: path = content.
    #[serde(default)]
    pub files: BTreeMap<Spanned<String>, Spanned<String>>,
    /// The ring buffer whose records the case decodes, and as which struct.
    pub events: Option<Spanned<EventsDef>>,
    /// Event fields shown as `[field]` in snapshots because they change
    /// from run to run, besides the defaults (pids, times, inodes).
    #[serde(default)]
    pub normalize: Vec<Spanned<String>>,
    /// Deadline of the whole case (default 10 s).
    pub timeout_ms: Option<Spanned<u32>>,
    #[serde(default)]
    pub expect: ExpectDef,
}

/// `events = { map = "events", type = "exec_event" }`, or for a ring buffer
/// carrying several record types told apart by their first `u32`,
/// `type = { 1 = "cred_event", 2 = "tcp_event" }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsDef {
    pub map: Spanned<String>,
    #[serde(rename = "type")]
    pub ty: Spanned<EventTypeDef>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum EventTypeDef {
    One(String),
    ByKind(BTreeMap<String, String>),
}

/// One step: a test run (`packet`, `data` or `ctx`, optionally another
/// `program`) or exactly one live action.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepDef {
    pub program: Option<Spanned<String>>,
    pub packet: Option<Spanned<PacketDef>>,
    pub data: Option<Spanned<Hex>>,
    pub ctx: Option<Spanned<toml::Table>>,
    /// Run a binary: `["/bin/true", "arg"]`.
    pub exec: Option<Spanned<Vec<String>>>,
    /// Open a path; `mode` is `read` (default), `write` or `create`.
    pub open: Option<Spanned<String>>,
    pub mode: Option<Spanned<String>>,
    /// `tcp://10.0.0.1:443`, `udp://[2001:db8::1]:53`.
    pub connect: Option<Spanned<String>>,
    /// `setresuid`: one id for all three, or `[real, effective, saved]`.
    pub setuid: Option<Spanned<IdsDef>>,
    pub setgid: Option<Spanned<IdsDef>>,
    pub sleep_ms: Option<Spanned<u32>>,
    #[serde(default)]
    pub expect: StepExpectDef,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum IdsDef {
    One(u32),
    Three(Vec<u32>),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepExpectDef {
    /// A live action's outcome: `ok`, `allowed` (not refused by a policy:
    /// anything but EPERM and EACCES), `denied` (EPERM or EACCES), or an
    /// errno name (`ENOENT`).
    pub result: Option<Spanned<String>>,
    /// A test run's return value.
    #[serde(rename = "return")]
    pub retval: Option<Spanned<NameOrNumber>>,
    /// An `exec` step's exit status.
    pub exit: Option<Spanned<i32>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PcapDef {
    /// Relative to the test-case file.
    pub file: Spanned<String>,
    /// Which packet (0-based); all packets when absent, one case run each.
    pub index: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntryDef {
    pub key: Spanned<Value>,
    /// The value (copied to every CPU of a per-CPU map).
    pub value: Option<Spanned<Value>>,
    /// Per-CPU values, CPU 0 first; CPUs not listed get zero.
    pub values: Option<Spanned<Vec<Value>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectDef {
    /// `"XDP_DROP"`, `"TC_ACT_SHOT"`, or a number.
    #[serde(rename = "return")]
    pub retval: Option<Spanned<NameOrNumber>>,
    /// The output packet: layers, `"unchanged"`, or `{ hex = ... }` via `packet_hex`.
    pub packet: Option<Spanned<PacketExpect>>,
    pub packet_hex: Option<Spanned<Hex>>,
    /// Context fields after the run (e.g. a `mark` the program set).
    pub ctx: Option<Spanned<toml::Table>>,
    /// A flow dissector's output, `struct bpf_flow_keys` (only the fields given).
    pub flow_keys: Option<Spanned<toml::Table>>,
    /// Entries that must (or, with `absent = true`, must not) exist after the run.
    #[serde(default)]
    pub maps: BTreeMap<Spanned<String>, Spanned<Vec<Spanned<ExpectEntryDef>>>>,
    /// The events read from the ring buffer, in order, all of them; for
    /// each, only the fields given are compared.
    pub events: Option<Spanned<Vec<Spanned<toml::Table>>>>,
    /// How many events the ring buffer must yield (for bursts too large
    /// to list).
    pub event_count: Option<Spanned<usize>>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum PacketExpect {
    /// `"unchanged"`: the output equals the input.
    Keyword(String),
    Layers(Box<PacketDef>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectEntryDef {
    pub key: Spanned<Value>,
    /// Expected value; for structs only the fields given are compared. For
    /// per-CPU maps, compared with the sum over CPUs.
    pub value: Option<Spanned<Value>>,
    /// Expected per-CPU values, CPU 0 first.
    pub values: Option<Spanned<Vec<Value>>>,
    /// The key must not exist.
    #[serde(default)]
    pub absent: bool,
}
