//! Why the BPF verifier rejected a program, from its log.
//!
//! A verifier log (and, optionally, the program's C source) goes in; a
//! [`Diagnosis`] comes out: the kernel's message, a stable [`Cause`] with a
//! title and a fix, the failing instruction, its C line, the register state
//! there and, for a leaked reference, where it was acquired. It renders like
//! a compiler diagnostic ([`std::fmt::Display`]) and serialises to JSON.
//!
//! - [`Log`]: the log as typed lines (instructions, source notes, states,
//!   bookkeeping, statistics, 7.3's explanation block), for kernels 5.10 to
//!   7.3 at levels 1 and 2;
//! - [`diagnose`], [`diagnose_with`]: the diagnosis of a rejected program;
//! - [`KernelExplanation`]: 7.3's own explanation (category, reason, where,
//!   causal path, suggestion), attached to the diagnosis when the log has one.
//!
//! This crate owns the reading of verifier logs for people. It is pure: no
//! syscalls, no kernel, no files. It must not know how logs are captured,
//! which kernel printed them, or anything of the other harness crates:
//! callers pass text in and get values out.

mod category;
mod cause;
mod complexity;
mod diagnosis;
mod explanation;
mod log;
mod render;
mod state;
mod trace;

pub use category::Category;
pub use cause::Cause;
pub use complexity::{Complexity, HotLine, Loop};
pub use diagnosis::{
    Diagnosis, Evidence, Gap, Insn, LineRecord, Origin, SourceFile, SourceLocation, TraceStep,
    diagnose, diagnose_with,
};
pub use explanation::{ContextLine, KernelExplanation, KernelLocation, KernelSite, SiteNote};
pub use log::{InsnLine, Line, LineKind, Log, SourceNote, StateAt, StateLine};
pub use trace::StepKind;
