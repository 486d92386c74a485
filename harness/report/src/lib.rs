//! Everything the harness shows a person, rendered from typed values:
//! [`test_report`] and [`verify_report`] from the judgements (findings,
//! summaries, snapshot notes, rows), [`Status`] from the events of a run.
//! Colour comes from `anstyle`; printing through `anstream` drops it for
//! non-terminals and under `NO_COLOR`. Machine formats (CSV, JSON) live in
//! `harness-judge` next to the rows they serialise.

mod status;
mod style;
mod test;
mod verify;

pub use status::Status;

/// `text` without the colour codes the renderers put in (for a file, or a
/// comparison).
pub fn plain(text: &str) -> String {
    anstream::adapter::strip_str(text).to_string()
}
pub use test::{summary_table, test_report};
pub use verify::{matrix, verify_report};
