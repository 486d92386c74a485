//! Kernel features a case can require, each answered by a probe on the
//! kernel under test (never by its version), and the version that brought
//! it: a kernel at or past that version whose probe fails is a failure, not
//! a skip.

use harness_protocol::{KernelVersion, Probe};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Map(u32),
    Prog(u32),
    Helper { prog_type: u32, helper: u32 },
    TestRunCtx(u32),
    ActiveLsm(&'static str),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Feature {
    /// Name used in `requires = [...]`.
    pub name: &'static str,
    pub what: &'static str,
    /// First kernel with the feature.
    pub since: KernelVersion,
    kind: Kind,
}

const XDP: u32 = 6;

pub const FEATURES: &[Feature] = &[
    Feature {
        name: "lpm_trie",
        what: "BPF_MAP_TYPE_LPM_TRIE",
        since: KernelVersion::new(4, 11),
        kind: Kind::Map(11),
    },
    Feature {
        name: "lru_hash",
        what: "BPF_MAP_TYPE_LRU_HASH",
        since: KernelVersion::new(4, 10),
        kind: Kind::Map(9),
    },
    Feature {
        name: "percpu_hash",
        what: "BPF_MAP_TYPE_PERCPU_HASH",
        since: KernelVersion::new(4, 6),
        kind: Kind::Map(5),
    },
    Feature {
        name: "ringbuf",
        what: "BPF_MAP_TYPE_RINGBUF",
        since: KernelVersion::new(5, 8),
        kind: Kind::Map(27),
    },
    Feature {
        name: "cgroup_skb",
        what: "BPF_PROG_TYPE_CGROUP_SKB",
        since: KernelVersion::new(4, 10),
        kind: Kind::Prog(8),
    },
    Feature {
        name: "bpf_loop",
        what: "the bpf_loop helper in XDP programs",
        since: KernelVersion::new(5, 17),
        kind: Kind::Helper {
            prog_type: XDP,
            helper: 181,
        },
    },
    Feature {
        name: "xdp_adjust_tail",
        what: "the bpf_xdp_adjust_tail helper",
        since: KernelVersion::new(4, 18),
        kind: Kind::Helper {
            prog_type: XDP,
            helper: 65,
        },
    },
    // Added by "bpf: Support input xdp_md context in BPF_PROG_TEST_RUN".
    Feature {
        name: "xdp_ctx",
        what: "an xdp_md context in BPF_PROG_TEST_RUN",
        since: KernelVersion::new(5, 13),
        kind: Kind::TestRunCtx(XDP),
    },
    Feature {
        name: "syscall_prog",
        what: "BPF_PROG_TYPE_SYSCALL",
        since: KernelVersion::new(5, 14),
        kind: Kind::Prog(31),
    },
    // BPF LSM programs load without it, but run only when it is active.
    Feature {
        name: "bpf_lsm",
        what: "the BPF LSM, active (lsm=...,bpf)",
        since: KernelVersion::new(5, 7),
        kind: Kind::ActiveLsm("bpf"),
    },
];

pub fn feature(name: &str) -> Option<&'static Feature> {
    FEATURES.iter().find(|f| f.name == name)
}

impl Feature {
    pub fn probe(&self) -> Probe {
        let name = self.name.to_owned();
        match self.kind {
            Kind::Map(map_type) => Probe::MapType { name, map_type },
            Kind::Prog(prog_type) => Probe::ProgType { name, prog_type },
            Kind::Helper { prog_type, helper } => Probe::Helper {
                name,
                prog_type,
                helper,
            },
            Kind::TestRunCtx(prog_type) => Probe::TestRunCtx { name, prog_type },
            Kind::ActiveLsm(lsm) => Probe::ActiveLsm {
                name,
                lsm: lsm.to_owned(),
            },
        }
    }

    /// Whether a kernel of this version should have the feature (`None`:
    /// a kernel whose version is unknown, which is never held to it).
    pub fn expected_on(&self, version: Option<KernelVersion>) -> bool {
        version.is_some_and(|v| v >= self.since)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_decide_what_a_kernel_should_have() {
        let ctx = feature("xdp_ctx").unwrap();
        let v = |s: &str| s.parse().ok();
        assert!(!ctx.expected_on(v("5.10")));
        assert!(
            ctx.expected_on(v("5.13"))
                && ctx.expected_on(v("6.1"))
                && ctx.expected_on(v("7.2"))
                && ctx.expected_on(v("6.18"))
        );
        assert!(!ctx.expected_on(v("host")));
        assert!(matches!(
            ctx.probe(),
            Probe::TestRunCtx { prog_type: 6, .. }
        ));
    }
}
