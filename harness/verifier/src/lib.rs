//! What a verifier log says, beyond pass or fail.
//!
//! - [`VerifierStats`]: the statistics veristat reports, parsed the same way
//!   (so the numbers agree on the same kernel and object);
//! - [`normalize_verifier_log`]: a log made stable run to run for snapshots;
//! - [`Expectation`]: "rejected before 5.17 with a message matching ...",
//!   or "not loaded on 7.2", declared next to a program (BTF decl tags) or
//!   in a case file, checked into a typed [`Mismatch`].

mod expect;
mod normalize;
mod range;
mod stats;

pub use expect::{
    DeclTagError, Expectation, ExpectationError, ExpectedVerdict, Mismatch, Outcome, parse_decl_tag,
};
pub use normalize::normalize_verifier_log;
pub use range::{KernelRange, RangeError};
pub use stats::VerifierStats;
