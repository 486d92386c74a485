//! The contract between the host and whatever runs BPF for it (the in-VM
//! runner, or the host kernel itself).
//!
//! The host compiles test cases into a [`Plan`] of concrete operations (bytes
//! in, bytes out) so the executor needs no knowledge of test-case syntax, BTF
//! pretty-printing or expectations. The executor answers with a stream of
//! [`Record`]s, one JSON object per line, ending in exactly one
//! [`Record::Done`]; a stream without it is incomplete and must not be trusted.
//! Between a VM and the host the lines travel compressed ([`RecordWriter`],
//! [`RecordReader`]).
//!
//! It also holds [`KernelVersion`], the one kernel identity host-side crates
//! share (lines, releases, expectation ranges, feature versions).

mod bytes;
mod map_type;
mod plan;
mod record;
mod stream;
mod version;

pub use bytes::Bytes;
pub use map_type::MapType;
pub use plan::{
    Action, CasePlan, FileSetup, MapValue, MapWrite, ObjectPlan, OpenMode, Plan, Probe, RunInput,
    Step, StepsPlan, Transport, VerifierOptions, file_name_of,
};
pub use record::{
    ActionOutput, CaseOutcome, CaseReport, CaseStep, Done, EventRecord, ExecTimings, GuestInfo,
    LostEvents, MapDump, MapEntry, ProbeReport, ProgInfo, ProgramReport, Record, StepOutput,
    StepsOutput, TestRunOutput, Verdict,
};
pub use stream::{RecordReader, RecordWriter, StreamError};
pub use version::{KernelVersion, NotAVersion};

/// Where the host places the plan inside the guest's initramfs.
pub const GUEST_PLAN_PATH: &str = "/harness/plan.json";
/// The results port's name when records travel through memory shared with
/// the host (QEMU's `ivshmem-plain`).
pub const SHARED_MEMORY_PORT: &str = "ivshmem";
/// Where the record stream starts in the shared memory; before it, the
/// first 8 bytes hold how many stream bytes the guest has published
/// (little endian, stored after the bytes themselves).
pub const SHARED_MEMORY_DATA: usize = 64;
/// Where the host places object files inside the guest's initramfs.
pub const GUEST_OBJECT_DIR: &str = "/harness/objects";
/// Init argument (after `--` on the kernel command line) asking the guest
/// runner to only say hello and power off: probes whether an accelerator works.
pub const INIT_MODE_PROBE: &str = "probe";
/// Init argument asking the guest runner to power off at once: the bare-boot
/// baseline of `cargo xtask bench boot`.
pub const INIT_MODE_POWEROFF: &str = "poweroff";
/// Init argument asking the guest runner to hang after saying hello: lets
/// the harness's own tests check that a hung guest is killed at the timeout.
pub const INIT_MODE_HANG: &str = "hang";
/// Init arguments `hang-after N`: run the plan but stop after sending N
/// records and hang, like a guest wedged mid-run: lets the harness's own
/// tests check that what arrived before is kept.
pub const INIT_MODE_HANG_AFTER: &str = "hang-after";

/// Encodes one record as a single line (no embedded newlines, terminated by `\n`).
pub fn encode_line(record: &Record) -> String {
    let mut line = serde_json::to_string(record).expect("records always serialise");
    line.push('\n');
    line
}

/// Decodes one line produced by [`encode_line`].
pub fn decode_line(line: &str) -> Result<Record, serde_json::Error> {
    serde_json::from_str(line.trim_end_matches(['\r', '\n']))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_names_become_one_distinct_file_name() {
        let names = [
            "xdp_firewall",
            "build/a/prog.o",
            "build%2Fa%2Fprog.o",
            "/tmp/x/prog.o",
            "..",
            ".",
            "",
            "%",
        ];
        let files: Vec<String> = names.iter().map(|n| file_name_of(n)).collect();
        assert_eq!(files[0], "xdp_firewall", "plain names are kept");
        assert_eq!(files[1], "build%2Fa%2Fprog.o");
        for (n, f) in names.iter().zip(&files) {
            assert!(
                !f.contains('/') && f != "." && f != ".." && !f.is_empty(),
                "{n:?} -> {f:?}"
            );
        }
        let distinct: std::collections::BTreeSet<&String> = files.iter().collect();
        assert_eq!(distinct.len(), names.len(), "{files:?}");
    }

    #[test]
    fn records_round_trip_as_single_lines() {
        let record = Record::Program(ProgramReport {
            object: "fw".into(),
            program: "xdp_fw".into(),
            section: "xdp".into(),
            prog_type: "xdp".into(),
            verdict: Verdict::Rejected {
                errno: 13,
                message: "permission denied".into(),
            },
            log: "0: (b7) r0 = 0\nR0 !read_ok\n".into(),
            log_level: 1,
            log_truncated: false,
            info: None,
            load_ns: 12,
            insn_cnt: 2,
        });
        let line = encode_line(&record);
        assert_eq!(line.matches('\n').count(), 1, "{line}");
        assert_eq!(decode_line(&line).unwrap(), record);
    }

    #[test]
    fn bytes_are_hex_in_json() {
        let input = RunInput {
            data: Bytes(vec![0xde, 0xad]),
            ..RunInput::default()
        };
        let json = serde_json::to_string(&input).unwrap();
        assert!(json.contains("\"dead\""), "{json}");
        let back: RunInput = serde_json::from_str(&json).unwrap();
        assert_eq!(back, input);
        assert!(serde_json::from_str::<Bytes>("\"zz\"").is_err());
    }
}
