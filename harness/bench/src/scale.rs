//! `bench scale`: how a run's time grows with its work: packet cases and
//! programs (1, 10, 100, 1000 by default) on the host and in a VM, and
//! kernels (1 to 5) in one matrix. Each series is timed from the start of
//! the command to its judgement, warm (objects compiled, runner built,
//! images cached), so the time at 1 is the constant and the slope between
//! points the cost of one more unit.

use std::{
    sync::{Arc, atomic::AtomicBool},
    time::{Duration, Instant},
};

use harness_events::{Event, EventSink, Silent};
use harness_kernels::KernelRequest;
use harness_project::Project;
use harness_protocol::ExecTimings;
use harness_suite::{SuiteOptions, VerifyOptions};

use crate::{BenchError, ScratchFile, check_runs, io_err, median};

/// One series: the time at each count.
#[derive(Clone, Debug)]
pub struct Series {
    /// What grows, and where (`cases on host`).
    pub what: String,
    /// The unit, singular (`case`).
    pub unit: &'static str,
    pub points: Vec<Point>,
}

#[derive(Clone, Debug)]
pub struct Point {
    pub n: usize,
    /// Wall time, median over the runs.
    pub time: Duration,
    /// For kernels: the sum of each kernel's own time (the CPU-serial
    /// cost), median over the runs.
    pub serial: Option<Duration>,
    /// For programs: the time the verifier itself reported (its
    /// `verification time`), summed over the programs; the rest of the
    /// time is loading, JIT, logs, records, the channel and judging.
    pub verifier: Option<Duration>,
    /// For programs: where the kernel's time went, from the run whose
    /// time was the median.
    pub split: Option<RunSplit>,
}

/// One kernel's part of a run.
#[derive(Clone, Copy, Debug)]
pub struct RunSplit {
    /// The kernel's whole run (a VM: from QEMU's start to its exit).
    pub kernel: Duration,
    /// A VM's boot (to the runner's first record).
    pub boot: Option<Duration>,
    /// The executor's phases, on its own clock (the guest's in a VM).
    pub exec: ExecTimings,
}

impl Series {
    /// Seconds per unit between each point and the one before.
    pub fn slopes(&self) -> Vec<Option<f64>> {
        let mut out = vec![None];
        for w in self.points.windows(2) {
            let dn = w[1].n.saturating_sub(w[0].n) as f64;
            out.push((dn > 0.0).then(|| (w[1].time.as_secs_f64() - w[0].time.as_secs_f64()) / dn));
        }
        out
    }

    /// Whether the cost of a unit grows with the count: what the last
    /// point adds over the first is more than twice what the point before
    /// it adds, scaled by their counts (linear: equal; quadratic: ~10x
    /// from 100 to 1000). Additions under 20 ms are noise, not a trend.
    pub fn worse_than_linear(&self) -> bool {
        let [first, .., a, b] = self.points.as_slice() else {
            return false;
        };
        let added = |p: &Point| p.time.as_secs_f64() - first.time.as_secs_f64();
        let (na, nb) = ((a.n - first.n) as f64, (b.n - first.n) as f64);
        added(a) > 0.02 && na > 0.0 && added(b) > 2.0 * added(a) * nb / na
    }
}

/// What one more unit costs from the first point to the last, by phase
/// (seconds per unit). The executor's phases are on its own clock; the
/// rest of `total` is outside it: the VM's boot and what it does before
/// and after the executor, preparing and judging on the host.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct UnitCost {
    pub total: f64,
    /// On the host, outside the kernel's run: preparing, judging.
    pub host: f64,
    /// A VM's boot (the initramfs grows with the objects).
    pub boot: f64,
    /// In the VM outside the executor: the plan read, power-off, the
    /// stream drained.
    pub vm_rest: f64,
    /// The executor from start to end.
    pub exec: f64,
    pub parse: f64,
    /// libbpf's load, the verifier's time included.
    pub load: f64,
    /// The verifier's own time (part of `load`).
    pub verifier: f64,
    pub report: f64,
    pub cases: f64,
    pub emit: f64,
}

impl Series {
    /// Per-unit cost by phase, when the first and last points have the
    /// executor's timings.
    pub fn unit_cost(&self) -> Option<UnitCost> {
        let (a, b) = (self.points.first()?, self.points.last()?);
        let (sa, sb) = (a.split?, b.split?);
        let (ea, eb) = (sa.exec, sb.exec);
        let dn = b.n.checked_sub(a.n).filter(|&d| d > 0)? as f64;
        let per = |x: u64, y: u64| (y as f64 - x as f64) / 1e9 / dn;
        let per_d = |x: Duration, y: Duration| (y.as_secs_f64() - x.as_secs_f64()) / dn;
        let secs = |d: Option<Duration>| d.map_or(0.0, |d| d.as_secs_f64());
        let exec = per(ea.total_ns, eb.total_ns);
        let boot = (secs(sb.boot) - secs(sa.boot)) / dn;
        let kernel = per_d(sa.kernel, sb.kernel);
        let total = per_d(a.time, b.time);
        Some(UnitCost {
            total,
            host: total - kernel,
            boot,
            vm_rest: if sa.boot.is_some() {
                kernel - boot - exec
            } else {
                0.0
            },
            exec,
            parse: per(ea.parse_ns, eb.parse_ns),
            load: per(ea.load_ns, eb.load_ns),
            verifier: (secs(b.verifier) - secs(a.verifier)) / dn,
            report: per(ea.report_ns, eb.report_ns),
            cases: per(ea.cases_ns, eb.cases_ns),
            emit: per(ea.emit_ns, eb.emit_ns),
        })
    }
}

/// `n` small XDP programs sharing one map, each different (its own
/// constant), in one source.
pub fn generated_programs(n: usize) -> String {
    let mut s = String::from(
        "#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\n\n\
         struct {\n\t__uint(type, BPF_MAP_TYPE_ARRAY);\n\t__uint(max_entries, 1);\n\
         \t__type(key, __u32);\n\t__type(value, __u64);\n} hits SEC(\".maps\");\n",
    );
    for i in 0..n {
        s.push_str(&format!(
            "\nSEC(\"xdp\")\nint prog_{i}(struct xdp_md *ctx)\n{{\n\t__u32 key = 0;\n\
             \t__u64 *v = bpf_map_lookup_elem(&hits, &key);\n\n\tif (v)\n\t\t*v += {i};\n\
             \treturn ctx->data_end - ctx->data > {} ? XDP_PASS : XDP_DROP;\n}}\n",
            i % 64
        ));
    }
    s.push_str("\nchar LICENSE[] SEC(\"license\") = \"GPL\";\n");
    s
}

const ONE_CASE: &str = "object = \"progs\"\nprogram = \"prog_0\"\n\n[[case]]\nname = \"passes\"\n\
    packet.ipv4 = { src = \"10.0.0.1\", dst = \"10.0.0.2\" }\npacket.udp = { src = 1, dst = 2 }\n\
    expect.return = \"XDP_PASS\"\n";

fn programs_project(
    project: &Project,
    root: &std::path::Path,
    n: usize,
) -> Result<Project, BenchError> {
    let source = generated_programs(n);
    crate::scratch_project(
        project,
        root,
        &[("progs.bpf.c", ScratchFile::Text(&source))],
        ONE_CASE,
    )
}

/// What `bench scale` measures.
pub struct ScaleOptions {
    /// Counts of cases and programs (ascending).
    pub counts: Vec<usize>,
    /// Where cases and programs are measured (`host`, a VM kernel).
    pub places: Vec<KernelRequest>,
    /// The kernels of the matrix series, added one at a time.
    pub matrix: Vec<KernelRequest>,
    pub runs: usize,
}

pub fn scale(
    project: &Project,
    opts: &SuiteOptions,
    scale: &ScaleOptions,
    events: &dyn EventSink,
    interrupt: &Arc<AtomicBool>,
) -> Result<Vec<Series>, BenchError> {
    check_runs(scale.runs)?;
    if scale.counts.is_empty() || scale.counts.contains(&0) {
        return Err(BenchError::Nonsense(
            "--counts must be whole numbers of at least 1".into(),
        ));
    }
    if scale.counts.windows(2).any(|w| w[0] >= w[1]) {
        return Err(BenchError::Nonsense(
            "--counts must be in ascending order without repeats".into(),
        ));
    }
    let tmp = tempfile::tempdir().map_err(io_err("creating scratch projects"))?;
    let mut out = Vec::new();
    for place in &scale.places {
        let on = SuiteOptions {
            kernels: vec![place.clone()],
            ..opts.clone()
        };
        let label = label(place);
        for (what, unit) in [("cases", "case"), ("programs", "program")] {
            events.event(Event::Measuring {
                what: format!(
                    "{what} on {label}: {:?}, {} runs each",
                    scale.counts, scale.runs
                ),
            });
            let mut points = Vec::new();
            for &n in &scale.counts {
                let root = tmp.path().join(format!("{what}-{n}"));
                let runs = if what == "cases" {
                    let p = crate::cases::scratch(project, &root, n)?;
                    measure(scale.runs, || test_once(&p, &on, interrupt))?
                } else {
                    let p = programs_project(project, &root, n)?;
                    measure(scale.runs, || verify_once(&p, &on, n, interrupt))?
                };
                let time = median(&runs.iter().map(|r| r.took).collect::<Vec<_>>());
                let verifier = runs
                    .iter()
                    .map(|r| r.verifier)
                    .collect::<Option<Vec<_>>>()
                    .map(|v| median(&v));
                // The phases of the run whose time was the median.
                let split = runs
                    .iter()
                    .min_by_key(|r| r.took.abs_diff(time))
                    .and_then(|r| r.split);
                points.push(Point {
                    n,
                    time,
                    serial: None,
                    verifier,
                    split,
                });
            }
            out.push(Series {
                what: format!("{what} on {label}"),
                unit,
                points,
            });
        }
    }
    if !scale.matrix.is_empty() {
        let p = crate::cases::scratch(project, &tmp.path().join("matrix"), 1)?;
        let mut points = Vec::new();
        events.event(Event::Measuring {
            what: format!(
                "kernels in one matrix: 1 to {}, {} runs each",
                scale.matrix.len(),
                scale.runs
            ),
        });
        for k in 1..=scale.matrix.len() {
            let on = SuiteOptions {
                kernels: scale.matrix[..k].to_vec(),
                ..opts.clone()
            };
            let mut walls = Vec::new();
            let mut serials = Vec::new();
            // Warm (and the last run's timings, which schedule the next).
            matrix_once(&p, &on, interrupt)?;
            for _ in 0..scale.runs {
                let (wall, serial) = matrix_once(&p, &on, interrupt)?;
                walls.push(wall);
                serials.push(serial);
            }
            points.push(Point {
                n: k,
                time: median(&walls),
                serial: Some(median(&serials)),
                verifier: None,
                split: None,
            });
        }
        out.push(Series {
            what: format!(
                "kernels ({})",
                scale
                    .matrix
                    .iter()
                    .map(label)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            unit: "kernel",
            points,
        });
    }
    Ok(out)
}

fn label(k: &KernelRequest) -> String {
    match k {
        KernelRequest::Line(l) => l.to_string(),
        KernelRequest::Host => "host".into(),
        KernelRequest::Image(p) => p.display().to_string(),
    }
}

/// `runs` runs of `f`, after one to warm up.
fn measure(
    runs: usize,
    mut f: impl FnMut() -> Result<Measured, BenchError>,
) -> Result<Vec<Measured>, BenchError> {
    f()?;
    (0..runs).map(|_| f()).collect()
}

/// One run of a cases or programs series.
struct Measured {
    took: Duration,
    /// The verifier's own time, summed over the programs (`verify` only).
    verifier: Option<Duration>,
    split: Option<RunSplit>,
}

/// A `test` run on one kernel.
fn test_once(
    p: &Project,
    opts: &SuiteOptions,
    interrupt: &Arc<AtomicBool>,
) -> Result<Measured, BenchError> {
    let start = Instant::now();
    let j = harness_suite::test(p, opts, &Silent, interrupt)?;
    let took = start.elapsed();
    check_test(&j)?;
    Ok(Measured {
        took,
        verifier: None,
        split: j.kernels.first().and_then(|k| {
            Some(RunSplit {
                kernel: k.total,
                boot: k.boot,
                exec: k.exec?,
            })
        }),
    })
}

fn check_test(j: &harness_judge::TestJudgement) -> Result<(), BenchError> {
    if j.kernels.iter().any(|k| k.error.is_some() || k.failed > 0) {
        return Err(BenchError::RunFailed(harness_report::test_report(j)));
    }
    Ok(())
}

/// A `test` run: its wall time and the sum of its kernels' own times.
fn matrix_once(
    p: &Project,
    opts: &SuiteOptions,
    interrupt: &Arc<AtomicBool>,
) -> Result<(Duration, Duration), BenchError> {
    let start = Instant::now();
    let j = harness_suite::test(p, opts, &Silent, interrupt)?;
    let wall = start.elapsed();
    check_test(&j)?;
    Ok((wall, j.kernels.iter().map(|k| k.total).sum()))
}

/// A `verify` run: its wall time, the verifier's own time and the
/// executor's phases.
fn verify_once(
    p: &Project,
    opts: &SuiteOptions,
    n: usize,
    interrupt: &Arc<AtomicBool>,
) -> Result<Measured, BenchError> {
    let start = Instant::now();
    let (j, runs) =
        harness_suite::verify_keeping_runs(p, opts, &VerifyOptions::default(), &Silent, interrupt)?;
    let took = start.elapsed();
    let accepted = j
        .rows
        .iter()
        .filter(|r| r.verdict == harness_judge::VerdictKind::Accepted)
        .count();
    if accepted != n * opts.kernels.len() {
        return Err(BenchError::RunFailed(harness_report::verify_report(&j)));
    }
    let verifier = j.rows.iter().filter_map(|r| r.duration_us).sum();
    Ok(Measured {
        took,
        verifier: Some(Duration::from_micros(verifier)),
        split: runs.first().and_then(|r| {
            Some(RunSplit {
                kernel: r.total_time,
                boot: r.boot_time,
                exec: r.exec_timings()?,
            })
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(points: &[(usize, u64)]) -> Series {
        Series {
            what: "cases on host".into(),
            unit: "case",
            points: points
                .iter()
                .map(|&(n, ms)| Point {
                    n,
                    time: Duration::from_millis(ms),
                    serial: None,
                    verifier: None,
                    split: None,
                })
                .collect(),
        }
    }

    #[test]
    fn slopes_are_per_unit_and_superlinear_growth_is_named() {
        let linear = series(&[(1, 500), (10, 509), (100, 599), (1000, 1499)]);
        let slopes = linear.slopes();
        assert_eq!(slopes[0], None);
        assert!((slopes[1].unwrap() - 0.001).abs() < 1e-9);
        assert!((slopes[3].unwrap() - 0.001).abs() < 1e-9);
        assert!(!linear.worse_than_linear());
        // 1000 costs 10 ms a unit where 100 cost 1 ms: quadratic.
        let quadratic = series(&[(1, 500), (10, 509), (100, 599), (1000, 9599)]);
        assert!(quadratic.worse_than_linear());
        // Twice the linear cost is still not "worse" (noise, caches)...
        let twice = series(&[(1, 500), (100, 600), (1000, 2500)]);
        assert!(!twice.worse_than_linear());
        // ...a little more is.
        let more = series(&[(1, 500), (100, 600), (1000, 2800)]);
        assert!(more.worse_than_linear());
        // A first step that went down (noise) is no trend; nor are
        // additions under 20 ms.
        let noisy = series(&[(1, 2310), (10, 2290), (100, 2390), (1000, 3040)]);
        assert!(!noisy.worse_than_linear());
        let flat = series(&[(1, 500), (10, 500), (100, 501), (1000, 600)]);
        assert!(!flat.worse_than_linear());
        assert!(!series(&[(1, 500), (1000, 9000)]).worse_than_linear());
    }

    #[test]
    fn a_units_cost_is_split_between_the_executor_the_vm_and_the_host() {
        let point = |n: usize, ms: u64, kernel_ms: u64, boot_ms: u64, exec_ms: u64| Point {
            n,
            time: Duration::from_millis(ms),
            serial: None,
            verifier: Some(Duration::from_micros(n as u64 * 200)),
            split: Some(RunSplit {
                kernel: Duration::from_millis(kernel_ms),
                boot: Some(Duration::from_millis(boot_ms)),
                exec: ExecTimings {
                    parse_ns: n as u64 * 10_000,
                    load_ns: n as u64 * 600_000,
                    report_ns: n as u64 * 20_000,
                    cases_ns: n as u64 * 5_000,
                    emit_ns: n as u64 * 100_000,
                    total_ns: exec_ms * 1_000_000,
                    ..ExecTimings::default()
                },
            }),
        };
        let s = Series {
            what: "programs on 6.1".into(),
            unit: "program",
            // 1 -> 1001: 1000 more programs add 1 s, 0.9 s of it in the
            // kernel's run (0.1 s boot, 0.75 s executor), 0.1 s on the host.
            points: vec![
                point(1, 2_000, 1_900, 1_500, 1),
                point(1001, 3_000, 2_800, 1_600, 751),
            ],
        };
        let c = s.unit_cost().unwrap();
        let near = |a: f64, b: f64| (a - b).abs() < 1e-9;
        assert!(near(c.total, 1e-3), "{c:?}");
        assert!(near(c.host, 1e-4), "{c:?}");
        assert!(near(c.boot, 1e-4), "{c:?}");
        assert!(near(c.exec, 7.5e-4), "{c:?}");
        assert!(near(c.vm_rest, 5e-5), "{c:?}");
        assert!(near(c.load, 6e-4) && near(c.verifier, 2e-4), "{c:?}");
        assert!(near(c.parse, 1e-5) && near(c.report, 2e-5) && near(c.emit, 1e-4));
        assert!(near(c.cases, 5e-6), "{c:?}");
        // Without the executor's timings there is nothing to split.
        let mut bare = s.clone();
        bare.points[0].split = None;
        assert!(bare.unit_cost().is_none());
    }

    #[test]
    fn generated_programs_are_distinct_and_complete() {
        let s = generated_programs(3);
        for i in 0..3 {
            assert!(s.contains(&format!("int prog_{i}(struct xdp_md *ctx)")));
        }
        assert!(s.contains("LICENSE"));
    }
}
