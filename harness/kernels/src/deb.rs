//! Extracting the kernel (and its config) from a Debian image package, or
//! the config alone from the package holding it, streaming through the `ar`
//! archive and the compressed `data.tar`.

use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::error::KernelError;

/// sha256 (lowercase hex) of the files written by [`extract_kernel`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Extracted {
    pub vmlinuz_sha256: String,
    pub config_sha256: Option<String>,
}

/// Writes the kernel of `release` from `deb` to `dest/vmlinuz` and its
/// config, when the package has one, to `dest/config`. Nothing else is
/// extracted.
pub(crate) fn extract_kernel(
    deb: &Path,
    package: &str,
    release: &str,
    dest: &Path,
) -> Result<Extracted, KernelError> {
    let (vmlinuz, config_sha256) = extract(deb, package, release, dest, Wanted::KernelAndConfig)?;
    let vmlinuz_sha256 = vmlinuz.ok_or_else(|| {
        bad_deb(deb, package)(format!(
            "has no kernel: none of ./{} is in it",
            vmlinuz_paths(release).join(", ./")
        ))
    })?;
    Ok(Extracted {
        vmlinuz_sha256,
        config_sha256,
    })
}

/// Writes the config of `release` from `deb` (the package holding a split
/// kernel's config) to `dest/config` and returns its sha256. Nothing else
/// is extracted; a package without the config is an error.
pub(crate) fn extract_config(
    deb: &Path,
    package: &str,
    release: &str,
    dest: &Path,
) -> Result<String, KernelError> {
    let (_, config) = extract(deb, package, release, dest, Wanted::Config)?;
    config.ok_or_else(|| {
        bad_deb(deb, package)(format!(
            "has no build config of {release}: none of ./{} is in it",
            config_paths(release).join(", ./")
        ))
    })
}

/// What [`extract`] takes out of a package.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wanted {
    KernelAndConfig,
    Config,
}

fn bad_deb(deb: &Path, package: &str) -> impl Fn(String) -> KernelError {
    let (deb, package) = (deb.to_owned(), package.to_owned());
    move |message| KernelError::BadDeb {
        path: deb.clone(),
        package: package.clone(),
        message,
    }
}

/// The sha256 of the kernel and the config written to `dest`, each if found.
fn extract(
    deb: &Path,
    package: &str,
    release: &str,
    dest: &Path,
    wanted: Wanted,
) -> Result<(Option<String>, Option<String>), KernelError> {
    let bad = bad_deb(deb, package);
    let file = File::open(deb).map_err(|e| KernelError::io("open", deb, e))?;
    let mut archive = ar::Archive::new(BufReader::new(file));
    while let Some(member) = archive.next_entry() {
        let member = member.map_err(|e| bad(format!("not a valid ar archive: {e}")))?;
        let name = String::from_utf8_lossy(member.header().identifier())
            .trim_end_matches('/')
            .to_owned();
        let Some(compression) = name.strip_prefix("data.tar") else {
            continue;
        };
        return match compression {
            ".xz" => extract_from_tar(
                liblzma::read::XzDecoder::new_multi_decoder(member),
                release,
                dest,
                wanted,
                &bad,
            ),
            "" => extract_from_tar(member, release, dest, wanted, &bad),
            other => Err(bad(format!(
                "its data member is compressed as `{}`, which is not supported (only .xz is)",
                other.trim_start_matches('.')
            ))),
        };
    }
    Err(bad(
        "has no data.tar member; is it a .deb at all?".to_owned()
    ))
}

/// Where Debian packages have put the kernel (the 5.10-6.12 image packages
/// use /boot, the newer `linux-binary-*` packages /usr/lib/modules).
fn vmlinuz_paths(release: &str) -> [String; 3] {
    [
        format!("boot/vmlinuz-{release}"),
        format!("usr/lib/modules/{release}/vmlinuz"),
        format!("lib/modules/{release}/vmlinuz"),
    ]
}

/// Where Debian packages have put the config (the image packages up to
/// 6.12 in /boot, the `linux-base-*` packages in /usr/lib/modules).
fn config_paths(release: &str) -> [String; 3] {
    [
        format!("boot/config-{release}"),
        format!("usr/lib/modules/{release}/config"),
        format!("lib/modules/{release}/config"),
    ]
}

fn extract_from_tar(
    data: impl Read,
    release: &str,
    dest: &Path,
    wanted: Wanted,
    bad: &dyn Fn(String) -> KernelError,
) -> Result<(Option<String>, Option<String>), KernelError> {
    let vmlinuz_paths = vmlinuz_paths(release);
    let config_paths = config_paths(release);
    let mut vmlinuz_sha256 = None;
    let mut config_sha256 = None;
    let mut tar = tar::Archive::new(data);
    let entries = tar
        .entries()
        .map_err(|e| bad(format!("its data.tar is unreadable: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| bad(format!("its data.tar is unreadable: {e}")))?;
        let path = normalize(&entry.path_bytes());
        let (slot, out_name) = if wanted == Wanted::KernelAndConfig && vmlinuz_paths.contains(&path)
        {
            (&mut vmlinuz_sha256, "vmlinuz")
        } else if config_paths.contains(&path) {
            (&mut config_sha256, "config")
        } else {
            continue;
        };
        if !entry.header().entry_type().is_file() {
            return Err(bad(format!("./{path} is not a regular file")));
        }
        let out = dest.join(out_name);
        let hash = copy_hashing(&mut entry, &out).map_err(|e| {
            bad(format!(
                "extracting ./{path} to {} failed: {e}",
                out.display()
            ))
        })?;
        *slot = Some(hash);
        // The rest of the archive is modules or docs; stop once all is out.
        let done =
            config_sha256.is_some() && (wanted == Wanted::Config || vmlinuz_sha256.is_some());
        if done {
            break;
        }
    }
    Ok((vmlinuz_sha256, config_sha256))
}

/// `./boot/x` and `boot/x` name the same member.
fn normalize(path: &[u8]) -> String {
    let mut path = String::from_utf8_lossy(path).into_owned();
    while let Some(rest) = path.strip_prefix("./").or_else(|| path.strip_prefix('/')) {
        path = rest.to_owned();
    }
    path
}

/// Copies `reader` into a new file at `out`, synced to disk, and returns
/// the sha256 of what was written.
fn copy_hashing(reader: &mut impl Read, out: &Path) -> io::Result<String> {
    let mut file = File::create(out)?;
    let hash = hash_reader(reader, |chunk| file.write_all(chunk))?;
    file.sync_all()?;
    Ok(hash)
}

/// sha256 (lowercase hex) of the file at `path`.
pub(crate) fn sha256_file(path: &Path) -> io::Result<String> {
    hash_reader(&mut File::open(path)?, |_| Ok(()))
}

/// Reads `reader` to the end, passing each chunk to `sink`, and returns the
/// sha256 (lowercase hex) of everything read.
fn hash_reader(
    reader: &mut impl Read,
    mut sink: impl FnMut(&[u8]) -> io::Result<()>,
) -> io::Result<String> {
    let mut hasher = Sha256::new();
    let mut buffer = vec![0; 64 * 1024];
    loop {
        let n = match reader.read(&mut buffer) {
            Ok(0) => return Ok(hex::encode(hasher.finalize())),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buffer[..n]);
        sink(&buffer[..n])?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_with(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, data) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            // Written by hand to keep the `./` prefix real packages have (set_path drops it).
            let name = &mut header.as_old_mut().name;
            name[..path.len()].copy_from_slice(path.as_bytes());
            header.set_cksum();
            builder.append(&header, *data).expect("append");
        }
        builder.into_inner().expect("finish tar")
    }

    fn deb_with(members: &[(&str, Vec<u8>)]) -> Vec<u8> {
        let mut builder = ar::Builder::new(Vec::new());
        for (name, data) in members {
            let header = ar::Header::new(name.as_bytes().to_vec(), data.len() as u64);
            builder.append(&header, data.as_slice()).expect("append");
        }
        builder.into_inner().expect("finish ar")
    }

    fn xz(data: &[u8]) -> Vec<u8> {
        liblzma::encode_all(data, 1).expect("compress")
    }

    fn write_deb(dir: &Path, data_name: &str, data: Vec<u8>) -> std::path::PathBuf {
        let deb = deb_with(&[
            ("debian-binary", b"2.0\n".to_vec()),
            (
                "control.tar.xz",
                xz(&tar_with(&[("./control", b"Package: x\n")])),
            ),
            (data_name, data),
        ]);
        let path = dir.join("k.deb");
        std::fs::write(&path, deb).expect("write deb");
        path
    }

    #[test]
    fn extracts_kernel_and_config_from_boot() {
        let dir = tempfile::tempdir().expect("temp dir");
        let data = tar_with(&[
            ("./lib/modules/6.1.0-50-cloud-amd64/modules.order", b"mods"),
            ("./boot/System.map-6.1.0-50-cloud-amd64", b"map"),
            ("./boot/vmlinuz-6.1.0-49-cloud-amd64", b"wrong release"),
            ("./boot/vmlinuz-6.1.0-50-cloud-amd64", b"the kernel"),
            ("./boot/config-6.1.0-50-cloud-amd64", b"CONFIG_BPF=y\n"),
        ]);
        let deb = write_deb(dir.path(), "data.tar.xz", xz(&data));
        let out = tempfile::tempdir().expect("out dir");
        let got = extract_kernel(&deb, "pkg", "6.1.0-50-cloud-amd64", out.path()).expect("extract");
        assert_eq!(
            std::fs::read(out.path().join("vmlinuz")).expect("vmlinuz"),
            b"the kernel"
        );
        assert_eq!(
            std::fs::read(out.path().join("config")).expect("config"),
            b"CONFIG_BPF=y\n"
        );
        assert_eq!(
            got.vmlinuz_sha256,
            hex::encode(Sha256::digest(b"the kernel"))
        );
        assert_eq!(
            got.config_sha256,
            Some(hex::encode(Sha256::digest(b"CONFIG_BPF=y\n")))
        );
        // Nothing else was extracted.
        assert_eq!(std::fs::read_dir(out.path()).expect("list").count(), 2);
    }

    #[test]
    fn extracts_kernel_from_usr_lib_modules_without_config() {
        let dir = tempfile::tempdir().expect("temp dir");
        let release = "7.2.13+deb14-cloud-amd64";
        let data = tar_with(&[(
            &format!("./usr/lib/modules/{release}/vmlinuz"),
            b"sid kernel",
        )]);
        let deb = write_deb(dir.path(), "data.tar", data);
        let out = tempfile::tempdir().expect("out dir");
        let got = extract_kernel(&deb, "pkg", release, out.path()).expect("extract");
        assert_eq!(got.config_sha256, None);
        assert_eq!(
            std::fs::read(out.path().join("vmlinuz")).expect("vmlinuz"),
            b"sid kernel"
        );
        assert_eq!(
            sha256_file(&out.path().join("vmlinuz")).expect("hash"),
            got.vmlinuz_sha256
        );
    }

    #[test]
    fn extracts_only_the_config_from_a_config_package() {
        let dir = tempfile::tempdir().expect("temp dir");
        let release = "7.2.13+deb14-cloud-amd64";
        let data = tar_with(&[
            (&format!("./usr/lib/modules/{release}/System.map"), b"map"),
            (
                &format!("./usr/lib/modules/{release}/vmlinuz"),
                b"not wanted",
            ),
            (
                "./usr/lib/modules/7.2.12+deb14-cloud-amd64/config",
                b"other",
            ),
            (
                &format!("./usr/lib/modules/{release}/config"),
                b"CONFIG_BPF=y\n",
            ),
            (
                &format!("./usr/lib/modules/{release}/modules.order"),
                b"x.ko",
            ),
        ]);
        let deb = write_deb(dir.path(), "data.tar.xz", xz(&data));
        let out = tempfile::tempdir().expect("out dir");
        let sha = extract_config(&deb, "linux-base-x", release, out.path()).expect("extract");
        assert_eq!(sha, hex::encode(Sha256::digest(b"CONFIG_BPF=y\n")));
        assert_eq!(
            std::fs::read(out.path().join("config")).expect("config"),
            b"CONFIG_BPF=y\n"
        );
        assert_eq!(std::fs::read_dir(out.path()).expect("list").count(), 1);

        // /boot is accepted too.
        let boot = tar_with(&[(&format!("./boot/config-{release}"), b"CONFIG_X=m\n")]);
        let deb = write_deb(dir.path(), "data.tar", boot);
        let sha = extract_config(&deb, "linux-base-x", release, out.path()).expect("extract");
        assert_eq!(sha, hex::encode(Sha256::digest(b"CONFIG_X=m\n")));

        // A package without it is an error naming the package and the paths.
        let none = tar_with(&[(&format!("./usr/lib/modules/{release}/System.map"), b"map")]);
        let deb = write_deb(dir.path(), "data.tar.xz", xz(&none));
        let msg = extract_config(&deb, "linux-base-x", release, out.path())
            .expect_err("no config")
            .to_string();
        assert!(
            msg.contains("(package linux-base-x)")
                && msg.contains(&format!("has no build config of {release}"))
                && msg.contains(&format!("./usr/lib/modules/{release}/config"))
                && msg.contains(&format!("./boot/config-{release}")),
            "{msg}"
        );
    }

    #[test]
    fn unsupported_compression_and_missing_kernel_are_clear_errors() {
        let dir = tempfile::tempdir().expect("temp dir");
        let deb = write_deb(dir.path(), "data.tar.zst", b"zstd bytes".to_vec());
        let out = tempfile::tempdir().expect("out dir");
        let msg = extract_kernel(&deb, "linux-x", "6.1.0-50-cloud-amd64", out.path())
            .expect_err("zst")
            .to_string();
        assert!(
            msg.contains("linux-x") && msg.contains("`zst`") && msg.contains("not supported"),
            "{msg}"
        );

        let deb = write_deb(
            dir.path(),
            "data.tar.xz",
            xz(&tar_with(&[("./boot/vmlinuz-other", b"k")])),
        );
        let msg = extract_kernel(&deb, "linux-x", "6.1.0-50-cloud-amd64", out.path())
            .expect_err("no kernel")
            .to_string();
        assert!(
            msg.contains("has no kernel") && msg.contains("./boot/vmlinuz-6.1.0-50-cloud-amd64"),
            "{msg}"
        );

        let not_deb = dir.path().join("not.deb");
        std::fs::write(&not_deb, b"<html>404</html>").expect("write");
        let msg = extract_kernel(&not_deb, "linux-x", "r", out.path())
            .expect_err("not ar")
            .to_string();
        assert!(
            msg.contains("not.deb") && msg.contains("ar archive"),
            "{msg}"
        );

        let truncated = write_deb(
            dir.path(),
            "data.tar.xz",
            xz(&tar_with(&[("./boot/vmlinuz-r", &[7; 5000])])),
        );
        let bytes = std::fs::read(&truncated).expect("read");
        std::fs::write(&truncated, &bytes[..bytes.len() - 100]).expect("truncate");
        assert!(extract_kernel(&truncated, "linux-x", "r", out.path()).is_err());
    }
}
