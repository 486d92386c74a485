//! What a fresh machine lacks, and installing it. The harness needs clang
//! and BPF headers to build programs and QEMU to boot kernels; on Debian and
//! Ubuntu these are packages, installed here when running as root so a new
//! user's first `cargo xtask test` just works.
//!
//! QEMU must be 8.0 or newer: QEMU 7.2's TCG (Debian 12's default) crashes
//! guests at random (double faults, general protection faults in early boot)
//! when its threads are time-sliced, e.g. with two VMs on two cores; we saw
//! 3 to 7 crashed boots in 32, and none in 72 with QEMU 10.0. On Debian 12
//! the newer QEMU comes from bookworm-backports.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use harness_events::{Event, EventSink};
use harness_vm::QemuVersion;

mod veristat;

pub use veristat::{ChrootState, SUITE as VERISTAT_SUITE, VeristatChroot};

/// A system requirement and the Debian/Ubuntu package that provides it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Requirement {
    pub what: &'static str,
    pub package: &'static str,
}

fn on_path(cmd: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(cmd).is_file()))
}

fn qemu_version() -> Option<QemuVersion> {
    QemuVersion::of(Path::new("qemu-system-x86_64"))
}

fn os_codename() -> Option<String> {
    let text = std::fs::read_to_string("/etc/os-release").ok()?;
    text.lines().find_map(|l| {
        l.strip_prefix("VERSION_CODENAME=")
            .map(|v| v.trim_matches('"').to_owned())
    })
}

/// Requirements that are missing. `vm` adds what booting kernels needs.
pub fn missing(vm: bool) -> Vec<Requirement> {
    let mut out = Vec::new();
    let clang = std::env::var("CLANG").unwrap_or_else(|_| "clang".into());
    if !on_path(&clang) && !Path::new(&clang).is_file() {
        out.push(Requirement {
            what: "clang (compiles BPF programs)",
            package: "clang",
        });
    }
    if !Path::new("/usr/include/bpf/bpf_helpers.h").exists() {
        out.push(Requirement {
            what: "bpf/bpf_helpers.h",
            package: "libbpf-dev",
        });
    }
    if !Path::new("/usr/include/linux/bpf.h").exists() {
        out.push(Requirement {
            what: "linux/bpf.h",
            package: "linux-libc-dev",
        });
    }
    if vm {
        match qemu_version() {
            None => out.push(Requirement {
                what: "qemu-system-x86_64 (boots the test kernels)",
                package: "qemu-system-x86",
            }),
            Some(v) if v < QemuVersion::RELIABLE_TCG => out.push(Requirement {
                what: "QEMU 8.0 or newer (QEMU 7.2's TCG crashes guests at random)",
                package: "qemu-system-x86",
            }),
            Some(_) => {}
        }
        if harness_vm::tools::static_busybox().is_err() {
            out.push(Requirement {
                what: "a static busybox (the programs live cases run inside the VMs)",
                package: "busybox-static",
            });
        }
    }
    out
}

/// bpftool, which writes `vmlinux.h` from a kernel's BTF (`vmlinux-h`).
pub fn missing_bpftool() -> Vec<Requirement> {
    if harness_build::bpftool().is_some() {
        return Vec::new();
    }
    vec![Requirement {
        what: "bpftool (writes vmlinux.h from a kernel's BTF)",
        package: "bpftool",
    }]
}

/// What building libbpf from source (libbpf-sys, vendored: libbpf, elfutils,
/// zlib) needs beyond a C compiler. Checked before the harness itself is
/// compiled, so nothing here may need the harness.
pub fn missing_build_tools() -> Vec<Requirement> {
    missing_build_tools_in(&std::env::var_os("PATH").unwrap_or_default())
}

fn missing_build_tools_in(path: &std::ffi::OsStr) -> Vec<Requirement> {
    const TOOLS: &[(&str, &str, &str)] = &[
        ("cc", "a C compiler (builds libbpf)", "gcc"),
        ("make", "make (builds libbpf)", "make"),
        (
            "autoreconf",
            "autoconf (builds elfutils for libbpf)",
            "autoconf",
        ),
        (
            "automake",
            "automake (builds elfutils for libbpf)",
            "automake",
        ),
        (
            "autopoint",
            "autopoint (builds elfutils for libbpf)",
            "autopoint",
        ),
        (
            "libtoolize",
            "libtool (builds elfutils for libbpf)",
            "libtool",
        ),
        ("pkg-config", "pkg-config (builds libbpf)", "pkg-config"),
        ("flex", "flex (builds elfutils for libbpf)", "flex"),
        ("bison", "bison (builds elfutils for libbpf)", "bison"),
        ("gawk", "gawk (builds elfutils for libbpf)", "gawk"),
    ];
    TOOLS
        .iter()
        .filter(|(cmd, _, _)| !std::env::split_paths(path).any(|d| d.join(cmd).is_file()))
        .map(|(_, what, package)| Requirement { what, package })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_tools_are_found_on_the_path_given() {
        let empty = tempfile::tempdir().unwrap();
        let missing = missing_build_tools_in(empty.path().as_os_str());
        let packages: Vec<&str> = missing.iter().map(|r| r.package).collect();
        assert!(
            packages.contains(&"autopoint") && packages.contains(&"gawk"),
            "{packages:?}"
        );
        assert_eq!(packages.len(), 10);

        let full = tempfile::tempdir().unwrap();
        for tool in [
            "cc",
            "make",
            "autoreconf",
            "automake",
            "autopoint",
            "libtoolize",
        ] {
            std::fs::write(full.path().join(tool), "").unwrap();
        }
        let path = std::env::join_paths([empty.path(), full.path()]).unwrap();
        let packages: Vec<&str> = missing_build_tools_in(&path)
            .iter()
            .map(|r| r.package)
            .collect();
        assert_eq!(packages, ["pkg-config", "flex", "bison", "gawk"]);
    }
}

/// On Debian 12, makes bookworm-backports available (same mirror as the
/// system's own sources) and returns the `-t` release to install QEMU from.
fn backports_for_qemu() -> Result<Option<&'static str>, SetupError> {
    if os_codename().as_deref() != Some("bookworm") {
        return Ok(None);
    }
    let mirror = harness_kernels::Mirror::resolve(None)?;
    let list = std::path::Path::new("/etc/apt/sources.list.d/ebpf-harness-backports.sources");
    if !list.exists() {
        let text = format!(
            "# Added by the eBPF test harness for QEMU >= 8 (QEMU 7.2's TCG is unreliable).\n\
             Types: deb\nURIs: {}\nSuites: bookworm-backports\nComponents: main\n\
             Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n",
            mirror.url()
        );
        std::fs::write(list, text).map_err(|error| SetupError::Io {
            what: format!("writing {}", list.display()),
            error,
        })?;
    }
    Ok(Some("bookworm-backports"))
}

/// Why the machine could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// Not root, or no apt-get: the user has to install them.
    #[error("missing {what}: install them with `sudo {command}`")]
    InstallByHand { what: String, command: String },
    #[error("running apt-get: {0}")]
    Apt(std::io::Error),
    #[error(
        "`{command}` failed (apt's output: {}); it ended with:\n{tail}",
        log.display()
    )]
    Step {
        command: String,
        log: PathBuf,
        tail: String,
    },
    #[error(
        "QEMU {0} is installed, but the harness needs 8.0 or newer (7.2's TCG crashes guests at random); install a newer qemu-system-x86"
    )]
    QemuTooOld(QemuVersion),
    #[error(transparent)]
    Kernel(#[from] harness_kernels::KernelError),
    #[error("{what}: {error}")]
    Io { what: String, error: std::io::Error },
    /// The veristat chroot could not be made or does not work.
    #[error("{0}")]
    Veristat(String),
}

/// Where apt's own output goes: one file, appended to, each step headed by
/// its command line.
pub fn setup_log() -> PathBuf {
    harness_kernels::Cache::default_root()
        .join("logs")
        .join("setup.log")
}

/// Runs apt-get steps with their output in the setup log, one event pair
/// per step.
struct Apt<'a> {
    log: PathBuf,
    events: &'a dyn EventSink,
}

impl Apt<'_> {
    /// Runs `apt-get args` as the step `what` (for `why`); whether it
    /// succeeded.
    fn step(&self, what: &str, why: &str, args: &[&str]) -> Result<bool, SetupError> {
        let io = |error| SetupError::Io {
            what: format!("writing {}", self.log.display()),
            error,
        };
        if let Some(dir) = self.log.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(io)?;
        use std::io::Write as _;
        writeln!(log, "\n$ apt-get {}", args.join(" ")).map_err(io)?;
        self.events.event(Event::Installing {
            what: what.to_owned(),
            why: why.to_owned(),
        });
        let started = std::time::Instant::now();
        let ok = Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone().map_err(io)?)
            .stderr(log)
            .status()
            .map_err(SetupError::Apt)?
            .success();
        if ok {
            self.events.event(Event::Installed {
                what: what.to_owned(),
                why: why.to_owned(),
                took: started.elapsed(),
            });
        }
        Ok(ok)
    }

    /// The end of the log, for an error.
    fn tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(8)..].join("\n")
    }
}

/// Installs `reqs` with apt-get when that is possible (root, apt-get
/// present); otherwise says the one line the user should run. Each step
/// (package lists, packages, QEMU from backports) is one line of progress;
/// apt's own output goes to [`setup_log`], which an error names.
pub fn install(reqs: &[Requirement], events: &dyn EventSink) -> Result<(), SetupError> {
    install_logged(reqs, events, &setup_log())
}

fn install_logged(
    reqs: &[Requirement],
    events: &dyn EventSink,
    log: &Path,
) -> Result<(), SetupError> {
    if reqs.is_empty() {
        return Ok(());
    }
    let mut packages: Vec<&str> = reqs.iter().map(|r| r.package).collect();
    packages.dedup();
    let list = packages.join(" ");
    let what: Vec<&str> = reqs.iter().map(|r| r.what).collect();
    let command = format!("apt-get install --no-install-recommends {list}");
    if !nix::unistd::geteuid().is_root() || !on_path("apt-get") {
        return Err(SetupError::InstallByHand {
            what: what.join(", "),
            command,
        });
    }
    let apt = Apt {
        log: log.to_owned(),
        events,
    };
    let failed = |command: String| SetupError::Step {
        command,
        log: apt.log.clone(),
        tail: apt.tail(),
    };
    let install_args = |extra: &[&'static str], pkgs: &[&'static str]| -> Vec<&'static str> {
        ["install", "-y", "-q", "--no-install-recommends"]
            .iter()
            .chain(extra)
            .chain(pkgs)
            .copied()
            .collect()
    };
    let why_of = |pkgs: &[&str]| -> String {
        reqs.iter()
            .filter(|r| pkgs.contains(&r.package))
            .map(|r| r.what)
            .collect::<Vec<_>>()
            .join("; ")
    };

    let (qemu, others): (Vec<&'static str>, Vec<&'static str>) =
        packages.iter().partition(|p| **p == "qemu-system-x86");
    let backports = if qemu.is_empty() {
        None
    } else {
        backports_for_qemu()?
    };
    let others_what = others.join(" ");
    let others_why = why_of(&others);
    // A fresh machine may never have fetched package lists (and backports
    // is new): try the install first, update only when it fails.
    let installed = !others.is_empty()
        && backports.is_none()
        && apt.step(&others_what, &others_why, &install_args(&[], &others))?;
    if !installed {
        if !apt.step("package lists", "to find the packages", &["update", "-q"])? {
            return Err(failed("apt-get update".into()));
        }
        if !others.is_empty()
            && !apt.step(&others_what, &others_why, &install_args(&[], &others))?
        {
            return Err(failed(command));
        }
    }
    if !qemu.is_empty() {
        let target: Vec<&'static str> = backports.map(|b| vec!["-t", b]).unwrap_or_default();
        let what = match backports {
            Some(b) => format!("qemu-system-x86 from {b}"),
            None => "qemu-system-x86".to_owned(),
        };
        if !apt.step(&what, &why_of(&qemu), &install_args(&target, &qemu))? {
            return Err(failed(format!(
                "apt-get install {} qemu-system-x86",
                target.join(" ")
            )));
        }
        if let Some(v) = qemu_version()
            && v < QemuVersion::RELIABLE_TCG
        {
            return Err(SetupError::QemuTooOld(v));
        }
    }
    Ok(())
}

/// Fetches (or finds in the cache) every kernel pinned in `lock_file`.
pub fn fetch_pinned_kernels(
    lock_file: &Path,
    mirror: Option<&str>,
    events: &dyn EventSink,
) -> Result<Vec<(harness_kernels::LockedKernel, harness_kernels::KernelImage)>, SetupError> {
    let lock = harness_kernels::LockFile::load(lock_file)?;
    let mirror = harness_kernels::Mirror::resolve(mirror)?;
    let cache = harness_kernels::Cache::new(harness_kernels::Cache::default_root());
    lock.kernels
        .into_iter()
        .map(|k| {
            let image = cache.kernel(&k, &mirror, events)?;
            Ok((k, image))
        })
        .collect()
}
