//! A project as the harness sees it, and everything that happens before a
//! kernel is involved.
//!
//! [`Project`] says where the programs, cases, snapshots, kernel pins and
//! outputs live. [`prepare`] compiles the programs, parses every object once
//! (programs, maps, BTF types), reads and checks every test-case file
//! against its object and collects the expected verifier outcomes, all
//! without a kernel, so the result is the same on any machine. Every
//! case-file mistake is reported at once, with file, line and column.

mod layout;
mod prepare;

pub use layout::Project;
pub use prepare::{
    PrepareError, PrepareOptions, Prepared, PreparedObject, ProgramExpectation, prepare,
};
