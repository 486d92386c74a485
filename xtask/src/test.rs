use std::{
    process::ExitCode,
    sync::{Arc, atomic::AtomicBool},
};

use crate::run::{Kernels, VmArgs, exit_for, parse_kernels};

#[derive(clap::Args)]
pub struct Options {
    /// Kernels: Debian lines (5.10, 6.1, 6.12, 7.2), `host`, or a bzImage path; comma-separated.
    #[arg(long, short, default_value = "6.1", value_parser = parse_kernels)]
    kernel: Kernels,
    /// Verifier log level: 1 (the kernel keeps only statistics of accepted programs, and the full path of rejected ones) or 2 (every state of every program; large).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=2))]
    log_level: u32,
    #[command(flatten)]
    vm: VmArgs,
}

pub fn run(o: Options, interrupt: &Arc<AtomicBool>) -> anyhow::Result<ExitCode> {
    let project = crate::project()?;
    let status = harness_report::Status::new();
    o.vm.prepare_machine(&o.kernel.0, &status)?;
    let opts = o.vm.suite_options(o.kernel.0, o.log_level);
    match harness_suite::test(&project, &opts, &status, interrupt) {
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
