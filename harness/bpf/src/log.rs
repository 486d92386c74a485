//! Verifier log capture that never loses the log.
//!
//! The kernel fails a load with ENOSPC when the log does not fit, even if the
//! program is fine, so a too-small buffer changes the verdict. We grow the
//! buffer and retry: to the size the kernel asks for (`log_true_size`, 6.4+)
//! or eight times larger (older kernels).

use std::io;

/// How to capture logs.
#[derive(Clone, Copy, Debug)]
pub struct LogOptions {
    /// `log_level` bits: 1 = instructions, 2 = every state, 4 = statistics.
    pub level: u32,
    /// First buffer size; big enough for most programs at level 1.
    pub initial_size: usize,
    /// Largest buffer we will try. Kernels before 5.x reject sizes above
    /// `u32::MAX >> 2`; memory in a small VM is the practical limit.
    pub max_size: usize,
    /// A rejected program is loaded again for its level-1 walk only if its
    /// statistics say the verifier processed at most this many
    /// instructions: a program that ran into the 1M-instruction limit logs
    /// ~80 MB at level 1, which takes minutes to format under TCG. Its
    /// statistics log keeps the error line.
    pub walk_budget: u32,
}

impl Default for LogOptions {
    fn default() -> Self {
        Self {
            level: 1 | 4,
            initial_size: 1 << 20,
            max_size: 256 << 20,
            walk_budget: 200_000,
        }
    }
}

/// A complete verifier (or BTF) log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VerifierLog {
    pub text: String,
    pub level: u32,
    /// The kernel still had more to say at `max_size`.
    pub truncated: bool,
    /// Loads attempted until the log fit.
    pub attempts: u32,
}

/// An error that carries the kernel's errno.
pub(crate) trait Errno {
    fn errno(&self) -> i32;
}

impl Errno for io::Error {
    fn errno(&self) -> i32 {
        self.raw_os_error().unwrap_or(0)
    }
}

impl Errno for crate::libbpf::Failure {
    fn errno(&self) -> i32 {
        self.errno
    }
}

/// Runs `load` with a log buffer, growing it while the kernel says ENOSPC.
/// `load` returns its result and the kernel's `log_true_size` (0 if unknown).
pub(crate) fn with_log<T, E: Errno>(
    opts: LogOptions,
    mut load: impl FnMut(u32, &mut [u8]) -> (Result<T, E>, u32),
) -> (Result<T, E>, VerifierLog) {
    // Level 0 (no log at all) takes no buffer: the kernel refuses a buffer
    // without a level.
    if opts.level == 0 {
        let (res, _) = load(0, &mut []);
        return (res, VerifierLog::default());
    }
    let mut size = opts.initial_size.max(128).min(opts.max_size);
    let mut attempts = 0;
    loop {
        attempts += 1;
        let mut buf = vec![0u8; size];
        let (res, true_size) = load(opts.level, &mut buf);
        let needs_more = matches!(&res, Err(e) if e.errno() == libc::ENOSPC)
            && (true_size == 0 || true_size as usize > size);
        if needs_more && size < opts.max_size {
            let wanted = if true_size as usize > size {
                true_size as usize
            } else {
                size * 8
            };
            size = wanted.min(opts.max_size);
            continue;
        }
        let len = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
        buf.truncate(len);
        let log = VerifierLog {
            text: String::from_utf8_lossy(&buf).into_owned(),
            level: opts.level,
            truncated: needs_more,
            attempts,
        };
        return (res, log);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_kernel(
        full_log: &'static str,
        reports_true_size: bool,
    ) -> impl FnMut(u32, &mut [u8]) -> (io::Result<()>, u32) {
        move |_, buf: &mut [u8]| {
            let needed = full_log.len() + 1;
            let n = full_log.len().min(buf.len() - 1);
            buf[..n].copy_from_slice(&full_log.as_bytes()[..n]);
            buf[n] = 0;
            let true_size = if reports_true_size { needed as u32 } else { 0 };
            if needed > buf.len() {
                (Err(io::Error::from_raw_os_error(libc::ENOSPC)), true_size)
            } else {
                (Ok(()), true_size)
            }
        }
    }

    const BIG: &str = include_str!("../testdata/long.log");

    #[test]
    fn grows_to_the_size_the_kernel_reports() {
        let opts = LogOptions {
            level: 1,
            initial_size: 4096,
            max_size: 1 << 20,
            ..LogOptions::default()
        };
        let (res, log) = with_log(opts, fake_kernel(BIG, true));
        res.unwrap();
        assert_eq!(log.text, BIG);
        assert_eq!(log.attempts, 2);
        assert!(!log.truncated);
    }

    #[test]
    fn grows_geometrically_on_old_kernels() {
        let opts = LogOptions {
            level: 1,
            initial_size: 4096,
            max_size: 1 << 20,
            ..LogOptions::default()
        };
        let (res, log) = with_log(opts, fake_kernel(BIG, false));
        res.unwrap();
        assert_eq!(log.text, BIG);
        assert!(log.attempts >= 2);
    }

    #[test]
    fn reports_truncation_at_the_limit() {
        let opts = LogOptions {
            level: 1,
            initial_size: 4096,
            max_size: 4096,
            ..LogOptions::default()
        };
        let (res, log) = with_log(opts, fake_kernel(BIG, false));
        assert_eq!(res.unwrap_err().raw_os_error(), Some(libc::ENOSPC));
        assert!(log.truncated);
        assert_eq!(log.text.len(), 4095);
    }
}
