//! Judging runs: case verdicts, program verdicts, snapshots, the summary.

use std::{collections::BTreeMap, fmt::Write as _, time::Duration};

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use harness_cases::Status;
use harness_protocol::{CaseOutcome, Record, Verdict};
use harness_snapshots::{Observation, Outcome, SnapshotStore, UpdateMode};

use crate::{KernelRun, Prepared, Project, SuiteError, Target, error::io_err};

/// One row of the summary.
#[derive(Clone, Debug, Default)]
pub struct KernelSummary {
    pub label: String,
    pub release: String,
    pub accel: String,
    pub boot: Option<Duration>,
    pub total: Duration,
    pub programs_accepted: usize,
    /// Rejected on this kernel, as an expectation says it should be.
    pub programs_rejected_as_expected: usize,
    pub programs: usize,
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
    pub snapshots_matched: usize,
    pub snapshots_new: usize,
    pub snapshots_changed: usize,
    /// Why the kernel produced no results at all.
    pub error: Option<String>,
}

impl KernelSummary {
    pub fn ok(&self) -> bool {
        self.error.is_none()
            && self.failed == 0
            && self.snapshots_new == 0
            && self.snapshots_changed == 0
            && self.programs_accepted + self.programs_rejected_as_expected == self.programs
    }
}

#[derive(Clone, Debug, Default)]
pub struct Report {
    pub kernels: Vec<KernelSummary>,
    /// One entry per problem, ready to print.
    pub failures: Vec<String>,
    /// Cases a kernel could not run, with the probe that said why.
    pub skips: Vec<String>,
    /// Snapshot diffs and new snapshots, ready to print.
    pub snapshot_notes: Vec<String>,
    pub pending_snapshots: usize,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.failures.is_empty() && self.kernels.iter().all(KernelSummary::ok)
    }

    pub fn table(&self) -> String {
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
        for k in &self.kernels {
            let cases = if k.skipped > 0 {
                format!(
                    "{} passed, {} failed, {} skipped",
                    k.passed, k.failed, k.skipped
                )
            } else {
                format!("{} passed, {} failed", k.passed, k.failed)
            };
            t.add_row([
                k.label.clone(),
                k.release.clone(),
                k.accel.clone(),
                k.boot
                    .map_or_else(|| "-".into(), |b| format!("{:.1}s", b.as_secs_f64())),
                format!("{:.1}s", k.total.as_secs_f64()),
                if k.programs_rejected_as_expected > 0 {
                    format!(
                        "{}/{} accepted, {} rejected as expected",
                        k.programs_accepted, k.programs, k.programs_rejected_as_expected
                    )
                } else {
                    format!("{}/{} accepted", k.programs_accepted, k.programs)
                },
                cases,
                match (k.snapshots_new, k.snapshots_changed) {
                    (0, 0) => format!("{} ok", k.snapshots_matched),
                    (n, 0) => format!("{} ok, {n} new", k.snapshots_matched),
                    (0, c) => format!("{} ok, {c} changed", k.snapshots_matched),
                    (n, c) => format!("{} ok, {n} new, {c} changed", k.snapshots_matched),
                },
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

    /// Everything a user needs to see, in the order they need it.
    pub fn render(&self) -> String {
        let mut s = String::new();
        render_problems(
            &mut s,
            &self.skips,
            &self.failures,
            &self.snapshot_notes,
            self.pending_snapshots,
            "(or accept all with `cargo insta accept`)",
        );
        let _ = writeln!(s, "{}", self.table());
        let (passed, failed, skipped) = self.kernels.iter().fold((0, 0, 0), |(p, f, sk), k| {
            (p + k.passed, f + k.failed, sk + k.skipped)
        });
        let _ = writeln!(
            s,
            "test result: {}. {} kernel{}, {passed} cases passed, {failed} failed, {skipped} skipped",
            if self.ok() { "ok" } else { "FAILED" },
            self.kernels.len(),
            if self.kernels.len() == 1 { "" } else { "s" },
        );
        s
    }
}

/// `blocked source is dropped` -> `blocked_source_is_dropped`.
fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    out.trim_matches('_').to_owned()
}

/// The last `n` lines, indented to sit under a failure line.
fn tail(log: &str, n: usize) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| format!("      {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Judges every run and checks snapshots across all of them at once (so a
/// snapshot is shared where kernels agree).
pub fn report(
    project: &Project,
    prepared: &Prepared,
    runs: &[KernelRun],
    mode: UpdateMode,
) -> Result<Report, SuiteError> {
    let mut rep = Report::default();
    let mut observations: Vec<(usize, Observation)> = Vec::new();

    for (k, run) in runs.iter().enumerate() {
        let label = run.target.label().to_owned();
        let mut sum = KernelSummary {
            label: label.clone(),
            release: match &run.target {
                Target::Vm { release, .. } | Target::Host { release, .. } => release.clone(),
            },
            accel: run.accel.map_or_else(|| "host".into(), |a| a.to_string()),
            boot: run.boot_time,
            total: run.total_time,
            ..KernelSummary::default()
        };
        let records = match &run.result {
            Ok(r) => r,
            Err(e) => {
                rep.failures.push(format!("{label}: {e}"));
                sum.error = Some(e.lines().next().unwrap_or_default().to_owned());
                rep.kernels.push(sum);
                continue;
            }
        };
        let line = run.target.line().to_owned();
        let mut seen_cases = std::collections::BTreeSet::new();
        let mut expected_rejections = std::collections::BTreeSet::new();
        let mut probes: BTreeMap<String, harness_protocol::ProbeReport> = BTreeMap::new();
        for r in records {
            match r {
                Record::Hello(h) => sum.release = h.release.clone(),
                Record::ObjectError { object, error } => rep.failures.push(format!(
                    "{label}: object `{object}` could not be loaded: {error}"
                )),
                Record::Program(p) => {
                    sum.programs += 1;
                    let judgement = crate::programs::judge(prepared, p, &line);
                    if matches!(p.verdict, Verdict::Accepted) {
                        sum.programs_accepted += 1;
                    }
                    if judgement.expected_rejection {
                        sum.programs_rejected_as_expected += 1;
                        expected_rejections.insert((p.object.clone(), p.program.clone()));
                    }
                    if let Some(problem) = &judgement.problem {
                        let log_path = project.relative(
                            &project
                                .results_dir
                                .join(&label)
                                .join("verifier")
                                .join(&p.object)
                                .join(format!("{}.log", p.program)),
                        );
                        let excerpt = if p.log.trim().is_empty() {
                            String::new()
                        } else {
                            format!(
                                "; last lines of its log:\n{}\n    full log: {log_path}",
                                tail(&p.log, 15)
                            )
                        };
                        rep.failures.push(format!(
                            "{label}: {}/{}: {problem}{excerpt}",
                            p.object, p.program
                        ));
                    }
                    observations
                        .push((k, crate::programs::observation(project, prepared, p, &line)));
                }
                Record::Case(c) => {
                    seen_cases.insert(c.id.clone());
                    let Some(case) = prepared.case(&c.id) else {
                        rep.failures.push(format!(
                            "{label}: the kernel reported an unknown case `{}`",
                            c.id
                        ));
                        continue;
                    };
                    let Some(object) = prepared.object(&case.object) else {
                        continue;
                    };
                    let at = format!("{}:{} `{}`", case.file.display(), case.line, case.name);
                    // A program the verifier is expected to reject here has
                    // nothing to run: its cases are skipped, with the reason.
                    if expected_rejections.contains(&(case.object.clone(), case.program.clone())) {
                        sum.skipped += 1;
                        rep.skips.push(format!(
                            "{label}: {at}: skipped: {}/{} is rejected on {line}, as expected",
                            case.object, case.program
                        ));
                        continue;
                    }
                    let result = harness_cases::evaluate(case, &c.outcome, &object.info);
                    match &result.status {
                        Status::Passed => sum.passed += 1,
                        Status::Skipped(reason) => {
                            // A feature the kernel should have but the probe
                            // denies is a failure, not a skip.
                            let should_have: Vec<String> = case
                                .plan
                                .requires
                                .iter()
                                .filter(|r| probes.get(*r).is_some_and(|p| !p.available))
                                .filter_map(|r| harness_cases::features::feature(r))
                                .filter(|f| f.expected_on(&line))
                                .map(|f| {
                                    format!(
                                        "{} ({}, since {}.{})",
                                        f.name, f.what, f.since.0, f.since.1
                                    )
                                })
                                .collect();
                            if should_have.is_empty() {
                                sum.skipped += 1;
                                rep.skips.push(format!("{label}: {at}: skipped: {reason}"));
                            } else {
                                sum.failed += 1;
                                rep.failures.push(format!(
                                    "{label}: {at}: skipped, but kernel {line} should support {}: {reason}",
                                    should_have.join(", ")
                                ));
                            }
                        }
                        Status::Failed(lines) => {
                            sum.failed += 1;
                            rep.failures
                                .push(format!("{label}: {at}:\n      {}", lines.join("\n      ")));
                        }
                        Status::Error(e) => {
                            sum.failed += 1;
                            rep.failures.push(format!("{label}: {at}: {e}"));
                        }
                    }
                    if let (Some(ret), Some(maps), CaseOutcome::Ran { data_out, .. }) =
                        (&result.retval, &result.maps, &c.outcome)
                    {
                        let input = &case.plan.input.data;
                        let output = if data_out.0 == input.0 {
                            format!("unchanged ({} bytes)", data_out.len())
                        } else {
                            let fields: Vec<String> = harness_packet::describe(data_out)
                                .iter()
                                .map(|f| format!("  {f}"))
                                .collect();
                            format!(
                                "{} bytes, rewritten:\n{}",
                                data_out.len(),
                                fields.join("\n")
                            )
                        };
                        observations.push((k, Observation {
                            name: format!("case__{}__{}", slug(&case.file.file_stem().unwrap_or_default().to_string_lossy()), slug(&case.name)),
                            line: line.clone(),
                            content: format!("case: {}\nprogram: {}/{}\nreturn: {ret}\noutput packet: {output}\n\nmaps after the run:\n{maps}", case.name, case.object, case.program),
                            source: case.file.display().to_string(),
                            expression: format!("return value, output packet and maps after `{}`", case.name),
                        }));
                    }
                }
                Record::Done(d) => {
                    if let Some(e) = &d.error {
                        rep.failures
                            .push(format!("{label}: the runner failed: {e}"));
                        sum.error = Some(e.clone());
                    }
                }
                Record::Probe(p) => {
                    probes.insert(p.name.clone(), p.clone());
                }
            }
        }
        for case in &prepared.cases {
            if !seen_cases.contains(&case.plan.id) {
                sum.failed += 1;
                rep.failures.push(format!(
                    "{label}: {}:{} `{}` produced no result",
                    case.file.display(),
                    case.line,
                    case.name
                ));
            }
        }
        rep.kernels.push(sum);
    }

    let store = SnapshotStore::new(project.snapshots_dir.clone(), mode);
    let obs: Vec<Observation> = observations.iter().map(|(_, o)| o.clone()).collect();
    let outcomes = store.check(&obs).map_err(io_err(format!(
        "writing snapshots in {}",
        project.snapshots_dir.display()
    )))?;
    for ((k, _), outcome) in observations.iter().zip(&outcomes) {
        let sum = &mut rep.kernels[*k];
        match outcome {
            o if !o.is_failure() => sum.snapshots_matched += 1,
            Outcome::New { .. } => sum.snapshots_new += 1,
            _ => sum.snapshots_changed += 1,
        }
    }
    (rep.snapshot_notes, rep.pending_snapshots) = snapshot_notes(project, &obs, &outcomes);
    Ok(rep)
}

/// One note per new or changed snapshot file (kernels sharing the file are
/// named together), and how many files await review.
pub(crate) fn snapshot_notes(
    project: &Project,
    observations: &[Observation],
    outcomes: &[Outcome],
) -> (Vec<String>, usize) {
    let mut noted: BTreeMap<(String, String), (Vec<String>, String)> = BTreeMap::new();
    for (o, outcome) in observations.iter().zip(outcomes) {
        let (key, text) = match outcome {
            Outcome::Matched { .. } => continue,
            Outcome::New { pending, accepted } => {
                let text = match (pending, accepted) {
                    (Some(p), true) => format!("written to {}", project.relative(p)),
                    (Some(p), false) => format!("pending: {}", project.relative(p)),
                    (None, _) => "not written: INSTA_UPDATE=no or CI is set".into(),
                };
                (
                    pending
                        .as_ref()
                        .map_or_else(|| o.name.clone(), |p| p.display().to_string()),
                    format!("is new ({text})"),
                )
            }
            Outcome::Changed {
                file,
                pending,
                diff,
                accepted,
            } => {
                let what = match (pending, accepted) {
                    (Some(_), true) => "updated",
                    (Some(_), false) => "pending review",
                    (None, _) => "not written: INSTA_UPDATE=no or CI is set",
                };
                (
                    file.display().to_string(),
                    format!("differs from {} ({what}):\n{diff}", project.relative(file)),
                )
            }
        };
        let entry = noted
            .entry((key, o.name.clone()))
            .or_insert_with(|| (Vec::new(), text));
        entry.0.push(o.line.clone());
    }
    let pending = outcomes
        .iter()
        .filter_map(|o| match o {
            Outcome::New {
                pending: Some(p),
                accepted: false,
            }
            | Outcome::Changed {
                pending: Some(p),
                accepted: false,
                ..
            } => Some(p.clone()),
            _ => None,
        })
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    let notes = noted
        .into_iter()
        .map(|((_, name), (lines, text))| format!("snapshot {name} on {} {text}", lines.join(", ")))
        .collect();
    (notes, pending)
}

/// The problems part of a report: notes, failures, snapshot notes and the
/// pending-review line.
pub(crate) fn render_problems(
    s: &mut String,
    notes: &[String],
    failures: &[String],
    snapshot_notes: &[String],
    pending: usize,
    pending_hint: &str,
) {
    for n in notes {
        let _ = writeln!(s, "\x20 - {n}");
    }
    if !notes.is_empty() {
        s.push('\n');
    }
    for f in failures {
        let _ = writeln!(s, "\x20 ✗ {f}\n");
    }
    for n in snapshot_notes {
        let _ = writeln!(s, "{n}\n");
    }
    if pending > 0 {
        let _ = writeln!(
            s,
            "{pending} snapshot{} pending: review with `cargo insta review` {pending_hint}\n",
            if pending == 1 { "" } else { "s" }
        );
    }
}
