//! Pinning to one CPU, so per-CPU map values are deterministic.

use nix::{
    sched::{self, CpuSet},
    unistd::Pid,
};

/// Restores the thread's CPU affinity when dropped.
pub(crate) struct PinnedToCpu0(Option<CpuSet>);

impl PinnedToCpu0 {
    pub(crate) fn new() -> Self {
        let before = sched::sched_getaffinity(Pid::from_raw(0)).ok();
        let mut cpu0 = CpuSet::new();
        if cpu0.set(0).is_err() || sched::sched_setaffinity(Pid::from_raw(0), &cpu0).is_err() {
            return Self(None);
        }
        Self(before)
    }
}

impl Drop for PinnedToCpu0 {
    fn drop(&mut self) {
        if let Some(before) = &self.0 {
            let _ = sched::sched_setaffinity(Pid::from_raw(0), before);
        }
    }
}
