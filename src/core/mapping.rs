//! Key -> MongoDB document address. Pure: no Redis, no I/O.
//!
//! A mapping spec is `PREFIX=DATABASE.COLLECTION[:FIELD[,FIELD...]][;OPTION...]`;
//! `readthrough.mappings` holds several, separated by spaces. The database name ends at the
//! first `.`, the fields start after the last `:` of the right-hand side and default to `_id`.
//! A key belongs to the mapping with the longest matching prefix; the rest of the key is the id
//! (how an id matches document values, and splits for several fields: `core/key_id.rs`).
//! The prefix may be empty: that mapping takes every key no other prefix matches (the original
//! demo's bare ids), except the module's own keys (`RESERVED_PREFIX`).

use crate::core::format::{self, Format, Loaded};
use crate::core::key_id::{field_value, KeyFields};
use crate::core::many::{self, Many};
use crate::core::policy::Overrides;
use crate::core::projection::Projection;
use bson::{Bson, Document};
use std::sync::Arc;

/// Keys the module keeps for itself (change-stream resume tokens): never mapped, not even by
/// an empty prefix.
pub const RESERVED_PREFIX: &str = "__readthrough__:";

/// One `PREFIX=DATABASE.COLLECTION[:FIELD[,FIELD...]][;OPTION...]` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Mapping {
    pub prefix: String,
    pub db: String,
    pub collection: String,
    /// The field(s) the id stands for, and a compound id's separator (`sep=`).
    pub key: KeyFields,
    pub format: Format,
    pub fields: Projection,
    /// `ttl=`, `negative-ttl=`, `grace=`, `jitter=`, `expire-at=`.
    pub expiry: Overrides,
    /// `many` (with `sort=`, `limit=`): the key holds the documents a query returns.
    pub many: Option<Many>,
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
    /// The id does not split into the parts of the mapping's compound key.
    WrongParts(Arc<Mapping>),
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

    /// The first bytes a mapped key can start with, as a 256-bit set (bit `b` of word `b / 64`):
    /// a key whose first byte is not in it is mapped by nothing. Every bit is set when some
    /// prefix is empty (any key may be mapped).
    pub fn first_bytes(&self) -> [u64; 4] {
        let mut set = [0u64; 4];
        for m in &self.list {
            match m.prefix.as_bytes().first() {
                Some(&b) => set[b as usize / 64] |= 1 << (b % 64),
                None => return [u64::MAX; 4],
            }
        }
        set
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
        let id = if id.is_ascii() {
            // SAFETY: ASCII is UTF-8. Most ids are ASCII: a byte test is cheaper than the
            // general decoder's call on the hit path, which checks every key.
            unsafe { std::str::from_utf8_unchecked(id) }
        } else {
            std::str::from_utf8(id).map_err(|_| ResolveError::NotUtf8)?
        };
        if mapping.key.check(id).is_err() {
            return Err(ResolveError::WrongParts(Arc::clone(mapping)));
        }
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
const OPTIONS: &str =
    "format=, fields=, sep=, ttl=, negative-ttl=, grace=, jitter=, expire-at=, many, sort=, limit=";

fn parse_one(item: &str) -> Result<Mapping, String> {
    let bad = |why: &str| format!("mapping '{item}': {why} ({EXPECTED})");
    let mut parts = item.split(';');
    let address = parts.next().unwrap_or_default();
    let Some((prefix, rhs)) = address.split_once('=') else {
        return Err(bad("no '='"));
    };
    let mut format = None;
    let mut fields = None;
    let mut sep = None;
    let (mut many, mut sort, mut limit) = (false, None, None);
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
            Some(("sep", c)) if sep.is_none() => sep = Some(parse_sep(c).map_err(|e| bad(&e))?),
            Some(("sort", f)) if sort.is_none() => {
                sort = Some(Many::parse_sort(f).map_err(|e| bad(&e))?);
            }
            Some(("limit", n)) if limit.is_none() => {
                limit = Some(Many::parse_limit(n).map_err(|e| bad(&e))?);
            }
            None if option == "many" && !many => many = true,
            None if option == "many" => return Err(bad("'many' given twice")),
            Some(("format" | "fields" | "sep" | "sort" | "limit", _)) => {
                return Err(bad(&format!("'{option}' given twice")))
            }
            _ => return Err(bad(&format!("unknown option '{option}' ({OPTIONS})"))),
        }
    }
    let Some((db, rest)) = rhs.split_once('.') else {
        return Err(bad("no '.' between database and collection"));
    };
    let (collection, key) = match rest.rsplit_once(':') {
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
    let names: Vec<String> = key.split(',').map(str::to_owned).collect();
    for (i, field) in names.iter().enumerate() {
        if field.is_empty() {
            return Err(bad("empty field after ':'"));
        }
        if field.starts_with('$') || field.contains('\0') || field.split('.').any(str::is_empty) {
            return Err(bad(&format!("invalid field name '{field}'")));
        }
        if names[..i].contains(field) {
            return Err(bad(&format!("field '{field}' listed twice in the key")));
        }
        if names.len() > 1 && field.starts_with("_id.") {
            return Err(bad(&format!(
                "a compound key over _id's subfields ('{field}'): map the fields themselves"
            )));
        }
    }
    if sep.is_some() && names.len() == 1 {
        return Err(bad("sep= needs a compound key (FIELD,FIELD...)"));
    }
    if !many && (sort.is_some() || limit.is_some()) {
        return Err(bad("sort= and limit= go with 'many'"));
    }
    if many && format == Some(Format::Hash) {
        return Err(bad(
            "'many' stores an array of documents: format=string or format=json, not hash",
        ));
    }
    if many && expiry.expire_at.is_some() {
        return Err(bad(
            "expire-at= needs a single-document mapping, not 'many'",
        ));
    }
    Ok(Mapping {
        prefix: prefix.to_owned(),
        db: db.to_owned(),
        collection: collection.to_owned(),
        key: KeyFields::new(names, sep.unwrap_or(':')),
        many: many.then(|| Many {
            sort: sort.unwrap_or_default(),
            limit: limit.unwrap_or(many::DEFAULT_LIMIT),
        }),
        format: format.unwrap_or_default(),
        fields: fields.unwrap_or_default(),
        expiry,
    })
}

/// `sep=CHAR`: one character, not a space or `;` (they end the mapping or the option) and not
/// `{` or `}` (hash tags).
fn parse_sep(c: &str) -> Result<char, String> {
    let mut chars = c.chars();
    match (chars.next(), chars.next()) {
        (Some(ch), None) if !ch.is_whitespace() && !matches!(ch, ';' | '{' | '}' | '\0') => Ok(ch),
        (Some(_), None) => Err(format!("sep={c}: not a space, ';', '{{' or '}}'")),
        _ => Err(format!("sep={c}: expected one character")),
    }
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

    /// The documents a `many` mapping's query returned, as its key caches them.
    pub fn encode_list(&self, docs: Vec<Document>) -> Loaded {
        Loaded {
            value: many::encode(docs, &self.fields, self.format),
            expire_at_ms: None,
        }
    }

    /// The mapping as written in `readthrough.mappings`, every option spelled out: it parses
    /// back to the same mapping.
    pub fn spec(&self) -> String {
        let mut s = format!(
            "{}={}.{}:{};format={}",
            self.prefix,
            self.db,
            self.collection,
            self.key.text(),
            self.format.name()
        );
        if self.key.is_compound() {
            s.push_str(&format!(";sep={}", self.key.sep()));
        }
        if !self.fields.is_all() {
            s.push_str(&format!(";fields={}", self.fields.text()));
        }
        if let Some(many) = &self.many {
            s.push(';');
            s.push_str(&many.text());
        }
        for option in self.expiry.text() {
            s.push(';');
            s.push_str(&option);
        }
        s
    }

    /// The projection to send to MongoDB (see `core/projection.rs`): it also brings back the
    /// key field and the `expire-at=` field.
    pub fn projection(&self) -> Option<Document> {
        let needed = self.key.names().iter().map(String::as_str);
        self.fields
            .for_query(needed.chain(self.expiry.expire_at.as_deref()))
    }
}

impl Target {
    /// The values a single-field id may be stored as (see `core/key_id.rs`).
    pub fn candidates(&self) -> Vec<Bson> {
        crate::core::key_id::id_candidates(&self.id)
    }

    /// The filter of the document the key stands for; each id is a value, never an operator.
    pub fn filter(&self) -> Document {
        self.mapping.key.filter(&self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    fn one(spec: &str) -> Mapping {
        let m = Mappings::parse(spec).unwrap();
        assert_eq!(m.list.len(), 1);
        (*m.list[0]).clone()
    }

    /// Whether byte `b` is in a `first_bytes` set.
    fn has(set: [u64; 4], b: u8) -> bool {
        set[b as usize / 64] & (1 << (b % 64)) != 0
    }

    #[test]
    fn first_bytes_holds_each_prefix_s_first_byte_and_every_byte_for_an_empty_prefix() {
        let set = Mappings::parse("todo:=t.a:id J:=t.b:id;format=json \u{e9}x:=t.c:id")
            .unwrap()
            .first_bytes();
        let bytes: Vec<u8> = (0..=255u8).filter(|&b| has(set, b)).collect();
        assert_eq!(bytes, vec![b'J', b't', 0xc3]);
        // Every key a mapping serves passes the screen.
        let m = Mappings::parse("todo:=t.a:id J:=t.b:id").unwrap();
        for key in ["todo:1", "J:x"] {
            assert!(m.find(key.as_bytes()).is_some());
            assert!(has(m.first_bytes(), key.as_bytes()[0]));
        }
        assert_eq!(Mappings::parse("").unwrap().first_bytes(), [0; 4]);
        let bare = Mappings::parse("t:=t.a:id =t.b:id").unwrap().first_bytes();
        assert_eq!(bare, [u64::MAX; 4]);
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
                key: KeyFields::new(vec!["id".into()], ':'),
                ..Default::default()
            }
        );
    }

    #[test]
    fn field_defaults_to_id_and_collection_may_contain_dots() {
        let m = one("u:=app.users.v2");
        assert_eq!(
            (m.db.as_str(), m.collection.as_str(), m.key.text().as_str()),
            ("app", "users.v2", "_id")
        );
        let m = one("u:=app.a:b:c");
        assert_eq!((m.collection.as_str(), m.key.text().as_str()), ("a:b", "c"));
        let m = one("u:=app.a:meta.sku");
        assert_eq!(m.key.text(), "meta.sku");
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
            ("t=test.todos;few", "unknown option"),
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
        assert_eq!((m.format, m.key.text().as_str()), (Format::Hash, "_id"));
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
        assert_eq!(m.resolve(b"todo:a\xc3"), Err(ResolveError::NotUtf8));
        // An id that is not ASCII but UTF-8 is an id like any other.
        assert_eq!(
            m.resolve("todo:caf\u{e9}".as_bytes()).unwrap().id,
            "caf\u{e9}"
        );
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
    fn compound_keys_parse_resolve_and_refuse_what_cannot_work() {
        let m = one("order:=shop.orders:tenant,id;sep=/;format=json");
        assert_eq!(
            m.key,
            KeyFields::new(vec!["tenant".into(), "id".into()], '/')
        );
        let all = Mappings::parse("order:=shop.orders:tenant,id").unwrap();
        let t = all.resolve(b"order:{acme}:42").unwrap();
        assert_eq!(
            t.id, "{acme}:42",
            "the id is the rest of the key, as written"
        );
        assert_eq!(
            t.filter(),
            doc! { "tenant": "acme", "id": { "$in": ["42", 42_i64] } }
        );
        let Err(ResolveError::WrongParts(wrong)) = all.resolve(b"order:acme") else {
            panic!("too few parts")
        };
        assert_eq!(wrong.prefix, "order:");
        assert!(matches!(
            all.check(b"order::42"),
            Err(ResolveError::WrongParts(_))
        ));
        for (spec, why) in [
            ("o=s.o:a,b;sep=ab", "one character"),
            ("o=s.o:a,b;sep=", "one character"),
            ("o=s.o:a,b;sep={", "not a space"),
            ("o=s.o:a,b;sep=:;sep=/", "given twice"),
            ("o=s.o:a;sep=/", "needs a compound key"),
            ("o=s.o:a,a", "listed twice"),
            ("o=s.o:a,", "empty field"),
            ("o=s.o:_id.t,_id.n", "_id's subfields"),
            ("o=s.o:a,$b", "invalid field name '$b'"),
        ] {
            let err = Mappings::parse(spec).unwrap_err();
            assert!(err.contains(why), "{spec}: {err}");
        }
        assert_eq!(
            one("o=s.o:_id,n").key.text(),
            "_id,n",
            "_id itself may be a part"
        );
    }

    #[test]
    fn many_takes_sort_and_limit_and_refuses_what_cannot_hold_a_list() {
        let m = one("orders-of:=shop.orders:user_id;many;sort=-created;limit=50;format=json");
        assert_eq!(
            m.many,
            Some(Many {
                sort: vec![("created".into(), -1)],
                limit: 50
            })
        );
        assert_eq!(one("o:=s.o:u;many").many, Some(Many::default()));
        assert_eq!(one("o:=s.o:u").many, None);
        let again = Mappings::parse(&m.spec()).unwrap();
        assert_eq!(
            again.by_prefix("orders-of:").map(|a| (**a).clone()),
            Some(m)
        );
        for (spec, why) in [
            ("o=s.o:u;many;format=hash", "not hash"),
            ("o=s.o:u;sort=a", "go with 'many'"),
            ("o=s.o:u;limit=5", "go with 'many'"),
            ("o=s.o:u;many;limit=0", "1 to 10000"),
            ("o=s.o:u;many;limit=10001", "1 to 10000"),
            ("o=s.o:u;many;many", "twice"),
            ("o=s.o:u;many;sort=a;sort=b", "twice"),
            ("o=s.o:u;many;expire-at=x", "single-document"),
        ] {
            let err = Mappings::parse(spec).unwrap_err();
            assert!(err.contains(why), "{spec}: {err}");
        }
    }
}
