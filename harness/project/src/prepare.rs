//! Compile programs, read and check test cases, assemble the plan.

use std::{
    collections::BTreeSet,
    fmt, fs, io,
    path::{Path, PathBuf},
};

use harness_bpf::ObjectFile;
use harness_build::BpfBuild;
use harness_cases::{CaseError, CompiledCase, ObjectInfo};
use harness_events::{Event, EventSink};
use harness_protocol::{KernelVersion, ObjectPlan, Plan, Probe, VerifierOptions};
use harness_verifier::Expectation;

use crate::{
    Project,
    inputs::{Input, InputError, InputKind},
    select::{NoMatch, ProgramPattern},
};

pub struct PreparedObject {
    pub name: String,
    /// The compiled object on the host.
    pub path: PathBuf,
    /// Its C source; `None` for an object given by path.
    pub source: Option<PathBuf>,
    pub origin: Origin,
    pub info: ObjectInfo,
}

/// Where an object comes from, which decides whether it has snapshots.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// One of the project's programs: its verifier snapshots live in the
    /// project's snapshot directory.
    Project,
    /// Named on the command line: no snapshots, no case files.
    Path,
}

impl PreparedObject {
    /// The file to name in messages about the object: its source relative to
    /// the project, or for an object given by path, the path as named.
    pub fn shown(&self, project: &Project) -> String {
        match (self.origin, &self.source) {
            (Origin::Project, Some(source)) => project.relative(source),
            _ => self.name.clone(),
        }
    }
}

/// What the verifier should do with one program on some kernels.
pub struct ProgramExpectation {
    pub object: String,
    pub program: String,
    pub expectation: Expectation,
}

/// Compiled programs and cases, ready to run on any kernel.
pub struct Prepared {
    pub objects: Vec<PreparedObject>,
    pub cases: Vec<CompiledCase>,
    pub verifier: VerifierOptions,
    pub probes: Vec<Probe>,
    /// From `__accepted`/`__rejected`/`__not_loaded` in C and `[[verifier]]`
    /// in case files.
    pub expectations: Vec<ProgramExpectation>,
    /// `(object, program)` chosen by `--prog`; `None`: every program.
    pub selected: Option<BTreeSet<(String, String)>>,
    /// Cases left out because their program is not selected.
    pub filtered_cases: usize,
    /// Objects libbpf cannot open (not BPF after all, truncated, BTF it
    /// cannot parse): each is a finding on every kernel; the others run.
    pub unopened: Vec<UnopenedObject>,
}

/// An object left out of the run, and libbpf's reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnopenedObject {
    pub name: String,
    pub path: PathBuf,
    pub error: String,
}

/// What stops preparation.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    #[error(transparent)]
    Build(#[from] harness_build::BuildError),
    #[error("{}", CaseErrors(.0))]
    Cases(Vec<CaseError>),
    #[error("{}: {error}", path.display())]
    Object {
        path: PathBuf,
        /// Boxed: aya's errors are large and this one is rare.
        error: Box<harness_bpf::ObjectError>,
    },
    #[error(transparent)]
    Input(#[from] InputError),
    #[error(transparent)]
    NoMatch(#[from] NoMatch),
    #[error("{what}: {error}")]
    Io { what: String, error: io::Error },
}

/// Every case-file mistake, then how many there were.
struct CaseErrors<'a>(&'a [CaseError]);

impl fmt::Display for CaseErrors<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for e in self.0 {
            writeln!(f, "{e}")?;
        }
        write!(
            f,
            "{} problem{} in test-case files; nothing was run",
            self.0.len(),
            if self.0.len() == 1 { "" } else { "s" }
        )
    }
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> PrepareError {
    let what = what.into();
    move |error| PrepareError::Io { what, error }
}

/// What to prepare.
#[derive(Clone, Copy, Debug)]
pub struct PrepareOptions {
    /// Verifier log level for the plan: 1 or 2 (statistics are always on).
    pub log_level: u32,
    /// Compile the cases too; without, case files are read only for their
    /// `[[verifier]]` expectations (what `verify` needs).
    pub cases: bool,
}

impl Prepared {
    /// The plan, with each object at its path on the host.
    pub fn plan(&self) -> Plan {
        Plan {
            verifier: self.verifier,
            probes: self.probes.clone(),
            objects: self
                .objects
                .iter()
                .filter(|o| {
                    self.selected.is_none()
                        || o.info
                            .file
                            .programs()
                            .iter()
                            .any(|p| self.is_selected(&o.name, &p.name))
                })
                .map(|o| ObjectPlan {
                    name: o.name.clone(),
                    path: o.path.display().to_string(),
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

    /// Expectations about `object/program` that apply to a kernel of
    /// `version` (none when the version is unknown).
    pub fn expectations_for(
        &self,
        object: &str,
        program: &str,
        version: Option<KernelVersion>,
    ) -> Vec<&Expectation> {
        let Some(version) = version else {
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

    /// Whether `--prog` chose `object/program` (always, without `--prog`).
    pub fn is_selected(&self, object: &str, program: &str) -> bool {
        self.selected
            .as_ref()
            .is_none_or(|s| s.contains(&(object.to_owned(), program.to_owned())))
    }

    /// Keeps the programs `patterns` match (all of them when there are no
    /// patterns) and the cases of those programs; the other cases are
    /// counted in `filtered_cases`. A pattern that matches nothing is an
    /// error listing every program.
    pub fn select(&mut self, patterns: &[ProgramPattern]) -> Result<(), NoMatch> {
        if patterns.is_empty() {
            return Ok(());
        }
        let all: Vec<(String, String)> = self
            .objects
            .iter()
            .flat_map(|o| {
                o.info
                    .file
                    .programs()
                    .iter()
                    .map(|p| (o.name.clone(), p.name.clone()))
            })
            .collect();
        let unmatched: Vec<String> = patterns
            .iter()
            .filter(|pat| !all.iter().any(|(o, p)| pat.matches(o, p)))
            .map(|pat| pat.text.clone())
            .collect();
        if !unmatched.is_empty() {
            return Err(NoMatch {
                unmatched,
                available: all.iter().map(|(o, p)| format!("{o}/{p}")).collect(),
            });
        }
        let selected: BTreeSet<(String, String)> = all
            .into_iter()
            .filter(|(o, p)| patterns.iter().any(|pat| pat.matches(o, p)))
            .collect();
        let before = self.cases.len();
        self.cases
            .retain(|c| selected.contains(&(c.object.clone(), c.program.clone())));
        self.filtered_cases += before - self.cases.len();
        self.selected = Some(selected);
        Ok(())
    }

    pub fn case(&self, id: &str) -> Option<&CompiledCase> {
        self.cases.iter().find(|c| c.plan.id == id)
    }

    pub fn object(&self, name: &str) -> Option<&PreparedObject> {
        self.objects.iter().find(|o| o.name == name)
    }

    /// Programs across all objects.
    pub fn program_count(&self) -> usize {
        self.objects
            .iter()
            .map(|o| o.info.file.programs().len())
            .sum()
    }
}

/// Compiles every program, then reads and compiles every test-case file.
/// All case-file problems are reported together, before anything runs.
pub fn prepare(
    project: &Project,
    opts: PrepareOptions,
    events: &dyn EventSink,
) -> Result<Prepared, PrepareError> {
    let mut unopened = Vec::new();
    let objects = build_objects(project, events, &mut unopened)?;
    let mut errors = Vec::new();
    let mut expectations = declared_expectations(project, &objects, &mut errors);
    let mut cases = Vec::new();
    for path in case_files(project)? {
        read_case_file(
            project,
            &objects,
            &path,
            opts.cases,
            &mut cases,
            &mut expectations,
            &mut errors,
        );
    }
    if !errors.is_empty() {
        return Err(PrepareError::Cases(errors));
    }
    let probes = required_probes(&cases);
    Ok(Prepared {
        objects,
        cases,
        verifier: VerifierOptions {
            log_level: opts.log_level,
            stats: true,
            walk_budget: None,
        },
        probes,
        expectations,
        selected: None,
        filtered_cases: 0,
        unopened,
    })
}

/// Prepares objects and sources named on the command line (see
/// [`crate::collect_inputs`]) instead of the project's programs: sources
/// are compiled with the project's flags and include directory (and the
/// `include/` beside the source, when there is one) into
/// `<objects_dir>/paths/<name>/`, every object is parsed once, and the
/// expectations its programs declare (`__rejected(..)`, BTF decl tags) are
/// collected. There are no cases and no case files.
pub fn prepare_paths(
    project: &Project,
    inputs: &[Input],
    opts: PrepareOptions,
    events: &dyn EventSink,
) -> Result<Prepared, PrepareError> {
    let mut objects = Vec::with_capacity(inputs.len());
    let mut unopened = Vec::new();
    for input in inputs {
        let (path, source) = match input.kind {
            InputKind::Object => (input.path.clone(), None),
            InputKind::Source => {
                // One directory per input: two sources may share a file name.
                let out = project
                    .objects_dir
                    .join("paths")
                    .join(harness_protocol::file_name_of(&input.name));
                let mut build = BpfBuild::new(project.programs_dir.clone(), out);
                // Its own directory's `include/` first, as a sub-directory
                // of the project's programs has.
                if let Some(own) = input.path.parent().map(|d| d.join("include"))
                    && own.is_dir()
                    && !build.include_dirs.contains(&own)
                {
                    build.include_dirs.insert(0, own);
                }
                let built = build.build_file(&input.path)?;
                if built.rebuilt {
                    events.event(Event::Compiled {
                        source: PathBuf::from(&input.name),
                    });
                }
                (built.object, Some(input.path.clone()))
            }
        };
        let Some(file) = parse_or_note(&input.name, &path, &mut unopened)? else {
            continue;
        };
        objects.push(PreparedObject {
            info: ObjectInfo::new(&input.name, file),
            name: input.name.clone(),
            path,
            source,
            origin: Origin::Path,
        });
    }
    let mut errors = Vec::new();
    let expectations = declared_expectations(project, &objects, &mut errors);
    if !errors.is_empty() {
        return Err(PrepareError::Cases(errors));
    }
    Ok(Prepared {
        objects,
        cases: Vec::new(),
        verifier: VerifierOptions {
            log_level: opts.log_level,
            stats: true,
            walk_budget: None,
        },
        probes: Vec::new(),
        expectations,
        selected: None,
        filtered_cases: 0,
        unopened,
    })
}

/// The object parsed, or its reason noted in `unopened` (only libbpf's
/// refusals: a file that cannot be read stops preparation).
fn parse_or_note(
    name: &str,
    path: &Path,
    unopened: &mut Vec<UnopenedObject>,
) -> Result<Option<ObjectFile>, PrepareError> {
    match parse_object(path) {
        Ok(file) => Ok(Some(file)),
        Err(PrepareError::Object { path, error }) => {
            unopened.push(UnopenedObject {
                name: name.to_owned(),
                path,
                error: error.to_string(),
            });
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

fn parse_object(path: &Path) -> Result<ObjectFile, PrepareError> {
    let data = fs::read(path).map_err(io_err(format!("reading {}", path.display())))?;
    ObjectFile::parse(data).map_err(|error| PrepareError::Object {
        path: path.to_owned(),
        error: Box::new(error),
    })
}

/// Compiles what changed and parses every object once.
fn build_objects(
    project: &Project,
    events: &dyn EventSink,
    unopened: &mut Vec<UnopenedObject>,
) -> Result<Vec<PreparedObject>, PrepareError> {
    let mut built = Vec::new();
    for (dir, out) in program_dirs(project)? {
        let mut build = BpfBuild::new(dir.clone(), out);
        // A sub-directory has its own `include/` and also sees the
        // top-level one (`verifier.h` for expected verdicts).
        if dir != project.programs_dir {
            build
                .include_dirs
                .push(project.programs_dir.join("include"));
        }
        built.extend(build.build_all()?);
    }
    let mut objects = Vec::with_capacity(built.len());
    for b in built {
        if b.rebuilt {
            events.event(Event::Compiled {
                source: PathBuf::from(project.relative(&b.source)),
            });
        }
        let Some(file) = parse_or_note(&b.name, &b.object, unopened)? else {
            continue;
        };
        objects.push(PreparedObject {
            info: ObjectInfo::new(&b.name, file),
            name: b.name,
            path: b.object,
            source: Some(b.source),
            origin: Origin::Project,
        });
    }
    Ok(objects)
}

/// The programs directory and each sub-directory of it holding `*.bpf.c`
/// files (such as `gallery/`), each with where its objects go.
fn program_dirs(project: &Project) -> Result<Vec<(PathBuf, PathBuf)>, PrepareError> {
    let mut dirs = vec![(project.programs_dir.clone(), project.objects_dir.clone())];
    let entries = fs::read_dir(&project.programs_dir).map_err(io_err(format!(
        "reading {}",
        project.programs_dir.display()
    )))?;
    let mut subdirs = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(io_err(format!(
                "reading {}",
                project.programs_dir.display()
            )))?
            .path();
        let has_sources = || {
            fs::read_dir(&path).is_ok_and(|mut d| {
                d.any(|e| e.is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".bpf.c")))
            })
        };
        if path.is_dir() && has_sources() {
            let name = path.file_name().map(PathBuf::from).unwrap_or_default();
            subdirs.push((path, project.objects_dir.join(name)));
        }
    }
    subdirs.sort();
    dirs.extend(subdirs);
    Ok(dirs)
}

/// `__accepted`/`__rejected`/`__not_loaded` next to the programs in C.
fn declared_expectations(
    project: &Project,
    objects: &[PreparedObject],
    errors: &mut Vec<CaseError>,
) -> Vec<ProgramExpectation> {
    let mut out = Vec::new();
    for o in objects {
        let shown = o.shown(project);
        for (program, e) in o.info.declared_expectations(&shown) {
            match e {
                Ok(expectation) => out.push(ProgramExpectation {
                    object: o.name.clone(),
                    program,
                    expectation,
                }),
                Err(e) => errors.push(CaseError::new(Path::new(&shown), "", None, e.to_string())),
            }
        }
    }
    out
}

/// `*.toml` in the cases directory (not `Cargo.toml`), sorted.
fn case_files(project: &Project) -> Result<Vec<PathBuf>, PrepareError> {
    let mut files: Vec<PathBuf> = match fs::read_dir(&project.cases_dir) {
        Ok(dir) => dir
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension().is_some_and(|e| e == "toml")
                    && p.file_name().is_some_and(|n| n != "Cargo.toml")
            })
            .collect(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => {
            return Err(io_err(format!("reading {}", project.cases_dir.display()))(
                e,
            ));
        }
    };
    files.sort();
    Ok(files)
}

/// Reads one case file: its `[[verifier]]` expectations always, its cases
/// when asked. Mistakes go to `errors`, shown with the project-relative path.
fn read_case_file(
    project: &Project,
    objects: &[PreparedObject],
    path: &std::path::Path,
    with_cases: bool,
    cases: &mut Vec<CompiledCase>,
    expectations: &mut Vec<ProgramExpectation>,
    errors: &mut Vec<CaseError>,
) {
    let shown = PathBuf::from(project.relative(path));
    // Without cases, only `[[verifier]]` tables matter; a file that never
    // says "verifier" has none, and `test` checks the rest of it.
    if !with_cases && fs::read_to_string(path).is_ok_and(|text| !text.contains("verifier")) {
        return;
    }
    let relabel = |mut e: Vec<CaseError>| {
        for err in &mut e {
            err.file = shown.clone();
        }
        e
    };
    // pcap paths are relative to the case file, so it is parsed at its real path.
    let parsed = match harness_cases::parse_file(path) {
        Ok(p) => p,
        Err(e) => {
            errors.extend(relabel(vec![e]));
            return;
        }
    };
    let Some(object) = objects.iter().find(|o| o.name == parsed.object_name()) else {
        let names: Vec<String> = objects.iter().map(|o| o.name.clone()).collect();
        errors.extend(relabel(vec![parsed.unknown_object(&names)]));
        return;
    };
    match harness_cases::compile_expectations(&parsed, &object.info) {
        Ok(found) => expectations.extend(found.into_iter().map(|(program, expectation)| {
            ProgramExpectation {
                object: object.name.clone(),
                program,
                expectation,
            }
        })),
        Err(e) => errors.extend(relabel(e)),
    }
    if !with_cases {
        return;
    }
    match harness_cases::compile(&parsed, &object.info) {
        Ok(mut c) => {
            for case in &mut c {
                case.file = shown.clone();
            }
            cases.append(&mut c);
        }
        Err(e) => errors.extend(relabel(e)),
    }
}

/// The probes the cases name, each once.
fn required_probes(cases: &[CompiledCase]) -> Vec<Probe> {
    let required: BTreeSet<&str> = cases
        .iter()
        .flat_map(|c| c.plan.requires.iter().map(String::as_str))
        .collect();
    required
        .into_iter()
        .filter_map(|n| harness_cases::features::feature(n).map(|f| f.probe()))
        .collect()
}
