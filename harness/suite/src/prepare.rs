//! Everything that happens before a kernel is involved: compile programs,
//! read and check test cases, assemble the plan.

use std::{collections::BTreeSet, fs, path::PathBuf};

use harness_bpf::ObjectFile;
use harness_build::BpfBuild;
use harness_cases::{CompiledCase, ObjectInfo};
use harness_protocol::{ObjectPlan, Plan, Probe, VerifierOptions};

use crate::{Project, SuiteError, error::io_err, ui};

pub struct PreparedObject {
    pub name: String,
    /// The compiled object on the host.
    pub path: PathBuf,
    pub source: PathBuf,
    pub info: ObjectInfo,
}

/// What the verifier should do with one program on some kernels.
pub struct ProgramExpectation {
    pub object: String,
    pub program: String,
    pub expectation: harness_verifier::Expectation,
}

/// Compiled programs and cases, ready to run on any kernel.
pub struct Prepared {
    pub objects: Vec<PreparedObject>,
    pub cases: Vec<CompiledCase>,
    pub verifier: VerifierOptions,
    pub probes: Vec<Probe>,
    /// From `__accepted`/`__rejected` in C and `[[verifier]]` in case files.
    pub expectations: Vec<ProgramExpectation>,
}

impl Prepared {
    /// The plan, with each object at the path `locate` gives (inside the
    /// initramfs for VMs, on disk for the host).
    pub fn plan(&self, locate: impl Fn(&PreparedObject) -> String) -> Plan {
        Plan {
            verifier: self.verifier,
            probes: self.probes.clone(),
            objects: self
                .objects
                .iter()
                .map(|o| ObjectPlan {
                    name: o.name.clone(),
                    path: locate(o),
                    cases: self
                        .cases
                        .iter()
                        .filter(|c| c.object == o.name)
                        .map(|c| c.plan.clone())
                        .collect(),
                })
                .collect(),
        }
    }

    /// Expectations about `object/program` that apply to kernel `line`.
    pub fn expectations_for(
        &self,
        object: &str,
        program: &str,
        line: &str,
    ) -> Vec<&harness_verifier::Expectation> {
        let Some(version) = harness_verifier::KernelVersion::parse(line) else {
            return Vec::new();
        };
        self.expectations
            .iter()
            .filter(|e| {
                e.object == object && e.program == program && e.expectation.applies_to(version)
            })
            .map(|e| &e.expectation)
            .collect()
    }

    pub fn case(&self, id: &str) -> Option<&CompiledCase> {
        self.cases.iter().find(|c| c.plan.id == id)
    }

    pub fn object(&self, name: &str) -> Option<&PreparedObject> {
        self.objects.iter().find(|o| o.name == name)
    }
}

/// Compiles every program, then reads and compiles every test-case file.
/// All case-file problems are reported together, before anything runs.
pub fn prepare(project: &Project, log_level: u32) -> Result<Prepared, SuiteError> {
    prepare_with(project, log_level, true)
}

/// Like [`prepare`]; without `cases`, case files are read only for their
/// `[[verifier]]` expectations (what `verify` needs).
pub fn prepare_with(
    project: &Project,
    log_level: u32,
    cases_too: bool,
) -> Result<Prepared, SuiteError> {
    let build = BpfBuild::new(project.programs_dir.clone(), project.objects_dir.clone());
    let built = build.build_all()?;
    for b in built.iter().filter(|b| b.rebuilt) {
        ui::status("Compiled", &project.relative(&b.source));
    }
    let mut objects = Vec::with_capacity(built.len());
    for b in built {
        let data =
            fs::read(&b.object).map_err(io_err(format!("reading {}", b.object.display())))?;
        let file = ObjectFile::parse(data).map_err(|e| SuiteError::Object {
            path: b.object.clone(),
            error: e.to_string(),
        })?;
        objects.push(PreparedObject {
            info: ObjectInfo::new(&b.name, file),
            name: b.name,
            path: b.object,
            source: b.source,
        });
    }

    let mut files: Vec<PathBuf> = match fs::read_dir(&project.cases_dir) {
        Ok(dir) => dir
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension().is_some_and(|e| e == "toml")
                    && p.file_name().is_some_and(|n| n != "Cargo.toml")
            })
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => {
            return Err(io_err(format!("reading {}", project.cases_dir.display()))(
                e,
            ));
        }
    };
    files.sort();
    let names: Vec<String> = objects.iter().map(|o| o.name.clone()).collect();
    let mut errors = Vec::new();
    let mut expectations = Vec::new();
    for o in &objects {
        for (program, e) in o.info.declared_expectations(&project.relative(&o.source)) {
            match e {
                Ok(expectation) => expectations.push(ProgramExpectation {
                    object: o.name.clone(),
                    program,
                    expectation,
                }),
                Err(message) => {
                    errors.push(harness_cases::CaseError::new(&o.source, "", None, message))
                }
            }
        }
    }
    let mut cases = Vec::new();
    for path in files {
        let shown = PathBuf::from(project.relative(&path));
        // Without cases, only `[[verifier]]` tables matter; a file that never
        // says "verifier" has none, and `test` checks the rest of it.
        if !cases_too && fs::read_to_string(&path).is_ok_and(|text| !text.contains("verifier")) {
            continue;
        }
        let parsed = match harness_cases::parse_file(&path) {
            Ok(mut p) => {
                p.path = shown;
                p
            }
            Err(mut e) => {
                e.file = shown;
                errors.push(e);
                continue;
            }
        };
        let Some(object) = objects.iter().find(|o| o.name == parsed.object_name()) else {
            errors.push(parsed.unknown_object(&names));
            continue;
        };
        // pcap paths are relative to the case file, which the shown path is not.
        let mut parsed = parsed;
        let shown = parsed.path.clone();
        parsed.path = path.clone();
        match harness_cases::compile_expectations(&parsed, &object.info) {
            Ok(found) => expectations.extend(found.into_iter().map(|(program, expectation)| {
                ProgramExpectation {
                    object: object.name.clone(),
                    program,
                    expectation,
                }
            })),
            Err(mut e) => {
                for err in &mut e {
                    err.file = shown.clone();
                }
                errors.append(&mut e);
            }
        }
        if !cases_too {
            continue;
        }
        match harness_cases::compile(&parsed, &object.info) {
            Ok(mut c) => {
                for case in &mut c {
                    case.file = shown.clone();
                }
                cases.append(&mut c);
            }
            Err(mut e) => {
                for err in &mut e {
                    err.file = shown.clone();
                }
                errors.append(&mut e);
            }
        }
    }
    if !errors.is_empty() {
        return Err(SuiteError::Cases(errors));
    }

    let required: BTreeSet<&str> = cases
        .iter()
        .flat_map(|c| c.plan.requires.iter().map(String::as_str))
        .collect();
    let probes = required
        .into_iter()
        .filter_map(|n| harness_cases::features::feature(n).map(|f| f.probe()))
        .collect();
    Ok(Prepared {
        objects,
        cases,
        verifier: VerifierOptions {
            log_level,
            stats: true,
        },
        probes,
        expectations,
    })
}
