use std::{
    process::ExitCode,
    sync::{Arc, atomic::AtomicBool},
    time::Duration,
};

use harness_bench::median;
use harness_suite::SuiteOptions;
use harness_vm::AccelChoice;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Harness time from start to results vs the floor (busybox init, 512 MiB) and a bare boot with the harness's settings, and where the harness's time goes (target: <= 1.10x the floor).
    Boot {
        /// Kernels to measure (Debian lines or bzImage paths).
        #[arg(long, short, default_value = "5.10,6.1,6.12,7.2")]
        kernel: String,
        /// Runs of each kind per kernel (medians are reported).
        #[arg(long, default_value_t = 5, value_parser = ebpf_harness::run::at_least_one)]
        runs: usize,
        #[arg(long, default_value = "auto", env = "HARNESS_ACCEL")]
        accel: AccelChoice,
    },
    /// Time that N generated packet cases add to one run, on the host and in a VM (target: <= 1 s per 1000 on the host).
    Cases {
        /// Where to measure: `host` (root) and/or kernel lines.
        #[arg(long, short, default_value = "host,6.1")]
        kernel: String,
        #[arg(long, default_value_t = 1000, value_parser = ebpf_harness::run::at_least_one)]
        cases: usize,
        /// Runs of each kind (medians are reported).
        #[arg(long, default_value_t = 3, value_parser = ebpf_harness::run::at_least_one)]
        runs: usize,
        #[arg(long, default_value = "auto", env = "HARNESS_ACCEL")]
        accel: AccelChoice,
    },
    /// Time per live case in a VM (attach, action, collect, detach) and ring-buffer events decoded per second under a burst, none lost.
    Events {
        #[arg(long, short, default_value = "6.12")]
        kernel: String,
        /// Live cases in the larger run (the per-case time is the difference over N-1).
        #[arg(long, default_value_t = 20)]
        cases: usize,
        /// Events one crafted run emits.
        #[arg(long, default_value_t = 100_000)]
        burst: u64,
        #[arg(long, default_value_t = 3, value_parser = ebpf_harness::run::at_least_one)]
        runs: usize,
        #[arg(long, default_value = "auto", env = "HARNESS_ACCEL")]
        accel: AccelChoice,
    },
    /// Time to diagnose one rejection from its log, over real logs (target: median <= 10 ms), and per kernel the share with a named cause and a C line.
    Explain {
        /// Logs laid out as <case>/<kernel>.log beside <case>/prog.bpf.c [default: harness/diagnose/testdata].
        #[arg(long)]
        logs: Option<std::path::PathBuf>,
        /// Where a case's C source is when it is not <case>/prog.bpf.c: <DIR>/<case>.bpf.c [default: sample-programs/rejected].
        #[arg(long)]
        sources: Option<std::path::PathBuf>,
        /// Runs per log (medians are reported).
        #[arg(long, default_value_t = 20, value_parser = ebpf_harness::run::at_least_one)]
        runs: usize,
    },
    /// How time grows with the work: 1..1000 cases and programs on the host and in a VM, 1..5 kernels in one matrix; per-unit slopes, and the matrix against the sum of its kernels (target: <= 0.6x on 2 cores).
    Scale {
        /// How many cases and programs, ascending, comma-separated.
        #[arg(long, default_value = "1,10,100,1000", value_delimiter = ',')]
        counts: Vec<usize>,
        /// Where cases and programs are measured.
        #[arg(long, default_value = "host,6.1")]
        places: String,
        /// The kernels of the matrix series, added one at a time ("" to skip it).
        #[arg(long, default_value = "5.10,6.1,6.12,7.2,7.3")]
        matrix: String,
        /// Runs per point (medians are reported).
        #[arg(long, default_value_t = 3, value_parser = ebpf_harness::run::at_least_one)]
        runs: usize,
        #[arg(long, default_value = "auto", env = "HARNESS_ACCEL")]
        accel: AccelChoice,
    },
    /// Time to verify every sample object on the host kernel (root), against veristat on the same objects (target: <= 1.2x).
    Verify {
        #[arg(long, default_value_t = 5, value_parser = ebpf_harness::run::at_least_one)]
        runs: usize,
        /// veristat binary (or wrapper) to compare with [default: `veristat` on PATH, and the chroot of `setup --veristat` when it is installed].
        #[arg(long)]
        veristat: Option<std::path::PathBuf>,
        /// Also compare with veristat in the Debian 13 chroot of `cargo xtask setup --veristat` (an error when it is not installed).
        #[arg(long)]
        veristat_chroot: bool,
        /// Verify every object this many times (copies under new names, given by path), for hundreds of programs.
        #[arg(long, default_value_t = 1, value_parser = ebpf_harness::run::at_least_one)]
        copies: usize,
    },
}

fn on_path(cmd: &str) -> Option<std::path::PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(cmd))
        .find(|p| p.is_file())
}

/// The veristats to compare with: `--veristat PATH` (else `veristat` on
/// PATH), and the chroot's wrapper when asked for or installed.
fn veristats(
    given: Option<std::path::PathBuf>,
    chroot: bool,
) -> anyhow::Result<Vec<harness_bench::Veristat>> {
    let mut out = Vec::new();
    let explicit = given.is_some();
    if let Some(path) = given.or_else(|| on_path("veristat")) {
        out.push(harness_bench::Veristat {
            label: "veristat".into(),
            path,
        });
    }
    let cached = harness_setup::VeristatChroot::in_default_cache();
    match cached.ready() {
        Some(wrapper) if !out.iter().any(|v| v.path == wrapper) && (chroot || !explicit) => {
            out.push(harness_bench::Veristat {
                label: format!("veristat ({})", harness_setup::VERISTAT_SUITE),
                path: wrapper,
            });
        }
        Some(_) => {}
        None if chroot => anyhow::bail!(
            "no veristat chroot in {}: make it with `cargo xtask setup --veristat` (as root)",
            cached.dir.display()
        ),
        None => {}
    }
    Ok(out)
}

fn options(kernel: &str, accel: AccelChoice) -> anyhow::Result<SuiteOptions> {
    Ok(SuiteOptions {
        kernels: harness_kernels::parse_kernel_list(kernel)?,
        mirror: None,
        log_level: 1,
        // Measuring must not write pending snapshots.
        snapshots: harness_snapshots::UpdateMode::No,
        run: harness_matrix::RunOptions {
            timeout: Duration::from_secs(600),
            accel,
            ..harness_matrix::RunOptions::default()
        },
    })
}

pub fn run(
    cmd: Command,
    at: &ebpf_harness::ProjectAt,
    interrupt: &Arc<AtomicBool>,
) -> anyhow::Result<ExitCode> {
    let project = at.project()?;
    let status = harness_report::Status::new();
    match cmd {
        Command::Boot {
            kernel,
            runs,
            accel,
        } => {
            let results = harness_bench::boot(
                &project,
                &options(&kernel, accel)?,
                runs,
                &status,
                interrupt,
            )?;
            println!(
                "{:<8} {:>8} {:>8} {:>9} {:>8} {:>8}   {:>8} {:>8} {:>8} {:>8}   (medians of {runs})",
                "kernel",
                "floor",
                "bare",
                "harness",
                "/floor",
                "/bare",
                "before",
                "boot",
                "plan",
                "after"
            );
            for b in &results {
                let s = |d: Duration| format!("{:.2}s", d.as_secs_f64());
                let p = b.median_phases();
                println!(
                    "{:<8} {:>8} {:>8} {:>9} {:>7.2}x {:>7.2}x   {:>8} {:>8} {:>8} {:>8}",
                    b.label,
                    s(median(&b.floor)),
                    s(median(&b.bare)),
                    s(median(&b.harness)),
                    b.floor_ratio(),
                    b.ratio(),
                    s(p.before),
                    s(p.boot),
                    s(p.plan),
                    s(p.after),
                );
                let ms = |d: Duration| format!("{:.0} ms", d.as_secs_f64() * 1e3);
                println!(
                    "{:<8} the plan: the executor {} (probes {}, parse {}, libbpf loads {}, cases {}, records sent {}); reading the plan, powering off and QEMU's exit {}",
                    "",
                    ms(p.executor),
                    ms(p.probes),
                    ms(p.parse),
                    ms(p.load),
                    ms(p.cases),
                    ms(p.sent),
                    ms(p.plan.saturating_sub(p.executor)),
                );
            }
            println!(
                "target: harness <= 1.10x the floor (busybox init, 512 MiB, no extra devices); \
                 bare: the harness's own QEMU settings and initramfs, init powering off at once. \
                 Phases of the harness run: before the VM starts (compile and runner checks, \
                 kernel resolution, initramfs), the guest's boot, the plan, after (judging, snapshots, outputs)"
            );
        }
        Command::Scale {
            counts,
            places,
            matrix,
            runs,
            accel,
        } => {
            let scale = harness_bench::ScaleOptions {
                counts,
                places: harness_kernels::parse_kernel_list(&places)?,
                matrix: if matrix.is_empty() {
                    Vec::new()
                } else {
                    harness_kernels::parse_kernel_list(&matrix)?
                },
                runs,
            };
            let series = harness_bench::scale(
                &project,
                &options(&places, accel)?,
                &scale,
                &status,
                interrupt,
            )?;
            print_scale(&series, runs);
        }
        Command::Cases {
            kernel,
            cases,
            runs,
            accel,
        } => {
            let results = harness_bench::cases(
                &project,
                &options(&kernel, accel)?,
                cases,
                runs,
                &status,
                interrupt,
            )?;
            println!(
                "{:<8} {:>10} {:>12} {:>10} {:>12}   (medians of {runs})",
                "kernel",
                "1 case",
                format!("{cases} cases"),
                "added",
                "per case"
            );
            for b in &results {
                let added = b.added().as_secs_f64();
                println!(
                    "{:<8} {:>9.2}s {:>11.2}s {:>9.3}s {:>9.1} µs",
                    b.label,
                    b.baseline.as_secs_f64(),
                    b.loaded.as_secs_f64(),
                    added,
                    added * 1e6 / b.cases as f64
                );
            }
            println!("target: <= 1 s added per 1000 cases on the host");
        }
        Command::Events {
            kernel,
            cases,
            burst,
            runs,
            accel,
        } => {
            let results = harness_bench::events(
                &project,
                &options(&kernel, accel)?,
                cases,
                burst,
                runs,
                &status,
                interrupt,
            )?;
            println!(
                "{:<8} {:>10} {:>12} {:>10} {:>12} {:>12} {:>14}   (medians of {runs})",
                "kernel",
                "1 case",
                format!("{cases} cases"),
                "per case",
                "0 events",
                format!("{burst} events"),
                "events/s"
            );
            for b in &results {
                println!(
                    "{:<8} {:>9.2}s {:>11.2}s {:>8.0} ms {:>11.2}s {:>11.2}s {:>14.0}",
                    b.label,
                    b.one_case.as_secs_f64(),
                    b.many_cases.as_secs_f64(),
                    b.per_case().as_secs_f64() * 1e3,
                    b.no_burst.as_secs_f64(),
                    b.with_burst.as_secs_f64(),
                    b.events_per_second()
                );
            }
            println!(
                "every event of each burst was decoded and none dropped (the run fails otherwise); \
                 anchor: the 1-case run is a boot plus one live case"
            );
        }
        Command::Explain {
            logs,
            sources,
            runs,
        } => {
            let dir = logs.unwrap_or_else(|| project.root.join("harness/diagnose/testdata"));
            let sources = sources.unwrap_or_else(|| project.root.join("sample-programs/rejected"));
            let b = harness_bench::explain(&dir, &sources, runs)?;
            println!(
                "{:<12} {:>5} {:>9} {:>12} {:>10} {:>10} {:>10}   (medians of {runs})",
                "kernel", "logs", "rejected", "named cause", "C line", "median", "max"
            );
            let pct = |n: usize, of: usize| {
                if of == 0 {
                    "-".to_owned()
                } else {
                    format!("{:.0}%", 100.0 * n as f64 / of as f64)
                }
            };
            let ms = |d: Duration| format!("{:.2} ms", d.as_secs_f64() * 1e3);
            for (kernel, k) in &b.kernels {
                println!(
                    "{:<12} {:>5} {:>9} {:>12} {:>10} {:>10} {:>10}",
                    kernel,
                    k.logs,
                    k.rejected,
                    pct(k.named, k.rejected),
                    pct(k.with_line, k.rejected),
                    ms(median(&k.times)),
                    ms(k.times.iter().max().copied().unwrap_or_default()),
                );
            }
            let all = b.all_times();
            println!(
                "all: {} rejections, median {}, max {} (target: median <= 10 ms; BPFix reports 27 ms)",
                all.len(),
                ms(median(&all)),
                ms(all.iter().max().copied().unwrap_or_default())
            );
        }
        Command::Verify {
            runs,
            veristat,
            veristat_chroot,
            copies,
        } => {
            let veristats = veristats(veristat, veristat_chroot)?;
            let b = harness_bench::verify(&project, runs, copies, &veristats, &status, interrupt)?;
            println!(
                "host: {} programs in {} objects (medians of {runs})",
                b.programs, b.objects
            );
            println!(
                "{:<20} {:>10} {:>12} {:>8}   {:>10} {:>12}",
                "verifier", "time", "programs/s", "ratio", "start-up", "net prog/s"
            );
            let row = |label: &str, took: Duration, startup: Option<Duration>| {
                let mut line = format!(
                    "{:<20} {:>7.1} ms {:>12.0} {:>7.2}x",
                    label,
                    took.as_secs_f64() * 1e3,
                    harness_bench::per_second(b.programs, took),
                    b.harness.as_secs_f64() / took.as_secs_f64()
                );
                if let Some(s) = startup {
                    line += &format!(
                        "   {:>7.1} ms {:>12.0}",
                        s.as_secs_f64() * 1e3,
                        harness_bench::per_second(b.programs, took.saturating_sub(s))
                    );
                }
                println!("{line}");
            };
            row("harness", b.harness, None);
            for v in &b.veristat {
                row(&v.veristat.label, v.total, Some(v.startup));
            }
            if b.veristat.is_empty() {
                println!(
                    "no veristat to compare with: pass --veristat PATH, put veristat on PATH, \
                     or install it with `cargo xtask setup --veristat`"
                );
            } else {
                println!(
                    "ratio: harness time / veristat time (target <= 1.2x); start-up: \
                     `veristat --version` (for the chroot: entering it); net prog/s: without the start-up"
                );
                for v in &b.veristat {
                    println!(
                        "verdicts against {}: {} programs compared, {} differ",
                        v.veristat.label,
                        v.compared,
                        v.differences.len()
                    );
                    for d in &v.differences {
                        println!(
                            "  {}/{}: harness {}, veristat {}",
                            d.file,
                            d.program,
                            d.harness,
                            if d.veristat_accepted {
                                "success"
                            } else {
                                "failure"
                            }
                        );
                    }
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_scale(series: &[harness_bench::Series], runs: usize) {
    println!("(medians of {runs}; slope: the cost of one more unit since the point before)");
    for s in series {
        println!("\n{}", s.what);
        let matrix = s.points.iter().any(|p| p.serial.is_some());
        if matrix {
            println!(
                "{:>6} {:>10} {:>14} {:>12} {:>16}",
                s.unit.to_owned() + "s",
                "wall",
                "slope",
                "serial sum",
                "wall/serial"
            );
        } else {
            println!(
                "{:>6} {:>10} {:>14}",
                s.unit.to_owned() + "s",
                "time",
                "slope"
            );
        }
        for (p, slope) in s.points.iter().zip(s.slopes()) {
            let slope = slope.map_or_else(
                || "-".to_owned(),
                |v| format!("{:.2} ms/{}", v * 1e3, s.unit),
            );
            let mut line = format!("{:>6} {:>9.2}s {:>14}", p.n, p.time.as_secs_f64(), slope);
            if let Some(v) = p.verifier {
                line += &format!(
                    "   verifier {:.2} ms/{}",
                    v.as_secs_f64() * 1e3 / p.n as f64,
                    s.unit
                );
            }
            if let Some(serial) = p.serial {
                line += &format!(
                    " {:>11.2}s {:>15.2}x",
                    serial.as_secs_f64(),
                    p.time.as_secs_f64() / serial.as_secs_f64().max(1e-9)
                );
            }
            println!("{line}");
        }
        let first = s.points.first().map_or(0.0, |p| p.time.as_secs_f64());
        println!(
            "constant (the time at {}): {first:.2}s; {}",
            s.points.first().map_or(0, |p| p.n),
            if s.worse_than_linear() {
                "GROWS WORSE THAN LINEARLY"
            } else {
                "linear or better"
            }
        );
        if let Some(c) = s.unit_cost() {
            let ms = |v: f64| format!("{:.3}", v * 1e3);
            let work = if s.unit == "case" {
                format!("cases {}", ms(c.cases))
            } else {
                format!(
                    "parse {}, libbpf load {} of which the verifier {}, report {}",
                    ms(c.parse),
                    ms(c.load),
                    ms(c.verifier),
                    ms(c.report)
                )
            };
            println!(
                "one more {} costs {} ms: the executor {} ({work}, records sent {}){}, the host outside the kernel's run {} (prepare, judge, outputs)",
                s.unit,
                ms(c.total),
                ms(c.exec),
                ms(c.emit),
                if s.what.ends_with(" host") {
                    String::new()
                } else {
                    format!(
                        ", the VM's boot {}, the VM outside the executor {}",
                        ms(c.boot),
                        ms(c.vm_rest)
                    )
                },
                ms(c.host),
            );
        }
        if matrix {
            println!(
                "target: wall/serial <= 0.60x with 4-5 kernels on 2 cores (the kernels start costliest first)"
            );
        }
    }
    let host = series
        .iter()
        .find(|s| s.what == "programs on host")
        .and_then(harness_bench::Series::unit_cost);
    for s in series
        .iter()
        .filter(|s| s.what.starts_with("programs on ") && s.what != "programs on host")
    {
        if let (Some(vm), Some(host)) = (s.unit_cost(), host) {
            println!(
                "\n{}: {:.3} ms/program against the host's {:.3}: {:.2}x (target: <= 1.5x); the executor alone {:.2}x, \
                 libbpf's load alone {:.2}x, the verifier alone {:.2}x (the kernel's own work, as fast as the CPU it runs on); \
                 the harness's own work in the guest (parse, report, records sent) {:.3} ms/program",
                s.what,
                vm.total * 1e3,
                host.total * 1e3,
                vm.total / host.total,
                vm.exec / host.exec,
                vm.load / host.load,
                vm.verifier / host.verifier,
                (vm.parse + vm.report + vm.emit) * 1e3,
            );
        }
    }
}
