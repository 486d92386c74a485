//! A run's results as one flat, serialisable list: one entry per case per
//! kernel, per program per kernel, and per thing that failed outside them
//! (an object, a kernel, a snapshot). What CI reads: JUnit, annotations and
//! the job summary are rendered from it (harness-report), and `merge`
//! joins the lists of shards and kernels into the one a whole run gives.

use std::{collections::BTreeMap, fmt, path::PathBuf};

use harness_project::{Prepared, Project};
use serde::{Deserialize, Serialize};

use crate::{
    Finding, FindingKind, KernelSummary, Row, Severity, SnapshotChange, SnapshotNote, Subject,
    TestJudgement, VerdictKind, VerifyJudgement, Written,
};

/// The version of the results format; `merge` refuses others.
pub const RESULTS_FORMAT: u32 = 1;

/// Which command produced the results.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunKind {
    Test,
    Verify,
}

impl fmt::Display for RunKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Test => "test",
            Self::Verify => "verify",
        })
    }
}

/// Everything CI needs from one run (or, merged, from many).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Outcomes {
    pub format: u32,
    pub command: RunKind,
    /// Kernels in the order asked for.
    pub kernels: Vec<KernelOutcome>,
    pub outcomes: Vec<Outcome>,
}

/// One kernel's run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KernelOutcome {
    pub label: String,
    pub release: String,
    /// Wall time of the kernel's run, boot included.
    pub seconds: f64,
    /// Why the kernel did not finish the plan.
    pub error: Option<String>,
}

/// What an outcome is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutcomeKind {
    Case,
    Program,
    Object,
    Kernel,
    Snapshot,
}

impl fmt::Display for OutcomeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Case => "case",
            Self::Program => "program",
            Self::Object => "object",
            Self::Kernel => "kernel",
            Self::Snapshot => "snapshot",
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutcomeStatus {
    Passed,
    Skipped,
    Failed,
}

/// One case, program, object, kernel or snapshot on one kernel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// The kernel's label; for a snapshot, the kernel lines it covers.
    pub kernel: String,
    pub kind: OutcomeKind,
    /// What holds it: the object of a program, the case file of a case.
    pub group: String,
    /// The case's or program's name (the object's, the snapshot's).
    pub name: String,
    pub status: OutcomeStatus,
    /// The first line of what went wrong (or why it was skipped).
    pub message: Option<String>,
    /// All of it: the failures, the verifier log's end, the diagnosis.
    pub detail: Option<String>,
    /// Where it points in the project: the case's line in its file, the C
    /// line of a rejection, the source that did not compile.
    pub file: Option<PathBuf>,
    pub line: Option<usize>,
    /// For programs: the verdict and its cost, against the baseline.
    pub verdict: Option<VerdictKind>,
    pub insns: Option<u64>,
    pub baseline_insns: Option<u64>,
    pub insns_diff_pct: Option<f64>,
    /// The rejection's cause: its catalog id and title.
    pub cause: Option<String>,
    pub cause_title: Option<String>,
    /// The program's full verifier log, relative to the project.
    pub log: Option<PathBuf>,
    /// Worth knowing, never failing (a program absent from the baseline,
    /// a cost change the gate lets through).
    pub notes: Vec<String>,
}

impl Outcome {
    /// A passed outcome with nothing known beyond who it is.
    pub fn new(kernel: &str, kind: OutcomeKind, group: &str, name: &str) -> Self {
        Self {
            kernel: kernel.to_owned(),
            kind,
            group: group.to_owned(),
            name: name.to_owned(),
            status: OutcomeStatus::Passed,
            message: None,
            detail: None,
            file: None,
            line: None,
            verdict: None,
            insns: None,
            baseline_insns: None,
            insns_diff_pct: None,
            cause: None,
            cause_title: None,
            log: None,
            notes: Vec::new(),
        }
    }

    /// The order every rendering lists outcomes in, so a merge of shards
    /// reads as one run.
    fn key(&self) -> (OutcomeKind, &str, &str, &str) {
        (self.kind, &self.group, &self.name, &self.kernel)
    }
}

impl Default for Outcomes {
    fn default() -> Self {
        Self {
            format: RESULTS_FORMAT,
            command: RunKind::Test,
            kernels: Vec::new(),
            outcomes: Vec::new(),
        }
    }
}

impl Outcomes {
    pub fn ok(&self) -> bool {
        self.kernels.iter().all(|k| k.error.is_none())
            && self
                .outcomes
                .iter()
                .all(|o| o.status != OutcomeStatus::Failed)
    }

    pub fn count(&self, status: OutcomeStatus) -> usize {
        self.outcomes.iter().filter(|o| o.status == status).count()
    }

    /// `test`'s results.
    pub fn of_test(j: &TestJudgement, project: &Project, prepared: &Prepared) -> Self {
        let mut by_subject = Collector::new(project, prepared);
        for p in &j.passed {
            by_subject.entry(&p.kernel, &p.subject);
        }
        for f in &j.findings {
            by_subject.finding(f);
        }
        let mut outcomes = by_subject.finish();
        outcomes.extend(j.snapshot_notes.iter().map(snapshot_outcome));
        Self::sorted(RunKind::Test, kernels_of(&j.kernels), outcomes)
    }

    /// `verify`'s results: every row, with the findings about it.
    pub fn of_verify(j: &VerifyJudgement, project: &Project, prepared: &Prepared) -> Self {
        let mut by_subject = Collector::new(project, prepared);
        for row in &j.rows {
            by_subject.row(row);
        }
        for f in &j.findings {
            by_subject.finding(f);
        }
        let mut outcomes = by_subject.finish();
        outcomes.extend(j.snapshot_notes.iter().map(snapshot_outcome));
        let kernels = j
            .kernels
            .iter()
            .map(|label| KernelOutcome {
                label: label.clone(),
                // Verify's rows name the kernel's line, not its release:
                // unknown here rather than a line posing as one.
                release: String::new(),
                seconds: 0.0,
                error: j
                    .findings
                    .iter()
                    .find(|f| &f.kernel == label && f.subject == Subject::Kernel)
                    .map(|f| first_line(&f.kind.to_string())),
            })
            .collect();
        Self::sorted(RunKind::Verify, kernels, outcomes)
    }

    fn sorted(command: RunKind, kernels: Vec<KernelOutcome>, mut outcomes: Vec<Outcome>) -> Self {
        outcomes.sort_by(|a, b| a.key().cmp(&b.key()));
        Self {
            format: RESULTS_FORMAT,
            command,
            kernels,
            outcomes,
        }
    }

    /// Joins the results of shards or kernels of one command: kernels in
    /// the order first seen, every outcome once.
    pub fn merge(parts: Vec<(PathBuf, Outcomes)>) -> Result<Self, MergeError> {
        let Some((first_path, first)) = parts.first() else {
            return Err(MergeError::Nothing);
        };
        let command = first.command;
        let mut kernels: Vec<KernelOutcome> = Vec::new();
        let mut seen: BTreeMap<(OutcomeKind, String, String, String), PathBuf> = BTreeMap::new();
        let mut outcomes = Vec::new();
        for (path, part) in &parts {
            if part.format != RESULTS_FORMAT {
                return Err(MergeError::Format {
                    path: path.clone(),
                    format: part.format,
                });
            }
            if part.command != command {
                return Err(MergeError::Commands {
                    first: first_path.clone(),
                    first_command: command,
                    path: path.clone(),
                    command: part.command,
                });
            }
            for k in &part.kernels {
                match kernels.iter_mut().find(|m| m.label == k.label) {
                    // Shards of one kernel: the kernel failed if any did.
                    Some(m) => {
                        m.seconds += k.seconds;
                        if m.error.is_none() {
                            m.error.clone_from(&k.error);
                        }
                        if m.release.is_empty() {
                            m.release.clone_from(&k.release);
                        }
                    }
                    None => kernels.push(k.clone()),
                }
            }
            for o in &part.outcomes {
                let key = (o.kind, o.group.clone(), o.name.clone(), o.kernel.clone());
                // Object and kernel failures repeat in every shard that
                // met them; cases and programs belong to one shard.
                if let Some(other) = seen.get(&key) {
                    if matches!(o.kind, OutcomeKind::Case | OutcomeKind::Program) {
                        return Err(MergeError::Overlap {
                            what: format!("{} `{}/{}` on {}", o.kind, o.group, o.name, o.kernel),
                            first: other.clone(),
                            second: path.clone(),
                        });
                    }
                    continue;
                }
                seen.insert(key, path.clone());
                outcomes.push(o.clone());
            }
        }
        Ok(Self::sorted(command, kernels, outcomes))
    }
}

/// Results that cannot be merged.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("no results to merge")]
    Nothing,
    #[error(
        "{}: results format {format}, this harness reads format {RESULTS_FORMAT}: write them again with this version",
        path.display()
    )]
    Format { path: PathBuf, format: u32 },
    #[error(
        "{} holds `{command}` results but {} holds `{first_command}` results: merge the results of one command at a time",
        path.display(),
        first.display()
    )]
    Commands {
        first: PathBuf,
        first_command: RunKind,
        path: PathBuf,
        command: RunKind,
    },
    #[error(
        "{what} is in both {} and {}: were they run with the same --shard?",
        first.display(),
        second.display()
    )]
    Overlap {
        what: String,
        first: PathBuf,
        second: PathBuf,
    },
}

fn kernels_of(summaries: &[KernelSummary]) -> Vec<KernelOutcome> {
    summaries
        .iter()
        .map(|k| KernelOutcome {
            label: k.label.clone(),
            release: k.release.clone(),
            seconds: k.total.as_secs_f64(),
            error: k.error.clone(),
        })
        .collect()
}

/// Gathers findings, rows and passes into one outcome per subject and
/// kernel.
struct Collector<'a> {
    project: &'a Project,
    prepared: &'a Prepared,
    outcomes: Vec<Outcome>,
    index: BTreeMap<(OutcomeKind, String, String, String), usize>,
}

impl<'a> Collector<'a> {
    fn new(project: &'a Project, prepared: &'a Prepared) -> Self {
        Self {
            project,
            prepared,
            outcomes: Vec::new(),
            index: BTreeMap::new(),
        }
    }

    fn entry(&mut self, kernel: &str, subject: &Subject) -> &mut Outcome {
        let (kind, group, name, file, line) = match subject {
            Subject::Kernel => (
                OutcomeKind::Kernel,
                String::new(),
                kernel.to_owned(),
                None,
                None,
            ),
            Subject::Object { object, source } => (
                OutcomeKind::Object,
                object.clone(),
                object.clone(),
                source.clone(),
                None,
            ),
            Subject::Program { object, program } => (
                OutcomeKind::Program,
                object.clone(),
                program.clone(),
                None,
                None,
            ),
            Subject::Case { file, line, name } => (
                OutcomeKind::Case,
                file.display().to_string(),
                name.clone(),
                Some(file.clone()),
                Some(*line),
            ),
        };
        let key = (kind, group.clone(), name.clone(), kernel.to_owned());
        let i = *self.index.entry(key).or_insert_with(|| {
            let mut o = Outcome::new(kernel, kind, &group, &name);
            o.file = file;
            o.line = line;
            self.outcomes.push(o);
            self.outcomes.len() - 1
        });
        &mut self.outcomes[i]
    }

    fn row(&mut self, row: &Row) {
        let subject = Subject::Program {
            object: row.object.clone(),
            program: row.program.clone(),
        };
        let o = self.entry(&row.kernel, &subject);
        o.verdict = Some(row.verdict);
        o.insns = row.insns;
        o.baseline_insns = row.baseline_insns;
        o.insns_diff_pct = row.insns_diff_pct;
        o.cause.clone_from(&row.cause);
        if let Some(b) = row.baseline_verdict
            && b != row.verdict
        {
            o.notes
                .push(format!("verdict was {b}, now {}", row.verdict));
        }
    }

    fn finding(&mut self, f: &Finding) {
        // Notes about an object hold on every kernel.
        let kernel = if f.kernel.is_empty() {
            "all"
        } else {
            &f.kernel
        };
        let place = self.place(f);
        let log = log_of(&f.kind);
        let diagnosis = diagnosis_of(&f.kind).map(|d| (d.cause.id(), d.cause.title()));
        let text = f.kind.to_string();
        let o = self.entry(kernel, &f.subject);
        match f.severity {
            Severity::Note => {
                o.notes.push(first_line(text.trim_start()));
                return;
            }
            Severity::Skip if o.status == OutcomeStatus::Failed => {}
            Severity::Skip => o.status = OutcomeStatus::Skipped,
            Severity::Failure => o.status = OutcomeStatus::Failed,
        }
        let trimmed = text.trim_start_matches('\n');
        o.message.get_or_insert_with(|| first_line(trimmed));
        match &mut o.detail {
            Some(d) => {
                d.push('\n');
                d.push_str(trimmed);
            }
            None => o.detail = Some(trimmed.to_owned()),
        }
        if let Some((file, line)) = place {
            o.file = Some(file);
            o.line = Some(line);
        }
        if let Some(log) = log {
            o.log = Some(log);
        }
        if let Some((id, title)) = diagnosis {
            o.cause = Some(id.to_owned());
            o.cause_title = Some(title.to_owned());
        }
    }

    /// The C line a program's rejection points at, in the project.
    fn place(&self, f: &Finding) -> Option<(PathBuf, usize)> {
        let Subject::Program { object, .. } = &f.subject else {
            return None;
        };
        let at = diagnosis_of(&f.kind)?.source.as_ref()?;
        let line = at.line? as usize;
        let source = self.prepared.object(object)?.source.as_ref()?;
        let file = match &at.file {
            // BTF names the file by its base name: the source itself, or a
            // header beside it.
            Some(name) if source.file_name().is_some_and(|n| n != name.as_str()) => {
                let beside = source.parent()?.join(name);
                if !beside.is_file() {
                    return None;
                }
                beside
            }
            _ => source.clone(),
        };
        Some((PathBuf::from(self.project.relative(&file)), line))
    }

    fn finish(self) -> Vec<Outcome> {
        self.outcomes
    }
}

fn diagnosis_of(kind: &FindingKind) -> Option<&harness_diagnose::Diagnosis> {
    match kind {
        FindingKind::Unexpected { diagnosis, .. }
        | FindingKind::ExpectationNotMet { diagnosis, .. } => diagnosis.as_deref(),
        _ => None,
    }
}

fn log_of(kind: &FindingKind) -> Option<PathBuf> {
    match kind {
        FindingKind::Unexpected { log, .. } | FindingKind::ExpectationNotMet { log, .. } => {
            log.as_ref().map(|l| l.path.clone())
        }
        _ => None,
    }
}

fn snapshot_outcome(n: &SnapshotNote) -> Outcome {
    let mut o = Outcome::new(
        &n.lines.join(","),
        OutcomeKind::Snapshot,
        "snapshots",
        &n.name,
    );
    let text = n.to_string();
    match &n.change {
        SnapshotChange::New { written } | SnapshotChange::Changed { written, .. } => {
            if !matches!(written, Written::Accepted(_)) {
                o.status = OutcomeStatus::Failed;
                o.message = Some(first_line(&text));
                o.detail = Some(text);
            } else {
                o.notes.push(first_line(&text));
            }
            if let SnapshotChange::Changed { file, .. } = &n.change {
                o.file = Some(file.clone());
            }
        }
        SnapshotChange::Unreferenced { file, .. } => {
            o.file = Some(file.clone());
            o.notes.push(first_line(&text));
        }
    }
    o
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or_default().to_owned()
}
