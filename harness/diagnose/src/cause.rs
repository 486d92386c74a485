//! Why the verifier said no: stable ids for its messages.
//!
//! Each cause is matched on the kernel's error line, in every wording the
//! kernels from 5.10 to 7.3 use for it. Only causes seen in real logs (see
//! `testdata/`) are listed; everything else is [`Cause::Unknown`].

use std::{fmt, sync::LazyLock};

use regex::Regex;

use crate::category::Category;
use serde::{Serialize, Serializer};

/// The reason for a rejection. The id ([`Cause::id`]) is stable: scripts and
/// snapshots may rely on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Cause {
    /// `R0 invalid mem access 'map_value_or_null'`
    NullDeref,
    /// `R6 invalid mem access 'scalar'` (`'inv'` before 5.18)
    ScalarDeref,
    /// `invalid access to packet, off=12 size=1, R1(id=0,off=12,r=0)`
    PacketBounds,
    /// `invalid access to map value, value_size=128 off=128 size=8`
    MapValueBounds,
    /// `invalid bpf_context access off=80 size=4`
    BadCtxAccess,
    /// `Unreleased reference id=2 alloc_insn=4`
    LeakedReference,
    /// `infinite loop detected at insn 9`
    UnboundedLoop,
    /// `unknown func bpf_skb_store_bytes#9` (up to 6.9), `program of this
    /// type cannot use helper bpf_skb_store_bytes#9` (6.10 on)
    InvalidHelper,
    /// `cannot call GPL-restricted function from non-GPL compatible program`
    GplOnly,
    /// `At program exit the register R0 has value (0x2; 0x0) should have
    /// been in (0x0; 0x1)` (up to 6.5), `... has smin=2 smax=2 should have
    /// been in [0, 1]` (later)
    ReturnRange,
    /// `combined stack size of 2 calls is 576. Too large`
    StackTooLarge,
    /// A message this crate does not know yet.
    Unknown,
}

impl Cause {
    /// Every cause, [`Cause::Unknown`] last.
    pub const ALL: [Cause; 12] = [
        Cause::NullDeref,
        Cause::ScalarDeref,
        Cause::PacketBounds,
        Cause::MapValueBounds,
        Cause::BadCtxAccess,
        Cause::LeakedReference,
        Cause::UnboundedLoop,
        Cause::InvalidHelper,
        Cause::GplOnly,
        Cause::ReturnRange,
        Cause::StackTooLarge,
        Cause::Unknown,
    ];

    pub fn id(self) -> &'static str {
        match self {
            Cause::NullDeref => "null-deref",
            Cause::ScalarDeref => "scalar-deref",
            Cause::PacketBounds => "packet-bounds",
            Cause::MapValueBounds => "map-value-bounds",
            Cause::BadCtxAccess => "bad-ctx-access",
            Cause::LeakedReference => "leaked-reference",
            Cause::UnboundedLoop => "unbounded-loop",
            Cause::InvalidHelper => "invalid-helper",
            Cause::GplOnly => "gpl-only",
            Cause::ReturnRange => "return-range",
            Cause::StackTooLarge => "stack-too-large",
            Cause::Unknown => "unknown",
        }
    }

    pub fn from_id(id: &str) -> Option<Cause> {
        Cause::ALL.into_iter().find(|c| c.id() == id)
    }

    /// What went wrong, in plain words.
    pub fn title(self) -> &'static str {
        match self {
            Cause::NullDeref => "a pointer that may be NULL is dereferenced",
            Cause::ScalarDeref => "a plain number is dereferenced as if it were a pointer",
            Cause::PacketBounds => {
                "packet data is accessed without a bounds check against data_end"
            }
            Cause::MapValueBounds => "an access reaches outside the map value",
            Cause::BadCtxAccess => "a context field this program type may not access",
            Cause::LeakedReference => "an acquired object is not released on every path",
            Cause::UnboundedLoop => "a loop the verifier cannot see end",
            Cause::InvalidHelper => "a helper this program type may not call",
            Cause::GplOnly => "a GPL-only helper in a program whose license is not GPL-compatible",
            Cause::ReturnRange => "the program returns a value its type does not allow",
            Cause::StackTooLarge => "the call chain needs more than 512 bytes of stack",
            Cause::Unknown => "a rejection this tool does not recognise yet",
        }
    }

    /// What usually fixes it.
    pub fn fix(self) -> &'static str {
        match self {
            Cause::NullDeref => {
                "check the pointer right after the helper that returned it \
                 (`if (!p) return ...;`, e.g. after bpf_map_lookup_elem()) and use only the checked pointer"
            }
            Cause::ScalarDeref => {
                "the verifier sees this value as a number (e.g. a raw tracepoint or kprobe argument): \
                 read through it with bpf_probe_read_kernel() or BPF_CORE_READ(), or use a BTF-typed \
                 program (fentry, tp_btf) whose arguments are pointers"
            }
            Cause::PacketBounds => {
                "compare the end of the access with data_end on the same pointer before it: \
                 `if ((void *)(hdr + 1) > data_end) return ...;`"
            }
            Cause::MapValueBounds => {
                "bound the index so that the whole access fits in the value: `if (i >= N) return ...;` \
                 (not `i > N`), or mask it with `i &= N - 1` for a power-of-two N"
            }
            Cause::BadCtxAccess => {
                "access only the context fields this program type allows, at their declared size; \
                 socket filters and cgroup programs read packet bytes with bpf_skb_load_bytes(), \
                 not through skb->data"
            }
            Cause::LeakedReference => {
                "release what was acquired on every path, early returns included: \
                 bpf_ringbuf_submit() or bpf_ringbuf_discard() for a reserved record, \
                 bpf_sk_release() for a socket"
            }
            Cause::UnboundedLoop => {
                "give the loop a bound the verifier can follow, a counter with a constant limit \
                 (`for (i = 0; i < MAX && !done; i++)`), or use bpf_loop() (5.17+) or bpf_for() (6.4+); \
                 a BPF program cannot wait for a value to change"
            }
            Cause::InvalidHelper => {
                "call only helpers this program type allows (socket filters and cgroup programs cannot \
                 rewrite packets), or move the code to a program type that may call it, such as tc (classifier)"
            }
            Cause::GplOnly => {
                "declare a GPL-compatible license, `char LICENSE[] SEC(\"license\") = \"GPL\";` \
                 (or \"Dual BSD/GPL\", \"Dual MIT/GPL\"), or do without the GPL-only helper"
            }
            Cause::ReturnRange => {
                "return only values inside the range the message gives: cgroup_skb programs return 1 \
                 to allow and 0 to drop, not tc verdicts (TC_ACT_*) or negative errors"
            }
            Cause::StackTooLarge => {
                "keep the stack of the whole call chain under 512 bytes: move large buffers to a \
                 single-entry BPF_MAP_TYPE_PERCPU_ARRAY used as scratch space"
            }
            Cause::Unknown => {
                "read the kernel's message together with the failing instruction and the state \
                 before it"
            }
        }
    }

    /// The class Linux 7.3 puts this rejection in; `None` for
    /// [`Cause::Unknown`]. Checked against what 7.3 prints for the
    /// programs of `testdata/` where it prints a class (not for
    /// `bad-ctx-access`, `unbounded-loop`, `return-range` and
    /// `stack-too-large`, which it explains with the classic line alone).
    pub fn category(self) -> Option<Category> {
        Some(match self {
            Cause::NullDeref | Cause::ScalarDeref => Category::RegisterType,
            Cause::PacketBounds | Cause::MapValueBounds | Cause::BadCtxAccess => Category::Memory,
            Cause::LeakedReference => Category::ResourceLifetime,
            Cause::UnboundedLoop | Cause::ReturnRange | Cause::StackTooLarge => {
                Category::ProgramStructure
            }
            // 7.3 files a helper the program type may not call with the
            // GPL-only helpers: "Policy: Operation is not allowed".
            Cause::InvalidHelper | Cause::GplOnly => Category::Policy,
            Cause::Unknown => return None,
        })
    }

    /// Whether the message is about the instruction the walk stopped at.
    /// A stack that is too large is found after a successful walk, whose
    /// log the kernel discards at level 1.
    pub(crate) fn at_instruction(self) -> bool {
        !matches!(self, Cause::StackTooLarge)
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

impl Serialize for Cause {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.id())
    }
}

/// What the error message says beyond its cause.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Classified {
    pub(crate) cause: Cause,
    /// The instruction the message names (`infinite loop detected at insn 9`).
    pub(crate) insn: Option<usize>,
    /// Where the value at fault came from (`alloc_insn=4`).
    pub(crate) origin: Option<usize>,
}

// Named groups: `insn` for an instruction the message names, `origin` for
// the instruction a value at fault came from.
static RULES: LazyLock<Vec<(Cause, Regex)>> = LazyLock::new(|| {
    [
        (
            Cause::NullDeref,
            r"^R\d+ invalid mem access '\w*_or_null\w*'$",
        ),
        (
            Cause::ScalarDeref,
            r"^R\d+ invalid mem access '(?:scalar|inv)'$",
        ),
        (
            Cause::PacketBounds,
            r"^invalid access to packet, off=-?\d+ size=\d+, R\d+\(",
        ),
        (
            Cause::MapValueBounds,
            r"^invalid access to map value, value_size=\d+ off=-?\d+ size=\d+$",
        ),
        (
            Cause::BadCtxAccess,
            r"^invalid bpf_context access off=-?\d+ size=\d+",
        ),
        (
            Cause::LeakedReference,
            r"^Unreleased reference id=\d+ alloc_insn=(?P<origin>\d+)$",
        ),
        (
            Cause::UnboundedLoop,
            r"^infinite loop detected at insn (?P<insn>\d+)$",
        ),
        (
            Cause::InvalidHelper,
            r"^(?:unknown func|program of this type cannot use helper) \w+#\d+$",
        ),
        (
            Cause::GplOnly,
            r"^cannot call GPL-restricted function from non-GPL compatible program$",
        ),
        (Cause::ReturnRange, r"^At program exit the register R0 "),
        (
            Cause::StackTooLarge,
            r"^combined stack size of \d+ calls is \d+\. Too large$",
        ),
    ]
    .into_iter()
    .map(|(cause, pattern)| (cause, Regex::new(pattern).expect("valid regex")))
    .collect()
});

/// The cause of the first message line that has a known one.
pub(crate) fn classify<'a>(message: impl IntoIterator<Item = &'a str>) -> Classified {
    for line in message {
        for (cause, rule) in RULES.iter() {
            if let Some(caps) = rule.captures(line) {
                let number = |name| caps.name(name).and_then(|m| m.as_str().parse().ok());
                return Classified {
                    cause: *cause,
                    insn: number("insn"),
                    origin: number("origin"),
                };
            }
        }
    }
    Classified {
        cause: Cause::Unknown,
        insn: None,
        origin: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_round_trip() {
        for cause in Cause::ALL {
            assert_eq!(Cause::from_id(cause.id()), Some(cause));
        }
        assert_eq!(Cause::from_id("no-such-cause"), None);
    }

    #[test]
    fn the_first_known_line_decides() {
        let c = classify(["something new", "Unreleased reference id=2 alloc_insn=4"]);
        assert_eq!(c.cause, Cause::LeakedReference);
        assert_eq!(c.origin, Some(4));
        assert_eq!(classify(["infinite loop detected at insn 9"]).insn, Some(9));
        assert_eq!(
            classify(["R0 invalid mem access 'scalar'"]).cause,
            Cause::ScalarDeref
        );
        assert_eq!(
            classify(["R0 invalid mem access 'ringbuf_mem_or_null'"]).cause,
            Cause::NullDeref
        );
        assert_eq!(classify(["nothing known"]).cause, Cause::Unknown);
    }
}
