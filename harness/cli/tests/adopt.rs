//! A project that is not this repository adopts the harness: its own
//! layout (`src/bpf/` with CO-RE and a `vmlinux.h` made by `vmlinux-h` from
//! 6.1's BTF, a prebuilt object from a
//! Makefile, cases in `tests/bpf/`, snapshots in a directory of its own,
//! kernels pinned in `ci/`), configured in `ebpf-harness.toml`, driven by
//! the `ebpf-harness` binary from one of its sub-directories, on the host
//! (root) and on a VM kernel.

use std::{
    fs,
    path::Path,
    process::{Command, Output},
};

mod common;
use common::{text, workspace, write};

const CONFIG: &str = r#"# The harness's settings for this project.
sources = ["src/bpf/*.bpf.c"]
objects = ["build/*.bpf.o"]
include-dirs = ["src/bpf/headers"]
cflags = ["-Wall"]
cases = ["tests/bpf"]
snapshots = "tests/bpf/snapshots"
kernels = ["host"]
lock-file = "ci/kernels.lock"
"#;

/// XDP: counts packets through a CO-RE-relocated context read; raw_tp: a
/// CO-RE read of the current task's tgid (relocated against each kernel's
/// BTF at load).
const COUNTER: &str = r#"#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

SEC("xdp")
int count_packets(struct xdp_md *ctx)
{
	__u32 key = 0;
	__u64 *n = bpf_map_lookup_elem(&counts, &key);

	if (!n)
		return XDP_ABORTED;
	__sync_fetch_and_add(n, 1);
	return ctx->data_end > ctx->data ? XDP_PASS : XDP_DROP;
}

SEC("raw_tp/sys_enter")
int last_tgid(void *ctx)
{
	struct task_struct *task = (void *)bpf_get_current_task();
	__u32 key = 0;
	__u64 tgid = BPF_CORE_READ(task, tgid);

	bpf_map_update_elem(&counts, &key, &tgid, BPF_ANY);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
"#;

/// Built by the project's own Makefile, not by the harness.
const DROP_ALL: &str = r#"#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

SEC("tc")
int drop_all(struct __sk_buff *skb)
{
	return TC_ACT_SHOT;
}

char LICENSE[] SEC("license") = "GPL";
"#;

const MAKEFILE: &str = "CFLAGS := -target bpf -O2 -g -I/usr/include/x86_64-linux-gnu\n\
build/%.bpf.o: bpf-src/%.c\n\tmkdir -p build\n\tclang $(CFLAGS) -c $< -o $@\n";

const COUNTER_CASES: &str = r#"object = "counter"
program = "count_packets"

[[case]]
name = "a packet is counted and passed"
packet.ipv4 = { src = "10.0.0.1", dst = "10.0.0.2" }
packet.udp = { src = 1000, dst = 53 }
expect.return = "XDP_PASS"
expect.maps.counts = [{ key = 0, value = 1 }]
"#;

const DROP_CASES: &str = r#"object = "drop_all"
program = "drop_all"

[[case]]
name = "everything is dropped"
packet.ipv4 = { src = "10.0.0.1", dst = "10.0.0.2" }
packet.tcp = { src = 1, dst = 2, flags = "SYN" }
expect.return = "TC_ACT_SHOT"
"#;

/// The project, its prebuilt object made by `make`.
fn adopting_project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "ebpf-harness.toml", CONFIG);
    write(root, "src/bpf/counter.bpf.c", COUNTER);
    // vmlinux.h as CO-RE projects make it, from a test kernel's BTF.
    fs::create_dir_all(root.join("src/bpf/headers")).unwrap();
    write(root, "src/main.go", "package main\n\nfunc main() {}\n");
    write(root, "bpf-src/drop_all.c", DROP_ALL);
    write(root, "Makefile", MAKEFILE);
    write(root, "tests/bpf/counter.toml", COUNTER_CASES);
    write(root, "tests/bpf/drop_all.toml", DROP_CASES);
    let lock = fs::read_to_string(workspace().join("kernels.lock")).unwrap();
    write(root, "ci/kernels.lock", &lock);
    let header = cli(
        root,
        "no",
        &[
            "vmlinux-h",
            "--kernel",
            "6.1",
            "--output",
            "src/bpf/headers/vmlinux.h",
        ],
    );
    assert!(header.status.success(), "{}", text(&header));
    let vmlinux = fs::read_to_string(root.join("src/bpf/headers/vmlinux.h")).unwrap();
    assert!(
        vmlinux.starts_with("/* The types of kernel 6.1 (6.1.0-")
            && vmlinux.contains("struct task_struct {"),
        "{}",
        &vmlinux[..200]
    );
    let make = Command::new("make")
        .arg("build/drop_all.bpf.o")
        .current_dir(root)
        .output()
        .unwrap();
    assert!(make.status.success(), "{}", text(&make));
    dir
}

/// The installed binary, run from `dir` with snapshots in `mode`.
fn cli(dir: &Path, insta: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ebpf-harness"))
        .args(args)
        .current_dir(dir)
        .env("INSTA_UPDATE", insta)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

fn snapshots(root: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(root.join("tests/bpf/snapshots"))
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn an_adopting_project_runs_on_the_host_and_a_vm_kernel_from_a_subdirectory() {
    let project = adopting_project();
    let root = project.path();
    let inside = root.join("src");

    let list = cli(&inside, "no", &["test", "--list"]);
    let listed = text(&list);
    assert!(list.status.success(), "{listed}");
    for line in [
        "program counter/count_packets (src/bpf/counter.bpf.c)",
        "program counter/last_tgid (src/bpf/counter.bpf.c)",
        "program drop_all/drop_all (build/drop_all.bpf.o)",
        "case    tests/bpf/counter.toml:4 counter/count_packets: a packet is counted and passed",
        "case    tests/bpf/drop_all.toml:4 drop_all/drop_all: everything is dropped",
        "3 programs, 2 cases (0 filtered out) on host",
    ] {
        assert!(listed.contains(line), "missing `{line}` in:\n{listed}");
    }
    assert!(
        root.join("target/bpf/src/bpf/counter.bpf.o").is_file(),
        "objects go to the project's target directory"
    );

    // First run: snapshots are written where the project keeps them.
    let first = cli(&inside, "always", &["test", "--kernel", "host,6.1"]);
    assert!(first.status.success(), "{}", text(&first));
    let written = snapshots(root);
    for name in [
        "case__counter__a_packet_is_counted_and_passed.snap",
        "case__drop_all__everything_is_dropped.snap",
        "verifier__counter__last_tgid@6.1.snap",
        "verifier__counter__last_tgid@6.18.snap",
    ] {
        assert!(
            written.iter().any(|w| w == name),
            "{name} not in {written:?}"
        );
    }
    assert!(!root.join("testcases").exists());

    // Second run, with the defaults of the configuration (kernels = host)
    // and then on the VM kernel: the snapshots match.
    let again = cli(&inside, "no", &["test"]);
    let out = text(&again);
    assert!(again.status.success(), "{out}");
    assert!(
        out.contains("test result: ok. 1 kernel, 2 cases passed"),
        "{out}"
    );
    let vm = cli(root, "no", &["test", "--kernel", "6.1"]);
    let out = text(&vm);
    assert!(vm.status.success(), "{out}");
    assert!(out.contains("6.1.0-"), "{out}");

    // A renamed case leaves its old snapshot: named, then deleted on request.
    let renamed = COUNTER_CASES.replace("is counted and passed", "is counted once");
    write(root, "tests/bpf/counter.toml", &renamed);
    let stale = "case__counter__a_packet_is_counted_and_passed.snap";
    let named = cli(root, "always", &["test"]);
    let out = text(&named);
    assert!(
        out.contains(&format!("remove tests/bpf/snapshots/{stale}")),
        "{out}"
    );
    assert!(snapshots(root).iter().any(|f| f == stale));
    let deleted = cli(root, "no", &["test", "--unreferenced", "delete"]);
    let out = text(&deleted);
    assert!(deleted.status.success(), "{out}");
    assert!(
        out.contains(&format!("removed tests/bpf/snapshots/{stale}")),
        "{out}"
    );
    assert!(!snapshots(root).iter().any(|f| f == stale));
    assert!(
        snapshots(root)
            .iter()
            .any(|f| f == "case__counter__a_packet_is_counted_once.snap")
    );

    // --filter narrows to one case and its program.
    let one = cli(root, "no", &["test", "--filter", "drop_*", "--list"]);
    let out = text(&one);
    assert!(
        out.contains("1 programs, 1 cases (1 filtered out)") && !out.contains("counter/"),
        "{out}"
    );
    let none = cli(root, "no", &["test", "--filter", "nothing*"]);
    let out = text(&none);
    assert!(
        !none.status.success() && out.contains("--filter nothing* matches no case"),
        "{out}"
    );
}

#[test]
fn a_source_that_does_not_compile_fails_alone() {
    let project = adopting_project();
    let root = project.path();
    write(
        root,
        "src/bpf/broken.bpf.c",
        "#include \"vmlinux.h\"\n\nint broken(void) { return undeclared; }\n",
    );
    let run = cli(root, "always", &["test", "--kernel", "host"]);
    let out = text(&run);
    assert!(!run.status.success(), "{out}");
    assert!(
        out.contains("did not compile") && out.contains("src/bpf/broken.bpf.c:3:"),
        "clang's file:line: {out}"
    );
    assert!(out.contains("2 cases passed"), "the others ran: {out}");
    // No `-Werror` imposed: an unused variable is the project's business.
    write(
        root,
        "src/bpf/broken.bpf.c",
        "#include \"vmlinux.h\"\n#include <bpf/bpf_helpers.h>\nSEC(\"xdp\") int lax(struct xdp_md *c) { int unused; return 2; }\nchar LICENSE[] SEC(\"license\") = \"GPL\";\n",
    );
    let lax = cli(root, "always", &["test", "--kernel", "host"]);
    assert!(lax.status.success(), "{}", text(&lax));
}

#[test]
fn configuration_mistakes_name_the_file_and_line() {
    let project = adopting_project();
    let root = project.path();
    let cases = [
        (
            CONFIG.replace("snapshots =", "snapshot ="),
            "ebpf-harness.toml:7:",
            "`snapshots`",
        ),
        (
            CONFIG.replace("src/bpf/*.bpf.c", "src/ebpf/*.bpf.c"),
            "ebpf-harness.toml:2:",
            "`src/ebpf/*.bpf.c` matches no file",
        ),
        (
            CONFIG.replace("tests/bpf\"]", "tests/missing\"]"),
            "ebpf-harness.toml:6:",
            "`tests/missing` is not a directory",
        ),
        (
            CONFIG.replace("[\"host\"]", "[\"6.1.0\"]"),
            "ebpf-harness.toml:8: kernels:",
            "kernel line 6.1.0 is not",
        ),
    ];
    for (config, at, what) in cases {
        fs::write(root.join("ebpf-harness.toml"), &config).unwrap();
        let run = cli(root, "no", &["test", "--list"]);
        let out = text(&run);
        assert!(!run.status.success(), "{config}\n{out}");
        assert!(
            out.contains(at) && out.contains(what),
            "{at} {what}:\n{out}"
        );
    }
}

/// A kernel beyond Debian's, pinned in the project's lock file from a URL
/// (here the cached Debian 6.1 image, as a team's own build would be) and
/// booted by `--kernel` like a Debian line.
#[test]
fn a_kernel_pinned_from_a_url_boots_as_its_line() {
    let project = adopting_project();
    let root = project.path();
    let lock = harness_kernels::LockFile::load(&workspace().join("kernels.lock")).unwrap();
    let debian = lock.get("6.1".parse().unwrap()).unwrap();
    let image = harness_kernels::Cache::new(harness_kernels::Cache::default_root())
        .kernel(
            debian,
            &harness_kernels::Mirror::resolve(None).unwrap(),
            &harness_events::Silent,
        )
        .unwrap();
    let sha256 = sha256_of(&image.bzimage);
    let url = format!("file://{}", image.bzimage.display());

    let wrong = cli(
        root,
        "no",
        &[
            "kernels",
            "pin",
            "6.1",
            "--url",
            &url,
            "--sha256",
            &"0".repeat(64),
        ],
    );
    assert!(!wrong.status.success(), "{}", text(&wrong));
    assert!(text(&wrong).contains(&sha256), "{}", text(&wrong));

    let pin = cli(
        root,
        "no",
        &["kernels", "pin", "6.1", "--url", &url, "--sha256", &sha256],
    );
    assert!(pin.status.success(), "{}", text(&pin));
    let pinned = fs::read_to_string(root.join("ci/kernels.lock")).unwrap();
    assert!(
        pinned.contains("[[image]]") && pinned.contains(&format!("sha256 = \"{sha256}\"")),
        "{pinned}"
    );
    let list = text(&cli(root, "no", &["kernels", "list"]));
    assert!(list.contains(&url), "{list}");

    let run = cli(root, "always", &["test", "--kernel", "6.1"]);
    let out = text(&run);
    assert!(run.status.success(), "{out}");
    assert!(
        out.contains("test result: ok. 1 kernel, 2 cases passed"),
        "{out}"
    );
}

fn sha256_of(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}
