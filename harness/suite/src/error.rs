use std::{io, path::PathBuf};

use harness_cases::CaseError;

/// What stops a run before there is anything to report.
#[derive(Debug, thiserror::Error)]
pub enum SuiteError {
    #[error(transparent)]
    Build(#[from] harness_build::BuildError),
    #[error(transparent)]
    GuestBuild(#[from] harness_build::GuestBuildError),
    #[error("{}", render_cases(.0))]
    Cases(Vec<CaseError>),
    #[error("{path}: {error}", path = path.display())]
    Object { path: PathBuf, error: String },
    #[error(transparent)]
    Kernel(#[from] harness_kernels::KernelError),
    #[error(transparent)]
    Vm(#[from] harness_vm::VmError),
    #[error(
        "--kernel host needs root: loading programs and BPF_PROG_TEST_RUN need CAP_BPF and CAP_NET_ADMIN. \
         Run as root (sudo -E cargo xtask test --kernel host) or pick a VM kernel such as --kernel 6.1"
    )]
    NotRoot,
    #[error("interrupted")]
    Interrupted,
    #[error("{what}: {error}")]
    Io { what: String, error: io::Error },
}

fn render_cases(errors: &[CaseError]) -> String {
    let mut s = String::new();
    for e in errors {
        s.push_str(&e.to_string());
        s.push('\n');
    }
    s.push_str(&format!(
        "{} problem{} in test-case files; nothing was run",
        errors.len(),
        if errors.len() == 1 { "" } else { "s" }
    ));
    s
}

pub(crate) fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> SuiteError {
    let what = what.into();
    move |error| SuiteError::Io { what, error }
}
