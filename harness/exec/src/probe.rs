//! Feature probes: named questions about the kernel, answered by trying.

use harness_bpf::probes;
use harness_protocol::{Probe, ProbeReport};

/// Where the kernel lists the LSMs it runs, in order.
const ACTIVE_LSMS: &str = "/sys/kernel/security/lsm";

pub(crate) fn run(probe: &Probe) -> ProbeReport {
    let (result, what) = match probe {
        Probe::ActiveLsm { lsm, .. } => {
            return active_lsm(probe.name(), lsm, std::fs::read_to_string(ACTIVE_LSMS));
        }
        Probe::MapType { map_type, .. } => {
            (probes::map_type(*map_type), format!("map type {map_type}"))
        }
        Probe::ProgType { prog_type, .. } => (
            probes::prog_type(*prog_type),
            format!("program type {prog_type}"),
        ),
        Probe::TestRunCtx { prog_type, .. } => (
            probes::test_run_ctx(*prog_type),
            format!("BPF_PROG_TEST_RUN with a context for program type {prog_type}"),
        ),
        Probe::Helper {
            prog_type, helper, ..
        } => (
            probes::helper(*prog_type, *helper),
            format!("helper {helper} from program type {prog_type}"),
        ),
    };
    let (available, detail) = match result {
        Ok(true) => (true, format!("{what} is available")),
        Ok(false) => (false, format!("{what} is not available on this kernel")),
        Err(e) => (false, format!("probing {what} was inconclusive: {e}")),
    };
    ProbeReport {
        name: probe.name().to_owned(),
        available,
        detail,
    }
}

/// An LSM's programs run only when it is in the boot-time list.
fn active_lsm(name: &str, lsm: &str, list: std::io::Result<String>) -> ProbeReport {
    let (available, detail) = match list {
        Ok(list) if list.trim().split(',').any(|l| l == lsm) => {
            (true, format!("the {lsm} LSM is active ({})", list.trim()))
        }
        Ok(list) => (
            false,
            format!(
                "the {lsm} LSM is not active (active: {}): boot with lsm=...,{lsm}",
                list.trim()
            ),
        ),
        Err(e) => (false, format!("reading {ACTIVE_LSMS}: {e}")),
    };
    ProbeReport {
        name: name.to_owned(),
        available,
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_lsm_is_active_only_when_listed() {
        let listed = active_lsm("bpf_lsm", "bpf", Ok("lockdown,capability,bpf\n".into()));
        assert!(listed.available, "{listed:?}");
        let absent = active_lsm("bpf_lsm", "bpf", Ok("lockdown,capability,bpfx\n".into()));
        assert!(
            !absent.available && absent.detail.contains("lsm=...,bpf"),
            "{absent:?}"
        );
        let unreadable = active_lsm(
            "bpf_lsm",
            "bpf",
            Err(std::io::Error::other("no securityfs")),
        );
        assert!(!unreadable.available && unreadable.detail.contains("no securityfs"));
    }
}
