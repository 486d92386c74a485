//! Program sections aya-obj does not know.
//!
//! aya-obj treats every non-empty executable section with an unknown name
//! as a program section and refuses the whole object when the name is not
//! one it parses (libbpf's `tc`, `syscall`, `netfilter`, ...). A harness must
//! still load the object's other programs and say why the rest were left
//! out, so such sections are hidden from aya-obj (their executable flag is
//! cleared in a copy of the file) and reported per function.

use object::{Object as _, ObjectSection as _, ObjectSymbol as _, SectionKind};

/// Names aya-obj treats as something other than a program section.
const SPECIAL: &[&str] = &[
    "license", "version", "maps", ".maps", ".text", ".bss", ".data", ".rodata",
];

/// An executable section aya-obj would refuse, and the functions in it.
pub(crate) struct UnknownSection {
    pub index: usize,
    pub name: String,
    pub functions: Vec<String>,
}

pub(crate) fn unknown_program_sections(elf: &object::File<'_>) -> Vec<UnknownSection> {
    let mut out = Vec::new();
    for section in elf.sections() {
        let Ok(name) = section.name() else { continue };
        if section.kind() != SectionKind::Text
            || section.size() == 0
            || SPECIAL.iter().any(|s| name.starts_with(s))
        {
            continue;
        }
        if name.parse::<aya_obj::ProgramSection>().is_ok() {
            continue;
        }
        let mut functions: Vec<String> = elf
            .symbols()
            .filter(|s| {
                s.section_index() == Some(section.index()) && s.kind() == object::SymbolKind::Text
            })
            .filter_map(|s| s.name().ok().filter(|n| !n.is_empty()).map(str::to_owned))
            .collect();
        functions.sort();
        out.push(UnknownSection {
            index: section.index().0,
            name: name.to_owned(),
            functions,
        });
    }
    out
}

/// Why a section name is not loadable, with the name aya-obj wants where
/// there is one.
pub(crate) fn reason(section: &str) -> String {
    let kind = section.split('/').next().unwrap_or(section);
    let hint = match kind {
        "tc" | "tcx" => " (name tc programs SEC(\"classifier\"))",
        "kprobe.multi" | "kretprobe.multi" | "uprobe.multi" | "uretprobe.multi" => {
            " (multi-attach probes are not supported)"
        }
        "syscall" | "netfilter" | "struct_ops" | "struct_ops.s" | "fmod_ret" | "fmod_ret.s" => {
            " (this program type is not supported by the loader)"
        }
        _ => "",
    };
    format!("section `{section}` is not a program section the loader (aya-obj 0.3) knows{hint}")
}

/// A copy of an ELF64 little-endian object with `SHF_EXECINSTR` cleared on
/// the given sections, so aya-obj no longer sees them as programs.
pub(crate) fn hide(data: &[u8], sections: &[usize]) -> Result<Vec<u8>, String> {
    const SHF_EXECINSTR: u64 = 0x4;
    let mut out = data.to_vec();
    let field = |at: usize, len: usize| {
        data.get(at..at + len)
            .ok_or_else(|| "truncated ELF header".to_owned())
    };
    if field(0, 6)? != b"\x7fELF\x02\x01" {
        return Err("only 64-bit little-endian objects can have unknown sections skipped".into());
    }
    let shoff = u64::from_le_bytes(field(0x28, 8)?.try_into().expect("8 bytes")) as usize;
    let shentsize = usize::from(u16::from_le_bytes(
        field(0x3a, 2)?.try_into().expect("2 bytes"),
    ));
    for &index in sections {
        let at = shoff + index * shentsize + 8;
        let flags = u64::from_le_bytes(field(at, 8)?.try_into().expect("8 bytes"));
        out[at..at + 8].copy_from_slice(&(flags & !SHF_EXECINSTR).to_le_bytes());
    }
    Ok(out)
}
