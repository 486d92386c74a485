//! Everything the harness shows a person, rendered from typed values:
//! [`test_report`] and [`verify_report`] from the judgements (findings,
//! summaries, snapshot notes, rows), [`Status`] from the events of a run.
//! Colour comes from `anstyle`; printing through `anstream` drops it for
//! non-terminals and under `NO_COLOR`. Machine formats (CSV, JSON) live in
//! `harness-judge` next to the rows they serialise.

mod ci;
mod explain;
mod list;
mod status;
mod style;
mod test;
mod verify;

pub use ci::{github_commands, job_summary, junit, outcomes_line};
pub use explain::{explain_report, log_explanation};
pub use list::listing;
pub use status::Status;

/// An error and its causes in one line (`outer: cause: cause`), leaving out
/// a cause whose text the message already holds: many errors show their
/// source themselves, and a chain would say it twice.
pub fn error_text(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let said = cause.to_string();
        if !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        source = cause.source();
    }
    text
}

/// `text` without the colour codes the renderers put in (for a file, or a
/// comparison).
pub fn plain(text: &str) -> String {
    anstream::adapter::strip_str(text).to_string()
}
pub use test::{summary_table, test_report};
pub use verify::{matrix, verify_report};

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Shows(std::io::Error);
    impl std::fmt::Display for Shows {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "could not open /cache/lock: {}", self.0)
        }
    }
    impl std::error::Error for Shows {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[derive(Debug)]
    struct Hides(std::io::Error);
    impl std::fmt::Display for Hides {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("fetching the kernel")
        }
    }
    impl std::error::Error for Hides {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn a_cause_is_said_once() {
        let denied = || std::io::Error::from_raw_os_error(13);
        assert_eq!(
            error_text(&Shows(denied())),
            "could not open /cache/lock: Permission denied (os error 13)"
        );
        assert_eq!(
            error_text(&Hides(denied())),
            "fetching the kernel: Permission denied (os error 13)"
        );
    }

    #[test]
    fn colour_codes_are_dropped_for_plain_text() {
        let styled = style::paint(style::BAD, "FAILED");
        assert_ne!(styled, "FAILED");
        assert_eq!(plain(&styled), "FAILED");
    }
}
