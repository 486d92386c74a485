//! A newc ("070701") cpio archive, the format the kernel unpacks as
//! initramfs. Written uncompressed: the kernel then copies instead of
//! decompressing, which is faster under TCG than any compression saves.

use std::{collections::BTreeMap, fs, io, path::Path};

#[derive(Clone, Debug, PartialEq, Eq)]
enum Entry {
    Dir,
    File { data: Vec<u8>, executable: bool },
    Symlink { target: String },
}

/// Builder for an initramfs. Paths are absolute inside the archive; missing
/// parent directories are added. Output is deterministic (sorted, mtime 0).
#[derive(Clone, Debug, Default)]
pub struct Initramfs {
    entries: BTreeMap<String, Entry>,
}

impl Initramfs {
    pub fn new() -> Self {
        Self::default()
    }

    fn add_parents(&mut self, path: &str) {
        let mut prefix = String::new();
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        for part in &parts[..parts.len().saturating_sub(1)] {
            prefix.push('/');
            prefix.push_str(part);
            self.entries.entry(prefix.clone()).or_insert(Entry::Dir);
        }
    }

    pub fn dir(&mut self, path: &str) -> &mut Self {
        let path = normalise(path);
        self.add_parents(&path);
        self.entries.insert(path, Entry::Dir);
        self
    }

    pub fn file(&mut self, path: &str, data: Vec<u8>, executable: bool) -> &mut Self {
        let path = normalise(path);
        self.add_parents(&path);
        self.entries.insert(path, Entry::File { data, executable });
        self
    }

    /// A symbolic link at `path` to `target` (as written, e.g. `busybox`).
    pub fn symlink(&mut self, path: &str, target: &str) -> &mut Self {
        let path = normalise(path);
        self.add_parents(&path);
        self.entries.insert(
            path,
            Entry::Symlink {
                target: target.to_owned(),
            },
        );
        self
    }

    /// Encodes the archive.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (ino, (path, entry)) in self.entries.iter().enumerate() {
            let (mode, data): (u32, &[u8]) = match entry {
                Entry::Dir => (0o040_755, &[]),
                Entry::File {
                    data,
                    executable: true,
                } => (0o100_755, data),
                Entry::File {
                    data,
                    executable: false,
                } => (0o100_644, data),
                Entry::Symlink { target } => (0o120_777, target.as_bytes()),
            };
            // Names in the archive are relative ("init", "harness/plan.json").
            push_entry(
                &mut out,
                ino as u32 + 1,
                mode,
                path.trim_start_matches('/'),
                data,
            );
        }
        push_entry(&mut out, 0, 0, "TRAILER!!!", &[]);
        out
    }

    pub fn write_to(&self, path: &Path) -> io::Result<()> {
        fs::write(path, self.to_bytes())
    }
}

fn normalise(path: &str) -> String {
    format!("/{}", path.trim_matches('/'))
}

fn pad4(out: &mut Vec<u8>) {
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

fn push_entry(out: &mut Vec<u8>, ino: u32, mode: u32, name: &str, data: &[u8]) {
    let nlink = if mode & 0o040_000 != 0 { 2 } else { 1 };
    let fields = [
        ino,
        mode,
        0,
        0,
        nlink,
        0,
        data.len() as u32,
        0,
        0,
        0,
        0,
        name.len() as u32 + 1,
        0,
    ];
    out.extend_from_slice(b"070701");
    for f in fields {
        out.extend_from_slice(format!("{f:08x}").as_bytes());
    }
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    pad4(out);
    out.extend_from_slice(data);
    pad4(out);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Minimal newc reader, enough to check what we wrote.
    fn read(archive: &[u8]) -> Vec<(String, u32, Vec<u8>)> {
        let mut pos = 0;
        let mut out = Vec::new();
        loop {
            assert_eq!(&archive[pos..pos + 6], b"070701", "bad magic at {pos}");
            let field = |i: usize| {
                let s = std::str::from_utf8(&archive[pos + 6 + i * 8..pos + 14 + i * 8]).unwrap();
                u32::from_str_radix(s, 16).unwrap() as usize
            };
            let (mode, size, namesize) = (field(1) as u32, field(6), field(11));
            let name_start = pos + 110;
            let name = std::str::from_utf8(&archive[name_start..name_start + namesize - 1])
                .unwrap()
                .to_owned();
            let data_start = (name_start + namesize).next_multiple_of(4);
            let data = archive[data_start..data_start + size].to_vec();
            pos = (data_start + size).next_multiple_of(4);
            if name == "TRAILER!!!" {
                assert_eq!(pos, archive.len());
                return out;
            }
            out.push((name, mode, data));
        }
    }

    #[test]
    fn writes_parents_files_and_trailer() {
        let mut fs = Initramfs::new();
        fs.file("/init", b"\x7fELF".to_vec(), true)
            .file("/harness/objects/a.o", vec![1, 2, 3], false)
            .dir("/proc");
        let entries = read(&fs.to_bytes());
        let names: Vec<_> = entries.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(
            names,
            [
                "harness",
                "harness/objects",
                "harness/objects/a.o",
                "init",
                "proc"
            ]
        );
        assert_eq!(entries[2].1, 0o100_644);
        assert_eq!(entries[2].2, vec![1, 2, 3]);
        assert_eq!(entries[3].1, 0o100_755);
        assert_eq!(entries[0].1, 0o040_755);
    }

    #[test]
    fn symlinks_hold_their_target() {
        let mut fs = Initramfs::new();
        fs.file("/bin/busybox", b"x".to_vec(), true)
            .symlink("/bin/true", "busybox");
        let entries = read(&fs.to_bytes());
        let link = entries.iter().find(|(n, _, _)| n == "bin/true").unwrap();
        assert_eq!(link.1, 0o120_777);
        assert_eq!(link.2, b"busybox");
    }

    #[test]
    fn output_is_deterministic() {
        let build = || {
            let mut fs = Initramfs::new();
            fs.file("/b", vec![9; 5], false).file("/a", vec![], false);
            fs.to_bytes()
        };
        assert_eq!(build(), build());
    }
}
