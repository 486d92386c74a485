//! `bench verify`: verification of every object on the host kernel against
//! veristat on the same objects.

use std::{
    path::{Path, PathBuf},
    sync::{Arc, atomic::AtomicBool},
    time::{Duration, Instant},
};

use harness_events::{EventSink, Silent};
use harness_kernels::KernelRequest;
use harness_project::{PrepareOptions, Project};
use harness_snapshots::UpdateMode;
use harness_suite::{SuiteOptions, VerifyOptions};

use crate::{BenchError, check_runs, io_err, median};

#[derive(Clone, Debug)]
pub struct VerifyBench {
    pub objects: usize,
    pub programs: usize,
    pub harness: Duration,
    /// veristat on the same objects, when a veristat binary was given.
    pub veristat: Option<Duration>,
}

/// Times `verify --kernel host` (medians of `runs`) and, given a veristat
/// binary, veristat on the same compiled objects.
pub fn verify(
    project: &Project,
    runs: usize,
    veristat: Option<&Path>,
    events: &dyn EventSink,
    interrupt: &Arc<AtomicBool>,
) -> Result<VerifyBench, BenchError> {
    check_runs(runs)?;
    let opts = SuiteOptions {
        kernels: vec![KernelRequest::Host],
        mirror: None,
        log_level: 1,
        snapshots: UpdateMode::No,
        run: harness_matrix::RunOptions::default(),
    };
    let prepared = harness_project::prepare(
        project,
        PrepareOptions {
            log_level: 1,
            cases: false,
        },
        events,
    )
    .map_err(harness_suite::SuiteError::from)?;
    let objects: Vec<PathBuf> = prepared.objects.iter().map(|o| o.path.clone()).collect();
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    for _ in 0..runs {
        let start = Instant::now();
        harness_suite::verify(
            project,
            &opts,
            &VerifyOptions::default(),
            &Silent,
            interrupt,
        )?;
        ours.push(start.elapsed());
        if let Some(v) = veristat {
            theirs.push(run_veristat(v, &objects)?);
        }
    }
    Ok(VerifyBench {
        objects: objects.len(),
        programs: prepared.program_count(),
        harness: median(&ours),
        veristat: veristat.map(|_| median(&theirs)),
    })
}

fn run_veristat(veristat: &Path, objects: &[PathBuf]) -> Result<Duration, BenchError> {
    let what = || format!("running {}", veristat.display());
    let start = Instant::now();
    let out = std::process::Command::new(veristat)
        .args(objects)
        .output()
        .map_err(io_err(what()))?;
    let took = start.elapsed();
    if !out.status.success() {
        return Err(BenchError::Io {
            what: what(),
            error: std::io::Error::other(String::from_utf8_lossy(&out.stderr).into_owned()),
        });
    }
    Ok(took)
}
