//! Packets as a test author writes them, and as bytes.
//!
//! This crate owns the packet schema serde reads ([`PacketDef`] and its
//! layers: Ethernet, VLAN tags, ARP, IPv4, IPv6 with extension headers, TCP,
//! UDP, ICMP, ICMPv6, payload, truncation), building those layers into a
//! frame with etherparse (lengths and checksums computed unless given),
//! [`describe`]-ing a frame field by field and [`diff`]-ing two frames, and
//! reading frames from pcap and pcapng captures ([`read_packets`]). It also
//! owns the notations a packet is written in: [`Mac`] addresses and [`Hex`]
//! bytes.
//!
//! It knows nothing of BPF, BTF, kernels or case files: a frame is bytes on
//! a wire here, and whoever runs it through a program (harness-cases) decides
//! what a mistake in one means for a test.

mod build;
mod describe;
mod pcap;
mod schema;

pub use build::PacketError;
pub use describe::{Difference, Field, describe, diff};
pub use pcap::{CaptureError, read_packets};
pub use schema::{
    ArpDef, EthDef, Hex, IcmpDef, Ipv4Def, Ipv6Def, Ipv6ExtDef, LAYERS, Mac, NameOrNumber,
    PacketDef, ParseHexError, ParseMacError, PayloadDef, TcpDef, TcpFlags, TcpOptionsDef, UdpDef,
    VlanDef, parse_hex,
};

#[cfg(test)]
mod tests;
