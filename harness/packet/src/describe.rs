//! A frame decoded into named fields, and two frames compared field by
//! field, so a test failure says `tcp.dst: expected 8081, got 8080` rather
//! than showing two hex dumps.

use std::{
    fmt::{self, Write as _},
    net::{Ipv4Addr, Ipv6Addr},
};

use etherparse::{LaxPacketHeaders, LinkExtHeader, LinkHeader, NetHeaders, TransportHeader};

use crate::schema::Mac;

/// One field of a decoded packet, e.g. `ipv4.ttl` = `64`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    /// `layer.field`, with an index for repeated layers: `vlan[1].id`.
    pub name: String,
    /// The value as a person reads it: `10.0.0.1`, `0x0800`, `SYN|ACK`.
    pub value: String,
}

impl fmt::Display for Field {
    /// `ipv4.ttl: 64`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.name, self.value)
    }
}

/// Decodes a packet into named fields, as far as it parses. Used to explain
/// how an output packet differs from the expected one.
pub fn describe(bytes: &[u8]) -> Vec<Field> {
    let mut f: Vec<Field> = Vec::new();
    let mut push = |name: &str, value: String| {
        f.push(Field {
            name: name.to_owned(),
            value,
        })
    };
    let Ok(h) = LaxPacketHeaders::from_ethernet(bytes) else {
        push(
            "bytes",
            format!(
                "{} ({} bytes, not an Ethernet frame)",
                hex::encode(bytes),
                bytes.len()
            ),
        );
        return f;
    };
    if let Some(LinkHeader::Ethernet2(e)) = &h.link {
        push("eth.dst", Mac(e.destination).to_string());
        push("eth.src", Mac(e.source).to_string());
        push("eth.type", format!("0x{:04x}", e.ether_type.0));
    }
    for (i, ext) in h.link_exts.iter().enumerate() {
        if let LinkExtHeader::Vlan(v) = ext {
            push(&format!("vlan[{i}].id"), v.vlan_id.value().to_string());
            push(&format!("vlan[{i}].pcp"), v.pcp.value().to_string());
            push(
                &format!("vlan[{i}].dei"),
                v.drop_eligible_indicator.to_string(),
            );
            push(
                &format!("vlan[{i}].type"),
                format!("0x{:04x}", v.ether_type.0),
            );
        }
    }
    match &h.net {
        Some(NetHeaders::Ipv4(ip, _)) => {
            push("ipv4.src", Ipv4Addr::from(ip.source).to_string());
            push("ipv4.dst", Ipv4Addr::from(ip.destination).to_string());
            push("ipv4.ttl", ip.time_to_live.to_string());
            push("ipv4.protocol", ip.protocol.0.to_string());
            push("ipv4.total_len", ip.total_len.to_string());
            push("ipv4.id", ip.identification.to_string());
            push(
                "ipv4.flags",
                format!("df={} mf={}", ip.dont_fragment, ip.more_fragments),
            );
            push(
                "ipv4.frag_offset",
                (ip.fragment_offset.value() * 8).to_string(),
            );
            push("ipv4.dscp", ip.dscp.value().to_string());
            push("ipv4.ecn", ip.ecn.value().to_string());
            push("ipv4.options", hex::encode(ip.options.as_slice()));
            push("ipv4.checksum", format!("0x{:04x}", ip.header_checksum));
        }
        Some(NetHeaders::Ipv6(ip, _)) => {
            push("ipv6.src", Ipv6Addr::from(ip.source).to_string());
            push("ipv6.dst", Ipv6Addr::from(ip.destination).to_string());
            push("ipv6.hop_limit", ip.hop_limit.to_string());
            push("ipv6.next_header", ip.next_header.0.to_string());
            push("ipv6.payload_len", ip.payload_length.to_string());
            push("ipv6.traffic_class", ip.traffic_class.to_string());
            push("ipv6.flow_label", ip.flow_label.value().to_string());
        }
        Some(NetHeaders::Arp(a)) => {
            push("arp.op", a.operation.0.to_string());
            push("arp.sender_mac", hex::encode(a.sender_hw_addr()));
            push("arp.sender_ip", hex::encode(a.sender_protocol_addr()));
            push("arp.target_mac", hex::encode(a.target_hw_addr()));
            push("arp.target_ip", hex::encode(a.target_protocol_addr()));
        }
        None => {}
    }
    match &h.transport {
        Some(TransportHeader::Tcp(t)) => {
            push("tcp.src", t.source_port.to_string());
            push("tcp.dst", t.destination_port.to_string());
            push("tcp.seq", t.sequence_number.to_string());
            push("tcp.ack", t.acknowledgment_number.to_string());
            let mut flags = Vec::new();
            for (on, name) in [
                (t.fin, "FIN"),
                (t.syn, "SYN"),
                (t.rst, "RST"),
                (t.psh, "PSH"),
                (t.ack, "ACK"),
                (t.urg, "URG"),
                (t.ece, "ECE"),
                (t.cwr, "CWR"),
                (t.ns, "NS"),
            ] {
                if on {
                    flags.push(name);
                }
            }
            push("tcp.flags", flags.join("|"));
            push("tcp.window", t.window_size.to_string());
            push("tcp.options", hex::encode(t.options.as_slice()));
            push("tcp.checksum", format!("0x{:04x}", t.checksum));
        }
        Some(TransportHeader::Udp(u)) => {
            push("udp.src", u.source_port.to_string());
            push("udp.dst", u.destination_port.to_string());
            push("udp.length", u.length.to_string());
            push("udp.checksum", format!("0x{:04x}", u.checksum));
        }
        Some(TransportHeader::Icmpv4(i)) => {
            let b = i.to_bytes();
            push("icmp.type", b[0].to_string());
            push("icmp.code", b[1].to_string());
            push("icmp.checksum", format!("0x{:04x}", i.checksum));
            push("icmp.rest", hex::encode(&b[4..]));
        }
        Some(TransportHeader::Icmpv6(i)) => {
            let b = i.to_bytes();
            push("icmpv6.type", b[0].to_string());
            push("icmpv6.code", b[1].to_string());
            push("icmpv6.checksum", format!("0x{:04x}", i.checksum));
            push("icmpv6.rest", hex::encode(&b[4..]));
        }
        _ => {}
    }
    let payload = h.payload.slice();
    let mut p = String::new();
    let _ = write!(p, "{} bytes", payload.len());
    if !payload.is_empty() {
        let _ = write!(p, ": {}", hex::encode(&payload[..payload.len().min(64)]));
        if payload.len() > 64 {
            p.push('…');
        }
    }
    push("payload", p);
    if let Some((err, layer)) = &h.stop_err {
        push("parse_error", format!("{layer:?}: {err}"));
    }
    f
}

/// How an output frame differs from the expected one, one field at a time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Difference {
    /// Both frames have the field, with different values.
    Field {
        field: String,
        expected: String,
        got: String,
    },
    /// The expected frame has the field, the output does not (it is shorter,
    /// or a layer changed).
    Missing { field: String, expected: String },
    /// Only the output has the field.
    Unexpected { field: String, got: String },
    /// Every decoded field agrees, yet the bytes differ (somewhere not
    /// decoded: the payload past 64 bytes, padding...).
    Bytes {
        /// The first differing byte, or the shorter length.
        offset: usize,
        expected_len: usize,
        got_len: usize,
    },
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Field {
                field,
                expected,
                got,
            } => write!(f, "{field}: expected {expected}, got {got}"),
            Self::Missing { field, expected } => {
                write!(f, "{field}: expected {expected}, missing in the output")
            }
            Self::Unexpected { field, got } => write!(f, "{field}: not expected, got {got}"),
            Self::Bytes {
                offset,
                expected_len,
                got_len,
            } => write!(
                f,
                "bytes differ at offset {offset} (expected {expected_len} bytes, got {got_len})"
            ),
        }
    }
}

/// How `got` differs from `expected`, field by field; empty when the bytes
/// are identical.
pub fn diff(expected: &[u8], got: &[u8]) -> Vec<Difference> {
    if expected == got {
        return Vec::new();
    }
    let e = describe(expected);
    let g = describe(got);
    let mut out = Vec::new();
    for ef in &e {
        match g.iter().find(|gf| gf.name == ef.name) {
            Some(gf) if gf.value == ef.value => {}
            Some(gf) => out.push(Difference::Field {
                field: ef.name.clone(),
                expected: ef.value.clone(),
                got: gf.value.clone(),
            }),
            None => out.push(Difference::Missing {
                field: ef.name.clone(),
                expected: ef.value.clone(),
            }),
        }
    }
    for gf in &g {
        if !e.iter().any(|ef| ef.name == gf.name) {
            out.push(Difference::Unexpected {
                field: gf.name.clone(),
                got: gf.value.clone(),
            });
        }
    }
    if out.is_empty() {
        // Same fields, different bytes somewhere we do not decode.
        let offset = expected
            .iter()
            .zip(got)
            .position(|(a, b)| a != b)
            .unwrap_or(expected.len().min(got.len()));
        out.push(Difference::Bytes {
            offset,
            expected_len: expected.len(),
            got_len: got.len(),
        });
    }
    out
}
