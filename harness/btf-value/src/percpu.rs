//! Per-CPU values added up: per-CPU maps hold counters, and a test usually
//! cares about their total.

use crate::types::TypeDesc;

/// Adds per-CPU values field by field (counters are what per-CPU maps hold).
pub fn sum(ty: &TypeDesc, values: &[Vec<u8>]) -> Vec<u8> {
    let mut out = values
        .first()
        .cloned()
        .unwrap_or_else(|| vec![0; ty.size()]);
    for v in values.iter().skip(1) {
        add_into(ty, &mut out, v);
    }
    out
}

/// Adds `v` into `acc` integer by integer, in each integer's byte order and
/// wrapping as the kernel's counters do.
fn add_into(ty: &TypeDesc, acc: &mut [u8], v: &[u8]) {
    match ty {
        TypeDesc::Int {
            size, big_endian, ..
        } => {
            let read = |b: &[u8]| {
                let mut x = [0u8; 16];
                let mut bytes = b[..*size].to_vec();
                if *big_endian {
                    bytes.reverse();
                }
                x[..*size].copy_from_slice(&bytes);
                u128::from_le_bytes(x)
            };
            let total = read(acc).wrapping_add(read(v));
            let mut bytes = total.to_le_bytes()[..*size].to_vec();
            if *big_endian {
                bytes.reverse();
            }
            acc[..*size].copy_from_slice(&bytes);
        }
        TypeDesc::Array { elem, len } => {
            let s = elem.size();
            for i in 0..*len {
                add_into(elem, &mut acc[i * s..(i + 1) * s], &v[i * s..(i + 1) * s]);
            }
        }
        TypeDesc::Struct {
            members,
            is_union: false,
            ..
        } => {
            for m in members.iter().filter(|m| m.bits.is_none()) {
                let start = (m.bit_offset / 8) as usize;
                let end = start + m.ty.size();
                if end <= acc.len() {
                    add_into(&m.ty, &mut acc[start..end], &v[start..end]);
                }
            }
        }
        // Enums, unions and raw bytes are not counters: keep CPU 0's value.
        _ => {}
    }
}
