//! The object's BTF, parsed once: types by id, structs by name, the
//! enumerators, and the decl tags on functions.

use btf_rs::{Btf, BtfType, Type};
use fallible_iterator::FallibleIterator as _;

use crate::{
    encode::Constants,
    types::{MemberDesc, TypeDesc},
};

/// Why a BTF type could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BtfError {
    #[error("the object's BTF does not parse: {0}")]
    Parse(#[source] btf_rs::Error),
    #[error("BTF type {id} nests too deeply")]
    TooDeep { id: u32 },
    #[error("BTF type {id}: {error}")]
    Unresolved {
        id: u32,
        #[source]
        error: btf_rs::Error,
    },
    #[error("BTF type {id} has no target")]
    NoTarget { id: u32 },
    /// Functions, variables, data sections...: nothing a map or context holds.
    #[error("BTF type {id} is a {kind}, which has no value layout")]
    NoLayout { id: u32, kind: &'static str },
}

/// A decl tag on a function: `__attribute__((btf_decl_tag("text")))`, as
/// the harness's `__accepted`/`__rejected` macros put on programs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FuncDeclTag {
    /// The function (for a BPF program, the program's name).
    pub function: String,
    /// The tag's text.
    pub text: String,
}

/// An object's `.BTF` section, parsed once.
pub struct ObjectBtf {
    btf: Btf,
}

impl ObjectBtf {
    /// Parses the bytes of an object's `.BTF` section.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, BtfError> {
        let btf = Btf::from_bytes(bytes).map_err(BtfError::Parse)?;
        Ok(Self { btf })
    }

    /// Type `id` (a map's key or value type), following typedefs and
    /// qualifiers.
    pub fn type_desc(&self, id: u32) -> Result<TypeDesc, BtfError> {
        from_btf(&self.btf, id)
    }

    /// A struct by name (e.g. `xdp_md`); the first of that name that reads.
    pub fn struct_type(&self, name: &str) -> Option<TypeDesc> {
        self.btf
            .resolve_ids_by_name(name)
            .ok()?
            .into_iter()
            .filter_map(|id| self.type_desc(id).ok())
            .find(|t| matches!(t, TypeDesc::Struct { .. }))
    }

    /// What function `name`'s first parameter points to (a syscall
    /// program's `struct args *ctx`), following typedefs and qualifiers;
    /// `None` when there is no such function or it takes no pointer.
    pub fn first_param_pointee(&self, name: &str) -> Option<TypeDesc> {
        let btf = &self.btf;
        let func = btf
            .resolve_types_by_name(name)
            .ok()?
            .into_iter()
            .find_map(|t| match t {
                Type::Func(f) => Some(f),
                _ => None,
            })?;
        let Type::FuncProto(proto) = btf.resolve_type_by_id(func.get_type_id()?).ok()? else {
            return None;
        };
        let mut id = proto.parameters.first()?.get_type_id()?;
        for _ in 0..32 {
            match btf.resolve_type_by_id(id).ok()? {
                Type::Ptr(p) => return self.type_desc(p.get_type_id()?).ok(),
                Type::Typedef(t) => id = t.get_type_id()?,
                Type::Const(t) => id = t.get_type_id()?,
                Type::Volatile(t) => id = t.get_type_id()?,
                Type::Restrict(t) => id = t.get_type_id()?,
                _ => return None,
            }
        }
        None
    }

    /// Every enumerator of every enum, usable as an integer constant.
    pub fn constants(&self) -> Constants {
        let btf = &self.btf;
        let mut map = std::collections::BTreeMap::new();
        let mut iter = btf.type_iter();
        while let Ok(Some(t)) = iter.next() {
            match &t {
                Type::Enum(e) => {
                    for m in &e.members {
                        map.insert(name_of(btf, m), i64::from(m.val() as i32));
                    }
                }
                Type::Enum64(e) => {
                    for m in &e.members {
                        map.insert(name_of(btf, m), m.val() as i64);
                    }
                }
                _ => {}
            }
        }
        map.remove("");
        Constants(map)
    }

    /// The decl tags on functions (not on their parameters), in BTF order.
    /// Tags whose text or target does not resolve are left out.
    pub fn func_decl_tags(&self) -> Vec<FuncDeclTag> {
        let btf = &self.btf;
        let mut out = Vec::new();
        let mut iter = btf.type_iter();
        while let Ok(Some(t)) = iter.next() {
            let Type::DeclTag(tag) = &t else { continue };
            if tag.component_index().is_some() {
                continue;
            }
            let Ok(text) = btf.resolve_name(tag) else {
                continue;
            };
            let Some(target) = tag
                .get_type_id()
                .and_then(|id| btf.resolve_type_by_id(id).ok())
            else {
                continue;
            };
            let Type::Func(func) = &target else { continue };
            out.push(FuncDeclTag {
                function: btf.resolve_name(func).unwrap_or_default(),
                text,
            });
        }
        out
    }
}

/// Reads type `id`, following typedefs and qualifiers.
fn from_btf(btf: &Btf, id: u32) -> Result<TypeDesc, BtfError> {
    from_btf_depth(btf, id, None, 0)
}

fn name_of(btf: &Btf, t: &dyn BtfType) -> String {
    btf.resolve_name(t).unwrap_or_default()
}

fn from_btf_depth(
    btf: &Btf,
    id: u32,
    typedef: Option<String>,
    depth: u32,
) -> Result<TypeDesc, BtfError> {
    if depth > 32 {
        return Err(BtfError::TooDeep { id });
    }
    let ty = btf
        .resolve_type_by_id(id)
        .map_err(|error| BtfError::Unresolved { id, error })?;
    let chained = |t: &dyn BtfType, td: Option<String>| -> Result<TypeDesc, BtfError> {
        let next = t.get_type_id().ok_or(BtfError::NoTarget { id })?;
        from_btf_depth(btf, next, td, depth + 1)
    };
    Ok(match &ty {
        Type::Int(i) => {
            let name = name_of(btf, i);
            let big_endian = typedef.as_deref().is_some_and(|t| t.starts_with("__be"));
            TypeDesc::Int {
                name: typedef.unwrap_or(name),
                size: i.size(),
                signed: i.is_signed(),
                big_endian,
                is_bool: i.is_bool(),
            }
        }
        Type::Typedef(t) => {
            let name = name_of(btf, t);
            // Keep the outermost meaningful typedef (`__be32` over `__u32`).
            let keep = match typedef {
                Some(outer) if outer.starts_with("__be") => Some(outer),
                _ => Some(name),
            };
            chained(t, keep)?
        }
        Type::Const(t) => chained(t, typedef)?,
        Type::Volatile(t) => chained(t, typedef)?,
        Type::Restrict(t) => chained(t, typedef)?,
        Type::TypeTag(t) => chained(t, typedef)?,
        Type::Array(a) => {
            let elem = chained(a, None)?;
            TypeDesc::Array {
                elem: Box::new(elem),
                len: a.len(),
            }
        }
        Type::Struct(s) | Type::Union(s) => {
            let mut members = Vec::with_capacity(s.members.len());
            for m in &s.members {
                let ty = from_btf_depth(btf, m.get_type_id().unwrap_or(0), None, depth + 1)?;
                members.push(MemberDesc {
                    name: name_of(btf, m),
                    bit_offset: m.bit_offset(),
                    bits: m.bitfield_size().filter(|b| *b != 0),
                    ty,
                });
            }
            TypeDesc::Struct {
                name: name_of(btf, s),
                size: s.size(),
                members,
                is_union: matches!(ty, Type::Union(_)),
            }
        }
        Type::Enum(e) => TypeDesc::Enum {
            name: name_of(btf, e),
            size: e.size(),
            variants: e
                .members
                .iter()
                .map(|m| (name_of(btf, m), i64::from(m.val() as i32)))
                .collect(),
        },
        Type::Enum64(e) => TypeDesc::Enum {
            name: name_of(btf, e),
            size: e.size(),
            variants: e
                .members
                .iter()
                .map(|m| (name_of(btf, m), m.val() as i64))
                .collect(),
        },
        Type::Ptr(_) => TypeDesc::Bytes { size: 8 },
        Type::Float(f) => TypeDesc::Bytes { size: f.size() },
        other => {
            return Err(BtfError::NoLayout {
                id,
                kind: other.name(),
            });
        }
    })
}
