//! Per-target outputs: `records.jsonl`, `console.log`, and the full
//! verifier log of every program under `verifier/<object>/<program>.log`.
//! A target's directory holds one run's outputs only: the old one is moved
//! aside when the target starts, and the new one is written aside and moved
//! into place whole, so neither a failed run nor a concurrent one leaves a
//! mix of old and new files looking current.
//!
//! The old directory is where the new one is written: each file is
//! rewritten in place and only what the new run did not write is removed.
//! Deleting a thousand logs and creating a thousand new ones made ext4 scan
//! every recently deleted inode for each new file (half a second for 1000
//! programs, once the deletion was a second old).

use std::{
    collections::HashSet,
    fs, io,
    path::{Path, PathBuf},
};

use harness_protocol::Record;

use crate::{KernelRun, MatrixError, io_err};

/// Moves `<outputs>/<label>/` aside before the target runs (to be
/// rewritten by [`write`]); another run may be doing the same, so a
/// directory that vanished meanwhile is fine.
pub(crate) fn clear(outputs: &Path, label: &str) -> Result<(), MatrixError> {
    let dir = outputs.join(label);
    let aside = recycled(outputs, label);
    // Left by an earlier target of this process with the same label.
    let _ = fs::remove_dir_all(&aside);
    match fs::rename(&dir, &aside) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        // Not movable (another file system, permissions): remove it.
        Err(_) => match fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                Err(io_err(format!("removing {}", dir.display()))(e))
            }
            _ => Ok(()),
        },
    }
}

/// Where [`clear`] moves a target's old outputs: named like staging, so a
/// killed run's is swept as a leftover.
fn recycled(outputs: &Path, label: &str) -> PathBuf {
    outputs.join(format!(
        "{}recycled-{}",
        harness_vm::leftovers::own_prefix(crate::STAGING_KIND),
        harness_protocol::file_name_of(label)
    ))
}

/// Writes the run's outputs to `<outputs>/<label>/`.
pub(crate) fn write(
    outputs: &Path,
    label: &str,
    run: &KernelRun,
    console: Option<&str>,
) -> Result<PathBuf, MatrixError> {
    fs::create_dir_all(outputs).map_err(io_err(format!("creating {}", outputs.display())))?;
    let recycled = recycled(outputs, label);
    let staging = if recycled.is_dir() {
        recycled
    } else {
        tempfile::Builder::new()
            .prefix(&harness_vm::leftovers::own_prefix(crate::STAGING_KIND))
            .tempdir_in(outputs)
            .map_err(io_err(format!(
                "creating a directory in {}",
                outputs.display()
            )))?
            .keep()
    };
    let written = write_into(&staging, run, console).and_then(|written| {
        prune(&staging, &written).map_err(io_err(format!(
            "removing old outputs in {}",
            staging.display()
        )))
    });
    if let Err(e) = written {
        let _ = fs::remove_dir_all(&staging);
        return Err(e);
    }
    let dir = outputs.join(label);
    replace_dir(&staging, &dir)?;
    Ok(dir)
}

/// Writes the run's files into `dir`, over any there; returns their paths.
fn write_into(
    dir: &Path,
    run: &KernelRun,
    console: Option<&str>,
) -> Result<HashSet<PathBuf>, MatrixError> {
    let mut written = HashSet::new();
    let text: String = run
        .records
        .iter()
        .map(harness_protocol::encode_line)
        .collect();
    written.insert(write_file(dir.join("records.jsonl"), text.as_bytes())?);
    // Full verifier logs, never truncated, one file per program.
    for r in &run.records {
        if let Record::Program(p) = r {
            let path = verifier_log(dir, &p.object, &p.program);
            if let Some(d) = path.parent() {
                fs::create_dir_all(d).map_err(io_err(format!("creating {}", d.display())))?;
            }
            written.insert(write_file(path, p.log.as_bytes())?);
        }
    }
    if let Some(console) = console {
        written.insert(write_file(dir.join("console.log"), console.as_bytes())?);
    }
    Ok(written)
}

/// Removes every file under `dir` not in `keep`, and the directories that
/// leaves empty.
fn prune(dir: &Path, keep: &HashSet<PathBuf>) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() && !path.is_symlink() {
            prune(&path, keep)?;
            if fs::read_dir(&path)?.next().is_none() {
                fs::remove_dir(&path)?;
            }
        } else if !keep.contains(&path) {
            fs::remove_file(&path)?;
        }
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

/// Writes `data` to `path` (over the file there, keeping its inode).
fn write_file(path: PathBuf, data: &[u8]) -> Result<PathBuf, MatrixError> {
    fs::write(&path, data).map_err(io_err(format!("writing {}", path.display())))?;
    Ok(path)
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
    fn a_new_run_rewrites_the_old_runs_files_instead_of_making_new_ones() {
        use std::os::unix::fs::MetadataExt as _;
        let tmp = tempfile::tempdir().unwrap();
        let dir = write(tmp.path(), "6.1", &run(&["kept", "gone"]), Some("c")).unwrap();
        let inode = |p: &str| fs::metadata(dir.join(p)).unwrap().ino();
        let before = inode("verifier/fw/kept.log");
        clear(tmp.path(), "6.1").unwrap();
        assert!(!dir.exists());
        let mut newer = run(&["kept"]);
        if let Record::Program(p) = &mut newer.records[0] {
            p.log = "the new log\n".into();
        }
        write(tmp.path(), "6.1", &newer, None).unwrap();
        assert_eq!(inode("verifier/fw/kept.log"), before, "the same file");
        assert_eq!(
            fs::read_to_string(dir.join("verifier/fw/kept.log")).unwrap(),
            "the new log\n"
        );
        assert!(!dir.join("verifier/fw/gone.log").exists());
        assert!(!dir.join("console.log").exists());
        // An object none of whose programs ran again leaves no directory.
        let mut other = run(&["x"]);
        if let Record::Program(p) = &mut other.records[0] {
            p.object = "other".into();
        }
        clear(tmp.path(), "6.1").unwrap();
        write(tmp.path(), "6.1", &other, None).unwrap();
        assert!(!dir.join("verifier/fw").exists());
        assert!(dir.join("verifier/other/x.log").exists());
        let names: Vec<_> = fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, ["6.1"]);
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
