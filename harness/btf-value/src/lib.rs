//! Values typed through BTF, on the host.
//!
//! This crate owns reading an object's BTF ([`ObjectBtf`], the one place the
//! harness parses BTF on the host): C types reduced to what encoding needs
//! ([`TypeDesc`]), the object's enumerators as named constants
//! ([`Constants`]), structs by name, and the decl tags on functions. With
//! those it turns values written in TOML (integers, structs by field name,
//! arrays, enum variants, IP and MAC addresses, CIDRs, raw hex) into the
//! bytes a map key, map value or context holds ([`encode`], [`encode_with`]),
//! remembering which bytes the value specified ([`Encoded`]); and it turns
//! bytes back into readable values ([`format`]), says how bytes differ from
//! a partial expectation ([`mismatches`]) and adds per-CPU values up
//! ([`sum`]).
//!
//! It knows nothing of case files (spans, file names, which key of which
//! case: callers pass a `path` that names the value in errors) and nothing
//! of kernels (the bytes it reads back come from whoever asks).
//!
//! MAC addresses and hex bytes are parsed by harness-packet, which owns those
//! notations: a value is written as it would be in a packet. The dependency
//! points this way because packets know nothing of BTF; the reverse would
//! drag BTF into every packet user.

mod btf;
mod encode;
mod format;
mod line_info;
mod percpu;
mod types;

pub use btf::{BtfError, FuncDeclTag, ObjectBtf};
pub use encode::{Constants, Encoded, ValueError, ValueErrorKind, encode, encode_with};
pub use format::{Got, Mismatch, format, mismatches};
pub use line_info::{LineInfo, LineInfoError, line_info};
pub use percpu::sum;
pub use types::{MemberDesc, TypeDesc};

#[cfg(test)]
mod tests;
