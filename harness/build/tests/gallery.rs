//! The compatibility gallery (`sample-programs/gallery/`) compiles with the
//! harness's own flags, and each object documents itself: a header naming
//! the feature and the expected verdicts, and a row in the gallery's
//! README. (The project build compiles it too, with the same include
//! directories: its own `include/` and the top-level one.)

use std::{fs, path::Path};

use harness_build::BpfBuild;

fn gallery() -> &'static Path {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../sample-programs/gallery"
    ))
}

#[test]
fn every_gallery_object_compiles() {
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("gallery-objects");
    let mut build = BpfBuild::new(gallery().to_owned(), out);
    build.include_dirs.push(gallery().join("../include"));
    let built = build.build_all().unwrap_or_else(|e| panic!("{e}"));
    assert!(built.len() >= 20, "{} objects", built.len());
    for b in &built {
        let elf = fs::read(&b.object).unwrap();
        assert!(elf.starts_with(b"\x7fELF"), "{}", b.object.display());
    }
}

#[test]
fn every_gallery_object_says_what_it_shows_and_expects() {
    let readme = fs::read_to_string(gallery().join("README.md")).unwrap();
    let mut problems = Vec::new();
    for e in fs::read_dir(gallery()).unwrap() {
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
        for word in ["Feature:", "Expected:"] {
            if !header.contains(word) {
                problems.push(format!(
                    "{}: the header comment has no `{word}`",
                    path.display()
                ));
            }
        }
        if !readme.contains(&format!("| `{stem}` |")) {
            problems.push(format!(
                "{}: no row for `{stem}` in the gallery's README.md",
                path.display()
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
