//! Parsing the `--kernel` argument. Syntax only: nothing here looks at the
//! filesystem or the network; [`crate::resolve`] does, once.

use std::path::PathBuf;

use harness_protocol::KernelVersion;

use crate::error::KernelError;
use crate::lines::find_line;

/// One value of `--kernel` (a comma-separated list): a Debian line, the
/// running kernel, or a kernel image.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KernelRequest {
    /// A line from [`crate::LINES`], e.g. `6.1`.
    Line(KernelVersion),
    /// The kernel the harness itself runs on (`host`).
    Host,
    /// A bzImage the user built or downloaded (checked when resolved).
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
        let version = item
            .parse::<KernelVersion>()
            .map_err(|_| KernelError::UnknownLine {
                line: item.to_owned(),
            })?;
        // A Debian line, or one the lock file pins an image for (known
        // only when resolving).
        return Ok(KernelRequest::Line(
            find_line(version).map_or(version, |line| line.line),
        ));
    }
    Ok(KernelRequest::Image(PathBuf::from(item)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(l: &str) -> KernelRequest {
        KernelRequest::Line(l.parse().unwrap())
    }

    #[test]
    fn parses_lines_host_and_images_keeping_order_without_duplicates() {
        let image = PathBuf::from("/somewhere/bzImage");
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
    fn lines_outside_debian_are_left_to_the_lock_file() {
        // The lock file may pin an image for them; resolution says if not.
        for other in ["5.15", "4.19", "6.6", "7.4"] {
            assert_eq!(
                parse_kernel_list(&format!("6.1,{other}")).expect(other),
                [line("6.1"), line(other)]
            );
        }
        let err = parse_kernel_list("6.1.0")
            .expect_err("not a line")
            .to_string();
        assert!(
            err.contains("kernel line 6.1.0 is not in Debian's archive"),
            "{err}"
        );
    }

    #[test]
    fn parsing_never_looks_at_the_filesystem() {
        // Whether an image exists is for resolution to say.
        assert_eq!(
            parse_kernel_list("./nope,latest").unwrap(),
            [
                KernelRequest::Image("./nope".into()),
                KernelRequest::Image("latest".into())
            ]
        );
    }

    #[test]
    fn empty_values_are_rejected() {
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
    }
}
