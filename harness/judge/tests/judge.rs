//! Judging what synthetic kernels answer, against the sample programs and
//! case files of this test's own, in a temporary project: the counts of a
//! kernel's summary, every finding and its text, skips against feature
//! versions, what a kernel that stopped early was doing, snapshots, and
//! `verify`'s rows and gate. Nothing boots, nothing in the repository is
//! written.

use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
    sync::OnceLock,
    time::Duration,
};

use harness_cases::CompiledCase;
use harness_events::Silent;
use harness_judge::{
    Baseline, BaselineEntry, Context, ExpectationStatus, FeatureShortfall, Finding, FindingKind,
    Gate, GateViolation, KernelSummary, LogExcerpt, Severity, SnapshotHeader, Subject,
    TestJudgement, VerdictKind, VerdictText, VerifyJudgement,
};
use harness_kernels::{Boot, Origin, Target};
use harness_matrix::{KernelRun, RunFailure};
use harness_project::{PrepareOptions, Prepared, Project};
use harness_protocol::{
    Action, ActionOutput, CaseOutcome, CaseReport, CaseStep, Done, ExecTimings, GuestInfo,
    ProbeReport, ProgramReport, Record, StepOutput, StepsOutput, TestRunOutput, Verdict,
};
use harness_snapshots::{SnapshotStore, UpdateMode};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// An object with a map and no program: `verify` notes it.
const EMPTY_C: &str = r#"// SPDX-License-Identifier: GPL-2.0
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

char LICENSE[] SEC("license") = "GPL";
"#;

/// An object with two programs, loaded one after the other.
const PAIR_C: &str = r#"// SPDX-License-Identifier: GPL-2.0
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int first(struct xdp_md *ctx)
{
	return XDP_PASS;
}

SEC("xdp")
int second(struct xdp_md *ctx)
{
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
"#;

/// The files under `dir`, by path relative to it.
fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return out;
    };
    for e in entries {
        let path = e.unwrap().path();
        if path.is_dir() {
            out.extend(
                files(&path)
                    .into_iter()
                    .map(|(p, bytes)| (Path::new(path.file_name().unwrap()).join(p), bytes)),
            );
        } else {
            out.insert(path.file_name().unwrap().into(), fs::read(&path).unwrap());
        }
    }
    out
}

/// Makes `dir` hold exactly `wanted`, writing only what differs: objects
/// built from these files in an earlier run stay fresh.
fn sync(dir: &Path, wanted: &BTreeMap<PathBuf, Vec<u8>>) {
    for (path, bytes) in files(dir) {
        if wanted.get(&path) != Some(&bytes) {
            fs::remove_file(dir.join(path)).unwrap();
        }
    }
    for (path, bytes) in wanted {
        let path = dir.join(path);
        if !path.exists() {
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, bytes).unwrap();
        }
    }
}

const FW_CASES: &str = r#"object = "xdp_firewall"
program = "xdp_firewall"

[[case]]
name = "a denied source is dropped"
maps.deny_v4 = [{ key = "10.0.0.0/8", value = 7 }]
packet.ipv4 = { src = "10.0.0.1", dst = "10.0.0.2" }
packet.udp = { src = 40000, dst = 53 }
expect.return = "XDP_DROP"

[[case]]
name = "the trusted interface passes"
ctx = { ingress_ifindex = 1 }
maps.config = [{ key = 0, value = { trusted_ifindex = 1 } }]
packet.ipv4 = { src = "10.0.0.1", dst = "10.0.0.2" }
packet.udp = { src = 40000, dst = 53 }
expect.return = "XDP_PASS"
"#;

const FLOW_CASES: &str = r#"object = "flow_hash"
program = "flow_hash"

[[case]]
name = "a flow is hashed"
packet.ipv4 = { src = "10.0.0.1", dst = "10.0.0.2" }
packet.udp = { src = 40000, dst = 53 }
expect.return = "XDP_PASS"
"#;

const DROPPED: &str = "a denied source is dropped";
const TRUSTED: &str = "the trusted interface passes";
const HASHED: &str = "a flow is hashed";

/// A project of the sample programs, two of this test's and the case files
/// above, in the target directory (objects are rebuilt only when a source
/// changes), prepared once per test binary.
fn shared() -> &'static (Project, Prepared) {
    static SHARED: OnceLock<(Project, Prepared)> = OnceLock::new();
    SHARED.get_or_init(|| {
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("judge-project");
        let project = Project::at(&root, &root.join("target"));
        // The samples without the compatibility and rejected galleries and
        // the security programs (their own tests).
        let mut programs = files(&workspace().join("sample-programs"));
        programs.retain(|path, _| {
            !["gallery", "rejected", "security"]
                .iter()
                .any(|sub| path.starts_with(sub))
        });
        programs.insert("empty.bpf.c".into(), EMPTY_C.into());
        programs.insert("pair.bpf.c".into(), PAIR_C.into());
        sync(&project.root.join("sample-programs"), &programs);
        let cases = [("fw.toml", FW_CASES), ("flow.toml", FLOW_CASES)]
            .map(|(name, text)| (PathBuf::from(name), text.as_bytes().to_vec()));
        sync(&project.cases_dirs[0], &BTreeMap::from(cases));
        let options = PrepareOptions {
            log_level: 1,
            cases: true,
        };
        let prepared = harness_project::prepare(&project, options, &Silent).unwrap();
        (project, prepared)
    })
}

/// The shared project with snapshots of its own, empty: judging writes
/// nothing but snapshots, and only when asked to.
struct Sample {
    _snapshots: tempfile::TempDir,
    project: Project,
    prepared: &'static Prepared,
}

fn sample() -> Sample {
    let (project, prepared) = shared();
    let snapshots = tempfile::tempdir().unwrap();
    let project = Project {
        snapshots_dir: snapshots.path().to_owned(),
        ..project.clone()
    };
    Sample {
        _snapshots: snapshots,
        project,
        prepared,
    }
}

impl Sample {
    fn context(&self, snapshots: UpdateMode) -> Context<'_> {
        Context {
            project: &self.project,
            prepared: self.prepared,
            snapshots,
            unreferenced: harness_judge::Unreferenced::List,
        }
    }

    fn test(&self, snapshots: UpdateMode, runs: &[KernelRun]) -> TestJudgement {
        harness_judge::judge_test(&self.context(snapshots), runs).unwrap()
    }

    fn verify(&self, runs: &[KernelRun], baseline: Option<&Baseline>) -> VerifyJudgement {
        self.verify_gated(runs, baseline, &Gate::default())
    }

    fn verify_gated(
        &self,
        runs: &[KernelRun],
        baseline: Option<&Baseline>,
        gate: &Gate,
    ) -> VerifyJudgement {
        harness_judge::judge_verify(&self.context(UpdateMode::No), runs, baseline, gate).unwrap()
    }

    fn case(&self, name: &str) -> &CompiledCase {
        self.prepared.cases.iter().find(|c| c.name == name).unwrap()
    }

    /// A case as findings name it.
    fn subject(&self, name: &str) -> String {
        let c = self.case(name);
        format!("{}:{} `{}`", c.file.display(), c.line, c.name)
    }

    /// What a kernel reports, object by object (its programs, then its
    /// cases) as kernels work: `verdict` per program, `outcome` per case.
    fn answers(
        &self,
        verdict: impl Fn(&str) -> Option<(Verdict, String)>,
        outcome: impl Fn(&CompiledCase) -> Option<CaseOutcome>,
    ) -> Vec<Record> {
        let mut records = Vec::new();
        for o in &self.prepared.objects {
            for p in o.info.file.programs() {
                if let Some((v, log)) = verdict(&p.name) {
                    records.push(Record::Program(ProgramReport {
                        object: o.name.clone(),
                        program: p.name.clone(),
                        section: p.section.clone(),
                        prog_type: p.kind.as_ref().map_or("unknown", |k| k.name).into(),
                        verdict: v,
                        log,
                        log_level: 1,
                        log_truncated: false,
                        info: None,
                        load_ns: 0,
                        insn_cnt: 10,
                    }));
                }
            }
            for c in self.prepared.cases.iter().filter(|c| c.object == o.name) {
                if let Some(outcome) = outcome(c) {
                    records.push(Record::Case(CaseReport {
                        id: c.plan.id.clone(),
                        outcome,
                    }));
                }
            }
        }
        records
    }
}

/// The statistics an accepted program's log ends with.
fn stats_log(insns: u64) -> String {
    format!(
        "processed {insns} insns (limit 1000000) max_states_per_insn 0 total_states 3 peak_states 3 mark_read 1\n"
    )
}

fn accepted(_: &str) -> Option<(Verdict, String)> {
    Some((Verdict::Accepted, stats_log(100)))
}

/// Every program accepted, except `program`, which gets `verdict`.
fn all_but(
    program: &str,
    verdict: Verdict,
    log: &str,
) -> impl Fn(&str) -> Option<(Verdict, String)> {
    let (program, log) = (program.to_owned(), log.to_owned());
    move |name| {
        if name == program {
            Some((verdict.clone(), log.clone()))
        } else {
            accepted(name)
        }
    }
}

fn input(case: &CompiledCase) -> Vec<u8> {
    match &case.plan.action {
        Action::TestRun(input) => input.data.0.clone(),
        Action::Steps(_) => panic!("a test-run case"),
    }
}

fn ran(retval: u32, data_out: Vec<u8>) -> CaseOutcome {
    CaseOutcome::Ran {
        output: ActionOutput::TestRun(TestRunOutput {
            retval,
            data_out: data_out.into(),
            ctx_out: None,
            duration_ns: 0,
        }),
        maps: Vec::new(),
    }
}

/// What a case expects: its return value, the packet untouched.
fn as_expected(case: &CompiledCase) -> Option<CaseOutcome> {
    Some(ran(case.expect.retval.unwrap(), input(case)))
}

fn skipped(reason: &str) -> CaseOutcome {
    CaseOutcome::Skipped {
        reason: reason.into(),
    }
}

fn hello(release: &str) -> Record {
    Record::Hello(GuestInfo {
        release: release.into(),
        ..GuestInfo::default()
    })
}

fn probe(name: &str, available: bool) -> Record {
    Record::Probe(ProbeReport {
        name: name.into(),
        available,
        detail: String::new(),
    })
}

const TIMINGS: ExecTimings = ExecTimings {
    probes_ns: 1,
    parse_ns: 2,
    load_ns: 3,
    report_ns: 4,
    cases_ns: 5,
    emit_ns: 6,
    total_ns: 30,
};

fn done() -> Record {
    Record::Done(Done {
        error: None,
        timings: Some(TIMINGS),
    })
}

fn target(line: &str) -> Target {
    Target {
        label: line.into(),
        version: Some(line.parse().unwrap()),
        release: format!("{line}.0-test"),
        boot: Boot::Vm {
            bzimage: "/nonexistent".into(),
            config: None,
            origin: Origin::Image {
                path: "/nonexistent".into(),
            },
        },
    }
}

fn run(target: Target, records: Vec<Record>) -> KernelRun {
    KernelRun {
        target,
        accel: None,
        records,
        failure: None,
        boot_time: None,
        total_time: Duration::ZERO,
    }
}

/// A kernel that answered everything as expected.
fn complete(s: &Sample, line: &str) -> KernelRun {
    let mut records = vec![hello(&format!("{line}.0-test"))];
    records.extend(s.answers(accepted, as_expected));
    records.push(done());
    run(target(line), records)
}

fn texts<'a>(findings: impl IntoIterator<Item = &'a Finding>) -> Vec<String> {
    findings.into_iter().map(ToString::to_string).collect()
}

/// What findings say before their details (logs, diagnoses).
fn first_lines<'a>(findings: impl IntoIterator<Item = &'a Finding>) -> Vec<String> {
    findings
        .into_iter()
        .map(|f| f.to_string().lines().next().unwrap_or_default().to_owned())
        .collect()
}

const FLOW_NOT_MET: &str = "flow_hash/flow_hash on 6.1: expected accepted on >=5.17 \
                            (sample-programs/flow_hash.bpf.c, flow_hash), but the verifier rejected it";

/// A real rejection (of a packet access without a bounds check), as 7.2
/// logs it at level 2: longer than what a failure shows of it.
fn rejection_log() -> String {
    let path = "harness/diagnose/testdata/packet_bounds/7.2.level2.log";
    fs::read_to_string(workspace().join(path)).unwrap()
}

/// flow_hash's log on 5.10, where it is rejected as its source declares.
fn flow_hash_on_5_10() -> String {
    let snapshot = SnapshotStore::new(workspace().join("testcases/snapshots"), UpdateMode::No)
        .expected("verifier__flow_hash__flow_hash", "5.10")
        .unwrap();
    snapshot.split_once("\n\n").unwrap().1.to_owned()
}

#[test]
fn a_kernel_summary_counts_programs_and_cases() {
    let s = sample();
    let mut records = vec![hello("6.1.0-50-cloud-amd64"), probe("xdp_ctx", true)];
    records.extend(s.answers(accepted, |c| match c.name.as_str() {
        DROPPED => Some(ran(2, input(c))),
        TRUSTED => Some(skipped("no xdp_md context")),
        _ => as_expected(c),
    }));
    records.push(done());
    let kernel = KernelRun {
        accel: Some(harness_vm::Accel::Tcg),
        boot_time: Some(Duration::from_secs(2)),
        total_time: Duration::from_secs(3),
        ..run(target("6.1"), records)
    };
    let j = s.test(UpdateMode::No, &[kernel]);
    assert_eq!(
        j.kernels,
        [KernelSummary {
            label: "6.1".into(),
            release: "6.1.0-50-cloud-amd64".into(),
            accel: Some("tcg".into()),
            boot: Some(Duration::from_secs(2)),
            total: Duration::from_secs(3),
            programs: 7,
            programs_accepted: 7,
            programs_failing_as_expected: 0,
            passed: 1,
            failed: 1,
            skipped: 1,
            not_run: 0,
            // Seven programs and the two cases that ran; none committed.
            snapshots_matched: 0,
            snapshots_new: 9,
            snapshots_changed: 0,
            error: None,
            exec: Some(TIMINGS),
        }]
    );
    let line = FW_CASES
        .lines()
        .position(|l| l == "expect.return = \"XDP_DROP\"")
        .unwrap()
        + 1;
    assert_eq!(
        texts(j.failures()),
        [format!(
            "{} on 6.1:\n      line {line}: return value: expected XDP_DROP (1), got XDP_PASS (2)",
            s.subject(DROPPED)
        )]
    );
    // The probe did not fail: nothing says the kernel lacks the feature.
    assert_eq!(
        texts(j.skips()),
        [format!(
            "{} on 6.1: skipped: no xdp_md context",
            s.subject(TRUSTED)
        )]
    );
    assert!(!j.ok());
}

#[test]
fn a_program_rejected_as_its_source_declares_skips_its_cases() {
    let s = sample();
    let log = flow_hash_on_5_10();
    let rejected = Verdict::Rejected {
        errno: 22,
        message: "Invalid argument".into(),
    };
    let mut records = vec![hello("5.10.0-32-cloud-amd64"), probe("xdp_ctx", false)];
    records.extend(s.answers(
        all_but("flow_hash", rejected, &log),
        |c| match c.name.as_str() {
            TRUSTED => Some(skipped("no xdp_md context")),
            _ => as_expected(c),
        },
    ));
    records.push(done());
    let j = s.test(UpdateMode::No, &[run(target("5.10"), records)]);
    let k = &j.kernels[0];
    assert_eq!(
        (
            k.programs,
            k.programs_accepted,
            k.programs_failing_as_expected
        ),
        (7, 6, 1)
    );
    assert_eq!((k.passed, k.failed, k.skipped), (1, 0, 2));
    assert!(j.failures().next().is_none(), "{:?}", texts(j.failures()));
    assert_eq!(
        texts(j.skips()),
        [
            format!(
                "{} on 5.10: skipped: flow_hash/flow_hash is rejected on 5.10, as expected",
                s.subject(HASHED)
            ),
            // 5.10 predates XDP contexts in BPF_PROG_TEST_RUN (5.13).
            format!("{} on 5.10: skipped: no xdp_md context", s.subject(TRUSTED)),
        ]
    );

    // The same rejection on a kernel that should accept it fails, with the
    // kernel's reason, and the cases run.
    let mut records = vec![hello("6.1.0-50-cloud-amd64")];
    records.extend(s.answers(
        all_but(
            "flow_hash",
            Verdict::Rejected {
                errno: 22,
                message: "Invalid argument".into(),
            },
            &log,
        ),
        as_expected,
    ));
    let j = s.test(UpdateMode::No, &[run(target("6.1"), records)]);
    let k = &j.kernels[0];
    assert_eq!(
        (
            k.programs_accepted,
            k.programs_failing_as_expected,
            k.passed
        ),
        (6, 0, 3)
    );
    assert_eq!(first_lines(j.failures()), [FLOW_NOT_MET]);
}

#[test]
fn an_expectation_that_does_not_hold_is_a_failure_with_the_log() {
    let s = sample();
    // Accepted where it should be rejected.
    let mut records = vec![hello("5.10.0-32-cloud-amd64")];
    records.extend(s.answers(accepted, as_expected));
    let j = s.test(UpdateMode::No, &[run(target("5.10"), records)]);
    let k = &j.kernels[0];
    assert_eq!(
        (k.programs_accepted, k.programs_failing_as_expected),
        (7, 0)
    );
    assert_eq!(
        j.failures().map(|f| &f.kind).collect::<Vec<_>>(),
        [&FindingKind::ExpectationNotMet {
            mismatch: harness_verifier::Mismatch::Verdict {
                expected: harness_verifier::ExpectedVerdict::Rejected,
                got: harness_verifier::ExpectedVerdict::Accepted,
                kernels: harness_verifier::KernelRange::parse("<5.13").unwrap(),
                origin: "sample-programs/flow_hash.bpf.c, flow_hash".into(),
            },
            log: Some(LogExcerpt {
                tail: vec![stats_log(100).trim_end().to_owned()],
                path: "target/harness/5.10/verifier/flow_hash/flow_hash.log".into(),
            }),
            diagnosis: None,
        }]
    );

    // Rejected, but not for the reason declared: its cases still run.
    let mut records = vec![hello("5.10.0-32-cloud-amd64")];
    let other = Verdict::Rejected {
        errno: 13,
        message: "Permission denied".into(),
    };
    records.extend(s.answers(all_but("flow_hash", other, &rejection_log()), as_expected));
    let j = s.test(UpdateMode::No, &[run(target("5.10"), records)]);
    let k = &j.kernels[0];
    assert_eq!(
        (k.programs_accepted, k.programs_failing_as_expected),
        (6, 0)
    );
    assert_eq!(k.passed, 3);
    let failure = texts(j.failures()).remove(0);
    assert!(
        failure.starts_with(
            "flow_hash/flow_hash on 5.10: rejected as expected \
             (sample-programs/flow_hash.bpf.c, flow_hash), but the log does not match \
             /number of funcs in func_info doesn't match number of subprogs/"
        ),
        "{failure}"
    );
}

#[test]
fn an_unexpected_rejection_shows_the_diagnosis_and_where_the_log_is() {
    let s = sample();
    let log = rejection_log();
    let mut records = vec![hello("7.2.13+deb14-cloud-amd64")];
    let verdict = Verdict::Rejected {
        errno: 13,
        message: "Permission denied".into(),
    };
    records.extend(s.answers(all_but("tc_lb", verdict, &log), as_expected));
    records.push(done());
    let j = s.test(UpdateMode::No, &[run(target("7.2"), records)]);
    let k = &j.kernels[0];
    assert_eq!((k.programs, k.programs_accepted), (7, 6));
    assert!(!k.ok());
    let failures: Vec<&Finding> = j.failures().collect();
    assert_eq!(failures.len(), 1);
    assert_eq!(
        failures[0].subject,
        Subject::Program {
            object: "tc_lb".into(),
            program: "tc_lb".into(),
        }
    );
    let FindingKind::Unexpected {
        verdict,
        log: Some(excerpt),
        diagnosis: Some(diagnosis),
    } = &failures[0].kind
    else {
        panic!("{:?}", failures[0].kind);
    };
    assert_eq!(verdict.0, "rejected: Permission denied (errno 13)");
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(excerpt.tail, lines[lines.len() - 15..]);
    assert_eq!(
        excerpt.path,
        Path::new("target/harness/7.2/verifier/tc_lb/tc_lb.log")
    );
    assert!(
        diagnosis.message.contains("invalid access to packet"),
        "{diagnosis:?}"
    );
    let text = failures[0].to_string();
    assert!(
        text.starts_with(
            "tc_lb/tc_lb on 7.2: the verifier rejected it (rejected: Permission denied (errno 13))\n      "
        ) && text.contains("invalid access to packet")
            && text.ends_with("\n    full log: target/harness/7.2/verifier/tc_lb/tc_lb.log"),
        "{text}"
    );
    assert!(!text.contains('\x1b'), "plain by default: {text}");
    // `{:#}` styles the diagnosis; without its codes it reads the same.
    let styled = format!("{:#}", failures[0]);
    assert!(styled.contains('\x1b'), "{styled}");
    assert_eq!(anstream::adapter::strip_str(&styled).to_string(), text);
    // A program the harness could not load, with no expectation about it.
    let mut records = vec![hello("7.2.13+deb14-cloud-amd64")];
    let not_loaded = Verdict::NotLoaded {
        reason: "section `tc` is not a program section".into(),
    };
    records.extend(s.answers(all_but("tc_lb", not_loaded, ""), as_expected));
    let j = s.test(UpdateMode::No, &[run(target("7.2"), records)]);
    assert_eq!(
        texts(j.failures()),
        ["tc_lb/tc_lb on 7.2: not loaded: section `tc` is not a program section"]
    );
}

#[test]
fn a_skip_is_fine_before_the_feature_and_a_failure_after() {
    let s = sample();
    let kernel = |t: Target, available: bool| {
        let mut records = vec![probe("xdp_ctx", available)];
        records.extend(s.answers(accepted, |c| match c.name.as_str() {
            TRUSTED => Some(skipped("the xdp_ctx probe failed")),
            _ => as_expected(c),
        }));
        run(t, records)
    };
    let image = Target {
        label: "my-kernel".into(),
        version: None,
        ..target("6.1")
    };
    let j = s.test(
        UpdateMode::No,
        &[
            kernel(target("5.12"), false),
            kernel(target("5.13"), false),
            kernel(target("6.1"), true),
            kernel(image, false),
        ],
    );
    let skipped: Vec<usize> = j.kernels.iter().map(|k| k.skipped).collect();
    let failed: Vec<usize> = j.kernels.iter().map(|k| k.failed).collect();
    assert_eq!((skipped, failed), (vec![1, 0, 1, 1], vec![0, 1, 0, 0]));
    // flow_hash, accepted on every kernel here, fails before 5.13 too.
    let failure = j
        .failures()
        .find(|f| matches!(f.kind, FindingKind::UnexpectedSkip { .. }))
        .unwrap();
    assert_eq!(
        failure.kind,
        FindingKind::UnexpectedSkip {
            reason: "the xdp_ctx probe failed".into(),
            version: "5.13".parse().unwrap(),
            features: vec![FeatureShortfall {
                name: "xdp_ctx".into(),
                what: "an xdp_md context in BPF_PROG_TEST_RUN".into(),
                since: "5.13".parse().unwrap(),
            }],
        }
    );
    assert_eq!(
        failure.to_string(),
        format!(
            "{} on 5.13: skipped, but kernel 5.13 should support xdp_ctx \
             (an xdp_md context in BPF_PROG_TEST_RUN, since 5.13): the xdp_ctx probe failed",
            s.subject(TRUSTED)
        )
    );
}

#[test]
fn what_the_kernel_says_about_itself_and_cases_it_does_not_know() {
    let s = sample();
    let mut records = vec![Record::ObjectError {
        object: "cgroup_egress".into(),
        error: "creating map `policy_v4`: Operation not permitted".into(),
    }];
    records.extend(s.answers(
        |name| (name != "egress_policy").then(|| (Verdict::Accepted, stats_log(100))),
        as_expected,
    ));
    records.push(Record::Case(CaseReport {
        id: "fw::no such case".into(),
        outcome: ran(0, Vec::new()),
    }));
    records.push(Record::Done(Done {
        error: Some("cannot read the plan".into()),
        timings: None,
    }));
    let j = s.test(UpdateMode::No, &[run(target("6.1"), records)]);
    let k = &j.kernels[0];
    assert_eq!((k.passed, k.failed), (3, 1));
    assert_eq!(k.error.as_deref(), Some("cannot read the plan"));
    assert_eq!(
        texts(j.failures()),
        [
            "object `cgroup_egress` on 6.1: could not be loaded: creating map `policy_v4`: Operation not permitted",
            "6.1: the kernel reported an unknown case `fw::no such case`",
            "6.1: the runner failed: cannot read the plan",
        ]
    );
}

#[test]
fn a_kernel_that_finishes_without_a_case_fails_it() {
    let s = sample();
    // Neither a result for one case nor the pair's second program: the
    // kernel did not stop, so nothing was left "while loading", and both
    // are missing from a stream that claims to be complete.
    let mut records = s.answers(
        |name| (name != "second").then(|| (Verdict::Accepted, stats_log(100))),
        |c| (c.name != HASHED).then(|| as_expected(c)).flatten(),
    );
    records.push(done());
    let j = s.test(UpdateMode::No, &[run(target("6.1"), records)]);
    let k = &j.kernels[0];
    assert_eq!((k.programs, k.passed, k.failed, k.not_run), (7, 2, 1, 0));
    assert_eq!(k.programs_accepted, 6);
    assert!(!k.ok());
    // No hello: the release is what was known before booting.
    assert_eq!(k.release, "6.1.0-test");
    let failures = texts(j.failures());
    assert_eq!(failures.len(), 2, "{failures:?}");
    assert!(failures.contains(&format!("{} on 6.1: produced no result", s.subject(HASHED))));
    assert!(
        failures
            .iter()
            .any(|f| f.ends_with("/second on 6.1: produced no result")),
        "{failures:?}"
    );
}

#[test]
fn a_kernel_that_stops_while_loading_names_the_program() {
    let s = sample();
    // It got to the pair's first program and no further.
    let mut reached = true;
    let records: Vec<Record> = s
        .answers(accepted, as_expected)
        .into_iter()
        .take_while(|r| {
            let keep = reached;
            reached &= !matches!(r, Record::Program(p) if p.program == "first");
            keep
        })
        .collect();
    let mut kernel = run(target("6.12"), records);
    kernel.failure = Some(RunFailure::Host(std::io::Error::other(
        "timed out after 300s\nconsole tail: ...",
    )));
    let j = s.test(UpdateMode::No, &[kernel]);
    let k = &j.kernels[0];
    assert_eq!(
        k.error.as_deref(),
        Some("running on the host: timed out after 300s")
    );
    assert_eq!((k.passed, k.failed, k.not_run), (1, 0, 2));
    assert_eq!(
        texts(j.failures()),
        [
            "6.12: running on the host: timed out after 300s\nconsole tail: ...".to_owned(),
            "pair/second on 6.12: not finished: the kernel stopped while loading it".to_owned(),
        ]
    );
    assert_eq!(
        texts(j.skips()),
        [DROPPED, TRUSTED].map(|c| format!(
            "{} on 6.12: not run: the kernel stopped before it",
            s.subject(c)
        ))
    );
    assert!(!k.ok() && !j.ok());
}

#[test]
fn a_kernel_that_stops_during_a_case_names_it_and_skips_the_rest() {
    let s = sample();
    // An object that could not be prepared reports no programs; the kernel
    // then died after the firewall's program, in its first case.
    let mut records = vec![Record::ObjectError {
        object: "cgroup_egress".into(),
        error: "BTF: Invalid argument".into(),
    }];
    records.extend(s.answers(
        |name| (name != "egress_policy").then(|| (Verdict::Accepted, stats_log(100))),
        |c| {
            (c.object != "xdp_firewall")
                .then(|| as_expected(c))
                .flatten()
        },
    ));
    let mut kernel = run(target("6.12"), records);
    kernel.failure = Some(RunFailure::Host(std::io::Error::other(
        "the guest panicked",
    )));
    let j = s.test(UpdateMode::No, &[kernel]);
    let k = &j.kernels[0];
    assert_eq!((k.passed, k.failed, k.not_run), (1, 1, 1));
    assert_eq!(
        texts(j.failures()),
        [
            "6.12: running on the host: the guest panicked".to_owned(),
            "object `cgroup_egress` on 6.12: could not be loaded: BTF: Invalid argument".to_owned(),
            format!(
                "{} on 6.12: not finished: the kernel stopped while it ran",
                s.subject(DROPPED)
            ),
        ]
    );
    assert_eq!(
        texts(j.skips()),
        [format!(
            "{} on 6.12: not run: the kernel stopped before it",
            s.subject(TRUSTED)
        )]
    );
}

#[test]
fn snapshots_are_counted_per_kernel_as_matched_new_or_changed() {
    let s = sample();
    let kernels = || [complete(&s, "6.1"), complete(&s, "6.12")];
    // Accepted in place (INSTA_UPDATE=always): matched.
    let first = s.test(UpdateMode::Always, &kernels());
    let counts = |j: &TestJudgement| -> Vec<(usize, usize, usize)> {
        j.kernels
            .iter()
            .map(|k| (k.snapshots_matched, k.snapshots_new, k.snapshots_changed))
            .collect()
    };
    assert_eq!(counts(&first), [(10, 0, 0), (10, 0, 0)]);
    assert_eq!(first.pending_snapshots, 0);
    let again = s.test(UpdateMode::No, &kernels());
    assert_eq!(counts(&again), [(10, 0, 0), (10, 0, 0)]);
    assert!(again.ok(), "{:?}", again.kernels);
    assert!(again.snapshot_notes.is_empty());

    // What the snapshots hold: the verdict and statistics of a program,
    // the return value, output packet and maps of a case.
    let dir = &s.project.snapshots_dir;
    let verifier = fs::read_to_string(dir.join("verifier__tc_lb__tc_lb.snap")).unwrap();
    assert!(
        verifier.contains("source: \"sample-programs/tc_lb.bpf.c\"\n")
            && verifier.contains("program = \"tc_lb/tc_lb\"\n")
            && verifier.contains("insns_processed = 100\n")
            && verifier.contains("processed 100 insns"),
        "{verifier}"
    );
    let case = fs::read_to_string(dir.join("case__fw__a_denied_source_is_dropped.snap")).unwrap();
    let bytes = input(s.case(DROPPED)).len();
    assert!(
        case.contains(&format!(
            "case: a denied source is dropped\nprogram: xdp_firewall/xdp_firewall\n\
             return: XDP_DROP (1)\noutput packet: unchanged ({bytes} bytes)\n\nmaps after the run:\n"
        )),
        "{case}"
    );

    // Both kernels now rewrite a packet, and a snapshot is gone.
    let mut changed = kernels();
    for r in changed.iter_mut().flat_map(|k| &mut k.records) {
        if let Record::Case(c) = r
            && c.id == s.case(HASHED).plan.id
        {
            let mut out = input(s.case(HASHED));
            out[0] = 0x0a;
            c.outcome = ran(2, out);
        }
    }
    fs::remove_file(dir.join("verifier__pair__first.snap")).unwrap();
    let j = s.test(UpdateMode::No, &changed);
    assert_eq!(counts(&j), [(8, 1, 1), (8, 1, 1)]);
    assert!(!j.ok() && !j.kernels[0].ok() && !j.kernels[1].ok());
    let diff = j
        .snapshot_notes
        .iter()
        .find(|n| n.name == "case__flow__a_flow_is_hashed")
        .unwrap()
        .to_string();
    assert!(
        diff.contains("rewritten:") && diff.contains("eth.dst: 0a:"),
        "{diff}"
    );
}

fn summary() -> KernelSummary {
    KernelSummary {
        programs: 4,
        programs_accepted: 3,
        programs_failing_as_expected: 1,
        passed: 5,
        skipped: 1,
        snapshots_matched: 9,
        ..KernelSummary::default()
    }
}

#[test]
fn a_kernel_is_ok_only_when_nothing_is_wrong_with_it() {
    assert!(summary().ok());
    for broken in [
        KernelSummary {
            error: Some("timed out".into()),
            ..summary()
        },
        KernelSummary {
            failed: 1,
            ..summary()
        },
        KernelSummary {
            not_run: 1,
            ..summary()
        },
        KernelSummary {
            snapshots_new: 1,
            ..summary()
        },
        KernelSummary {
            snapshots_changed: 1,
            ..summary()
        },
        KernelSummary {
            programs_accepted: 2,
            ..summary()
        },
        KernelSummary {
            programs_failing_as_expected: 0,
            ..summary()
        },
    ] {
        assert!(!broken.ok(), "{broken:?}");
    }
}

fn finding(kernel: &str, severity: Severity, kind: FindingKind) -> Finding {
    Finding {
        kernel: kernel.into(),
        subject: Subject::Program {
            object: "o".into(),
            program: "p".into(),
        },
        severity,
        kind,
    }
}

#[test]
fn a_judgement_is_ok_when_no_finding_fails_and_every_kernel_is() {
    let note = finding("6.1", Severity::Note, FindingKind::NotInBaseline);
    let skip = finding(
        "6.1",
        Severity::Skip,
        FindingKind::Skipped { reason: "r".into() },
    );
    let failure = finding(
        "6.1",
        Severity::Failure,
        FindingKind::NoResult { running: false },
    );
    let test = |findings: Vec<Finding>, kernel: KernelSummary| TestJudgement {
        kernels: vec![kernel],
        findings,
        ..TestJudgement::default()
    };
    let fine = test(vec![note.clone(), skip.clone()], summary());
    assert!(fine.ok());
    assert_eq!(fine.skips().collect::<Vec<_>>(), [&skip]);
    assert!(fine.failures().next().is_none());
    assert!(!test(vec![skip.clone(), failure.clone()], summary()).ok());
    let broken = KernelSummary {
        failed: 1,
        ..summary()
    };
    assert!(!test(vec![skip.clone()], broken).ok());
    let failing = test(vec![skip, failure.clone()], summary());
    assert_eq!(failing.failures().collect::<Vec<_>>(), [&failure]);

    let verify = |findings: Vec<Finding>| VerifyJudgement {
        findings,
        ..VerifyJudgement::default()
    };
    let noted = verify(vec![note.clone()]);
    assert!(noted.ok());
    assert_eq!(noted.notes().collect::<Vec<_>>(), [&note]);
    assert!(noted.failures().next().is_none());
    let failed = verify(vec![note, failure.clone()]);
    assert!(!failed.ok());
    assert_eq!(failed.failures().collect::<Vec<_>>(), [&failure]);
    assert_eq!(failed.notes().count(), 1);
}

#[test]
fn every_finding_reads_as_its_subject_kernel_and_what() {
    let program = |kind| finding("6.1", Severity::Failure, kind);
    let on_kernel = |kind| Finding {
        subject: Subject::Kernel,
        ..program(kind)
    };
    let diagnosis = harness_diagnose::diagnose(&rejection_log()).unwrap();
    let excerpt = LogExcerpt {
        tail: vec![
            "R1 offset is outside of the packet".into(),
            "processed 2 insns".into(),
        ],
        path: "target/harness/6.1/verifier/o/p.log".into(),
    };
    let indented: String = diagnosis
        .to_string()
        .lines()
        .map(|l| format!("\n      {l}"))
        .collect();
    let cases = [
        (
            on_kernel(FindingKind::RunFailed {
                error: "QEMU exited".into(),
            }),
            "6.1: QEMU exited".to_owned(),
        ),
        (
            Finding {
                subject: Subject::Object {
                    object: "empty".into(),
                    source: Some("sample-programs/empty.bpf.c".into()),
                },
                ..program(FindingKind::NoPrograms)
            },
            "sample-programs/empty.bpf.c: the object has no programs".into(),
        ),
        (
            Finding {
                subject: Subject::Object {
                    object: "fw".into(),
                    source: Some("sample-programs/fw.bpf.c".into()),
                },
                ..program(FindingKind::ObjectNotLoaded { error: "e".into() })
            },
            "sample-programs/fw.bpf.c on 6.1: could not be loaded: e".into(),
        ),
        (
            program(FindingKind::Unexpected {
                verdict: VerdictText("rejected: Permission denied (errno 13)".into()),
                log: Some(excerpt.clone()),
                diagnosis: None,
            }),
            "o/p on 6.1: the verifier rejected it (rejected: Permission denied (errno 13)); \
             last lines of its log:\n      R1 offset is outside of the packet\n      processed 2 insns\n    \
             full log: target/harness/6.1/verifier/o/p.log"
                .into(),
        ),
        (
            program(FindingKind::Unexpected {
                verdict: VerdictText("rejected: Permission denied (errno 13)".into()),
                log: Some(excerpt.clone()),
                diagnosis: Some(Box::new(diagnosis.clone())),
            }),
            format!(
                "o/p on 6.1: the verifier rejected it (rejected: Permission denied (errno 13)){indented}\n    \
                 full log: target/harness/6.1/verifier/o/p.log"
            ),
        ),
        (
            program(FindingKind::Unexpected {
                verdict: VerdictText("not loaded: no BTF".into()),
                log: None,
                diagnosis: Some(Box::new(diagnosis)),
            }),
            "o/p on 6.1: not loaded: no BTF".into(),
        ),
        (
            program(FindingKind::Gate(GateViolation::VerdictChanged {
                from: VerdictKind::Accepted,
                to: VerdictKind::NotLoaded,
                reason: "no BTF".into(),
                errno: None,
            })),
            "o/p on 6.1: verdict changed from accepted to not loaded (no BTF)".into(),
        ),
        (
            program(FindingKind::Gate(GateViolation::VerdictChanged {
                from: VerdictKind::Rejected,
                to: VerdictKind::Accepted,
                reason: String::new(),
                errno: None,
            })),
            "o/p on 6.1: verdict changed from rejected to accepted".into(),
        ),
        (
            program(FindingKind::CaseError {
                step: CaseStep::Setup,
                error: "writing map `stats`: E2BIG".into(),
            }),
            "o/p on 6.1: writing map `stats`: E2BIG".into(),
        ),
        (
            Finding {
                subject: Subject::Case {
                    file: "testcases/fw.toml".into(),
                    line: 4,
                    name: "c".into(),
                },
                ..program(FindingKind::UnexpectedSkip {
                    reason: "probes failed".into(),
                    version: "6.1".parse().unwrap(),
                    features: ["lpm_trie", "xdp_ctx"]
                        .map(|name| {
                            let f = harness_cases::features::feature(name).unwrap();
                            FeatureShortfall {
                                name: f.name.into(),
                                what: f.what.into(),
                                since: f.since,
                            }
                        })
                        .to_vec(),
                })
            },
            "testcases/fw.toml:4 `c` on 6.1: skipped, but kernel 6.1 should support \
             lpm_trie (BPF_MAP_TYPE_LPM_TRIE, since 4.11), \
             xdp_ctx (an xdp_md context in BPF_PROG_TEST_RUN, since 5.13): probes failed"
                .into(),
        ),
    ];
    for (finding, text) in cases {
        assert_eq!(finding.to_string(), text);
    }
    assert!(program(FindingKind::NotReached).is_failure());
    assert!(!finding("6.1", Severity::Skip, FindingKind::NotReached).is_failure());
    assert!(!finding("6.1", Severity::Note, FindingKind::NotInBaseline).is_failure());
}

/// `verify` on two kernels: 6.1, where one object cannot be prepared,
/// flow_hash is rejected against its declaration and tc_lb processes
/// `tc_lb_insns` instructions; 5.10, where flow_hash is rejected as declared.
fn verify_runs(s: &Sample, tc_lb_insns: u64) -> Vec<KernelRun> {
    let old = run(
        target("5.10"),
        s.answers(
            all_but(
                "flow_hash",
                Verdict::Rejected {
                    errno: 22,
                    message: "Invalid argument".into(),
                },
                &flow_hash_on_5_10(),
            ),
            |_| None,
        ),
    );
    let mut records = vec![Record::ObjectError {
        object: "dns_filter".into(),
        error: "BTF: Invalid argument".into(),
    }];
    records.extend(s.answers(
        |name| match name {
            "dns_filter" => None,
            "tc_lb" => Some((Verdict::Accepted, stats_log(tc_lb_insns))),
            // Rejected on 6.1, where it is declared accepted: not met.
            "flow_hash" => Some((
                Verdict::Rejected {
                    errno: 13,
                    message: "Permission denied".into(),
                },
                rejection_log(),
            )),
            other => accepted(other),
        },
        |_| None,
    ));
    vec![run(target("6.1"), records), old]
}

#[test]
fn verify_rows_their_expectations_and_the_gate_against_the_snapshots() {
    let s = sample();
    // The committed snapshot of tc_lb on 6.1 is the baseline.
    let committed = "verifier__tc_lb__tc_lb@6.1.snap";
    fs::copy(
        workspace().join("testcases/snapshots").join(committed),
        s.project.snapshots_dir.join(committed),
    )
    .unwrap();
    let before = SnapshotStore::new(s.project.snapshots_dir.clone(), UpdateMode::No)
        .expected("verifier__tc_lb__tc_lb", "6.1")
        .and_then(|text| SnapshotHeader::read(&text))
        .and_then(|h| h.insns_processed)
        .unwrap();
    let j = s.verify(&verify_runs(&s, before * 2), None);
    assert_eq!(j.kernels, ["6.1", "5.10"]);
    let rows: Vec<(&str, &str, &str)> = j
        .rows
        .iter()
        .map(|r| (r.object.as_str(), r.program.as_str(), r.kernel.as_str()))
        .collect();
    assert_eq!(
        rows,
        [
            ("cgroup_egress", "egress_policy", "5.10"),
            ("cgroup_egress", "egress_policy", "6.1"),
            ("dns_filter", "dns_filter", "5.10"),
            ("flow_hash", "flow_hash", "5.10"),
            ("flow_hash", "flow_hash", "6.1"),
            ("pair", "first", "5.10"),
            ("pair", "first", "6.1"),
            ("pair", "second", "5.10"),
            ("pair", "second", "6.1"),
            ("tc_lb", "tc_lb", "5.10"),
            ("tc_lb", "tc_lb", "6.1"),
            ("xdp_firewall", "xdp_firewall", "5.10"),
            ("xdp_firewall", "xdp_firewall", "6.1"),
        ]
    );
    let row = |program: &str, kernel: &str| {
        j.rows
            .iter()
            .find(|r| r.program == program && r.kernel == kernel)
            .unwrap()
    };
    assert_eq!(
        row("flow_hash", "5.10").expectation,
        Some(ExpectationStatus::AsExpected)
    );
    assert_eq!(row("flow_hash", "5.10").verdict, VerdictKind::Rejected);
    assert_eq!(
        row("flow_hash", "6.1").expectation,
        Some(ExpectationStatus::NotMet)
    );
    assert_eq!(row("tc_lb", "6.1").expectation, None);
    assert_eq!(row("tc_lb", "6.1").baseline_insns, Some(before));
    assert_eq!(row("tc_lb", "6.1").insns_diff_pct, Some(100.0));
    // Without a snapshot there is nothing to compare, and nothing to say.
    assert_eq!(row("tc_lb", "5.10").baseline_insns, None);
    assert_eq!(
        first_lines(j.failures()),
        [
            "object `dns_filter` on 6.1: could not be loaded: BTF: Invalid argument".to_owned(),
            FLOW_NOT_MET.to_owned(),
            format!(
                "tc_lb/tc_lb on 6.1: instructions processed {before} -> {} (+100.0%, limit +10%)",
                before * 2
            ),
        ]
    );
    assert_eq!(
        texts(j.notes()),
        ["sample-programs/empty.bpf.c: the object has no programs"]
    );
    assert!(!j.ok());
    // Every observation is checked: the one committed snapshot differs.
    assert!(
        j.snapshot_notes
            .iter()
            .any(|n| n.name == "verifier__tc_lb__tc_lb" && n.lines == ["6.1"]),
        "{:?}",
        j.snapshot_notes
    );
    let within = s.verify(&verify_runs(&s, before), None);
    assert_eq!(
        within.failures().count(),
        2,
        "{:?}",
        texts(within.failures())
    );
}

#[test]
fn verify_against_a_baseline_file_notes_programs_it_lacks() {
    let s = sample();
    let mut baseline = Baseline::new();
    baseline.insert(
        ("tc_lb".into(), "tc_lb".into(), "6.1".into()),
        BaselineEntry {
            verdict: Some(VerdictKind::Accepted),
            insns: Some(100),
            total_states: Some(3),
            peak_states: Some(3),
        },
    );
    baseline.insert(
        ("flow_hash".into(), "flow_hash".into(), "5.10".into()),
        BaselineEntry {
            verdict: Some(VerdictKind::Accepted),
            insns: Some(100),
            total_states: None,
            peak_states: None,
        },
    );
    let j = s.verify(&verify_runs(&s, 150), Some(&baseline));
    assert_eq!(
        first_lines(j.failures()),
        [
            "object `dns_filter` on 6.1: could not be loaded: BTF: Invalid argument",
            FLOW_NOT_MET,
            "tc_lb/tc_lb on 6.1: instructions processed 100 -> 150 (+50.0%, limit +10%)",
            "flow_hash/flow_hash on 5.10: verdict changed from accepted to rejected \
             (Invalid argument (errno 22))",
        ]
    );
    let lacking: Vec<String> = j
        .notes()
        .filter(|n| n.kind == FindingKind::NotInBaseline)
        .map(ToString::to_string)
        .collect();
    assert_eq!(lacking.len(), 11, "{lacking:?}");
    assert!(lacking.contains(
        &"xdp_firewall/xdp_firewall on 5.10: not in the baseline file, nothing to compare".into()
    ));
}

/// The kernel's BPF CI way: what the base branch already failed is
/// reported, what is new fails; cost changes are reported.
#[test]
fn against_a_baseline_only_new_failures_fail_when_asked() {
    let s = sample();
    let entry = |verdict, insns| BaselineEntry {
        verdict: Some(verdict),
        insns: Some(insns),
        total_states: None,
        peak_states: None,
    };
    let mut baseline = Baseline::new();
    // Rejected on the base branch already (its expectation not met there
    // either); accepted there and rejected now; cheaper there.
    baseline.insert(
        ("flow_hash".into(), "flow_hash".into(), "6.1".into()),
        entry(VerdictKind::Rejected, 100),
    );
    baseline.insert(
        ("flow_hash".into(), "flow_hash".into(), "5.10".into()),
        entry(VerdictKind::Accepted, 100),
    );
    baseline.insert(
        ("tc_lb".into(), "tc_lb".into(), "6.1".into()),
        entry(VerdictKind::Accepted, 100),
    );
    let gate = Gate {
        new_failures_only: true,
        ..Gate::default()
    };
    let j = s.verify_gated(&verify_runs(&s, 150), Some(&baseline), &gate);
    let failures = first_lines(j.failures());
    assert_eq!(
        failures,
        [
            "object `dns_filter` on 6.1: could not be loaded: BTF: Invalid argument",
            "flow_hash/flow_hash on 5.10: verdict changed from accepted to rejected \
             (Invalid argument (errno 22))",
        ],
        "{failures:?}"
    );
    let notes = first_lines(j.notes());
    assert!(notes.contains(&FLOW_NOT_MET.to_owned()), "{notes:?}");
    assert!(
        notes.contains(
            &"tc_lb/tc_lb on 6.1: instructions processed 100 -> 150 (+50.0%, limit +10%)".into()
        ),
        "{notes:?}"
    );
    // Without the mode, both are failures.
    let all = s.verify(&verify_runs(&s, 150), Some(&baseline));
    assert_eq!(
        all.failures().count(),
        4,
        "{:?}",
        first_lines(all.failures())
    );
    // A rejection with no baseline row is new: it fails.
    baseline.remove(&("flow_hash".into(), "flow_hash".into(), "6.1".into()));
    let j = s.verify_gated(&verify_runs(&s, 150), Some(&baseline), &gate);
    assert!(first_lines(j.failures()).contains(&FLOW_NOT_MET.to_owned()));
}

/// The flat results CI reads: one outcome per case and program per
/// kernel, failures with their text, the C line of a rejection; shards
/// merge into the whole.
#[test]
fn outcomes_list_every_case_and_program_and_shards_merge_into_the_whole() {
    use harness_judge::{OutcomeKind, OutcomeStatus, Outcomes};
    let s = sample();
    let j = s.test(UpdateMode::No, &[complete(&s, "6.1")]);
    let o = &j.outcomes;
    let sum = &j.kernels[0];
    let of = |kind, status| {
        o.outcomes
            .iter()
            .filter(|x| x.kind == kind && x.status == status)
            .count()
    };
    assert_eq!(of(OutcomeKind::Case, OutcomeStatus::Passed), sum.passed);
    assert_eq!(of(OutcomeKind::Case, OutcomeStatus::Failed), sum.failed);
    assert_eq!(of(OutcomeKind::Case, OutcomeStatus::Skipped), sum.skipped);
    assert_eq!(
        o.outcomes
            .iter()
            .filter(|x| x.kind == OutcomeKind::Program)
            .count(),
        sum.programs
    );
    // New snapshots not written fail both.
    assert_eq!(o.ok(), j.ok());
    assert!(!o.ok());
    let accepted = s.test(UpdateMode::Always, &[complete(&s, "6.1")]);
    assert!(accepted.ok() && accepted.outcomes.ok());

    // A rejection: failed, with its cause and the line of the C source.
    let v = s.verify(&verify_runs(&s, 150), None);
    let flow = v
        .outcomes
        .outcomes
        .iter()
        .find(|x| x.name == "flow_hash" && x.kernel == "6.1")
        .unwrap();
    assert_eq!(flow.status, OutcomeStatus::Failed);
    assert_eq!(
        flow.message.as_deref(),
        Some(FLOW_NOT_MET.split_once(": ").unwrap().1)
    );
    assert!(flow.detail.as_ref().unwrap().len() > flow.message.as_ref().unwrap().len());
    assert!(flow.cause.is_some() && flow.log.is_some(), "{flow:?}");
    assert!(!v.outcomes.ok());

    // Split by kernel, merged back: the same list.
    let (mut a, mut b) = (v.outcomes.clone(), v.outcomes.clone());
    a.outcomes.retain(|x| x.kernel == "6.1");
    a.kernels.retain(|k| k.label == "6.1");
    b.outcomes.retain(|x| x.kernel != "6.1");
    b.kernels.retain(|k| k.label != "6.1");
    let merged = Outcomes::merge(vec![
        ("b.json".into(), b.clone()),
        ("a.json".into(), a.clone()),
    ])
    .unwrap();
    assert_eq!(merged.outcomes, v.outcomes.outcomes);
    // Kernels in the order first seen.
    assert_eq!(merged.kernels.len(), v.outcomes.kernels.len());
    // The same part twice overlaps; a part of another command or format
    // does not merge.
    let twice = Outcomes::merge(vec![
        ("a.json".into(), a.clone()),
        ("b.json".into(), a.clone()),
    ]);
    assert!(
        twice
            .unwrap_err()
            .to_string()
            .contains("is in both a.json and b.json")
    );
    let mut test = a.clone();
    test.command = harness_judge::RunKind::Test;
    let mixed = Outcomes::merge(vec![("a.json".into(), a.clone()), ("t.json".into(), test)]);
    assert!(
        mixed
            .unwrap_err()
            .to_string()
            .contains("t.json holds `test` results")
    );
    let mut old = a.clone();
    old.format = 0;
    let e = Outcomes::merge(vec![("old.json".into(), old)]).unwrap_err();
    assert!(e.to_string().contains("old.json: results format 0"), "{e}");
    assert!(Outcomes::merge(Vec::new()).is_err());
}

#[test]
fn shards_split_the_objects_and_call_no_other_shards_snapshot_unreferenced() {
    use harness_project::Shard;
    let whole = sample();
    let mut names: Vec<String> = Vec::new();
    let mut cases = 0;
    for index in 1..=3 {
        let part = own_sample(|p| p.shard(Shard { index, count: 3 }));
        assert!(!part.prepared.objects.is_empty(), "shard {index} is empty");
        names.extend(part.prepared.objects.iter().map(|o| o.name.clone()));
        cases += part.prepared.cases.len();
        assert!(
            part.prepared
                .cases
                .iter()
                .all(|c| part.prepared.object(&c.object).is_some())
        );
        fs::write(part.project.snapshots_dir.join(STALE), "stale").unwrap();
        let j = part.test(UpdateMode::No, &[complete(&part, "6.1")]);
        assert!(unreferenced(&j).is_empty(), "{:?}", j.snapshot_notes);
    }
    names.sort();
    let mut all: Vec<String> = whole
        .prepared
        .objects
        .iter()
        .map(|o| o.name.clone())
        .collect();
    all.sort();
    assert_eq!(names, all, "every object in exactly one shard");
    assert_eq!(cases, whole.prepared.cases.len());
}

/// The shared project prepared once more (a `Prepared` of its own to
/// change), with fresh snapshots.
fn own_sample(change: impl FnOnce(&mut Prepared)) -> Sample {
    let (project, _) = shared();
    let options = PrepareOptions {
        log_level: 1,
        cases: true,
    };
    let mut prepared = harness_project::prepare(project, options, &Silent).unwrap();
    change(&mut prepared);
    let snapshots = tempfile::tempdir().unwrap();
    Sample {
        project: Project {
            snapshots_dir: snapshots.path().to_owned(),
            ..project.clone()
        },
        _snapshots: snapshots,
        prepared: Box::leak(Box::new(prepared)),
    }
}

const STALE: &str = "verifier__gone__gone@6.1.snap";

fn unreferenced(j: &TestJudgement) -> Vec<String> {
    j.snapshot_notes
        .iter()
        .map(ToString::to_string)
        .filter(|n| n.contains("produced by no case or program"))
        .collect()
}

#[test]
fn a_selection_judges_only_its_programs_and_calls_no_snapshot_unreferenced() {
    // The whole project: a snapshot nothing produces is named.
    let whole = sample();
    fs::write(whole.project.snapshots_dir.join(STALE), "stale").unwrap();
    let j = whole.test(UpdateMode::No, &[complete(&whole, "6.1")]);
    assert_eq!(unreferenced(&j).len(), 1, "{:?}", j.snapshot_notes);

    let pattern: harness_project::ProgramPattern = "tc_lb/*".parse().unwrap();
    let part = own_sample(|p| p.select(&[pattern]).unwrap());
    fs::write(part.project.snapshots_dir.join(STALE), "stale").unwrap();
    // Every program rejected: only the selected one is judged.
    let rejected = |_: &str| {
        Some((
            Verdict::Rejected {
                errno: 13,
                message: "Permission denied".into(),
            },
            rejection_log(),
        ))
    };
    let records = part.answers(rejected, |_| None);
    let j = part.test(UpdateMode::No, &[run(target("6.1"), records.clone())]);
    let programs: Vec<String> = texts(&j.findings)
        .into_iter()
        .filter(|f| f.contains("rejected"))
        .collect();
    assert!(
        !programs.is_empty() && programs.iter().all(|f| f.starts_with("tc_lb/tc_lb on 6.1")),
        "{programs:?}"
    );
    assert!(unreferenced(&j).is_empty(), "{:?}", j.snapshot_notes);
    let v = part.verify(&[run(target("6.1"), records)], None);
    let rows: Vec<&str> = v.rows.iter().map(|r| r.program.as_str()).collect();
    assert_eq!(rows, ["tc_lb"]);
}

/// Stale means no case or program of the project has the name: what a
/// kernel that did not run, or an object that did not build this time,
/// would produce is left alone; `--unreferenced delete` removes the rest.
#[test]
fn only_snapshots_nothing_in_the_project_produces_are_stale_and_they_can_be_deleted() {
    let s = own_sample(|p| {
        p.unopened.push(harness_project::UnopenedObject {
            name: "typo".into(),
            path: "typo.bpf.c".into(),
            error: "typo.bpf.c:1:1: error".into(),
            stage: harness_project::Stage::Compile,
            case_files: vec!["testcases/typo_cases.toml".into()],
        });
    });
    let dir = &s.project.snapshots_dir;
    // Every case and program has its snapshot...
    s.test(UpdateMode::Always, &[complete(&s, "6.1")]);
    // ...and a kernel that reported nothing produced none of them: they
    // are the project's all the same.
    let silent = s.test(UpdateMode::No, &[run(target("6.1"), Vec::new())]);
    assert!(
        unreferenced(&silent).is_empty(),
        "{:?}",
        silent.snapshot_notes
    );
    let object = &s.prepared.objects[0];
    let program = &object.info.file.programs()[0].name;
    let kept = [
        format!("verifier__{}__{program}@5.4.snap", object.name),
        "verifier__typo__prog@6.1.snap".to_owned(),
        "case__typo_cases__a_case.snap".to_owned(),
    ];
    for f in kept
        .iter()
        .map(String::as_str)
        .chain([STALE, "case__fw__renamed.snap"])
    {
        fs::write(dir.join(f), "x").unwrap();
    }
    let j = s.test(UpdateMode::No, &[complete(&s, "6.1")]);
    let mut named = unreferenced(&j);
    named.sort();
    assert_eq!(named.len(), 2, "{named:?}");
    assert!(named[0].contains("case__fw__renamed.snap") && named[1].contains(STALE));
    assert!(dir.join(STALE).exists(), "only named");
    let deleting = Context {
        project: &s.project,
        prepared: s.prepared,
        snapshots: UpdateMode::No,
        unreferenced: harness_judge::Unreferenced::Delete,
    };
    let j = harness_judge::judge_test(&deleting, &[complete(&s, "6.1")]).unwrap();
    let removed: Vec<String> = j
        .snapshot_notes
        .iter()
        .map(ToString::to_string)
        .filter(|n| n.contains("removed"))
        .collect();
    assert_eq!(removed.len(), 2, "{:?}", j.snapshot_notes);
    assert!(!dir.join(STALE).exists() && !dir.join("case__fw__renamed.snap").exists());
    for f in &kept {
        assert!(dir.join(f).exists(), "{f} kept");
    }
}

#[test]
fn an_object_given_by_path_leaves_the_projects_snapshots_alone() {
    let s = own_sample(|p| p.objects[0].origin = harness_project::Origin::Path);
    fs::write(s.project.snapshots_dir.join(STALE), "stale").unwrap();
    let j = s.test(UpdateMode::No, &[complete(&s, "6.1")]);
    assert!(unreferenced(&j).is_empty(), "{:?}", j.snapshot_notes);
    // Nothing of it is written, even when asked to accept; the others are.
    s.test(UpdateMode::Always, &[complete(&s, "6.1")]);
    let written: Vec<String> = fs::read_dir(&s.project.snapshots_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let of = |object: &str| {
        let prefix = format!("verifier__{object}__");
        written.iter().filter(|f| f.starts_with(&prefix)).count()
    };
    assert_eq!(of(&s.prepared.objects[0].name), 0, "{written:?}");
    assert!(of(&s.prepared.objects[1].name) > 0, "{written:?}");
}

#[test]
fn an_object_libbpf_cannot_open_is_a_failure_on_every_kernel() {
    let s = own_sample(|p| {
        p.unopened.push(harness_project::UnopenedObject {
            name: "broken".into(),
            path: "/tmp/broken.bpf.o".into(),
            error: "libbpf cannot open it as a BPF object".into(),
            stage: harness_project::Stage::Open,
            case_files: Vec::new(),
        });
        p.unopened.push(harness_project::UnopenedObject {
            name: "typo".into(),
            path: "/tmp/typo.bpf.c".into(),
            error: "typo.bpf.c:3:1: error: unknown type name 'u32'".into(),
            stage: harness_project::Stage::Compile,
            case_files: Vec::new(),
        });
    });
    let runs = [complete(&s, "6.1"), complete(&s, "5.10")];
    let expected = [
        "object `broken` on 6.1: could not be loaded: libbpf cannot open it as a BPF object",
        "/tmp/typo.bpf.c on 6.1: did not compile: typo.bpf.c:3:1: error: unknown type name 'u32'",
        "object `broken` on 5.10: could not be loaded: libbpf cannot open it as a BPF object",
        "/tmp/typo.bpf.c on 5.10: did not compile: typo.bpf.c:3:1: error: unknown type name 'u32'",
    ];
    let j = s.test(UpdateMode::No, &runs);
    let failures: Vec<String> = first_lines(j.failures())
        .into_iter()
        .filter(|f| f.contains("broken") || f.contains("typo"))
        .collect();
    assert_eq!(failures, expected);
    assert!(!j.ok());
    let v = s.verify(&runs, None);
    let failures: Vec<String> = first_lines(v.failures())
        .into_iter()
        .filter(|f| f.contains("broken") || f.contains("typo"))
        .collect();
    assert_eq!(failures, expected);
}

/// `explain` takes a program's wrong verdict as its input, and anything
/// else that failed as a failure of the run.
#[test]
fn only_verdict_findings_are_what_explain_takes_as_input() {
    let finding = |kind: FindingKind| Finding {
        kernel: "6.1".into(),
        subject: Subject::Program {
            object: "o".into(),
            program: "p".into(),
        },
        severity: Severity::Failure,
        kind,
    };
    let verdicts = [
        FindingKind::Unexpected {
            verdict: VerdictText("rejected: Permission denied (errno 13)".into()),
            log: None,
            diagnosis: None,
        },
        FindingKind::ExpectationNotMet {
            mismatch: harness_verifier::Mismatch::Verdict {
                expected: harness_verifier::ExpectedVerdict::Rejected,
                got: harness_verifier::ExpectedVerdict::Accepted,
                kernels: harness_verifier::KernelRange::parse("<5.13").unwrap(),
                origin: "o.bpf.c, p".into(),
            },
            log: None,
            diagnosis: None,
        },
    ];
    for kind in verdicts {
        assert!(finding(kind.clone()).is_program_verdict(), "{kind:?}");
    }
    let others = [
        FindingKind::RunFailed {
            error: "the VM did not finish".into(),
        },
        FindingKind::ObjectNotLoaded {
            error: "not a BPF object".into(),
        },
        FindingKind::NoPrograms,
        FindingKind::NotInBaseline,
    ];
    for kind in others {
        assert!(!finding(kind.clone()).is_program_verdict(), "{kind:?}");
    }
}

/// A diagnosis places instructions by number through the line records of
/// the program's own function: `second` starts 16 bytes into the `xdp`
/// section it shares with `first`.
#[test]
fn line_records_number_only_the_programs_own_instructions() {
    let (_, prepared) = shared();
    let pair = &prepared.object("pair").expect("the pair object").info;
    let numbered = |program: &str| {
        let (records, main) = harness_judge::line_records(pair, program);
        let numbered: Vec<(usize, u32, String)> = records
            .iter()
            .filter_map(|r| r.insn.map(|i| (i, r.line, r.text.trim().to_owned())))
            .collect();
        (records, numbered, main)
    };
    let (records, second, main) = numbered("second");
    assert_eq!(main, Some(2), "r0 = 1; exit");
    assert_eq!(
        second.first(),
        Some(&(0, 14, "return XDP_DROP;".to_owned()))
    );
    assert!(second.iter().all(|(i, ..)| *i < 2), "{second:?}");
    // `first`'s line is in the same section but not `second`'s.
    assert!(
        records
            .iter()
            .any(|r| r.insn.is_none() && r.text.contains("XDP_PASS"))
    );
    let (_, first, main) = numbered("first");
    assert_eq!(main, Some(2));
    assert_eq!(first.first(), Some(&(0, 8, "return XDP_PASS;".to_owned())));
    assert!(first.iter().all(|(_, _, text)| !text.contains("XDP_DROP")));

    // A program of many lines: distinct numbers, all inside its function.
    let fw = &prepared.object("xdp_firewall").expect("the firewall").info;
    let (records, main) = harness_judge::line_records(fw, "xdp_firewall");
    let main = main.expect("its length");
    let insns: std::collections::BTreeSet<usize> = records.iter().filter_map(|r| r.insn).collect();
    assert!(
        insns.len() > 10 && insns.iter().all(|i| *i < main),
        "{insns:?} of {main}"
    );
    assert_eq!(insns.first(), Some(&0));

    // No such program: every record, none numbered.
    let (records, main) = harness_judge::line_records(pair, "nope");
    assert!(!records.is_empty() && records.iter().all(|r| r.insn.is_none()));
    assert_eq!(main, None);
}

/// A case of steps is snapshotted as what each step did, its events and
/// the maps after the last step (a project of its own: one object, one
/// case).
#[test]
fn a_case_of_steps_snapshots_each_steps_outcome() {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("judge-steps-project");
    let project = Project::at(&root, &root.join("target"));
    let mut programs = files(&workspace().join("sample-programs"));
    programs.retain(|path, _| path.starts_with("include") || path == Path::new("tc_lb.bpf.c"));
    sync(&project.root.join("sample-programs"), &programs);
    let cases = r#"object = "tc_lb"
program = "tc_lb"

[[case]]
name = "two packets in a row"
steps = [
  { packet.ipv4 = { src = "10.0.0.1", dst = "10.0.0.2" }, packet.udp = { src = 1, dst = 2 }, expect.return = "TC_ACT_OK" },
  { packet.ipv4 = { src = "10.0.0.1", dst = "10.0.0.2" }, packet.udp = { src = 1, dst = 2 } },
]
"#;
    sync(
        &project.cases_dirs[0],
        &BTreeMap::from([(PathBuf::from("steps.toml"), cases.as_bytes().to_vec())]),
    );
    let snapshots = tempfile::tempdir().unwrap();
    let project = Project {
        snapshots_dir: snapshots.path().to_owned(),
        ..project
    };
    let options = PrepareOptions {
        log_level: 1,
        cases: true,
    };
    let prepared = harness_project::prepare(&project, options, &Silent).unwrap();
    let case = &prepared.cases[0];
    let test_run = |retval| {
        StepOutput::TestRun(TestRunOutput {
            retval,
            data_out: Vec::new().into(),
            ctx_out: None,
            duration_ns: 0,
        })
    };
    let mut records = vec![hello("6.1.0-test")];
    for p in prepared.objects[0].info.file.programs() {
        records.push(Record::Program(ProgramReport {
            object: "tc_lb".into(),
            program: p.name.clone(),
            section: p.section.clone(),
            prog_type: "sched_cls".into(),
            verdict: Verdict::Accepted,
            log: stats_log(100),
            log_level: 1,
            log_truncated: false,
            info: None,
            load_ns: 0,
            insn_cnt: 10,
        }));
    }
    records.push(Record::Case(CaseReport {
        id: case.plan.id.clone(),
        outcome: CaseOutcome::Ran {
            output: ActionOutput::Steps(StepsOutput {
                steps: vec![test_run(0), test_run(2)],
                ..StepsOutput::default()
            }),
            maps: Vec::new(),
        },
    }));
    records.push(done());
    let context = Context {
        project: &project,
        prepared: &prepared,
        snapshots: UpdateMode::New,
        unreferenced: harness_judge::Unreferenced::List,
    };
    let judgement = harness_judge::judge_test(&context, &[run(target("6.1"), records)]).unwrap();
    assert_eq!(judgement.kernels[0].passed, 1, "{:?}", judgement.findings);
    assert_eq!(
        judgement.kernels[0].snapshots_new, 2,
        "the program and the case"
    );
    let pending = fs::read_to_string(
        snapshots
            .path()
            .join("case__steps__two_packets_in_a_row.snap.new"),
    )
    .unwrap();
    assert!(
        pending.contains(
            "case: two packets in a row\nprogram: tc_lb/tc_lb\nsteps:\n  \
             1. test run of tc_lb: returned TC_ACT_OK (0)\n  \
             2. test run of tc_lb: returned TC_ACT_SHOT (2)\n\nmaps after the last step:\n"
        ),
        "{pending}"
    );
}
