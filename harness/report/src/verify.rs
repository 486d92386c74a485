//! `verify`'s report: notes, failures, snapshot notes, the programs ×
//! kernels matrix and the result line.

use std::{collections::BTreeSet, fmt::Write as _};

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use harness_judge::{ExpectationStatus, Finding, Row, VerdictKind, VerifyJudgement};

use crate::{
    style::{BAD, DIM, OK, paint},
    test::{plural, problems},
};

pub fn verify_report(j: &VerifyJudgement) -> String {
    let mut s = String::new();
    let notes: Vec<&Finding> = j.notes().collect();
    let failures: Vec<&Finding> = j.failures().collect();
    problems(
        &mut s,
        &notes,
        &failures,
        &j.snapshot_notes,
        j.pending_snapshots,
        "(differences alone do not fail `verify`; the gate does)",
    );
    let _ = writeln!(s, "{}", matrix(j));
    // What no single kernel can say: why they disagree.
    for d in &j.divergences {
        let _ = writeln!(
            s,
            "{}",
            paint(
                DIM,
                &format!("differs: {}/{}: {}", d.object, d.program, d.explain())
            )
        );
    }
    let programs: BTreeSet<(&str, &str)> = j
        .rows
        .iter()
        .map(|r| (r.object.as_str(), r.program.as_str()))
        .collect();
    let _ = writeln!(
        s,
        "verify result: {}. {} programs on {} kernel{}, {} problem{}",
        if j.ok() {
            paint(OK, "ok")
        } else {
            paint(BAD, "FAILED")
        },
        programs.len(),
        j.kernels.len(),
        plural(j.kernels.len()),
        failures.len(),
        plural(failures.len())
    );
    s
}

/// Programs down, kernels across: verdict and instructions processed,
/// with the change from the baseline where there is one, and the spread
/// between the cheapest and the costliest kernel.
pub fn matrix(j: &VerifyJudgement) -> String {
    let mut t = Table::new();
    t.load_style(UTF8_FULL_CONDENSED);
    let mut header = vec!["program".to_owned(), "type".to_owned()];
    header.extend(j.kernels.iter().cloned());
    header.push("spread".into());
    t.set_header(header);
    let programs: BTreeSet<(&str, &str)> = j
        .rows
        .iter()
        .map(|r| (r.object.as_str(), r.program.as_str()))
        .collect();
    for (object, program) in programs {
        let rows: Vec<&Row> = j
            .rows
            .iter()
            .filter(|r| r.object == object && r.program == program)
            .collect();
        let mut line = vec![
            format!("{object}/{program}"),
            rows.first()
                .map_or_else(String::new, |r| r.prog_type.clone()),
        ];
        for k in &j.kernels {
            line.push(match rows.iter().find(|r| &r.kernel == k) {
                None => "-".into(),
                Some(r) => cell(r),
            });
        }
        line.push(spread(&rows));
        t.add_row(line);
    }
    t.to_string()
}

fn spread(rows: &[&Row]) -> String {
    let insns: Vec<u64> = rows
        .iter()
        .filter(|r| r.verdict == VerdictKind::Accepted)
        .filter_map(|r| r.insns)
        .collect();
    match (insns.iter().min(), insns.iter().max()) {
        (Some(&lo), Some(&hi)) if lo > 0 && hi != lo => format!("{:.2}x", hi as f64 / lo as f64),
        (Some(_), Some(_)) => "same".into(),
        _ => "-".into(),
    }
}

fn cell(r: &Row) -> String {
    let as_expected = r.expectation == Some(ExpectationStatus::AsExpected);
    let mut c = match r.verdict {
        VerdictKind::Accepted => format!(
            "✓ {}",
            r.insns.map_or_else(|| "?".into(), |n| n.to_string())
        ),
        // The cause names the mistake; the errno alone says little.
        VerdictKind::Rejected => {
            let what = match r.cause.as_deref() {
                Some(cause) if cause != "unknown" => cause,
                _ if r.reason.is_empty() || as_expected => "rejected",
                _ => r.reason.as_str(),
            };
            if as_expected {
                format!("✗ {what} (expected)")
            } else {
                format!("✗ {what}")
            }
        }
        VerdictKind::NotLoaded if as_expected => "· not loaded (expected)".into(),
        VerdictKind::NotLoaded => "· not loaded".into(),
    };
    if let Some(pct) = r.insns_diff_pct
        && pct.abs() >= 0.05
    {
        let _ = write!(c, " ({pct:+.1}%)");
    }
    if let Some(b) = r.baseline_verdict
        && b != r.verdict
    {
        let _ = write!(c, " (was {b})");
    }
    c
}
