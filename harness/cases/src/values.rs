//! Map keys, map values and contexts written as typed TOML values and turned
//! into bytes through the object's BTF (and back, for dumps).
//!
//! Besides plain integers, structs (by field name), arrays and enums, a value
//! may be written the way a networking person thinks of it: `"10.0.0.1"` for
//! a 4-byte integer or `u8[4]` (network byte order), `"2001:db8::1"` for 16
//! bytes, `"02:00:00:00:00:01"` for 6 bytes, `"10.0.0.0/8"` for an LPM-trie
//! key `{ prefixlen; data }`, `{ hex = "..." }` for raw bytes. Integers whose
//! typedef is `__be16`/`__be32`/`__be64` are stored big-endian.

use std::{
    fmt,
    net::{Ipv4Addr, Ipv6Addr},
};

use btf_rs::{Btf, BtfType as _, Type};
use toml::Value;

use harness_packet::{Mac, parse_hex};

/// A C type reduced to what encoding and decoding need.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TypeDesc {
    Int {
        /// C name, or the typedef that gave it meaning (`__be16`).
        name: String,
        size: usize,
        signed: bool,
        big_endian: bool,
        is_bool: bool,
    },
    Array {
        elem: Box<TypeDesc>,
        len: usize,
    },
    Struct {
        name: String,
        size: usize,
        members: Vec<MemberDesc>,
        is_union: bool,
    },
    Enum {
        name: String,
        size: usize,
        variants: Vec<(String, i64)>,
    },
    /// Anything else (pointers, floats, maps without BTF): raw bytes.
    Bytes {
        size: usize,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberDesc {
    pub name: String,
    pub bit_offset: u32,
    /// Width in bits for bitfields.
    pub bits: Option<u32>,
    pub ty: TypeDesc,
}

impl TypeDesc {
    pub fn size(&self) -> usize {
        match self {
            Self::Int { size, .. }
            | Self::Struct { size, .. }
            | Self::Enum { size, .. }
            | Self::Bytes { size } => *size,
            Self::Array { elem, len } => elem.size() * len,
        }
    }

    /// For maps without BTF: an integer when the size is one, else bytes.
    pub fn sized(size: usize) -> Self {
        match size {
            1 | 2 | 4 | 8 => Self::Int {
                name: format!("u{}", size * 8),
                size,
                signed: false,
                big_endian: false,
                is_bool: false,
            },
            _ => Self::Bytes { size },
        }
    }

    fn is_byte(&self) -> bool {
        matches!(self, Self::Int { size: 1, .. })
    }
}

impl fmt::Display for TypeDesc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Int { name, .. } => f.write_str(name),
            Self::Array { elem, len } => write!(f, "{elem}[{len}]"),
            Self::Struct { name, is_union, .. } => {
                write!(
                    f,
                    "{} {}",
                    if *is_union { "union" } else { "struct" },
                    if name.is_empty() { "<anon>" } else { name }
                )
            }
            Self::Enum { name, .. } => write!(f, "enum {name}"),
            Self::Bytes { size } => write!(f, "{size} bytes"),
        }
    }
}

/// Reads a type from BTF, following typedefs and qualifiers.
pub fn from_btf(btf: &Btf, id: u32) -> Result<TypeDesc, String> {
    from_btf_depth(btf, id, None, 0)
}

fn name_of(btf: &Btf, t: &dyn btf_rs::BtfType) -> String {
    btf.resolve_name(t).unwrap_or_default()
}

fn from_btf_depth(
    btf: &Btf,
    id: u32,
    typedef: Option<String>,
    depth: u32,
) -> Result<TypeDesc, String> {
    if depth > 32 {
        return Err(format!("BTF type {id} nests too deeply"));
    }
    let ty = btf
        .resolve_type_by_id(id)
        .map_err(|e| format!("BTF type {id}: {e}"))?;
    let chained = |t: &dyn btf_rs::BtfType, td: Option<String>| -> Result<TypeDesc, String> {
        let next = t
            .get_type_id()
            .ok_or_else(|| format!("BTF type {id} has no target"))?;
        from_btf_depth(btf, next, td, depth + 1)
    };
    Ok(match &ty {
        Type::Int(i) => {
            let name = name_of(btf, i);
            let big_endian = typedef.as_deref().is_some_and(|t| t.starts_with("__be"));
            TypeDesc::Int {
                name: typedef.unwrap_or(name),
                size: i.size(),
                signed: i.is_signed(),
                big_endian,
                is_bool: i.is_bool(),
            }
        }
        Type::Typedef(t) => {
            let name = name_of(btf, t);
            // Keep the outermost meaningful typedef (`__be32` over `__u32`).
            let keep = match typedef {
                Some(outer) if outer.starts_with("__be") => Some(outer),
                _ => Some(name),
            };
            chained(t, keep)?
        }
        Type::Const(t) => chained(t, typedef)?,
        Type::Volatile(t) => chained(t, typedef)?,
        Type::Restrict(t) => chained(t, typedef)?,
        Type::TypeTag(t) => chained(t, typedef)?,
        Type::Array(a) => {
            let elem = chained(a, None)?;
            TypeDesc::Array {
                elem: Box::new(elem),
                len: a.len(),
            }
        }
        Type::Struct(s) | Type::Union(s) => {
            let mut members = Vec::with_capacity(s.members.len());
            for m in &s.members {
                let ty = from_btf_depth(btf, m.get_type_id().unwrap_or(0), None, depth + 1)?;
                members.push(MemberDesc {
                    name: name_of(btf, m),
                    bit_offset: m.bit_offset(),
                    bits: m.bitfield_size().filter(|b| *b != 0),
                    ty,
                });
            }
            TypeDesc::Struct {
                name: name_of(btf, s),
                size: s.size(),
                members,
                is_union: matches!(ty, Type::Union(_)),
            }
        }
        Type::Enum(e) => TypeDesc::Enum {
            name: name_of(btf, e),
            size: e.size(),
            variants: e
                .members
                .iter()
                .map(|m| (name_of(btf, m), i64::from(m.val() as i32)))
                .collect(),
        },
        Type::Enum64(e) => TypeDesc::Enum {
            name: name_of(btf, e),
            size: e.size(),
            variants: e
                .members
                .iter()
                .map(|m| (name_of(btf, m), m.val() as i64))
                .collect(),
        },
        Type::Ptr(_) => TypeDesc::Bytes { size: 8 },
        Type::Float(f) => TypeDesc::Bytes { size: f.size() },
        other => {
            return Err(format!(
                "BTF type {id} is a {}, which has no value layout",
                other.name()
            ));
        }
    })
}

/// Bytes plus which of them the value actually specified (for partial
/// comparisons: `{ dropped = 1 }` checks only `dropped`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Encoded {
    pub bytes: Vec<u8>,
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

    /// Whether `got` matches wherever this value was specified; `got` may be
    /// shorter (an older kernel's smaller context) as long as every specified
    /// byte is there.
    pub fn matches_prefix(&self, got: &[u8]) -> bool {
        self.bytes
            .iter()
            .zip(&self.mask)
            .enumerate()
            .all(|(i, (e, m))| *m == 0 || got.get(i).is_some_and(|g| g & m == e & m))
    }

    /// Whether `got` matches wherever this value was specified.
    pub fn matches(&self, got: &[u8]) -> bool {
        got.len() == self.bytes.len()
            && self
                .bytes
                .iter()
                .zip(&self.mask)
                .zip(got)
                .all(|((e, m), g)| e & m == g & m)
    }
}

/// Named integer constants: the enumerators of every enum in the object's
/// BTF, so `key = "DROPPED_V4"` works for a `__u32` key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Constants(pub std::collections::BTreeMap<String, i64>);

impl Constants {
    /// Every enumerator of every enum in `btf`.
    pub fn from_btf(btf: &Btf) -> Self {
        let mut map = std::collections::BTreeMap::new();
        use fallible_iterator::FallibleIterator as _;
        let mut iter = btf.type_iter();
        while let Ok(Some(t)) = iter.next() {
            match &t {
                Type::Enum(e) => {
                    for m in &e.members {
                        map.insert(name_of(btf, m), i64::from(m.val() as i32));
                    }
                }
                Type::Enum64(e) => {
                    for m in &e.members {
                        map.insert(name_of(btf, m), m.val() as i64);
                    }
                }
                _ => {}
            }
        }
        map.remove("");
        Self(map)
    }
}

/// Encodes `value` as `ty`. `path` names the value in errors.
pub fn encode(ty: &TypeDesc, value: &Value, path: &str) -> Result<Encoded, String> {
    encode_with(ty, value, path, &Constants::default())
}

/// Like [`encode`], with named constants for integer fields.
pub fn encode_with(
    ty: &TypeDesc,
    value: &Value,
    path: &str,
    k: &Constants,
) -> Result<Encoded, String> {
    if let Value::Table(t) = value
        && let Some(h) = t.get("hex")
    {
        if t.len() != 1 {
            return Err(format!("{path}: `hex` cannot be combined with other keys"));
        }
        let Value::String(s) = h else {
            return Err(format!("{path}: `hex` must be a string"));
        };
        let bytes = parse_hex(s).map_err(|e| format!("{path}: {e}"))?;
        if bytes.len() != ty.size() {
            return Err(format!(
                "{path}: {} hex bytes given, {ty} is {} bytes",
                bytes.len(),
                ty.size()
            ));
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
                        let names: Vec<_> = variants.iter().map(|(v, _)| v.as_str()).collect();
                        format!(
                            "{path}: `{s}` is not a variant of enum {name}; expected one of {}",
                            names.join(", ")
                        )
                    })?,
                other => {
                    return Err(format!(
                        "{path}: expected a variant name or integer for enum {name}, found {}",
                        kind(other)
                    ));
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
                other => Err(format!(
                    "{path}: expected {{ hex = \"...\" }} for {size} raw bytes, found {}",
                    kind(other)
                )),
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

fn encode_int(ty: &TypeDesc, value: &Value, path: &str, k: &Constants) -> Result<Vec<u8>, String> {
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
                    .map_err(|_| format!("{path}: `{s}` is not a hex number"))?
            } else if let Some(v) = k.0.get(s.as_str()) {
                i128::from(*v)
            } else if !k.0.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                let names: Vec<&str> = k.0.keys().map(String::as_str).collect();
                return Err(format!(
                    "{path}: no constant `{s}` in the object's BTF; its enum constants are {}",
                    names.join(", ")
                ));
            } else {
                let hint = match size {
                    4 => " or an IPv4 address",
                    16 => " or an IPv6 address",
                    6 => " or a MAC address",
                    _ => "",
                };
                return Err(format!(
                    "{path}: expected an integer{hint} for {name}, found \"{s}\""
                ));
            }
        }
        other => {
            return Err(format!(
                "{path}: expected an integer for {name}, found {}",
                kind(other)
            ));
        }
    };
    let bits = (*size as u32) * 8;
    let (min, max) = if *signed {
        (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1)
    } else {
        (0, (1i128 << bits) - 1)
    };
    if n < min || n > max {
        return Err(format!(
            "{path}: {n} is out of range for {name} ({min}..={max})"
        ));
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
) -> Result<Encoded, String> {
    let size = ty.size();
    if let Some(bytes) = address_bytes(value, size) {
        return Ok(Encoded::full(bytes));
    }
    match value {
        // char name[16] = "eth0"
        Value::String(s) if elem.is_byte() => {
            if s.len() > len {
                return Err(format!(
                    "{path}: \"{s}\" is {} bytes, {ty} holds {len}",
                    s.len()
                ));
            }
            let mut bytes = s.as_bytes().to_vec();
            bytes.resize(len, 0);
            Ok(Encoded::full(bytes))
        }
        Value::Array(items) => {
            if items.len() > len {
                return Err(format!(
                    "{path}: {} elements given, {ty} holds {len}",
                    items.len()
                ));
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
        other => Err(format!(
            "{path}: expected an array for {ty}, found {}",
            kind(other)
        )),
    }
}

/// `{ prefixlen: u32; data: 4 or 16 bytes }`, the LPM-trie key layout.
fn lpm_layout(members: &[MemberDesc]) -> Option<(&MemberDesc, &MemberDesc)> {
    match members {
        [p, d]
            if matches!(p.ty, TypeDesc::Int { size: 4, .. })
                && p.bit_offset == 0
                && d.bit_offset == 32 =>
        {
            Some((p, d))
        }
        _ => None,
    }
}

fn encode_struct(
    ty: &TypeDesc,
    members: &[MemberDesc],
    size: usize,
    value: &Value,
    path: &str,
    k: &Constants,
) -> Result<Encoded, String> {
    match value {
        Value::Table(t) => {
            let mut out = Encoded::zero(size);
            for (key, v) in t {
                let m = members.iter().find(|m| &m.name == key).ok_or_else(|| {
                    let names: Vec<_> = members
                        .iter()
                        .map(|m| m.name.as_str())
                        .filter(|n| !n.is_empty())
                        .collect();
                    format!(
                        "{path}: {ty} has no field `{key}`; its fields are {}",
                        names.join(", ")
                    )
                })?;
                let e = encode_with(&m.ty, v, &format!("{path}.{key}"), k)?;
                put_member(&mut out, m, &e, &format!("{path}.{key}"))?;
            }
            Ok(out)
        }
        Value::String(s) if s.contains('/') => {
            let (p, d) = lpm_layout(members)
                .ok_or_else(|| format!("{path}: \"{s}\" is a CIDR, but {ty} is not an LPM-trie key {{ u32 prefixlen; data }}"))?;
            let (addr, prefix) = s.split_once('/').unwrap_or((s, ""));
            let prefix: u32 = prefix
                .parse()
                .map_err(|_| format!("{path}: `{s}`: prefix length is not a number"))?;
            let (bytes, max) = if let Ok(a) = addr.parse::<Ipv4Addr>() {
                (a.octets().to_vec(), 32)
            } else if let Ok(a) = addr.parse::<Ipv6Addr>() {
                (a.octets().to_vec(), 128)
            } else {
                return Err(format!("{path}: `{addr}` is not an IPv4 or IPv6 address"));
            };
            if prefix > max {
                return Err(format!(
                    "{path}: prefix /{prefix} is too long for an {}-bit address",
                    max
                ));
            }
            let data_size = d.ty.size();
            if bytes.len() > data_size {
                return Err(format!(
                    "{path}: {ty}'s `{}` holds {data_size} bytes, the address needs {}",
                    d.name,
                    bytes.len()
                ));
            }
            let mut out = Encoded::full(vec![0; size]);
            let plen = encode_int(&p.ty, &Value::Integer(i64::from(prefix)), path, k)?;
            out.bytes[..4].copy_from_slice(&plen);
            out.bytes[4..4 + bytes.len()].copy_from_slice(&bytes);
            Ok(out)
        }
        other => Err(format!(
            "{path}: expected a table of fields for {ty}, found {}",
            kind(other)
        )),
    }
}

fn put_member(out: &mut Encoded, m: &MemberDesc, e: &Encoded, path: &str) -> Result<(), String> {
    match m.bits {
        None => {
            let start = (m.bit_offset / 8) as usize;
            let end = start + e.bytes.len();
            if end > out.bytes.len() {
                return Err(format!("{path}: field lies outside the struct"));
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
                return Err(format!("{path}: {v} does not fit in a {bits}-bit field"));
            }
            for bit in 0..bits {
                let pos = m.bit_offset + bit;
                let (byte, shift) = ((pos / 8) as usize, pos % 8);
                if byte >= out.bytes.len() {
                    return Err(format!("{path}: bitfield lies outside the struct"));
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

/// How `got` differs from `want`, naming only what `want` specified:
/// `["mark: expected 4098, got 0"]` for a struct, `["expected 7, got 8"]`
/// otherwise. Empty when they match.
pub fn mismatches(ty: &TypeDesc, want: &Encoded, got: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    mismatches_into(ty, want, got, 0, "", &mut out);
    out
}

fn mismatches_into(
    ty: &TypeDesc,
    want: &Encoded,
    got: &[u8],
    base: usize,
    path: &str,
    out: &mut Vec<String>,
) {
    let size = ty.size();
    let range = base..base + size;
    let specified = want
        .mask
        .get(range.clone())
        .is_some_and(|m| m.iter().any(|b| *b != 0));
    if !specified {
        return;
    }
    let same = range.clone().all(|i| {
        want.mask[i] == 0
            || got
                .get(i)
                .is_some_and(|g| g & want.mask[i] == want.bytes[i] & want.mask[i])
    });
    if same {
        return;
    }
    if let TypeDesc::Struct { members, .. } = ty
        && members.iter().all(|m| m.bits.is_none())
    {
        for m in members {
            let at = base + (m.bit_offset / 8) as usize;
            let name = if path.is_empty() {
                m.name.clone()
            } else {
                format!("{path}.{}", m.name)
            };
            mismatches_into(&m.ty, want, got, at, &name, out);
        }
        return;
    }
    let label = if path.is_empty() {
        String::new()
    } else {
        format!("{path}: ")
    };
    if got.len() < range.end {
        out.push(format!(
            "{label}expected {}, but the kernel returned only {} bytes",
            format(ty, &want.bytes[range.clone()], path),
            got.len()
        ));
    } else {
        out.push(format!(
            "{label}expected {}, got {}",
            format(ty, &want.bytes[range.clone()], path),
            format(ty, &got[range], path)
        ));
    }
}

/// Formats bytes as `ty` for humans: `{ dropped: 1, passed: 3 }`.
/// `hint` is the name the value is known by (a map or field name); names
/// mentioning addresses make 4/16/6-byte values print as IPs and MACs.
pub fn format(ty: &TypeDesc, bytes: &[u8], hint: &str) -> String {
    let mut s = String::new();
    format_into(&mut s, ty, bytes, hint);
    s
}

/// Whether a name suggests an address: one of its `_`-separated words is
/// `addr`, `ip`, `v4`, `src`, `mac`, ... (`deny_v4`, `src_ip`, `daddr`).
fn looks_like_address(hint: &str) -> bool {
    const WORDS: &[&str] = &[
        "addr", "address", "ip", "ipv4", "ipv6", "v4", "v6", "saddr", "daddr", "src", "dst", "mac",
        "cidr", "vip", "backend",
    ];
    hint.to_ascii_lowercase()
        .split(|c: char| !c.is_ascii_alphanumeric())
        .any(|w| WORDS.contains(&w))
}

fn format_into(s: &mut String, ty: &TypeDesc, bytes: &[u8], hint: &str) {
    use fmt::Write as _;
    let size = ty.size().min(bytes.len());
    let bytes = &bytes[..size];
    if looks_like_address(hint) && !matches!(ty, TypeDesc::Struct { .. } | TypeDesc::Enum { .. }) {
        match size {
            4 => {
                let _ = write!(
                    s,
                    "{}",
                    Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3])
                );
                return;
            }
            16 => {
                let mut a = [0u8; 16];
                a.copy_from_slice(bytes);
                let _ = write!(s, "{}", Ipv6Addr::from(a));
                return;
            }
            6 => {
                let mut a = [0u8; 6];
                a.copy_from_slice(bytes);
                let _ = write!(s, "{}", Mac(a));
                return;
            }
            _ => {}
        }
    }
    match ty {
        TypeDesc::Int {
            size,
            signed,
            big_endian,
            ..
        } => {
            let mut b = bytes.to_vec();
            if *big_endian {
                b.reverse();
            }
            let mut v: u128 = 0;
            for (i, x) in b.iter().enumerate() {
                v |= u128::from(*x) << (8 * i);
            }
            if *signed && *size > 0 && v >> (size * 8 - 1) & 1 == 1 {
                let _ = write!(s, "{}", v as i128 - (1i128 << (size * 8)));
            } else {
                let _ = write!(s, "{v}");
            }
        }
        TypeDesc::Enum { variants, size, .. } => {
            let mut v: i64 = 0;
            for (i, x) in bytes.iter().enumerate().take(*size) {
                v |= i64::from(*x) << (8 * i);
            }
            match variants.iter().find(|(_, n)| *n == v) {
                Some((name, _)) => s.push_str(name),
                None => {
                    let _ = write!(s, "{v}");
                }
            }
        }
        TypeDesc::Array { elem, len } => {
            if elem.is_byte()
                && bytes.iter().rposition(|b| *b != 0).is_some_and(|last| {
                    bytes[..=last]
                        .iter()
                        .all(|b| b.is_ascii_graphic() || *b == b' ')
                })
            {
                let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
                let _ = write!(s, "{:?}", String::from_utf8_lossy(&bytes[..end]));
                return;
            }
            s.push('[');
            let step = elem.size();
            for i in 0..*len {
                if i > 0 {
                    s.push_str(", ");
                }
                format_into(
                    s,
                    elem,
                    &bytes[(i * step).min(bytes.len())..((i + 1) * step).min(bytes.len())],
                    "",
                );
            }
            s.push(']');
        }
        TypeDesc::Struct { members, .. } => {
            if let Some((p, d)) = lpm_layout(members)
                && matches!(d.ty.size(), 4 | 16)
                && bytes.len() >= 4 + d.ty.size()
            {
                let mut plen = String::new();
                format_into(&mut plen, &p.ty, &bytes[..4], "");
                let mut addr = String::new();
                format_into(
                    &mut addr,
                    &TypeDesc::Bytes { size: d.ty.size() },
                    &bytes[4..4 + d.ty.size()],
                    "addr",
                );
                let _ = write!(s, "{addr}/{plen}");
                return;
            }
            s.push_str("{ ");
            for (i, m) in members.iter().enumerate() {
                if i > 0 {
                    s.push_str(", ");
                }
                let _ = write!(
                    s,
                    "{}: ",
                    if m.name.is_empty() { "<anon>" } else { &m.name }
                );
                match m.bits {
                    None => {
                        let start = (m.bit_offset / 8) as usize;
                        let end = (start + m.ty.size()).min(bytes.len());
                        format_into(s, &m.ty, &bytes[start.min(end)..end], &m.name);
                    }
                    Some(bits) => {
                        let mut v = 0u64;
                        for bit in 0..bits {
                            let pos = m.bit_offset + bit;
                            if bytes
                                .get((pos / 8) as usize)
                                .is_some_and(|b| b >> (pos % 8) & 1 == 1)
                            {
                                v |= 1 << bit;
                            }
                        }
                        let _ = write!(s, "{v}");
                    }
                }
            }
            s.push_str(" }");
        }
        TypeDesc::Bytes { .. } => s.push_str(&hex::encode(bytes)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(size: usize) -> TypeDesc {
        TypeDesc::Int {
            name: format!("__u{}", size * 8),
            size,
            signed: false,
            big_endian: false,
            is_bool: false,
        }
    }
    fn be16() -> TypeDesc {
        TypeDesc::Int {
            name: "__be16".into(),
            size: 2,
            signed: false,
            big_endian: true,
            is_bool: false,
        }
    }
    fn member(name: &str, bit_offset: u32, ty: TypeDesc) -> MemberDesc {
        MemberDesc {
            name: name.into(),
            bit_offset,
            bits: None,
            ty,
        }
    }
    fn v(s: &str) -> Value {
        toml::from_str::<toml::Table>(&format!("x = {s}"))
            .unwrap()
            .remove("x")
            .unwrap()
    }

    #[test]
    fn integers_check_their_range() {
        assert_eq!(encode(&u(2), &v("513"), "k").unwrap().bytes, [1, 2]);
        let err = encode(&u(1), &v("300"), "maps.m[0].value").unwrap_err();
        assert_eq!(
            err,
            "maps.m[0].value: 300 is out of range for __u8 (0..=255)"
        );
        let signed = TypeDesc::Int {
            name: "int".into(),
            size: 4,
            signed: true,
            big_endian: false,
            is_bool: false,
        };
        assert_eq!(encode(&signed, &v("-1"), "k").unwrap().bytes, [0xff; 4]);
        assert_eq!(encode(&be16(), &v("80"), "k").unwrap().bytes, [0, 80]);
    }

    #[test]
    fn addresses_are_in_network_order() {
        assert_eq!(
            encode(&u(4), &v("\"10.0.0.1\""), "k").unwrap().bytes,
            [10, 0, 0, 1]
        );
        let v6 = TypeDesc::Array {
            elem: Box::new(u(1)),
            len: 16,
        };
        assert_eq!(
            encode(&v6, &v("\"2001:db8::1\""), "k").unwrap().bytes[..4],
            [0x20, 0x01, 0x0d, 0xb8]
        );
        let mac = TypeDesc::Array {
            elem: Box::new(u(1)),
            len: 6,
        };
        assert_eq!(
            encode(&mac, &v("\"02:00:00:00:00:09\""), "k")
                .unwrap()
                .bytes,
            [2, 0, 0, 0, 0, 9]
        );
        let err = encode(&u(4), &v("\"ten\""), "k").unwrap_err();
        assert!(err.contains("IPv4 address"), "{err}");
    }

    fn lpm_v4() -> TypeDesc {
        TypeDesc::Struct {
            name: "lpm_v4".into(),
            size: 8,
            members: vec![
                member("prefixlen", 0, u(4)),
                member(
                    "addr",
                    32,
                    TypeDesc::Array {
                        elem: Box::new(u(1)),
                        len: 4,
                    },
                ),
            ],
            is_union: false,
        }
    }

    #[test]
    fn cidrs_fill_lpm_keys_and_reject_long_prefixes() {
        let e = encode(&lpm_v4(), &v("\"10.1.0.0/16\""), "k").unwrap();
        assert_eq!(e.bytes, [16, 0, 0, 0, 10, 1, 0, 0]);
        assert_eq!(format(&lpm_v4(), &e.bytes, "deny"), "10.1.0.0/16");
        let err = encode(&lpm_v4(), &v("\"10.0.0.0/33\""), "k").unwrap_err();
        assert!(err.contains("/33 is too long"), "{err}");
        let err = encode(&lpm_v4(), &v("\"2001:db8::/32\""), "k").unwrap_err();
        assert!(err.contains("holds 4 bytes"), "{err}");
    }

    #[test]
    fn structs_by_field_name_with_partial_masks() {
        let counters = TypeDesc::Struct {
            name: "counters".into(),
            size: 16,
            members: vec![member("dropped", 0, u(8)), member("passed", 64, u(8))],
            is_union: false,
        };
        let e = encode(&counters, &v("{ passed = 3 }"), "value").unwrap();
        let mut got = vec![0u8; 16];
        got[8] = 3;
        got[0] = 99; // `dropped` was not specified, so it is not compared
        assert!(e.matches(&got));
        got[8] = 4;
        assert!(!e.matches(&got));
        assert_eq!(
            format(&counters, &e.bytes, "stats"),
            "{ dropped: 0, passed: 3 }"
        );
        let err = encode(&counters, &v("{ droped = 1 }"), "value").unwrap_err();
        assert_eq!(
            err,
            "value: struct counters has no field `droped`; its fields are dropped, passed"
        );
    }

    #[test]
    fn mismatches_name_only_the_fields_that_were_specified_and_differ() {
        let counters = TypeDesc::Struct {
            name: "counters".into(),
            size: 16,
            members: vec![member("dropped", 0, u(8)), member("passed", 64, u(8))],
            is_union: false,
        };
        let want = encode(&counters, &v("{ passed = 3 }"), "value").unwrap();
        let mut got = vec![0u8; 16];
        got[0] = 9; // not specified: never reported
        got[8] = 4;
        assert_eq!(
            mismatches(&counters, &want, &got),
            ["passed: expected 3, got 4"]
        );
        got[8] = 3;
        assert!(mismatches(&counters, &want, &got).is_empty());
        // A shorter answer (an older kernel's context) is fine when every
        // specified byte is in it, and reported when one is not.
        assert!(want.matches_prefix(&got[..16]));
        assert!(!want.matches_prefix(&got[..8]));
        assert_eq!(
            mismatches(&counters, &want, &got[..8]),
            ["passed: expected 3, but the kernel returned only 8 bytes"]
        );
        assert_eq!(
            mismatches(&u(2), &encode(&u(2), &v("7"), "x").unwrap(), &[8, 0]),
            ["expected 7, got 8"]
        );
    }

    #[test]
    fn enums_by_variant_name() {
        let e = TypeDesc::Enum {
            name: "verdict".into(),
            size: 4,
            variants: vec![("ALLOW".into(), 0), ("DENY".into(), 1)],
        };
        assert_eq!(encode(&e, &v("\"DENY\""), "v").unwrap().bytes, [1, 0, 0, 0]);
        assert_eq!(format(&e, &[1, 0, 0, 0], ""), "DENY");
        assert!(
            encode(&e, &v("\"MAYBE\""), "v")
                .unwrap_err()
                .contains("ALLOW, DENY")
        );
    }

    #[test]
    fn raw_hex_must_match_the_size() {
        assert_eq!(
            encode(&u(2), &v("{ hex = \"beef\" }"), "k").unwrap().bytes,
            [0xbe, 0xef]
        );
        assert!(
            encode(&u(4), &v("{ hex = \"beef\" }"), "k")
                .unwrap_err()
                .contains("2 hex bytes given")
        );
    }

    #[test]
    fn big_endian_ports_print_as_numbers() {
        assert_eq!(format(&be16(), &[0x1f, 0x90], "port"), "8080");
    }
}
