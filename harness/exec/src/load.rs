//! Loading an object: every program on its own, each with its verifier log
//! and statistics, reported as it is judged.

use std::{fs, io, os::fd::AsFd as _, time::Instant};

use harness_bpf::{LoadedObject, LoadedProgram, LogOptions, ObjectFile, ProgramLoadError};
use harness_protocol::{
    CaseOutcome, CaseReport, CaseStep, ObjectPlan, ProgInfo, ProgramReport, Record, Verdict,
};

/// Loads `plan`'s object and reports each program. `None` when the object
/// could not be prepared at all: that is reported too, and every case of it
/// is reported as unable to run.
pub(crate) fn object(
    plan: &ObjectPlan,
    log: LogOptions,
    out: &mut crate::Out<'_>,
) -> io::Result<Option<LoadedObject>> {
    let t = &mut out.timings;
    let parsing = Instant::now();
    let parsed = fs::read(&plan.path)
        .map_err(|e| format!("reading {}: {e}", plan.path))
        .and_then(|data| ObjectFile::parse(data).map_err(|e| e.to_string()));
    t.parse_ns += crate::nanos(parsing);
    let loading = Instant::now();
    let loaded = parsed.and_then(|file| file.load(log).map_err(|e| e.to_string()));
    t.load_ns += crate::nanos(loading);
    let object = match loaded {
        Ok(object) => object,
        Err(error) => {
            out.send(Record::ObjectError {
                object: plan.name.clone(),
                error: error.clone(),
            })?;
            for case in &plan.cases {
                out.send(Record::Case(CaseReport {
                    id: case.id.clone(),
                    outcome: CaseOutcome::Error {
                        step: CaseStep::Program,
                        error: format!("object `{}` could not be loaded: {error}", plan.name),
                    },
                }))?;
            }
            return Ok(None);
        }
    };
    for program in &object.programs {
        let reporting = Instant::now();
        let record = Record::Program(report(&plan.name, program));
        out.timings.report_ns += crate::nanos(reporting);
        out.send(record)?;
    }
    Ok(Some(object))
}

/// A fresh copy of `plan`'s object for one live case: programs that were
/// never attached (5.10 attaches a tracing program once per load) and
/// empty maps. No verifier logs: the first load reported them.
pub(crate) fn fresh(plan: &ObjectPlan) -> Result<LoadedObject, String> {
    let data = fs::read(&plan.path).map_err(|e| format!("reading {}: {e}", plan.path))?;
    let file = ObjectFile::parse(data).map_err(|e| e.to_string())?;
    file.load(LogOptions {
        level: 0,
        ..LogOptions::default()
    })
    .map_err(|e| format!("loading a fresh copy of `{}` for the case: {e}", plan.name))
}

fn report(object: &str, program: &LoadedProgram) -> ProgramReport {
    let info = program
        .fd
        .as_ref()
        .and_then(|fd| harness_bpf::prog_info(fd.as_fd()).ok());
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
    ProgramReport {
        object: object.to_owned(),
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
    }
}
