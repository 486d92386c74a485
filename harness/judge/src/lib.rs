//! What the kernels said, judged against what was prepared.
//!
//! Input: the [`Prepared`] project (objects, compiled cases, expected
//! verifier outcomes) and each kernel's [`KernelRun`]. Output: typed
//! [`Finding`]s (failures, skips, notes: who, on which kernel, what), a
//! [`KernelSummary`] per kernel, the snapshot check, and for `verify` one
//! [`Row`] per program and kernel with the gate applied against a baseline.
//! Nothing here renders text for a screen: `harness-report` does, from these
//! values.

mod cases;
mod divergence;
mod finding;
mod gate;
mod outcomes;
mod programs;
mod rows;
mod snapshots;

use std::{collections::BTreeSet, path::PathBuf, time::Duration};

use harness_matrix::KernelRun;
use harness_project::{Origin, Prepared, Project};
use harness_protocol::{ExecTimings, ProbeReport, ProgramReport, Record};
use harness_snapshots::{Observation, SnapshotStore, UpdateMode};

pub use divergence::{Divergence, divergences, helper_names};
pub use finding::{
    FeatureShortfall, Finding, FindingKind, LogExcerpt, Severity, Subject, VerdictText,
};
pub use gate::{
    Baseline, BaselineEntry, BaselineError, Gate, GateViolation, apply as apply_gate,
    check_baseline_covers, load_baseline,
};
pub use outcomes::{
    KernelOutcome, MergeError, Outcome, OutcomeKind, OutcomeStatus, Outcomes, RESULTS_FORMAT,
    RunKind,
};
pub use programs::{SnapshotHeader, line_records, verdict_text};
pub use rows::{ExpectationStatus, Row, VerdictKind, to_csv, to_json};
pub use snapshots::{SnapshotChange, SnapshotNote, SnapshotState, Unreferenced, Written};

/// What judging reads besides the runs.
pub struct Context<'a> {
    pub project: &'a Project,
    pub prepared: &'a Prepared,
    /// What to do with snapshots that do not match.
    pub snapshots: UpdateMode,
    /// What to do with snapshots nothing produces any more.
    pub unreferenced: Unreferenced,
}

/// One kernel's line of the summary.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KernelSummary {
    pub label: String,
    pub release: String,
    /// `kvm` or `tcg`; `None` on the host.
    pub accel: Option<String>,
    pub boot: Option<Duration>,
    pub total: Duration,
    pub programs: usize,
    pub programs_accepted: usize,
    /// Rejected (or not loaded) on this kernel, as an expectation says.
    pub programs_failing_as_expected: usize,
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
    /// Cases the kernel never reached because it stopped.
    pub not_run: usize,
    pub snapshots_matched: usize,
    pub snapshots_new: usize,
    pub snapshots_changed: usize,
    /// Why the kernel did not finish the plan.
    pub error: Option<String>,
    /// Where the executor's time went (a run that finished).
    pub exec: Option<ExecTimings>,
}

impl KernelSummary {
    pub fn ok(&self) -> bool {
        self.error.is_none()
            && self.failed == 0
            && self.not_run == 0
            && self.snapshots_new == 0
            && self.snapshots_changed == 0
            && self.programs_accepted + self.programs_failing_as_expected == self.programs
    }
}

/// What `test` found.
#[derive(Clone, Debug, Default)]
pub struct TestJudgement {
    pub kernels: Vec<KernelSummary>,
    pub findings: Vec<Finding>,
    pub snapshot_notes: Vec<SnapshotNote>,
    pub pending_snapshots: usize,
    /// Cases not run because `--prog` did not select their program.
    pub filtered: usize,
    /// What ran and held: each case that passed and each program that
    /// loaded as it should, per kernel (JUnit lists them).
    pub passed: Vec<Passed>,
    /// All of the above as one flat list, for CI.
    pub outcomes: Outcomes,
}

/// A case or program that held on a kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Passed {
    pub kernel: String,
    pub subject: Subject,
}

impl TestJudgement {
    pub fn ok(&self) -> bool {
        !self.findings.iter().any(Finding::is_failure) && self.kernels.iter().all(KernelSummary::ok)
    }

    pub fn failures(&self) -> impl Iterator<Item = &Finding> {
        of_severity(&self.findings, Severity::Failure)
    }

    pub fn skips(&self) -> impl Iterator<Item = &Finding> {
        of_severity(&self.findings, Severity::Skip)
    }
}

fn of_severity(findings: &[Finding], severity: Severity) -> impl Iterator<Item = &Finding> {
    findings.iter().filter(move |f| f.severity == severity)
}

/// What `verify` found.
#[derive(Clone, Debug, Default)]
pub struct VerifyJudgement {
    pub rows: Vec<Row>,
    /// Programs whose verdict differs between the kernels, and why.
    pub divergences: Vec<Divergence>,
    /// Kernel labels, in the order asked for.
    pub kernels: Vec<String>,
    pub findings: Vec<Finding>,
    pub snapshot_notes: Vec<SnapshotNote>,
    pub pending_snapshots: usize,
    /// All of the above as one flat list, for CI.
    pub outcomes: Outcomes,
}

impl VerifyJudgement {
    pub fn ok(&self) -> bool {
        !self.findings.iter().any(Finding::is_failure)
    }

    pub fn failures(&self) -> impl Iterator<Item = &Finding> {
        of_severity(&self.findings, Severity::Failure)
    }

    pub fn notes(&self) -> impl Iterator<Item = &Finding> {
        of_severity(&self.findings, Severity::Note)
    }
}

/// Snapshots could not be written.
#[derive(Debug, thiserror::Error)]
#[error("writing snapshots in {}: {error}", dir.display())]
pub struct SnapshotWriteError {
    pub dir: PathBuf,
    pub error: std::io::Error,
}

impl Context<'_> {
    fn store(&self) -> SnapshotStore {
        SnapshotStore::new(self.project.snapshots_dir.clone(), self.snapshots)
    }

    fn check(
        &self,
        observations: &[Observation],
        kinds: &[&str],
    ) -> Result<snapshots::SnapshotCheck, SnapshotWriteError> {
        snapshots::check(
            self.project,
            &self.store(),
            observations,
            kinds,
            &|name| self.is_known_snapshot(name),
            self.unreferenced,
        )
        .map_err(|error| SnapshotWriteError {
            dir: self.project.snapshots_dir.clone(),
            error,
        })
    }

    /// Whether a case or program of the project would produce the snapshot
    /// `name` on some kernel (skipped or not run this time counts), or it
    /// belongs to an object that did not build or open this time.
    fn is_known_snapshot(&self, name: &str) -> bool {
        let p = self.prepared;
        p.cases.iter().any(|c| cases::snapshot_name(c) == name)
            || p.objects.iter().any(|o| {
                o.info
                    .file
                    .programs()
                    .iter()
                    .any(|prog| programs::snapshot_name(&o.name, &prog.name) == name)
            })
            || p.unopened.iter().any(|u| {
                name.starts_with(&programs::snapshot_name(&u.name, ""))
                    || u.case_files
                        .iter()
                        .any(|f| name.starts_with(&cases::snapshot_prefix(f)))
            })
    }

    /// Only the project's own objects have snapshots: objects given by path
    /// are neither compared with the project's snapshots nor written there.
    fn has_snapshots(&self, object: &str) -> bool {
        self.prepared
            .object(object)
            .is_some_and(|o| o.origin == Origin::Project)
    }

    /// The kinds of snapshot files to name when nothing produced them: none
    /// when the run covers part of the project (`--prog`, `--shard`, or
    /// objects given by path), where the rest is not unreferenced, only not run.
    fn unreferenced_kinds<'k>(&self, kinds: &'k [&'k str]) -> &'k [&'k str] {
        // A shard holds part of the objects: the others' snapshots are
        // another shard's, not unreferenced.
        let whole = self.prepared.selected.is_none()
            && self.prepared.shard.is_none()
            && self
                .prepared
                .objects
                .iter()
                .all(|o| o.origin == Origin::Project);
        if whole { kinds } else { &[] }
    }

    /// Where the full log of a program lands, relative to the project.
    fn log_path(&self, label: &str, p: &ProgramReport) -> PathBuf {
        PathBuf::from(self.project.relative(&harness_matrix::verifier_log(
            &self.project.results_dir.join(label),
            &p.object,
            &p.program,
        )))
    }

    fn finding(
        &self,
        run: &KernelRun,
        subject: Subject,
        severity: Severity,
        kind: FindingKind,
    ) -> Finding {
        Finding {
            kernel: run.target.label.clone(),
            subject,
            severity,
            kind,
        }
    }

    /// A finding for a kernel that stopped early, when it did.
    fn run_failure(&self, run: &KernelRun) -> Option<Finding> {
        run.failure.as_ref().map(|failure| {
            self.finding(
                run,
                Subject::Kernel,
                Severity::Failure,
                FindingKind::RunFailed {
                    error: failure.to_string(),
                },
            )
        })
    }
}

/// Judges every run of `test` and checks snapshots across all of them.
pub fn judge_test(
    ctx: &Context<'_>,
    runs: &[KernelRun],
) -> Result<TestJudgement, SnapshotWriteError> {
    let mut out = TestJudgement::default();
    let mut observations: Vec<(usize, Observation)> = Vec::new();
    for (k, run) in runs.iter().enumerate() {
        let mut sum = summary(run);
        if let Some(f) = ctx.run_failure(run) {
            sum.error = Some(first_line(&run_error(&f)));
            out.findings.push(f);
        }
        out.findings.extend(unopened_objects(ctx, run));
        let mut seen = BTreeSet::new();
        let mut failing_as_expected = BTreeSet::new();
        let mut failed_probes: Vec<String> = Vec::new();
        for record in &run.records {
            match record {
                Record::Hello(h) => sum.release = h.release.clone(),
                Record::Probe(ProbeReport {
                    name, available, ..
                }) => {
                    if !available {
                        failed_probes.push(name.clone());
                    }
                }
                Record::ObjectError { object, error } => {
                    out.findings
                        .push(object_not_loaded(ctx, run, object, error));
                }
                Record::Program(p) if !ctx.prepared.is_selected(&p.object, &p.program) => {}
                Record::Program(p) => {
                    sum.programs += 1;
                    let diagnosis = programs::diagnosis(ctx.prepared, p);
                    let judgement = programs::judge(
                        ctx.prepared,
                        p,
                        run.target.version,
                        &ctx.log_path(&run.target.label, p),
                        diagnosis.as_deref(),
                    );
                    if p.verdict.is_accepted() {
                        sum.programs_accepted += 1;
                    }
                    if judgement.expected_failure {
                        sum.programs_failing_as_expected += 1;
                        failing_as_expected.insert((p.object.clone(), p.program.clone()));
                    }
                    match judgement.problem {
                        Some(kind) => out.findings.push(ctx.finding(
                            run,
                            program_subject(p),
                            Severity::Failure,
                            kind,
                        )),
                        None => out.passed.push(Passed {
                            kernel: run.target.label.clone(),
                            subject: program_subject(p),
                        }),
                    }
                    if ctx.has_snapshots(&p.object) {
                        observations.push((
                            k,
                            programs::observation(ctx.project, ctx.prepared, p, &run.target.line()),
                        ));
                    }
                }
                Record::Case(c) => {
                    seen.insert(c.id.clone());
                    let Some(case) = ctx.prepared.case(&c.id) else {
                        sum.failed += 1;
                        out.findings.push(ctx.finding(
                            run,
                            Subject::Kernel,
                            Severity::Failure,
                            FindingKind::UnknownCase { id: c.id.clone() },
                        ));
                        continue;
                    };
                    // A program expected to fail here has nothing to run:
                    // its cases are skipped, with the reason.
                    if failing_as_expected.contains(&(case.object.clone(), case.program.clone())) {
                        sum.skipped += 1;
                        out.findings.push(ctx.finding(
                            run,
                            cases::subject(case),
                            Severity::Skip,
                            FindingKind::ProgramRejectedAsExpected {
                                object: case.object.clone(),
                                program: case.program.clone(),
                                line: run.target.line(),
                            },
                        ));
                        continue;
                    }
                    let (verdict, observation) =
                        cases::judge(ctx.prepared, &run.target, case, c, &failed_probes);
                    match verdict {
                        cases::CaseVerdict::Passed => {
                            sum.passed += 1;
                            out.passed.push(Passed {
                                kernel: run.target.label.clone(),
                                subject: cases::subject(case),
                            });
                        }
                        cases::CaseVerdict::Finding(severity, kind) => {
                            if severity == Severity::Skip {
                                sum.skipped += 1;
                            } else {
                                sum.failed += 1;
                            }
                            out.findings.push(ctx.finding(
                                run,
                                cases::subject(case),
                                severity,
                                kind,
                            ));
                        }
                    }
                    observations.extend(observation.map(|o| (k, o)));
                }
                Record::Done(d) => {
                    if let Some(e) = &d.error {
                        sum.error = Some(e.clone());
                        out.findings.push(ctx.finding(
                            run,
                            Subject::Kernel,
                            Severity::Failure,
                            FindingKind::RunnerFailed { error: e.clone() },
                        ));
                    }
                }
            }
        }
        unreported_cases(ctx, run, &seen, &mut sum, &mut out.findings);
        out.kernels.push(sum);
    }
    let obs: Vec<Observation> = observations.iter().map(|(_, o)| o.clone()).collect();
    let check = ctx.check(
        &obs,
        ctx.unreferenced_kinds(&[cases::SNAPSHOT_KIND, programs::SNAPSHOT_KIND]),
    )?;
    for ((k, _), state) in observations.iter().zip(&check.states) {
        let sum = &mut out.kernels[*k];
        match state {
            SnapshotState::Matched => sum.snapshots_matched += 1,
            SnapshotState::New => sum.snapshots_new += 1,
            SnapshotState::Changed => sum.snapshots_changed += 1,
        }
    }
    out.snapshot_notes = check.notes;
    out.pending_snapshots = check.pending;
    out.filtered = ctx.prepared.filtered_cases;
    out.outcomes = Outcomes::of_test(&out, ctx.project, ctx.prepared);
    Ok(out)
}

/// What a kernel that stopped early was doing: the first program or case of
/// the plan it did not report, in the order it works (each object's
/// programs, then its cases).
fn unreported_cases(
    ctx: &Context<'_>,
    run: &KernelRun,
    seen: &BTreeSet<String>,
    sum: &mut KernelSummary,
    findings: &mut Vec<Finding>,
) {
    let mut blamed = run.failure.is_none();
    for object in &ctx.prepared.objects {
        for program in unreported_programs(ctx.prepared, run, object) {
            let subject = Subject::Program {
                object: object.name.clone(),
                program,
            };
            if run.failure.is_none() {
                // A complete stream must name every program.
                sum.programs += 1;
                findings.push(ctx.finding(
                    run,
                    subject,
                    Severity::Failure,
                    FindingKind::NoResult { running: false },
                ));
            } else if !blamed {
                findings.push(ctx.finding(
                    run,
                    subject,
                    Severity::Failure,
                    FindingKind::LoadNotFinished,
                ));
                blamed = true;
            }
        }
        for case in ctx
            .prepared
            .cases
            .iter()
            .filter(|c| c.object == object.name)
        {
            if seen.contains(&case.plan.id) {
                continue;
            }
            let (severity, kind) = match (run.failure.is_some(), blamed) {
                (false, _) => (Severity::Failure, FindingKind::NoResult { running: false }),
                (true, false) => (Severity::Failure, FindingKind::NoResult { running: true }),
                (true, true) => (Severity::Skip, FindingKind::NotReached),
            };
            blamed = true;
            if kind == FindingKind::NotReached {
                sum.not_run += 1;
            } else {
                sum.failed += 1;
            }
            findings.push(ctx.finding(run, cases::subject(case), severity, kind));
        }
    }
}

/// The programs of `object` (in load order) the run did not report, unless
/// the whole object failed to load.
fn unreported_programs(
    prepared: &Prepared,
    run: &KernelRun,
    object: &harness_project::PreparedObject,
) -> Vec<String> {
    let reported = |name: &str| {
        run.records.iter().any(|r| match r {
            Record::Program(p) => p.object == object.name && p.program == name,
            Record::ObjectError { object: o, .. } => *o == object.name,
            _ => false,
        })
    };
    object
        .info
        .file
        .programs()
        .iter()
        .map(|p| p.name.clone())
        .filter(|name| !reported(name) && prepared.is_selected(&object.name, name))
        .collect()
}

fn summary(run: &KernelRun) -> KernelSummary {
    KernelSummary {
        label: run.target.label.clone(),
        release: run.target.release.clone(),
        accel: run.accel.map(|a| a.to_string()),
        boot: run.boot_time,
        total: run.total_time,
        exec: run.exec_timings(),
        ..KernelSummary::default()
    }
}

fn program_subject(p: &ProgramReport) -> Subject {
    Subject::Program {
        object: p.object.clone(),
        program: p.program.clone(),
    }
}

/// Objects libbpf could not even open on the host: never sent to a kernel,
/// a failure on each.
fn unopened_objects<'a>(
    ctx: &'a Context<'_>,
    run: &'a KernelRun,
) -> impl Iterator<Item = Finding> + 'a {
    ctx.prepared.unopened.iter().map(move |u| match u.stage {
        harness_project::Stage::Open => object_not_loaded(ctx, run, &u.name, &u.error),
        harness_project::Stage::Compile => ctx.finding(
            run,
            Subject::Object {
                object: u.name.clone(),
                source: Some(PathBuf::from(ctx.project.relative(&u.path))),
            },
            Severity::Failure,
            FindingKind::ObjectNotCompiled {
                error: u.error.clone(),
            },
        ),
    })
}

fn object_not_loaded(ctx: &Context<'_>, run: &KernelRun, object: &str, error: &str) -> Finding {
    ctx.finding(
        run,
        Subject::Object {
            object: object.to_owned(),
            source: None,
        },
        Severity::Failure,
        FindingKind::ObjectNotLoaded {
            error: error.to_owned(),
        },
    )
}

fn run_error(f: &Finding) -> String {
    match &f.kind {
        FindingKind::RunFailed { error } => error.clone(),
        other => other.to_string(),
    }
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or_default().to_owned()
}

/// Judges every run of `verify`: a row per program and kernel, its
/// expectations, and the gate against `baseline` (the committed snapshots
/// when `None`).
pub fn judge_verify(
    ctx: &Context<'_>,
    runs: &[KernelRun],
    baseline: Option<&Baseline>,
    gate: &Gate,
) -> Result<VerifyJudgement, SnapshotWriteError> {
    let store = ctx.store();
    let mut out = VerifyJudgement {
        kernels: runs.iter().map(|r| r.target.label.clone()).collect(),
        ..VerifyJudgement::default()
    };
    for o in ctx
        .prepared
        .objects
        .iter()
        .filter(|o| o.info.file.programs().is_empty() && ctx.prepared.selected.is_none())
    {
        out.findings.push(Finding {
            kernel: String::new(),
            subject: Subject::Object {
                object: o.name.clone(),
                source: Some(PathBuf::from(o.shown(ctx.project))),
            },
            severity: Severity::Note,
            kind: FindingKind::NoPrograms,
        });
    }
    let mut observations = Vec::new();
    for run in runs {
        out.findings.extend(ctx.run_failure(run));
        out.findings.extend(unopened_objects(ctx, run));
        let line = run.target.line();
        for record in &run.records {
            match record {
                Record::ObjectError { object, error } => {
                    out.findings
                        .push(object_not_loaded(ctx, run, object, error));
                }
                Record::Program(p) if !ctx.prepared.is_selected(&p.object, &p.program) => {}
                Record::Program(p) => {
                    let diagnosis = programs::diagnosis(ctx.prepared, p);
                    let judgement = programs::judge(
                        ctx.prepared,
                        p,
                        run.target.version,
                        &ctx.log_path(&run.target.label, p),
                        diagnosis.as_deref(),
                    );
                    let mut row = Row::new(p, &run.target.label, &line);
                    row.diagnosis = diagnosis;
                    row.cause = row.diagnosis.as_ref().map(|d| d.cause.id().to_owned());
                    row.expectation = judgement.expected.then_some(if judgement.ok() {
                        ExpectationStatus::AsExpected
                    } else {
                        ExpectationStatus::NotMet
                    });
                    let problem = judgement.problem;
                    let observation = ctx
                        .has_snapshots(&p.object)
                        .then(|| programs::observation(ctx.project, ctx.prepared, p, &line));
                    let before = match (baseline, &observation) {
                        (Some(b), _) => b
                            .get(&(p.object.clone(), p.program.clone(), line.clone()))
                            .cloned(),
                        (None, Some(observation)) => store
                            .expected(&observation.name, &line)
                            .and_then(|text| SnapshotHeader::read(&text))
                            .map(|h| h.baseline()),
                        // Objects given by path have no snapshots to compare with.
                        (None, None) => None,
                    };
                    if let Some(kind) = problem {
                        // Under `new_failures_only`, a failure the baseline
                        // already had is reported, not failed.
                        let known = gate.new_failures_only
                            && before.as_ref().and_then(|b| b.verdict) == Some(row.verdict);
                        let severity = if known {
                            Severity::Note
                        } else {
                            Severity::Failure
                        };
                        out.findings
                            .push(ctx.finding(run, program_subject(p), severity, kind));
                    }
                    match before {
                        Some(b) => {
                            for v in gate::apply(&mut row, &b, gate) {
                                let severity = if v.fails(gate) {
                                    Severity::Failure
                                } else {
                                    Severity::Note
                                };
                                out.findings.push(ctx.finding(
                                    run,
                                    program_subject(p),
                                    severity,
                                    FindingKind::Gate(v),
                                ));
                            }
                        }
                        // A missing snapshot is reported as new.
                        None if baseline.is_some() => out.findings.push(ctx.finding(
                            run,
                            program_subject(p),
                            Severity::Note,
                            FindingKind::NotInBaseline,
                        )),
                        None => {}
                    }
                    out.rows.push(row);
                    observations.extend(observation);
                }
                _ => {}
            }
        }
    }
    let check = ctx.check(
        &observations,
        ctx.unreferenced_kinds(&[programs::SNAPSHOT_KIND]),
    )?;
    out.snapshot_notes = check.notes;
    out.pending_snapshots = check.pending;
    out.rows.sort_by(|a, b| {
        (&a.object, &a.program, &a.kernel).cmp(&(&b.object, &b.program, &b.kernel))
    });
    out.divergences = divergences(&out.rows, &divergence::host_helper_name);
    out.outcomes = Outcomes::of_verify(&out, ctx.project, ctx.prepared);
    Ok(out)
}
