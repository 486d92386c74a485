use std::{
    process::ExitCode,
    sync::{Arc, atomic::AtomicBool},
    time::Duration,
};

use harness_bench::median;
use harness_suite::SuiteOptions;
use harness_vm::AccelChoice;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Harness time from start to results vs a bare boot of the same kernel (target: <= 1.15x).
    Boot {
        /// Kernels to measure (Debian lines or bzImage paths).
        #[arg(long, short, default_value = "5.10,6.1,6.12,7.2")]
        kernel: String,
        /// Runs of each kind per kernel (medians are reported).
        #[arg(long, default_value_t = 5, value_parser = crate::run::at_least_one)]
        runs: usize,
        #[arg(long, default_value = "auto", env = "HARNESS_ACCEL")]
        accel: AccelChoice,
    },
    /// Time that N generated packet cases add to one run, on the host and in a VM (target: <= 1 s per 1000 on the host).
    Cases {
        /// Where to measure: `host` (root) and/or kernel lines.
        #[arg(long, short, default_value = "host,6.1")]
        kernel: String,
        #[arg(long, default_value_t = 1000, value_parser = crate::run::at_least_one)]
        cases: usize,
        /// Runs of each kind (medians are reported).
        #[arg(long, default_value_t = 3, value_parser = crate::run::at_least_one)]
        runs: usize,
        #[arg(long, default_value = "auto", env = "HARNESS_ACCEL")]
        accel: AccelChoice,
    },
    /// Time to verify every sample object on the host kernel (root), against veristat on the same objects (target: <= 1.2x).
    Verify {
        #[arg(long, default_value_t = 5, value_parser = crate::run::at_least_one)]
        runs: usize,
        /// veristat binary to compare with [default: `veristat` on PATH, if any].
        #[arg(long)]
        veristat: Option<std::path::PathBuf>,
    },
}

fn on_path(cmd: &str) -> Option<std::path::PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(cmd))
        .find(|p| p.is_file())
}

fn options(kernel: &str, accel: AccelChoice) -> anyhow::Result<SuiteOptions> {
    Ok(SuiteOptions {
        kernels: harness_kernels::parse_kernel_list(kernel)?,
        mirror: None,
        log_level: 1,
        // Measuring must not write pending snapshots.
        snapshots: harness_snapshots::UpdateMode::No,
        run: harness_matrix::RunOptions {
            timeout: Duration::from_secs(600),
            accel,
            ..harness_matrix::RunOptions::default()
        },
    })
}

pub fn run(cmd: Command, interrupt: &Arc<AtomicBool>) -> anyhow::Result<ExitCode> {
    let project = crate::project()?;
    let status = harness_report::Status::new();
    match cmd {
        Command::Boot {
            kernel,
            runs,
            accel,
        } => {
            let results = harness_bench::boot(
                &project,
                &options(&kernel, accel)?,
                runs,
                &status,
                interrupt,
            )?;
            println!(
                "{:<8} {:>10} {:>10} {:>8}   (medians of {runs}; target <= 1.15x)",
                "kernel", "bare boot", "harness", "ratio"
            );
            for b in &results {
                let (bare, harness) = (median(&b.bare), median(&b.harness));
                println!(
                    "{:<8} {:>9.2}s {:>9.2}s {:>7.2}x",
                    b.label,
                    bare.as_secs_f64(),
                    harness.as_secs_f64(),
                    b.ratio()
                );
            }
        }
        Command::Cases {
            kernel,
            cases,
            runs,
            accel,
        } => {
            let results = harness_bench::cases(
                &project,
                &options(&kernel, accel)?,
                cases,
                runs,
                &status,
                interrupt,
            )?;
            println!(
                "{:<8} {:>10} {:>12} {:>10} {:>12}   (medians of {runs})",
                "kernel",
                "1 case",
                format!("{cases} cases"),
                "added",
                "per case"
            );
            for b in &results {
                let added = b.added().as_secs_f64();
                println!(
                    "{:<8} {:>9.2}s {:>11.2}s {:>9.3}s {:>9.1} µs",
                    b.label,
                    b.baseline.as_secs_f64(),
                    b.loaded.as_secs_f64(),
                    added,
                    added * 1e6 / b.cases as f64
                );
            }
            println!("target: <= 1 s added per 1000 cases on the host");
        }
        Command::Verify { runs, veristat } => {
            let veristat = veristat.or_else(|| on_path("veristat"));
            let b = harness_bench::verify(&project, runs, veristat.as_deref(), &status, interrupt)?;
            println!(
                "host: {} programs in {} objects verified in {:.1} ms (median of {runs})",
                b.programs,
                b.objects,
                b.harness.as_secs_f64() * 1e3
            );
            match b.veristat {
                Some(v) => println!(
                    "veristat on the same objects: {:.1} ms; ratio {:.2}x (target <= 1.2x)",
                    v.as_secs_f64() * 1e3,
                    b.harness.as_secs_f64() / v.as_secs_f64()
                ),
                None => println!(
                    "no veristat to compare with: pass --veristat PATH or put veristat on PATH"
                ),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
