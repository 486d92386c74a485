//! `explain`: every program on every kernel, and for each rejection its
//! diagnosis as a compiler would print it.

use std::{collections::BTreeMap, fmt::Write as _, path::Path};

use harness_diagnose::Diagnosis;
use harness_judge::{Divergence, Row, VerdictKind};

use crate::style::{BAD, DIM, OK, paint};

/// Programs in name order, kernels in row order; where the kernels
/// disagree, a last line says which accepted and which did not, and what
/// the others lack.
pub fn explain_report(rows: &[Row], divergences: &[Divergence]) -> String {
    let mut programs: BTreeMap<(&str, &str), Vec<&Row>> = BTreeMap::new();
    for r in rows {
        programs
            .entry((r.object.as_str(), r.program.as_str()))
            .or_default()
            .push(r);
    }
    let mut s = String::new();
    for ((object, program), rows) in programs {
        let section = rows.first().map_or("", |r| r.section.as_str());
        let _ = writeln!(s, "{object}/{program} ({section})");
        for r in &rows {
            let _ = write!(s, "  {}: ", r.kernel);
            match (r.verdict, &r.diagnosis) {
                (VerdictKind::Accepted, _) => {
                    let insns = r.insns.map_or_else(String::new, |n| format!(", {n} insns"));
                    let _ = writeln!(s, "{}{insns}", paint(OK, "accepted"));
                }
                (VerdictKind::Rejected, Some(d)) => {
                    let _ = writeln!(s, "{}", paint(BAD, "rejected"));
                    write_diagnosis(&mut s, d, "    ");
                }
                (VerdictKind::Rejected, None) => {
                    let _ = writeln!(
                        s,
                        "{} ({}); the log holds no error message",
                        paint(BAD, "rejected"),
                        r.reason
                    );
                }
                (VerdictKind::NotLoaded, _) => {
                    let _ = writeln!(s, "{}: {}", paint(DIM, "not loaded"), r.reason);
                }
            }
        }
        if let Some(split) = disagreement(&rows) {
            let _ = writeln!(s, "  {}", paint(DIM, &split));
        }
        if let Some(d) = divergences
            .iter()
            .find(|d| d.object == object && d.program == program)
        {
            let _ = writeln!(s, "  {}", paint(DIM, &format!("why: {}", d.explain())));
        }
    }
    s
}

/// `note: accepted on 6.1, 6.12; rejected on 5.10` when kernels disagree.
fn disagreement(rows: &[&Row]) -> Option<String> {
    let on = |kind: VerdictKind| -> Vec<&str> {
        rows.iter()
            .filter(|r| r.verdict == kind)
            .map(|r| r.kernel.as_str())
            .collect()
    };
    let groups: Vec<String> = [
        VerdictKind::Accepted,
        VerdictKind::Rejected,
        VerdictKind::NotLoaded,
    ]
    .into_iter()
    .filter_map(|kind| {
        let kernels = on(kind);
        (!kernels.is_empty()).then(|| format!("{kind} on {}", kernels.join(", ")))
    })
    .collect();
    (groups.len() > 1).then(|| format!("note: {}", groups.join("; ")))
}

/// A diagnosis in colour (dropped where colour is off), every line indented.
fn write_diagnosis(s: &mut String, d: &Diagnosis, indent: &str) {
    for line in d.styled().to_string().lines() {
        let _ = writeln!(s, "{indent}{line}");
    }
}

/// A saved log's diagnosis (`explain --log`), or why there is none, then
/// what the explanation had to do without.
pub fn log_explanation(log: &Path, diagnosis: Option<&Diagnosis>, notes: &[String]) -> String {
    let mut s = String::new();
    match diagnosis {
        Some(d) => write_diagnosis(&mut s, d, ""),
        None => {
            let _ = writeln!(
                s,
                "{}: no rejection: the log holds no error message (the program was accepted, \
                 or the log was cut off before the message)",
                log.display()
            );
        }
    }
    for note in notes {
        let _ = writeln!(s, "{}", paint(DIM, &format!("note: {note}")));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(program: &str, kernel: &str, verdict: VerdictKind) -> Row {
        Row {
            object: "o".into(),
            program: program.into(),
            kernel: kernel.into(),
            line: kernel.into(),
            section: "xdp".into(),
            verdict,
            insns: Some(7),
            reason: "Permission denied".into(),
            ..Row::default()
        }
    }

    #[test]
    fn rejections_show_their_diagnosis_and_disagreeing_kernels_are_named() {
        let log = "0: (b7) r0 = 2\n1: (95) exit\nAt program exit the register R0 has value (0x2; 0x0) should have been in (0x0; 0x1)\n";
        let mut rejected = row("p", "5.10", VerdictKind::Rejected);
        rejected.diagnosis = harness_diagnose::diagnose(log).map(Box::new);
        let rows = vec![
            rejected,
            row("p", "6.1", VerdictKind::Accepted),
            row("q", "6.1", VerdictKind::Accepted),
        ];
        let divergences = harness_judge::divergences(&rows, &|_| None);
        let text = crate::plain(&explain_report(&rows, &divergences));
        assert!(
            text.starts_with(
                "o/p (xdp)\n  5.10: rejected\n    error[return-range]: At program exit"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "  6.1: accepted, 7 insns\n  note: accepted on 6.1; rejected on 5.10\n  \
                 why: 5.10 cannot prove it safe where a newer verifier can; accepted from 6.1 on\n\
                 o/q (xdp)\n"
            ),
            "{text}"
        );
        // One verdict everywhere: no note.
        assert!(
            text.ends_with("o/q (xdp)\n  6.1: accepted, 7 insns\n"),
            "{text}"
        );
        let bare = row("r", "6.1", VerdictKind::Rejected);
        let text = crate::plain(&explain_report(&[bare], &[]));
        assert!(
            text.contains("6.1: rejected (Permission denied); the log holds no error message"),
            "{text}"
        );
    }

    #[test]
    fn a_log_without_a_message_says_so_and_notes_follow() {
        let text = crate::plain(&log_explanation(
            Path::new("bug.log"),
            None,
            &["the object has no line info".into()],
        ));
        assert_eq!(
            text,
            "bug.log: no rejection: the log holds no error message (the program was accepted, \
             or the log was cut off before the message)\nnote: the object has no line info\n"
        );
    }
}
