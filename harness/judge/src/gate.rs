//! Verifier cost against a baseline (the committed snapshots, or an earlier
//! run's rows), and the gate that fails a run on regressions.

use std::{collections::BTreeMap, fmt, path::Path};

use serde::Deserialize;

use crate::rows::{Row, VerdictKind};

/// When a difference from the baseline fails the run.
#[derive(Clone, Debug)]
pub struct Gate {
    /// Percent more instructions processed than the baseline that fails.
    pub max_insns_increase_pct: f64,
    /// Percent more total states that fails; `None`: not gated.
    pub max_states_increase_pct: Option<f64>,
    /// Whether a verdict that differs from the baseline is allowed.
    pub allow_verdict_change: bool,
    /// Fail only on what is new since the baseline (the kernel's BPF CI
    /// way): a program accepted there and not now, or failing and absent
    /// there. Cost changes and failures the baseline already had are
    /// reported, never failed.
    pub new_failures_only: bool,
}

impl Default for Gate {
    fn default() -> Self {
        Self {
            max_insns_increase_pct: 10.0,
            max_states_increase_pct: None,
            allow_verdict_change: false,
            new_failures_only: false,
        }
    }
}

/// What a program's verification cost and verdict were before.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BaselineEntry {
    pub verdict: Option<VerdictKind>,
    pub insns: Option<u64>,
    pub total_states: Option<u64>,
    pub peak_states: Option<u64>,
}

/// A regression the gate does not let through.
#[derive(Clone, Debug, PartialEq)]
pub enum GateViolation {
    VerdictChanged {
        from: VerdictKind,
        to: VerdictKind,
        /// Why, for a rejection or a program not loaded.
        reason: String,
        errno: Option<i32>,
    },
    InsnsIncrease {
        before: u64,
        now: u64,
        pct: f64,
        limit: f64,
    },
    StatesIncrease {
        before: u64,
        now: u64,
        pct: f64,
        limit: f64,
    },
}

impl GateViolation {
    /// Whether it fails the run under `gate` (else it is reported).
    pub fn fails(&self, gate: &Gate) -> bool {
        match self {
            Self::VerdictChanged { from, .. } if gate.new_failures_only => {
                *from == VerdictKind::Accepted
            }
            Self::VerdictChanged { .. } => true,
            Self::InsnsIncrease { .. } | Self::StatesIncrease { .. } => !gate.new_failures_only,
        }
    }
}

impl fmt::Display for GateViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::VerdictChanged {
                from,
                to,
                reason,
                errno,
            } => {
                write!(f, "verdict changed from {from} to {to}")?;
                match (reason.is_empty(), errno) {
                    (_, Some(errno)) => write!(f, " ({reason} (errno {errno}))"),
                    (false, None) => write!(f, " ({reason})"),
                    (true, None) => Ok(()),
                }
            }
            Self::InsnsIncrease {
                before,
                now,
                pct,
                limit,
            } => write!(
                f,
                "instructions processed {before} -> {now} ({pct:+.1}%, limit +{limit}%)"
            ),
            Self::StatesIncrease {
                before,
                now,
                pct,
                limit,
            } => write!(
                f,
                "total states {before} -> {now} ({pct:+.1}%, limit +{limit}%)"
            ),
        }
    }
}

/// Fills `row`'s baseline columns from `b` and returns what the gate refuses.
pub fn apply(row: &mut Row, b: &BaselineEntry, gate: &Gate) -> Vec<GateViolation> {
    let mut violations = Vec::new();
    if let Some(before) = b.verdict {
        if before != row.verdict && !gate.allow_verdict_change {
            violations.push(GateViolation::VerdictChanged {
                from: before,
                to: row.verdict,
                reason: row.reason.clone(),
                errno: row.errno,
            });
        }
        row.baseline_verdict = Some(before);
    }
    row.baseline_insns = b.insns;
    row.baseline_total_states = b.total_states;
    if let (Some(now), Some(before)) = (row.insns, b.insns)
        && before > 0
    {
        let pct = percent_change(before, now);
        row.insns_diff_pct = Some(pct);
        if pct > gate.max_insns_increase_pct {
            violations.push(GateViolation::InsnsIncrease {
                before,
                now,
                pct,
                limit: gate.max_insns_increase_pct,
            });
        }
    }
    if let (Some(limit), Some(now), Some(before)) = (
        gate.max_states_increase_pct,
        row.total_states,
        b.total_states,
    ) && before > 0
    {
        let pct = percent_change(before, now);
        if pct > limit {
            violations.push(GateViolation::StatesIncrease {
                before,
                now,
                pct,
                limit,
            });
        }
    }
    violations
}

fn percent_change(before: u64, now: u64) -> f64 {
    (now as f64 - before as f64) * 100.0 / before as f64
}

/// Baseline entries by (object, program, kernel line).
pub type Baseline = BTreeMap<(String, String, String), BaselineEntry>;

/// A baseline file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    #[error("reading the baseline {}: {error}", path.display())]
    Read {
        path: std::path::PathBuf,
        error: std::io::Error,
    },
    #[error(
        "reading the baseline {}: not the {} `verify --format {format}` writes: {error}",
        path.display(),
        format.to_uppercase()
    )]
    Format {
        path: std::path::PathBuf,
        format: &'static str,
        error: String,
    },
    #[error(
        "reading the baseline {}: it holds no rows: write one with `verify --output FILE.csv`",
        path.display()
    )]
    Empty { path: std::path::PathBuf },
    #[error(
        "the baseline {} is of other objects: it names {}, this run loads {}; write it on the base branch with `verify --output FILE` over the same programs",
        path.display(),
        baseline.join(", "),
        run.join(", ")
    )]
    OtherObjects {
        path: std::path::PathBuf,
        /// The objects each side names (a few of them).
        baseline: Vec<String>,
        run: Vec<String>,
    },
}

/// Fails when `baseline` names none of the programs a run loads: a file
/// from another project or object set, which would make every program
/// "not in the baseline" and gate nothing.
pub fn check_baseline_covers(
    path: &Path,
    baseline: &Baseline,
    programs: &[(String, String)],
) -> Result<(), BaselineError> {
    if programs.is_empty()
        || baseline
            .keys()
            .any(|(o, p, _)| programs.iter().any(|(ro, rp)| ro == o && rp == p))
    {
        return Ok(());
    }
    let few = |names: &mut dyn Iterator<Item = &String>| {
        let set: std::collections::BTreeSet<&String> = names.collect();
        let mut out: Vec<String> = set.iter().take(5).map(|s| format!("`{s}`")).collect();
        if set.len() > 5 {
            out.push(format!("and {} more", set.len() - 5));
        }
        out
    };
    Err(BaselineError::OtherObjects {
        path: path.to_owned(),
        baseline: few(&mut baseline.keys().map(|(o, _, _)| o)),
        run: few(&mut programs.iter().map(|(o, _)| o)),
    })
}

/// The identifying columns and the compared ones of a rows file; other
/// columns (older or newer) are ignored.
#[derive(Deserialize)]
struct BaselineRow {
    object: String,
    program: String,
    line: String,
    verdict: Option<VerdictKind>,
    insns: Option<u64>,
    total_states: Option<u64>,
    peak_states: Option<u64>,
}

/// Reads the rows of an earlier `verify --format csv|json` as a baseline.
pub fn load_baseline(path: &Path) -> Result<Baseline, BaselineError> {
    let text = std::fs::read_to_string(path).map_err(|error| BaselineError::Read {
        path: path.to_owned(),
        error,
    })?;
    let bad = |format, error: String| BaselineError::Format {
        path: path.to_owned(),
        format,
        error,
    };
    let rows: Vec<BaselineRow> = if text.trim_start().starts_with('[') {
        serde_json::from_str(&text).map_err(|e| bad("json", e.to_string()))?
    } else {
        csv::Reader::from_reader(text.as_bytes())
            .deserialize()
            .collect::<Result<_, _>>()
            .map_err(|e| bad("csv", e.to_string()))?
    };
    if rows.is_empty() {
        return Err(BaselineError::Empty {
            path: path.to_owned(),
        });
    }
    Ok(rows
        .into_iter()
        .map(|r| {
            let entry = BaselineEntry {
                verdict: r.verdict,
                insns: r.insns,
                total_states: r.total_states,
                peak_states: r.peak_states,
            };
            ((r.object, r.program, r.line), entry)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Finding, FindingKind, Severity, Subject};

    fn accepted(insns: u64, states: u64) -> Row {
        Row {
            object: "o".into(),
            program: "p".into(),
            kernel: "6.1".into(),
            line: "6.1".into(),
            verdict: VerdictKind::Accepted,
            insns: Some(insns),
            total_states: Some(states),
            ..Row::default()
        }
    }

    fn base(verdict: VerdictKind, insns: u64, states: u64) -> BaselineEntry {
        BaselineEntry {
            verdict: Some(verdict),
            insns: Some(insns),
            total_states: Some(states),
            peak_states: None,
        }
    }

    /// As `verify` reports a violation: program, kernel, then what.
    fn shown(row: &Row, violations: Vec<GateViolation>) -> Vec<String> {
        violations
            .into_iter()
            .map(|v| {
                Finding {
                    kernel: row.kernel.clone(),
                    subject: Subject::Program {
                        object: row.object.clone(),
                        program: row.program.clone(),
                    },
                    severity: Severity::Failure,
                    kind: FindingKind::Gate(v),
                }
                .to_string()
            })
            .collect()
    }

    #[test]
    fn the_gate_names_program_kernel_and_amount() {
        let gate = Gate {
            max_insns_increase_pct: 10.0,
            max_states_increase_pct: Some(20.0),
            allow_verdict_change: false,
            new_failures_only: false,
        };
        let mut row = accepted(1120, 100);
        let v = apply(&mut row, &base(VerdictKind::Accepted, 1000, 100), &gate);
        assert_eq!(
            shown(&row, v),
            ["o/p on 6.1: instructions processed 1000 -> 1120 (+12.0%, limit +10%)"]
        );
        assert_eq!(row.insns_diff_pct, Some(12.0));

        let mut row = accepted(1100, 130);
        let v = apply(&mut row, &base(VerdictKind::Accepted, 1000, 100), &gate);
        assert_eq!(
            shown(&row, v),
            ["o/p on 6.1: total states 100 -> 130 (+30.0%, limit +20%)"],
            "+10.0% is within the limit"
        );

        let mut rejected = Row {
            verdict: VerdictKind::Rejected,
            errno: Some(13),
            reason: "Permission denied".into(),
            insns: None,
            ..accepted(0, 0)
        };
        let v = apply(
            &mut rejected,
            &base(VerdictKind::Accepted, 1000, 100),
            &gate,
        );
        assert_eq!(
            shown(&rejected, v),
            [
                "o/p on 6.1: verdict changed from accepted to rejected (Permission denied (errno 13))"
            ]
        );
        assert_eq!(rejected.baseline_verdict, Some(VerdictKind::Accepted));

        let v = apply(
            &mut accepted(500, 50),
            &base(VerdictKind::Accepted, 1000, 100),
            &gate,
        );
        assert!(v.is_empty(), "improvements pass");

        let allowed = Gate {
            allow_verdict_change: true,
            ..gate
        };
        assert!(
            apply(
                &mut rejected,
                &base(VerdictKind::Accepted, 1000, 100),
                &allowed
            )
            .is_empty()
        );
    }

    #[test]
    fn new_failures_only_fails_on_losing_an_acceptance_and_reports_the_rest() {
        let gate = Gate {
            new_failures_only: true,
            ..Gate::default()
        };
        let changed = |from, to| GateViolation::VerdictChanged {
            from,
            to,
            reason: String::new(),
            errno: None,
        };
        assert!(changed(VerdictKind::Accepted, VerdictKind::Rejected).fails(&gate));
        assert!(!changed(VerdictKind::Rejected, VerdictKind::Accepted).fails(&gate));
        let cost = GateViolation::InsnsIncrease {
            before: 10,
            now: 20,
            pct: 100.0,
            limit: 10.0,
        };
        assert!(!cost.fails(&gate));
        let states = GateViolation::StatesIncrease {
            before: 10,
            now: 20,
            pct: 100.0,
            limit: 10.0,
        };
        assert!(!states.fails(&gate));
        // The default gate fails on all of them.
        let all = Gate::default();
        assert!(changed(VerdictKind::Rejected, VerdictKind::Accepted).fails(&all));
        assert!(cost.fails(&all) && states.fails(&all));
    }

    #[test]
    fn a_baseline_naming_none_of_the_programs_is_refused() {
        let baseline: Baseline = [(
            ("fw".to_owned(), "xdp_fw".to_owned(), "6.1".to_owned()),
            BaselineEntry::default(),
        )]
        .into();
        let path = Path::new("base.json");
        let ours = [("fw".to_owned(), "xdp_fw".to_owned())];
        assert!(check_baseline_covers(path, &baseline, &ours).is_ok());
        // One program in common is enough (a shard, a new program).
        let more = [ours[0].clone(), ("lb".to_owned(), "tc_lb".to_owned())];
        assert!(check_baseline_covers(path, &baseline, &more).is_ok());
        let other = [("lb".to_owned(), "xdp_fw".to_owned())];
        let e = check_baseline_covers(path, &baseline, &other)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("base.json") && e.contains("`fw`") && e.contains("`lb`"),
            "{e}"
        );
    }

    #[test]
    fn a_refused_baseline_names_five_objects_and_counts_the_rest() {
        let names = |n: usize| -> Baseline {
            (0..n)
                .map(|i| {
                    let key = (format!("o{i}"), "p".to_owned(), "6.1".to_owned());
                    (key, BaselineEntry::default())
                })
                .collect()
        };
        let ours = [("mine".to_owned(), "p".to_owned())];
        let text = |n| {
            check_baseline_covers(Path::new("b.csv"), &names(n), &ours)
                .unwrap_err()
                .to_string()
        };
        assert!(
            !text(5).contains("more") && text(5).contains("`o4`"),
            "{}",
            text(5)
        );
        assert!(text(7).contains("`o4`, and 2 more,"), "{}", text(7));
        assert!(!text(7).contains("`o5`"));
        // A run with no programs compares nothing and refuses nothing.
        assert!(check_baseline_covers(Path::new("b.csv"), &names(1), &[]).is_ok());
    }

    #[test]
    fn limits_are_inclusive_and_an_empty_baseline_compares_nothing() {
        let gate = Gate {
            max_insns_increase_pct: 10.0,
            max_states_increase_pct: Some(20.0),
            allow_verdict_change: false,
            new_failures_only: false,
        };
        // Exactly at both limits.
        let mut row = accepted(1100, 120);
        assert!(apply(&mut row, &base(VerdictKind::Accepted, 1000, 100), &gate).is_empty());
        assert_eq!(row.insns_diff_pct, Some(10.0));
        assert_eq!(
            (row.baseline_insns, row.baseline_total_states),
            (Some(1000), Some(100))
        );
        // Nothing to take a percentage of.
        let mut row = accepted(50, 5);
        assert!(apply(&mut row, &base(VerdictKind::Accepted, 0, 0), &gate).is_empty());
        assert_eq!(row.insns_diff_pct, None);
        // States are not gated unless asked.
        let mut row = accepted(1000, 900);
        assert!(
            apply(
                &mut row,
                &base(VerdictKind::Accepted, 1000, 100),
                &Gate::default()
            )
            .is_empty()
        );
        // A baseline without a verdict does not gate it.
        let mut rejected = Row {
            verdict: VerdictKind::Rejected,
            ..accepted(0, 0)
        };
        let no_verdict = BaselineEntry {
            verdict: None,
            ..base(VerdictKind::Accepted, 0, 0)
        };
        assert!(apply(&mut rejected, &no_verdict, &gate).is_empty());
        assert_eq!(rejected.baseline_verdict, None);
    }

    #[test]
    fn csv_and_json_round_trip_as_a_baseline() {
        let rows = vec![accepted(42, 3)];
        let dir = tempfile::tempdir().unwrap();
        let csv = crate::to_csv(&rows).unwrap();
        for (name, text) in [("b.csv", csv.clone()), ("b.json", crate::to_json(&rows))] {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            let b = load_baseline(&path).unwrap();
            let entry = &b[&("o".into(), "p".into(), "6.1".into())];
            assert_eq!(entry.insns, Some(42), "{name}");
            assert_eq!(entry.verdict, Some(VerdictKind::Accepted), "{name}");
        }
        // Columns a baseline does not need, older or newer, are ignored.
        std::fs::write(
            dir.path().join("old.csv"),
            "object,program,kernel,line,verdict,reason,insns,expectation\no,p,6.1,6.1,accepted,,40,some old text\n",
        )
        .unwrap();
        let b = load_baseline(&dir.path().join("old.csv")).unwrap();
        assert_eq!(b[&("o".into(), "p".into(), "6.1".into())].insns, Some(40));

        std::fs::write(dir.path().join("bad.csv"), "what,ever\n1\n").unwrap();
        assert!(
            load_baseline(&dir.path().join("bad.csv"))
                .unwrap_err()
                .to_string()
                .contains("not the CSV")
        );
        // A header without rows would compare nothing and pass.
        let header = csv.lines().next().unwrap().to_owned();
        std::fs::write(dir.path().join("empty.csv"), header).unwrap();
        let err = load_baseline(&dir.path().join("empty.csv"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("empty.csv") && err.contains("holds no rows"),
            "{err}"
        );
    }
}
