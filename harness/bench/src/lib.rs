//! Benchmarks that print figures beside their anchor, measured in one run:
//! [`boot`] (the harness against a bare boot of the same kernel), [`cases`]
//! (what a thousand packet cases add), [`verify`] (host verification
//! against veristat on the same objects), [`explain`] (diagnosing a
//! rejection from its log), [`scale`] (how time grows with cases,
//! programs and kernels). Runs are measured with a silent
//! event sink; progress of the benchmark itself goes to the caller's.

mod boot;
mod cases;
mod events;
mod explain;
mod scale;
mod verify;

use std::time::Duration;

pub use boot::{BootBench, boot};
pub use cases::{CasesBench, cases, generated_cases};
pub use events::{EventsBench, events};
pub use explain::{ExplainBench, KernelExplain, explain};
pub use scale::{Point, RunSplit, ScaleOptions, Series, UnitCost, generated_programs, scale};
pub use verify::{VerifyBench, Veristat, VeristatTiming, per_second, verify};

/// What stops a benchmark.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Suite(#[from] harness_suite::SuiteError),
    #[error(transparent)]
    Vm(#[from] harness_vm::VmError),
    #[error(transparent)]
    Matrix(#[from] harness_matrix::MatrixError),
    #[error(transparent)]
    Kernel(#[from] harness_kernels::KernelError),
    #[error("a measured run failed, so its time means nothing:\n{0}")]
    RunFailed(String),
    #[error("--runs must be at least 1")]
    NoRuns,
    #[error("{0}")]
    Nonsense(String),
    #[error("{what}: {error}")]
    Io { what: String, error: std::io::Error },
}

pub(crate) fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> BenchError {
    let what = what.into();
    move |error| BenchError::Io { what, error }
}

/// A file of a scratch project: copied from the project's programs
/// directory (`sample-programs/`), or written.
pub(crate) enum ScratchFile<'a> {
    Copy(&'a str),
    Text(&'a str),
}

/// A scratch project under `root` with `files` in its `programs/` (each
/// at its path there) and `cases` as its one case file; the project's
/// flags, none of its programs, cases or snapshots.
pub(crate) fn scratch_project(
    project: &harness_project::Project,
    root: &std::path::Path,
    files: &[(&str, ScratchFile<'_>)],
    cases: &str,
) -> Result<harness_project::Project, BenchError> {
    let programs = root.join("programs");
    let samples = project.root.join("sample-programs");
    for (to, from) in files {
        let dest = programs.join(to);
        if let Some(dir) = dest.parent() {
            std::fs::create_dir_all(dir).map_err(io_err("creating a scratch project"))?;
        }
        match from {
            ScratchFile::Copy(from) => std::fs::copy(samples.join(from), &dest).map(drop),
            ScratchFile::Text(text) => std::fs::write(&dest, text),
        }
        .map_err(io_err(format!("writing {}", dest.display())))?;
    }
    std::fs::create_dir_all(root.join("cases")).map_err(io_err("creating a scratch project"))?;
    std::fs::write(root.join("cases/bench.toml"), cases).map_err(io_err("writing cases"))?;
    Ok(harness_project::Project {
        root: root.to_owned(),
        config: None,
        build: harness_project::BuildSettings {
            sources: vec![harness_project::PathGlob::default_for("programs/*.bpf.c")],
            cflags: project.build.cflags.clone(),
            ..harness_project::BuildSettings::default()
        },
        cases_dirs: vec![root.join("cases")],
        snapshots_dir: root.join("snapshots"),
        objects_dir: root.join("bpf"),
        results_dir: root.join("results"),
        ..project.clone()
    })
}

pub fn median(v: &[Duration]) -> Duration {
    let mut v = v.to_vec();
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn check_runs(runs: usize) -> Result<(), BenchError> {
    if runs == 0 {
        Err(BenchError::NoRuns)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_nonsense_counts() {
        let ms = |n| Duration::from_millis(n);
        assert_eq!(median(&[ms(3), ms(1), ms(2)]), ms(2));
        assert_eq!(median(&[]), Duration::ZERO);
        assert!(matches!(check_runs(0), Err(BenchError::NoRuns)));
        assert!(check_runs(1).is_ok());
    }
}
