use crate::ProjectAt;
use std::{
    path::PathBuf,
    process::ExitCode,
    sync::{Arc, atomic::AtomicBool},
};

use harness_judge::Gate;
use harness_suite::{Objects, ProgramPattern, VerifyOptions};

use crate::run::{CiArgs, LoadArgs, VmArgs, exit_for};

#[derive(Clone, Copy, clap::ValueEnum)]
enum Format {
    Table,
    Csv,
    Json,
}

#[derive(clap::Args)]
pub struct Options {
    /// BPF objects (ELF, e_machine EM_BPF), *.bpf.c sources, or directories searched recursively for both [default: the project's sample-programs].
    #[arg(value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Only programs matching PROGRAM or OBJECT/PROGRAM (globs with * and ?); repeatable.
    #[arg(long = "prog", value_name = "PATTERN")]
    prog: Vec<ProgramPattern>,
    #[command(flatten)]
    load: LoadArgs,
    /// Log the walk of a rejected program that processed up to N instructions [default: 200000].
    #[arg(long, value_name = "N")]
    walk_budget: Option<u32>,
    /// What to print: the matrix, or every program × kernel as CSV or JSON.
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
    /// Also write the CSV or JSON rows here (the format follows the extension).
    #[arg(long)]
    output: Option<PathBuf>,
    /// Compare with this CSV/JSON from an earlier run instead of the committed snapshots.
    #[arg(long)]
    baseline: Option<PathBuf>,
    /// Fail when a program's processed instructions grow by more than this percentage.
    #[arg(long, default_value_t = 10.0)]
    max_insns_increase: f64,
    /// Fail when total states grow by more than this percentage [default: not gated].
    #[arg(long)]
    max_states_increase: Option<f64>,
    /// Do not fail when a verdict differs from the baseline.
    #[arg(long)]
    allow_verdict_change: bool,
    /// Fail only on new failures against the baseline (accepted there, not now; failing and not there); report cost changes and failures it already had.
    #[arg(long)]
    new_failures_only: bool,
    #[command(flatten)]
    ci: CiArgs,
    #[command(flatten)]
    vm: VmArgs,
}

pub fn run(o: Options, at: &ProjectAt, interrupt: &Arc<AtomicBool>) -> anyhow::Result<ExitCode> {
    let project = at.project()?;
    let status = harness_report::Status::new();
    let kernels = crate::run::kernels_or_default(o.load.kernel, &project, crate::run::MATRIX)?;
    let outputs = o.ci.outputs()?;
    o.vm.prepare_machine(&kernels.0, &status)?;
    let opts = o.vm.suite_options(kernels.0, o.load.log_level);
    let verify = VerifyOptions {
        baseline: o.baseline,
        gate: Gate {
            max_insns_increase_pct: o.max_insns_increase,
            max_states_increase_pct: o.max_states_increase,
            allow_verdict_change: o.allow_verdict_change,
            new_failures_only: o.new_failures_only,
        },
        objects: if o.paths.is_empty() {
            Objects::Project
        } else {
            Objects::Paths {
                paths: o.paths,
                cwd: std::env::current_dir()?,
            }
        },
        programs: o.prog,
        walk_budget: o.walk_budget,
        shard: o.ci.shard,
    };
    let judgement = match harness_suite::verify(&project, &opts, &verify, &status, interrupt) {
        Ok(j) => j,
        Err(e) => return exit_for(e),
    };
    if let Some(path) = &o.output {
        let text = if path.extension().is_some_and(|e| e == "json") {
            harness_judge::to_json(&judgement.rows)
        } else {
            harness_judge::to_csv(&judgement.rows)?
        };
        harness_suite::write_whole("rows", path, text.as_bytes())?;
        status.line("Wrote", &path.display().to_string());
    }
    let report = harness_report::verify_report(&judgement);
    match o.format {
        Format::Table => anstream::print!("{report}"),
        Format::Csv => {
            print!("{}", harness_judge::to_csv(&judgement.rows)?);
            anstream::eprint!("{report}");
        }
        Format::Json => {
            println!("{}", harness_judge::to_json(&judgement.rows));
            anstream::eprint!("{report}");
        }
    }
    crate::run::publish(&outputs, &project, &judgement.outcomes, &status)?;
    Ok(if judgement.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
