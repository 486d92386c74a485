//! A flow dissector's output is its flow keys: checked field by field and
//! shown in snapshots as the struct, not as a packet.

mod common;

use std::path::Path;

use common::{compile_with, fixture};
use harness_cases::{Failed, Status, evaluate};
use harness_protocol::{ActionOutput, CaseOutcome, TestRunOutput};

fn ran(data_out: Vec<u8>) -> CaseOutcome {
    CaseOutcome::Ran {
        output: ActionOutput::TestRun(TestRunOutput {
            retval: 0,
            data_out: data_out.into(),
            ctx_out: None,
            duration_ns: 0,
        }),
        maps: Vec::new(),
    }
}

const CASE: &str = r#"object = "flow"
program = "dissect"

[[case]]
name = "tcp"
packet.ipv4 = { src = "10.0.0.1", dst = "10.0.0.2" }
packet.tcp = { src = 1, dst = 2 }
expect.flow_keys = { ip_proto = 6, dport = 443 }
"#;

/// `struct bpf_flow_keys` as the kernel returns it: ip_proto at 9, dport
/// (big-endian) at 14.
fn keys(ip_proto: u8, dport: u16) -> Vec<u8> {
    let mut k = vec![0u8; 56];
    k[9] = ip_proto;
    k[14..16].copy_from_slice(&dport.to_be_bytes());
    k
}

#[test]
fn flow_keys_are_compared_and_shown_as_the_struct() {
    let object = fixture("flow");
    let cases = compile_with(Path::new("testcases"), &object, CASE).unwrap();
    let good = evaluate(&cases[0], &ran(keys(6, 443)), &object);
    assert_eq!(good.status, Status::Passed, "{good:?}");
    let shown = good.flow_keys.unwrap();
    assert!(
        shown.contains("ip_proto: 6") && shown.contains("dport: 443"),
        "{shown}"
    );
    match evaluate(&cases[0], &ran(keys(17, 443)), &object).status {
        Status::Failed(f) => {
            assert_eq!(f.len(), 1, "{f:?}");
            assert!(matches!(&f[0].failed, Failed::FlowKeys(_)));
            assert_eq!(f[0].line, 8);
            assert_eq!(
                f[0].to_string(),
                "line 8: flow keys: ip_proto: expected 6, got 17"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn flow_keys_belong_to_flow_dissectors() {
    let e = compile_with(
        Path::new("testcases"),
        &fixture("events"),
        "object = \"events\"\nprogram = \"on_enter\"\n\n[[case]]\nname = \"x\"\nexpect.flow_keys = { ip_proto = 6 }\n",
    )
    .unwrap_err();
    assert!(
        e.contains("`expect.flow_keys` is for flow dissectors; this is a raw_tracepoint program"),
        "{e}"
    );
    // Other programs' results carry no keys.
    let fw = common::object("xdp_firewall");
    let cases = compile_with(
        Path::new("testcases"),
        &fw,
        "object = \"xdp_firewall\"\nprogram = \"xdp_firewall\"\n\n[[case]]\nname = \"x\"\npacket.ipv4 = { src = \"10.0.0.1\", dst = \"10.0.0.2\" }\npacket.udp = { src = 1, dst = 2 }\n",
    )
    .unwrap();
    assert_eq!(evaluate(&cases[0], &ran(keys(6, 443)), &fw).flow_keys, None);
}
