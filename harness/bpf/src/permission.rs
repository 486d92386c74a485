//! Why the kernel said EPERM without a word: found by looking, not guessed.
//!
//! `BPF_PROG_LOAD` fails with EPERM and an empty log before the verifier
//! runs when a capability is missing, when lockdown forbids reading kernel
//! memory, or when a security module (often a BPF LSM program another tool
//! loaded on the `bpf` hooks) refuses. Each is visible from user space.

use std::{fmt, fs};

/// One reason the kernel may have refused, with what showed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Denial {
    /// The process lacks a capability this program type needs.
    MissingCapability { capability: &'static str },
    /// Lockdown in confidentiality mode forbids programs that read kernel
    /// memory (tracing, kprobes, LSM).
    Lockdown { mode: String },
    /// The BPF LSM is not among the active security modules (`lsm=` on the
    /// kernel command line lacks `bpf`).
    BpfLsmInactive { active: String },
    /// BPF LSM programs are loaded on this kernel; one on the `bpf` hooks can
    /// refuse program loads.
    LsmPrograms { names: Vec<String> },
    /// Nothing visible explains it.
    Unexplained,
}

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingCapability { capability } => {
                write!(f, "the process lacks {capability}")
            }
            Self::Lockdown { mode } => write!(
                f,
                "kernel lockdown is `{mode}`, which forbids programs that read kernel memory"
            ),
            Self::BpfLsmInactive { active } => write!(
                f,
                "the BPF LSM is not active (active LSMs: {active}; boot with `lsm=...,bpf`)"
            ),
            Self::LsmPrograms { names } => write!(
                f,
                "BPF LSM programs are loaded on this kernel ({}); one on the bpf hooks may refuse loads",
                names.join(", ")
            ),
            Self::Unexplained => f.write_str(
                "capabilities, lockdown and the active LSMs allow it; another security module \
                 (or a kernel built without BPF trampolines) refuses it; try a VM kernel",
            ),
        }
    }
}

const CAP_NET_ADMIN: u32 = 12;
const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// What the machine says about an EPERM for a program of `prog_type`.
pub fn explain_permission_denied(prog_type: u32) -> Vec<Denial> {
    let facts = Facts {
        cap_eff: fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| cap_eff(&s)),
        lockdown: fs::read_to_string("/sys/kernel/security/lockdown").ok(),
        lsm: fs::read_to_string("/sys/kernel/security/lsm").ok(),
        lsm_programs: crate::sys::loaded_programs_of_type(libbpf_sys::BPF_PROG_TYPE_LSM),
    };
    explain(prog_type, &facts)
}

/// What was read off the machine (separate, so the reasoning is testable).
pub(crate) struct Facts {
    pub cap_eff: Option<u64>,
    pub lockdown: Option<String>,
    pub lsm: Option<String>,
    pub lsm_programs: Vec<String>,
}

fn cap_eff(status: &str) -> Option<u64> {
    let hex = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?;
    u64::from_str_radix(hex.trim(), 16).ok()
}

fn reads_kernel_memory(prog_type: u32) -> bool {
    matches!(
        prog_type,
        libbpf_sys::BPF_PROG_TYPE_KPROBE
            | libbpf_sys::BPF_PROG_TYPE_TRACEPOINT
            | libbpf_sys::BPF_PROG_TYPE_PERF_EVENT
            | libbpf_sys::BPF_PROG_TYPE_RAW_TRACEPOINT
            | libbpf_sys::BPF_PROG_TYPE_RAW_TRACEPOINT_WRITABLE
            | libbpf_sys::BPF_PROG_TYPE_TRACING
            | libbpf_sys::BPF_PROG_TYPE_LSM
    )
}

pub(crate) fn explain(prog_type: u32, facts: &Facts) -> Vec<Denial> {
    let mut out = Vec::new();
    if let Some(caps) = facts.cap_eff {
        let has = |cap: u32| caps & (1 << cap) != 0;
        if !has(CAP_BPF) && !has(CAP_SYS_ADMIN) {
            out.push(Denial::MissingCapability {
                capability: "CAP_BPF (or CAP_SYS_ADMIN)",
            });
        }
        if reads_kernel_memory(prog_type) && !has(CAP_PERFMON) && !has(CAP_SYS_ADMIN) {
            out.push(Denial::MissingCapability {
                capability: "CAP_PERFMON (or CAP_SYS_ADMIN)",
            });
        }
        let networking = !reads_kernel_memory(prog_type)
            && !matches!(
                prog_type,
                libbpf_sys::BPF_PROG_TYPE_SOCKET_FILTER | libbpf_sys::BPF_PROG_TYPE_CGROUP_SKB
            );
        if networking && !has(CAP_NET_ADMIN) && !has(CAP_SYS_ADMIN) {
            out.push(Denial::MissingCapability {
                capability: "CAP_NET_ADMIN (or CAP_SYS_ADMIN)",
            });
        }
    }
    if let Some(mode) = facts.lockdown.as_deref().and_then(active_choice)
        && mode == "confidentiality"
        && reads_kernel_memory(prog_type)
    {
        out.push(Denial::Lockdown { mode });
    }
    if prog_type == libbpf_sys::BPF_PROG_TYPE_LSM
        && let Some(lsm) = &facts.lsm
        && !lsm.trim().split(',').any(|m| m == "bpf")
    {
        out.push(Denial::BpfLsmInactive {
            active: lsm.trim().to_owned(),
        });
    }
    if !facts.lsm_programs.is_empty() {
        out.push(Denial::LsmPrograms {
            names: facts.lsm_programs.clone(),
        });
    }
    if out.is_empty() {
        out.push(Denial::Unexplained);
    }
    out
}

/// `none integrity [confidentiality]` -> `confidentiality`.
fn active_choice(text: &str) -> Option<String> {
    let start = text.find('[')?;
    let end = text[start..].find(']')? + start;
    Some(text[start + 1..end].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> Facts {
        Facts {
            cap_eff: Some(0x1ff_ffff_ffff),
            lockdown: Some("none [integrity] confidentiality\n".into()),
            lsm: Some("lockdown,capability,bpf\n".into()),
            lsm_programs: Vec::new(),
        }
    }

    #[test]
    fn root_with_integrity_lockdown_and_bpf_lsm_is_unexplained() {
        assert_eq!(
            explain(libbpf_sys::BPF_PROG_TYPE_TRACING, &facts()),
            [Denial::Unexplained]
        );
    }

    #[test]
    fn each_visible_reason_is_named() {
        let mut f = facts();
        f.cap_eff = Some((1 << CAP_BPF) | (1 << CAP_NET_ADMIN));
        assert_eq!(
            explain(libbpf_sys::BPF_PROG_TYPE_TRACING, &f),
            [Denial::MissingCapability {
                capability: "CAP_PERFMON (or CAP_SYS_ADMIN)"
            }]
        );
        assert_eq!(
            explain(libbpf_sys::BPF_PROG_TYPE_XDP, &f),
            [Denial::Unexplained]
        );
        f.cap_eff = Some(0);
        assert_eq!(explain(libbpf_sys::BPF_PROG_TYPE_XDP, &f).len(), 2);

        let mut f = facts();
        f.lockdown = Some("none integrity [confidentiality]".into());
        assert_eq!(
            explain(libbpf_sys::BPF_PROG_TYPE_KPROBE, &f),
            [Denial::Lockdown {
                mode: "confidentiality".into()
            }]
        );
        assert_eq!(
            explain(libbpf_sys::BPF_PROG_TYPE_XDP, &f),
            [Denial::Unexplained]
        );

        let mut f = facts();
        f.lsm = Some("lockdown,capability,apparmor".into());
        assert!(matches!(
            explain(libbpf_sys::BPF_PROG_TYPE_LSM, &f)[0],
            Denial::BpfLsmInactive { .. }
        ));
        f.lsm_programs = vec!["restrict_bpf".into()];
        let got = explain(libbpf_sys::BPF_PROG_TYPE_TRACING, &f);
        assert_eq!(
            got,
            [Denial::LsmPrograms {
                names: vec!["restrict_bpf".into()]
            }]
        );
        assert!(got[0].to_string().contains("restrict_bpf"));
    }

    #[test]
    fn capabilities_come_from_proc_status() {
        assert_eq!(
            cap_eff("Name:\tx\nCapEff:\t000001fffeffffff\n"),
            Some(0x1ff_feff_ffff)
        );
        assert_eq!(cap_eff("Name:\tx\n"), None);
    }
}
