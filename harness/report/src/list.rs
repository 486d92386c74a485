//! `test --list`: what a run would do, without a kernel.

use std::fmt::Write as _;

use harness_project::{Prepared, Project};

/// Every program that would be judged, then every case that would run
/// (`file:line`, object/program, name), then the counts.
pub fn listing(project: &Project, prepared: &Prepared, kernels: &str) -> String {
    let mut out = String::new();
    let mut programs = 0;
    for o in &prepared.objects {
        for p in o.info.file.programs() {
            if prepared.is_selected(&o.name, &p.name) {
                programs += 1;
                let _ = writeln!(out, "program {}/{} ({})", o.name, p.name, o.shown(project));
            }
        }
    }
    for u in &prepared.unopened {
        let _ = writeln!(
            out,
            "object  {} ({}): will fail, {}",
            u.name,
            project.relative(&u.path),
            u.error.lines().next().unwrap_or_default()
        );
    }
    for c in &prepared.cases {
        let _ = writeln!(
            out,
            "case    {}:{} {}/{}: {}",
            c.file.display(),
            c.line,
            c.object,
            c.program,
            c.name
        );
    }
    let _ = writeln!(
        out,
        "{programs} programs, {} cases ({} filtered out) on {kernels}",
        prepared.cases.len(),
        prepared.filtered_cases
    );
    out
}
