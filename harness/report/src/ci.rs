//! What CI systems read, rendered from a run's [`Outcomes`]: JUnit XML,
//! GitHub Actions workflow commands (annotations at the case's or the C
//! source's line, groups for long output) and the Markdown job summary.

use std::{collections::BTreeMap, fmt::Write as _, time::Duration};

use harness_judge::{Outcome, OutcomeKind, OutcomeStatus, Outcomes, RunKind, VerdictKind};
use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

/// JUnit XML: a test suite per kernel (and one for snapshots), a test per
/// case and per program on it; skips with their reason, failures with the
/// message and, as the body, everything known (diagnosis included).
pub fn junit(outcomes: &Outcomes) -> String {
    // Kernels in the order asked for, then the snapshots (shared by the
    // kernels whose observation they are).
    let rank = |kernel: &str| {
        outcomes
            .kernels
            .iter()
            .position(|k| k.label == kernel)
            .unwrap_or(outcomes.kernels.len())
    };
    let key = |kind: OutcomeKind, kernel: &str| match kind {
        OutcomeKind::Snapshot => (outcomes.kernels.len(), "snapshots".to_owned()),
        _ => (rank(kernel), format!("{} on {kernel}", outcomes.command)),
    };
    let mut suites: BTreeMap<(usize, String), TestSuite> = BTreeMap::new();
    fn suite(
        suites: &mut BTreeMap<(usize, String), TestSuite>,
        key: (usize, String),
    ) -> &mut TestSuite {
        let name = key.1.clone();
        suites.entry(key).or_insert_with(|| TestSuite::new(name))
    }
    for k in &outcomes.kernels {
        let s = suite(&mut suites, key(OutcomeKind::Kernel, &k.label));
        s.set_time(Duration::from_secs_f64(k.seconds.max(0.0)));
        if !k.release.is_empty() {
            s.add_property(("kernel.release", k.release.as_str()));
        }
    }
    for o in &outcomes.outcomes {
        suite(&mut suites, key(o.kind, &o.kernel)).add_test_case(test_case(o));
    }
    let mut report = Report::new(format!("ebpf-harness {}", outcomes.command));
    report.add_test_suites(suites.into_values());
    report
        .to_string()
        .expect("a report of strings serialises to memory")
}

fn test_case(o: &Outcome) -> TestCase {
    let mut status = match o.status {
        OutcomeStatus::Passed => TestCaseStatus::success(),
        OutcomeStatus::Skipped => TestCaseStatus::skipped(),
        OutcomeStatus::Failed => TestCaseStatus::non_success(NonSuccessKind::Failure),
    };
    if let Some(m) = &o.message {
        status.set_message(m.as_str());
    }
    if o.status == OutcomeStatus::Failed {
        let kind = o.kind.to_string();
        status.set_type(o.cause.as_deref().unwrap_or(&kind));
        if let Some(d) = &o.detail {
            status.set_description(d.as_str());
        }
    }
    let mut case = TestCase::new(o.name.as_str(), status);
    case.set_classname(classname(o));
    let mut out = String::new();
    for note in &o.notes {
        let _ = writeln!(out, "note: {note}");
    }
    if let Some(log) = &o.log {
        let _ = writeln!(out, "verifier log: {}", log.display());
    }
    if !out.is_empty() {
        case.set_system_out(out);
    }
    case
}

/// Where the test lives, as CI systems group them: the object of a
/// program, the case file of a case.
fn classname(o: &Outcome) -> String {
    match o.kind {
        OutcomeKind::Kernel => "kernel".to_owned(),
        _ if o.group.is_empty() => o.kind.to_string(),
        _ => o.group.clone(),
    }
}

/// GitHub Actions workflow commands: an `::error` per failure at its file
/// and line (the case's line, the C line of a rejection), a `::warning` per
/// note worth a look, and each failure's whole text in a `::group::`.
pub fn github_commands(outcomes: &Outcomes) -> String {
    let mut out = String::new();
    for o in &outcomes.outcomes {
        match o.status {
            OutcomeStatus::Failed => {
                let title = format!("{} on {}", subject(o), o.kernel);
                let message = match (&o.cause_title, &o.message) {
                    (Some(cause), Some(m)) => format!("{cause}: {m}"),
                    (None, Some(m)) => m.clone(),
                    (Some(cause), None) => cause.clone(),
                    (None, None) => "failed".to_owned(),
                };
                out.push_str(&command("error", o, &title, &message));
                if let Some(detail) = &o.detail {
                    let _ = writeln!(out, "::group::{}", escape_data(&title));
                    // A line that looks like a workflow command must not
                    // be run as one.
                    for line in detail.lines() {
                        if line.starts_with("::") {
                            let _ = writeln!(out, " {line}");
                        } else {
                            let _ = writeln!(out, "{line}");
                        }
                    }
                    let _ = writeln!(out, "::endgroup::");
                }
            }
            OutcomeStatus::Skipped | OutcomeStatus::Passed => {}
        }
    }
    for k in outcomes.kernels.iter().filter(|k| k.error.is_some()) {
        let error = k.error.as_deref().unwrap_or_default();
        let _ = writeln!(
            out,
            "::error title={}::{}",
            escape_property(&format!("kernel {}", k.label)),
            escape_data(error)
        );
    }
    out
}

fn command(level: &str, o: &Outcome, title: &str, message: &str) -> String {
    let mut props = Vec::new();
    if let Some(file) = &o.file {
        props.push(format!(
            "file={}",
            escape_property(&file.display().to_string())
        ));
        if let Some(line) = o.line {
            props.push(format!("line={line}"));
        }
    }
    props.push(format!("title={}", escape_property(title)));
    format!("::{level} {}::{}\n", props.join(","), escape_data(message))
}

/// Workflow-command data: `%`, CR and LF escaped.
fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Workflow-command properties: also `:` and `,`.
fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

fn subject(o: &Outcome) -> String {
    match o.kind {
        OutcomeKind::Program => format!("{}/{}", o.group, o.name),
        OutcomeKind::Case => format!("case `{}`", o.name),
        OutcomeKind::Object => format!("object `{}`", o.name),
        OutcomeKind::Kernel => "kernel".to_owned(),
        OutcomeKind::Snapshot => format!("snapshot {}", o.name),
    }
}

/// The Markdown job summary: totals per kernel, the programs × kernels
/// matrix (verdict, instructions processed and the change against the
/// baseline, the cause of each rejection), then each failure.
pub fn job_summary(outcomes: &Outcomes) -> String {
    let mut md = String::new();
    let verdict = if outcomes.ok() { "passed" } else { "failed" };
    let _ = writeln!(md, "## ebpf-harness {}: {verdict}\n", outcomes.command);
    let _ = writeln!(
        md,
        "| kernel | release | passed | failed | skipped | time |"
    );
    let _ = writeln!(md, "|---|---|---:|---:|---:|---:|");
    for k in &outcomes.kernels {
        let of = |s| {
            outcomes
                .outcomes
                .iter()
                .filter(|o| o.kernel == k.label && o.status == s)
                .count()
        };
        let failed = of(OutcomeStatus::Failed) + usize::from(k.error.is_some());
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {:.1} s |",
            k.label,
            cell(&k.release),
            of(OutcomeStatus::Passed),
            failed,
            of(OutcomeStatus::Skipped),
            k.seconds
        );
    }
    programs_matrix(&mut md, outcomes);
    let failures: Vec<&Outcome> = outcomes
        .outcomes
        .iter()
        .filter(|o| o.status == OutcomeStatus::Failed)
        .collect();
    let kernel_errors: Vec<_> = outcomes
        .kernels
        .iter()
        .filter(|k| k.error.is_some())
        .collect();
    if !failures.is_empty() || !kernel_errors.is_empty() {
        let _ = writeln!(md, "\n### Failures\n");
    }
    for k in kernel_errors {
        let _ = writeln!(
            md,
            "- **kernel {}** did not finish: {}",
            k.label,
            cell(k.error.as_deref().unwrap_or_default())
        );
    }
    for o in failures {
        let place = match (&o.file, o.line) {
            (Some(f), Some(l)) => format!(" at `{}:{l}`", f.display()),
            (Some(f), None) => format!(" in `{}`", f.display()),
            _ => String::new(),
        };
        let cause = o
            .cause_title
            .as_ref()
            .map(|c| format!(" ({c})"))
            .unwrap_or_default();
        let _ = writeln!(
            md,
            "- **{}** on {}{place}{cause}: {}",
            subject(o),
            o.kernel,
            cell(o.message.as_deref().unwrap_or("failed"))
        );
        if let Some(detail) = &o.detail {
            let _ = writeln!(
                md,
                "  <details><summary>details</summary>\n\n  ```\n{}\n  ```\n  </details>",
                detail
                    .lines()
                    .map(|l| format!("  {}", l.replace("```", "` ` `")))
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
    }
    let notes: Vec<(&Outcome, &String)> = outcomes
        .outcomes
        .iter()
        .flat_map(|o| o.notes.iter().map(move |n| (o, n)))
        .collect();
    if !notes.is_empty() {
        let _ = writeln!(md, "\n### Notes\n");
        for (o, n) in notes {
            let _ = writeln!(md, "- {} on {}: {}", subject(o), o.kernel, cell(n));
        }
    }
    md
}

/// Programs × kernels: ✅/❌ and instructions processed, the change
/// against the baseline, the cause of a rejection.
fn programs_matrix(md: &mut String, outcomes: &Outcomes) {
    let programs: Vec<&Outcome> = outcomes
        .outcomes
        .iter()
        .filter(|o| o.kind == OutcomeKind::Program)
        .collect();
    if programs.is_empty() {
        return;
    }
    let labels: Vec<&str> = outcomes.kernels.iter().map(|k| k.label.as_str()).collect();
    let mut rows: BTreeMap<(&str, &str), BTreeMap<&str, &Outcome>> = BTreeMap::new();
    for o in &programs {
        rows.entry((&o.group, &o.name))
            .or_default()
            .insert(&o.kernel, o);
    }
    let _ = writeln!(md, "\n### Programs\n");
    let _ = writeln!(md, "| program | {} |", labels.join(" | "));
    let _ = writeln!(md, "|---|{}", "---|".repeat(labels.len()));
    for ((object, program), by_kernel) in rows {
        let cells: Vec<String> = labels
            .iter()
            .map(|k| {
                by_kernel
                    .get(k)
                    .map_or_else(|| "·".to_owned(), |o| program_cell(o))
            })
            .collect();
        let _ = writeln!(md, "| `{object}/{program}` | {} |", cells.join(" | "));
    }
    if outcomes.command == RunKind::Test {
        let _ = writeln!(
            md,
            "\n(✅ loaded as expected, ❌ not; · not run on that kernel)"
        );
    }
}

fn program_cell(o: &Outcome) -> String {
    let mark = match o.status {
        OutcomeStatus::Failed => "❌",
        OutcomeStatus::Skipped => "⏭",
        OutcomeStatus::Passed => "✅",
    };
    let verdict = match o.verdict {
        Some(VerdictKind::Accepted) | None => String::new(),
        Some(v) => format!(" {v}"),
    };
    let insns = o.insns.map(|i| format!(" {i}")).unwrap_or_default();
    let change = o
        .insns_diff_pct
        .filter(|p| *p != 0.0)
        .map(|p| format!(" ({p:+.1}%)"))
        .unwrap_or_default();
    let cause = o
        .cause
        .as_ref()
        .map(|c| format!(" `{c}`"))
        .unwrap_or_default();
    format!("{mark}{verdict}{insns}{change}{cause}")
}

/// One line of text as a Markdown table cell or list item: `|` would end
/// the cell, `<` start an HTML tag GitHub drops.
fn cell(s: &str) -> String {
    s.lines()
        .next()
        .unwrap_or_default()
        .replace('<', "&lt;")
        .replace('|', "\\|")
}

/// One line for a terminal: `test: 40 passed, 2 failed, 3 skipped on 5.10, 6.1`.
pub fn outcomes_line(outcomes: &Outcomes) -> String {
    let kernels: Vec<&str> = outcomes.kernels.iter().map(|k| k.label.as_str()).collect();
    format!(
        "{}: {} passed, {} failed, {} skipped on {}\n",
        outcomes.command,
        outcomes.count(OutcomeStatus::Passed),
        outcomes.count(OutcomeStatus::Failed)
            + outcomes
                .kernels
                .iter()
                .filter(|k| k.error.is_some())
                .count(),
        outcomes.count(OutcomeStatus::Skipped),
        if kernels.is_empty() {
            "no kernel".to_owned()
        } else {
            kernels.join(", ")
        }
    )
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use harness_judge::{KernelOutcome, RESULTS_FORMAT};

    use super::*;

    fn outcome(kind: OutcomeKind, name: &str, status: OutcomeStatus) -> Outcome {
        Outcome {
            status,
            ..Outcome::new("6.1", kind, "fw", name)
        }
    }

    fn sample() -> Outcomes {
        let mut rejected = outcome(OutcomeKind::Program, "xdp_fw", OutcomeStatus::Failed);
        rejected.message = Some("rejected: 100% <bad>, sure: yes".into());
        rejected.detail = Some("rejected\n::warning::not a command\nR0 invalid".into());
        rejected.file = Some(PathBuf::from("src/fw,v2.bpf.c"));
        rejected.line = Some(31);
        rejected.verdict = Some(VerdictKind::Rejected);
        rejected.insns = Some(120);
        rejected.cause = Some("null-deref".into());
        rejected.cause_title = Some("a pointer that may be NULL is dereferenced".into());
        let mut cheap = outcome(OutcomeKind::Program, "tc_fw", OutcomeStatus::Passed);
        cheap.insns = Some(90);
        cheap.insns_diff_pct = Some(-10.0);
        cheap.notes = vec!["instructions processed 100 -> 90".into()];
        let mut skipped = outcome(OutcomeKind::Case, "needs 6.6", OutcomeStatus::Skipped);
        skipped.message = Some("bpf_loop is not available".into());
        let mut case = outcome(OutcomeKind::Case, "ssh | telnet", OutcomeStatus::Failed);
        case.message = Some("return: expected XDP_DROP, got XDP_PASS".into());
        case.file = Some(PathBuf::from("tests/fw.toml"));
        case.line = Some(10);
        Outcomes {
            format: RESULTS_FORMAT,
            command: RunKind::Test,
            kernels: vec![
                KernelOutcome {
                    label: "6.1".into(),
                    release: "6.1.0-50-cloud-amd64".into(),
                    seconds: 2.5,
                    error: None,
                },
                KernelOutcome {
                    label: "7.2".into(),
                    release: String::new(),
                    seconds: 300.0,
                    error: Some("timed out after 300 s".into()),
                },
            ],
            outcomes: vec![rejected, cheap, skipped, case],
        }
    }

    #[test]
    fn junit_has_a_suite_per_kernel_with_counts_that_match_its_tests() {
        let xml = junit(&sample());
        let doc = roxmltree::Document::parse(&xml).unwrap();
        let root = doc.root_element();
        assert_eq!(root.tag_name().name(), "testsuites");
        assert_eq!(root.attribute("tests"), Some("4"));
        assert_eq!(root.attribute("failures"), Some("2"));
        let suites: Vec<_> = root.children().filter(|n| n.is_element()).collect();
        let names: Vec<_> = suites.iter().filter_map(|s| s.attribute("name")).collect();
        // In the order the kernels were asked for; 7.2 ran nothing.
        assert_eq!(names, ["test on 6.1", "test on 7.2"]);
        let six = suites[0];
        assert_eq!(six.attribute("tests"), Some("4"));
        assert_eq!(six.attribute("skipped"), Some("1"));
        let case = |name| {
            six.children()
                .find(|c| c.attribute("name") == Some(name))
                .unwrap()
        };
        let failure = case("xdp_fw")
            .children()
            .find(|n| n.has_tag_name("failure"))
            .unwrap();
        assert_eq!(
            failure.attribute("message"),
            Some("rejected: 100% <bad>, sure: yes")
        );
        assert_eq!(failure.attribute("type"), Some("null-deref"));
        assert!(failure.text().unwrap().contains("R0 invalid"));
        assert_eq!(case("xdp_fw").attribute("classname"), Some("fw"));
        let skipped = case("needs 6.6")
            .children()
            .find(|n| n.has_tag_name("skipped"))
            .unwrap();
        assert_eq!(
            skipped.attribute("message"),
            Some("bpf_loop is not available")
        );
        let notes = case("tc_fw")
            .children()
            .find(|n| n.has_tag_name("system-out"))
            .unwrap();
        assert!(
            notes
                .text()
                .unwrap()
                .contains("note: instructions processed")
        );
        assert!(case("tc_fw").children().all(|n| !n.has_tag_name("failure")));
        assert_eq!(suites[1].attribute("time"), Some("300.000"));
    }

    #[test]
    fn annotations_point_at_the_line_and_escape_what_github_would_misread() {
        let out = github_commands(&sample());
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[0],
            "::error file=src/fw%2Cv2.bpf.c,line=31,title=fw/xdp_fw on 6.1::\
             a pointer that may be NULL is dereferenced: rejected: 100%25 <bad>, sure: yes"
        );
        assert_eq!(lines[1], "::group::fw/xdp_fw on 6.1");
        // A log line that looks like a command is not one.
        assert!(lines.contains(&" ::warning::not a command"), "{out}");
        assert!(lines.contains(&"::endgroup::"));
        assert!(lines.contains(
            &"::error file=tests/fw.toml,line=10,title=case `ssh | telnet` on 6.1::\
              return: expected XDP_DROP, got XDP_PASS"
        ));
        assert_eq!(
            *lines.last().unwrap(),
            "::error title=kernel 7.2::timed out after 300 s"
        );
        // Passes and skips are not annotated.
        assert!(
            !out.contains("tc_fw") && !out.contains("needs 6.6"),
            "{out}"
        );
        assert_eq!(escape_property("a:b,c%\n"), "a%3Ab%2Cc%25%0A");
    }

    #[test]
    fn the_job_summary_has_the_kernels_the_matrix_and_each_failure() {
        let md = job_summary(&sample());
        assert!(md.starts_with("## ebpf-harness test: failed\n"), "{md}");
        assert!(
            md.contains("| 6.1 | 6.1.0-50-cloud-amd64 | 1 | 2 | 1 | 2.5 s |"),
            "{md}"
        );
        // A kernel that did not finish counts as a failure of its own.
        assert!(md.contains("| 7.2 |  | 0 | 1 | 0 | 300.0 s |"), "{md}");
        assert!(md.contains("| program | 6.1 | 7.2 |"), "{md}");
        assert!(
            md.contains("| `fw/xdp_fw` | ❌ rejected 120 `null-deref` | · |"),
            "{md}"
        );
        assert!(md.contains("| `fw/tc_fw` | ✅ 90 (-10.0%) | · |"), "{md}");
        assert!(md.contains("- **kernel 7.2** did not finish: timed out after 300 s"));
        assert!(md.contains(
            "- **fw/xdp_fw** on 6.1 at `src/fw,v2.bpf.c:31` (a pointer that may be NULL is dereferenced): rejected"
        ));
        assert!(
            md.contains("- **case `ssh | telnet`** on 6.1 at `tests/fw.toml:10`"),
            "{md}"
        );
        assert!(
            md.contains("): rejected: 100% &lt;bad>, sure: yes\n"),
            "{md}"
        );
        assert!(md.contains("### Notes\n\n- fw/tc_fw on 6.1: instructions processed 100 -> 90"));
        let mut passing = sample();
        passing.kernels.truncate(1);
        passing
            .outcomes
            .retain(|o| o.status != OutcomeStatus::Failed);
        let md = job_summary(&passing);
        assert!(md.starts_with("## ebpf-harness test: passed\n") && !md.contains("### Failures"));
        assert_eq!(
            outcomes_line(&passing),
            "test: 1 passed, 0 failed, 1 skipped on 6.1\n"
        );
    }
}
