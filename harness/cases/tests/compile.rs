//! Case files against the real sample objects: what compiles to what, and
//! how mistakes are reported. No kernel involved.

mod common;

use std::{fs, path::Path};

use common::{compile_at, compile_one};

/// What a test-run case feeds the program.
fn input(plan: &harness_protocol::CasePlan) -> &harness_protocol::RunInput {
    match &plan.action {
        harness_protocol::Action::TestRun(input) => input,
        harness_protocol::Action::Steps(_) => panic!("a test-run case"),
    }
}

const FW: &str = "object = \"xdp_firewall\"\nprogram = \"xdp_firewall\"\n";
const IPV4: &str = "packet.ipv4 = { src = \"10.0.0.1\", dst = \"10.0.0.2\" }\n";

#[test]
fn an_xdp_context_fills_data_end_and_requires_the_probe() {
    let cases = compile_one(
        "xdp_firewall",
        &format!("{FW}[[case]]\nname = \"c\"\nctx = {{ ingress_ifindex = 1 }}\n{IPV4}"),
    )
    .unwrap();
    let plan = &cases[0].plan;
    assert_eq!(plan.requires, ["xdp_ctx"]);
    let ctx = input(plan).ctx.as_ref().unwrap();
    // struct xdp_md { data, data_end, data_meta, ingress_ifindex, ... }
    assert_eq!(
        u32::from_ne_bytes(ctx[4..8].try_into().unwrap()),
        input(plan).data.len() as u32
    );
    assert_eq!(u32::from_ne_bytes(ctx[12..16].try_into().unwrap()), 1);
}

#[test]
fn context_fields_the_kernel_refuses_are_named_with_the_accepted_ones() {
    let err = compile_one(
        "xdp_firewall",
        &format!("{FW}[[case]]\nname = \"c\"\nctx = {{ egress_ifindex = 2 }}\n{IPV4}"),
    )
    .unwrap_err();
    assert!(
        err.contains("refuses `egress_ifindex`")
            && err.contains("it accepts ingress_ifindex, rx_queue_index"),
        "{err}"
    );
    assert!(err.contains("cases.toml:5:7"), "{err}");
    let err = compile_one("tc_lb", &format!("object = \"tc_lb\"\nprogram = \"tc_lb\"\n[[case]]\nname = \"c\"\nctx = {{ len = 5 }}\n{IPV4}")).unwrap_err();
    assert!(
        err.contains("refuses `len`") && err.contains("mark, priority"),
        "{err}"
    );
}

#[test]
fn enum_constants_and_their_errors() {
    let cases = compile_one(
        "xdp_firewall",
        &format!("{FW}[[case]]\nname = \"c\"\n{IPV4}expect.maps.stats = [{{ key = \"DROPPED_PORT\", value = {{ packets = 1 }} }}]\n"),
    )
    .unwrap();
    assert_eq!(cases[0].expect.maps[0].key, 3u32.to_ne_bytes());
    let err = compile_one(
        "xdp_firewall",
        &format!("{FW}[[case]]\nname = \"c\"\n{IPV4}expect.maps.stats = [{{ key = \"DROPPED_P0RT\", value = {{ packets = 1 }} }}]\n"),
    )
    .unwrap_err();
    assert!(
        err.contains("no constant `DROPPED_P0RT`")
            && err.contains("DROPPED_PORT")
            && err.contains("cases.toml:6:30"),
        "{err}"
    );
}

#[test]
fn per_cpu_values_only_for_per_cpu_maps_and_ranges_are_checked() {
    let ok = compile_one("xdp_firewall", &format!("{FW}[[case]]\nname = \"c\"\n{IPV4}maps.stats = [{{ key = 0, values = [{{ packets = 1 }}, {{ packets = 2 }}] }}]\n")).unwrap();
    assert!(
        matches!(&ok[0].plan.setup[0].value, harness_protocol::MapValue::PerCpu(v) if v.len() == 2)
    );
    let err = compile_one("xdp_firewall", &format!("{FW}[[case]]\nname = \"c\"\n{IPV4}maps.deny_v4 = [{{ key = \"10.0.0.0/8\", values = [1] }}]\n")).unwrap_err();
    assert!(err.contains("`values` is for per-CPU maps"), "{err}");
    let err = compile_one("xdp_firewall", &format!("{FW}[[case]]\nname = \"c\"\n{IPV4}maps.deny_ports = [{{ key = {{ proto = 300, port = 1 }}, value = 1 }}]\n")).unwrap_err();
    assert!(
        err.contains("300 is out of range for __u8 (0..=255)"),
        "{err}"
    );
    let err = compile_one("xdp_firewall", &format!("{FW}[[case]]\nname = \"c\"\n{IPV4}maps.deny_v4 = [{{ key = \"10.0.0.0/33\", value = 1 }}]\n")).unwrap_err();
    assert!(
        err.contains("prefix /33 is too long") && err.contains("cases.toml:6:"),
        "{err}"
    );
    let err = compile_one("xdp_firewall", &format!("{FW}[[case]]\nname = \"c\"\n{IPV4}maps.deny_ports = [{{ key = {{ protocol = 6, port = 1 }}, value = 1 }}]\n")).unwrap_err();
    assert!(
        err.contains("struct port_key has no field `protocol`; its fields are proto, pad, port"),
        "{err}"
    );
}

#[test]
fn file_level_mistakes() {
    let err = compile_one("xdp_firewall", FW).unwrap_err();
    assert!(err.contains("defines no cases"), "{err}");
    let err = compile_one(
        "xdp_firewall",
        &format!("{FW}[[case]]\nname = \"same\"\n{IPV4}[[case]]\nname = \"same\"\n{IPV4}"),
    )
    .unwrap_err();
    assert!(err.contains("a case named `same` already exists"), "{err}");
    let err = compile_one(
        "xdp_firewall",
        &format!("{FW}[[case]]\nname = \"no input\"\n"),
    )
    .unwrap_err();
    assert!(err.contains("case has no input"), "{err}");
    let err = compile_one("xdp_firewall", &format!("{FW}[[case]]\nname = \"c\"\npacket.ipv4 = {{ src = \"10.0.0.1\", dst = \"10.0.0.2\" }}\npacket.tcpp = {{ src = 1 }}\n")).unwrap_err();
    assert!(
        err.contains("unknown field `tcpp`") && err.contains("`tcp`"),
        "{err}"
    );
    let err = compile_one(
        "xdp_firewall",
        &format!("{FW}[[case]]\nname = \"c\"\nrequires = [\"lpm\"]\n{IPV4}"),
    )
    .unwrap_err();
    assert!(
        err.contains("unknown probe `lpm`") && err.contains("lpm_trie"),
        "{err}"
    );
}

fn write_pcap(path: &Path, packets: &[Vec<u8>], ng: bool) {
    let file = fs::File::create(path).unwrap();
    if ng {
        use pcap_file::pcapng::{
            PcapNgWriter, blocks::enhanced_packet::EnhancedPacketBlock,
            blocks::interface_description::InterfaceDescriptionBlock,
        };
        let mut w = PcapNgWriter::new(file).unwrap();
        w.write_pcapng_block(InterfaceDescriptionBlock {
            linktype: pcap_file::DataLink::ETHERNET,
            snaplen: 65535,
            options: vec![],
        })
        .unwrap();
        for p in packets {
            w.write_pcapng_block(EnhancedPacketBlock {
                interface_id: 0,
                timestamp: std::time::Duration::ZERO,
                original_len: p.len() as u32,
                data: p.as_slice().into(),
                options: vec![],
            })
            .unwrap();
        }
    } else {
        let mut w = pcap_file::pcap::PcapWriter::new(file).unwrap();
        for p in packets {
            w.write_packet(&pcap_file::pcap::PcapPacket::new(
                std::time::Duration::ZERO,
                p.len() as u32,
                p,
            ))
            .unwrap();
        }
    }
}

fn built(layers: &str) -> Vec<u8> {
    toml::from_str::<harness_packet::PacketDef>(layers)
        .unwrap()
        .build()
        .unwrap()
}

#[test]
fn pcap_and_pcapng_inputs_one_run_per_packet_or_by_index() {
    let dir = tempfile::tempdir().unwrap();
    let a = built("ipv4 = { src = \"10.0.0.1\", dst = \"10.0.0.2\" }\nudp = { src = 1, dst = 53 }");
    let b = built("ipv6 = { src = \"::1\", dst = \"::2\" }\ntcp = { src = 1, dst = 53 }");
    write_pcap(&dir.path().join("two.pcap"), &[a.clone(), b.clone()], false);
    write_pcap(
        &dir.path().join("two.pcapng"),
        &[a.clone(), b.clone()],
        true,
    );
    for file in ["two.pcap", "two.pcapng"] {
        let all = compile_at(
            dir.path(),
            "xdp_firewall",
            &format!("{FW}[[case]]\nname = \"all\"\npcap = {{ file = \"{file}\" }}\n"),
        )
        .unwrap();
        let names: Vec<_> = all.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["all #0", "all #1"]);
        assert_eq!(
            (
                input(&all[0].plan).data.0.clone(),
                input(&all[1].plan).data.0.clone()
            ),
            (a.clone(), b.clone())
        );
        let one = compile_at(
            dir.path(),
            "xdp_firewall",
            &format!(
                "{FW}[[case]]\nname = \"second\"\npcap = {{ file = \"{file}\", index = 1 }}\n"
            ),
        )
        .unwrap();
        assert_eq!(input(&one[0].plan).data.0, b);
        let err = compile_at(
            dir.path(),
            "xdp_firewall",
            &format!("{FW}[[case]]\nname = \"x\"\npcap = {{ file = \"{file}\", index = 5 }}\n"),
        )
        .unwrap_err();
        assert!(
            err.contains("has 2 packets; index 5 does not exist"),
            "{err}"
        );
    }
    fs::write(dir.path().join("junk.pcap"), b"not a capture").unwrap();
    let err = compile_at(
        dir.path(),
        "xdp_firewall",
        &format!("{FW}[[case]]\nname = \"x\"\npcap = {{ file = \"junk.pcap\" }}\n"),
    )
    .unwrap_err();
    assert!(
        err.contains("junk.pcap is not a readable pcap or pcapng file")
            && err.contains("cases.toml:5:"),
        "{err}"
    );
    let err = compile_at(
        dir.path(),
        "xdp_firewall",
        &format!("{FW}[[case]]\nname = \"x\"\npcap = {{ file = \"missing.pcap\" }}\n"),
    )
    .unwrap_err();
    assert!(
        err.contains("cannot read") && err.contains("missing.pcap"),
        "{err}"
    );
}

#[test]
fn array_indexes_beyond_the_array_are_refused_at_the_key() {
    // stats is a per-CPU array of VERDICT_MAX (7) entries; config has one.
    let ok = compile_one(
        "xdp_firewall",
        &format!(
            "{FW}[[case]]\nname = \"c\"\n{IPV4}maps.stats = [{{ key = \"TRUSTED\", value = {{ packets = 1 }} }}]\n"
        ),
    );
    assert!(ok.is_ok(), "{ok:?}");
    let err = compile_one("xdp_firewall", &format!("{FW}[[case]]\nname = \"c\"\n{IPV4}maps.stats = [{{ key = \"VERDICT_MAX\", value = {{ packets = 1 }} }}]\n")).unwrap_err();
    assert!(
        err.contains(
            "maps.stats[0].key: index 7 is beyond the array `stats`, which has 7 entries (0 to 6)"
        ) && err.contains("cases.toml:6:23"),
        "{err}"
    );
    let err = compile_one("xdp_firewall", &format!("{FW}[[case]]\nname = \"c\"\n{IPV4}expect.maps.config = [{{ key = 1, absent = true }}]\n")).unwrap_err();
    assert!(
        err.contains("expect.maps.config[0].key: index 1 is beyond the array `config`, which has 1 entries (0 to 0)"),
        "{err}"
    );
    // Hash maps take any key.
    assert!(compile_one("xdp_firewall", &format!("{FW}[[case]]\nname = \"c\"\n{IPV4}maps.deny_ports = [{{ key = {{ proto = 6, port = 9999 }}, value = 1 }}]\n")).is_ok());
}

#[test]
fn a_bad_payload_is_named_at_its_place() {
    let err = compile_one(
        "xdp_firewall",
        &format!("{FW}[[case]]\nname = \"c\"\n{IPV4}packet.payload = {{ hex = \"de zz\" }}\n"),
    )
    .unwrap_err();
    assert!(
        err.contains("payload.hex: ") && err.contains("cases.toml:6:") && !err.contains("variant"),
        "{err}"
    );
    let err = compile_one(
        "xdp_firewall",
        &format!("{FW}[[case]]\nname = \"c\"\n{IPV4}packet.truncate = 500\n"),
    )
    .unwrap_err();
    assert!(err.contains("truncate = 500 cuts nothing"), "{err}");
}
