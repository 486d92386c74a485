//! One program on one kernel as a flat row, for CSV and JSON (`verify
//! --format`), and as the baseline of a later run.

use std::fmt;

use harness_protocol::{ProgramReport, Verdict};
use harness_verifier::VerifierStats;
use serde::{Deserialize, Serialize};

/// A verdict without its details.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum VerdictKind {
    #[default]
    #[serde(rename = "accepted")]
    Accepted,
    #[serde(rename = "rejected")]
    Rejected,
    #[serde(rename = "not loaded")]
    NotLoaded,
}

impl VerdictKind {
    pub fn of(v: &Verdict) -> Self {
        match v {
            Verdict::Accepted => Self::Accepted,
            Verdict::Rejected { .. } => Self::Rejected,
            Verdict::NotLoaded { .. } => Self::NotLoaded,
        }
    }

    pub fn word(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Rejected => "rejected",
            Self::NotLoaded => "not loaded",
        }
    }
}

impl fmt::Display for VerdictKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.word())
    }
}

/// Whether the program's expectations hold on this kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExpectationStatus {
    #[serde(rename = "as expected")]
    AsExpected,
    #[serde(rename = "not met")]
    NotMet,
}

/// One program on one kernel, flat for CSV and JSON.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Row {
    pub object: String,
    pub program: String,
    pub kernel: String,
    pub line: String,
    pub prog_type: String,
    pub section: String,
    pub verdict: VerdictKind,
    /// The errno of a rejection.
    pub errno: Option<i32>,
    /// The errno's message of a rejection, the reason a program was not loaded.
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
    /// `None` when no expectation applies to this program on this kernel.
    pub expectation: Option<ExpectationStatus>,
    pub baseline_verdict: Option<VerdictKind>,
    pub baseline_insns: Option<u64>,
    pub insns_diff_pct: Option<f64>,
    pub baseline_total_states: Option<u64>,
    /// The cause id of a rejection (`null-deref`), from its diagnosis.
    pub cause: Option<String>,
    /// Why the verifier rejected the program; JSON rows carry it whole
    /// (`to_json`), CSV only its `cause`.
    #[serde(skip)]
    pub diagnosis: Option<Box<harness_diagnose::Diagnosis>>,
}

impl Row {
    pub fn new(p: &ProgramReport, kernel: &str, line: &str) -> Self {
        let stats = VerifierStats::parse(&p.log);
        let (errno, reason) = match &p.verdict {
            Verdict::Accepted => (None, String::new()),
            Verdict::Rejected { errno, message } => (Some(*errno), message.clone()),
            Verdict::NotLoaded { reason } => (None, reason.clone()),
        };
        Self {
            object: p.object.clone(),
            program: p.program.clone(),
            kernel: kernel.to_owned(),
            line: line.to_owned(),
            prog_type: p.prog_type.clone(),
            section: p.section.clone(),
            verdict: VerdictKind::of(&p.verdict),
            errno,
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
            ..Self::default()
        }
    }
}

/// Rows as CSV, header first.
pub fn to_csv(rows: &[Row]) -> Result<String, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for r in rows {
        w.serialize(r)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| csv::Error::from(e.into_error()))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Rows as a JSON array.
pub fn to_json(rows: &[Row]) -> String {
    let rows: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            let mut value = serde_json::to_value(r).expect("rows serialise");
            if let serde_json::Value::Object(fields) = &mut value {
                fields.insert(
                    "diagnosis".into(),
                    serde_json::to_value(&r.diagnosis).expect("diagnoses serialise"),
                );
            }
            value
        })
        .collect();
    serde_json::to_string_pretty(&rows).expect("rows serialise")
}
