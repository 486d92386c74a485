//! The sample objects, compiled with clang, and case-file text compiled
//! against them. No kernel involved.

#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::{
    fs,
    path::{Path, PathBuf},
    sync::OnceLock,
};

use harness_bpf::ObjectFile;
use harness_cases::{CompiledCase, ObjectInfo, compile, parse_str};

/// The sample objects, built into the target directory (again only when a
/// source changes).
pub fn objects_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("sample-objects");
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sample-programs");
        harness_build::BpfBuild::new(src, dir.clone())
            .build_all()
            .unwrap();
        dir
    })
}

pub fn object(name: &str) -> ObjectInfo {
    let data = fs::read(objects_dir().join(format!("{name}.bpf.o"))).unwrap();
    ObjectInfo::new(name, ObjectFile::parse(data).unwrap())
}

/// Compiles `toml_text` as a case file in `dir` against `object`.
pub fn compile_with(
    dir: &Path,
    object: &ObjectInfo,
    toml_text: &str,
) -> Result<Vec<CompiledCase>, String> {
    let path = dir.join("cases.toml");
    let parsed = parse_str(&path, toml_text.to_owned()).map_err(|e| e.to_string())?;
    compile(&parsed, object).map_err(|errs| {
        errs.iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    })
}

pub fn compile_at(
    dir: &Path,
    object_name: &str,
    toml_text: &str,
) -> Result<Vec<CompiledCase>, String> {
    compile_with(dir, &object(object_name), toml_text)
}

pub fn compile_one(object_name: &str, toml_text: &str) -> Result<Vec<CompiledCase>, String> {
    compile_at(Path::new("testcases"), object_name, toml_text)
}

/// The objects of `tests/fixtures/`, built like the samples.
pub fn fixture(name: &str) -> ObjectInfo {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fixture-objects");
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        harness_build::BpfBuild::new(src, dir.clone())
            .build_all()
            .unwrap();
        dir
    });
    let data = fs::read(dir.join(format!("{name}.bpf.o"))).unwrap();
    ObjectInfo::new(name, ObjectFile::parse(data).unwrap())
}
