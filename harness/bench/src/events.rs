//! `bench events`: what a live case costs inside a VM (attach, action,
//! collect, detach, on a fresh copy of its object), and how fast ring-buffer
//! events travel from the kernel to decoded, compared values under a burst.

use std::{
    path::Path,
    sync::{Arc, atomic::AtomicBool},
    time::{Duration, Instant},
};

use harness_events::{Event, EventSink, Silent};
use harness_project::Project;
use harness_suite::SuiteOptions;

use crate::ScratchFile;
use crate::{BenchError, check_runs, io_err, median};

/// A program that emits `args[0]` records per run (bpf_loop, 5.17) into a
/// 32 MiB ring buffer, counting what it sent and what did not fit.
const BURST_SOURCE: &str = r#"// SPDX-License-Identifier: GPL-2.0
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

struct burst_event {
	u64 seq;
	u32 cpu;
	u32 pad;
	char payload[48];
};

const struct burst_event *unused_burst_event __attribute__((unused));

enum stat { SENT, DROPPED, STAT_MAX };

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 32 * 1024 * 1024);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, STAT_MAX);
	__type(key, enum stat);
	__type(value, u64);
} stats SEC(".maps");

static void count(enum stat which)
{
	u64 *n = bpf_map_lookup_elem(&stats, &which);

	if (n)
		*n += 1;
}

static long emit(u64 i, void *ctx)
{
	struct burst_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

	if (!e) {
		count(DROPPED);
		return 0;
	}
	e->seq = i;
	e->cpu = bpf_get_smp_processor_id();
	e->pad = 0;
	__builtin_memset(e->payload, 'x', sizeof(e->payload));
	bpf_ringbuf_submit(e, 0);
	count(SENT);
	return 0;
}

SEC("raw_tp/sys_enter")
int burst(struct bpf_raw_tracepoint_args *ctx)
{
	bpf_loop(ctx->args[0], emit, 0, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
"#;

/// What live cases and event bursts cost on one kernel.
#[derive(Clone, Debug)]
pub struct EventsBench {
    pub label: String,
    pub cases: usize,
    /// A run with one live case, and with `cases` (medians).
    pub one_case: Duration,
    pub many_cases: Duration,
    pub burst: u64,
    /// A run whose one case emits nothing, and one whose case emits
    /// `burst` events that are all decoded and checked (medians).
    pub no_burst: Duration,
    pub with_burst: Duration,
}

impl EventsBench {
    /// Time per live case beyond the first.
    pub fn per_case(&self) -> Duration {
        self.many_cases.saturating_sub(self.one_case) / (self.cases.max(2) as u32 - 1)
    }

    /// Events emitted, read, streamed to the host, decoded and compared
    /// per second.
    pub fn events_per_second(&self) -> f64 {
        let added = self.with_burst.saturating_sub(self.no_burst).as_secs_f64();
        if added <= 0.0 {
            f64::INFINITY
        } else {
            self.burst as f64 / added
        }
    }
}

fn live_cases(n: usize) -> String {
    let mut s = String::from("object = \"exec_monitor\"\nprogram = \"on_exec\"\n");
    for i in 0..n {
        s.push_str(&format!(
            "\n[[case]]\nname = \"exec {i}\"\nsnapshot_maps = false\nevents = {{ map = \"events\", type = \"exec_event\" }}\n\
             steps = [{{ exec = [\"/bin/true\", \"{i}\"], expect.exit = 0 }}]\nexpect.events = [{{ comm = \"true\" }}]\n"
        ));
    }
    s
}

fn burst_case(n: u64) -> String {
    format!(
        "object = \"burst\"\nprogram = \"burst\"\n\n[[case]]\nname = \"burst\"\nevents = {{ map = \"events\", type = \"burst_event\" }}\n\
         steps = [{{ ctx = {{ args = [{n}, 0] }} }}]\nexpect.event_count = {n}\nexpect.maps.stats = [{{ key = \"SENT\", value = {n} }}, {{ key = \"DROPPED\", value = 0 }}]\n"
    )
}

/// A scratch project with one object (copied from the project's security
/// samples, or given as source) and one case file.
fn scratch(
    project: &Project,
    root: &Path,
    object: (&str, Option<&str>),
    cases: &str,
) -> Result<Project, BenchError> {
    let (name, source) = object;
    let copied = format!("security/{name}.bpf.c");
    let file = format!("{name}.bpf.c");
    let from = match source {
        Some(text) => ScratchFile::Text(text),
        None => ScratchFile::Copy(&copied),
    };
    crate::scratch_project(
        project,
        root,
        &[
            ("include/vmlinux.h", ScratchFile::Copy("include/vmlinux.h")),
            (&file, from),
        ],
        cases,
    )
}

/// Measures each of `opts.kernels` (one at a time).
pub fn events(
    project: &Project,
    opts: &SuiteOptions,
    cases: usize,
    burst: u64,
    runs: usize,
    events: &dyn EventSink,
    interrupt: &Arc<AtomicBool>,
) -> Result<Vec<EventsBench>, BenchError> {
    check_runs(runs)?;
    if cases < 2 || burst == 0 {
        return Err(BenchError::Nonsense(
            "--cases must be at least 2 and --burst at least 1".into(),
        ));
    }
    let tmp = tempfile::tempdir().map_err(io_err("creating a scratch project"))?;
    let dir = tmp.path();
    let projects = [
        scratch(
            project,
            &dir.join("one"),
            ("exec_monitor", None),
            &live_cases(1),
        )?,
        scratch(
            project,
            &dir.join("many"),
            ("exec_monitor", None),
            &live_cases(cases),
        )?,
        scratch(
            project,
            &dir.join("quiet"),
            ("burst", Some(BURST_SOURCE)),
            &burst_case(0),
        )?,
        scratch(
            project,
            &dir.join("burst"),
            ("burst", Some(BURST_SOURCE)),
            &burst_case(burst),
        )?,
    ];
    let mut out = Vec::new();
    for request in &opts.kernels {
        let single = SuiteOptions {
            kernels: vec![request.clone()],
            ..opts.clone()
        };
        let label = match request {
            harness_kernels::KernelRequest::Line(l) => l.to_string(),
            harness_kernels::KernelRequest::Host => "host".into(),
            harness_kernels::KernelRequest::Image(p) => p.display().to_string(),
        };
        events.event(Event::Measuring {
            what: format!("{label}: {runs} runs each of 1 and {cases} live cases, and of a burst of 0 and {burst} events"),
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
        for p in &projects {
            time(p)?;
        }
        let mut times: [Vec<Duration>; 4] = Default::default();
        for _ in 0..runs {
            for (p, t) in projects.iter().zip(times.iter_mut()) {
                t.push(time(p)?);
            }
        }
        out.push(EventsBench {
            label,
            cases,
            one_case: median(&times[0]),
            many_cases: median(&times[1]),
            burst,
            no_burst: median(&times[2]),
            with_burst: median(&times[3]),
        });
    }
    Ok(out)
}
