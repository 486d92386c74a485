//! `bench cases`: what `n` generated packet cases add to one run, on the
//! host and in VMs, against a run with a single case.

use std::{
    sync::{Arc, atomic::AtomicBool},
    time::{Duration, Instant},
};

use harness_events::{Event, EventSink, Silent};
use harness_kernels::KernelRequest;
use harness_project::Project;
use harness_suite::SuiteOptions;

use crate::ScratchFile;
use crate::{BenchError, check_runs, io_err, median};

/// What `n` cases add to a run.
#[derive(Clone, Debug)]
pub struct CasesBench {
    pub label: String,
    pub cases: usize,
    /// One run with a single case (medians over the runs).
    pub baseline: Duration,
    /// One run with `cases` cases.
    pub loaded: Duration,
}

impl CasesBench {
    pub fn added(&self) -> Duration {
        self.loaded.saturating_sub(self.baseline)
    }
}

/// `n` firewall cases cycling through realistic shapes: map setup, packets
/// of several layers, return and map expectations.
pub fn generated_cases(n: usize) -> String {
    let mut s = String::from("object = \"xdp_firewall\"\nprogram = \"xdp_firewall\"\n");
    for i in 0..n {
        let (a, b) = (i % 250 + 1, i / 250 + 1);
        let body = match i % 4 {
            0 => format!(
                "maps.deny_v4 = [{{ key = \"10.{b}.0.0/16\", value = {i} }}]\npacket.ipv4 = {{ src = \"10.{b}.3.{a}\", dst = \"192.0.2.1\" }}\n\
                 packet.udp = {{ src = {}, dst = 53 }}\nexpect.return = \"XDP_DROP\"\nexpect.maps.stats = [{{ key = \"DROPPED_V4\", value = {{ packets = 1 }} }}]\n",
                1024 + i
            ),
            1 => format!(
                "maps.deny_ports = [{{ key = {{ proto = 6, port = {} }}, value = 1 }}]\npacket.ipv4 = {{ src = \"192.0.2.{a}\", dst = \"192.0.2.1\" }}\n\
                 packet.tcp = {{ src = 40000, dst = {}, flags = \"SYN\" }}\nexpect.return = \"XDP_DROP\"\n",
                1000 + i,
                1000 + i
            ),
            2 => format!(
                "maps.deny_v6 = [{{ key = \"2001:db8:{b:x}::/48\", value = 1 }}]\npacket.ipv6 = {{ src = \"2001:db8:{:x}::{a:x}\", dst = \"2001:db8::1\" }}\n\
                 packet.udp = {{ src = 1, dst = 2 }}\nexpect.return = \"XDP_PASS\"\n",
                b + 1
            ),
            _ => format!(
                "packet.vlan = {{ id = {a} }}\npacket.arp = {{ sender_ip = \"192.0.2.{a}\", target_ip = \"192.0.2.1\" }}\nexpect.return = \"XDP_PASS\"\n"
            ),
        };
        s.push_str(&format!("\n[[case]]\nname = \"case {i}\"\n{body}"));
    }
    s
}

/// A scratch copy of the project holding only the firewall and `cases`
/// generated cases.
pub(crate) fn scratch(
    project: &Project,
    root: &std::path::Path,
    cases: usize,
) -> Result<Project, BenchError> {
    crate::scratch_project(
        project,
        root,
        &[
            (
                "xdp_firewall.bpf.c",
                ScratchFile::Copy("xdp_firewall.bpf.c"),
            ),
            ("include/parsing.h", ScratchFile::Copy("include/parsing.h")),
        ],
        &generated_cases(cases),
    )
}

/// Runs each of `opts.kernels` (one at a time) with one generated case and
/// with `n`.
pub fn cases(
    project: &Project,
    opts: &SuiteOptions,
    n: usize,
    runs: usize,
    events: &dyn EventSink,
    interrupt: &Arc<AtomicBool>,
) -> Result<Vec<CasesBench>, BenchError> {
    check_runs(runs)?;
    let tmp = tempfile::tempdir().map_err(io_err("creating a scratch project"))?;
    let (one, many) = (
        scratch(project, &tmp.path().join("one"), 1)?,
        scratch(project, &tmp.path().join("many"), n)?,
    );
    let mut out = Vec::new();
    for request in &opts.kernels {
        let single = SuiteOptions {
            kernels: vec![request.clone()],
            ..opts.clone()
        };
        let label = match request {
            KernelRequest::Line(l) => l.to_string(),
            KernelRequest::Host => "host".into(),
            KernelRequest::Image(p) => p.display().to_string(),
        };
        events.event(Event::Measuring {
            what: format!("{label}: {runs} runs with 1 case and with {n}"),
        });
        let time = |p: &Project| -> Result<Duration, BenchError> {
            let start = Instant::now();
            let judgement = harness_suite::test(p, &single, &Silent, interrupt)?;
            let elapsed = start.elapsed();
            if judgement
                .kernels
                .iter()
                .any(|k| k.error.is_some() || k.failed > 0)
            {
                return Err(BenchError::RunFailed(harness_report::test_report(
                    &judgement,
                )));
            }
            Ok(elapsed)
        };
        // Warm caches (objects, runner, kernel image) before measuring.
        time(&one)?;
        time(&many)?;
        let (mut base, mut loaded) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            base.push(time(&one)?);
            loaded.push(time(&many)?);
        }
        out.push(CasesBench {
            label,
            cases: n,
            baseline: median(&base),
            loaded: median(&loaded),
        });
    }
    Ok(out)
}
