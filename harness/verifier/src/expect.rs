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

use regex::Regex;

use crate::{KernelRange, KernelVersion};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpectedVerdict {
    Accepted,
    Rejected,
}

/// One expectation about one program.
#[derive(Clone, Debug)]
pub struct Expectation {
    pub kernels: KernelRange,
    pub verdict: ExpectedVerdict,
    /// Searched for in the log (a rejection's explanation, or anything an
    /// accepted program's log must say).
    pub message: Option<Regex>,
    /// Where it was declared, for messages.
    pub origin: String,
}

/// What the kernel did with the program.
#[derive(Clone, Copy, Debug)]
pub enum Outcome<'a> {
    Accepted { log: &'a str },
    Rejected { log: &'a str },
}

impl Expectation {
    pub fn new(
        kernels: KernelRange,
        verdict: ExpectedVerdict,
        message: Option<&str>,
        origin: String,
    ) -> Result<Self, String> {
        let message = message
            .filter(|m| !m.is_empty())
            .map(|m| {
                Regex::new(m).map_err(|e| format!("`{m}` is not a valid regular expression: {e}"))
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

    /// `Ok` when the outcome is what was expected, else why not.
    pub fn check(&self, outcome: Outcome<'_>) -> Result<(), String> {
        let (verdict, log) = match outcome {
            Outcome::Accepted { log } => (ExpectedVerdict::Accepted, log),
            Outcome::Rejected { log } => (ExpectedVerdict::Rejected, log),
        };
        let word = |v: ExpectedVerdict| {
            if v == ExpectedVerdict::Accepted {
                "accepted"
            } else {
                "rejected"
            }
        };
        if verdict != self.verdict {
            return Err(format!(
                "expected {} on {} ({}), but the verifier {} it",
                word(self.verdict),
                self.kernels,
                self.origin,
                word(verdict)
            ));
        }
        if let Some(re) = &self.message
            && !re.is_match(log)
        {
            return Err(format!(
                "{} as expected ({}), but the log does not match /{}/",
                word(verdict),
                self.origin,
                re.as_str()
            ));
        }
        Ok(())
    }
}

/// Reads a decl tag written by the `__accepted`/`__rejected` macros:
/// `harness:accepted:>=5.17` or `harness:rejected:<5.17:<regex>`. `None`
/// for tags that are not ours.
pub fn parse_decl_tag(tag: &str, origin: &str) -> Option<Result<Expectation, String>> {
    let rest = tag.strip_prefix("harness:")?;
    let mut parts = rest.splitn(3, ':');
    let verdict = parts.next().unwrap_or_default();
    let range = parts.next().unwrap_or_default();
    let message = parts.next();
    let verdict = match verdict {
        "accepted" => ExpectedVerdict::Accepted,
        "rejected" => ExpectedVerdict::Rejected,
        other => {
            return Some(Err(format!(
                "{origin}: unknown verdict `{other}` in `{tag}`; expected accepted or rejected"
            )));
        }
    };
    Some(
        KernelRange::parse(range)
            .map_err(|e| format!("{origin}: {e} (in `{tag}`)"))
            .and_then(|kernels| {
                Expectation::new(kernels, verdict, message, origin.to_owned())
                    .map_err(|e| format!("{origin}: {e}"))
            }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> KernelVersion {
        KernelVersion::parse(s).unwrap()
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
            .unwrap_err();
        assert!(
            err.contains("does not match /unknown func bpf_loop|invalid func unknown#181/"),
            "{err}"
        );
        let err = e.check(Outcome::Accepted { log: "" }).unwrap_err();
        assert_eq!(
            err,
            "expected rejected on <5.17 (loop.bpf.c), but the verifier accepted it"
        );
        assert!(parse_decl_tag("some:other:tag", "x").is_none());
        assert!(
            parse_decl_tag("harness:maybe:all", "x")
                .unwrap()
                .unwrap_err()
                .contains("unknown verdict `maybe`")
        );
        assert!(
            parse_decl_tag("harness:accepted:later", "x")
                .unwrap()
                .unwrap_err()
                .contains("not a kernel range")
        );
        assert!(
            parse_decl_tag("harness:rejected:all:(unclosed", "x")
                .unwrap()
                .unwrap_err()
                .contains("not a valid regular expression")
        );
    }
}
