//! `verify PATH...` and `--prog` on the host kernel: objects and sources from
//! anywhere, named so they never collide, selected by pattern, with clear
//! errors for what is not BPF.

mod common;

use std::{
    fs,
    path::{Path, PathBuf},
};

use common::{failures, no_interrupt, options, project_copy};
use harness_judge::{ExpectationStatus, SnapshotChange, VerdictKind};
use harness_project::{InputError, NoMatch, NotBpf, PrepareError};
use harness_suite::{
    Objects, Project, SuiteError, TestOptions, UpdateMode, VerifyJudgement, VerifyOptions,
};

const HEADERS: &str = "#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\n";
const LICENSE: &str = "char LICENSE[] SEC(\"license\") = \"GPL\";\n";

/// Two XDP programs; `extra` more instructions in the first, so two objects
/// built from this differ in their logs.
fn two_programs(extra: usize) -> String {
    let steps = "\tv ^= v >> 3;\n".repeat(extra);
    format!(
        "{HEADERS}SEC(\"xdp\") int xdp_pass(struct xdp_md *ctx)\n{{\n\t__u32 v = ctx->rx_queue_index;\n{steps}\treturn v > 1000 ? XDP_DROP : XDP_PASS;\n}}\n\
         SEC(\"xdp\") int xdp_drop(struct xdp_md *ctx) {{ return XDP_DROP; }}\n{LICENSE}"
    )
}

/// Reads the packet without a bounds check: every verifier rejects it.
fn unchecked(tags: &str) -> String {
    format!(
        "{HEADERS}#include \"verifier.h\"\nSEC(\"xdp\") {tags}\nint unchecked(struct xdp_md *ctx)\n{{\n\
         \treturn *(unsigned char *)(long)ctx->data;\n}}\n{LICENSE}"
    )
}

/// Compiles `source` with the project's flags and puts the object at `to`.
fn compile(project: &Project, work: &Path, source: &str, to: &Path) {
    // A source name per destination: each compile is a fresh one.
    let stem: String = to
        .to_string_lossy()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let src = work.join(format!("{stem}.bpf.c"));
    fs::write(&src, source).unwrap();
    let built =
        harness_build::BpfBuild::new(project.root.join("sample-programs"), work.join("out"))
            .build_file(&src)
            .unwrap();
    fs::create_dir_all(to.parent().unwrap()).unwrap();
    fs::copy(&built.object, to).unwrap();
    fs::remove_file(&src).unwrap();
}

/// A scratch directory of inputs next to a project copy whose outputs go
/// to the temporary directory.
struct Scratch {
    _tmp: tempfile::TempDir,
    project: Project,
    /// Where the inputs are; paths are relative to it.
    dir: PathBuf,
}

fn scratch() -> Scratch {
    let (tmp, project) = project_copy();
    let dir = tmp.path().join("inputs");
    fs::create_dir_all(&dir).unwrap();
    let work = tmp.path().join("work");
    fs::create_dir_all(&work).unwrap();
    compile(&project, &work, &two_programs(1), &dir.join("a/prog.o"));
    compile(&project, &work, &two_programs(6), &dir.join("b/prog.o"));
    Scratch {
        _tmp: tmp,
        project,
        dir,
    }
}

impl Scratch {
    fn verify(&self, paths: &[&str], programs: &[&str]) -> Result<VerifyJudgement, SuiteError> {
        let mut opts = options("host");
        // Even when snapshots may be written, none are for objects by path.
        opts.snapshots = UpdateMode::Always;
        harness_suite::verify(
            &self.project,
            &opts,
            &VerifyOptions {
                objects: Objects::Paths {
                    paths: paths.iter().map(PathBuf::from).collect(),
                    cwd: self.dir.clone(),
                },
                programs: programs.iter().map(|p| p.parse().unwrap()).collect(),
                ..VerifyOptions::default()
            },
            &harness_events::Silent,
            &no_interrupt(),
        )
    }
}

fn snapshot_files(project: &Project) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(&project.snapshots_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

fn objects_and_programs(report: &VerifyJudgement) -> Vec<(String, String)> {
    report
        .rows
        .iter()
        .map(|r| (r.object.clone(), r.program.clone()))
        .collect()
}

#[test]
fn a_directory_walk_finds_objects_and_sources_under_names_that_never_collide() {
    let s = scratch();
    fs::create_dir_all(s.dir.join("c/.hidden")).unwrap();
    fs::write(s.dir.join("c/src.bpf.c"), two_programs(0)).unwrap();
    fs::write(s.dir.join("c/notes.txt"), "not BPF, skipped in a walk").unwrap();
    fs::copy(s.dir.join("a/prog.o"), s.dir.join("c/.hidden/prog.o")).unwrap();
    let before = snapshot_files(&s.project);

    let report = s.verify(&["."], &[]).unwrap();
    assert!(report.ok(), "{}", harness_report::verify_report(&report));
    let pairs = |o: &str| {
        [
            (o.to_owned(), "xdp_drop".to_owned()),
            (o.into(), "xdp_pass".into()),
        ]
    };
    let expected: Vec<(String, String)> = ["a/prog.o", "b/prog.o", "c/src.bpf.c"]
        .iter()
        .flat_map(|o| pairs(o))
        .collect();
    assert_eq!(objects_and_programs(&report), expected);
    assert!(report.rows.iter().all(|r| r.kernel == "host"));

    // Two prog.o, two logs: neither overwrote the other.
    let outputs = s.project.results_dir.join("host");
    let log = |object: &str| {
        fs::read_to_string(harness_matrix::verifier_log(&outputs, object, "xdp_pass")).unwrap()
    };
    let insns = |object: &str| {
        report
            .rows
            .iter()
            .find(|r| r.object == object && r.program == "xdp_pass")
            .unwrap()
            .insns
            .unwrap()
    };
    assert!(insns("b/prog.o") > insns("a/prog.o"), "{report:?}");
    assert!(log("a/prog.o").contains(&format!("processed {} insns", insns("a/prog.o"))));
    assert!(log("b/prog.o").contains(&format!("processed {} insns", insns("b/prog.o"))));

    // Nothing was written to, or noted about, the project's snapshots.
    assert_eq!(snapshot_files(&s.project), before);
    assert!(
        report.snapshot_notes.is_empty(),
        "{:?}",
        report.snapshot_notes
    );
    assert!(report.rows.iter().all(|r| r.baseline_insns.is_none()));

    // Named from a subdirectory, outside it the name is the absolute path.
    let mut inside = s.dir.join("a");
    let from_a = harness_suite::verify(
        &s.project,
        &options("host"),
        &VerifyOptions {
            objects: Objects::Paths {
                paths: vec![PathBuf::from("prog.o"), PathBuf::from("../b/prog.o")],
                cwd: inside.clone(),
            },
            ..VerifyOptions::default()
        },
        &harness_events::Silent,
        &no_interrupt(),
    )
    .unwrap();
    inside.pop();
    let absolute = inside.canonicalize().unwrap().join("b/prog.o");
    let objects: std::collections::BTreeSet<String> =
        from_a.rows.iter().map(|r| r.object.clone()).collect();
    assert_eq!(
        objects.into_iter().collect::<Vec<_>>(),
        [absolute.display().to_string(), "prog.o".into()]
    );
}

#[test]
fn prog_patterns_select_programs_and_a_pattern_matching_nothing_lists_them() {
    let s = scratch();
    let report = s.verify(&["a", "b"], &["xdp_pass"]).unwrap();
    assert_eq!(
        objects_and_programs(&report),
        [
            ("a/prog.o".to_owned(), "xdp_pass".to_owned()),
            ("b/prog.o".into(), "xdp_pass".into())
        ]
    );
    // OBJECT/PROGRAM: the object by path, or by its stem; globs.
    let report = s.verify(&["."], &["b/prog.o/*"]).unwrap();
    assert_eq!(
        objects_and_programs(&report),
        [
            ("b/prog.o".to_owned(), "xdp_drop".to_owned()),
            ("b/prog.o".into(), "xdp_pass".into())
        ]
    );
    let report = s.verify(&["."], &["prog/xdp_d?op"]).unwrap();
    assert_eq!(
        objects_and_programs(&report),
        [
            ("a/prog.o".to_owned(), "xdp_drop".to_owned()),
            ("b/prog.o".into(), "xdp_drop".into())
        ]
    );

    match s.verify(&["."], &["xdp_pass", "nothing*", "c/*"]) {
        Err(SuiteError::Prepare(PrepareError::NoMatch(NoMatch {
            unmatched,
            available,
        }))) => {
            assert_eq!(unmatched, ["nothing*", "c/*"]);
            assert_eq!(
                available,
                [
                    "a/prog.o/xdp_drop",
                    "a/prog.o/xdp_pass",
                    "b/prog.o/xdp_drop",
                    "b/prog.o/xdp_pass"
                ]
            );
        }
        other => panic!("expected NoMatch, got {other:?}"),
    }
}

#[test]
fn a_file_named_explicitly_must_be_bpf() {
    let s = scratch();
    fs::write(s.dir.join("notes.txt"), "hello").unwrap();
    // A host object: ELF, but not for BPF.
    fs::write(s.dir.join("host.c"), "int x;\n").unwrap();
    let cc = std::process::Command::new("clang")
        .args(["-c", "host.c", "-o", "host.o"])
        .current_dir(&s.dir)
        .status()
        .unwrap();
    assert!(cc.success());
    let err = |path: &str| match s.verify(&["a", path], &[]) {
        Err(SuiteError::Prepare(PrepareError::Input(e))) => e,
        other => panic!("expected an input error for {path}, got {other:?}"),
    };
    let e = err("notes.txt");
    assert!(
        matches!(&e, InputError::NotBpf { path, why: NotBpf::NotElf } if path == Path::new("notes.txt")),
        "{e:?}"
    );
    assert!(
        e.to_string().starts_with("notes.txt: not an ELF file"),
        "{e}"
    );
    let e = err("host.o");
    assert!(
        matches!(
            &e,
            InputError::NotBpf {
                why: NotBpf::OtherMachine(62),
                ..
            }
        ),
        "{e:?}"
    );
    assert!(
        e.to_string()
            .starts_with("host.o: an ELF file for e_machine 62"),
        "{e}"
    );
    assert!(matches!(
        err("host.c"),
        InputError::NotBpf {
            why: NotBpf::PlainC,
            ..
        }
    ));
    assert!(matches!(err("missing.o"), InputError::Missing(p) if p == Path::new("missing.o")));
    fs::create_dir_all(s.dir.join("empty")).unwrap();
    assert!(matches!(err("empty"), InputError::EmptyDirectory(_)));
    // The same files in a directory walk are skipped.
    assert_eq!(s.verify(&["."], &[]).unwrap().rows.len(), 4);
}

#[test]
fn a_rejection_fails_unless_the_source_declares_it() {
    let s = scratch();
    let work = s.dir.join("../work");
    compile(
        &s.project,
        &work,
        &unchecked(""),
        &s.dir.join("bad/unchecked.o"),
    );
    let report = s.verify(&["bad/unchecked.o"], &[]).unwrap();
    assert!(!report.ok());
    assert_eq!(report.rows[0].verdict, VerdictKind::Rejected);
    let failures = failures(&report.findings);
    assert!(
        failures[0].starts_with("bad/unchecked.o/unchecked on host: the verifier rejected it"),
        "{failures:?}"
    );
    // Declared in the source (the project's verifier.h is on the include
    // path), compiled by the harness, or compiled elsewhere: as expected.
    let declared = unchecked("__rejected(\"all\", \"invalid access to packet\")");
    fs::write(s.dir.join("bad/declared.bpf.c"), &declared).unwrap();
    compile(&s.project, &work, &declared, &s.dir.join("bad/declared.o"));
    let report = s
        .verify(&["bad/declared.bpf.c", "bad/declared.o"], &[])
        .unwrap();
    assert!(report.ok(), "{}", harness_report::verify_report(&report));
    assert_eq!(report.rows.len(), 2);
    for row in &report.rows {
        assert_eq!(
            (row.verdict, row.expectation),
            (VerdictKind::Rejected, Some(ExpectationStatus::AsExpected)),
            "{row:?}"
        );
    }
}

#[test]
fn test_prog_runs_only_the_selected_programs_cases_and_counts_the_rest() {
    let (_tmp, project) = project_copy();
    let all = common::prepare(&project);
    let tc_lb = all.cases.iter().filter(|c| c.object == "tc_lb").count();
    assert!(tc_lb > 0 && tc_lb < all.cases.len());
    let report = harness_suite::test_with(
        &project,
        &options("host"),
        &TestOptions {
            programs: vec!["tc_lb/*".parse().unwrap()],
            filters: Vec::new(),
            unreferenced: harness_suite::Unreferenced::List,
            shard: None,
        },
        &harness_events::Silent,
        &no_interrupt(),
    )
    .unwrap();
    let k = &report.kernels[0];
    assert_eq!(k.programs, 1, "only tc_lb's program is judged");
    assert_eq!(k.passed + k.failed + k.skipped + k.not_run, tc_lb);
    assert_eq!(report.filtered, all.cases.len() - tc_lb);
    assert!(
        report
            .findings
            .iter()
            .all(|f| f.to_string().contains("tc_lb")),
        "{:?}",
        failures(&report.findings)
    );
    // The snapshots of the cases not run are not "produced by nothing".
    assert!(
        !report
            .snapshot_notes
            .iter()
            .any(|n| matches!(n.change, SnapshotChange::Unreferenced { .. })),
        "{:?}",
        report.snapshot_notes
    );
    let text = harness_report::plain(&harness_report::test_report(&report));
    assert!(
        text.contains(&format!("; {} filtered out by --prog", report.filtered)),
        "{text}"
    );
}

#[test]
fn an_object_libbpf_cannot_open_fails_alone_and_the_others_run() {
    let s = scratch();
    // A BPF ELF header with the rest cut off: it passes the EM_BPF check,
    // libbpf cannot open it.
    let whole = fs::read(s.dir.join("a/prog.o")).unwrap();
    fs::write(s.dir.join("cut.o"), &whole[..whole.len() / 3]).unwrap();
    let report = s.verify(&["cut.o", "a/prog.o"], &[]).unwrap();
    assert!(!report.ok());
    let failures = failures(&report.findings);
    assert!(
        failures.iter().any(|f| f.starts_with(
            "object `cut.o` on host: could not be loaded: libbpf cannot open it as a BPF object"
        )),
        "{failures:?}"
    );
    assert_eq!(
        objects_and_programs(&report),
        [
            ("a/prog.o".to_owned(), "xdp_drop".to_owned()),
            ("a/prog.o".to_owned(), "xdp_pass".to_owned())
        ]
    );
    assert!(
        report
            .rows
            .iter()
            .all(|r| r.verdict == VerdictKind::Accepted)
    );
}

#[test]
fn a_source_given_by_path_sees_the_include_directory_beside_it() {
    let s = scratch();
    let dir = s.dir.join("c");
    fs::create_dir_all(dir.join("include")).unwrap();
    fs::write(dir.join("include/local.h"), "#define VERDICT XDP_PASS\n").unwrap();
    fs::write(
        dir.join("own_header.bpf.c"),
        "#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\n#include \"local.h\"\n\
         SEC(\"xdp\") int own_header(struct xdp_md *ctx) { return VERDICT; }\n\
         char LICENSE[] SEC(\"license\") = \"GPL\";\n",
    )
    .unwrap();
    let report = s.verify(&["c"], &[]).unwrap();
    assert_eq!(
        objects_and_programs(&report),
        [("c/own_header.bpf.c".to_owned(), "own_header".to_owned())]
    );
    assert!(report.ok(), "{:?}", report.findings);
}
