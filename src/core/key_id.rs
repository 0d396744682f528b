//! A key's id and the document values it stands for. Pure: no Redis, no I/O.
//!
//! The id is always matched literally, never parsed as a query. Because applications store ids
//! as strings, numbers, ObjectIds or UUIDs, an id that is a canonical integer also matches the
//! number, a 24-hex id also matches the ObjectId, and canonical UUID text (8-4-4-4-12 hex
//! digits, either case) also matches the BSON UUID (binary subtype 4): `todo:42` finds
//! `{id: "42"}` or `{id: 42}`.
//!
//! A compound key maps its id to several fields (`KeyFields`): `order:acme:42` under
//! `order:=shop.orders:tenant,id` is `{tenant: "acme", id: "42"}`. The id splits at the
//! mapping's separator into exactly as many parts as fields, the last part taking the rest; each
//! part matches as a single id does, and a part written `{acme}` (a Redis Cluster hash tag, so
//! that one tenant's keys share a slot) matches `acme`. A single-field id is never split and
//! never unwrapped: `todo:{42}` looks for the string `{42}`.

use crate::core::codec;
use bson::{doc, oid::ObjectId, Bson, Document};
use std::borrow::Cow;

/// The fields a mapping's key stands for, and the separator of a compound id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyFields {
    names: Vec<String>,
    sep: char,
}

impl Default for KeyFields {
    fn default() -> KeyFields {
        KeyFields::new(vec!["_id".into()], ':')
    }
}

/// Why an id does not fit a compound key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrongParts {
    pub expected: usize,
}

impl KeyFields {
    /// `names` must be valid and distinct (the mapping parser checks them).
    pub fn new(names: Vec<String>, sep: char) -> KeyFields {
        KeyFields { names, sep }
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    pub fn sep(&self) -> char {
        self.sep
    }

    /// True when the key is the document's `_id` alone (change events carry it).
    pub fn is_id(&self) -> bool {
        self.names.len() == 1 && self.names[0] == "_id"
    }

    pub fn is_compound(&self) -> bool {
        self.names.len() > 1
    }

    /// The fields as written in a mapping (`tenant,id`).
    pub fn text(&self) -> String {
        self.names.join(",")
    }

    /// Whether `id` splits into this key's parts, none empty; never allocates (the hit path
    /// checks every key with this).
    pub fn check(&self, id: &str) -> Result<(), WrongParts> {
        if !self.is_compound() {
            return Ok(());
        }
        let n = self.names.len();
        let mut parts = 0;
        for p in id.splitn(n, self.sep) {
            if unwrap_tag(p).is_empty() {
                return Err(WrongParts { expected: n });
            }
            parts += 1;
        }
        if parts == n {
            Ok(())
        } else {
            Err(WrongParts { expected: n })
        }
    }

    /// The id's parts, one per field, hash tags unwrapped; `None` if it does not fit.
    pub fn split<'a>(&self, id: &'a str) -> Option<Vec<&'a str>> {
        if !self.is_compound() {
            return Some(vec![id]);
        }
        self.check(id).ok()?;
        Some(
            id.splitn(self.names.len(), self.sep)
                .map(unwrap_tag)
                .collect(),
        )
    }

    /// The filter of one id: `{field: {$eq: id}}` or `{field: {$in: [id, ...]}}`; for a
    /// compound key one condition per field (`part_condition`). An id that does not fit
    /// matches nothing.
    pub fn filter(&self, id: &str) -> Document {
        if !self.is_compound() {
            return filter_for(&self.names[0], id_candidates(id));
        }
        let Some(parts) = self.split(id) else {
            return doc! { "_id": { "$in": [] } };
        };
        let mut d = Document::new();
        for (name, part) in self.names.iter().zip(parts) {
            d.insert(name, part_condition(id_candidates(part)));
        }
        d
    }

    /// The filters that find many ids: one `$in` over every candidate of a single-field key;
    /// for a compound key one filter per distinct leading parts (`acme:1`, `acme:2` and
    /// `acme:3` are `{tenant: "acme", id: {$in: [...]}}`), ids that do not fit left out. Not
    /// one `$or`: MongoDB-compatible servers with simpler planners (SecantusDB here) scan the
    /// whole collection for an `$or`, while each of these filters uses a compound index.
    pub fn batch_filters(&self, ids: &[&str]) -> Vec<Document> {
        if !self.is_compound() {
            let field = &self.names[0];
            let all = ids.iter().flat_map(|id| id_candidates(id)).collect();
            return vec![filter_for(field, all)];
        }
        let mut groups: Vec<(Vec<&str>, Vec<&str>)> = Vec::new();
        for parts in ids.iter().filter_map(|id| self.split(id)) {
            let (last, leading) = parts.split_last().expect("a compound key has parts");
            match groups.iter_mut().find(|(l, _)| l[..] == leading[..]) {
                Some((_, lasts)) => lasts.push(last),
                None => groups.push((leading.to_vec(), vec![last])),
            }
        }
        let last_name = self.names.last().expect("a compound key has fields");
        groups
            .into_iter()
            .map(|(leading, lasts)| {
                let mut d = Document::new();
                for (name, part) in self.names.iter().zip(leading) {
                    d.insert(name, part_condition(id_candidates(part)));
                }
                let mut values: Vec<Bson> = Vec::new();
                for v in lasts.iter().flat_map(|p| id_candidates(p)) {
                    if !values.contains(&v) {
                        values.push(v);
                    }
                }
                d.insert(last_name, part_condition(values));
                d
            })
            .collect()
    }

    /// The id a document has under this key (the inverse of `filter`), if each field holds an
    /// id value: strings as they are, integers in decimal, ObjectIds in hex, UUIDs in canonical
    /// text, compound parts joined by the separator. `None` too for a compound part no key can
    /// name: empty, or holding the separator before the last part.
    pub fn id_of(&self, doc: &Document) -> Option<String> {
        let last = self.names.len() - 1;
        let mut out = String::new();
        for (i, name) in self.names.iter().enumerate() {
            let part = id_of_value(field_value(doc, name)?)?;
            if self.is_compound() && (part.is_empty() || (i < last && part.contains(self.sep))) {
                return None;
            }
            if i > 0 {
                out.push(self.sep);
            }
            out.push_str(&part);
        }
        Some(out)
    }

    /// The form ids are compared in when matching a query's documents back to their keys:
    /// each part as `canonical_id` gives it, hash tags unwrapped.
    pub fn canonical<'a>(&self, id: &'a str) -> Cow<'a, str> {
        if !self.is_compound() {
            return canonical_id(id);
        }
        match self.split(id) {
            Some(parts) => {
                let mut out = String::with_capacity(id.len());
                for (i, p) in parts.iter().enumerate() {
                    if i > 0 {
                        out.push(self.sep);
                    }
                    out.push_str(&canonical_id(p));
                }
                Cow::Owned(out)
            }
            None => Cow::Borrowed(id),
        }
    }

    /// The ids a document's key may be written with in Redis: as `id_of` gives it and, for a
    /// compound key, with one part in a hash tag (`{acme}:42`, `acme:{42}`). A change event
    /// looks for each.
    pub fn spellings(&self, id: &str) -> Vec<String> {
        let mut out = vec![id.to_owned()];
        if !self.is_compound() {
            return out;
        }
        let parts: Vec<&str> = id.splitn(self.names.len(), self.sep).collect();
        for i in 0..parts.len() {
            let tagged: Vec<Cow<str>> = parts
                .iter()
                .enumerate()
                .map(|(j, p)| match j == i {
                    true => Cow::Owned(format!("{{{p}}}")),
                    false => Cow::Borrowed(*p),
                })
                .collect();
            out.push(tagged.join(&self.sep.to_string()));
        }
        out
    }
}

/// `{acme}` as `acme`: a part written as a hash tag.
fn unwrap_tag(part: &str) -> &str {
    match part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
        Some(inner) if !inner.is_empty() => inner,
        _ => part,
    }
}

/// One field's condition in a compound filter: the value itself where there is one candidate
/// (an implicit equality: a simpler planner uses a compound index only for those; never an
/// operator, as no candidate is a document), else `{$in: [...]}`.
fn part_condition(mut values: Vec<Bson>) -> Bson {
    if values.len() == 1 {
        values.pop().expect("one value")
    } else {
        Bson::Document(doc! { "$in": values })
    }
}

/// A filter matching `field` against any of `values`.
pub fn filter_for(field: &str, mut values: Vec<Bson>) -> Document {
    if values.len() == 1 {
        let v = values.pop().expect("one value");
        doc! { field: { "$eq": v } }
    } else {
        doc! { field: { "$in": values } }
    }
}

/// The values an id may be stored as: always the string; also the number for a canonical
/// integer, the ObjectId for 24 hex digits and the UUID for canonical UUID text.
pub fn id_candidates(id: &str) -> Vec<Bson> {
    let mut out = vec![Bson::String(id.to_owned())];
    if let Ok(n) = id.parse::<i64>() {
        if n.to_string() == id {
            out.push(Bson::Int64(n));
        }
    }
    if id.len() == 24 {
        if let Ok(oid) = ObjectId::parse_str(id) {
            out.push(Bson::ObjectId(oid));
        }
    }
    if let Some(uuid) = codec::uuid_from_text(id) {
        out.push(uuid);
    }
    out
}

/// True when dotted `path` is `prefix` or lies inside it (`meta.sku` inside `meta`).
pub fn path_within(path: &str, prefix: &str) -> bool {
    path == prefix
        || (path.len() > prefix.len()
            && path.starts_with(prefix)
            && path.as_bytes()[prefix.len()] == b'.')
}

/// The value at a dotted `path` of a document (`meta.sku`).
pub fn field_value<'a>(doc: &'a Document, path: &str) -> Option<&'a Bson> {
    let mut parts = path.split('.');
    let mut v = doc.get(parts.next()?)?;
    for p in parts {
        v = v.as_document()?.get(p)?;
    }
    Some(v)
}

/// The form one id is compared in: 24-hex ids and UUIDs in lower case (as ObjectIds and UUIDs
/// print), everything else as it is.
pub fn canonical_id(id: &str) -> Cow<'_, str> {
    let oid = id.len() == 24 && id.bytes().all(|b| b.is_ascii_hexdigit());
    if oid || codec::is_uuid_text(id) {
        Cow::Owned(id.to_ascii_lowercase())
    } else {
        Cow::Borrowed(id)
    }
}

/// The string form of a document's field value as it appears in a key, the inverse of
/// `id_candidates`.
pub fn id_of_value(v: &Bson) -> Option<String> {
    match v {
        Bson::String(s) => Some(s.clone()),
        Bson::Int32(n) => Some(n.to_string()),
        Bson::Int64(n) => Some(n.to_string()),
        Bson::ObjectId(o) => Some(o.to_hex()),
        Bson::Binary(b) => codec::uuid_text(b),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compound(names: &[&str]) -> KeyFields {
        KeyFields::new(names.iter().map(|n| n.to_string()).collect(), ':')
    }

    #[test]
    fn candidates_by_shape_of_id() {
        assert_eq!(id_candidates("abc"), vec![Bson::String("abc".into())]);
        assert_eq!(
            id_candidates("42"),
            vec![Bson::String("42".into()), Bson::Int64(42)]
        );
        assert_eq!(
            id_candidates("-7"),
            vec![Bson::String("-7".into()), Bson::Int64(-7)]
        );
        // Not canonical integers: only the string.
        for s in ["042", "+4", "4 ", "1e3", "99999999999999999999"] {
            assert_eq!(id_candidates(s).len(), 1, "{s}");
        }
        let hex = "65a1b2c3d4e5f60718293a4b";
        let c = id_candidates(hex);
        assert_eq!(c[1], Bson::ObjectId(ObjectId::parse_str(hex).unwrap()));
        assert_eq!(id_candidates("zzzzzzzzzzzzzzzzzzzzzzzz").len(), 1);
    }

    #[test]
    fn dotted_field_paths_and_canonical_ids() {
        let d = doc! { "meta": { "sku": "A1" }, "id": 5 };
        assert_eq!(
            field_value(&d, "meta.sku"),
            Some(&Bson::String("A1".into()))
        );
        assert_eq!(field_value(&d, "id"), Some(&Bson::Int32(5)));
        assert_eq!(field_value(&d, "meta.nope"), None);
        assert_eq!(field_value(&d, "id.x"), None);
        assert_eq!(
            canonical_id("65A1B2C3D4E5F60718293A4B"),
            "65a1b2c3d4e5f60718293a4b"
        );
        assert_eq!(canonical_id("ABC"), "ABC");
    }

    #[test]
    fn uuid_ids_match_the_bson_uuid() {
        let id = "3F2504E0-4F89-11D3-9A0C-0305E82C3301";
        let c = id_candidates(id);
        assert_eq!(c.len(), 2, "the text and the UUID: {c:?}");
        assert_eq!(id_of_value(&c[1]).unwrap(), id.to_ascii_lowercase());
        assert_eq!(canonical_id(id), id.to_ascii_lowercase());
        assert_eq!(canonical_id(&id_of_value(&c[1]).unwrap()), canonical_id(id));
    }

    #[test]
    fn id_of_value_inverts_candidates() {
        assert_eq!(id_of_value(&Bson::Int32(5)).as_deref(), Some("5"));
        assert_eq!(id_of_value(&Bson::String("x".into())).as_deref(), Some("x"));
        assert_eq!(id_of_value(&Bson::Double(1.5)), None);
    }

    #[test]
    fn a_compound_id_splits_into_one_part_per_field_the_last_taking_the_rest() {
        let k = compound(&["tenant", "id"]);
        assert_eq!(k.split("acme:42"), Some(vec!["acme", "42"]));
        assert_eq!(k.split("acme:a:b"), Some(vec!["acme", "a:b"]));
        assert_eq!(k.split("{acme}:42"), Some(vec!["acme", "42"]), "hash tag");
        assert_eq!(k.split("acme:{42}"), Some(vec!["acme", "42"]));
        assert_eq!(
            k.split("{}:42"),
            Some(vec!["{}", "42"]),
            "an empty tag is literal"
        );
        for bad in ["acme", "acme:", ":42", "{acme}", ""] {
            assert_eq!(k.check(bad), Err(WrongParts { expected: 2 }), "{bad}");
            assert_eq!(k.split(bad), None);
        }
        let single = compound(&["id"]);
        assert_eq!(
            single.split("{a}:b"),
            Some(vec!["{a}:b"]),
            "never split or unwrapped"
        );
        assert!(
            single.check("").is_ok(),
            "an empty single id is the mapping's error"
        );
    }

    #[test]
    fn a_compound_filter_matches_each_part_as_a_single_id_would() {
        let k = compound(&["tenant", "id"]);
        assert_eq!(
            k.filter("{acme}:42"),
            doc! { "tenant": "acme", "id": { "$in": ["42", 42_i64] } }
        );
        assert_eq!(
            k.filter("7:x"),
            doc! { "tenant": { "$in": ["7", 7_i64] }, "id": "x" }
        );
        assert_eq!(
            k.filter(r#"{"$ne"}:x"#),
            doc! { "tenant": r#""$ne""#, "id": "x" },
            "a value, never an operator"
        );
        assert_eq!(
            k.batch_filters(&["acme:1", "nope", "b:x", "{acme}:2", "acme:1"]),
            [
                doc! { "tenant": "acme", "id": { "$in": ["1", 1_i64, "2", 2_i64] } },
                doc! { "tenant": "b", "id": "x" },
            ],
            "one filter per tenant"
        );
        assert!(k.batch_filters(&["nope"]).is_empty());
        let single = compound(&["id"]);
        assert_eq!(
            single.batch_filters(&["1", "a"]),
            [doc! { "id": { "$in": ["1", 1_i64, "a"] } }]
        );
    }

    #[test]
    fn a_documents_id_round_trips_through_canonical_form_and_spellings() {
        let k = KeyFields::new(vec!["tenant".into(), "meta.n".into()], '/');
        let d = doc! { "tenant": "acme", "meta": { "n": 42 } };
        assert_eq!(k.id_of(&d).as_deref(), Some("acme/42"));
        assert_eq!(k.id_of(&doc! { "tenant": "acme" }), None);
        let odd = doc! { "tenant": "a/b", "meta": { "n": "x/y" } };
        assert_eq!(k.id_of(&odd), None, "no key names a/b as its first part");
        let fine = doc! { "tenant": "a", "meta": { "n": "x/y" } };
        assert_eq!(
            k.id_of(&fine).as_deref(),
            Some("a/x/y"),
            "the last part takes the rest"
        );
        assert_eq!(k.canonical("{acme}/42"), "acme/42");
        assert_eq!(
            compound(&["t", "o"]).canonical("X:65A1B2C3D4E5F60718293A4B"),
            "X:65a1b2c3d4e5f60718293a4b"
        );
        assert_eq!(
            k.spellings("acme/42"),
            ["acme/42", "{acme}/42", "acme/{42}"]
        );
        assert_eq!(compound(&["id"]).spellings("a:b"), ["a:b"]);
    }
}
