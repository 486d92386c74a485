use std::{
    process::ExitCode,
    sync::{Arc, atomic::AtomicBool},
};

use harness_suite::{Filter, ProgramPattern, TestOptions, Unreferenced};

use crate::{
    ProjectAt,
    run::{CiArgs, LoadArgs, VmArgs, exit_for},
};

#[derive(Clone, Copy, clap::ValueEnum)]
enum UnreferencedArg {
    List,
    Delete,
}

#[derive(clap::Args)]
pub struct Options {
    #[command(flatten)]
    load: LoadArgs,
    /// Only the cases of programs matching PROGRAM or OBJECT/PROGRAM (globs with * and ?); repeatable. Other cases are counted as filtered.
    #[arg(long = "prog", value_name = "PATTERN")]
    prog: Vec<ProgramPattern>,
    /// Only the cases whose name, program (PROGRAM, OBJECT/PROGRAM) or object matches (globs with * and ?), and only those programs; repeatable.
    #[arg(long, value_name = "PATTERN")]
    filter: Vec<Filter>,
    /// Print the programs and cases that would run, and run nothing.
    #[arg(long)]
    list: bool,
    /// Snapshots no case or program of the project produces any more (renamed or removed): name them, or delete them. Only a run of the whole project (no --prog, --filter) judges them.
    #[arg(long, value_enum, default_value = "list")]
    unreferenced: UnreferencedArg,
    #[command(flatten)]
    ci: CiArgs,
    #[command(flatten)]
    vm: VmArgs,
}

pub fn run(o: Options, at: &ProjectAt, interrupt: &Arc<AtomicBool>) -> anyhow::Result<ExitCode> {
    let project = at.project()?;
    let kernels = crate::run::kernels_or_default(o.load.kernel, &project, "6.1")?;
    let status = harness_report::Status::new();
    let test = TestOptions {
        programs: o.prog,
        filters: o.filter,
        unreferenced: match o.unreferenced {
            UnreferencedArg::List => Unreferenced::List,
            UnreferencedArg::Delete => Unreferenced::Delete,
        },
        shard: o.ci.shard,
    };
    if o.list {
        harness_setup::install(&harness_setup::missing(false), &status)?;
        return match harness_suite::list(&project, &test, &status) {
            Ok(prepared) => {
                anstream::print!(
                    "{}",
                    harness_report::listing(&project, &prepared, &kernels.1)
                );
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => exit_for(e),
        };
    }
    let outputs = o.ci.outputs()?;
    o.vm.prepare_machine(&kernels.0, &status)?;
    let opts = o.vm.suite_options(kernels.0, o.load.log_level);
    match harness_suite::test_with(&project, &opts, &test, &status, interrupt) {
        Ok(judgement) => {
            anstream::print!("{}", harness_report::test_report(&judgement));
            crate::run::publish(&outputs, &project, &judgement.outcomes, &status)?;
            Ok(if judgement.ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Err(e) => exit_for(e),
    }
}
