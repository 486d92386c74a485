//! The host kernel, in-process: load and `BPF_PROG_TEST_RUN` only. Nothing
//! is attached, and everything created is closed when the executor returns.

use std::time::Instant;

use harness_events::Event;
use harness_kernels::Target;
use harness_protocol::{Done, Record};

use crate::{KernelRun, Matrix, MatrixError, RunFailure};

pub(crate) fn run(
    m: &Matrix<'_>,
    target: &Target,
    started: Instant,
) -> Result<KernelRun, MatrixError> {
    if !nix::unistd::geteuid().is_root() {
        return Err(MatrixError::NotRoot);
    }
    m.events.event(Event::Running {
        target: target.label.clone(),
        accel: None,
    });
    let mut records = Vec::new();
    let failure = match harness_exec::execute(m.plan, harness_exec::Place::Host, &mut |r| {
        records.push(r);
        Ok(())
    }) {
        Ok(timings) => {
            records.push(Record::Done(Done {
                error: None,
                timings: Some(timings),
            }));
            None
        }
        Err(e) => Some(RunFailure::Host(e)),
    };
    let total_time = started.elapsed();
    m.events.event(Event::Finished {
        target: target.label.clone(),
        total: total_time,
        boot: None,
    });
    Ok(KernelRun {
        target: target.clone(),
        accel: None,
        records,
        failure,
        boot_time: None,
        total_time,
    })
}
