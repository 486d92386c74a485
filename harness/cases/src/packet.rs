//! Packets described layer by layer, built with etherparse (lengths and
//! checksums computed unless given), and described field by field so an
//! output packet can be compared with an expected one readably.

use std::{
    fmt::Write as _,
    net::{Ipv4Addr, Ipv6Addr},
};

use etherparse::{
    ArpHardwareId, ArpOperation, ArpPacket, EtherType, Ethernet2Header, Icmpv4Header, Icmpv4Type,
    Icmpv6Header, Icmpv6Type, IpDscp, IpEcn, IpFragOffset, IpNumber, Ipv4Header, Ipv6FlowLabel,
    Ipv6FragmentHeader, Ipv6Header, Ipv6RawExtHeader, LaxPacketHeaders, LinkExtHeader, LinkHeader,
    NetHeaders, SingleVlanHeader, TcpHeader, TcpOptionElement, TransportHeader, UdpHeader, VlanId,
    VlanPcp,
};
use serde::Deserialize;

/// A packet as a test case writes it. Layer order is fixed by the protocols
/// (eth, vlan..., arp | ipv4 | ipv6, tcp | udp | icmp | icmpv6, payload), so
/// the table's key order does not matter.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PacketDef {
    pub eth: Option<EthDef>,
    /// One tag, or several for QinQ (outermost first).
    #[serde(default, deserialize_with = "one_or_many")]
    pub vlan: Vec<VlanDef>,
    pub arp: Option<ArpDef>,
    pub ipv4: Option<Ipv4Def>,
    pub ipv6: Option<Ipv6Def>,
    pub tcp: Option<TcpDef>,
    pub udp: Option<UdpDef>,
    pub icmp: Option<IcmpDef>,
    pub icmpv6: Option<IcmpDef>,
    pub payload: Option<PayloadDef>,
    /// Cut the finished packet to this many bytes (a truncated frame).
    pub truncate: Option<usize>,
}

/// Names of the layers, for error messages.
pub const LAYERS: &[&str] = &[
    "eth", "vlan", "arp", "ipv4", "ipv6", "tcp", "udp", "icmp", "icmpv6", "payload", "truncate",
];

fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<VlanDef>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(VlanDef),
        Many(Vec<VlanDef>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(v) => vec![v],
        OneOrMany::Many(v) => v,
    })
}

/// A MAC address written `02:00:00:00:00:01`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mac(pub [u8; 6]);

impl std::str::FromStr for Mac {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.split([':', '-']).collect();
        let bad = || {
            format!("`{s}` is not a MAC address (expected six hex bytes like 02:00:00:00:00:01)")
        };
        if parts.len() != 6 {
            return Err(bad());
        }
        let mut mac = [0u8; 6];
        for (b, p) in mac.iter_mut().zip(parts) {
            *b = u8::from_str_radix(p, 16).map_err(|_| bad())?;
        }
        Ok(Self(mac))
    }
}

impl<'de> Deserialize<'de> for Mac {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl std::fmt::Display for Mac {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

/// Bytes written as hex, with optional spaces or colons (`"de ad be ef"`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Hex(pub Vec<u8>);

impl<'de> Deserialize<'de> for Hex {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_hex(&s).map(Hex).map_err(serde::de::Error::custom)
    }
}

pub fn parse_hex(s: &str) -> Result<Vec<u8>, String> {
    let clean: String = s
        .trim_start_matches("0x")
        .chars()
        .filter(|c| !c.is_whitespace() && *c != ':')
        .collect();
    hex::decode(&clean).map_err(|e| format!("`{s}` is not hex bytes: {e}"))
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EthDef {
    pub src: Option<Mac>,
    pub dst: Option<Mac>,
    /// Defaults to the type of the next layer.
    #[serde(rename = "type")]
    pub ether_type: Option<u16>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VlanDef {
    pub id: u16,
    #[serde(default)]
    pub pcp: u8,
    #[serde(default)]
    pub dei: bool,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ArpDef {
    /// `request`, `reply` or a number.
    #[serde(default = "arp_request")]
    pub op: NameOrNumber,
    pub sender_mac: Option<Mac>,
    pub sender_ip: Ipv4Addr,
    pub target_mac: Option<Mac>,
    pub target_ip: Ipv4Addr,
}

fn arp_request() -> NameOrNumber {
    NameOrNumber::Name("request".into())
}

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum NameOrNumber {
    Number(i64),
    Name(String),
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Ipv4Def {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    #[serde(default = "default_ttl")]
    pub ttl: u8,
    #[serde(default)]
    pub dscp: u8,
    #[serde(default)]
    pub ecn: u8,
    #[serde(default)]
    pub id: u16,
    /// Don't-fragment flag.
    #[serde(default)]
    pub df: bool,
    /// More-fragments flag.
    #[serde(default)]
    pub mf: bool,
    /// Fragment offset in bytes (a multiple of 8).
    #[serde(default)]
    pub frag_offset: u16,
    /// Defaults to the next layer's protocol number.
    pub protocol: Option<u8>,
    /// Raw option bytes (padded to 4 bytes by the caller).
    pub options: Option<Hex>,
    /// Use this value instead of the computed checksum.
    pub checksum: Option<u16>,
    /// Use this value instead of the computed total length.
    pub total_len: Option<u16>,
}

fn default_ttl() -> u8 {
    64
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Ipv6Def {
    pub src: Ipv6Addr,
    pub dst: Ipv6Addr,
    #[serde(default = "default_ttl")]
    pub hop_limit: u8,
    #[serde(default)]
    pub traffic_class: u8,
    #[serde(default)]
    pub flow_label: u32,
    /// Defaults to the next layer's protocol number.
    pub next_header: Option<u8>,
    pub payload_len: Option<u16>,
    /// Extension headers in order.
    #[serde(default)]
    pub ext: Vec<Ipv6ExtDef>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum Ipv6ExtDef {
    /// Hop-by-hop options; the option bytes default to padding.
    HopByHop {
        options: Option<Hex>,
    },
    Destination {
        options: Option<Hex>,
    },
    Fragment {
        /// In bytes (a multiple of 8).
        #[serde(default)]
        offset: u16,
        #[serde(default)]
        more: bool,
        #[serde(default)]
        id: u32,
    },
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TcpDef {
    pub src: u16,
    pub dst: u16,
    #[serde(default)]
    pub seq: u32,
    #[serde(default)]
    pub ack: u32,
    /// `"SYN"`, `"SYN|ACK"`, `["SYN", "ACK"]`.
    #[serde(default)]
    pub flags: TcpFlags,
    #[serde(default = "default_window")]
    pub window: u16,
    #[serde(default)]
    pub urgent: u16,
    #[serde(default)]
    pub options: TcpOptionsDef,
    pub checksum: Option<u16>,
}

fn default_window() -> u16 {
    65535
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TcpOptionsDef {
    pub mss: Option<u16>,
    pub wscale: Option<u8>,
    #[serde(default)]
    pub sack_permitted: bool,
    /// `[value, echo reply]`.
    pub timestamp: Option<[u32; 2]>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TcpFlags(pub Vec<String>);

const TCP_FLAGS: &[&str] = &["FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR", "NS"];

impl<'de> Deserialize<'de> for TcpFlags {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            One(String),
            Many(Vec<String>),
        }
        let names: Vec<String> = match Raw::deserialize(d)? {
            Raw::One(s) => s
                .split(['|', ',', ' '])
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            Raw::Many(v) => v,
        };
        let mut flags = Vec::new();
        for n in names {
            let up = n.to_ascii_uppercase();
            if !TCP_FLAGS.contains(&up.as_str()) {
                return Err(serde::de::Error::custom(format!(
                    "unknown TCP flag `{n}`; expected one of {}",
                    TCP_FLAGS.join(", ")
                )));
            }
            flags.push(up);
        }
        Ok(Self(flags))
    }
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct UdpDef {
    pub src: u16,
    pub dst: u16,
    pub checksum: Option<u16>,
    pub length: Option<u16>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct IcmpDef {
    /// `echo_request`, `echo_reply`, `dest_unreachable`, `time_exceeded`
    /// (for ICMPv6 also `neighbor_solicitation`, ...) or a number.
    #[serde(rename = "type")]
    pub icmp_type: NameOrNumber,
    #[serde(default)]
    pub code: u8,
    /// Identifier and sequence of echo messages (bytes 4..8 otherwise).
    #[serde(default)]
    pub id: u16,
    #[serde(default)]
    pub seq: u16,
    pub checksum: Option<u16>,
}

/// Payload: text, `{ hex = "..." }` or `{ size = N, fill = 0 }`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum PayloadDef {
    Text(String),
    Hex {
        hex: Hex,
    },
    Fill {
        size: usize,
        #[serde(default)]
        fill: u8,
    },
}

impl PayloadDef {
    fn bytes(&self) -> Vec<u8> {
        match self {
            Self::Text(t) => t.as_bytes().to_vec(),
            Self::Hex { hex } => hex.0.clone(),
            Self::Fill { size, fill } => vec![*fill; *size],
        }
    }
}

const DEFAULT_SRC_MAC: Mac = Mac([0x02, 0, 0, 0, 0, 0x01]);
const DEFAULT_DST_MAC: Mac = Mac([0x02, 0, 0, 0, 0, 0x02]);

fn icmpv4_type(t: &NameOrNumber) -> Result<u8, String> {
    Ok(match t {
        NameOrNumber::Number(n) => {
            u8::try_from(*n).map_err(|_| format!("ICMP type {n} does not fit in a byte"))?
        }
        NameOrNumber::Name(n) => match n.as_str() {
            "echo_reply" => 0,
            "dest_unreachable" => 3,
            "redirect" => 5,
            "echo_request" => 8,
            "time_exceeded" => 11,
            "parameter_problem" => 12,
            other => {
                return Err(format!(
                    "unknown ICMP type `{other}`; expected echo_request, echo_reply, dest_unreachable, redirect, time_exceeded, parameter_problem or a number"
                ));
            }
        },
    })
}

fn icmpv6_type(t: &NameOrNumber) -> Result<u8, String> {
    Ok(match t {
        NameOrNumber::Number(n) => {
            u8::try_from(*n).map_err(|_| format!("ICMPv6 type {n} does not fit in a byte"))?
        }
        NameOrNumber::Name(n) => match n.as_str() {
            "dest_unreachable" => 1,
            "packet_too_big" => 2,
            "time_exceeded" => 3,
            "parameter_problem" => 4,
            "echo_request" => 128,
            "echo_reply" => 129,
            "router_solicitation" => 133,
            "router_advertisement" => 134,
            "neighbor_solicitation" => 135,
            "neighbor_advertisement" => 136,
            other => {
                return Err(format!(
                    "unknown ICMPv6 type `{other}`; expected echo_request, echo_reply, dest_unreachable, packet_too_big, time_exceeded, parameter_problem, router_solicitation, router_advertisement, neighbor_solicitation, neighbor_advertisement or a number"
                ));
            }
        },
    })
}

fn frag_offset(bytes: u16) -> Result<IpFragOffset, String> {
    if !bytes.is_multiple_of(8) {
        return Err(format!(
            "fragment offset {bytes} is not a multiple of 8 bytes"
        ));
    }
    IpFragOffset::try_new(bytes / 8).map_err(|e| e.to_string())
}

impl PacketDef {
    /// Encodes the packet. Errors say which layer is wrong and why.
    pub fn build(&self) -> Result<Vec<u8>, String> {
        let net_count = [self.arp.is_some(), self.ipv4.is_some(), self.ipv6.is_some()]
            .iter()
            .filter(|b| **b)
            .count();
        if net_count > 1 {
            return Err("a packet has at most one of `arp`, `ipv4`, `ipv6`".into());
        }
        let l4_count = [
            self.tcp.is_some(),
            self.udp.is_some(),
            self.icmp.is_some(),
            self.icmpv6.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if l4_count > 1 {
            return Err("a packet has at most one of `tcp`, `udp`, `icmp`, `icmpv6`".into());
        }
        if (self.tcp.is_some() || self.udp.is_some()) && self.ipv4.is_none() && self.ipv6.is_none()
        {
            return Err("`tcp` and `udp` need an `ipv4` or `ipv6` layer".into());
        }
        if self.icmp.is_some() && self.ipv4.is_none() {
            return Err("`icmp` needs an `ipv4` layer (use `icmpv6` over `ipv6`)".into());
        }
        if self.icmpv6.is_some() && self.ipv6.is_none() {
            return Err("`icmpv6` needs an `ipv6` layer".into());
        }
        if self.arp.is_some() && l4_count > 0 {
            return Err("an `arp` packet carries no `tcp`/`udp`/`icmp` layer".into());
        }

        let payload = self
            .payload
            .as_ref()
            .map(PayloadDef::bytes)
            .unwrap_or_default();

        // Pseudo-header addresses for L4 checksums.
        enum Ip {
            V4([u8; 4], [u8; 4]),
            V6([u8; 16], [u8; 16]),
        }
        let ip = match (&self.ipv4, &self.ipv6) {
            (Some(v4), _) => Some(Ip::V4(v4.src.octets(), v4.dst.octets())),
            (_, Some(v6)) => Some(Ip::V6(v6.src.octets(), v6.dst.octets())),
            _ => None,
        };

        // Layer 4 and above.
        let (l4, protocol): (Vec<u8>, Option<IpNumber>) = if let Some(t) = &self.tcp {
            let mut h = TcpHeader::new(t.src, t.dst, t.seq, t.window);
            h.acknowledgment_number = t.ack;
            h.urgent_pointer = t.urgent;
            for f in &t.flags.0 {
                match f.as_str() {
                    "FIN" => h.fin = true,
                    "SYN" => h.syn = true,
                    "RST" => h.rst = true,
                    "PSH" => h.psh = true,
                    "ACK" => h.ack = true,
                    "URG" => h.urg = true,
                    "ECE" => h.ece = true,
                    "CWR" => h.cwr = true,
                    _ => h.ns = true,
                }
            }
            let mut opts = Vec::new();
            if let Some(mss) = t.options.mss {
                opts.push(TcpOptionElement::MaximumSegmentSize(mss));
            }
            if let Some(ws) = t.options.wscale {
                opts.push(TcpOptionElement::Noop);
                opts.push(TcpOptionElement::WindowScale(ws));
            }
            if t.options.sack_permitted {
                opts.push(TcpOptionElement::Noop);
                opts.push(TcpOptionElement::Noop);
                opts.push(TcpOptionElement::SelectiveAcknowledgementPermitted);
            }
            if let Some([tsval, tsecr]) = t.options.timestamp {
                opts.push(TcpOptionElement::Noop);
                opts.push(TcpOptionElement::Noop);
                opts.push(TcpOptionElement::Timestamp(tsval, tsecr));
            }
            h.set_options(&opts)
                .map_err(|e| format!("tcp options: {e}"))?;
            h.checksum = match (t.checksum, &ip) {
                (Some(c), _) => c,
                (None, Some(Ip::V4(s, d))) => h
                    .calc_checksum_ipv4_raw(*s, *d, &payload)
                    .map_err(|e| format!("tcp: {e}"))?,
                (None, Some(Ip::V6(s, d))) => h
                    .calc_checksum_ipv6_raw(*s, *d, &payload)
                    .map_err(|e| format!("tcp: {e}"))?,
                (None, None) => 0,
            };
            let mut out = h.to_bytes().to_vec();
            out.extend_from_slice(&payload);
            (out, Some(IpNumber::TCP))
        } else if let Some(u) = &self.udp {
            let mut h = match &ip {
                Some(Ip::V4(s, d)) => UdpHeader::with_ipv4_checksum(
                    u.src,
                    u.dst,
                    &Ipv4Header::new(0, 64, IpNumber::UDP, *s, *d).map_err(|e| e.to_string())?,
                    &payload,
                )
                .map_err(|e| format!("udp: {e}"))?,
                Some(Ip::V6(s, d)) => {
                    let v6 = Ipv6Header {
                        source: *s,
                        destination: *d,
                        next_header: IpNumber::UDP,
                        ..Default::default()
                    };
                    UdpHeader::with_ipv6_checksum(u.src, u.dst, &v6, &payload)
                        .map_err(|e| format!("udp: {e}"))?
                }
                None => unreachable!("checked above"),
            };
            if let Some(len) = u.length {
                h.length = len;
            }
            if let Some(c) = u.checksum {
                h.checksum = c;
            }
            let mut out = h.to_bytes().to_vec();
            out.extend_from_slice(&payload);
            (out, Some(IpNumber::UDP))
        } else if let Some(i) = &self.icmp {
            let mut rest = [0u8; 4];
            rest[..2].copy_from_slice(&i.id.to_be_bytes());
            rest[2..].copy_from_slice(&i.seq.to_be_bytes());
            let ty = Icmpv4Type::Unknown {
                type_u8: icmpv4_type(&i.icmp_type)?,
                code_u8: i.code,
                bytes5to8: rest,
            };
            let mut h = Icmpv4Header::with_checksum(ty, &payload);
            if let Some(c) = i.checksum {
                h.checksum = c;
            }
            let mut out = h.to_bytes().to_vec();
            out.extend_from_slice(&payload);
            (out, Some(IpNumber::ICMP))
        } else if let Some(i) = &self.icmpv6 {
            let Some(Ip::V6(s, d)) = &ip else {
                unreachable!("checked above")
            };
            let mut rest = [0u8; 4];
            rest[..2].copy_from_slice(&i.id.to_be_bytes());
            rest[2..].copy_from_slice(&i.seq.to_be_bytes());
            let ty = Icmpv6Type::Unknown {
                type_u8: icmpv6_type(&i.icmp_type)?,
                code_u8: i.code,
                bytes5to8: rest,
            };
            let mut h = Icmpv6Header::with_checksum(ty, *s, *d, &payload)
                .map_err(|e| format!("icmpv6: {e}"))?;
            if let Some(c) = i.checksum {
                h.checksum = c;
            }
            let mut out = h.to_bytes().to_vec();
            out.extend_from_slice(&payload);
            (out, Some(IpNumber::IPV6_ICMP))
        } else {
            (payload, None)
        };

        // Layer 3.
        let (l3, ether_type) = if let Some(v4) = &self.ipv4 {
            let proto = v4
                .protocol
                .map(IpNumber)
                .or(protocol)
                .unwrap_or(IpNumber(253)); // 253: experimental
            let mut h = Ipv4Header::new(0, v4.ttl, proto, v4.src.octets(), v4.dst.octets())
                .map_err(|e| e.to_string())?;
            h.dscp = IpDscp::try_new(v4.dscp).map_err(|e| format!("ipv4.dscp: {e}"))?;
            h.ecn = IpEcn::try_new(v4.ecn).map_err(|e| format!("ipv4.ecn: {e}"))?;
            h.identification = v4.id;
            h.dont_fragment = v4.df;
            h.more_fragments = v4.mf;
            h.fragment_offset = frag_offset(v4.frag_offset).map_err(|e| format!("ipv4: {e}"))?;
            if let Some(o) = &v4.options {
                h.options = etherparse::Ipv4Options::try_from(&o.0[..]).map_err(|e| {
                    format!("ipv4.options: {e} (options must be a multiple of 4 bytes, at most 40)")
                })?;
            }
            h.set_payload_len(l4.len())
                .map_err(|e| format!("ipv4: {e}"))?;
            if let Some(len) = v4.total_len {
                h.total_len = len;
            }
            h.header_checksum = v4.checksum.unwrap_or_else(|| h.calc_header_checksum());
            let mut out = h.to_bytes().to_vec();
            out.extend_from_slice(&l4);
            (out, EtherType::IPV4)
        } else if let Some(v6) = &self.ipv6 {
            let upper = v6
                .next_header
                .map(IpNumber)
                .or(protocol)
                .unwrap_or(IpNumber(59)); // 59: no next header
            // Extension headers, built back to front so each knows its successor.
            let mut body = l4;
            let mut next = upper;
            for ext in v6.ext.iter().rev() {
                let (bytes, number) = match ext {
                    Ipv6ExtDef::HopByHop { options } | Ipv6ExtDef::Destination { options } => {
                        // Default: one PadN option filling the minimum 6 bytes.
                        let data = options
                            .as_ref()
                            .map_or_else(|| vec![1, 4, 0, 0, 0, 0], |h| h.0.clone());
                        let h = Ipv6RawExtHeader::new_raw(next, &data)
                            .map_err(|e| format!("ipv6.ext: {e}"))?;
                        let number = if matches!(ext, Ipv6ExtDef::HopByHop { .. }) {
                            IpNumber::IPV6_HEADER_HOP_BY_HOP
                        } else {
                            IpNumber::IPV6_DESTINATION_OPTIONS
                        };
                        (h.to_bytes().to_vec(), number)
                    }
                    Ipv6ExtDef::Fragment { offset, more, id } => {
                        let h = Ipv6FragmentHeader::new(
                            next,
                            frag_offset(*offset).map_err(|e| format!("ipv6.ext: {e}"))?,
                            *more,
                            *id,
                        );
                        (h.to_bytes().to_vec(), IpNumber::IPV6_FRAGMENTATION_HEADER)
                    }
                };
                let mut joined = bytes;
                joined.extend_from_slice(&body);
                body = joined;
                next = number;
            }
            let payload_length = match v6.payload_len {
                Some(l) => l,
                None => u16::try_from(body.len())
                    .map_err(|_| format!("ipv6 payload of {} bytes is too long", body.len()))?,
            };
            let h = Ipv6Header {
                traffic_class: v6.traffic_class,
                flow_label: Ipv6FlowLabel::try_new(v6.flow_label)
                    .map_err(|e| format!("ipv6.flow_label: {e}"))?,
                payload_length,
                next_header: next,
                hop_limit: v6.hop_limit,
                source: v6.src.octets(),
                destination: v6.dst.octets(),
            };
            let mut out = Vec::with_capacity(40 + body.len());
            h.write(&mut out).map_err(|e| format!("ipv6: {e}"))?;
            out.extend_from_slice(&body);
            (out, EtherType::IPV6)
        } else if let Some(a) = &self.arp {
            let op = match &a.op {
                NameOrNumber::Name(n) if n == "request" => ArpOperation::REQUEST,
                NameOrNumber::Name(n) if n == "reply" => ArpOperation::REPLY,
                NameOrNumber::Number(n) => {
                    ArpOperation(u16::try_from(*n).map_err(|_| format!("ARP op {n} out of range"))?)
                }
                NameOrNumber::Name(n) => {
                    return Err(format!(
                        "unknown ARP op `{n}`; expected request, reply or a number"
                    ));
                }
            };
            let src = self
                .eth
                .as_ref()
                .and_then(|e| e.src)
                .unwrap_or(DEFAULT_SRC_MAC);
            let p = ArpPacket::new(
                ArpHardwareId::ETHERNET,
                EtherType::IPV4,
                op,
                &a.sender_mac.unwrap_or(src).0,
                &a.sender_ip.octets(),
                &a.target_mac.unwrap_or(Mac([0; 6])).0,
                &a.target_ip.octets(),
            )
            .map_err(|e| format!("arp: {e}"))?;
            let mut out = p.to_bytes().to_vec();
            out.extend_from_slice(&l4);
            (out, EtherType::ARP)
        } else {
            (l4, EtherType(0x88b5)) // 0x88b5: IEEE local experimental
        };

        // Layer 2: tags are built innermost first so each names its successor;
        // QinQ's outer tag uses the 802.1ad TPID.
        let eth = self.eth.clone().unwrap_or_default();
        let mut next_type = ether_type;
        let mut tags = Vec::new();
        for (i, v) in self.vlan.iter().enumerate().rev() {
            let h = SingleVlanHeader {
                pcp: VlanPcp::try_new(v.pcp).map_err(|e| format!("vlan.pcp: {e}"))?,
                drop_eligible_indicator: v.dei,
                vlan_id: VlanId::try_new(v.id).map_err(|e| format!("vlan.id: {e}"))?,
                ether_type: next_type,
            };
            tags.push(h.to_bytes().to_vec());
            next_type = if i == 0 && self.vlan.len() > 1 {
                EtherType::PROVIDER_BRIDGING
            } else {
                EtherType::VLAN_TAGGED_FRAME
            };
        }
        let h = Ethernet2Header {
            source: eth.src.unwrap_or(DEFAULT_SRC_MAC).0,
            destination: eth.dst.unwrap_or(DEFAULT_DST_MAC).0,
            ether_type: eth.ether_type.map(EtherType).unwrap_or(next_type),
        };
        let mut out = h.to_bytes().to_vec();
        for t in tags.iter().rev() {
            out.extend_from_slice(t);
        }
        out.extend_from_slice(&l3);
        if let Some(n) = self.truncate {
            out.truncate(n);
        }
        Ok(out)
    }
}

/// One field of a decoded packet, e.g. (`ipv4.ttl`, `64`).
pub type Field = (String, String);

/// Decodes a packet into named fields, as far as it parses. Used to explain
/// how an output packet differs from the expected one.
pub fn describe(bytes: &[u8]) -> Vec<Field> {
    let mut f: Vec<Field> = Vec::new();
    let mut push = |k: &str, v: String| f.push((k.to_owned(), v));
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

/// Lines saying how `got` differs from `expected`, field by field; empty when
/// the bytes are identical.
pub fn diff(expected: &[u8], got: &[u8]) -> Vec<String> {
    if expected == got {
        return Vec::new();
    }
    let e = describe(expected);
    let g = describe(got);
    let mut lines = Vec::new();
    for (k, ev) in &e {
        match g.iter().find(|(gk, _)| gk == k) {
            Some((_, gv)) if gv == ev => {}
            Some((_, gv)) => lines.push(format!("{k}: expected {ev}, got {gv}")),
            None => lines.push(format!("{k}: expected {ev}, missing in the output")),
        }
    }
    for (k, gv) in &g {
        if !e.iter().any(|(ek, _)| ek == k) {
            lines.push(format!("{k}: not expected, got {gv}"));
        }
    }
    if lines.is_empty() {
        // Same fields, different bytes somewhere we do not decode.
        let at = expected
            .iter()
            .zip(got)
            .position(|(a, b)| a != b)
            .unwrap_or(expected.len().min(got.len()));
        lines.push(format!(
            "bytes differ at offset {at} (expected {} bytes, got {})",
            expected.len(),
            got.len()
        ));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(toml_text: &str) -> Result<Vec<u8>, String> {
        toml::from_str::<PacketDef>(toml_text)
            .map_err(|e| e.to_string())?
            .build()
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
            fields.contains(&("tcp.flags".into(), "SYN|ACK".into())),
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
        let d = diff(&full, &moved);
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
}
