//! A case's record judged against its expectations: real case-file text
//! compiled against the real sample objects, fed what a kernel could have
//! answered. Each expectation must hold when the answer agrees and fail, at
//! its line and with its text, when it does not.

mod common;

use std::path::Path;

use common::{compile_with, object};
use harness_cases::{
    CaseFailure, CaseResult, CompiledCase, Failed, MapProblem, ObjectInfo, Status, evaluate,
    format_dumps,
};
use harness_protocol::{
    Action, ActionOutput, CaseOutcome, CaseStep, MapDump, MapEntry, TestRunOutput,
};

/// A file of one case named `c` for `object`'s first program.
fn case(object: &ObjectInfo, body: &str) -> (CompiledCase, String) {
    let text = format!(
        "object = \"{}\"\nprogram = \"{}\"\n[[case]]\nname = \"c\"\n{body}",
        object.name,
        object.program_names()[0]
    );
    let mut cases = compile_with(Path::new("testcases"), object, &text).unwrap();
    assert_eq!(cases.len(), 1);
    (cases.remove(0), text)
}

/// The line of `text` that holds `needle` (1-based), as failures name it.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no `{needle}` in {text}"))
        + 1
}

/// The packet the case feeds the program.
fn input(case: &CompiledCase) -> Vec<u8> {
    match &case.plan.action {
        Action::TestRun(input) => input.data.0.clone(),
        Action::Steps(_) => panic!("a test-run case"),
    }
}

fn ran(
    retval: u32,
    data_out: Vec<u8>,
    ctx_out: Option<Vec<u8>>,
    maps: Vec<MapDump>,
) -> CaseOutcome {
    CaseOutcome::Ran {
        output: ActionOutput::TestRun(TestRunOutput {
            retval,
            data_out: data_out.into(),
            ctx_out: ctx_out.map(Into::into),
            duration_ns: 0,
        }),
        maps,
    }
}

/// `map` read back with these `(key, values)`; one value per CPU for per-CPU
/// maps.
fn dump(object: &ObjectInfo, map: &str, entries: Vec<(Vec<u8>, Vec<Vec<u8>>)>) -> MapDump {
    let spec = &object.maps[map].spec;
    MapDump {
        name: map.to_owned(),
        map_type: spec.map_type,
        key_size: spec.key_size,
        value_size: spec.value_size,
        entries: entries
            .into_iter()
            .map(|(key, values)| MapEntry {
                key: key.into(),
                values: values.into_iter().map(Into::into).collect(),
            })
            .collect(),
    }
}

/// Every keyed map of the object, empty, as a kernel dumps them after a
/// run, with `filled` in place of the empty one of the same name.
fn dumps(object: &ObjectInfo, filled: Vec<MapDump>) -> Vec<MapDump> {
    object
        .maps
        .keys()
        .map(|name| {
            filled
                .iter()
                .find(|d| d.name == *name)
                .cloned()
                .unwrap_or_else(|| dump(object, name, Vec::new()))
        })
        .collect()
}

/// `struct counter { __u64 packets; __u64 bytes; }` of the firewall.
fn counter(packets: u64, bytes: u64) -> Vec<u8> {
    [packets.to_ne_bytes(), bytes.to_ne_bytes()].concat()
}

fn u32_key(k: u32) -> Vec<u8> {
    k.to_ne_bytes().to_vec()
}

/// `enum verdict` of the firewall.
const DROPPED_V4: u32 = 1;

fn failures(result: &CaseResult) -> Vec<String> {
    match &result.status {
        Status::Failed(f) => f.iter().map(ToString::to_string).collect(),
        other => panic!("expected a failure, got {other:?}"),
    }
}

const PACKET: &str = "packet.ipv4 = { src = \"10.0.0.1\", dst = \"10.0.0.2\" }\n\
                      packet.udp = { src = 40000, dst = 53 }\n";

#[test]
fn the_return_value_is_compared_by_name_at_its_line() {
    let fw = object("xdp_firewall");
    let (c, text) = case(&fw, &format!("{PACKET}expect.return = \"XDP_DROP\"\n"));
    let line = line_of(&text, "expect.return");

    let ok = evaluate(&c, &ran(1, input(&c), None, dumps(&fw, vec![])), &fw);
    assert_eq!(ok.status, Status::Passed);
    assert_eq!(ok.retval.as_deref(), Some("XDP_DROP (1)"));

    let bad = evaluate(&c, &ran(2, input(&c), None, dumps(&fw, vec![])), &fw);
    assert_eq!(
        bad.status,
        Status::Failed(vec![CaseFailure {
            line,
            failed: Failed::Return {
                expected: "XDP_DROP (1)".into(),
                got: "XDP_PASS (2)".into(),
            },
        }])
    );
    assert_eq!(
        failures(&bad),
        [format!(
            "line {line}: return value: expected XDP_DROP (1), got XDP_PASS (2)"
        )]
    );
    assert_eq!(bad.retval.as_deref(), Some("XDP_PASS (2)"));

    // Without `expect.return`, any value will do.
    let (free, _) = case(&fw, PACKET);
    let any = evaluate(&free, &ran(42, input(&free), None, vec![]), &fw);
    assert_eq!(any.status, Status::Passed);
    assert_eq!(any.retval.as_deref(), Some("42"));
}

#[test]
fn an_unchanged_packet_must_come_back_byte_for_byte() {
    let fw = object("xdp_firewall");
    let (c, text) = case(&fw, &format!("{PACKET}expect.packet = \"unchanged\"\n"));
    let line = line_of(&text, "expect.packet");
    let same = evaluate(&c, &ran(2, input(&c), None, vec![]), &fw);
    assert_eq!(same.status, Status::Passed);

    // Ethernet (14) and IPv4 (20) headers, then the UDP ports.
    let mut rewritten = input(&c);
    rewritten[37] = 54;
    let result = evaluate(&c, &ran(2, rewritten, None, vec![]), &fw);
    assert_eq!(
        failures(&result),
        [format!(
            "line {line}: output packet: udp.dst: expected 53, got 54"
        )]
    );
    assert!(matches!(
        &result.status,
        Status::Failed(f) if matches!(f[0].failed, Failed::Packet(_))
    ));
}

#[test]
fn an_expected_packet_written_as_layers_is_diffed_field_by_field() {
    let fw = object("xdp_firewall");
    let (c, text) = case(
        &fw,
        &format!(
            "{PACKET}expect.packet.ipv4 = {{ src = \"10.0.0.2\", dst = \"10.0.0.1\" }}\n\
             expect.packet.udp = {{ src = 53, dst = 40000 }}\n"
        ),
    );
    let line = line_of(&text, "expect.packet.ipv4");
    let built = |layers: &str| {
        toml::from_str::<harness_packet::PacketDef>(layers)
            .unwrap()
            .build()
            .unwrap()
    };
    let reply =
        built("ipv4 = { src = \"10.0.0.2\", dst = \"10.0.0.1\" }\nudp = { src = 53, dst = 40000 }");
    assert_eq!(
        evaluate(&c, &ran(3, reply, None, vec![]), &fw).status,
        Status::Passed
    );
    // The input itself is not what was expected: both addresses and both
    // ports are named (the checksums of the swapped fields agree).
    let result = evaluate(&c, &ran(3, input(&c), None, vec![]), &fw);
    assert_eq!(
        failures(&result),
        [
            "ipv4.src: expected 10.0.0.2, got 10.0.0.1",
            "ipv4.dst: expected 10.0.0.1, got 10.0.0.2",
            "udp.src: expected 53, got 40000",
            "udp.dst: expected 40000, got 53",
        ]
        .map(|d| format!("line {line}: output packet: {d}"))
    );
}

#[test]
fn an_expected_packet_in_hex_is_compared_byte_for_byte() {
    let fw = object("xdp_firewall");
    let frame = "02 00 00 00 00 02 02 00 00 00 00 01 08 06 00 01";
    let (c, text) = case(
        &fw,
        &format!("data = \"{frame}\"\nexpect.packet_hex = \"{frame}\"\n"),
    );
    let line = line_of(&text, "expect.packet_hex");
    assert_eq!(
        evaluate(&c, &ran(2, input(&c), None, vec![]), &fw).status,
        Status::Passed
    );
    let mut last = input(&c);
    last[15] = 2;
    assert_eq!(
        failures(&evaluate(&c, &ran(2, last, None, vec![]), &fw)),
        [format!(
            "line {line}: output packet: payload: expected 2 bytes: 0001, got 2 bytes: 0002"
        )]
    );
}

/// `struct xdp_md`: data, data_end, data_meta, ingress_ifindex,
/// rx_queue_index, egress_ifindex.
fn xdp_md(ingress_ifindex: u32) -> Vec<u8> {
    [0, 42, 0, ingress_ifindex, 0, 0]
        .iter()
        .flat_map(|f: &u32| f.to_ne_bytes())
        .collect()
}

#[test]
fn the_context_is_compared_where_the_case_gives_fields() {
    let fw = object("xdp_firewall");
    let (c, text) = case(
        &fw,
        &format!(
            "ctx = {{ ingress_ifindex = 1 }}\n{PACKET}expect.ctx = {{ ingress_ifindex = 1 }}\n"
        ),
    );
    let line = line_of(&text, "expect.ctx");
    let run = |ctx: Option<Vec<u8>>| evaluate(&c, &ran(2, input(&c), ctx, vec![]), &fw);

    // Only the fields given are compared (data_end is not).
    assert_eq!(run(Some(xdp_md(1))).status, Status::Passed);
    // An older kernel's shorter context passes if it holds the field.
    assert_eq!(run(Some(xdp_md(1)[..16].to_vec())).status, Status::Passed);

    let other = run(Some(xdp_md(2)));
    assert_eq!(
        failures(&other),
        [format!(
            "line {line}: context after the run: ingress_ifindex: expected 1, got 2"
        )]
    );
    assert!(matches!(
        &other.status,
        Status::Failed(f) if matches!(f[0].failed, Failed::Ctx(_))
    ));
    assert_eq!(
        failures(&run(Some(xdp_md(1)[..12].to_vec()))),
        [format!(
            "line {line}: context after the run: ingress_ifindex: expected 1, but the kernel returned only 12 bytes"
        )]
    );
    let missing = run(None);
    assert_eq!(
        missing.status,
        Status::Failed(vec![CaseFailure {
            line,
            failed: Failed::CtxMissing,
        }])
    );
    assert_eq!(
        failures(&missing),
        [format!(
            "line {line}: context after the run: the kernel did not return it"
        )]
    );
}

#[test]
fn a_per_cpu_counter_is_compared_as_its_sum_over_cpus() {
    let fw = object("xdp_firewall");
    let (c, text) = case(
        &fw,
        &format!(
            "{PACKET}expect.maps.stats = [{{ key = \"DROPPED_V4\", value = {{ packets = 5, bytes = 999 }} }}]\n"
        ),
    );
    let line = line_of(&text, "expect.maps.stats");
    let with_stats = |entries| {
        let stats = dump(&fw, "stats", entries);
        evaluate(&c, &ran(1, input(&c), None, dumps(&fw, vec![stats])), &fw)
    };
    // Other keys, and other maps holding the same key, do not count.
    let passed = (u32_key(0), vec![counter(7, 700), counter(0, 0)]);
    let last_verdict = dump(
        &fw,
        "last_verdict",
        vec![(u32_key(DROPPED_V4), vec![u32_key(1)])],
    );

    let summed = (u32_key(DROPPED_V4), vec![counter(3, 500), counter(2, 499)]);
    let ok = evaluate(
        &c,
        &ran(
            1,
            input(&c),
            None,
            dumps(
                &fw,
                vec![
                    last_verdict.clone(),
                    dump(&fw, "stats", vec![passed.clone(), summed]),
                ],
            ),
        ),
        &fw,
    );
    assert_eq!(ok.status, Status::Passed);

    // The example: `packets = 5, bytes = 999` against a dump that
    // says otherwise.
    let one_packet = (u32_key(DROPPED_V4), vec![counter(1, 47), counter(0, 0)]);
    let result = with_stats(vec![passed.clone(), one_packet]);
    assert_eq!(
        failures(&result),
        [
            format!("line {line}: map `stats` key 1: packets: expected 5, got 1"),
            format!("line {line}: map `stats` key 1: bytes: expected 999, got 47"),
        ]
    );
    assert!(matches!(
        &result.status,
        Status::Failed(f) if matches!(&f[0].failed, Failed::Map { map, key, problem: MapProblem::Value(_) }
            if map == "stats" && key == "1")
    ));
    // Right sum, one CPU short of it.
    let short = (u32_key(DROPPED_V4), vec![counter(3, 500), counter(1, 499)]);
    assert_eq!(
        failures(&with_stats(vec![short])),
        [format!(
            "line {line}: map `stats` key 1: packets: expected 5, got 4"
        )]
    );

    let missing = [format!(
        "line {line}: map `stats` key 1: expected an entry, there is none"
    )];
    assert_eq!(failures(&with_stats(vec![passed])), missing);
    // A map the kernel did not dump at all holds nothing either.
    let nothing = evaluate(&c, &ran(1, input(&c), None, vec![last_verdict]), &fw);
    assert_eq!(failures(&nothing), missing);
}

#[test]
fn a_value_of_an_ordinary_map_is_compared_field_by_field() {
    let fw = object("xdp_firewall");
    let (c, text) = case(
        &fw,
        &format!(
            "{PACKET}expect.maps.config = [{{ key = 0, value = {{ trusted_ifindex = 3 }} }}]\n"
        ),
    );
    let line = line_of(&text, "expect.maps.config");
    let run = |ifindex: u32| {
        let config = dump(&fw, "config", vec![(u32_key(0), vec![u32_key(ifindex)])]);
        evaluate(&c, &ran(2, input(&c), None, dumps(&fw, vec![config])), &fw)
    };
    assert_eq!(run(3).status, Status::Passed);
    assert_eq!(
        failures(&run(4)),
        [format!(
            "line {line}: map `config` key 0: trusted_ifindex: expected 3, got 4"
        )]
    );
}

#[test]
fn per_cpu_values_are_compared_cpu_by_cpu() {
    let fw = object("xdp_firewall");
    let (c, text) = case(
        &fw,
        &format!(
            "{PACKET}expect.maps.stats = [{{ key = 0, values = [{{ packets = 1 }}, {{ packets = 2, bytes = 20 }}] }}]\n"
        ),
    );
    let line = line_of(&text, "expect.maps.stats");
    let run = |values: Vec<Vec<u8>>| {
        let stats = dump(&fw, "stats", vec![(u32_key(0), values)]);
        evaluate(&c, &ran(2, input(&c), None, dumps(&fw, vec![stats])), &fw)
    };
    // CPU 0 and 1 as given; bytes on CPU 0 and CPU 2 were not asked about.
    assert_eq!(
        run(vec![counter(1, 99), counter(2, 20), counter(5, 5)]).status,
        Status::Passed
    );
    // The same sum, spread differently.
    let result = run(vec![counter(2, 0), counter(1, 20)]);
    assert_eq!(
        failures(&result),
        [
            format!("line {line}: map `stats` key 0 on CPU 0: packets: expected 1, got 2"),
            format!("line {line}: map `stats` key 0 on CPU 1: packets: expected 2, got 1"),
        ]
    );
    assert!(matches!(
        &result.status,
        Status::Failed(f) if matches!(f[1].failed, Failed::Map { problem: MapProblem::Cpu { cpu: 1, .. }, .. })
    ));
    assert_eq!(
        failures(&run(vec![counter(1, 0)])),
        [format!(
            "line {line}: map `stats` key 0: expected a value on CPU 1, the kernel has 1 CPU"
        )]
    );
}

#[test]
fn an_absent_entry_fails_when_present_and_shows_what_is_there() {
    let fw = object("xdp_firewall");
    let (c, text) = case(
        &fw,
        &format!(
            "{PACKET}expect.maps.deny_ports = [{{ key = {{ proto = 6, port = 23 }}, absent = true }}]\n"
        ),
    );
    let line = line_of(&text, "expect.maps.deny_ports");
    // struct port_key { __u8 proto; __u8 pad; __be16 port; }
    let key = |proto: u8, port: u16| [[proto, 0], port.to_be_bytes()].concat();
    let run = |entries| {
        let ports = dump(&fw, "deny_ports", entries);
        evaluate(&c, &ran(2, input(&c), None, dumps(&fw, vec![ports])), &fw)
    };
    // Another protocol's rule for the same port is another key.
    assert_eq!(
        run(vec![(key(17, 23), vec![u32_key(9)])]).status,
        Status::Passed
    );
    let result = run(vec![
        (key(17, 23), vec![u32_key(9)]),
        (key(6, 23), vec![u32_key(2)]),
    ]);
    assert_eq!(
        failures(&result),
        [format!(
            "line {line}: map `deny_ports` key {{ proto: 6, pad: 0, port: 23 }}: expected no entry, got 2"
        )]
    );
    assert!(matches!(
        &result.status,
        Status::Failed(f) if matches!(&f[0].failed, Failed::Map { problem: MapProblem::Present { got }, .. } if got == "2")
    ));
}

#[test]
fn an_absent_per_cpu_entry_shows_its_sum() {
    let cg = object("cgroup_egress");
    let (c, text) = case(
        &cg,
        &format!("{PACKET}expect.maps.egress_ports = [{{ key = 25, absent = true }}]\n"),
    );
    let line = line_of(&text, "expect.maps.egress_ports");
    let count = |n: u64| n.to_ne_bytes().to_vec();
    let port = 25u16.to_ne_bytes().to_vec();
    let run = |entries| {
        let ports = dump(&cg, "egress_ports", entries);
        evaluate(&c, &ran(1, input(&c), None, dumps(&cg, vec![ports])), &cg)
    };
    assert_eq!(run(vec![]).status, Status::Passed);
    assert_eq!(
        failures(&run(vec![(port.clone(), vec![count(1), count(2)])])),
        [format!(
            "line {line}: map `egress_ports` key 25: expected no entry, got 3 (sum over 2 CPUs)"
        )]
    );
    // One CPU: the value alone.
    assert_eq!(
        failures(&run(vec![(port, vec![count(4)])])),
        [format!(
            "line {line}: map `egress_ports` key 25: expected no entry, got 4"
        )]
    );
}

#[test]
fn every_failing_expectation_is_reported_in_order() {
    let fw = object("xdp_firewall");
    let (c, text) = case(
        &fw,
        &format!(
            "{PACKET}expect.return = \"XDP_DROP\"\nexpect.packet = \"unchanged\"\n\
             expect.maps.stats = [{{ key = \"DROPPED_V4\", value = {{ packets = 1 }} }}]\n"
        ),
    );
    let mut out = input(&c);
    out[37] = 54;
    let result = evaluate(&c, &ran(2, out, None, dumps(&fw, vec![])), &fw);
    let lines: Vec<usize> = match &result.status {
        Status::Failed(f) => f.iter().map(|f| f.line).collect(),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        lines,
        [
            line_of(&text, "expect.return"),
            line_of(&text, "expect.packet"),
            line_of(&text, "expect.maps"),
        ]
    );
}

#[test]
fn a_case_that_did_not_run_has_no_results() {
    let fw = object("xdp_firewall");
    let (c, _) = case(&fw, &format!("{PACKET}expect.return = \"XDP_DROP\"\n"));
    let skipped = evaluate(
        &c,
        &CaseOutcome::Skipped {
            reason: "probe xdp_ctx failed".into(),
        },
        &fw,
    );
    assert_eq!(
        skipped,
        CaseResult {
            status: Status::Skipped("probe xdp_ctx failed".into()),
            retval: None,
            maps: None,
            flow_keys: None,
            steps: None,
            events: None,
        }
    );
    let error = evaluate(
        &c,
        &CaseOutcome::Error {
            step: CaseStep::Action,
            error: "BPF_PROG_TEST_RUN: Invalid argument".into(),
        },
        &fw,
    );
    assert_eq!(
        error,
        CaseResult {
            status: Status::Error {
                step: CaseStep::Action,
                error: "BPF_PROG_TEST_RUN: Invalid argument".into(),
            },
            retval: None,
            maps: None,
            flow_keys: None,
            steps: None,
            events: None,
        }
    );
}

#[test]
fn the_maps_after_a_run_are_kept_for_the_snapshot_unless_the_case_opts_out() {
    let fw = object("xdp_firewall");
    let stats = dump(
        &fw,
        "stats",
        vec![(u32_key(DROPPED_V4), vec![counter(1, 47), counter(2, 3)])],
    );
    let maps = dumps(&fw, vec![stats]);
    let (kept, _) = case(&fw, PACKET);
    let result = evaluate(&kept, &ran(1, input(&kept), None, maps.clone()), &fw);
    assert_eq!(result.maps, Some(format_dumps(&maps, &fw, true)));
    assert!(
        result
            .maps
            .as_deref()
            .unwrap()
            .contains("  1 => { packets: 3, bytes: 50 }"),
        "{:?}",
        result.maps
    );

    let (each, _) = case(&fw, &format!("{PACKET}percpu = \"each\"\n"));
    let result = evaluate(&each, &ran(1, input(&each), None, maps.clone()), &fw);
    assert_eq!(result.maps, Some(format_dumps(&maps, &fw, false)));

    let (left_out, _) = case(&fw, &format!("{PACKET}snapshot_maps = false\n"));
    let result = evaluate(&left_out, &ran(1, input(&left_out), None, maps), &fw);
    assert_eq!(result.maps, None);
    assert_eq!(result.status, Status::Passed);
}

#[test]
fn map_dumps_list_what_a_run_left() {
    let mut fw = object("xdp_firewall");
    let key = |proto: u8, port: u16| [[proto, 0], port.to_be_bytes()].concat();
    let maps = vec![
        dump(
            &fw,
            "stats",
            vec![
                (u32_key(0), vec![counter(0, 0), counter(0, 0)]),
                (u32_key(DROPPED_V4), vec![counter(1, 47), counter(2, 3)]),
                // Nonzero on the second CPU only: still worth listing.
                (u32_key(3), vec![counter(0, 0), counter(1, 1)]),
            ],
        ),
        // Arrays have every index: only the nonzero ones are listed.
        dump(&fw, "config", vec![(u32_key(0), vec![u32_key(0)])]),
        // Hash maps list every entry, zero or not.
        dump(&fw, "deny_ports", vec![(key(6, 23), vec![u32_key(0)])]),
        // A map the object does not have (another object's) is left out.
        MapDump {
            name: "talkers".into(),
            ..dump(&fw, "deny_ports", vec![])
        },
    ];
    assert_eq!(
        format_dumps(&maps, &fw, true),
        "stats (percpu_array, key __u32, value struct counter):\n\
         \x20 1 => { packets: 3, bytes: 50 }\n\
         \x20 3 => { packets: 1, bytes: 1 }\n\
         config (array, key __u32, value struct config): empty\n\
         deny_ports (hash, key struct port_key, value __u32):\n\
         \x20 { proto: 6, pad: 0, port: 23 } => 0\n"
    );
    assert_eq!(
        format_dumps(&maps[..1], &fw, false),
        "stats (percpu_array, key __u32, value struct counter):\n\
         \x20 1 [cpu0] => { packets: 1, bytes: 47 }\n\
         \x20 1 [cpu1] => { packets: 2, bytes: 3 }\n\
         \x20 3 [cpu0] => { packets: 0, bytes: 0 }\n\
         \x20 3 [cpu1] => { packets: 1, bytes: 1 }\n"
    );
    // Read-only data cannot change: nothing to see after a run.
    fw.maps.get_mut("config").unwrap().spec.kind = harness_bpf::MapKind::Rodata;
    let config = dump(&fw, "config", vec![(u32_key(0), vec![u32_key(5)])]);
    assert_eq!(format_dumps(&[config], &fw, true), "");
}
