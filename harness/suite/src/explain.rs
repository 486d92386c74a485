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
    #[error("{}: {error}", path.display())]
    Object {
        path: PathBuf,
        #[source]
        error: harness_bpf::ObjectError,
    },
}

/// Diagnoses the log at `log`, with the line info of `object` if given.
pub fn explain_log(log: &Path, object: Option<&Path>) -> Result<LogExplanation, ExplainError> {
    let bytes = std::fs::read(log).map_err(|error| ExplainError::Log {
        path: log.to_owned(),
        error,
    })?;
    // Logs pasted from elsewhere may carry stray bytes; the text is what counts.
    let text = String::from_utf8_lossy(&bytes);
    let mut notes = Vec::new();
    let lines = match object {
        Some(path) => object_lines(path, &mut notes)?,
        None => Vec::new(),
    };
    if !text.lines().any(|l| l.starts_with(';')) {
        notes.push(
            "the log has no source notes (the object had no BTF line info, or the log level was 0): \
             no C line can be given"
                .into(),
        );
    }
    let diagnosis = harness_diagnose::diagnose_with(&text, &Evidence::default().with_lines(&lines));
    Ok(LogExplanation {
        log: log.to_owned(),
        object: object.map(Path::to_owned),
        diagnosis,
        notes,
    })
}

fn object_lines(path: &Path, notes: &mut Vec<String>) -> Result<Vec<LineRecord>, ExplainError> {
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
    let info = harness_cases::ObjectInfo::new(&name, file);
    match info.line_info() {
        Ok(lines) if lines.is_empty() => notes.push(format!(
            "{} has no line info (.BTF.ext; built without -g?): lines come from the log alone",
            path.display()
        )),
        Ok(lines) => {
            return Ok(lines
                .into_iter()
                .map(|l| LineRecord {
                    file: l.file,
                    line: l.line,
                    column: l.column,
                    text: l.text,
                })
                .collect());
        }
        Err(e) => notes.push(format!(
            "{}: its line info does not read ({e}): lines come from the log alone",
            path.display()
        )),
    }
    Ok(Vec::new())
}
