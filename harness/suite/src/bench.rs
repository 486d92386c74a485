//! `bench boot`: what the harness costs on top of booting a kernel.
//!
//! For each kernel, alternately: a bare boot (same QEMU settings, same
//! initramfs, but init powers off at once) and a full harness run on that
//! kernel alone, from the start of `test` to its report. Medians over the
//! runs, and their ratio.

use std::{
    sync::{Arc, atomic::AtomicBool},
    time::{Duration, Instant},
};

use harness_protocol::INIT_MODE_POWEROFF;
use harness_vm::VmConfig;

use crate::{
    Project, SuiteError, Target, TestOptions, prepare, resolve_targets,
    run::{build_runner, decide_accel, write_initramfs},
};

#[derive(Clone, Debug)]
pub struct BootBench {
    pub label: String,
    pub bare: Vec<Duration>,
    pub harness: Vec<Duration>,
}

pub fn median(v: &[Duration]) -> Duration {
    let mut v = v.to_vec();
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

impl BootBench {
    pub fn ratio(&self) -> f64 {
        median(&self.harness).as_secs_f64() / median(&self.bare).as_secs_f64().max(1e-9)
    }
}

/// Runs the benchmark; `opts.kernels` are measured one after another so
/// they do not compete for cores.
pub fn bench_boot(
    project: &Project,
    opts: &TestOptions,
    runs: usize,
    interrupt: Arc<AtomicBool>,
) -> Result<Vec<BootBench>, SuiteError> {
    let prepared = prepare(project, opts.log_level)?;
    let targets = resolve_targets(project, &opts.kernels, opts.mirror.as_deref())?;
    let initramfs = write_initramfs(project, &prepared, &build_runner(project)?)?;
    let mut out = Vec::new();
    for target in &targets {
        let Target::Vm { label, bzimage, .. } = target else {
            continue;
        };
        let accel = decide_accel(opts.accel, bzimage, &initramfs, &opts.run, &interrupt)?;
        let bare_cfg = VmConfig {
            qemu: opts.run.qemu.clone(),
            kernel: bzimage.clone(),
            initramfs: initramfs.to_path_buf(),
            accel,
            memory_mb: opts.run.memory_mb,
            cpus: opts.run.cpus,
            cmdline_extra: Vec::new(),
            init_args: vec![INIT_MODE_POWEROFF.to_owned()],
            timeout: opts.run.timeout,
            interrupt: Some(interrupt.clone()),
            debugcon: true,
        };
        let single = TestOptions {
            kernels: vec![kernel_request(target)],
            ..opts.clone()
        };
        let mut bench = BootBench {
            label: label.clone(),
            bare: Vec::new(),
            harness: Vec::new(),
        };
        crate::ui::status(
            "Measuring",
            &format!("{label}: {runs} bare boots and {runs} harness runs ({accel})"),
        );
        crate::ui::set_quiet(true);
        for _ in 0..runs {
            bench.bare.push(harness_vm::time_boot(&bare_cfg)?);
            let start = Instant::now();
            let report = crate::test(project, &single, interrupt.clone());
            bench.harness.push(start.elapsed());
            if let Err(e) = report {
                crate::ui::set_quiet(false);
                return Err(e);
            }
        }
        crate::ui::set_quiet(false);
        out.push(bench);
    }
    Ok(out)
}

fn kernel_request(target: &Target) -> harness_kernels::KernelRequest {
    match target {
        Target::Vm {
            label,
            bzimage,
            origin,
            ..
        } if origin.starts_with("custom") => {
            let _ = label;
            harness_kernels::KernelRequest::Image(bzimage.clone())
        }
        Target::Vm { label, .. } => harness_kernels::KernelRequest::Line(label.clone()),
        Target::Host { .. } => harness_kernels::KernelRequest::Host,
    }
}

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

/// Runs `opts.kernels` (one at a time) with one generated case and with `n`,
/// in a copy of the project that holds only the firewall and those cases.
pub fn bench_cases(
    project: &Project,
    opts: &TestOptions,
    n: usize,
    runs: usize,
    interrupt: Arc<AtomicBool>,
) -> Result<Vec<CasesBench>, SuiteError> {
    let tmp = tempfile::tempdir().map_err(crate::error::io_err("creating a scratch project"))?;
    let make = |name: &str, cases: usize| -> Result<Project, SuiteError> {
        let root = tmp.path().join(name);
        let programs = root.join("programs");
        std::fs::create_dir_all(programs.join("include"))
            .map_err(crate::error::io_err("creating a scratch project"))?;
        for f in ["xdp_firewall.bpf.c", "include/parsing.h"] {
            std::fs::copy(project.programs_dir.join(f), programs.join(f))
                .map_err(crate::error::io_err(format!("copying {f}")))?;
        }
        std::fs::create_dir_all(root.join("cases"))
            .map_err(crate::error::io_err("creating a scratch project"))?;
        std::fs::write(root.join("cases/bench.toml"), generated_cases(cases))
            .map_err(crate::error::io_err("writing generated cases"))?;
        Ok(Project {
            programs_dir: programs,
            cases_dir: root.join("cases"),
            snapshots_dir: root.join("snapshots"),
            objects_dir: root.join("bpf"),
            results_dir: root.join("results"),
            ..project.clone()
        })
    };
    let (one, many) = (make("one", 1)?, make("many", n)?);
    let mut out = Vec::new();
    crate::ui::set_quiet(true);
    let result = (|| {
        for request in &opts.kernels {
            let single = TestOptions {
                kernels: vec![request.clone()],
                ..opts.clone()
            };
            let time = |p: &Project| -> Result<Duration, SuiteError> {
                let start = Instant::now();
                let report = crate::test(p, &single, interrupt.clone())?;
                let elapsed = start.elapsed();
                let ran: usize = report
                    .kernels
                    .iter()
                    .map(|k| k.passed + k.failed + k.skipped)
                    .sum();
                if report
                    .kernels
                    .iter()
                    .any(|k| k.error.is_some() || k.failed > 0)
                {
                    return Err(SuiteError::Io {
                        what: "benchmark run".into(),
                        error: std::io::Error::other(report.render()),
                    });
                }
                debug_assert!(ran > 0);
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
                label: match request {
                    harness_kernels::KernelRequest::Line(l) => l.clone(),
                    harness_kernels::KernelRequest::Host => "host".into(),
                    harness_kernels::KernelRequest::Image(p) => p.display().to_string(),
                },
                cases: n,
                baseline: median(&base),
                loaded: median(&loaded),
            });
        }
        Ok(out)
    })();
    crate::ui::set_quiet(false);
    result
}

/// `bench verify`: verification of every sample object on the host kernel.
#[derive(Clone, Debug)]
pub struct VerifyBench {
    pub objects: usize,
    pub programs: usize,
    pub harness: Duration,
    /// veristat on the same objects, when a veristat binary was given.
    pub veristat: Option<Duration>,
}

/// Times `verify --kernel host` (medians of `runs`) and, given a veristat
/// binary, veristat on the same compiled objects.
pub fn bench_verify(
    project: &Project,
    runs: usize,
    veristat: Option<&std::path::Path>,
    interrupt: Arc<AtomicBool>,
) -> Result<VerifyBench, SuiteError> {
    let opts = crate::VerifyOptions {
        kernels: vec![harness_kernels::KernelRequest::Host],
        accel: harness_vm::AccelChoice::Auto,
        mirror: None,
        log_level: 1,
        run: crate::RunOptions::default(),
        snapshots: harness_snapshots::UpdateMode::No,
        baseline: None,
        gate: crate::Gate::default(),
    };
    let prepared = prepare(project, 1)?;
    let objects: Vec<std::path::PathBuf> =
        prepared.objects.iter().map(|o| o.path.clone()).collect();
    let programs = prepared
        .objects
        .iter()
        .map(|o| o.info.file.programs().len())
        .sum();
    crate::ui::set_quiet(true);
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    let result = (|| {
        for _ in 0..runs {
            let start = Instant::now();
            crate::verify(project, &opts, interrupt.clone())?;
            ours.push(start.elapsed());
            if let Some(v) = veristat {
                let start = Instant::now();
                let out = std::process::Command::new(v)
                    .args(&objects)
                    .output()
                    .map_err(crate::error::io_err(format!("running {}", v.display())))?;
                theirs.push(start.elapsed());
                if !out.status.success() {
                    return Err(SuiteError::Io {
                        what: format!("running {}", v.display()),
                        error: std::io::Error::other(
                            String::from_utf8_lossy(&out.stderr).into_owned(),
                        ),
                    });
                }
            }
        }
        Ok(())
    })();
    crate::ui::set_quiet(false);
    result?;
    Ok(VerifyBench {
        objects: objects.len(),
        programs,
        harness: median(&ours),
        veristat: veristat.map(|_| median(&theirs)),
    })
}
