//! Attaching loaded programs to their hooks and reading their ring
//! buffers: what a live case does inside a VM. Nothing here decides where
//! it may run; the executor only attaches when it is PID 1 of a test VM.

use std::{fmt, io, os::fd::BorrowedFd};

use crate::{LoadedObject, Map, libbpf};

/// `BPF_PROG_TYPE_*` numbers attached to a cgroup rather than by section.
const CGROUP_PROG_TYPES: [u32; 7] = [
    8,  // CGROUP_SKB
    9,  // CGROUP_SOCK
    13, // SOCK_OPS
    15, // CGROUP_DEVICE
    18, // CGROUP_SOCK_ADDR
    23, // CGROUP_SYSCTL
    25, // CGROUP_SOCKOPT
];

/// A program attached for as long as the value lives.
pub struct Link {
    _link: libbpf::Link,
    pub program: String,
}

impl fmt::Debug for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Link")
            .field("program", &self.program)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    #[error("no program `{0}` in the object")]
    NoProgram(String),
    #[error("program `{0}` did not load")]
    NotLoaded(String),
    #[error("program `{program}` is a cgroup program: it needs a cgroup to attach to")]
    NeedsCgroup { program: String },
    #[error("attaching `{program}` ({section}) failed: {error}{}", messages_suffix(.messages))]
    Failed {
        program: String,
        section: String,
        error: io::Error,
        messages: Vec<String>,
    },
}

fn messages_suffix(messages: &[String]) -> String {
    let lines: Vec<&str> = messages
        .iter()
        .map(|m| m.trim())
        .filter(|m| !m.is_empty())
        .collect();
    if lines.is_empty() {
        String::new()
    } else {
        format!(" (libbpf: {})", lines.join("; "))
    }
}

impl LoadedObject {
    /// Whether `program` attaches to a cgroup (and so needs one).
    pub fn is_cgroup_program(&self, program: &str) -> bool {
        self.program(program)
            .and_then(|p| p.spec.kind.as_ref().ok())
            .is_some_and(|k| CGROUP_PROG_TYPES.contains(&k.prog_type))
    }

    /// Attaches `program` where its section says (cgroup programs to
    /// `cgroup`). Detached when the [`Link`] is dropped.
    pub fn attach(
        &self,
        program: &str,
        cgroup: Option<BorrowedFd<'_>>,
    ) -> Result<Link, AttachError> {
        let loaded = self
            .program(program)
            .ok_or_else(|| AttachError::NoProgram(program.to_owned()))?;
        let handle = self
            .libbpf_program(program)
            .filter(|_| loaded.fd.is_some())
            .ok_or_else(|| AttachError::NotLoaded(program.to_owned()))?;
        let result = if self.is_cgroup_program(program) {
            let cgroup = cgroup.ok_or_else(|| AttachError::NeedsCgroup {
                program: program.to_owned(),
            })?;
            handle.attach_cgroup(cgroup)
        } else {
            handle.attach()
        };
        result
            .map(|link| Link {
                _link: link,
                program: program.to_owned(),
            })
            .map_err(|(error, messages)| AttachError::Failed {
                program: program.to_owned(),
                section: loaded.spec.section.clone(),
                error,
                messages,
            })
    }
}

/// Reads what programs send through a `BPF_MAP_TYPE_RINGBUF` or a
/// `BPF_MAP_TYPE_PERF_EVENT_ARRAY`.
pub struct EventBuffer {
    inner: Inner,
    pub map: String,
}

enum Inner {
    Ring(libbpf::RingBuffer),
    Perf(libbpf::PerfBuffer),
}

/// `BPF_MAP_TYPE_*` numbers of the maps an [`EventBuffer`] reads.
const PERF_EVENT_ARRAY: u32 = 4;
const RINGBUF: u32 = 27;
/// Pages per CPU of a perf buffer: 1 MiB each.
const PERF_PAGES: usize = 256;

impl fmt::Debug for EventBuffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventBuffer")
            .field("map", &self.map)
            .finish()
    }
}

impl EventBuffer {
    pub fn new(map: &Map) -> io::Result<Self> {
        let inner = match map.spec.map_type.0 {
            RINGBUF => Inner::Ring(libbpf::RingBuffer::new(map.fd())?),
            PERF_EVENT_ARRAY => Inner::Perf(libbpf::PerfBuffer::new(map.fd(), PERF_PAGES)?),
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "neither a ring buffer nor a perf event array",
                ));
            }
        };
        Ok(Self {
            inner,
            map: map.spec.name.clone(),
        })
    }

    /// Every record since the last call, oldest first (per CPU for a perf
    /// buffer), and how many the kernel reported lost (perf buffers only:
    /// a ring buffer's reserve simply fails in the program).
    pub fn consume(&mut self) -> io::Result<(Vec<Vec<u8>>, u64)> {
        match &mut self.inner {
            Inner::Ring(r) => Ok((r.consume()?, 0)),
            Inner::Perf(p) => p.consume(),
        }
    }

    /// Becomes readable when records wait (for `poll`).
    pub fn readiness_fd(&self) -> BorrowedFd<'_> {
        match &self.inner {
            Inner::Ring(r) => r.epoll_fd(),
            Inner::Perf(p) => p.epoll_fd(),
        }
    }
}
