//! Checking observations against the committed snapshots, across all
//! kernels at once (so a snapshot is shared where kernels agree), and what
//! to tell the user about the ones that differ.

use std::{collections::BTreeMap, fmt, path::PathBuf};

use harness_project::Project;
use harness_snapshots::{Observation, Outcome, SnapshotStore};

/// A snapshot file that is new or differs, with the kernels that produced it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotNote {
    /// The snapshot's name, without kernel line (`verifier__fw__fw`).
    pub name: String,
    /// Kernel lines whose observation it is.
    pub lines: Vec<String>,
    pub change: SnapshotChange,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SnapshotChange {
    New {
        written: Written,
    },
    Changed {
        /// The committed file, relative to the project.
        file: PathBuf,
        /// Unified diff, old → new.
        diff: String,
        written: Written,
    },
    /// No case or program produces it any more (renamed or removed).
    Unreferenced {
        /// The file, relative to the project.
        file: PathBuf,
        /// Deleted (`--unreferenced delete`); else only named.
        removed: bool,
    },
}

/// What became of the new content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Written {
    /// A `.snap.new` waits for review.
    Pending(PathBuf),
    /// Accepted in place (`INSTA_UPDATE=always`).
    Accepted(PathBuf),
    /// Nothing written (`INSTA_UPDATE=no`, or `CI` set).
    Nothing,
}

impl fmt::Display for SnapshotNote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "snapshot {} ", self.name)?;
        if !self.lines.is_empty() {
            write!(f, "on {} ", self.lines.join(", "))?;
        }
        match &self.change {
            SnapshotChange::New { written } => {
                let text = match written {
                    Written::Accepted(p) => format!("written to {}", p.display()),
                    Written::Pending(p) => format!("pending: {}", p.display()),
                    Written::Nothing => "not written: INSTA_UPDATE=no or CI is set".into(),
                };
                write!(f, "is new ({text})")
            }
            SnapshotChange::Changed {
                file,
                diff,
                written,
            } => {
                let what = match written {
                    Written::Accepted(_) => "updated",
                    Written::Pending(_) => "pending review",
                    Written::Nothing => "not written: INSTA_UPDATE=no or CI is set",
                };
                write!(f, "differs from {} ({what}):\n{diff}", file.display())
            }
            SnapshotChange::Unreferenced {
                file,
                removed: false,
            } => write!(
                f,
                "is produced by no case or program any more: remove {} (or run with --unreferenced delete)",
                file.display()
            ),
            SnapshotChange::Unreferenced {
                file,
                removed: true,
            } => write!(
                f,
                "was produced by no case or program any more: removed {}",
                file.display()
            ),
        }
    }
}

/// The outcome of checking a run's observations.
#[derive(Clone, Debug, Default)]
pub struct SnapshotCheck {
    /// Per observation, in order: matched (or accepted), new, changed.
    pub states: Vec<SnapshotState>,
    pub notes: Vec<SnapshotNote>,
    /// `.snap.new` files awaiting review.
    pub pending: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SnapshotState {
    Matched,
    New,
    Changed,
}

/// What to do with snapshot files no case or program produces any more.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Unreferenced {
    /// Name them.
    #[default]
    List,
    /// Delete them (and say so).
    Delete,
}

/// Checks every observation and writes what the store's mode says; notes
/// (or deletes) the files of `kinds` whose names `is_known` does not know.
pub fn check(
    project: &Project,
    store: &SnapshotStore,
    observations: &[Observation],
    kinds: &[&str],
    is_known: &dyn Fn(&str) -> bool,
    unreferenced: Unreferenced,
) -> std::io::Result<SnapshotCheck> {
    let outcomes = store.check(observations)?;
    let states = outcomes
        .iter()
        .map(|o| match o {
            o if !o.is_failure() => SnapshotState::Matched,
            Outcome::New { .. } => SnapshotState::New,
            _ => SnapshotState::Changed,
        })
        .collect();
    let (mut notes, pending) = notes(project, observations, &outcomes);
    let known = |name: &str| is_known(name) || observations.iter().any(|o| o.name == name);
    for file in store.unreferenced(kinds, &known)? {
        let removed = unreferenced == Unreferenced::Delete;
        if removed {
            std::fs::remove_file(&file)?;
        }
        let name = file.file_name().unwrap_or_default().to_string_lossy();
        let stem = name.trim_end_matches(".new").trim_end_matches(".snap");
        let (name, lines) = match stem.split_once('@') {
            Some((name, line)) => (name.to_owned(), vec![line.to_owned()]),
            None => (stem.to_owned(), Vec::new()),
        };
        notes.push(SnapshotNote {
            name,
            lines,
            change: SnapshotChange::Unreferenced {
                file: PathBuf::from(project.relative(&file)),
                removed,
            },
        });
    }
    Ok(SnapshotCheck {
        states,
        notes,
        pending,
    })
}

/// One note per new or changed snapshot file (kernels sharing the file are
/// named together), and how many files await review.
fn notes(
    project: &Project,
    observations: &[Observation],
    outcomes: &[Outcome],
) -> (Vec<SnapshotNote>, usize) {
    let rel = |p: &PathBuf| PathBuf::from(project.relative(p));
    let written = |pending: &Option<PathBuf>, accepted: bool| match (pending, accepted) {
        (Some(p), true) => Written::Accepted(rel(p)),
        (Some(p), false) => Written::Pending(rel(p)),
        (None, _) => Written::Nothing,
    };
    let mut noted: BTreeMap<(String, String), SnapshotNote> = BTreeMap::new();
    for (o, outcome) in observations.iter().zip(outcomes) {
        let (key, change) = match outcome {
            Outcome::Matched { .. } => continue,
            Outcome::New { pending, accepted } => (
                pending
                    .as_ref()
                    .map_or_else(|| o.name.clone(), |p| p.display().to_string()),
                SnapshotChange::New {
                    written: written(pending, *accepted),
                },
            ),
            Outcome::Changed {
                file,
                pending,
                diff,
                accepted,
            } => (
                file.display().to_string(),
                SnapshotChange::Changed {
                    file: rel(file),
                    diff: diff.clone(),
                    written: written(pending, *accepted),
                },
            ),
        };
        noted
            .entry((key, o.name.clone()))
            .or_insert_with(|| SnapshotNote {
                name: o.name.clone(),
                lines: Vec::new(),
                change,
            })
            .lines
            .push(o.line.clone());
    }
    let pending = outcomes
        .iter()
        .filter_map(|o| match o {
            Outcome::New {
                pending: Some(p),
                accepted: false,
            }
            | Outcome::Changed {
                pending: Some(p),
                accepted: false,
                ..
            } => Some(p.clone()),
            _ => None,
        })
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    (noted.into_values().collect(), pending)
}
