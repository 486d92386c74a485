//! Per-target outputs: `records.jsonl`, `console.log`, and the full
//! verifier log of every program under `verifier/<object>/<program>.log`.
//! A target's directory holds one run's outputs only: the old one is removed
//! when the target starts, and the new one is written aside and moved into
//! place whole, so neither a failed run nor a concurrent one leaves a mix
//! of old and new files looking current.

use std::{
    fs, io,
    path::{Path, PathBuf},
};

use harness_protocol::Record;

use crate::{KernelRun, MatrixError, io_err};

/// Removes `<outputs>/<label>/` before the target runs; another run may be
/// doing the same, so a directory that vanished meanwhile is fine.
pub(crate) fn clear(outputs: &Path, label: &str) -> Result<(), MatrixError> {
    let dir = outputs.join(label);
    match fs::remove_dir_all(&dir) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            Err(io_err(format!("removing {}", dir.display()))(e))
        }
        _ => Ok(()),
    }
}

/// Writes the run's outputs to `<outputs>/<label>/`.
pub(crate) fn write(
    outputs: &Path,
    label: &str,
    run: &KernelRun,
    console: Option<&str>,
) -> Result<PathBuf, MatrixError> {
    fs::create_dir_all(outputs).map_err(io_err(format!("creating {}", outputs.display())))?;
    let staging = tempfile::Builder::new()
        .prefix(&harness_vm::leftovers::own_prefix(crate::STAGING_KIND))
        .tempdir_in(outputs)
        .map_err(io_err(format!(
            "creating a directory in {}",
            outputs.display()
        )))?;
    write_into(staging.path(), run, console)?;
    let dir = outputs.join(label);
    replace_dir(&staging.keep(), &dir)?;
    Ok(dir)
}

fn write_into(dir: &Path, run: &KernelRun, console: Option<&str>) -> Result<(), MatrixError> {
    let text: String = run
        .records
        .iter()
        .map(harness_protocol::encode_line)
        .collect();
    write_file(&dir.join("records.jsonl"), text.as_bytes())?;
    // Full verifier logs, never truncated, one file per program.
    for r in &run.records {
        if let Record::Program(p) = r {
            let path = verifier_log(dir, &p.object, &p.program);
            if let Some(d) = path.parent() {
                fs::create_dir_all(d).map_err(io_err(format!("creating {}", d.display())))?;
            }
            write_file(&path, p.log.as_bytes())?;
        }
    }
    if let Some(console) = console {
        write_file(&dir.join("console.log"), console.as_bytes())?;
    }
    Ok(())
}

/// Where the full verifier log of `object/program` lands in a target's
/// output directory: `verifier/<object>/<program>.log`, each name one
/// directory entry ([`harness_protocol::file_name_of`]), so objects given
/// by path (`a/prog.o`, `b/prog.o`) keep apart.
pub fn verifier_log(target_dir: &Path, object: &str, program: &str) -> PathBuf {
    target_dir
        .join("verifier")
        .join(harness_protocol::file_name_of(object))
        .join(format!("{}.log", harness_protocol::file_name_of(program)))
}

fn write_file(path: &Path, data: &[u8]) -> Result<(), MatrixError> {
    fs::write(path, data).map_err(io_err(format!("writing {}", path.display())))
}

/// Moves `from` to `to`, replacing whatever directory is there (a rename
/// cannot replace a non-empty directory: move that one aside first).
fn replace_dir(from: &Path, to: &Path) -> Result<(), MatrixError> {
    for _ in 0..8 {
        match fs::rename(from, to) {
            Ok(()) => return Ok(()),
            Err(_) if to.is_dir() => {
                let aside = from.with_extension("old");
                if fs::rename(to, &aside).is_ok() {
                    let _ = fs::remove_dir_all(&aside);
                }
            }
            Err(e) => {
                let _ = fs::remove_dir_all(from);
                return Err(io_err(format!("moving outputs to {}", to.display()))(e));
            }
        }
    }
    let _ = fs::remove_dir_all(from);
    Err(MatrixError::Io {
        what: format!("moving outputs to {}", to.display()),
        error: io::Error::other("another run kept replacing it"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use harness_kernels::{Boot, Target};
    use harness_protocol::{ProgramReport, Verdict};

    fn run(programs: &[&str]) -> KernelRun {
        KernelRun {
            target: Target {
                label: "6.1".into(),
                version: None,
                release: String::new(),
                boot: Boot::Host,
            },
            accel: None,
            records: programs
                .iter()
                .map(|p| {
                    Record::Program(ProgramReport {
                        object: "fw".into(),
                        program: (*p).into(),
                        section: "xdp".into(),
                        prog_type: "xdp".into(),
                        verdict: Verdict::Accepted,
                        log: format!("log of {p}\n"),
                        log_level: 1,
                        log_truncated: false,
                        info: None,
                        load_ns: 0,
                        insn_cnt: 0,
                    })
                })
                .collect(),
            failure: None,
            boot_time: None,
            total_time: std::time::Duration::ZERO,
        }
    }

    #[test]
    fn a_target_directory_holds_one_runs_outputs() {
        let tmp = tempfile::tempdir().unwrap();
        write(
            tmp.path(),
            "6.1",
            &run(&["old", "kept"]),
            Some("old console"),
        )
        .unwrap();
        fs::create_dir_all(tmp.path().join("6.12")).unwrap();

        clear(tmp.path(), "6.1").unwrap();
        assert!(
            !tmp.path().join("6.1").exists(),
            "cleared when the target starts"
        );
        // The new run has no console and one program fewer: nothing of the
        // old run may remain.
        let dir = write(tmp.path(), "6.1", &run(&["kept"]), None).unwrap();
        let logs: Vec<_> = fs::read_dir(dir.join("verifier/fw"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(logs, ["kept.log"]);
        assert!(!dir.join("console.log").exists());
        let records = fs::read_to_string(dir.join("records.jsonl")).unwrap();
        assert_eq!(records.lines().count(), 1);

        // Writing over an existing directory replaces it whole.
        write(tmp.path(), "6.1", &run(&["newer"]), Some("c")).unwrap();
        assert!(dir.join("verifier/fw/newer.log").exists());
        assert!(!dir.join("verifier/fw/kept.log").exists());
        // Other targets' outputs are left alone, and no staging is left over.
        let mut names: Vec<_> = fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["6.1", "6.12"]);
    }

    #[test]
    fn objects_given_by_path_keep_their_logs_apart() {
        let tmp = tempfile::tempdir().unwrap();
        let mut two = run(&["xdp_pass"]);
        let mut other = two.records[0].clone();
        if let Record::Program(p) = &mut other {
            p.object = "b/prog.o".into();
            p.log = "log of b\n".into();
        }
        if let Record::Program(p) = &mut two.records[0] {
            p.object = "a/prog.o".into();
            p.log = "log of a\n".into();
        }
        two.records.push(other);
        let dir = write(tmp.path(), "host", &two, None).unwrap();
        let a = verifier_log(&dir, "a/prog.o", "xdp_pass");
        let b = verifier_log(&dir, "b/prog.o", "xdp_pass");
        assert_eq!(a, dir.join("verifier/a%2Fprog.o/xdp_pass.log"));
        assert_eq!(fs::read_to_string(a).unwrap(), "log of a\n");
        assert_eq!(fs::read_to_string(b).unwrap(), "log of b\n");
        // A name outside the working directory stays inside the outputs.
        assert!(verifier_log(&dir, "/tmp/../prog.o", "p").starts_with(dir.join("verifier")));
    }
}
