//! Judging records without booting anything: synthetic kernels' answers.

mod common;

use std::{path::PathBuf, time::Duration};

use common::project_copy;
use harness_judge::{Context, FindingKind, Severity, TestJudgement};
use harness_kernels::{Boot, Origin, Target};
use harness_matrix::{KernelRun, RunFailure};
use harness_project::{Prepared, Project};
use harness_protocol::{
    CaseOutcome, CaseReport, CaseStep, Done, GuestInfo, ProbeReport, ProgramReport, Record, Verdict,
};
use harness_suite::UpdateMode;

fn target(line: &str) -> Target {
    Target {
        label: line.into(),
        version: Some(line.parse().unwrap()),
        release: format!("{line}.0-test"),
        boot: Boot::Vm {
            bzimage: "/nonexistent".into(),
            config: None,
            origin: Origin::Image {
                path: PathBuf::from("/nonexistent"),
            },
        },
    }
}

/// A kernel that says the XDP context probe failed and skips what needs it.
fn kernel_without_xdp_ctx(prepared: &Prepared, line: &str) -> KernelRun {
    let mut records = vec![
        Record::Hello(GuestInfo {
            release: format!("{line}.0-test"),
            ..GuestInfo::default()
        }),
        Record::Probe(ProbeReport {
            name: "xdp_ctx".into(),
            available: false,
            detail: "no xdp_md context".into(),
        }),
    ];
    // As a kernel works: each object's programs, then its cases.
    let cases = prepared.objects.iter().flat_map(|o| {
        prepared
            .cases
            .iter()
            .filter(move |c| c.object == o.name)
            .map(move |c| (o, c))
    });
    let mut loaded = Vec::new();
    for (o, c) in cases {
        if !loaded.contains(&o.name) {
            loaded.push(o.name.clone());
            records.extend(o.info.file.programs().iter().map(|p| {
                Record::Program(ProgramReport {
                    object: o.name.clone(),
                    program: p.name.clone(),
                    section: p.section.clone(),
                    prog_type: "xdp".into(),
                    verdict: Verdict::Accepted,
                    log: String::new(),
                    log_level: 1,
                    log_truncated: false,
                    info: None,
                    load_ns: 0,
                    insn_cnt: 0,
                })
            }));
        }
        let outcome = if c.plan.requires.is_empty() {
            CaseOutcome::Error {
                step: CaseStep::Action,
                error: "not run in this synthetic kernel".into(),
            }
        } else {
            CaseOutcome::Skipped {
                reason: "no xdp_md context".into(),
            }
        };
        records.push(Record::Case(CaseReport {
            id: c.plan.id.clone(),
            outcome,
        }));
    }
    records.push(Record::Done(Done {
        error: None,
        timings: None,
    }));
    KernelRun {
        target: target(line),
        accel: None,
        records,
        failure: None,
        boot_time: None,
        total_time: Duration::ZERO,
    }
}

fn judge(project: &Project, prepared: &Prepared, runs: &[KernelRun]) -> TestJudgement {
    harness_judge::judge_test(
        &Context {
            project,
            prepared,
            snapshots: UpdateMode::No,
            unreferenced: harness_judge::Unreferenced::List,
        },
        runs,
    )
    .unwrap()
}

#[test]
fn a_skip_is_fine_before_the_feature_and_a_failure_after() {
    let (_tmp, project) = project_copy();
    let prepared = common::prepare(&project);
    let needing: Vec<_> = prepared
        .cases
        .iter()
        .filter(|c| c.plan.requires == ["xdp_ctx"])
        .map(|c| c.name.clone())
        .collect();
    assert!(
        !needing.is_empty(),
        "the samples have a case with an XDP context"
    );
    let runs = [
        kernel_without_xdp_ctx(&prepared, "5.10"),
        kernel_without_xdp_ctx(&prepared, "6.1"),
    ];
    let report = judge(&project, &prepared, &runs);

    let old = &report.kernels[0];
    assert_eq!(old.skipped, needing.len());
    assert!(report.skips().any(|s| s.kernel == "5.10"
        && s.to_string().contains(&needing[0])
        && s.to_string().contains("no xdp_md context")));
    let new = &report.kernels[1];
    assert_eq!(new.skipped, 0);
    let failure = report
        .failures()
        .find(|f| f.kernel == "6.1" && f.to_string().contains(&needing[0]))
        .expect("a failure on 6.1")
        .to_string();
    assert!(
        failure.contains("kernel 6.1 should support xdp_ctx") && failure.contains("since 5.13"),
        "{failure}"
    );
}

#[test]
fn a_kernel_that_forgets_a_case_fails_it() {
    let (_tmp, project) = project_copy();
    let prepared = common::prepare(&project);
    let mut run = kernel_without_xdp_ctx(&prepared, "6.12");
    run.records
        .retain(|r| !matches!(r, Record::Case(c) if c.id == prepared.cases[0].plan.id));
    let report = judge(&project, &prepared, &[run]);
    assert!(
        report
            .failures()
            .any(|f| f.to_string().contains(&prepared.cases[0].name)
                && f.to_string().contains("produced no result")),
        "{:?}",
        common::failures(&report.findings)
    );
}

#[test]
fn a_kernel_that_dies_keeps_what_it_reported_and_names_the_running_case() {
    let (_tmp, project) = project_copy();
    let prepared = common::prepare(&project);
    let mut run = kernel_without_xdp_ctx(&prepared, "6.12");
    // The VM died after the third case: no `done`, the rest never came.
    let third = run
        .records
        .iter()
        .enumerate()
        .filter(|(_, r)| matches!(r, Record::Case(_)))
        .nth(2)
        .unwrap()
        .0;
    run.records.truncate(third + 1);
    run.failure = Some(RunFailure::Host(std::io::Error::other(
        "the guest stopped answering",
    )));
    let report = judge(&project, &prepared, &[run]);
    let k = &report.kernels[0];
    // Every record that arrived was judged.
    assert_eq!(
        k.passed + k.failed + k.skipped,
        prepared.cases.len() - k.not_run
    );
    assert_eq!(k.not_run, prepared.cases.len() - 4, "{k:?}");
    assert!(
        k.error
            .as_deref()
            .unwrap()
            .contains("the guest stopped answering")
    );
    // The fourth case was running when the kernel stopped.
    let order: Vec<_> = prepared
        .objects
        .iter()
        .flat_map(|o| prepared.cases.iter().filter(move |c| c.object == o.name))
        .collect();
    let running = report
        .findings
        .iter()
        .find(|f| f.kind == FindingKind::NoResult { running: true })
        .expect("the running case is named");
    assert!(running.to_string().contains(&order[3].name), "{running}");
    assert_eq!(running.severity, Severity::Failure);
    assert_eq!(
        report
            .findings
            .iter()
            .filter(|f| f.kind == FindingKind::NotReached)
            .count(),
        k.not_run
    );
    assert!(!report.ok());
}

#[test]
fn a_kernel_that_dies_while_loading_names_the_program() {
    let (_tmp, project) = project_copy();
    let prepared = common::prepare(&project);
    let mut run = kernel_without_xdp_ctx(&prepared, "6.12");
    // The VM died while the first object's programs were loading.
    let first = prepared.objects[0].name.clone();
    let at = run
        .records
        .iter()
        .position(|r| matches!(r, Record::Program(p) if p.object == first))
        .unwrap();
    run.records.truncate(at);
    run.failure = Some(RunFailure::Host(std::io::Error::other("timed out")));
    let report = judge(&project, &prepared, &[run]);
    let loading = report
        .findings
        .iter()
        .find(|f| f.kind == FindingKind::LoadNotFinished)
        .expect("the loading program is named");
    let program = &prepared.objects[0].info.file.programs()[0].name;
    assert_eq!(
        loading.to_string(),
        format!("{first}/{program} on 6.12: not finished: the kernel stopped while loading it")
    );
    // No case was running, none ran: all are "not run".
    assert!(
        !report
            .findings
            .iter()
            .any(|f| matches!(f.kind, FindingKind::NoResult { .. }))
    );
    assert_eq!(report.kernels[0].not_run, prepared.cases.len());
}

#[test]
fn a_kernel_that_forgets_a_program_fails_it() {
    let (_tmp, project) = project_copy();
    let prepared = common::prepare(&project);
    let mut run = kernel_without_xdp_ctx(&prepared, "6.12");
    let object = &prepared.objects[1];
    let program = object.info.file.programs()[0].name.clone();
    run.records.retain(
        |r| !matches!(r, Record::Program(p) if p.object == object.name && p.program == program),
    );
    let report = judge(&project, &prepared, &[run]);
    let failures = common::failures(&report.findings);
    assert!(
        failures.contains(&format!(
            "{}/{program} on 6.12: produced no result",
            object.name
        )),
        "{failures:?}"
    );
    let k = &report.kernels[0];
    assert_eq!(k.programs, prepared.program_count());
    assert!(!k.ok());
}
