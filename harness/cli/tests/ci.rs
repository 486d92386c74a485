//! What a CI job gets from a run, tried as a workflow runs it: a project
//! with a passing case, a failing case and a program the verifier rejects,
//! on a VM kernel under GitHub Actions (annotations at the case's line and
//! at the C line, the job summary, JUnit, artifacts), split into shards
//! and merged back, and every bad input refused before a kernel runs.

use std::{
    fs,
    path::Path,
    process::{Command, Output},
};

mod common;
use common::{text, workspace, write};

const CONFIG: &str = r#"sources = ["src/*.bpf.c"]
cases = ["tests"]
snapshots = "tests/snapshots"
kernels = ["6.1"]
lock-file = "kernels.lock"
"#;

/// `drop_port` drops TCP port 23 and passes the rest; `unchecked` reads
/// a map value without the NULL check (the verifier refuses it at line 31);
/// `idle`, in an object of its own, is accepted and has no cases.
const GUARD: &str = r#"#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} seen SEC(".maps");

SEC("xdp")
int drop_port(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct tcphdr *tcp = data + sizeof(struct ethhdr) + sizeof(struct iphdr);

	if ((void *)(tcp + 1) > end)
		return XDP_PASS;
	return tcp->dest == bpf_htons(23) ? XDP_DROP : XDP_PASS;
}

SEC("xdp")
int unchecked(struct xdp_md *ctx)
{
	__u32 key = 0;
	__u64 *n = bpf_map_lookup_elem(&seen, &key);
	*n += 1;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
"#;
const DEREF_LINE: usize = 31;

const IDLE: &str = r#"#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int idle(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
"#;

const CASES: &str = r#"object = "guard"
program = "drop_port"

[[case]]
name = "telnet is dropped"
packet.ipv4 = { src = "10.0.0.1", dst = "10.0.0.2" }
packet.tcp = { src = 40000, dst = 23, flags = "SYN" }
expect.return = "XDP_DROP"

[[case]]
name = "ssh is dropped"
packet.ipv4 = { src = "10.0.0.1", dst = "10.0.0.2" }
packet.tcp = { src = 40000, dst = 22, flags = "SYN" }
expect.return = "XDP_DROP"
"#;
const FAILING_CASE_LINE: usize = 10;

fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "ebpf-harness.toml", CONFIG);
    write(root, "src/guard.bpf.c", GUARD);
    write(root, "src/idle.bpf.c", IDLE);
    write(root, "tests/guard.toml", CASES);
    let lock = fs::read_to_string(workspace().join("kernels.lock")).unwrap();
    write(root, "kernels.lock", &lock);
    dir
}

/// The binary as a workflow step runs it (`GITHUB_ACTIONS` unset unless
/// `summary` is given).
fn cli(dir: &Path, summary: Option<&Path>, args: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ebpf-harness"));
    c.args(args)
        .current_dir(dir)
        .env("INSTA_UPDATE", "no")
        .env("NO_COLOR", "1")
        .env_remove("GITHUB_ACTIONS")
        .env_remove("GITHUB_STEP_SUMMARY");
    if let Some(s) = summary {
        c.env("GITHUB_ACTIONS", "true")
            .env("GITHUB_STEP_SUMMARY", s);
    }
    c.output().unwrap()
}

/// A summary without its timings (two runs never take the same time):
/// table rows end in `| 2.3 s |`.
fn untimed(summary: &str) -> String {
    summary
        .lines()
        .map(|l| match l.rfind("| ") {
            Some(i) if l.ends_with(" s |") => &l[..i],
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn a_failing_run_under_github_actions_points_at_the_lines_and_keeps_what_to_debug_from() {
    let project = project();
    let root = project.path();
    let summary = root.join("out/summary.md");
    let run = cli(
        root,
        Some(&summary),
        &[
            "test",
            "--kernel",
            "6.1",
            "--junit",
            "out/junit.xml",
            "--results",
            "out/test.json",
            "--artifacts",
            "out/artifacts",
        ],
    );
    let out = text(&run);
    assert_eq!(run.status.code(), Some(1), "{out}");
    let stdout = String::from_utf8_lossy(&run.stdout);

    // Annotations at the failing case's line and at the rejected C line.
    assert!(
        stdout.contains(&format!(
            "::error file=tests/guard.toml,line={FAILING_CASE_LINE},title=case `ssh is dropped` on 6.1::"
        )),
        "{stdout}"
    );
    let rejection = stdout
        .lines()
        .find(|l| l.starts_with("::error file=src/guard.bpf.c,"))
        .unwrap_or_else(|| panic!("no annotation at the C source: {stdout}"));
    assert!(
        rejection.contains(&format!("line={DEREF_LINE},title=guard/unchecked on 6.1::")),
        "{rejection}"
    );
    assert!(rejection.to_lowercase().contains("null"), "{rejection}");
    // The whole text in a group, so the log is one click away.
    assert!(
        stdout.contains("::group::guard/unchecked on 6.1\n"),
        "{stdout}"
    );

    // The job summary: kernels, then the programs × kernels matrix.
    let md = fs::read_to_string(&summary).unwrap();
    assert!(md.starts_with("## ebpf-harness test: failed"), "{md}");
    assert!(md.contains("| 6.1 | 6.1.0-"), "{md}");
    assert!(md.contains("| `guard/unchecked` | ❌"), "{md}");
    assert!(md.contains("| `idle/idle` | ✅"), "{md}");
    assert!(
        md.contains(&format!("at `tests/guard.toml:{FAILING_CASE_LINE}`")),
        "{md}"
    );

    // JUnit: one suite for the kernel, a test per case and per program.
    let xml = fs::read_to_string(root.join("out/junit.xml")).unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let suite = doc
        .descendants()
        .find(|n| n.has_tag_name("testsuite") && n.attribute("name") == Some("test on 6.1"))
        .unwrap_or_else(|| panic!("{xml}"));
    let cases: Vec<_> = suite
        .children()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    let names: Vec<_> = cases.iter().filter_map(|c| c.attribute("name")).collect();
    for name in [
        "telnet is dropped",
        "ssh is dropped",
        "drop_port",
        "unchecked",
        "idle",
    ] {
        assert!(names.contains(&name), "{name} not in {names:?}");
    }
    assert_eq!(
        suite.attribute("tests"),
        Some(cases.len().to_string().as_str())
    );
    let failed: Vec<_> = cases
        .iter()
        .filter(|c| c.children().any(|n| n.has_tag_name("failure")))
        .filter_map(|c| c.attribute("name"))
        .collect();
    assert_eq!(failed, ["ssh is dropped", "unchecked"], "{xml}");
    assert_eq!(suite.attribute("failures"), Some("2"));
    // The failure's body carries the diagnosis.
    let unchecked = cases
        .iter()
        .find(|c| c.attribute("name") == Some("unchecked"))
        .unwrap();
    let failure = unchecked
        .children()
        .find(|n| n.has_tag_name("failure"))
        .unwrap();
    assert_eq!(failure.attribute("type"), Some("null-deref"), "{xml}");
    assert!(
        failure
            .text()
            .unwrap_or_default()
            .contains("bpf_map_lookup_elem"),
        "{xml}"
    );

    // Artifacts: named by command and kernel, with what to debug from.
    let art = root.join("out/artifacts/test-6.1");
    let failures = fs::read_to_string(art.join("FAILURES.txt")).unwrap();
    assert!(
        failures.contains("case tests/guard.toml/ssh is dropped"),
        "{failures}"
    );
    assert!(failures.contains("program guard/unchecked"), "{failures}");
    let log_line = failures
        .lines()
        .find(|l| l.trim_start().starts_with("verifier log: "))
        .unwrap();
    let log = art.join(log_line.trim_start().trim_start_matches("verifier log: "));
    assert!(
        fs::read_to_string(&log)
            .unwrap()
            .contains("invalid mem access"),
        "{}",
        log.display()
    );
    assert!(art.join("run/console.log").is_file());
    assert!(
        art.join("objects/guard.bpf.o").is_file() || art.join("objects/src/guard.bpf.o").is_file()
    );
    let results: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(art.join("results.json")).unwrap()).unwrap();
    assert_eq!(results["kernels"][0]["label"], "6.1");

    // Two shards, merged, say what the whole run said.
    for shard in ["1/2", "2/2"] {
        let n = &shard[..1];
        let part = cli(
            root,
            None,
            &[
                "test",
                "--kernel",
                "6.1",
                "--shard",
                shard,
                "--results",
                &format!("out/shard{n}.json"),
            ],
        );
        assert!(part.status.code().is_some(), "{}", text(&part));
    }
    let one: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(root.join("out/shard1.json")).unwrap()).unwrap();
    let two: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(root.join("out/shard2.json")).unwrap()).unwrap();
    let (a, b) = (
        one["outcomes"].as_array().unwrap().len(),
        two["outcomes"].as_array().unwrap().len(),
    );
    assert!(a > 0 && b > 0, "both shards hold work: {a} and {b}");
    let merged = cli(
        root,
        None,
        &[
            "merge",
            "out/shard1.json",
            "out/shard2.json",
            "--summary",
            "out/merged.md",
            "--output",
            "out/merged.json",
        ],
    );
    assert_eq!(merged.status.code(), Some(1), "{}", text(&merged));
    let merged_md = fs::read_to_string(root.join("out/merged.md")).unwrap();
    assert_eq!(untimed(&merged_md), untimed(&md));
    // The same shard twice is an overlap, not a double count.
    let twice = cli(root, None, &["merge", "out/shard1.json", "out/shard1.json"]);
    assert_eq!(twice.status.code(), Some(1));
    assert!(
        text(&twice).contains("is in both out/shard1.json and out/shard1.json"),
        "{}",
        text(&twice)
    );
}

#[test]
fn bad_ci_input_is_refused_before_any_kernel_runs() {
    let project = project();
    let root = project.path();
    for (shard, says) in [
        ("3/2", "between 1 and 2"),
        ("0/4", "between 1 and 4"),
        ("1of2", "expected I/N"),
    ] {
        let o = cli(root, None, &["test", "--shard", shard]);
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        assert!(text(&o).contains(says), "{shard}: {}", text(&o));
    }

    let missing = cli(
        root,
        None,
        &["verify", "--kernel", "host", "--baseline", "base.json"],
    );
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        text(&missing).contains("reading the baseline base.json"),
        "{}",
        text(&missing)
    );

    write(
        root,
        "base.json",
        r#"[{"object": "other", "program": "xdp_other", "line": "6.1", "verdict": "accepted", "insns": 10}]"#,
    );
    let other = cli(
        root,
        None,
        &["verify", "--kernel", "host", "--baseline", "base.json"],
    );
    assert_eq!(other.status.code(), Some(1), "{}", text(&other));
    assert!(
        text(&other).contains("the baseline base.json is of other objects: it names `other`"),
        "{}",
        text(&other)
    );
    assert!(!text(&other).contains("Running"), "{}", text(&other));

    // A JUnit path under a file: refused first, nothing written anywhere.
    write(root, "out/taken", "");
    let junit = cli(
        root,
        None,
        &[
            "test",
            "--kernel",
            "6.1",
            "--results",
            "out/r.json",
            "--junit",
            "out/taken/junit.xml",
        ],
    );
    assert_eq!(junit.status.code(), Some(1));
    assert!(
        text(&junit).contains("cannot write JUnit to out/taken/junit.xml"),
        "{}",
        text(&junit)
    );
    assert!(!root.join("out/r.json").exists());
    let leftovers: Vec<_> = fs::read_dir(root.join("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers, ["taken"]);

    // Results of different commands do not merge.
    write(
        root,
        "t.json",
        r#"{"format": 1, "command": "test", "kernels": [], "outcomes": []}"#,
    );
    write(
        root,
        "v.json",
        r#"{"format": 1, "command": "verify", "kernels": [], "outcomes": []}"#,
    );
    let mixed = cli(root, None, &["merge", "t.json", "v.json"]);
    assert_eq!(mixed.status.code(), Some(1));
    assert!(
        text(&mixed).contains("v.json holds `verify` results but t.json holds `test` results"),
        "{}",
        text(&mixed)
    );
    write(root, "n.json", "[1, 2]");
    let not = cli(root, None, &["merge", "n.json"]);
    assert!(
        text(&not).contains("reading results n.json: not a results file"),
        "{}",
        text(&not)
    );

    // The CI matrix is the lock file's lines.
    let m = cli(root, None, &["ci-matrix"]);
    assert!(m.status.success(), "{}", text(&m));
    let matrix: serde_json::Value = serde_json::from_slice(&m.stdout).unwrap();
    let lines: Vec<&str> = matrix["kernel"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        lines.starts_with(&["5.10", "6.1", "6.12", "7.2"]),
        "{lines:?}"
    );
}

/// The host kernel needs root; VM kernels do not. Run as `nobody`.
#[test]
fn the_host_kernel_says_it_needs_root() {
    let project = project();
    let root = project.path();
    let mut perms = fs::metadata(root).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    fs::set_permissions(root, perms).unwrap();
    let o = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(env!("CARGO_BIN_EXE_ebpf-harness"))
        .args(["test", "--kernel", "host", "--no-install"])
        .current_dir(root)
        .env("HOME", root)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("--kernel host needs root"),
        "{}",
        text(&o)
    );
}
