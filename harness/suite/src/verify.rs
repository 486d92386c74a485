//! `cargo xtask verify`: every program of every object loaded on its own on
//! each kernel, as a programs × kernels matrix of verdicts and verifier
//! cost, compared with a baseline (the committed snapshots, or a previous
//! run's CSV/JSON) and gated on regressions.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt::Write as _,
    path::{Path, PathBuf},
    sync::{Arc, atomic::AtomicBool},
};

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use harness_protocol::{ProgramReport, Record, Verdict};
use harness_snapshots::{SnapshotStore, UpdateMode};
use harness_verifier::VerifierStats;
use serde::{Deserialize, Serialize};

use crate::{
    Project, RunOptions, SuiteError,
    programs::{self, SnapshotStats},
    resolve_targets, run_targets,
};

/// When a difference from the baseline fails the run.
#[derive(Clone, Debug)]
pub struct Gate {
    /// Percent more instructions processed than the baseline that fails.
    pub max_insns_increase_pct: f64,
    /// Percent more total states that fails; `None`: not gated.
    pub max_states_increase_pct: Option<f64>,
    /// Whether a verdict that differs from the baseline is allowed.
    pub allow_verdict_change: bool,
}

impl Default for Gate {
    fn default() -> Self {
        Self {
            max_insns_increase_pct: 10.0,
            max_states_increase_pct: None,
            allow_verdict_change: false,
        }
    }
}

#[derive(Clone, Debug)]
pub struct VerifyOptions {
    pub kernels: Vec<harness_kernels::KernelRequest>,
    pub accel: harness_vm::AccelChoice,
    pub mirror: Option<String>,
    pub log_level: u32,
    pub run: RunOptions,
    pub snapshots: UpdateMode,
    /// A CSV or JSON file from an earlier `verify --format`; `None`: the
    /// committed snapshots are the baseline.
    pub baseline: Option<PathBuf>,
    pub gate: Gate,
}

/// One program on one kernel, flat for CSV and JSON.
/// Columns missing from an older baseline file read as empty.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Row {
    pub object: String,
    pub program: String,
    pub kernel: String,
    pub line: String,
    pub prog_type: String,
    pub section: String,
    /// `accepted`, `rejected` or `not loaded`.
    pub verdict: String,
    /// The errno message of a rejection, the reason a program was not loaded.
    pub reason: String,
    pub insns: Option<u64>,
    pub total_states: Option<u64>,
    pub peak_states: Option<u64>,
    pub max_states_per_insn: Option<u64>,
    pub mark_read: Option<u64>,
    /// Total stack depth, as veristat reports it.
    pub stack_depth: Option<u64>,
    /// Stack depth of each subprogram, main first ("40+0").
    pub subprog_stack: String,
    pub duration_us: Option<u64>,
    /// Instructions handed to the kernel (veristat's prog_size).
    pub prog_size: u32,
    pub xlated_bytes: Option<u32>,
    pub jited_bytes: Option<u32>,
    /// What an expectation says about this outcome: empty when none applies.
    pub expectation: String,
    pub baseline_verdict: Option<String>,
    pub baseline_insns: Option<u64>,
    pub insns_diff_pct: Option<f64>,
    pub baseline_total_states: Option<u64>,
}

fn verdict_word(v: &Verdict) -> (&'static str, String) {
    match v {
        Verdict::Accepted => ("accepted", String::new()),
        Verdict::Rejected { errno, message } => ("rejected", format!("{message} (errno {errno})")),
        Verdict::NotLoaded { reason } => ("not loaded", reason.clone()),
    }
}

fn row(p: &ProgramReport, kernel: &str, line: &str, expectation: String) -> Row {
    let stats = VerifierStats::parse(&p.log);
    let (verdict, reason) = verdict_word(&p.verdict);
    Row {
        object: p.object.clone(),
        program: p.program.clone(),
        kernel: kernel.to_owned(),
        line: line.to_owned(),
        prog_type: p.prog_type.clone(),
        section: p.section.clone(),
        verdict: verdict.to_owned(),
        reason,
        insns: stats.as_ref().map(|s| s.insns),
        total_states: stats.as_ref().map(|s| s.total_states),
        peak_states: stats.as_ref().map(|s| s.peak_states),
        max_states_per_insn: stats.as_ref().map(|s| s.max_states_per_insn),
        mark_read: stats.as_ref().map(|s| s.mark_read),
        stack_depth: stats.as_ref().map(VerifierStats::stack),
        subprog_stack: stats.as_ref().map_or_else(String::new, |s| {
            s.stack_depth
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join("+")
        }),
        duration_us: stats.as_ref().and_then(|s| s.duration_us),
        prog_size: p.insn_cnt,
        xlated_bytes: p.info.as_ref().map(|i| i.xlated_len),
        jited_bytes: p.info.as_ref().map(|i| i.jited_len),
        expectation,
        ..Row::default()
    }
}

/// What `verify` found.
#[derive(Clone, Debug, Default)]
pub struct VerifyReport {
    pub rows: Vec<Row>,
    /// Kernel labels, in the order asked for.
    pub kernels: Vec<String>,
    /// Objects without programs, and kernels that produced no results.
    pub notes: Vec<String>,
    /// Gate violations and unmet expectations: any fails the run.
    pub failures: Vec<String>,
    pub snapshot_notes: Vec<String>,
    pub pending_snapshots: usize,
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.failures.is_empty()
    }

    /// Programs down, kernels across: verdict and instructions processed,
    /// with the change from the baseline where there is one.
    pub fn matrix(&self) -> String {
        let mut t = Table::new();
        t.load_style(UTF8_FULL_CONDENSED);
        let mut header = vec!["program".to_owned(), "type".to_owned()];
        header.extend(self.kernels.iter().cloned());
        header.push("spread".into());
        t.set_header(header);
        let programs: BTreeSet<(&str, &str)> = self
            .rows
            .iter()
            .map(|r| (r.object.as_str(), r.program.as_str()))
            .collect();
        for (object, program) in programs {
            let rows: Vec<&Row> = self
                .rows
                .iter()
                .filter(|r| r.object == object && r.program == program)
                .collect();
            let mut line = vec![
                format!("{object}/{program}"),
                rows.first()
                    .map_or_else(String::new, |r| r.prog_type.clone()),
            ];
            for k in &self.kernels {
                line.push(match rows.iter().find(|r| &r.kernel == k) {
                    None => "-".into(),
                    Some(r) => cell(r),
                });
            }
            let insns: Vec<u64> = rows
                .iter()
                .filter(|r| r.verdict == "accepted")
                .filter_map(|r| r.insns)
                .collect();
            line.push(match (insns.iter().min(), insns.iter().max()) {
                (Some(&lo), Some(&hi)) if lo > 0 && hi != lo => {
                    format!("{:.2}x", hi as f64 / lo as f64)
                }
                (Some(_), Some(_)) => "same".into(),
                _ => "-".into(),
            });
            t.add_row(line);
        }
        t.to_string()
    }

    pub fn csv(&self) -> Result<String, SuiteError> {
        let mut w = csv::Writer::from_writer(Vec::new());
        for r in &self.rows {
            w.serialize(r).map_err(|e| SuiteError::Io {
                what: "writing CSV".into(),
                error: std::io::Error::other(e),
            })?;
        }
        let bytes = w.into_inner().map_err(|e| SuiteError::Io {
            what: "writing CSV".into(),
            error: std::io::Error::other(e.to_string()),
        })?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    pub fn json(&self) -> String {
        serde_json::to_string_pretty(&self.rows).expect("rows serialise")
    }

    pub fn render(&self) -> String {
        let mut s = String::new();
        crate::report::render_problems(
            &mut s,
            &self.notes,
            &self.failures,
            &self.snapshot_notes,
            self.pending_snapshots,
            "(differences alone do not fail `verify`; the gate does)",
        );
        let _ = writeln!(s, "{}", self.matrix());
        let programs: BTreeSet<(&str, &str)> = self
            .rows
            .iter()
            .map(|r| (r.object.as_str(), r.program.as_str()))
            .collect();
        let _ = writeln!(
            s,
            "verify result: {}. {} programs on {} kernel{}, {} problem{}",
            if self.ok() { "ok" } else { "FAILED" },
            programs.len(),
            self.kernels.len(),
            if self.kernels.len() == 1 { "" } else { "s" },
            self.failures.len(),
            if self.failures.len() == 1 { "" } else { "s" }
        );
        s
    }
}

fn cell(r: &Row) -> String {
    let mut c = match r.verdict.as_str() {
        "accepted" => format!(
            "✓ {}",
            r.insns.map_or_else(|| "?".into(), |n| n.to_string())
        ),
        "rejected" if r.expectation == "as expected" => "✗ rejected (expected)".into(),
        "rejected" => format!(
            "✗ {}",
            r.reason.split(" (errno").next().unwrap_or("rejected")
        ),
        _ => "· not loaded".into(),
    };
    if let Some(pct) = r.insns_diff_pct
        && pct.abs() >= 0.05
    {
        let _ = write!(c, " ({pct:+.1}%)");
    }
    if let Some(b) = &r.baseline_verdict
        && b != &r.verdict
    {
        let _ = write!(c, " (was {b})");
    }
    c
}

/// Baseline rows by (object, program, kernel line).
type Baseline = BTreeMap<(String, String, String), Row>;

fn load_baseline(path: &Path) -> Result<Baseline, SuiteError> {
    let text = std::fs::read_to_string(path).map_err(crate::error::io_err(format!(
        "reading the baseline {}",
        path.display()
    )))?;
    let bad = |e: String| SuiteError::Io {
        what: format!("reading the baseline {}", path.display()),
        error: std::io::Error::other(e),
    };
    let rows: Vec<Row> = if text.trim_start().starts_with('[') {
        serde_json::from_str(&text)
            .map_err(|e| bad(format!("not the JSON `verify --format json` writes: {e}")))?
    } else {
        csv::Reader::from_reader(text.as_bytes())
            .deserialize()
            .collect::<Result<_, _>>()
            .map_err(|e| bad(format!("not the CSV `verify --format csv` writes: {e}")))?
    };
    if rows.is_empty() {
        return Err(bad(
            "it holds no rows: write one with `cargo xtask verify --output FILE.csv`".into(),
        ));
    }
    Ok(rows
        .into_iter()
        .map(|r| ((r.object.clone(), r.program.clone(), r.line.clone()), r))
        .collect())
}

pub fn verify(
    project: &Project,
    opts: &VerifyOptions,
    interrupt: Arc<AtomicBool>,
) -> Result<VerifyReport, SuiteError> {
    // Verification loads programs only: the plan carries no cases.
    let prepared = crate::prepare::prepare_with(project, opts.log_level, false)?;
    let file_baseline = opts.baseline.as_deref().map(load_baseline).transpose()?;
    let targets = resolve_targets(project, &opts.kernels, opts.mirror.as_deref())?;
    let runs = run_targets(
        project, &prepared, &targets, None, opts.accel, &opts.run, interrupt,
    )?;

    let store = SnapshotStore::new(project.snapshots_dir.clone(), opts.snapshots);
    let mut report = VerifyReport {
        kernels: targets.iter().map(|t| t.label().to_owned()).collect(),
        ..VerifyReport::default()
    };
    for o in prepared
        .objects
        .iter()
        .filter(|o| o.info.file.programs().is_empty())
    {
        report.notes.push(format!(
            "{}: the object has no programs",
            project.relative(&o.source)
        ));
    }
    let mut observations = Vec::new();
    for run in &runs {
        let label = run.target.label();
        let line = run.target.line();
        let records = match &run.result {
            Ok(r) => r,
            Err(e) => {
                report.failures.push(format!("{label}: {e}"));
                continue;
            }
        };
        for r in records {
            match r {
                Record::ObjectError { object, error } => report.failures.push(format!(
                    "{label}: object `{object}` could not be loaded: {error}"
                )),
                Record::Program(p) => {
                    let judgement = programs::judge(&prepared, p, line);
                    let has_expectation = !prepared
                        .expectations_for(&p.object, &p.program, line)
                        .is_empty();
                    let expectation = match (&judgement.problem, has_expectation) {
                        (Some(problem), true) => problem.clone(),
                        (None, true) => "as expected".into(),
                        _ => String::new(),
                    };
                    if has_expectation && let Some(problem) = &judgement.problem {
                        report
                            .failures
                            .push(format!("{}/{} on {label}: {problem}", p.object, p.program));
                    }
                    let observation = programs::observation(project, &prepared, p, line);
                    let mut row = row(p, label, line, expectation);
                    let baseline = match &file_baseline {
                        Some(b) => b
                            .get(&(p.object.clone(), p.program.clone(), line.to_owned()))
                            .map(|b| SnapshotStats {
                                verdict: b.verdict.clone(),
                                insns: b.insns,
                                total_states: b.total_states,
                                peak_states: b.peak_states,
                            }),
                        None => store
                            .expected(&observation.name, line)
                            .map(|text| SnapshotStats::parse(&text)),
                    };
                    match baseline {
                        Some(b) => apply_baseline(&mut row, &b, &opts.gate, &mut report.failures),
                        // A missing snapshot is reported as new below.
                        None if file_baseline.is_some() => report.notes.push(format!(
                            "{}/{} on {label}: not in the baseline file, nothing to compare",
                            p.object, p.program
                        )),
                        None => {}
                    }
                    report.rows.push(row);
                    observations.push(observation);
                }
                _ => {}
            }
        }
    }

    let outcomes = store
        .check(&observations)
        .map_err(crate::error::io_err("writing verifier snapshots"))?;
    (report.snapshot_notes, report.pending_snapshots) =
        crate::report::snapshot_notes(project, &observations, &outcomes);
    report.rows.sort_by(|a, b| {
        (&a.object, &a.program, &a.kernel).cmp(&(&b.object, &b.program, &b.kernel))
    });
    Ok(report)
}

/// Fills the baseline columns and applies the gate.
fn apply_baseline(row: &mut Row, b: &SnapshotStats, gate: &Gate, failures: &mut Vec<String>) {
    let who = format!("{}/{} on {}", row.object, row.program, row.kernel);
    let base_verdict = b
        .verdict
        .split(':')
        .next()
        .unwrap_or_default()
        .trim()
        .to_owned();
    if !base_verdict.is_empty() {
        if base_verdict != row.verdict && !gate.allow_verdict_change {
            failures.push(format!(
                "{who}: verdict changed from {base_verdict} to {}{}",
                row.verdict,
                if row.reason.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", row.reason)
                }
            ));
        }
        row.baseline_verdict = Some(base_verdict);
    }
    row.baseline_insns = b.insns;
    row.baseline_total_states = b.total_states;
    if let (Some(now), Some(before)) = (row.insns, b.insns)
        && before > 0
    {
        let pct = (now as f64 - before as f64) * 100.0 / before as f64;
        row.insns_diff_pct = Some(pct);
        if pct > gate.max_insns_increase_pct {
            failures.push(format!(
                "{who}: instructions processed {before} -> {now} ({pct:+.1}%, limit +{}%)",
                gate.max_insns_increase_pct
            ));
        }
    }
    if let (Some(limit), Some(now), Some(before)) = (
        gate.max_states_increase_pct,
        row.total_states,
        b.total_states,
    ) && before > 0
    {
        let pct = (now as f64 - before as f64) * 100.0 / before as f64;
        if pct > limit {
            failures.push(format!(
                "{who}: total states {before} -> {now} ({pct:+.1}%, limit +{limit}%)"
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accepted(insns: u64, states: u64) -> Row {
        Row {
            object: "o".into(),
            program: "p".into(),
            kernel: "6.1".into(),
            line: "6.1".into(),
            verdict: "accepted".into(),
            insns: Some(insns),
            total_states: Some(states),
            ..Row::default()
        }
    }

    fn base(verdict: &str, insns: u64, states: u64) -> SnapshotStats {
        SnapshotStats {
            verdict: verdict.into(),
            insns: Some(insns),
            total_states: Some(states),
            peak_states: None,
        }
    }

    #[test]
    fn the_gate_names_program_kernel_and_amount() {
        let gate = Gate {
            max_insns_increase_pct: 10.0,
            max_states_increase_pct: Some(20.0),
            allow_verdict_change: false,
        };
        let mut failures = Vec::new();
        let mut row = accepted(1120, 100);
        apply_baseline(&mut row, &base("accepted", 1000, 100), &gate, &mut failures);
        assert_eq!(
            failures,
            ["o/p on 6.1: instructions processed 1000 -> 1120 (+12.0%, limit +10%)"]
        );
        assert_eq!(row.insns_diff_pct, Some(12.0));

        failures.clear();
        apply_baseline(
            &mut accepted(1100, 130),
            &base("accepted", 1000, 100),
            &gate,
            &mut failures,
        );
        assert_eq!(
            failures,
            ["o/p on 6.1: total states 100 -> 130 (+30.0%, limit +20%)"],
            "+10.0% is within the limit"
        );

        failures.clear();
        let mut rejected = Row {
            verdict: "rejected".into(),
            reason: "Permission denied (errno 13)".into(),
            insns: None,
            ..accepted(0, 0)
        };
        apply_baseline(
            &mut rejected,
            &base("accepted: ok", 1000, 100),
            &gate,
            &mut failures,
        );
        assert_eq!(
            failures,
            [
                "o/p on 6.1: verdict changed from accepted to rejected (Permission denied (errno 13))"
            ]
        );

        failures.clear();
        apply_baseline(
            &mut accepted(500, 50),
            &base("accepted", 1000, 100),
            &gate,
            &mut failures,
        );
        assert!(failures.is_empty(), "improvements pass");
    }

    #[test]
    fn csv_and_json_round_trip_as_a_baseline() {
        let report = VerifyReport {
            rows: vec![accepted(42, 3)],
            kernels: vec!["6.1".into()],
            ..VerifyReport::default()
        };
        let dir = std::env::temp_dir().join(format!("verify-baseline-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for (name, text) in [("b.csv", report.csv().unwrap()), ("b.json", report.json())] {
            let path = dir.join(name);
            std::fs::write(&path, text).unwrap();
            let b = load_baseline(&path).unwrap();
            assert_eq!(
                b[&("o".into(), "p".into(), "6.1".into())].insns,
                Some(42),
                "{name}"
            );
        }
        std::fs::write(dir.join("bad.csv"), "what,ever\n1\n").unwrap();
        assert!(
            load_baseline(&dir.join("bad.csv"))
                .unwrap_err()
                .to_string()
                .contains("not the CSV")
        );
        // A header without rows would compare nothing and pass.
        let header = report.csv().unwrap().lines().next().unwrap().to_owned();
        std::fs::write(dir.join("empty.csv"), header).unwrap();
        let err = load_baseline(&dir.join("empty.csv"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("empty.csv") && err.contains("holds no rows"),
            "{err}"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
