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

use std::{path::Path, process::Command};

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

/// The QEMU release below which TCG is unreliable (see the module docs).
pub const MIN_QEMU: (u32, u32) = (8, 0);

/// `(major, minor)` of the installed QEMU, if any.
pub fn qemu_version(qemu: &str) -> Option<(u32, u32)> {
    parse_qemu_version(&harness_vm::qemu_version(Path::new(qemu)).ok()?)
}

/// "QEMU emulator version 7.2.22 (Debian ...)" -> (7, 2).
fn parse_qemu_version(text: &str) -> Option<(u32, u32)> {
    let v = text.split("version ").nth(1)?.split_whitespace().next()?;
    let mut parts = v.split('.');
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
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
        match qemu_version("qemu-system-x86_64") {
            None => out.push(Requirement {
                what: "qemu-system-x86_64 (boots the test kernels)",
                package: "qemu-system-x86",
            }),
            Some(v) if v < MIN_QEMU => out.push(Requirement {
                what: "QEMU 8.0 or newer (QEMU 7.2's TCG crashes guests at random)",
                package: "qemu-system-x86",
            }),
            Some(_) => {}
        }
    }
    out
}

/// On Debian 12, makes bookworm-backports available (same mirror as the
/// system's own sources) and returns the `-t` release to install QEMU from.
fn backports_for_qemu() -> Result<Option<&'static str>, String> {
    if os_codename().as_deref() != Some("bookworm") {
        return Ok(None);
    }
    let mirror = harness_kernels::Mirror::resolve(None).map_err(|e| e.to_string())?;
    let list = std::path::Path::new("/etc/apt/sources.list.d/ebpf-harness-backports.sources");
    if !list.exists() {
        let text = format!(
            "# Added by the eBPF test harness for QEMU >= 8 (QEMU 7.2's TCG is unreliable).\n\
             Types: deb\nURIs: {}\nSuites: bookworm-backports\nComponents: main\n\
             Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n",
            mirror.url()
        );
        std::fs::write(list, text).map_err(|e| format!("writing {}: {e}", list.display()))?;
    }
    Ok(Some("bookworm-backports"))
}

/// Installs `reqs` with apt-get when that is possible (root, apt-get
/// present); otherwise returns the one line telling the user what to run.
pub fn install(reqs: &[Requirement]) -> Result<(), String> {
    if reqs.is_empty() {
        return Ok(());
    }
    let mut packages: Vec<&str> = reqs.iter().map(|r| r.package).collect();
    packages.dedup();
    let list = packages.join(" ");
    let what: Vec<&str> = reqs.iter().map(|r| r.what).collect();
    let command = format!("apt-get install --no-install-recommends {list}");
    if !nix::unistd::geteuid().is_root() || !on_path("apt-get") {
        return Err(format!(
            "missing {}: install them with `sudo {command}`",
            what.join(", ")
        ));
    }
    crate::ui::status(
        "Installing",
        &format!("{list} (missing: {})", what.join(", ")),
    );
    let apt = |args: &[&str]| -> Result<bool, String> {
        Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .map(|s| s.success())
            .map_err(|e| format!("running apt-get: {e}"))
    };
    let install_args = |extra: &[&str], pkgs: &[&str]| -> Vec<String> {
        ["install", "-y", "-qq", "--no-install-recommends"]
            .iter()
            .chain(extra)
            .chain(pkgs)
            .map(|s| (*s).to_owned())
            .collect()
    };
    let run = |args: Vec<String>| apt(&args.iter().map(String::as_str).collect::<Vec<_>>());

    let (qemu, others): (Vec<&str>, Vec<&str>) =
        packages.iter().partition(|p| **p == "qemu-system-x86");
    let backports = if qemu.is_empty() {
        None
    } else {
        backports_for_qemu()?
    };
    // A fresh machine may never have fetched package lists (and backports is new).
    if backports.is_some() || !run(install_args(&[], &others))? {
        if !apt(&["update", "-qq"])? {
            return Err("`apt-get update` failed; check the network and apt sources".into());
        }
        if !others.is_empty() && !run(install_args(&[], &others))? {
            return Err(format!(
                "`{command}` failed; install the packages and run again"
            ));
        }
    }
    if !qemu.is_empty() {
        let target: Vec<&str> = backports.map(|b| vec!["-t", b]).unwrap_or_default();
        if !run(install_args(&target, &qemu))? {
            return Err(format!(
                "installing QEMU ({}) failed; install QEMU 8.0 or newer and run again",
                target.join(" ")
            ));
        }
        if let Some(v) = qemu_version("qemu-system-x86_64")
            && v < MIN_QEMU
        {
            return Err(format!(
                "QEMU {}.{} is installed, but the harness needs 8.0 or newer (7.2's TCG crashes guests at random); install a newer qemu-system-x86",
                v.0, v.1
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_qemu_versions() {
        assert_eq!(
            parse_qemu_version("QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)\n"),
            Some((7, 2))
        );
        assert_eq!(
            parse_qemu_version("QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-2)\n"),
            Some((10, 0))
        );
        assert_eq!(parse_qemu_version("garbage"), None);
        assert!((7, 2) < MIN_QEMU && (10, 0) >= MIN_QEMU);
    }
}
