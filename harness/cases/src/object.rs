//! What the host knows about an object without a kernel: programs, maps and
//! their BTF types.

use std::collections::BTreeMap;

use harness_bpf::{MapSpec, ObjectFile, ProgramSpec};
use harness_btf_value::{Constants, LineInfo, LineInfoError, ObjectBtf, TypeDesc};

/// An object's programs and maps, with key/value types resolved.
pub struct ObjectInfo {
    pub name: String,
    /// Enumerators of the object's enums, usable as integer constants.
    pub constants: Constants,
    pub file: ObjectFile,
    pub maps: BTreeMap<String, MapInfo>,
    btf: Option<ObjectBtf>,
}

pub struct MapInfo {
    pub spec: MapSpec,
    pub key: TypeDesc,
    pub value: TypeDesc,
}

impl MapInfo {
    pub fn is_per_cpu(&self) -> bool {
        self.spec.map_type.is_per_cpu()
    }

    /// Maps whose state the harness sets, resets and dumps.
    pub fn is_keyed(&self) -> bool {
        self.spec.map_type.is_keyed()
    }
}

impl ObjectInfo {
    pub fn new(name: &str, file: ObjectFile) -> Self {
        let btf = file
            .btf_section()
            .and_then(|b| ObjectBtf::from_bytes(b).ok());
        let maps = file
            .maps()
            .iter()
            .map(|spec| {
                let ty = |id: u32, size: u32| match (&btf, id) {
                    (Some(btf), id) if id != 0 => btf
                        .type_desc(id)
                        .ok()
                        .filter(|t| t.size() == size as usize)
                        .unwrap_or_else(|| TypeDesc::sized(size as usize)),
                    _ => TypeDesc::sized(size as usize),
                };
                let info = MapInfo {
                    key: ty(spec.btf_key_type_id, spec.key_size),
                    value: ty(spec.btf_value_type_id, spec.value_size),
                    spec: spec.clone(),
                };
                (spec.name.clone(), info)
            })
            .collect();
        Self {
            name: name.to_owned(),
            constants: btf.as_ref().map(ObjectBtf::constants).unwrap_or_default(),
            file,
            maps,
            btf,
        }
    }

    /// The C line of each instruction as clang recorded it (`.BTF.ext`);
    /// empty when the object was built without `-g`.
    pub fn line_info(&self) -> Result<Vec<LineInfo>, LineInfoError> {
        match (self.file.btf_section(), self.file.btf_ext_section()) {
            (Some(btf), Some(ext)) => harness_btf_value::line_info(btf, ext),
            _ => Ok(Vec::new()),
        }
    }

    /// Verifier expectations declared in the C source with the `__accepted`
    /// and `__rejected` macros (BTF decl tags on the program's function),
    /// as `(program, expectation)`; malformed tags are errors.
    pub fn declared_expectations(
        &self,
        source: &str,
    ) -> Vec<(
        String,
        Result<harness_verifier::Expectation, harness_verifier::DeclTagError>,
    )> {
        let Some(btf) = &self.btf else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for tag in btf.func_decl_tags() {
            let origin = format!("{source}, {}", tag.function);
            if let Some(e) = harness_verifier::parse_decl_tag(&tag.text, &origin) {
                out.push((tag.function, e));
            }
        }
        out
    }

    pub fn program(&self, name: &str) -> Option<&ProgramSpec> {
        self.file.programs().iter().find(|p| p.name == name)
    }

    pub fn program_names(&self) -> Vec<&str> {
        self.file
            .programs()
            .iter()
            .map(|p| p.name.as_str())
            .collect()
    }

    /// A struct by name from the object's BTF (e.g. `xdp_md`).
    pub fn struct_type(&self, name: &str) -> Option<TypeDesc> {
        self.btf.as_ref()?.struct_type(name)
    }

    /// The type program `name`'s context points to, from its BTF signature
    /// (a syscall program's own argument struct).
    pub fn ctx_type_of(&self, name: &str) -> Option<TypeDesc> {
        self.btf.as_ref()?.first_param_pointee(name)
    }
}
