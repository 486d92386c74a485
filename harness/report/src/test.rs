//! `test`'s report: skips, failures, snapshot notes, the per-kernel table
//! and the result line.

use std::fmt::Write as _;

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use harness_judge::{Finding, KernelSummary, SnapshotNote, TestJudgement};

use crate::style::{BAD, DIM, OK, paint};

/// Everything a user needs to see, in the order they need it.
pub fn test_report(j: &TestJudgement) -> String {
    let mut s = String::new();
    let skips: Vec<&Finding> = j.skips().collect();
    let failures: Vec<&Finding> = j.failures().collect();
    problems(
        &mut s,
        &skips,
        &failures,
        &j.snapshot_notes,
        j.pending_snapshots,
        "(or accept all with `cargo insta accept`)",
    );
    let _ = writeln!(s, "{}", summary_table(&j.kernels));
    let (passed, failed, skipped) = j.kernels.iter().fold((0, 0, 0), |(p, f, sk), k| {
        (p + k.passed, f + k.failed, sk + k.skipped)
    });
    let not_run: usize = j.kernels.iter().map(|k| k.not_run).sum();
    let _ = write!(
        s,
        "test result: {}. {} kernel{}, {passed} cases passed, {failed} failed, {skipped} skipped",
        verdict(j.ok()),
        j.kernels.len(),
        plural(j.kernels.len()),
    );
    if not_run > 0 {
        let _ = write!(s, ", {not_run} not run");
    }
    if j.filtered > 0 {
        // Per run, not per kernel: `--prog` leaves them out everywhere.
        let _ = write!(s, "; {} filtered out by --prog", j.filtered);
    }
    s.push('\n');
    s
}

fn verdict(ok: bool) -> String {
    if ok {
        paint(OK, "ok")
    } else {
        paint(BAD, "FAILED")
    }
}

pub(crate) fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// The per-kernel summary table.
pub fn summary_table(kernels: &[KernelSummary]) -> String {
    let mut t = Table::new();
    t.load_style(UTF8_FULL_CONDENSED);
    t.set_header([
        "kernel",
        "release",
        "accel",
        "boot",
        "total",
        "programs",
        "cases",
        "snapshots",
        "result",
    ]);
    for k in kernels {
        t.add_row([
            k.label.clone(),
            k.release.clone(),
            k.accel.clone().unwrap_or_else(|| "host".into()),
            k.boot
                .map_or_else(|| "-".into(), |b| format!("{:.1}s", b.as_secs_f64())),
            format!("{:.1}s", k.total.as_secs_f64()),
            programs_cell(k),
            cases_cell(k),
            snapshots_cell(k),
            if k.error.is_some() {
                "ERROR".into()
            } else if k.ok() {
                "ok".into()
            } else {
                "FAILED".into()
            },
        ]);
    }
    t.to_string()
}

fn programs_cell(k: &KernelSummary) -> String {
    let mut cell = format!("{}/{} accepted", k.programs_accepted, k.programs);
    if k.programs_failing_as_expected > 0 {
        let _ = write!(
            cell,
            ", {} rejected as expected",
            k.programs_failing_as_expected
        );
    }
    cell
}

fn cases_cell(k: &KernelSummary) -> String {
    let mut cell = format!("{} passed, {} failed", k.passed, k.failed);
    if k.skipped > 0 {
        let _ = write!(cell, ", {} skipped", k.skipped);
    }
    if k.not_run > 0 {
        let _ = write!(cell, ", {} not run", k.not_run);
    }
    cell
}

fn snapshots_cell(k: &KernelSummary) -> String {
    match (k.snapshots_new, k.snapshots_changed) {
        (0, 0) => format!("{} ok", k.snapshots_matched),
        (n, 0) => format!("{} ok, {n} new", k.snapshots_matched),
        (0, c) => format!("{} ok, {c} changed", k.snapshots_matched),
        (n, c) => format!("{} ok, {n} new, {c} changed", k.snapshots_matched),
    }
}

/// The problems part of a report: notes or skips, failures, snapshot notes
/// and the pending-review line.
pub(crate) fn problems(
    s: &mut String,
    notes: &[&Finding],
    failures: &[&Finding],
    snapshot_notes: &[SnapshotNote],
    pending: usize,
    pending_hint: &str,
) {
    for n in notes {
        let _ = writeln!(s, "\x20 {} {n}", paint(DIM, "-"));
    }
    if !notes.is_empty() {
        s.push('\n');
    }
    for f in failures {
        // A diagnosis in colour where colour is on.
        let _ = writeln!(s, "\x20 {} {f:#}\n", paint(BAD, "✗"));
    }
    for n in snapshot_notes {
        let _ = writeln!(s, "{n}\n");
    }
    if pending > 0 {
        let _ = writeln!(
            s,
            "{pending} snapshot{} pending: review with `cargo insta review` {pending_hint}\n",
            plural(pending)
        );
    }
}
