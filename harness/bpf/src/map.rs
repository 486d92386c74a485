//! Maps of a loaded object, read and written as raw bytes. Typing the bytes is
//! the host's business (it has the object's BTF); here we only know sizes.

use std::{
    io,
    os::fd::{AsFd as _, BorrowedFd, OwnedFd},
    sync::atomic::{AtomicBool, Ordering},
};

use crate::{MapSpec, sys};

/// Where a map came from: declared by the program, or one of the global data
/// sections the compiler emitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapKind {
    Declared,
    Data,
    Bss,
    Rodata,
}

impl MapKind {
    /// From libbpf's view: internal maps are named after their section
    /// (`.rodata`, `.rodata.str1.1`, `.data.custom`, `.bss`, `.kconfig`).
    pub(crate) fn of(internal: bool, name: &str) -> Self {
        if !internal {
            Self::Declared
        } else if name.starts_with(".rodata") || name.starts_with(".kconfig") {
            Self::Rodata
        } else if name.starts_with(".bss") {
            Self::Bss
        } else {
            Self::Data
        }
    }
}

/// A key and its value(s): one, or one per possible CPU.
pub type Entry = (Vec<u8>, Vec<Vec<u8>>);

#[derive(Debug)]
pub struct Map {
    /// As the object declares it.
    pub spec: MapSpec,
    /// Contents right after load, for global data sections.
    initial: Vec<u8>,
    fd: OwnedFd,
    possible_cpus: usize,
    /// Known to hold exactly its state after [`Map::reset`]: set by a reset
    /// and by a dump that finds that state, cleared by anything that may
    /// write it (our writes, [`Map::touched`] before a program runs). A
    /// clean map needs no reset: under TCG every syscall saved counts.
    clean: AtomicBool,
}

impl Map {
    pub(crate) fn new(spec: MapSpec, initial: Vec<u8>, fd: OwnedFd, possible_cpus: usize) -> Self {
        Self {
            spec,
            initial,
            fd,
            possible_cpus,
            clean: AtomicBool::new(false),
        }
    }

    /// A program may have written the map (it is about to run, or ran).
    pub fn touched(&self) {
        self.clean.store(false, Ordering::Relaxed);
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    pub fn is_per_cpu(&self) -> bool {
        self.spec.map_type.is_per_cpu()
    }

    fn is_array(&self) -> bool {
        self.spec.map_type.is_array()
    }

    /// Maps whose entries can be listed, set and cleared by key.
    pub fn is_keyed(&self) -> bool {
        self.spec.map_type.is_keyed()
    }

    /// Number of values per entry: one, or one per possible CPU.
    pub fn value_count(&self) -> usize {
        if self.is_per_cpu() {
            self.possible_cpus
        } else {
            1
        }
    }

    /// Per-CPU values are laid out at an 8-byte stride.
    fn stride(&self) -> usize {
        if self.is_per_cpu() {
            (self.spec.value_size as usize).div_ceil(8) * 8
        } else {
            self.spec.value_size as usize
        }
    }

    fn check_key(&self, key: &[u8]) -> io::Result<()> {
        if key.len() == self.spec.key_size as usize {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "map `{}`: key is {} bytes, the map's key_size is {}",
                    self.spec.name,
                    key.len(),
                    self.spec.key_size
                ),
            ))
        }
    }

    /// Returns the value(s) stored under `key`.
    pub fn lookup(&self, key: &[u8]) -> io::Result<Option<Vec<Vec<u8>>>> {
        self.check_key(key)?;
        let mut buf = vec![0u8; self.stride() * self.value_count()];
        if !sys::map_lookup(self.fd(), key, &mut buf)? {
            return Ok(None);
        }
        Ok(Some(
            buf.chunks(self.stride())
                .map(|c| c[..self.spec.value_size as usize].to_vec())
                .collect(),
        ))
    }

    /// Writes `values`: exactly one (copied to every CPU of a per-CPU map) or
    /// one per possible CPU.
    pub fn update(&self, key: &[u8], values: &[&[u8]]) -> io::Result<()> {
        self.check_key(key)?;
        let n = self.value_count();
        if values.len() != 1 && values.len() != n {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "map `{}`: {} values given, the map holds {n} per key",
                    self.spec.name,
                    values.len()
                ),
            ));
        }
        let mut buf = vec![0u8; self.stride() * n];
        for (i, chunk) in buf.chunks_mut(self.stride()).enumerate() {
            let v = values[if values.len() == 1 { 0 } else { i }];
            if v.len() != self.spec.value_size as usize {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "map `{}`: value is {} bytes, the map's value_size is {}",
                        self.spec.name,
                        v.len(),
                        self.spec.value_size
                    ),
                ));
            }
            chunk[..v.len()].copy_from_slice(v);
        }
        self.touched();
        sys::map_update(self.fd(), key, &buf, 0)
    }

    pub fn delete(&self, key: &[u8]) -> io::Result<()> {
        self.check_key(key)?;
        self.touched();
        sys::map_delete(self.fd(), key)
    }

    /// All keys, in the kernel's iteration order.
    pub fn keys(&self) -> io::Result<Vec<Vec<u8>>> {
        let mut keys = Vec::new();
        if !self.is_keyed() {
            return Ok(keys);
        }
        let mut next = vec![0u8; self.spec.key_size as usize];
        let mut prev: Option<Vec<u8>> = None;
        while sys::map_next_key(self.fd(), prev.as_deref(), &mut next)? {
            keys.push(next.clone());
            prev = Some(next.clone());
            if keys.len() > self.spec.max_entries as usize {
                return Err(io::Error::other(format!(
                    "map `{}` keeps yielding keys beyond max_entries",
                    self.spec.name
                )));
            }
        }
        Ok(keys)
    }

    /// Every entry, sorted by key bytes so dumps are comparable run to run.
    /// An array is read by index (in one batch where the kernel can), never
    /// by walking its keys.
    pub fn entries(&self) -> io::Result<Vec<Entry>> {
        let mut out = if self.is_array() {
            self.array_entries()?
        } else {
            let mut keys = self.keys()?;
            keys.sort();
            let mut out = Vec::with_capacity(keys.len());
            for key in keys {
                // An LRU map may evict between listing and lookup; skip what vanished.
                if let Some(values) = self.lookup(&key)? {
                    out.push((key, values));
                }
            }
            out
        };
        out.sort_by(|a, b| a.0.cmp(&b.0));
        let at_reset = if self.is_array() {
            let reset = self.reset_value();
            out.iter().all(|(_, vs)| vs.iter().all(|v| *v == reset))
        } else {
            out.is_empty()
        };
        self.clean.store(at_reset, Ordering::Relaxed);
        Ok(out)
    }

    fn array_entries(&self) -> io::Result<Vec<Entry>> {
        let n = self.spec.max_entries as usize;
        let per_key = self.stride() * self.value_count();
        let mut keys = vec![0u8; n * 4];
        let mut values = vec![0u8; n * per_key];
        let split = |values: &[u8]| -> Vec<Vec<u8>> {
            values
                .chunks(self.stride())
                .map(|c| c[..self.spec.value_size as usize].to_vec())
                .collect()
        };
        if self.spec.key_size == 4
            && n > 0
            && sys::map_lookup_batch(self.fd(), &mut keys, &mut values, n as u32)?
        {
            return Ok(keys
                .chunks(4)
                .zip(values.chunks(per_key))
                .map(|(k, v)| (k.to_vec(), split(v)))
                .collect());
        }
        let mut out = Vec::with_capacity(n);
        for index in 0..self.spec.max_entries {
            let key = index.to_ne_bytes();
            if let Some(values) = self.lookup(&key)? {
                out.push((key.to_vec(), values));
            }
        }
        Ok(out)
    }

    /// What an array holds after a reset: its initial contents (global
    /// data) or zeros.
    fn reset_value(&self) -> Vec<u8> {
        if self.initial.len() == self.spec.value_size as usize {
            self.initial.clone()
        } else {
            vec![0u8; self.spec.value_size as usize]
        }
    }

    /// Restores the state right after load: arrays back to zero (global data
    /// back to its initial contents, in one batch where the kernel can),
    /// every other keyed map emptied. Nothing to do for a map known clean.
    pub fn reset(&self) -> io::Result<()> {
        if self.spec.kind == MapKind::Rodata
            || !self.is_keyed()
            || self.clean.load(Ordering::Relaxed)
        {
            return Ok(());
        }
        if self.is_array() {
            let value = self.reset_value();
            let n = self.spec.max_entries;
            let per_key = self.stride() * self.value_count();
            let mut one = vec![0u8; per_key];
            for chunk in one.chunks_mut(self.stride()) {
                chunk[..value.len()].copy_from_slice(&value);
            }
            let keys: Vec<u8> = (0..n).flat_map(u32::to_ne_bytes).collect();
            let values = one.repeat(n as usize);
            let batched = self.spec.key_size == 4
                && n > 0
                && sys::map_update_batch(self.fd(), &keys, &values, n)?;
            if !batched {
                for index in 0..n {
                    self.update(&index.to_ne_bytes(), &[&value])?;
                }
            }
        } else {
            for key in self.keys()? {
                match self.delete(&key) {
                    Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
                    other => other?,
                }
            }
        }
        self.clean.store(true, Ordering::Relaxed);
        Ok(())
    }
}
