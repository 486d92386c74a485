//! One program on one kernel: judged against expectations, and written as
//! a snapshot whose header holds the statistics (so a committed snapshot is
//! also the baseline `verify` compares with).

use harness_protocol::{ProgramReport, Verdict};
use harness_snapshots::Observation;
use harness_verifier::{Outcome, VerifierStats, normalize_verifier_log};

use crate::{Prepared, Project};

/// How a program's load went, measured against what was expected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Judgement {
    /// The outcome is what the program is supposed to do on this kernel
    /// (accepted when nothing says otherwise).
    pub ok: bool,
    /// Expected to be rejected here, and was: its cases cannot run.
    pub expected_rejection: bool,
    /// Why not ok, when not.
    pub problem: Option<String>,
}

pub fn verdict_text(v: &Verdict) -> String {
    match v {
        Verdict::Accepted => "accepted".into(),
        Verdict::Rejected { errno, message } => format!("rejected: {message} (errno {errno})"),
        Verdict::NotLoaded { reason } => format!("not loaded: {reason}"),
    }
}

pub fn judge(prepared: &Prepared, p: &ProgramReport, line: &str) -> Judgement {
    let expectations = prepared.expectations_for(&p.object, &p.program, line);
    let outcome = match &p.verdict {
        Verdict::Accepted => Some(Outcome::Accepted { log: &p.log }),
        Verdict::Rejected { .. } => Some(Outcome::Rejected { log: &p.log }),
        Verdict::NotLoaded { .. } => None,
    };
    match (outcome, expectations.is_empty()) {
        (Some(Outcome::Accepted { .. }), true) => Judgement {
            ok: true,
            expected_rejection: false,
            problem: None,
        },
        (Some(outcome), false) => {
            let problems: Vec<String> = expectations
                .iter()
                .filter_map(|e| e.check(outcome).err())
                .collect();
            Judgement {
                ok: problems.is_empty(),
                expected_rejection: problems.is_empty()
                    && matches!(outcome, Outcome::Rejected { .. }),
                problem: (!problems.is_empty()).then(|| problems.join("; ")),
            }
        }
        (Some(Outcome::Rejected { .. }), true) => Judgement {
            ok: false,
            expected_rejection: false,
            problem: Some(format!(
                "the verifier rejected it ({})",
                verdict_text(&p.verdict)
            )),
        },
        (None, _) => Judgement {
            ok: false,
            expected_rejection: false,
            problem: Some(verdict_text(&p.verdict)),
        },
    }
}

/// The statistics a snapshot records, read back from its text.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SnapshotStats {
    pub verdict: String,
    pub insns: Option<u64>,
    pub total_states: Option<u64>,
    pub peak_states: Option<u64>,
}

impl SnapshotStats {
    pub fn parse(text: &str) -> Self {
        let field = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(key))
                .map(str::trim)
        };
        let number = |key: &str| {
            field(key)
                .and_then(|v| v.split_whitespace().next())
                .and_then(|n| n.parse().ok())
        };
        let states: Vec<u64> = field("states: ")
            .map(|v| {
                v.split(|c: char| !c.is_ascii_digit())
                    .filter_map(|n| n.parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        Self {
            verdict: field("verdict: ").unwrap_or_default().to_owned(),
            insns: number("instructions processed: "),
            total_states: states.first().copied(),
            peak_states: states.get(1).copied(),
        }
    }
}

/// The verifier snapshot of one program on one kernel line: verdict,
/// stable statistics (not the time), and the normalised log.
pub fn observation(
    project: &Project,
    prepared: &Prepared,
    p: &ProgramReport,
    line: &str,
) -> Observation {
    let source = prepared
        .object(&p.object)
        .map_or_else(String::new, |o| project.relative(&o.source));
    let level = if p.log_level & 3 == 2 { "2" } else { "1" };
    let mut header = format!(
        "program: {}/{} ({}, section \"{}\")\nverdict: {}\n",
        p.object,
        p.program,
        p.prog_type,
        p.section,
        verdict_text(&p.verdict)
    );
    if let Some(s) = VerifierStats::parse(&p.log) {
        header.push_str(&format!(
            "instructions processed: {}\nstates: {} total, {} peak, {} max per instruction\nmark_read: {}\nstack depth: {} ({})\n",
            s.insns,
            s.total_states,
            s.peak_states,
            s.max_states_per_insn,
            s.mark_read,
            s.stack(),
            s.stack_depth.iter().map(u64::to_string).collect::<Vec<_>>().join("+"),
        ));
    }
    if p.insn_cnt > 0 {
        header.push_str(&format!("program size: {} instructions", p.insn_cnt));
        if let Some(info) = &p.info {
            header.push_str(&format!(
                " (xlated {} bytes, jited {} bytes)",
                info.xlated_len, info.jited_len
            ));
        }
        header.push('\n');
    }
    Observation {
        name: format!("verifier__{}__{}", p.object, p.program),
        line: line.to_owned(),
        content: format!(
            "{header}log: level {level} with stats; timings, kernel addresses and ids replaced\n\n{}",
            normalize_verifier_log(&p.log)
        ),
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

    #[test]
    fn snapshot_statistics_read_back() {
        let s = SnapshotStats::parse(
            "program: a/b (xdp)\nverdict: accepted\ninstructions processed: 2265\nstates: 180 total, 137 peak, 8 max per instruction\n",
        );
        assert_eq!(
            s,
            SnapshotStats {
                verdict: "accepted".into(),
                insns: Some(2265),
                total_states: Some(180),
                peak_states: Some(137)
            }
        );
    }
}
