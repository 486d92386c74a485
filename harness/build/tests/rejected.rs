//! The rejected gallery (`sample-programs/rejected/`) compiles with the
//! harness's own flags (the verifier, not the compiler, must refuse it),
//! and each object documents itself: one program, a header naming its
//! mistake, a `__rejected` declaration, and a row in the gallery's README.

use std::{fs, path::Path};

use harness_build::BpfBuild;

fn rejected() -> &'static Path {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../sample-programs/rejected"
    ))
}

#[test]
fn every_rejected_object_compiles() {
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("rejected-objects");
    let mut build = BpfBuild::new(rejected().to_owned(), out);
    build.include_dirs.push(rejected().join("../include"));
    let built = build.build_all().unwrap_or_else(|e| panic!("{e}"));
    assert!(built.len() >= 20, "{} objects", built.len());
    for b in &built {
        let elf = fs::read(&b.object).unwrap();
        assert!(elf.starts_with(b"\x7fELF"), "{}", b.object.display());
    }
}

#[test]
fn every_rejected_object_has_one_program_one_mistake_and_its_verdict() {
    let readme = fs::read_to_string(rejected().join("README.md")).unwrap();
    let mut problems = Vec::new();
    for e in fs::read_dir(rejected()).unwrap() {
        let path = e.unwrap().path();
        let Some(stem) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".bpf.c"))
        else {
            continue;
        };
        let text = fs::read_to_string(&path).unwrap();
        let header = text.split("*/").next().unwrap_or_default();
        if !header.contains("Mistake:") {
            problems.push(format!("{}: the header has no `Mistake:`", path.display()));
        }
        // Program sections: every SEC("...") but maps and the license.
        let programs = text
            .match_indices("SEC(\"")
            .filter(|(at, _)| {
                let name = &text[at + 5..];
                !name.starts_with(".maps") && !name.starts_with("license")
            })
            .count();
        if programs != 1 {
            problems.push(format!("{}: {programs} programs, not 1", path.display()));
        }
        if !text.contains("__rejected(\"") {
            problems.push(format!("{}: no __rejected declaration", path.display()));
        }
        if !readme.contains(&format!("| `{stem}` |")) {
            problems.push(format!(
                "{}: no row for `{stem}` in the README.md",
                path.display()
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
