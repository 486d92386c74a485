//! `cargo xtask` starts here. The CLI links libbpf, built from source
//! (libbpf-sys, vendored and static) with autotools, flex and bison, which a
//! fresh machine lacks; this launcher has no native dependencies, so it can
//! install them first and then hand over to the CLI with the same arguments.

use std::{
    env,
    ffi::OsString,
    os::unix::process::CommandExt as _,
    path::PathBuf,
    process::{Command, ExitCode},
};

use harness_events::{Event, EventSink};

/// Straight to stderr: the launcher has no renderer of its own. A step is
/// one line, its time added when it ends.
struct Notes;

impl EventSink for Notes {
    fn event(&self, event: Event) {
        match event {
            Event::Installing { what, why } => eprint!("Installing {what} ({why}) ... "),
            Event::Installed { took, .. } => eprintln!("{:.1}s", took.as_secs_f64()),
            Event::Note { message } => eprintln!("{message}"),
            _ => {}
        }
    }
}

fn main() -> ExitCode {
    let missing = harness_setup::missing_build_tools();
    if let Err(e) = harness_setup::install(&missing, &Notes) {
        // After an unfinished step's line.
        eprintln!("\nerror: the harness cannot be built yet: {e}");
        return ExitCode::FAILURE;
    }
    let cargo = env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let target =
        env::var_os("CARGO_TARGET_DIR").map_or_else(|| PathBuf::from("target"), PathBuf::from);
    if !target.join("debug").join("xtask").exists() {
        eprintln!("Building the harness (the first build compiles libbpf: a few minutes)");
    }
    let error = Command::new(cargo)
        .args(["run", "--quiet", "--package", "xtask", "--"])
        .args(env::args_os().skip(1))
        .exec();
    eprintln!("error: running cargo: {error}");
    ExitCode::FAILURE
}
