//! Feature probes: named questions about the kernel, answered by trying.

use harness_bpf::probes;
use harness_protocol::{Probe, ProbeReport};

pub(crate) fn run(probe: &Probe) -> ProbeReport {
    let (result, what) = match probe {
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
