//! A project as the harness sees it, and everything that happens before a
//! kernel is involved.
//!
//! [`Project`] says where the programs, cases, snapshots, kernel pins and
//! outputs live, from the project's configuration ([`Project::load`]:
//! `ebpf-harness.toml` or `[workspace.metadata.ebpf-harness]`). [`prepare`] compiles the programs, parses every object once
//! (programs, maps, BTF types), reads and checks every test-case file
//! against its object and collects the expected verifier outcomes, all
//! without a kernel, so the result is the same on any machine. Every
//! case-file mistake is reported at once, with file, line and column.
//!
//! [`collect_inputs`] and [`prepare_paths`] do the same for objects and
//! sources named on the command line (`verify PATH...`), and
//! [`Prepared::select`] narrows either to the programs `--prog` patterns
//! ([`ProgramPattern`]) match.

mod config;
mod inputs;
mod layout;
mod prepare;
mod select;
mod shard;

pub use config::{
    BuildOverride, BuildSettings, CONFIG_FILE, ConfigError, DefaultKernels, Location, PathGlob,
    find_root,
};
pub use inputs::{EM_BPF, Input, InputError, InputKind, NotBpf, collect_inputs};
pub use layout::Project;
pub use prepare::{
    Origin, PrepareError, PrepareOptions, Prepared, PreparedObject, ProgramExpectation,
    ProjectObject, Stage, UnopenedObject, build, prepare, prepare_paths,
};
pub use select::{BadFilter, BadPattern, Filter, FilterMatchesNothing, NoMatch, ProgramPattern};
pub use shard::{BadShard, Shard};
