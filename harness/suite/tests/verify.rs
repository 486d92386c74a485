//! `verify` on real kernels: the matrix, the gate, expectations, baselines
//! and objects the loader cannot fully handle.

mod common;

use std::{fs, time::Duration};

use common::{no_interrupt, program_count, project_copy};
use harness_snapshots::UpdateMode;
use harness_suite::{Gate, Project, RunOptions, VerifyOptions, VerifyReport};
use harness_vm::AccelChoice;

fn options(kernels: &str) -> VerifyOptions {
    VerifyOptions {
        kernels: harness_kernels::parse_kernel_list(kernels).unwrap(),
        accel: AccelChoice::Auto,
        mirror: None,
        log_level: 1,
        run: RunOptions {
            timeout: Duration::from_secs(300),
            ..RunOptions::default()
        },
        snapshots: UpdateMode::No,
        baseline: None,
        gate: Gate::default(),
    }
}

fn verify(project: &Project, opts: &VerifyOptions) -> VerifyReport {
    harness_suite::verify(project, opts, no_interrupt()).unwrap()
}

fn edit(project: &Project, file: &str, from: &str, to: &str) {
    let path = project.programs_dir.join(file);
    let text = fs::read_to_string(&path).unwrap();
    let changed = text.replacen(from, to, 1);
    assert_ne!(changed, text, "the edit applies to {file}");
    fs::write(path, changed).unwrap();
}

#[test]
fn the_matrix_shows_what_5_10_rejects_and_6_1_accepts() {
    let (_tmp, project) = project_copy();
    let report = verify(&project, &options("5.10,6.1"));
    assert!(report.ok(), "{}", report.render());
    assert_eq!(report.rows.len(), 2 * program_count(&project));
    let row = |kernel: &str| {
        report
            .rows
            .iter()
            .find(|r| r.program == "flow_hash" && r.kernel == kernel)
            .unwrap()
    };
    let old = row("5.10");
    assert_eq!(
        (old.verdict.as_str(), old.expectation.as_str()),
        ("rejected", "as expected")
    );
    assert!(old.reason.contains("errno 22"), "{old:?}");
    let new = row("6.1");
    assert_eq!(new.verdict, "accepted");
    assert!(new.insns.unwrap() > 0 && new.prog_size > 0 && new.jited_bytes.unwrap() > 0);
    assert_eq!(
        new.baseline_insns, new.insns,
        "the committed snapshot is the baseline"
    );
    let matrix = report.matrix();
    assert!(
        matrix.contains("✗ rejected (expected)") && matrix.contains("flow_hash/flow_hash"),
        "{matrix}"
    );
    let csv = report.csv().unwrap();
    assert!(
        csv.starts_with("object,program,kernel,line,prog_type,section,verdict,reason,insns,"),
        "{csv}"
    );
    assert_eq!(csv.lines().count(), 1 + report.rows.len());
}

#[test]
fn a_cost_regression_fails_the_gate_with_the_amount() {
    let (_tmp, project) = project_copy();
    // Walk up to six IPv6 extension headers instead of three.
    edit(
        &project,
        "xdp_firewall.bpf.c",
        "for (int i = 0; i < 3; i++) {",
        "for (int i = 0; i < 6; i++) {",
    );
    let report = verify(&project, &options("host"));
    assert!(!report.ok());
    let failure = &report.failures[0];
    assert!(
        failure.starts_with("xdp_firewall/xdp_firewall on host: instructions processed "),
        "{failure}"
    );
    assert!(failure.ends_with("limit +10%)"), "{failure}");
    // A looser gate lets it through.
    let mut loose = options("host");
    loose.gate.max_insns_increase_pct = 200.0;
    assert!(verify(&project, &loose).ok());
}

#[test]
fn a_verdict_change_fails_the_gate() {
    let (_tmp, project) = project_copy();
    // Read the first packet byte before any bounds check.
    edit(
        &project,
        "tc_lb.bpf.c",
        "\tif ((void *)(eth + 1) > data_end",
        "\tif (*(__u8 *)data == 0xff)\n\t\treturn TC_ACT_SHOT;\n\tif ((void *)(eth + 1) > data_end",
    );
    let report = verify(&project, &options("host"));
    let failure = report
        .failures
        .iter()
        .find(|f| f.contains("tc_lb/tc_lb"))
        .expect("the verdict change is reported");
    assert!(
        failure.contains("verdict changed from accepted to rejected")
            && failure.contains("errno 13"),
        "{failure}"
    );
    let mut allowed = options("host");
    allowed.gate.allow_verdict_change = true;
    assert!(
        verify(&project, &allowed)
            .failures
            .iter()
            .all(|f| !f.contains("tc_lb"))
    );
}

#[test]
fn an_expectation_that_does_not_hold_fails() {
    let (_tmp, project) = project_copy();
    fs::write(
        project.cases_dir.join("expectations.toml"),
        "object = \"tc_lb\"\n\n[[verifier]]\nprogram = \"tc_lb\"\nkernels = \">=6.0\"\nverdict = \"rejected\"\nmessage = \"never said\"\n",
    )
    .unwrap();
    let report = verify(&project, &options("host"));
    let failure = report
        .failures
        .iter()
        .find(|f| f.contains("tc_lb/tc_lb"))
        .unwrap();
    assert!(
        failure.contains("expected rejected on >=6.0")
            && failure.contains("expectations.toml:4")
            && failure.contains("the verifier accepted it"),
        "{failure}"
    );
}

#[test]
fn an_earlier_run_can_be_the_baseline() {
    let (tmp, project) = project_copy();
    let first = verify(&project, &options("host"));
    let csv = tmp.path().join("before.csv");
    // Pretend the firewall used to be much cheaper.
    let text = first.csv().unwrap();
    let row = first
        .rows
        .iter()
        .find(|r| r.program == "xdp_firewall")
        .unwrap();
    let cheap = text.replace(&format!(",{},", row.insns.unwrap()), ",1000,");
    assert_ne!(cheap, text);
    fs::write(&csv, cheap).unwrap();
    let mut opts = options("host");
    opts.baseline = Some(csv);
    let report = verify(&project, &opts);
    assert!(
        report
            .failures
            .iter()
            .any(|f| f
                .contains("xdp_firewall/xdp_firewall on host: instructions processed 1000 -> ")),
        "{:?}",
        report.failures
    );
}

#[test]
fn objects_the_loader_cannot_fully_handle_are_reported_per_program() {
    let (_tmp, project) = project_copy();
    fs::write(
        project.programs_dir.join("mixed.bpf.c"),
        "#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\n\
         SEC(\"tc\") int libbpf_style(struct __sk_buff *skb) { return 0; }\n\
         SEC(\"xdp\") int fine(struct xdp_md *ctx) { return XDP_PASS; }\n\
         char LICENSE[] SEC(\"license\") = \"GPL\";\n",
    )
    .unwrap();
    fs::write(
        project.programs_dir.join("maps_only.bpf.c"),
        "#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\n\
         struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1); __type(key, __u32); __type(value, __u64); } shared SEC(\".maps\");\n\
         char LICENSE[] SEC(\"license\") = \"GPL\";\n",
    )
    .unwrap();
    let report = verify(&project, &options("host"));
    assert!(
        report
            .notes
            .iter()
            .any(|n| n.contains("maps_only.bpf.c: the object has no programs")),
        "{:?}",
        report.notes
    );
    let row = |p: &str| report.rows.iter().find(|r| r.program == p).unwrap();
    assert_eq!(row("libbpf_style").verdict, "not loaded");
    assert!(
        row("libbpf_style").reason.contains("section `tc`"),
        "{:?}",
        row("libbpf_style")
    );
    assert_eq!(row("fine").verdict, "accepted");
    assert_eq!(
        row("xdp_firewall").verdict,
        "accepted",
        "the other objects still run"
    );
}

#[test]
fn parsed_statistics_agree_with_what_the_kernel_reports() {
    let (_tmp, project) = project_copy();
    let report = verify(&project, &options("host"));
    // The host (6.18) reports verified_insns (5.16+); the log's "processed N
    // insns" must say the same for every accepted program.
    let prepared = harness_suite::prepare(&project, 1).unwrap();
    let plan = prepared.plan(|o| o.path.display().to_string());
    let mut records = Vec::new();
    harness_exec::execute(&plan, &mut |r| {
        records.push(r);
        Ok(())
    })
    .unwrap();
    let mut checked = 0;
    for r in records {
        let harness_protocol::Record::Program(p) = r else {
            continue;
        };
        let Some(info) = &p.info else { continue };
        let row = report
            .rows
            .iter()
            .find(|row| row.object == p.object && row.program == p.program)
            .unwrap();
        assert_eq!(
            row.insns,
            Some(u64::from(info.verified_insns)),
            "{}/{}",
            p.object,
            p.program
        );
        assert_eq!(row.jited_bytes, Some(info.jited_len));
        checked += 1;
    }
    assert_eq!(checked, program_count(&project));
}
