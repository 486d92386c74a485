//! The packet schema as serde reads it from a case file, and the notations
//! its values are written in (MAC addresses, hex bytes).

use std::net::{Ipv4Addr, Ipv6Addr};

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
    type Err = ParseMacError;
    fn from_str(s: &str) -> Result<Self, ParseMacError> {
        let parts: Vec<&str> = s.split([':', '-']).collect();
        let bad = || ParseMacError { text: s.to_owned() };
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

/// Text that is not a MAC address.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not a MAC address (expected six hex bytes like 02:00:00:00:00:01)")]
pub struct ParseMacError {
    /// The text as written.
    pub text: String,
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

/// Bytes written as hex: an optional `0x`, then pairs of digits, with
/// whitespace or colons anywhere (`"de ad be ef"`, `"de:ad"`, `"0xdead"`).
pub fn parse_hex(s: &str) -> Result<Vec<u8>, ParseHexError> {
    let clean: String = s
        .trim_start_matches("0x")
        .chars()
        .filter(|c| !c.is_whitespace() && *c != ':')
        .collect();
    hex::decode(&clean).map_err(|error| ParseHexError {
        text: s.to_owned(),
        error,
    })
}

/// Text that is not hex bytes.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("`{text}` is not hex bytes: {error}")]
pub struct ParseHexError {
    /// The text as written.
    pub text: String,
    #[source]
    error: hex::FromHexError,
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
#[derive(Clone, Debug, PartialEq)]
pub enum PayloadDef {
    Text(String),
    Hex { hex: Hex },
    Fill { size: usize, fill: u8 },
}

/// Read by shape, so a mistake inside a shape (a bad hex digit) is named
/// instead of "did not match any variant".
impl<'de> Deserialize<'de> for PayloadDef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Table {
            hex: Option<String>,
            size: Option<usize>,
            fill: Option<u8>,
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Shape {
            Text(String),
            Table(Table),
        }
        use serde::de::Error as _;
        let shape = Shape::deserialize(d).map_err(|_| {
            D::Error::custom(
                "payload: expected text, `{ hex = \"de ad\" }` or `{ size = N, fill = 0 }`",
            )
        })?;
        match shape {
            Shape::Text(t) => Ok(Self::Text(t)),
            Shape::Table(Table {
                hex: Some(hex),
                size: None,
                fill: None,
            }) => parse_hex(&hex)
                .map(|bytes| Self::Hex { hex: Hex(bytes) })
                .map_err(|e| D::Error::custom(format!("payload.hex: {e}"))),
            Shape::Table(Table {
                hex: None,
                size: Some(size),
                fill,
            }) => Ok(Self::Fill {
                size,
                fill: fill.unwrap_or(0),
            }),
            Shape::Table(_) => Err(D::Error::custom(
                "payload: give either `hex` or `size` (with an optional `fill`)",
            )),
        }
    }
}

impl PayloadDef {
    pub(crate) fn bytes(&self) -> Vec<u8> {
        match self {
            Self::Text(t) => t.as_bytes().to_vec(),
            Self::Hex { hex } => hex.0.clone(),
            Self::Fill { size, fill } => vec![*fill; *size],
        }
    }
}
