use std::{path::PathBuf, process::ExitCode};

use crate::ProjectAt;

/// `merge`: results of shards or kernels as one run's.
#[derive(clap::Args)]
pub struct MergeOptions {
    /// Results files written by `test --results` or `verify --results` (of one command).
    #[arg(value_name = "RESULTS", required = true)]
    results: Vec<PathBuf>,
    /// Write the merged results here.
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Write JUnit XML of the merged results here.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Write the Markdown summary here (under GitHub Actions it is also appended to the job summary).
    #[arg(long, value_name = "FILE")]
    summary: Option<PathBuf>,
}

pub fn merge(o: MergeOptions) -> anyhow::Result<ExitCode> {
    let merged = harness_suite::merge_results(&o.results)?;
    let status = harness_report::Status::new();
    let outputs = harness_suite::CiOutputs {
        junit: o.junit,
        results: o.output,
        artifacts: None,
        github: harness_suite::GitHub::from_env(),
    };
    outputs.check()?;
    if let Some(path) = &o.summary {
        harness_suite::write_whole(
            "the summary",
            path,
            harness_report::job_summary(&merged).as_bytes(),
        )?;
        status.line("Wrote", &path.display().to_string());
    }
    // Paths were relative to nothing project-specific: no artifacts here.
    for path in outputs.publish_files(&merged)? {
        status.line("Wrote", &path.display().to_string());
    }
    anstream::eprint!("{}", harness_report::outcomes_line(&merged));
    Ok(if merged.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `ci-matrix`: the pinned kernel lines for a workflow's `strategy.matrix`.
pub fn matrix(at: &ProjectAt) -> anyhow::Result<ExitCode> {
    let project = at.project()?;
    println!("{}", harness_suite::ci_matrix(&project)?);
    Ok(ExitCode::SUCCESS)
}
