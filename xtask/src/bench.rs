use std::{process::ExitCode, time::Duration};

use harness_suite::{RunOptions, TestOptions};
use harness_vm::AccelChoice;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Harness time from start to results vs a bare boot of the same kernel (target: <= 1.15x).
    Boot {
        /// Kernels to measure (Debian lines or bzImage paths).
        #[arg(long, short, default_value = "5.10,6.1,6.12,7.2")]
        kernel: String,
        /// Runs of each kind per kernel (medians are reported).
        #[arg(long, default_value_t = 5)]
        runs: usize,
        #[arg(long, default_value = "auto", env = "HARNESS_ACCEL")]
        accel: AccelChoice,
    },
}

pub fn run(cmd: Command) -> anyhow::Result<ExitCode> {
    let project = crate::project()?;
    match cmd {
        Command::Boot {
            kernel,
            runs,
            accel,
        } => {
            let opts = TestOptions {
                kernels: harness_kernels::parse_kernel_list(&kernel)?,
                accel,
                mirror: None,
                log_level: 1,
                // Measuring must not write pending snapshots.
                snapshots: harness_snapshots::UpdateMode::No,
                run: RunOptions {
                    timeout: Duration::from_secs(300),
                    ..RunOptions::default()
                },
            };
            let results = harness_suite::bench_boot(
                &project,
                &opts,
                runs.max(1),
                crate::test::interrupt_flag()?,
            )?;
            println!(
                "{:<8} {:>10} {:>10} {:>8}   (medians of {runs}; target <= 1.15x)",
                "kernel", "bare boot", "harness", "ratio"
            );
            for b in &results {
                let (bare, harness) = (
                    harness_suite::bench_median(&b.bare),
                    harness_suite::bench_median(&b.harness),
                );
                println!(
                    "{:<8} {:>9.2}s {:>9.2}s {:>7.2}x",
                    b.label,
                    bare.as_secs_f64(),
                    harness.as_secs_f64(),
                    b.ratio()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
