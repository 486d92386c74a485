use std::process::ExitCode;

use harness_build::BpfBuild;

#[derive(clap::Args)]
pub struct Options {}

pub fn run(_: Options) -> anyhow::Result<ExitCode> {
    let project = crate::project()?;
    let status = harness_report::Status::new();
    harness_setup::install(&harness_setup::missing(false), &status)?;
    let build = BpfBuild::new(project.programs_dir.clone(), project.objects_dir.clone());
    for b in build.build_all()? {
        let verb = if b.rebuilt { "Compiled" } else { "Fresh" };
        status.line(
            verb,
            &format!(
                "{} -> {}",
                project.relative(&b.source),
                project.relative(&b.object)
            ),
        );
    }
    Ok(ExitCode::SUCCESS)
}
