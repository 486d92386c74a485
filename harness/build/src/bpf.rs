//! `clang -target bpf` over every `*.bpf.c` in a directory, rebuilding only
//! what changed: an object is rebuilt when it is missing, when the compiler
//! or flags changed (recorded in a stamp file), or when the source or any
//! header it included (from clang's depfile) is newer than the object.

use std::{
    fmt, fs, io,
    path::{Path, PathBuf},
    process::Command,
    time::SystemTime,
};

use sha2::{Digest as _, Sha256};

/// How to compile.
#[derive(Clone, Debug)]
pub struct BpfBuild {
    /// Directory holding the `*.bpf.c` programs.
    pub source_dir: PathBuf,
    /// Where `<name>.bpf.o` (plus its depfile and stamp) go.
    pub out_dir: PathBuf,
    pub clang: PathBuf,
    pub include_dirs: Vec<PathBuf>,
    pub extra_cflags: Vec<String>,
}

/// A build under way: the output directory's lock, held until it drops.
struct Session {
    flags: Vec<String>,
    stamp: String,
    _lock: fs::File,
}

/// One compiled program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuiltObject {
    /// File stem without `.bpf.c`, e.g. `xdp_firewall`.
    pub name: String,
    pub source: PathBuf,
    pub object: PathBuf,
    /// False when the existing object was up to date.
    pub rebuilt: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(
        "{clang} not found: install clang (Debian/Ubuntu: `apt-get install clang llvm`) or set CLANG"
    )]
    ClangMissing { clang: String },
    #[error("{}: header `{header}` not found: {hint}", file.display())]
    HeaderMissing {
        file: PathBuf,
        header: String,
        hint: HeaderHint,
    },
    #[error("{}: clang failed:\n{stderr}", file.display())]
    Compile { file: PathBuf, stderr: String },
    #[error("no BPF programs (*.bpf.c) in {}", .0.display())]
    NoSources(PathBuf),
    #[error("{}: not a BPF program source: expected a C file (*.bpf.c or *.c)", .0.display())]
    NotASource(PathBuf),
    #[error("{}: {error}", path.display())]
    Io { path: PathBuf, error: io::Error },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> BuildError + '_ {
    move |error| BuildError::Io {
        path: path.to_owned(),
        error,
    }
}

/// What to do about a header clang could not find.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeaderHint {
    /// A package ships it and is not installed.
    Install { package: &'static str },
    /// `vmlinux.h` is generated from a kernel's BTF, not installed.
    GenerateVmlinux,
    /// glibc chose its 32-bit stubs: `-target bpf` defines no
    /// `__x86_64__`, so any libc header asks for `gnu/stubs-32.h`.
    LibcUnderBpfTarget,
    /// Its package is installed (or nothing ships it): the include path
    /// lacks the directory.
    IncludePath,
}

impl fmt::Display for HeaderHint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Install { package } => write!(
                f,
                "install {package} (Debian/Ubuntu: `apt-get install {package}`)"
            ),
            Self::GenerateVmlinux => f.write_str(
                "generate it from a kernel's BTF into an include directory: \
                 `ebpf-harness vmlinux-h --kernel 6.1 --output include/vmlinux.h` (a test \
                 kernel's types; `--kernel host` for the running kernel's; CO-RE relocates \
                 them on the others)",
            ),
            Self::LibcUnderBpfTarget => f.write_str(
                "a C library header was included: under `-target bpf` glibc takes the build \
                 for 32-bit and asks for its 32-bit stubs. Include kernel headers \
                 (<linux/types.h>, <bpf/bpf_helpers.h>) instead of libc's; or, if libc \
                 headers are really needed, install the multilib stubs \
                 (`apt-get install libc6-dev-i386`)",
            ),
            Self::IncludePath => f.write_str(
                "add the directory that holds it to the include directories \
                 (`include-dirs` in the harness configuration)",
            ),
        }
    }
}

/// The Debian/Ubuntu package that ships a header clang could not find.
pub fn header_package(header: &str) -> Option<&'static str> {
    if header.starts_with("bpf/") {
        Some("libbpf-dev")
    } else if header.starts_with("linux/")
        || header.starts_with("asm/")
        || header.starts_with("asm-generic/")
    {
        Some("linux-libc-dev")
    } else if matches!(
        header,
        "stdio.h" | "stdlib.h" | "string.h" | "stdint.h" | "errno.h" | "unistd.h"
    ) || header.starts_with("sys/")
        || header.starts_with("bits/")
        || header.starts_with("gnu/")
    {
        Some("libc6-dev")
    } else {
        None
    }
}

/// The hint for `header`; `installed` says whether a Debian package is
/// installed (dpkg's status), so an installed package is never offered.
pub fn header_hint(header: &str, installed: impl Fn(&str) -> bool) -> HeaderHint {
    if Path::new(header)
        .file_name()
        .is_some_and(|f| f == "vmlinux.h")
    {
        return HeaderHint::GenerateVmlinux;
    }
    if header == "gnu/stubs-32.h" {
        return HeaderHint::LibcUnderBpfTarget;
    }
    match header_package(header) {
        Some(package) if !installed(package) => HeaderHint::Install { package },
        _ => HeaderHint::IncludePath,
    }
}

/// Whether dpkg lists `package` as installed (no dpkg: assume not).
fn dpkg_installed(package: &str) -> bool {
    Path::new("/var/lib/dpkg/info")
        .join(format!("{package}.list"))
        .exists()
        || Path::new("/var/lib/dpkg/info")
            .join(format!("{package}:amd64.list"))
            .exists()
}

impl BpfBuild {
    /// Defaults for this machine: `clang` (or `$CLANG`), the sources'
    /// `include/` directory and the multiarch include directory, which
    /// `-target bpf` does not search by itself (it holds `asm/types.h`).
    pub fn new(source_dir: PathBuf, out_dir: PathBuf) -> Self {
        let clang = std::env::var_os("CLANG").map_or_else(|| PathBuf::from("clang"), PathBuf::from);
        let mut include_dirs = vec![source_dir.join("include")];
        let multiarch = PathBuf::from(format!("/usr/include/{}-linux-gnu", std::env::consts::ARCH));
        if multiarch.is_dir() {
            include_dirs.push(multiarch);
        }
        Self {
            source_dir,
            out_dir,
            clang,
            include_dirs,
            extra_cflags: Vec::new(),
        }
    }

    fn cflags(&self) -> Vec<String> {
        let arch = match std::env::consts::ARCH {
            "aarch64" => "arm64",
            "x86_64" => "x86",
            other => other,
        };
        // Only what a BPF object needs; warnings are the project's choice
        // (its `cflags`), never imposed.
        let mut flags: Vec<String> = ["-target", "bpf", "-O2", "-g"]
            .into_iter()
            .map(str::to_owned)
            .collect();
        flags.push(format!("-D__TARGET_ARCH_{arch}"));
        for dir in &self.include_dirs {
            flags.push(format!("-I{}", dir.display()));
        }
        flags.extend(self.extra_cflags.iter().cloned());
        flags
    }

    /// `clang --version`, remembered in the output directory per clang
    /// binary (path, size, mtime): starting clang costs ~0.4 s, paid on every
    /// build otherwise.
    fn clang_version(&self) -> Result<String, BuildError> {
        let missing = || BuildError::ClangMissing {
            clang: self.clang.display().to_string(),
        };
        let resolved = find_executable(&self.clang).ok_or_else(missing)?;
        let meta = fs::metadata(&resolved).map_err(io_err(&resolved))?;
        let key = format!(
            "{}\0{}\0{:?}\n",
            resolved.display(),
            meta.len(),
            meta.modified()
                .ok()
                .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        );
        let memo = self.out_dir.join(".clang-version");
        if let Ok(text) = fs::read_to_string(&memo)
            && let Some(version) = text.strip_prefix(&key)
        {
            return Ok(version.to_owned());
        }
        let out = match Command::new(&resolved).arg("--version").output() {
            Ok(out) => String::from_utf8_lossy(&out.stdout).into_owned(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(missing()),
            Err(error) => {
                return Err(BuildError::Io {
                    path: self.clang.clone(),
                    error,
                });
            }
        };
        let _ = fs::write(&memo, format!("{key}{out}"));
        Ok(out)
    }

    /// The `*.bpf.c` files, sorted.
    pub fn sources(&self) -> Result<Vec<PathBuf>, BuildError> {
        let mut sources: Vec<PathBuf> = fs::read_dir(&self.source_dir)
            .map_err(io_err(&self.source_dir))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.to_string_lossy().ends_with(".bpf.c"))
            .collect();
        sources.sort();
        if sources.is_empty() {
            return Err(BuildError::NoSources(self.source_dir.clone()));
        }
        Ok(sources)
    }

    /// Compiles every program that is out of date.
    pub fn build_all(&self) -> Result<Vec<BuiltObject>, BuildError> {
        let sources = self.sources()?;
        let session = self.start()?;
        sources
            .iter()
            .map(|source| self.build_one(source, &session.flags, &session.stamp))
            .collect()
    }

    /// Compiles one `*.bpf.c` file (anywhere; it need not be in
    /// `source_dir`) into `out_dir` with the same flags as [`Self::build_all`],
    /// unless the object is up to date. Two sources with the same file name
    /// need two output directories.
    pub fn build_file(&self, source: &Path) -> Result<BuiltObject, BuildError> {
        if !source.to_string_lossy().ends_with(".c") {
            return Err(BuildError::NotASource(source.to_owned()));
        }
        let session = self.start()?;
        self.build_one(source, &session.flags, &session.stamp)
    }

    /// Creates the output directory, takes its lock and works out the flags
    /// and the stamp that say whether an object is current.
    fn start(&self) -> Result<Session, BuildError> {
        fs::create_dir_all(&self.out_dir).map_err(io_err(&self.out_dir))?;
        // Concurrent builds into one directory take turns; the second then
        // finds everything fresh. (The lock is released when the session drops.)
        let lock_path = self.out_dir.join(".build.lock");
        let lock = fs::File::create(&lock_path).map_err(io_err(&lock_path))?;
        lock.lock().map_err(io_err(&lock_path))?;
        // (clang_version memoises into out_dir, so it comes after creating it.)
        let flags = self.cflags();
        let mut stamp = Sha256::new();
        stamp.update(self.clang_version()?);
        stamp.update(flags.join("\0"));
        let stamp = hex::encode(stamp.finalize());
        Ok(Session {
            flags,
            stamp,
            _lock: lock,
        })
    }

    fn build_one(
        &self,
        source: &Path,
        flags: &[String],
        stamp: &str,
    ) -> Result<BuiltObject, BuildError> {
        let name = object_name(source);
        let object = self.out_dir.join(format!("{name}.bpf.o"));
        let depfile = self.out_dir.join(format!("{name}.bpf.d"));
        let stampfile = self.out_dir.join(format!("{name}.bpf.stamp"));

        if up_to_date(&object, &depfile, &stampfile, stamp) {
            return Ok(BuiltObject {
                name,
                source: source.to_owned(),
                object,
                rebuilt: false,
            });
        }
        // Compile to a temporary name so an interrupted or failed build never
        // leaves a half-written object that looks current.
        let tmp = self
            .out_dir
            .join(format!(".{name}.bpf.o.tmp{}", std::process::id()));
        let out = Command::new(&self.clang)
            .args(flags)
            .arg("-MD")
            .arg("-MF")
            .arg(&depfile)
            .arg("-c")
            .arg(source)
            .arg("-o")
            .arg(&tmp)
            .output()
            .map_err(|e| match e.kind() {
                io::ErrorKind::NotFound => BuildError::ClangMissing {
                    clang: self.clang.display().to_string(),
                },
                _ => BuildError::Io {
                    path: self.clang.clone(),
                    error: e,
                },
            })?;
        if !out.status.success() {
            let _ = fs::remove_file(&tmp);
            let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
            if let Some(header) = missing_header(&stderr) {
                let hint = header_hint(&header, dpkg_installed);
                return Err(BuildError::HeaderMissing {
                    file: source.to_owned(),
                    header,
                    hint,
                });
            }
            return Err(BuildError::Compile {
                file: source.to_owned(),
                stderr,
            });
        }
        fs::rename(&tmp, &object).map_err(io_err(&object))?;
        fs::write(&stampfile, stamp).map_err(io_err(&stampfile))?;
        Ok(BuiltObject {
            name,
            source: source.to_owned(),
            object,
            rebuilt: true,
        })
    }
}

/// What case files call the object built from (or being) `path`: its file
/// name without `.bpf.c`, `.c`, `.bpf.o` or `.o`.
pub fn object_name(path: &Path) -> String {
    let file = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    [".bpf.c", ".bpf.o", ".c", ".o"]
        .iter()
        .find_map(|ext| file.strip_suffix(ext))
        .unwrap_or(&file)
        .to_owned()
}

/// The file `cmd` runs: itself if it has a slash, else the first match on PATH.
fn find_executable(cmd: &Path) -> Option<PathBuf> {
    if cmd.components().count() > 1 {
        return cmd.is_file().then(|| cmd.to_owned());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(cmd))
        .find(|p| p.is_file())
}

/// `fatal error: 'bpf/bpf_helpers.h' file not found`
fn missing_header(stderr: &str) -> Option<String> {
    stderr.lines().find_map(|l| {
        let rest = l.split("fatal error: '").nth(1)?;
        let (header, tail) = rest.split_once('\'')?;
        tail.contains("file not found").then(|| header.to_owned())
    })
}

fn up_to_date(object: &Path, depfile: &Path, stampfile: &Path, stamp: &str) -> bool {
    fs::read_to_string(stampfile).ok().as_deref() == Some(stamp)
        && crate::fresh::newer_than_deps(object, depfile, &[])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depfile_prerequisites() {
        let d = "x.o: /a/x.bpf.c /usr/include/linux/bpf.h \\\n  /b/my\\ dir/h.h\n";
        assert_eq!(
            crate::fresh::parse_depfile(d),
            ["/a/x.bpf.c", "/usr/include/linux/bpf.h", "/b/my dir/h.h"]
        );
    }

    #[test]
    fn missing_header_names_the_package() {
        let stderr = "x.bpf.c:3:10: fatal error: 'bpf/bpf_helpers.h' file not found\n#include <bpf/bpf_helpers.h>\n";
        let header = missing_header(stderr).unwrap();
        assert_eq!(header, "bpf/bpf_helpers.h");
        assert_eq!(header_package(&header), Some("libbpf-dev"));
        assert_eq!(header_package("asm/types.h"), Some("linux-libc-dev"));
        assert_eq!(header_package("sys/types.h"), Some("libc6-dev"));
        assert_eq!(header_package("my/own.h"), None);
        assert_eq!(missing_header("x.c:1:1: error: expected ';'"), None);
    }

    #[test]
    fn object_names_drop_the_bpf_suffixes() {
        for (path, name) in [
            ("a/xdp_fw.bpf.c", "xdp_fw"),
            ("probe.c", "probe"),
            ("build/tc.bpf.o", "tc"),
            ("b/kprobe.o", "kprobe"),
            ("blob", "blob"),
        ] {
            assert_eq!(object_name(Path::new(path)), name);
        }
    }

    #[test]
    fn header_hints_never_offer_what_is_installed() {
        let none = |_: &str| false;
        let all = |_: &str| true;
        assert_eq!(
            header_hint("bpf/bpf_helpers.h", none),
            HeaderHint::Install {
                package: "libbpf-dev"
            }
        );
        assert_eq!(
            header_hint("bpf/bpf_helpers.h", all),
            HeaderHint::IncludePath
        );
        assert_eq!(header_hint("my/own.h", none), HeaderHint::IncludePath);
        assert_eq!(header_hint("vmlinux.h", none), HeaderHint::GenerateVmlinux);
        assert_eq!(
            header_hint("x86/vmlinux.h", all),
            HeaderHint::GenerateVmlinux
        );
        assert_eq!(
            header_hint("gnu/stubs-32.h", none),
            HeaderHint::LibcUnderBpfTarget
        );
        for hint in [
            HeaderHint::GenerateVmlinux,
            HeaderHint::LibcUnderBpfTarget,
            HeaderHint::IncludePath,
        ] {
            assert!(!hint.to_string().contains("libc6-dev "), "{hint}");
        }
        assert!(
            HeaderHint::GenerateVmlinux
                .to_string()
                .contains("vmlinux-h --kernel")
        );
    }
}
