//! Compares what a kernel reported for a case with what the case expects.

use std::fmt::Write as _;

use harness_btf_value::{TypeDesc, format, mismatches, sum};
use harness_protocol::{CaseOutcome, MapDump};

use crate::{
    compile::{CompiledCase, Want},
    object::ObjectInfo,
    retval,
};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    Passed,
    /// Each line says which expectation failed: expected vs got.
    Failed(Vec<String>),
    /// With the probe result that made the kernel unable to run it.
    Skipped(String),
    /// The case could not run (load failure, test_run refused the input...).
    Error(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaseResult {
    pub status: Status,
    /// The return value, named where the program type names it.
    pub retval: Option<String>,
    /// The object's maps after the run, formatted through BTF, for snapshots.
    pub maps: Option<String>,
}

pub fn evaluate(case: &CompiledCase, outcome: &CaseOutcome, object: &ObjectInfo) -> CaseResult {
    let (ret, data_out, ctx_out, dumps) = match outcome {
        CaseOutcome::Skipped { reason } => {
            return CaseResult {
                status: Status::Skipped(reason.clone()),
                retval: None,
                maps: None,
            };
        }
        CaseOutcome::Error { error } => {
            return CaseResult {
                status: Status::Error(error.clone()),
                retval: None,
                maps: None,
            };
        }
        CaseOutcome::Ran {
            retval,
            data_out,
            ctx_out,
            maps,
            ..
        } => (*retval, data_out, ctx_out, maps),
    };
    let mut failures = Vec::new();
    let got = retval::describe(&case.prog_type, ret);
    if let Some(want) = case.expect.retval
        && want != ret
    {
        failures.push(format!(
            "line {}: return value: expected {}, got {got}",
            case.expect.retval_line,
            retval::describe(&case.prog_type, want)
        ));
    }
    if let Some(want) = &case.expect.packet {
        for line in harness_packet::diff(want, data_out) {
            failures.push(format!(
                "line {}: output packet: {line}",
                case.expect.packet_line
            ));
        }
    }
    if let Some((ty, want)) = &case.expect.ctx {
        match ctx_out {
            Some(got) if want.matches_prefix(got) => {}
            Some(got) => {
                for m in mismatches(ty, want, got) {
                    failures.push(format!(
                        "line {}: context after the run: {m}",
                        case.expect.ctx_line
                    ));
                }
            }
            None => failures.push(format!(
                "line {}: context after the run: the kernel did not return it",
                case.expect.ctx_line
            )),
        }
    }
    for e in &case.expect.maps {
        let Some(info) = object.maps.get(&e.map) else {
            continue;
        };
        let entry = dumps
            .iter()
            .find(|d| d.name == e.map)
            .and_then(|d| d.entries.iter().find(|x| x.key.0 == e.key));
        let what = format!("line {}: map `{}` key {}", e.line, e.map, e.key_text);
        match (&e.want, entry) {
            (Want::Absent, None) => {}
            (Want::Absent, Some(x)) => failures.push(format!(
                "{what}: expected no entry, got {}",
                format_values(
                    &info.value,
                    &x.values.iter().map(|v| v.0.clone()).collect::<Vec<_>>(),
                    true,
                    ""
                )
            )),
            (_, None) => failures.push(format!("{what}: expected an entry, there is none")),
            (Want::Value(want), Some(x)) => {
                let values: Vec<Vec<u8>> = x.values.iter().map(|v| v.0.clone()).collect();
                let got = if info.is_per_cpu() {
                    sum(&info.value, &values)
                } else {
                    values[0].clone()
                };
                if !want.matches(&got) {
                    for m in mismatches(&info.value, want, &got) {
                        failures.push(format!("{what}: {m}"));
                    }
                }
            }
            (Want::PerCpu(wants), Some(x)) => {
                for (cpu, want) in wants.iter().enumerate() {
                    match x.values.get(cpu) {
                        Some(got) if want.matches(got) => {}
                        Some(got) => {
                            for m in mismatches(&info.value, want, got) {
                                failures.push(format!("{what} on CPU {cpu}: {m}"));
                            }
                        }
                        None => failures.push(format!(
                            "{what}: expected a value on CPU {cpu}, the kernel has {} CPUs",
                            x.values.len()
                        )),
                    }
                }
            }
        }
    }
    let maps = case
        .snapshot_maps
        .then(|| format_dumps(dumps, object, case.percpu_sum));
    CaseResult {
        status: if failures.is_empty() {
            Status::Passed
        } else {
            Status::Failed(failures)
        },
        retval: Some(got),
        maps,
    }
}

fn format_values(ty: &TypeDesc, values: &[Vec<u8>], summed: bool, hint: &str) -> String {
    if values.len() == 1 {
        return format(ty, &values[0], hint);
    }
    if summed {
        return format!(
            "{} (sum over {} CPUs)",
            format(ty, &sum(ty, values), hint),
            values.len()
        );
    }
    let parts: Vec<String> = values
        .iter()
        .enumerate()
        .map(|(i, v)| format!("cpu{i}: {}", format(ty, v, hint)))
        .collect();
    parts.join(", ")
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
                !matches!(info.spec.map_type, 2 | 6)
                    || e.values.iter().any(|v| v.0.iter().any(|b| *b != 0))
            })
            .collect();
        let _ = writeln!(
            out,
            "{} ({}, key {}, value {}){}",
            d.name,
            harness_bpf::map_type_name(d.map_type),
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
