//! `vmlinux-h`: one `vmlinux.h` per kernel, from the BTF of the image a
//! kernel line resolves to (or of the running kernel), for CO-RE programs
//! that want the types of exactly the kernels they are tested on.

use std::{
    io::Write as _,
    path::{Path, PathBuf},
};

use harness_events::EventSink;
use harness_kernels::{Boot, KernelRequest};
use harness_project::Project;

use crate::SuiteError;

/// Where the headers go.
#[derive(Clone, Debug)]
pub enum HeaderOutput {
    /// `vmlinux-<line>.h` per kernel in this directory.
    Dir(PathBuf),
    /// One kernel's header at this path.
    File(PathBuf),
}

impl HeaderOutput {
    /// `--output`, else the project's first include directory (else
    /// `include/` at its root): a `.h` path is a file, anything else a
    /// directory.
    pub fn choose(project: &Project, given: Option<PathBuf>) -> Self {
        match given {
            Some(p) if p.extension().is_some_and(|e| e == "h") => Self::File(p),
            Some(p) => Self::Dir(p),
            None => Self::Dir(
                project
                    .build
                    .include_dirs
                    .iter()
                    .find(|d| d.is_dir())
                    .cloned()
                    .unwrap_or_else(|| project.root.join("include")),
            ),
        }
    }
}

/// Writes the header of each of `kernels` (each whole or not at all) and
/// returns `(kernel label, path)` per header.
pub fn vmlinux_headers(
    project: &Project,
    kernels: &[KernelRequest],
    mirror: Option<&str>,
    output: &HeaderOutput,
    events: &dyn EventSink,
) -> Result<Vec<(String, PathBuf)>, VmlinuxHeaderError> {
    let targets = crate::resolve_targets(project, kernels, mirror, events)
        .map_err(|e| VmlinuxHeaderError::Suite(e.into()))?;
    if let HeaderOutput::File(path) = output
        && targets.len() > 1
    {
        return Err(VmlinuxHeaderError::OneFileManyKernels(path.clone()));
    }
    let scratch = tempfile::tempdir().map_err(|e| io_err(Path::new("a temporary directory"), e))?;
    let mut written = Vec::new();
    for target in &targets {
        let btf = match &target.boot {
            Boot::Host => PathBuf::from("/sys/kernel/btf/vmlinux"),
            Boot::Vm { bzimage, .. } => {
                let elf = scratch.path().join(format!("vmlinux-{}", target.label));
                harness_kernels::extract_vmlinux(bzimage, &elf)
                    .map_err(|e| VmlinuxHeaderError::Suite(e.into()))?;
                elf
            }
        };
        let kernel = format!("{} ({})", target.line(), target.release);
        let header = harness_build::vmlinux_header(&btf, &kernel)?;
        let path = match output {
            HeaderOutput::File(p) => p.clone(),
            HeaderOutput::Dir(d) => d.join(format!("vmlinux-{}.h", target.line())),
        };
        write_whole(&path, &header)?;
        written.push((target.label.clone(), path));
    }
    Ok(written)
}

/// Through a temporary file beside `path`, renamed into place.
fn write_whole(path: &Path, text: &str) -> Result<(), VmlinuxHeaderError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
    let mut temp = tempfile::NamedTempFile::new_in(dir).map_err(|e| io_err(dir, e))?;
    temp.write_all(text.as_bytes())
        .and_then(|()| {
            // A header like any other (a temporary file is private).
            use std::os::unix::fs::PermissionsExt as _;
            temp.as_file()
                .set_permissions(std::fs::Permissions::from_mode(0o644))
        })
        .map_err(|e| io_err(temp.path(), e))?;
    temp.persist(path).map_err(|e| io_err(path, e.error))?;
    Ok(())
}

fn io_err(path: &Path, error: std::io::Error) -> VmlinuxHeaderError {
    VmlinuxHeaderError::Io {
        path: path.to_owned(),
        error,
    }
}

#[derive(Debug, thiserror::Error)]
pub enum VmlinuxHeaderError {
    #[error(transparent)]
    Suite(#[from] SuiteError),
    #[error(transparent)]
    Header(#[from] harness_build::VmlinuxError),
    #[error(
        "--output {} is one file, for one kernel: name a directory to get vmlinux-<line>.h for each",
        .0.display()
    )]
    OneFileManyKernels(PathBuf),
    #[error("{}: {error}", path.display())]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
}
