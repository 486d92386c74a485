//! Why the BPF verifier rejected a program, from its log.
//!
//! - [`Log`]: the log as typed lines (instructions, source notes, states,
//!   bookkeeping, statistics), for kernels 5.10 to 7.2 at levels 1 and 2.
//!
//! This crate owns the reading of verifier logs for people. It is pure: no
//! syscalls, no kernel, no files. It must not know how logs are captured,
//! which kernel printed them, or anything of the other harness crates:
//! callers pass text in and get values out.

mod log;

pub use log::{InsnLine, Line, LineKind, Log, SourceNote, StateAt, StateLine};
