//! `cargo xtask`: the harness's commands (the `ebpf-harness` library) on
//! this repository, plus the benchmarks of the harness itself.

mod bench;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use ebpf_harness::ProjectAt;

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    about = "Build, run and snapshot BPF programs on real kernels"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    #[command(flatten)]
    Harness(Box<ebpf_harness::Command>),
    /// Measure the harness.
    #[command(subcommand)]
    Bench(bench::Command),
}

/// This workspace, found from where xtask was built, so it runs from any
/// directory (`verify PATH` takes paths relative to the current one).
fn here() -> ProjectAt {
    ProjectAt {
        start: concat!(env!("CARGO_MANIFEST_DIR"), "/..").into(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    ebpf_harness::exit_with(move |interrupt| match cli.command {
        Command::Harness(c) => ebpf_harness::run(*c, &here(), interrupt),
        Command::Bench(c) => bench::run(c, &here(), interrupt),
    })
}
