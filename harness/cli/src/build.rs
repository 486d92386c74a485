use std::process::ExitCode;

use crate::ProjectAt;

#[derive(clap::Args)]
pub struct Options {}

/// Compiles what changed; a source that does not compile is shown with
/// clang's diagnostics and fails the command after the others are built.
pub fn run(_: Options, at: &ProjectAt) -> anyhow::Result<ExitCode> {
    let project = at.project()?;
    let status = harness_report::Status::new();
    harness_setup::install(&harness_setup::missing(false), &status)?;
    let (built, failed) = harness_project::build(&project, &harness_events::Silent)?;
    for b in &built {
        let verb = if b.rebuilt { "Compiled" } else { "Fresh" };
        let from = b.source.as_deref().unwrap_or(&b.object);
        status.line(
            verb,
            &format!(
                "{} -> {}",
                project.relative(from),
                project.relative(&b.object)
            ),
        );
    }
    for f in &failed {
        anstream::eprintln!("error: {}", f.error);
    }
    Ok(if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
