//! Files a run makes for itself carry its pid (`<prefix><pid>-<random>`),
//! so the next run can tell what a killed one (SIGKILL, a crash) left
//! behind and remove it, without touching what a live run still uses.

use std::{
    fs, io,
    path::{Path, PathBuf},
};

/// The prefix of this process's own files of a kind: `harness-vm-1234-`.
pub fn own_prefix(kind: &str) -> String {
    format!("{kind}{}-", std::process::id())
}

/// Removes every entry of `dir` named `<kind><pid>-...` whose process is
/// gone; returns what it removed. A missing `dir` has nothing to sweep.
pub fn sweep(dir: &Path, kind: &str) -> io::Result<Vec<PathBuf>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(kind))
            .and_then(|rest| rest.split_once('-'))
            .and_then(|(pid, _)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if alive(pid) {
            continue;
        }
        let path = entry.path();
        let gone = if path.is_dir() {
            fs::remove_dir_all(&path)
        } else {
            fs::remove_file(&path)
        };
        // Another run may be sweeping the same leftover.
        match gone {
            Ok(()) => removed.push(path),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(removed)
}

fn alive(pid: u32) -> bool {
    Path::new("/proc").join(pid.to_string()).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pid no process has: one that just exited.
    fn dead_pid() -> u32 {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        pid
    }

    #[test]
    fn only_what_dead_runs_left_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let dead = dead_pid();
        let leftovers = [
            dir.path().join(format!("harness-vm-{dead}-abc")),
            dir.path().join(format!("harness-vm-{dead}-def")),
        ];
        fs::create_dir(&leftovers[0]).unwrap();
        fs::write(leftovers[0].join("results.sock"), "").unwrap();
        fs::write(&leftovers[1], "").unwrap();
        let live = dir.path().join(format!("{}xyz", own_prefix("harness-vm-")));
        let other = dir.path().join(format!("initramfs-{dead}-x.cpio"));
        let unrelated = dir.path().join("harness-vm-notapid");
        for keep in [&live, &other, &unrelated] {
            fs::write(keep, "").unwrap();
        }
        let mut removed = sweep(dir.path(), "harness-vm-").unwrap();
        removed.sort();
        assert_eq!(removed, leftovers);
        for keep in [&live, &other, &unrelated] {
            assert!(keep.exists(), "{}", keep.display());
        }
        assert!(sweep(&dir.path().join("missing"), "x-").unwrap().is_empty());
    }
}
