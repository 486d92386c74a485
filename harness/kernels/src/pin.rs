//! `kernels pin`: a kernel image from an OCI registry or a URL, pinned by
//! digest in the lock file beside the Debian lines.

use std::path::Path;

use harness_events::EventSink;
use harness_protocol::KernelVersion;

use crate::{Cache, KernelError, LockFile, LockedImage, OciReference, Resolver, Sha256Digest};

/// What to pin.
#[derive(Clone, Debug)]
pub enum PinSource {
    /// Pinned by the manifest digest the reference resolves to now.
    Oci(OciReference),
    /// A bzImage at an http(s) or file URL, or a path, with its sha256.
    Url { url: String, sha256: Sha256Digest },
}

/// Pins `source` as the kernel of `line` in the lock file at `lock_file`
/// (replacing what was pinned for the line), after fetching it into the
/// cache and checking it is a bzImage of that line: a pin that cannot run
/// is never written.
pub fn pin_image(
    lock_file: &Path,
    line: KernelVersion,
    source: PinSource,
    cache: &Cache,
    events: &dyn EventSink,
) -> Result<LockedImage, KernelError> {
    let mut lock = match LockFile::load(lock_file) {
        Ok(lock) => lock,
        Err(KernelError::LockMissing { .. }) => LockFile::default(),
        Err(e) => return Err(e),
    };
    let entry = match source {
        PinSource::Oci(reference) => {
            let resolved = crate::resolve(&reference)?;
            LockedImage {
                line,
                oci: Some(reference.to_string()),
                digest: Some(resolved.manifest_digest.to_string()),
                url: None,
                sha256: None,
            }
        }
        PinSource::Url { url, sha256 } => LockedImage {
            line,
            oci: None,
            digest: None,
            url: Some(url),
            sha256: Some(sha256.hex()),
        },
    };
    Resolver {
        lock_file,
        mirror: None,
        cache,
        events,
    }
    .pinned(&entry)?;
    lock.insert_image(entry.clone());
    lock.save(lock_file)?;
    Ok(entry)
}
