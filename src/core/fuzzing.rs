//! The properties the fuzz targets (`fuzz/`) check, as plain functions so the committed seed
//! corpus also runs as a regression test in `make test` (`tests/fuzz_seeds.rs`). Each panics
//! when a property does not hold.

use crate::core::mapping::{Mappings, ResolveError};
use bson::{Bson, Document};

/// A `readthrough.mappings` value: parsed or refused with a message, never a panic; what
/// parses has sane parts and parses again from its own text to the same mappings.
pub fn mapping_spec(data: &[u8]) {
    let Ok(spec) = std::str::from_utf8(data) else {
        return; // Redis hands the module UTF-8 only after `text_of` checked it
    };
    match Mappings::parse(spec) {
        Err(e) => assert!(!e.is_empty(), "an empty error message for {spec:?}"),
        Ok(m) => {
            let mut text = Vec::new();
            for one in m.iter() {
                // The prefix may be empty (bare ids); nothing else may.
                assert!(!one.db.is_empty());
                assert!(!one.collection.is_empty() && !one.key.names().is_empty());
                assert!(!one.db.contains('.'), "db {:?}", one.db);
                text.push(one.spec());
            }
            let again = Mappings::parse(&text.join(" ")).expect("its own text parses");
            assert_eq!(again, m, "round trip of {spec:?}");
        }
    }
}

/// A key against fixed mappings: resolved or refused; a resolved id is the rest of the key
/// after the prefix, and the filter matches that id literally (the string is always a
/// candidate; no candidate is an operator document).
pub fn key(data: &[u8]) {
    static MAPPINGS: std::sync::OnceLock<Mappings> = std::sync::OnceLock::new();
    let m = MAPPINGS.get_or_init(|| {
        Mappings::parse("todo:=test.todos:id item:=test.items t:=a.b:c.d {x}:=x.y o:=s.o:t,n")
            .unwrap()
    });
    match m.resolve(data) {
        Ok(t) => {
            assert!(data.starts_with(t.mapping.prefix.as_bytes()));
            assert_eq!(t.id.as_bytes(), &data[t.mapping.prefix.len()..]);
            assert!(!t.id.is_empty());
            let cands = t.candidates();
            assert_eq!(cands[0], Bson::String(t.id.clone()));
            assert!(cands.iter().all(|c| !matches!(c, Bson::Document(_))));
            let filter = t.filter();
            assert_eq!(filter.len(), t.mapping.key.names().len());
            assert!(t.mapping.key.names().iter().all(|f| filter.contains_key(f)));
        }
        Err(ResolveError::NotUtf8) => assert!(std::str::from_utf8(data).is_err()),
        Err(ResolveError::EmptyId | ResolveError::NoMapping | ResolveError::WrongParts(_)) => {}
    }
}

/// Any bytes MongoDB could send as a document: when they decode as BSON, the JSON text is
/// valid JSON with the same top-level fields.
pub fn codec(data: &[u8]) {
    let Ok(doc) = Document::from_reader(data) else {
        return;
    };
    let keys: Vec<String> = doc.keys().cloned().collect();
    let text = crate::core::codec::to_json(doc);
    let v: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not valid JSON ({e}): {text}"));
    let obj = v.as_object().expect("a JSON object");
    for k in &keys {
        assert!(obj.contains_key(k), "field {k:?} lost: {text}");
    }
}
