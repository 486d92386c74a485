//! Where the value at fault came from: a use-def walk back along the path
//! the verifier took, through copies, spills to the stack and fills from
//! it, to the instruction that made the value (a helper call, a load, a
//! constant).
//!
//! The path is the log's instructions before the failing one, read
//! backwards. Where the log resumed a branch (`from 4 to 7:`), the walk
//! goes on from the branch instruction itself: at level 2 the lines between
//! belong to other paths, at level 1 the kernel already dropped them.

use std::sync::LazyLock;

use regex::Regex;
use serde::Serialize;

use crate::log::{Line, LineKind, StateAt};

/// One step of the trace, oldest first in [`trace`]'s result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Step {
    /// Position of the instruction in the walk.
    pub(crate) at: usize,
    pub(crate) index: usize,
    pub(crate) what: StepKind,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum StepKind {
    /// `R0` is what `helper` returned.
    Call { register: u8, function: String },
    /// Read from memory through another register (`r1 = *(u64 *)(r6 +8)`).
    Load { register: u8, base: u8, offset: i64 },
    /// Filled from the stack slot `fp{offset}`.
    Fill { register: u8, offset: i64 },
    /// Spilled to the stack slot `fp{offset}` from `from`.
    Spill { offset: i64, from: u8 },
    /// Copied from another register.
    Copy { register: u8, from: u8 },
    /// Set to a constant (or a map, a ksym: an `ld_imm64`).
    Constant { register: u8, value: String },
    /// Set some other way (`r2 = r10`, arithmetic into a fresh register).
    Other { register: u8 },
}

impl StepKind {
    /// The step in words, for the rendered diagnosis.
    pub fn describe(&self) -> String {
        match self {
            Self::Call { register, function } => {
                format!("R{register} is the result of {function}()")
            }
            Self::Load {
                register,
                base,
                offset,
            } => format!("R{register} is read from memory at R{base}{offset:+}"),
            Self::Fill { register, offset } => {
                format!("R{register} is reloaded from the stack at fp{offset}")
            }
            Self::Spill { offset, from } => format!("fp{offset} holds R{from}, spilled here"),
            Self::Copy { register, from } => format!("R{register} is a copy of R{from}"),
            Self::Constant { register, value } => format!("R{register} is set to {value}"),
            Self::Other { register } => format!("R{register} is set here"),
        }
    }
}

/// What the walk follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    Register(u8),
    Slot(i64),
}

// `w` registers are the 32-bit halves; for tracing they are the register.
const REG: &str = r"[rw](\d+)";

static CALL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^call ([A-Za-z_][\w.]*?)(?:#\d+)?$").expect("valid regex"));
static FILL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(r"^{REG} = \*\(u\d+ \*\)\(r10 (-\d+)\)$")).expect("valid regex")
});
static SPILL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(r"^\*\(u\d+ \*\)\(r10 (-\d+)\) = {REG}$")).expect("valid regex")
});
static LOAD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(r"^{REG} = \*\(u\d+ \*\)\(r(\d+) ([+-]\d+)\)$")).expect("valid regex")
});
static COPY: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(&format!(r"^{REG} = {REG}$")).expect("valid regex"));
static CONSTANT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"^{REG} = (-?(?:0x[0-9a-f]+|\d+)(?: ll)?|map\[.*|.*\bll)$"
    ))
    .expect("valid regex")
});
/// Any other write to a register: `r1 = ...`, `r1 += ...`, `w1 &= ...`.
static WRITE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(r"^{REG} (=|[-+*/%&|^]=|<<=|>>=|s>>=) ")).expect("valid regex")
});

/// The most steps a trace takes: a value copied around more than this is
/// rare, and a long walk must not cost a long log twice.
const MAX_STEPS: usize = 16;

/// Traces `register` back from the end of `walk` (the lines before the
/// failing instruction, that instruction last). Oldest step first; empty
/// when nothing in the walk wrote the register.
pub(crate) fn trace(walk: &[Line<'_>], register: u8) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut target = Target::Register(register);
    // The failing instruction itself only uses the value.
    let Some(mut p) = walk
        .iter()
        .rposition(|l| matches!(l.kind, LineKind::Insn(_)))
    else {
        return steps;
    };
    while p > 0 && steps.len() < MAX_STEPS {
        p -= 1;
        let insn = match walk[p].kind {
            LineKind::Insn(insn) => insn,
            LineKind::State(s) => {
                if let StateAt::Edge { from, .. } = s.at {
                    // Go on from the branch that pushed this path.
                    match walk[..p]
                        .iter()
                        .rposition(|l| matches!(l.kind, LineKind::Insn(i) if i.index == from))
                    {
                        Some(q) => p = q + 1,
                        None => break,
                    }
                }
                continue;
            }
            _ => continue,
        };
        let Some(kind) = step(insn.text, target) else {
            continue;
        };
        target = match &kind {
            StepKind::Fill { offset, .. } => Target::Slot(*offset),
            StepKind::Spill { from, .. } | StepKind::Copy { from, .. } => Target::Register(*from),
            _ => Target::Register(u8::MAX),
        };
        let done = target == Target::Register(u8::MAX);
        steps.push(Step {
            at: p,
            index: insn.index,
            what: kind,
        });
        if done {
            break;
        }
    }
    steps.reverse();
    steps
}

/// What `text` does to `target`, if it defines it.
fn step(text: &str, target: Target) -> Option<StepKind> {
    let reg = |s: &str| s.parse::<u8>().ok();
    let off = |s: &str| s.parse::<i64>().ok();
    match target {
        Target::Slot(slot) => {
            let c = SPILL.captures(text)?;
            (off(&c[1])? == slot).then(|| StepKind::Spill {
                offset: slot,
                from: reg(&c[2]).unwrap_or(u8::MAX),
            })
        }
        Target::Register(r) => {
            if let Some(c) = CALL.captures(text) {
                // A call defines R0 and clobbers R1-R5.
                return match r {
                    0 => Some(StepKind::Call {
                        register: 0,
                        function: c[1].to_owned(),
                    }),
                    1..=5 => Some(StepKind::Other { register: r }),
                    _ => None,
                };
            }
            let c = WRITE.captures(text)?;
            if reg(&c[1])? != r {
                return None;
            }
            if &c[2] != "=" {
                // Arithmetic keeps the value's origin.
                return None;
            }
            Some(if let Some(c) = FILL.captures(text) {
                StepKind::Fill {
                    register: r,
                    offset: off(&c[2])?,
                }
            } else if let Some(c) = LOAD.captures(text) {
                StepKind::Load {
                    register: r,
                    base: reg(&c[2])?,
                    offset: off(&c[3])?,
                }
            } else if let Some(c) = COPY.captures(text) {
                StepKind::Copy {
                    register: r,
                    from: reg(&c[2])?,
                }
            } else if let Some(c) = CONSTANT.captures(text) {
                StepKind::Constant {
                    register: r,
                    value: c[2].to_owned(),
                }
            } else {
                StepKind::Other { register: r }
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::Log;

    fn kinds(log: &str, register: u8) -> Vec<(usize, StepKind)> {
        let parsed = Log::parse(log);
        trace(parsed.lines(), register)
            .into_iter()
            .map(|s| (s.index, s.what))
            .collect()
    }

    #[test]
    fn follows_copies_spills_and_fills_to_the_call() {
        let log = "\
4: (85) call bpf_map_lookup_elem#1
5: (7b) *(u64 *)(r10 -16) = r0
6: (b7) r0 = 0
7: (79) r3 = *(u64 *)(r10 -16)
8: (bf) r1 = r3
9: (07) r1 += 8
10: (79) r2 = *(u64 *)(r1 +0)
";
        assert_eq!(
            kinds(log, 1),
            vec![
                (
                    4,
                    StepKind::Call {
                        register: 0,
                        function: "bpf_map_lookup_elem".into()
                    }
                ),
                (
                    5,
                    StepKind::Spill {
                        offset: -16,
                        from: 0
                    }
                ),
                (
                    7,
                    StepKind::Fill {
                        register: 3,
                        offset: -16
                    }
                ),
                (
                    8,
                    StepKind::Copy {
                        register: 1,
                        from: 3
                    }
                ),
            ]
        );
    }

    #[test]
    fn a_resumed_branch_goes_on_from_the_branch_not_from_other_paths() {
        // Level 2: the path 3 -> 4 -> 5 ended; the failing path resumed at 6 from 3.
        let log = "\
2: (79) r6 = *(u64 *)(r1 +0)
3: (15) if r2 == 0x0 goto pc+2
4: (b7) r6 = 1
5: (95) exit
from 3 to 6: R6=scalar()
6: (71) r0 = *(u8 *)(r6 +0)
";
        assert_eq!(
            kinds(log, 6),
            vec![(
                2,
                StepKind::Load {
                    register: 6,
                    base: 1,
                    offset: 0
                }
            )]
        );
    }

    #[test]
    fn constants_calls_clobbering_and_nothing_found() {
        assert_eq!(
            kinds(
                "1: (b7) r2 = 0\n2: (07) r2 += 4\n3: (71) r0 = *(u8 *)(r2 +0)\n",
                2
            ),
            vec![(
                1,
                StepKind::Constant {
                    register: 2,
                    value: "0".into()
                }
            )]
        );
        assert_eq!(
            kinds(
                "1: (85) call bpf_get_prandom_u32#7\n2: (71) r0 = *(u8 *)(r1 +0)\n",
                1
            ),
            vec![(1, StepKind::Other { register: 1 })]
        );
        assert_eq!(kinds("2: (71) r0 = *(u8 *)(r1 +0)\n", 1), vec![]);
        assert_eq!(kinds("", 1), vec![]);
        assert_eq!(
            StepKind::Fill {
                register: 3,
                offset: -16
            }
            .describe(),
            "R3 is reloaded from the stack at fp-16"
        );
    }
}
