use std::{
    process::ExitCode,
    sync::{Arc, atomic::AtomicBool},
};

use harness_suite::{ProgramPattern, TestOptions};

use crate::run::{Kernels, VmArgs, exit_for, parse_kernels};

#[derive(clap::Args)]
pub struct Options {
    /// Kernels: Debian lines (5.10, 6.1, 6.12, 7.2, 7.3), `host`, or a bzImage path; comma-separated.
    #[arg(long, short, default_value = "6.1", value_parser = parse_kernels)]
    kernel: Kernels,
    /// Verifier log level: 1 (the kernel keeps only statistics of accepted programs, and the full path of rejected ones) or 2 (every state of every program; large).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=2))]
    log_level: u32,
    /// Only the cases of programs matching PROGRAM or OBJECT/PROGRAM (globs with * and ?); repeatable. Other cases are counted as filtered.
    #[arg(long = "prog", value_name = "PATTERN")]
    prog: Vec<ProgramPattern>,
    #[command(flatten)]
    vm: VmArgs,
}

pub fn run(o: Options, interrupt: &Arc<AtomicBool>) -> anyhow::Result<ExitCode> {
    let project = crate::project()?;
    let status = harness_report::Status::new();
    o.vm.prepare_machine(&o.kernel.0, &status)?;
    let opts = o.vm.suite_options(o.kernel.0, o.log_level);
    let test = TestOptions { programs: o.prog };
    match harness_suite::test_with(&project, &opts, &test, &status, interrupt) {
        Ok(judgement) => {
            anstream::print!("{}", harness_report::test_report(&judgement));
            Ok(if judgement.ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Err(e) => exit_for(e),
    }
}
