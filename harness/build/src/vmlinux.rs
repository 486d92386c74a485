//! `vmlinux.h`: C declarations of every type in a kernel's BTF, as CO-RE
//! programs include them. bpftool writes them (`btf dump ... format c`);
//! the BTF comes from a kernel ELF or `/sys/kernel/btf/vmlinux`.

use std::{
    io,
    path::{Path, PathBuf},
    process::Command,
};

#[derive(Debug, thiserror::Error)]
pub enum VmlinuxError {
    #[error("bpftool not found: install it (Debian/Ubuntu: `apt-get install bpftool`)")]
    BpftoolMissing,
    #[error("bpftool could not dump the BTF of {}: {stderr}", btf.display())]
    Dump { btf: PathBuf, stderr: String },
    #[error("{}: {error}", path.display())]
    Io { path: PathBuf, error: io::Error },
}

/// bpftool on PATH, or where Debian puts it (`/usr/sbin`, not on every
/// user's PATH).
pub fn bpftool() -> Option<PathBuf> {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .chain([PathBuf::from("/usr/sbin")])
        .map(|d| d.join("bpftool"))
        .find(|p| p.is_file())
}

/// The header for the BTF in `btf` (a kernel ELF with `.BTF`, or raw BTF),
/// with a first line saying which kernel it is of.
pub fn vmlinux_header(btf: &Path, kernel: &str) -> Result<String, VmlinuxError> {
    let bpftool = bpftool().ok_or(VmlinuxError::BpftoolMissing)?;
    let out = Command::new(&bpftool)
        .args(["btf", "dump", "file"])
        .arg(btf)
        .args(["format", "c"])
        .output()
        .map_err(|error| VmlinuxError::Io {
            path: bpftool.clone(),
            error,
        })?;
    if !out.status.success() || out.stdout.is_empty() {
        return Err(VmlinuxError::Dump {
            btf: btf.to_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(format!(
        "/* The types of kernel {kernel}, from its BTF (ebpf-harness vmlinux-h). */\n{}",
        String::from_utf8_lossy(&out.stdout)
    ))
}
