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
    /// Each veristat given, on the same objects, in the order given.
    pub veristat: Vec<VeristatTiming>,
}

#[derive(Clone, Debug)]
pub struct VeristatTiming {
    pub veristat: Veristat,
    /// veristat on every object.
    pub total: Duration,
    /// `veristat --version`: starting it, which for a wrapper includes
    /// entering the chroot (a mount namespace, three mounts, chroot).
    pub startup: Duration,
}

impl VeristatTiming {
    /// Time spent verifying: the total less the start-up.
    pub fn verifying(&self) -> Duration {
        self.total.saturating_sub(self.startup)
    }
}

/// A veristat to compare with: a binary, or a wrapper running one (e.g. in
/// the Debian 13 chroot of `cargo xtask setup --veristat`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Veristat {
    /// How the report names it, e.g. `veristat (chroot)`.
    pub label: String,
    pub path: PathBuf,
}

/// Programs per second for `programs` verified in `took`.
pub fn per_second(programs: usize, took: Duration) -> f64 {
    if took.is_zero() {
        0.0
    } else {
        programs as f64 / took.as_secs_f64()
    }
}

/// Times `verify --kernel host` (medians of `runs`) and each veristat on
/// the same compiled objects, run for run in turn.
pub fn verify(
    project: &Project,
    runs: usize,
    veristat: &[Veristat],
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
    let mut theirs = vec![Vec::new(); veristat.len()];
    let mut startups = vec![Vec::new(); veristat.len()];
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
        for ((v, times), starts) in veristat.iter().zip(&mut theirs).zip(&mut startups) {
            times.push(run_veristat(&v.path, &objects)?);
            starts.push(run_veristat(&v.path, &["--version".into()])?);
        }
    }
    Ok(VerifyBench {
        objects: objects.len(),
        programs: prepared.program_count(),
        harness: median(&ours),
        veristat: veristat
            .iter()
            .zip(theirs.iter().zip(&startups))
            .map(|(v, (total, startup))| VeristatTiming {
                veristat: v.clone(),
                total: median(total),
                startup: median(startup),
            })
            .collect(),
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
            error: std::io::Error::other(format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )),
        });
    }
    Ok(took)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_per_second() {
        assert_eq!(per_second(5, Duration::from_millis(10)), 500.0);
        assert_eq!(per_second(3, Duration::from_secs(2)), 1.5);
        assert_eq!(per_second(5, Duration::ZERO), 0.0);
    }

    #[test]
    fn start_up_is_taken_off_and_never_below_zero() {
        let t = |total, startup| VeristatTiming {
            veristat: Veristat {
                label: "v".into(),
                path: "v".into(),
            },
            total: Duration::from_millis(total),
            startup: Duration::from_millis(startup),
        };
        assert_eq!(t(50, 30).verifying(), Duration::from_millis(20));
        assert_eq!(t(20, 30).verifying(), Duration::ZERO);
    }

    #[test]
    fn a_failing_veristat_fails_the_run_with_its_output() {
        let err = run_veristat(Path::new("false"), &[]).unwrap_err();
        assert!(err.to_string().starts_with("running false"), "{err}");
        let err = run_veristat(Path::new("/nonexistent/veristat"), &[]).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/veristat"), "{err}");
    }
}
