//! `--prog PATTERN`: which programs a run judges, by glob (`*`, `?`) on the
//! program's name or on `object/program`, as veristat's `-f` filter.

use std::{fmt, str::FromStr};

/// One `--prog` pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProgramPattern {
    /// As given, for messages.
    pub text: String,
    /// Before the last `/`, when there is one.
    object: Option<String>,
    program: String,
}

/// A pattern with nothing to match a program name against.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("`{0}`: expected PROGRAM or OBJECT/PROGRAM, globs with * and ?")]
pub struct BadPattern(pub String);

impl FromStr for ProgramPattern {
    type Err = BadPattern;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (object, program) = match s.rsplit_once('/') {
            Some((o, p)) => (Some(o.to_owned()), p),
            None => (None, s),
        };
        if program.is_empty() || object.as_deref() == Some("") {
            return Err(BadPattern(s.to_owned()));
        }
        Ok(Self {
            text: s.to_owned(),
            object,
            program: program.to_owned(),
        })
    }
}

impl fmt::Display for ProgramPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl ProgramPattern {
    /// Whether `object/program` is selected. The object part matches the
    /// object's name (`build/tc_lb.bpf.o`), that name without its extension
    /// (`build/tc_lb`) or its file stem (`tc_lb`), so `tc_lb/*` means the
    /// same for the project's objects and for objects given by path.
    pub fn matches(&self, object: &str, program: &str) -> bool {
        glob(&self.program, program)
            && self
                .object
                .as_deref()
                .is_none_or(|pattern| object_names(object).any(|name| glob(pattern, name)))
    }
}

/// The names an object answers to in a pattern.
fn object_names(object: &str) -> impl Iterator<Item = &str> {
    let bare = [".bpf.o", ".o", ".bpf.c"]
        .iter()
        .find_map(|ext| object.strip_suffix(ext))
        .unwrap_or(object);
    let stem = bare.rsplit('/').next().unwrap_or(bare);
    [object, bare, stem].into_iter()
}

/// Glob matching: `*` any run of characters (`/` included), `?` any one.
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    // Iterative matching with backtracking to the last `*`.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// One `--filter` pattern: a glob (`*`, `?`) on case names, program names,
/// `object/program` and object names, as `cargo test`'s filter is on
/// test names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter(pub String);

impl FromStr for Filter {
    type Err = BadFilter;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err(BadFilter);
        }
        Ok(Self(s.to_owned()))
    }
}

/// An empty `--filter`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "an empty filter: expected a case name, program, OBJECT/PROGRAM or object (globs with * and ?)"
)]
pub struct BadFilter;

impl Filter {
    /// Whether the program `object/program` is named (not through a case).
    pub fn matches_program(&self, object: &str, program: &str) -> bool {
        glob(&self.0, program)
            || object_names(object)
                .any(|o| glob(&self.0, o) || glob(&self.0, &format!("{o}/{program}")))
    }

    pub fn matches_case(&self, case: &str) -> bool {
        glob(&self.0, case)
    }
}

/// Filters that match no case and no program.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "--filter {} {} no case, program or object; the objects are: {}",
    unmatched.join(", --filter "),
    if unmatched.len() == 1 { "matches" } else { "match" },
    objects.join(", ")
)]
pub struct FilterMatchesNothing {
    pub unmatched: Vec<String>,
    pub objects: Vec<String>,
}

/// Patterns that select no program, with every program there is.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "--prog {} {} no program; the programs are: {}",
    unmatched.join(", --prog "),
    if unmatched.len() == 1 { "matches" } else { "match" },
    available.join(", ")
)]
pub struct NoMatch {
    pub unmatched: Vec<String>,
    /// `object/program` of every program.
    pub available: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> ProgramPattern {
        s.parse().unwrap()
    }

    #[test]
    fn filters_match_cases_programs_and_objects() {
        let f = |s: &str| s.parse::<Filter>().unwrap();
        assert!(f("drop_*").matches_case("drop_tcp_syn"));
        assert!(!f("drop_*").matches_case("pass_all"));
        assert!(f("xdp_fw").matches_program("xdp_fw", "anything"));
        assert!(f("xdp_fw/filter").matches_program("xdp_fw", "filter"));
        assert!(!f("xdp_fw/filter").matches_program("xdp_fw", "other"));
        assert!(f("filter").matches_program("o", "filter"));
        assert!(f("*/filt*").matches_program("build/x.bpf.o", "filter"));
        assert!(!f("tc_*").matches_program("xdp_fw", "filter"));
        assert_eq!("".parse::<Filter>(), Err(BadFilter));
    }

    #[test]
    fn globs_match_whole_names() {
        assert!(glob("tc_*", "tc_lb"));
        assert!(glob("*", ""));
        assert!(glob("x?p_*wall", "xdp_firewall"));
        assert!(glob("*a*b*", "xxaxxbxx"));
        assert!(!glob("tc_*", "xdp_tc_lb"), "anchored at the start");
        assert!(!glob("*_lb", "tc_lb_v2"), "anchored at the end");
        assert!(!glob("?", ""));
        assert!(!glob("tc_lb", "tc_l"));
    }

    #[test]
    fn patterns_select_by_program_or_object_and_program() {
        assert!(p("tc_lb").matches("anything", "tc_lb"));
        assert!(!p("tc_lb").matches("tc_lb", "other"));
        assert!(p("tc_lb/*").matches("tc_lb", "whatever"));
        assert!(!p("tc_lb/*").matches("xdp_firewall", "tc_lb"));
        // Objects given by path answer to their path, with or without the
        // extension, and to their stem.
        for object in ["build/tc_lb.bpf.o", "/abs/tc_lb.o", "src/tc_lb.bpf.c"] {
            assert!(p("tc_lb/*").matches(object, "x"), "{object}");
        }
        assert!(p("build/tc_lb.bpf.o/x").matches("build/tc_lb.bpf.o", "x"));
        assert!(p("build/*/x").matches("build/tc_lb.bpf.o", "x"));
        assert!(!p("other/*/x").matches("build/tc_lb.bpf.o", "x"));
        assert_eq!("a/".parse::<ProgramPattern>(), Err(BadPattern("a/".into())));
        assert!("/x".parse::<ProgramPattern>().is_err());
        assert!("".parse::<ProgramPattern>().is_err());
    }
}
