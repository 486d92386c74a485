//! Turning `--kernel` requests into targets: what each kernel is and how it
//! boots. Pinned Debian kernels are fetched into the shared cache (verified),
//! images are read for their version, the host is asked for its release.
//! This is the one place a request meets the filesystem.

use std::{
    fmt,
    path::{Path, PathBuf},
};

use harness_events::{Event, EventSink};
use harness_protocol::KernelVersion;

use crate::{
    Cache, KernelError, KernelRequest, LockFile, Mirror, bzimage_version, lines::find_line,
    lock::LockedKernel,
};

/// One kernel a run happens on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// Unique within a run: the line (`6.1`), `host`, or the image's file
    /// name (with `-2`, `-3`, ... when two requests would share one). Output
    /// directories are named after it.
    pub label: String,
    /// The kernel's major.minor (from its line or its release); `None` for
    /// an image whose release does not start with one.
    pub version: Option<KernelVersion>,
    /// `uname -r` as far as it is known before booting.
    pub release: String,
    pub boot: Boot,
}

/// How a target runs the plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Boot {
    /// In a QEMU VM booting this image.
    Vm {
        bzimage: PathBuf,
        origin: Origin,
        /// The kernel's build config, when known: the guest gets it as
        /// `/boot/config-<release>`, where libbpf reads `__kconfig` values.
        config: Option<PathBuf>,
    },
    /// In-process on the running kernel (load and test_run only).
    Host,
}

/// Where a VM's kernel image came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    Debian {
        package: String,
        version: String,
    },
    Image {
        path: PathBuf,
    },
    /// An image the lock file pins (OCI or URL).
    Pinned {
        source: String,
    },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Debian { package, version } => write!(f, "{package} {version}"),
            Self::Image { path } => write!(f, "custom image {}", path.display()),
            Self::Pinned { source } => write!(f, "pinned image {source}"),
        }
    }
}

impl Target {
    /// The key of per-kernel snapshots and expectations: the version
    /// (`6.1`), or the label when the version is unknown.
    pub fn line(&self) -> String {
        self.version
            .map_or_else(|| self.label.clone(), |v| v.to_string())
    }

    pub fn bzimage(&self) -> Option<&Path> {
        match &self.boot {
            Boot::Vm { bzimage, .. } => Some(bzimage),
            Boot::Host => None,
        }
    }

    pub fn is_host(&self) -> bool {
        self.boot == Boot::Host
    }
}

/// What resolution needs besides the requests.
pub struct Resolver<'a> {
    /// The project's `kernels.lock`.
    pub lock_file: &'a Path,
    /// `--debian-mirror`, else `HARNESS_DEBIAN_MIRROR`, else apt's sources.
    pub mirror: Option<&'a str>,
    pub cache: &'a Cache,
    pub events: &'a dyn EventSink,
}

impl Resolver<'_> {
    /// Resolves every request, in order. The lock file and the mirror are
    /// read only when a Debian line is asked for.
    pub fn resolve(&self, requests: &[KernelRequest]) -> Result<Vec<Target>, KernelError> {
        let mut lock: Option<LockFile> = None;
        let mut mirror: Option<Mirror> = None;
        let mut targets: Vec<Target> = Vec::new();
        for request in requests {
            let mut target = match request {
                KernelRequest::Host => host(),
                KernelRequest::Image(path) => image(path)?,
                KernelRequest::Line(line) => {
                    let lock = match &mut lock {
                        Some(lock) => lock,
                        None => lock.insert(self.load_lock(*line)?),
                    };
                    if let Some(pinned) = lock.image(*line) {
                        let pinned = pinned.clone();
                        self.pinned(&pinned)?
                    } else {
                        if find_line(*line).is_none() {
                            return Err(KernelError::UnknownLine {
                                line: line.to_string(),
                            });
                        }
                        let locked = lock.require(*line, self.lock_file)?;
                        let mirror = match &mut mirror {
                            Some(m) => m,
                            None => mirror.insert(Mirror::resolve(self.mirror)?),
                        };
                        self.debian(locked, mirror)?
                    }
                }
            };
            target.label = unique_label(&target.label, &targets);
            if let Boot::Vm { origin, .. } = &target.boot {
                self.events.event(Event::KernelResolved {
                    label: target.label.clone(),
                    origin: origin.to_string(),
                });
            }
            targets.push(target);
        }
        Ok(targets)
    }

    /// The lock file; a line outside Debian without one is unknown, not a
    /// missing lock file.
    fn load_lock(&self, line: KernelVersion) -> Result<LockFile, KernelError> {
        match LockFile::load(self.lock_file) {
            Err(KernelError::LockMissing { .. }) if find_line(line).is_none() => {
                Err(KernelError::UnknownLine {
                    line: line.to_string(),
                })
            }
            other => other,
        }
    }

    /// A pinned image, fetched into the cache; its version is read from it.
    pub(crate) fn pinned(&self, pinned: &crate::LockedImage) -> Result<Target, KernelError> {
        let source = pinned.source().map_err(|message| KernelError::ImageEntry {
            path: self.lock_file.to_owned(),
            line: pinned.line,
            message,
        })?;
        let bzimage = self.cache.image(&source, self.events)?;
        let mut target = image(&bzimage)?;
        if let Some(found) = target.version.filter(|v| *v != pinned.line) {
            return Err(KernelError::ImageEntry {
                path: self.lock_file.to_owned(),
                line: pinned.line,
                message: format!(
                    "{source} holds a {found} kernel ({}), not {}: pin it as {found}",
                    target.release, pinned.line
                ),
            });
        }
        target.label = pinned.line.to_string();
        // The line it is pinned as keys its snapshots, as a Debian line's.
        target.version = Some(pinned.line);
        target.boot = Boot::Vm {
            bzimage,
            config: None,
            origin: Origin::Pinned {
                source: source.to_string(),
            },
        };
        Ok(target)
    }

    fn debian(&self, locked: &LockedKernel, mirror: &Mirror) -> Result<Target, KernelError> {
        let image = self.cache.kernel(locked, mirror, self.events)?;
        Ok(Target {
            label: locked.line.to_string(),
            version: Some(locked.line),
            release: image.release,
            boot: Boot::Vm {
                bzimage: image.bzimage,
                config: image.config,
                origin: Origin::Debian {
                    package: locked.package.clone(),
                    version: locked.version.clone(),
                },
            },
        })
    }
}

fn host() -> Target {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_owned();
    Target {
        label: "host".into(),
        version: KernelVersion::from_release(&release),
        release,
        boot: Boot::Host,
    }
}

fn image(path: &Path) -> Result<Target, KernelError> {
    check_image_path(path)?;
    let version = bzimage_version(path)?;
    let release = version
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned();
    Ok(Target {
        label: path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        ),
        version: KernelVersion::from_release(&release),
        release,
        boot: Boot::Vm {
            bzimage: path.to_owned(),
            config: None,
            origin: Origin::Image {
                path: path.to_owned(),
            },
        },
    })
}

/// A missing image is a typo in a path, or a word that is neither a line,
/// `host`, nor a file: say which.
fn check_image_path(path: &Path) -> Result<(), KernelError> {
    let text = path.to_string_lossy();
    let looks_like_path = text.contains('/') || text.starts_with(['.', '~']);
    match path.metadata() {
        Ok(meta) if meta.is_dir() => Err(KernelError::ImageIsDirectory {
            path: path.to_owned(),
        }),
        Ok(_) => Ok(()),
        Err(_) if looks_like_path => Err(KernelError::ImageNotFound {
            path: path.to_owned(),
        }),
        Err(_) => Err(KernelError::NotAKernel {
            value: text.into_owned(),
        }),
    }
}

/// `label`, or `label-2`, `label-3`, ... when an earlier target has it, so
/// two kernels never share an output directory.
fn unique_label(label: &str, taken: &[Target]) -> String {
    let used = |l: &str| taken.iter().any(|t| t.label == l);
    if !used(label) {
        return label.to_owned();
    }
    (2..)
        .map(|n| format!("{label}-{n}"))
        .find(|l| !used(l))
        .expect("some suffix is free")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_kernel_list;

    fn resolve(arg: &str) -> Result<Vec<Target>, KernelError> {
        let dir = tempfile::tempdir().unwrap();
        Resolver {
            lock_file: &dir.path().join("kernels.lock"),
            mirror: None,
            cache: &Cache::new(dir.path()),
            events: &harness_events::Silent,
        }
        .resolve(&parse_kernel_list(arg)?)
    }

    #[test]
    fn missing_paths_directories_and_nonsense_are_named() {
        let dir = tempfile::tempdir().expect("temp dir");
        let missing = dir.path().join("no-such-bzImage");
        let err = resolve(&missing.display().to_string()).expect_err("missing");
        assert!(
            matches!(&err, KernelError::ImageNotFound { path } if *path == missing),
            "{err:?}"
        );
        assert!(err.to_string().contains(&missing.display().to_string()));

        let err = resolve("./nope").expect_err("relative missing path");
        assert!(
            err.to_string()
                .contains("kernel image ./nope does not exist"),
            "{err}"
        );

        let err = resolve(&dir.path().display().to_string()).expect_err("directory");
        assert!(
            matches!(err, KernelError::ImageIsDirectory { .. }),
            "{err:?}"
        );

        let err = resolve("latest").expect_err("not a kernel");
        assert!(
            matches!(&err, KernelError::NotAKernel { value } if value == "latest"),
            "{err:?}"
        );
        assert!(err.to_string().contains("`host`"), "{err}");
    }

    #[test]
    fn the_host_is_keyed_by_its_release() {
        let targets = resolve("host").unwrap();
        let host = &targets[0];
        assert_eq!((host.label.as_str(), host.is_host()), ("host", true));
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
        assert_eq!(host.release, release.trim());
        assert_eq!(host.version, KernelVersion::from_release(release.trim()));
        assert_eq!(host.line(), host.version.unwrap().to_string());
    }

    #[test]
    fn labels_are_unique_within_a_run() {
        let vm = |label: &str| Target {
            label: label.into(),
            version: None,
            release: String::new(),
            boot: Boot::Host,
        };
        let taken = [vm("bzImage"), vm("bzImage-2"), vm("6.12")];
        assert_eq!(unique_label("bzImage", &taken), "bzImage-3");
        assert_eq!(unique_label("6.12", &taken), "6.12-2");
        assert_eq!(unique_label("6.1", &taken), "6.1");
        // Without a version, snapshots key by the label.
        assert_eq!(vm("my-kernel").line(), "my-kernel");
    }
}
