//! What judging found, as data: who (kernel and subject), how bad
//! (severity), and what (kind). Every renderer (terminal, CSV/JSON, JUnit,
//! CI annotations) reads these; `Display` gives the canonical one-line text.

use std::{fmt, path::PathBuf};

use harness_cases::CaseFailure;
use harness_diagnose::Diagnosis;
use harness_protocol::CaseStep;
use harness_verifier::Mismatch;

use crate::gate::GateViolation;

/// One thing judging found.
#[derive(Clone, Debug, PartialEq)]
pub struct Finding {
    /// The target's label (`6.1`, `host`, an image's name).
    pub kernel: String,
    pub subject: Subject,
    pub severity: Severity,
    pub kind: FindingKind,
}

/// What a finding is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Subject {
    /// The kernel run as a whole.
    Kernel,
    Object {
        object: String,
        /// The C source, when the object was built from one.
        source: Option<PathBuf>,
    },
    Program {
        object: String,
        program: String,
    },
    Case {
        /// The case file, relative to the project.
        file: PathBuf,
        line: usize,
        name: String,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Worth knowing; never fails a run.
    Note,
    /// A case a kernel could not run, for a reason that is fine there.
    Skip,
    /// Fails the run.
    Failure,
}

/// What was found.
#[derive(Clone, Debug, PartialEq)]
pub enum FindingKind {
    /// The kernel did not finish the plan (VM panic, timeout, QEMU error).
    RunFailed { error: String },
    /// The in-VM runner itself reported an error.
    RunnerFailed { error: String },
    /// An object could not be prepared on this kernel at all.
    ObjectNotLoaded { error: String },
    /// Its source did not compile (clang's diagnostics), so it ran nowhere.
    ObjectNotCompiled { error: String },
    /// An object holds no programs.
    NoPrograms,
    /// A program was rejected or not loaded, and no expectation says so.
    Unexpected {
        verdict: VerdictText,
        log: Option<LogExcerpt>,
        /// Why the verifier said no, read from the log (boxed: findings
        /// are many, diagnoses few).
        diagnosis: Option<Box<Diagnosis>>,
    },
    /// An expectation about the program's verdict does not hold here.
    ExpectationNotMet {
        mismatch: Mismatch,
        log: Option<LogExcerpt>,
        diagnosis: Option<Box<Diagnosis>>,
    },
    /// The verifier-cost gate against a baseline.
    Gate(GateViolation),
    /// A program has no row in the baseline file.
    NotInBaseline,
    /// Expectations of a case that do not hold.
    CaseFailed { failures: Vec<CaseFailure> },
    /// The case could not run to the end.
    CaseError { step: CaseStep, error: String },
    /// The kernel reported nothing for the case.
    NoResult {
        /// The kernel stopped while this case was running.
        running: bool,
    },
    /// The kernel stopped before it got to the case.
    NotReached,
    /// The kernel stopped while loading this program.
    LoadNotFinished,
    /// The kernel reported a case the plan does not have.
    UnknownCase { id: String },
    /// Skipped although the kernel should have what it needs by its version.
    UnexpectedSkip {
        reason: String,
        version: harness_protocol::KernelVersion,
        features: Vec<FeatureShortfall>,
    },
    /// Skipped, and fine: a probe failed on a kernel older than the feature.
    Skipped { reason: String },
    /// Skipped because the program is rejected here, as expected.
    ProgramRejectedAsExpected {
        object: String,
        program: String,
        line: String,
    },
}

/// A feature a kernel should have by its version, but whose probe failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeatureShortfall {
    pub name: String,
    pub what: String,
    pub since: harness_protocol::KernelVersion,
}

/// A verdict as words: `rejected: Permission denied (errno 13)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerdictText(pub String);

impl fmt::Display for VerdictText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The end of a program's verifier log and where the whole one is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogExcerpt {
    /// The last lines, as the kernel wrote them.
    pub tail: Vec<String>,
    /// The full log on disk, relative to the project.
    pub path: PathBuf,
}

impl Finding {
    pub fn is_failure(&self) -> bool {
        self.severity == Severity::Failure
    }

    /// A program's verdict differs from what it should be: what `explain`
    /// takes as its input rather than as a failure of the run.
    pub fn is_program_verdict(&self) -> bool {
        matches!(
            self.kind,
            FindingKind::Unexpected { .. } | FindingKind::ExpectationNotMet { .. }
        )
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Kernel => Ok(()),
            Self::Object {
                source: Some(source),
                ..
            } => write!(f, "{}", source.display()),
            Self::Object { object, .. } => write!(f, "object `{object}`"),
            Self::Program { object, program } => write!(f, "{object}/{program}"),
            Self::Case { file, line, name } => write!(f, "{}:{line} `{name}`", file.display()),
        }
    }
}

impl fmt::Display for Finding {
    /// `<subject> on <kernel>: <what>`, or `<kernel>: <what>` for the kernel
    /// itself; details follow on indented lines. The alternate form (`{:#}`)
    /// styles a diagnosis in colour (ANSI codes, which a writer such as
    /// anstream drops where colour is off).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.subject {
            Subject::Kernel => write!(f, "{}:", self.kernel)?,
            // Notes about objects hold on every kernel.
            Subject::Object { .. } if self.kind == FindingKind::NoPrograms => {
                write!(f, "{}:", self.subject)?;
            }
            subject => write!(f, "{subject} on {}:", self.kernel)?,
        }
        // Failures listed on lines of their own start with a line break.
        let kind = if f.alternate() {
            format!("{:#}", self.kind)
        } else {
            self.kind.to_string()
        };
        if !kind.starts_with('\n') {
            f.write_str(" ")?;
        }
        f.write_str(&kind)
    }
}

impl fmt::Display for FindingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::RunFailed { error } => f.write_str(error),
            Self::RunnerFailed { error } => write!(f, "the runner failed: {error}"),
            Self::ObjectNotLoaded { error } => write!(f, "could not be loaded: {error}"),
            Self::ObjectNotCompiled { error } => write!(f, "did not compile: {error}"),
            Self::NoPrograms => f.write_str("the object has no programs"),
            Self::Unexpected {
                verdict,
                log,
                diagnosis,
            } => {
                if verdict.0.starts_with("rejected") {
                    write!(f, "the verifier rejected it ({verdict})")?;
                } else {
                    write!(f, "{verdict}")?;
                }
                write_log(f, log.as_ref(), diagnosis.as_deref(), f.alternate())
            }
            Self::ExpectationNotMet {
                mismatch,
                log,
                diagnosis,
            } => {
                write!(f, "{mismatch}")?;
                write_log(f, log.as_ref(), diagnosis.as_deref(), f.alternate())
            }
            Self::Gate(v) => write!(f, "{v}"),
            Self::NotInBaseline => f.write_str("not in the baseline file, nothing to compare"),
            Self::CaseFailed { failures } => {
                for failure in failures {
                    write!(f, "\n      {failure}")?;
                }
                Ok(())
            }
            Self::CaseError { error, .. } => f.write_str(error),
            Self::NoResult { running: true } => {
                f.write_str("not finished: the kernel stopped while it ran")
            }
            Self::NoResult { running: false } => f.write_str("produced no result"),
            Self::NotReached => f.write_str("not run: the kernel stopped before it"),
            Self::LoadNotFinished => {
                f.write_str("not finished: the kernel stopped while loading it")
            }
            Self::UnknownCase { id } => write!(f, "the kernel reported an unknown case `{id}`"),
            Self::UnexpectedSkip {
                reason,
                version,
                features,
            } => {
                let list: Vec<String> = features
                    .iter()
                    .map(|s| format!("{} ({}, since {})", s.name, s.what, s.since))
                    .collect();
                write!(
                    f,
                    "skipped, but kernel {version} should support {}: {reason}",
                    list.join(", ")
                )
            }
            Self::Skipped { reason } => write!(f, "skipped: {reason}"),
            Self::ProgramRejectedAsExpected {
                object,
                program,
                line,
            } => write!(
                f,
                "skipped: {object}/{program} is rejected on {line}, as expected"
            ),
        }
    }
}

/// The diagnosis where there is one (it names the message, the C line and
/// the fix), else the end of the log; then where the whole log is.
fn write_log(
    f: &mut fmt::Formatter<'_>,
    log: Option<&LogExcerpt>,
    diagnosis: Option<&Diagnosis>,
    styled: bool,
) -> fmt::Result {
    let Some(log) = log else { return Ok(()) };
    match diagnosis {
        Some(d) => {
            let text = if styled {
                d.styled().to_string()
            } else {
                d.to_string()
            };
            for line in text.lines() {
                write!(f, "\n      {line}")?;
            }
        }
        None => {
            f.write_str("; last lines of its log:")?;
            for line in &log.tail {
                write!(f, "\n      {line}")?;
            }
        }
    }
    write!(f, "\n    full log: {}", log.path.display())
}
