//! `verify` on real kernels: the matrix, the gate, expectations, baselines
//! and objects the loader cannot fully handle.

mod common;

use std::fs;

use common::{failures, no_interrupt, options, program_count, project_copy};
use harness_judge::{ExpectationStatus, VerdictKind};
use harness_suite::{Project, VerifyJudgement, VerifyOptions};

fn verify_with(project: &Project, kernels: &str, opts: &VerifyOptions) -> VerifyJudgement {
    harness_suite::verify(
        project,
        &options(kernels),
        opts,
        &harness_events::Silent,
        &no_interrupt(),
    )
    .unwrap()
}

fn verify(project: &Project, kernels: &str) -> VerifyJudgement {
    verify_with(project, kernels, &VerifyOptions::default())
}

fn edit(project: &Project, file: &str, from: &str, to: &str) {
    let path = project.root.join("sample-programs").join(file);
    let text = fs::read_to_string(&path).unwrap();
    let changed = text.replacen(from, to, 1);
    assert_ne!(changed, text, "the edit applies to {file}");
    fs::write(path, changed).unwrap();
}

#[test]
fn the_matrix_shows_what_5_10_rejects_and_6_1_accepts() {
    let (_tmp, project) = project_copy();
    let report = verify(&project, "5.10,6.1");
    assert!(report.ok(), "{}", harness_report::verify_report(&report));
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
        (old.verdict, old.expectation),
        (VerdictKind::Rejected, Some(ExpectationStatus::AsExpected))
    );
    assert_eq!(old.errno, Some(22), "{old:?}");
    // Every rejection has a diagnosis; its cause names the cell.
    let diagnosis = old
        .diagnosis
        .as_ref()
        .expect("a diagnosis of the rejection");
    assert_eq!(old.cause.as_deref(), Some(diagnosis.cause.id()));
    // bpf_loop's callback is a subprogram 5.10 does not expect.
    assert!(diagnosis.message.contains("func_info"), "{diagnosis}");
    let new = row("6.1");
    assert_eq!(new.verdict, VerdictKind::Accepted);
    assert!(new.insns.unwrap() > 0 && new.prog_size > 0 && new.jited_bytes.unwrap() > 0);
    assert_eq!(
        new.baseline_insns, new.insns,
        "the committed snapshot is the baseline"
    );
    // Why 5.10 differs: it lacks callbacks, which bpf_loop takes.
    let why = report
        .divergences
        .iter()
        .find(|d| d.program == "flow_hash")
        .expect("flow_hash differs between 5.10 and 6.1");
    assert_eq!(
        (why.rejected.as_slice(), why.accepted_from.as_deref()),
        (["5.10".to_owned()].as_slice(), Some("6.1"))
    );
    assert!(
        why.explain().starts_with("5.10 lacks callback functions"),
        "{}",
        why.explain()
    );
    assert!(
        harness_report::plain(&harness_report::verify_report(&report))
            .contains(&format!("differs: flow_hash/flow_hash: {}", why.explain())),
    );
    let matrix = harness_report::matrix(&report);
    let cell = match diagnosis.cause.id() {
        "unknown" => "✗ rejected (expected)".to_owned(),
        cause => format!("✗ {cause} (expected)"),
    };
    assert!(
        matrix.contains(&cell) && matrix.contains("flow_hash/flow_hash"),
        "{matrix}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&harness_judge::to_json(&report.rows)).unwrap();
    let rows = json.as_array().unwrap();
    let rejected = rows
        .iter()
        .find(|r| r["program"] == "flow_hash" && r["kernel"] == "5.10")
        .unwrap();
    assert_eq!(rejected["diagnosis"]["cause"], diagnosis.cause.id());
    assert_eq!(rejected["diagnosis"]["message"], diagnosis.message.as_str());
    let accepted = rows
        .iter()
        .find(|r| r["program"] == "flow_hash" && r["kernel"] == "6.1")
        .unwrap();
    assert!(accepted["diagnosis"].is_null(), "{accepted}");
    let csv = harness_judge::to_csv(&report.rows).unwrap();
    assert!(
        csv.starts_with("object,program,kernel,line,prog_type,section,verdict,errno,reason,insns,"),
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
    let report = verify(&project, "host");
    assert!(!report.ok());
    let failure = &failures(&report.findings)[0];
    assert!(
        failure.starts_with("xdp_firewall/xdp_firewall on host: instructions processed "),
        "{failure}"
    );
    assert!(failure.ends_with("limit +10%)"), "{failure}");
    // A looser gate lets it through.
    let mut loose = VerifyOptions::default();
    loose.gate.max_insns_increase_pct = 200.0;
    assert!(verify_with(&project, "host", &loose).ok());
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
    let report = verify(&project, "host");
    let failure = failures(&report.findings)
        .into_iter()
        .find(|f| f.contains("tc_lb/tc_lb") && f.contains("verdict changed"))
        .expect("the verdict change is reported");
    assert!(
        failure.contains("verdict changed from accepted to rejected")
            && failure.contains("errno 13"),
        "{failure}"
    );
    let mut allowed = VerifyOptions::default();
    allowed.gate.allow_verdict_change = true;
    let report = verify_with(&project, "host", &allowed);
    let left = failures(&report.findings);
    assert!(
        left.iter().all(|f| !f.contains("verdict changed")),
        "{left:?}"
    );
    // The rejection itself is still a problem: no expectation declares it.
    assert!(
        left.iter()
            .any(|f| f.contains("tc_lb/tc_lb on host: the verifier rejected it")),
        "{left:?}"
    );
}

#[test]
fn an_expectation_that_does_not_hold_fails() {
    let (_tmp, project) = project_copy();
    fs::write(
        project.cases_dirs[0].join("expectations.toml"),
        "object = \"tc_lb\"\n\n[[verifier]]\nprogram = \"tc_lb\"\nkernels = \">=6.0\"\nverdict = \"rejected\"\nmessage = \"never said\"\n",
    )
    .unwrap();
    let report = verify(&project, "host");
    let failure = failures(&report.findings)
        .into_iter()
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
    let first = verify(&project, "host");
    let csv = tmp.path().join("before.csv");
    // Pretend the firewall used to be much cheaper.
    let text = harness_judge::to_csv(&first.rows).unwrap();
    let row = first
        .rows
        .iter()
        .find(|r| r.program == "xdp_firewall")
        .unwrap();
    let cheap = text.replace(&format!(",{},", row.insns.unwrap()), ",1000,");
    assert_ne!(cheap, text);
    // And it never had the DNS filter.
    let cheap: String = cheap
        .lines()
        .filter(|l| !l.starts_with("dns_filter,"))
        .map(|l| format!("{l}\n"))
        .collect();
    fs::write(&csv, cheap).unwrap();
    let opts = VerifyOptions {
        baseline: Some(csv),
        ..VerifyOptions::default()
    };
    let report = verify_with(&project, "host", &opts);
    let failures = failures(&report.findings);
    assert!(
        failures
            .iter()
            .any(|f| f
                .contains("xdp_firewall/xdp_firewall on host: instructions processed 1000 -> ")),
        "{failures:?}"
    );
    let notes: Vec<String> = report.notes().map(ToString::to_string).collect();
    assert_eq!(
        notes,
        ["dns_filter/dns_filter on host: not in the baseline file, nothing to compare"]
    );
}

#[test]
fn objects_the_loader_cannot_fully_handle_are_reported_per_program() {
    let (_tmp, project) = project_copy();
    fs::write(
        project.root.join("sample-programs").join("mixed.bpf.c"),
        "#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\n\
         SEC(\"tc\") int libbpf_style(struct __sk_buff *skb) { return 0; }\n\
         SEC(\"made_up/x\") int odd(void *ctx) { return 0; }\n\
         SEC(\"xdp\") int fine(struct xdp_md *ctx) { return XDP_PASS; }\n\
         char LICENSE[] SEC(\"license\") = \"GPL\";\n",
    )
    .unwrap();
    fs::write(
        project.root.join("sample-programs").join("maps_only.bpf.c"),
        "#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\n\
         struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1); __type(key, __u32); __type(value, __u64); } shared SEC(\".maps\");\n\
         char LICENSE[] SEC(\"license\") = \"GPL\";\n",
    )
    .unwrap();
    let report = verify(&project, "host");
    let notes: Vec<String> = report.notes().map(ToString::to_string).collect();
    assert!(
        notes
            .iter()
            .any(|n| n.contains("maps_only.bpf.c: the object has no programs")),
        "{notes:?}"
    );
    let row = |p: &str| report.rows.iter().find(|r| r.program == p).unwrap();
    // libbpf >= 1.0's name for classifiers loads; a section libbpf does
    // not know is not loaded, with the reason.
    assert_eq!(row("libbpf_style").verdict, VerdictKind::Accepted);
    assert_eq!(row("odd").verdict, VerdictKind::NotLoaded);
    assert!(
        row("odd").reason.contains("section `made_up/x`"),
        "{:?}",
        row("odd")
    );
    assert_eq!(row("fine").verdict, VerdictKind::Accepted);
    assert_eq!(
        row("xdp_firewall").verdict,
        VerdictKind::Accepted,
        "the other objects still run"
    );
    // A program that cannot be loaded is a problem unless declared.
    assert!(!report.ok());
    assert!(
        failures(&report.findings)
            .iter()
            .any(|f| f.starts_with("mixed/odd on host: not loaded: section `made_up/x`")),
        "{:?}",
        failures(&report.findings)
    );
}

#[test]
fn parsed_statistics_agree_with_what_the_kernel_reports() {
    let (_tmp, project) = project_copy();
    let report = verify(&project, "host");
    // The host (6.18) reports verified_insns (5.16+); the log's "processed N
    // insns" must say the same for every accepted program.
    let prepared = common::prepare(&project);
    let plan = prepared.plan();
    let mut records = Vec::new();
    let timings = harness_exec::execute(&plan, harness_exec::Place::Host, &mut |r| {
        records.push(r);
        Ok(())
    })
    .unwrap();
    // Where the executor's time went: every phase that had work took some,
    // and together they fit in the whole.
    let phases = [
        timings.probes_ns,
        timings.parse_ns,
        timings.load_ns,
        timings.report_ns,
        timings.cases_ns,
        timings.emit_ns,
    ];
    assert!(
        timings.parse_ns > 0 && timings.load_ns > 0 && timings.report_ns > 0,
        "{timings:?}"
    );
    assert!(timings.emit_ns > 0 && timings.cases_ns > 0, "{timings:?}");
    assert!(
        phases.iter().sum::<u64>() <= timings.total_ns,
        "{timings:?}"
    );
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

#[test]
fn a_rejection_nothing_declares_fails_verify() {
    let (_tmp, project) = project_copy();
    common::add_unchecked_program(&project);
    let report = verify(&project, "host");
    assert!(!report.ok(), "{}", harness_report::verify_report(&report));
    let failures = failures(&report.findings);
    let failure = failures
        .iter()
        .find(|f| f.starts_with("unchecked/unchecked on host: the verifier rejected it"))
        .expect("the rejection is a problem");
    // It says why, at the C line, with a fix.
    assert!(
        failure.contains("error[packet-bounds]")
            && failure.contains("unchecked.bpf.c:5")
            && failure.contains("= help:"),
        "{failure}"
    );
    let rendered = harness_report::plain(&harness_report::verify_report(&report));
    assert!(rendered.contains("verify result: FAILED"), "{rendered}");
}

#[test]
fn not_loaded_can_be_declared_per_kernel_range_with_its_reason() {
    let (_tmp, project) = project_copy();
    let source = |tags: &str| {
        format!(
            "#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\n#include \"verifier.h\"\n\
             SEC(\"fentry\") {tags}\nint untargeted(void *ctx) {{ return 0; }}\n\
             char LICENSE[] SEC(\"license\") = \"GPL\";\n"
        )
    };
    let path = project
        .root
        .join("sample-programs")
        .join("untargeted.bpf.c");
    fs::write(
        &path,
        source("__not_loaded(\"all\", \"no BTF-based attach target\")"),
    )
    .unwrap();
    let report = verify(&project, "host");
    assert!(report.ok(), "{}", harness_report::verify_report(&report));
    let row = report
        .rows
        .iter()
        .find(|r| r.program == "untargeted")
        .unwrap();
    assert_eq!(
        (row.verdict, row.expectation),
        (VerdictKind::NotLoaded, Some(ExpectationStatus::AsExpected))
    );
    assert!(
        harness_report::matrix(&report).contains("· not loaded (expected)"),
        "{}",
        harness_report::matrix(&report)
    );

    // The reason must match, and the range must cover the kernel.
    fs::write(
        &path,
        source("__not_loaded(\"all\", \"some other reason\")"),
    )
    .unwrap();
    let failures_now = failures(&verify(&project, "host").findings);
    assert!(
        failures_now.iter().any(|f| f
            .contains("untargeted/untargeted on host: not loaded as expected")
            && f.contains("but the reason does not match /some other reason/")),
        "{failures_now:?}"
    );
    fs::write(
        &path,
        source("__not_loaded(\"<5.0\", \"no BTF-based attach target\")"),
    )
    .unwrap();
    let failures_now = failures(&verify(&project, "host").findings);
    assert!(
        failures_now.iter().any(|f| f.starts_with(
            "untargeted/untargeted on host: not loaded: prog 'untargeted': no BTF-based attach target"
        )),
        "{failures_now:?}"
    );

    // Case files can say the same.
    fs::write(&path, source("")).unwrap();
    fs::write(
        project.cases_dirs[0].join("untargeted.toml"),
        "object = \"untargeted\"\n\n[[verifier]]\nprogram = \"untargeted\"\nverdict = \"not loaded\"\nmessage = \"attach target\"\n",
    )
    .unwrap();
    assert!(verify(&project, "host").ok());
}

/// Records the executor's calls, in order.
#[derive(Default)]
struct Calls(Vec<String>);

impl harness_exec::Records for Calls {
    fn record(&mut self, record: harness_protocol::Record) -> std::io::Result<()> {
        self.0.push(match record {
            harness_protocol::Record::Program(p) => format!("program {}", p.object),
            harness_protocol::Record::Case(_) => "case".to_owned(),
            other => format!("{other:?}").chars().take(12).collect(),
        });
        Ok(())
    }

    fn checkpoint(&mut self) -> std::io::Result<()> {
        self.0.push("checkpoint".into());
        Ok(())
    }
}

#[test]
fn the_executor_checkpoints_before_each_load_and_each_case_only() {
    let (_tmp, project) = project_copy();
    let prepared = common::prepare(&project);
    let plan = prepared.plan();
    let mut calls = Calls::default();
    harness_exec::execute(&plan, harness_exec::Place::Host, &mut calls).unwrap();
    let calls = calls.0;
    // Every case and every object's load comes right after a checkpoint,
    // and an object's program reports travel together (no checkpoint
    // between them); the executor ends with one.
    let mut expected = Vec::new();
    for object in &plan.objects {
        expected.push("checkpoint".to_owned());
        let programs = calls
            .iter()
            .filter(|c| **c == format!("program {}", object.name))
            .count();
        assert!(programs > 0, "{}", object.name);
        expected.extend(std::iter::repeat_n(
            format!("program {}", object.name),
            programs,
        ));
        for _ in &object.cases {
            expected.extend(["checkpoint".to_owned(), "case".to_owned()]);
        }
    }
    expected.push("checkpoint".to_owned());
    let probes = plan.probes.len() * 2;
    assert_eq!(&calls[probes..], expected.as_slice());
    assert!(plan.objects.iter().any(|o| o.cases.len() > 1));
}
