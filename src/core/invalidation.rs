//! What a MongoDB change event does to the cache (`readthrough.invalidation off|delete|refresh`).
//! Pure: from an event's parts to a list of actions on keys; `engine/changes` applies them.

use crate::core::format::Loaded;
#[cfg(test)]
use crate::core::format::Value;
use crate::core::key_id::{field_value, id_of_value, path_within};
use crate::core::mapping::Mapping;
use bson::{Bson, Document};
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Off = 0,
    Delete = 1,
    Refresh = 2,
}

impl Mode {
    pub fn parse(s: &str) -> Result<Mode, String> {
        match s.to_ascii_lowercase().as_str() {
            "off" => Ok(Mode::Off),
            "delete" => Ok(Mode::Delete),
            "refresh" => Ok(Mode::Refresh),
            _ => Err(format!(
                "readthrough.invalidation must be off, delete or refresh, not '{}'",
                crate::core::error::show_key(s.as_bytes())
            )),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Mode::Off => "off",
            Mode::Delete => "delete",
            Mode::Refresh => "refresh",
        }
    }

    pub fn from_u8(n: u8) -> Mode {
        match n {
            0 => Mode::Off,
            2 => Mode::Refresh,
            _ => Mode::Delete,
        }
    }
}

/// What one change event does to the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Delete the key in every DB.
    Delete(String),
    /// Overwrite the key where it is cached (`SET ... XX` or its format's equivalent), in every
    /// DB: the document with the mapping's projection, in its format.
    Set(String, Loaded),
    /// Forget a negative entry (the document exists now).
    Forget(String),
    /// Query a `many` mapping's key again and rewrite it where it is cached (`refresh` mode).
    Reload(String),
    /// Remove every key with this prefix (the collection is gone or renamed).
    Purge(String),
}

/// What a change event did, as far as the cache cares (the MongoDB side maps the driver's
/// operation types to these).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Insert,
    Update,
    Replace,
    Delete,
    /// The collection is gone or no longer watched: dropped, renamed, its database dropped, or
    /// the stream invalidated.
    Gone,
    /// Anything else (index builds, collection options): nothing to do.
    Other,
}

/// The parts of a change event `actions` looks at.
pub struct Change<'a> {
    pub op: Op,
    pub full: Option<&'a Document>,
    pub before: Option<&'a Document>,
    /// `documentKey._id`.
    pub id: Option<&'a Bson>,
    /// An update's changed paths (`updateDescription`: updated, removed, truncated); `None`
    /// where the event does not say.
    pub changed: Option<&'a [String]>,
}

/// The key a document has under mapping `m` (compound parts plainly joined), if its key fields
/// hold ids.
pub fn key_of(m: &Mapping, doc: &Document) -> Option<String> {
    m.key.id_of(doc).map(|id| format!("{}{}", m.prefix, id))
}

/// The cache actions for one event on the collection of `mappings`. `known` gives the id (the
/// key fields' values) this node last saw for a document `_id` under a mapping. A compound key
/// may be cached under any of its spellings (a part in a hash tag): each is acted on. Pure.
pub fn actions(
    mappings: &[Arc<Mapping>],
    ev: &Change,
    mode: Mode,
    known: &dyn Fn(&Mapping, &Bson) -> Option<String>,
) -> Vec<Action> {
    let mut out = Vec::new();
    for m in mappings {
        if m.many.is_some() {
            list_actions(m, ev, mode, known, &mut out);
            continue;
        }
        let old = || -> Option<String> {
            if m.key.is_id() {
                return ev.id.and_then(id_of_value);
            }
            ev.before
                .and_then(|d| m.key.id_of(d))
                .or_else(|| ev.id.and_then(|id| known(m, id)))
        };
        let keys = |id: &str| {
            m.key
                .spellings(id)
                .into_iter()
                .map(|s| format!("{}{s}", m.prefix))
                .collect::<Vec<_>>()
        };
        let new = || ev.full.and_then(|d| m.key.id_of(d));
        match ev.op {
            Op::Insert => {
                out.extend(new().iter().flat_map(|id| keys(id)).map(Action::Forget));
            }
            Op::Update | Op::Replace => {
                let new = new();
                if let (Some(id), Some(doc)) = (&new, ev.full) {
                    let value = (mode == Mode::Refresh).then(|| m.encode(doc.clone()));
                    for key in keys(id) {
                        out.push(match &value {
                            Some(v) => Action::Set(key.clone(), v.clone()),
                            None => Action::Delete(key.clone()),
                        });
                        out.push(Action::Forget(key));
                    }
                }
                if let Some(old) = old().filter(|o| Some(o) != new.as_ref()) {
                    out.extend(keys(&old).into_iter().map(Action::Delete));
                }
            }
            Op::Delete => {
                out.extend(old().iter().flat_map(|id| keys(id)).map(Action::Delete));
            }
            Op::Gone => out.push(Action::Purge(m.prefix.clone())),
            Op::Other => {}
        }
    }
    out
}

/// What a document's value was before the event, for a `many` mapping's key.
enum Before {
    /// The key fields' values (`None`: the document had none and was in no list).
    Id(Option<String>),
    /// The event shows the key fields did not change: the same list as after.
    Same,
    /// Cannot be known.
    Unknown,
}

/// A `many` mapping's actions: the list the document is in after the event and the one it was
/// in before are stale (deleted, or re-queried in `refresh` mode). Where the list it was in
/// cannot be known (no pre-image, a document this node never loaded or saw, and an event that
/// does not say the key fields kept their values) every list of the mapping goes: never stale.
fn list_actions(
    m: &Mapping,
    ev: &Change,
    mode: Mode,
    known: &dyn Fn(&Mapping, &Bson) -> Option<String>,
    out: &mut Vec<Action>,
) {
    let stale = |id: &str, out: &mut Vec<Action>| {
        for s in m.key.spellings(id) {
            let key = format!("{}{s}", m.prefix);
            out.push(match mode {
                Mode::Refresh => Action::Reload(key),
                _ => Action::Delete(key),
            });
        }
    };
    let touches_key = |changed: &[String]| {
        changed.iter().any(|c| {
            m.key
                .names()
                .iter()
                .any(|k| path_within(k, c) || path_within(c, k))
        })
    };
    // The list a document is in: named by its key fields, none when it lacks one, or `Err`
    // when a key field holds no id (an array: the document is in several lists).
    let place = |d: &Document| -> Result<Option<String>, ()> {
        match m.key.id_of(d) {
            Some(id) => Ok(Some(id)),
            None if m.key.names().iter().any(|n| field_value(d, n).is_none()) => Ok(None),
            None => Err(()),
        }
    };
    let Ok(new) = ev.full.map(place).transpose().map(Option::flatten) else {
        out.push(Action::Purge(m.prefix.clone()));
        return;
    };
    let before = match ev.op {
        Op::Insert => Before::Id(None),
        Op::Update | Op::Replace | Op::Delete => {
            if m.key.is_id() {
                // documentKey names the list (`_id` never changes).
                Before::Id(ev.id.and_then(id_of_value))
            } else if let Some(b) = ev.before {
                place(b).map_or(Before::Unknown, Before::Id)
            } else if ev.op == Op::Update
                && ev.full.is_some()
                && ev.changed.is_some_and(|c| !touches_key(c))
            {
                Before::Same
            } else if let Some(id) = ev.id.and_then(|id| known(m, id)) {
                Before::Id(Some(id))
            } else {
                Before::Unknown
            }
        }
        Op::Gone => {
            out.push(Action::Purge(m.prefix.clone()));
            return;
        }
        Op::Other => return,
    };
    if let Some(id) = &new {
        stale(id, out);
    }
    match before {
        Before::Id(Some(old)) if Some(&old) != new.as_ref() => stale(&old, out),
        Before::Id(_) | Before::Same => {}
        Before::Unknown => out.push(Action::Purge(m.prefix.clone())),
    }
}

/// Escapes glob characters so `SCAN MATCH` takes the prefix literally.
pub fn glob_escape(prefix: &str) -> String {
    let mut s = String::with_capacity(prefix.len() + 2);
    for c in prefix.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            s.push('\\');
        }
        s.push(c);
    }
    s.push('*');
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    fn maps(spec: &str) -> Vec<Arc<Mapping>> {
        crate::core::mapping::Mappings::parse(spec)
            .unwrap()
            .iter()
            .cloned()
            .collect()
    }

    fn none(_: &Mapping, _: &Bson) -> Option<String> {
        None
    }

    #[test]
    fn update_deletes_or_refreshes_the_key_of_the_mapping_field() {
        let m = maps("todo:=test.todos:id");
        let full = doc! {"_id": 7, "id": "42", "name": "n"};
        let ev = Change {
            op: Op::Update,
            full: Some(&full),
            before: None,
            id: Some(&Bson::Int32(7)),
            changed: None,
        };
        assert_eq!(
            actions(&m, &ev, Mode::Delete, &none),
            vec![
                Action::Delete("todo:42".into()),
                Action::Forget("todo:42".into())
            ]
        );
        let a = actions(&m, &ev, Mode::Refresh, &none);
        assert_eq!(
            a[0],
            Action::Set(
                "todo:42".into(),
                Value::String(r#"{"_id":7,"id":"42","name":"n"}"#.into()).into()
            )
        );
        let hashed = maps("todo:=test.todos:id;format=hash;fields=-_id,-id");
        assert_eq!(
            actions(&hashed, &ev, Mode::Refresh, &none)[0],
            Action::Set(
                "todo:42".into(),
                Value::Hash(vec![("name".into(), "n".into())]).into()
            ),
            "refresh writes the mapping's format and projection"
        );
    }

    #[test]
    fn an_id_change_also_deletes_the_old_key() {
        let m = maps("todo:=test.todos:id");
        let full = doc! {"_id": 7, "id": "43"};
        let ev = Change {
            op: Op::Replace,
            full: Some(&full),
            before: None,
            id: Some(&Bson::Int32(7)),
            changed: None,
        };
        let known = |_: &Mapping, _: &Bson| Some("42".to_owned());
        let a = actions(&m, &ev, Mode::Delete, &known);
        assert!(a.contains(&Action::Delete("todo:43".into())));
        assert!(a.contains(&Action::Delete("todo:42".into())));
    }

    #[test]
    fn deletes_are_placed_by_id_pre_image_or_index() {
        let on_id = maps("user:=app.users");
        let oid = bson::oid::ObjectId::parse_str("64b7f1a2c3d4e5f601234567").unwrap();
        let id = Bson::ObjectId(oid);
        let ev = Change {
            op: Op::Delete,
            full: None,
            before: None,
            id: Some(&id),
            changed: None,
        };
        assert_eq!(
            actions(&on_id, &ev, Mode::Delete, &none),
            vec![Action::Delete("user:64b7f1a2c3d4e5f601234567".into())]
        );
        let on_field = maps("todo:=test.todos:id");
        assert!(actions(&on_field, &ev, Mode::Delete, &none).is_empty());
        let known = |_: &Mapping, _: &Bson| Some("5".to_owned());
        assert_eq!(
            actions(&on_field, &ev, Mode::Delete, &known),
            vec![Action::Delete("todo:5".into())]
        );
        let before = doc! {"_id": id.clone(), "id": 6};
        let ev = Change {
            before: Some(&before),
            ..ev
        };
        assert_eq!(
            actions(&on_field, &ev, Mode::Delete, &known),
            vec![Action::Delete("todo:6".into())]
        );
    }

    #[test]
    fn insert_forgets_negative_and_drop_purges_every_prefix() {
        let m = maps("todo:=test.todos:id t:=test.todos");
        let full = doc! {"_id": "a", "id": "1"};
        let ev = Change {
            op: Op::Insert,
            full: Some(&full),
            before: None,
            id: Some(&Bson::String("a".into())),
            changed: None,
        };
        let mut a = actions(&m, &ev, Mode::Delete, &none);
        a.sort_by_key(|x| format!("{x:?}"));
        assert_eq!(
            a,
            vec![
                Action::Forget("t:a".into()),
                Action::Forget("todo:1".into())
            ]
        );
        // A dropped, renamed or invalidated collection (`engine/changes/apply.rs` maps them).
        let ev = Change {
            op: Op::Gone,
            full: None,
            before: None,
            id: None,
            changed: None,
        };
        let mut a = actions(&m, &ev, Mode::Refresh, &none);
        a.sort_by_key(|x| format!("{x:?}"));
        assert_eq!(
            a,
            vec![Action::Purge("t:".into()), Action::Purge("todo:".into())]
        );
    }

    #[test]
    fn a_document_without_the_field_has_no_key() {
        let m = maps("todo:=test.todos:meta.sku");
        assert_eq!(
            key_of(&m[0], &doc! {"meta": {"sku": 5}}),
            Some("todo:5".into())
        );
        assert_eq!(key_of(&m[0], &doc! {"meta": 1}), None);
        assert_eq!(key_of(&m[0], &doc! {"meta": {"sku": 1.5}}), None);
    }

    #[test]
    fn modes_parse_and_glob_escapes() {
        assert_eq!(Mode::parse("REFRESH"), Ok(Mode::Refresh));
        assert!(Mode::parse("sometimes")
            .unwrap_err()
            .contains("off, delete or refresh"));
        assert_eq!(glob_escape("a*b?[c]\\:"), "a\\*b\\?\\[c\\]\\\\:*");
    }

    #[test]
    fn a_list_is_stale_where_the_document_is_and_where_it_was() {
        let m = maps("of:=shop.orders:user;many;sort=-at");
        let full = doc! {"_id": 1, "user": "43", "total": 5};
        let before = doc! {"_id": 1, "user": "42", "total": 4};
        let id = Bson::Int32(1);
        let ev = |op, full, before, changed| Change {
            op,
            full,
            before,
            id: Some(&id),
            changed,
        };
        let del = |k: &str| Action::Delete(k.into());
        let total = ["total".to_string()];
        let user = ["user".to_string()];
        // An insert: the list it joins.
        let a = actions(
            &m,
            &ev(Op::Insert, Some(&full), None, None),
            Mode::Delete,
            &none,
        );
        assert_eq!(a, [del("of:43")]);
        // An update of another field: the same list, known from updateDescription.
        let a = actions(
            &m,
            &ev(Op::Update, Some(&full), None, Some(&total)),
            Mode::Delete,
            &none,
        );
        assert_eq!(a, [del("of:43")]);
        // The key field changed: both lists, from the pre-image or the _id index.
        let a = actions(
            &m,
            &ev(Op::Update, Some(&full), Some(&before), Some(&user)),
            Mode::Delete,
            &none,
        );
        assert_eq!(a, [del("of:43"), del("of:42")]);
        let was_42 = |_: &Mapping, _: &Bson| Some("42".to_owned());
        let a = actions(
            &m,
            &ev(Op::Update, Some(&full), None, Some(&user)),
            Mode::Delete,
            &was_42,
        );
        assert_eq!(a, [del("of:43"), del("of:42")]);
        // ... and where neither says, every list of the mapping.
        let a = actions(
            &m,
            &ev(Op::Update, Some(&full), None, Some(&user)),
            Mode::Delete,
            &none,
        );
        assert_eq!(a, [del("of:43"), Action::Purge("of:".into())]);
        let a = actions(
            &m,
            &ev(Op::Replace, Some(&full), None, None),
            Mode::Delete,
            &none,
        );
        assert_eq!(
            a,
            [del("of:43"), Action::Purge("of:".into())],
            "a replace says nothing"
        );
        // A delete: the list it was in, or every list.
        let a = actions(&m, &ev(Op::Delete, None, None, None), Mode::Delete, &was_42);
        assert_eq!(a, [del("of:42")]);
        let a = actions(&m, &ev(Op::Delete, None, None, None), Mode::Delete, &none);
        assert_eq!(a, [Action::Purge("of:".into())]);
        // A key field holding an array: the document is in lists no key names.
        let tags = doc! {"_id": 1, "user": ["42", "43"]};
        let a = actions(
            &m,
            &ev(Op::Update, Some(&tags), None, Some(&total)),
            Mode::Delete,
            &none,
        );
        assert_eq!(a, [Action::Purge("of:".into())]);
        let none_field = doc! {"_id": 1, "total": 3};
        let a = actions(
            &m,
            &ev(Op::Insert, Some(&none_field), None, None),
            Mode::Delete,
            &none,
        );
        assert!(a.is_empty(), "no key field: in no list");
        // A list keyed by _id: documentKey names it.
        let by_id = maps("x:=shop.orders;many");
        let a = actions(
            &by_id,
            &ev(Op::Delete, None, None, None),
            Mode::Delete,
            &none,
        );
        assert_eq!(a, [del("x:1")]);
        // Refresh mode queries the lists again.
        let a = actions(
            &m,
            &ev(Op::Update, Some(&full), Some(&before), None),
            Mode::Refresh,
            &none,
        );
        assert_eq!(
            a,
            [
                Action::Reload("of:43".into()),
                Action::Reload("of:42".into())
            ]
        );
    }
}
