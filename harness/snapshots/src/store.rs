//! Reading, comparing and writing snapshot files per kernel line.

use std::{
    collections::BTreeMap,
    env, fs, io,
    path::{Path, PathBuf},
};

/// What to do with a snapshot that does not match, mirroring `INSTA_UPDATE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpdateMode {
    /// Write `.snap.new` files for `cargo insta review` (insta's default
    /// outside CI).
    New,
    /// Overwrite the `.snap` files and pass (`INSTA_UPDATE=always`).
    Always,
    /// Write nothing (insta's default in CI).
    No,
}

impl UpdateMode {
    /// insta's rules: `INSTA_UPDATE` = `always` | `new` | `no` | `auto`
    /// (default: `no` when `CI` is set, else `new`).
    pub fn from_env() -> Self {
        match env::var("INSTA_UPDATE").as_deref() {
            Ok("always" | "overwrite") => Self::Always,
            Ok("new") => Self::New,
            Ok("no") => Self::No,
            _ if env::var_os("CI").is_some() => Self::No,
            _ => Self::New,
        }
    }
}

/// One thing a kernel said that should match a snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observation {
    /// Snapshot name without kernel line, e.g. `verifier__fw__xdp_fw`.
    pub name: String,
    /// Kernel line (`6.1`) the content came from.
    pub line: String,
    pub content: String,
    /// Recorded in the snapshot header: where the snapshot's subject lives.
    pub source: String,
    /// Recorded in the snapshot header: what the snapshot shows.
    pub expression: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Matched {
        file: PathBuf,
    },
    /// No snapshot existed. `pending` is where the new one was written (None
    /// in [`UpdateMode::No`]); with [`UpdateMode::Always`] it was accepted.
    New {
        pending: Option<PathBuf>,
        accepted: bool,
    },
    /// The snapshot differs; `diff` is a unified diff old → new.
    Changed {
        file: PathBuf,
        pending: Option<PathBuf>,
        diff: String,
        accepted: bool,
    },
}

impl Outcome {
    /// Whether the run should fail because of this snapshot.
    pub fn is_failure(&self) -> bool {
        match self {
            Self::Matched { .. } => false,
            Self::New { accepted, .. } | Self::Changed { accepted, .. } => !accepted,
        }
    }
}

/// A directory of snapshots.
#[derive(Clone, Debug)]
pub struct SnapshotStore {
    dir: PathBuf,
    mode: UpdateMode,
}

fn file_name(name: &str, line: Option<&str>) -> String {
    match line {
        Some(line) => format!("{name}@{line}.snap"),
        None => format!("{name}.snap"),
    }
}

/// Snapshot text as insta compares it: trailing whitespace and newlines at
/// the end do not count.
fn normalized(s: &str) -> String {
    s.lines()
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\n")
        .trim_end()
        .to_owned()
}

impl SnapshotStore {
    pub fn new(dir: PathBuf, mode: UpdateMode) -> Self {
        Self { dir, mode }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Reads a snapshot's content with insta's own parser, so any file insta
    /// accepted (or wrote) reads back the same.
    fn read(&self, file: &str) -> Option<String> {
        let path = self.dir.join(file);
        if !path.exists() {
            return None;
        }
        let snap = insta::Snapshot::from_file(&path).ok()?;
        snap.contents().as_text().map(|t| t.to_string())
    }

    /// The committed content `name` is judged against on kernel `line`: its
    /// own snapshot if it has one, else the shared one.
    pub fn expected(&self, name: &str, line: &str) -> Option<String> {
        self.read(&file_name(name, Some(line)))
            .or_else(|| self.read(&file_name(name, None)))
    }

    fn write(&self, file: &str, obs: &Observation) -> io::Result<PathBuf> {
        fs::create_dir_all(&self.dir)?;
        let path = self.dir.join(file);
        let text = format!(
            "---\nsource: {}\nexpression: {}\n---\n{}\n",
            serde_json::to_string(&obs.source).unwrap_or_default(),
            serde_json::to_string(&obs.expression).unwrap_or_default(),
            obs.content.trim_end()
        );
        // Write-then-rename: an interrupted run never leaves half a snapshot.
        let tmp = self.dir.join(format!(".{file}.tmp{}", std::process::id()));
        fs::write(&tmp, text)?;
        fs::rename(&tmp, &path)?;
        Ok(path)
    }

    fn remove_pending(&self, file: &str) {
        let _ = fs::remove_file(self.dir.join(format!("{file}.new")));
    }

    /// Compares observations with the stored snapshots. Observations of the
    /// same name from several kernels are judged together: content every
    /// kernel agrees on goes to `name.snap`, a kernel that differs gets
    /// `name@line.snap`.
    pub fn check(&self, observations: &[Observation]) -> io::Result<Vec<Outcome>> {
        let mut by_name: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, o) in observations.iter().enumerate() {
            by_name.entry(&o.name).or_default().push(i);
        }
        let mut outcomes: Vec<Option<Outcome>> = vec![None; observations.len()];
        for (name, idxs) in by_name {
            let shared_file = file_name(name, None);
            let shared = self.read(&shared_file);
            // Which file each observation is judged against.
            let mut mismatched = Vec::new();
            for &i in &idxs {
                let o = &observations[i];
                let own_file = file_name(name, Some(&o.line));
                let (file, expected) = match self.read(&own_file) {
                    Some(text) => (own_file, Some(text)),
                    None => (shared_file.clone(), shared.clone()),
                };
                match expected {
                    Some(text) if normalized(&text) == normalized(&o.content) => {
                        self.remove_pending(&file);
                        self.remove_pending(&file_name(name, Some(&o.line)));
                        outcomes[i] = Some(Outcome::Matched {
                            file: self.dir.join(&file),
                        });
                    }
                    expected => mismatched.push((i, file, expected)),
                }
            }
            if mismatched.is_empty() {
                continue;
            }
            // When every kernel of this run disagrees with the shared
            // snapshot in the same way, the shared snapshot is what changed.
            let all_same_new = mismatched.len() == idxs.len()
                && mismatched.iter().all(|(i, f, _)| {
                    *f == shared_file
                        && normalized(&observations[*i].content)
                            == normalized(&observations[mismatched[0].0].content)
                });
            if all_same_new {
                let first = &observations[mismatched[0].0];
                let outcome = self.record(&shared_file, shared.as_deref(), first)?;
                for (i, _, _) in &mismatched {
                    outcomes[*i] = Some(outcome.clone());
                }
                continue;
            }
            // Otherwise: new content agreed on by most kernels becomes the
            // shared snapshot when there is none yet; the rest are per line.
            let mut groups: BTreeMap<String, Vec<usize>> = BTreeMap::new();
            for (i, _, _) in &mismatched {
                groups
                    .entry(normalized(&observations[*i].content))
                    .or_default()
                    .push(*i);
            }
            // A lone kernel is no majority: with every kernel different, each gets its own.
            let majority = groups
                .values()
                .filter(|g| g.len() > 1)
                .max_by_key(|g| g.len())
                .cloned()
                .unwrap_or_default();
            for (i, file, expected) in mismatched {
                let o = &observations[i];
                let target = if shared.is_none() && majority.contains(&i) {
                    shared_file.clone()
                } else {
                    file_name(name, Some(&o.line))
                };
                let expected = if target == file { expected } else { None };
                outcomes[i] = Some(self.record(&target, expected.as_deref(), o)?);
            }
        }
        Ok(outcomes
            .into_iter()
            .map(|o| o.expect("every observation judged"))
            .collect())
    }

    /// Snapshot files (`.snap` and pending `.snap.new`) whose name starts
    /// with one of `kinds` and that `is_known` does not know (without its
    /// `@line`): renamed or removed cases and programs, on every line. What
    /// a run skipped or a kernel it did not boot would produce is known, so
    /// it is never named.
    pub fn unreferenced(
        &self,
        kinds: &[&str],
        is_known: &dyn Fn(&str) -> bool,
    ) -> io::Result<Vec<PathBuf>> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut out = Vec::new();
        for entry in entries {
            let file = entry?.file_name();
            let Some(file) = file.to_str() else { continue };
            let Some(stem) = file
                .strip_suffix(".snap.new")
                .or_else(|| file.strip_suffix(".snap"))
            else {
                continue;
            };
            if !kinds.iter().any(|k| stem.starts_with(k)) {
                continue;
            }
            let name = stem.split_once('@').map_or(stem, |(name, _)| name);
            if !is_known(name) {
                out.push(self.dir.join(file));
            }
        }
        out.sort();
        Ok(out)
    }

    fn record(&self, file: &str, old: Option<&str>, obs: &Observation) -> io::Result<Outcome> {
        let (pending, accepted) = match self.mode {
            UpdateMode::No => (None, false),
            UpdateMode::New => (Some(self.write(&format!("{file}.new"), obs)?), false),
            UpdateMode::Always => {
                self.remove_pending(file);
                (Some(self.write(file, obs)?), true)
            }
        };
        Ok(match old {
            None => Outcome::New { pending, accepted },
            Some(old) => Outcome::Changed {
                file: self.dir.join(file),
                pending,
                diff: similar::TextDiff::from_lines(
                    normalized(old).as_str(),
                    normalized(&obs.content).as_str(),
                )
                .unified_diff()
                .context_radius(3)
                .header("snapshot", "this run")
                .to_string(),
                accepted,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(line: &str, content: &str) -> Observation {
        Observation {
            name: "verifier__fw__prog".into(),
            line: line.into(),
            content: content.into(),
            source: "sample-programs/fw.bpf.c".into(),
            expression: "verifier log".into(),
        }
    }

    fn accept_all(dir: &Path) {
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if let Some(s) = p.to_str().and_then(|s| s.strip_suffix(".new")) {
                fs::rename(&p, s).unwrap();
            }
        }
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn kernels_that_agree_share_one_snapshot_and_a_divergent_one_gets_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let store = SnapshotStore::new(dir.path().to_owned(), UpdateMode::New);
        let run = [
            obs("5.10", "old log"),
            obs("6.1", "A"),
            obs("6.12", "A"),
            obs("7.2", "A"),
        ];
        let out = store.check(&run).unwrap();
        assert!(out.iter().all(|o| matches!(
            o,
            Outcome::New {
                pending: Some(_),
                accepted: false
            }
        )));
        accept_all(dir.path());
        assert_eq!(
            names(dir.path()),
            ["verifier__fw__prog.snap", "verifier__fw__prog@5.10.snap"]
        );
        let out = store.check(&run).unwrap();
        assert!(
            out.iter().all(|o| matches!(o, Outcome::Matched { .. })),
            "{out:?}"
        );
    }

    #[test]
    fn when_every_kernel_differs_each_gets_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let store = SnapshotStore::new(dir.path().to_owned(), UpdateMode::New);
        store
            .check(&[obs("5.10", "A"), obs("6.1", "B"), obs("7.2", "C")])
            .unwrap();
        accept_all(dir.path());
        assert_eq!(
            names(dir.path()),
            [
                "verifier__fw__prog@5.10.snap",
                "verifier__fw__prog@6.1.snap",
                "verifier__fw__prog@7.2.snap"
            ]
        );
    }

    #[test]
    fn a_change_on_every_kernel_updates_the_shared_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let store = SnapshotStore::new(dir.path().to_owned(), UpdateMode::New);
        store.check(&[obs("6.1", "A"), obs("6.12", "A")]).unwrap();
        accept_all(dir.path());
        let out = store.check(&[obs("6.1", "B"), obs("6.12", "B")]).unwrap();
        match &out[0] {
            Outcome::Changed {
                pending: Some(p),
                diff,
                ..
            } => {
                assert!(p.ends_with("verifier__fw__prog.snap.new"));
                assert!(diff.contains("-A") && diff.contains("+B"), "{diff}");
            }
            other => panic!("{other:?}"),
        }
        // The file insta reviews parses with insta and holds the new content.
        let pending =
            insta::Snapshot::from_file(&dir.path().join("verifier__fw__prog.snap.new")).unwrap();
        assert_eq!(pending.contents().as_text().unwrap().to_string(), "B");
        assert_eq!(pending.metadata().expression(), Some("verifier log"));
    }

    #[test]
    fn one_kernel_changing_gets_a_per_line_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let store = SnapshotStore::new(dir.path().to_owned(), UpdateMode::New);
        store.check(&[obs("6.1", "A"), obs("6.12", "A")]).unwrap();
        accept_all(dir.path());
        let out = store.check(&[obs("6.1", "A"), obs("6.12", "C")]).unwrap();
        assert!(matches!(out[0], Outcome::Matched { .. }));
        assert!(
            matches!(&out[1], Outcome::New { pending: Some(p), .. } if p.ends_with("verifier__fw__prog@6.12.snap.new"))
        );
    }

    #[test]
    fn ci_mode_writes_nothing_and_always_mode_accepts() {
        let dir = tempfile::tempdir().unwrap();
        let no = SnapshotStore::new(dir.path().to_owned(), UpdateMode::No);
        let out = no.check(&[obs("6.1", "A")]).unwrap();
        assert!(out[0].is_failure());
        assert!(!dir.path().join("verifier__fw__prog.snap.new").exists());
        let always = SnapshotStore::new(dir.path().to_owned(), UpdateMode::Always);
        let out = always.check(&[obs("6.1", "A")]).unwrap();
        assert!(!out[0].is_failure());
        assert!(matches!(
            no.check(&[obs("6.1", "A")]).unwrap()[0],
            Outcome::Matched { .. }
        ));
    }

    #[test]
    fn trailing_whitespace_does_not_count() {
        let dir = tempfile::tempdir().unwrap();
        let store = SnapshotStore::new(dir.path().to_owned(), UpdateMode::Always);
        store.check(&[obs("6.1", "line  \n\n")]).unwrap();
        assert!(matches!(
            store.check(&[obs("6.1", "line")]).unwrap()[0],
            Outcome::Matched { .. }
        ));
    }

    #[test]
    fn snapshots_nothing_produces_any_more_are_found() {
        let dir = tempfile::tempdir().unwrap();
        for f in [
            "verifier__fw__prog@6.1.snap",
            "verifier__fw__prog@5.10.snap",
            "verifier__fw__gone@6.1.snap",
            "verifier__fw__gone@7.2.snap",
            "case__fw__renamed.snap",
            "case__fw__renamed.snap.new",
            "case__fw__kept.snap",
            "README.md",
        ] {
            fs::write(dir.path().join(f), "x").unwrap();
        }
        let store = SnapshotStore::new(dir.path().to_owned(), UpdateMode::No);
        let known = |name: &str| ["verifier__fw__prog", "case__fw__kept"].contains(&name);
        let found: Vec<String> = store
            .unreferenced(&["verifier__", "case__"], &known)
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        // A name nobody knows is stale on every line, run or not.
        assert_eq!(
            found,
            [
                "case__fw__renamed.snap",
                "case__fw__renamed.snap.new",
                "verifier__fw__gone@6.1.snap",
                "verifier__fw__gone@7.2.snap"
            ]
        );
        // `verify` produces no case snapshots and does not judge them.
        assert_eq!(
            store.unreferenced(&["verifier__"], &known).unwrap().len(),
            2
        );
    }
}
