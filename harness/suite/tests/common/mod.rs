//! Helpers for tests that boot real kernels: a copy of the project's
//! programs and cases in a temporary directory, and the pinned kernels.

#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::{
    fs,
    path::{Path, PathBuf},
    sync::{Arc, atomic::AtomicBool},
    time::Duration,
};

use harness_events::Silent;
use harness_project::{PrepareOptions, Prepared};
use harness_suite::{KernelRequest, Project, RunOptions, SuiteOptions, UpdateMode};

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            fs::copy(e.path(), dest).unwrap();
        }
    }
}

/// The project's programs, cases and snapshots, copied so a test can change
/// them; outputs go to the temporary directory too. The in-VM runner is
/// still built from this workspace.
pub fn project_copy() -> (tempfile::TempDir, Project) {
    let ws = workspace();
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(
        &ws.join("sample-programs"),
        &tmp.path().join("sample-programs"),
    );
    copy_dir(&ws.join("testcases"), &tmp.path().join("testcases"));
    // The samples without the compatibility gallery, the rejected gallery
    // and the security programs (their cases and snapshots too): these
    // tests count the samples' programs, cases and snapshots, and run them
    // on the host, where trampolines do not attach.
    for sub in ["gallery", "rejected", "security"] {
        let dir = tmp.path().join("sample-programs").join(sub);
        for e in fs::read_dir(&dir).unwrap() {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            if let Some(object) = name.strip_suffix(".bpf.c") {
                let prefixes = [format!("verifier__{object}__"), format!("case__{object}__")];
                for s in fs::read_dir(tmp.path().join("testcases/snapshots")).unwrap() {
                    let s = s.unwrap();
                    let file = s.file_name().to_string_lossy().into_owned();
                    if prefixes.iter().any(|p| file.starts_with(p)) {
                        fs::remove_file(s.path()).unwrap();
                    }
                }
                let cases = tmp.path().join("testcases").join(format!("{object}.toml"));
                if cases.exists() {
                    fs::remove_file(cases).unwrap();
                }
            }
        }
        fs::remove_dir_all(dir).unwrap();
    }
    // The copy is the project (the runner is built from the harness's own
    // sources wherever a project is), with this repository's flags.
    let mut p = Project::at(tmp.path(), &ws.join("target"));
    p.build.cflags = Project::load(&ws, &ws.join("target")).unwrap().build.cflags;
    assert!(p.build.cflags.iter().any(|f| f == "-Werror"));
    p.lock_file = ws.join("kernels.lock");
    p.objects_dir = tmp.path().join("bpf");
    p.results_dir = tmp.path().join("results");
    (tmp, p)
}

pub fn options(kernels: &str) -> SuiteOptions {
    SuiteOptions {
        kernels: harness_kernels::parse_kernel_list(kernels).unwrap(),
        mirror: None,
        log_level: 1,
        snapshots: UpdateMode::No,
        run: RunOptions {
            timeout: Duration::from_secs(300),
            ..RunOptions::default()
        },
    }
}

pub fn no_interrupt() -> Arc<AtomicBool> {
    Arc::new(AtomicBool::new(false))
}

pub fn test(project: &Project, kernels: &str) -> harness_suite::TestJudgement {
    test_with(project, &options(kernels))
}

pub fn test_with(project: &Project, opts: &SuiteOptions) -> harness_suite::TestJudgement {
    harness_suite::test(project, opts, &Silent, &no_interrupt()).unwrap()
}

/// Adds `unchecked.bpf.c`: an XDP program that reads the packet without a
/// bounds check (line 5), which every verifier rejects.
pub fn add_unchecked_program(project: &Project) {
    fs::write(
        project.root.join("sample-programs").join("unchecked.bpf.c"),
        "#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\n\
         SEC(\"xdp\") int unchecked(struct xdp_md *ctx)\n{\n\
         \treturn *(unsigned char *)(long)ctx->data; /* no bounds check */\n}\n\
         char LICENSE[] SEC(\"license\") = \"GPL\";\n",
    )
    .unwrap();
}

/// A pinned kernel's bzImage, fetched into the shared cache if needed.
pub fn kernel(line: &str) -> PathBuf {
    let project = Project::at(&workspace(), &workspace().join("target"));
    let targets = harness_suite::resolve_targets(
        &project,
        &[KernelRequest::Line(line.parse().unwrap())],
        None,
        &Silent,
    )
    .unwrap();
    targets[0].bzimage().expect("a VM target").to_owned()
}

pub fn prepare(project: &Project) -> Prepared {
    harness_project::prepare(
        project,
        PrepareOptions {
            log_level: 1,
            cases: true,
        },
        &Silent,
    )
    .unwrap()
}

/// How many cases the project's case files define.
pub fn case_count(project: &Project) -> usize {
    prepare(project).cases.len()
}

/// How many programs the project's objects hold.
pub fn program_count(project: &Project) -> usize {
    prepare(project).program_count()
}

/// Every failure as the report shows it.
pub fn failures(findings: &[harness_judge::Finding]) -> Vec<String> {
    findings
        .iter()
        .filter(|f| f.is_failure())
        .map(ToString::to_string)
        .collect()
}
