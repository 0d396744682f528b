//! A `many` mapping: the key holds the documents a query returns, not one document. Pure.
//!
//! `orders-of:=shop.orders:user_id;many;sort=-created;limit=50` maps `orders-of:42` to
//! `find({user_id: "42"}).sort({created: -1}).limit(50)` (the id matches as a single-document
//! mapping's does). The value is the JSON array of the documents, each with the mapping's
//! projection: JSON text for `format=string`, a JSON array for `format=json`. An empty result is
//! an empty array, stored like any other.

use crate::core::codec;
use crate::core::format::{Format, Value};
use crate::core::projection::Projection;
use bson::{Bson, Document};

/// The default and the largest `limit=`.
pub const DEFAULT_LIMIT: i64 = 100;
pub const MAX_LIMIT: i64 = 10_000;

/// The query part of a `many` mapping.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Many {
    /// Field and direction (1 or -1), in order; empty: `_id`'s order.
    pub sort: Vec<(String, i32)>,
    pub limit: i64,
}

impl Default for Many {
    fn default() -> Many {
        Many {
            sort: Vec::new(),
            limit: DEFAULT_LIMIT,
        }
    }
}

impl Many {
    /// `sort=FIELD,-FIELD,...`.
    pub fn parse_sort(list: &str) -> Result<Vec<(String, i32)>, String> {
        let mut out: Vec<(String, i32)> = Vec::new();
        for item in list.split(',') {
            let (name, dir) = match item.strip_prefix('-') {
                Some(n) => (n, -1),
                None => (item, 1),
            };
            if name.is_empty()
                || name.contains('\0')
                || name.split('.').any(|p| p.is_empty() || p.starts_with('$'))
            {
                return Err(format!("sort={list}: '{item}' is not FIELD or -FIELD"));
            }
            if out.iter().any(|(n, _)| n == name) {
                return Err(format!("sort={list}: '{name}' is listed twice"));
            }
            out.push((name.to_owned(), dir));
        }
        Ok(out)
    }

    /// `limit=N`, 1 to `MAX_LIMIT`.
    pub fn parse_limit(n: &str) -> Result<i64, String> {
        match n.parse::<i64>() {
            Ok(v) if (1..=MAX_LIMIT).contains(&v) && v.to_string() == n => Ok(v),
            _ => Err(format!(
                "limit={n}: expected a whole number from 1 to {MAX_LIMIT}"
            )),
        }
    }

    /// The sort sent to MongoDB: the mapping's, then `_id` so that ties keep one order.
    pub fn sort_doc(&self) -> Document {
        let mut d = Document::new();
        for (name, dir) in &self.sort {
            d.insert(name, Bson::Int32(*dir));
        }
        if !d.contains_key("_id") {
            d.insert("_id", Bson::Int32(1));
        }
        d
    }

    /// The options as written in a mapping.
    pub fn text(&self) -> String {
        let mut s = String::from("many");
        if !self.sort.is_empty() {
            let fields: Vec<String> = self
                .sort
                .iter()
                .map(|(n, d)| if *d < 0 { format!("-{n}") } else { n.clone() })
                .collect();
            s.push_str(&format!(";sort={}", fields.join(",")));
        }
        s.push_str(&format!(";limit={}", self.limit));
        s
    }
}

/// The documents a query returned, each with `fields` applied, as the JSON array `format`
/// stores (`string` or `json`; the parser refuses `hash`).
pub fn encode(docs: Vec<Document>, fields: &Projection, format: Format) -> Value {
    let items: Vec<serde_json::Value> = docs
        .into_iter()
        .map(|d| codec::to_value(Bson::Document(fields.apply(d))))
        .collect();
    let text = serde_json::Value::Array(items).to_string();
    match format {
        Format::Json => Value::Json(text),
        _ => Value::String(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    #[test]
    fn sort_and_limit_parse_or_say_why() {
        assert_eq!(
            Many::parse_sort("-created,total").unwrap(),
            [("created".to_string(), -1), ("total".to_string(), 1)]
        );
        for (bad, why) in [
            ("", "not FIELD"),
            ("-", "not FIELD"),
            ("a,,b", "not FIELD"),
            ("$x", "not FIELD"),
            ("a,-a", "twice"),
        ] {
            assert!(Many::parse_sort(bad).unwrap_err().contains(why), "{bad}");
        }
        assert_eq!(Many::parse_limit("50"), Ok(50));
        for bad in ["0", "10001", "-1", "5.0", "+5", ""] {
            assert!(
                Many::parse_limit(bad).unwrap_err().contains("1 to 10000"),
                "{bad}"
            );
        }
    }

    #[test]
    fn sort_ends_with_id_and_the_text_parses_back() {
        let m = Many {
            sort: Many::parse_sort("-created").unwrap(),
            limit: 50,
        };
        assert_eq!(m.sort_doc(), doc! { "created": -1, "_id": 1 });
        assert_eq!(Many::default().sort_doc(), doc! { "_id": 1 });
        assert_eq!(m.text(), "many;sort=-created;limit=50");
        assert_eq!(Many::default().text(), "many;limit=100");
    }

    #[test]
    fn the_value_is_the_array_of_projected_documents() {
        let docs = vec![doc! { "_id": 1, "n": "a" }, doc! { "_id": 2, "n": "b" }];
        let drop_id = Projection::parse("-_id").unwrap();
        assert_eq!(
            encode(docs, &drop_id, Format::String),
            Value::String(r#"[{"n":"a"},{"n":"b"}]"#.into())
        );
        assert_eq!(
            encode(Vec::new(), &Projection::default(), Format::Json),
            Value::Json("[]".into())
        );
    }
}
