//! The one error type of this crate. Every message names the file, URL or
//! package involved and, where there is one, the fix.

use std::io;
use std::path::PathBuf;

use harness_protocol::KernelVersion;

use crate::lines::lines_summary;

/// How to pass a kernel that Debian does not carry; shared by several messages.
const OWN_IMAGE_HINT: &str = "to test another kernel, pass its image: `--kernel /path/to/bzImage` \
                              (also usable in a list, e.g. `--kernel 6.1,/path/to/bzImage`)";

/// Everything that can go wrong while finding, pinning, fetching or unpacking a kernel.
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    /// `--kernel` was given nothing.
    #[error(
        "--kernel was given an empty value; pass a Debian kernel line ({}), `host`, or a path to a bzImage",
        lines_summary()
    )]
    EmptyKernelList,

    /// `--kernel a,,b` or a trailing comma.
    #[error("--kernel `{list}` has an empty entry; remove the stray comma")]
    EmptyKernelEntry {
        /// The whole list as given.
        list: String,
    },

    /// Fetching a pinned image failed.
    #[error(transparent)]
    Fetch(#[from] crate::FetchError),

    /// A pinned image's entry is wrong.
    #[error("{}: image {line}: {message}", path.display())]
    ImageEntry {
        path: PathBuf,
        line: KernelVersion,
        message: String,
    },

    /// A version-like value that is not one of [`crate::LINES`] and that
    /// the lock file pins no image for.
    #[error(
        "kernel line {line} is not in Debian's archive; the lines that can be fetched are {}; \
         or pin an image for it: `kernels pin {line} --oci REGISTRY/REPOSITORY:TAG` (an OCI \
         image with the kernel at /boot/vmlinuz, as cilium/ebpf's ci-kernels publishes) or \
         `--url URL`; {OWN_IMAGE_HINT}",
        lines_summary()
    )]
    UnknownLine {
        /// The line as given, e.g. `5.15`.
        line: String,
    },

    /// A `--kernel` value that looks like a path but names nothing.
    #[error(
        "kernel image {path} does not exist; pass the path of a bzImage, `host`, or a Debian kernel line ({})",
        lines_summary()
    )]
    ImageNotFound {
        /// The path as given.
        path: PathBuf,
    },

    /// A `--kernel` path that is a directory.
    #[error("kernel image {path} is a directory; pass the path of the bzImage file itself")]
    ImageIsDirectory {
        /// The path as given.
        path: PathBuf,
    },

    /// A `--kernel` value that is neither a line, `host`, nor an existing file.
    #[error(
        "--kernel `{value}` is neither a Debian kernel line ({}), `host`, nor an existing file; {OWN_IMAGE_HINT}",
        lines_summary()
    )]
    NotAKernel {
        /// The value as given.
        value: String,
    },

    /// The lock file is not there yet.
    #[error("kernel lock file {path} does not exist; run `kernels update` to create it")]
    LockMissing {
        /// Where it was expected.
        path: PathBuf,
    },

    /// The lock file is not valid TOML or does not have the expected shape.
    #[error(
        "{path}:{line}:{column}: {message}; fix the file or regenerate it with `kernels update`"
    )]
    LockSyntax {
        /// The lock file.
        path: PathBuf,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// What the parser said.
        message: String,
    },

    /// The lock file parses but holds a value that cannot be right.
    #[error("{path}: {message}; fix the file or regenerate it with `kernels update`")]
    LockInvalid {
        /// The lock file.
        path: PathBuf,
        /// What is wrong, naming the entry.
        message: String,
    },

    /// A line was asked for that the lock file does not pin.
    #[error("{path} pins no kernel for line {line}; run `kernels update` to add it")]
    NotLocked {
        /// The lock file.
        path: PathBuf,
        /// The line asked for.
        line: harness_protocol::KernelVersion,
    },

    /// A lock entry that cannot be used (bad sha256, path outside the mirror, ...).
    #[error("pinned kernel {package}: {message}; regenerate the lock file with `kernels update`")]
    BadPin {
        /// The package.
        package: String,
        /// What is wrong.
        message: String,
    },

    /// No Debian mirror was given and none could be found in the apt configuration.
    #[error(
        "no Debian mirror found: no `deb` source for a Debian suite (bullseye, bookworm, trixie, forky, sid, ...) in {}; pass `--debian-mirror URL` or set HARNESS_DEBIAN_MIRROR (e.g. to your nearest Debian mirror)",
        describe_files(apt_dir, files_read)
    )]
    NoMirror {
        /// The apt configuration directory that was searched.
        apt_dir: PathBuf,
        /// The apt source files that were read.
        files_read: Vec<PathBuf>,
    },

    /// A mirror URL that is not http:// or https://.
    #[error(
        "Debian mirror `{url}` (from {origin}) is not an http:// or https:// URL; pass `--debian-mirror URL` or set HARNESS_DEBIAN_MIRROR to one"
    )]
    BadMirrorUrl {
        /// The URL as given.
        url: String,
        /// Where it came from.
        origin: String,
    },

    /// The connection failed, timed out or broke off.
    #[error(
        "downloading {url} failed: {message}; check the network, or pick another mirror with `--debian-mirror URL`"
    )]
    Http {
        /// The URL.
        url: String,
        /// What went wrong.
        message: String,
    },

    /// The mirror answered with an error status.
    #[error(
        "{url} answered HTTP {status}; check that the mirror is a Debian mirror, or pick another with `--debian-mirror URL`"
    )]
    HttpStatus {
        /// The URL.
        url: String,
        /// The status code.
        status: u16,
    },

    /// A pinned package has been removed from the mirror's pool.
    #[error(
        "the pinned package {package} {version} is no longer on the mirror ({url} answered 404: Debian removes superseded kernels); run `kernels update` to pin the current one"
    )]
    PinnedPackageGone {
        /// The package name.
        package: String,
        /// The pinned version.
        version: String,
        /// The URL that answered 404.
        url: String,
    },

    /// The InRelease signature is bad or made by no key in the keyring.
    #[error(
        "the signature of {url} could not be verified with {keyring}: {detail}; the mirror may be tampered with or the keyring outdated (install a newer debian-archive-keyring)"
    )]
    BadSignature {
        /// The InRelease URL.
        url: String,
        /// The keyring used.
        keyring: PathBuf,
        /// What gpgv reported.
        detail: String,
    },

    /// An index file is not what a Debian archive serves.
    #[error(
        "{url}: {message}; check that the mirror is a complete Debian mirror, or pick another with `--debian-mirror URL`"
    )]
    BadIndex {
        /// The index URL.
        url: String,
        /// What is wrong.
        message: String,
    },

    /// The suite index has no image package for a line.
    #[error(
        "no package for kernel line {line} in {url} (looked for `{pattern}`); the suite {suite} may have changed its kernel packages, which needs a change to this harness"
    )]
    NoPackageForLine {
        /// The line.
        line: harness_protocol::KernelVersion,
        /// Its suite.
        suite: String,
        /// The Packages.xz URL.
        url: String,
        /// The package name pattern that was looked for.
        pattern: String,
    },

    /// The suite index lacks the package holding a split kernel's config.
    #[error(
        "no package {config_package} in {url}, which the kernel package {kernel} of line {line} needs for its build config (found {found}); if the mirror is being synced, retry later, otherwise the suite may have changed its kernel packages, which needs a change to this harness"
    )]
    NoConfigPackage {
        /// The line.
        line: harness_protocol::KernelVersion,
        /// The Packages.xz URL.
        url: String,
        /// The kernel package and its version.
        kernel: String,
        /// The config package looked for, in the kernel's version.
        config_package: String,
        /// What versions of it the index has, for the message.
        found: String,
    },

    /// A download does not match the size and sha256 it must have.
    #[error(
        "{url} ({what}) is corrupt: expected {expected_size} bytes with sha256 {expected_sha256}, got {actual_size} bytes with sha256 {actual_sha256}; the download was discarded (retry, or pick another mirror with `--debian-mirror URL`)"
    )]
    ChecksumMismatch {
        /// The URL.
        url: String,
        /// What it is: the package and version, or the index.
        what: String,
        /// The size it must have.
        expected_size: u64,
        /// The size received.
        actual_size: u64,
        /// The sha256 it must have.
        expected_sha256: String,
        /// The sha256 received (of the bytes received, possibly cut off at `expected_size + 1`).
        actual_sha256: String,
    },

    /// A .deb is malformed or lacks the kernel.
    #[error("{path} (package {package}): {message}")]
    BadDeb {
        /// The .deb file.
        path: PathBuf,
        /// The package it holds.
        package: String,
        /// What is wrong.
        message: String,
    },

    /// A bzImage shorter than its header says (a cut download or copy).
    #[error(
        "{path} is truncated: {len} bytes, but its setup header says {expected}; fetch or build it again"
    )]
    ImageTruncated {
        /// The file.
        path: PathBuf,
        /// Its size.
        len: u64,
        /// The size its header promises.
        expected: u64,
    },

    /// A file is not a bzImage.
    #[error("{path} is not a bzImage: {message}")]
    NotABzImage {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },

    /// A file system operation failed.
    #[error("could not {action} {path}: {source}")]
    Io {
        /// What was being done, e.g. `create directory`.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
}

impl KernelError {
    /// Shorthand for [`KernelError::Io`].
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        KernelError::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

fn describe_files(apt_dir: &std::path::Path, files: &[PathBuf]) -> String {
    if files.is_empty() {
        return format!(
            "the apt configuration (no source files found under {})",
            apt_dir.display()
        );
    }
    let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    names.join(", ")
}
