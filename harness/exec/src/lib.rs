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

use std::{collections::BTreeMap, io, time::Instant};

use harness_bpf::LogOptions;
use harness_protocol::{ExecTimings, Plan, Record};

/// Where the executor runs, which decides whether it may attach programs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    /// PID 1 of a throwaway test VM: live cases attach and run workloads.
    TestVm,
    /// Any other kernel (the host's): nothing is ever attached; live cases
    /// are skipped with the reason.
    Host,
}

/// Where the executor's records go.
pub trait Records {
    /// One record, in order.
    fn record(&mut self, record: Record) -> io::Result<()>;

    /// Everything recorded so far must reach the reader now. The executor
    /// calls this before each step that asks the kernel for something that
    /// could bring it down (loading an object, running a case), so a crash
    /// loses nothing recorded before it; records in between (an object's
    /// program reports) may travel together.
    fn checkpoint(&mut self) -> io::Result<()>;
}

/// A closure receives each record as it exists (nothing to flush).
impl<F: FnMut(Record) -> io::Result<()>> Records for F {
    fn record(&mut self, record: Record) -> io::Result<()> {
        self(record)
    }

    fn checkpoint(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The records' way out, timed: the time spent sending (encoding, the
/// channel) is kept apart from the work whose records it sends.
struct Out<'a> {
    records: &'a mut dyn Records,
    timings: ExecTimings,
}

impl Out<'_> {
    fn send(&mut self, record: Record) -> io::Result<()> {
        let sent = Instant::now();
        let result = self.records.record(record);
        self.timings.emit_ns += nanos(sent);
        result
    }

    fn checkpoint(&mut self) -> io::Result<()> {
        let sent = Instant::now();
        let result = self.records.checkpoint();
        self.timings.emit_ns += nanos(sent);
        result
    }
}

/// Runs every probe, object and case of `plan`, handing each record to
/// `records` as soon as it exists, and says where the time went. Returns
/// the first error of `records`; problems with the plan's contents are
/// reported as records, not errors.
pub fn execute(plan: &Plan, place: Place, records: &mut dyn Records) -> io::Result<ExecTimings> {
    let start = Instant::now();
    let mut out = Out {
        records,
        timings: ExecTimings::default(),
    };
    // Per-CPU map values land on the CPU that runs the program: pin to CPU 0
    // so dumps do not depend on where the scheduler put us.
    let _pinned = cpu::PinnedToCpu0::new();
    raise_fd_limit(place);
    let mut probes = BTreeMap::new();
    for p in &plan.probes {
        out.checkpoint()?;
        let probing = Instant::now();
        let report = probe::run(p);
        probes.insert(report.name.clone(), report.clone());
        out.timings.probes_ns += nanos(probing);
        out.send(Record::Probe(report))?;
    }
    let defaults = LogOptions::default();
    let log = LogOptions {
        level: plan.verifier.bits(),
        walk_budget: plan.verifier.walk_budget.unwrap_or(defaults.walk_budget),
        ..defaults
    };
    for object in &plan.objects {
        out.checkpoint()?;
        let Some(loaded) = load::object(object, log, &mut out)? else {
            continue;
        };
        for c in &object.cases {
            out.checkpoint()?;
            let running = Instant::now();
            // A case that attaches gets programs and maps of its own.
            let attaches =
                matches!(&c.action, harness_protocol::Action::Steps(s) if !s.attach.is_empty());
            let record = if attaches && place == Place::TestVm {
                match load::fresh(object) {
                    Ok(fresh) => case::run(&fresh, c, &probes, place),
                    Err(error) => case::not_run(c, error),
                }
            } else {
                case::run(&loaded, c, &probes, place)
            };
            out.timings.cases_ns += nanos(running);
            out.send(record)?;
        }
    }
    out.checkpoint()?;
    out.timings.total_ns = nanos(start);
    Ok(out.timings)
}

fn nanos(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_nanos()).unwrap_or(u64::MAX)
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
