//! Parsing (no syscalls) and loading through libbpf, every program with its
//! own verifier log, the way veristat does.
//!
//! Loading first tries the whole object at once with a statistics-only log
//! per program: when every program is accepted (the common case) that is one
//! libbpf load. When something fails, each program is loaded on its own in a
//! fresh copy of the object (as veristat does), which names the programs that
//! fail and gives each its full log; the accepted ones are then loaded
//! together once more, sharing maps, for the cases to run.

use std::{
    io,
    os::fd::OwnedFd,
    time::{Duration, Instant},
};

use crate::{
    libbpf::{self, Failure},
    log::{LogOptions, VerifierLog, with_log},
    map::{Map, MapKind},
    program::ProgramKind,
};

/// Why an object could not be prepared at all.
#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    #[error("libbpf cannot open it as a BPF object ({error}){}", said(messages))]
    Open {
        error: io::Error,
        messages: Vec<String>,
    },
    #[error("libbpf could not load the object ({error}){}", said(messages))]
    Load {
        error: io::Error,
        messages: Vec<String>,
    },
    #[error("reading CPU topology: {0}")]
    Cpus(io::Error),
    #[error("keeping a descriptor of {what}: {error}")]
    Fd { what: String, error: io::Error },
}

fn said(messages: &[String]) -> String {
    if messages.is_empty() {
        String::new()
    } else {
        format!(": {}", messages.join("; "))
    }
}

fn strip_os_error_suffix(e: &io::Error) -> String {
    // "Permission denied (os error 13)" -> "Permission denied"
    let s = e.to_string();
    match s.rfind(" (os error") {
        Some(i) => s[..i].to_owned(),
        None => s,
    }
}

/// Why one program did not load.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProgramLoadError {
    /// The verifier (or the kernel) said no; the log says why.
    #[error("BPF_PROG_LOAD failed: {message} (errno {errno})")]
    Rejected { errno: i32, message: String },
    /// The kernel never saw the program: libbpf (or the harness) stopped
    /// before, e.g. an unknown section, a missing attach target, a map the
    /// kernel cannot create.
    #[error("not loaded: {reason}")]
    NotLoaded { reason: String },
}

/// A program as declared in the object.
#[derive(Clone, Debug)]
pub struct ProgramSpec {
    /// Function name, which is also the program's name.
    pub name: String,
    pub section: String,
    /// The kernel-side kind, or why the harness cannot load this section.
    pub kind: Result<ProgramKind, NotLoadable>,
    /// Where its own instructions are in the ELF section (from its symbol),
    /// which maps the verifier's instruction numbers to line info.
    pub code: Option<CodeRange>,
}

/// A function's bytes in its ELF section: its instructions are the first
/// `size / 8` the verifier numbers (subprograms come after).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CodeRange {
    pub offset: u64,
    pub size: u64,
}

/// Why the harness cannot hand a program to the kernel (an unknown section,
/// a freplace program, ...).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NotLoadable(pub String);

/// A map as declared in the object (before any kernel sees it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapSpec {
    pub name: String,
    pub map_type: harness_protocol::MapType,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    pub kind: MapKind,
    /// Type ids in the object's BTF, 0 when the map has no BTF.
    pub btf_key_type_id: u32,
    pub btf_value_type_id: u32,
}

impl MapSpec {
    fn new(m: libbpf::Map) -> Self {
        let name = m.name();
        let (btf_key_type_id, btf_value_type_id) = m.btf_type_ids();
        Self {
            kind: MapKind::of(m.is_internal(), &name),
            name,
            map_type: harness_protocol::MapType(m.map_type()),
            key_size: m.key_size(),
            value_size: m.value_size(),
            max_entries: m.max_entries(),
            btf_key_type_id,
            btf_value_type_id,
        }
    }
}

/// A parsed object file. Parsing never touches the kernel; loading opens a
/// fresh libbpf object from the same bytes.
#[derive(Clone, Debug)]
pub struct ObjectFile {
    data: Vec<u8>,
    /// libbpf's object name: the prefix of global data maps' kernel names.
    name: String,
    /// The raw `.BTF` section.
    btf: Option<Vec<u8>>,
    /// The raw `.BTF.ext` section (line info, CO-RE relocations).
    btf_ext: Option<Vec<u8>>,
    programs: Vec<ProgramSpec>,
    maps: Vec<MapSpec>,
}

impl ObjectFile {
    pub fn parse(data: Vec<u8>) -> Result<Self, ObjectError> {
        Self::parse_named(data, "obj")
    }

    /// As [`parse`](Self::parse), naming the object (its file stem) as
    /// libbpf would.
    pub fn parse_named(data: Vec<u8>, name: &str) -> Result<Self, ObjectError> {
        let obj = libbpf::Object::open(&data, name).map_err(|f| ObjectError::Open {
            error: f.error(),
            messages: f.messages,
        })?;
        let code = code_ranges(&data);
        let mut programs: Vec<ProgramSpec> = obj
            .programs()
            .into_iter()
            .map(|p| {
                let section = p.section();
                let kind = ProgramKind::from_libbpf(
                    &section,
                    p.prog_type(),
                    p.expected_attach_type(),
                    p.flags(),
                )
                .map_err(NotLoadable);
                let name = p.name();
                ProgramSpec {
                    code: code.get(&(section.clone(), name.clone())).copied(),
                    name,
                    section,
                    kind,
                }
            })
            .collect();
        programs.sort_by(|a, b| a.name.cmp(&b.name));
        let mut maps: Vec<MapSpec> = obj.maps().into_iter().map(MapSpec::new).collect();
        maps.sort_by(|a, b| a.name.cmp(&b.name));
        drop(obj);
        let btf = elf_section(&data, ".BTF");
        let btf_ext = elf_section(&data, ".BTF.ext");
        Ok(Self {
            data,
            name: name.to_owned(),
            btf,
            btf_ext,
            programs,
            maps,
        })
    }

    /// Programs sorted by name.
    pub fn programs(&self) -> &[ProgramSpec] {
        &self.programs
    }

    /// Loads `program` as another kind than its section says (a type being
    /// probed, a section libbpf reads differently). Returns false when there
    /// is no such program.
    pub fn set_program_kind(&mut self, program: &str, kind: ProgramKind) -> bool {
        match self.programs.iter_mut().find(|p| p.name == program) {
            Some(p) => {
                p.kind = Ok(kind);
                true
            }
            None => false,
        }
    }

    /// Maps sorted by name, including the global data sections.
    pub fn maps(&self) -> &[MapSpec] {
        &self.maps
    }

    /// The raw `.BTF` section, for tools that type map keys and values.
    pub fn btf_section(&self) -> Option<&[u8]> {
        self.btf.as_deref()
    }

    /// The raw `.BTF.ext` section, for tools that map instructions to C lines.
    pub fn btf_ext_section(&self) -> Option<&[u8]> {
        self.btf_ext.as_deref()
    }

    /// Opens a fresh libbpf object with the harness's fixups and our program
    /// kinds applied, and only `load` programs set to load.
    fn open(&self, load: &dyn Fn(&ProgramSpec) -> bool) -> Result<Opened, ObjectError> {
        let obj = libbpf::Object::open(&self.data, &self.name).map_err(|f| ObjectError::Open {
            error: f.error(),
            messages: f.messages,
        })?;
        let mut programs = Vec::new();
        for p in obj.programs() {
            let name = p.name();
            let spec = self.programs.iter().find(|s| s.name == name);
            let on = match spec {
                Some(spec) if spec.kind.is_ok() => load(spec),
                _ => false,
            };
            if let Some(ProgramSpec { kind: Ok(kind), .. }) = spec {
                p.set_kind(
                    kind.prog_type,
                    kind.expected_attach_type.unwrap_or(0),
                    kind.flags,
                );
            }
            p.set_autoload(on);
            programs.push((name, p));
        }
        for m in obj.maps() {
            // As veristat does: never pin, and give maps sized at run time
            // by their loader one entry so they can be created.
            m.unpin();
            let sized_by_kernel = matches!(
                m.map_type(),
                libbpf_sys::BPF_MAP_TYPE_SK_STORAGE
                    | libbpf_sys::BPF_MAP_TYPE_TASK_STORAGE
                    | libbpf_sys::BPF_MAP_TYPE_INODE_STORAGE
                    | libbpf_sys::BPF_MAP_TYPE_CGROUP_STORAGE
                    | libbpf_sys::BPF_MAP_TYPE_CGRP_STORAGE
                    | libbpf_sys::BPF_MAP_TYPE_STRUCT_OPS
            );
            if !sized_by_kernel && m.max_entries() == 0 {
                m.set_max_entries(1);
            }
        }
        Ok(Opened { obj, programs })
    }

    /// Creates the maps, then loads every program with its own verifier log.
    /// A program that fails is reported in its [`LoadedProgram::error`];
    /// only object-wide problems fail the call.
    pub fn load(&self, log: LogOptions) -> Result<LoadedObject, ObjectError> {
        let cpus = crate::sys::possible_cpus().map_err(ObjectError::Cpus)?;
        let loadable: Vec<&ProgramSpec> = self.programs.iter().filter(|p| p.kind.is_ok()).collect();
        // At level 1 the kernel formats every instruction and then discards
        // it all when the program is accepted, keeping only the statistics:
        // ask for those alone first (3-4x faster, as veristat does) and for
        // the walk only where a program fails. Statistics (and a
        // rejection's message) fit in a page; a log that does not is
        // retried alone with a growing buffer. A larger buffer per program
        // costs page faults: 64 KiB made loading in a TCG guest 40% slower.
        let quick = if log.level & 3 == 1 {
            LogOptions {
                level: log.level & 4,
                initial_size: 4 << 10,
                ..log
            }
        } else {
            log
        };

        let mut results: Vec<(&ProgramSpec, ProgramResult)> = Vec::new();
        let mut together = None;
        if !loadable.is_empty() {
            (together, results) = self.load_all_at_once(quick)?;
        }
        if together.is_none() {
            let mut known = std::mem::take(&mut results);
            results = loadable
                .iter()
                .map(|spec| {
                    let result = match known.iter().position(|(s, _)| s.name == spec.name) {
                        Some(i) => self.walk_if_wanted(spec, known.swap_remove(i).1, quick, log)?,
                        None => self.load_one(spec, quick, log)?,
                    };
                    Ok((*spec, result))
                })
                .collect::<Result<_, ObjectError>>()?;
            let accepted: Vec<&str> = results
                .iter()
                .filter(|(_, r)| r.error.is_none())
                .map(|(s, _)| s.name.as_str())
                .collect();
            // Maps and the accepted programs once more, sharing maps (tail
            // calls, cases reading what another program wrote). An object
            // of maps only still gets its maps.
            if !accepted.is_empty() || loadable.is_empty() {
                let mut opened = self.open(&|s| accepted.contains(&s.name.as_str()))?;
                opened.obj.load().map_err(|f| ObjectError::Load {
                    error: f.error(),
                    messages: f.messages,
                })?;
                together = Some(opened);
            }
        }

        let mut maps = Vec::new();
        let mut fds: Vec<(String, OwnedFd)> = Vec::new();
        if let Some(opened) = &together {
            for m in opened.obj.maps() {
                let spec = MapSpec::new(m);
                let initial = m.initial_value();
                let fd = m
                    .dup_fd()
                    .unwrap_or_else(|| Err(io::Error::other("not created")))
                    .map_err(|error| ObjectError::Fd {
                        what: format!("map `{}`", spec.name),
                        error,
                    })?;
                maps.push(Map::new(spec, initial, fd, cpus));
            }
            for (name, p) in &opened.programs {
                if let Some(fd) = p.dup_fd() {
                    let fd = fd.map_err(|error| ObjectError::Fd {
                        what: format!("program `{name}`"),
                        error,
                    })?;
                    fds.push((name.clone(), fd));
                }
            }
        }
        maps.sort_by(|a, b| a.spec.name.cmp(&b.spec.name));

        let mut programs = Vec::with_capacity(self.programs.len());
        for spec in &self.programs {
            let Some((_, result)) = results.iter_mut().find(|(s, _)| s.name == spec.name) else {
                let reason = match &spec.kind {
                    Err(NotLoadable(reason)) => reason.clone(),
                    Ok(_) => "not loaded".to_owned(),
                };
                programs.push(LoadedProgram::not_loaded(spec, log.level, reason));
                continue;
            };
            let fd = if result.error.is_none() {
                fds.iter()
                    .position(|(n, _)| *n == spec.name)
                    .map(|i| fds.swap_remove(i).1)
            } else {
                None
            };
            programs.push(LoadedProgram {
                spec: spec.clone(),
                fd,
                log: std::mem::take(&mut result.log),
                error: result.error.take(),
                load_time: result.load_time,
                insn_cnt: result.insn_cnt,
            });
        }
        Ok(LoadedObject {
            maps,
            programs,
            libbpf: together,
        })
    }

    /// Every loadable program in one libbpf load, each with its own
    /// statistics log. `None` when anything failed (then nothing is kept).
    #[expect(clippy::type_complexity, reason = "private, used once")]
    fn load_all_at_once(
        &self,
        quick: LogOptions,
    ) -> Result<(Option<Opened>, Vec<(&ProgramSpec, ProgramResult)>), ObjectError> {
        let mut opened = self.open(&|_| true)?;
        let mut buffers: Vec<Vec<u8>> = Vec::new();
        let mut specs = Vec::new();
        for (name, p) in &opened.programs {
            let Some(spec) = self
                .programs
                .iter()
                .find(|s| s.name == *name && s.kind.is_ok())
            else {
                continue;
            };
            let mut buf = vec![
                0u8;
                if quick.level == 0 {
                    0
                } else {
                    quick.initial_size
                }
            ];
            // SAFETY: `buffers` keeps every buffer (heap memory that does not
            // move when the Vec holding it grows) until after the load.
            unsafe { p.set_log(quick.level, &mut buf) };
            buffers.push(buf);
            specs.push((spec, *p));
        }
        let start = Instant::now();
        let loaded = opened.obj.load();
        let elapsed = start.elapsed();
        // libbpf loads programs in order and stops at the first failure:
        // those before it were accepted (their statistics logs say so), the
        // one it names was refused by the kernel, the rest are unknown.
        let failure = loaded.err();
        let mut results = Vec::new();
        for ((spec, p), buf) in specs.into_iter().zip(buffers) {
            let log = VerifierLog {
                text: text_of(&buf),
                level: quick.level,
                truncated: false,
                attempts: 1,
            };
            let error = match &failure {
                None => None,
                Some(f) => {
                    let named = format!("prog '{}': BPF program load failed", spec.name);
                    // A log that did not fit is not a verdict: the program
                    // is loaded alone with a growing buffer.
                    if f.errno == libc::ENOSPC {
                        continue;
                    } else if f.messages.iter().any(|m| m.contains(&named)) {
                        classify(spec, f, &log)
                    } else if processed_insns(&log.text).is_some() {
                        None
                    } else {
                        continue;
                    }
                }
            };
            let result = ProgramResult {
                load_time: if error.is_none() {
                    verification_time(&log.text).unwrap_or(elapsed)
                } else {
                    elapsed
                },
                log,
                error,
                insn_cnt: p.insn_cnt(),
            };
            results.push((spec, result));
        }
        Ok((failure.is_none().then_some(opened), results))
    }

    /// `spec` alone in a fresh copy of the object: statistics first, the
    /// full log at `log`'s level if it fails.
    fn load_one(
        &self,
        spec: &ProgramSpec,
        quick: LogOptions,
        log: LogOptions,
    ) -> Result<ProgramResult, ObjectError> {
        let first = self.attempt(spec, quick)?;
        self.walk_if_wanted(spec, first, quick, log)
    }

    /// A failed statistics-only load of `spec` loaded again at `log`'s
    /// level for the walk, unless the program ran into a complexity limit
    /// or the budget (its statistics log already holds the error line).
    fn walk_if_wanted(
        &self,
        spec: &ProgramSpec,
        mut first: ProgramResult,
        quick: LogOptions,
        log: LogOptions,
    ) -> Result<ProgramResult, ObjectError> {
        let walk_wanted = first.error.is_some() && quick.level != log.level;
        let rejected_by_kernel = matches!(first.error, Some(ProgramLoadError::Rejected { .. }));
        if walk_wanted && rejected_by_kernel {
            // A program that ran into the verifier's complexity limits (or
            // walked more than the budget) would log megabytes at level 1
            // and keep a VM busy for minutes formatting them: its
            // statistics log already holds the error line.
            // The statistics say how long the walk is; without them, a
            // limit's message or E2BIG says it is too long.
            let too_big = match processed_insns(&first.log.text) {
                Some(n) => n > log.walk_budget,
                None => {
                    hit_complexity_limit(&first.log.text)
                        || matches!(first.error, Some(ProgramLoadError::Rejected { errno, .. }) if errno == libc::E2BIG)
                }
            };
            if !too_big {
                let mut full = self.attempt(spec, log)?;
                // Keep the verdict of the first attempt if the second one
                // differs only by a log that did not fit.
                if full.error.is_some() {
                    return Ok(full);
                }
                full.error = first.error.take();
                return Ok(full);
            }
        }
        Ok(first)
    }

    fn attempt(&self, spec: &ProgramSpec, opts: LogOptions) -> Result<ProgramResult, ObjectError> {
        let mut insn_cnt = 0;
        let mut load_time = Duration::ZERO;
        let mut open_error = None;
        let (res, log) = with_log(opts, |level, buf| {
            let mut opened = match self.open(&|s| s.name == spec.name) {
                Ok(o) => o,
                Err(e) => {
                    open_error = Some(e);
                    return (Ok(()), 0);
                }
            };
            let p = opened
                .programs
                .iter()
                .find(|(n, _)| *n == spec.name)
                .map(|(_, p)| *p)
                .expect("the spec came from this object");
            // SAFETY: `buf` outlives the load below.
            unsafe { p.set_log(level, buf) };
            let start = Instant::now();
            let res = opened.obj.load();
            load_time = start.elapsed();
            insn_cnt = p.insn_cnt();
            (res, 0)
        });
        if let Some(e) = open_error {
            return Err(e);
        }
        let error = match res {
            Ok(()) => None,
            Err(failure) => classify(spec, &failure, &log),
        };
        Ok(ProgramResult {
            load_time: if error.is_none() {
                verification_time(&log.text).unwrap_or(load_time)
            } else {
                load_time
            },
            log,
            error,
            insn_cnt,
        })
    }
}

/// The verifier's complexity limits (instructions processed, pending
/// branches, states), as it words them in the log. Their errno varies by
/// kernel (E2BIG, and EFAULT for the jump sequence on 6.18).
fn hit_complexity_limit(log: &str) -> bool {
    const LIMITS: &[&str] = &[
        "BPF program is too large",
        "jumps is too complex",
        "BPF program is too complex",
    ];
    log.lines().any(|l| LIMITS.iter().any(|m| l.contains(m)))
}

/// Reads `processed N insns` from a statistics log.
fn processed_insns(log: &str) -> Option<u32> {
    log.lines().rev().find_map(|l| {
        l.strip_prefix("processed ")?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    })
}

/// The verifier's own measure (`verification time N usec`), which is what
/// veristat reports as duration; the wall time of a whole-object load would
/// count map creation and the other programs.
fn verification_time(log: &str) -> Option<Duration> {
    log.lines().rev().find_map(|l| {
        let rest = l.strip_prefix("verification time ")?;
        let usec: u64 = rest.split_whitespace().next()?.parse().ok()?;
        Some(Duration::from_micros(usec))
    })
}

/// What a failed load of `spec` alone says about it. libbpf says "BPF
/// program load failed" exactly when `BPF_PROG_LOAD` itself returned the
/// error. Without that, either the verifier accepted the program and libbpf
/// failed afterwards (filling a prog array slot with a program that this
/// load left out: the program is fine, `None`), or libbpf stopped before
/// the kernel saw it (CO-RE against this kernel's BTF, an attach target, a
/// map, a kconfig value, a ksym), which its messages name.
fn classify(spec: &ProgramSpec, failure: &Failure, log: &VerifierLog) -> Option<ProgramLoadError> {
    let kernel_said_no = failure
        .messages
        .iter()
        .any(|m| m.contains("BPF program load failed"));
    let error = failure.error();
    if !kernel_said_no {
        if processed_insns(&log.text).is_some() {
            return None;
        }
        let reason = failure
            .messages
            .iter()
            .filter(|m| !m.contains("failed to load object") && !m.contains("-- BEGIN"))
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join("; ");
        return Some(ProgramLoadError::NotLoaded {
            reason: if reason.is_empty() {
                strip_os_error_suffix(&error)
            } else {
                reason
            },
        });
    }
    // EINVAL before the verifier said anything: ask whether the kernel knows
    // the program type at all.
    if let Ok(kind) = &spec.kind
        && failure.errno == libc::EINVAL
        && log.text.trim().is_empty()
        && matches!(crate::probe::prog_type(kind.prog_type), Ok(false))
    {
        return Some(ProgramLoadError::NotLoaded {
            reason: format!(
                "this kernel does not know {} programs (BPF_PROG_TYPE {})",
                kind.name, kind.prog_type
            ),
        });
    }
    let mut message = strip_os_error_suffix(&error);
    // EPERM before the verifier said anything: say what on this machine
    // refuses it.
    if failure.errno == libc::EPERM
        && log.text.trim().is_empty()
        && let Ok(kind) = &spec.kind
    {
        let why: Vec<String> = crate::permission::explain_permission_denied(kind.prog_type)
            .iter()
            .map(ToString::to_string)
            .collect();
        message = format!("{message} before verification: {}", why.join("; "));
    }
    Some(ProgramLoadError::Rejected {
        errno: failure.errno,
        message,
    })
}

fn text_of(buf: &[u8]) -> String {
    let len = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..len]).into_owned()
}

/// The offset and size of every function, by (ELF section, name), read in
/// one pass over the symbol table.
fn code_ranges(data: &[u8]) -> std::collections::HashMap<(String, String), CodeRange> {
    use object::{Object as _, ObjectSection as _, ObjectSymbol as _};
    let Ok(elf) = object::File::parse(data) else {
        return std::collections::HashMap::new();
    };
    elf.symbols()
        .filter(|s| s.kind() == object::SymbolKind::Text)
        .filter_map(|s| {
            let section = elf.section_by_index(s.section_index()?).ok()?;
            let key = (section.name().ok()?.to_owned(), s.name().ok()?.to_owned());
            Some((
                key,
                CodeRange {
                    offset: s.address(),
                    size: s.size(),
                },
            ))
        })
        .collect()
}

/// A section (`.BTF`, `.BTF.ext`) read with the object crate: libbpf keeps
/// its copies private.
fn elf_section(data: &[u8], name: &str) -> Option<Vec<u8>> {
    use object::{Object as _, ObjectSection as _};
    let elf = object::File::parse(data).ok()?;
    let section = elf.section_by_name(name)?;
    section.data().ok().map(<[u8]>::to_vec)
}

/// A libbpf object and its programs by name, before or after load.
struct Opened {
    obj: libbpf::Object,
    programs: Vec<(String, libbpf::Program)>,
}

/// One program's outcome before its fd is attached.
struct ProgramResult {
    log: VerifierLog,
    error: Option<ProgramLoadError>,
    load_time: Duration,
    insn_cnt: u32,
}

/// An object whose maps exist in the kernel. Dropping it closes every fd,
/// which frees everything the harness created and nothing else.
pub struct LoadedObject {
    pub maps: Vec<Map>,
    pub programs: Vec<LoadedProgram>,
    /// libbpf's own object, kept for attaching (its links need it).
    libbpf: Option<Opened>,
}

impl std::fmt::Debug for LoadedObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedObject")
            .field("maps", &self.maps)
            .field("programs", &self.programs)
            .finish_non_exhaustive()
    }
}

impl LoadedObject {
    pub(crate) fn libbpf_program(&self, name: &str) -> Option<libbpf::Program> {
        let opened = self.libbpf.as_ref()?;
        opened
            .programs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, p)| *p)
    }

    pub fn program(&self, name: &str) -> Option<&LoadedProgram> {
        self.programs.iter().find(|p| p.spec.name == name)
    }

    pub fn map(&self, name: &str) -> Option<&Map> {
        self.maps.iter().find(|m| m.spec.name == name)
    }
}

#[derive(Debug)]
pub struct LoadedProgram {
    pub spec: ProgramSpec,
    /// Present when the kernel accepted the program.
    pub fd: Option<OwnedFd>,
    pub log: VerifierLog,
    pub error: Option<ProgramLoadError>,
    /// The verifier's own time for an accepted program (as veristat
    /// reports it), the `BPF_PROG_LOAD` call's otherwise.
    pub load_time: Duration,
    /// Instructions handed to the kernel (after relocation, subprograms
    /// included): veristat's "program size".
    pub insn_cnt: u32,
}

impl LoadedProgram {
    fn not_loaded(spec: &ProgramSpec, level: u32, reason: String) -> Self {
        Self {
            spec: spec.clone(),
            fd: None,
            log: VerifierLog {
                level,
                ..VerifierLog::default()
            },
            error: Some(ProgramLoadError::NotLoaded { reason }),
            load_time: Duration::ZERO,
            insn_cnt: 0,
        }
    }
}
