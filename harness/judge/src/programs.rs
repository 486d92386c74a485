//! One program on one kernel: judged against its expectations, and written
//! as a snapshot whose header is a small TOML document of the verdict and
//! statistics (so a committed snapshot is also the baseline `verify`
//! compares with, read back as data).

use std::path::Path;

use harness_project::{Prepared, Project};
use harness_protocol::{KernelVersion, ProgramReport, Verdict};
use harness_snapshots::Observation;
use harness_verifier::{Mismatch, Outcome, VerifierStats, normalize_verifier_log};
use serde::{Deserialize, Serialize};

use crate::{
    finding::{FindingKind, LogExcerpt, VerdictText},
    gate::BaselineEntry,
    rows::VerdictKind,
};

/// Lines of a log shown under a failure.
const LOG_TAIL_LINES: usize = 15;

/// How a program's load went, measured against what was expected.
#[derive(Clone, Debug, PartialEq)]
pub struct Judgement {
    /// Some expectation applies to this program on this kernel.
    pub expected: bool,
    /// Rejected (or not loaded) here as an expectation says: its cases
    /// cannot run.
    pub expected_failure: bool,
    /// Why the outcome is not what it should be, when it is not.
    pub problem: Option<FindingKind>,
}

impl Judgement {
    pub fn ok(&self) -> bool {
        self.problem.is_none()
    }
}

pub fn verdict_text(v: &Verdict) -> VerdictText {
    VerdictText(match v {
        Verdict::Accepted => "accepted".into(),
        Verdict::Rejected { errno, message } => format!("rejected: {message} (errno {errno})"),
        Verdict::NotLoaded { reason } => format!("not loaded: {reason}"),
    })
}

fn outcome(p: &ProgramReport) -> Outcome<'_> {
    match &p.verdict {
        Verdict::Accepted => Outcome::Accepted { log: &p.log },
        Verdict::Rejected { .. } => Outcome::Rejected { log: &p.log },
        Verdict::NotLoaded { reason } => Outcome::NotLoaded { reason },
    }
}

/// Judges `p` on a kernel of `version`. Without an expectation a program
/// must be accepted; with some, each must hold. `diagnosis` is `p`'s own
/// (see [`diagnosis`]), made once by the caller, who may need it too.
pub fn judge(
    prepared: &Prepared,
    p: &ProgramReport,
    version: Option<KernelVersion>,
    log_path: &Path,
    diagnosis: Option<&harness_diagnose::Diagnosis>,
) -> Judgement {
    let diagnosis = || diagnosis.cloned().map(Box::new);
    let expectations = prepared.expectations_for(&p.object, &p.program, version);
    let outcome = outcome(p);
    let log = || excerpt(&p.log, log_path);
    if expectations.is_empty() {
        return Judgement {
            expected: false,
            expected_failure: false,
            problem: (!p.verdict.is_accepted()).then(|| FindingKind::Unexpected {
                verdict: verdict_text(&p.verdict),
                log: log(),
                diagnosis: diagnosis(),
            }),
        };
    }
    let mismatches: Vec<Mismatch> = expectations
        .iter()
        .filter_map(|e| e.check(outcome).err())
        .collect();
    Judgement {
        expected: true,
        expected_failure: mismatches.is_empty() && !p.verdict.is_accepted(),
        problem: mismatches
            .into_iter()
            .next()
            .map(|mismatch| FindingKind::ExpectationNotMet {
                mismatch,
                log: log(),
                diagnosis: diagnosis(),
            }),
    }
}

/// Why the verifier rejected `p`, read from its log with the object's line
/// info and C source at hand (older kernels name the source line only by
/// its text).
pub(crate) fn diagnosis(
    prepared: &Prepared,
    p: &ProgramReport,
) -> Option<Box<harness_diagnose::Diagnosis>> {
    if !matches!(p.verdict, Verdict::Rejected { .. }) {
        return None;
    }
    let object = prepared.object(&p.object);
    let source = object.and_then(|o| o.source.as_ref());
    let text = source.and_then(|s| std::fs::read_to_string(s).ok());
    let name = source
        .and_then(|s| s.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (lines, main_insns) = object
        .map(|o| line_records(&o.info, &p.program))
        .unwrap_or_default();
    let mut evidence = harness_diagnose::Evidence::default()
        .with_lines(&lines)
        .with_truncated_log(p.log_truncated);
    if let Some(n) = main_insns {
        evidence = evidence.with_main_insns(n);
    }
    if let Some(text) = &text {
        evidence = evidence.with_source(&name, text);
    }
    harness_diagnose::diagnose_with(&p.log, &evidence).map(Box::new)
}

/// The object's line info as a diagnosis takes it: every record, those of
/// `program`'s own function numbered as the verifier numbers its
/// instructions; and how many instructions that function has. Broken line
/// info only costs the columns and the numbering: the log has its notes.
pub fn line_records(
    info: &harness_cases::ObjectInfo,
    program: &str,
) -> (Vec<harness_diagnose::LineRecord>, Option<usize>) {
    let spec = info.file.programs().iter().find(|p| p.name == program);
    let code = spec.and_then(|p| p.code.map(|c| (p.section.as_str(), c)));
    let records = info
        .line_info()
        .unwrap_or_default()
        .into_iter()
        .map(|l| {
            let insn = code.and_then(|(section, c)| {
                let off = u64::from(l.insn_off);
                (l.section == section && off >= c.offset && off < c.offset + c.size)
                    .then(|| usize::try_from((off - c.offset) / 8).ok())
                    .flatten()
            });
            harness_diagnose::LineRecord {
                insn,
                file: l.file,
                line: l.line,
                column: l.column,
                text: l.text,
            }
        })
        .collect();
    let main_insns = code.and_then(|(_, c)| usize::try_from(c.size / 8).ok());
    (records, main_insns)
}

fn excerpt(log: &str, path: &Path) -> Option<LogExcerpt> {
    if log.trim().is_empty() {
        return None;
    }
    let lines: Vec<&str> = log.lines().collect();
    Some(LogExcerpt {
        tail: lines[lines.len().saturating_sub(LOG_TAIL_LINES)..]
            .iter()
            .map(|l| (*l).to_owned())
            .collect(),
        path: path.to_owned(),
    })
}

/// The header of a verifier snapshot: what the kernel decided and what it
/// cost, as data.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotHeader {
    pub program: String,
    pub prog_type: String,
    pub section: String,
    pub verdict: VerdictKind,
    /// The errno of a rejection.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errno: Option<i32>,
    /// The errno's message, or why the program was not loaded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub insns_processed: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_states: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peak_states: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_states_per_insn: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mark_read: Option<u64>,
    /// Per subprogram, main first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stack_depth: Option<Vec<u64>>,
    /// Instructions handed to the kernel.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prog_size: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub xlated_bytes: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jited_bytes: Option<u32>,
    /// How the log below was captured and made stable.
    pub log: String,
}

impl SnapshotHeader {
    pub fn of(p: &ProgramReport) -> Self {
        let stats = VerifierStats::parse(&p.log);
        let (errno, reason) = match &p.verdict {
            Verdict::Accepted => (None, None),
            Verdict::Rejected { errno, message } => (Some(*errno), Some(message.clone())),
            Verdict::NotLoaded { reason } => (None, Some(reason.clone())),
        };
        let level = if p.log_level & 3 == 2 { 2 } else { 1 };
        Self {
            program: format!("{}/{}", p.object, p.program),
            prog_type: p.prog_type.clone(),
            section: p.section.clone(),
            verdict: VerdictKind::of(&p.verdict),
            errno,
            reason,
            insns_processed: stats.as_ref().map(|s| s.insns),
            total_states: stats.as_ref().map(|s| s.total_states),
            peak_states: stats.as_ref().map(|s| s.peak_states),
            max_states_per_insn: stats.as_ref().map(|s| s.max_states_per_insn),
            mark_read: stats.as_ref().map(|s| s.mark_read),
            stack_depth: stats.map(|s| s.stack_depth),
            prog_size: (p.insn_cnt > 0).then_some(p.insn_cnt),
            xlated_bytes: p.info.as_ref().map(|i| i.xlated_len),
            jited_bytes: p.info.as_ref().map(|i| i.jited_len),
            log: match SnapshotLog::of(&p.log).omitted {
                0 => {
                    format!("level {level} with stats; timings, kernel addresses and ids replaced")
                }
                omitted => format!(
                    "level {level} with stats; timings, kernel addresses and ids replaced; \
                     its last {SNAPSHOT_LOG_LINES} lines, {omitted} before them left out"
                ),
            },
        }
    }

    /// The header of a snapshot's content (everything before the first
    /// empty line); `None` when it is not one of ours.
    pub fn read(content: &str) -> Option<Self> {
        let header = content.split("\n\n").next()?;
        toml::from_str(header).ok()
    }

    pub fn baseline(&self) -> BaselineEntry {
        BaselineEntry {
            verdict: Some(self.verdict),
            insns: self.insns_processed,
            total_states: self.total_states,
            peak_states: self.peak_states,
        }
    }
}

/// The most log lines a snapshot keeps. A rejection deep into a long walk
/// can log megabytes at level 1; the lines that decide it (the error, the
/// state before it, the statistics) are at the end, and the whole log stays
/// on disk beside the results.
pub const SNAPSHOT_LOG_LINES: usize = 400;

/// A normalised log cut to its last [`SNAPSHOT_LOG_LINES`] lines.
struct SnapshotLog {
    text: String,
    /// Lines left out before the ones kept.
    omitted: usize,
}

impl SnapshotLog {
    fn of(log: &str) -> Self {
        let text = normalize_verifier_log(log);
        let lines = text.lines().count();
        if lines <= SNAPSHOT_LOG_LINES {
            return Self { text, omitted: 0 };
        }
        let omitted = lines - SNAPSHOT_LOG_LINES;
        let start = text
            .match_indices('\n')
            .nth(omitted - 1)
            .map_or(0, |(i, _)| i + 1);
        Self {
            text: format!("[{omitted} earlier lines left out]\n{}", &text[start..]),
            omitted,
        }
    }
}

/// What the names of program snapshots start with.
pub(crate) const SNAPSHOT_KIND: &str = "verifier__";

/// The snapshot name of a program.
pub fn snapshot_name(object: &str, program: &str) -> String {
    format!("{SNAPSHOT_KIND}{object}__{program}")
}

/// The verifier snapshot of one program on one kernel line: the header,
/// then the normalised log.
pub fn observation(
    project: &Project,
    prepared: &Prepared,
    p: &ProgramReport,
    line: &str,
) -> Observation {
    let source = prepared
        .object(&p.object)
        .map_or_else(String::new, |o| o.shown(project));
    let header = toml::to_string(&SnapshotHeader::of(p)).expect("headers serialise");
    Observation {
        name: snapshot_name(&p.object, &p.program),
        line: line.to_owned(),
        content: format!("{header}\n{}", SnapshotLog::of(&p.log).text),
        source,
        expression: format!(
            "verifier verdict, statistics and log of {}/{}",
            p.object, p.program
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use harness_protocol::ProgInfo;

    fn report(verdict: Verdict, log: &str) -> ProgramReport {
        ProgramReport {
            object: "tc_lb".into(),
            program: "tc_lb".into(),
            section: "classifier".into(),
            prog_type: "sched_cls".into(),
            verdict,
            log: log.into(),
            log_level: 5,
            log_truncated: false,
            info: Some(ProgInfo {
                xlated_len: 1912,
                jited_len: 1060,
                ..ProgInfo::default()
            }),
            load_ns: 0,
            insn_cnt: 189,
        }
    }

    #[test]
    fn snapshot_headers_read_back_as_the_baseline() {
        let log = "stack depth 72\nprocessed 307 insns (limit 1000000) max_states_per_insn 1 total_states 24 peak_states 24 mark_read 10\n";
        let header = SnapshotHeader::of(&report(Verdict::Accepted, log));
        let text = toml::to_string(&header).unwrap();
        assert!(
            text.starts_with("program = \"tc_lb/tc_lb\"\nprog_type = \"sched_cls\"\n")
                && text.contains("verdict = \"accepted\"\ninsns_processed = 307\n")
                && text.contains("stack_depth = [72]\n")
                && !text.contains("errno"),
            "{text}"
        );
        let content = format!("{text}\n{log}");
        let back = SnapshotHeader::read(&content).unwrap();
        assert_eq!(back, header);
        assert_eq!(
            back.baseline(),
            BaselineEntry {
                verdict: Some(VerdictKind::Accepted),
                insns: Some(307),
                total_states: Some(24),
                peak_states: Some(24),
            }
        );

        let rejected = SnapshotHeader::of(&report(
            Verdict::Rejected {
                errno: 13,
                message: "Permission denied".into(),
            },
            "R1 invalid mem access 'scalar'\n",
        ));
        let text = toml::to_string(&rejected).unwrap();
        assert!(
            text.contains("verdict = \"rejected\"\nerrno = 13\nreason = \"Permission denied\"\n")
                && !text.contains("insns_processed"),
            "{text}"
        );
        assert_eq!(
            SnapshotHeader::read(&text).unwrap().verdict,
            VerdictKind::Rejected
        );
        assert_eq!(
            SnapshotHeader::read("program: a/b (xdp)\nverdict: accepted\n"),
            None
        );
    }

    #[test]
    fn snapshot_headers_say_how_the_log_was_captured() {
        let header = |log_level: u32, insn_cnt: u32| {
            SnapshotHeader::of(&ProgramReport {
                log_level,
                insn_cnt,
                ..report(Verdict::Accepted, "")
            })
        };
        // Level 1 or 2, with or without the statistics flag (4).
        for (level, shown) in [(1, 1), (2, 2), (5, 1), (6, 2)] {
            assert_eq!(
                header(level, 1).log,
                format!("level {shown} with stats; timings, kernel addresses and ids replaced")
            );
        }
        assert_eq!(header(1, 1).prog_size, Some(1));
        // A program never handed to a kernel has no size.
        assert_eq!(header(1, 0).prog_size, None);
        let not_loaded = SnapshotHeader::of(&report(
            Verdict::NotLoaded {
                reason: "no BTF".into(),
            },
            "",
        ));
        assert_eq!(
            (not_loaded.verdict, not_loaded.errno, not_loaded.reason),
            (VerdictKind::NotLoaded, None, Some("no BTF".into()))
        );
        assert_eq!(snapshot_name("fw", "xdp_fw"), "verifier__fw__xdp_fw");
    }

    #[test]
    fn a_long_log_keeps_its_last_lines_and_says_how_many_it_left_out() {
        let numbered = |n: usize| (0..n).map(|i| format!("{i}: r0 = 0\n")).collect::<String>();
        let short = numbered(SNAPSHOT_LOG_LINES);
        let kept = SnapshotLog::of(&short);
        assert_eq!((kept.text.as_str(), kept.omitted), (short.as_str(), 0));
        let header = SnapshotHeader::of(&report(Verdict::Accepted, &short));
        assert!(!header.log.contains("left out"), "{}", header.log);

        let long = format!("{}R1 invalid mem access 'scalar'\n", numbered(1000));
        let cut = SnapshotLog::of(&long);
        assert_eq!(cut.omitted, 1001 - SNAPSHOT_LOG_LINES);
        let lines: Vec<&str> = cut.text.lines().collect();
        assert_eq!(lines.len(), SNAPSHOT_LOG_LINES + 1);
        assert_eq!(lines[0], "[601 earlier lines left out]");
        assert_eq!(lines[1], "601: r0 = 0");
        assert_eq!(lines.last(), Some(&"R1 invalid mem access 'scalar'"));
        let header = SnapshotHeader::of(&report(Verdict::Accepted, &long));
        assert!(
            header
                .log
                .ends_with("its last 400 lines, 601 before them left out"),
            "{}",
            header.log
        );
    }
}
