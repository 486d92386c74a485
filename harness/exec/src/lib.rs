//! Executes a [`Plan`] on the kernel this process runs on.
//!
//! The same code runs as PID 1 inside a VM and in-process for
//! `--kernel host`. Split by job: [`probe`] answers feature questions,
//! [`load`] loads each object's programs with their verifier logs, [`case`]
//! sets maps up, performs a case's [`harness_protocol::Action`] and dumps the
//! maps, [`test_run`] runs a program on crafted input and [`steps`] runs a
//! case of several steps, attaching programs and running a workload only
//! when the executor is PID 1 of a test VM ([`Place::TestVm`]). Everything
//! created is released when the loaded objects (and links) are dropped.

mod case;
mod cpu;
mod load;
mod probe;
mod steps;
mod test_run;

use std::{collections::BTreeMap, io};

use harness_bpf::LogOptions;
use harness_protocol::{Plan, Record};

/// Where the executor runs, which decides whether it may attach programs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    /// PID 1 of a throwaway test VM: live cases attach and run workloads.
    TestVm,
    /// Any other kernel (the host's): nothing is ever attached; live cases
    /// are skipped with the reason.
    Host,
}

/// Runs every probe, object and case of `plan`, handing each record to
/// `emit` as soon as it exists. Returns the first error of `emit`; problems
/// with the plan's contents are reported as records, not errors.
pub fn execute(
    plan: &Plan,
    place: Place,
    emit: &mut dyn FnMut(Record) -> io::Result<()>,
) -> io::Result<()> {
    // Per-CPU map values land on the CPU that runs the program: pin to CPU 0
    // so dumps do not depend on where the scheduler put us.
    let _pinned = cpu::PinnedToCpu0::new();
    raise_fd_limit(place);
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
            // A case that attaches gets programs and maps of its own.
            let attaches =
                matches!(&c.action, harness_protocol::Action::Steps(s) if !s.attach.is_empty());
            if attaches && place == Place::TestVm {
                match load::fresh(object) {
                    Ok(fresh) => emit(case::run(&fresh, c, &probes, place))?,
                    Err(error) => emit(case::not_run(c, error))?,
                }
            } else {
                emit(case::run(&loaded, c, &probes, place))?;
            }
        }
    }
    Ok(())
}

/// Every program and map of a loaded object holds a descriptor, and an
/// object of a thousand programs needs more than the 1024 a process starts
/// with (PID 1 of a VM included). Raises the soft limit to the hard one;
/// in a test VM (root, nothing else running) the hard one too. A failure
/// leaves the limit as it was: loading then reports EMFILE itself.
fn raise_fd_limit(place: Place) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return;
    }
    let hard = lim.rlim_max;
    if place == Place::TestVm {
        lim.rlim_max = lim.rlim_max.max(1 << 20);
    }
    for max in [lim.rlim_max, hard] {
        let wanted = libc::rlimit {
            rlim_cur: max,
            rlim_max: max,
        };
        // SAFETY: setrlimit reads the rlimit we pass.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &wanted) } == 0 {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_descriptor_limit_is_raised_to_the_hard_one() {
        let get = || {
            let mut lim = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            // SAFETY: getrlimit writes one rlimit we own.
            assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
            lim
        };
        let before = get();
        // Lower the soft limit first, so the test shows a raise.
        let low = libc::rlimit {
            rlim_cur: before.rlim_cur.min(256),
            rlim_max: before.rlim_max,
        };
        // SAFETY: setrlimit reads the rlimit we pass.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &low) }, 0);
        raise_fd_limit(Place::Host);
        let after = get();
        assert_eq!(after.rlim_cur, after.rlim_max);
        assert!(after.rlim_max >= before.rlim_max);
    }
}
