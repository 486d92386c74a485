//! A case of steps judged: each step's outcome, the events decoded from
//! its ring buffer (and normalised for snapshots), the maps afterwards.

use std::fmt::Write as _;

use harness_btf_value::{TypeDesc, format, mismatches};
use harness_protocol::{MapDump, Step, StepOutput, StepsOutput};

use crate::{
    compile::CompiledCase,
    errno,
    evaluate::{CaseFailure, CaseResult, Failed, Status, check_maps, format_dumps},
    object::ObjectInfo,
    retval,
    steps::{EventDecoder, StepWant},
};

pub(crate) fn evaluate(
    case: &CompiledCase,
    out: &StepsOutput,
    dumps: &[MapDump],
    object: &ObjectInfo,
) -> CaseResult {
    let mut failures = Vec::new();
    let plan_steps: &[Step] = case.steps.as_ref().map_or(&[], |s| &s.plan.steps);
    let mut steps_text = String::new();
    for (i, (step, output)) in plan_steps.iter().zip(&out.steps).enumerate() {
        let got = describe_output(&case.prog_type, output);
        let _ = writeln!(steps_text, "  {}. {}: {got}", i + 1, step);
    }
    if let Some(sc) = &case.steps {
        for e in &sc.expect {
            let Some(output) = out.steps.get(e.step) else {
                continue;
            };
            let what = plan_steps
                .get(e.step)
                .map(ToString::to_string)
                .unwrap_or_default();
            let mismatch = match (&e.want, output) {
                (StepWant::Return(want), StepOutput::TestRun(t)) => {
                    (*want != t.retval).then(|| {
                        (
                            retval::describe(&case.prog_type, *want),
                            retval::describe(&case.prog_type, t.retval),
                        )
                    })
                }
                (StepWant::Outcome(want), StepOutput::Done { errno, .. }) => {
                    (!want.holds(*errno)).then(|| (want.to_string(), errno::describe(*errno)))
                }
                (StepWant::Exit(want), StepOutput::Done { errno, exit_status }) => {
                    match exit_status {
                        Some(s) if s == want => None,
                        Some(s) => {
                            Some((format!("exit status {want}"), format!("exit status {s}")))
                        }
                        None => Some((
                            format!("exit status {want}"),
                            format!("{} (it did not run)", errno::describe(*errno)),
                        )),
                    }
                }
                (_, other) => Some((
                    "a different kind of step".to_owned(),
                    describe_output(&case.prog_type, other),
                )),
            };
            if let Some((expected, got)) = mismatch {
                failures.push(CaseFailure {
                    line: e.line,
                    failed: Failed::Step {
                        step: e.step,
                        what,
                        expected,
                        got,
                    },
                });
            }
        }
    }
    let events = case
        .steps
        .as_ref()
        .and_then(|sc| sc.events.as_ref().map(|d| (sc, d)))
        .map(|(sc, decoder)| {
            let records: Vec<(u32, &[u8])> = out
                .events
                .iter()
                .filter(|r| r.map == decoder.map)
                .map(|r| (r.step, r.data.0.as_slice()))
                .collect();
            let line = sc.expected_events.as_ref().map_or(case.line, |(l, _)| *l);
            for l in out.lost.iter().filter(|l| l.map == decoder.map) {
                failures.push(CaseFailure {
                    line,
                    failed: Failed::EventsLost {
                        map: l.map.clone(),
                        count: l.count,
                    },
                });
            }
            let mut text = Vec::new();
            let mut decoded: Vec<Option<(&TypeDesc, &[u8])>> = Vec::new();
            for (index, (step, bytes)) in records.iter().enumerate() {
                match decode(decoder, bytes) {
                    Ok(ty) => {
                        text.push(format!(
                            "{} (step {})",
                            format_event(ty, bytes, &decoder.normalise),
                            step + 1
                        ));
                        decoded.push(Some((ty, bytes)));
                    }
                    Err(problem) => {
                        text.push(format!("undecodable: {problem}"));
                        decoded.push(None);
                        failures.push(CaseFailure {
                            line,
                            failed: Failed::Undecodable { index, problem },
                        });
                    }
                }
            }
            if let Some((line, expected)) = sc.expected_count
                && expected != records.len()
            {
                failures.push(CaseFailure {
                    line,
                    failed: Failed::EventCount {
                        expected,
                        got: records.len(),
                        events: text.iter().take(5).cloned().collect(),
                    },
                });
            }
            if let Some((line, expected)) = &sc.expected_events {
                if expected.len() != records.len() {
                    failures.push(CaseFailure {
                        line: *line,
                        failed: Failed::EventCount {
                            expected: expected.len(),
                            got: records.len(),
                            events: text.clone(),
                        },
                    });
                } else {
                    for (index, (want, got)) in expected.iter().zip(&decoded).enumerate() {
                        let Some((ty, bytes)) = got else { continue };
                        if type_name(ty) != type_name(&want.ty) {
                            failures.push(CaseFailure {
                                line: want.line,
                                failed: Failed::Undecodable {
                                    index,
                                    problem: format!(
                                        "expected a `struct {}`, got a `struct {}`",
                                        type_name(&want.ty),
                                        type_name(ty)
                                    ),
                                },
                            });
                            continue;
                        }
                        let bytes = &bytes[..ty.size().min(bytes.len())];
                        failures.extend(mismatches(&want.ty, &want.want, bytes).into_iter().map(
                            |mismatch| CaseFailure {
                                line: want.line,
                                failed: Failed::Event { index, mismatch },
                            },
                        ));
                    }
                }
            }
            let mut s = format!(
                "events from `{}` ({} record{}):\n",
                decoder.map,
                records.len(),
                if records.len() == 1 { "" } else { "s" }
            );
            for (i, t) in text.iter().enumerate() {
                let _ = writeln!(s, "  {}. {t}", i + 1);
            }
            s
        });
    check_maps(case, object, dumps, &mut failures);
    CaseResult {
        status: if failures.is_empty() {
            Status::Passed
        } else {
            Status::Failed(failures)
        },
        retval: None,
        maps: case
            .snapshot_maps
            .then(|| format_dumps(dumps, object, case.percpu_sum)),
        flow_keys: None,
        steps: Some(steps_text),
        events,
    }
}

fn type_name(ty: &TypeDesc) -> &str {
    match ty {
        TypeDesc::Struct { name, .. } => name,
        _ => "value",
    }
}

/// The record's type, when its size fits it (perf samples come padded to
/// 8 bytes).
fn decode<'d>(decoder: &'d EventDecoder, bytes: &[u8]) -> Result<&'d TypeDesc, String> {
    let ty = decoder.type_of(bytes)?;
    let fits = if decoder.padded {
        (ty.size()..ty.size() + 8).contains(&bytes.len())
    } else {
        ty.size() == bytes.len()
    };
    if !fits {
        return Err(format!(
            "a {}-byte record is not a `struct {}` ({} bytes): does the program submit another type to `{}`?",
            bytes.len(),
            type_name(ty),
            ty.size(),
            decoder.map
        ));
    }
    Ok(ty)
}

/// `exec_event { pid: [pid], uid: 0, comm: "true", args: "/bin/true\0x" }`.
pub fn format_event(ty: &TypeDesc, bytes: &[u8], normalise: &[String]) -> String {
    let TypeDesc::Struct { name, members, .. } = ty else {
        return format(ty, bytes, "");
    };
    let fields: Vec<String> = members
        .iter()
        .filter(|m| {
            !m.name.is_empty() && !m.name.starts_with("pad") && !m.name.starts_with("__pad")
        })
        .map(|m| {
            if normalise.contains(&m.name) {
                return format!("{}: [{}]", m.name, m.name);
            }
            let at = (m.bit_offset / 8) as usize;
            let field = bytes
                .get(at..(at + m.ty.size()).min(bytes.len()))
                .unwrap_or_default();
            let value = match text_with_nuls(&m.ty, field) {
                Some(t) => t,
                None => format(&m.ty, field, &m.name),
            };
            format!("{}: {value}", m.name)
        })
        .collect();
    format!("{name} {{ {} }}", fields.join(", "))
}

/// A char array holding several NUL-separated strings (an argv, as
/// /proc/pid/cmdline has it), shown whole: `"/bin/true\0hello"`.
fn text_with_nuls(ty: &TypeDesc, bytes: &[u8]) -> Option<String> {
    let TypeDesc::Array { elem, .. } = ty else {
        return None;
    };
    let last = bytes.iter().rposition(|b| *b != 0)?;
    let text = &bytes[..=last];
    let printable = text
        .iter()
        .all(|b| b.is_ascii_graphic() || *b == b' ' || *b == 0);
    (elem.is_byte() && printable && text.contains(&0) && text[0] != 0)
        .then(|| format!("{:?}", String::from_utf8_lossy(text)))
}

fn describe_output(prog_type: &str, output: &StepOutput) -> String {
    match output {
        StepOutput::TestRun(t) => format!("returned {}", retval::describe(prog_type, t.retval)),
        StepOutput::Done {
            errno,
            exit_status: Some(s),
        } => format!("{}, exit status {s}", errno::describe(*errno)),
        StepOutput::Done { errno, .. } => errno::describe(*errno),
    }
}

#[cfg(test)]
mod tests {
    use harness_btf_value::MemberDesc;

    use super::*;

    fn int(size: usize) -> TypeDesc {
        TypeDesc::Int {
            name: format!("u{}", size * 8),
            size,
            signed: false,
            big_endian: false,
            is_bool: false,
        }
    }

    fn chars(len: usize) -> TypeDesc {
        TypeDesc::Array {
            elem: Box::new(int(1)),
            len,
        }
    }

    #[test]
    fn only_printable_char_arrays_with_inner_nuls_read_as_joined_strings() {
        let text = |ty: &TypeDesc, b: &[u8]| text_with_nuls(ty, b);
        assert_eq!(
            text(&chars(8), b"a\0bc\0\0\0\0").as_deref(),
            Some(r#""a\0bc""#)
        );
        assert_eq!(
            text(&chars(4), b"abc\0"),
            None,
            "one string: the usual format"
        );
        assert_eq!(text(&chars(4), b"\0abc"), None, "starts empty");
        assert_eq!(text(&chars(4), b"a\0\x01b"), None, "not printable");
        assert_eq!(text(&chars(4), b"\0\0\0\0"), None, "all zero");
        let words = TypeDesc::Array {
            elem: Box::new(int(4)),
            len: 2,
        };
        assert_eq!(text(&words, b"a\0b\0\0\0\0\0"), None, "not chars");
        assert_eq!(text(&int(4), b"a\0b\0"), None, "not an array");
    }

    #[test]
    fn events_show_named_fields_with_unstable_ones_normalised() {
        let member = |name: &str, byte: u32, ty: TypeDesc| MemberDesc {
            name: name.into(),
            bit_offset: byte * 8,
            bits: None,
            ty,
        };
        let ty = TypeDesc::Struct {
            name: "ev".into(),
            size: 16,
            members: vec![
                member("pid", 0, int(4)),
                member("pad", 4, int(4)),
                member("__pad2", 8, int(2)),
                member("", 10, int(2)),
                member("uid", 12, int(4)),
            ],
            is_union: false,
        };
        let mut bytes = 42u32.to_ne_bytes().to_vec();
        bytes.extend([9; 8]);
        bytes.extend(7u32.to_ne_bytes());
        assert_eq!(
            format_event(&ty, &bytes, &["pid".to_owned()]),
            "ev { pid: [pid], uid: 7 }"
        );
        assert_eq!(format_event(&ty, &bytes, &[]), "ev { pid: 42, uid: 7 }");
        assert_eq!(format_event(&int(4), &bytes[..4], &[]), "42");
    }
}
