//! The `_id -> id` index of the documents this node loaded, for mappings on fields other
//! than `_id` alone: a delete event carries only `documentKey: {_id}`, and this is how the watcher
//! finds the key to delete when the collection has no pre-images. Bounded; the one owner of
//! that state. Pure: no Redis, no I/O.

use crate::core::invalidation::{Change, Mode, Op};
use crate::core::mapping::Mapping;
use crate::state::settings;
use mongodb::bson::{Bson, Document};
use once_cell::sync::Lazy;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

const INDEX_MAX: usize = 2_000_000;

type Index = HashMap<(String, String), String>;
static INDEX: Lazy<Mutex<Index>> = Lazy::new(Default::default);

fn index() -> std::sync::MutexGuard<'static, Index> {
    INDEX.lock().unwrap_or_else(|p| p.into_inner())
}

fn id_key(id: &Bson) -> String {
    id.clone().into_relaxed_extjson().to_string()
}

/// A document was loaded for mapping `m`: remember its `_id → id` (only needed when the
/// mapping is not on `_id` and invalidation is on).
pub fn remember(m: &Mapping, doc: &Document) {
    if m.key.is_id() || settings::mode() == Mode::Off {
        return;
    }
    let (Some(id), Some(v)) = (doc.get("_id"), m.key.id_of(doc)) else {
        return;
    };
    let mut ix = index();
    if ix.len() < INDEX_MAX {
        ix.insert((m.prefix.clone(), id_key(id)), v);
    }
}

pub fn known(m: &Mapping, id: &Bson) -> Option<String> {
    index().get(&(m.prefix.clone(), id_key(id))).cloned()
}

pub fn update(mappings: &[Arc<Mapping>], ev: &Change) {
    let Some(id) = ev.id else { return };
    for m in mappings.iter().filter(|m| !m.key.is_id()) {
        let k = (m.prefix.clone(), id_key(id));
        match (ev.op, ev.full.and_then(|d| m.key.id_of(d))) {
            (Op::Delete, _) | (_, None) => {
                index().remove(&k);
            }
            (_, Some(v)) => {
                let mut ix = index();
                if ix.len() < INDEX_MAX || ix.contains_key(&k) {
                    ix.insert(k, v);
                }
            }
        }
    }
}
