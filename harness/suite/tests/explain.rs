//! `explain --log FILE --object OBJ`: a real 5.10 log (whose notes carry no
//! file or line) placed in the C source by the object's line info.

use std::path::{Path, PathBuf};

use harness_build::BpfBuild;
use harness_suite::{ExplainError, explain_log};

fn testdata(dir: &str, file: &str) -> PathBuf {
    [
        env!("CARGO_MANIFEST_DIR"),
        "../diagnose/testdata",
        dir,
        file,
    ]
    .iter()
    .collect()
}

/// `testdata/<dir>/prog.bpf.c` built as the logs' object was.
fn build(tmp: &Path, dir: &str) -> PathBuf {
    let src = tmp.join("src");
    std::fs::create_dir_all(&src).unwrap();
    let source = src.join(format!("diag_{dir}.bpf.c"));
    std::fs::copy(testdata(dir, "prog.bpf.c"), &source).unwrap();
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut build = BpfBuild::new(src.clone(), tmp.join("out"));
    build
        .include_dirs
        .push(workspace.join("sample-programs/include"));
    build.build_file(&source).unwrap().object
}

/// A copy of `object` whose `.BTF.ext` section is renamed away, as a
/// toolchain that keeps BTF but drops line info leaves it.
fn without_line_info(object: &Path, to: &Path) -> PathBuf {
    let mut bytes = std::fs::read(object).unwrap();
    let at = bytes
        .windows(9)
        .position(|w| w == b".BTF.ext\0")
        .expect("a .BTF.ext section name");
    bytes[at..at + 8].copy_from_slice(b".BTF.xxx");
    std::fs::write(to, bytes).unwrap();
    to.to_owned()
}

#[test]
fn a_saved_5_10_log_gets_file_line_and_column_from_the_object() {
    let tmp = tempfile::tempdir().unwrap();
    let object = build(tmp.path(), "null_deref");
    let log = testdata("null_deref", "5.10.log");
    let explained = explain_log(&log, Some(&object), None).unwrap();
    assert!(explained.notes.is_empty(), "{:?}", explained.notes);
    let d = explained.diagnosis.expect("a diagnosis");
    assert_eq!(d.cause.id(), "null-deref");
    let source = d.source.expect("a source line");
    assert_eq!(
        (source.file.as_deref(), source.line, source.column),
        (Some("diag_null_deref.bpf.c"), Some(20), Some(9)),
        "{source:?}"
    );
    // Without the object, the 5.10 note has no line.
    let bare = explain_log(&log, None, None).unwrap();
    assert_eq!(bare.diagnosis.unwrap().source.unwrap().line, None);
}

#[test]
fn what_the_explanation_lacks_is_said_and_bad_input_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let log = testdata("null_deref", "5.10.log");
    let object = build(tmp.path(), "null_deref");
    let stripped = without_line_info(&object, &tmp.path().join("stripped.o"));
    let explained = explain_log(&log, Some(&stripped), None).unwrap();
    assert!(
        explained
            .notes
            .iter()
            .any(|n| n.contains("has no line info")),
        "{:?}",
        explained.notes
    );
    assert_eq!(explained.diagnosis.unwrap().source.unwrap().line, None);

    // An accepted program's log: no diagnosis, and no source notes to say so.
    let accepted = explain_log(&testdata("uninit_stack_key", "6.18.log"), None, None).unwrap();
    assert!(accepted.diagnosis.is_none());
    assert!(accepted.notes.iter().any(|n| n.contains("no source notes")));

    let missing = tmp.path().join("nope.log");
    let err = explain_log(&missing, None, None).unwrap_err();
    assert!(matches!(err, ExplainError::Log { .. }), "{err}");
    assert!(err.to_string().contains("nope.log"), "{err}");
    let source = testdata("null_deref", "prog.bpf.c");
    let err = explain_log(&log, Some(&source), None).unwrap_err();
    assert!(
        err.to_string()
            .contains("prog.bpf.c: not an ELF object; --object takes the compiled"),
        "{err}"
    );
    let truncated = tmp.path().join("cut.o");
    std::fs::write(&truncated, &std::fs::read(&object).unwrap()[..200]).unwrap();
    let err = explain_log(&log, Some(&truncated), None).unwrap_err();
    assert!(matches!(err, ExplainError::Object { .. }), "{err}");
    assert!(
        err.to_string()
            .starts_with(&truncated.display().to_string()),
        "{err}"
    );
}

/// `sample-programs/rejected/<name>.bpf.c` built as the project builds it.
fn build_rejected(tmp: &Path, name: &str) -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = workspace.join("sample-programs/rejected");
    let mut build = BpfBuild::new(dir.clone(), tmp.join(name));
    build
        .include_dirs
        .push(workspace.join("sample-programs/include"));
    build
        .build_file(&dir.join(format!("{name}.bpf.c")))
        .unwrap()
        .object
}

/// A leak is found at the exit, whose C line's note a level-1 log may have
/// printed on a path it then discarded: the notes point at the branch
/// before it. The object's line info numbers the instructions, so every
/// kernel's log gets the line 7.3 itself points at.
#[test]
fn the_object_places_the_failing_instruction_where_the_notes_cannot() {
    let tmp = tempfile::tempdir().unwrap();
    for name in ["socket_leak", "lock_at_exit", "ringbuf_leak"] {
        let object = if name == "ringbuf_leak" {
            build(tmp.path(), name)
        } else {
            build_rejected(tmp.path(), name)
        };
        let at_73 = explain_log(&testdata(name, "7.3.log"), None, None)
            .unwrap()
            .diagnosis
            .and_then(|d| d.kernel_explanation)
            .and_then(|e| e.at)
            .and_then(|a| a.location)
            .expect("7.3 says where")
            .line;
        for kernel in ["5.10", "6.1", "6.12", "7.2", "6.18"] {
            let log = testdata(name, &format!("{kernel}.log"));
            let notes_only = explain_log(&log, None, None).unwrap().diagnosis.unwrap();
            let placed = explain_log(&log, Some(&object), None).unwrap();
            assert!(placed.notes.is_empty(), "{name}: {:?}", placed.notes);
            let d = placed.diagnosis.unwrap();
            let source = d.source.expect("a line");
            assert_eq!(source.line, Some(at_73), "{name} on {kernel}");
            assert_ne!(
                notes_only.source.and_then(|s| s.line),
                Some(at_73),
                "{name} on {kernel}: the notes alone already had it"
            );
        }
    }
    // An object of several programs needs the program named.
    let object = build_rejected(tmp.path(), "socket_leak");
    let err = explain_log(
        &testdata("socket_leak", "5.10.log"),
        Some(&object),
        Some("nope"),
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("no program `nope`; it has: "),
        "{err}"
    );
}
