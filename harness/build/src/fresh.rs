//! Whether a build output is newer than everything it was built from.

use std::{fs, path::Path, time::SystemTime};

pub(crate) fn mtime(path: &Path) -> Option<SystemTime> {
    fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// True when `output` exists and no prerequisite listed in `depfile`, nor
/// any of `extra`, is newer. A missing or empty depfile, or a missing
/// prerequisite, means "rebuild".
pub(crate) fn newer_than_deps(output: &Path, depfile: &Path, extra: &[&Path]) -> bool {
    let Some(built) = mtime(output) else {
        return false;
    };
    let Ok(deps) = fs::read_to_string(depfile) else {
        return false;
    };
    let deps = parse_depfile(&deps);
    !deps.is_empty()
        && deps
            .iter()
            .map(Path::new)
            .chain(extra.iter().copied())
            .all(|dep| mtime(dep).is_some_and(|t| t <= built))
}

/// Prerequisites of a make-style depfile (`obj: a.c b.h \` ...), with
/// escaped spaces handled.
pub(crate) fn parse_depfile(text: &str) -> Vec<String> {
    let joined = text.replace("\\\n", " ");
    let Some((_, prereqs)) = joined.split_once(": ") else {
        return Vec::new();
    };
    let mut deps = Vec::new();
    let mut cur = String::new();
    let mut chars = prereqs.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&' ') => {
                cur.push(' ');
                chars.next();
            }
            c if c.is_whitespace() => {
                if !cur.is_empty() {
                    deps.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        deps.push(cur);
    }
    deps
}
