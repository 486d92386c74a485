//! Choosing between KVM and TCG.
//!
//! `/dev/kvm` can exist and open while guests still crash under it (nested
//! virtualisation gone wrong: "KVM internal error", QEMU assertions on MSRs)
//! or hang in early boot. The only reliable test is to boot a guest, so the
//! first run boots a short probe VM under KVM and remembers the verdict for
//! this host (kernel, CPU and QEMU version), so later runs decide instantly.

use std::{
    fs,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Accel {
    Kvm,
    Tcg,
}

impl std::fmt::Display for Accel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Kvm => "kvm",
            Self::Tcg => "tcg",
        })
    }
}

/// What the user asked for (`--accel`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum AccelChoice {
    #[default]
    Auto,
    Kvm,
    Tcg,
}

impl std::str::FromStr for AccelChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Self::Auto),
            "kvm" => Ok(Self::Kvm),
            "tcg" => Ok(Self::Tcg),
            _ => Err(format!(
                "unknown accelerator `{s}`: expected auto, kvm or tcg"
            )),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccelDecision {
    pub accel: Accel,
    /// Why, in one sentence (printed once, when the probe runs).
    pub reason: String,
    /// Whether a probe VM was booted to decide (as opposed to a remembered
    /// verdict or an explicit choice).
    pub probed: bool,
    /// Whether the verdict came from what an earlier run remembered, and
    /// was therefore said then: everything else is worth saying now (an
    /// unusable `/dev/kvm` is said on every run, since it is not
    /// remembered: it may be fixed any time).
    pub remembered: bool,
}

#[derive(Debug, Serialize, Deserialize)]
struct Remembered {
    fingerprint: String,
    accel: Accel,
    reason: String,
}

/// Identifies the host configuration a remembered verdict is valid for.
pub fn host_fingerprint(qemu_version: &str) -> String {
    let release = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("model name"))
        .map(|l| l.split_once(':').map_or(l, |(_, v)| v).trim().to_owned())
        .unwrap_or_default();
    format!("{} | {} | {}", release.trim(), cpu, qemu_version.trim())
}

/// The device QEMU's KVM accelerator opens.
pub const KVM_DEVICE: &str = "/dev/kvm";

fn device_opens(device: &Path) -> Result<(), String> {
    fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(device)
        .map(drop)
        .map_err(|e| format!("{} cannot be opened ({e})", device.display()))
}

/// Decides the accelerator. `probe` boots a small guest under KVM and says
/// whether it came up and shut down cleanly; it only runs when `kvm_device`
/// opens and nothing is remembered for `fingerprint` in `state_file`.
pub fn choose_accel(
    choice: AccelChoice,
    kvm_device: &Path,
    state_file: &Path,
    fingerprint: &str,
    probe: impl FnOnce() -> Result<(), String>,
) -> AccelDecision {
    match choice {
        AccelChoice::Tcg => {
            return AccelDecision {
                accel: Accel::Tcg,
                reason: "TCG requested".into(),
                probed: false,
                remembered: false,
            };
        }
        AccelChoice::Kvm => {
            return AccelDecision {
                accel: Accel::Kvm,
                reason: "KVM requested".into(),
                probed: false,
                remembered: false,
            };
        }
        AccelChoice::Auto => {}
    }
    if let Err(reason) = device_opens(kvm_device) {
        return AccelDecision {
            accel: Accel::Tcg,
            reason: format!("{reason}; using TCG"),
            probed: false,
            remembered: false,
        };
    }
    if let Some(r) = fs::read_to_string(state_file)
        .ok()
        .and_then(|s| serde_json::from_str::<Remembered>(&s).ok())
        .filter(|r| r.fingerprint == fingerprint)
    {
        return AccelDecision {
            accel: r.accel,
            reason: r.reason,
            probed: false,
            remembered: true,
        };
    }
    let (accel, reason) = match probe() {
        Ok(()) => (Accel::Kvm, "KVM works on this host".to_owned()),
        Err(why) => (
            Accel::Tcg,
            format!(
                "{} opens but a KVM guest failed ({why}); using TCG (remembered in {}; delete it to probe again)",
                kvm_device.display(),
                state_file.display()
            ),
        ),
    };
    remember_accel(state_file, fingerprint, accel, &reason);
    AccelDecision {
        accel,
        reason,
        probed: true,
        remembered: false,
    }
}

/// Records a verdict, e.g. after a KVM run died mid-way.
pub fn remember_accel(state_file: &Path, fingerprint: &str, accel: Accel, reason: &str) {
    let r = Remembered {
        fingerprint: fingerprint.to_owned(),
        accel,
        reason: reason.to_owned(),
    };
    if let Some(dir) = state_file.parent() {
        let _ = fs::create_dir_all(dir);
    }
    // Write-then-rename so concurrent runs never read half a file.
    let tmp: PathBuf = state_file.with_extension(format!("tmp.{}", std::process::id()));
    if fs::write(&tmp, serde_json::to_vec_pretty(&r).unwrap_or_default()).is_ok() {
        let _ = fs::rename(&tmp, state_file);
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    #[test]
    fn explicit_choices_never_probe() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("accel.json");
        let kvm = dir.path().join("kvm");
        let d = choose_accel(AccelChoice::Tcg, &kvm, &state, "fp", || {
            panic!("must not probe")
        });
        assert_eq!(d.accel, Accel::Tcg);
        let d = choose_accel(AccelChoice::Kvm, &kvm, &state, "fp", || {
            panic!("must not probe")
        });
        assert_eq!(d.accel, Accel::Kvm);
    }

    #[test]
    fn no_device_means_tcg_without_probing() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("no-kvm-here");
        let d = choose_accel(
            AccelChoice::Auto,
            &missing,
            &dir.path().join("a.json"),
            "fp",
            || panic!("must not probe"),
        );
        assert_eq!(
            (d.accel, d.probed, d.remembered),
            (Accel::Tcg, false, false)
        );
        assert!(d.reason.contains("no-kvm-here"), "{}", d.reason);
        // Not remembered: a fixed /dev/kvm is used on the next run.
        assert!(!dir.path().join("a.json").exists());
    }

    #[test]
    fn a_failed_probe_is_remembered_per_fingerprint() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("accel.json");
        // Any file that opens read-write stands in for a present /dev/kvm.
        let kvm = dir.path().join("kvm");
        fs::write(&kvm, b"").unwrap();
        let probes = Cell::new(0);
        let probe = || {
            probes.set(probes.get() + 1);
            Err("KVM internal error".to_owned())
        };
        let first = choose_accel(AccelChoice::Auto, &kvm, &state, "fp1", probe);
        assert_eq!((first.accel, first.probed), (Accel::Tcg, true));
        assert!(
            first.reason.contains("KVM internal error"),
            "{}",
            first.reason
        );
        let again = choose_accel(AccelChoice::Auto, &kvm, &state, "fp1", || {
            panic!("must be remembered")
        });
        assert_eq!(
            (again.accel, again.probed, again.remembered),
            (Accel::Tcg, false, true)
        );
        let other_host = choose_accel(AccelChoice::Auto, &kvm, &state, "fp2", || Ok(()));
        assert_eq!((other_host.accel, other_host.probed), (Accel::Kvm, true));
        assert_eq!(probes.get(), 1);
    }
}
