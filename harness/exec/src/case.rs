//! One case: check its probes, reset and fill the maps, perform its action,
//! dump the maps.

use std::{collections::BTreeMap, os::fd::AsFd as _};

use harness_bpf::{LoadedObject, Map};

use crate::Place;
use harness_protocol::{
    Action, ActionOutput, CaseOutcome, CasePlan, CaseReport, CaseStep, MapDump, MapEntry, MapValue,
    MapWrite, ProbeReport, Record,
};

/// Why a case stopped: where, and what the kernel or loader said.
pub(crate) struct Stop {
    pub(crate) step: CaseStep,
    pub(crate) error: String,
}

pub(crate) fn stop(step: CaseStep) -> impl FnOnce(String) -> Stop {
    move |error| Stop { step, error }
}

pub(crate) fn run(
    object: &LoadedObject,
    case: &CasePlan,
    probes: &BTreeMap<String, ProbeReport>,
    place: Place,
) -> Record {
    let outcome = match missing_probe(case, probes).or_else(|| refused_here(case, place)) {
        Some(outcome) => outcome,
        None => perform(object, case).unwrap_or_else(|s| CaseOutcome::Error {
            step: s.step,
            error: s.error,
        }),
    };
    Record::Case(CaseReport {
        id: case.id.clone(),
        outcome,
    })
}

/// A case that could not even start: its object did not load again.
pub(crate) fn not_run(case: &CasePlan, error: String) -> Record {
    Record::Case(CaseReport {
        id: case.id.clone(),
        outcome: CaseOutcome::Error {
            step: CaseStep::Program,
            error,
        },
    })
}

/// A skip (or an error) when a probe the case requires failed or is unknown.
fn missing_probe(case: &CasePlan, probes: &BTreeMap<String, ProbeReport>) -> Option<CaseOutcome> {
    case.requires
        .iter()
        .find_map(|name| match probes.get(name) {
            Some(p) if p.available => None,
            Some(p) => Some(CaseOutcome::Skipped {
                reason: p.detail.clone(),
            }),
            None => Some(CaseOutcome::Error {
                step: CaseStep::Requires,
                error: format!("case requires probe `{name}`, which the plan does not define"),
            }),
        })
}

/// A live case outside a test VM is skipped: the harness never attaches to
/// the host's kernel.
fn refused_here(case: &CasePlan, place: Place) -> Option<CaseOutcome> {
    match &case.action {
        Action::Steps(steps) if steps.is_live() && place != Place::TestVm => {
            Some(CaseOutcome::Skipped {
                reason: "a live case (it attaches programs and runs a workload) runs only inside a test VM, never on the host's kernel".into(),
            })
        }
        _ => None,
    }
}

fn perform(object: &LoadedObject, case: &CasePlan) -> Result<CaseOutcome, Stop> {
    let fd = program_fd(object, &case.program).map_err(stop(CaseStep::Program))?;
    setup(object, &case.setup).map_err(stop(CaseStep::Setup))?;
    // The program may write any map it uses.
    for map in &object.maps {
        map.touched();
    }
    let output = match &case.action {
        Action::TestRun(input) => ActionOutput::TestRun(
            crate::test_run::run(fd.as_fd(), input).map_err(stop(CaseStep::Action))?,
        ),
        Action::Steps(steps) => ActionOutput::Steps(crate::steps::run(object, steps, &case.id)?),
    };
    let maps = if case.dump_maps {
        dump(object).map_err(stop(CaseStep::Dump))?
    } else {
        Vec::new()
    };
    Ok(CaseOutcome::Ran { output, maps })
}

pub(crate) fn program_fd<'o>(
    object: &'o LoadedObject,
    name: &str,
) -> Result<&'o std::os::fd::OwnedFd, String> {
    let program = object.program(name).ok_or_else(|| {
        let names: Vec<_> = object
            .programs
            .iter()
            .map(|p| p.spec.name.as_str())
            .collect();
        format!(
            "no program `{name}` in the object (it has: {})",
            names.join(", ")
        )
    })?;
    match (&program.fd, &program.error) {
        (Some(fd), _) => Ok(fd),
        (None, Some(e)) => Err(format!("program `{name}` did not load: {e}")),
        (None, None) => Err(format!("program `{name}` did not load")),
    }
}

/// Every map starts empty (arrays zeroed), then holds the case's entries.
/// A map the last dump found in that state is not reset again (see
/// `Map::reset`).
fn setup(object: &LoadedObject, writes: &[MapWrite]) -> Result<(), String> {
    for map in &object.maps {
        map.reset()
            .map_err(|e| format!("resetting map `{}`: {e}", map.spec.name))?;
    }
    for write in writes {
        let map = object
            .map(&write.map)
            .ok_or_else(|| format!("no map `{}` in the object", write.map))?;
        write_entry(map, write)?;
    }
    Ok(())
}

fn write_entry(map: &Map, write: &MapWrite) -> Result<(), String> {
    // Per-CPU values list CPU 0 first; CPUs not listed get zeros.
    let zeros = vec![0u8; map.spec.value_size as usize];
    let values: Vec<&[u8]> = match &write.value {
        MapValue::Single(v) => vec![&v.0],
        MapValue::PerCpu(vs) if vs.len() > map.value_count() => {
            return Err(format!(
                "map `{}`: {} per-CPU values given, this kernel has {} possible CPUs",
                write.map,
                vs.len(),
                map.value_count()
            ));
        }
        MapValue::PerCpu(vs) => vs
            .iter()
            .map(|v| v.0.as_slice())
            .chain(std::iter::repeat(zeros.as_slice()))
            .take(map.value_count())
            .collect(),
    };
    map.update(&write.key, &values)
        .map_err(|e| format!("writing map `{}` before the run: {e}", write.map))
}

fn dump(object: &LoadedObject) -> Result<Vec<MapDump>, String> {
    object
        .maps
        .iter()
        .filter(|m| m.is_keyed())
        .map(|m| {
            let entries = m
                .entries()
                .map_err(|e| format!("dumping map `{}`: {e}", m.spec.name))?;
            Ok(MapDump {
                name: m.spec.name.clone(),
                map_type: m.spec.map_type,
                key_size: m.spec.key_size,
                value_size: m.spec.value_size,
                entries: entries
                    .into_iter()
                    .map(|(key, values)| MapEntry {
                        key: key.into(),
                        values: values.into_iter().map(Into::into).collect(),
                    })
                    .collect(),
            })
        })
        .collect()
}
