//! clang builds in a scratch directory: incremental, and clear about what
//! is missing.

use std::{fs, thread, time::Duration};

use harness_build::{BpfBuild, BuildError};

const PROGRAM: &str = "#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\n#include \"local.h\"\n\
SEC(\"xdp\") int p(struct xdp_md *ctx) { return VERDICT; }\nchar LICENSE[] SEC(\"license\") = \"GPL\";\n";

fn setup() -> (tempfile::TempDir, BpfBuild) {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("programs");
    fs::create_dir_all(src.join("include")).unwrap();
    fs::write(src.join("p.bpf.c"), PROGRAM).unwrap();
    fs::write(src.join("include/local.h"), "#define VERDICT XDP_PASS\n").unwrap();
    let build = BpfBuild::new(src, dir.path().join("out"));
    (dir, build)
}

#[test]
fn rebuilds_only_when_the_source_or_a_header_changed() {
    let (dir, build) = setup();
    let first = build.build_all().unwrap();
    assert!(first[0].rebuilt);
    assert!(fs::read(&first[0].object).unwrap().starts_with(b"\x7fELF"));
    assert!(!build.build_all().unwrap()[0].rebuilt, "nothing changed");
    // mtime granularity: make sure the header is strictly newer.
    thread::sleep(Duration::from_millis(20));
    fs::write(
        dir.path().join("programs/include/local.h"),
        "#define VERDICT XDP_DROP\n",
    )
    .unwrap();
    assert!(
        build.build_all().unwrap()[0].rebuilt,
        "an included header changed"
    );
    assert!(!build.build_all().unwrap()[0].rebuilt);
}

#[test]
fn a_missing_header_names_the_package() {
    let (dir, build) = setup();
    fs::write(
        dir.path().join("programs/p.bpf.c"),
        "#include <bpf/no_such_header.h>\n",
    )
    .unwrap();
    match build.build_all().unwrap_err() {
        e @ BuildError::HeaderMissing { .. } => {
            let msg = e.to_string();
            // libbpf-dev is installed (setup installs it): the include
            // path is what lacks the header, not a package.
            assert!(
                msg.contains("bpf/no_such_header.h")
                    && msg.contains("include-dirs")
                    && !msg.contains("apt-get install"),
                "{msg}"
            );
        }
        other => panic!("{other}"),
    }
    // A failed build leaves no object that could pass for current.
    assert!(!dir.path().join("out/p.bpf.o").exists());
}

#[test]
fn a_missing_clang_says_what_to_install() {
    let (_dir, mut build) = setup();
    build.clang = "/nonexistent/clang".into();
    let msg = build.build_all().unwrap_err().to_string();
    assert!(
        msg.contains("/nonexistent/clang not found") && msg.contains("apt-get install clang"),
        "{msg}"
    );
}

#[test]
fn compile_errors_show_clangs_diagnostics() {
    let (dir, build) = setup();
    fs::write(dir.path().join("programs/p.bpf.c"), "int p( {\n").unwrap();
    let msg = build.build_all().unwrap_err().to_string();
    assert!(msg.contains("p.bpf.c") && msg.contains("error:"), "{msg}");
}

#[test]
fn a_single_source_anywhere_builds_with_the_same_flags() {
    let (dir, build) = setup();
    // Outside the source directory, yet it finds `local.h` in the
    // directory's `include/` as the programs there do.
    let elsewhere = dir.path().join("elsewhere");
    fs::create_dir_all(&elsewhere).unwrap();
    fs::write(elsewhere.join("q.bpf.c"), PROGRAM).unwrap();
    let mut single = build.clone();
    single.out_dir = dir.path().join("single");
    let built = single.build_file(&elsewhere.join("q.bpf.c")).unwrap();
    assert_eq!(
        (built.name.as_str(), built.rebuilt),
        ("q", true),
        "{built:?}"
    );
    assert_eq!(built.object, dir.path().join("single/q.bpf.o"));
    assert!(fs::read(&built.object).unwrap().starts_with(b"\x7fELF"));
    assert!(
        !single
            .build_file(&elsewhere.join("q.bpf.c"))
            .unwrap()
            .rebuilt
    );
    // A plain `.c` builds too (projects name their sources as they
    // like); anything else is refused by name.
    fs::write(elsewhere.join("plain.c"), "int x;\n").unwrap();
    let plain = single.build_file(&elsewhere.join("plain.c")).unwrap();
    assert_eq!(plain.name, "plain");
    fs::write(elsewhere.join("notes.txt"), "x\n").unwrap();
    let err = single.build_file(&elsewhere.join("notes.txt")).unwrap_err();
    assert!(
        matches!(err, BuildError::NotASource(_)) && err.to_string().contains("notes.txt"),
        "{err}"
    );
}
