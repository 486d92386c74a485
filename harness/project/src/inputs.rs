//! Objects and sources named on the command line (`verify PATH...`):
//! compiled BPF objects, `*.bpf.c` sources and directories searched for
//! both, each with a name that no other input shares.

use std::{
    collections::BTreeSet,
    fmt, fs, io,
    path::{Path, PathBuf},
};

/// `e_machine` of a BPF ELF file.
pub const EM_BPF: u16 = 247;

/// What a path given on the command line turned out to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputKind {
    /// A `*.bpf.c` file, compiled like the project's programs.
    Source,
    /// An ELF file with `e_machine == EM_BPF`.
    Object,
}

/// One object or source to verify.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Input {
    /// Where it is (canonical).
    pub path: PathBuf,
    /// The `object` of its rows and findings: the path relative to the
    /// working directory when it is under it, else the absolute path. Two
    /// inputs never share a name.
    pub name: String,
    pub kind: InputKind,
}

/// Why a file named explicitly is not something `verify` can take.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NotBpf {
    /// No ELF magic at the start.
    NotElf,
    /// An ELF file for another machine.
    OtherMachine(u16),
    /// A C file not named `*.bpf.c`.
    PlainC,
}

impl fmt::Display for NotBpf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotElf => f.write_str("not an ELF file"),
            Self::OtherMachine(m) => {
                write!(f, "an ELF file for e_machine {m}, not EM_BPF ({EM_BPF})")
            }
            Self::PlainC => f.write_str("a C file not named *.bpf.c"),
        }
    }
}

/// A path on the command line that gives nothing to verify.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("{}: no such file or directory", .0.display())]
    Missing(PathBuf),
    #[error(
        "{}: {why}; expected a BPF object (ELF, e_machine EM_BPF), a *.bpf.c source or a directory",
        path.display()
    )]
    NotBpf { path: PathBuf, why: NotBpf },
    #[error(
        "{}: no BPF objects or *.bpf.c sources in this directory or below",
        .0.display()
    )]
    EmptyDirectory(PathBuf),
    #[error("{}: {error}", path.display())]
    Io { path: PathBuf, error: io::Error },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> InputError + '_ {
    move |error| InputError::Io {
        path: path.to_owned(),
        error,
    }
}

/// What a file is, from its name and first bytes, or why it is neither a
/// BPF object nor a `*.bpf.c` source.
fn classify(path: &Path) -> Result<Result<InputKind, NotBpf>, InputError> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    if name.ends_with(".bpf.c") {
        return Ok(Ok(InputKind::Source));
    }
    let mut header = [0u8; 20];
    let read = {
        use io::Read as _;
        let mut f = fs::File::open(path).map_err(io_err(path))?;
        let mut n = 0;
        while n < header.len() {
            match f.read(&mut header[n..]).map_err(io_err(path))? {
                0 => break,
                k => n += k,
            }
        }
        n
    };
    if read < header.len() || !header.starts_with(b"\x7fELF") {
        return Ok(Err(if name.ends_with(".c") {
            NotBpf::PlainC
        } else {
            NotBpf::NotElf
        }));
    }
    // EI_DATA (byte 5): 1 little-endian, 2 big-endian; e_machine at 18.
    let machine = if header[5] == 2 {
        u16::from_be_bytes([header[18], header[19]])
    } else {
        u16::from_le_bytes([header[18], header[19]])
    };
    Ok(if machine == EM_BPF {
        Ok(InputKind::Object)
    } else {
        Err(NotBpf::OtherMachine(machine))
    })
}

/// Every `*.bpf.c` and BPF ELF file under `dir`, sorted, recursively;
/// hidden entries (`.git`) are skipped and symbolic links to directories
/// are not followed. Other files are skipped silently.
fn walk(dir: &Path, out: &mut Vec<(PathBuf, InputKind)>) -> Result<(), InputError> {
    let mut entries: Vec<fs::DirEntry> = fs::read_dir(dir)
        .map_err(io_err(dir))?
        .collect::<Result<_, _>>()
        .map_err(io_err(dir))?;
    entries.sort_by_key(fs::DirEntry::file_name);
    for e in entries {
        if e.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let path = e.path();
        let kind = e.file_type().map_err(io_err(&path))?;
        if kind.is_dir() {
            walk(&path, out)?;
        } else if path.is_file()
            && let Ok(kind) = classify(&path)?
        {
            out.push((path, kind));
        }
    }
    Ok(())
}

/// The inputs `paths` name, relative to `cwd`, in the order given
/// (directories' contents sorted), each file once. A file named explicitly
/// must be a BPF object or a `*.bpf.c` source; a directory must hold at
/// least one.
pub fn collect_inputs(paths: &[PathBuf], cwd: &Path) -> Result<Vec<Input>, InputError> {
    let cwd = cwd.canonicalize().map_err(io_err(cwd))?;
    let mut found: Vec<(PathBuf, InputKind)> = Vec::new();
    for given in paths {
        let path = cwd.join(given);
        let meta = match fs::metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(InputError::Missing(given.clone()));
            }
            Err(error) => {
                return Err(InputError::Io {
                    path: given.clone(),
                    error,
                });
            }
        };
        if meta.is_dir() {
            let before = found.len();
            walk(&path, &mut found)?;
            if found.len() == before {
                return Err(InputError::EmptyDirectory(given.clone()));
            }
        } else {
            match classify(&path)? {
                Ok(kind) => found.push((path, kind)),
                Err(why) => {
                    return Err(InputError::NotBpf {
                        path: given.clone(),
                        why,
                    });
                }
            }
        }
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for (path, kind) in found {
        let path = path.canonicalize().map_err(io_err(&path))?;
        if !seen.insert(path.clone()) {
            continue;
        }
        // Canonical paths differ, so do names: relative ones under `cwd`,
        // absolute ones (starting with `/`) elsewhere.
        let name = path
            .strip_prefix(&cwd)
            .unwrap_or(&path)
            .display()
            .to_string();
        out.push(Input { path, name, kind });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn elf(machine: u16) -> Vec<u8> {
        let mut h = vec![0u8; 64];
        h[..4].copy_from_slice(b"\x7fELF");
        h[4] = 2;
        h[5] = 1;
        h[18..20].copy_from_slice(&machine.to_le_bytes());
        h
    }

    #[test]
    fn files_are_told_apart_by_name_and_e_machine() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        fs::create_dir_all(d.join("a/deep")).unwrap();
        fs::create_dir_all(d.join("b")).unwrap();
        fs::create_dir_all(d.join(".git")).unwrap();
        fs::write(d.join("a/prog.o"), elf(EM_BPF)).unwrap();
        fs::write(d.join("b/prog.o"), elf(EM_BPF)).unwrap();
        fs::write(d.join("a/deep/x.bpf.c"), "int x;\n").unwrap();
        fs::write(d.join("a/host.o"), elf(62)).unwrap();
        fs::write(d.join("a/notes.txt"), "hello").unwrap();
        fs::write(d.join(".git/hidden.o"), elf(EM_BPF)).unwrap();

        // A directory walk keeps BPF files only, and skips the rest silently.
        let all = collect_inputs(&[PathBuf::from(".")], d).unwrap();
        let names: Vec<(&str, InputKind)> = all.iter().map(|i| (i.name.as_str(), i.kind)).collect();
        assert_eq!(
            names,
            [
                ("a/deep/x.bpf.c", InputKind::Source),
                ("a/prog.o", InputKind::Object),
                ("b/prog.o", InputKind::Object),
            ]
        );
        // Named twice (directly and through a directory): once.
        let twice = collect_inputs(&[PathBuf::from("b/prog.o"), PathBuf::from("b")], d).unwrap();
        assert_eq!(twice.len(), 1);
        // Outside the working directory: the absolute path.
        let outside = collect_inputs(&[PathBuf::from("../b/prog.o")], &d.join("a")).unwrap();
        assert_eq!(
            outside[0].name,
            d.canonicalize()
                .unwrap()
                .join("b/prog.o")
                .display()
                .to_string()
        );

        // Named explicitly, a file that is not BPF is an error naming it.
        let err = collect_inputs(&[PathBuf::from("a/host.o")], d).unwrap_err();
        assert!(
            matches!(
                &err,
                InputError::NotBpf {
                    why: NotBpf::OtherMachine(62),
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(
            err.to_string()
                .starts_with("a/host.o: an ELF file for e_machine 62"),
            "{err}"
        );
        let err = collect_inputs(&[PathBuf::from("a/notes.txt")], d).unwrap_err();
        assert!(
            err.to_string().starts_with("a/notes.txt: not an ELF file;"),
            "{err}"
        );
        fs::write(d.join("plain.c"), "int y;\n").unwrap();
        let err = collect_inputs(&[PathBuf::from("plain.c")], d).unwrap_err();
        assert!(err.to_string().contains("not named *.bpf.c"), "{err}");
        let err = collect_inputs(&[PathBuf::from("nope.o")], d).unwrap_err();
        assert_eq!(err.to_string(), "nope.o: no such file or directory");
        fs::create_dir_all(d.join("empty/sub")).unwrap();
        let err = collect_inputs(&[PathBuf::from("empty")], d).unwrap_err();
        assert!(matches!(err, InputError::EmptyDirectory(_)), "{err:?}");
    }
}
