//! `cargo xtask`: parses arguments and hands over to the library crates.

mod bench;
mod build;
mod explain;
mod kernels;
mod run;
mod setup;
mod test;
mod verify;

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};
use harness_project::Project;

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
    /// Install what a fresh machine lacks (clang, BPF headers, QEMU >= 8, libbpf's build tools) and fetch the pinned kernels.
    Setup(setup::Options),
    /// Compile every sample-programs/*.bpf.c into target/bpf/ (only what changed).
    Build(build::Options),
    /// Run the test cases on one or more kernels and check snapshots.
    Test(test::Options),
    /// Load every program on each kernel: verdicts and verifier cost, compared and gated.
    Verify(verify::Options),
    /// Why programs are rejected: load them (or read a saved log) and diagnose each rejection.
    Explain(explain::Options),
    /// Show or refresh the pinned Debian kernels (kernels.lock).
    #[command(subcommand)]
    Kernels(kernels::Command),
    /// Measure the harness.
    #[command(subcommand)]
    Bench(bench::Command),
}

/// Paths of this workspace, from cargo (respects CARGO_TARGET_DIR), found
/// from where xtask was built, so it runs from any directory (`verify PATH`
/// takes paths relative to the current one).
fn project() -> anyhow::Result<Project> {
    let meta = cargo_metadata::MetadataCommand::new()
        .manifest_path(concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.toml"))
        .no_deps()
        .exec()?;
    Ok(Project::at(
        &PathBuf::from(meta.workspace_root),
        &PathBuf::from(meta.target_directory),
    ))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = run::interrupt_flag().and_then(|interrupt| {
        let flag = interrupt.clone();
        run::interruptible(&interrupt, move || match cli.command {
            Command::Setup(o) => setup::run(o),
            Command::Build(o) => build::run(o),
            Command::Test(o) => test::run(o, &flag),
            Command::Verify(o) => verify::run(o, &flag),
            Command::Explain(o) => explain::run(o, &flag),
            Command::Kernels(c) => kernels::run(c),
            Command::Bench(c) => bench::run(c, &flag),
        })
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            let e: &(dyn std::error::Error + 'static) = e.as_ref();
            anstream::eprintln!("error: {}", harness_report::error_text(e));
            ExitCode::FAILURE
        }
    }
}
