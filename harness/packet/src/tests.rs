//! Building, describing and comparing packets; reading captures.

use std::path::Path;

use super::*;

fn packet(toml_text: &str) -> Result<Vec<u8>, String> {
    toml::from_str::<PacketDef>(toml_text)
        .map_err(|e| e.to_string())?
        .build()
        .map_err(|e| e.to_string())
}

/// RFC 1071 checksum, written independently of etherparse.
fn ones_complement(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for chunk in data.chunks(2) {
        let word = u32::from(chunk[0]) << 8 | u32::from(*chunk.get(1).unwrap_or(&0));
        sum += word;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// A valid IPv4 + L4 packet sums to zero over header, and over
/// pseudo-header + segment.
fn check_v4(p: &[u8], l3: usize) {
    let ihl = usize::from(p[l3] & 0x0f) * 4;
    assert_eq!(ones_complement(&p[l3..l3 + ihl]), 0, "IPv4 header checksum");
    let total = usize::from(u16::from_be_bytes([p[l3 + 2], p[l3 + 3]]));
    assert_eq!(total, p.len() - l3, "IPv4 total length");
    let seg = &p[l3 + ihl..];
    let proto = p[l3 + 9];
    if proto == 6 || proto == 17 {
        let mut pseudo = p[l3 + 12..l3 + 20].to_vec();
        pseudo.extend_from_slice(&[0, proto]);
        pseudo.extend_from_slice(&(seg.len() as u16).to_be_bytes());
        pseudo.extend_from_slice(seg);
        assert_eq!(
            ones_complement(&pseudo),
            0,
            "L4 checksum over the pseudo-header"
        );
    } else if proto == 1 {
        assert_eq!(ones_complement(seg), 0, "ICMP checksum");
    }
}

#[test]
fn ipv4_udp_has_right_lengths_and_checksums() {
    let p = packet("ipv4 = { src = \"10.0.0.1\", dst = \"10.0.0.2\", ttl = 9 }\nudp = { src = 1000, dst = 53 }\npayload = \"hello\"").unwrap();
    assert_eq!(p.len(), 14 + 20 + 8 + 5);
    assert_eq!(&p[12..14], &[0x08, 0x00]);
    assert_eq!(p[14 + 8], 9);
    assert_eq!(
        &p[14 + 20 + 4..14 + 20 + 6],
        &13u16.to_be_bytes(),
        "UDP length"
    );
    check_v4(&p, 14);
}

#[test]
fn tcp_flags_options_and_checksum() {
    let p = packet(
        "ipv4 = { src = \"192.0.2.1\", dst = \"192.0.2.2\" }\n\
         tcp = { src = 1234, dst = 80, seq = 7, flags = \"SYN|ACK\", options = { mss = 1460, wscale = 7, sack_permitted = true, timestamp = [1, 2] } }",
    )
    .unwrap();
    let tcp = &p[34..];
    assert_eq!(tcp[13], 0x12, "SYN and ACK");
    let data_offset = usize::from(tcp[12] >> 4) * 4;
    assert!(data_offset > 20 && data_offset % 4 == 0);
    assert_eq!(&tcp[20..24], &[2, 4, 0x05, 0xb4], "MSS 1460 first");
    check_v4(&p, 14);
    let fields = describe(&p);
    assert!(
        fields.contains(&Field {
            name: "tcp.flags".into(),
            value: "SYN|ACK".into()
        }),
        "{fields:?}"
    );
}

#[test]
fn given_checksums_and_lengths_are_kept() {
    let p = packet("ipv4 = { src = \"10.0.0.1\", dst = \"10.0.0.2\", checksum = 0xbeef, total_len = 1000 }\nudp = { src = 1, dst = 2, checksum = 0 }").unwrap();
    assert_eq!(&p[14 + 10..14 + 12], &[0xbe, 0xef]);
    assert_eq!(&p[14 + 2..14 + 4], &1000u16.to_be_bytes());
    assert_eq!(
        &p[14 + 20 + 6..14 + 20 + 8],
        &[0, 0],
        "UDP checksum 0 means none"
    );
}

#[test]
fn qinq_uses_the_service_tpid_outside() {
    let p = packet("vlan = [{ id = 100 }, { id = 200, pcp = 3 }]\nipv4 = { src = \"10.0.0.1\", dst = \"10.0.0.2\" }").unwrap();
    assert_eq!(&p[12..14], &[0x88, 0xa8], "outer TPID 802.1ad");
    assert_eq!(u16::from_be_bytes([p[14], p[15]]) & 0x0fff, 100);
    assert_eq!(&p[16..18], &[0x81, 0x00], "inner TPID 802.1Q");
    assert_eq!(u16::from_be_bytes([p[18], p[19]]), 3 << 13 | 200);
    assert_eq!(&p[20..22], &[0x08, 0x00]);
    check_v4(&p, 22);
    let single =
        packet("vlan = { id = 7 }\nipv4 = { src = \"10.0.0.1\", dst = \"10.0.0.2\" }").unwrap();
    assert_eq!(&single[12..14], &[0x81, 0x00]);
}

#[test]
fn ipv6_extension_headers_chain_to_the_transport() {
    let p = packet(
        "ipv6 = { src = \"2001:db8::1\", dst = \"2001:db8::2\", ext = [{ hop_by_hop = {} }, { fragment = { id = 5 } }] }\n\
         udp = { src = 1, dst = 2 }\npayload = \"x\"",
    )
    .unwrap();
    assert_eq!(&p[12..14], &[0x86, 0xdd]);
    assert_eq!(p[14 + 6], 0, "next header: hop-by-hop");
    let hbh = 14 + 40;
    assert_eq!(p[hbh], 44, "then a fragment header");
    let frag = hbh + 8;
    assert_eq!(p[frag], 17, "then UDP");
    assert_eq!(
        usize::from(u16::from_be_bytes([p[18], p[19]])),
        p.len() - 54,
        "IPv6 payload length"
    );
    // UDP checksum over the IPv6 pseudo-header.
    let seg = &p[frag + 8..];
    let mut pseudo = p[22..54].to_vec();
    pseudo.extend_from_slice(&(seg.len() as u32).to_be_bytes());
    pseudo.extend_from_slice(&[0, 0, 0, 17]);
    pseudo.extend_from_slice(seg);
    assert_eq!(ones_complement(&pseudo), 0);
}

#[test]
fn icmp_echo_and_icmpv6() {
    let p = packet("ipv4 = { src = \"10.0.0.1\", dst = \"10.0.0.2\" }\nicmp = { type = \"echo_request\", id = 9, seq = 1 }\npayload = \"ping\"").unwrap();
    assert_eq!(p[34], 8);
    assert_eq!(&p[38..42], &[0, 9, 0, 1]);
    check_v4(&p, 14);
    let p6 = packet("ipv6 = { src = \"fe80::1\", dst = \"ff02::1\" }\nicmpv6 = { type = \"neighbor_solicitation\" }").unwrap();
    assert_eq!(p6[14 + 6], 58);
    assert_eq!(p6[54], 135);
    let err = packet(
        "ipv4 = { src = \"10.0.0.1\", dst = \"10.0.0.2\" }\nicmp = { type = \"echo_requst\" }",
    )
    .unwrap_err();
    assert!(
        err.contains("unknown ICMP type `echo_requst`") && err.contains("echo_request"),
        "{err}"
    );
}

#[test]
fn arp_request() {
    let p = packet("eth = { src = \"02:00:00:00:00:0a\", dst = \"ff:ff:ff:ff:ff:ff\" }\narp = { sender_ip = \"10.0.0.1\", target_ip = \"10.0.0.2\" }").unwrap();
    assert_eq!(&p[12..14], &[0x08, 0x06]);
    assert_eq!(&p[14 + 6..14 + 8], &[0, 1], "request");
    assert_eq!(
        &p[14 + 8..14 + 14],
        &[2, 0, 0, 0, 0, 0x0a],
        "sender MAC defaults to eth.src"
    );
    assert_eq!(&p[14 + 14..14 + 18], &[10, 0, 0, 1]);
}

#[test]
fn layer_mistakes_are_named() {
    let err = packet("ipv5 = {}").unwrap_err();
    assert!(
        err.contains("unknown field `ipv5`") && err.contains("`ipv4`"),
        "{err}"
    );
    assert!(
        packet("tcp = { src = 1, dst = 2 }")
            .unwrap_err()
            .contains("need an `ipv4` or `ipv6`")
    );
    assert!(packet("ipv4 = { src = \"10.0.0.1\", dst = \"10.0.0.2\" }\nipv6 = { src = \"::1\", dst = \"::2\" }").unwrap_err().contains("at most one"));
    assert!(
        packet("ipv4 = { src = \"10.0.0.1\", dst = \"10.0.0.2\", frag_offset = 10 }")
            .unwrap_err()
            .contains("multiple of 8")
    );
    assert!(
        packet("vlan = { id = 5000 }")
            .unwrap_err()
            .contains("vlan.id")
    );
    let err = packet("ipv4 = { src = \"10.0.0.1\", dst = \"10.0.0.2\" }\ntcp = { src = 1, dst = 2, flags = \"SYN|FOO\" }").unwrap_err();
    assert!(err.contains("unknown TCP flag `FOO`"), "{err}");
}

#[test]
fn truncate_cuts_the_frame_and_diff_names_fields() {
    let full =
        packet("ipv4 = { src = \"10.0.0.1\", dst = \"10.0.0.2\" }\nudp = { src = 1, dst = 2 }")
            .unwrap();
    let cut = packet("ipv4 = { src = \"10.0.0.1\", dst = \"10.0.0.2\" }\nudp = { src = 1, dst = 2 }\ntruncate = 20").unwrap();
    assert_eq!(cut, full[..20]);
    let moved =
        packet("ipv4 = { src = \"10.0.0.1\", dst = \"10.0.0.9\" }\nudp = { src = 1, dst = 2 }")
            .unwrap();
    let d: Vec<String> = diff(&full, &moved)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(
        d.contains(&"ipv4.dst: expected 10.0.0.2, got 10.0.0.9".to_owned()),
        "{d:?}"
    );
    assert!(
        d.iter().any(|l| l.starts_with("ipv4.checksum: expected")),
        "{d:?}"
    );
    assert!(
        d.iter().any(|l| l.starts_with("udp.checksum: expected")),
        "{d:?}"
    );
    assert!(diff(&full, &full).is_empty());
}

#[test]
fn errors_are_typed_and_name_the_layer() {
    let build = |t: &str| toml::from_str::<PacketDef>(t).unwrap().build();
    let err =
        build("ipv4 = { src = \"10.0.0.1\", dst = \"10.0.0.2\", frag_offset = 10 }").unwrap_err();
    assert!(
        matches!(
            err,
            PacketError::FragmentOffset {
                layer: "ipv4",
                offset: 10
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "ipv4: fragment offset 10 is not a multiple of 8 bytes"
    );
    let err = build("vlan = { id = 5000 }").unwrap_err();
    assert!(
        matches!(
            err,
            PacketError::Invalid {
                field: "vlan.id",
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "vlan.id: Error '5000' is too big to be a 'VLAN ID' (maximum allowed value is '4095')"
    );
    let err = build("arp = { op = \"ask\", sender_ip = \"10.0.0.1\", target_ip = \"10.0.0.2\" }")
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "unknown ARP op `ask`; expected request, reply or a number"
    );
    let err = "02:00".parse::<Mac>().unwrap_err();
    assert_eq!(
        err.to_string(),
        "`02:00` is not a MAC address (expected six hex bytes like 02:00:00:00:00:01)"
    );
    assert_eq!(parse_hex("de:ad be").unwrap(), [0xde, 0xad, 0xbe]);
    assert_eq!(
        parse_hex("zz").unwrap_err().to_string(),
        "`zz` is not hex bytes: Invalid character 'z' at position 0"
    );
}

#[test]
fn differences_are_typed_and_read_as_lines() {
    let ip = "ipv4 = { src = \"10.0.0.1\", dst = \"10.0.0.2\" }\n";
    let want = packet(&format!("{ip}tcp = {{ src = 1, dst = 8081 }}")).unwrap();
    let got = packet(&format!("{ip}tcp = {{ src = 1, dst = 8080 }}")).unwrap();
    let d = diff(&want, &got);
    let dst = Difference::Field {
        field: "tcp.dst".into(),
        expected: "8081".into(),
        got: "8080".into(),
    };
    assert!(d.contains(&dst), "{d:?}");
    assert_eq!(dst.to_string(), "tcp.dst: expected 8081, got 8080");

    // A frame cut inside the TCP header loses the layer.
    let cut = &want[..40];
    let d = diff(&want, cut);
    assert!(
        d.contains(&Difference::Missing {
            field: "tcp.dst".into(),
            expected: "8081".into()
        }),
        "{d:?}"
    );
    assert!(
        d.iter()
            .any(|x| x.to_string() == "tcp.dst: expected 8081, missing in the output"),
        "{d:?}"
    );
    let d = diff(cut, &want);
    assert!(
        d.iter()
            .any(|x| x.to_string() == "tcp.dst: not expected, got 8081"),
        "{d:?}"
    );

    // Beyond the 64 payload bytes a description shows, only bytes differ.
    let long = format!("{ip}udp = {{ src = 1, dst = 2, checksum = 0 }}\n");
    let a = packet(&format!("{long}payload = {{ size = 100, fill = 0 }}")).unwrap();
    let mut b = a.clone();
    b[120] = 1;
    let d = diff(&a, &b);
    assert_eq!(
        d,
        [Difference::Bytes {
            offset: 120,
            expected_len: a.len(),
            got_len: b.len()
        }]
    );
    assert_eq!(
        d[0].to_string(),
        "bytes differ at offset 120 (expected 142 bytes, got 142)"
    );
}

#[test]
fn fields_read_as_name_and_value() {
    let p = packet("vlan = { id = 7 }\nipv4 = { src = \"10.0.0.1\", dst = \"10.0.0.2\" }").unwrap();
    let fields = describe(&p);
    let shown: Vec<String> = fields.iter().map(ToString::to_string).collect();
    assert!(shown.contains(&"vlan[0].id: 7".to_owned()), "{shown:?}");
    assert!(
        shown.contains(&"ipv4.src: 10.0.0.1".to_owned()),
        "{shown:?}"
    );
    assert_eq!(
        describe(&[1, 2, 3]),
        [Field {
            name: "bytes".into(),
            value: "010203 (3 bytes, not an Ethernet frame)".into()
        }]
    );
}

fn write_pcap(path: &Path, link_type: pcap_file::DataLink, packets: &[&[u8]]) {
    let header = pcap_file::pcap::PcapHeader {
        datalink: link_type,
        ..Default::default()
    };
    let file = std::fs::File::create(path).unwrap();
    let mut w = pcap_file::pcap::PcapWriter::with_header(file, header).unwrap();
    for p in packets {
        w.write_packet(&pcap_file::pcap::PcapPacket::new(
            std::time::Duration::ZERO,
            p.len() as u32,
            p,
        ))
        .unwrap();
    }
}

#[test]
fn captures_are_read_and_their_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let frame = packet("ipv4 = { src = \"10.0.0.1\", dst = \"10.0.0.2\" }").unwrap();
    let ok = dir.path().join("one.pcap");
    write_pcap(&ok, pcap_file::DataLink::ETHERNET, &[&frame, &frame[..20]]);
    assert_eq!(
        read_packets(&ok).unwrap(),
        [frame.clone(), frame[..20].to_vec()]
    );

    let missing = dir.path().join("missing.pcap");
    let err = read_packets(&missing).unwrap_err();
    assert!(matches!(err, CaptureError::Read { .. }), "{err:?}");
    assert_eq!(err.path(), missing);
    assert!(
        err.to_string()
            .starts_with(&format!("cannot read {}: ", missing.display())),
        "{err}"
    );

    let junk = dir.path().join("junk.pcap");
    std::fs::write(&junk, b"not a capture").unwrap();
    let err = read_packets(&junk).unwrap_err();
    assert!(matches!(err, CaptureError::Unreadable { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "{} is not a readable pcap or pcapng file: Error reading bytes",
            junk.display()
        )
    );

    let raw = dir.path().join("raw.pcap");
    write_pcap(&raw, pcap_file::DataLink::RAW, &[&frame[14..]]);
    assert_eq!(
        read_packets(&raw).unwrap_err().to_string(),
        format!(
            "{}: link type RAW is not Ethernet; BPF_PROG_TEST_RUN needs Ethernet frames",
            raw.display()
        )
    );

    let empty = dir.path().join("empty.pcap");
    write_pcap(&empty, pcap_file::DataLink::ETHERNET, &[]);
    assert_eq!(
        read_packets(&empty).unwrap_err().to_string(),
        format!("{} contains no packets", empty.display())
    );
}

#[test]
fn a_truncate_that_cuts_nothing_is_refused() {
    let layers = "ipv4 = { src = \"10.0.0.1\", dst = \"10.0.0.2\" }\nudp = { src = 1, dst = 2 }\n";
    let whole = packet(layers).unwrap().len();
    assert_eq!(
        packet(&format!("{layers}truncate = {}", whole - 1))
            .unwrap()
            .len(),
        whole - 1
    );
    for n in [whole, whole + 10] {
        assert_eq!(
            packet(&format!("{layers}truncate = {n}")).unwrap_err(),
            format!(
                "truncate = {n} cuts nothing: the packet is {whole} bytes; give fewer than {whole}"
            )
        );
    }
}

#[test]
fn payload_mistakes_are_named() {
    let err = packet("payload = { hex = \"de zz\" }").unwrap_err();
    assert!(
        err.contains("payload.hex: ") && err.contains("de zz"),
        "{err}"
    );
    assert!(!err.contains("did not match any variant"), "{err}");
    let err = packet("payload = { hex = \"de\", size = 3 }").unwrap_err();
    assert!(err.contains("give either `hex` or `size`"), "{err}");
    let err = packet("payload = 3").unwrap_err();
    assert!(err.contains("expected text, `{ hex"), "{err}");
    assert_eq!(
        toml::from_str::<PacketDef>("payload = { size = 3, fill = 7 }")
            .unwrap()
            .payload,
        Some(PayloadDef::Fill { size: 3, fill: 7 })
    );
    assert_eq!(
        packet("payload = { hex = \"0xdead\" }").unwrap().len(),
        14 + 2
    );
}
