//! `BPF_MAP_TYPE_*` numbers and what the harness knows about each: the one
//! place that says which maps are per-CPU, which can be set and dumped by
//! key, and what they are called in reports.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A map's `BPF_MAP_TYPE_*` number (uapi `enum bpf_map_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MapType(pub u32);

/// Names in uapi order, index = number; the short names libbpf and bpftool
/// print.
const NAMES: &[&str] = &[
    "unspec",
    "hash",
    "array",
    "prog_array",
    "perf_event_array",
    "percpu_hash",
    "percpu_array",
    "stack_trace",
    "cgroup_array",
    "lru_hash",
    "lru_percpu_hash",
    "lpm_trie",
    "array_of_maps",
    "hash_of_maps",
    "devmap",
    "sockmap",
    "cpumap",
    "xskmap",
    "sockhash",
    "cgroup_storage",
    "reuseport_sockarray",
    "percpu_cgroup_storage",
    "queue",
    "stack",
    "sk_storage",
    "devmap_hash",
    "struct_ops",
    "ringbuf",
    "inode_storage",
    "task_storage",
    "bloom_filter",
    "user_ringbuf",
    "cgrp_storage",
    "arena",
];

impl MapType {
    pub const HASH: Self = Self(1);
    pub const ARRAY: Self = Self(2);
    pub const PROG_ARRAY: Self = Self(3);
    pub const PERCPU_HASH: Self = Self(5);
    pub const PERCPU_ARRAY: Self = Self(6);
    pub const LRU_HASH: Self = Self(9);
    pub const LRU_PERCPU_HASH: Self = Self(10);
    pub const LPM_TRIE: Self = Self(11);
    pub const DEVMAP: Self = Self(14);
    pub const CPUMAP: Self = Self(16);
    pub const PERCPU_CGROUP_STORAGE: Self = Self(21);
    pub const DEVMAP_HASH: Self = Self(25);
    pub const RINGBUF: Self = Self(27);

    /// `lpm_trie`, or `map_type_99` for a number this table does not know.
    pub fn name(self) -> String {
        NAMES
            .get(self.0 as usize)
            .map_or_else(|| format!("map_type_{}", self.0), |n| (*n).to_owned())
    }

    /// One value per possible CPU per key.
    pub fn is_per_cpu(self) -> bool {
        [
            Self::PERCPU_HASH,
            Self::PERCPU_ARRAY,
            Self::LRU_PERCPU_HASH,
            Self::PERCPU_CGROUP_STORAGE,
        ]
        .contains(&self)
    }

    /// Every index always exists (zeroed until written).
    pub fn is_array(self) -> bool {
        self == Self::ARRAY || self == Self::PERCPU_ARRAY
    }

    /// Maps whose entries can be listed, set and cleared by key from user
    /// space with plain values: the redirect maps too (an ifindex, a CPU's
    /// queue size). Queues, ring buffers, perf arrays, storage maps cannot;
    /// maps of file descriptors (prog arrays, maps of maps, XSKMAP,
    /// SOCKMAP) keep what the object initialised them with.
    pub fn is_keyed(self) -> bool {
        [
            Self::HASH,
            Self::ARRAY,
            Self::PERCPU_HASH,
            Self::PERCPU_ARRAY,
            Self::LRU_HASH,
            Self::LRU_PERCPU_HASH,
            Self::LPM_TRIE,
            Self::DEVMAP,
            Self::CPUMAP,
            Self::DEVMAP_HASH,
        ]
        .contains(&self)
    }
}

impl fmt::Display for MapType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_uapi_numbers() {
        assert_eq!(MapType(11).name(), "lpm_trie");
        assert_eq!(MapType::RINGBUF.name(), "ringbuf");
        assert_eq!(MapType(30).name(), "bloom_filter");
        assert_eq!(MapType(999).to_string(), "map_type_999");
    }

    #[test]
    fn kinds_agree_with_each_other() {
        for t in (0..40).map(MapType) {
            // Per-CPU maps the harness sets and dumps are keyed, and arrays are.
            if t.is_array() {
                assert!(t.is_keyed(), "{t}");
            }
        }
        assert!(MapType::LRU_PERCPU_HASH.is_per_cpu() && MapType::LRU_PERCPU_HASH.is_keyed());
        assert!(MapType::PERCPU_CGROUP_STORAGE.is_per_cpu());
        assert!(!MapType::PERCPU_CGROUP_STORAGE.is_keyed());
        assert!(!MapType::RINGBUF.is_keyed() && !MapType::PROG_ARRAY.is_keyed());
        // Redirect maps hold plain values; maps of maps hold fds.
        assert!(MapType::DEVMAP.is_keyed() && MapType::CPUMAP.is_keyed());
        assert!(MapType::DEVMAP_HASH.is_keyed() && !MapType::DEVMAP.is_array());
        assert!(!MapType(12).is_keyed() && !MapType(13).is_keyed() && !MapType(17).is_keyed());
        assert!(!MapType::HASH.is_per_cpu() && !MapType::HASH.is_array());
    }
}
