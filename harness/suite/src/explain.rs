//! `explain --log FILE [--object OBJ]`: a saved verifier log (from a bug
//! report, bpftool, libbpf, cilium/ebpf, aya) diagnosed without a kernel,
//! placed in the C source through the object's line info when it is given.

use std::path::{Path, PathBuf};

use harness_diagnose::{Diagnosis, Evidence, LineRecord};

/// What a saved log says, and what could not be known.
#[derive(Debug, serde::Serialize)]
pub struct LogExplanation {
    pub log: PathBuf,
    pub object: Option<PathBuf>,
    /// `None` when the log holds no error message: the program was
    /// accepted, or the log was cut off before the message.
    pub diagnosis: Option<Diagnosis>,
    /// What the explanation had to do without ("the object has no line
    /// info: built without -g?").
    pub notes: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ExplainError {
    #[error("reading the log {}: {error}", path.display())]
    Log {
        path: PathBuf,
        #[source]
        error: std::io::Error,
    },
    #[error("reading the object {}: {error}", path.display())]
    ObjectRead {
        path: PathBuf,
        #[source]
        error: std::io::Error,
    },
    #[error("{}: not an ELF object; --object takes the compiled BPF object (.o) the log is of", path.display())]
    NotElf { path: PathBuf },
    #[error("{}: no program `{program}`; it has: {}", path.display(), programs.join(", "))]
    NoSuchProgram {
        path: PathBuf,
        program: String,
        programs: Vec<String>,
    },
    #[error("{}: {error}", path.display())]
    Object {
        path: PathBuf,
        #[source]
        error: harness_bpf::ObjectError,
    },
}

/// Diagnoses the log at `log`, with the line info of `object` if given;
/// `program` names the object's program the log is of (needed only when
/// the object has several), which places instructions exactly.
pub fn explain_log(
    log: &Path,
    object: Option<&Path>,
    program: Option<&str>,
) -> Result<LogExplanation, ExplainError> {
    let bytes = std::fs::read(log).map_err(|error| ExplainError::Log {
        path: log.to_owned(),
        error,
    })?;
    // Logs pasted from elsewhere may carry stray bytes; the text is what counts.
    let text = String::from_utf8_lossy(&bytes);
    let mut notes = Vec::new();
    let (lines, main_insns) = match object {
        Some(path) => object_lines(path, program, &mut notes)?,
        None => (Vec::new(), None),
    };
    if !text.lines().any(|l| l.starts_with(';')) {
        notes.push(
            "the log has no source notes (the object had no BTF line info, or the log level was 0): \
             no C line can be given"
                .into(),
        );
    }
    let mut evidence = Evidence::default().with_lines(&lines);
    if let Some(n) = main_insns {
        evidence = evidence.with_main_insns(n);
    }
    let diagnosis = harness_diagnose::diagnose_with(&text, &evidence);
    Ok(LogExplanation {
        log: log.to_owned(),
        object: object.map(Path::to_owned),
        diagnosis,
        notes,
    })
}

/// The object's line records and its program's length; what could not be
/// had goes into `notes`.
fn object_lines(
    path: &Path,
    program: Option<&str>,
    notes: &mut Vec<String>,
) -> Result<(Vec<LineRecord>, Option<usize>), ExplainError> {
    let data = std::fs::read(path).map_err(|error| ExplainError::ObjectRead {
        path: path.to_owned(),
        error,
    })?;
    if !data.starts_with(b"\x7fELF") {
        return Err(ExplainError::NotElf {
            path: path.to_owned(),
        });
    }
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().trim_end_matches(".bpf").to_owned())
        .unwrap_or_default();
    let file = harness_bpf::ObjectFile::parse_named(data, &name).map_err(|error| {
        ExplainError::Object {
            path: path.to_owned(),
            error,
        }
    })?;
    let programs: Vec<String> = file.programs().iter().map(|p| p.name.clone()).collect();
    let chosen = match (program, programs.as_slice()) {
        (Some(p), _) if programs.iter().any(|n| n == p) => Some(p.to_owned()),
        (Some(p), _) => {
            return Err(ExplainError::NoSuchProgram {
                path: path.to_owned(),
                program: p.to_owned(),
                programs,
            });
        }
        (None, [only]) => Some(only.clone()),
        (None, _) => {
            notes.push(format!(
                "{} holds {} programs ({}): name the log's with --prog to place instructions \
                 by number; lines come from the log's notes",
                path.display(),
                programs.len(),
                programs.join(", ")
            ));
            None
        }
    };
    let info = harness_cases::ObjectInfo::new(&name, file);
    match info.line_info() {
        Ok(lines) if lines.is_empty() => notes.push(format!(
            "{} has no line info (.BTF.ext; built without -g?): lines come from the log alone",
            path.display()
        )),
        Ok(_) => {
            let (records, main) =
                harness_judge::line_records(&info, chosen.as_deref().unwrap_or(""));
            return Ok((records, main.filter(|_| chosen.is_some())));
        }
        Err(e) => notes.push(format!(
            "{}: its line info does not read ({e}): lines come from the log alone",
            path.display()
        )),
    }
    Ok((Vec::new(), None))
}
