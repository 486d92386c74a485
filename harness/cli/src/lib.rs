//! The harness's command line as a library: the `ebpf-harness` binary is
//! [`main`], and a Rust project's own xtask gets the same subcommands in a
//! few lines:
//!
//! ```no_run
//! fn main() -> std::process::ExitCode {
//!     ebpf_harness::main("cargo xtask")
//! }
//! ```
//!
//! or, to add commands of its own, flattens [`Command`] into its clap enum
//! and calls [`run`]. Argument parsing and dispatch only: the work is done
//! by the harness's library crates.

mod build;
mod ci;
mod explain;
mod kernels;
pub mod run;
mod setup;
mod test;
mod verify;
mod vmlinux;

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
    sync::{Arc, atomic::AtomicBool},
};

use clap::{Parser, Subcommand};
use harness_project::Project;

/// Every command of the harness.
#[derive(Subcommand)]
pub enum Command {
    /// Install what a fresh machine lacks (clang, BPF headers, QEMU >= 8, libbpf's build tools) and fetch the pinned kernels.
    Setup(setup::Options),
    /// Compile the project's BPF sources (only what changed).
    Build(build::Options),
    /// Run the test cases on one or more kernels and check snapshots.
    Test(test::Options),
    /// Load every program on each kernel: verdicts and verifier cost, compared and gated.
    Verify(verify::Options),
    /// Why programs are rejected: load them (or read a saved log) and diagnose each rejection.
    Explain(explain::Options),
    /// Show or refresh the pinned kernels (the lock file), or pin an image beyond Debian's.
    #[command(subcommand)]
    Kernels(kernels::Command),
    /// Write vmlinux.h for each kernel from its BTF, for CO-RE programs (per kernel line, or the running kernel's).
    #[command(name = "vmlinux-h")]
    VmlinuxH(vmlinux::Options),
    /// Merge the results of shards or kernels (`--results` files) into one run's: summary, JUnit, exit code.
    Merge(ci::MergeOptions),
    /// Print the lock file's kernel lines as JSON for a CI workflow's `strategy.matrix`.
    #[command(name = "ci-matrix")]
    CiMatrix,
}

#[derive(Parser)]
#[command(about = "Build, run and snapshot BPF programs on real kernels")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where the project is: found from a directory upwards (the nearest
/// `ebpf-harness.toml` or `[workspace.metadata.ebpf-harness]`, else the
/// Cargo workspace root, else the directory itself).
#[derive(Clone, Debug)]
pub struct ProjectAt {
    pub start: PathBuf,
}

impl ProjectAt {
    /// From the current directory.
    pub fn current_dir() -> anyhow::Result<Self> {
        Ok(Self {
            start: std::env::current_dir()?,
        })
    }

    /// The project, configured. Its target directory is cargo's for a
    /// Cargo project (respects `CARGO_TARGET_DIR` and `.cargo/config`),
    /// else `$CARGO_TARGET_DIR` or `target/` at its root.
    pub fn project(&self) -> anyhow::Result<Project> {
        let root = harness_project::find_root(&self.start)?;
        let target_dir = target_dir(&root);
        Ok(Project::load(&root, &target_dir)?)
    }
}

fn target_dir(root: &Path) -> PathBuf {
    if root.join("Cargo.toml").is_file()
        && let Ok(meta) = cargo_metadata::MetadataCommand::new()
            .manifest_path(root.join("Cargo.toml"))
            .no_deps()
            .exec()
    {
        return PathBuf::from(meta.target_directory);
    }
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from)
}

/// Runs one command on the project at `at`.
pub fn run(
    command: Command,
    at: &ProjectAt,
    interrupt: &Arc<AtomicBool>,
) -> anyhow::Result<ExitCode> {
    match command {
        Command::Setup(o) => setup::run(o, at),
        Command::Build(o) => build::run(o, at),
        Command::Test(o) => test::run(o, at, interrupt),
        Command::Verify(o) => verify::run(o, at, interrupt),
        Command::Explain(o) => explain::run(o, at, interrupt),
        Command::Kernels(c) => kernels::run(c, at),
        Command::VmlinuxH(o) => vmlinux::run(o, at),
        Command::Merge(o) => ci::merge(o),
        Command::CiMatrix => ci::matrix(at),
    }
}

/// Parses the arguments (`name` is how usage calls the program), runs the
/// command on the project found from the current directory, Ctrl-C
/// stopping VMs cleanly, and prints any error.
pub fn main(name: &'static str) -> ExitCode {
    use clap::CommandFactory as _;
    let matches = Cli::command().name(name).bin_name(name).get_matches();
    let cli = match <Cli as clap::FromArgMatches>::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    exit_with(|interrupt| run(cli.command, &ProjectAt::current_dir()?, interrupt))
}

/// Runs `job` interruptibly (see [`run::interruptible`]) and turns its
/// outcome into the process's exit code, printing an error.
pub fn exit_with(
    job: impl FnOnce(&Arc<AtomicBool>) -> anyhow::Result<ExitCode> + Send + 'static,
) -> ExitCode {
    let result = run::interrupt_flag().and_then(|interrupt| {
        let flag = interrupt.clone();
        run::interruptible(&interrupt, move || job(&flag))
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
