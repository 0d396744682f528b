//! A mapping's `fields=` option: which top-level fields of a document are cached. Pure.
//!
//! `fields=a,b,c` keeps only those fields; `fields=-_id,-secret` drops those (the original
//! demo's `{_id: 0}` is `fields=-_id`). `-_id` may be combined with a keep list, as in MongoDB;
//! any other mix of kept and dropped fields is refused.
//!
//! The projection sent to MongoDB is not quite the user's: it always brings back `_id` and the
//! mapping's key field, which the module needs to match a shared query's documents to their keys
//! and to follow change events. The user's projection is then applied exactly, here, before
//! the document is encoded.

use bson::{Bson, Document};

#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Projection {
    /// `Some(list)`: keep only these fields. `None`: keep all but `drop`.
    keep: Option<Vec<String>>,
    drop: Vec<String>,
}

impl Projection {
    /// Parses the value of `fields=`.
    pub fn parse(list: &str) -> Result<Projection, String> {
        let mut keep = Vec::new();
        let mut drop = Vec::new();
        for item in list.split(',') {
            let (name, dropped) = match item.strip_prefix('-') {
                Some(n) => (n, true),
                None => (item, false),
            };
            if name.is_empty() {
                return Err(format!("fields={list}: an empty field name"));
            }
            if name.starts_with('$') || name.contains(['.', '\0']) {
                return Err(format!(
                    "fields={list}: '{name}' is not a top-level field name (no '.', no leading '$')"
                ));
            }
            let to = if dropped { &mut drop } else { &mut keep };
            if to.iter().any(|n| n == name) {
                return Err(format!("fields={list}: '{name}' is listed twice"));
            }
            to.push(name.to_owned());
        }
        if !keep.is_empty() && drop.iter().any(|n| n != "_id") {
            return Err(format!(
                "fields={list}: either fields to keep (a,b) or fields to drop (-a,-b), \
                 not both (only -_id goes with a keep list)"
            ));
        }
        if keep.iter().any(|k| drop.contains(k)) {
            return Err(format!("fields={list}: a field both kept and dropped"));
        }
        Ok(Projection {
            keep: (!keep.is_empty()).then_some(keep),
            drop,
        })
    }

    pub fn is_all(&self) -> bool {
        self.keep.is_none() && self.drop.is_empty()
    }

    /// The projection for MongoDB: the user's, but always with `_id` and `key_field` (see the
    /// module comment). `None`: no projection needed.
    pub fn for_query(&self, key_field: &str) -> Option<Document> {
        let top = key_field.split('.').next().unwrap_or(key_field);
        let mut d = Document::new();
        match &self.keep {
            Some(keep) => {
                for k in keep.iter().map(String::as_str).chain([top, "_id"]) {
                    d.insert(k, Bson::Int32(1));
                }
            }
            None => {
                for k in self.drop.iter().filter(|k| *k != top && *k != "_id") {
                    d.insert(k, Bson::Int32(0));
                }
            }
        }
        (!d.is_empty()).then_some(d)
    }

    /// The document with the user's projection applied, field order kept.
    pub fn apply(&self, doc: Document) -> Document {
        if self.is_all() {
            return doc;
        }
        doc.into_iter()
            .filter(|(k, _)| match &self.keep {
                Some(keep) => keep.contains(k) && !self.drop.contains(k),
                None => !self.drop.contains(k),
            })
            .collect()
    }

    /// The option as written in a mapping (`a,b` or `-a,-b`); empty when all fields are kept.
    pub fn text(&self) -> String {
        let kept = self.keep.iter().flatten().cloned();
        let dropped = self.drop.iter().map(|d| format!("-{d}"));
        kept.chain(dropped).collect::<Vec<_>>().join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    #[test]
    fn keep_and_drop_lists() {
        let d = doc! { "_id": 1, "id": "42", "name": "n", "secret": "s" };
        let keep = Projection::parse("name,id").unwrap();
        assert_eq!(keep.apply(d.clone()), doc! { "id": "42", "name": "n" });
        let drop = Projection::parse("-_id,-secret").unwrap();
        assert_eq!(drop.apply(d.clone()), doc! { "id": "42", "name": "n" });
        let both = Projection::parse("name,-_id").unwrap();
        assert_eq!(both.apply(d.clone()), doc! { "name": "n" });
        assert!(Projection::default().is_all());
        assert_eq!(Projection::default().apply(d.clone()), d);
        assert_eq!(drop.text(), "-_id,-secret");
    }

    #[test]
    fn the_query_always_brings_back_id_and_the_key_field() {
        let keep = Projection::parse("name").unwrap();
        assert_eq!(
            keep.for_query("id"),
            Some(doc! { "name": 1, "id": 1, "_id": 1 })
        );
        assert_eq!(
            keep.for_query("meta.sku"),
            Some(doc! { "name": 1, "meta": 1, "_id": 1 })
        );
        let drop = Projection::parse("-_id,-secret,-id").unwrap();
        assert_eq!(drop.for_query("id"), Some(doc! { "secret": 0 }));
        assert_eq!(Projection::parse("-_id").unwrap().for_query("id"), None);
        assert_eq!(Projection::default().for_query("_id"), None);
    }

    #[test]
    fn bad_lists_are_refused_with_the_reason() {
        for (list, why) in [
            ("", "empty field"),
            ("a,,b", "empty field"),
            ("-", "empty field"),
            ("a.b", "top-level"),
            ("$where", "top-level"),
            ("a,a", "twice"),
            ("a,-b", "not both"),
            ("_id,-_id", "both kept and dropped"),
        ] {
            let err = Projection::parse(list).unwrap_err();
            assert!(err.contains(why), "{list}: {err}");
        }
    }
}
