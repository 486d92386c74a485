//! veristat from a Debian 13 (trixie) chroot. veristat is packaged only
//! from Debian 13 on; on an older host `cargo xtask setup --veristat`
//! debootstraps a minimal trixie with the `veristat` package into the cache
//! and writes a wrapper script that runs it there:
//!
//! ```text
//! <cache>/veristat-trixie/root/      the chroot (debootstrap --variant=minbase)
//! <cache>/veristat-trixie/veristat   the wrapper: `veristat [ARGS] FILE...`
//! <cache>/veristat-trixie/.complete  written last: the chroot is usable
//! ```
//!
//! The wrapper enters a private mount namespace (`unshare --mount`), mounts
//! `/sys` (BTF, bpffs) and a fresh `/proc` in the chroot, binds the host's
//! `/` at `/host` and rewrites every argument naming an existing file to its
//! `/host/...` path, so `wrapper a.bpf.o b.bpf.o` works as `veristat` would.
//! The mounts live only as long as the namespace: nothing leaks when
//! veristat exits or is killed.
//!
//! The mirror is the one the kernels come from: `--debian-mirror`, then
//! `HARNESS_DEBIAN_MIRROR`, then apt's sources.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use harness_events::{Event, EventSink};

use crate::{SetupError, on_path};

/// The Debian release that packages veristat.
pub const SUITE: &str = "trixie";

const KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";

/// Where the chroot and its wrapper live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VeristatChroot {
    /// `<cache>/veristat-trixie`.
    pub dir: PathBuf,
}

/// How far the chroot is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChrootState {
    Missing,
    /// Something is there but setup never finished (interrupted, failed).
    Partial,
    /// Installed: the wrapper to run.
    Ready(PathBuf),
}

impl VeristatChroot {
    /// In the harness cache (`$HARNESS_CACHE_DIR`, `$XDG_CACHE_HOME/ebpf-harness`
    /// or `~/.cache/ebpf-harness`).
    pub fn in_default_cache() -> Self {
        Self::in_cache(&harness_kernels::Cache::default_root())
    }

    pub fn in_cache(cache_root: &Path) -> Self {
        Self {
            dir: cache_root.join(format!("veristat-{SUITE}")),
        }
    }

    pub fn root(&self) -> PathBuf {
        self.dir.join("root")
    }

    pub fn wrapper(&self) -> PathBuf {
        self.dir.join("veristat")
    }

    fn marker(&self) -> PathBuf {
        self.dir.join(".complete")
    }

    pub fn state(&self) -> ChrootState {
        if self.marker().is_file() && self.wrapper().is_file() && self.root().is_dir() {
            ChrootState::Ready(self.wrapper())
        } else if self.dir.exists() {
            ChrootState::Partial
        } else {
            ChrootState::Missing
        }
    }

    /// The wrapper, when the chroot is installed.
    pub fn ready(&self) -> Option<PathBuf> {
        match self.state() {
            ChrootState::Ready(w) => Some(w),
            _ => None,
        }
    }

    /// Installs the chroot unless it is already there; returns the wrapper.
    /// Needs root, debootstrap and network access to the mirror. A partial
    /// chroot (an interrupted run) is removed and made again.
    pub fn install(
        &self,
        mirror: Option<&str>,
        events: &dyn EventSink,
    ) -> Result<PathBuf, SetupError> {
        if let ChrootState::Ready(wrapper) = self.state() {
            check_wrapper(&wrapper)?;
            return Ok(wrapper);
        }
        if !nix::unistd::geteuid().is_root() {
            return Err(SetupError::Veristat(format!(
                "making the Debian {SUITE} chroot for veristat needs root (debootstrap, chroot, mount): \
                 run `sudo -E cargo xtask setup --veristat`"
            )));
        }
        for (tool, package) in [
            ("debootstrap", "debootstrap"),
            ("unshare", "util-linux"),
            ("chroot", "coreutils"),
        ] {
            if !on_path(tool) {
                return Err(SetupError::InstallByHand {
                    what: format!("{tool} (for the veristat chroot)"),
                    command: format!("apt-get install {package}"),
                });
            }
        }
        if !Path::new(KEYRING).is_file() {
            return Err(SetupError::InstallByHand {
                what: format!("{KEYRING} (checks the {SUITE} packages)"),
                command: "apt-get install debian-archive-keyring".into(),
            });
        }
        let mirror = harness_kernels::Mirror::resolve(mirror)?;
        if self.dir.exists() {
            let mounted = mounts_under(&read_mountinfo()?, &self.dir);
            if let Some(m) = mounted.first() {
                return Err(SetupError::Veristat(format!(
                    "{} is mounted inside the unfinished chroot {}; unmount it (`umount -R {}`) and run again",
                    m.display(),
                    self.dir.display(),
                    m.display()
                )));
            }
            events.event(Event::Note {
                message: format!("removing the unfinished chroot {}", self.dir.display()),
            });
            fs::remove_dir_all(&self.dir)
                .map_err(io(format!("removing {}", self.dir.display())))?;
        }
        fs::create_dir_all(&self.dir).map_err(io(format!("creating {}", self.dir.display())))?;
        let log = self.dir.join("debootstrap.log");
        events.event(Event::Note {
            message: format!(
                "debootstrapping Debian {SUITE} with veristat into {} from {} ({}); log in {}",
                self.root().display(),
                mirror.url(),
                mirror.origin(),
                log.display()
            ),
        });
        let log_file = fs::File::create(&log).map_err(io(format!("creating {}", log.display())))?;
        let log_err = log_file
            .try_clone()
            .map_err(io(format!("opening {}", log.display())))?;
        let status = Command::new("debootstrap")
            .args(["--variant=minbase", "--include=veristat"])
            .arg(format!("--keyring={KEYRING}"))
            .arg(SUITE)
            .arg(self.root())
            .arg(mirror.url())
            .stdout(log_file)
            .stderr(log_err)
            .status()
            .map_err(io("running debootstrap".to_owned()))?;
        if !status.success() {
            let text = fs::read_to_string(&log).unwrap_or_default();
            return Err(SetupError::Veristat(format!(
                "debootstrap of {SUITE} from {} failed ({status}); last lines of {}:\n{}{}",
                mirror.url(),
                log.display(),
                tail(&text, 15),
                if text.contains("NO_PUBKEY") || text.contains("Release signed by unknown key") {
                    "\nthe archive key is unknown: upgrade debian-archive-keyring"
                } else {
                    ""
                }
            )));
        }
        fs::create_dir_all(self.root().join("host"))
            .map_err(io(format!("creating {}/host", self.root().display())))?;
        let wrapper = self.wrapper();
        let tmp = self.dir.join(".veristat.tmp");
        fs::write(&tmp, wrapper_script(&self.root())?)
            .map_err(io(format!("writing {}", tmp.display())))?;
        set_executable(&tmp)?;
        fs::rename(&tmp, &wrapper).map_err(io(format!("writing {}", wrapper.display())))?;
        check_wrapper(&wrapper)?;
        fs::write(self.marker(), "").map_err(io(format!("writing {}", self.marker().display())))?;
        Ok(wrapper)
    }
}

fn io(what: String) -> impl FnOnce(std::io::Error) -> SetupError {
    move |error| SetupError::Io { what, error }
}

fn set_executable(path: &Path) -> Result<(), SetupError> {
    use std::os::unix::fs::PermissionsExt as _;
    fs::set_permissions(path, fs::Permissions::from_mode(0o755))
        .map_err(io(format!("making {} executable", path.display())))
}

/// Runs `wrapper --version`: the chroot, its mounts and veristat all work.
fn check_wrapper(wrapper: &Path) -> Result<(), SetupError> {
    let out = Command::new(wrapper)
        .arg("--version")
        .output()
        .map_err(io(format!("running {}", wrapper.display())))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if out.status.success() && stdout.starts_with("veristat") {
        Ok(())
    } else {
        Err(SetupError::Veristat(format!(
            "`{} --version` failed ({}): {}{}\nremove {} and run `cargo xtask setup --veristat` again",
            wrapper.display(),
            out.status,
            stdout.trim(),
            String::from_utf8_lossy(&out.stderr).trim(),
            wrapper.parent().unwrap_or(wrapper).display()
        )))
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// `s` as one word for `sh`, in single quotes.
pub fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The wrapper that runs veristat in the chroot at `root`.
pub fn wrapper_script(root: &Path) -> Result<String, SetupError> {
    let root = root
        .to_str()
        .ok_or_else(|| SetupError::Veristat(format!("{} is not UTF-8", root.display())))?;
    Ok(format!(
        r#"#!/bin/sh
# Written by `cargo xtask setup --veristat` (ebpf-harness): veristat from the
# Debian {SUITE} chroot next to this script, in a private mount namespace so
# none of its mounts outlive it. Arguments naming existing files are passed
# as their /host/... path inside the chroot.
set -eu
root={root}
[ "$(id -u)" -eq 0 ] || {{ echo "$0: veristat in a chroot needs root" >&2; exit 1; }}
exec unshare --mount --propagation private /bin/sh -eu -c '
root=$1; shift
mount --bind /sys "$root/sys"
mount -t proc proc "$root/proc"
mount --rbind / "$root/host"
n=$#
for a do
  if [ -f "$a" ]; then a="/host$(realpath -- "$a")"; fi
  set -- "$@" "$a"
done
shift "$n"
exec chroot "$root" /usr/bin/veristat "$@"
' veristat-chroot "$root" "$@"
"#,
        root = sh_quote(root)
    ))
}

fn read_mountinfo() -> Result<String, SetupError> {
    fs::read_to_string("/proc/self/mountinfo").map_err(io("reading /proc/self/mountinfo".into()))
}

/// Mount points (field 5 of mountinfo, octal escapes decoded) at or under `dir`.
pub fn mounts_under(mountinfo: &str, dir: &Path) -> Vec<PathBuf> {
    mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape_mount(p)))
        .filter(|p| p.starts_with(dir))
        .collect()
}

fn unescape_mount(s: &str) -> String {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_follow_the_marker() {
        let tmp = tempfile::tempdir().unwrap();
        let c = VeristatChroot::in_cache(tmp.path());
        assert_eq!(c.dir, tmp.path().join("veristat-trixie"));
        assert_eq!(c.state(), ChrootState::Missing);
        fs::create_dir_all(c.root()).unwrap();
        fs::write(c.wrapper(), "").unwrap();
        // Interrupted before the marker: not usable.
        assert_eq!(c.state(), ChrootState::Partial);
        assert_eq!(c.ready(), None);
        fs::write(c.marker(), "").unwrap();
        assert_eq!(c.state(), ChrootState::Ready(c.wrapper()));
        fs::remove_file(c.wrapper()).unwrap();
        assert_eq!(c.state(), ChrootState::Partial);
    }

    #[test]
    fn quoting_survives_the_shell() {
        for s in ["plain", "with space", "it's", "'", "$HOME `x` \\ \"q\""] {
            let out = Command::new("sh")
                .arg("-c")
                .arg(format!("printf %s {}", sh_quote(s)))
                .output()
                .unwrap();
            assert_eq!(String::from_utf8(out.stdout).unwrap(), s);
        }
    }

    #[test]
    fn the_wrapper_names_its_root_and_parses() {
        let script = wrapper_script(Path::new("/c/it's here/root")).unwrap();
        assert!(script.contains(r"root='/c/it'\''s here/root'"), "{script}");
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("w");
        fs::write(&path, &script).unwrap();
        let status = Command::new("sh").arg("-n").arg(&path).status().unwrap();
        assert!(status.success());
    }

    #[test]
    fn mounts_inside_the_chroot_are_found() {
        let info = "\
22 1 254:1 / / rw,relatime - ext4 /dev/vda rw
80 22 0:5 / /root/.cache/ebpf-harness/veristat-trixie/root/sys rw - sysfs sysfs rw
81 22 0:6 / /root/.cache/ebpf-harness/veristat-trixie-old rw - tmpfs t rw
82 22 0:7 / /c/with\\040space/root/proc rw - proc proc rw
";
        let dir = Path::new("/root/.cache/ebpf-harness/veristat-trixie");
        assert_eq!(
            mounts_under(info, dir),
            vec![dir.join("root/sys")],
            "a sibling with the same prefix is not inside"
        );
        assert_eq!(
            mounts_under(info, Path::new("/c/with space")),
            vec![PathBuf::from("/c/with space/root/proc")]
        );
        assert!(mounts_under(info, Path::new("/elsewhere")).is_empty());
    }
}
