//! The channel records travel on to the host.
//!
//! Memory shared with the host (QEMU's `ivshmem-plain`: a PCI device whose
//! BAR is a file the host maps) when the VM has it: records are copied
//! into it and published by storing their length, with no exit to QEMU at
//! all. Under TCG every byte through an I/O port costs about 2 us (QEMU
//! hands each to its socket with a system call of its own), which was most
//! of what sending a record cost. No driver is needed: the BAR is mapped
//! through sysfs (`resource2`).
//!
//! Else QEMU's ISA debug console (`isa-debugcon`): a write-only I/O port
//! with no driver, no tty layer and no interrupts, so one `rep outsb` hands
//! a whole record to QEMU. Under TCG that is about three times cheaper per
//! byte than the 16550 UART, whose THRE interrupt fires every 16 bytes.
//! The second UART (`/dev/ttyS1`) stays the last fallback: for a host that
//! attaches neither, or a kernel locked down against `ioperm`.

use std::{
    fs::{File, OpenOptions},
    io::{self, BufWriter, Write},
    os::fd::AsFd as _,
};

use nix::sys::termios::{self, SetArg};

/// The I/O port QEMU's debug console listens on (`iobase`), which also reads
/// back as its own number when the device is there.
const DEBUGCON_PORT: u16 = 0xe9;

/// The UART the host reads when there is no debug console (`-serial` #2).
const UART: &str = "/dev/ttyS1";

pub enum ResultsPort {
    Shared(SharedMemory),
    Debugcon,
    Uart(File),
}

impl ResultsPort {
    pub fn open() -> io::Result<BufWriter<Self>> {
        let port = if let Some(shared) = SharedMemory::find() {
            Self::Shared(shared)
        } else if debugcon_present() {
            Self::Debugcon
        } else {
            let uart = OpenOptions::new().write(true).open(UART)?;
            // Raw mode: no newline translation, no echo, 8-bit clean.
            let mut attrs = termios::tcgetattr(uart.as_fd())?;
            termios::cfmakeraw(&mut attrs);
            termios::tcsetattr(uart.as_fd(), SetArg::TCSANOW, &attrs)?;
            Self::Uart(uart)
        };
        Ok(BufWriter::with_capacity(64 << 10, port))
    }

    /// The device's name, for the host's records.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Shared(_) => harness_protocol::SHARED_MEMORY_PORT,
            Self::Debugcon => "debugcon",
            Self::Uart(_) => "ttyS1",
        }
    }

    /// Waits until every byte written has reached QEMU.
    pub fn drain(&self) -> io::Result<()> {
        match self {
            // Published bytes are in the host's file already.
            Self::Shared(_) => Ok(()),
            // Each `out` returns only once QEMU has taken the byte.
            Self::Debugcon => Ok(()),
            Self::Uart(f) => Ok(termios::tcdrain(f.as_fd())?),
        }
    }
}

impl Write for ResultsPort {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Shared(m) => m.write(buf),
            Self::Debugcon => {
                outsb(DEBUGCON_PORT, buf);
                Ok(buf.len())
            }
            Self::Uart(f) => f.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Shared(m) => {
                m.publish();
                Ok(())
            }
            Self::Debugcon => Ok(()),
            Self::Uart(f) => f.flush(),
        }
    }
}

/// Asks the kernel for the debug console's port and checks the device
/// answers on it.
fn debugcon_present() -> bool {
    // SAFETY: ioperm only changes this process's I/O permission bitmap.
    if unsafe { libc::ioperm(u64::from(DEBUGCON_PORT), 1, 1) } != 0 {
        return false;
    }
    let value: u8;
    // SAFETY: the port is ours (ioperm above); reading it has no side effect
    // on the debug console, and an absent device reads as 0xff.
    unsafe {
        std::arch::asm!("in al, dx", in("dx") DEBUGCON_PORT, out("al") value, options(nomem, nostack, preserves_flags));
    }
    value == DEBUGCON_PORT as u8
}

fn outsb(port: u16, buf: &[u8]) {
    // SAFETY: `rep outsb` reads `buf.len()` bytes from `buf` and writes them
    // to a port this process was granted with ioperm.
    unsafe {
        std::arch::asm!(
            "rep outsb",
            in("dx") port,
            inout("rsi") buf.as_ptr() => _,
            inout("rcx") buf.len() => _,
            options(nostack, preserves_flags, readonly),
        );
    }
}

/// The host's shared file, mapped: a header whose first 8 bytes hold the
/// number of stream bytes published (little endian), then the stream from
/// [`harness_protocol::SHARED_MEMORY_DATA`].
pub struct SharedMemory {
    base: *mut u8,
    len: usize,
    written: usize,
}

// SAFETY: the mapping is owned by this value and only touched through it.
unsafe impl Send for SharedMemory {}

impl SharedMemory {
    /// The ivshmem device's BAR 2, enabled and mapped; `None` when the VM
    /// has no such device or it cannot be mapped.
    fn find() -> Option<Self> {
        let device = std::fs::read_dir("/sys/bus/pci/devices")
            .ok()?
            .flatten()
            .map(|e| e.path())
            .find(|d| {
                let id = |f: &str| std::fs::read_to_string(d.join(f)).unwrap_or_default();
                id("vendor").trim() == "0x1af4" && id("device").trim() == "0x1110"
            })?;
        // No driver claims the device: turn its memory decoding on.
        std::fs::write(device.join("enable"), "1").ok()?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(device.join("resource2"))
            .ok()?;
        let len = usize::try_from(file.metadata().ok()?.len()).ok()?;
        if len <= harness_protocol::SHARED_MEMORY_DATA {
            return None;
        }
        // SAFETY: a fresh shared mapping of the whole BAR; it lives as long
        // as this value (never unmapped: PID 1 powers off).
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                std::os::fd::AsRawFd::as_raw_fd(&file),
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return None;
        }
        let mut shared = Self {
            base: base.cast(),
            len,
            written: 0,
        };
        shared.publish();
        Some(shared)
    }

    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let start = harness_protocol::SHARED_MEMORY_DATA + self.written;
        if start + buf.len() > self.len {
            return Err(io::Error::other(format!(
                "the results memory is full ({} MiB)",
                self.len >> 20
            )));
        }
        // SAFETY: in bounds (checked above) of a mapping we own.
        unsafe { std::ptr::copy_nonoverlapping(buf.as_ptr(), self.base.add(start), buf.len()) };
        self.written += buf.len();
        Ok(buf.len())
    }

    /// Makes every byte written so far visible to the host: the bytes
    /// first, then their count.
    fn publish(&mut self) {
        std::sync::atomic::fence(std::sync::atomic::Ordering::Release);
        // SAFETY: the header's first 8 bytes are in the mapping; aligned.
        unsafe {
            std::ptr::write_volatile(self.base.cast::<u64>(), (self.written as u64).to_le());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_memory_publishes_what_was_written_and_refuses_what_does_not_fit() {
        let data = harness_protocol::SHARED_MEMORY_DATA;
        // u64s, so the header is aligned as the BAR's is.
        let mut backing = vec![0u64; (data + 16) / 8];
        let mut m = SharedMemory {
            base: backing.as_mut_ptr().cast(),
            len: data + 16,
            written: 0,
        };
        assert_eq!(m.write(b"0123456789").unwrap(), 10);
        let bytes = |b: &Vec<u64>| b.iter().flat_map(|w| w.to_ne_bytes()).collect::<Vec<u8>>();
        // Written, not yet published: the host still reads a count of 0.
        assert_eq!(bytes(&backing)[..8], 0u64.to_le_bytes());
        m.publish();
        let seen = bytes(&backing);
        assert_eq!(seen[..8], 10u64.to_le_bytes());
        assert_eq!(&seen[data..data + 10], b"0123456789");
        // Six bytes are left: seven do not fit, and nothing is written.
        let full = m.write(b"abcdefg").unwrap_err();
        assert!(
            full.to_string().contains("results memory is full"),
            "{full}"
        );
        assert_eq!(m.write(b"abcdef").unwrap(), 6);
        m.publish();
        assert_eq!(bytes(&backing)[..8], 16u64.to_le_bytes());
    }
}
