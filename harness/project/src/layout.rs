use std::path::{Path, PathBuf};

/// Where a project keeps its programs, cases, snapshots and kernel pins.
#[derive(Clone, Debug)]
pub struct Project {
    /// The cargo workspace (it builds the in-VM runner); paths in messages
    /// are shown relative to it.
    pub root: PathBuf,
    /// `*.bpf.c` programs (and `include/`).
    pub programs_dir: PathBuf,
    /// `*.toml` test-case files.
    pub cases_dir: PathBuf,
    /// insta snapshot files.
    pub snapshots_dir: PathBuf,
    /// Pinned kernel packages (`cargo xtask kernels update` writes it).
    pub lock_file: PathBuf,
    pub target_dir: PathBuf,
    /// Compiled objects.
    pub objects_dir: PathBuf,
    /// Per-kernel outputs: records, console, full verifier logs.
    pub results_dir: PathBuf,
    /// The workspace package built as the VM's PID 1.
    pub guest_package: String,
}

impl Project {
    /// The conventional layout: `sample-programs/`, `testcases/`,
    /// `testcases/snapshots/`, `kernels.lock`.
    pub fn at(root: &Path, target_dir: &Path) -> Self {
        Self {
            root: root.to_owned(),
            programs_dir: root.join("sample-programs"),
            cases_dir: root.join("testcases"),
            snapshots_dir: root.join("testcases").join("snapshots"),
            lock_file: root.join("kernels.lock"),
            target_dir: target_dir.to_owned(),
            objects_dir: target_dir.join("bpf"),
            results_dir: target_dir.join("harness"),
            guest_package: "vm-runner".into(),
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
