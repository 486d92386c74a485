//! The committed lock file (`kernels.lock`) pinning one Debian package per line.

use std::fmt;
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use harness_protocol::KernelVersion;

use crate::error::KernelError;

const HEADER: &str = "\
# The kernels the harness boots, one per kernel line: Debian packages
# (`kernels update`) and images (`kernels pin`). Do not edit by hand.
";

/// The contents of the lock file. Kernels are kept sorted by line.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockFile {
    /// One entry per line, written as `[[kernel]]` tables.
    #[serde(rename = "kernel", default)]
    pub kernels: Vec<LockedKernel>,
    /// Kernels from OCI images or URLs, written as `[[image]]` tables.
    #[serde(rename = "image", default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<LockedImage>,
}

/// A kernel image pinned by digest: from an OCI image (the layout of
/// cilium/ebpf's ci-kernels: the kernel at `/boot/vmlinuz`), or a bzImage
/// at a URL or path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedImage {
    pub line: KernelVersion,
    /// An OCI reference with its registry: `ghcr.io/cilium/ci-kernels:5.15`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oci: Option<String>,
    /// The manifest digest `oci` resolved to: `sha256:...`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// An http(s) or file URL, or a path, of a bzImage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The bzImage's sha256, lowercase hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// Where a [`LockedImage`] comes from, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageSource {
    Oci {
        reference: crate::OciReference,
        digest: crate::Sha256Digest,
    },
    Url {
        url: String,
        sha256: crate::Sha256Digest,
    },
}

impl fmt::Display for ImageSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Oci { reference, digest } => write!(f, "{reference} ({digest})"),
            Self::Url { url, sha256 } => write!(f, "{url} ({sha256})"),
        }
    }
}

impl LockedImage {
    /// The source, or what is wrong with the entry.
    pub fn source(&self) -> Result<ImageSource, String> {
        match (&self.oci, &self.digest, &self.url, &self.sha256) {
            (Some(oci), Some(digest), None, None) => Ok(ImageSource::Oci {
                reference: oci.parse().map_err(|e| format!("oci: {e}"))?,
                digest: digest.parse().map_err(|e| format!("digest: {e}"))?,
            }),
            (None, None, Some(url), Some(sha256)) => Ok(ImageSource::Url {
                url: url.clone(),
                sha256: crate::Sha256Digest::from_hex(sha256)
                    .map_err(|e| format!("sha256: {e}"))?,
            }),
            _ => Err(
                "expected either `oci` and `digest` (sha256:...) or `url` and `sha256` (hex)"
                    .to_owned(),
            ),
        }
    }
}

/// One pinned kernel package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedKernel {
    /// The line, e.g. `6.1`.
    pub line: KernelVersion,
    /// The suite it was found in, e.g. `bookworm`.
    pub suite: String,
    /// The package name, e.g. `linux-image-6.1.0-50-cloud-amd64-unsigned`.
    pub package: String,
    /// The package's Debian version.
    pub version: String,
    /// Path of the .deb relative to the mirror root (`pool/main/...`).
    pub filename: String,
    /// Size of the .deb in bytes.
    pub size: u64,
    /// sha256 of the .deb, lowercase hex.
    pub sha256: String,
    /// The kernel's `uname -r`, e.g. `6.1.0-50-cloud-amd64`.
    pub release: String,
    /// The package holding the kernel's build config, pinned where the
    /// kernel's own package lacks it (the split `linux-binary-*` packages,
    /// whose config is in `linux-base-<release>`). Written as a
    /// `[kernel.config_package]` table; absent for the other lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_package: Option<PinnedPackage>,
}

/// A package pinned beside a kernel, e.g. the one holding its config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PinnedPackage {
    /// The package name, e.g. `linux-base-7.2.13+deb14-cloud-amd64`.
    pub package: String,
    /// The package's Debian version.
    pub version: String,
    /// Path of the .deb relative to the mirror root (`pool/main/...`).
    pub filename: String,
    /// Size of the .deb in bytes.
    pub size: u64,
    /// sha256 of the .deb, lowercase hex.
    pub sha256: String,
}

impl LockFile {
    /// Reads and checks the lock file at `path`.
    pub fn load(path: &Path) -> Result<LockFile, KernelError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(KernelError::LockMissing {
                    path: path.to_owned(),
                });
            }
            Err(e) => return Err(KernelError::io("read", path, e)),
        };
        Self::parse(&text, path)
    }

    /// Parses lock file text; `path` is only used in errors.
    pub fn parse(text: &str, path: &Path) -> Result<LockFile, KernelError> {
        let mut lock: LockFile = toml::from_str(text).map_err(|e| {
            let (line, column) = e
                .span()
                .map_or((1, 1), |span| line_column(text, span.start));
            KernelError::LockSyntax {
                path: path.to_owned(),
                line,
                column,
                message: e.message().to_owned(),
            }
        })?;
        lock.validate()
            .map_err(|message| KernelError::LockInvalid {
                path: path.to_owned(),
                message,
            })?;
        lock.sort();
        Ok(lock)
    }

    /// Writes the lock file atomically (temporary file, then rename), so a
    /// crash never leaves half a lock file behind.
    pub fn save(&self, path: &Path) -> Result<(), KernelError> {
        let mut sorted = self.clone();
        sorted.sort();
        let body = toml::to_string(&sorted).map_err(|e| KernelError::LockInvalid {
            path: path.to_owned(),
            message: format!("cannot be written: {e}"),
        })?;
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        let mut temp = tempfile::NamedTempFile::new_in(dir)
            .map_err(|e| KernelError::io("create a temporary file in", dir, e))?;
        temp.write_all(HEADER.as_bytes())
            .and_then(|()| temp.write_all(b"\n"))
            .and_then(|()| temp.write_all(body.as_bytes()))
            .and_then(|()| temp.as_file().sync_all())
            .map_err(|e| KernelError::io("write", temp.path(), e))?;
        temp.persist(path)
            .map_err(|e| KernelError::io("replace", path, e.error))?;
        Ok(())
    }

    /// The kernel pinned for `line`.
    pub fn get(&self, line: KernelVersion) -> Option<&LockedKernel> {
        self.kernels.iter().find(|k| k.line == line)
    }

    /// The kernel pinned for `line`, or an error telling to update the lock
    /// file at `path`.
    pub fn require(&self, line: KernelVersion, path: &Path) -> Result<&LockedKernel, KernelError> {
        self.get(line).ok_or_else(|| KernelError::NotLocked {
            path: path.to_owned(),
            line,
        })
    }

    /// Adds `kernel`, replacing the entry of the same line.
    pub fn insert(&mut self, kernel: LockedKernel) {
        self.kernels.retain(|k| k.line != kernel.line);
        self.images.retain(|k| k.line != kernel.line);
        self.kernels.push(kernel);
        self.sort();
    }

    /// The image pinned for `line`, if one is.
    pub fn image(&self, line: KernelVersion) -> Option<&LockedImage> {
        self.images.iter().find(|k| k.line == line)
    }

    /// Adds `image`, replacing what was pinned for its line.
    pub fn insert_image(&mut self, image: LockedImage) {
        self.kernels.retain(|k| k.line != image.line);
        self.images.retain(|k| k.line != image.line);
        self.images.push(image);
        self.sort();
    }

    fn sort(&mut self) {
        self.kernels.sort_by_key(|k| k.line);
        self.images.sort_by_key(|k| k.line);
    }

    fn validate(&self) -> Result<(), String> {
        for (i, k) in self.kernels.iter().enumerate() {
            let entry = format!("kernel {} ({})", k.line, k.package);
            if self.kernels[..i].iter().any(|other| other.line == k.line) {
                return Err(format!("line {} is pinned twice", k.line));
            }
            k.check().map_err(|problem| format!("{entry}: {problem}"))?;
        }
        for (i, k) in self.images.iter().enumerate() {
            if self.images[..i].iter().any(|other| other.line == k.line)
                || self.get(k.line).is_some()
            {
                return Err(format!("line {} is pinned twice", k.line));
            }
            k.source()
                .map_err(|problem| format!("image {}: {problem}", k.line))?;
        }
        Ok(())
    }
}

impl LockedKernel {
    /// Checks the fields that end up in URLs and cache paths, so a bad entry
    /// cannot point outside the mirror or the cache.
    pub(crate) fn check(&self) -> Result<(), String> {
        check_file(&self.sha256, &self.filename)?;
        let bad_release =
            self.release.is_empty() || self.release.contains('/') || self.release.starts_with('.');
        if bad_release {
            return Err(format!(
                "release `{}` is not a kernel release",
                self.release
            ));
        }
        check_not_empty(&[
            ("suite", &self.suite),
            ("package", &self.package),
            ("version", &self.version),
        ])?;
        if let Some(config) = &self.config_package {
            config
                .check()
                .map_err(|problem| format!("config_package {}: {problem}", config.package))?;
        }
        Ok(())
    }

    /// The kernel's own package, as a [`PinnedPackage`].
    pub(crate) fn kernel_package(&self) -> PinnedPackage {
        PinnedPackage {
            package: self.package.clone(),
            version: self.version.clone(),
            filename: self.filename.clone(),
            size: self.size,
            sha256: self.sha256.clone(),
        }
    }
}

impl PinnedPackage {
    /// Like [`LockedKernel::check`].
    pub(crate) fn check(&self) -> Result<(), String> {
        check_file(&self.sha256, &self.filename)?;
        check_not_empty(&[("package", &self.package), ("version", &self.version)])
    }
}

/// Checks a pinned .deb's sha256 (a cache file name) and filename (a URL path).
fn check_file(sha256: &str, filename: &str) -> Result<(), String> {
    if !is_sha256(sha256) {
        return Err(format!("sha256 `{sha256}` is not 64 lowercase hex digits"));
    }
    let bad_filename = filename.is_empty()
        || filename.starts_with('/')
        || filename.contains("://")
        || filename
            .split('/')
            .any(|part| part.is_empty() || part == "." || part == "..");
    if bad_filename {
        return Err(format!(
            "filename `{filename}` is not a path inside the mirror"
        ));
    }
    Ok(())
}

fn check_not_empty(fields: &[(&str, &String)]) -> Result<(), String> {
    for (name, value) in fields {
        if value.trim().is_empty() {
            return Err(format!("{name} is empty"));
        }
    }
    Ok(())
}

pub(crate) fn is_sha256(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(line: &str) -> KernelVersion {
        line.parse().expect("a line")
    }

    fn kernel(line: &str) -> LockedKernel {
        LockedKernel {
            line: v(line),
            suite: "bookworm".to_owned(),
            package: format!("linux-image-{line}.0-50-cloud-amd64-unsigned"),
            version: "6.1.170-1".to_owned(),
            filename: format!("pool/main/l/linux/linux-image-{line}_amd64.deb"),
            size: 1234,
            sha256: "ab".repeat(32),
            release: format!("{line}.0-50-cloud-amd64"),
            config_package: None,
        }
    }

    /// A split 7.2 kernel with its config package pinned.
    fn split_kernel() -> LockedKernel {
        let release = "7.2.13+deb14-cloud-amd64";
        LockedKernel {
            line: v("7.2"),
            suite: "sid".to_owned(),
            package: format!("linux-binary-{release}"),
            version: "7.2.13-1".to_owned(),
            filename: format!(
                "pool/main/l/linux-signed-amd64/linux-binary-{release}_7.2.13-1_amd64.deb"
            ),
            size: 13_717_736,
            sha256: "03".repeat(32),
            release: release.to_owned(),
            config_package: Some(PinnedPackage {
                package: format!("linux-base-{release}"),
                version: "7.2.13-1".to_owned(),
                filename: format!("pool/main/l/linux/linux-base-{release}_7.2.13-1_amd64.deb"),
                size: 417_436,
                sha256: "c4".repeat(32),
            }),
        }
    }

    #[test]
    fn saves_sorted_with_header_and_loads_back() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("kernels.lock");
        let lock = LockFile {
            kernels: vec![kernel("7.2"), kernel("6.12"), kernel("5.10"), kernel("6.1")],
            ..LockFile::default()
        };
        lock.save(&path).expect("save");

        let text = std::fs::read_to_string(&path).expect("read back");
        assert!(
            text.starts_with("# The kernels the harness boots"),
            "{text}"
        );
        assert!(
            text.contains("(`kernels update`)") && !text.contains("[[image]]"),
            "{text}"
        );
        assert_eq!(text.matches("[[kernel]]").count(), 4, "{text}");
        let loaded = LockFile::load(&path).expect("load");
        let lines: Vec<String> = loaded.kernels.iter().map(|k| k.line.to_string()).collect();
        assert_eq!(lines, ["5.10", "6.1", "6.12", "7.2"]);
        assert_eq!(loaded.get(v("6.12")), Some(&kernel("6.12")));
        assert_eq!(loaded.get(v("4.19")), None);
        // Only the lock file is left: the temporary file was renamed, not copied.
        assert_eq!(std::fs::read_dir(dir.path()).expect("list").count(), 1);
    }

    #[test]
    fn a_config_package_is_a_table_of_its_kernel_and_optional() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("kernels.lock");
        let lock = LockFile {
            kernels: vec![kernel("6.1"), split_kernel()],
            ..LockFile::default()
        };
        lock.save(&path).expect("save");
        let text = std::fs::read_to_string(&path).expect("read back");
        assert_eq!(text.matches("[kernel.config_package]").count(), 1, "{text}");
        // The table follows the 7.2 entry, the 6.1 entry has none.
        let (before, after) = text.split_once("line = \"7.2\"").expect("7.2 entry");
        assert!(!before.contains("config_package"), "{text}");
        assert!(
            after.contains(
                "[kernel.config_package]\npackage = \"linux-base-7.2.13+deb14-cloud-amd64\"\n"
            ),
            "{text}"
        );
        assert_eq!(LockFile::load(&path).expect("load"), lock);

        // A lock file written before config packages existed is still valid.
        let old = "[[kernel]]\nline = \"7.2\"\nsuite = \"sid\"\npackage = \"linux-binary-7.2.13+deb14-cloud-amd64\"\n\
                   version = \"7.2.13-1\"\nfilename = \"pool/main/x.deb\"\nsize = 1\nsha256 = \"0000000000000000000000000000000000000000000000000000000000000000\"\n\
                   release = \"7.2.13+deb14-cloud-amd64\"\n";
        let loaded = LockFile::parse(old, Path::new("k.lock")).expect("old lock file");
        assert_eq!(loaded.kernels[0].config_package, None);
    }

    #[test]
    fn a_bad_config_package_names_file_line_or_entry() {
        let good = toml::to_string(&LockFile {
            kernels: vec![split_kernel()],
            ..LockFile::default()
        })
        .expect("serialize");
        let line_of = |text: &str, needle: &str| {
            1 + text
                .lines()
                .position(|l| l.starts_with(needle))
                .expect("needle")
        };

        let unknown = good.replace("size = 417436\n", "size = 417436\nflavour = \"rt\"\n");
        let err = LockFile::parse(&unknown, Path::new("k.lock")).expect_err("unknown key");
        let at = line_of(&unknown, "flavour");
        assert!(
            err.to_string().starts_with(&format!("k.lock:{at}:"))
                && err.to_string().contains("flavour"),
            "{err}"
        );

        let ill_typed = good.replace("size = 417436", "size = \"big\"");
        let err = LockFile::parse(&ill_typed, Path::new("k.lock")).expect_err("string size");
        let at = line_of(&ill_typed, "size = \"big\"");
        assert!(
            err.to_string().starts_with(&format!("k.lock:{at}:")),
            "{err}"
        );

        let missing = good.replace(&format!("sha256 = \"{}\"\n", "c4".repeat(32)), "");
        let err = LockFile::parse(&missing, Path::new("k.lock")).expect_err("no sha256");
        assert!(
            matches!(err, KernelError::LockSyntax { .. }) && err.to_string().contains("sha256"),
            "{err}"
        );

        let bad_hash = good.replace(&"c4".repeat(32), "C4");
        let err = LockFile::parse(&bad_hash, Path::new("k.lock"))
            .expect_err("bad sha256")
            .to_string();
        assert!(
            err.contains("kernel 7.2 (linux-binary-7.2.13+deb14-cloud-amd64)")
                && err.contains("config_package linux-base-7.2.13+deb14-cloud-amd64: sha256 `C4`"),
            "{err}"
        );
        let escaping = good.replace("pool/main/l/linux/linux-base", "../linux-base");
        let err = LockFile::parse(&escaping, Path::new("k.lock"))
            .expect_err("bad filename")
            .to_string();
        assert!(
            err.contains("config_package") && err.contains("not a path inside the mirror"),
            "{err}"
        );
    }

    #[test]
    fn insert_replaces_the_same_line() {
        let mut lock = LockFile {
            kernels: vec![kernel("6.1"), kernel("5.10")],
            ..LockFile::default()
        };
        let mut newer = kernel("6.1");
        newer.version = "6.1.171-1".to_owned();
        lock.insert(newer.clone());
        lock.insert(kernel("6.12"));
        assert_eq!(lock.kernels.len(), 3);
        assert_eq!(lock.kernels[1], newer);
        assert_eq!(
            lock.require(v("6.12"), Path::new("k.lock"))
                .expect("pinned")
                .line,
            v("6.12")
        );
        let err = lock
            .require(v("7.2"), Path::new("k.lock"))
            .expect_err("not pinned")
            .to_string();
        assert!(
            err.contains("k.lock pins no kernel for line 7.2") && err.contains("kernels update"),
            "{err}"
        );
    }

    #[test]
    fn missing_file_says_to_run_update() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("kernels.lock");
        let err = LockFile::load(&path).expect_err("missing");
        assert!(matches!(err, KernelError::LockMissing { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(
            msg.contains(&path.display().to_string()) && msg.contains("run `kernels update`"),
            "{msg}"
        );
    }

    #[test]
    fn malformed_toml_names_file_line_and_column() {
        let text = "# header\n[[kernel]]\nline = \"6.1\"\nsize = = 3\n";
        let err = LockFile::parse(text, Path::new("/repo/kernels.lock")).expect_err("malformed");
        let KernelError::LockSyntax { line, column, .. } = &err else {
            panic!("wrong error: {err:?}")
        };
        assert_eq!((*line, *column), (4, 8), "{err}");
        assert!(
            err.to_string().starts_with("/repo/kernels.lock:4:8: "),
            "{err}"
        );

        let bad_line = "[[kernel]]\nline = \"six\"\n";
        let err = LockFile::parse(bad_line, Path::new("k.lock")).expect_err("bad line");
        assert!(
            err.to_string().starts_with("k.lock:2:8: ")
                && err
                    .to_string()
                    .contains("`six` is not a kernel version like 6.1"),
            "{err}"
        );

        let unknown = "[[kernel]]\nline = \"6.1\"\nflavour = \"rt\"\n";
        let err = LockFile::parse(unknown, Path::new("k.lock")).expect_err("unknown field");
        assert!(matches!(err, KernelError::LockSyntax { .. }), "{err:?}");
        assert!(err.to_string().contains("flavour"), "{err}");
    }

    #[test]
    fn values_that_would_escape_the_cache_or_mirror_are_rejected() {
        type Spoil = fn(&mut LockedKernel);
        let cases: [(&str, Spoil); 5] = [
            ("sha256", |k| k.sha256 = "../../etc/passwd".to_owned()),
            ("sha256", |k| k.sha256 = "AB".repeat(32)),
            ("filename", |k| k.filename = "../outside.deb".to_owned()),
            ("filename", |k| {
                k.filename = "https://evil.example/x.deb".to_owned()
            }),
            ("release", |k| k.release = "../x".to_owned()),
        ];
        for (field, spoil) in cases {
            let mut k = kernel("6.1");
            spoil(&mut k);
            let text = toml::to_string(&LockFile {
                kernels: vec![k],
                ..LockFile::default()
            })
            .expect("serialize");
            let err = LockFile::parse(&text, Path::new("k.lock"))
                .expect_err(field)
                .to_string();
            assert!(err.contains(field) && err.contains("kernel 6.1"), "{err}");
        }
        let twice = toml::to_string(&LockFile {
            kernels: vec![kernel("6.1"), kernel("6.1")],
            ..LockFile::default()
        })
        .expect("serialize");
        let err = LockFile::parse(&twice, Path::new("k.lock"))
            .expect_err("duplicate")
            .to_string();
        assert!(err.contains("pinned twice"), "{err}");
    }
}
