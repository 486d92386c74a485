//! Expected verifier outcomes per kernel range.
//!
//! In C, next to the program (see `sample-programs/include/verifier.h`):
//!
//! ```c
//! SEC("xdp")
//! __rejected("<5.17", "unknown func bpf_loop|invalid func unknown#181")
//! __accepted(">=5.17")
//! int sum_loop(struct xdp_md *ctx) { ... }
//! ```
//!
//! The macros become BTF decl tags (`harness:rejected:<5.17:<regex>`) that
//! the harness reads from the object; case files can state the same in
//! `[[verifier]]` tables.

use std::fmt;

use harness_protocol::KernelVersion;
use regex::Regex;

use crate::{KernelRange, RangeError};

/// What an expectation says the kernel does with a program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpectedVerdict {
    Accepted,
    Rejected,
    /// The harness cannot even attempt the load on these kernels (an attach
    /// target missing from the kernel's BTF, a program type it lacks); the
    /// message is searched for in the reason.
    NotLoaded,
}

impl ExpectedVerdict {
    /// The word case files and decl tags use: `accepted`, `rejected`,
    /// `not loaded`.
    pub fn word(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Rejected => "rejected",
            Self::NotLoaded => "not loaded",
        }
    }

    /// Reads a verdict as case files (`not loaded`) and decl tags
    /// (`not_loaded`) write it.
    pub fn parse(word: &str) -> Option<Self> {
        match word {
            "accepted" => Some(Self::Accepted),
            "rejected" => Some(Self::Rejected),
            "not loaded" | "not_loaded" => Some(Self::NotLoaded),
            _ => None,
        }
    }
}

impl fmt::Display for ExpectedVerdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.word())
    }
}

/// One expectation about one program.
#[derive(Clone, Debug)]
pub struct Expectation {
    pub kernels: KernelRange,
    pub verdict: ExpectedVerdict,
    /// Searched for in the log (a rejection's explanation, or anything an
    /// accepted program's log must say), or in the reason a program was not
    /// loaded.
    pub message: Option<Regex>,
    /// Where it was declared (`file:line`, or `file, function`), for messages.
    pub origin: String,
}

/// What the kernel (or the loader) did with the program.
#[derive(Clone, Copy, Debug)]
pub enum Outcome<'a> {
    Accepted { log: &'a str },
    Rejected { log: &'a str },
    NotLoaded { reason: &'a str },
}

impl Outcome<'_> {
    pub fn verdict(&self) -> ExpectedVerdict {
        match self {
            Self::Accepted { .. } => ExpectedVerdict::Accepted,
            Self::Rejected { .. } => ExpectedVerdict::Rejected,
            Self::NotLoaded { .. } => ExpectedVerdict::NotLoaded,
        }
    }

    /// The text an expectation's message is searched in.
    fn text(&self) -> &str {
        match self {
            Self::Accepted { log } | Self::Rejected { log } => log,
            Self::NotLoaded { reason } => reason,
        }
    }
}

/// How an outcome differs from an expectation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mismatch {
    Verdict {
        expected: ExpectedVerdict,
        got: ExpectedVerdict,
        kernels: KernelRange,
        origin: String,
    },
    Message {
        verdict: ExpectedVerdict,
        pattern: String,
        origin: String,
    },
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Verdict {
                expected,
                got,
                kernels,
                origin,
            } => {
                write!(f, "expected {expected} on {kernels} ({origin}), but ")?;
                match got {
                    ExpectedVerdict::NotLoaded => f.write_str("it was not loaded"),
                    got => write!(f, "the verifier {got} it"),
                }
            }
            Self::Message {
                verdict,
                pattern,
                origin,
            } => {
                let what = if *verdict == ExpectedVerdict::NotLoaded {
                    "the reason"
                } else {
                    "the log"
                };
                write!(
                    f,
                    "{verdict} as expected ({origin}), but {what} does not match /{pattern}/"
                )
            }
        }
    }
}

/// A mistake in an expectation as written.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ExpectationError {
    #[error("`{pattern}` is not a valid regular expression: {error}")]
    Regex { pattern: String, error: String },
    #[error("`{0}` is not a verdict; expected accepted, rejected or not loaded")]
    Verdict(String),
    #[error(transparent)]
    Range(#[from] RangeError),
}

impl Expectation {
    pub fn new(
        kernels: KernelRange,
        verdict: ExpectedVerdict,
        message: Option<&str>,
        origin: String,
    ) -> Result<Self, ExpectationError> {
        let message = message
            .filter(|m| !m.is_empty())
            .map(|m| {
                Regex::new(m).map_err(|e| ExpectationError::Regex {
                    pattern: m.to_owned(),
                    error: e.to_string(),
                })
            })
            .transpose()?;
        Ok(Self {
            kernels,
            verdict,
            message,
            origin,
        })
    }

    pub fn applies_to(&self, kernel: KernelVersion) -> bool {
        self.kernels.contains(kernel)
    }

    /// `Ok` when the outcome is what was expected, else how it differs.
    pub fn check(&self, outcome: Outcome<'_>) -> Result<(), Mismatch> {
        let verdict = outcome.verdict();
        if verdict != self.verdict {
            return Err(Mismatch::Verdict {
                expected: self.verdict,
                got: verdict,
                kernels: self.kernels,
                origin: self.origin.clone(),
            });
        }
        if let Some(re) = &self.message
            && !re.is_match(outcome.text())
        {
            return Err(Mismatch::Message {
                verdict,
                pattern: re.as_str().to_owned(),
                origin: self.origin.clone(),
            });
        }
        Ok(())
    }
}

/// A decl tag of ours that does not make an expectation.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{origin}: {error} (in `{tag}`)")]
pub struct DeclTagError {
    pub origin: String,
    pub tag: String,
    pub error: ExpectationError,
}

/// Reads a decl tag written by the `__accepted`/`__rejected`/`__not_loaded`
/// macros: `harness:accepted:>=5.17`, `harness:rejected:<5.17:<regex>`,
/// `harness:not_loaded:7.2:<regex>`. `None` for tags that are not ours.
pub fn parse_decl_tag(tag: &str, origin: &str) -> Option<Result<Expectation, DeclTagError>> {
    let rest = tag.strip_prefix("harness:")?;
    let mut parts = rest.splitn(3, ':');
    let verdict = parts.next().unwrap_or_default();
    let range = parts.next().unwrap_or_default();
    let message = parts.next();
    let expectation = ExpectedVerdict::parse(verdict)
        .ok_or_else(|| ExpectationError::Verdict(verdict.to_owned()))
        .and_then(|verdict| Ok((verdict, KernelRange::parse(range)?)))
        .and_then(|(verdict, kernels)| {
            Expectation::new(kernels, verdict, message, origin.to_owned())
        });
    Some(expectation.map_err(|error| DeclTagError {
        origin: origin.to_owned(),
        tag: tag.to_owned(),
        error,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> KernelVersion {
        s.parse().unwrap()
    }

    #[test]
    fn decl_tags_become_expectations() {
        let e = parse_decl_tag(
            "harness:rejected:<5.17:unknown func bpf_loop|invalid func unknown#181",
            "loop.bpf.c",
        )
        .unwrap()
        .unwrap();
        assert_eq!(e.verdict, ExpectedVerdict::Rejected);
        assert!(e.applies_to(v("5.10")) && !e.applies_to(v("6.1")));
        assert!(
            e.check(Outcome::Rejected {
                log: "18: (85) call unknown#181\ninvalid func unknown#181\n"
            })
            .is_ok()
        );
        let err = e
            .check(Outcome::Rejected {
                log: "R1 invalid mem access 'scalar'\n",
            })
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("does not match /unknown func bpf_loop|invalid func unknown#181/"),
            "{err}"
        );
        let err = e
            .check(Outcome::Accepted { log: "" })
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "expected rejected on <5.17 (loop.bpf.c), but the verifier accepted it"
        );
        assert!(parse_decl_tag("some:other:tag", "x").is_none());
        assert!(
            parse_decl_tag("harness:maybe:all", "x")
                .unwrap()
                .unwrap_err()
                .to_string()
                .contains("`maybe` is not a verdict")
        );
        assert!(
            parse_decl_tag("harness:accepted:later", "x")
                .unwrap()
                .unwrap_err()
                .to_string()
                .contains("not a kernel range")
        );
        assert!(
            parse_decl_tag("harness:rejected:all:(unclosed", "x")
                .unwrap()
                .unwrap_err()
                .to_string()
                .contains("not a valid regular expression")
        );
    }

    #[test]
    fn a_program_that_cannot_be_loaded_can_be_expected_per_kernel() {
        let e = parse_decl_tag(
            "harness:not_loaded:>=7.2:attach target `tcp_v4_connect` is not in the kernel",
            "probe.bpf.c, on_connect",
        )
        .unwrap()
        .unwrap();
        assert_eq!(e.verdict, ExpectedVerdict::NotLoaded);
        assert!(e.applies_to(v("7.2")) && !e.applies_to(v("6.12")));
        let reason = "attach target `tcp_v4_connect` is not in the kernel's BTF: not found";
        assert!(e.check(Outcome::NotLoaded { reason }).is_ok());
        let other = e
            .check(Outcome::NotLoaded {
                reason: "section `tc` is not a program section",
            })
            .unwrap_err();
        assert_eq!(
            other.to_string(),
            "not loaded as expected (probe.bpf.c, on_connect), but the reason does not match \
             /attach target `tcp_v4_connect` is not in the kernel/"
        );
        let loaded = e.check(Outcome::Accepted { log: "" }).unwrap_err();
        assert_eq!(
            loaded,
            Mismatch::Verdict {
                expected: ExpectedVerdict::NotLoaded,
                got: ExpectedVerdict::Accepted,
                kernels: KernelRange::parse(">=7.2").unwrap(),
                origin: "probe.bpf.c, on_connect".into(),
            }
        );
        assert_eq!(
            loaded.to_string(),
            "expected not loaded on >=7.2 (probe.bpf.c, on_connect), but the verifier accepted it"
        );
        let rejected = Expectation::new(
            KernelRange::ALL,
            ExpectedVerdict::Rejected,
            None,
            "x".into(),
        )
        .unwrap()
        .check(Outcome::NotLoaded { reason: "r" })
        .unwrap_err();
        assert_eq!(
            rejected.to_string(),
            "expected rejected on all kernels (x), but it was not loaded"
        );
        assert_eq!(
            ExpectedVerdict::parse("not loaded"),
            Some(ExpectedVerdict::NotLoaded)
        );
        assert_eq!(ExpectedVerdict::parse("loaded"), None);
    }

    #[test]
    fn verdicts_are_written_and_read_as_the_same_words() {
        for (verdict, word) in [
            (ExpectedVerdict::Accepted, "accepted"),
            (ExpectedVerdict::Rejected, "rejected"),
            (ExpectedVerdict::NotLoaded, "not loaded"),
        ] {
            assert_eq!(verdict.to_string(), word);
            assert_eq!(ExpectedVerdict::parse(word), Some(verdict));
        }
        assert_eq!(
            ExpectedVerdict::parse("not_loaded"),
            Some(ExpectedVerdict::NotLoaded)
        );
        assert_eq!(
            Outcome::Rejected { log: "" }.verdict(),
            ExpectedVerdict::Rejected
        );
    }

    #[test]
    fn an_accepted_program_can_be_held_to_its_log() {
        let e = Expectation::new(
            KernelRange::ALL,
            ExpectedVerdict::Accepted,
            Some("processed \\d+ insns"),
            "fw.toml:3".into(),
        )
        .unwrap();
        assert_eq!(
            e.check(Outcome::Accepted {
                log: "processed 42 insns (limit 1000000)\n"
            }),
            Ok(())
        );
        let err = e.check(Outcome::Accepted { log: "" }).unwrap_err();
        assert_eq!(
            err.to_string(),
            "accepted as expected (fw.toml:3), but the log does not match /processed \\d+ insns/"
        );
        // An empty message asks for nothing.
        let any = Expectation::new(
            KernelRange::ALL,
            ExpectedVerdict::Accepted,
            Some(""),
            "x".into(),
        )
        .unwrap();
        assert!(any.message.is_none());
        assert_eq!(any.check(Outcome::Accepted { log: "whatever" }), Ok(()));
    }
}
