//! What the kernel needs to know about a program besides its instructions.

use aya_obj::{
    ProgramSection,
    btf::BtfKind,
    generated::{BPF_F_SLEEPABLE, BPF_F_XDP_HAS_FRAGS, bpf_attach_type, bpf_prog_type},
};

/// A program's type as `BPF_PROG_LOAD` needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProgramKind {
    /// Short name used in reports, e.g. `xdp`, `sched_cls`.
    pub name: &'static str,
    pub prog_type: u32,
    pub expected_attach_type: Option<u32>,
    pub flags: u32,
    /// Kernel BTF entity the program attaches to (tracing, LSM, iterators).
    pub attach_target: Option<(String, BtfKind)>,
}

impl ProgramKind {
    /// Derives the kind from aya-obj's parsed section and the raw section
    /// name, which carries the attach target (`lsm/file_open`).
    pub(crate) fn from_section(
        section: &ProgramSection,
        section_name: &str,
    ) -> Result<Self, String> {
        use bpf_prog_type::*;
        let target = || {
            section_name
                .split_once('/')
                .map(|(_, t)| t.to_owned())
                .filter(|t| !t.is_empty())
        };
        let need_target = |prefix: &str, kind: BtfKind| {
            target()
                .map(|t| Some((format!("{prefix}{t}"), kind)))
                .ok_or_else(|| {
                    format!(
                        "section `{section_name}` names no attach target (expected `{}/<name>`)",
                        section_name.split('/').next().unwrap_or(section_name)
                    )
                })
        };
        let sleepable = |s: bool| if s { BPF_F_SLEEPABLE } else { 0 };
        let plain = |name, prog_type: bpf_prog_type| Self {
            name,
            prog_type: prog_type as u32,
            expected_attach_type: None,
            flags: 0,
            attach_target: None,
        };
        let with_attach = |name, prog_type: bpf_prog_type, attach: bpf_attach_type| Self {
            expected_attach_type: Some(attach as u32),
            ..plain(name, prog_type)
        };
        Ok(match section {
            ProgramSection::KProbe | ProgramSection::KRetProbe => {
                plain("kprobe", BPF_PROG_TYPE_KPROBE)
            }
            ProgramSection::UProbe { sleepable: s }
            | ProgramSection::URetProbe { sleepable: s } => Self {
                flags: sleepable(*s),
                ..plain("kprobe", BPF_PROG_TYPE_KPROBE)
            },
            ProgramSection::TracePoint => plain("tracepoint", BPF_PROG_TYPE_TRACEPOINT),
            ProgramSection::SocketFilter => plain("socket_filter", BPF_PROG_TYPE_SOCKET_FILTER),
            ProgramSection::Xdp { frags, attach_type } => Self {
                flags: if *frags { BPF_F_XDP_HAS_FRAGS } else { 0 },
                ..with_attach("xdp", BPF_PROG_TYPE_XDP, (*attach_type).into())
            },
            ProgramSection::SkMsg => plain("sk_msg", BPF_PROG_TYPE_SK_MSG),
            ProgramSection::SkSkbStream { kind } => {
                with_attach("sk_skb", BPF_PROG_TYPE_SK_SKB, (*kind).into())
            }
            ProgramSection::SockOps => plain("sock_ops", BPF_PROG_TYPE_SOCK_OPS),
            ProgramSection::SchedClassifier => plain("sched_cls", BPF_PROG_TYPE_SCHED_CLS),
            ProgramSection::CgroupSkb { attach_type } => Self {
                expected_attach_type: attach_type.map(|a| bpf_attach_type::from(a) as u32),
                ..plain("cgroup_skb", BPF_PROG_TYPE_CGROUP_SKB)
            },
            ProgramSection::CgroupSockAddr { attach_type } => with_attach(
                "cgroup_sock_addr",
                BPF_PROG_TYPE_CGROUP_SOCK_ADDR,
                (*attach_type).into(),
            ),
            ProgramSection::CgroupSysctl => plain("cgroup_sysctl", BPF_PROG_TYPE_CGROUP_SYSCTL),
            ProgramSection::CgroupSockopt { attach_type } => with_attach(
                "cgroup_sockopt",
                BPF_PROG_TYPE_CGROUP_SOCKOPT,
                (*attach_type).into(),
            ),
            ProgramSection::LircMode2 => plain("lirc_mode2", BPF_PROG_TYPE_LIRC_MODE2),
            ProgramSection::PerfEvent => plain("perf_event", BPF_PROG_TYPE_PERF_EVENT),
            ProgramSection::RawTracePoint => plain("raw_tracepoint", BPF_PROG_TYPE_RAW_TRACEPOINT),
            ProgramSection::Lsm { sleepable: s } => Self {
                flags: sleepable(*s),
                attach_target: need_target("bpf_lsm_", BtfKind::Func)?,
                ..with_attach("lsm", BPF_PROG_TYPE_LSM, bpf_attach_type::BPF_LSM_MAC)
            },
            ProgramSection::LsmCgroup => Self {
                attach_target: need_target("bpf_lsm_", BtfKind::Func)?,
                ..with_attach(
                    "lsm_cgroup",
                    BPF_PROG_TYPE_LSM,
                    bpf_attach_type::BPF_LSM_CGROUP,
                )
            },
            ProgramSection::BtfTracePoint => Self {
                attach_target: need_target("btf_trace_", BtfKind::Typedef)?,
                ..with_attach(
                    "tracing",
                    BPF_PROG_TYPE_TRACING,
                    bpf_attach_type::BPF_TRACE_RAW_TP,
                )
            },
            ProgramSection::FEntry { sleepable: s } => Self {
                flags: sleepable(*s),
                attach_target: need_target("", BtfKind::Func)?,
                ..with_attach(
                    "tracing",
                    BPF_PROG_TYPE_TRACING,
                    bpf_attach_type::BPF_TRACE_FENTRY,
                )
            },
            ProgramSection::FExit { sleepable: s } => Self {
                flags: sleepable(*s),
                attach_target: need_target("", BtfKind::Func)?,
                ..with_attach(
                    "tracing",
                    BPF_PROG_TYPE_TRACING,
                    bpf_attach_type::BPF_TRACE_FEXIT,
                )
            },
            ProgramSection::Iter { sleepable: s } => Self {
                flags: sleepable(*s),
                attach_target: need_target("bpf_iter_", BtfKind::Func)?,
                ..with_attach(
                    "tracing",
                    BPF_PROG_TYPE_TRACING,
                    bpf_attach_type::BPF_TRACE_ITER,
                )
            },
            ProgramSection::FlowDissector => with_attach(
                "flow_dissector",
                BPF_PROG_TYPE_FLOW_DISSECTOR,
                bpf_attach_type::BPF_FLOW_DISSECTOR,
            ),
            ProgramSection::SkLookup => with_attach(
                "sk_lookup",
                BPF_PROG_TYPE_SK_LOOKUP,
                bpf_attach_type::BPF_SK_LOOKUP,
            ),
            ProgramSection::SkReuseport { attach_type } => with_attach(
                "sk_reuseport",
                BPF_PROG_TYPE_SK_REUSEPORT,
                (*attach_type).into(),
            ),
            ProgramSection::CgroupSock { attach_type } => with_attach(
                "cgroup_sock",
                BPF_PROG_TYPE_CGROUP_SOCK,
                (*attach_type).into(),
            ),
            ProgramSection::CgroupDevice => plain("cgroup_device", BPF_PROG_TYPE_CGROUP_DEVICE),
            ProgramSection::Extension => {
                return Err(
                    "freplace programs need a target program; the harness does not load them"
                        .into(),
                );
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lsm_programs_attach_to_the_bpf_lsm_stub() {
        let kind =
            ProgramKind::from_section(&ProgramSection::Lsm { sleepable: false }, "lsm/file_open")
                .unwrap();
        assert_eq!(kind.prog_type, bpf_prog_type::BPF_PROG_TYPE_LSM as u32);
        assert_eq!(
            kind.attach_target,
            Some(("bpf_lsm_file_open".into(), BtfKind::Func))
        );
    }

    #[test]
    fn a_tracing_section_without_target_is_refused() {
        let err = ProgramKind::from_section(&ProgramSection::FEntry { sleepable: false }, "fentry")
            .unwrap_err();
        assert!(err.contains("fentry/<name>"), "{err}");
    }

    #[test]
    fn xdp_frags_sets_the_flag() {
        let kind = ProgramKind::from_section(
            &ProgramSection::Xdp {
                frags: true,
                attach_type: aya_obj::programs::XdpAttachType::Interface,
            },
            "xdp.frags",
        )
        .unwrap();
        assert_eq!(kind.flags, BPF_F_XDP_HAS_FRAGS);
        assert_eq!(kind.name, "xdp");
    }
}
