//! What a CI job keeps of a run: the results file `merge` reads, JUnit, an
//! artifact directory per failing kernel, and under GitHub Actions the
//! annotations and the job summary. Files are written whole (a temporary
//! file renamed into place), and every path is tried before the kernels
//! run, so a bad one costs nothing and leaves nothing half-written.

use std::{
    io::Write as _,
    path::{Path, PathBuf},
};

use harness_judge::{MergeError, OutcomeStatus, Outcomes};
use harness_project::Project;

/// Where a run's CI outputs go; each `None` is not written.
#[derive(Clone, Debug, Default)]
pub struct CiOutputs {
    /// JUnit XML.
    pub junit: Option<PathBuf>,
    /// The results as JSON, for `merge`.
    pub results: Option<PathBuf>,
    /// A directory per failing kernel under this one.
    pub artifacts: Option<PathBuf>,
    /// GitHub Actions: annotations on stdout, the job summary appended to
    /// this file (`$GITHUB_STEP_SUMMARY`).
    pub github: Option<GitHub>,
}

/// GitHub Actions' side of a run, from its environment.
#[derive(Clone, Debug)]
pub struct GitHub {
    pub step_summary: Option<PathBuf>,
}

impl GitHub {
    /// `Some` when running as a GitHub Actions step.
    pub fn from_env() -> Option<Self> {
        (std::env::var("GITHUB_ACTIONS").as_deref() == Ok("true")).then(|| Self {
            step_summary: std::env::var_os("GITHUB_STEP_SUMMARY")
                .filter(|s| !s.is_empty())
                .map(PathBuf::from),
        })
    }
}

/// A CI output that cannot be written.
#[derive(Debug, thiserror::Error)]
pub enum CiError {
    #[error("cannot write {what} to {}: {error}", path.display())]
    Write {
        what: &'static str,
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("reading results {}: {error}", path.display())]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error(
        "reading results {}: not a results file that `test --results` or `verify --results` writes: {error}",
        path.display()
    )]
    NotResults {
        path: PathBuf,
        error: serde_json::Error,
    },
    #[error(transparent)]
    Merge(#[from] MergeError),
    #[error("reading the lock file: {0}")]
    Lock(#[from] harness_kernels::KernelError),
}

impl CiOutputs {
    /// Tries every path before anything runs: the directory is created and
    /// a file can be made in it.
    pub fn check(&self) -> Result<(), CiError> {
        for (what, path) in [("JUnit", &self.junit), ("results", &self.results)] {
            if let Some(path) = path {
                probe(what, path)?;
            }
        }
        if let Some(dir) = &self.artifacts {
            probe("artifacts", &dir.join(".probe"))?;
        }
        Ok(())
    }

    /// Writes what was asked for (the failing kernels' artifacts: see
    /// [`write_artifacts`]) and returns the files and directories written.
    pub fn publish(&self, project: &Project, outcomes: &Outcomes) -> Result<Vec<PathBuf>, CiError> {
        let mut written = self.publish_files(outcomes)?;
        if let Some(dir) = &self.artifacts {
            written.extend(write_artifacts(project, outcomes, dir)?);
        }
        Ok(written)
    }

    /// JUnit, results and GitHub's outputs: what needs no project.
    pub fn publish_files(&self, outcomes: &Outcomes) -> Result<Vec<PathBuf>, CiError> {
        let mut written = Vec::new();
        if let Some(path) = &self.junit {
            write_whole("JUnit", path, harness_report::junit(outcomes).as_bytes())?;
            written.push(path.clone());
        }
        if let Some(path) = &self.results {
            write_whole("results", path, results_json(outcomes).as_bytes())?;
            written.push(path.clone());
        }
        if let Some(gh) = &self.github {
            gh.publish(outcomes)?;
        }
        Ok(written)
    }
}

impl GitHub {
    /// Annotations and groups on stdout, the summary appended to the step's.
    pub fn publish(&self, outcomes: &Outcomes) -> Result<(), CiError> {
        print!("{}", harness_report::github_commands(outcomes));
        if let Some(path) = &self.step_summary {
            let append = || {
                let mut f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?;
                f.write_all(harness_report::job_summary(outcomes).as_bytes())
            };
            append().map_err(|error| CiError::Write {
                what: "the job summary",
                path: path.clone(),
                error,
            })?;
        }
        Ok(())
    }
}

/// The results file `merge` reads.
pub fn results_json(outcomes: &Outcomes) -> String {
    serde_json::to_string_pretty(outcomes).expect("outcomes serialise") + "\n"
}

fn probe(what: &'static str, path: &Path) -> Result<(), CiError> {
    let err = |error| CiError::Write {
        what,
        path: path.to_owned(),
        error,
    };
    if path.is_dir() {
        return Err(err(std::io::Error::other("it is a directory")));
    }
    let dir = parent(path);
    std::fs::create_dir_all(dir).map_err(err)?;
    tempfile::NamedTempFile::new_in(dir).map_err(err)?;
    Ok(())
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Writes `bytes` to `path` through a temporary file beside it, so a reader
/// sees the old file or the new one, never part of one.
pub fn write_whole(what: &'static str, path: &Path, bytes: &[u8]) -> Result<(), CiError> {
    let err = |error| CiError::Write {
        what,
        path: path.to_owned(),
        error,
    };
    let dir = parent(path);
    std::fs::create_dir_all(dir).map_err(err)?;
    // As `fs::write` would make it (tempfile's own are private).
    let mut tmp = tempfile::Builder::new()
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .tempfile_in(dir)
        .map_err(err)?;
    tmp.write_all(bytes).map_err(err)?;
    tmp.persist(path).map_err(|e| err(e.error))?;
    Ok(())
}

/// For each kernel with a failure, `dir/<command>-<kernel>/`: the kernel's
/// run directory (console log, records, every verifier log), the objects,
/// the pending snapshots, the results, and `FAILURES.txt` naming each
/// failure and where its files are. Returns the directories written.
pub fn write_artifacts(
    project: &Project,
    outcomes: &Outcomes,
    dir: &Path,
) -> Result<Vec<PathBuf>, CiError> {
    let mut written = Vec::new();
    for k in &outcomes.kernels {
        let failures: Vec<_> = outcomes
            .outcomes
            .iter()
            .filter(|o| {
                o.status == OutcomeStatus::Failed && o.kernel.split(',').any(|l| l == k.label)
            })
            .collect();
        if failures.is_empty() && k.error.is_none() {
            continue;
        }
        let out = dir.join(format!("{}-{}", outcomes.command, file_safe(&k.label)));
        let err = |error| CiError::Write {
            what: "artifacts",
            path: out.clone(),
            error,
        };
        // A directory from an earlier run would mix two runs' files.
        if out.exists() {
            std::fs::remove_dir_all(&out).map_err(err)?;
        }
        std::fs::create_dir_all(&out).map_err(err)?;
        copy_tree(
            &project.results_dir.join(&k.label),
            &out.join("run"),
            &|_| true,
        )
        .map_err(err)?;
        copy_tree(&project.objects_dir, &out.join("objects"), &|p| {
            p.extension().is_some_and(|e| e == "o")
        })
        .map_err(err)?;
        copy_tree(&project.snapshots_dir, &out.join("snapshots"), &|p| {
            p.to_string_lossy().ends_with(".snap.new")
        })
        .map_err(err)?;
        let mine = Outcomes {
            kernels: vec![k.clone()],
            outcomes: outcomes
                .outcomes
                .iter()
                .filter(|o| o.kernel.split(',').any(|l| l == k.label))
                .cloned()
                .collect(),
            ..outcomes.clone()
        };
        std::fs::write(out.join("results.json"), results_json(&mine)).map_err(err)?;
        let mut text = format!(
            "{} on kernel {} ({})\n",
            outcomes.command, k.label, k.release
        );
        if let Some(e) = &k.error {
            text += &format!("\nthe kernel did not finish: {e}\n(see run/console.log)\n");
        }
        for o in failures {
            text += &format!(
                "\n{} {}/{}: {}\n",
                o.kind,
                o.group,
                o.name,
                o.message.as_deref().unwrap_or("failed")
            );
            if let (Some(f), Some(l)) = (&o.file, o.line) {
                text += &format!("  at {}:{l}\n", f.display());
            }
            if let Some(log) = &o.log {
                // The log inside this directory: run/ mirrors the kernel's
                // run directory.
                let inside = log
                    .strip_prefix(project.relative(&project.results_dir.join(&k.label)))
                    .map(|p| Path::new("run").join(p))
                    .unwrap_or_else(|_| log.clone());
                text += &format!("  verifier log: {}\n", inside.display());
            }
        }
        std::fs::write(out.join("FAILURES.txt"), text).map_err(err)?;
        written.push(out);
    }
    Ok(written)
}

fn file_safe(label: &str) -> String {
    label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || ".-_".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Copies the files under `from` that `keep` accepts, keeping their
/// relative paths; a missing `from` copies nothing.
fn copy_tree(from: &Path, to: &Path, keep: &dyn Fn(&Path) -> bool) -> std::io::Result<()> {
    let Ok(entries) = std::fs::read_dir(from) else {
        return Ok(());
    };
    for entry in entries {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            copy_tree(&path, &to.join(entry.file_name()), keep)?;
        } else if keep(&path) {
            std::fs::create_dir_all(to)?;
            std::fs::copy(&path, to.join(entry.file_name()))?;
        }
    }
    Ok(())
}

/// Reads results files and merges them (see [`Outcomes::merge`]).
pub fn merge_results(paths: &[PathBuf]) -> Result<Outcomes, CiError> {
    let mut parts = Vec::new();
    for path in paths {
        let text = std::fs::read_to_string(path).map_err(|error| CiError::Read {
            path: path.clone(),
            error,
        })?;
        let part: Outcomes = serde_json::from_str(&text).map_err(|error| CiError::NotResults {
            path: path.clone(),
            error,
        })?;
        parts.push((path.clone(), part));
    }
    Ok(Outcomes::merge(parts)?)
}

/// The project's pinned kernel lines as `strategy.matrix` JSON:
/// `{"kernel":["5.10","6.1"]}`.
pub fn ci_matrix(project: &Project) -> Result<String, CiError> {
    let lock = harness_kernels::LockFile::load(&project.lock_file)?;
    let mut lines: Vec<harness_protocol::KernelVersion> = lock
        .kernels
        .iter()
        .map(|k| k.line)
        .chain(lock.images.iter().map(|i| i.line))
        .collect();
    lines.sort();
    lines.dedup();
    let lines: Vec<String> = lines.iter().map(ToString::to_string).collect();
    Ok(serde_json::json!({ "kernel": lines }).to_string())
}
