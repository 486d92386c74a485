//! The on-disk cache of downloaded packages and unpacked kernels, shared by
//! concurrent runs.
//!
//! Layout under the root, everything keyed by a pinned .deb's sha256 (the
//! kernel's, or for `debs/` also that of the package holding its config):
//!
//! ```text
//! debs/<sha256>.deb                 verified download
//! debs/<sha256>.deb.part-XXXXXX     download in progress (or left by a crash)
//! kernels/<sha256>/                 vmlinuz, config (if any), manifest.json
//! kernels/<sha256>.unpack-XXXXXX/   unpacking in progress (or left by a crash)
//! locks/<sha256>.lock               held while one run fetches or unpacks it
//! ```
//!
//! The config comes from the kernel's own package or, where the lock file
//! pins one, from its config package; `manifest.json` records which. A
//! kernel unpacked before its config package was pinned gets the config
//! added in place, without fetching the kernel again.
//!
//! Files only appear under their final names by rename, so a reader never
//! sees half a file; what a crash leaves behind has a temporary name and is
//! removed by the next run that takes the lock.

use std::ffi::OsString;
use std::fs::{self, File, TryLockError};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::deb::{extract_config, extract_kernel, sha256_file};
use crate::error::KernelError;
use crate::http::{GetError, Http};
use crate::lock::{LockedKernel, PinnedPackage};
use crate::mirror::Mirror;
use harness_events::{Event, EventSink};

/// The environment variable that overrides the cache location.
pub const CACHE_ENV: &str = "HARNESS_CACHE_DIR";

const MANIFEST: &str = "manifest.json";

/// The shared cache of kernel downloads and unpacked kernels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cache {
    root: PathBuf,
}

/// How far a pinned kernel is in the cache (for `cargo xtask kernels list`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheStatus {
    /// Not downloaded.
    Missing,
    /// The kernel's .deb is there, not unpacked; or the kernel is unpacked
    /// but lacks the config its pinned config package holds. Either way the
    /// next use finishes it without downloading the kernel again.
    Downloaded,
    /// The kernel is unpacked and ready.
    Unpacked,
}

/// An unpacked kernel, ready to boot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelImage {
    /// The line, e.g. `6.1`.
    pub line: harness_protocol::KernelVersion,
    /// The kernel's `uname -r`.
    pub release: String,
    /// The Debian version of the package it came from.
    pub package_version: String,
    /// The bzImage.
    pub bzimage: PathBuf,
    /// The kernel's build config, when its package or its pinned config
    /// package ships one.
    pub config: Option<PathBuf>,
}

/// What was unpacked, recorded so later runs can check the files cheaply.
#[derive(Debug, Serialize, Deserialize)]
struct Manifest {
    package: String,
    version: String,
    release: String,
    deb_sha256: String,
    vmlinuz_sha256: String,
    config_sha256: Option<String>,
    /// sha256 of the .deb the config came from: the kernel's own, or its
    /// config package. Manifests written before config packages existed lack
    /// it; their config, if any, came from the kernel's own .deb.
    #[serde(default)]
    config_deb_sha256: Option<String>,
}

impl Manifest {
    fn read(dir: &Path) -> Result<Manifest, String> {
        let text =
            fs::read(dir.join(MANIFEST)).map_err(|e| format!("cannot read {MANIFEST}: {e}"))?;
        serde_json::from_slice(&text).map_err(|e| format!("{MANIFEST} is malformed: {e}"))
    }

    /// Whether the config recorded here is the one `locked` calls for: there
    /// is one if a config package is pinned, and it came from the kernel's
    /// own .deb or from the pinned config package.
    fn config_is_current(&self, locked: &LockedKernel) -> bool {
        let Some(_) = &self.config_sha256 else {
            return locked.config_package.is_none();
        };
        let source = self.config_deb_sha256.as_ref().unwrap_or(&self.deb_sha256);
        *source == locked.sha256
            || locked
                .config_package
                .as_ref()
                .is_some_and(|p| p.sha256 == *source)
    }
}

/// An unpacked kernel found in the cache.
enum Found {
    /// Intact and complete.
    Ready(KernelImage),
    /// Intact, but its config is not the one the lock file calls for (it
    /// was unpacked before its config package was pinned).
    ConfigToRedo(Manifest),
}

impl Cache {
    /// A cache rooted at `root` (created on first use).
    pub fn new(root: impl Into<PathBuf>) -> Cache {
        Cache { root: root.into() }
    }

    /// `$HARNESS_CACHE_DIR`, else `$XDG_CACHE_HOME/ebpf-harness`, else
    /// `~/.cache/ebpf-harness`.
    pub fn default_root() -> PathBuf {
        default_root_from(
            std::env::var_os(CACHE_ENV),
            std::env::var_os("XDG_CACHE_HOME"),
            std::env::var_os("HOME"),
        )
    }

    /// The cache directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// How far `locked` is in the cache. Cheap: it does not hash anything.
    pub fn status(&self, locked: &LockedKernel) -> CacheStatus {
        if locked.check().is_err() {
            return CacheStatus::Missing;
        }
        let dir = self.kernel_dir(locked);
        if dir.join(MANIFEST).is_file() {
            match Manifest::read(&dir) {
                Ok(manifest) if !manifest.config_is_current(locked) => CacheStatus::Downloaded,
                // A malformed manifest is found out (and repaired) on use.
                _ => CacheStatus::Unpacked,
            }
        } else if fs::metadata(self.deb_path(&locked.sha256)).is_ok_and(|m| m.len() == locked.size)
        {
            CacheStatus::Downloaded
        } else {
            CacheStatus::Missing
        }
    }

    /// The unpacked kernel pinned by `locked`, downloading and unpacking it
    /// first if needed. Corrupt cache contents are noted and fetched again.
    pub fn kernel(
        &self,
        locked: &LockedKernel,
        mirror: &Mirror,
        events: &dyn EventSink,
    ) -> Result<KernelImage, KernelError> {
        locked.check().map_err(|message| KernelError::BadPin {
            package: locked.package.clone(),
            message,
        })?;
        for dir in ["debs", "kernels", "locks"] {
            let dir = self.root.join(dir);
            fs::create_dir_all(&dir).map_err(|e| KernelError::io("create directory", &dir, e))?;
        }
        // Held until the end of this function (dropping the file unlocks it).
        let _lock = self.lock(locked, events)?;

        match self.unpacked(locked, events)? {
            Some(Found::Ready(image)) => Ok(image),
            Some(Found::ConfigToRedo(manifest)) => {
                self.remove_leftovers(locked);
                self.redo_config(locked, manifest, mirror, events)
            }
            None => {
                self.remove_leftovers(locked);
                let deb = self.deb(&locked.kernel_package(), mirror, events)?;
                self.unpack(locked, &deb, mirror, events)
            }
        }
    }

    /// The bzImage a pinned image source names, fetched (every digest
    /// checked, written atomically) into `images/` the first time.
    pub fn image(
        &self,
        source: &crate::ImageSource,
        events: &dyn EventSink,
    ) -> Result<PathBuf, KernelError> {
        let dir = match source {
            crate::ImageSource::Oci { digest, .. } => format!("oci-{}", digest.hex()),
            crate::ImageSource::Url { sha256, .. } => format!("url-{}", sha256.hex()),
        };
        let dest = self.root.join("images").join(dir).join("bzImage");
        if dest.is_file() {
            return Ok(dest);
        }
        match source {
            crate::ImageSource::Oci { reference, digest } => {
                crate::fetch_kernel(reference, Some(digest), &dest, events)?;
            }
            crate::ImageSource::Url { url, sha256 } => {
                crate::fetch_url(url, sha256, &dest, events)?;
            }
        }
        Ok(dest)
    }

    fn deb_path(&self, sha256: &str) -> PathBuf {
        self.root.join("debs").join(format!("{sha256}.deb"))
    }

    fn kernel_dir(&self, locked: &LockedKernel) -> PathBuf {
        self.root.join("kernels").join(&locked.sha256)
    }

    /// Takes the per-kernel lock, telling the user when another run holds it.
    fn lock(&self, locked: &LockedKernel, events: &dyn EventSink) -> Result<File, KernelError> {
        let path = self
            .root
            .join("locks")
            .join(format!("{}.lock", locked.sha256));
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| KernelError::io("open lock file", &path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                events.event(Event::Note {
                    message: format!(
                        "waiting for another run to finish fetching {} {}",
                        locked.package, locked.version
                    ),
                });
                file.lock().map_err(|e| KernelError::io("lock", &path, e))?;
            }
            Err(TryLockError::Error(e)) => return Err(KernelError::io("lock", &path, e)),
        }
        Ok(file)
    }

    /// The already unpacked kernel if it is intact; a corrupt one is removed.
    fn unpacked(
        &self,
        locked: &LockedKernel,
        events: &dyn EventSink,
    ) -> Result<Option<Found>, KernelError> {
        let dir = self.kernel_dir(locked);
        if !dir.exists() {
            return Ok(None);
        }
        match self.verify_unpacked(locked, &dir) {
            Ok(found) => Ok(Some(found)),
            Err(why) => {
                events.event(Event::Note {
                    message: format!(
                        "cached kernel {} was corrupt ({why}); fetching it again",
                        dir.display()
                    ),
                });
                fs::remove_dir_all(&dir)
                    .map_err(|e| KernelError::io("remove corrupt directory", &dir, e))?;
                Ok(None)
            }
        }
    }

    fn verify_unpacked(&self, locked: &LockedKernel, dir: &Path) -> Result<Found, String> {
        let manifest = Manifest::read(dir)?;
        if manifest.deb_sha256 != locked.sha256 || manifest.release != locked.release {
            return Err(format!(
                "{MANIFEST} describes {} {}",
                manifest.package, manifest.release
            ));
        }
        check_hash(&dir.join("vmlinuz"), &manifest.vmlinuz_sha256)?;
        if !manifest.config_is_current(locked) {
            return Ok(Found::ConfigToRedo(manifest));
        }
        if let Some(expected) = &manifest.config_sha256 {
            check_hash(&dir.join("config"), expected)?;
        }
        Ok(Found::Ready(image(
            locked,
            dir,
            manifest.config_sha256.is_some(),
        )))
    }

    /// Gives an intact unpacked kernel the config the lock file calls for,
    /// from its config package, without touching the kernel: the config and
    /// then the manifest are renamed into place, so a crash in between
    /// leaves a manifest that still asks for the config.
    fn redo_config(
        &self,
        locked: &LockedKernel,
        mut manifest: Manifest,
        mirror: &Mirror,
        events: &dyn EventSink,
    ) -> Result<KernelImage, KernelError> {
        let dir = self.kernel_dir(locked);
        let temp = self.unpack_dir(locked)?;
        match &locked.config_package {
            Some(package) => {
                let lacks = if manifest.config_sha256.is_some() {
                    "has the build config of another package"
                } else {
                    "has no build config"
                };
                events.event(Event::Note {
                    message: format!(
                        "cached kernel {} {} {lacks}; fetching it from {} {}",
                        locked.package, locked.version, package.package, package.version
                    ),
                });
                let deb = self.deb(package, mirror, events)?;
                let sha256 = extract_config(&deb, &package.package, &locked.release, temp.path())?;
                manifest.config_sha256 = Some(sha256);
                manifest.config_deb_sha256 = Some(package.sha256.clone());
            }
            // The config came from a config package the lock file no longer
            // pins, and the kernel's own package has none.
            None => {
                manifest.config_sha256 = None;
                manifest.config_deb_sha256 = None;
            }
        }
        let manifest_path = temp.path().join(MANIFEST);
        let json = serde_json::to_vec_pretty(&manifest)
            .map_err(|e| KernelError::io("write", &manifest_path, e.into()))?;
        write_synced(&manifest_path, &json)?;
        share(temp.path(), SHARED_DIR)?;
        sync_dir(temp.path())?;

        let config = dir.join("config");
        if manifest.config_sha256.is_some() {
            fs::rename(temp.path().join("config"), &config)
                .map_err(|e| KernelError::io("rename into place", &config, e))?;
        } else {
            match fs::remove_file(&config) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(KernelError::io("remove", &config, e)),
            }
        }
        let final_manifest = dir.join(MANIFEST);
        fs::rename(&manifest_path, &final_manifest)
            .map_err(|e| KernelError::io("rename into place", &final_manifest, e))?;
        sync_dir(&dir)?;
        Ok(image(locked, &dir, manifest.config_sha256.is_some()))
    }

    /// A temporary directory to unpack into, named as a leftover of `locked`.
    fn unpack_dir(&self, locked: &LockedKernel) -> Result<tempfile::TempDir, KernelError> {
        let kernels = self.root.join("kernels");
        tempfile::Builder::new()
            .prefix(&format!("{}.unpack-", locked.sha256))
            .tempdir_in(&kernels)
            .map_err(|e| KernelError::io("create a temporary directory in", &kernels, e))
    }

    /// Removes temporary files and directories of this kernel that a crashed
    /// run left. Only called with the lock held, so nobody is writing them.
    fn remove_leftovers(&self, locked: &LockedKernel) {
        let mut places = vec![
            (
                self.root.join("debs"),
                format!("{}.deb.part-", locked.sha256),
            ),
            (
                self.root.join("kernels"),
                format!("{}.unpack-", locked.sha256),
            ),
        ];
        // Only this kernel's runs fetch its config package, under its lock.
        if let Some(package) = &locked.config_package {
            places.push((
                self.root.join("debs"),
                format!("{}.deb.part-", package.sha256),
            ));
        }
        for (dir, prefix) in places {
            let Ok(entries) = fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                if !entry.file_name().to_string_lossy().starts_with(&prefix) {
                    continue;
                }
                let path = entry.path();
                // Best effort: a leftover that cannot be removed is still never used.
                let _ = if path.is_dir() {
                    fs::remove_dir_all(&path)
                } else {
                    fs::remove_file(&path)
                };
            }
        }
    }

    /// The verified .deb of `package`, downloaded if missing or corrupt.
    fn deb(
        &self,
        package: &PinnedPackage,
        mirror: &Mirror,
        events: &dyn EventSink,
    ) -> Result<PathBuf, KernelError> {
        let path = self.deb_path(&package.sha256);
        if path.exists() {
            match check_size_and_hash(&path, package.size, &package.sha256) {
                Ok(()) => return Ok(path),
                Err(why) => {
                    events.event(Event::Note {
                        message: format!(
                            "cached package {} was corrupt ({why}); fetching it again",
                            path.display()
                        ),
                    });
                    fs::remove_file(&path)
                        .map_err(|e| KernelError::io("remove corrupt file", &path, e))?;
                }
            }
        }
        self.download(package, mirror, &path, events)?;
        Ok(path)
    }

    /// Streams the .deb into a temporary file next to `path`, hashing as it
    /// goes, and renames it into place only if size and sha256 match.
    fn download(
        &self,
        package: &PinnedPackage,
        mirror: &Mirror,
        path: &Path,
        events: &dyn EventSink,
    ) -> Result<(), KernelError> {
        let url = mirror.join(&package.filename);
        let dir = self.root.join("debs");
        let mut part = tempfile::Builder::new()
            .prefix(&format!("{}.deb.part-", package.sha256))
            .tempfile_in(&dir)
            .map_err(|e| KernelError::io("create a temporary file in", &dir, e))?;
        let part_path = part.path().to_owned();
        let mut hasher = Sha256::new();
        let what = format!("{} {}", package.package, package.version);
        let received = Http::new()
            .get(&url, &what, package.size, events, |chunk| {
                hasher.update(chunk);
                part.write_all(chunk)
                    .map_err(|e| KernelError::io("write", &part_path, e))
            })
            .map_err(|e| match e {
                GetError::NotFound => KernelError::PinnedPackageGone {
                    package: package.package.clone(),
                    version: package.version.clone(),
                    url: url.clone(),
                },
                GetError::Other(e) => e,
            })?;
        let actual_sha256 = hex::encode(hasher.finalize());
        if received != package.size || actual_sha256 != package.sha256 {
            // Dropping `part` deletes the temporary file.
            return Err(KernelError::ChecksumMismatch {
                url,
                what,
                expected_size: package.size,
                actual_size: received,
                expected_sha256: package.sha256.clone(),
                actual_sha256,
            });
        }
        part.as_file()
            .sync_all()
            .map_err(|e| KernelError::io("sync", &part_path, e))?;
        share(&part_path, SHARED_FILE)?;
        part.persist(path)
            .map_err(|e| KernelError::io("rename into place", path, e.error))?;
        sync_dir(&dir)
    }

    /// Unpacks the kernel, with its config from its own package or else from
    /// its pinned config package, into a temporary directory and renames it
    /// into place.
    fn unpack(
        &self,
        locked: &LockedKernel,
        deb: &Path,
        mirror: &Mirror,
        events: &dyn EventSink,
    ) -> Result<KernelImage, KernelError> {
        let kernels = self.root.join("kernels");
        let temp = self.unpack_dir(locked)?;
        let mut extracted = extract_kernel(deb, &locked.package, &locked.release, temp.path())?;
        let mut config_deb_sha256 = extracted
            .config_sha256
            .as_ref()
            .map(|_| locked.sha256.clone());
        if let (None, Some(package)) = (&extracted.config_sha256, &locked.config_package) {
            let config_deb = self.deb(package, mirror, events)?;
            extracted.config_sha256 = Some(extract_config(
                &config_deb,
                &package.package,
                &locked.release,
                temp.path(),
            )?);
            config_deb_sha256 = Some(package.sha256.clone());
        }
        let manifest = Manifest {
            package: locked.package.clone(),
            version: locked.version.clone(),
            release: locked.release.clone(),
            deb_sha256: locked.sha256.clone(),
            vmlinuz_sha256: extracted.vmlinuz_sha256,
            config_sha256: extracted.config_sha256,
            config_deb_sha256,
        };
        let manifest_path = temp.path().join(MANIFEST);
        let json = serde_json::to_vec_pretty(&manifest)
            .map_err(|e| KernelError::io("write", &manifest_path, e.into()))?;
        write_synced(&manifest_path, &json)?;
        // Temporary directories are private (0700); the cache is shared by a
        // team or CI user's group.
        share(temp.path(), SHARED_DIR)?;
        sync_dir(temp.path())?;

        let final_dir = self.kernel_dir(locked);
        // From here on a failure leaves a leftover for the next run to remove.
        let temp = temp.keep();
        fs::rename(&temp, &final_dir)
            .map_err(|e| KernelError::io("rename into place", &final_dir, e))?;
        sync_dir(&kernels)?;
        Ok(image(locked, &final_dir, manifest.config_sha256.is_some()))
    }
}

fn image(locked: &LockedKernel, dir: &Path, has_config: bool) -> KernelImage {
    KernelImage {
        line: locked.line,
        release: locked.release.clone(),
        package_version: locked.version.clone(),
        bzimage: dir.join("vmlinuz"),
        config: has_config.then(|| dir.join("config")),
    }
}

/// Checks that `path` has the sha256 `expected`.
fn check_hash(path: &Path, expected: &str) -> Result<(), String> {
    let name = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let actual = sha256_file(path).map_err(|e| format!("cannot read {name}: {e}"))?;
    if actual == expected {
        Ok(())
    } else {
        Err(format!("{name} has sha256 {actual}, expected {expected}"))
    }
}

/// Checks a cached .deb: size first (free), then sha256.
fn check_size_and_hash(path: &Path, size: u64, sha256: &str) -> Result<(), String> {
    let actual = fs::metadata(path)
        .map_err(|e| format!("cannot read it: {e}"))?
        .len();
    if actual != size {
        return Err(format!("it has {actual} bytes, expected {size}"));
    }
    check_hash(path, sha256)
}

/// Modes of what the cache publishes: readable by everyone who may share it.
const SHARED_FILE: u32 = 0o644;
const SHARED_DIR: u32 = 0o755;

/// Gives `path` (and, for a directory, every file in it) the shared modes.
fn share(path: &Path, mode: u32) -> Result<(), KernelError> {
    use std::os::unix::fs::PermissionsExt as _;
    let set = |p: &Path, mode| {
        fs::set_permissions(p, fs::Permissions::from_mode(mode))
            .map_err(|e| KernelError::io("set permissions of", p, e))
    };
    set(path, mode)?;
    if path.is_dir() {
        let entries = fs::read_dir(path).map_err(|e| KernelError::io("list", path, e))?;
        for entry in entries.flatten() {
            set(&entry.path(), SHARED_FILE)?;
        }
    }
    Ok(())
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), KernelError> {
    let mut file = File::create(path).map_err(|e| KernelError::io("create", path, e))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| KernelError::io("write", path, e))
}

/// Makes a rename in `dir` durable.
fn sync_dir(dir: &Path) -> Result<(), KernelError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| KernelError::io("sync directory", dir, e))
}

/// [`Cache::default_root`] with the environment passed in.
fn default_root_from(
    harness: Option<OsString>,
    xdg: Option<OsString>,
    home: Option<OsString>,
) -> PathBuf {
    let set = |v: Option<OsString>| v.filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(dir) = set(harness) {
        return dir;
    }
    // The XDG spec says relative values are to be ignored.
    if let Some(xdg) = set(xdg).filter(|p| p.is_absolute()) {
        return xdg.join("ebpf-harness");
    }
    match set(home) {
        Some(home) => home.join(".cache").join("ebpf-harness"),
        None => std::env::temp_dir().join("ebpf-harness"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_root_follows_env_precedence() {
        let os = |s: &str| Some(OsString::from(s));
        assert_eq!(
            default_root_from(os("/c"), os("/x"), os("/h")),
            PathBuf::from("/c")
        );
        assert_eq!(
            default_root_from(None, os("/x"), os("/h")),
            PathBuf::from("/x/ebpf-harness")
        );
        assert_eq!(
            default_root_from(os(""), os("rel"), os("/h")),
            PathBuf::from("/h/.cache/ebpf-harness")
        );
        assert_eq!(
            default_root_from(None, None, None),
            std::env::temp_dir().join("ebpf-harness")
        );
    }
}
