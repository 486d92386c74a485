//! `bench explain`: the time to diagnose one rejected program from its log
//! (and C source), beyond the load, over a directory of real logs laid out
//! as harness-diagnose's `testdata/` (`<case>/<kernel>[.level2].log` beside
//! `<case>/prog.bpf.c`); and per kernel the share of rejections with a
//! named cause and with a C line.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use harness_diagnose::{Cause, Evidence};

use crate::{BenchError, check_runs, io_err};

/// The figures of one kernel's logs.
#[derive(Clone, Debug, Default)]
pub struct KernelExplain {
    pub logs: usize,
    /// Logs with an error message (the rest are accepted programs' logs).
    pub rejected: usize,
    /// Rejections whose cause is known.
    pub named: usize,
    /// Rejections placed on a C line.
    pub with_line: usize,
    /// One per rejection: the median of its runs.
    pub times: Vec<Duration>,
}

#[derive(Clone, Debug, Default)]
pub struct ExplainBench {
    /// By kernel label (the log's file stem: `5.10`, `7.2.level2`).
    pub kernels: BTreeMap<String, KernelExplain>,
}

impl ExplainBench {
    /// Every rejection's median time, all kernels together.
    pub fn all_times(&self) -> Vec<Duration> {
        self.kernels
            .values()
            .flat_map(|k| k.times.clone())
            .collect()
    }
}

/// Diagnoses every log under `dir` `runs` times.
pub fn explain(dir: &Path, runs: usize) -> Result<ExplainBench, BenchError> {
    check_runs(runs)?;
    let mut bench = ExplainBench::default();
    let mut cases: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io_err(format!("reading {}", dir.display())))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    for case in cases {
        let source = std::fs::read_to_string(case.join("prog.bpf.c")).ok();
        let mut logs: Vec<PathBuf> = std::fs::read_dir(&case)
            .map_err(io_err(format!("reading {}", case.display())))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "log"))
            .collect();
        logs.sort();
        for path in logs {
            let log = std::fs::read_to_string(&path)
                .map_err(io_err(format!("reading {}", path.display())))?;
            let kernel = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let evidence = match &source {
                Some(text) => Evidence::default().with_source("prog.bpf.c", text),
                None => Evidence::default(),
            };
            let mut times = Vec::with_capacity(runs);
            let mut diagnosis = None;
            for _ in 0..runs {
                let start = Instant::now();
                diagnosis = harness_diagnose::diagnose_with(&log, &evidence);
                times.push(start.elapsed());
            }
            let k = bench.kernels.entry(kernel).or_default();
            k.logs += 1;
            if let Some(d) = diagnosis {
                k.rejected += 1;
                k.named += usize::from(d.cause != Cause::Unknown);
                k.with_line += usize::from(d.source.as_ref().is_some_and(|s| s.line.is_some()));
                k.times.push(crate::median(&times));
            }
        }
    }
    Ok(bench)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_rejections_causes_and_lines_per_kernel() {
        let dir = tempfile::tempdir().unwrap();
        let case = dir.path().join("null");
        std::fs::create_dir(&case).unwrap();
        std::fs::write(
            case.join("6.12.log"),
            "; *count += 1; @ p.bpf.c:20\n7: (79) r1 = *(u64 *)(r0 +0)\nR0 invalid mem access 'map_value_or_null'\n",
        )
        .unwrap();
        std::fs::write(
            case.join("5.10.log"),
            "7: (79) r1 = *(u64 *)(r0 +0)\nsomething new\n",
        )
        .unwrap();
        std::fs::write(case.join("6.1.log"), "processed 7 insns (limit 1000000)\n").unwrap();
        let b = explain(dir.path(), 2).unwrap();
        let k = |name: &str| b.kernels[name].clone();
        assert_eq!(
            (
                k("6.12").logs,
                k("6.12").rejected,
                k("6.12").named,
                k("6.12").with_line
            ),
            (1, 1, 1, 1)
        );
        assert_eq!(
            (k("5.10").rejected, k("5.10").named, k("5.10").with_line),
            (1, 0, 0)
        );
        assert_eq!((k("6.1").logs, k("6.1").rejected), (1, 0));
        assert_eq!(b.all_times().len(), 2);
        assert!(matches!(explain(dir.path(), 0), Err(BenchError::NoRuns)));
        assert!(explain(&dir.path().join("missing"), 1).is_err());
    }
}
