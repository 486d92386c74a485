//! Long texts (verifier logs reach megabytes at level 2) travel deflated and
//! base64-encoded: the guest's serial port moves ~150 KB/s under TCG, and
//! verifier logs compress about tenfold. Short texts stay plain and
//! readable in a records file.

use base64::Engine as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

/// Texts shorter than this are not worth compressing.
const THRESHOLD: usize = 4096;

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum Wire {
    Plain(String),
    Deflated { deflate: String },
}

pub fn serialize<S: Serializer>(text: &str, s: S) -> Result<S::Ok, S::Error> {
    if text.len() < THRESHOLD {
        return Wire::Plain(text.to_owned()).serialize(s);
    }
    let packed = miniz_oxide::deflate::compress_to_vec(text.as_bytes(), 6);
    Wire::Deflated {
        deflate: base64::engine::general_purpose::STANDARD.encode(packed),
    }
    .serialize(s)
}

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match Wire::deserialize(d)? {
        Wire::Plain(s) => Ok(s),
        Wire::Deflated { deflate } => {
            let packed = base64::engine::general_purpose::STANDARD
                .decode(deflate)
                .map_err(de::Error::custom)?;
            let bytes = miniz_oxide::inflate::decompress_to_vec(&packed)
                .map_err(|e| de::Error::custom(format!("inflating a log: {e:?}")))?;
            String::from_utf8(bytes).map_err(de::Error::custom)
        }
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct T {
        #[serde(with = "super")]
        log: String,
    }

    #[test]
    fn short_texts_stay_plain_and_long_ones_shrink() {
        let short = T {
            log: "0: (b7) r0 = 0\n".into(),
        };
        assert_eq!(
            serde_json::to_string(&short).unwrap(),
            r#"{"log":"0: (b7) r0 = 0\n"}"#
        );
        let long = T {
            log: "1: R1_w=pkt(off=14,r=14,imm=0) R10=fp0\n".repeat(2000),
        };
        let json = serde_json::to_string(&long).unwrap();
        assert!(
            json.contains("\"deflate\"") && json.len() * 10 < long.log.len(),
            "{} -> {}",
            long.log.len(),
            json.len()
        );
        assert_eq!(serde_json::from_str::<T>(&json).unwrap(), long);
        assert!(serde_json::from_str::<T>(r#"{"log":{"deflate":"!!"}}"#).is_err());
    }
}
