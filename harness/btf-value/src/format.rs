//! Bytes back into readable values, and how they differ from an
//! expectation.

use std::{
    fmt,
    net::{Ipv4Addr, Ipv6Addr},
};

use harness_packet::Mac;

use crate::{
    encode::Encoded,
    types::{TypeDesc, lpm_layout},
};

/// A specified part of a value that the bytes read back do not match.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mismatch {
    /// The field, dotted (`stats.packets`); empty for the whole value.
    pub path: String,
    /// The expected value, formatted.
    pub expected: String,
    pub got: Got,
}

/// What was read back where a value was expected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Got {
    /// A value, formatted.
    Value(String),
    /// The bytes end before the field (an older kernel's smaller context).
    Short { len: usize },
}

impl fmt::Display for Mismatch {
    /// `passed: expected 3, got 4`; without the `path: ` for a whole value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        match &self.got {
            Got::Value(got) => write!(f, "expected {}, got {got}", self.expected),
            Got::Short { len } => write!(
                f,
                "expected {}, but the kernel returned only {len} bytes",
                self.expected
            ),
        }
    }
}

/// How `got` differs from `want`, naming only what `want` specified:
/// `mark: expected 4098, got 0` for a struct, `expected 7, got 8`
/// otherwise. Empty when they match.
pub fn mismatches(ty: &TypeDesc, want: &Encoded, got: &[u8]) -> Vec<Mismatch> {
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
    out: &mut Vec<Mismatch>,
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
    // Down to the fields that differ, unless bitfields share bytes.
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
    out.push(Mismatch {
        path: path.to_owned(),
        expected: format(ty, &want.bytes[range.clone()], path),
        got: if got.len() < range.end {
            Got::Short { len: got.len() }
        } else {
            Got::Value(format(ty, &got[range], path))
        },
    });
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
            // Only a key whose first member says it is a prefix length
            // reads as a CIDR: `{ u32 ifindex; u32 prog_id; }` is no address.
            if let Some((p, d)) = lpm_layout(members)
                && p.name.to_ascii_lowercase().contains("prefix")
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
