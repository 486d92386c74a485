//! [`PacketDef`] to bytes, layer by layer from the inside out: the payload
//! first, then the transport header (whose checksum covers the payload and
//! the IP pseudo-header), the network header (whose length covers what is
//! inside), VLAN tags and the Ethernet header (each naming the type of the
//! layer after it). Every value the author left out is computed; every
//! value given is written as is, even when wrong, so malformed packets can
//! be tested.

use etherparse::{
    ArpHardwareId, ArpOperation, ArpPacket, EtherType, Ethernet2Header, Icmpv4Header, Icmpv4Type,
    Icmpv6Header, Icmpv6Type, IpDscp, IpEcn, IpFragOffset, IpNumber, Ipv4Header, Ipv4Options,
    Ipv6FlowLabel, Ipv6FragmentHeader, Ipv6Header, Ipv6RawExtHeader, SingleVlanHeader, TcpHeader,
    TcpOptionElement, UdpHeader, VlanId, VlanPcp,
};

use crate::schema::{
    ArpDef, IcmpDef, Ipv4Def, Ipv6Def, Ipv6ExtDef, Mac, NameOrNumber, PacketDef, PayloadDef,
    TcpDef, TcpFlags, TcpOptionsDef, UdpDef, VlanDef,
};

/// Why a packet cannot be built. The texts name the layer (and field) at
/// fault; case files show them after `packet: `.
#[derive(Debug, thiserror::Error)]
pub enum PacketError {
    #[error("a packet has at most one of `arp`, `ipv4`, `ipv6`")]
    SeveralNetworkLayers,
    #[error("truncate = {truncate} cuts nothing: the packet is {len} bytes; give fewer than {len}")]
    TruncateBeyondEnd { truncate: usize, len: usize },
    #[error("a packet has at most one of `tcp`, `udp`, `icmp`, `icmpv6`")]
    SeveralTransportLayers,
    #[error("`tcp` and `udp` need an `ipv4` or `ipv6` layer")]
    TransportWithoutIp,
    #[error("`icmp` needs an `ipv4` layer (use `icmpv6` over `ipv6`)")]
    IcmpWithoutIpv4,
    #[error("`icmpv6` needs an `ipv6` layer")]
    Icmpv6WithoutIpv6,
    #[error("an `arp` packet carries no `tcp`/`udp`/`icmp` layer")]
    TransportOverArp,
    #[error("ICMP type {0} does not fit in a byte")]
    IcmpTypeRange(i64),
    #[error(
        "unknown ICMP type `{0}`; expected echo_request, echo_reply, dest_unreachable, redirect, time_exceeded, parameter_problem or a number"
    )]
    UnknownIcmpType(String),
    #[error("ICMPv6 type {0} does not fit in a byte")]
    Icmpv6TypeRange(i64),
    #[error(
        "unknown ICMPv6 type `{0}`; expected echo_request, echo_reply, dest_unreachable, packet_too_big, time_exceeded, parameter_problem, router_solicitation, router_advertisement, neighbor_solicitation, neighbor_advertisement or a number"
    )]
    UnknownIcmpv6Type(String),
    #[error("ARP op {0} out of range")]
    ArpOpRange(i64),
    #[error("unknown ARP op `{0}`; expected request, reply or a number")]
    UnknownArpOp(String),
    /// IPv4 and IPv6 fragment offsets count 8-byte units.
    #[error("{layer}: fragment offset {offset} is not a multiple of 8 bytes")]
    FragmentOffset { layer: &'static str, offset: u16 },
    #[error("ipv4.options: {0} (options must be a multiple of 4 bytes, at most 40)")]
    Ipv4Options(#[source] etherparse::err::ipv4::BadOptionsLen),
    #[error("ipv6 payload of {0} bytes is too long")]
    Ipv6PayloadTooLong(usize),
    /// etherparse refused a value: too big for its field (`vlan.id`,
    /// `ipv4.dscp`, ...), or a layer too long for its length field.
    #[error("{field}: {error}")]
    Invalid {
        /// The layer or field, as the case file names it (`vlan.id`, `tcp`).
        field: &'static str,
        #[source]
        error: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// `map_err` for etherparse's errors: `.map_err(invalid("vlan.id"))`.
fn invalid<E: std::error::Error + Send + Sync + 'static>(
    field: &'static str,
) -> impl FnOnce(E) -> PacketError {
    move |e| PacketError::Invalid {
        field,
        error: Box::new(e),
    }
}

const DEFAULT_SRC_MAC: Mac = Mac([0x02, 0, 0, 0, 0, 0x01]);
const DEFAULT_DST_MAC: Mac = Mac([0x02, 0, 0, 0, 0, 0x02]);

/// The addresses an L4 checksum covers (the IP pseudo-header).
enum PseudoHeader {
    V4([u8; 4], [u8; 4]),
    V6([u8; 16], [u8; 16]),
}

impl PacketDef {
    /// Encodes the packet. Errors say which layer is wrong and why.
    pub fn build(&self) -> Result<Vec<u8>, PacketError> {
        self.check_layers()?;
        let payload = self
            .payload
            .as_ref()
            .map(PayloadDef::bytes)
            .unwrap_or_default();
        let (l4, protocol) = self.transport(payload)?;
        let (l3, ether_type) = self.network(l4, protocol)?;
        let mut frame = self.link(ether_type, &l3)?;
        // Cut last: like a frame cut on the wire, it keeps the lengths and
        // checksums of the whole packet.
        if let Some(n) = self.truncate {
            // Cutting nothing off would hide a mistake in the case.
            if n >= frame.len() {
                return Err(PacketError::TruncateBeyondEnd {
                    truncate: n,
                    len: frame.len(),
                });
            }
            frame.truncate(n);
        }
        Ok(frame)
    }

    /// Refuses layer combinations no protocol stack would produce, before
    /// anything is encoded (the encoders below rely on these checks).
    fn check_layers(&self) -> Result<(), PacketError> {
        let count = |layers: &[bool]| layers.iter().filter(|b| **b).count();
        if count(&[self.arp.is_some(), self.ipv4.is_some(), self.ipv6.is_some()]) > 1 {
            return Err(PacketError::SeveralNetworkLayers);
        }
        let l4_count = count(&[
            self.tcp.is_some(),
            self.udp.is_some(),
            self.icmp.is_some(),
            self.icmpv6.is_some(),
        ]);
        if l4_count > 1 {
            return Err(PacketError::SeveralTransportLayers);
        }
        if (self.tcp.is_some() || self.udp.is_some()) && self.ipv4.is_none() && self.ipv6.is_none()
        {
            return Err(PacketError::TransportWithoutIp);
        }
        if self.icmp.is_some() && self.ipv4.is_none() {
            return Err(PacketError::IcmpWithoutIpv4);
        }
        if self.icmpv6.is_some() && self.ipv6.is_none() {
            return Err(PacketError::Icmpv6WithoutIpv6);
        }
        if self.arp.is_some() && l4_count > 0 {
            return Err(PacketError::TransportOverArp);
        }
        Ok(())
    }

    fn pseudo_header(&self) -> Option<PseudoHeader> {
        match (&self.ipv4, &self.ipv6) {
            (Some(v4), _) => Some(PseudoHeader::V4(v4.src.octets(), v4.dst.octets())),
            (_, Some(v6)) => Some(PseudoHeader::V6(v6.src.octets(), v6.dst.octets())),
            _ => None,
        }
    }

    /// The transport header followed by the payload, and the protocol number
    /// the network layer announces for it (none when there is no L4 layer).
    fn transport(&self, payload: Vec<u8>) -> Result<(Vec<u8>, Option<IpNumber>), PacketError> {
        let ip = self.pseudo_header();
        Ok(if let Some(t) = &self.tcp {
            (tcp(t, ip.as_ref(), &payload)?, Some(IpNumber::TCP))
        } else if let Some(u) = &self.udp {
            (udp(u, ip.as_ref(), &payload)?, Some(IpNumber::UDP))
        } else if let Some(i) = &self.icmp {
            (icmpv4(i, &payload)?, Some(IpNumber::ICMP))
        } else if let Some(i) = &self.icmpv6 {
            (icmpv6(i, ip.as_ref(), &payload)?, Some(IpNumber::IPV6_ICMP))
        } else {
            (payload, None)
        })
    }

    /// The network header followed by `l4`, and the EtherType that
    /// announces it.
    fn network(
        &self,
        l4: Vec<u8>,
        protocol: Option<IpNumber>,
    ) -> Result<(Vec<u8>, EtherType), PacketError> {
        Ok(if let Some(v4) = &self.ipv4 {
            (ipv4(v4, &l4, protocol)?, EtherType::IPV4)
        } else if let Some(v6) = &self.ipv6 {
            (ipv6(v6, l4, protocol)?, EtherType::IPV6)
        } else if let Some(a) = &self.arp {
            // An ARP sender is, unless told otherwise, the frame's sender.
            let src = self.eth.as_ref().and_then(|e| e.src);
            (arp(a, src.unwrap_or(DEFAULT_SRC_MAC), &l4)?, EtherType::ARP)
        } else {
            (l4, EtherType(0x88b5)) // 0x88b5: IEEE local experimental
        })
    }

    /// The Ethernet header and VLAN tags in front of `l3`.
    fn link(&self, ether_type: EtherType, l3: &[u8]) -> Result<Vec<u8>, PacketError> {
        let eth = self.eth.clone().unwrap_or_default();
        let (tags, next_type) = vlan_tags(&self.vlan, ether_type)?;
        let h = Ethernet2Header {
            source: eth.src.unwrap_or(DEFAULT_SRC_MAC).0,
            destination: eth.dst.unwrap_or(DEFAULT_DST_MAC).0,
            ether_type: eth.ether_type.map(EtherType).unwrap_or(next_type),
        };
        let mut out = h.to_bytes().to_vec();
        out.extend_from_slice(&tags);
        out.extend_from_slice(l3);
        Ok(out)
    }
}

/// `header` then `payload`.
fn joined(header: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(header.len() + payload.len());
    out.extend_from_slice(header);
    out.extend_from_slice(payload);
    out
}

/// VLAN tags outermost first, and the EtherType the Ethernet header must
/// announce. Built innermost first so each tag names its successor; with
/// several tags (QinQ) the outer one is announced with the 802.1ad TPID.
fn vlan_tags(vlans: &[VlanDef], inner: EtherType) -> Result<(Vec<u8>, EtherType), PacketError> {
    let mut next_type = inner;
    let mut tags = Vec::new();
    for (i, v) in vlans.iter().enumerate().rev() {
        let h = SingleVlanHeader {
            pcp: VlanPcp::try_new(v.pcp).map_err(invalid("vlan.pcp"))?,
            drop_eligible_indicator: v.dei,
            vlan_id: VlanId::try_new(v.id).map_err(invalid("vlan.id"))?,
            ether_type: next_type,
        };
        tags.splice(0..0, h.to_bytes());
        next_type = if i == 0 && vlans.len() > 1 {
            EtherType::PROVIDER_BRIDGING
        } else {
            EtherType::VLAN_TAGGED_FRAME
        };
    }
    Ok((tags, next_type))
}

fn arp(a: &ArpDef, default_sender: Mac, l4: &[u8]) -> Result<Vec<u8>, PacketError> {
    let p = ArpPacket::new(
        ArpHardwareId::ETHERNET,
        EtherType::IPV4,
        arp_op(&a.op)?,
        &a.sender_mac.unwrap_or(default_sender).0,
        &a.sender_ip.octets(),
        &a.target_mac.unwrap_or(Mac([0; 6])).0,
        &a.target_ip.octets(),
    )
    .map_err(invalid("arp"))?;
    Ok(joined(&p.to_bytes(), l4))
}

fn arp_op(op: &NameOrNumber) -> Result<ArpOperation, PacketError> {
    match op {
        NameOrNumber::Name(n) if n == "request" => Ok(ArpOperation::REQUEST),
        NameOrNumber::Name(n) if n == "reply" => Ok(ArpOperation::REPLY),
        NameOrNumber::Number(n) => u16::try_from(*n)
            .map(ArpOperation)
            .map_err(|_| PacketError::ArpOpRange(*n)),
        NameOrNumber::Name(n) => Err(PacketError::UnknownArpOp(n.clone())),
    }
}

fn ipv4(v4: &Ipv4Def, l4: &[u8], protocol: Option<IpNumber>) -> Result<Vec<u8>, PacketError> {
    let mut h = Ipv4Header {
        time_to_live: v4.ttl,
        // An explicit protocol wins (to test a mislabelled packet); without
        // an L4 layer, 253 is the number set aside for experiments.
        protocol: v4
            .protocol
            .map(IpNumber)
            .or(protocol)
            .unwrap_or(IpNumber(253)),
        source: v4.src.octets(),
        destination: v4.dst.octets(),
        ..Default::default()
    };
    h.dscp = IpDscp::try_new(v4.dscp).map_err(invalid("ipv4.dscp"))?;
    h.ecn = IpEcn::try_new(v4.ecn).map_err(invalid("ipv4.ecn"))?;
    h.identification = v4.id;
    h.dont_fragment = v4.df;
    h.more_fragments = v4.mf;
    h.fragment_offset = frag_offset("ipv4", v4.frag_offset)?;
    if let Some(o) = &v4.options {
        h.options = Ipv4Options::try_from(&o.0[..]).map_err(PacketError::Ipv4Options)?;
    }
    h.set_payload_len(l4.len()).map_err(invalid("ipv4"))?;
    // Given values are written as is, so a wrong length or checksum can be
    // tested; the checksum is computed after the length it covers.
    if let Some(len) = v4.total_len {
        h.total_len = len;
    }
    h.header_checksum = v4.checksum.unwrap_or_else(|| h.calc_header_checksum());
    Ok(joined(&h.to_bytes(), l4))
}

fn ipv6(v6: &Ipv6Def, l4: Vec<u8>, protocol: Option<IpNumber>) -> Result<Vec<u8>, PacketError> {
    // 59: "no next header", for an IPv6 packet with nothing inside.
    let upper = v6
        .next_header
        .map(IpNumber)
        .or(protocol)
        .unwrap_or(IpNumber(59));
    let (body, next_header) = ipv6_extensions(&v6.ext, l4, upper)?;
    let payload_length = match v6.payload_len {
        Some(l) => l,
        None => {
            u16::try_from(body.len()).map_err(|_| PacketError::Ipv6PayloadTooLong(body.len()))?
        }
    };
    let h = Ipv6Header {
        traffic_class: v6.traffic_class,
        flow_label: Ipv6FlowLabel::try_new(v6.flow_label).map_err(invalid("ipv6.flow_label"))?,
        payload_length,
        next_header,
        hop_limit: v6.hop_limit,
        source: v6.src.octets(),
        destination: v6.dst.octets(),
    };
    let mut out = Vec::with_capacity(Ipv6Header::LEN + body.len());
    h.write(&mut out).map_err(invalid("ipv6"))?;
    out.extend_from_slice(&body);
    Ok(out)
}

/// The extension headers in front of `l4`, and the number of the first
/// (what the IPv6 header's next header field says). Built back to front so
/// each header knows its successor.
fn ipv6_extensions(
    exts: &[Ipv6ExtDef],
    l4: Vec<u8>,
    upper: IpNumber,
) -> Result<(Vec<u8>, IpNumber), PacketError> {
    let mut body = l4;
    let mut next = upper;
    for ext in exts.iter().rev() {
        let (header, number) = match ext {
            Ipv6ExtDef::HopByHop { options } | Ipv6ExtDef::Destination { options } => {
                // Default: one PadN option filling the minimum 6 bytes.
                let data = options
                    .as_ref()
                    .map_or_else(|| vec![1, 4, 0, 0, 0, 0], |h| h.0.clone());
                let h = Ipv6RawExtHeader::new_raw(next, &data).map_err(invalid("ipv6.ext"))?;
                let number = if matches!(ext, Ipv6ExtDef::HopByHop { .. }) {
                    IpNumber::IPV6_HEADER_HOP_BY_HOP
                } else {
                    IpNumber::IPV6_DESTINATION_OPTIONS
                };
                (h.to_bytes().to_vec(), number)
            }
            Ipv6ExtDef::Fragment { offset, more, id } => {
                let offset = frag_offset("ipv6.ext", *offset)?;
                let h = Ipv6FragmentHeader::new(next, offset, *more, *id);
                (h.to_bytes().to_vec(), IpNumber::IPV6_FRAGMENTATION_HEADER)
            }
        };
        body = joined(&header, &body);
        next = number;
    }
    Ok((body, next))
}

/// A fragment offset written in bytes (as people think of it) to the 8-byte
/// units the headers hold.
fn frag_offset(layer: &'static str, bytes: u16) -> Result<IpFragOffset, PacketError> {
    if !bytes.is_multiple_of(8) {
        return Err(PacketError::FragmentOffset {
            layer,
            offset: bytes,
        });
    }
    IpFragOffset::try_new(bytes / 8).map_err(invalid(layer))
}

fn tcp(t: &TcpDef, ip: Option<&PseudoHeader>, payload: &[u8]) -> Result<Vec<u8>, PacketError> {
    let mut h = TcpHeader::new(t.src, t.dst, t.seq, t.window);
    h.acknowledgment_number = t.ack;
    h.urgent_pointer = t.urgent;
    set_tcp_flags(&mut h, &t.flags);
    h.set_options(&tcp_options(&t.options))
        .map_err(invalid("tcp options"))?;
    h.checksum = match (t.checksum, ip) {
        (Some(c), _) => c,
        (None, Some(PseudoHeader::V4(s, d))) => h
            .calc_checksum_ipv4_raw(*s, *d, payload)
            .map_err(invalid("tcp"))?,
        (None, Some(PseudoHeader::V6(s, d))) => h
            .calc_checksum_ipv6_raw(*s, *d, payload)
            .map_err(invalid("tcp"))?,
        (None, None) => 0,
    };
    Ok(joined(&h.to_bytes(), payload))
}

/// Flags are checked against the known names when the case file is read.
fn set_tcp_flags(h: &mut TcpHeader, flags: &TcpFlags) {
    for f in &flags.0 {
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
}

/// Options in the order and with the NOP padding Linux uses in a SYN, so
/// each lands 4-byte aligned.
fn tcp_options(o: &TcpOptionsDef) -> Vec<TcpOptionElement> {
    let mut opts = Vec::new();
    if let Some(mss) = o.mss {
        opts.push(TcpOptionElement::MaximumSegmentSize(mss));
    }
    if let Some(ws) = o.wscale {
        opts.push(TcpOptionElement::Noop);
        opts.push(TcpOptionElement::WindowScale(ws));
    }
    if o.sack_permitted {
        opts.push(TcpOptionElement::Noop);
        opts.push(TcpOptionElement::Noop);
        opts.push(TcpOptionElement::SelectiveAcknowledgementPermitted);
    }
    if let Some([tsval, tsecr]) = o.timestamp {
        opts.push(TcpOptionElement::Noop);
        opts.push(TcpOptionElement::Noop);
        opts.push(TcpOptionElement::Timestamp(tsval, tsecr));
    }
    opts
}

fn udp(u: &UdpDef, ip: Option<&PseudoHeader>, payload: &[u8]) -> Result<Vec<u8>, PacketError> {
    let mut h = match ip {
        Some(PseudoHeader::V4(s, d)) => {
            // etherparse takes the addresses from an IPv4 header.
            let ip = Ipv4Header {
                protocol: IpNumber::UDP,
                source: *s,
                destination: *d,
                ..Default::default()
            };
            UdpHeader::with_ipv4_checksum(u.src, u.dst, &ip, payload).map_err(invalid("udp"))?
        }
        Some(PseudoHeader::V6(s, d)) => {
            let ip = Ipv6Header {
                source: *s,
                destination: *d,
                next_header: IpNumber::UDP,
                ..Default::default()
            };
            UdpHeader::with_ipv6_checksum(u.src, u.dst, &ip, payload).map_err(invalid("udp"))?
        }
        None => unreachable!("check_layers: udp needs an IP layer"),
    };
    if let Some(len) = u.length {
        h.length = len;
    }
    if let Some(c) = u.checksum {
        h.checksum = c;
    }
    Ok(joined(&h.to_bytes(), payload))
}

/// Bytes 4..8 of an ICMP header: identifier and sequence of echo messages,
/// written the same way for every type so any message can be made.
fn icmp_rest(i: &IcmpDef) -> [u8; 4] {
    let mut rest = [0u8; 4];
    rest[..2].copy_from_slice(&i.id.to_be_bytes());
    rest[2..].copy_from_slice(&i.seq.to_be_bytes());
    rest
}

fn icmpv4(i: &IcmpDef, payload: &[u8]) -> Result<Vec<u8>, PacketError> {
    // `Unknown` writes type, code and bytes 4..8 as given, for every type.
    let ty = Icmpv4Type::Unknown {
        type_u8: icmpv4_type(&i.icmp_type)?,
        code_u8: i.code,
        bytes5to8: icmp_rest(i),
    };
    let mut h = Icmpv4Header::with_checksum(ty, payload);
    if let Some(c) = i.checksum {
        h.checksum = c;
    }
    Ok(joined(&h.to_bytes(), payload))
}

fn icmpv6(i: &IcmpDef, ip: Option<&PseudoHeader>, payload: &[u8]) -> Result<Vec<u8>, PacketError> {
    let Some(PseudoHeader::V6(s, d)) = ip else {
        unreachable!("check_layers: icmpv6 needs an ipv6 layer")
    };
    let ty = Icmpv6Type::Unknown {
        type_u8: icmpv6_type(&i.icmp_type)?,
        code_u8: i.code,
        bytes5to8: icmp_rest(i),
    };
    // Unlike ICMP's, the ICMPv6 checksum covers the IPv6 pseudo-header.
    let mut h = Icmpv6Header::with_checksum(ty, *s, *d, payload).map_err(invalid("icmpv6"))?;
    if let Some(c) = i.checksum {
        h.checksum = c;
    }
    Ok(joined(&h.to_bytes(), payload))
}

fn icmpv4_type(t: &NameOrNumber) -> Result<u8, PacketError> {
    Ok(match t {
        NameOrNumber::Number(n) => u8::try_from(*n).map_err(|_| PacketError::IcmpTypeRange(*n))?,
        NameOrNumber::Name(n) => match n.as_str() {
            "echo_reply" => 0,
            "dest_unreachable" => 3,
            "redirect" => 5,
            "echo_request" => 8,
            "time_exceeded" => 11,
            "parameter_problem" => 12,
            other => return Err(PacketError::UnknownIcmpType(other.to_owned())),
        },
    })
}

fn icmpv6_type(t: &NameOrNumber) -> Result<u8, PacketError> {
    Ok(match t {
        NameOrNumber::Number(n) => {
            u8::try_from(*n).map_err(|_| PacketError::Icmpv6TypeRange(*n))?
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
            other => return Err(PacketError::UnknownIcmpv6Type(other.to_owned())),
        },
    })
}
