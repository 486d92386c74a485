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
    select::{Filter, FilterMatchesNothing, NoMatch, ProgramPattern},
};

pub struct PreparedObject {
    pub name: String,
    /// The compiled object on the host.
    pub path: PathBuf,
    /// Its C source; `None` for a prebuilt object or one given by path.
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
            (Origin::Project, None) => project.relative(&self.path),
            (Origin::Path, _) => self.name.clone(),
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
    /// `--shard`: this run holds one part of the project's objects.
    pub shard: Option<crate::Shard>,
}

/// An object left out of the run, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnopenedObject {
    pub name: String,
    /// The source that did not compile, or the object libbpf refused.
    pub path: PathBuf,
    /// clang's diagnostics (file:line:column) or libbpf's reason.
    pub error: String,
    pub stage: Stage,
    /// Case files of this object, set aside unread (their snapshots are
    /// not stale, only not produced this time).
    pub case_files: Vec<PathBuf>,
}

/// Where an object fell out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Its source did not compile.
    Compile,
    /// libbpf could not open the object.
    Open,
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
    #[error(transparent)]
    FilterMatchesNothing(#[from] FilterMatchesNothing),
    #[error("{what}: {error}")]
    Io { what: String, error: io::Error },
    #[error(transparent)]
    Config(#[from] crate::ConfigError),
    #[error(
        "no BPF programs in {}: {} match nothing; {}",
        root.display(),
        patterns.join(", "),
        match config {
            Some(c) => format!("set `sources` (or `objects`) in {}", c.display()),
            None => format!(
                "configure where they are: `sources = [\"src/bpf/*.bpf.c\"]` in {} or under \
                 [workspace.metadata.ebpf-harness] in Cargo.toml",
                crate::CONFIG_FILE
            ),
        }
    )]
    NoPrograms {
        root: PathBuf,
        config: Option<PathBuf>,
        patterns: Vec<String>,
    },
    #[error(
        "{} and {}: two objects named `{name}` (case files name objects by file name): rename one",
        first.display(),
        second.display()
    )]
    SameName {
        name: String,
        first: PathBuf,
        second: PathBuf,
    },
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

    /// `(object, program)` of every selected program, in object order.
    pub fn selected_programs(&self) -> Vec<(String, String)> {
        let mut all = self.program_names();
        all.retain(|(o, p)| self.is_selected(o, p));
        all
    }

    /// `(object, program)` of every program, in object order.
    fn program_names(&self) -> Vec<(String, String)> {
        self.objects
            .iter()
            .flat_map(|o| {
                o.info
                    .file
                    .programs()
                    .iter()
                    .map(|p| (o.name.clone(), p.name.clone()))
            })
            .collect()
    }

    /// Keeps the programs `patterns` match (all of them when there are no
    /// patterns) and the cases of those programs; the other cases are
    /// counted in `filtered_cases`. A pattern that matches nothing is an
    /// error listing every program.
    pub fn select(&mut self, patterns: &[ProgramPattern]) -> Result<(), NoMatch> {
        if patterns.is_empty() {
            return Ok(());
        }
        let all = self.program_names();
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

    /// Keeps the cases whose name, program or object a filter matches, and
    /// judges only the programs a filter names or whose cases it kept
    /// (within an earlier [`Self::select`]). The others are counted in
    /// `filtered_cases`. A filter that matches nothing is an error.
    pub fn filter(&mut self, filters: &[Filter]) -> Result<(), FilterMatchesNothing> {
        if filters.is_empty() {
            return Ok(());
        }
        let mut programs = self.program_names();
        programs.retain(|(o, p)| self.is_selected(o, p));
        let case_kept = |f: &Filter, c: &CompiledCase| {
            f.matches_case(&c.name) || f.matches_program(&c.object, &c.program)
        };
        let unmatched: Vec<String> = filters
            .iter()
            .filter(|f| {
                !self.cases.iter().any(|c| case_kept(f, c))
                    && !programs.iter().any(|(o, p)| f.matches_program(o, p))
            })
            .map(|f| f.0.clone())
            .collect();
        if !unmatched.is_empty() {
            return Err(FilterMatchesNothing {
                unmatched,
                objects: self.objects.iter().map(|o| o.name.clone()).collect(),
            });
        }
        let before = self.cases.len();
        self.cases
            .retain(|c| filters.iter().any(|f| case_kept(f, c)));
        self.filtered_cases += before - self.cases.len();
        let selected: BTreeSet<(String, String)> = programs
            .into_iter()
            .filter(|(o, p)| {
                filters.iter().any(|f| f.matches_program(o, p))
                    || self.cases.iter().any(|c| &c.object == o && &c.program == p)
            })
            .collect();
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
            &mut unopened,
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
        shard: None,
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
                // Its own directory's `include/` first, then the project's.
                let built = source_build(project, &input.path, out)?.build_file(&input.path)?;
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
        shard: None,
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
                stage: Stage::Open,
                case_files: Vec::new(),
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

/// How to compile `source` with the project's settings into `out`: the
/// `include/` beside it first, then the configured include directories
/// (an override's before the global ones), the project's flags and clang.
fn source_build(project: &Project, source: &Path, out: PathBuf) -> Result<BpfBuild, PrepareError> {
    let dir = source.parent().unwrap_or(Path::new("."));
    let mut build = BpfBuild::new(dir.to_owned(), out);
    let (cflags, includes) = project.build.flags_for(&project.root, source)?;
    // `new` gives the `include/` beside the source, then the system's.
    let system = build.include_dirs.split_off(1);
    for inc in includes.into_iter().chain(system) {
        if !build.include_dirs.contains(&inc) {
            build.include_dirs.push(inc);
        }
    }
    build.include_dirs.retain(|d| d.is_dir());
    build.extra_cflags = cflags;
    if let Some(clang) = &project.build.clang {
        build.clang = clang.clone();
    }
    Ok(build)
}

/// One of the project's objects, compiled or prebuilt, not yet parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProjectObject {
    /// What case files call it: the file name without `.bpf.c`/`.bpf.o`.
    pub name: String,
    pub object: PathBuf,
    /// `None` for an object the project builds itself.
    pub source: Option<PathBuf>,
    /// Compiled in this build (false: up to date, or prebuilt).
    pub rebuilt: bool,
}

/// Compiles the project's sources that changed and finds its prebuilt
/// objects. A source that does not compile is returned among the second
/// list (clang's diagnostics with file:line) and the others still build.
pub fn build(
    project: &Project,
    events: &dyn EventSink,
) -> Result<(Vec<ProjectObject>, Vec<UnopenedObject>), PrepareError> {
    let sources = expand(project, &project.build.sources)?;
    let prebuilt = expand(project, &project.build.objects)?;
    if sources.is_empty() && prebuilt.is_empty() {
        return Err(PrepareError::NoPrograms {
            root: project.root.clone(),
            config: project.config.clone(),
            patterns: project
                .build
                .sources
                .iter()
                .chain(&project.build.objects)
                .map(|g| g.pattern.clone())
                .collect(),
        });
    }
    let mut found = Vec::new();
    let mut failed = Vec::new();
    for source in sources {
        let rel = source.strip_prefix(&project.root).unwrap_or(&source);
        let out = project
            .objects_dir
            .join(rel.parent().unwrap_or(Path::new("")));
        match source_build(project, &source, out)?.build_file(&source) {
            Ok(b) => {
                if b.rebuilt {
                    events.event(Event::Compiled {
                        source: PathBuf::from(project.relative(&b.source)),
                    });
                }
                found.push(ProjectObject {
                    name: b.name,
                    object: b.object,
                    source: Some(b.source),
                    rebuilt: b.rebuilt,
                });
            }
            Err(
                e @ (harness_build::BuildError::Compile { .. }
                | harness_build::BuildError::HeaderMissing { .. }),
            ) => failed.push(UnopenedObject {
                name: harness_build::object_name(&source),
                path: source.clone(),
                error: e.to_string(),
                stage: Stage::Compile,
                case_files: Vec::new(),
            }),
            Err(e) => return Err(e.into()),
        }
    }
    for object in prebuilt {
        found.push(ProjectObject {
            name: harness_build::object_name(&object),
            object,
            source: None,
            rebuilt: false,
        });
    }
    let mut seen: Vec<(&str, &Path)> = Vec::new();
    let named = found
        .iter()
        .map(|o| (o.name.as_str(), o.source.as_deref().unwrap_or(&o.object)))
        .chain(failed.iter().map(|u| (u.name.as_str(), u.path.as_path())));
    for (name, file) in named {
        if let Some((_, first)) = seen.iter().find(|(n, _)| *n == name) {
            return Err(PrepareError::SameName {
                name: name.to_owned(),
                first: PathBuf::from(project.relative(first)),
                second: PathBuf::from(project.relative(file)),
            });
        }
        seen.push((name, file));
    }
    Ok((found, failed))
}

/// Builds (see [`build`]) and parses every object once.
fn build_objects(
    project: &Project,
    events: &dyn EventSink,
    unopened: &mut Vec<UnopenedObject>,
) -> Result<Vec<PreparedObject>, PrepareError> {
    let (found, failed) = build(project, events)?;
    unopened.extend(failed);
    let mut objects = Vec::with_capacity(found.len());
    for o in found {
        let Some(file) = parse_or_note(&o.name, &o.object, unopened)? else {
            continue;
        };
        objects.push(PreparedObject {
            info: ObjectInfo::new(&o.name, file),
            name: o.name,
            path: o.object,
            source: o.source,
            origin: Origin::Project,
        });
    }
    Ok(objects)
}

/// The files some patterns match, each once, in pattern order.
fn expand(project: &Project, globs: &[crate::PathGlob]) -> Result<Vec<PathBuf>, PrepareError> {
    let mut files: Vec<PathBuf> = Vec::new();
    for glob in globs {
        for f in glob.expand(&project.root)? {
            if !files.contains(&f) {
                files.push(f);
            }
        }
    }
    Ok(files)
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

/// `*.toml` in each cases directory (not `Cargo.toml`), sorted per
/// directory. A directory that does not exist (a default) has none.
fn case_files(project: &Project) -> Result<Vec<PathBuf>, PrepareError> {
    let mut all = Vec::new();
    for dir in &project.cases_dirs {
        let mut files: Vec<PathBuf> = match fs::read_dir(dir) {
            Ok(entries) => entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.extension().is_some_and(|e| e == "toml")
                        && p.file_name().is_some_and(|n| n != "Cargo.toml")
                })
                .collect(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io_err(format!("reading {}", dir.display()))(e)),
        };
        files.sort();
        all.extend(files);
    }
    Ok(all)
}

/// Reads one case file: its `[[verifier]]` expectations always, its cases
/// when asked. Mistakes go to `errors`, shown with the project-relative path.
#[expect(
    clippy::too_many_arguments,
    reason = "what a case file is read against and the three lists it adds to"
)]
fn read_case_file(
    project: &Project,
    objects: &[PreparedObject],
    unopened: &mut [UnopenedObject],
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
    // The cases of an object that did not build or open: its failure is
    // the finding; they cannot be checked against it.
    if let Some(u) = unopened.iter_mut().find(|u| u.name == parsed.object_name()) {
        u.case_files.push(path.to_owned());
        return;
    }
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
