//! Cases made of steps: compiled against a fixture with a ring buffer of
//! two event types, and judged against crafted step outputs and records.

mod common;

use std::path::Path;

use common::{compile_with, fixture};
use harness_cases::{Failed, Status, evaluate, steps::Outcome};
use harness_protocol::{
    Action, ActionOutput, CaseOutcome, EventRecord, OpenMode, Step, StepOutput, StepsOutput,
    TestRunOutput, Transport,
};

const HEADER: &str = "object = \"events\"\nprogram = \"on_enter\"\n";

fn compile(body: &str) -> Result<Vec<harness_cases::CompiledCase>, String> {
    compile_with(
        Path::new("testcases"),
        &fixture("events"),
        &format!("{HEADER}{body}"),
    )
}

fn compile_err(body: &str) -> String {
    match compile(body) {
        Ok(_) => panic!("compiled:\n{body}"),
        Err(e) => e,
    }
}

const LIVE: &str = r#"
[[case]]
name = "live"
files = { "/tmp/secret" = "x" }
events = { map = "events", type = { 1 = "exec_event", 2 = "tcp_event" } }
normalize = ["uid"]
steps = [
  { exec = ["/bin/true", "a"], expect.exit = 0 },
  { open = "/tmp/secret", mode = "write", expect.result = "EPERM" },
  { connect = "tcp://[::1]:80", expect.result = "allowed" },
  { setuid = [1000, 1000, 0] },
  { sleep_ms = 5 },
  { ctx = { args = [0, 59] }, expect.return = 0 },
]
expect.events = [
  { kind = 1, comm = "true" },
  { kind = 2, dport = 80 },
]
"#;

#[test]
fn a_live_case_compiles_to_steps_attaching_its_program() {
    let cases = compile(LIVE).unwrap();
    assert_eq!(cases.len(), 1);
    let Action::Steps(plan) = &cases[0].plan.action else {
        panic!("{:?}", cases[0].plan.action)
    };
    assert_eq!(
        plan.attach,
        ["on_enter"],
        "live steps attach the case's program"
    );
    assert_eq!(plan.ring_buffers, ["events"]);
    assert_eq!(plan.timeout_ms, harness_cases::steps::DEFAULT_TIMEOUT_MS);
    assert_eq!(plan.files.len(), 1);
    assert_eq!(plan.files[0].path, "/tmp/secret");
    assert_eq!(plan.files[0].content.0, b"x");
    assert_eq!(
        plan.steps[..5],
        [
            Step::Exec {
                argv: vec!["/bin/true".into(), "a".into()]
            },
            Step::Open {
                path: "/tmp/secret".into(),
                mode: OpenMode::Write
            },
            Step::Connect {
                transport: Transport::Tcp,
                address: "[::1]:80".into()
            },
            Step::SetUid {
                ruid: 1000,
                euid: 1000,
                suid: 0
            },
            Step::Sleep { ms: 5 },
        ]
    );
    let Step::TestRun { program, input } = &plan.steps[5] else {
        panic!("{:?}", plan.steps[5]);
    };
    assert_eq!(program, "on_enter");
    let ctx = input.ctx.as_ref().unwrap();
    assert_eq!(
        ctx.0[8..16],
        59u64.to_ne_bytes(),
        "the second raw_tp argument"
    );
    assert!(plan.is_live());
    let steps = cases[0].steps.as_ref().unwrap();
    assert_eq!(steps.expect.len(), 4, "{:?}", steps.expect);
    let decoder = steps.events.as_ref().unwrap();
    assert!(decoder.normalise.iter().any(|n| n == "uid"));
    assert!(
        decoder.normalise.iter().any(|n| n == "pid"),
        "pids by default"
    );
}

#[test]
fn test_runs_alone_are_not_live_and_attach_nothing() {
    let cases = compile(
        r#"
[[case]]
name = "two runs"
steps = [{ ctx = { args = [0, 1] } }, { ctx = { args = [0, 1] } }]
expect.maps.counts = [{ key = 1, value = 2 }]
"#,
    )
    .unwrap();
    let Action::Steps(plan) = &cases[0].plan.action else {
        panic!()
    };
    assert!(plan.attach.is_empty() && !plan.is_live());
    assert_eq!(plan.steps.len(), 2);
    assert_eq!(cases[0].expect.maps.len(), 1);
}

#[test]
fn step_mistakes_name_their_line_and_what_was_expected() {
    let cases: &[(&str, &str)] = &[
        (
            "steps = [{ exec = [\"/bin/true\"], open = \"/tmp/x\" }]",
            "a step does one thing: it has exec and open",
        ),
        (
            "steps = [{ open = \"/tmp/x\", expect.result = \"EPERMS\" }]",
            "unknown result `EPERMS`: expected ok, allowed, denied or an errno name",
        ),
        (
            "steps = [{ connect = \"10.0.0.1:80\" }]",
            "expected `tcp://ADDRESS:PORT` or `udp://ADDRESS:PORT`",
        ),
        (
            "steps = [{ exec = [\"true\"] }]",
            "`exec` is `[\"/absolute/path\", args...]`",
        ),
        (
            "steps = [{ open = \"/tmp/x\", mode = \"append\" }]",
            "unknown mode `append`: expected read, write or create",
        ),
        (
            "steps = [{ sleep_ms = 1, mode = \"read\" }]",
            "`mode` belongs to an `open` step",
        ),
        (
            "steps = [{ open = \"/tmp/x\", expect.exit = 0 }]",
            "`expect.exit` is for `exec` steps",
        ),
        (
            "steps = [{ open = \"/tmp/x\", expect.return = 0 }]",
            "`expect.return` is for test-run steps",
        ),
        (
            "steps = [{ ctx = { args = [1] }, expect.result = \"ok\" }]",
            "`expect.result` is for live actions",
        ),
        (
            "steps = [{ setuid = [1, 2] }]",
            "ids are one number or [real, effective, saved]",
        ),
        (
            "packet.ipv4 = { src = \"10.0.0.1\", dst = \"10.0.0.2\" }\nsteps = [{ sleep_ms = 1 }]",
            "a case with `steps` gives `packet` in the step it belongs to",
        ),
        (
            "attach = [\"nope\"]\nsteps = [{ sleep_ms = 1 }]",
            "no program `nope` to attach in object `events`; its programs are load, on_enter",
        ),
        (
            "files = { \"tmp/x\" = \"\" }\nsteps = [{ sleep_ms = 1 }]",
            "a file's path must be absolute",
        ),
        (
            "timeout_ms = 0\nsteps = [{ sleep_ms = 1 }]",
            "`timeout_ms` must be more than 0",
        ),
        (
            "events = { map = \"counts\", type = \"exec_event\" }\nsteps = [{ sleep_ms = 1 }]",
            "map `counts` is a hash, not a ring buffer or perf event array",
        ),
        (
            "events = { map = \"evts\", type = \"exec_event\" }\nsteps = [{ sleep_ms = 1 }]",
            "no map `evts` in object `events`; its event buffers are events, samples",
        ),
        (
            "events = { map = \"events\", type = \"open_event\" }\nsteps = [{ sleep_ms = 1 }]",
            "no struct `open_event` in the object's BTF",
        ),
        (
            "events = { map = \"events\", type = \"exec_event\" }\nnormalize = [\"inode\"]\nsteps = [{ sleep_ms = 1 }]",
            "no field `inode` in the event type",
        ),
        (
            "steps = [{ sleep_ms = 1 }]\nexpect.event_count = 3",
            "`expect.event_count` needs `events = { map = ..., type = ... }`",
        ),
        (
            "events = { map = \"events\", type = \"exec_event\" }\nsteps = [{ sleep_ms = 1 }]\nexpect.events = []\nexpect.event_count = 3",
            "`expect.event_count` is 3 but `expect.events` lists 0",
        ),
        (
            "steps = [{ sleep_ms = 1 }]\nexpect.events = [{ pid = 1 }]",
            "`expect.events` needs `events = { map = ..., type = ... }`",
        ),
        (
            "events = { map = \"events\", type = { 1 = \"exec_event\" } }\nsteps = [{ sleep_ms = 1 }]\nexpect.events = [{ pid = 1 }]",
            "say which event this is: give `kind`",
        ),
        (
            "events = { map = \"events\", type = { 1 = \"exec_event\" } }\nsteps = [{ sleep_ms = 1 }]\nexpect.events = [{ kind = 3 }]",
            "`kind = 3` is not a kind `events.type` names",
        ),
        (
            "events = { map = \"events\", type = \"exec_event\" }\nsteps = [{ sleep_ms = 1 }]\nexpect.events = [{ pidd = 1 }]",
            "pidd",
        ),
    ];
    for (body, want) in cases {
        let text = format!("\n[[case]]\nname = \"bad\"\n{body}\n");
        let e = compile_err(&text);
        assert!(e.contains(want), "{body}\n=> {e}\nwanted: {want}");
        assert!(e.contains("cases.toml:"), "names the file and line: {e}");
    }
}

fn exec_event(pid: u32, comm: &str, args: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend(1u32.to_ne_bytes());
    b.extend(pid.to_ne_bytes());
    b.extend(0u32.to_ne_bytes());
    let mut c = [0u8; 16];
    c[..comm.len()].copy_from_slice(comm.as_bytes());
    b.extend(c);
    let mut a = [0u8; 16];
    a[..args.len()].copy_from_slice(args);
    b.extend(a);
    b
}

fn tcp_event(dport: u16) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend(2u32.to_ne_bytes());
    b.extend(77u32.to_ne_bytes());
    b.extend(dport.to_ne_bytes());
    b.extend(10u16.to_ne_bytes());
    b.extend([127, 0, 0, 1]);
    b
}

fn record(data: Vec<u8>, step: u32) -> EventRecord {
    EventRecord {
        map: "events".into(),
        step,
        data: data.into(),
    }
}

fn outputs(open_errno: i32, exit: i32, events: Vec<EventRecord>) -> CaseOutcome {
    let done = |errno| StepOutput::Done {
        errno,
        exit_status: None,
    };
    CaseOutcome::Ran {
        output: ActionOutput::Steps(StepsOutput {
            steps: vec![
                StepOutput::Done {
                    errno: 0,
                    exit_status: Some(exit),
                },
                done(open_errno),
                done(111),
                done(0),
                done(0),
                StepOutput::TestRun(TestRunOutput {
                    retval: 0,
                    data_out: Vec::new().into(),
                    ctx_out: None,
                    duration_ns: 1,
                }),
            ],
            events,
            lost: Vec::new(),
        }),
        maps: Vec::new(),
    }
}

#[test]
fn a_live_case_passes_when_every_step_and_event_holds_and_its_snapshot_is_normalised() {
    let cases = compile(LIVE).unwrap();
    let events = vec![
        record(exec_event(4242, "true", b"/bin/true\0a"), 0),
        record(tcp_event(80), 2),
    ];
    let result = evaluate(&cases[0], &outputs(1, 0, events), &fixture("events"));
    assert_eq!(result.status, Status::Passed, "{result:?}");
    let steps = result.steps.unwrap();
    assert!(
        steps.contains("1. exec /bin/true a: ok, exit status 0"),
        "{steps}"
    );
    assert!(
        steps.contains("2. open /tmp/secret (write): EPERM"),
        "{steps}"
    );
    assert!(
        steps.contains("3. connect tcp://[::1]:80: ECONNREFUSED"),
        "{steps}"
    );
    let events = result.events.unwrap();
    assert!(
        events.starts_with("events from `events` (2 records):"),
        "{events}"
    );
    assert!(
        events.contains(
            r#"1. exec_event { kind: 1, pid: [pid], uid: [uid], comm: "true", args: "/bin/true\0a" } (step 1)"#
        ),
        "{events}"
    );
    assert!(!events.contains("4242"), "pids are normalised: {events}");
    assert!(
        events.contains(
            "2. tcp_event { kind: 2, pid: [pid], dport: 80, family: 10, daddr: 127.0.0.1 } (step 3)"
        ),
        "{events}"
    );
}

#[test]
fn every_kind_of_difference_fails_at_its_line() {
    let cases = compile(LIVE).unwrap();
    let object = fixture("events");
    let failures = |outcome: CaseOutcome| match evaluate(&cases[0], &outcome, &object).status {
        Status::Failed(f) => f,
        other => panic!("{other:?}"),
    };
    let good = || {
        vec![
            record(exec_event(1, "true", b""), 0),
            record(tcp_event(80), 2),
        ]
    };

    let f = failures(outputs(0, 0, good()));
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].line, 11, "the step's line");
    assert_eq!(
        f[0].to_string(),
        "line 11: step 2 (open /tmp/secret (write)): expected EPERM, got ok"
    );

    let f = failures(outputs(1, 3, good()));
    assert!(
        matches!(&f[0].failed, Failed::Step { expected, got, .. } if expected == "exit status 0" && got == "exit status 3"),
        "{f:?}"
    );

    let f = failures(outputs(1, 0, vec![record(exec_event(1, "true", b""), 0)]));
    assert!(
        matches!(&f[0].failed, Failed::EventCount { expected: 2, got: 1, events } if events.len() == 1),
        "{f:?}"
    );
    assert_eq!(f[0].line, 17, "the line of expect.events");

    let f = failures(outputs(
        1,
        0,
        vec![
            record(exec_event(1, "false", b""), 0),
            record(tcp_event(80), 2),
        ],
    ));
    assert_eq!(f[0].line, 18, "the expected event's own line");
    assert!(
        f[0].to_string()
            .contains("event 1: comm: expected \"true\", got \"false\""),
        "{}",
        f[0]
    );

    let f = failures(outputs(
        1,
        0,
        vec![record(tcp_event(80), 0), record(tcp_event(80), 2)],
    ));
    assert!(
        f[0].to_string()
            .contains("expected a `struct exec_event`, got a `struct tcp_event`"),
        "{}",
        f[0]
    );

    let mut short = exec_event(1, "true", b"");
    short.pop();
    let f = failures(outputs(
        1,
        0,
        vec![record(short, 0), record(tcp_event(80), 2)],
    ));
    assert!(
        f[0].to_string()
            .contains("a 43-byte record is not a `struct exec_event` (44 bytes)"),
        "{}",
        f[0]
    );

    let mut unknown = tcp_event(80);
    unknown[0] = 9;
    let f = failures(outputs(
        1,
        0,
        vec![record(exec_event(1, "true", b""), 0), record(unknown, 2)],
    ));
    assert!(f[0].to_string().contains("a record of kind 9"), "{}", f[0]);
}

#[test]
fn outcomes_accept_what_they_say() {
    for (outcome, ok, not) in [
        (Outcome::Ok, vec![0], vec![1, 2]),
        (Outcome::Allowed, vec![0, 2, 111], vec![1, 13]),
        (Outcome::Denied, vec![1, 13], vec![0, 2]),
        (Outcome::Errno(2), vec![2], vec![0, 1]),
    ] {
        for e in ok {
            assert!(outcome.holds(e), "{outcome} should accept {e}");
        }
        for e in not {
            assert!(!outcome.holds(e), "{outcome} should refuse {e}");
        }
    }
}

#[test]
fn an_event_count_is_checked_without_listing_the_events() {
    let cases = compile(
        r#"
[[case]]
name = "burst"
events = { map = "events", type = { 1 = "exec_event", 2 = "tcp_event" } }
steps = [{ ctx = { args = [0, 1] } }]
expect.event_count = 2
"#,
    )
    .unwrap();
    let object = fixture("events");
    let run = |events: Vec<EventRecord>| {
        evaluate(
            &cases[0],
            &CaseOutcome::Ran {
                output: ActionOutput::Steps(StepsOutput {
                    steps: vec![StepOutput::TestRun(TestRunOutput {
                        retval: 0,
                        data_out: Vec::new().into(),
                        ctx_out: None,
                        duration_ns: 1,
                    })],
                    events,
                    lost: Vec::new(),
                }),
                maps: Vec::new(),
            },
            &object,
        )
        .status
    };
    assert_eq!(
        run(vec![record(tcp_event(1), 0), record(tcp_event(2), 0)]),
        Status::Passed
    );
    match run(vec![record(tcp_event(1), 0)]) {
        Status::Failed(f) => {
            assert_eq!(f.len(), 1, "{f:?}");
            assert_eq!(f[0].line, 8, "the line of expect.event_count");
            assert!(
                f[0].to_string().contains("expected 2 events, got 1"),
                "{}",
                f[0]
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_syscall_programs_context_is_the_struct_its_signature_names() {
    let cases = compile(
        r#"
[[case]]
name = "crafted struct"
program = "load"
steps = [{ ctx = { id = 7, port = 443 }, expect.return = 0 }]
expect.maps.counts = [{ key = 7, value = 443 }]
"#,
    )
    .unwrap();
    let Action::Steps(plan) = &cases[0].plan.action else {
        panic!()
    };
    let Step::TestRun { program, input } = &plan.steps[0] else {
        panic!("{:?}", plan.steps[0]);
    };
    assert_eq!(program, "load");
    let mut want = 7u32.to_ne_bytes().to_vec();
    want.extend(443u16.to_ne_bytes());
    want.extend(0u16.to_ne_bytes());
    assert_eq!(
        input.ctx.as_ref().unwrap().0,
        want,
        "struct load_args, field by field"
    );
    assert_eq!(
        (input.data_out_size, input.repeat),
        (0, 0),
        "context-only run"
    );

    let e = compile_err(
        "\n[[case]]\nname = \"bad\"\nprogram = \"load\"\nsteps = [{ ctx = { id = 7, prot = 1 } }]\n",
    );
    assert!(e.contains("prot"), "{e}");
}

#[test]
fn perf_samples_may_carry_their_padding_and_lost_samples_fail_the_case() {
    let cases = compile(
        r#"
[[case]]
name = "perf"
events = { map = "samples", type = "tcp_event" }
steps = [{ ctx = { args = [0, 1] } }]
expect.events = [{ dport = 80 }]
"#,
    )
    .unwrap();
    let object = fixture("events");
    let run = |data: Vec<u8>, lost: u64| {
        evaluate(
            &cases[0],
            &CaseOutcome::Ran {
                output: ActionOutput::Steps(StepsOutput {
                    steps: vec![StepOutput::TestRun(TestRunOutput {
                        retval: 0,
                        data_out: Vec::new().into(),
                        ctx_out: None,
                        duration_ns: 1,
                    })],
                    events: vec![EventRecord {
                        map: "samples".into(),
                        step: 0,
                        data: data.into(),
                    }],
                    lost: (lost > 0)
                        .then(|| harness_protocol::LostEvents {
                            map: "samples".into(),
                            count: lost,
                        })
                        .into_iter()
                        .collect(),
                }),
                maps: Vec::new(),
            },
            &object,
        )
        .status
    };
    // A 16-byte struct arrives as 20 bytes: the kernel pads the sample.
    let mut padded = tcp_event(80);
    padded.extend([0; 4]);
    assert_eq!(run(padded.clone(), 0), Status::Passed);
    let mut too_long = tcp_event(80);
    too_long.extend([0; 8]);
    assert!(
        matches!(run(too_long, 0), Status::Failed(f) if f[0].to_string().contains("24-byte record"))
    );
    match run(padded, 3) {
        Status::Failed(f) => {
            assert_eq!(f.len(), 1, "{f:?}");
            assert!(
                f[0].to_string()
                    .contains("the kernel lost 3 events of `samples`"),
                "{}",
                f[0]
            );
        }
        other => panic!("{other:?}"),
    }
}
