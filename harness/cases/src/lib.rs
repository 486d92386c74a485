//! Declarative test cases for BPF programs.
//!
//! A case file (TOML) names an object and, per case, the program, the input
//! packet layer by layer (or from a pcap), context fields, map contents as
//! typed values, and what must hold afterwards: the return value by name,
//! the output packet, context fields, map entries. This crate turns files
//! into [`harness_protocol::CasePlan`]s using the object's ELF and BTF (never
//! a kernel) and judges the kernel's answers.
//!
//! It holds the case schema, the compiler and the evaluation; packets are
//! built, described and read from captures by `harness-packet`, and values
//! are typed through BTF by `harness-btf-value`. Their errors carry no file
//! position: this crate adds it (file, line, column) where it knows the span.

mod compile;
mod diag;
pub mod errno;
mod evaluate;
pub mod features;
mod file;
mod object;
pub mod retval;
pub mod steps;
mod steps_eval;

pub use compile::{
    CompiledCase, Expectations, MapExpectation, ParsedFile, Want, compile, compile_expectations,
    parse_file, parse_str,
};
pub use diag::CaseError;
pub use evaluate::{CaseFailure, CaseResult, Failed, MapProblem, Status, evaluate, format_dumps};
pub use object::{MapInfo, ObjectInfo};
