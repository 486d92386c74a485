//! The kernels the harness boots: which Debian lines exist and where
//! ([`LINES`]), parsing `--kernel` ([`parse_kernel_list`], syntax only),
//! resolving requests into [`Target`]s that say what each kernel is and how
//! it boots ([`Resolver`]), pinning the newest package of each line from a
//! verified suite index ([`update`], [`LockFile`]), and downloading,
//! verifying, caching and unpacking the pinned images ([`Cache`]) from a
//! mirror found without any built-in host ([`Mirror`]); kernels beyond
//! Debian from OCI images (cilium/ebpf's ci-kernels layout) or URLs,
//! pinned by digest in the same lock file ([`pin_image`], fetched by
//! [`fetch_kernel`] and [`fetch_url`]). Progress goes to the caller's
//! [`harness_events::EventSink`].

mod apt;
mod bzimage;
mod cache;
mod deb;
mod error;
mod http;
mod index;
mod lines;
mod lock;
mod mirror;
mod oci;
mod pin;
mod request;
mod signature;
mod target;
mod update;
mod version;
mod vmlinux;

pub use bzimage::bzimage_version;
pub use cache::{CACHE_ENV, Cache, CacheStatus, KernelImage};
pub use error::KernelError;
pub use lines::{KernelLine, LINES, find_line, lines_summary};
pub use lock::{ImageSource, LockFile, LockedImage, LockedKernel, PinnedPackage};
pub use mirror::{MIRROR_ENV, Mirror};
pub use oci::{
    DigestSource, FetchError, FetchedFile, FetchedKernel, OciBlob, OciParseError, OciReference,
    ResolvedImage, Sha256Digest, fetch_kernel, fetch_url, resolve,
};
pub use pin::{PinSource, pin_image};
pub use request::{KernelRequest, parse_kernel_list};
pub use signature::SignatureCheck;
pub use target::{Boot, Origin, Resolver, Target};
pub use update::{Update, UpdateOptions, update};
pub use version::compare_debian_versions;
pub use vmlinux::{Compression, extract_vmlinux};
