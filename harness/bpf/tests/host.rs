//! Loading real objects on the host kernel (root): programs are loaded and
//! run through BPF_PROG_TEST_RUN only, never attached, and freed on drop.

use std::{fs, os::fd::AsFd as _};

use harness_bpf::{LogOptions, ObjectFile, ProgramLoadError, TestRunInput};

const PROGRAMS: &str = r#"
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} hits SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u32);
} verdicts SEC(".maps");

SEC("xdp")
int good(struct xdp_md *ctx)
{
	__u32 key = 1, *v;
	__u64 *h = bpf_map_lookup_elem(&hits, &key);
	if (h)
		*h += 1;
	v = bpf_map_lookup_elem(&verdicts, &key);
	return v ? *v : XDP_PASS;
}

SEC("xdp")
int bad(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	/* No bounds check: the verifier must refuse this. */
	return *(unsigned char *)data;
}

char LICENSE[] SEC("license") = "GPL";
"#;

fn object() -> (tempfile::TempDir, ObjectFile) {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("t.bpf.c"), PROGRAMS).unwrap();
    let built = harness_build::BpfBuild::new(src, dir.path().join("out"))
        .build_all()
        .unwrap();
    let obj = ObjectFile::parse(fs::read(&built[0].object).unwrap()).unwrap();
    (dir, obj)
}

fn packet() -> Vec<u8> {
    let mut p = vec![0u8; 64];
    p[12] = 0x08; // IPv4 ethertype
    p
}

#[test]
fn every_program_loads_on_its_own_and_a_rejection_keeps_its_log() {
    let (_dir, obj) = object();
    let names: Vec<_> = obj.programs().iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["bad", "good"]);
    let loaded = obj
        .load(LogOptions {
            level: 2 | 4,
            ..LogOptions::default()
        })
        .unwrap();

    let good = loaded.program("good").unwrap();
    assert!(good.error.is_none());
    // Level 2 keeps the whole walk of an accepted program...
    assert!(
        good.log.text.contains("call bpf_map_lookup_elem"),
        "{}",
        good.log.text
    );
    assert!(good.log.text.contains("processed "), "{}", good.log.text);
    let info = harness_bpf::prog_info(good.fd.as_ref().unwrap().as_fd()).unwrap();
    assert!(info.xlated_len > 0 && info.id > 0);

    let bad = loaded.program("bad").unwrap();
    assert!(bad.fd.is_none());
    assert!(
        matches!(
            bad.error,
            Some(ProgramLoadError::Rejected { errno: 13, .. })
        ),
        "{:?}",
        bad.error
    );
    assert!(
        bad.log.text.contains("invalid access to packet"),
        "{}",
        bad.log.text
    );
}

#[test]
fn level_one_keeps_only_statistics_for_an_accepted_program() {
    let (_dir, obj) = object();
    let loaded = obj
        .load(LogOptions {
            level: 1 | 4,
            ..LogOptions::default()
        })
        .unwrap();
    let log = &loaded.program("good").unwrap().log.text;
    assert!(log.contains("processed "), "{log}");
    assert!(
        !log.contains("call bpf_map_lookup_elem"),
        "the kernel discards level-1 logs on success: {log}"
    );
}

#[test]
fn a_small_log_buffer_grows_until_the_log_is_complete() {
    let (_dir, obj) = object();
    let loaded = obj
        .load(LogOptions {
            level: 2 | 4,
            initial_size: 256,
            max_size: 64 << 20,
            ..LogOptions::default()
        })
        .unwrap();
    let good = loaded.program("good").unwrap();
    assert!(
        good.error.is_none(),
        "ENOSPC must not turn into a rejection: {:?}",
        good.error
    );
    assert!(
        good.log.attempts > 1,
        "the level-2 log of this program exceeds 256 bytes"
    );
    assert!(good.log.text.len() > 256 && good.log.text.contains("processed "));
    assert!(!good.log.truncated);
}

#[test]
fn test_run_reads_maps_and_reset_restores_them() {
    let (_dir, obj) = object();
    let loaded = obj.load(LogOptions::default()).unwrap();
    let fd = loaded.program("good").unwrap().fd.as_ref().unwrap().as_fd();
    let verdicts = loaded.map("verdicts").unwrap();
    verdicts
        .update(&1u32.to_ne_bytes(), &[&1u32.to_ne_bytes()])
        .unwrap();
    let out = harness_bpf::test_run(
        fd,
        &TestRunInput {
            data: &packet(),
            data_out_size: 128,
            repeat: 3,
            ..TestRunInput::default()
        },
    )
    .unwrap();
    assert_eq!(out.retval, 1, "the verdict from the map (XDP_DROP)");
    assert_eq!(out.data_out, packet());

    let hits = loaded.map("hits").unwrap();
    assert!(hits.is_per_cpu());
    let values = hits.lookup(&1u32.to_ne_bytes()).unwrap().unwrap();
    assert_eq!(values.len(), harness_bpf::possible_cpus().unwrap());
    let total: u64 = values
        .iter()
        .map(|v| u64::from_ne_bytes(v[..8].try_into().unwrap()))
        .sum();
    assert_eq!(total, 3, "repeat = 3 runs");

    // An array's dump reads every index (in one batch where the kernel
    // can): the same as reading them one by one.
    let dumped = hits.entries().unwrap();
    assert_eq!(dumped.len(), 2);
    for (key, values) in &dumped {
        assert_eq!(Some(values.clone()), hits.lookup(key).unwrap());
    }

    for m in &loaded.maps {
        m.reset().unwrap();
    }
    assert!(verdicts.entries().unwrap().is_empty());
    let values = hits.lookup(&1u32.to_ne_bytes()).unwrap().unwrap();
    assert!(values.iter().all(|v| v.iter().all(|b| *b == 0)));

    // Both maps are now known clean (reset, and dumped so): a program run
    // dirties them only as far as the caller says so with `touched`.
    hits.entries().unwrap();
    let run = || {
        harness_bpf::test_run(
            fd,
            &TestRunInput {
                data: &packet(),
                data_out_size: 128,
                ..TestRunInput::default()
            },
        )
        .unwrap();
    };
    for m in &loaded.maps {
        m.touched();
    }
    run();
    hits.reset().unwrap();
    let values = hits.lookup(&1u32.to_ne_bytes()).unwrap().unwrap();
    assert!(
        values.iter().all(|v| v.iter().all(|b| *b == 0)),
        "touched, so reset"
    );
    // Our own writes dirty a map found clean.
    assert!(verdicts.entries().unwrap().is_empty());
    verdicts
        .update(&2u32.to_ne_bytes(), &[&2u32.to_ne_bytes()])
        .unwrap();
    verdicts.reset().unwrap();
    assert!(verdicts.entries().unwrap().is_empty(), "written, so reset");
    // A dump that finds a map not at its reset state leaves it to reset.
    verdicts
        .update(&3u32.to_ne_bytes(), &[&3u32.to_ne_bytes()])
        .unwrap();
    assert_eq!(verdicts.entries().unwrap().len(), 1);
    verdicts.reset().unwrap();
    assert!(verdicts.entries().unwrap().is_empty());
}

/// `BPF_PROG_GET_FD_BY_ID` fails with ENOENT once nothing holds the program.
fn program_exists(id: u32) -> bool {
    #[repr(C)]
    struct Attr {
        id: u32,
        next_id: u32,
        open_flags: u32,
        _pad: [u32; 29],
    }
    let attr = Attr {
        id,
        next_id: 0,
        open_flags: 0,
        _pad: [0; 29],
    };
    // SAFETY: BPF_PROG_GET_FD_BY_ID (13) reads `attr` of the size we pass.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            13,
            &attr as *const Attr,
            std::mem::size_of::<Attr>(),
        )
    };
    if fd >= 0 {
        // SAFETY: we own the fd the kernel just returned.
        unsafe { libc::close(fd as i32) };
    }
    fd >= 0
}

#[test]
fn dropping_an_object_frees_its_programs_and_attaches_nothing() {
    let (_dir, obj) = object();
    let loaded = obj.load(LogOptions::default()).unwrap();
    let id = harness_bpf::prog_info(loaded.program("good").unwrap().fd.as_ref().unwrap().as_fd())
        .unwrap()
        .id;
    assert!(program_exists(id));
    drop(loaded);
    // Freeing is deferred to an RCU grace period: give it a moment.
    let gone = (0..200).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(10));
        !program_exists(id)
    });
    assert!(
        gone,
        "program {id} is still loaded: something kept a reference"
    );
}

#[test]
fn parsing_does_not_need_a_kernel_and_lists_maps_with_btf() {
    let (_dir, obj) = object();
    let maps: Vec<_> = obj
        .maps()
        .iter()
        .map(|m| (m.name.as_str(), m.key_size, m.value_size))
        .collect();
    assert_eq!(maps, [("hits", 4, 8), ("verdicts", 4, 4)]);
    assert!(
        obj.maps()
            .iter()
            .all(|m| m.btf_key_type_id != 0 && m.btf_value_type_id != 0)
    );
    assert!(obj.btf_section().is_some_and(|b| b.len() > 100));
}

#[test]
fn a_program_type_the_kernel_does_not_know_is_named_not_rejected() {
    let (_dir, mut obj) = object();
    let mut kind = obj
        .programs()
        .iter()
        .find(|p| p.name == "good")
        .unwrap()
        .kind
        .clone()
        .unwrap();
    kind.prog_type = 999;
    kind.name = "made_up";
    assert!(obj.set_program_kind("good", kind));
    let loaded = obj.load(LogOptions::default()).unwrap();
    match &loaded.program("good").unwrap().error {
        Some(ProgramLoadError::NotLoaded { reason }) => {
            assert!(
                reason.contains("does not know made_up programs (BPF_PROG_TYPE 999)"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
    // The object's other programs are unaffected.
    assert!(loaded.program("bad").unwrap().error.is_some());
}

const WITH_UNKNOWN_SECTION: &str = r#"
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("tc") int libbpf_style(struct __sk_buff *skb) { return 0; }
SEC("made_up/thing") int odd(void *ctx) { return 1; }
SEC("xdp") int fine(struct xdp_md *ctx) { return XDP_PASS; }
char LICENSE[] SEC("license") = "GPL";
"#;

#[test]
fn unknown_sections_are_reported_per_program_and_the_rest_loads() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("mixed.bpf.c"), WITH_UNKNOWN_SECTION).unwrap();
    let built = harness_build::BpfBuild::new(src, dir.path().join("out"))
        .build_all()
        .unwrap();
    let obj = ObjectFile::parse(fs::read(&built[0].object).unwrap()).unwrap();
    let names: Vec<_> = obj
        .programs()
        .iter()
        .map(|p| (p.name.as_str(), p.section.as_str(), p.kind.is_ok()))
        .collect();
    assert_eq!(
        names,
        [
            ("fine", "xdp", true),
            ("libbpf_style", "tc", true),
            ("odd", "made_up/thing", false)
        ]
    );
    let loaded = obj.load(LogOptions::default()).unwrap();
    assert!(loaded.program("fine").unwrap().fd.is_some());
    // libbpf >= 1.0's name for classifiers.
    let tc = loaded.program("libbpf_style").unwrap();
    assert!(tc.fd.is_some(), "{:?}", tc.error);
    assert_eq!(tc.spec.kind.as_ref().unwrap().name, "sched_cls");
    match &loaded.program("odd").unwrap().error {
        Some(ProgramLoadError::NotLoaded { reason }) => assert!(
            reason.contains("section `made_up/thing`") && reason.contains("libbpf"),
            "{reason}"
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_object_without_programs_parses_and_loads_its_maps() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(
        src.join("maps_only.bpf.c"),
        "#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\nstruct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1); __type(key, __u32); __type(value, __u64); } shared SEC(\".maps\");\nchar LICENSE[] SEC(\"license\") = \"GPL\";\n",
    )
    .unwrap();
    let built = harness_build::BpfBuild::new(src, dir.path().join("out"))
        .build_all()
        .unwrap();
    let obj = ObjectFile::parse(fs::read(&built[0].object).unwrap()).unwrap();
    assert!(obj.programs().is_empty());
    let loaded = obj.load(LogOptions::default()).unwrap();
    assert!(loaded.programs.is_empty());
    assert!(loaded.map("shared").is_some());
}

/// `source` compiled as `file` and parsed (the directory lives as long as
/// the first element).
fn built(file: &str, source: &str) -> (tempfile::TempDir, ObjectFile) {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join(file), source).unwrap();
    let built = harness_build::BpfBuild::new(src, dir.path().join("out"))
        .build_all()
        .unwrap();
    let obj = ObjectFile::parse(fs::read(&built[0].object).unwrap()).unwrap();
    (dir, obj)
}

const TAIL_CALLS: &str = r#"
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp") int handle(struct xdp_md *ctx) { return XDP_TX; }

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(values, int (void *));
} jump SEC(".maps") = {
	.values = { [0] = (void *)&handle },
};

SEC("xdp")
int dispatch(struct xdp_md *ctx)
{
	bpf_tail_call(ctx, &jump, 0);
	return XDP_DROP;
}

SEC("xdp")
int broken(struct xdp_md *ctx)
{
	return *(unsigned char *)(long)ctx->data;
}

char LICENSE[] SEC("license") = "GPL";
"#;

/// One rejected program sends the loader to one program at a time, where
/// libbpf cannot fill the prog array with a program that load left out:
/// that is not the accepted programs' fault, and the accepted ones are
/// loaded together again, the prog array filled, for the cases.
#[test]
fn a_prog_array_initialised_in_the_object_survives_a_rejected_neighbour() {
    let (_dir, obj) = built("tail.bpf.c", TAIL_CALLS);
    let loaded = obj.load(LogOptions::default()).unwrap();
    assert!(matches!(
        loaded.program("broken").unwrap().error,
        Some(ProgramLoadError::Rejected { errno: 13, .. })
    ));
    for name in ["dispatch", "handle"] {
        let p = loaded.program(name).unwrap();
        assert_eq!(p.error, None, "{name}");
        assert!(p.log.text.contains("processed "), "{name}: {}", p.log.text);
    }
    let dispatch = loaded.program("dispatch").unwrap().fd.as_ref().unwrap();
    let out = harness_bpf::test_run(
        dispatch.as_fd(),
        &TestRunInput {
            data: &packet(),
            data_out_size: 1500,
            ..TestRunInput::default()
        },
    )
    .unwrap();
    // XDP_TX (3) from `handle`: the tail call went through the array.
    assert_eq!(out.retval, 3);
}

const TOO_COMPLEX: &str = r#"
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int spin(struct xdp_md *ctx)
{
	__u64 acc = ctx->data_end - ctx->data;
	/* Every round forks on unknown data: no state is ever equal. */
	for (int i = 0; i < 100000; i++) {
		if (acc & 1)
			acc = acc * 3 + 1;
		else
			acc = acc / 2 + i;
	}
	return acc & 3;
}

char LICENSE[] SEC("license") = "GPL";
"#;

/// A program that runs into a verifier complexity limit (here 8192 pending
/// branches; the gallery's `too_complex` hits the 1M-instruction limit on
/// every kernel) is a result. Its walk is logged at level 1 only when the
/// statistics say it processed no more than the walk budget: past it, the
/// statistics log (which holds the error line) is all, never megabytes.
#[test]
fn a_complexity_limit_is_a_result_whose_walk_is_logged_within_the_budget() {
    let (_dir, obj) = built("big.bpf.c", TOO_COMPLEX);
    let over_budget = obj
        .load(LogOptions {
            walk_budget: 1_000,
            ..LogOptions::default()
        })
        .unwrap();
    let p = over_budget.program("spin").unwrap();
    assert!(
        matches!(p.error, Some(ProgramLoadError::Rejected { .. })),
        "{:?}",
        p.error
    );
    let limit = |text: &str| text.contains("is too complex") || text.contains("is too large");
    assert!(limit(&p.log.text), "{}", p.log.text);
    assert_eq!(p.log.level, 4, "no level-1 walk past the budget");
    assert!(p.log.text.len() < 64 << 10, "{} bytes", p.log.text.len());

    let within = obj.load(LogOptions::default()).unwrap();
    let p = within.program("spin").unwrap();
    assert!(matches!(p.error, Some(ProgramLoadError::Rejected { .. })));
    assert!(limit(&p.log.text));
    assert_eq!(
        p.log.level, 5,
        "the walk is logged: it is within the budget"
    );
    assert!(
        p.log.text.lines().any(|l| l.contains(": (")),
        "instructions in the log"
    );
}
