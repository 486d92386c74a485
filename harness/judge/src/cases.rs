//! A case's record judged against its expectations, and its snapshot: the
//! return value, the output packet and (unless the case opts out) the maps.

use harness_cases::{CompiledCase, Status};
use harness_kernels::Target;
use harness_project::Prepared;
use harness_protocol::{ActionOutput, CaseReport};
use harness_snapshots::Observation;

use crate::finding::{FeatureShortfall, FindingKind, Severity};

/// What the names of case snapshots start with.
pub(crate) const SNAPSHOT_KIND: &str = "case__";

/// What became of one case on one kernel.
pub(crate) enum CaseVerdict {
    Passed,
    /// A finding (a failure or a skip), and whether it counts as a skip.
    Finding(Severity, FindingKind),
}

pub(crate) fn subject(case: &CompiledCase) -> crate::Subject {
    crate::Subject::Case {
        file: case.file.clone(),
        line: case.line,
        name: case.name.clone(),
    }
}

/// Judges one case record; the observation is its snapshot, when it ran.
pub(crate) fn judge(
    prepared: &Prepared,
    target: &Target,
    case: &CompiledCase,
    report: &CaseReport,
    failed_probes: &[String],
) -> (CaseVerdict, Option<Observation>) {
    let Some(object) = prepared.object(&case.object) else {
        return (CaseVerdict::Passed, None);
    };
    let result = harness_cases::evaluate(case, &report.outcome, &object.info);
    let verdict = match result.status {
        Status::Passed => CaseVerdict::Passed,
        Status::Skipped(reason) => skip(target, case, failed_probes, reason),
        Status::Failed(failures) => {
            CaseVerdict::Finding(Severity::Failure, FindingKind::CaseFailed { failures })
        }
        Status::Error { step, error } => {
            CaseVerdict::Finding(Severity::Failure, FindingKind::CaseError { step, error })
        }
    };
    let observation = match (&result.retval, &result.steps, &report.outcome) {
        (
            Some(ret),
            _,
            harness_protocol::CaseOutcome::Ran {
                output: ActionOutput::TestRun(out),
                ..
            },
        ) => Some(observation(
            target,
            case,
            ret,
            match &result.flow_keys {
                Some(keys) => Output::FlowKeys(keys),
                None => Output::Packet(&out.data_out),
            },
            result.maps.as_deref(),
        )),
        (_, Some(steps), _) => Some(steps_observation(
            target,
            case,
            steps,
            result.events.as_deref(),
            result.maps.as_deref(),
        )),
        _ => None,
    };
    (verdict, observation)
}

/// A skip is fine on a kernel older than the feature the failed probe
/// checks; on a newer one, the kernel should have it: a failure.
fn skip(
    target: &Target,
    case: &CompiledCase,
    failed_probes: &[String],
    reason: String,
) -> CaseVerdict {
    let shortfalls: Vec<FeatureShortfall> = case
        .plan
        .requires
        .iter()
        .filter(|r| failed_probes.contains(r))
        .filter_map(|r| harness_cases::features::feature(r))
        .filter(|f| f.expected_on(target.version))
        .map(|f| FeatureShortfall {
            name: f.name.to_owned(),
            what: f.what.to_owned(),
            since: f.since,
        })
        .collect();
    match target.version {
        Some(version) if !shortfalls.is_empty() => CaseVerdict::Finding(
            Severity::Failure,
            FindingKind::UnexpectedSkip {
                reason,
                version,
                features: shortfalls,
            },
        ),
        _ => CaseVerdict::Finding(Severity::Skip, FindingKind::Skipped { reason }),
    }
}

/// A case of steps: what each step did, the events, the maps.
fn steps_observation(
    target: &Target,
    case: &CompiledCase,
    steps: &str,
    events: Option<&str>,
    maps: Option<&str>,
) -> Observation {
    let events = events
        .map(|e| format!("\n\n{}", e.trim_end()))
        .unwrap_or_default();
    let maps = match maps {
        Some(maps) => format!("\n\nmaps after the last step:\n{maps}"),
        None => String::new(),
    };
    Observation {
        name: snapshot_name(case),
        line: target.line(),
        content: format!(
            "case: {}\nprogram: {}/{}\nsteps:\n{}{events}{maps}",
            case.name,
            case.object,
            case.program,
            steps.trim_end()
        ),
        source: case.file.display().to_string(),
        expression: format!("steps, events and maps after `{}`", case.name),
    }
}

pub(crate) fn snapshot_name(case: &CompiledCase) -> String {
    format!("{}{}", snapshot_prefix(&case.file), slug(&case.name))
}

/// What the snapshot names of a case file's cases start with.
pub(crate) fn snapshot_prefix(case_file: &std::path::Path) -> String {
    let stem = case_file
        .file_stem()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    format!("{SNAPSHOT_KIND}{}__", slug(&stem))
}

/// What a test run handed back: a packet, or a flow dissector's keys.
enum Output<'a> {
    Packet(&'a [u8]),
    FlowKeys(&'a str),
}

fn observation(
    target: &Target,
    case: &CompiledCase,
    ret: &str,
    output: Output<'_>,
    maps: Option<&str>,
) -> Observation {
    let input: &[u8] = match &case.plan.action {
        harness_protocol::Action::TestRun(input) => &input.data,
        harness_protocol::Action::Steps(_) => &[],
    };
    let data_out = match output {
        Output::Packet(data) => data,
        Output::FlowKeys(keys) => {
            return Observation {
                name: snapshot_name(case),
                line: target.line(),
                content: format!(
                    "case: {}\nprogram: {}/{}\nreturn: {ret}\nflow keys: {keys}{}",
                    case.name,
                    case.object,
                    case.program,
                    maps.map(|m| format!("\n\nmaps after the run:\n{m}"))
                        .unwrap_or_default()
                ),
                source: case.file.display().to_string(),
                expression: format!("return value, flow keys and maps after `{}`", case.name),
            };
        }
    };
    let output = if data_out == input {
        format!("unchanged ({} bytes)", data_out.len())
    } else {
        let fields: Vec<String> = harness_packet::describe(data_out)
            .into_iter()
            .map(|f| format!("  {}: {}", f.name, f.value))
            .collect();
        format!(
            "{} bytes, rewritten:\n{}",
            data_out.len(),
            fields.join("\n")
        )
    };
    let maps = match maps {
        Some(maps) => format!("\n\nmaps after the run:\n{maps}"),
        None => String::new(),
    };
    Observation {
        name: snapshot_name(case),
        line: target.line(),
        content: format!(
            "case: {}\nprogram: {}/{}\nreturn: {ret}\noutput packet: {output}{maps}",
            case.name, case.object, case.program
        ),
        source: case.file.display().to_string(),
        expression: format!("return value, output packet and maps after `{}`", case.name),
    }
}

/// `blocked source is dropped` -> `blocked_source_is_dropped`.
fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    out.trim_matches('_').to_owned()
}

#[cfg(test)]
mod tests {
    use super::slug;

    #[test]
    fn slugs_are_snake_case() {
        assert_eq!(
            slug("blocked source is dropped"),
            "blocked_source_is_dropped"
        );
        assert_eq!(slug("  TCP -> port 80 #2 "), "tcp_port_80_2");
    }
}
