//! Programs a live case's `exec` steps run inside the guest: a static
//! busybox from the host (Debian's `busybox-static`) and its applets as
//! links, so `/bin/sh`, `/bin/true` or `/bin/cat` exist in a VM whose only
//! other program is the runner.

use std::{fs, path::PathBuf};

use crate::Initramfs;

/// Where Debian and Ubuntu's `busybox-static` installs it.
pub const BUSYBOX: &str = "/bin/busybox";

/// The applets linked under `/bin` in the guest.
pub const APPLETS: &[&str] = &[
    "sh", "true", "false", "echo", "cat", "sleep", "id", "ls", "touch", "rm", "mkdir", "env",
    "head", "wc", "cp", "mv", "chmod", "chown", "ln", "nc", "wget", "whoami", "uname", "kill",
];

/// The host's busybox, if it runs without a dynamic loader (the guest has
/// none).
pub fn static_busybox() -> Result<PathBuf, String> {
    let path = PathBuf::from(BUSYBOX);
    let bytes = fs::read(&path).map_err(|e| {
        format!("{BUSYBOX}: {e} (live cases run programs in the VM with a static busybox: install busybox-static)")
    })?;
    if has_interpreter(&bytes) {
        return Err(format!(
            "{BUSYBOX} is dynamically linked and the VM has no libc: install busybox-static"
        ));
    }
    Ok(path)
}

/// Whether an ELF64 file asks for a program interpreter (`PT_INTERP`); a
/// file that is not ELF64 counts as needing one.
fn has_interpreter(elf: &[u8]) -> bool {
    const PT_INTERP: u32 = 3;
    let u16_at = |at: usize| {
        elf.get(at..at + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    let u32_at = |at: usize| {
        elf.get(at..at + 4)
            .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
    };
    let u64_at = |at: usize| {
        elf.get(at..at + 8)
            .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
    };
    if elf.get(..5) != Some(b"\x7fELF\x02") {
        return true;
    }
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38))
    else {
        return true;
    };
    (0..usize::from(phnum)).any(|i| {
        usize::try_from(phoff)
            .ok()
            .and_then(|off| u32_at(off + i * usize::from(phentsize)))
            .is_none_or(|t| t == PT_INTERP)
    })
}

/// Adds busybox and its applets to a guest's initramfs.
pub fn add_busybox(fs: &mut Initramfs) -> Result<(), String> {
    let path = static_busybox()?;
    let data = fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    fs.file("/bin/busybox", data, true);
    for applet in APPLETS {
        fs.symlink(&format!("/bin/{applet}"), "busybox");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn elf(types: &[u32]) -> Vec<u8> {
        let mut e = vec![0u8; 64 + 56 * types.len()];
        e[..5].copy_from_slice(b"\x7fELF\x02");
        e[0x20..0x28].copy_from_slice(&64u64.to_le_bytes());
        e[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
        e[0x38..0x3a].copy_from_slice(&(types.len() as u16).to_le_bytes());
        for (i, t) in types.iter().enumerate() {
            e[64 + 56 * i..68 + 56 * i].copy_from_slice(&t.to_le_bytes());
        }
        e
    }

    #[test]
    fn only_elf_without_an_interpreter_is_static() {
        assert!(!has_interpreter(&elf(&[1, 1, 4])), "LOAD, LOAD, NOTE");
        assert!(has_interpreter(&elf(&[6, 3, 1])), "PHDR, INTERP, LOAD");
        assert!(has_interpreter(b"#!/bin/sh\n"));
        let mut cut = elf(&[1, 1]);
        cut.truncate(80);
        assert!(has_interpreter(&cut), "headers beyond the file");
    }
}
