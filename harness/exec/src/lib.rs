//! Executes a [`Plan`] on the kernel this process runs on.
//!
//! The same code runs as PID 1 inside a VM and in-process for
//! `--kernel host`. It only loads programs and runs them through
//! `BPF_PROG_TEST_RUN`: it never attaches anything, and everything it creates
//! is released when the loaded objects are dropped.

use std::{collections::BTreeMap, fs, io};

use harness_bpf::{LoadedObject, LogOptions, ObjectFile, ProgramLoadError, TestRunInput};
use harness_protocol::{
    CaseOutcome, CasePlan, CaseReport, MapDump, MapEntry, MapValue, ObjectPlan, Plan, Probe,
    ProbeReport, ProgInfo, ProgramReport, Record, Verdict,
};

/// Runs every probe, object and case of `plan`, handing each record to
/// `emit` as soon as it exists. Returns the first error of `emit`; problems
/// with the plan's contents are reported as records, not errors.
pub fn execute(plan: &Plan, emit: &mut dyn FnMut(Record) -> io::Result<()>) -> io::Result<()> {
    // Per-CPU map values land on the CPU that runs the program: pin to CPU 0
    // so dumps do not depend on where the scheduler put us.
    let _pinned = PinnedToCpu0::new();
    let mut probes = BTreeMap::new();
    for probe in &plan.probes {
        let report = run_probe(probe);
        probes.insert(report.name.clone(), report.clone());
        emit(Record::Probe(report))?;
    }
    let log = LogOptions {
        level: plan.verifier.bits(),
        ..LogOptions::default()
    };
    for object in &plan.objects {
        run_object(object, log, &probes, emit)?;
    }
    Ok(())
}

/// Restores the thread's CPU affinity when dropped.
struct PinnedToCpu0(Option<nix::sched::CpuSet>);

impl PinnedToCpu0 {
    fn new() -> Self {
        use nix::{sched, unistd::Pid};
        let before = sched::sched_getaffinity(Pid::from_raw(0)).ok();
        let mut cpu0 = sched::CpuSet::new();
        if cpu0.set(0).is_err() || sched::sched_setaffinity(Pid::from_raw(0), &cpu0).is_err() {
            return Self(None);
        }
        Self(before)
    }
}

impl Drop for PinnedToCpu0 {
    fn drop(&mut self) {
        if let Some(before) = &self.0 {
            let _ = nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), before);
        }
    }
}

fn run_probe(probe: &Probe) -> ProbeReport {
    use harness_bpf::probes;
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

fn run_object(
    plan: &ObjectPlan,
    log: LogOptions,
    probes: &BTreeMap<String, ProbeReport>,
    emit: &mut dyn FnMut(Record) -> io::Result<()>,
) -> io::Result<()> {
    let loaded = fs::read(&plan.path)
        .map_err(|e| format!("reading {}: {e}", plan.path))
        .and_then(|data| ObjectFile::parse(data).map_err(|e| e.to_string()))
        .and_then(|file| file.load(log).map_err(|e| e.to_string()));
    let object = match loaded {
        Ok(object) => object,
        Err(error) => {
            emit(Record::ObjectError {
                object: plan.name.clone(),
                error: error.clone(),
            })?;
            for case in &plan.cases {
                emit(case_report(
                    case,
                    CaseOutcome::Error {
                        error: format!("object `{}` could not be loaded: {error}", plan.name),
                    },
                ))?;
            }
            return Ok(());
        }
    };

    for program in &object.programs {
        let info = program
            .fd
            .as_ref()
            .and_then(|fd| harness_bpf::prog_info(std::os::fd::AsFd::as_fd(fd)).ok());
        let verdict = match &program.error {
            None => Verdict::Accepted,
            Some(ProgramLoadError::Rejected { errno, message }) => Verdict::Rejected {
                errno: *errno,
                message: message.clone(),
            },
            Some(ProgramLoadError::NotLoaded { reason }) => Verdict::NotLoaded {
                reason: reason.clone(),
            },
        };
        emit(Record::Program(ProgramReport {
            object: plan.name.clone(),
            program: program.spec.name.clone(),
            section: program.spec.section.clone(),
            prog_type: program
                .spec
                .kind
                .as_ref()
                .map_or_else(|_| "unknown".to_owned(), |k| k.name.to_owned()),
            verdict,
            log: program.log.text.clone(),
            log_level: program.log.level,
            log_truncated: program.log.truncated,
            info: info.map(|i| ProgInfo {
                id: i.id,
                xlated_len: i.xlated_len,
                jited_len: i.jited_len,
                verified_insns: i.verified_insns,
                nr_map_ids: i.nr_map_ids,
                tag: i.tag.iter().map(|b| format!("{b:02x}")).collect(),
            }),
            load_ns: program.load_time.as_nanos() as u64,
            insn_cnt: program.insn_cnt,
        }))?;
    }

    for case in &plan.cases {
        let outcome = run_case(&object, case, probes);
        emit(case_report(case, outcome))?;
    }
    Ok(())
}

/// The kernel-internal ENOTSUPP (524) leaks to user space from test_run.
const KERNEL_ENOTSUPP: i32 = 524;

fn case_report(case: &CasePlan, outcome: CaseOutcome) -> Record {
    Record::Case(CaseReport {
        id: case.id.clone(),
        outcome,
    })
}

fn run_case(
    object: &LoadedObject,
    case: &CasePlan,
    probes: &BTreeMap<String, ProbeReport>,
) -> CaseOutcome {
    for name in &case.requires {
        match probes.get(name) {
            Some(p) if p.available => {}
            Some(p) => {
                return CaseOutcome::Skipped {
                    reason: p.detail.clone(),
                };
            }
            None => {
                return CaseOutcome::Error {
                    error: format!("case requires probe `{name}`, which the plan does not define"),
                };
            }
        }
    }
    match try_run_case(object, case) {
        Ok(outcome) => outcome,
        Err(error) => CaseOutcome::Error { error },
    }
}

fn try_run_case(object: &LoadedObject, case: &CasePlan) -> Result<CaseOutcome, String> {
    let program = object.program(&case.program).ok_or_else(|| {
        let names: Vec<_> = object
            .programs
            .iter()
            .map(|p| p.spec.name.as_str())
            .collect();
        format!(
            "no program `{}` in the object (it has: {})",
            case.program,
            names.join(", ")
        )
    })?;
    let fd = match (&program.fd, &program.error) {
        (Some(fd), _) => fd,
        (None, Some(e)) => return Err(format!("program `{}` did not load: {e}", case.program)),
        (None, None) => return Err(format!("program `{}` did not load", case.program)),
    };

    for map in &object.maps {
        map.reset()
            .map_err(|e| format!("resetting map `{}`: {e}", map.spec.name))?;
    }
    for write in &case.setup {
        let map = object
            .map(&write.map)
            .ok_or_else(|| format!("no map `{}` in the object", write.map))?;
        // Per-CPU values list CPU 0 first; CPUs not listed get zeros.
        let zeros = vec![0u8; map.spec.value_size as usize];
        let values: Vec<&[u8]> = match &write.value {
            MapValue::Single(v) => vec![&v.0],
            MapValue::PerCpu(vs) if vs.len() > map.value_count() => {
                return Err(format!(
                    "map `{}`: {} per-CPU values given, this kernel has {} possible CPUs",
                    write.map,
                    vs.len(),
                    map.value_count()
                ));
            }
            MapValue::PerCpu(vs) => vs
                .iter()
                .map(|v| v.0.as_slice())
                .chain(std::iter::repeat(zeros.as_slice()))
                .take(map.value_count())
                .collect(),
        };
        map.update(&write.key, &values)
            .map_err(|e| format!("writing map `{}` before the run: {e}", write.map))?;
    }

    let input = &case.input;
    let out = harness_bpf::test_run(
        std::os::fd::AsFd::as_fd(fd),
        &TestRunInput {
            data: &input.data,
            ctx: input.ctx.as_deref(),
            data_out_size: input.data_out_size as usize,
            ctx_out_size: input.ctx_out_size as usize,
            repeat: input.repeat,
            flags: input.flags,
        },
    )
    .map_err(|e| {
        let hint = match e.raw_os_error() {
            Some(KERNEL_ENOTSUPP | libc::EOPNOTSUPP) => {
                " (this kernel has no BPF_PROG_TEST_RUN for the program's type)"
            }
            Some(libc::EINVAL) => " (the kernel refused the input: packet shorter than 14 bytes, or a context field this program type may not set)",
            _ => "",
        };
        format!("BPF_PROG_TEST_RUN failed: {e}{hint}")
    })?;

    let maps = if case.dump_maps {
        object
            .maps
            .iter()
            .filter(|m| m.is_keyed())
            .map(|m| {
                let entries = m
                    .entries()
                    .map_err(|e| format!("dumping map `{}`: {e}", m.spec.name))?;
                Ok(MapDump {
                    name: m.spec.name.clone(),
                    map_type: m.spec.map_type,
                    key_size: m.spec.key_size,
                    value_size: m.spec.value_size,
                    entries: entries
                        .into_iter()
                        .map(|(key, values)| MapEntry {
                            key: key.into(),
                            values: values.into_iter().map(Into::into).collect(),
                        })
                        .collect(),
                })
            })
            .collect::<Result<Vec<_>, String>>()?
    } else {
        Vec::new()
    };

    Ok(CaseOutcome::Ran {
        retval: out.retval,
        data_out: out.data_out.into(),
        ctx_out: out.ctx_out.map(Into::into),
        duration_ns: out.duration_ns,
        maps,
    })
}
