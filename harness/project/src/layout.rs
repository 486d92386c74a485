use std::path::{Path, PathBuf};

use crate::config::{BuildSettings, DefaultKernels, PathGlob};

/// Where a project keeps its programs, cases, snapshots and kernel pins,
/// and how its programs are built.
#[derive(Clone, Debug)]
pub struct Project {
    /// Paths in messages and snapshot headers are shown relative to it.
    pub root: PathBuf,
    /// The file the settings came from; `None`: the defaults.
    pub config: Option<PathBuf>,
    pub build: BuildSettings,
    /// Directories of `*.toml` test-case files.
    pub cases_dirs: Vec<PathBuf>,
    /// insta snapshot files.
    pub snapshots_dir: PathBuf,
    /// Pinned kernel packages (`kernels update` writes it).
    pub lock_file: PathBuf,
    /// Kernels when `--kernel` is not given.
    pub kernels: Option<DefaultKernels>,
    pub target_dir: PathBuf,
    /// Compiled objects.
    pub objects_dir: PathBuf,
    /// Per-kernel outputs: records, console, full verifier logs.
    pub results_dir: PathBuf,
}

impl Project {
    /// The defaults, which are this repository's layout: sources in
    /// `sample-programs/` and each directory below it, shared headers in
    /// `sample-programs/include/`, cases in `testcases/`, snapshots in
    /// `testcases/snapshots/`, pins in `kernels.lock`.
    pub fn at(root: &Path, target_dir: &Path) -> Self {
        Self {
            root: root.to_owned(),
            config: None,
            build: BuildSettings {
                sources: vec![
                    PathGlob::default_for("sample-programs/*.bpf.c"),
                    PathGlob::default_for("sample-programs/*/*.bpf.c"),
                ],
                // (A default directory that does not exist is skipped.)
                include_dirs: vec![root.join("sample-programs").join("include")],
                ..BuildSettings::default()
            },
            cases_dirs: vec![root.join("testcases")],
            snapshots_dir: root.join("testcases").join("snapshots"),
            lock_file: root.join("kernels.lock"),
            kernels: None,
            target_dir: target_dir.to_owned(),
            objects_dir: target_dir.join("bpf"),
            results_dir: target_dir.join("harness"),
        }
    }

    /// A path relative to the project root, for messages and snapshot headers.
    pub fn relative(&self, path: &Path) -> String {
        path.strip_prefix(&self.root)
            .unwrap_or(path)
            .display()
            .to_string()
    }
}
