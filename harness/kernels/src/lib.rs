//! The Debian kernels the harness boots: which lines exist and where
//! ([`LINES`]), parsing `--kernel` ([`parse_kernel_list`]), pinning the newest
//! package of each line from a verified suite index ([`update`], [`LockFile`]),
//! and downloading, verifying, caching and unpacking the pinned images
//! ([`Cache`]) from a mirror found without any built-in host ([`Mirror`]).

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
mod progress;
mod request;
mod signature;
mod update;
mod version;

pub use bzimage::bzimage_version;
pub use cache::{CACHE_ENV, Cache, CacheStatus, KernelImage};
pub use error::KernelError;
pub use lines::{KernelLine, LINES, find_line, line_of_release, lines_summary};
pub use lock::{LockFile, LockedKernel};
pub use mirror::{MIRROR_ENV, Mirror};
pub use progress::{BarProgress, NoProgress, Progress};
pub use request::{KernelRequest, parse_kernel_list};
pub use signature::SignatureCheck;
pub use update::{Update, UpdateOptions, update};
pub use version::compare_debian_versions;
