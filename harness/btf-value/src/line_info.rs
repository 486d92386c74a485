//! The line info of `.BTF.ext`: for instructions of each program section,
//! the C file, line, column and the text of that line, as clang recorded
//! them. Kernels print the text (and, from 6.9, file and line) in their
//! verifier logs; with this table a note the kernel printed without a
//! location, or without a column, can be placed exactly.

use std::fmt;

/// One line-info record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineInfo {
    /// The ELF section of the program (`xdp`, `tc`, `.text`).
    pub section: String,
    /// Byte offset of the instruction in that section.
    pub insn_off: u32,
    /// The source file as clang named it (often a path).
    pub file: String,
    pub line: u32,
    pub column: u32,
    /// The source line's text, as the kernel prints it in its notes.
    pub text: String,
}

/// Why `.BTF` or `.BTF.ext` could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LineInfoError {
    #[error("{section}: bad magic {magic:#06x} (expected 0xeb9f)")]
    Magic { section: &'static str, magic: u16 },
    #[error("{section}: {what} at byte {offset} runs past its end ({len} bytes)")]
    Truncated {
        section: &'static str,
        what: &'static str,
        offset: usize,
        len: usize,
    },
    #[error(".BTF.ext: line info records of {0} bytes (at least 16 expected)")]
    RecordSize(u32),
    #[error(".BTF: no string at offset {0}")]
    String(u32),
}

/// Reads little- or big-endian `u32`s and `u16`s of one section, with the
/// section's name in every error.
#[derive(Clone, Copy)]
struct Reader<'a> {
    section: &'static str,
    bytes: &'a [u8],
    big_endian: bool,
}

impl<'a> Reader<'a> {
    fn new(section: &'static str, bytes: &'a [u8]) -> Result<Self, LineInfoError> {
        let magic = bytes.get(..2).ok_or(LineInfoError::Truncated {
            section,
            what: "the header",
            offset: 0,
            len: bytes.len(),
        })?;
        let big_endian = match [magic[0], magic[1]] {
            [0x9f, 0xeb] => false,
            [0xeb, 0x9f] => true,
            _ => {
                return Err(LineInfoError::Magic {
                    section,
                    magic: u16::from_le_bytes([magic[0], magic[1]]),
                });
            }
        };
        Ok(Self {
            section,
            bytes,
            big_endian,
        })
    }

    fn u32(&self, offset: usize, what: &'static str) -> Result<u32, LineInfoError> {
        let b = offset
            .checked_add(4)
            .and_then(|end| self.bytes.get(offset..end))
            .ok_or(LineInfoError::Truncated {
                section: self.section,
                what,
                offset,
                len: self.bytes.len(),
            })?;
        let b = [b[0], b[1], b[2], b[3]];
        Ok(if self.big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    }
}

/// The string table of a `.BTF` section.
struct Strings<'a>(&'a [u8]);

impl<'a> Strings<'a> {
    fn of(btf: &'a [u8]) -> Result<Self, LineInfoError> {
        let r = Reader::new(".BTF", btf)?;
        let hdr_len = r.u32(4, "the header length")? as usize;
        let str_off = r.u32(16, "the string offset")? as usize;
        let str_len = r.u32(20, "the string length")? as usize;
        let start = hdr_len.saturating_add(str_off);
        let table = start
            .checked_add(str_len)
            .and_then(|end| btf.get(start..end))
            .ok_or(LineInfoError::Truncated {
                section: ".BTF",
                what: "the string table",
                offset: start,
                len: btf.len(),
            })?;
        Ok(Self(table))
    }

    fn get(&self, offset: u32) -> Result<String, LineInfoError> {
        let rest = self
            .0
            .get(offset as usize..)
            .ok_or(LineInfoError::String(offset))?;
        let end = rest
            .iter()
            .position(|b| *b == 0)
            .ok_or(LineInfoError::String(offset))?;
        Ok(String::from_utf8_lossy(&rest[..end]).into_owned())
    }
}

/// Every line-info record of an object, from its `.BTF` (for the strings)
/// and `.BTF.ext` sections, in the order clang wrote them.
pub fn line_info(btf: &[u8], btf_ext: &[u8]) -> Result<Vec<LineInfo>, LineInfoError> {
    let strings = Strings::of(btf)?;
    let r = Reader::new(".BTF.ext", btf_ext)?;
    let hdr_len = r.u32(4, "the header length")? as usize;
    let line_info_off = r.u32(16, "the line info offset")? as usize;
    let line_info_len = r.u32(20, "the line info length")? as usize;
    if line_info_len == 0 {
        return Ok(Vec::new());
    }
    let start = hdr_len.saturating_add(line_info_off);
    let end = start.saturating_add(line_info_len);
    if end > btf_ext.len() {
        return Err(LineInfoError::Truncated {
            section: ".BTF.ext",
            what: "the line info",
            offset: start,
            len: btf_ext.len(),
        });
    }
    let rec_size = r.u32(start, "the record size")?;
    if rec_size < 16 {
        return Err(LineInfoError::RecordSize(rec_size));
    }
    let mut out = Vec::new();
    let mut at = start + 4;
    while at < end {
        let section = strings.get(r.u32(at, "a section name")?)?;
        let count = r.u32(at + 4, "a record count")? as usize;
        at += 8;
        for _ in 0..count {
            if at.saturating_add(rec_size as usize) > end {
                return Err(LineInfoError::Truncated {
                    section: ".BTF.ext",
                    what: "a line info record",
                    offset: at,
                    len: end,
                });
            }
            let line_col = r.u32(at + 12, "a line and column")?;
            out.push(LineInfo {
                section: section.clone(),
                insn_off: r.u32(at, "an instruction offset")?,
                file: strings.get(r.u32(at + 4, "a file name")?)?,
                text: strings.get(r.u32(at + 8, "a line")?)?,
                line: line_col >> 10,
                column: line_col & 0x3ff,
            });
            at += rec_size as usize;
        }
    }
    Ok(out)
}

impl fmt::Display for LineInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.column, self.text
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `.BTF` with only strings, and a `.BTF.ext` with the given line
    /// info sections, both little-endian unless `big`.
    fn sections(big: bool, strings: &[&str], records: &[(u32, &[[u32; 4]])]) -> (Vec<u8>, Vec<u8>) {
        let w = |v: u32| {
            if big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let magic: [u8; 2] = if big { [0xeb, 0x9f] } else { [0x9f, 0xeb] };
        let mut table = vec![0u8];
        for s in strings {
            table.extend_from_slice(s.as_bytes());
            table.push(0);
        }
        let mut btf = magic.to_vec();
        btf.extend_from_slice(&[1, 0]);
        for v in [24, 0, 0, 0, table.len() as u32] {
            btf.extend_from_slice(&w(v));
        }
        btf.extend_from_slice(&table);
        let mut info = w(16).to_vec();
        for (section, recs) in records {
            info.extend_from_slice(&w(*section));
            info.extend_from_slice(&w(recs.len() as u32));
            for rec in *recs {
                for v in rec {
                    info.extend_from_slice(&w(*v));
                }
            }
        }
        let mut ext = magic.to_vec();
        ext.extend_from_slice(&[1, 0]);
        for v in [32, 0, 0, 0, info.len() as u32, 0, 0] {
            ext.extend_from_slice(&w(v));
        }
        ext.extend_from_slice(&info);
        (btf, ext)
    }

    // Offsets into the string table: "" 0, "xdp" 1, "a.bpf.c" 5, "x = 1;" 13, ".text" 20.
    const STRINGS: &[&str] = &["xdp", "a.bpf.c", "x = 1;", ".text"];

    #[test]
    fn records_name_section_file_line_column_and_text() {
        for big in [false, true] {
            let (btf, ext) = sections(
                big,
                STRINGS,
                &[
                    (1, &[[0, 5, 13, (12 << 10) | 7], [16, 5, 13, 13 << 10]]),
                    (20, &[[8, 5, 13, 3 << 10 | 1]]),
                ],
            );
            let got = line_info(&btf, &ext).unwrap();
            assert_eq!(got.len(), 3, "big endian: {big}");
            assert_eq!(
                got[0],
                LineInfo {
                    section: "xdp".into(),
                    insn_off: 0,
                    file: "a.bpf.c".into(),
                    line: 12,
                    column: 7,
                    text: "x = 1;".into(),
                }
            );
            assert_eq!((got[1].insn_off, got[1].line, got[1].column), (16, 13, 0));
            assert_eq!(
                (got[2].section.as_str(), got[2].line, got[2].column),
                (".text", 3, 1)
            );
            assert_eq!(got[0].to_string(), "a.bpf.c:12:7: x = 1;");
        }
    }

    #[test]
    fn broken_sections_are_errors_that_say_what_is_wrong() {
        let (btf, ext) = sections(false, STRINGS, &[(1, &[[0, 5, 13, 1 << 10]])]);
        assert_eq!(line_info(&btf, &ext).unwrap().len(), 1);
        assert_eq!(
            line_info(&btf, b"\x00\x00rest"),
            Err(LineInfoError::Magic {
                section: ".BTF.ext",
                magic: 0
            })
        );
        assert!(matches!(
            line_info(&btf[..btf.len() - 3], &ext),
            Err(LineInfoError::Truncated {
                section: ".BTF",
                what: "the string table",
                ..
            })
        ));
        assert!(matches!(
            line_info(&btf, &ext[..ext.len() - 4]),
            Err(LineInfoError::Truncated {
                section: ".BTF.ext",
                ..
            })
        ));
        let (_, bad_name) = sections(false, STRINGS, &[(999, &[[0, 5, 13, 1 << 10]])]);
        assert_eq!(line_info(&btf, &bad_name), Err(LineInfoError::String(999)));
        let (_, small) = sections(false, STRINGS, &[]);
        let mut small = small;
        small[32] = 8; // record size 8
        assert_eq!(line_info(&btf, &small), Err(LineInfoError::RecordSize(8)));
        assert!(line_info(&[], &ext).is_err());
    }
}
