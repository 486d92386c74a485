//! Parsing (no syscalls) and loading (maps, BTF, each program separately).

use std::{
    collections::HashSet,
    io,
    os::fd::{AsFd as _, AsRawFd as _, OwnedFd},
    time::{Duration, Instant},
};

use aya_obj::btf::Btf;
use object::{Object as _, ObjectSection as _};

use crate::{
    log::{LogOptions, VerifierLog, with_log},
    map::{Map, MapKind},
    program::ProgramKind,
    sys::{self, ProgLoadAttrs},
};

/// Why an object could not be prepared at all.
#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    #[error("not a BPF object aya-obj can parse: {0}")]
    Parse(#[from] aya_obj::ParseError),
    #[error("BTF of the object: {0}")]
    Btf(#[from] aya_obj::btf::BtfError),
    #[error("the kernel refused the object's BTF ({error}){}", log_suffix(log))]
    BtfLoad { error: io::Error, log: String },
    #[error("CO-RE relocation against the kernel's BTF failed: {0}")]
    CoreRelocation(#[from] aya_obj::btf::BtfRelocationError),
    #[error("creating map `{name}`: {error}")]
    MapCreate { name: String, error: String },
    #[error("map `{name}` is a map of maps, which the harness cannot create yet")]
    MapInMap { name: String },
    #[error("relocating map references: {0}")]
    Relocation(#[from] aya_obj::relocation::EbpfRelocationError),
    #[error("reading CPU topology: {0}")]
    Cpus(io::Error),
    #[error("skipping unknown program sections: {0}")]
    Sections(String),
}

fn log_suffix(log: &str) -> String {
    if log.trim().is_empty() {
        String::new()
    } else {
        format!("; BTF log:\n{log}")
    }
}

/// Why one program did not load.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProgramLoadError {
    /// The verifier (or the kernel) said no; the log says why.
    #[error("BPF_PROG_LOAD failed: {message} (errno {errno})")]
    Rejected { errno: i32, message: String },
    /// The harness did not attempt the load.
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
}

/// Why the harness cannot hand a program to the kernel (an unknown section,
/// a section without an attach target, ...).
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
    pub(crate) fn new(name: String, m: &aya_obj::Map) -> Self {
        let (btf_key_type_id, btf_value_type_id) = match m {
            aya_obj::Map::Btf(b) => (b.def.btf_key_type_id, b.def.btf_value_type_id),
            aya_obj::Map::Legacy(_) => (0, 0),
        };
        Self {
            name,
            map_type: harness_protocol::MapType(m.map_type()),
            key_size: m.key_size(),
            value_size: m.value_size(),
            max_entries: m.max_entries(),
            kind: MapKind::from_section(m.section_kind()),
            btf_key_type_id,
            btf_value_type_id,
        }
    }
}

/// A parsed object file. Parsing never touches the kernel, and happens once:
/// loading starts from a copy of the parsed object.
#[derive(Clone, Debug)]
pub struct ObjectFile {
    obj: aya_obj::Object,
    /// The raw `.BTF` section.
    btf: Option<Vec<u8>>,
    programs: Vec<ProgramSpec>,
    maps: Vec<MapSpec>,
}

impl ObjectFile {
    pub fn parse(data: Vec<u8>) -> Result<Self, ObjectError> {
        let parse_elf = |data| {
            object::File::parse(data)
                .map_err(|e| ObjectError::Parse(aya_obj::ParseError::ElfError(e)))
        };
        let elf = parse_elf(&*data)?;
        let unknown = crate::sections::unknown_program_sections(&elf);
        let hidden;
        let (data, elf) = if unknown.is_empty() {
            (&data, elf)
        } else {
            // aya-obj must not see them: a copy with them hidden.
            let indexes: Vec<usize> = unknown.iter().map(|u| u.index).collect();
            hidden = crate::sections::hide(&data, &indexes).map_err(ObjectError::Sections)?;
            (&hidden, parse_elf(&hidden)?)
        };
        let btf = elf
            .section_by_name(".BTF")
            .and_then(|s| s.data().ok())
            .map(<[u8]>::to_vec);
        let obj = aya_obj::Object::parse(data)?;
        let mut programs: Vec<ProgramSpec> = obj
            .programs
            .iter()
            .map(|(name, prog)| {
                let section = elf
                    .section_by_index(object::SectionIndex(prog.section_index))
                    .ok()
                    .and_then(|s| s.name().ok().map(str::to_owned))
                    .unwrap_or_default();
                let kind = ProgramKind::from_section(&prog.section, &section).map_err(NotLoadable);
                ProgramSpec {
                    name: name.clone(),
                    section,
                    kind,
                }
            })
            .collect();
        for u in &unknown {
            for f in &u.functions {
                programs.push(ProgramSpec {
                    name: f.clone(),
                    section: u.name.clone(),
                    kind: Err(NotLoadable(crate::sections::reason(&u.name))),
                });
            }
        }
        programs.sort_by(|a, b| a.name.cmp(&b.name));
        let mut maps: Vec<MapSpec> = obj
            .maps
            .iter()
            .map(|(name, m)| MapSpec::new(name.clone(), m))
            .collect();
        maps.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Self {
            obj,
            btf,
            programs,
            maps,
        })
    }

    /// Programs sorted by name.
    pub fn programs(&self) -> &[ProgramSpec] {
        &self.programs
    }

    /// Loads `program` as another kind than its section says (a section name
    /// the loader reads differently from libbpf, a type being probed).
    /// Returns false when there is no such program.
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

    /// Creates the maps, then loads every program on its own with its own
    /// verifier log. A rejected program is reported in its
    /// [`LoadedProgram::error`]; only object-wide problems fail the call.
    pub fn load(&self, log: LogOptions) -> Result<LoadedObject, ObjectError> {
        let mut obj = self.obj.clone();
        let features = aya::features();

        let btf_fd = match features
            .btf()
            .map(|f| obj.fixup_and_sanitize_btf(f))
            .transpose()?
            .flatten()
        {
            Some(btf) => Some(load_btf(&btf.to_bytes())?),
            None => None,
        };

        let mut kernel_btf: Option<Result<Btf, String>> = None;
        let mut kernel_btf = move || {
            kernel_btf
                .get_or_insert_with(|| {
                    Btf::from_sys_fs().map_err(|e| format!("reading /sys/kernel/btf/vmlinux: {e}"))
                })
                .clone()
        };
        if obj.has_btf_relocations() {
            let btf = kernel_btf().map_err(|e| ObjectError::BtfLoad {
                error: io::Error::other(e),
                log: String::new(),
            })?;
            obj.relocate_btf(&btf)?;
        }

        let cpus = sys::possible_cpus().map_err(ObjectError::Cpus)?;
        let mut names: Vec<String> = obj.maps.keys().cloned().collect();
        names.sort();
        let mut maps = Vec::with_capacity(names.len());
        let mut map_objs = Vec::with_capacity(names.len());
        for name in names {
            let map_obj = obj
                .maps
                .remove(&name)
                .expect("name came from the map table");
            if map_obj.inner().is_some() {
                return Err(ObjectError::MapInMap { name });
            }
            let data = aya::maps::MapData::create(
                map_obj.clone(),
                &name,
                btf_fd.as_ref().map(|f| f.as_fd()),
            )
            .map_err(|e| ObjectError::MapCreate {
                name: name.clone(),
                error: error_chain(&e),
            })?;
            let map = Map::new(name.clone(), &map_obj, data, cpus);
            map.finalize().map_err(|e| ObjectError::MapCreate {
                name: name.clone(),
                error: e.to_string(),
            })?;
            maps.push(map);
            map_objs.push((name, map_obj));
        }

        let text_sections: HashSet<usize> =
            obj.functions.keys().map(|(section, _)| *section).collect();
        obj.relocate_maps(
            maps.iter()
                .zip(&map_objs)
                .map(|(map, (name, o))| (name.as_str(), map.fd().as_raw_fd(), o)),
            &text_sections,
        )?;
        obj.relocate_calls(&text_sections)?;
        obj.sanitize_functions(features);

        let kernel_version = aya::util::KernelVersion::current().map_or(0, |v| v.code());
        let mut programs = Vec::with_capacity(self.programs.len());
        for spec in &self.programs {
            let kind = match &spec.kind {
                Ok(kind) => kind,
                Err(NotLoadable(reason)) => {
                    programs.push(LoadedProgram::not_loaded(spec, log.level, reason.clone()));
                    continue;
                }
            };
            let prog = &obj.programs[&spec.name];
            let function = &obj.functions[&prog.function_key()];
            let attach_btf_id = match &kind.attach_target {
                None => 0,
                Some((target, btf_kind)) => match kernel_btf().and_then(|btf| {
                    btf.id_by_type_name_kind(target, *btf_kind).map_err(|e| {
                        format!("attach target `{target}` is not in the kernel's BTF: {e}")
                    })
                }) {
                    Ok(id) => id,
                    Err(reason) => {
                        programs.push(LoadedProgram::not_loaded(spec, log.level, reason));
                        continue;
                    }
                },
            };
            let func_info = function.func_info.func_info_bytes();
            let line_info = function.line_info.line_info_bytes();
            let attrs = ProgLoadAttrs {
                name: &spec.name,
                prog_type: kind.prog_type,
                expected_attach_type: kind.expected_attach_type.unwrap_or(0),
                attach_btf_id,
                flags: kind.flags,
                insns: &function.instructions,
                license: &prog.license,
                kern_version: prog.kernel_version.unwrap_or(kernel_version),
                btf_fd: btf_fd.as_ref().map(|f| f.as_fd()),
                func_info: &func_info,
                func_info_cnt: function.func_info.len() as u32,
                func_info_rec_size: function.func_info_rec_size as u32,
                line_info: &line_info,
                line_info_cnt: function.line_info.len() as u32,
                line_info_rec_size: function.line_info_rec_size as u32,
            };
            let mut load_time = Duration::ZERO;
            let mut attempt = |opts: LogOptions| {
                with_log(opts, |level, buf| {
                    let start = Instant::now();
                    let out = sys::prog_load(&attrs, level, buf);
                    load_time = start.elapsed();
                    out
                })
            };
            // At level 1 the kernel formats every instruction and then
            // discards it all when the program is accepted, keeping only the
            // statistics: ask for those alone first (3-4x faster, as
            // veristat does) and for the walk only if the program fails.
            let (res, verifier_log) = if log.level & 3 == 1 {
                let stats_only = LogOptions {
                    level: log.level & 4,
                    initial_size: 64 << 10,
                    ..log
                };
                match attempt(stats_only) {
                    (Ok(fd), quick) => (
                        Ok(fd),
                        VerifierLog {
                            level: log.level,
                            ..quick
                        },
                    ),
                    (Err(_), _) => attempt(log),
                }
            } else {
                attempt(log)
            };
            let (fd, error) = match res {
                Ok(fd) => (Some(fd), None),
                // EINVAL before the verifier said anything: ask whether the
                // kernel knows the program type at all.
                Err(e)
                    if e.raw_os_error() == Some(libc::EINVAL)
                        && verifier_log.text.trim().is_empty()
                        && matches!(crate::probe::prog_type(kind.prog_type), Ok(false)) =>
                {
                    (
                        None,
                        Some(ProgramLoadError::NotLoaded {
                            reason: format!(
                                "this kernel does not know {} programs (BPF_PROG_TYPE {})",
                                kind.name, kind.prog_type
                            ),
                        }),
                    )
                }
                Err(e) => (
                    None,
                    Some(ProgramLoadError::Rejected {
                        errno: e.raw_os_error().unwrap_or(0),
                        message: strip_os_error_suffix(&e),
                    }),
                ),
            };
            programs.push(LoadedProgram {
                spec: spec.clone(),
                fd,
                log: verifier_log,
                error,
                load_time,
                insn_cnt: function.instructions.len() as u32,
            });
        }

        Ok(LoadedObject {
            maps,
            programs,
            _btf_fd: btf_fd,
        })
    }
}

/// Loads BTF without a log first (libbpf's habit: the log is only interesting
/// on failure and can be large), then again with one to explain a failure.
fn load_btf(data: &[u8]) -> Result<OwnedFd, ObjectError> {
    let (first, _) = sys::btf_load(data, 0, &mut []);
    match first {
        Ok(fd) => Ok(fd),
        Err(_) => {
            let (res, log) = with_log(
                LogOptions {
                    level: 1,
                    ..LogOptions::default()
                },
                |level, buf| sys::btf_load(data, level, buf),
            );
            res.map_err(|error| ObjectError::BtfLoad {
                error,
                log: log.text,
            })
        }
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

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}

/// An object whose maps exist in the kernel. Dropping it closes every fd,
/// which frees everything the harness created and nothing else.
#[derive(Debug)]
pub struct LoadedObject {
    pub maps: Vec<Map>,
    pub programs: Vec<LoadedProgram>,
    _btf_fd: Option<OwnedFd>,
}

impl LoadedObject {
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
    /// Duration of the `BPF_PROG_LOAD` call whose log we kept.
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
