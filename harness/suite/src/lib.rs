//! The harness's main jobs, composed from the crates that do the work:
//!
//! - [`test`]: prepare the project (`harness-project`), resolve the kernels
//!   (`harness-kernels`), run the plan on each (`harness-matrix`), judge the
//!   records and snapshots (`harness-judge`);
//! - [`verify`]: the same without cases, judged as a programs × kernels
//!   matrix of verdicts and verifier cost, gated against a baseline; on the
//!   project's programs or on objects and sources named by path
//!   ([`Objects`]).
//!
//! Both take `--prog` patterns ([`ProgramPattern`]) that narrow the
//! programs judged (and, for `test`, the cases run).
//!
//! Rendering is the caller's (`harness-report`); progress goes to the
//! caller's [`EventSink`]. `xtask` is a thin CLI over this crate; another
//! project can call it with its own [`Project`] layout.

use std::{
    path::{Path, PathBuf},
    sync::{Arc, atomic::AtomicBool},
};

mod ci;
mod explain;
mod vmlinux;

pub use ci::{
    CiError, CiOutputs, GitHub, ci_matrix, merge_results, results_json, write_artifacts,
    write_whole,
};
pub use explain::{ExplainError, LogExplanation, explain_log};
use harness_judge::Context;
use harness_kernels::{Cache, Resolver};
use harness_matrix::{KernelRun, Matrix, MatrixError};
use harness_project::{PrepareError, PrepareOptions, Prepared};
pub use vmlinux::{HeaderOutput, VmlinuxHeaderError, vmlinux_headers};

// What a caller of `test` and `verify` needs, in one place.
pub use harness_events::EventSink;
pub use harness_judge::{Gate, TestJudgement, Unreferenced, VerifyJudgement};
pub use harness_kernels::{KernelRequest, Target};
pub use harness_matrix::RunOptions;
pub use harness_project::{Filter, ProgramPattern, Project, Shard};
pub use harness_snapshots::UpdateMode;

/// What `test` and `verify` both take.
#[derive(Clone, Debug)]
pub struct SuiteOptions {
    pub kernels: Vec<KernelRequest>,
    /// Debian mirror; else `HARNESS_DEBIAN_MIRROR`, else apt's configuration.
    pub mirror: Option<String>,
    /// Verifier log level: 1 or 2 (statistics are always on).
    pub log_level: u32,
    /// What to do with snapshots that do not match.
    pub snapshots: UpdateMode,
    pub run: RunOptions,
}

/// What only `test` takes.
#[derive(Clone, Debug, Default)]
pub struct TestOptions {
    /// `--prog`: run only the cases of the programs these match (all when
    /// empty); the others are counted as filtered.
    pub programs: Vec<ProgramPattern>,
    /// `--filter`: only the cases (and programs) these match.
    pub filters: Vec<Filter>,
    /// `--unreferenced`: name or delete snapshots nothing produces.
    pub unreferenced: Unreferenced,
    /// `--shard`: only this part of the project's objects.
    pub shard: Option<Shard>,
}

/// What only `verify` takes.
#[derive(Clone, Debug, Default)]
pub struct VerifyOptions {
    /// A CSV or JSON file from an earlier `verify --format`; `None`: the
    /// committed snapshots are the baseline.
    pub baseline: Option<PathBuf>,
    pub gate: Gate,
    /// The project's programs, or objects and sources named by path.
    pub objects: Objects,
    /// `--prog`: judge only the programs these match (all when empty).
    pub programs: Vec<ProgramPattern>,
    /// Log the walk of rejected programs that processed up to this many
    /// instructions (`None`: the loader's 200000).
    pub walk_budget: Option<u32>,
    /// `--shard`: only this part of the objects.
    pub shard: Option<Shard>,
}

/// What `verify` loads.
#[derive(Clone, Debug, Default)]
pub enum Objects {
    /// The project's programs, with their snapshots and case files.
    #[default]
    Project,
    /// BPF objects, `*.bpf.c` sources and directories searched for both
    /// (`harness_project::collect_inputs`), named relative to `cwd`. They
    /// have no snapshots and no case files; expectations come only from
    /// what their programs declare.
    Paths { paths: Vec<PathBuf>, cwd: PathBuf },
}

/// What stops a run before there is anything to judge.
#[derive(Debug, thiserror::Error)]
pub enum SuiteError {
    #[error(transparent)]
    Prepare(#[from] PrepareError),
    #[error(transparent)]
    GuestBuild(#[from] harness_build::GuestBuildError),
    #[error(transparent)]
    Kernel(#[from] harness_kernels::KernelError),
    #[error(transparent)]
    Matrix(#[from] MatrixError),
    #[error(transparent)]
    Baseline(#[from] harness_judge::BaselineError),
    #[error(transparent)]
    Snapshots(#[from] harness_judge::SnapshotWriteError),
}

impl SuiteError {
    /// Ctrl-C (or SIGTERM) stopped the run.
    pub fn is_interrupted(&self) -> bool {
        matches!(self, Self::Matrix(MatrixError::Interrupted))
    }
}

/// Resolves `--kernel` requests against the project's lock file and the
/// shared cache.
pub fn resolve_targets(
    project: &Project,
    kernels: &[KernelRequest],
    mirror: Option<&str>,
    events: &dyn EventSink,
) -> Result<Vec<Target>, harness_kernels::KernelError> {
    Resolver {
        lock_file: &project.lock_file,
        mirror,
        cache: &Cache::new(Cache::default_root()),
        events,
    }
    .resolve(kernels)
}

/// Builds the static in-VM runner from the harness's own sources (cargo
/// decides whether anything changed).
pub fn build_runner(events: &dyn EventSink) -> Result<PathBuf, harness_build::GuestBuildError> {
    harness_build::build_guest_runner(&harness_build::runner_target_dir(), events)
}

/// What to prepare: the project (with or without cases) or paths, and
/// which programs.
struct Job<'a> {
    cases: bool,
    walk_budget: Option<u32>,
    objects: &'a Objects,
    programs: &'a [ProgramPattern],
    filters: &'a [Filter],
    shard: Option<Shard>,
}

impl<'a> Job<'a> {
    /// The project's programs and cases, narrowed as `test` says.
    fn test(test: &'a TestOptions) -> Self {
        Job {
            cases: true,
            walk_budget: None,
            objects: &Objects::Project,
            programs: &test.programs,
            filters: &test.filters,
            shard: test.shard,
        }
    }

    fn prepare(
        &self,
        project: &Project,
        opts: PrepareOptions,
        events: &dyn EventSink,
    ) -> Result<Prepared, PrepareError> {
        let mut prepared = match self.objects {
            Objects::Project => harness_project::prepare(project, opts, events)?,
            Objects::Paths { paths, cwd } => {
                let inputs = harness_project::collect_inputs(paths, cwd)?;
                harness_project::prepare_paths(project, &inputs, opts, events)?
            }
        };
        prepared.select(self.programs)?;
        prepared.filter(self.filters)?;
        if let Some(shard) = self.shard {
            prepared.shard(shard);
        }
        Ok(prepared)
    }
}

/// Prepares, resolves and runs: what `test` and `verify` share.
fn prepare_and_run(
    project: &Project,
    opts: &SuiteOptions,
    job: &Job<'_>,
    before_run: &dyn Fn(&Prepared) -> Result<(), SuiteError>,
    events: &dyn EventSink,
    interrupt: &Arc<AtomicBool>,
) -> Result<(Prepared, Vec<KernelRun>), SuiteError> {
    let needs_vm = opts
        .kernels
        .iter()
        .any(|k| !matches!(k, KernelRequest::Host));
    let prepare = PrepareOptions {
        log_level: opts.log_level,
        cases: job.cases,
    };
    // Building the in-VM runner (a cargo invocation) overlaps with compiling
    // programs and fetching kernel images.
    let (prepared, targets, runner) = std::thread::scope(|s| {
        let runner = needs_vm.then(|| s.spawn(|| build_runner(events)));
        let prepared = job.prepare(project, prepare, events);
        let targets = resolve_targets(project, &opts.kernels, opts.mirror.as_deref(), events);
        let runner = runner
            .map(|h| h.join().expect("building the runner does not panic"))
            .transpose();
        (prepared, targets, runner)
    });
    let (mut prepared, targets, runner) = (prepared?, targets?, runner?);
    before_run(&prepared)?;
    prepared.verifier.walk_budget = job.walk_budget;
    let runs = run(
        project,
        &prepared,
        &targets,
        runner.as_deref(),
        opts,
        events,
        interrupt,
    )?;
    Ok((prepared, runs))
}

/// Runs a prepared project on `targets`.
pub fn run(
    project: &Project,
    prepared: &Prepared,
    targets: &[Target],
    runner: Option<&Path>,
    opts: &SuiteOptions,
    events: &dyn EventSink,
    interrupt: &Arc<AtomicBool>,
) -> Result<Vec<KernelRun>, SuiteError> {
    let plan = prepared.plan();
    Ok(Matrix {
        plan: &plan,
        runner,
        options: &opts.run,
        outputs: &project.results_dir,
        events,
        interrupt,
    }
    .run(targets)?)
}

/// Builds, runs every case on every kernel, and judges. The judgement says
/// whether everything passed; errors are problems that stopped the run.
pub fn test(
    project: &Project,
    opts: &SuiteOptions,
    events: &dyn EventSink,
    interrupt: &Arc<AtomicBool>,
) -> Result<TestJudgement, SuiteError> {
    test_with(project, opts, &TestOptions::default(), events, interrupt)
}

/// [`test`] with what only `test` takes (`--prog`).
pub fn test_with(
    project: &Project,
    opts: &SuiteOptions,
    test: &TestOptions,
    events: &dyn EventSink,
    interrupt: &Arc<AtomicBool>,
) -> Result<TestJudgement, SuiteError> {
    let job = Job::test(test);
    let (prepared, runs) = prepare_and_run(project, opts, &job, &|_| Ok(()), events, interrupt)?;
    Ok(harness_judge::judge_test(
        &context(project, &prepared, opts, test.unreferenced),
        &runs,
    )?)
}

/// What `test` would run, without running it: the project prepared and
/// narrowed by `--prog` and `--filter` (no kernel, no VM).
pub fn list(
    project: &Project,
    test: &TestOptions,
    events: &dyn EventSink,
) -> Result<Prepared, SuiteError> {
    let job = Job::test(test);
    let opts = PrepareOptions {
        log_level: 1,
        cases: true,
    };
    Ok(job.prepare(project, opts, events)?)
}

/// Loads every program on every kernel and judges verdicts and cost.
pub fn verify(
    project: &Project,
    opts: &SuiteOptions,
    verify: &VerifyOptions,
    events: &dyn EventSink,
    interrupt: &Arc<AtomicBool>,
) -> Result<VerifyJudgement, SuiteError> {
    Ok(verify_keeping_runs(project, opts, verify, events, interrupt)?.0)
}

/// [`verify`], with what each kernel sent (records, the executor's own
/// timings) kept beside the judgement: for benches and tools that look
/// beneath it.
pub fn verify_keeping_runs(
    project: &Project,
    opts: &SuiteOptions,
    verify: &VerifyOptions,
    events: &dyn EventSink,
    interrupt: &Arc<AtomicBool>,
) -> Result<(VerifyJudgement, Vec<KernelRun>), SuiteError> {
    // Read the baseline first: a bad one should not cost a kernel matrix.
    let baseline = verify
        .baseline
        .as_deref()
        .map(harness_judge::load_baseline)
        .transpose()?;
    // Verification loads programs only: the plan carries no cases.
    let job = Job {
        cases: false,
        walk_budget: verify.walk_budget,
        objects: &verify.objects,
        programs: &verify.programs,
        filters: &[],
        shard: verify.shard,
    };
    // A baseline of other objects would gate nothing: refuse it before the
    // kernels run.
    let covers = |prepared: &Prepared| match (&verify.baseline, &baseline) {
        (Some(path), Some(b)) => Ok(harness_judge::check_baseline_covers(
            path,
            b,
            &prepared.selected_programs(),
        )?),
        _ => Ok(()),
    };
    let (prepared, runs) = prepare_and_run(project, opts, &job, &covers, events, interrupt)?;
    let judgement = harness_judge::judge_verify(
        &context(project, &prepared, opts, Unreferenced::List),
        &runs,
        baseline.as_ref(),
        &verify.gate,
    )?;
    Ok((judgement, runs))
}

fn context<'a>(
    project: &'a Project,
    prepared: &'a Prepared,
    opts: &SuiteOptions,
    unreferenced: Unreferenced,
) -> Context<'a> {
    Context {
        project,
        prepared,
        snapshots: opts.snapshots,
        unreferenced,
    }
}
