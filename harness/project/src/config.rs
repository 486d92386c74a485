//! A project's settings: the keys of `ebpf-harness.toml` at its root, or
//! of `[workspace.metadata.ebpf-harness]` in its `Cargo.toml`. Both are
//! read as TOML text (not through `cargo metadata`, whose JSON has lost the
//! lines) so that every mistake names its file and line, and unknown keys
//! list the valid ones.

use std::{
    fmt, fs, io,
    ops::Range,
    path::{Path, PathBuf},
};

use serde::Deserialize;
use toml::Spanned;

use crate::Project;

/// The settings file of a project without Cargo.
pub const CONFIG_FILE: &str = "ebpf-harness.toml";

/// Where a setting was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    pub file: PathBuf,
    pub line: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// A path pattern relative to the project root (`src/bpf/**/*.bpf.c`):
/// `*` stays within a directory, `**` crosses them.
#[derive(Clone, Debug)]
pub struct PathGlob {
    pub pattern: String,
    /// `None` for a default: a default that matches nothing is no error.
    pub written: Option<Location>,
}

impl PathGlob {
    pub fn default_for(pattern: &str) -> Self {
        Self {
            pattern: pattern.to_owned(),
            written: None,
        }
    }

    fn matcher(&self) -> Result<globset::GlobMatcher, ConfigError> {
        globset::GlobBuilder::new(&self.pattern)
            .literal_separator(true)
            .build()
            .map(|g| g.compile_matcher())
            .map_err(|e| ConfigError::at(self.written.clone(), format!("{e}")))
    }

    /// The files under `root` the pattern matches, sorted. A written
    /// pattern that matches nothing is an error at its line.
    pub fn expand(&self, root: &Path) -> Result<Vec<PathBuf>, ConfigError> {
        let matcher = self.matcher()?;
        // Walk from the pattern's literal directory, not the whole project.
        let literal: PathBuf = Path::new(&self.pattern)
            .components()
            .take_while(|c| {
                !c.as_os_str()
                    .to_string_lossy()
                    .contains(['*', '?', '[', '{'])
            })
            .collect();
        let start = root.join(&literal);
        let mut found = Vec::new();
        if start.is_file() {
            found.push(start);
        } else {
            walk(&start, &mut |path| {
                if path
                    .strip_prefix(root)
                    .is_ok_and(|rel| matcher.is_match(rel))
                {
                    found.push(path.to_owned());
                }
            });
        }
        found.sort();
        if found.is_empty()
            && let Some(at) = &self.written
        {
            return Err(ConfigError::at(
                Some(at.clone()),
                format!(
                    "`{}` matches no file under {}: check the pattern (relative to the \
                     project root; `*` stays within a directory, `**` crosses them)",
                    self.pattern,
                    root.display()
                ),
            ));
        }
        Ok(found)
    }
}

/// Every file under `dir`, skipping hidden directories and `target/`.
fn walk(dir: &Path, found: &mut dyn FnMut(&Path)) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.filter_map(Result::ok).collect();
    entries.sort_by_key(fs::DirEntry::file_name);
    for entry in entries {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        match entry.file_type() {
            Ok(t) if t.is_dir() => {
                if !name.starts_with('.') && name != "target" {
                    walk(&path, found);
                }
            }
            Ok(_) => found(&path),
            Err(_) => {}
        }
    }
}

/// How the project's programs are built (or found, when its own build
/// makes them).
#[derive(Clone, Debug, Default)]
pub struct BuildSettings {
    /// `*.bpf.c` sources the harness compiles.
    pub sources: Vec<PathGlob>,
    /// Objects the project builds itself (make, bazel, `go generate`).
    pub objects: Vec<PathGlob>,
    /// `-I` directories for every source, after the `include/` beside it.
    pub include_dirs: Vec<PathBuf>,
    /// `None`: `$CLANG`, else `clang`.
    pub clang: Option<PathBuf>,
    /// After the harness's own `-target bpf -O2 -g`.
    pub cflags: Vec<String>,
    /// `NAME` or `NAME=VALUE`, passed as `-D`.
    pub defines: Vec<String>,
    /// More flags for the sources some patterns match.
    pub overrides: Vec<BuildOverride>,
}

/// Flags for the sources `sources` match, after the global ones.
#[derive(Clone, Debug)]
pub struct BuildOverride {
    pub sources: Vec<PathGlob>,
    pub cflags: Vec<String>,
    pub defines: Vec<String>,
    pub include_dirs: Vec<PathBuf>,
}

impl BuildSettings {
    /// The extra clang flags and include directories for `source` (relative
    /// paths are taken from `root`).
    pub fn flags_for(
        &self,
        root: &Path,
        source: &Path,
    ) -> Result<(Vec<String>, Vec<PathBuf>), ConfigError> {
        let mut cflags = self.cflags.clone();
        cflags.extend(self.defines.iter().map(|d| format!("-D{d}")));
        let mut includes = Vec::new();
        let rel = source.strip_prefix(root).unwrap_or(source);
        for o in &self.overrides {
            let mut applies = false;
            for glob in &o.sources {
                applies |= glob.matcher()?.is_match(rel);
            }
            if applies {
                cflags.extend(o.cflags.iter().cloned());
                cflags.extend(o.defines.iter().map(|d| format!("-D{d}")));
                includes.extend(o.include_dirs.iter().cloned());
            }
        }
        includes.extend(self.include_dirs.iter().cloned());
        Ok((cflags, includes))
    }
}

/// Kernels to run when `--kernel` is not given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DefaultKernels {
    /// As `--kernel` takes them: `6.1,6.12`.
    pub list: String,
    pub written: Location,
}

/// A mistake in the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: {message}", at.as_ref().map_or_else(|| "configuration".to_owned(), ToString::to_string))]
    Invalid {
        at: Option<Location>,
        message: String,
    },
    #[error("{}: {error}", file.display())]
    Read { file: PathBuf, error: io::Error },
    #[error(
        "{} and {}: the project is configured twice; keep one ({} for projects without Cargo)",
        toml.display(),
        cargo.display(),
        CONFIG_FILE
    )]
    Twice { toml: PathBuf, cargo: PathBuf },
}

impl ConfigError {
    fn at(at: Option<Location>, message: String) -> Self {
        Self::Invalid { at, message }
    }
}

/// The keys, as written. Unknown keys are errors listing these.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawConfig {
    sources: Option<Vec<Spanned<String>>>,
    objects: Option<Vec<Spanned<String>>>,
    include_dirs: Option<Vec<Spanned<String>>>,
    defines: Option<Vec<String>>,
    clang: Option<String>,
    cflags: Option<Vec<String>>,
    #[serde(rename = "override", default)]
    overrides: Vec<RawOverride>,
    cases: Option<Vec<Spanned<String>>>,
    snapshots: Option<Spanned<String>>,
    kernels: Option<Spanned<Vec<String>>>,
    lock_file: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawOverride {
    sources: Vec<Spanned<String>>,
    #[serde(default)]
    cflags: Vec<String>,
    #[serde(default)]
    defines: Vec<String>,
    #[serde(default)]
    include_dirs: Vec<Spanned<String>>,
}

/// Only the part of a `Cargo.toml` that is ours; the rest is cargo's.
#[derive(Deserialize)]
struct Manifest {
    workspace: Option<ManifestWorkspace>,
}

#[derive(Deserialize)]
struct ManifestWorkspace {
    metadata: Option<ManifestMetadata>,
}

#[derive(Deserialize)]
struct ManifestMetadata {
    #[serde(rename = "ebpf-harness")]
    harness: Option<RawConfig>,
}

/// The configuration text of `dir`, if it has one: `ebpf-harness.toml`, or
/// a `Cargo.toml` whose `[workspace.metadata.ebpf-harness]` is set.
fn config_in(dir: &Path) -> Result<Option<(PathBuf, String, RawConfig)>, ConfigError> {
    let toml_file = dir.join(CONFIG_FILE);
    let cargo_file = dir.join("Cargo.toml");
    let from_toml = match fs::read_to_string(&toml_file) {
        Ok(text) => Some((text.clone(), parse::<RawConfig>(&toml_file, &text)?)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(error) => {
            return Err(ConfigError::Read {
                file: toml_file,
                error,
            });
        }
    };
    let from_cargo = match fs::read_to_string(&cargo_file) {
        // Cheap test first: most manifests say nothing of us.
        Ok(text) if text.contains("ebpf-harness") => parse::<Manifest>(&cargo_file, &text)?
            .workspace
            .and_then(|w| w.metadata)
            .and_then(|m| m.harness)
            .map(|c| (text, c)),
        Ok(_) => None,
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(error) => {
            return Err(ConfigError::Read {
                file: cargo_file,
                error,
            });
        }
    };
    match (from_toml, from_cargo) {
        (Some(_), Some(_)) => Err(ConfigError::Twice {
            toml: toml_file,
            cargo: cargo_file,
        }),
        (Some((text, c)), None) => Ok(Some((toml_file, text, c))),
        (None, Some((text, c))) => Ok(Some((cargo_file, text, c))),
        (None, None) => Ok(None),
    }
}

fn parse<T: serde::de::DeserializeOwned>(file: &Path, text: &str) -> Result<T, ConfigError> {
    toml::from_str(text).map_err(|e| {
        let line = e.span().map(|s| line_of(text, &s));
        ConfigError::at(
            line.map(|line| Location {
                file: file.to_owned(),
                line,
            }),
            // toml's message names the key and, for an unknown one, the valid keys.
            e.message().to_owned(),
        )
    })
}

fn line_of(text: &str, span: &Range<usize>) -> usize {
    text[..span.start.min(text.len())].matches('\n').count() + 1
}

/// The nearest directory from `start` upwards that holds a configuration;
/// with none, the outermost directory with a `Cargo.toml` (the workspace
/// root), else `start` itself, with the defaults.
pub fn find_root(start: &Path) -> Result<PathBuf, ConfigError> {
    let mut outermost_cargo = None;
    for dir in start.ancestors() {
        if config_in(dir)?.is_some() {
            return Ok(dir.to_owned());
        }
        if dir.join("Cargo.toml").is_file() {
            outermost_cargo = Some(dir.to_owned());
        }
    }
    Ok(outermost_cargo.unwrap_or_else(|| start.to_owned()))
}

impl Project {
    /// The project rooted at `root`, configured by its `ebpf-harness.toml`
    /// or `Cargo.toml`, else with the defaults of [`Project::at`]. Written
    /// directories must exist; kernels are checked by the caller (this
    /// crate knows no kernel syntax).
    pub fn load(root: &Path, target_dir: &Path) -> Result<Self, ConfigError> {
        let mut project = Self::at(root, target_dir);
        let Some((file, text, raw)) = config_in(root)? else {
            return Ok(project);
        };
        let at = |span: Range<usize>| Location {
            file: file.clone(),
            line: line_of(&text, &span),
        };
        let globs = |list: Vec<Spanned<String>>| -> Vec<PathGlob> {
            list.into_iter()
                .map(|s| PathGlob {
                    written: Some(at(s.span())),
                    pattern: s.into_inner(),
                })
                .collect()
        };
        let dir = |s: Spanned<String>| -> Result<PathBuf, ConfigError> {
            let path = root.join(s.get_ref());
            if path.is_dir() {
                Ok(path)
            } else {
                Err(ConfigError::at(
                    Some(at(s.span())),
                    format!(
                        "`{}` is not a directory (expected a directory relative to {})",
                        s.get_ref(),
                        root.display()
                    ),
                ))
            }
        };
        project.config = Some(file.clone());
        let b = &mut project.build;
        if raw.sources.is_some() || raw.objects.is_some() {
            b.sources = globs(raw.sources.unwrap_or_default());
            b.objects = globs(raw.objects.unwrap_or_default());
        }
        if let Some(dirs) = raw.include_dirs {
            b.include_dirs = dirs.into_iter().map(dir).collect::<Result<_, _>>()?;
        }
        if let Some(clang) = raw.clang {
            b.clang = Some(PathBuf::from(clang));
        }
        b.cflags = raw.cflags.unwrap_or_default();
        b.defines = raw.defines.unwrap_or_default();
        for o in raw.overrides {
            let include_dirs = o
                .include_dirs
                .into_iter()
                .map(dir)
                .collect::<Result<_, _>>()?;
            project.build.overrides.push(BuildOverride {
                sources: globs(o.sources),
                cflags: o.cflags,
                defines: o.defines,
                include_dirs,
            });
        }
        if let Some(cases) = raw.cases {
            project.cases_dirs = cases.into_iter().map(dir).collect::<Result<_, _>>()?;
        }
        if let Some(s) = raw.snapshots {
            project.snapshots_dir = root.join(s.get_ref());
        }
        if let Some(k) = raw.kernels {
            let written = at(k.span());
            let list = k.into_inner();
            if list.is_empty() {
                return Err(ConfigError::at(
                    Some(written),
                    "`kernels` is empty: name at least one, as --kernel takes them (\"6.1\", \"host\")"
                        .into(),
                ));
            }
            project.kernels = Some(DefaultKernels {
                list: list.join(","),
                written,
            });
        }
        if let Some(l) = raw.lock_file {
            project.lock_file = root.join(l.get_ref());
        }
        Ok(project)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(name: &str, text: &str) -> (tempfile::TempDir, Result<Project, ConfigError>) {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(name), text).unwrap();
        let p = Project::load(dir.path(), &dir.path().join("target"));
        (dir, p)
    }

    #[test]
    fn an_unknown_key_names_file_line_and_the_valid_keys() {
        let (_d, p) = load(
            CONFIG_FILE,
            "sources = [\"a/*.bpf.c\"]\n\nsnapshot = \"x\"\n",
        );
        let msg = p.unwrap_err().to_string();
        assert!(msg.contains("ebpf-harness.toml:3:"), "{msg}");
        assert!(
            msg.contains("snapshot") && msg.contains("`snapshots`"),
            "{msg}"
        );
    }

    #[test]
    fn a_wrong_type_names_its_line() {
        let (_d, p) = load(CONFIG_FILE, "\ncflags = \"-Wall\"\n");
        let msg = p.unwrap_err().to_string();
        assert!(msg.contains(":2:") && msg.contains("sequence"), "{msg}");
    }

    #[test]
    fn cargo_metadata_is_read_with_its_lines() {
        let (d, p) = load(
            "Cargo.toml",
            "[workspace]\nmembers = []\n\n[workspace.metadata.ebpf-harness]\ncases = [\"missing\"]\n",
        );
        let msg = p.unwrap_err().to_string();
        assert!(
            msg.contains("Cargo.toml:5:") && msg.contains("`missing` is not a directory"),
            "{msg}"
        );
        fs::create_dir(d.path().join("missing")).unwrap();
        let p = Project::load(d.path(), &d.path().join("target")).unwrap();
        assert_eq!(p.cases_dirs, [d.path().join("missing")]);
        assert_eq!(p.config, Some(d.path().join("Cargo.toml")));
    }

    #[test]
    fn a_manifest_without_our_table_keeps_the_defaults() {
        let (d, p) = load(
            "Cargo.toml",
            "[package]\nname = \"ebpf-harness-user\"\n[workspace.metadata.other]\nx = 1\n",
        );
        let p = p.unwrap();
        assert_eq!(p.config, None);
        assert_eq!(p.cases_dirs, [d.path().join("testcases")]);
    }

    #[test]
    fn two_configurations_are_an_error() {
        let (d, _) = load(CONFIG_FILE, "");
        fs::write(
            d.path().join("Cargo.toml"),
            "[workspace.metadata.ebpf-harness]\n",
        )
        .unwrap();
        let msg = Project::load(d.path(), d.path()).unwrap_err().to_string();
        assert!(msg.contains("configured twice"), "{msg}");
    }

    #[test]
    fn every_key_lands_where_it_says() {
        let (d, _) = load("x", "");
        for sub in ["inc", "tests/bpf"] {
            fs::create_dir_all(d.path().join(sub)).unwrap();
        }
        fs::write(
            d.path().join(CONFIG_FILE),
            r#"
sources = ["src/bpf/**/*.bpf.c"]
objects = ["build/*.o"]
include-dirs = ["inc"]
defines = ["DEBUG=1"]
clang = "clang-19"
cflags = ["-Wall"]
cases = ["tests/bpf"]
snapshots = "tests/bpf/snaps"
kernels = ["6.1", "host"]
lock-file = "ci/kernels.lock"

[[override]]
sources = ["src/bpf/legacy/*.bpf.c"]
cflags = ["-Wno-unused"]
defines = ["LEGACY"]
"#,
        )
        .unwrap();
        let root = d.path();
        let p = Project::load(root, &root.join("target")).unwrap();
        assert_eq!(p.build.sources[0].pattern, "src/bpf/**/*.bpf.c");
        assert_eq!(p.build.sources[0].written.as_ref().unwrap().line, 2);
        assert_eq!(p.build.objects[0].pattern, "build/*.o");
        assert_eq!(p.build.include_dirs, [root.join("inc")]);
        assert_eq!(p.build.clang, Some(PathBuf::from("clang-19")));
        assert_eq!(p.cases_dirs, [root.join("tests/bpf")]);
        assert_eq!(p.snapshots_dir, root.join("tests/bpf/snaps"));
        assert_eq!(p.lock_file, root.join("ci/kernels.lock"));
        let k = p.kernels.as_ref().unwrap();
        assert_eq!((k.list.as_str(), k.written.line), ("6.1,host", 10));
        let (legacy, inc) = p
            .build
            .flags_for(root, &root.join("src/bpf/legacy/old.bpf.c"))
            .unwrap();
        assert_eq!(legacy, ["-Wall", "-DDEBUG=1", "-Wno-unused", "-DLEGACY"]);
        assert_eq!(inc, [root.join("inc")]);
        let (modern, _) = p
            .build
            .flags_for(root, &root.join("src/bpf/new.bpf.c"))
            .unwrap();
        assert_eq!(modern, ["-Wall", "-DDEBUG=1"]);
    }

    #[test]
    fn globs_stay_within_directories_unless_double_starred() {
        let d = tempfile::tempdir().unwrap();
        for f in [
            "src/a.bpf.c",
            "src/deep/b.bpf.c",
            "src/c.h",
            "target/x.bpf.c",
        ] {
            let p = d.path().join(f);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, "").unwrap();
        }
        let names = |pattern: &str| -> Vec<String> {
            PathGlob::default_for(pattern)
                .expand(d.path())
                .unwrap()
                .iter()
                .map(|p| p.strip_prefix(d.path()).unwrap().display().to_string())
                .collect()
        };
        assert_eq!(names("src/*.bpf.c"), ["src/a.bpf.c"]);
        assert_eq!(names("src/**/*.bpf.c"), ["src/a.bpf.c", "src/deep/b.bpf.c"]);
        assert_eq!(names("**/*.bpf.c"), ["src/a.bpf.c", "src/deep/b.bpf.c"]);
        assert_eq!(names("src/c.h"), ["src/c.h"]);
        assert!(
            names("nowhere/*.c").is_empty(),
            "a default may match nothing"
        );
        let written = PathGlob {
            pattern: "nowhere/*.c".into(),
            written: Some(Location {
                file: "ebpf-harness.toml".into(),
                line: 4,
            }),
        };
        let msg = written.expand(d.path()).unwrap_err().to_string();
        assert!(
            msg.starts_with("ebpf-harness.toml:4: `nowhere/*.c` matches no file"),
            "{msg}"
        );
    }

    #[test]
    fn the_root_is_the_nearest_configured_directory() {
        let d = tempfile::tempdir().unwrap();
        let deep = d.path().join("a/b/c");
        fs::create_dir_all(&deep).unwrap();
        fs::write(d.path().join("Cargo.toml"), "[workspace]\n").unwrap();
        assert_eq!(find_root(&deep).unwrap(), d.path());
        fs::write(d.path().join("a").join(CONFIG_FILE), "").unwrap();
        assert_eq!(find_root(&deep).unwrap(), d.path().join("a"));
    }
}
