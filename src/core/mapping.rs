//! Key -> MongoDB document address. Pure: no Redis, no I/O.
//!
//! A mapping spec is `PREFIX=DATABASE.COLLECTION[:FIELD][;format=string|json|hash][;fields=LIST]`;
//! `readthrough.mappings` holds several, separated by spaces. The database name ends at the
//! first `.`, the field starts after the last `:` of the right-hand side and defaults to `_id`.
//! A key belongs to the mapping with the longest matching prefix; the rest of the key is the id.
//! The prefix may be empty: that mapping takes every key no other prefix matches (the original
//! demo's bare ids), except the module's own keys (`RESERVED_PREFIX`).
//!
//! The id is always matched literally, never parsed as a query. Because applications store ids
//! as strings, numbers or ObjectIds, an id that is a canonical integer also matches the number
//! and a 24-hex id also matches the ObjectId: `todo:42` finds `{id: "42"}` or `{id: 42}`; an id
//! in canonical UUID text (8-4-4-4-12 hex digits) also matches the BSON UUID (binary subtype 4),
//! the default id of many Java, .NET and Python services.

use crate::core::codec;
use crate::core::format::{self, Format, Loaded};
use crate::core::policy::Overrides;
use crate::core::projection::Projection;
use bson::{doc, oid::ObjectId, Bson, Document};
use std::sync::Arc;

/// Keys the module keeps for itself (change-stream resume tokens): never mapped, not even by
/// an empty prefix.
pub const RESERVED_PREFIX: &str = "__readthrough__:";

/// One `PREFIX=DATABASE.COLLECTION[:FIELD][;format=...][;fields=...]` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Mapping {
    pub prefix: String,
    pub db: String,
    pub collection: String,
    pub field: String,
    pub format: Format,
    pub fields: Projection,
    /// `ttl=`, `negative-ttl=`, `grace=`, `jitter=`, `expire-at=`.
    pub expiry: Overrides,
}

/// All mappings, longest prefix first so the first match is the most specific one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mappings {
    list: Vec<Arc<Mapping>>,
}

/// What one key resolves to: its mapping and its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub mapping: Arc<Mapping>,
    pub id: String,
}

/// Why a key has no target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResolveError {
    NoMapping,
    EmptyId,
    NotUtf8,
}

const DB_FORBIDDEN: &[char] = &[
    '/', '\\', '.', ' ', '"', '$', '*', '<', '>', ':', '|', '?', '\0',
];

impl Mappings {
    /// Parses the whole `readthrough.mappings` value. An empty value means no mappings.
    pub fn parse(spec: &str) -> Result<Mappings, String> {
        let mut list: Vec<Arc<Mapping>> = Vec::new();
        for item in spec.split_ascii_whitespace() {
            let m = parse_one(item)?;
            if list.iter().any(|o| o.prefix == m.prefix) {
                return Err(format!(
                    "mapping '{item}': prefix '{}' is mapped twice",
                    m.prefix
                ));
            }
            list.push(Arc::new(m));
        }
        list.sort_by_key(|m| std::cmp::Reverse(m.prefix.len()));
        Ok(Mappings { list })
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<Mapping>> {
        self.list.iter()
    }

    /// The mapping whose prefix is exactly `prefix`.
    pub fn by_prefix(&self, prefix: &str) -> Option<&Arc<Mapping>> {
        self.list.iter().find(|m| m.prefix == prefix)
    }

    /// The mapping with the longest prefix of `key`, if any.
    pub fn find(&self, key: &[u8]) -> Option<&Arc<Mapping>> {
        let m = self
            .list
            .iter()
            .find(|m| key.starts_with(m.prefix.as_bytes()))?;
        if m.prefix.is_empty() && key.starts_with(RESERVED_PREFIX.as_bytes()) {
            return None;
        }
        Some(m)
    }

    /// True when some mapping stores `format` (the module then needs that format's commands).
    pub fn uses(&self, format: Format) -> bool {
        self.list.iter().any(|m| m.format == format)
    }

    /// The mapping of `key` and its id, without allocating (the hit path uses this).
    pub fn check<'k>(&self, key: &'k [u8]) -> Result<(&Arc<Mapping>, &'k str), ResolveError> {
        let mapping = self.find(key).ok_or(ResolveError::NoMapping)?;
        let id = &key[mapping.prefix.len()..];
        if id.is_empty() {
            return Err(ResolveError::EmptyId);
        }
        let id = std::str::from_utf8(id).map_err(|_| ResolveError::NotUtf8)?;
        Ok((mapping, id))
    }

    /// Resolves a Redis key to the document it stands for.
    pub fn resolve(&self, key: &[u8]) -> Result<Target, ResolveError> {
        let (mapping, id) = self.check(key)?;
        Ok(Target {
            mapping: Arc::clone(mapping),
            id: id.to_owned(),
        })
    }
}

const EXPECTED: &str = "expected PREFIX=DATABASE.COLLECTION[:FIELD][;OPTION...]";
const OPTIONS: &str = "format=, fields=, ttl=, negative-ttl=, grace=, jitter=, expire-at=";

fn parse_one(item: &str) -> Result<Mapping, String> {
    let bad = |why: &str| format!("mapping '{item}': {why} ({EXPECTED})");
    let mut parts = item.split(';');
    let address = parts.next().unwrap_or_default();
    let Some((prefix, rhs)) = address.split_once('=') else {
        return Err(bad("no '='"));
    };
    let mut format = None;
    let mut fields = None;
    let mut expiry = Overrides::default();
    for option in parts {
        if let Some((name, value)) = option.split_once('=') {
            if expiry.parse_option(name, value).map_err(|e| bad(&e))? {
                continue;
            }
        }
        match option.split_once('=') {
            Some(("format", f)) if format.is_none() => {
                format = Some(Format::parse(f).map_err(|e| bad(&e))?);
            }
            Some(("fields", f)) if fields.is_none() => {
                fields = Some(Projection::parse(f).map_err(|e| bad(&e))?);
            }
            Some(("format" | "fields", _)) => return Err(bad(&format!("'{option}' given twice"))),
            _ => return Err(bad(&format!("unknown option '{option}' ({OPTIONS})"))),
        }
    }
    let Some((db, rest)) = rhs.split_once('.') else {
        return Err(bad("no '.' between database and collection"));
    };
    let (collection, field) = match rest.rsplit_once(':') {
        Some((c, f)) => (c, f),
        None => (rest, "_id"),
    };
    if db.is_empty() {
        return Err(bad("empty database name"));
    }
    if db.len() > 63 || db.contains(DB_FORBIDDEN) {
        return Err(bad("invalid database name"));
    }
    if collection.is_empty() {
        return Err(bad("empty collection name"));
    }
    if collection.contains(['$', '\0']) || collection.starts_with("system.") {
        return Err(bad("invalid collection name"));
    }
    if field.is_empty() {
        return Err(bad("empty field after ':'"));
    }
    if field.starts_with('$') || field.contains('\0') || field.split('.').any(str::is_empty) {
        return Err(bad("invalid field name"));
    }
    Ok(Mapping {
        prefix: prefix.to_owned(),
        db: db.to_owned(),
        collection: collection.to_owned(),
        field: field.to_owned(),
        format: format.unwrap_or_default(),
        fields: fields.unwrap_or_default(),
        expiry,
    })
}

impl Mapping {
    /// A document as this mapping caches it: the `fields=` projection applied, in its format,
    /// with its `expire-at=` date (read before the projection, which may drop it).
    pub fn encode(&self, doc: Document) -> Loaded {
        let expire_at_ms = self
            .expiry
            .expire_at
            .as_deref()
            .and_then(|f| field_value(&doc, f))
            .and_then(|v| match v {
                Bson::DateTime(d) => Some(d.timestamp_millis()),
                _ => None,
            });
        let doc = self.fields.apply(doc);
        let doc = match self.format {
            Format::Hash => self.fields.flatten_kept(doc),
            _ => doc,
        };
        Loaded {
            value: format::encode(doc, self.format),
            expire_at_ms,
        }
    }

    /// The projection to send to MongoDB (see `core/projection.rs`): it also brings back the
    /// key field and the `expire-at=` field.
    pub fn projection(&self) -> Option<Document> {
        let needed = [Some(self.field.as_str()), self.expiry.expire_at.as_deref()];
        self.fields.for_query(needed.into_iter().flatten())
    }
}

impl Target {
    /// The values the id may be stored as: always the string; also the number for a canonical
    /// integer and the ObjectId for 24 hex digits.
    pub fn candidates(&self) -> Vec<Bson> {
        id_candidates(&self.id)
    }

    /// `{field: id}` or `{field: {$in: [id, ...]}}`; the id is a value, never an operator.
    pub fn filter(&self) -> Document {
        filter_for(&self.mapping.field, id_candidates(&self.id))
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

/// The value at a dotted `path` of a document (`meta.sku`).
pub fn field_value<'a>(doc: &'a Document, path: &str) -> Option<&'a Bson> {
    let mut parts = path.split('.');
    let mut v = doc.get(parts.next()?)?;
    for p in parts {
        v = v.as_document()?.get(p)?;
    }
    Some(v)
}

/// The form ids are compared in when matching a batch's results back to its keys: 24-hex ids
/// and UUIDs in lower case (as ObjectIds and UUIDs print), everything else as it is.
pub fn canonical_id(id: &str) -> std::borrow::Cow<'_, str> {
    let oid = id.len() == 24 && id.bytes().all(|b| b.is_ascii_hexdigit());
    if oid || codec::is_uuid_text(id) {
        std::borrow::Cow::Owned(id.to_ascii_lowercase())
    } else {
        std::borrow::Cow::Borrowed(id)
    }
}

/// The string form of a document's field value as it appears in a key, the inverse of
/// `id_candidates`: strings as they are, integers in decimal, ObjectIds in hex, UUIDs in
/// canonical text.
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

    fn one(spec: &str) -> Mapping {
        let m = Mappings::parse(spec).unwrap();
        assert_eq!(m.list.len(), 1);
        (*m.list[0]).clone()
    }

    #[test]
    fn parses_the_documented_example() {
        let m = one("todo:=test.todos:id");
        assert_eq!(
            m,
            Mapping {
                prefix: "todo:".into(),
                db: "test".into(),
                collection: "todos".into(),
                field: "id".into(),
                ..Default::default()
            }
        );
    }

    #[test]
    fn field_defaults_to_id_and_collection_may_contain_dots() {
        let m = one("u:=app.users.v2");
        assert_eq!(
            (m.db.as_str(), m.collection.as_str(), m.field.as_str()),
            ("app", "users.v2", "_id")
        );
        let m = one("u:=app.a:b:c");
        assert_eq!((m.collection.as_str(), m.field.as_str()), ("a:b", "c"));
        let m = one("u:=app.a:meta.sku");
        assert_eq!(m.field, "meta.sku");
    }

    #[test]
    fn empty_spec_means_no_mappings() {
        assert!(Mappings::parse("").unwrap().is_empty());
        assert!(Mappings::parse("   ").unwrap().is_empty());
    }

    #[test]
    fn several_mappings_and_longest_prefix_wins() {
        let m = Mappings::parse("a:=d.c  a:b:=d.other:f\tx=d.x").unwrap();
        assert_eq!(m.resolve(b"a:b:7").unwrap().mapping.collection, "other");
        assert_eq!(m.resolve(b"a:b:7").unwrap().id, "7");
        assert_eq!(m.resolve(b"a:c").unwrap().mapping.collection, "c");
        assert_eq!(m.resolve(b"a:c").unwrap().id, "c");
        assert_eq!(m.resolve(b"xyz").unwrap().id, "yz");
    }

    #[test]
    fn malformed_specs_are_refused_with_the_reason() {
        for (spec, why) in [
            ("todo:", "no '='"),
            ("t=test.todos;format=xml", "string, json or hash"),
            ("t=test.todos;fields=a,-b", "not both"),
            ("t=test.todos;format=json;format=hash", "given twice"),
            ("t=test.todos;colour=red", "unknown option"),
            ("t=test.todos;many", "unknown option"),
            ("t=test.todos;ttl=-1", "from 0 to"),
            ("t=test.todos;jitter=5000", "from 0 to 1000"),
            ("t=test.todos;ttl=5;ttl=6", "given twice"),
            ("t=test.todos;expire-at=", "field name"),
            ("t=test.todos;fields=a..b", "not a field name"),
            ("t=test.todos;", "unknown option"),
            ("t=test", "no '.'"),
            ("t=.todos", "empty database"),
            ("t=test.", "empty collection"),
            ("t=test.todos:", "empty field"),
            ("t=te$t.todos", "invalid database"),
            ("t=test.to$dos", "invalid collection"),
            ("t=test.system.js", "invalid collection"),
            ("t=test.todos:$where", "invalid field"),
            ("t=test.todos:a..b", "invalid field"),
            ("t=test.a t=test.b", "mapped twice"),
        ] {
            let err = Mappings::parse(spec).unwrap_err();
            assert!(err.contains(why), "{spec}: {err}");
            assert!(
                err.contains("expected PREFIX=") || why == "mapped twice",
                "{err}"
            );
        }
    }

    #[test]
    fn options_and_the_empty_prefix() {
        let m = one("=test.todos:id;format=json;fields=-_id");
        assert_eq!(m.prefix, "");
        assert_eq!((m.format, m.fields.text().as_str()), (Format::Json, "-_id"));
        let m = one("h:=d.c;fields=name,done;format=hash");
        assert_eq!((m.format, m.field.as_str()), (Format::Hash, "_id"));
        assert_eq!(m.fields.text(), "name,done");
        let all = Mappings::parse("=test.todos:id todo:=test.todos:id;format=hash").unwrap();
        assert_eq!(all.resolve(b"42").unwrap().mapping.prefix, "");
        assert_eq!(all.resolve(b"42").unwrap().id, "42");
        assert_eq!(all.resolve(b"todo:7").unwrap().mapping.prefix, "todo:");
        assert_eq!(all.resolve(b"todo:").unwrap_err(), ResolveError::EmptyId);
        assert_eq!(
            all.resolve(b"__readthrough__:resume:test.todos"),
            Err(ResolveError::NoMapping),
            "the module's own keys are never mapped"
        );
        assert_eq!(all.resolve(b""), Err(ResolveError::EmptyId));
        assert!(all.uses(Format::Hash) && !all.uses(Format::Json));
    }

    #[test]
    fn expiry_options_override_per_mapping_and_expire_at_reads_the_date() {
        let m =
            one("s:=app.sessions;ttl=60;negative-ttl=5;grace=2;jitter=0;expire-at=exp;fields=user");
        assert_eq!(
            m.expiry,
            Overrides {
                ttl_s: Some(60),
                negative_ttl_s: Some(5),
                grace_s: Some(2),
                jitter_pct: Some(0),
                expire_at: Some("exp".into()),
            }
        );
        assert_eq!(
            m.projection(),
            Some(doc! { "user": 1, "_id": 1, "exp": 1 }),
            "the date comes back even when fields= drops it"
        );
        let at = bson::DateTime::from_millis(1_800_000_000_000);
        let loaded = m.encode(doc! { "_id": 1, "user": "u", "exp": at });
        assert_eq!(loaded.expire_at_ms, Some(1_800_000_000_000));
        assert_eq!(*loaded, format::Value::String(r#"{"user":"u"}"#.into()));
        let not_a_date = m.encode(doc! { "_id": 1, "user": "u", "exp": "tomorrow" });
        assert_eq!(not_a_date.expire_at_ms, None, "falls back to the TTL");
        assert_eq!(one("s:=app.sessions").expiry, Overrides::default());
    }

    #[test]
    fn resolve_errors() {
        let m = Mappings::parse("todo:=test.todos:id").unwrap();
        assert_eq!(m.resolve(b"user:1"), Err(ResolveError::NoMapping));
        assert_eq!(m.resolve(b"todo:"), Err(ResolveError::EmptyId));
        assert_eq!(m.resolve(b"todo:\xff"), Err(ResolveError::NotUtf8));
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
    fn the_id_is_a_value_never_an_operator() {
        let t = Mappings::parse("t:=d.c:f")
            .unwrap()
            .resolve(br#"t:{"$ne":null}"#)
            .unwrap();
        let f = t.filter();
        assert_eq!(f, doc! { "f": { "$eq": r#"{"$ne":null}"# } });
        let t = Mappings::parse("t:=d.c:f")
            .unwrap()
            .resolve(b"t:5")
            .unwrap();
        assert_eq!(t.filter(), doc! { "f": { "$in": ["5", 5_i64] } });
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
}
