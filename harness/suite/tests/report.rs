//! Judging records without booting anything: synthetic kernels' answers.

mod common;

use std::time::Duration;

use common::project_copy;
use harness_protocol::{CaseOutcome, CaseReport, Done, GuestInfo, ProbeReport, Record};
use harness_snapshots::UpdateMode;
use harness_suite::{KernelRun, Target};

/// A kernel that says the XDP context probe failed and skips what needs it.
fn kernel_without_xdp_ctx(prepared: &harness_suite::Prepared, line: &str) -> KernelRun {
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
    for c in &prepared.cases {
        let outcome = if c.plan.requires.is_empty() {
            CaseOutcome::Error {
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
    records.push(Record::Done(Done { error: None }));
    KernelRun {
        target: Target::Vm {
            label: line.into(),
            line: line.into(),
            release: format!("{line}.0-test"),
            bzimage: "/nonexistent".into(),
            origin: "synthetic".into(),
        },
        accel: None,
        result: Ok(records),
        boot_time: None,
        total_time: Duration::ZERO,
    }
}

#[test]
fn a_skip_is_fine_before_the_feature_and_a_failure_after() {
    let (_tmp, project) = project_copy();
    let prepared = harness_suite::prepare(&project, 1).unwrap();
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
    let report = harness_suite::report(&project, &prepared, &runs, UpdateMode::No).unwrap();

    let old = &report.kernels[0];
    assert_eq!(old.skipped, needing.len());
    assert!(report.skips.iter().any(|s| s.starts_with("5.10:")
        && s.contains(&needing[0])
        && s.contains("no xdp_md context")));
    let new = &report.kernels[1];
    assert_eq!(new.skipped, 0);
    let failure = report
        .failures
        .iter()
        .find(|f| f.starts_with("6.1:") && f.contains(&needing[0]))
        .expect("a failure on 6.1");
    assert!(
        failure.contains("kernel 6.1 should support xdp_ctx") && failure.contains("since 5.13"),
        "{failure}"
    );
}

#[test]
fn a_kernel_that_forgets_a_case_fails_it() {
    let (_tmp, project) = project_copy();
    let prepared = harness_suite::prepare(&project, 1).unwrap();
    let mut run = kernel_without_xdp_ctx(&prepared, "6.12");
    if let Ok(records) = &mut run.result {
        records.retain(|r| !matches!(r, Record::Case(c) if c.id == prepared.cases[0].plan.id));
    }
    let report = harness_suite::report(&project, &prepared, &[run], UpdateMode::No).unwrap();
    assert!(
        report
            .failures
            .iter()
            .any(|f| f.contains(&prepared.cases[0].name) && f.contains("produced no result")),
        "{:?}",
        report.failures
    );
}
