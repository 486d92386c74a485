//! Compares what a kernel reported for a case with what the case expects,
//! into typed failures that point at the expectation's line.

use std::fmt::{self, Write as _};

use harness_btf_value::{Mismatch, TypeDesc, format, mismatches, sum};
use harness_protocol::{ActionOutput, CaseOutcome, CaseStep, MapDump, MapEntry, TestRunOutput};

use crate::{
    compile::{CompiledCase, MapExpectation, Want},
    object::{MapInfo, ObjectInfo},
    retval,
};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    Passed,
    /// Every expectation that does not hold.
    Failed(Vec<CaseFailure>),
    /// With the probe result that made the kernel unable to run it.
    Skipped(String),
    /// The case could not run (load failure, test_run refused the input...).
    Error {
        step: CaseStep,
        error: String,
    },
}

/// One expectation that does not hold, at its line in the case file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaseFailure {
    pub line: usize,
    pub failed: Failed,
}

/// Which expectation failed, and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failed {
    /// `expect.return`: both named where the program type names them.
    Return { expected: String, got: String },
    /// `expect.packet` / `expect.packet_hex`, one difference at a time.
    Packet(harness_packet::Difference),
    /// `expect.ctx`.
    Ctx(Mismatch),
    /// `expect.ctx`, but the kernel returned no context.
    CtxMissing,
    /// `expect.flow_keys`.
    FlowKeys(Mismatch),
    /// A step's `expect.return`, `expect.result` or `expect.exit` (step 0-based).
    Step {
        step: usize,
        what: String,
        expected: String,
        got: String,
    },
    /// `expect.events`: not as many events as expected.
    EventCount {
        expected: usize,
        got: usize,
        events: Vec<String>,
    },
    /// `expect.events`: one event (0-based) differs.
    Event { index: usize, mismatch: Mismatch },
    /// A record the case's event type cannot decode.
    Undecodable { index: usize, problem: String },
    /// A perf buffer overflowed: the kernel dropped records.
    EventsLost { map: String, count: u64 },
    /// `expect.maps`: one entry.
    Map {
        map: String,
        key: String,
        problem: MapProblem,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MapProblem {
    /// Expected absent, present with this value.
    Present {
        got: String,
    },
    /// Expected present, absent.
    Missing,
    Value(Mismatch),
    Cpu {
        cpu: usize,
        mismatch: Mismatch,
    },
    /// A per-CPU value for a CPU the kernel does not have.
    NoSuchCpu {
        cpu: usize,
        cpus: usize,
    },
}

impl fmt::Display for CaseFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let line = self.line;
        match &self.failed {
            Failed::Return { expected, got } => {
                write!(
                    f,
                    "line {line}: return value: expected {expected}, got {got}"
                )
            }
            Failed::Packet(d) => write!(f, "line {line}: output packet: {d}"),
            Failed::Ctx(m) => write!(f, "line {line}: context after the run: {m}"),
            Failed::FlowKeys(m) => write!(f, "line {line}: flow keys: {m}"),
            Failed::CtxMissing => write!(
                f,
                "line {line}: context after the run: the kernel did not return it"
            ),
            Failed::Step {
                step,
                what,
                expected,
                got,
            } => write!(
                f,
                "line {line}: step {} ({what}): expected {expected}, got {got}",
                step + 1
            ),
            Failed::EventCount {
                expected,
                got,
                events,
            } => {
                write!(f, "line {line}: expected {expected} events, got {got}")?;
                for (i, e) in events.iter().enumerate() {
                    write!(f, "\n        {}. {e}", i + 1)?;
                }
                Ok(())
            }
            Failed::Event { index, mismatch } => {
                write!(f, "line {line}: event {}: {mismatch}", index + 1)
            }
            Failed::Undecodable { index, problem } => {
                write!(f, "line {line}: event {}: {problem}", index + 1)
            }
            Failed::EventsLost { map, count } => write!(
                f,
                "line {line}: the kernel lost {count} events of `{map}`: its perf buffer overflowed \
                 (the program sends faster than the harness reads; send less, or use a ring buffer)"
            ),
            Failed::Map { map, key, problem } => {
                write!(f, "line {line}: map `{map}` key {key}")?;
                match problem {
                    MapProblem::Present { got } => write!(f, ": expected no entry, got {got}"),
                    MapProblem::Missing => f.write_str(": expected an entry, there is none"),
                    MapProblem::Value(m) => write!(f, ": {m}"),
                    MapProblem::Cpu { cpu, mismatch } => write!(f, " on CPU {cpu}: {mismatch}"),
                    MapProblem::NoSuchCpu { cpu, cpus } => write!(
                        f,
                        ": expected a value on CPU {cpu}, the kernel has {cpus} CPU{}",
                        if *cpus == 1 { "" } else { "s" }
                    ),
                }
            }
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaseResult {
    pub status: Status,
    /// The return value, named where the program type names it.
    pub retval: Option<String>,
    /// The object's maps after the run, formatted through BTF, for
    /// snapshots; `None` when the case leaves them out.
    pub maps: Option<String>,
    /// A flow dissector's output, `struct bpf_flow_keys` formatted, for
    /// snapshots (instead of an output packet).
    pub flow_keys: Option<String>,
    /// A case of steps: what each step did, one per line.
    pub steps: Option<String>,
    /// A case of steps with `events`: the decoded events, one per line,
    /// unstable fields normalised.
    pub events: Option<String>,
}

pub fn evaluate(case: &CompiledCase, outcome: &CaseOutcome, object: &ObjectInfo) -> CaseResult {
    let (out, dumps) = match outcome {
        CaseOutcome::Skipped { reason } => return unfinished(Status::Skipped(reason.clone())),
        CaseOutcome::Error { step, error } => {
            return unfinished(Status::Error {
                step: *step,
                error: error.clone(),
            });
        }
        CaseOutcome::Ran {
            output: ActionOutput::TestRun(out),
            maps,
        } => (out, maps),
        CaseOutcome::Ran {
            output: ActionOutput::Steps(out),
            maps,
        } => return crate::steps_eval::evaluate(case, out, maps, object),
    };
    let mut failures = Vec::new();
    let got = retval::describe(&case.prog_type, out.retval);
    check_return(case, out, &got, &mut failures);
    check_packet(case, out, &mut failures);
    check_ctx(case, out, &mut failures);
    if let Some((ty, want)) = &case.expect.flow_keys {
        failures.extend(
            mismatches(ty, want, &out.data_out)
                .into_iter()
                .map(|m| CaseFailure {
                    line: case.expect.flow_keys_line,
                    failed: Failed::FlowKeys(m),
                }),
        );
    }
    check_maps(case, object, dumps, &mut failures);
    CaseResult {
        status: if failures.is_empty() {
            Status::Passed
        } else {
            Status::Failed(failures)
        },
        retval: Some(got),
        maps: case
            .snapshot_maps
            .then(|| format_dumps(dumps, object, case.percpu_sum)),
        flow_keys: (case.prog_type == "flow_dissector")
            .then(|| object.struct_type("bpf_flow_keys"))
            .flatten()
            .map(|ty| format(&ty, &out.data_out, "")),
        steps: None,
        events: None,
    }
}

fn unfinished(status: Status) -> CaseResult {
    CaseResult {
        status,
        retval: None,
        maps: None,
        flow_keys: None,
        steps: None,
        events: None,
    }
}

/// `expect.maps` of `case` against the dumps.
pub(crate) fn check_maps(
    case: &CompiledCase,
    object: &ObjectInfo,
    dumps: &[MapDump],
    failures: &mut Vec<CaseFailure>,
) {
    for e in &case.expect.maps {
        if let Some(info) = object.maps.get(&e.map) {
            check_map_entry(e, info, dumps, failures);
        }
    }
}

fn check_return(
    case: &CompiledCase,
    out: &TestRunOutput,
    got: &str,
    failures: &mut Vec<CaseFailure>,
) {
    if let Some(want) = case.expect.retval
        && want != out.retval
    {
        failures.push(CaseFailure {
            line: case.expect.retval_line,
            failed: Failed::Return {
                expected: retval::describe(&case.prog_type, want),
                got: got.to_owned(),
            },
        });
    }
}

fn check_packet(case: &CompiledCase, out: &TestRunOutput, failures: &mut Vec<CaseFailure>) {
    let Some(want) = &case.expect.packet else {
        return;
    };
    failures.extend(
        harness_packet::diff(want, &out.data_out)
            .into_iter()
            .map(|d| CaseFailure {
                line: case.expect.packet_line,
                failed: Failed::Packet(d),
            }),
    );
}

fn check_ctx(case: &CompiledCase, out: &TestRunOutput, failures: &mut Vec<CaseFailure>) {
    let Some((ty, want)) = &case.expect.ctx else {
        return;
    };
    let line = case.expect.ctx_line;
    match &out.ctx_out {
        // Empty when every field given is there and holds its value (an
        // older kernel's shorter context will do).
        Some(got) => failures.extend(mismatches(ty, want, got).into_iter().map(|m| CaseFailure {
            line,
            failed: Failed::Ctx(m),
        })),
        None => failures.push(CaseFailure {
            line,
            failed: Failed::CtxMissing,
        }),
    }
}

fn check_map_entry(
    e: &MapExpectation,
    info: &MapInfo,
    dumps: &[MapDump],
    failures: &mut Vec<CaseFailure>,
) {
    let entry: Option<&MapEntry> = dumps
        .iter()
        .find(|d| d.name == e.map)
        .and_then(|d| d.entries.iter().find(|x| x.key.0 == e.key));
    let mut fail = |problem| {
        failures.push(CaseFailure {
            line: e.line,
            failed: Failed::Map {
                map: e.map.clone(),
                key: e.key_text.clone(),
                problem,
            },
        });
    };
    let values = |x: &MapEntry| -> Vec<Vec<u8>> { x.values.iter().map(|v| v.0.clone()).collect() };
    match (&e.want, entry) {
        (Want::Absent, None) => {}
        (Want::Absent, Some(x)) => fail(MapProblem::Present {
            got: format_summed(&info.value, &values(x)),
        }),
        (_, None) => fail(MapProblem::Missing),
        (Want::Value(want), Some(x)) => {
            let values = values(x);
            // Per-CPU maps compare the sum over CPUs: counters are what they hold.
            let got = if info.is_per_cpu() {
                sum(&info.value, &values)
            } else {
                values[0].clone()
            };
            // Only the fields given, none when they all hold.
            for m in mismatches(&info.value, want, &got) {
                fail(MapProblem::Value(m));
            }
        }
        (Want::PerCpu(wants), Some(x)) => {
            for (cpu, want) in wants.iter().enumerate() {
                match x.values.get(cpu) {
                    Some(got) => {
                        for mismatch in mismatches(&info.value, want, got) {
                            fail(MapProblem::Cpu { cpu, mismatch });
                        }
                    }
                    None => fail(MapProblem::NoSuchCpu {
                        cpu,
                        cpus: x.values.len(),
                    }),
                }
            }
        }
    }
}

/// A value as the snapshot shows it: per-CPU values summed.
fn format_summed(ty: &TypeDesc, values: &[Vec<u8>]) -> String {
    match values {
        [one] => format(ty, one, ""),
        _ => format!(
            "{} (sum over {} CPUs)",
            format(ty, &sum(ty, values), ""),
            values.len()
        ),
    }
}

/// The maps after a run, one entry per line, deterministic.
pub fn format_dumps(dumps: &[MapDump], object: &ObjectInfo, percpu_sum: bool) -> String {
    let mut out = String::new();
    for d in dumps {
        let Some(info) = object.maps.get(&d.name) else {
            continue;
        };
        // Read-only data cannot change: nothing to see after a run.
        if info.spec.kind == harness_bpf::MapKind::Rodata {
            continue;
        }
        let nonzero: Vec<_> = d
            .entries
            .iter()
            // Arrays always have every index; list only the interesting ones.
            .filter(|e| {
                !info.spec.map_type.is_array()
                    || e.values.iter().any(|v| v.0.iter().any(|b| *b != 0))
            })
            .collect();
        let _ = writeln!(
            out,
            "{} ({}, key {}, value {}){}",
            d.name,
            d.map_type,
            info.key,
            info.value,
            if nonzero.is_empty() { ": empty" } else { ":" }
        );
        for e in nonzero {
            let values: Vec<Vec<u8>> = e.values.iter().map(|v| v.0.clone()).collect();
            let key = format(&info.key, &e.key.0, &d.name);
            if info.is_per_cpu() && !percpu_sum {
                for (cpu, v) in values.iter().enumerate() {
                    let _ = writeln!(out, "  {key} [cpu{cpu}] => {}", format(&info.value, v, ""));
                }
            } else {
                let v = if info.is_per_cpu() {
                    sum(&info.value, &values)
                } else {
                    values[0].clone()
                };
                let _ = writeln!(out, "  {key} => {}", format(&info.value, &v, ""));
            }
        }
    }
    out
}
