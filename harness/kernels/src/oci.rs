//! Kernel images from two sources besides Debian's archive: an OCI image in
//! a container registry ([`fetch_kernel`]; cilium/ebpf's ci-kernels are
//! `FROM scratch` images with the kernel at `boot/vmlinuz`) and a plain URL
//! or file ([`fetch_url`]).
//!
//! Both end in a file verified against a sha256 and renamed into place: a
//! failure never leaves anything, whole or half-written, at the destination
//! or beside it (temporary files there are removed when the fetch ends).
//!
//! The registry side speaks the OCI distribution API, anonymously: a
//! manifest (an image index or Docker manifest list is narrowed to its
//! `linux/amd64` image), then the image's layers, each checked against its
//! digest as it arrives. Registries that want a token (ghcr.io does, even for
//! public images) get the anonymous bearer-token exchange. No registry host
//! is built in: a reference always names its registry. Registries on
//! `localhost`, `127.0.0.1` or `[::1]` are spoken to over plain HTTP (as
//! docker does), every other one over HTTPS.

use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStringExt as _;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use tempfile::NamedTempFile;

use crate::http::Http;
use harness_events::{Event, EventSink};

/// Where the kernel is in a ci-kernels image, after `./` and `/` are dropped.
const KERNEL_PATH: &str = "boot/vmlinuz";

/// Manifests and image configs are small; anything bigger is not one.
const MAX_MANIFEST: u64 = 4 << 20;
/// Error bodies and token responses.
const MAX_SMALL_BODY: u64 = 1 << 20;
/// No bzImage is this big; a bigger "kernel" is the wrong file.
const MAX_KERNEL: u64 = 1 << 30;
/// How many of an image's paths an error lists.
const LISTED_PATHS: usize = 10;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const DOCKER_MANIFEST_V1: &str = "application/vnd.docker.distribution.manifest.v1+json";
const DOCKER_MANIFEST_V1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";

/// The platform whose image is picked out of an index.
const OS: &str = "linux";
const ARCHITECTURE: &str = "amd64";

// ---------------------------------------------------------------------------
// Digests and references
// ---------------------------------------------------------------------------

/// A sha256 digest. Displays as an OCI digest, `sha256:<64 hex digits>`;
/// [`Sha256Digest::hex`] is the bare form `sha256sum` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sha256Digest([u8; 32]);

impl Sha256Digest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Sha256Digest {
        Sha256Digest(Sha256::digest(bytes).into())
    }

    /// Parses the bare form: 64 hex digits, as `sha256sum` prints them.
    pub fn from_hex(hex: &str) -> Result<Sha256Digest, OciParseError> {
        let error = |expected: String| OciParseError {
            input: hex.to_owned(),
            what: "a sha256 digest",
            expected,
        };
        if hex.len() != 64 {
            return Err(error(format!(
                "expected 64 hex digits, got {} characters",
                hex.len()
            )));
        }
        let mut bytes = [0; 32];
        hex::decode_to_slice(hex, &mut bytes)
            .map_err(|_| error("expected only the hex digits 0-9 and a-f".to_owned()))?;
        Ok(Sha256Digest(bytes))
    }

    /// The 64 lowercase hex digits.
    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }

    fn of_hasher(hasher: Sha256) -> Sha256Digest {
        Sha256Digest(hasher.finalize().into())
    }
}

impl fmt::Display for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex())
    }
}

impl FromStr for Sha256Digest {
    type Err = OciParseError;

    /// Parses the OCI form, `sha256:<64 hex digits>`.
    fn from_str(s: &str) -> Result<Sha256Digest, OciParseError> {
        let error = |expected: String| OciParseError {
            input: s.to_owned(),
            what: "an OCI digest",
            expected,
        };
        match s.split_once(':') {
            Some(("sha256", hex)) => Sha256Digest::from_hex(hex)
                .map_err(|e| error(format!("after `sha256:`, {}", e.expected))),
            Some((algorithm, _)) => Err(error(format!(
                "expected `sha256:<64 hex digits>`; {algorithm} digests are not supported"
            ))),
            None => Err(error("expected `sha256:<64 hex digits>`".to_owned())),
        }
    }
}

/// A string that is not what it should be: an [`OciReference`] or a
/// [`Sha256Digest`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{input}` is not {what}: {expected}")]
pub struct OciParseError {
    /// The string as given.
    pub input: String,
    /// What it should have been, e.g. `an OCI image reference`.
    pub what: &'static str,
    /// What was expected where it went wrong.
    pub expected: String,
}

/// An image in a registry: `registry/repository:tag`,
/// `registry/repository@sha256:<hex>` or both (then the digest decides,
/// as with docker), e.g. `ghcr.io/cilium/ci-kernels:6.1` or
/// `127.0.0.1:5000/ci-kernels@sha256:...`.
///
/// The first component is always the registry, so it must look like a host:
/// contain a `.` or a `:port`, be `localhost`, or be an IPv6 address in
/// brackets. There is no default registry and no default tag.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OciReference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Sha256Digest>,
}

const REFERENCE: &str = "an OCI image reference";
const REFERENCE_FORM: &str = "`registry/repository:tag` or `registry/repository@sha256:<64 hex digits>`, \
                              e.g. `ghcr.io/cilium/ci-kernels:6.1`";

impl OciReference {
    /// The registry host, with its port if the reference names one.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository in the registry, e.g. `cilium/ci-kernels`.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag, if the reference names one.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The manifest digest, if the reference names one.
    pub fn digest(&self) -> Option<&Sha256Digest> {
        self.digest.as_ref()
    }

    /// The same image pinned to `digest` (the tag is kept, for messages).
    pub fn with_digest(&self, digest: Sha256Digest) -> OciReference {
        OciReference {
            digest: Some(digest),
            ..self.clone()
        }
    }

    /// Whether the registry is spoken to over plain HTTP: only on the local
    /// machine (`localhost`, `127.0.0.1`, `[::1]`), as docker does.
    pub fn uses_plain_http(&self) -> bool {
        let host = match self.registry.strip_prefix('[') {
            Some(rest) => &self.registry[..rest.find(']').map_or(self.registry.len(), |i| i + 2)],
            None => self.registry.split(':').next().unwrap_or(""),
        };
        host.eq_ignore_ascii_case("localhost") || host == "127.0.0.1" || host == "[::1]"
    }

    /// `http(s)://registry/v2/repository`, the root of its API.
    fn api(&self) -> String {
        let scheme = if self.uses_plain_http() {
            "http"
        } else {
            "https"
        };
        format!("{scheme}://{}/v2/{}", self.registry, self.repository)
    }

    fn parse(s: &str) -> Result<OciReference, String> {
        if s.is_empty() {
            return Err(format!("expected {REFERENCE_FORM}, got an empty string"));
        }
        if let Some((scheme, rest)) = s.split_once("://") {
            return Err(format!(
                "expected no `{scheme}://` in front (the registry decides the protocol): write `{rest}`"
            ));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((rest, digest)) => {
                let digest = digest.parse::<Sha256Digest>().map_err(|e| {
                    format!(
                        "expected `sha256:<64 hex digits>` after `@`, got `{digest}` ({})",
                        e.expected
                    )
                })?;
                (rest, Some(digest))
            }
            None => (s, None),
        };
        let last_slash = rest.rfind('/');
        let (name, tag) = match rest.rfind(':') {
            Some(colon) if last_slash.is_none_or(|slash| colon > slash) => {
                (&rest[..colon], Some(&rest[colon + 1..]))
            }
            _ => (rest, None),
        };
        let Some((registry, repository)) = name.split_once('/') else {
            return Err(format!(
                "expected a registry host, then `/` and the repository: {REFERENCE_FORM}"
            ));
        };
        check_registry(registry)?;
        check_repository(repository)?;
        if let Some(tag) = tag {
            check_tag(tag)?;
        }
        if tag.is_none() && digest.is_none() {
            return Err(format!(
                "expected a tag (`{name}:6.1`) or a digest (`{name}@sha256:...`) after the repository"
            ));
        }
        Ok(OciReference {
            registry: registry.to_owned(),
            repository: repository.to_owned(),
            tag: tag.map(str::to_owned),
            digest,
        })
    }
}

impl FromStr for OciReference {
    type Err = OciParseError;

    fn from_str(s: &str) -> Result<OciReference, OciParseError> {
        OciReference::parse(s).map_err(|expected| OciParseError {
            input: s.to_owned(),
            what: REFERENCE,
            expected,
        })
    }
}

impl fmt::Display for OciReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

/// A host name, IPv4 address or bracketed IPv6 address, with an optional port.
fn check_registry(registry: &str) -> Result<(), String> {
    let (host, port) = if let Some(rest) = registry.strip_prefix('[') {
        let Some((address, after)) = rest.split_once(']') else {
            return Err(format!(
                "expected `]` to close the IPv6 address in `{registry}`"
            ));
        };
        if address.is_empty()
            || !address
                .chars()
                .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
        {
            return Err(format!(
                "expected an IPv6 address between `[` and `]`, got `{address}`"
            ));
        }
        match after {
            "" => (registry, None),
            _ => match after.strip_prefix(':') {
                Some(port) => (&registry[..registry.len() - after.len()], Some(port)),
                None => {
                    return Err(format!(
                        "expected `:port` after `[{address}]`, got `{after}`"
                    ));
                }
            },
        }
    } else {
        match registry.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (registry, None),
        }
    };
    if let Some(port) = port
        && !port.parse::<u16>().is_ok_and(|p| p > 0)
    {
        return Err(format!(
            "expected a port number (1-65535) after `{host}:`, got `{port}`"
        ));
    }
    if host.starts_with('[') {
        return Ok(());
    }
    let valid_labels = !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if !valid_labels {
        return Err(format!(
            "expected a registry host name first, got `{host}`: {REFERENCE_FORM}"
        ));
    }
    if port.is_none() && !host.contains('.') && !host.eq_ignore_ascii_case("localhost") {
        return Err(format!(
            "expected the reference to start with the registry host (a name with a `.` or a `:port`, or `localhost`), \
             got `{host}`; there is no default registry: {REFERENCE_FORM}"
        ));
    }
    Ok(())
}

/// Path components of lowercase letters and digits, separated by `.`, `_`
/// or `-` (the distribution spec's grammar, slightly relaxed).
fn check_repository(repository: &str) -> Result<(), String> {
    if repository.is_empty() {
        return Err(format!(
            "expected a repository after the registry host: {REFERENCE_FORM}"
        ));
    }
    if repository.chars().any(|c| c.is_ascii_uppercase()) {
        return Err(format!(
            "expected a lowercase repository name, got `{repository}`"
        ));
    }
    for component in repository.split('/') {
        let edges_ok = component
            .chars()
            .next()
            .zip(component.chars().last())
            .is_some_and(|(first, last)| {
                first.is_ascii_alphanumeric() && last.is_ascii_alphanumeric()
            });
        let chars_ok = component
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'));
        if !edges_ok || !chars_ok {
            return Err(format!(
                "expected repository components of lowercase letters, digits and `.`, `_`, `-` \
                 (starting and ending with a letter or digit), got `{component}` in `{repository}`"
            ));
        }
    }
    Ok(())
}

/// Up to 128 letters, digits, `_`, `.`, `-`, not starting with `.` or `-`.
fn check_tag(tag: &str) -> Result<(), String> {
    let valid = tag.len() <= 128
        && tag
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if valid {
        Ok(())
    } else {
        Err(format!(
            "expected a tag of up to 128 letters, digits, `_`, `.` and `-` (not starting with `.` or `-`) after `:`, got `{tag}`"
        ))
    }
}

// ---------------------------------------------------------------------------
// Results and errors
// ---------------------------------------------------------------------------

/// A blob an image manifest refers to: its config or one of its layers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OciBlob {
    /// Its digest, which its bytes must have.
    pub digest: Sha256Digest,
    /// Its media type, e.g. `application/vnd.oci.image.layer.v1.tar+gzip`.
    pub media_type: String,
    /// Its size in bytes.
    pub size: u64,
}

/// What a reference names, found in its registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedImage {
    /// The reference resolved.
    pub reference: OciReference,
    /// The digest of the manifest the reference names: an image index (or
    /// Docker manifest list) for multi-platform images, else the image
    /// manifest. This is what `@sha256:...` pins and what to record in a
    /// lock file.
    pub manifest_digest: Sha256Digest,
    /// The digest of the `linux/amd64` image manifest: the one in the index,
    /// else the same as `manifest_digest`.
    pub image_manifest_digest: Sha256Digest,
    /// The image's config blob.
    pub config: OciBlob,
    /// Its layers, bottom first.
    pub layers: Vec<OciBlob>,
}

/// A kernel fetched from an image by [`fetch_kernel`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedKernel {
    /// See [`ResolvedImage::manifest_digest`]: what to pin.
    pub manifest_digest: Sha256Digest,
    /// See [`ResolvedImage::image_manifest_digest`].
    pub image_manifest_digest: Sha256Digest,
    /// The sha256 of the kernel image written.
    pub image_sha256: Sha256Digest,
    /// Where it was written (the `dest` given).
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
}

/// A file fetched by [`fetch_url`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedFile {
    /// Its sha256 (the one that was expected).
    pub sha256: Sha256Digest,
    /// Where it was written (the `dest` given).
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
}

/// Who said which digest a manifest must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestSource {
    /// The `@sha256:...` of the reference, or the digest pinned by the caller.
    Pinned,
    /// The registry's `Docker-Content-Digest` response header.
    Header,
    /// The image index that lists the manifest.
    Index,
}

impl fmt::Display for DigestSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DigestSource::Pinned => "the pinned digest",
            DigestSource::Header => "the registry's Docker-Content-Digest header",
            DigestSource::Index => "the image index",
        })
    }
}

/// Everything that can go wrong fetching a kernel from a registry or a URL.
/// Every message names the image or URL and says what to do.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The pinned digest and the digest in the reference disagree.
    #[error(
        "{reference} names manifest {in_reference}, but {pinned} is pinned for it; \
         pin the digest of the reference or drop the `@sha256:...` from it"
    )]
    PinConflict {
        /// The reference.
        reference: String,
        /// The digest in the reference.
        in_reference: Sha256Digest,
        /// The digest pinned by the caller.
        pinned: Sha256Digest,
    },

    /// The registry could not be reached (DNS, refused connection, TLS, timeout).
    #[error(
        "cannot reach registry {registry} for {reference} ({url}): {message}; \
         check the registry host and port and the network (registries other than localhost are spoken to over HTTPS)"
    )]
    Unreachable {
        /// The image.
        reference: String,
        /// Its registry.
        registry: String,
        /// The URL that failed.
        url: String,
        /// What went wrong.
        message: String,
    },

    /// The registry refused the anonymous client.
    #[error(
        "registry {registry} refused access to {reference}: {detail}; images are pulled anonymously, \
         so the image must be public: check the repository name (registries also refuse unknown repositories) \
         and that the image is public"
    )]
    Auth {
        /// The image.
        reference: String,
        /// Its registry.
        registry: String,
        /// What the registry or its token service said.
        detail: String,
    },

    /// The registry has no such tag or digest (HTTP 404).
    #[error("reference {reference} not found in registry {registry}: {hint}")]
    NotFound {
        /// The image.
        reference: String,
        /// Its registry.
        registry: String,
        /// What is missing and what to check.
        hint: String,
    },

    /// The registry answered with an unexpected status.
    #[error(
        "registry {registry} answered HTTP {status} for {url} while fetching {reference}{detail}; \
         retry later, or check that {registry} is an OCI registry"
    )]
    Status {
        /// The image.
        reference: String,
        /// Its registry.
        registry: String,
        /// The URL.
        url: String,
        /// The status code.
        status: u16,
        /// The registry's own error message, if any (`: ...`).
        detail: String,
    },

    /// A manifest is not one this client understands.
    #[error("the manifest of {reference} at {url} cannot be used: {detail}")]
    BadManifest {
        /// The image.
        reference: String,
        /// The manifest URL.
        url: String,
        /// What is wrong.
        detail: String,
    },

    /// A manifest's bytes do not have the digest they must have.
    #[error(
        "the manifest of {reference} has digest {actual}, but {said_by} says {expected}; {}",
        mismatch_hint(*said_by, actual)
    )]
    ManifestDigestMismatch {
        /// The image.
        reference: String,
        /// Who said which digest it must have.
        said_by: DigestSource,
        /// The digest it must have.
        expected: Sha256Digest,
        /// The digest of the bytes received.
        actual: Sha256Digest,
    },

    /// An image index lists no image for linux/amd64.
    #[error(
        "{reference} has no {OS}/{ARCHITECTURE} image (its index lists {available}); pick a tag built for {OS}/{ARCHITECTURE}"
    )]
    NoPlatform {
        /// The image.
        reference: String,
        /// The platforms it lists.
        available: String,
    },

    /// A single-platform image built for another platform.
    #[error(
        "{reference} is built for {platform}, not {OS}/{ARCHITECTURE}; pick a tag built for {OS}/{ARCHITECTURE}"
    )]
    WrongPlatform {
        /// The image.
        reference: String,
        /// Its platform, from its config.
        platform: String,
    },

    /// A blob the manifest lists is not in the registry.
    #[error(
        "registry {registry} has no blob {digest} ({what} of {reference}) although the manifest lists it; \
         retry later, or report it to whoever publishes the image"
    )]
    BlobMissing {
        /// The image.
        reference: String,
        /// Its registry.
        registry: String,
        /// Which blob, e.g. `layer 1/2`.
        what: String,
        /// Its digest.
        digest: Sha256Digest,
    },

    /// A blob's bytes do not match its digest or size.
    #[error(
        "blob {expected} ({blob}) is corrupt: expected {expected_size} bytes with digest {expected}, \
         got {actual_size} bytes with digest {actual}; the download was discarded (retry; if it persists, the registry serves corrupt data)"
    )]
    BlobDigestMismatch {
        /// Which blob of which image, e.g. `layer 1/2 of ghcr.io/cilium/ci-kernels:6.1`.
        blob: String,
        /// Its digest.
        expected: Sha256Digest,
        /// The digest of the bytes received (cut off after one byte too many).
        actual: Sha256Digest,
        /// Its size, from the manifest.
        expected_size: u64,
        /// The bytes received.
        actual_size: u64,
    },

    /// A layer compressed in a way this client does not read.
    #[error("{layer} has media type {media_type}, which cannot be read: {hint}")]
    UnsupportedLayer {
        /// Which layer of which image, with its digest.
        layer: String,
        /// Its media type.
        media_type: String,
        /// What can be read instead.
        hint: String,
    },

    /// A verified layer that is not a readable (compressed) tar.
    #[error("{layer} ({media_type}) is not a readable tar: {detail}")]
    BadLayer {
        /// Which layer of which image, with its digest.
        layer: String,
        /// Its media type.
        media_type: String,
        /// What the decoder said.
        detail: String,
    },

    /// No layer holds `boot/vmlinuz`.
    #[error(
        "{reference} has no {KERNEL_PATH}{removed}; it contains {contents}; \
         a kernel image must hold the kernel at /{KERNEL_PATH} (as cilium/ebpf's ci-kernels do)"
    )]
    NoKernel {
        /// The image.
        reference: String,
        /// ` (a layer deletes it)` when a whiteout removed it.
        removed: String,
        /// The first paths of the image, for the message.
        contents: String,
    },

    /// `boot/vmlinuz` is there but is not a regular file.
    #[error(
        "/{KERNEL_PATH} in {layer} is {kind}, not a regular file; the kernel must be a regular file"
    )]
    KernelNotAFile {
        /// Which layer of which image, with its digest.
        layer: String,
        /// What it is, e.g. `a symbolic link to vmlinuz-6.1`.
        kind: String,
    },

    /// The source is not a URL or path this client fetches.
    #[error("`{url}` cannot be fetched: {expected}")]
    BadUrl {
        /// The source as given.
        url: String,
        /// What was expected.
        expected: String,
    },

    /// An HTTP(S) download failed to connect or broke off.
    #[error("downloading {url} failed: {message}; check the URL and the network")]
    UrlUnreachable {
        /// The URL.
        url: String,
        /// What went wrong.
        message: String,
    },

    /// An HTTP(S) download answered with an error status.
    #[error("{url} answered HTTP {status}; check the URL")]
    UrlStatus {
        /// The URL.
        url: String,
        /// The status code.
        status: u16,
    },

    /// A downloaded or copied file does not have the pinned sha256.
    #[error(
        "{url} has sha256 {}, but sha256 {} is pinned for it ({size} bytes received, discarded); \
         if the file changed and the new one is trusted, update the pinned sha256 to {}",
        actual.hex(), expected.hex(), actual.hex()
    )]
    UrlChecksumMismatch {
        /// The URL or path.
        url: String,
        /// The pinned sha256.
        expected: Sha256Digest,
        /// The sha256 of what was received.
        actual: Sha256Digest,
        /// The bytes received (cut off after one byte too many).
        size: u64,
    },

    /// A file is bigger than any kernel image.
    #[error(
        "{what} is over {MAX_KERNEL} bytes, too big for a kernel image; check that it is a bzImage"
    )]
    TooBig {
        /// The file, URL or layer.
        what: String,
    },

    /// A file system operation failed.
    #[error("could not {action} {path}: {source}")]
    Io {
        /// What was being done, e.g. `create a temporary file in`.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
}

fn mismatch_hint(source: DigestSource, actual: &Sha256Digest) -> String {
    match source {
        DigestSource::Pinned => format!(
            "the registry served other bytes than the pinned manifest; retry, and if it persists do not trust \
             the registry (the image it serves now has digest {actual})"
        ),
        DigestSource::Header | DigestSource::Index => {
            "the registry served corrupt or tampered data; retry, or report it to whoever runs the registry"
                .to_owned()
        }
    }
}

impl FetchError {
    fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> FetchError {
        FetchError::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

// ---------------------------------------------------------------------------
// The registry client
// ---------------------------------------------------------------------------

/// Finds the image `reference` names in its registry: the manifest it names,
/// narrowed to the `linux/amd64` image if it is an index, with every
/// manifest checked against the digest the reference, the index or the
/// registry's `Docker-Content-Digest` header gives for it.
pub fn resolve(reference: &OciReference) -> Result<ResolvedImage, FetchError> {
    Registry::new(reference).resolve()
}

/// Fetches the kernel (`/boot/vmlinuz`) of the image `reference` names into
/// `dest`, reporting download progress to `events`.
///
/// With `pinned`, the manifest with that digest is fetched (as if the
/// reference ended in `@pinned`; the tag is then only a name), so a tag
/// that moved on still yields the pinned kernel as long as the registry
/// keeps it. Each layer is checked against its digest as it arrives; the
/// topmost layer holding the kernel (or deleting it) decides. The kernel is
/// written beside `dest` (whose directory is created if missing) and renamed
/// onto it; on any error `dest` is left as it was and nothing is left beside
/// it (a killed process may leave a `.<name>.oci-*` directory there).
pub fn fetch_kernel(
    reference: &OciReference,
    pinned: Option<&Sha256Digest>,
    dest: &Path,
    events: &dyn EventSink,
) -> Result<FetchedKernel, FetchError> {
    let reference = match (reference.digest(), pinned) {
        (Some(in_reference), Some(pinned)) if in_reference != pinned => {
            return Err(FetchError::PinConflict {
                reference: reference.to_string(),
                in_reference: *in_reference,
                pinned: *pinned,
            });
        }
        (_, Some(pinned)) => reference.with_digest(*pinned),
        (_, None) => reference.clone(),
    };
    let (parent, name) = split_dest(dest)?;
    let mut registry = Registry::new(&reference);
    let image = registry.resolve()?;
    let work = tempfile::Builder::new()
        .prefix(&format!(".{name}.oci-"))
        .tempdir_in(&parent)
        .map_err(|e| FetchError::io("create a temporary directory in", &parent, e))?;

    let mut listing = Listing::default();
    let mut removed = false;
    let count = image.layers.len();
    let mut kernel = None;
    for (index, layer) in image.layers.iter().enumerate().rev() {
        let what = format!("layer {}/{count}", index + 1);
        let blob = registry.blob_to_file(layer, &what, work.path(), events)?;
        match scan_layer(
            &reference,
            layer,
            &what,
            blob.path(),
            work.path(),
            &mut listing,
        )? {
            LayerKernel::Found(found) => {
                kernel = Some(found);
                break;
            }
            LayerKernel::Removed => {
                removed = true;
                break;
            }
            LayerKernel::Absent => {}
        }
    }
    let Some((file, image_sha256, size)) = kernel else {
        return Err(FetchError::NoKernel {
            reference: reference.to_string(),
            removed: if removed {
                " (a layer deletes it)".to_owned()
            } else {
                String::new()
            },
            contents: listing.describe(),
        });
    };
    place(file, dest, &parent)?;
    Ok(FetchedKernel {
        manifest_digest: image.manifest_digest,
        image_manifest_digest: image.image_manifest_digest,
        image_sha256,
        path: dest.to_owned(),
        size,
    })
}

/// The parts of a manifest or index this client reads.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ManifestJson {
    schema_version: Option<u32>,
    media_type: Option<String>,
    manifests: Option<Vec<DescriptorJson>>,
    config: Option<DescriptorJson>,
    layers: Option<Vec<DescriptorJson>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DescriptorJson {
    #[serde(default)]
    media_type: String,
    digest: String,
    size: u64,
    platform: Option<PlatformJson>,
}

#[derive(Deserialize)]
struct PlatformJson {
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    os: String,
    variant: Option<String>,
}

impl fmt::Display for PlatformJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

/// The part of an image config that says what it runs on.
#[derive(Deserialize)]
struct ConfigJson {
    architecture: Option<String>,
    os: Option<String>,
}

#[derive(Deserialize)]
struct TokenJson {
    token: Option<String>,
    access_token: Option<String>,
}

#[derive(Deserialize)]
struct RegistryErrorsJson {
    errors: Vec<RegistryErrorJson>,
}

#[derive(Deserialize)]
struct RegistryErrorJson {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

enum ManifestKind {
    Index,
    Image,
}

/// A manifest as received.
struct Manifest {
    url: String,
    digest: Sha256Digest,
    kind: ManifestKind,
    json: ManifestJson,
}

/// A `WWW-Authenticate: Bearer ...` challenge.
#[derive(Debug, Default, PartialEq, Eq)]
struct Challenge {
    realm: Option<String>,
    service: Option<String>,
    scope: Option<String>,
}

type Response = ureq::http::Response<ureq::Body>;

/// One conversation with the registry of one image; remembers its token.
struct Registry<'a> {
    http: Http,
    reference: &'a OciReference,
    token: Option<String>,
}

impl<'a> Registry<'a> {
    fn new(reference: &'a OciReference) -> Registry<'a> {
        Registry {
            http: Http::new(),
            reference,
            token: None,
        }
    }

    fn resolve(&mut self) -> Result<ResolvedImage, FetchError> {
        let reference = self.reference;
        let (name, expected) = match reference.digest() {
            Some(digest) => (digest.to_string(), Some((*digest, DigestSource::Pinned))),
            // Parsing guarantees a tag when there is no digest.
            None => (reference.tag().unwrap_or_default().to_owned(), None),
        };
        let top = self.manifest(&name, expected)?;
        let manifest_digest = top.digest;
        let (image, from_index) = match top.kind {
            ManifestKind::Image => (top, false),
            ManifestKind::Index => {
                let digest = self.pick_platform(&top)?;
                let image =
                    self.manifest(&digest.to_string(), Some((digest, DigestSource::Index)))?;
                if let ManifestKind::Index = image.kind {
                    return Err(self.bad_manifest(
                        &image.url,
                        format!("the {OS}/{ARCHITECTURE} entry of the index is another index, not an image manifest"),
                    ));
                }
                (image, true)
            }
        };
        let (Some(config), Some(layers)) = (&image.json.config, &image.json.layers) else {
            return Err(self.bad_manifest(&image.url, "it lacks `config` or `layers`".to_owned()));
        };
        let config = self.blob_descriptor(&image.url, config)?;
        let layers = layers
            .iter()
            .map(|layer| self.blob_descriptor(&image.url, layer))
            .collect::<Result<Vec<_>, _>>()?;
        if !from_index {
            self.check_config_platform(&config)?;
        }
        Ok(ResolvedImage {
            reference: reference.clone(),
            manifest_digest,
            image_manifest_digest: image.digest,
            config,
            layers,
        })
    }

    /// GETs `url`, answering a bearer challenge once with an anonymous
    /// token. Returns any response but 401 and 403, which are errors.
    fn get(&mut self, url: &str, accept: Option<&str>) -> Result<Response, FetchError> {
        let mut fresh_token = false;
        loop {
            let mut request = self.http.agent().get(url);
            if let Some(accept) = accept {
                request = request.header("Accept", accept);
            }
            if let Some(token) = &self.token {
                request = request.header("Authorization", format!("Bearer {token}"));
            }
            let mut response = request.call().map_err(|e| self.unreachable(url, &e))?;
            match response.status().as_u16() {
                401 if !fresh_token => {
                    let challenges: Vec<String> = response
                        .headers()
                        .get_all("www-authenticate")
                        .iter()
                        .filter_map(|v| v.to_str().ok().map(str::to_owned))
                        .collect();
                    let Some(challenge) = challenges.iter().find_map(|c| parse_bearer_challenge(c))
                    else {
                        let asked = if challenges.is_empty() {
                            "without saying how to authenticate".to_owned()
                        } else {
                            format!(
                                "for credentials (`WWW-Authenticate: {}`)",
                                challenges.join(", ")
                            )
                        };
                        return Err(self.auth(format!(
                            "it answered HTTP 401 {asked}{}",
                            error_detail(&mut response)
                        )));
                    };
                    self.token = Some(self.fetch_token(&challenge)?);
                    fresh_token = true;
                }
                401 => {
                    return Err(self.auth(format!(
                        "it refused the anonymous token its token service issued (HTTP 401{})",
                        error_detail(&mut response)
                    )));
                }
                403 => {
                    return Err(self.auth(format!(
                        "it denied access (HTTP 403{})",
                        error_detail(&mut response)
                    )));
                }
                _ => return Ok(response),
            }
        }
    }

    /// The anonymous token the challenge's realm issues.
    fn fetch_token(&self, challenge: &Challenge) -> Result<String, FetchError> {
        let Some(realm) = &challenge.realm else {
            return Err(
                self.auth("its bearer challenge names no token service (`realm`)".to_owned())
            );
        };
        if !(realm.starts_with("https://") || realm.starts_with("http://")) {
            return Err(self.auth(format!("its token service `{realm}` is not an http(s) URL")));
        }
        let scope = challenge
            .scope
            .clone()
            .unwrap_or_else(|| format!("repository:{}:pull", self.reference.repository()));
        let mut request = self.http.agent().get(realm).query("scope", scope);
        if let Some(service) = &challenge.service {
            request = request.query("service", service);
        }
        let mut response = request.call().map_err(|e| self.unreachable(realm, &e))?;
        let status = response.status().as_u16();
        if status != 200 {
            return Err(self.auth(format!(
                "its token service {realm} answered HTTP {status}{}",
                error_detail(&mut response)
            )));
        }
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_SMALL_BODY)
            .read_to_vec()
            .map_err(|e| self.unreachable(realm, &e))?;
        let token = serde_json::from_slice::<TokenJson>(&body)
            .ok()
            .and_then(|t| t.token.or(t.access_token))
            .filter(|t| !t.is_empty());
        token.ok_or_else(|| self.auth(format!("its token service {realm} returned no token")))
    }

    /// The manifest `name` (a tag or digest) as received, checked against
    /// `expected` and the registry's digest header.
    fn manifest(
        &mut self,
        name: &str,
        expected: Option<(Sha256Digest, DigestSource)>,
    ) -> Result<Manifest, FetchError> {
        let url = format!("{}/manifests/{name}", self.reference.api());
        let accept = [OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST].join(", ");
        let mut response = self.get(&url, Some(&accept))?;
        let status = response.status().as_u16();
        if status == 404 {
            return Err(self.not_found(expected));
        }
        if status != 200 {
            return Err(self.status(&url, status, &mut response));
        }
        let content_type = header(&response, "content-type")
            .map(|v| v.split(';').next().unwrap_or("").trim().to_owned())
            .unwrap_or_default();
        let header_digest =
            header(&response, "docker-content-digest").and_then(|v| v.parse::<Sha256Digest>().ok());
        let bytes = response
            .body_mut()
            .with_config()
            .limit(MAX_MANIFEST)
            .read_to_vec()
            .map_err(|e| match e {
                ureq::Error::BodyExceedsLimit(_) => {
                    self.bad_manifest(&url, format!("it is over {MAX_MANIFEST} bytes"))
                }
                e => self.unreachable(&url, &e),
            })?;
        let digest = Sha256Digest::of(&bytes);
        let checks = expected
            .into_iter()
            .chain(header_digest.map(|d| (d, DigestSource::Header)));
        for (expected, source) in checks {
            if digest != expected {
                return Err(FetchError::ManifestDigestMismatch {
                    reference: self.reference.to_string(),
                    said_by: source,
                    expected,
                    actual: digest,
                });
            }
        }
        let json: ManifestJson = serde_json::from_slice(&bytes)
            .map_err(|e| self.bad_manifest(&url, format!("it is not a manifest in JSON: {e}")))?;
        let media_type = if content_type.is_empty() || content_type == "application/json" {
            json.media_type.clone().unwrap_or_default()
        } else {
            content_type
        };
        let kind = match media_type.as_str() {
            OCI_INDEX | DOCKER_LIST => ManifestKind::Index,
            OCI_MANIFEST | DOCKER_MANIFEST => ManifestKind::Image,
            DOCKER_MANIFEST_V1 | DOCKER_MANIFEST_V1_SIGNED => {
                return Err(self.bad_manifest(&url, "it is a Docker schema 1 manifest, which is not supported; push the image again with a current docker or buildx".to_owned()));
            }
            _ if json.schema_version == Some(1) => {
                return Err(self.bad_manifest(&url, "it is a Docker schema 1 manifest, which is not supported; push the image again with a current docker or buildx".to_owned()));
            }
            // An OCI manifest may omit its media type; its fields tell.
            _ if json.manifests.is_some() => ManifestKind::Index,
            _ if json.layers.is_some() => ManifestKind::Image,
            other => {
                return Err(self.bad_manifest(
                    &url,
                    format!("its media type `{other}` is neither an image manifest nor an index"),
                ));
            }
        };
        Ok(Manifest {
            url,
            digest,
            kind,
            json,
        })
    }

    /// The digest of the index's linux/amd64 image.
    fn pick_platform(&self, index: &Manifest) -> Result<Sha256Digest, FetchError> {
        let entries = index.json.manifests.as_deref().unwrap_or_default();
        let entry = entries.iter().find(|entry| {
            entry
                .platform
                .as_ref()
                .is_some_and(|p| p.os == OS && p.architecture == ARCHITECTURE)
        });
        let Some(entry) = entry else {
            let available: Vec<String> = entries
                .iter()
                .map(|e| {
                    e.platform.as_ref().map_or_else(
                        || "an entry without platform".to_owned(),
                        ToString::to_string,
                    )
                })
                .collect();
            return Err(FetchError::NoPlatform {
                reference: self.reference.to_string(),
                available: if available.is_empty() {
                    "nothing".to_owned()
                } else {
                    available.join(", ")
                },
            });
        };
        entry.digest.parse().map_err(|e: OciParseError| {
            self.bad_manifest(&index.url, format!("its {OS}/{ARCHITECTURE} entry: {e}"))
        })
    }

    fn blob_descriptor(
        &self,
        url: &str,
        descriptor: &DescriptorJson,
    ) -> Result<OciBlob, FetchError> {
        let digest = descriptor
            .digest
            .parse()
            .map_err(|e: OciParseError| self.bad_manifest(url, e.to_string()))?;
        Ok(OciBlob {
            digest,
            media_type: descriptor.media_type.clone(),
            size: descriptor.size,
        })
    }

    /// A single-platform image says in its config what it was built for.
    fn check_config_platform(&mut self, config: &OciBlob) -> Result<(), FetchError> {
        if ![OCI_CONFIG, DOCKER_CONFIG].contains(&config.media_type.as_str()) {
            return Ok(());
        }
        if config.size > MAX_MANIFEST {
            return Err(self.bad_manifest(
                &self.reference.api(),
                format!(
                    "its config blob is {} bytes, over {MAX_MANIFEST}",
                    config.size
                ),
            ));
        }
        let mut bytes = Vec::new();
        self.blob(config, "config", None, |chunk| {
            bytes.extend_from_slice(chunk);
            Ok(())
        })?;
        // A config that does not parse says nothing about the platform.
        let Ok(parsed) = serde_json::from_slice::<ConfigJson>(&bytes) else {
            return Ok(());
        };
        let os = parsed.os.unwrap_or_default();
        let architecture = parsed.architecture.unwrap_or_default();
        let wrong = (!os.is_empty() && os != OS)
            || (!architecture.is_empty() && architecture != ARCHITECTURE);
        if wrong {
            return Err(FetchError::WrongPlatform {
                reference: self.reference.to_string(),
                platform: format!("{os}/{architecture}"),
            });
        }
        Ok(())
    }

    /// Downloads `blob` into a new temporary file in `dir`.
    fn blob_to_file(
        &mut self,
        blob: &OciBlob,
        what: &str,
        dir: &Path,
        events: &dyn EventSink,
    ) -> Result<NamedTempFile, FetchError> {
        let mut file = tempfile::Builder::new()
            .prefix("blob-")
            .tempfile_in(dir)
            .map_err(|e| FetchError::io("create a temporary file in", dir, e))?;
        let path = file.path().to_owned();
        self.blob(blob, what, Some(events), |chunk| {
            file.write_all(chunk)
                .map_err(|e| FetchError::io("write", &path, e))
        })?;
        Ok(file)
    }

    /// Streams `blob` into `sink`, checking its size and digest; nothing
    /// passed to `sink` may be used unless this returns `Ok`.
    fn blob(
        &mut self,
        blob: &OciBlob,
        what: &str,
        events: Option<&dyn EventSink>,
        mut sink: impl FnMut(&[u8]) -> Result<(), FetchError>,
    ) -> Result<(), FetchError> {
        let url = format!("{}/blobs/{}", self.reference.api(), blob.digest);
        let mut response = self.get(&url, None)?;
        match response.status().as_u16() {
            200 => {}
            404 => {
                return Err(FetchError::BlobMissing {
                    reference: self.reference.to_string(),
                    registry: self.reference.registry().to_owned(),
                    what: what.to_owned(),
                    digest: blob.digest,
                });
            }
            status => return Err(self.status(&url, status, &mut response)),
        }
        let mut reader = response.into_body().into_reader();
        let progress = events
            .map(|events| Progress::start(events, format!("{} {what}", self.reference), blob.size));
        let copied = copy_hashing(&mut reader, blob.size, progress.as_ref(), &mut sink);
        drop(progress);
        let (size, digest) = copied.map_err(|e| match e {
            CopyError::Read(e) => self.unreachable(&url, &e),
            CopyError::Sink(e) => e,
        })?;
        if size != blob.size || digest != blob.digest {
            return Err(FetchError::BlobDigestMismatch {
                blob: format!("{what} of {}", self.reference),
                expected: blob.digest,
                actual: digest,
                expected_size: blob.size,
                actual_size: size,
            });
        }
        Ok(())
    }

    fn unreachable(&self, url: &str, error: &dyn fmt::Display) -> FetchError {
        FetchError::Unreachable {
            reference: self.reference.to_string(),
            registry: self.reference.registry().to_owned(),
            url: url.to_owned(),
            message: error.to_string(),
        }
    }

    fn auth(&self, detail: String) -> FetchError {
        FetchError::Auth {
            reference: self.reference.to_string(),
            registry: self.reference.registry().to_owned(),
            detail,
        }
    }

    fn not_found(&self, expected: Option<(Sha256Digest, DigestSource)>) -> FetchError {
        let repository = self.reference.repository();
        let hint = match expected {
            None => format!(
                "check the tag: {repository} has no tag `{}` there (or the repository does not exist)",
                self.reference.tag().unwrap_or_default()
            ),
            Some((digest, DigestSource::Index)) => format!(
                "its index lists manifest {digest} for {OS}/{ARCHITECTURE}, which the registry lacks; \
                 retry later, or report it to whoever publishes the image"
            ),
            Some((digest, _)) => format!(
                "check the digest: {repository} has no manifest {digest} there (registries delete images \
                 no tag points to any more; if it is pinned, pin the digest the tag names now)"
            ),
        };
        FetchError::NotFound {
            reference: self.reference.to_string(),
            registry: self.reference.registry().to_owned(),
            hint,
        }
    }

    fn status(&self, url: &str, status: u16, response: &mut Response) -> FetchError {
        FetchError::Status {
            reference: self.reference.to_string(),
            registry: self.reference.registry().to_owned(),
            url: url.to_owned(),
            status,
            detail: error_detail(response),
        }
    }

    fn bad_manifest(&self, url: &str, detail: String) -> FetchError {
        FetchError::BadManifest {
            reference: self.reference.to_string(),
            url: url.to_owned(),
            detail,
        }
    }
}

fn header<'r>(response: &'r Response, name: &str) -> Option<&'r str> {
    response.headers().get(name).and_then(|v| v.to_str().ok())
}

/// `: CODE: message` from a registry's JSON error body, or nothing.
fn error_detail(response: &mut Response) -> String {
    let Ok(body) = response
        .body_mut()
        .with_config()
        .limit(MAX_SMALL_BODY)
        .read_to_vec()
    else {
        return String::new();
    };
    let Ok(errors) = serde_json::from_slice::<RegistryErrorsJson>(&body) else {
        return String::new();
    };
    let described: Vec<String> = errors
        .errors
        .iter()
        .map(|e| match (e.code.is_empty(), e.message.is_empty()) {
            (false, false) => format!("{}: {}", e.code, e.message),
            (false, true) => e.code.clone(),
            _ => e.message.clone(),
        })
        .filter(|s| !s.is_empty())
        .collect();
    if described.is_empty() {
        String::new()
    } else {
        format!(": {}", described.join("; "))
    }
}

/// The parameters of a `Bearer` challenge, or `None` for another scheme.
fn parse_bearer_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim_start();
    let (scheme, params) = header
        .split_once(char::is_whitespace)
        .unwrap_or((header, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut challenge = Challenge::default();
    let mut rest = params;
    loop {
        rest = rest.trim_start_matches(|c: char| c == ',' || c.is_whitespace());
        let Some((key, after)) = rest.split_once('=') else {
            break;
        };
        let key = key.trim().to_ascii_lowercase();
        let after = after.trim_start();
        let value;
        if let Some(quoted) = after.strip_prefix('"') {
            let mut unescaped = String::new();
            let mut chars = quoted.char_indices();
            let mut end = quoted.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, escaped)) = chars.next() {
                            unescaped.push(escaped);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => unescaped.push(c),
                }
            }
            value = unescaped;
            rest = &quoted[end.min(quoted.len())..];
        } else {
            let end = after.find(',').unwrap_or(after.len());
            value = after[..end].trim().to_owned();
            rest = &after[end..];
        }
        match key.as_str() {
            "realm" => challenge.realm = Some(value),
            "service" => challenge.service = Some(value),
            "scope" => challenge.scope = Some(value),
            _ => {}
        }
    }
    Some(challenge)
}

// ---------------------------------------------------------------------------
// Layers
// ---------------------------------------------------------------------------

/// What a layer says about the kernel.
enum LayerKernel {
    /// It holds the kernel: extracted to this file, with its sha256 and size.
    Found((NamedTempFile, Sha256Digest, u64)),
    /// It deletes the kernel of the layers below (a whiteout).
    Removed,
    /// It says nothing about it.
    Absent,
}

/// The first paths seen in an image, for an error that says what it holds.
#[derive(Default)]
struct Listing {
    paths: Vec<String>,
    total: usize,
}

impl Listing {
    fn add(&mut self, path: &str) {
        if path.is_empty() {
            return;
        }
        self.total += 1;
        if self.paths.len() < LISTED_PATHS {
            self.paths.push(format!("/{path}"));
        }
    }

    fn describe(&self) -> String {
        match self.total {
            0 => "no files at all".to_owned(),
            total if total > self.paths.len() => format!(
                "{} and {} more",
                self.paths.join(", "),
                total - self.paths.len()
            ),
            _ => self.paths.join(", "),
        }
    }
}

enum Compression {
    None,
    Gzip,
}

/// How a layer of `media_type` is compressed, or why it cannot be read.
fn compression(media_type: &str) -> Result<Compression, String> {
    match media_type {
        "application/vnd.oci.image.layer.v1.tar"
        | "application/vnd.oci.image.layer.nondistributable.v1.tar"
        | "application/vnd.docker.image.rootfs.diff.tar" => Ok(Compression::None),
        "application/vnd.oci.image.layer.v1.tar+gzip"
        | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
        | "application/vnd.docker.image.rootfs.diff.tar.gzip"
        | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => Ok(Compression::Gzip),
        media_type if media_type.ends_with("zstd") => Err(
            "zstd-compressed layers are not supported; push the image with gzip layers \
             (e.g. `docker buildx build --output type=registry,compression=gzip`)"
                .to_owned(),
        ),
        _ => Err("only tar layers, plain or gzip-compressed, can be read".to_owned()),
    }
}

/// Looks for the kernel in the verified layer blob at `blob_path`,
/// extracting it into a new temporary file in `dir`; adds what the layer
/// holds to `listing` as long as the kernel is not found.
fn scan_layer(
    reference: &OciReference,
    layer: &OciBlob,
    what: &str,
    blob_path: &Path,
    dir: &Path,
    listing: &mut Listing,
) -> Result<LayerKernel, FetchError> {
    let name = || format!("{what} ({}) of {reference}", layer.digest);
    let bad = |detail: String| FetchError::BadLayer {
        layer: name(),
        media_type: layer.media_type.clone(),
        detail,
    };
    let compression =
        compression(&layer.media_type).map_err(|hint| FetchError::UnsupportedLayer {
            layer: name(),
            media_type: layer.media_type.clone(),
            hint,
        })?;
    let file = File::open(blob_path).map_err(|e| FetchError::io("open", blob_path, e))?;
    let reader: Box<dyn Read> = match compression {
        Compression::None => Box::new(io::BufReader::new(file)),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(io::BufReader::new(file))),
    };
    let mut archive = tar::Archive::new(reader);
    let entries = archive.entries().map_err(|e| bad(e.to_string()))?;
    let mut removed = false;
    for entry in entries {
        let mut entry = entry.map_err(|e| bad(e.to_string()))?;
        let path = normalize(&entry.path_bytes());
        if path != KERNEL_PATH {
            // A whiteout hides the layers below, not this one.
            removed |=
                path == "boot/.wh.vmlinuz" || path == "boot/.wh..wh..opq" || path == ".wh.boot";
            listing.add(&path);
            continue;
        }
        let kind = entry.header().entry_type();
        if !kind.is_file() {
            let target = entry
                .link_name_bytes()
                .map(|t| String::from_utf8_lossy(&t).into_owned())
                .unwrap_or_default();
            let kind = if kind.is_symlink() {
                format!("a symbolic link to {target}")
            } else if kind.is_hard_link() {
                format!("a hard link to {target}")
            } else if kind.is_dir() {
                "a directory".to_owned()
            } else {
                format!("a tar entry of type {kind:?}")
            };
            return Err(FetchError::KernelNotAFile {
                layer: name(),
                kind,
            });
        }
        let mut out = tempfile::Builder::new()
            .prefix("vmlinuz-")
            .tempfile_in(dir)
            .map_err(|e| FetchError::io("create a temporary file in", dir, e))?;
        let out_path = out.path().to_owned();
        let copied = copy_hashing(&mut entry, MAX_KERNEL, None, &mut |chunk: &[u8]| {
            out.write_all(chunk)
                .map_err(|e| FetchError::io("write", &out_path, e))
        });
        let (size, sha256) = copied.map_err(|e| match e {
            CopyError::Read(e) => bad(format!("reading /{KERNEL_PATH} failed: {e}")),
            CopyError::Sink(e) => e,
        })?;
        if size > MAX_KERNEL {
            return Err(FetchError::TooBig {
                what: format!("/{KERNEL_PATH} in {what} of {reference}"),
            });
        }
        return Ok(LayerKernel::Found((out, sha256, size)));
    }
    Ok(if removed {
        LayerKernel::Removed
    } else {
        LayerKernel::Absent
    })
}

/// `./boot/x`, `/boot/x` and `boot/x` name the same member.
fn normalize(path: &[u8]) -> String {
    let path = String::from_utf8_lossy(path);
    let mut path: &str = &path;
    while let Some(rest) = path.strip_prefix("./").or_else(|| path.strip_prefix('/')) {
        path = rest;
    }
    if path == "." {
        String::new()
    } else {
        path.to_owned()
    }
}

// ---------------------------------------------------------------------------
// Plain URLs and files
// ---------------------------------------------------------------------------

/// Fetches a kernel image from `source` (an `http://` or `https://` URL, a
/// `file://` URL or a path) into `dest`, checking its sha256 as it streams
/// and reporting download progress to `events`. The file is taken as it is
/// (a raw bzImage). It is written beside `dest` (whose directory is created
/// if missing) and renamed onto it; on any error `dest` is left as it was
/// and nothing is left beside it (a killed process may leave a
/// `.<name>.part-*` file there).
pub fn fetch_url(
    source: &str,
    expected_sha256: &Sha256Digest,
    dest: &Path,
    events: &dyn EventSink,
) -> Result<FetchedFile, FetchError> {
    let (parent, name) = split_dest(dest)?;
    let mut part = tempfile::Builder::new()
        .prefix(&format!(".{name}.part-"))
        .tempfile_in(&parent)
        .map_err(|e| FetchError::io("create a temporary file in", &parent, e))?;
    let part_path = part.path().to_owned();
    let mut sink = |chunk: &[u8]| {
        part.write_all(chunk)
            .map_err(|e| FetchError::io("write", &part_path, e))
    };
    let (size, actual) =
        match classify_source(source)? {
            Source::Http(url) => {
                let response = Http::new().agent().get(url).call().map_err(|e| {
                    FetchError::UrlUnreachable {
                        url: url.to_owned(),
                        message: e.to_string(),
                    }
                })?;
                let status = response.status().as_u16();
                if status != 200 {
                    return Err(FetchError::UrlStatus {
                        url: url.to_owned(),
                        status,
                    });
                }
                let body = response.into_body();
                let total = body.content_length().unwrap_or(0);
                let mut reader = body.into_reader();
                let progress = Progress::start(events, url.to_owned(), total);
                let copied = copy_hashing(&mut reader, MAX_KERNEL, Some(&progress), &mut sink);
                drop(progress);
                copied.map_err(|e| match e {
                    CopyError::Read(e) => FetchError::UrlUnreachable {
                        url: url.to_owned(),
                        message: e.to_string(),
                    },
                    CopyError::Sink(e) => e,
                })?
            }
            Source::File(path) => {
                let mut file = File::open(&path).map_err(|e| FetchError::io("open", &path, e))?;
                copy_hashing(&mut file, MAX_KERNEL, None, &mut sink).map_err(|e| match e {
                    CopyError::Read(e) => FetchError::io("read", &path, e),
                    CopyError::Sink(e) => e,
                })?
            }
        };
    if size > MAX_KERNEL {
        return Err(FetchError::TooBig {
            what: source.to_owned(),
        });
    }
    if actual != *expected_sha256 {
        return Err(FetchError::UrlChecksumMismatch {
            url: source.to_owned(),
            expected: *expected_sha256,
            actual,
            size,
        });
    }
    place(part, dest, &parent)?;
    Ok(FetchedFile {
        sha256: actual,
        path: dest.to_owned(),
        size,
    })
}

enum Source<'a> {
    Http(&'a str),
    File(PathBuf),
}

fn classify_source(source: &str) -> Result<Source<'_>, FetchError> {
    let bad = |expected: &str| FetchError::BadUrl {
        url: source.to_owned(),
        expected: expected.to_owned(),
    };
    let Some((scheme, rest)) = source.split_once("://") else {
        if source.is_empty() {
            return Err(bad("expected a URL or a path, got nothing"));
        }
        return Ok(Source::File(PathBuf::from(source)));
    };
    match scheme.to_ascii_lowercase().as_str() {
        "http" | "https" => Ok(Source::Http(source)),
        "file" => {
            let path = rest.strip_prefix("localhost").unwrap_or(rest);
            if !path.starts_with('/') {
                return Err(bad(
                    "expected `file:///absolute/path` (a file URL names no other host)",
                ));
            }
            let decoded = percent_decode(path)
                .ok_or_else(|| bad("expected `%` to be followed by two hex digits"))?;
            Ok(Source::File(PathBuf::from(std::ffi::OsString::from_vec(
                decoded,
            ))))
        }
        _ => Err(bad(
            "expected an http://, https:// or file:// URL, or a path",
        )),
    }
}

/// `%xx` escapes decoded; `None` if one is malformed.
fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(out)
}

// ---------------------------------------------------------------------------
// Shared plumbing
// ---------------------------------------------------------------------------

/// `dest`'s directory (created if missing) and file name.
fn split_dest(dest: &Path) -> Result<(PathBuf, String), FetchError> {
    let Some(name) = dest.file_name() else {
        return Err(FetchError::io(
            "write to",
            dest,
            io::Error::new(io::ErrorKind::InvalidInput, "the path names no file"),
        ));
    };
    let parent = match dest.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&parent).map_err(|e| FetchError::io("create directory", &parent, e))?;
    Ok((parent, name.to_string_lossy().into_owned()))
}

/// Syncs `file`, makes it readable by all (a kernel is no secret, and
/// caches are shared) and renames it onto `dest` in `parent`.
fn place(file: NamedTempFile, dest: &Path, parent: &Path) -> Result<(), FetchError> {
    use std::os::unix::fs::PermissionsExt as _;
    let path = file.path().to_owned();
    file.as_file()
        .sync_all()
        .map_err(|e| FetchError::io("sync", &path, e))?;
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644))
        .map_err(|e| FetchError::io("set permissions of", &path, e))?;
    file.persist(dest)
        .map_err(|e| FetchError::io("rename into place", dest, e.error))?;
    File::open(parent)
        .and_then(|d| d.sync_all())
        .map_err(|e| FetchError::io("sync directory", parent, e))
}

/// Download progress, finished when dropped (also on errors).
struct Progress<'a> {
    events: &'a dyn EventSink,
}

impl<'a> Progress<'a> {
    fn start(events: &'a dyn EventSink, what: String, total_bytes: u64) -> Progress<'a> {
        events.event(Event::DownloadStarted { what, total_bytes });
        Progress { events }
    }

    fn advance(&self, bytes: u64) {
        self.events.event(Event::DownloadAdvanced { bytes });
    }
}

impl Drop for Progress<'_> {
    fn drop(&mut self) {
        self.events.event(Event::DownloadFinished);
    }
}

enum CopyError {
    Read(io::Error),
    Sink(FetchError),
}

/// Passes `reader` to `sink` chunk by chunk, hashing it, until its end or
/// until more than `limit` bytes arrived (so that a wrong file shows as too
/// big without filling the disk). Returns the bytes passed and their digest.
fn copy_hashing(
    reader: &mut dyn Read,
    limit: u64,
    progress: Option<&Progress<'_>>,
    sink: &mut dyn FnMut(&[u8]) -> Result<(), FetchError>,
) -> Result<(u64, Sha256Digest), CopyError> {
    let mut hasher = Sha256::new();
    let mut buffer = vec![0; 64 * 1024];
    let mut received = 0u64;
    while received <= limit {
        let n = match reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::Read(e)),
        };
        hasher.update(&buffer[..n]);
        sink(&buffer[..n]).map_err(CopyError::Sink)?;
        received += n as u64;
        if let Some(progress) = progress {
            progress.advance(n as u64);
        }
    }
    Ok((received, Sha256Digest::of_hasher(hasher)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn parse(s: &str) -> OciReference {
        s.parse()
            .unwrap_or_else(|e| panic!("`{s}` should parse: {e}"))
    }

    fn parse_error(s: &str) -> String {
        match s.parse::<OciReference>() {
            Ok(r) => panic!("`{s}` should not parse, got {r:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn parses_a_tagged_reference() {
        let r = parse("ghcr.io/cilium/ci-kernels:5.15");
        assert_eq!(r.registry(), "ghcr.io");
        assert_eq!(r.repository(), "cilium/ci-kernels");
        assert_eq!(r.tag(), Some("5.15"));
        assert_eq!(r.digest(), None);
        assert!(!r.uses_plain_http());
        assert_eq!(r.api(), "https://ghcr.io/v2/cilium/ci-kernels");
        assert_eq!(r.to_string(), "ghcr.io/cilium/ci-kernels:5.15");
    }

    #[test]
    fn parses_a_local_registry_with_a_port() {
        let r = parse("127.0.0.1:5000/ci-kernels:6.1");
        assert_eq!(r.registry(), "127.0.0.1:5000");
        assert_eq!(r.repository(), "ci-kernels");
        assert_eq!(r.tag(), Some("6.1"));
        assert!(r.uses_plain_http());
        assert_eq!(r.api(), "http://127.0.0.1:5000/v2/ci-kernels");
        assert!(parse("localhost/kernels:1").uses_plain_http());
        assert!(parse("LOCALHOST:80/kernels:1").uses_plain_http());
        assert!(parse("[::1]:5000/kernels:1").uses_plain_http());
        assert!(parse("[::1]/kernels:1").uses_plain_http());
        assert!(!parse("127.0.0.1.example.com/kernels:1").uses_plain_http());
        assert!(!parse("[fd00::1]:5000/kernels:1").uses_plain_http());
    }

    #[test]
    fn parses_digests_with_and_without_a_tag() {
        let r = parse(&format!("registry.example/name@sha256:{HEX}"));
        assert_eq!(r.repository(), "name");
        assert_eq!(r.tag(), None);
        assert_eq!(r.digest().map(Sha256Digest::hex).as_deref(), Some(HEX));

        let r = parse(&format!("host:5000/a/b:tag@sha256:{HEX}"));
        assert_eq!(r.registry(), "host:5000");
        assert_eq!(r.repository(), "a/b");
        assert_eq!(r.tag(), Some("tag"));
        assert_eq!(r.to_string(), format!("host:5000/a/b:tag@sha256:{HEX}"));

        let pinned = parse("ghcr.io/a/b:1").with_digest(Sha256Digest::of(b"x"));
        assert_eq!(
            pinned.to_string(),
            format!("ghcr.io/a/b:1@{}", Sha256Digest::of(b"x"))
        );
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "ghcr.io/cilium/ci-kernels:6.1",
            "localhost:5000/x/y/z:latest",
            "[::1]:5000/k@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ] {
            assert_eq!(parse(s).to_string(), s);
        }
    }

    #[test]
    fn rejects_references_saying_what_was_expected() {
        let cases: &[(&str, &str)] = &[
            ("", "got an empty string"),
            ("https://ghcr.io/a/b:1", "write `ghcr.io/a/b:1`"),
            (
                "ghcr.io/cilium/ci-kernels",
                "expected a tag (`ghcr.io/cilium/ci-kernels:6.1`)",
            ),
            ("cilium/ci-kernels:6.1", "there is no default registry"),
            ("registry/name:1", "got `registry`"),
            ("ci-kernels:6.1", "expected a registry host, then `/`"),
            ("ghcr.io:99999/a:1", "port number (1-65535)"),
            ("ghcr.io:/a:1", "port number"),
            ("ghcr.io/Cilium/ci-kernels:1", "lowercase repository"),
            ("ghcr.io/a//b:1", "got `` in `a//b`"),
            ("ghcr.io/a/-b:1", "got `-b`"),
            ("ghcr.io/a:", "expected a tag of up to 128"),
            ("ghcr.io/a:.x", "got `.x`"),
            (
                "ghcr.io/a@sha256:abc",
                "after `@`, got `sha256:abc` (after `sha256:`, expected 64 hex digits, got 3 characters)",
            ),
            (
                &format!("ghcr.io/a@sha512:{HEX}"),
                "sha512 digests are not supported",
            ),
            ("ghcr.io/a@latest", "expected `sha256:<64 hex digits>`"),
            ("[::1/a:1", "expected `]`"),
            ("[zz]/a:1", "IPv6 address"),
            ("bad_host.io/a:1", "registry host name"),
        ];
        for (input, expected) in cases {
            let message = parse_error(input);
            assert!(
                message.contains(expected),
                "`{input}`: `{message}` should contain `{expected}`"
            );
            assert!(
                message.contains("is not an OCI image reference"),
                "{message}"
            );
        }
    }

    #[test]
    fn digests_parse_in_both_forms() {
        let d: Sha256Digest = format!("sha256:{HEX}").parse().expect("OCI form");
        assert_eq!(d.hex(), HEX);
        assert_eq!(d.to_string(), format!("sha256:{HEX}"));
        assert_eq!(Sha256Digest::from_hex(&HEX.to_uppercase()), Ok(d));
        assert!(Sha256Digest::from_hex(&HEX[1..]).is_err());
        assert!(Sha256Digest::from_hex(&format!("{}g", &HEX[1..])).is_err());
        assert!(
            HEX.parse::<Sha256Digest>().is_err(),
            "the OCI form needs its `sha256:`"
        );
        assert_eq!(
            Sha256Digest::of(b"").hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn parses_bearer_challenges() {
        let c = parse_bearer_challenge(
            r#"Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:cilium/ci-kernels:pull""#,
        )
        .expect("a bearer challenge");
        assert_eq!(
            c,
            Challenge {
                realm: Some("https://ghcr.io/token".to_owned()),
                service: Some("ghcr.io".to_owned()),
                scope: Some("repository:cilium/ci-kernels:pull".to_owned()),
            }
        );
        // Commas inside quotes, escapes, spaces and unquoted values.
        let c = parse_bearer_challenge(
            r#"bearer  realm = "http://x/t?a=\"1\"", scope="repository:a/b:pull,push",service=reg"#,
        )
        .expect("a bearer challenge");
        assert_eq!(c.realm.as_deref(), Some(r#"http://x/t?a="1""#));
        assert_eq!(c.scope.as_deref(), Some("repository:a/b:pull,push"));
        assert_eq!(c.service.as_deref(), Some("reg"));
        assert_eq!(parse_bearer_challenge(r#"Basic realm="registry""#), None);
        assert_eq!(parse_bearer_challenge("Bearer"), Some(Challenge::default()));
    }

    #[test]
    fn classifies_sources() {
        assert!(matches!(
            classify_source("https://x/bzImage"),
            Ok(Source::Http(_))
        ));
        assert!(matches!(
            classify_source("HTTP://x/bzImage"),
            Ok(Source::Http(_))
        ));
        match classify_source("file:///tmp/a%20b/bzImage") {
            Ok(Source::File(path)) => assert_eq!(path, Path::new("/tmp/a b/bzImage")),
            _ => panic!("a file URL is a file"),
        }
        match classify_source("file://localhost/k") {
            Ok(Source::File(path)) => assert_eq!(path, Path::new("/k")),
            _ => panic!("a file URL is a file"),
        }
        match classify_source("images/bzImage") {
            Ok(Source::File(path)) => assert_eq!(path, Path::new("images/bzImage")),
            _ => panic!("a path is a file"),
        }
        for (bad, expected) in [
            ("ftp://x/k", "http://, https:// or file://"),
            ("file://host/k", "file:///absolute/path"),
            ("file:///a%2", "two hex digits"),
            ("", "got nothing"),
        ] {
            let message = match classify_source(bad) {
                Err(e) => e.to_string(),
                Ok(_) => panic!("`{bad}` should be refused"),
            };
            assert!(message.contains(expected), "{message}");
        }
    }

    #[test]
    fn normalizes_member_paths() {
        assert_eq!(normalize(b"./boot/vmlinuz"), "boot/vmlinuz");
        assert_eq!(normalize(b"/boot/vmlinuz"), "boot/vmlinuz");
        assert_eq!(normalize(b"boot/vmlinuz"), "boot/vmlinuz");
        assert_eq!(normalize(b"./"), "");
        assert_eq!(normalize(b"."), "");
    }

    #[test]
    fn layer_media_types() {
        assert!(matches!(
            compression("application/vnd.oci.image.layer.v1.tar+gzip"),
            Ok(Compression::Gzip)
        ));
        assert!(matches!(
            compression("application/vnd.docker.image.rootfs.diff.tar.gzip"),
            Ok(Compression::Gzip)
        ));
        assert!(matches!(
            compression("application/vnd.oci.image.layer.v1.tar"),
            Ok(Compression::None)
        ));
        assert!(
            compression("application/vnd.oci.image.layer.v1.tar+zstd")
                .is_err_and(|hint| hint.contains("compression=gzip"))
        );
        assert!(compression("application/octet-stream").is_err());
    }
}
