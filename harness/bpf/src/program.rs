//! What the kernel needs to know about a program besides its instructions.
//! libbpf derives it from the section name, exactly as in the projects whose
//! programs we load.

/// A program's type as `BPF_PROG_LOAD` needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProgramKind {
    /// libbpf's (and bpftool's) name of the type, e.g. `xdp`, `sched_cls`.
    pub name: &'static str,
    pub prog_type: u32,
    pub expected_attach_type: Option<u32>,
    pub flags: u32,
}

const BPF_PROG_TYPE_UNSPEC: u32 = libbpf_sys::BPF_PROG_TYPE_UNSPEC;
const BPF_PROG_TYPE_EXT: u32 = libbpf_sys::BPF_PROG_TYPE_EXT;

impl ProgramKind {
    /// The kind libbpf gave a program of `section`, or why the harness cannot
    /// load it.
    pub(crate) fn from_libbpf(
        section: &str,
        prog_type: u32,
        expected_attach_type: u32,
        flags: u32,
    ) -> Result<Self, String> {
        match prog_type {
            BPF_PROG_TYPE_UNSPEC => {
                return Err(format!(
                    "section `{section}` is not a program section libbpf knows \
                     (libbpf 1.7: see https://docs.kernel.org/bpf/libbpf/program_types.html)"
                ));
            }
            BPF_PROG_TYPE_EXT => {
                return Err(
                    "freplace programs replace a function of another loaded program; \
                     the harness does not load them on their own"
                        .into(),
                );
            }
            _ => {}
        }
        let name = crate::libbpf::prog_type_name(prog_type).ok_or_else(|| {
            format!("section `{section}`: program type {prog_type} is newer than libbpf 1.7")
        })?;
        Ok(Self {
            name,
            prog_type,
            expected_attach_type: (expected_attach_type != 0).then_some(expected_attach_type),
            flags,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_sections_and_freplace_are_refused_with_reasons() {
        let err = ProgramKind::from_libbpf("foo/bar", BPF_PROG_TYPE_UNSPEC, 0, 0).unwrap_err();
        assert!(err.contains("`foo/bar`") && err.contains("libbpf"), "{err}");
        let err = ProgramKind::from_libbpf("freplace/x", BPF_PROG_TYPE_EXT, 0, 0).unwrap_err();
        assert!(err.contains("freplace"), "{err}");
    }

    #[test]
    fn names_come_from_libbpf() {
        let kind =
            ProgramKind::from_libbpf("tc", libbpf_sys::BPF_PROG_TYPE_SCHED_CLS, 0, 0).unwrap();
        assert_eq!(kind.name, "sched_cls");
        assert_eq!(kind.expected_attach_type, None);
        let kind = ProgramKind::from_libbpf(
            "lsm/file_open",
            libbpf_sys::BPF_PROG_TYPE_LSM,
            libbpf_sys::BPF_LSM_MAC,
            0,
        )
        .unwrap();
        assert_eq!(kind.name, "lsm");
        assert_eq!(kind.expected_attach_type, Some(libbpf_sys::BPF_LSM_MAC));
        assert!(ProgramKind::from_libbpf("x", 999, 0, 0).is_err());
    }
}
