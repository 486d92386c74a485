//! The kernel ELF (`vmlinux`, with its `.BTF`) inside a bzImage: the
//! compressed payload the setup header points at, decompressed. CO-RE users
//! generate `vmlinux.h` from it per kernel line.

use std::{
    fs,
    io::{self, Read, Write as _},
    path::Path,
};

use crate::error::KernelError;

/// `payload_offset` and `payload_length` (boot protocol 2.08 on), relative
/// to the protected-mode code, which starts after the setup sectors.
const PAYLOAD_OFFSET: usize = 0x248;
const PAYLOAD_LENGTH: usize = 0x24c;
const SETUP_SECTS: usize = 0x1f1;

/// How the kernel build compressed its payload (CONFIG_KERNEL_*), told by
/// the payload's first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    Gzip,
    Xz,
    Zstd,
    /// lz4's legacy format, as the kernel writes it.
    Lz4,
    /// Another one (lzma, lzo, bzip2), named.
    Other(&'static str),
}

fn compression(payload: &[u8]) -> Option<Compression> {
    let is = |magic: &[u8]| payload.starts_with(magic);
    Some(if is(b"\x1f\x8b") {
        Compression::Gzip
    } else if is(b"\xfd7zXZ\x00") {
        Compression::Xz
    } else if is(b"\x28\xb5\x2f\xfd") {
        Compression::Zstd
    } else if is(b"\x02\x21\x4c\x18") {
        Compression::Lz4
    } else if is(b"\x5d\x00\x00") {
        Compression::Other("lzma")
    } else if is(b"\x89LZO") {
        Compression::Other("lzo")
    } else if is(b"BZh") {
        Compression::Other("bzip2")
    } else {
        return None;
    })
}

/// Writes the `vmlinux` ELF inside `bzimage` to `out` (through a temporary
/// file beside it: nothing half-written on any error).
pub fn extract_vmlinux(bzimage: &Path, out: &Path) -> Result<(), KernelError> {
    let image = fs::read(bzimage).map_err(|e| KernelError::io("read", bzimage, e))?;
    let bad = |message: String| KernelError::NotABzImage {
        path: bzimage.to_owned(),
        message,
    };
    let le32 = |at: usize| -> Result<usize, KernelError> {
        image
            .get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
            .ok_or_else(|| bad("the setup header is cut off".into()))
    };
    let setup_sects = match image.get(SETUP_SECTS) {
        Some(0) => 4,
        Some(&n) => usize::from(n),
        None => return Err(bad("the setup header is cut off".into())),
    };
    let start = (setup_sects + 1) * 512 + le32(PAYLOAD_OFFSET)?;
    let payload = image
        .get(start..start + le32(PAYLOAD_LENGTH)?)
        .filter(|p| !p.is_empty())
        .ok_or_else(|| {
            bad("its payload (boot protocol 2.08 and later) is not in the file".into())
        })?;
    let reader: Box<dyn Read + '_> = match compression(payload) {
        Some(Compression::Gzip) => Box::new(flate2::read::GzDecoder::new(payload)),
        Some(Compression::Xz) => Box::new(liblzma::read::XzDecoder::new(payload)),
        Some(Compression::Zstd) => Box::new(
            ruzstd::decoding::StreamingDecoder::new(payload)
                .map_err(|e| bad(format!("its zstd payload: {e}")))?,
        ),
        Some(Compression::Lz4) => Box::new(io::Cursor::new(
            lz4_legacy(payload).map_err(|e| bad(format!("its lz4 payload: {e}")))?,
        )),
        Some(Compression::Other(name)) => {
            return Err(bad(format!(
                "its payload is {name}-compressed, which the harness does not unpack; \
                 generate vmlinux.h on a machine running this kernel \
                 (/sys/kernel/btf/vmlinux) instead"
            )));
        }
        None => {
            return Err(bad(
                "its payload is in no compression format the kernel uses".into(),
            ));
        }
    };
    let dir = out.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(|e| KernelError::io("create directory", dir, e))?;
    let mut temp = tempfile::NamedTempFile::new_in(dir)
        .map_err(|e| KernelError::io("create a temporary file in", dir, e))?;
    let mut reader = reader.take(1 << 31);
    io::copy(&mut reader, &mut temp)
        .map_err(|e| bad(format!("its payload does not decompress: {e}")))?;
    temp.flush()
        .map_err(|e| KernelError::io("write", temp.path(), e))?;
    let mut head = Vec::with_capacity(4);
    fs::File::open(temp.path())
        .and_then(|f| f.take(4).read_to_end(&mut head))
        .map_err(|e| KernelError::io("read", temp.path(), e))?;
    if head != b"\x7fELF" {
        return Err(bad("its payload does not hold an ELF kernel".into()));
    }
    temp.persist(out)
        .map_err(|e| KernelError::io("write", out, e.error))?;
    Ok(())
}

/// lz4's legacy format (the kernel's `lz4 -l`): the magic, then blocks of
/// at most 8 MiB, each its compressed length (u32, little-endian) and an
/// lz4 block; it ends at the end of the data, at the size the build
/// appends, or at the magic of a concatenated stream.
fn lz4_legacy(data: &[u8]) -> Result<Vec<u8>, String> {
    const MAGIC: u32 = 0x184c_2102;
    const BLOCK: usize = 8 << 20;
    let mut out = Vec::new();
    let mut at = 4;
    while let Some(len) = data.get(at..at + 4) {
        let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]);
        if len == MAGIC {
            break;
        }
        let Some(block) = data.get(at + 4..at + 4 + len as usize) else {
            // The 4-byte size the build appends after the stream.
            break;
        };
        let start = out.len();
        out.resize(start + BLOCK, 0);
        let n = lz4_flex::block::decompress_into(block, &mut out[start..])
            .map_err(|e| e.to_string())?;
        out.truncate(start + n);
        at += 4 + len as usize;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bzImage whose payload is `payload`, at a payload offset of 0x40.
    fn image_with(payload: &[u8]) -> Vec<u8> {
        let mut image = vec![0u8; 5 * 512 + 0x40];
        image[SETUP_SECTS] = 4;
        image[PAYLOAD_OFFSET..PAYLOAD_OFFSET + 4].copy_from_slice(&0x40u32.to_le_bytes());
        image[PAYLOAD_LENGTH..PAYLOAD_LENGTH + 4]
            .copy_from_slice(&(payload.len() as u32).to_le_bytes());
        image.extend_from_slice(payload);
        // The build appends the decompressed size after the stream.
        image.extend_from_slice(&[1, 2, 3, 4]);
        image
    }

    fn elf() -> Vec<u8> {
        let mut elf = b"\x7fELF".to_vec();
        elf.extend((0..100_000u32).map(|i| (i % 253) as u8));
        elf
    }

    fn extract(payload: &[u8]) -> (tempfile::TempDir, Result<Vec<u8>, String>) {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("bzImage");
        fs::write(&image, image_with(payload)).unwrap();
        let out = dir.path().join("out/vmlinux");
        let got = extract_vmlinux(&image, &out)
            .map(|()| fs::read(&out).unwrap())
            .map_err(|e| e.to_string());
        (dir, got)
    }

    #[test]
    fn gzip_and_xz_payloads_decompress_to_the_elf() {
        let elf = elf();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&elf).unwrap();
        let (_d, got) = extract(&gz.finish().unwrap());
        assert_eq!(got.unwrap(), elf);
        let mut xz = liblzma::write::XzEncoder::new(Vec::new(), 1);
        xz.write_all(&elf).unwrap();
        let (_d, got) = extract(&xz.finish().unwrap());
        assert_eq!(got.unwrap(), elf);
    }

    #[test]
    fn lz4_legacy_payloads_decompress_block_by_block() {
        let elf = elf();
        let mut payload = vec![0x02, 0x21, 0x4c, 0x18];
        for chunk in elf.chunks(40_000) {
            let block = lz4_flex::block::compress(chunk);
            payload.extend_from_slice(&(block.len() as u32).to_le_bytes());
            payload.extend_from_slice(&block);
        }
        let (_d, got) = extract(&payload);
        assert_eq!(got.unwrap(), elf);
    }

    #[test]
    fn other_payloads_say_what_they_are_and_leave_nothing() {
        let (dir, got) = extract(b"BZh91AY&SY");
        let err = got.unwrap_err();
        assert!(
            err.contains("bzip2-compressed") && err.contains("/sys/kernel/btf/vmlinux"),
            "{err}"
        );
        let (_d, got) = extract(b"plain");
        assert!(got.unwrap_err().contains("no compression format"));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"not an elf").unwrap();
        let (_d, got) = extract(&gz.finish().unwrap());
        assert!(got.unwrap_err().contains("does not hold an ELF"));
        assert!(
            !dir.path().join("out/vmlinux").exists()
                && fs::read_dir(dir.path().join("out")).map_or(0, |d| d.count()) == 0,
            "nothing half-written"
        );
    }
}
