//! Executes a [`Plan`] on the kernel this process runs on.
//!
//! The same code runs as PID 1 inside a VM and in-process for
//! `--kernel host`. Split by job: [`probe`] answers feature questions,
//! [`load`] loads each object's programs with their verifier logs, [`case`]
//! sets maps up, performs a case's [`harness_protocol::Action`] and dumps the
//! maps, and [`test_run`] is the one action there is today. Nothing is
//! attached, and everything created is released when the loaded objects are
//! dropped.

mod case;
mod cpu;
mod load;
mod probe;
mod test_run;

use std::{collections::BTreeMap, io};

use harness_bpf::LogOptions;
use harness_protocol::{Plan, Record};

/// Runs every probe, object and case of `plan`, handing each record to
/// `emit` as soon as it exists. Returns the first error of `emit`; problems
/// with the plan's contents are reported as records, not errors.
pub fn execute(plan: &Plan, emit: &mut dyn FnMut(Record) -> io::Result<()>) -> io::Result<()> {
    // Per-CPU map values land on the CPU that runs the program: pin to CPU 0
    // so dumps do not depend on where the scheduler put us.
    let _pinned = cpu::PinnedToCpu0::new();
    let mut probes = BTreeMap::new();
    for p in &plan.probes {
        let report = probe::run(p);
        probes.insert(report.name.clone(), report.clone());
        emit(Record::Probe(report))?;
    }
    let defaults = LogOptions::default();
    let log = LogOptions {
        level: plan.verifier.bits(),
        walk_budget: plan.verifier.walk_budget.unwrap_or(defaults.walk_budget),
        ..defaults
    };
    for object in &plan.objects {
        let Some(loaded) = load::object(object, log, emit)? else {
            continue;
        };
        for c in &object.cases {
            emit(case::run(&loaded, c, &probes))?;
        }
    }
    Ok(())
}
