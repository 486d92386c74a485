//! The host's end of the shared-memory results channel: a file QEMU maps as
//! the BAR of an `ivshmem-plain` device, which the guest's runner maps in
//! turn and writes the record stream into (vm-runner's `port.rs`). The
//! first 8 bytes hold how many stream bytes the guest has published; the
//! stream starts at [`harness_protocol::SHARED_MEMORY_DATA`]. Nothing exits
//! to QEMU per byte, and a guest that dies leaves every published byte in
//! the file.

use std::{
    fs::File,
    io::{self, Read},
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering, fence},
    },
    thread,
    time::Duration,
};

use harness_protocol::SHARED_MEMORY_DATA;

/// The device's size: a power of two (a PCI BAR), far more than any run's
/// compressed stream; the file is sparse, so only what is written is
/// stored.
pub(crate) const SIZE: u64 = 256 << 20;

/// How long the reader waits before looking for new bytes again.
const POLL: Duration = Duration::from_millis(1);

/// Creates the (sparse) file QEMU maps.
pub(crate) fn create(path: &Path) -> io::Result<()> {
    File::create(path)?.set_len(SIZE)
}

/// Reads the stream as the guest publishes it; ends once `finished` is set
/// (QEMU is gone) and every published byte was read.
pub(crate) struct SharedReader {
    base: *const u8,
    len: usize,
    pos: usize,
    finished: Arc<AtomicBool>,
}

// SAFETY: the mapping is owned by this value and only read through it.
unsafe impl Send for SharedReader {}

impl SharedReader {
    pub(crate) fn open(path: &Path, finished: Arc<AtomicBool>) -> io::Result<Self> {
        let file = File::open(path)?;
        let len = usize::try_from(file.metadata()?.len()).map_err(io::Error::other)?;
        if len <= SHARED_MEMORY_DATA {
            return Err(io::Error::other(format!(
                "{} is too small for the results memory",
                path.display()
            )));
        }
        // SAFETY: a fresh read-only shared mapping of the whole file, unmapped
        // on drop; the file stays as long as the VM's directory.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_SHARED,
                std::os::fd::AsRawFd::as_raw_fd(&file),
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Self {
            base: base.cast(),
            len,
            pos: 0,
            finished,
        })
    }

    /// Stream bytes the guest has published (never past the mapping).
    fn published(&self) -> usize {
        // SAFETY: the first 8 bytes are in the mapping, aligned.
        let n = u64::from_le(unsafe { std::ptr::read_volatile(self.base.cast::<u64>()) });
        // The bytes were stored before their count.
        fence(Ordering::Acquire);
        usize::try_from(n)
            .unwrap_or(usize::MAX)
            .min(self.len - SHARED_MEMORY_DATA)
    }
}

impl Read for SharedReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            // Whether QEMU was gone before this look: then what is
            // published now is all there will be.
            let last_look = self.finished.load(Ordering::Acquire);
            let published = self.published();
            if published > self.pos {
                let n = buf.len().min(published - self.pos);
                // SAFETY: `pos + n` is within the published bytes, within
                // the mapping.
                unsafe {
                    std::ptr::copy_nonoverlapping(
                        self.base.add(SHARED_MEMORY_DATA + self.pos),
                        buf.as_mut_ptr(),
                        n,
                    );
                }
                self.pos += n;
                return Ok(n);
            }
            if last_look {
                return Ok(0);
            }
            thread::sleep(POLL);
        }
    }
}

impl Drop for SharedReader {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `open`, not used after this.
        unsafe { libc::munmap(self.base.cast_mut().cast(), self.len) };
    }
}

/// Sets the flag when dropped: the reader ends on every way out of a run.
pub(crate) struct Finish(pub(crate) Arc<AtomicBool>);

impl Drop for Finish {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use std::{
        fs::OpenOptions,
        io::{Seek, SeekFrom, Write},
    };

    use super::*;

    /// Writes as the guest does: bytes first, then their count.
    fn publish(file: &mut File, at: usize, bytes: &[u8]) {
        file.seek(SeekFrom::Start((SHARED_MEMORY_DATA + at) as u64))
            .unwrap();
        file.write_all(bytes).unwrap();
        file.seek(SeekFrom::Start(0)).unwrap();
        file.write_all(&((at + bytes.len()) as u64).to_le_bytes())
            .unwrap();
        file.flush().unwrap();
    }

    #[test]
    fn the_reader_follows_what_is_published_and_ends_when_qemu_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("results.mem");
        create(&path).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), SIZE);
        let mut file = OpenOptions::new().write(true).open(&path).unwrap();
        let finished = Arc::new(AtomicBool::new(false));
        let mut reader = SharedReader::open(&path, finished.clone()).unwrap();
        publish(&mut file, 0, b"hello ");
        let mut buf = [0u8; 64];
        let n = reader.read(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"hello ");
        // Bytes written but not yet counted are not read; a reader waits
        // for them until they are.
        let waiting = thread::spawn(move || {
            let mut rest = Vec::new();
            reader.read_to_end(&mut rest).unwrap();
            rest
        });
        thread::sleep(Duration::from_millis(20));
        assert!(!waiting.is_finished(), "it waits for the guest");
        publish(&mut file, 6, b"world");
        thread::sleep(Duration::from_millis(20));
        {
            let _finish = Finish(finished);
        }
        assert_eq!(waiting.join().unwrap(), b"world");
    }

    #[test]
    fn a_count_past_the_end_reads_no_further_than_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("small.mem");
        File::create(&path).unwrap().set_len(4096).unwrap();
        let mut file = OpenOptions::new().write(true).open(&path).unwrap();
        file.write_all(&u64::MAX.to_le_bytes()).unwrap();
        let reader = SharedReader::open(&path, Arc::new(AtomicBool::new(true))).unwrap();
        assert_eq!(reader.published(), 4096 - SHARED_MEMORY_DATA);
        let mut all = Vec::new();
        let mut reader = reader;
        reader.read_to_end(&mut all).unwrap();
        assert_eq!(all.len(), 4096 - SHARED_MEMORY_DATA);
        File::create(dir.path().join("tiny.mem")).unwrap();
        assert!(SharedReader::open(&dir.path().join("tiny.mem"), Arc::default()).is_err());
    }
}
