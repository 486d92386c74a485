use std::path::{Path, PathBuf};

/// Where a project keeps its programs, cases, snapshots and kernel pins.
#[derive(Clone, Debug)]
pub struct Project {
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
            guest_package: "vm-runner".into(),
        }
    }

    /// Compiled objects.
    pub fn objects_dir(&self) -> PathBuf {
        self.target_dir.join("bpf")
    }

    /// Per-kernel outputs: records, console, full verifier logs.
    pub fn results_dir(&self) -> PathBuf {
        self.target_dir.join("harness")
    }

    /// A path relative to the project root, for messages and snapshot headers.
    pub fn relative(&self, path: &Path) -> String {
        path.strip_prefix(&self.root)
            .unwrap_or(path)
            .display()
            .to_string()
    }
}
