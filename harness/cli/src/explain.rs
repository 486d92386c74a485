use crate::ProjectAt;
use std::{
    path::PathBuf,
    process::ExitCode,
    sync::{Arc, atomic::AtomicBool},
};

use harness_suite::{Objects, ProgramPattern, VerifyOptions};

use crate::run::{LoadArgs, VmArgs, exit_for};

#[derive(Clone, Copy, clap::ValueEnum)]
enum Format {
    Text,
    Json,
}

#[derive(clap::Args)]
pub struct Options {
    /// BPF objects, *.bpf.c sources, or directories searched recursively for both.
    #[arg(
        value_name = "PATH",
        required_unless_present = "log",
        conflicts_with = "log"
    )]
    paths: Vec<PathBuf>,
    /// Explain this saved verifier log instead of loading anything.
    #[arg(long, value_name = "FILE")]
    log: Option<PathBuf>,
    /// With --log: the object the log is of, for its C lines and columns (.BTF.ext line info).
    #[arg(long, value_name = "OBJ", requires = "log")]
    object: Option<PathBuf>,
    /// Only programs matching PROGRAM or OBJECT/PROGRAM (globs with * and ?); repeatable. With --log: the program of --object the log is of.
    #[arg(long = "prog", value_name = "PATTERN")]
    prog: Vec<ProgramPattern>,
    #[command(flatten)]
    load: LoadArgs,
    /// Log the walk of a rejected program that processed up to N instructions [default: 200000]: a complexity rejection then shows its hottest C lines and loops. A million-instruction walk logs ~80 MB and takes minutes under TCG.
    #[arg(long, value_name = "N")]
    walk_budget: Option<u32>,
    /// Text (a compiler-style diagnostic per rejection) or JSON (one object per program and kernel).
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    #[command(flatten)]
    vm: VmArgs,
}

pub fn run(o: Options, at: &ProjectAt, interrupt: &Arc<AtomicBool>) -> anyhow::Result<ExitCode> {
    if let Some(log) = &o.log {
        // With --log, --prog names the object's program the log is of.
        let program = o.prog.first().map(|p| p.text.as_str());
        let explained = harness_suite::explain_log(log, o.object.as_deref(), program)?;
        match o.format {
            Format::Text => anstream::print!(
                "{}",
                harness_report::log_explanation(
                    &explained.log,
                    explained.diagnosis.as_ref(),
                    &explained.notes
                )
            ),
            Format::Json => println!("{}", serde_json::to_string_pretty(&explained)?),
        }
        return Ok(ExitCode::SUCCESS);
    }
    let project = at.project()?;
    let status = harness_report::Status::new();
    let kernels = crate::run::kernels_or_default(o.load.kernel, &project, crate::run::MATRIX)?;
    o.vm.prepare_machine(&kernels.0, &status)?;
    let opts = o.vm.suite_options(kernels.0, o.load.log_level);
    let verify = VerifyOptions {
        objects: Objects::Paths {
            paths: o.paths,
            cwd: std::env::current_dir()?,
        },
        programs: o.prog,
        walk_budget: o.walk_budget,
        ..VerifyOptions::default()
    };
    let judgement = match harness_suite::verify(&project, &opts, &verify, &status, interrupt) {
        Ok(j) => j,
        Err(e) => return exit_for(e),
    };
    match o.format {
        Format::Text => anstream::print!(
            "{}",
            harness_report::explain_report(&judgement.rows, &judgement.divergences)
        ),
        Format::Json => println!("{}", harness_judge::to_json(&judgement.rows)),
    }
    // Explaining is the job: rejections are its input, not its failure. A
    // VM that failed, or a program the harness could not hand over, is.
    Ok(if judgement.failures().any(|f| !f.is_program_verdict()) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
