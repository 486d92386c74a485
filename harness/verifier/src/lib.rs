//! What a verifier log says, beyond pass or fail.
//!
//! - [`VerifierStats`]: the statistics veristat reports, parsed the same way
//!   (so the numbers agree on the same kernel and object);
//! - [`normalize_verifier_log`]: a log made stable run to run for snapshots;
//! - [`Expectation`]: "rejected before 5.17 with a message matching ...",
//!   declared next to a program (BTF decl tags) or in a case file.

mod expect;
mod normalize;
mod stats;
mod version;

pub use expect::{Expectation, ExpectedVerdict, Outcome, parse_decl_tag};
pub use normalize::normalize_verifier_log;
pub use stats::VerifierStats;
pub use version::{KernelRange, KernelVersion};
