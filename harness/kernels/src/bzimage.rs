//! Reading the version string a bzImage carries in its setup header
//! (x86 boot protocol, Documentation/arch/x86/boot.rst).

use std::io::Read;
use std::path::Path;

use crate::error::KernelError;

/// Offset of the "HdrS" magic.
const MAGIC_OFFSET: usize = 0x202;
/// Offset of `kernel_version`, a u16 pointer to the string, minus 0x200.
const VERSION_POINTER_OFFSET: usize = 0x20E;
/// The string is at most this long in practice; it is NUL-terminated.
const MAX_VERSION_LEN: usize = 512;
/// The header, the largest pointer, and the string fit in this much.
const HEAD_LEN: usize = 0x200 + 0xFFFF + MAX_VERSION_LEN;

/// Offset of `setup_sects` (512-byte sectors of setup code after the boot
/// sector; 0 means 4) and of `syssize` (the protected-mode code, in
/// 16-byte paragraphs).
const SETUP_SECTS_OFFSET: usize = 0x1f1;
const SYSSIZE_OFFSET: usize = 0x1f4;

/// Reads the version string embedded in a bzImage's setup header, e.g.
/// `6.1.0-50-cloud-amd64 (debian-kernel@lists.debian.org) #1 SMP ...`, and
/// checks the file holds all the header promises (a cut download would
/// otherwise boot to a silent QEMU).
pub fn bzimage_version(path: &Path) -> Result<String, KernelError> {
    let file = std::fs::File::open(path).map_err(|e| KernelError::io("open", path, e))?;
    let len = file
        .metadata()
        .map_err(|e| KernelError::io("read", path, e))?
        .len();
    let mut head = Vec::with_capacity(HEAD_LEN);
    file.take(HEAD_LEN as u64)
        .read_to_end(&mut head)
        .map_err(|e| KernelError::io("read", path, e))?;
    let version = version_from_head(&head).map_err(|message| KernelError::NotABzImage {
        path: path.to_owned(),
        message,
    })?;
    let expected = expected_size(&head);
    if len < expected {
        return Err(KernelError::ImageTruncated {
            path: path.to_owned(),
            len,
            expected,
        });
    }
    Ok(version)
}

/// How long the image must be: its setup sectors and its kernel code.
/// `head` holds at least the setup header (checked by `version_from_head`).
fn expected_size(head: &[u8]) -> u64 {
    let setup_sects = match head[SETUP_SECTS_OFFSET] {
        0 => 4,
        n => u64::from(n),
    };
    let s = &head[SYSSIZE_OFFSET..SYSSIZE_OFFSET + 4];
    let syssize = u64::from(u32::from_le_bytes([s[0], s[1], s[2], s[3]]));
    (setup_sects + 1) * 512 + syssize * 16
}

/// Parses the first bytes of a bzImage.
fn version_from_head(head: &[u8]) -> Result<String, String> {
    if head.get(MAGIC_OFFSET..MAGIC_OFFSET + 4) != Some(b"HdrS") {
        return Err(format!(
            "no \"HdrS\" setup header magic at offset {MAGIC_OFFSET:#x}"
        ));
    }
    let pointer = head
        .get(VERSION_POINTER_OFFSET..VERSION_POINTER_OFFSET + 2)
        .map(|b| usize::from(u16::from_le_bytes([b[0], b[1]])))
        .ok_or("the setup header is cut off")?;
    if pointer == 0 {
        return Err("the setup header has no kernel version pointer".to_owned());
    }
    let start = pointer + 0x200;
    let tail = head.get(start..).filter(|t| !t.is_empty()).ok_or_else(|| {
        format!("the kernel version pointer {start:#x} is past the end of the file")
    })?;
    let tail = &tail[..tail.len().min(MAX_VERSION_LEN)];
    let end = tail.iter().position(|&b| b == 0).unwrap_or(tail.len());
    let version = String::from_utf8_lossy(&tail[..end]).trim().to_owned();
    if version.is_empty() {
        return Err(format!("the kernel version string at {start:#x} is empty"));
    }
    Ok(version)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal image: setup header with magic and pointer, string at pointer + 0x200.
    fn crafted(pointer: u16, version: &[u8]) -> Vec<u8> {
        let mut image = vec![0u8; 0x4000];
        image[MAGIC_OFFSET..MAGIC_OFFSET + 4].copy_from_slice(b"HdrS");
        image[VERSION_POINTER_OFFSET..VERSION_POINTER_OFFSET + 2]
            .copy_from_slice(&pointer.to_le_bytes());
        let at = usize::from(pointer) + 0x200;
        image[at..at + version.len()].copy_from_slice(version);
        image
    }

    #[test]
    fn reads_the_version_string() {
        let version = b"6.1.0-50-cloud-amd64 (debian-kernel@lists.debian.org) #1 SMP PREEMPT_DYNAMIC Debian 6.1.170-1";
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("bzImage");
        std::fs::write(
            &path,
            crafted(0x3a00, &[&version[..], b"\0garbage"].concat()),
        )
        .expect("write");
        assert_eq!(
            bzimage_version(&path).expect("parses"),
            String::from_utf8_lossy(version)
        );
    }

    #[test]
    fn a_truncated_image_is_named_before_it_boots() {
        let mut image = crafted(0x3a00, b"6.1.0-50-cloud-amd64 #1");
        image[SETUP_SECTS_OFFSET] = 3;
        // 0x4000 bytes of file: 4 * 512 of setup, the rest kernel code.
        let code = (0x4000 - 4 * 512) / 16;
        image[SYSSIZE_OFFSET..SYSSIZE_OFFSET + 4].copy_from_slice(&(code as u32).to_le_bytes());
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("bzImage");
        std::fs::write(&path, &image).expect("write");
        assert!(bzimage_version(&path).is_ok());
        std::fs::write(&path, &image[..0x3f00]).expect("write");
        let msg = bzimage_version(&path).expect_err("cut").to_string();
        assert_eq!(
            msg,
            format!(
                "{} is truncated: 16128 bytes, but its setup header says 16384; fetch or build it again",
                path.display()
            )
        );
    }

    #[test]
    fn rejects_what_is_not_a_bzimage() {
        assert!(
            version_from_head(&[0; 0x300])
                .expect_err("no magic")
                .contains("HdrS")
        );
        assert!(
            version_from_head(&crafted(0, b"x"))
                .expect_err("null pointer")
                .contains("no kernel version pointer")
        );
        let mut cut = crafted(0x3a00, b"6.1");
        cut.truncate(0x3a00);
        assert!(
            version_from_head(&cut)
                .expect_err("cut")
                .contains("past the end")
        );
        assert!(
            version_from_head(&crafted(0x100, b"\0"))
                .expect_err("empty")
                .contains("empty")
        );
        let short = crafted(0x100, b"x");
        assert!(
            version_from_head(&short[..0x208])
                .expect_err("short header")
                .contains("cut off")
        );

        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("vmlinux");
        std::fs::write(&path, b"\x7fELF").expect("write");
        let msg = bzimage_version(&path).expect_err("ELF").to_string();
        assert!(msg.contains("vmlinux is not a bzImage"), "{msg}");
        let missing = bzimage_version(&dir.path().join("none"))
            .expect_err("missing")
            .to_string();
        assert!(missing.contains("could not open"), "{missing}");
    }
}
