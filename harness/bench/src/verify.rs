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

/// A program whose verdict differs between the harness and a veristat.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerdictDifference {
    /// The object's file name, as veristat names it.
    pub file: String,
    pub program: String,
    pub harness: harness_judge::VerdictKind,
    /// veristat's verdict: true for success.
    pub veristat_accepted: bool,
}

#[derive(Clone, Debug)]
pub struct VeristatTiming {
    pub veristat: Veristat,
    /// Programs both verified, and those whose verdicts differ.
    pub compared: usize,
    pub differences: Vec<VerdictDifference>,
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
    copies: usize,
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
    let mut objects: Vec<PathBuf> = prepared.objects.iter().map(|o| o.path.clone()).collect();
    // More programs at the same mix: each object `copies` times under new
    // names, verified by path by both sides.
    let scratch =
        tempfile::tempdir().map_err(io_err("creating a directory for copies".to_owned()))?;
    let mut verify_opts = VerifyOptions::default();
    if copies > 1 {
        let mut copied = Vec::new();
        for o in &objects {
            let stem = o.file_name().unwrap_or_default().to_string_lossy();
            let stem = stem.trim_end_matches(".bpf.o");
            for i in 0..copies {
                let to = scratch.path().join(format!("{stem}_{i}.bpf.o"));
                std::fs::copy(o, &to).map_err(io_err(format!("copying {}", o.display())))?;
                copied.push(to);
            }
        }
        verify_opts.objects = harness_suite::Objects::Paths {
            paths: copied.clone(),
            cwd: scratch.path().to_owned(),
        };
        objects = copied;
    }
    let programs = prepared.program_count() * copies.max(1);
    let mut ours = Vec::new();
    let mut theirs = vec![Vec::new(); veristat.len()];
    let mut startups = vec![Vec::new(); veristat.len()];
    let mut rows = Vec::new();
    for _ in 0..runs {
        let start = Instant::now();
        let judgement = harness_suite::verify(project, &opts, &verify_opts, &Silent, interrupt)?;
        ours.push(start.elapsed());
        rows = judgement.rows;
        for ((v, times), starts) in veristat.iter().zip(&mut theirs).zip(&mut startups) {
            times.push(run_veristat(&v.path, &objects)?);
            starts.push(run_veristat(&v.path, &["--version".into()])?);
        }
    }
    // The harness's verdicts by the file name veristat reports.
    let ours_by_file: Vec<(String, String, harness_judge::VerdictKind)> = rows
        .iter()
        .filter_map(|r| {
            // A project object by its name, a copy by its path.
            let path = prepared
                .object(&r.object)
                .map_or_else(|| PathBuf::from(&r.object), |o| o.path.clone());
            let file = path.file_name()?.to_string_lossy().into_owned();
            Some((file, r.program.clone(), r.verdict))
        })
        .collect();
    let mut timings = Vec::new();
    for (v, (total, startup)) in veristat.iter().zip(theirs.iter().zip(&startups)) {
        let csv = veristat_csv(&v.path, &objects)?;
        let (compared, differences) = compare_verdicts(&ours_by_file, &csv);
        timings.push(VeristatTiming {
            veristat: v.clone(),
            compared,
            differences,
            total: median(total),
            startup: median(startup),
        });
    }
    Ok(VerifyBench {
        objects: objects.len(),
        programs,
        harness: median(&ours),
        veristat: timings,
    })
}

/// veristat's verdicts (`-o csv`: `file_name,prog_name,verdict,...`) as
/// (file, program, success).
fn veristat_csv(
    veristat: &Path,
    objects: &[PathBuf],
) -> Result<Vec<(String, String, bool)>, BenchError> {
    let what = || format!("running {} -o csv", veristat.display());
    let out = std::process::Command::new(veristat)
        .args(["-o", "csv"])
        .args(objects)
        .output()
        .map_err(io_err(what()))?;
    Ok(parse_veristat_csv(&String::from_utf8_lossy(&out.stdout)))
}

fn parse_veristat_csv(text: &str) -> Vec<(String, String, bool)> {
    let mut lines = text.lines();
    let Some(header) = lines.next() else {
        return Vec::new();
    };
    let col = |name: &str| header.split(',').position(|h| h == name);
    let (Some(f), Some(p), Some(v)) = (col("file_name"), col("prog_name"), col("verdict")) else {
        return Vec::new();
    };
    lines
        .filter_map(|l| {
            let fields: Vec<&str> = l.split(',').collect();
            Some((
                (*fields.get(f)?).to_owned(),
                (*fields.get(p)?).to_owned(),
                *fields.get(v)? == "success",
            ))
        })
        .collect()
}

/// Programs both verified, and where an accepted verdict on one side is not
/// one on the other.
fn compare_verdicts(
    ours: &[(String, String, harness_judge::VerdictKind)],
    theirs: &[(String, String, bool)],
) -> (usize, Vec<VerdictDifference>) {
    let mut compared = 0;
    let mut differences = Vec::new();
    for (file, program, verdict) in ours {
        let Some((_, _, accepted)) = theirs.iter().find(|(f, p, _)| f == file && p == program)
        else {
            continue;
        };
        compared += 1;
        if (*verdict == harness_judge::VerdictKind::Accepted) != *accepted {
            differences.push(VerdictDifference {
                file: file.clone(),
                program: program.clone(),
                harness: *verdict,
                veristat_accepted: *accepted,
            });
        }
    }
    (compared, differences)
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
    fn verdicts_are_compared_by_file_and_program() {
        use harness_judge::VerdictKind::{Accepted, NotLoaded, Rejected};
        let csv = "file_name,prog_name,verdict,duration\n\
                   a.bpf.o,x,success,10\n\
                   a.bpf.o,y,failure,20\n\
                   b.bpf.o,z,failure,5\n";
        let theirs = parse_veristat_csv(csv);
        assert_eq!(theirs[1], ("a.bpf.o".into(), "y".into(), false));
        let ours = [
            ("a.bpf.o".to_owned(), "x".to_owned(), Accepted),
            ("a.bpf.o".to_owned(), "y".to_owned(), Rejected),
            ("b.bpf.o".to_owned(), "z".to_owned(), Accepted),
            ("c.bpf.o".to_owned(), "w".to_owned(), NotLoaded),
        ];
        let (compared, differences) = compare_verdicts(&ours, &theirs);
        assert_eq!(compared, 3);
        assert_eq!(
            differences,
            [VerdictDifference {
                file: "b.bpf.o".into(),
                program: "z".into(),
                harness: Accepted,
                veristat_accepted: false,
            }]
        );
        assert!(parse_veristat_csv("no,header\n1,2\n").is_empty());
    }

    #[test]
    fn start_up_is_taken_off_and_never_below_zero() {
        let t = |total, startup| VeristatTiming {
            veristat: Veristat {
                label: "v".into(),
                path: "v".into(),
            },
            compared: 0,
            differences: Vec::new(),
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
