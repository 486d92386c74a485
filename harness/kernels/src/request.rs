//! Parsing the `--kernel` argument.

use std::path::{Path, PathBuf};

use crate::error::KernelError;
use crate::lines::find_line;

/// One value of `--kernel` (a comma-separated list): a Debian line, the
/// running kernel, or a bzImage path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KernelRequest {
    /// A line from [`crate::LINES`], e.g. `6.1`.
    Line(String),
    /// The kernel the harness itself runs on (`host`).
    Host,
    /// A bzImage the user built or downloaded.
    Image(PathBuf),
}

/// Parses `--kernel`: `6.1`, `5.10,6.1,6.12,7.2`, `host`, `/path/to/bzImage`,
/// or a mix. Duplicates are removed, order is kept.
pub fn parse_kernel_list(arg: &str) -> Result<Vec<KernelRequest>, KernelError> {
    if arg.trim().is_empty() {
        return Err(KernelError::EmptyKernelList);
    }
    let mut requests = Vec::new();
    for item in arg.split(',').map(str::trim) {
        if item.is_empty() {
            return Err(KernelError::EmptyKernelEntry {
                list: arg.to_owned(),
            });
        }
        let request = parse_one(item)?;
        if !requests.contains(&request) {
            requests.push(request);
        }
    }
    Ok(requests)
}

fn parse_one(item: &str) -> Result<KernelRequest, KernelError> {
    if item == "host" {
        return Ok(KernelRequest::Host);
    }
    // Anything made of digits and dots is meant as a version, even `6.1.0`.
    if item.contains(|c: char| c.is_ascii_digit())
        && item.chars().all(|c| c.is_ascii_digit() || c == '.')
    {
        return match find_line(item) {
            Some(line) => Ok(KernelRequest::Line(line.line.to_owned())),
            None => Err(KernelError::UnknownLine {
                line: item.to_owned(),
            }),
        };
    }
    let path = Path::new(item);
    let looks_like_path = item.contains('/') || item.starts_with(['.', '~']);
    match path.metadata() {
        Ok(meta) if meta.is_dir() => Err(KernelError::ImageIsDirectory {
            path: path.to_owned(),
        }),
        Ok(_) => Ok(KernelRequest::Image(path.to_owned())),
        Err(_) if looks_like_path => Err(KernelError::ImageNotFound {
            path: path.to_owned(),
        }),
        Err(_) => Err(KernelError::NotAKernel {
            value: item.to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(l: &str) -> KernelRequest {
        KernelRequest::Line(l.to_owned())
    }

    #[test]
    fn parses_lines_host_and_images_keeping_order_without_duplicates() {
        let dir = tempfile::tempdir().expect("temp dir");
        let image = dir.path().join("bzImage");
        std::fs::write(&image, b"kernel").expect("write image");
        let arg = format!("6.12, 5.10,host,{},6.12,host,7.2,6.1", image.display());
        let parsed = parse_kernel_list(&arg).expect("valid list");
        assert_eq!(
            parsed,
            [
                line("6.12"),
                line("5.10"),
                KernelRequest::Host,
                KernelRequest::Image(image),
                line("7.2"),
                line("6.1")
            ]
        );
        assert_eq!(parse_kernel_list("6.1").expect("one line"), [line("6.1")]);
    }

    #[test]
    fn unknown_lines_explain_what_is_available() {
        for unknown in ["5.15", "4.19", "6.6", "6.1.0"] {
            let err = parse_kernel_list(&format!("6.1,{unknown}"))
                .expect_err(unknown)
                .to_string();
            assert!(
                err.contains(&format!("kernel line {unknown} is not in Debian's archive")),
                "{err}"
            );
            assert!(
                err.contains("5.10 (bullseye), 6.1 (bookworm), 6.12 (trixie), 7.2 (sid)"),
                "{err}"
            );
            assert!(err.contains("`--kernel /path/to/bzImage`"), "{err}");
            assert!(err.contains("also usable in a list"), "{err}");
        }
    }

    #[test]
    fn missing_paths_and_directories_are_named() {
        let dir = tempfile::tempdir().expect("temp dir");
        let missing = dir.path().join("no-such-bzImage");
        let err = parse_kernel_list(&missing.display().to_string()).expect_err("missing");
        assert!(
            matches!(&err, KernelError::ImageNotFound { path } if *path == missing),
            "{err:?}"
        );
        assert!(err.to_string().contains(&missing.display().to_string()));

        let err = parse_kernel_list("./nope").expect_err("relative missing path");
        assert!(
            err.to_string()
                .contains("kernel image ./nope does not exist"),
            "{err}"
        );

        let err = parse_kernel_list(&dir.path().display().to_string()).expect_err("directory");
        assert!(
            matches!(err, KernelError::ImageIsDirectory { .. }),
            "{err:?}"
        );
    }

    #[test]
    fn empty_and_nonsense_values_are_rejected() {
        assert!(matches!(
            parse_kernel_list(""),
            Err(KernelError::EmptyKernelList)
        ));
        assert!(matches!(
            parse_kernel_list("  "),
            Err(KernelError::EmptyKernelList)
        ));
        assert!(matches!(
            parse_kernel_list("6.1,,6.12"),
            Err(KernelError::EmptyKernelEntry { .. })
        ));
        assert!(matches!(
            parse_kernel_list("6.1,"),
            Err(KernelError::EmptyKernelEntry { .. })
        ));
        let err = parse_kernel_list("latest").expect_err("not a kernel");
        assert!(
            matches!(&err, KernelError::NotAKernel { value } if value == "latest"),
            "{err:?}"
        );
        assert!(err.to_string().contains("`host`"), "{err}");
    }
}
