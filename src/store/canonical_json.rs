//! Canonical JSON: the one byte form boxwright hashes and writes for its own documents.
//!
//! Object keys sorted bytewise at every depth, no insignificant whitespace, standard
//! JSON string escapes. Equal values therefore always give equal bytes (and digests),
//! whatever order their maps were filled in.
//!
//! Why not `olpc_cjson::CanonicalFormatter`: OLPC canonical JSON writes control
//! characters (a newline in a `created_by` shell script, say) as raw bytes, which is not
//! JSON: Go's `encoding/json` (skopeo, umoci, registries) refuses such a document. It also
//! NFC-normalises strings, silently changing file names and labels. This module keeps
//! OLPC's ordering and compactness and uses serde_json's own escaping.

use serde::Serialize;
use serde_json::Value;

/// Serializes `value` as canonical JSON.
pub fn to_canonical_json<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, serde_json::Error> {
    let value = serde_json::to_value(value)?;
    let mut out = Vec::new();
    write_value(&value, &mut out)?;
    Ok(out)
}

/// Writes a value with sorted keys. Sorting here rather than trusting `serde_json::Map`
/// keeps the output canonical even if some crate in the build turns on serde_json's
/// `preserve_order` feature (which makes `Map` keep insertion order).
fn write_value(value: &Value, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push(b'{');
            for (i, (key, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                serde_json::to_writer(&mut *out, key)?;
                out.push(b':');
                write_value(v, out)?;
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(v, out)?;
            }
            out.push(b']');
        }
        scalar => serde_json::to_writer(&mut *out, scalar)?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn keys_are_sorted_at_every_depth_and_whitespace_is_gone() {
        let v = serde_json::json!({"b": {"z": 1, "a": [ {"y": true, "x": null} ]}, "a": "q"});
        assert_eq!(
            to_canonical_json(&v).unwrap(),
            br#"{"a":"q","b":{"a":[{"x":null,"y":true}],"z":1}}"#
        );
    }

    #[test]
    fn hash_maps_filled_in_different_orders_give_identical_bytes() {
        let keys: Vec<String> = (0..200).map(|i| format!("key{i}")).collect();
        let mut forward = HashMap::new();
        for k in &keys {
            forward.insert(k.clone(), k.len());
        }
        let mut backward = HashMap::new();
        for k in keys.iter().rev() {
            backward.insert(k.clone(), k.len());
        }
        assert_eq!(
            to_canonical_json(&forward).unwrap(),
            to_canonical_json(&backward).unwrap()
        );
    }

    #[test]
    fn control_characters_are_escaped_so_the_output_is_valid_json() {
        let v = serde_json::json!({"created_by": "RUN a\nb\tc\u{1}", "name": "caf\u{65}\u{301}"});
        let bytes = to_canonical_json(&v).unwrap();
        assert!(!bytes.contains(&b'\n'));
        let back: Value = serde_json::from_slice(&bytes).unwrap();
        // Strings survive byte for byte: no Unicode normalisation.
        assert_eq!(back, v);
    }
}
