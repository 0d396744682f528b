//! A mapping's `fields=` option: which fields of a document are cached. Pure.
//!
//! `fields=a,b,meta.sku` keeps only those fields; `fields=-_id,-meta.secret` drops those (the
//! original demo's `{_id: 0}` is `fields=-_id`). A field may be a dotted path into embedded
//! documents, as in a MongoDB projection, and is applied the way MongoDB applies it: into each
//! document of an array, an embedded document kept even when none of its kept fields is there.
//! `-_id` may be combined with a keep list, as in MongoDB; any other mix of kept and dropped
//! fields is refused, and so is a path listed beside its own prefix (MongoDB's path collision).
//!
//! The projection sent to MongoDB is not quite the user's: it always brings back `_id` and the
//! fields the module needs (the mapping's key field, to match a shared query's documents to
//! their keys and to follow change events; the `expire-at=` date). The user's projection is
//! then applied exactly, here, before the document is encoded.

use crate::core::key_id::{field_value, path_within as within};
use bson::{Bson, Document};

#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Projection {
    /// `Some(list)`: keep only these paths. `None`: keep all but `drop`.
    keep: Option<Vec<String>>,
    drop: Vec<String>,
}

impl Projection {
    /// Parses the value of `fields=`.
    pub fn parse(list: &str) -> Result<Projection, String> {
        let mut keep: Vec<String> = Vec::new();
        let mut drop: Vec<String> = Vec::new();
        for item in list.split(',') {
            let (name, dropped) = match item.strip_prefix('-') {
                Some(n) => (n, true),
                None => (item, false),
            };
            if name.is_empty() {
                return Err(format!("fields={list}: an empty field name"));
            }
            if name.contains('\0') || name.split('.').any(|p| p.is_empty() || p.starts_with('$')) {
                return Err(format!(
                    "fields={list}: '{name}' is not a field name or dotted path (no empty part, \
                     no part starting with '$')"
                ));
            }
            let to = if dropped { &mut drop } else { &mut keep };
            if to.iter().any(|n| n == name) {
                return Err(format!("fields={list}: '{name}' is listed twice"));
            }
            if let Some(other) = to.iter().find(|n| within(name, n) || within(n, name)) {
                return Err(format!(
                    "fields={list}: '{name}' and '{other}' overlap (list one of them)"
                ));
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

    /// True when a kept field is a dotted path (`format=hash` stores it under that name).
    pub fn keeps_nested(&self) -> bool {
        self.keep.iter().flatten().any(|k| k.contains('.'))
    }

    /// The projection for MongoDB: the user's, but always with `_id` and the `needed` paths
    /// (see the module comment). `None`: no projection needed.
    pub fn for_query<'a>(
        &'a self,
        needed: impl Iterator<Item = &'a str> + Clone,
    ) -> Option<Document> {
        let mut d = Document::new();
        match &self.keep {
            Some(keep) => {
                let all: Vec<&str> = keep
                    .iter()
                    .map(String::as_str)
                    .chain(needed)
                    .chain(["_id"])
                    .collect();
                // A path inside another one listed is brought back already (and MongoDB
                // refuses the pair as a path collision).
                for (i, p) in all.iter().enumerate() {
                    let covered = all
                        .iter()
                        .enumerate()
                        .any(|(j, q)| (p != q && within(p, q)) || (p == q && j < i));
                    if !covered {
                        d.insert(*p, Bson::Int32(1));
                    }
                }
            }
            None => {
                for k in self.drop.iter().filter(|k| *k != "_id") {
                    // Dropping a field the module needs is left to `apply`.
                    if !needed.clone().any(|n| within(n, k)) {
                        d.insert(k, Bson::Int32(0));
                    }
                }
            }
        }
        (!d.is_empty()).then_some(d)
    }

    /// The document with the user's projection applied, field order kept.
    pub fn apply(&self, doc: Document) -> Document {
        match &self.keep {
            Some(keep) => {
                let drop_id = self.drop.iter().any(|d| d == "_id");
                let paths: Vec<&str> = keep.iter().map(String::as_str).collect();
                let mut kept = keep_paths(doc, &paths);
                if drop_id {
                    kept.remove("_id");
                }
                kept
            }
            None if self.drop.is_empty() => doc,
            None => {
                let paths: Vec<&str> = self.drop.iter().map(String::as_str).collect();
                drop_paths(doc, &paths)
            }
        }
    }

    /// For `format=hash`: the projected document with each kept dotted path as one top-level
    /// field under its dotted name (`meta.sku`), in the document's order.
    pub fn flatten_kept(&self, doc: Document) -> Document {
        let Some(keep) = self.keep.as_ref().filter(|_| self.keeps_nested()) else {
            return doc;
        };
        let mut out = Document::new();
        for (k, v) in doc {
            if keep.iter().any(|p| p == &k) {
                out.insert(k, v);
                continue;
            }
            let inner = Document::from_iter([(k.clone(), v)]);
            for p in keep.iter().filter(|p| within(p, &k)) {
                if let Some(v) = field_value(&inner, p) {
                    out.insert(p.clone(), v.clone());
                }
            }
        }
        out
    }

    /// The option as written in a mapping (`a,b` or `-a,-b`); empty when all fields are kept.
    pub fn text(&self) -> String {
        let kept = self.keep.iter().flatten().cloned();
        let dropped = self.drop.iter().map(|d| format!("-{d}"));
        kept.chain(dropped).collect::<Vec<_>>().join(",")
    }
}

/// The paths under `name` (`meta.sku` under `meta` is `sku`), and whether `name` itself is one.
fn under<'p>(paths: &[&'p str], name: &str) -> (bool, Vec<&'p str>) {
    let mut whole = false;
    let mut inner = Vec::new();
    for p in paths {
        if *p == name {
            whole = true;
        } else if within(p, name) {
            inner.push(&p[name.len() + 1..]);
        }
    }
    (whole, inner)
}

/// MongoDB's inclusion projection: the fields on `paths`, into embedded documents and into
/// each document of an array (other array elements go). Unlike MongoDB's, `_id` is kept only
/// when listed: `fields=` names everything the value holds.
fn keep_paths(doc: Document, paths: &[&str]) -> Document {
    let mut out = Document::new();
    for (k, v) in doc {
        let (whole, inner) = under(paths, &k);
        if whole {
            out.insert(k, v);
        } else if !inner.is_empty() {
            match v {
                Bson::Document(d) => {
                    out.insert(k, keep_paths(d, &inner));
                }
                Bson::Array(items) => {
                    let kept = items.into_iter().filter_map(|item| match item {
                        Bson::Document(d) => Some(Bson::Document(keep_paths(d, &inner))),
                        _ => None,
                    });
                    out.insert(k, Bson::Array(kept.collect()));
                }
                _ => {}
            }
        }
    }
    out
}

/// MongoDB's exclusion projection: every field but those on `paths`.
fn drop_paths(doc: Document, paths: &[&str]) -> Document {
    let mut out = Document::new();
    for (k, v) in doc {
        let (whole, inner) = under(paths, &k);
        if whole {
            continue;
        }
        let v = match v {
            Bson::Document(d) if !inner.is_empty() => Bson::Document(drop_paths(d, &inner)),
            Bson::Array(items) if !inner.is_empty() => Bson::Array(
                items
                    .into_iter()
                    .map(|item| match item {
                        Bson::Document(d) => Bson::Document(drop_paths(d, &inner)),
                        other => other,
                    })
                    .collect(),
            ),
            other => other,
        };
        out.insert(k, v);
    }
    out
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
    fn dotted_paths_keep_and_drop_as_mongodb_does() {
        let d = doc! {
            "_id": 1, "name": "n",
            "meta": { "sku": "A1", "secret": "s", "deep": { "x": 1, "y": 2 } },
            "lines": [ { "sku": "L1", "qty": 2 }, 7, { "qty": 3 } ],
            "plain": 5,
        };
        let keep = Projection::parse("meta.sku,lines.sku,meta.deep.y,plain.z").unwrap();
        assert_eq!(
            keep.apply(d.clone()),
            doc! {
                "meta": { "sku": "A1", "deep": { "y": 2 } },
                "lines": [ { "sku": "L1" }, {} ],
            },
            "into documents and arrays of documents; a scalar has no subfield"
        );
        let drop = Projection::parse("-meta.secret,-lines.qty,-meta.deep").unwrap();
        assert_eq!(
            drop.apply(d.clone()),
            doc! {
                "_id": 1, "name": "n",
                "meta": { "sku": "A1" },
                "lines": [ { "sku": "L1" }, 7, {} ],
                "plain": 5,
            }
        );
        let absent = Projection::parse("meta.none").unwrap();
        assert_eq!(absent.apply(d), doc! { "meta": {} }, "MongoDB keeps {{}}");
    }

    #[test]
    fn hash_fields_take_the_dotted_name() {
        let d = doc! { "_id": 1, "name": "n", "meta": { "sku": "A1", "w": 3 } };
        let keep = Projection::parse("name,meta.sku,meta.w,-_id").unwrap();
        assert_eq!(
            keep.flatten_kept(keep.apply(d.clone())),
            doc! { "name": "n", "meta.sku": "A1", "meta.w": 3 }
        );
        let whole = Projection::parse("name,meta").unwrap();
        assert_eq!(
            whole.flatten_kept(whole.apply(d)),
            doc! { "name": "n", "meta": { "sku": "A1", "w": 3 } }
        );
    }

    #[test]
    fn the_query_always_brings_back_id_and_the_fields_the_module_needs() {
        let keep = Projection::parse("name").unwrap();
        assert_eq!(
            keep.for_query(["id"].into_iter()),
            Some(doc! { "name": 1, "id": 1, "_id": 1 })
        );
        assert_eq!(
            keep.for_query(["meta.sku", "exp"].into_iter()),
            Some(doc! { "name": 1, "meta.sku": 1, "exp": 1, "_id": 1 })
        );
        let nested = Projection::parse("meta,a.b").unwrap();
        assert_eq!(
            nested.for_query(["meta.id", "a.b"].into_iter()),
            Some(doc! { "meta": 1, "a.b": 1, "_id": 1 }),
            "no path collision"
        );
        let drop = Projection::parse("-_id,-secret,-id,-meta").unwrap();
        assert_eq!(
            drop.for_query(["id", "meta.sku"].into_iter()),
            Some(doc! { "secret": 0 })
        );
        assert_eq!(
            Projection::parse("-_id")
                .unwrap()
                .for_query(["id"].into_iter()),
            None
        );
        assert_eq!(Projection::default().for_query(["_id"].into_iter()), None);
    }

    #[test]
    fn bad_lists_are_refused_with_the_reason() {
        for (list, why) in [
            ("", "empty field"),
            ("a,,b", "empty field"),
            ("-", "empty field"),
            ("a..b", "not a field name"),
            (".a", "not a field name"),
            ("$where", "not a field name"),
            ("a.$x", "not a field name"),
            ("a,a", "twice"),
            ("meta,meta.sku", "overlap"),
            ("-meta.sku,-meta", "overlap"),
            ("a,-b", "not both"),
            ("_id,-_id", "both kept and dropped"),
        ] {
            let err = Projection::parse(list).unwrap_err();
            assert!(err.contains(why), "{list}: {err}");
        }
    }
}
