use std::process::ExitCode;

use harness_build::BpfBuild;

#[derive(clap::Args)]
pub struct Options {}

pub fn run(_: Options) -> anyhow::Result<ExitCode> {
    let project = crate::project()?;
    harness_suite::prereq::install(&harness_suite::prereq::missing(false))
        .map_err(anyhow::Error::msg)?;
    let build = BpfBuild::new(project.programs_dir.clone(), project.objects_dir.clone());
    for b in build.build_all()? {
        let verb = if b.rebuilt { "Compiled" } else { "Fresh" };
        harness_suite::ui::status(
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
