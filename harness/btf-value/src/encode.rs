//! TOML values to bytes, through a [`TypeDesc`].
//!
//! Besides plain integers, structs (by field name), arrays and enums, a value
//! may be written the way a networking person thinks of it: `"10.0.0.1"` for
//! a 4-byte integer or `u8[4]` (network byte order), `"2001:db8::1"` for 16
//! bytes, `"02:00:00:00:00:01"` for 6 bytes, `"10.0.0.0/8"` for an LPM-trie
//! key `{ prefixlen; data }`, `{ hex = "..." }` for raw bytes. Integers whose
//! typedef is `__be16`/`__be32`/`__be64` are stored big-endian.

use std::{
    collections::BTreeMap,
    net::{Ipv4Addr, Ipv6Addr},
};

// MACs and hex bytes are written as in packets: harness-packet owns those
// notations, and since it knows nothing of BTF, depending on it here keeps
// one parser for each without a cycle.
use harness_packet::{Mac, ParseHexError, parse_hex};
use toml::Value;

use crate::types::{MemberDesc, TypeDesc, lpm_layout};

/// Bytes plus which of them the value actually specified (for partial
/// comparisons: `{ dropped = 1 }` checks only `dropped`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Encoded {
    /// The value's bytes, zero where nothing was specified.
    pub bytes: Vec<u8>,
    /// Set bits mark what the value specified (whole bytes, or single bits
    /// of bitfields).
    pub mask: Vec<u8>,
}

impl Encoded {
    fn zero(size: usize) -> Self {
        Self {
            bytes: vec![0; size],
            mask: vec![0; size],
        }
    }

    fn full(bytes: Vec<u8>) -> Self {
        let mask = vec![0xff; bytes.len()];
        Self { bytes, mask }
    }
}

/// Named integer constants: the enumerators of every enum in the object's
/// BTF, so `key = "DROPPED_V4"` works for a `__u32` key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Constants(pub BTreeMap<String, i64>);

/// A value that does not fit its type. Shown as `{path}: {kind}`.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{path}: {kind}")]
pub struct ValueError {
    /// Names the value, as the caller named the whole and this crate its
    /// parts: `maps.stats[0].value.packets`, `ctx.cb[2]`.
    pub path: String,
    pub kind: ValueErrorKind,
}

/// What is wrong with a value. `found` is the kind of TOML value written
/// (`a string`, `an array`, ...); `ty` the C type (boxed: errors stay small).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ValueErrorKind {
    #[error("`hex` cannot be combined with other keys")]
    HexWithOtherKeys,
    #[error("`hex` must be a string")]
    HexNotAString,
    #[error(transparent)]
    Hex(#[from] ParseHexError),
    #[error("{given} hex bytes given, {ty} is {} bytes", ty.size())]
    HexSize { given: usize, ty: Box<TypeDesc> },
    #[error("`{given}` is not a variant of enum {name}; expected one of {}", variants.join(", "))]
    UnknownVariant {
        given: String,
        name: String,
        variants: Vec<String>,
    },
    #[error("expected a variant name or integer for enum {name}, found {found}")]
    NotAVariant { name: String, found: &'static str },
    #[error("expected {{ hex = \"...\" }} for {size} raw bytes, found {found}")]
    NotRawBytes { size: usize, found: &'static str },
    #[error("`{0}` is not a hex number")]
    NotAHexNumber(String),
    #[error("no constant `{given}` in the object's BTF; its enum constants are {}", constants.join(", "))]
    UnknownConstant {
        given: String,
        constants: Vec<String>,
    },
    /// A string that is neither a number, a constant nor (for 4, 16 and 6
    /// bytes) an address.
    #[error("expected an integer{} for {name}, found \"{given}\"", address_hint(*size))]
    NotAnIntegerText {
        name: String,
        size: usize,
        given: String,
    },
    #[error("expected an integer for {name}, found {found}")]
    NotAnInteger { name: String, found: &'static str },
    #[error("{value} is out of range for {name} ({min}..={max})")]
    OutOfRange {
        value: i128,
        name: String,
        min: i128,
        max: i128,
    },
    #[error("\"{given}\" is {} bytes, {ty} holds {len}", given.len())]
    StringTooLong {
        given: String,
        ty: Box<TypeDesc>,
        len: usize,
    },
    #[error("{given} elements given, {ty} holds {len}")]
    TooManyElements {
        given: usize,
        ty: Box<TypeDesc>,
        len: usize,
    },
    #[error("expected an array for {ty}, found {found}")]
    NotAnArray {
        ty: Box<TypeDesc>,
        found: &'static str,
    },
    #[error("{ty} has no field `{field}`; its fields are {}", fields.join(", "))]
    UnknownField {
        ty: Box<TypeDesc>,
        field: String,
        fields: Vec<String>,
    },
    #[error("\"{given}\" is a CIDR, but {ty} is not an LPM-trie key {{ u32 prefixlen; data }}")]
    NotAnLpmKey { given: String, ty: Box<TypeDesc> },
    #[error("`{0}`: prefix length is not a number")]
    BadPrefixLength(String),
    #[error("`{0}` is not an IPv4 or IPv6 address")]
    NotAnAddress(String),
    #[error("prefix /{prefix} is too long for an {bits}-bit address")]
    PrefixTooLong { prefix: u32, bits: u32 },
    #[error("{ty}'s `{field}` holds {size} bytes, the address needs {needed}")]
    AddressTooLong {
        ty: Box<TypeDesc>,
        field: String,
        size: usize,
        needed: usize,
    },
    #[error("expected a table of fields for {ty}, found {found}")]
    NotATable {
        ty: Box<TypeDesc>,
        found: &'static str,
    },
    #[error("field lies outside the struct")]
    FieldOutside,
    #[error("{value} does not fit in a {bits}-bit field")]
    BitfieldOverflow { value: u64, bits: u32 },
    #[error("bitfield lies outside the struct")]
    BitfieldOutside,
}

impl ValueErrorKind {
    fn at(self, path: &str) -> ValueError {
        ValueError {
            path: path.to_owned(),
            kind: self,
        }
    }
}

/// What else a string could have been for an integer of `size` bytes.
fn address_hint(size: usize) -> &'static str {
    match size {
        4 => " or an IPv4 address",
        16 => " or an IPv6 address",
        6 => " or a MAC address",
        _ => "",
    }
}

/// Encodes `value` as `ty`. `path` names the value in errors.
pub fn encode(ty: &TypeDesc, value: &Value, path: &str) -> Result<Encoded, ValueError> {
    encode_with(ty, value, path, &Constants::default())
}

/// Like [`encode`], with named constants for integer fields.
pub fn encode_with(
    ty: &TypeDesc,
    value: &Value,
    path: &str,
    k: &Constants,
) -> Result<Encoded, ValueError> {
    if let Value::Table(t) = value
        && let Some(h) = t.get("hex")
    {
        if t.len() != 1 {
            return Err(ValueErrorKind::HexWithOtherKeys.at(path));
        }
        let Value::String(s) = h else {
            return Err(ValueErrorKind::HexNotAString.at(path));
        };
        let bytes = parse_hex(s).map_err(|e| ValueErrorKind::from(e).at(path))?;
        if bytes.len() != ty.size() {
            return Err(ValueErrorKind::HexSize {
                given: bytes.len(),
                ty: Box::new(ty.clone()),
            }
            .at(path));
        }
        return Ok(Encoded::full(bytes));
    }
    match ty {
        TypeDesc::Int { .. } => encode_int(ty, value, path, k).map(Encoded::full),
        TypeDesc::Enum {
            name,
            size,
            variants,
        } => {
            let n = match value {
                Value::Integer(i) => *i,
                Value::String(s) => variants
                    .iter()
                    .find(|(v, _)| v == s)
                    .map(|(_, n)| *n)
                    .ok_or_else(|| {
                        ValueErrorKind::UnknownVariant {
                            given: s.clone(),
                            name: name.clone(),
                            variants: variants.iter().map(|(v, _)| v.clone()).collect(),
                        }
                        .at(path)
                    })?,
                other => {
                    return Err(ValueErrorKind::NotAVariant {
                        name: name.clone(),
                        found: kind(other),
                    }
                    .at(path));
                }
            };
            Ok(Encoded::full(n.to_le_bytes()[..*size].to_vec()))
        }
        TypeDesc::Array { elem, len } => encode_array(ty, elem, *len, value, path, k),
        TypeDesc::Struct { members, size, .. } => encode_struct(ty, members, *size, value, path, k),
        TypeDesc::Bytes { size } => {
            if let Some(bytes) = address_bytes(value, *size) {
                return Ok(Encoded::full(bytes));
            }
            match value {
                Value::Integer(i) if *size <= 8 => {
                    Ok(Encoded::full(i.to_le_bytes()[..*size].to_vec()))
                }
                other => Err(ValueErrorKind::NotRawBytes {
                    size: *size,
                    found: kind(other),
                }
                .at(path)),
            }
        }
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "a string",
        Value::Integer(_) => "an integer",
        Value::Float(_) => "a float",
        Value::Boolean(_) => "a boolean",
        Value::Datetime(_) => "a datetime",
        Value::Array(_) => "an array",
        Value::Table(_) => "a table",
    }
}

/// `"10.0.0.1"` (4 bytes), `"2001:db8::1"` (16), `"02:00:00:00:00:01"` (6),
/// in the order they appear on the wire.
fn address_bytes(value: &Value, size: usize) -> Option<Vec<u8>> {
    let Value::String(s) = value else { return None };
    match size {
        4 => s.parse::<Ipv4Addr>().ok().map(|a| a.octets().to_vec()),
        16 => s.parse::<Ipv6Addr>().ok().map(|a| a.octets().to_vec()),
        6 => s.parse::<Mac>().ok().map(|m| m.0.to_vec()),
        _ => None,
    }
}

fn encode_int(
    ty: &TypeDesc,
    value: &Value,
    path: &str,
    k: &Constants,
) -> Result<Vec<u8>, ValueError> {
    let TypeDesc::Int {
        name,
        size,
        signed,
        big_endian,
        is_bool,
    } = ty
    else {
        unreachable!()
    };
    let n: i128 = match value {
        Value::Integer(i) => i128::from(*i),
        Value::Boolean(b) if *is_bool || *size == 1 => i128::from(*b),
        Value::String(s) => {
            if let Some(bytes) = address_bytes(value, *size) {
                return Ok(bytes);
            }
            if let Some(h) = s.strip_prefix("0x") {
                i128::from_str_radix(h, 16)
                    .map_err(|_| ValueErrorKind::NotAHexNumber(s.clone()).at(path))?
            } else if let Some(v) = k.0.get(s.as_str()) {
                i128::from(*v)
            } else if !k.0.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(ValueErrorKind::UnknownConstant {
                    given: s.clone(),
                    constants: k.0.keys().cloned().collect(),
                }
                .at(path));
            } else {
                return Err(ValueErrorKind::NotAnIntegerText {
                    name: name.clone(),
                    size: *size,
                    given: s.clone(),
                }
                .at(path));
            }
        }
        other => {
            return Err(ValueErrorKind::NotAnInteger {
                name: name.clone(),
                found: kind(other),
            }
            .at(path));
        }
    };
    let bits = (*size as u32) * 8;
    let (min, max) = if *signed {
        (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1)
    } else {
        (0, (1i128 << bits) - 1)
    };
    if n < min || n > max {
        return Err(ValueErrorKind::OutOfRange {
            value: n,
            name: name.clone(),
            min,
            max,
        }
        .at(path));
    }
    let le = n.to_le_bytes();
    let mut bytes = le[..*size].to_vec();
    if *big_endian {
        bytes.reverse();
    }
    Ok(bytes)
}

fn encode_array(
    ty: &TypeDesc,
    elem: &TypeDesc,
    len: usize,
    value: &Value,
    path: &str,
    k: &Constants,
) -> Result<Encoded, ValueError> {
    let size = ty.size();
    if let Some(bytes) = address_bytes(value, size) {
        return Ok(Encoded::full(bytes));
    }
    match value {
        // char name[16] = "eth0"
        Value::String(s) if elem.is_byte() => {
            if s.len() > len {
                return Err(ValueErrorKind::StringTooLong {
                    given: s.clone(),
                    ty: Box::new(ty.clone()),
                    len,
                }
                .at(path));
            }
            let mut bytes = s.as_bytes().to_vec();
            bytes.resize(len, 0);
            Ok(Encoded::full(bytes))
        }
        Value::Array(items) => {
            if items.len() > len {
                return Err(ValueErrorKind::TooManyElements {
                    given: items.len(),
                    ty: Box::new(ty.clone()),
                    len,
                }
                .at(path));
            }
            let mut out = Encoded::zero(size);
            let step = elem.size();
            for (i, item) in items.iter().enumerate() {
                let e = encode_with(elem, item, &format!("{path}[{i}]"), k)?;
                out.bytes[i * step..(i + 1) * step].copy_from_slice(&e.bytes);
                out.mask[i * step..(i + 1) * step].copy_from_slice(&e.mask);
            }
            Ok(out)
        }
        other => Err(ValueErrorKind::NotAnArray {
            ty: Box::new(ty.clone()),
            found: kind(other),
        }
        .at(path)),
    }
}

fn encode_struct(
    ty: &TypeDesc,
    members: &[MemberDesc],
    size: usize,
    value: &Value,
    path: &str,
    k: &Constants,
) -> Result<Encoded, ValueError> {
    match value {
        Value::Table(t) => {
            let mut out = Encoded::zero(size);
            for (key, v) in t {
                let m = members.iter().find(|m| &m.name == key).ok_or_else(|| {
                    ValueErrorKind::UnknownField {
                        ty: Box::new(ty.clone()),
                        field: key.clone(),
                        fields: members
                            .iter()
                            .map(|m| m.name.clone())
                            .filter(|n| !n.is_empty())
                            .collect(),
                    }
                    .at(path)
                })?;
                let e = encode_with(&m.ty, v, &format!("{path}.{key}"), k)?;
                put_member(&mut out, m, &e, &format!("{path}.{key}"))?;
            }
            Ok(out)
        }
        Value::String(s) if s.contains('/') => encode_cidr(ty, members, size, s, path, k),
        other => Err(ValueErrorKind::NotATable {
            ty: Box::new(ty.clone()),
            found: kind(other),
        }
        .at(path)),
    }
}

/// `"10.0.0.0/8"` as an LPM-trie key `{ u32 prefixlen; data }`.
fn encode_cidr(
    ty: &TypeDesc,
    members: &[MemberDesc],
    size: usize,
    s: &str,
    path: &str,
    k: &Constants,
) -> Result<Encoded, ValueError> {
    let (p, d) = lpm_layout(members).ok_or_else(|| {
        ValueErrorKind::NotAnLpmKey {
            given: s.to_owned(),
            ty: Box::new(ty.clone()),
        }
        .at(path)
    })?;
    let (addr, prefix) = s.split_once('/').unwrap_or((s, ""));
    let prefix: u32 = prefix
        .parse()
        .map_err(|_| ValueErrorKind::BadPrefixLength(s.to_owned()).at(path))?;
    let (bytes, max) = if let Ok(a) = addr.parse::<Ipv4Addr>() {
        (a.octets().to_vec(), 32)
    } else if let Ok(a) = addr.parse::<Ipv6Addr>() {
        (a.octets().to_vec(), 128)
    } else {
        return Err(ValueErrorKind::NotAnAddress(addr.to_owned()).at(path));
    };
    if prefix > max {
        return Err(ValueErrorKind::PrefixTooLong { prefix, bits: max }.at(path));
    }
    let data_size = d.ty.size();
    if bytes.len() > data_size {
        return Err(ValueErrorKind::AddressTooLong {
            ty: Box::new(ty.clone()),
            field: d.name.clone(),
            size: data_size,
            needed: bytes.len(),
        }
        .at(path));
    }
    let mut out = Encoded::full(vec![0; size]);
    let plen = encode_int(&p.ty, &Value::Integer(i64::from(prefix)), path, k)?;
    out.bytes[..4].copy_from_slice(&plen);
    out.bytes[4..4 + bytes.len()].copy_from_slice(&bytes);
    Ok(out)
}

fn put_member(
    out: &mut Encoded,
    m: &MemberDesc,
    e: &Encoded,
    path: &str,
) -> Result<(), ValueError> {
    match m.bits {
        None => {
            let start = (m.bit_offset / 8) as usize;
            let end = start + e.bytes.len();
            if end > out.bytes.len() {
                return Err(ValueErrorKind::FieldOutside.at(path));
            }
            out.bytes[start..end].copy_from_slice(&e.bytes);
            out.mask[start..end].copy_from_slice(&e.mask);
        }
        Some(bits) => {
            let mut v = 0u64;
            for (i, b) in e.bytes.iter().enumerate().take(8) {
                v |= u64::from(*b) << (8 * i);
            }
            if bits < 64 && v >> bits != 0 {
                return Err(ValueErrorKind::BitfieldOverflow { value: v, bits }.at(path));
            }
            for bit in 0..bits {
                let pos = m.bit_offset + bit;
                let (byte, shift) = ((pos / 8) as usize, pos % 8);
                if byte >= out.bytes.len() {
                    return Err(ValueErrorKind::BitfieldOutside.at(path));
                }
                if v >> bit & 1 == 1 {
                    out.bytes[byte] |= 1 << shift;
                } else {
                    out.bytes[byte] &= !(1 << shift);
                }
                out.mask[byte] |= 1 << shift;
            }
        }
    }
    Ok(())
}
