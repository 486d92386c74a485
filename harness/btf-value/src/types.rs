//! C types reduced to what encoding and decoding need.

use std::fmt;

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

/// A member of a struct or union.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberDesc {
    /// Empty for anonymous members.
    pub name: String,
    /// From the start of the struct.
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

    /// A one-byte integer (`char`, `u8`): arrays of it may be text.
    pub fn is_byte(&self) -> bool {
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

/// `{ prefixlen: u32; data: 4 or 16 bytes }`, the LPM-trie key layout.
pub(crate) fn lpm_layout(members: &[MemberDesc]) -> Option<(&MemberDesc, &MemberDesc)> {
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
