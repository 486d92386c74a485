//! Encoding, formatting, comparing and summing values.

use toml::Value;

use super::*;

fn u(size: usize) -> TypeDesc {
    TypeDesc::Int {
        name: format!("__u{}", size * 8),
        size,
        signed: false,
        big_endian: false,
        is_bool: false,
    }
}
fn be16() -> TypeDesc {
    TypeDesc::Int {
        name: "__be16".into(),
        size: 2,
        signed: false,
        big_endian: true,
        is_bool: false,
    }
}
fn member(name: &str, bit_offset: u32, ty: TypeDesc) -> MemberDesc {
    MemberDesc {
        name: name.into(),
        bit_offset,
        bits: None,
        ty,
    }
}
/// Mismatches as the lines a failure report shows.
fn lines(m: Vec<Mismatch>) -> Vec<String> {
    m.iter().map(ToString::to_string).collect()
}
fn v(s: &str) -> Value {
    toml::from_str::<toml::Table>(&format!("x = {s}"))
        .unwrap()
        .remove("x")
        .unwrap()
}

#[test]
fn integers_check_their_range() {
    assert_eq!(encode(&u(2), &v("513"), "k").unwrap().bytes, [1, 2]);
    let err = encode(&u(1), &v("300"), "maps.m[0].value").unwrap_err();
    assert_eq!(
        err.to_string(),
        "maps.m[0].value: 300 is out of range for __u8 (0..=255)"
    );
    assert_eq!(err.path, "maps.m[0].value");
    assert_eq!(
        err.kind,
        ValueErrorKind::OutOfRange {
            value: 300,
            name: "__u8".into(),
            min: 0,
            max: 255
        }
    );
    let signed = TypeDesc::Int {
        name: "int".into(),
        size: 4,
        signed: true,
        big_endian: false,
        is_bool: false,
    };
    assert_eq!(encode(&signed, &v("-1"), "k").unwrap().bytes, [0xff; 4]);
    assert_eq!(encode(&be16(), &v("80"), "k").unwrap().bytes, [0, 80]);
}

#[test]
fn addresses_are_in_network_order() {
    assert_eq!(
        encode(&u(4), &v("\"10.0.0.1\""), "k").unwrap().bytes,
        [10, 0, 0, 1]
    );
    let v6 = TypeDesc::Array {
        elem: Box::new(u(1)),
        len: 16,
    };
    assert_eq!(
        encode(&v6, &v("\"2001:db8::1\""), "k").unwrap().bytes[..4],
        [0x20, 0x01, 0x0d, 0xb8]
    );
    let mac = TypeDesc::Array {
        elem: Box::new(u(1)),
        len: 6,
    };
    assert_eq!(
        encode(&mac, &v("\"02:00:00:00:00:09\""), "k")
            .unwrap()
            .bytes,
        [2, 0, 0, 0, 0, 9]
    );
    let err = encode(&u(4), &v("\"ten\""), "k").unwrap_err().to_string();
    assert!(err.contains("IPv4 address"), "{err}");
}

fn lpm_v4() -> TypeDesc {
    TypeDesc::Struct {
        name: "lpm_v4".into(),
        size: 8,
        members: vec![
            member("prefixlen", 0, u(4)),
            member(
                "addr",
                32,
                TypeDesc::Array {
                    elem: Box::new(u(1)),
                    len: 4,
                },
            ),
        ],
        is_union: false,
    }
}

#[test]
fn a_struct_shaped_like_an_lpm_key_but_not_one_reads_as_a_struct() {
    // struct bpf_devmap_val: an ifindex and a program fd, no prefix.
    let devmap_val = TypeDesc::Struct {
        name: "bpf_devmap_val".into(),
        size: 8,
        members: vec![member("ifindex", 0, u(4)), member("prog_fd", 32, u(4))],
        is_union: false,
    };
    assert_eq!(
        format(&devmap_val, &[1, 0, 0, 0, 0, 0, 0, 0], "tx_ports"),
        "{ ifindex: 1, prog_fd: 0 }"
    );
}

#[test]
fn cidrs_fill_lpm_keys_and_reject_long_prefixes() {
    let e = encode(&lpm_v4(), &v("\"10.1.0.0/16\""), "k").unwrap();
    assert_eq!(e.bytes, [16, 0, 0, 0, 10, 1, 0, 0]);
    assert_eq!(format(&lpm_v4(), &e.bytes, "deny"), "10.1.0.0/16");
    let err = encode(&lpm_v4(), &v("\"10.0.0.0/33\""), "k")
        .unwrap_err()
        .to_string();
    assert!(err.contains("/33 is too long"), "{err}");
    let err = encode(&lpm_v4(), &v("\"2001:db8::/32\""), "k")
        .unwrap_err()
        .to_string();
    assert!(err.contains("holds 4 bytes"), "{err}");
}

#[test]
fn structs_by_field_name_with_partial_masks() {
    let counters = TypeDesc::Struct {
        name: "counters".into(),
        size: 16,
        members: vec![member("dropped", 0, u(8)), member("passed", 64, u(8))],
        is_union: false,
    };
    let e = encode(&counters, &v("{ passed = 3 }"), "value").unwrap();
    let mut got = vec![0u8; 16];
    got[8] = 3;
    got[0] = 99; // `dropped` was not specified, so it is not compared
    assert!(mismatches(&counters, &e, &got).is_empty());
    got[8] = 4;
    assert!(!mismatches(&counters, &e, &got).is_empty());
    assert_eq!(
        format(&counters, &e.bytes, "stats"),
        "{ dropped: 0, passed: 3 }"
    );
    let err = encode(&counters, &v("{ droped = 1 }"), "value").unwrap_err();
    assert_eq!(
        err.to_string(),
        "value: struct counters has no field `droped`; its fields are dropped, passed"
    );
}

#[test]
fn mismatches_name_only_the_fields_that_were_specified_and_differ() {
    let counters = TypeDesc::Struct {
        name: "counters".into(),
        size: 16,
        members: vec![member("dropped", 0, u(8)), member("passed", 64, u(8))],
        is_union: false,
    };
    let want = encode(&counters, &v("{ passed = 3 }"), "value").unwrap();
    let mut got = vec![0u8; 16];
    got[0] = 9; // not specified: never reported
    got[8] = 4;
    assert_eq!(
        lines(mismatches(&counters, &want, &got)),
        ["passed: expected 3, got 4"]
    );
    got[8] = 3;
    assert!(mismatches(&counters, &want, &got).is_empty());
    // A shorter answer (an older kernel's context) is fine when every
    // specified byte is in it, and reported when one is not.
    let longer = [got.as_slice(), &[0xaa; 8]].concat();
    assert!(mismatches(&counters, &want, &longer[..16]).is_empty());
    assert!(!mismatches(&counters, &want, &got[..8]).is_empty());
    assert_eq!(
        lines(mismatches(&counters, &want, &got[..8])),
        ["passed: expected 3, but the kernel returned only 8 bytes"]
    );
    assert_eq!(
        lines(mismatches(
            &u(2),
            &encode(&u(2), &v("7"), "x").unwrap(),
            &[8, 0]
        )),
        ["expected 7, got 8"]
    );
}

#[test]
fn enums_by_variant_name() {
    let e = TypeDesc::Enum {
        name: "verdict".into(),
        size: 4,
        variants: vec![("ALLOW".into(), 0), ("DENY".into(), 1)],
    };
    assert_eq!(encode(&e, &v("\"DENY\""), "v").unwrap().bytes, [1, 0, 0, 0]);
    assert_eq!(format(&e, &[1, 0, 0, 0], ""), "DENY");
    assert!(
        encode(&e, &v("\"MAYBE\""), "v")
            .unwrap_err()
            .to_string()
            .contains("ALLOW, DENY")
    );
}

#[test]
fn raw_hex_must_match_the_size() {
    assert_eq!(
        encode(&u(2), &v("{ hex = \"beef\" }"), "k").unwrap().bytes,
        [0xbe, 0xef]
    );
    assert!(
        encode(&u(4), &v("{ hex = \"beef\" }"), "k")
            .unwrap_err()
            .to_string()
            .contains("2 hex bytes given")
    );
}

#[test]
fn big_endian_ports_print_as_numbers() {
    assert_eq!(format(&be16(), &[0x1f, 0x90], "port"), "8080");
}

#[test]
fn mismatches_are_typed() {
    let counters = TypeDesc::Struct {
        name: "counters".into(),
        size: 16,
        members: vec![member("dropped", 0, u(8)), member("passed", 64, u(8))],
        is_union: false,
    };
    let want = encode(&counters, &v("{ passed = 3 }"), "value").unwrap();
    let mut got = vec![0u8; 16];
    got[8] = 4;
    assert_eq!(
        mismatches(&counters, &want, &got),
        [Mismatch {
            path: "passed".into(),
            expected: "3".into(),
            got: Got::Value("4".into()),
        }]
    );
    assert_eq!(
        mismatches(&counters, &want, &got[..8]),
        [Mismatch {
            path: "passed".into(),
            expected: "3".into(),
            got: Got::Short { len: 8 },
        }]
    );
}

#[test]
fn per_cpu_values_add_up_field_by_field() {
    let counters = TypeDesc::Struct {
        name: "counters".into(),
        size: 10,
        members: vec![member("packets", 0, u(8)), member("port", 64, be16())],
        is_union: false,
    };
    let mut cpu0 = vec![0u8; 10];
    cpu0[0] = 0xff;
    cpu0[9] = 0xff; // port 0x00ff
    let mut cpu1 = vec![0u8; 10];
    cpu1[0] = 2;
    cpu1[9] = 1;
    let total = sum(&counters, &[cpu0.clone(), cpu1]);
    assert_eq!(&total[..8], &0x101u64.to_le_bytes(), "carries into byte 1");
    assert_eq!(&total[8..], &[0x01, 0x00], "big-endian adds as big-endian");
    // Not counters: CPU 0's value stays.
    let e = TypeDesc::Enum {
        name: "verdict".into(),
        size: 4,
        variants: vec![],
    };
    assert_eq!(sum(&e, &[vec![1, 0, 0, 0], vec![1, 0, 0, 0]]), [1, 0, 0, 0]);
    assert_eq!(sum(&u(4), &[]), [0; 4]);
    assert_eq!(sum(&counters, &[cpu0.clone()]), cpu0);
}

/// A `.BTF` section written by hand, so the reader is tested without clang.
#[derive(Default)]
struct BtfBytes {
    types: Vec<u8>,
    strings: Vec<u8>,
}

impl BtfBytes {
    fn name(&mut self, s: &str) -> u32 {
        if self.strings.is_empty() {
            self.strings.push(0);
        }
        if s.is_empty() {
            return 0;
        }
        let at = self.strings.len() as u32;
        self.strings.extend_from_slice(s.as_bytes());
        self.strings.push(0);
        at
    }

    /// One type: name, kind, vlen, size or type id, then the kind's data.
    fn ty(&mut self, name: &str, kind: u32, vlen: u32, size_or_type: u32, data: &[u32]) {
        let name = self.name(name);
        for w in [name, kind << 24 | vlen, size_or_type].iter().chain(data) {
            self.types.extend_from_slice(&w.to_le_bytes());
        }
    }

    fn bytes(&self) -> Vec<u8> {
        let mut out = vec![0x9f, 0xeb, 1, 0];
        for w in [
            24,
            0,
            self.types.len() as u32,
            self.types.len() as u32,
            self.strings.len() as u32,
        ] {
            out.extend_from_slice(&w.to_le_bytes());
        }
        out.extend_from_slice(&self.types);
        out.extend_from_slice(&self.strings);
        out
    }
}

#[test]
fn object_btf_reads_types_structs_constants_and_decl_tags() {
    const INT: u32 = 1;
    const ARRAY: u32 = 3;
    const STRUCT: u32 = 4;
    const ENUM: u32 = 6;
    const TYPEDEF: u32 = 8;
    const CONST: u32 = 10;
    const FUNC: u32 = 12;
    const FUNC_PROTO: u32 = 13;
    const VAR: u32 = 14;
    const DECL_TAG: u32 = 17;
    let mut b = BtfBytes::default();
    b.ty("unsigned int", INT, 0, 4, &[32]); // 1
    b.ty("__u32", TYPEDEF, 0, 1, &[]); // 2
    b.ty("unsigned short", INT, 0, 2, &[16]); // 3
    b.ty("__be16", TYPEDEF, 0, 3, &[]); // 4
    let (a, port) = (b.name("a"), b.name("port"));
    b.ty("pair", STRUCT, 2, 8, &[a, 2, 0, port, 4, 32]); // 5
    let (allow, deny) = (b.name("ALLOW"), b.name("DENY"));
    b.ty("verdict", ENUM, 2, 4, &[allow, 0, deny, 1]); // 6
    b.ty("", FUNC_PROTO, 0, 1, &[]); // 7
    b.ty("prog", FUNC, 1, 7, &[]); // 8
    b.ty("harness:accepted:all", DECL_TAG, 0, 8, &[u32::MAX]); // 9, on the function
    b.ty("counter", VAR, 0, 1, &[1]); // 10
    b.ty("", CONST, 0, 5, &[]); // 11
    b.ty("", ARRAY, 0, 0, &[2, 1, 4]); // 12
    let btf = ObjectBtf::from_bytes(&b.bytes()).unwrap();

    let u32_ty = TypeDesc::Int {
        name: "__u32".into(),
        size: 4,
        signed: false,
        big_endian: false,
        is_bool: false,
    };
    let pair = TypeDesc::Struct {
        name: "pair".into(),
        size: 8,
        members: vec![member("a", 0, u32_ty.clone()), member("port", 32, be16())],
        is_union: false,
    };
    assert_eq!(btf.type_desc(5).unwrap(), pair);
    assert_eq!(btf.type_desc(11).unwrap(), pair, "qualifiers are followed");
    assert_eq!(
        btf.type_desc(12).unwrap(),
        TypeDesc::Array {
            elem: Box::new(u32_ty),
            len: 4
        }
    );
    assert_eq!(btf.struct_type("pair"), Some(pair));
    assert_eq!(btf.struct_type("verdict"), None, "an enum is not a struct");
    assert_eq!(
        btf.constants().0.into_iter().collect::<Vec<_>>(),
        [("ALLOW".to_owned(), 0), ("DENY".to_owned(), 1)]
    );
    assert_eq!(
        btf.func_decl_tags(),
        [FuncDeclTag {
            function: "prog".into(),
            text: "harness:accepted:all".into()
        }]
    );
    let err = btf.type_desc(10).unwrap_err();
    assert!(
        matches!(
            err,
            BtfError::NoLayout {
                id: 10,
                kind: "var"
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "BTF type 10 is a var, which has no value layout"
    );
    let err = btf.type_desc(99).unwrap_err();
    assert!(
        matches!(err, BtfError::Unresolved { id: 99, .. }),
        "{err:?}"
    );
    assert!(
        matches!(ObjectBtf::from_bytes(b"junk"), Err(BtfError::Parse(_))),
        "not BTF"
    );
}
