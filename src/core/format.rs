//! The value shapes a mapping stores a document in (`format=string|json|hash`), and a document
//! turned into the value of its format. Pure.
//!
//! - `string`: the document as JSON text, stored with `SET`, read with `GET`.
//! - `json`: the same JSON text, stored with `JSON.SET key $`, read with `JSON.GET`.
//! - `hash`: one hash field per top-level field, stored with `HSET`, read with `HGETALL`. A string
//!   is stored as it is; every other value as its JSON text: numbers (`42`, `2.5`), booleans
//!   (`true`), `null`, and objects and arrays, ObjectIds and dates included
//!   (`{"$oid":"..."}`, `{"$date":"..."}`).
//!
//! Every format starts from MongoDB Relaxed Extended JSON (`core/codec.rs`).

use crate::core::codec;
use bson::{Bson, Document};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Format {
    #[default]
    String,
    Json,
    Hash,
}

impl Format {
    pub fn parse(s: &str) -> Result<Format, String> {
        match s {
            "string" => Ok(Format::String),
            "json" => Ok(Format::Json),
            "hash" => Ok(Format::Hash),
            _ => Err(format!("format={s}: expected string, json or hash")),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Format::String => "string",
            Format::Json => "json",
            Format::Hash => "hash",
        }
    }
}

/// A document in its format, ready to store or to reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// `format=string`: JSON text.
    String(String),
    /// `format=json`: JSON text, stored as a JSON document.
    Json(String),
    /// `format=hash`: field/value pairs in the document's order.
    Hash(Vec<(String, String)>),
}

impl Value {
    /// Its size as `readthrough.max-value-bytes` counts it: the text's bytes, or a hash's
    /// fields and values.
    pub fn size(&self) -> usize {
        match self {
            Value::String(t) | Value::Json(t) => t.len(),
            Value::Hash(pairs) => pairs.iter().map(|(f, v)| f.len() + v.len()).sum(),
        }
    }
}

impl Value {
    pub fn format(&self) -> Format {
        match self {
            Value::String(_) => Format::String,
            Value::Json(_) => Format::Json,
            Value::Hash(_) => Format::Hash,
        }
    }
}

/// A loaded document as the module keeps it until it is stored: its value and, for a mapping
/// with `expire-at=`, the document's own expiry date (Unix ms; see `core/policy.rs`). It reads
/// as its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    pub value: Value,
    pub expire_at_ms: Option<i64>,
}

impl From<Value> for Loaded {
    fn from(value: Value) -> Loaded {
        Loaded {
            value,
            expire_at_ms: None,
        }
    }
}

impl std::ops::Deref for Loaded {
    type Target = Value;
    fn deref(&self) -> &Value {
        &self.value
    }
}

/// One key of an `RT.MGET` reply, as known before replying.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Slot {
    Nil,
    /// A cached string, copied.
    Bytes(Vec<u8>),
    /// A cached JSON document or hash: read natively when replying.
    Cached,
    /// Just loaded: read natively when replying if it was stored, else answered from here.
    Loaded(Value),
}

/// The document (projection already applied) in `format`.
pub fn encode(doc: Document, format: Format) -> Value {
    match format {
        Format::String => Value::String(codec::to_json(doc)),
        Format::Json => Value::Json(codec::to_json(doc)),
        Format::Hash => Value::Hash(doc.into_iter().map(|(k, v)| (k, hash_field(v))).collect()),
    }
}

/// One top-level value as a hash field: strings as they are, the rest as JSON text.
fn hash_field(v: Bson) -> String {
    match v {
        Bson::String(s) => s,
        other => codec::to_value(other).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::{doc, oid::ObjectId, DateTime};

    #[test]
    fn formats_parse_and_name_themselves() {
        for f in [Format::String, Format::Json, Format::Hash] {
            assert_eq!(Format::parse(f.name()), Ok(f));
        }
        assert!(Format::parse("JSONX")
            .unwrap_err()
            .contains("string, json or hash"));
    }

    #[test]
    fn string_and_json_are_the_json_text() {
        let d = doc! { "id": "42", "n": 2.5 };
        assert_eq!(
            encode(d.clone(), Format::String),
            Value::String(r#"{"id":"42","n":2.5}"#.into())
        );
        assert_eq!(
            encode(d, Format::Json),
            Value::Json(r#"{"id":"42","n":2.5}"#.into())
        );
    }

    #[test]
    fn hash_fields_are_strings_as_they_are_and_json_text_otherwise() {
        let oid = ObjectId::parse_str("65a1b2c3d4e5f60718293a4b").unwrap();
        let d = doc! {
            "_id": oid, "name": "say \"hi\"", "n": 42, "x": 2.5, "done": true, "none": null,
            "tags": ["a", 1], "meta": { "k": "v" }, "at": DateTime::from_millis(0),
        };
        let Value::Hash(fields) = encode(d, Format::Hash) else {
            panic!("not a hash")
        };
        let got: Vec<(&str, &str)> = fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("_id", r#"{"$oid":"65a1b2c3d4e5f60718293a4b"}"#),
                ("name", "say \"hi\""),
                ("n", "42"),
                ("x", "2.5"),
                ("done", "true"),
                ("none", "null"),
                ("tags", r#"["a",1]"#),
                ("meta", r#"{"k":"v"}"#),
                ("at", r#"{"$date":"1970-01-01T00:00:00Z"}"#),
            ]
        );
    }
}
