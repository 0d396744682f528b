//! What one change event does, applied: the pure actions (`core/invalidation.rs`) written in
//! every DB, with the event's resume token, in one short hold of the Redis lock; prefix purges
//! with `SCAN ... COUNT 500`, one lock hold per step.

use super::forward::Outbox;
use super::{
    current, databases, is_cluster, tokens, topology, Watcher, EVENTS, LAG_MS, PURGES,
    UNPLACED_DELETES,
};
use crate::core::cluster_slots::{key_slot, SLOTS};
use crate::core::deadline::Deadline;
use crate::core::invalidation::{actions, glob_escape, Action, Change, Op};
use crate::core::mapping::Mapping;
use crate::core::resume_token::{self, START_AFTER};
use crate::engine::cache::{Cache, RedisCache};
use crate::engine::load::list_value_of;
use crate::engine::{cache_state, store};
use crate::mongo::queries;
use crate::redis::gil::Gil;
use crate::redis::write::{self, Only};
use crate::state::counters;
use crate::state::fault;
use crate::state::id_index;
use crate::state::settings;
use mongodb::bson::Document;
use mongodb::change_stream::event::{ChangeStreamEvent, OperationType};
use redis_module::CallReply;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Applies one event; false when its resume token could not be saved in a cluster (the
/// cluster is down, or the home slot moved): the watcher then opens the stream again from the
/// last token saved, so that nothing whose write Redis refused is skipped.
pub async fn handle(
    w: &Watcher,
    maps: &[Arc<Mapping>],
    ev: ChangeStreamEvent<Document>,
    gen: u64,
) -> bool {
    EVENTS.fetch_add(1, Ordering::Relaxed);
    w.events.fetch_add(1, Ordering::Relaxed);
    fault::maybe_panic("change-event");
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let at_ms = ev
        .wall_time
        .map(|t| t.timestamp_millis())
        .or(ev.cluster_time.map(|t| t.time as i64 * 1000));
    if let Some(at) = at_ms {
        let lag = (now_ms - at).max(0);
        LAG_MS.store(lag, Ordering::Relaxed);
        w.lag_ms.store(lag, Ordering::Relaxed);
    }
    let id = ev.document_key.as_ref().and_then(|d| d.get("_id"));
    let changed: Option<Vec<String>> = ev.update_description.as_ref().map(|u| {
        let updated = u.updated_fields.keys().cloned();
        let truncated = u.truncated_arrays.iter().flatten().map(|t| t.field.clone());
        updated
            .chain(u.removed_fields.iter().cloned())
            .chain(truncated)
            .collect()
    });
    let change = Change {
        op: op_of(&ev.operation_type),
        full: ev.full_document.as_ref(),
        before: ev.full_document_before_change.as_ref(),
        id,
        changed: changed.as_deref(),
    };
    let acts = actions(maps, &change, settings::mode(), &id_index::known);
    id_index::update(maps, &change);
    // In a cluster, the actions for other masters' slots go to them (`forward.rs`).
    let map = if is_cluster() {
        topology::current()
    } else {
        None
    };
    let mut outbox = Outbox::default();
    if ev.operation_type == OperationType::Delete && acts.len() < maps.len() {
        UNPLACED_DELETES.fetch_add(1, Ordering::Relaxed);
        if let (Some(map), Some(id)) = (&map, id) {
            if let Ok(bytes) = mongodb::bson::to_vec(&mongodb::bson::doc! {"_id": id.clone()}) {
                outbox.unplaced(map, bytes);
            }
        }
    }
    let mut writes = Vec::new();
    let mut later_here = Vec::new();
    for a in acts {
        let a = match &map {
            Some(map) => match outbox.route(map, a) {
                Some(here) => here,
                None => continue,
            },
            None => a,
        };
        match a {
            Action::Purge(_) | Action::Reload(_) => later_here.push(a),
            a => writes.push(a),
        }
    }
    if current(gen) {
        writes.extend(run_later(later_here).await);
    }
    let after = if ev.operation_type == OperationType::Invalidate {
        START_AFTER
    } else {
        ""
    };
    let token = mongodb::bson::to_bson(&ev.id)
        .ok()
        .map(|t| format!("{after}{}", resume_token::to_text(t)));
    let ns = w.ns.clone();
    store::with_gil(move |gil: &Gil| {
        // Checked under the GIL, where CONFIG SET runs: no event is applied after a change
        // of mode or mappings; its token is not saved, so the next watcher sees it again.
        !current(gen) || apply(gil, &ns, &writes, outbox, token) || !is_cluster()
    })
    .await
    .unwrap_or(false)
}

/// Purges (each prefix, one SCAN step per GIL hold) and, in `refresh` mode, the `many` lists
/// to query again: runs the purges and returns the rewrites of the lists.
async fn run_later(acts: Vec<Action>) -> Vec<Action> {
    let mut reloads = Vec::new();
    for a in acts {
        match a {
            Action::Purge(prefix) => purge(&prefix).await,
            Action::Reload(key) => reloads.push(key),
            _ => {}
        }
    }
    if reloads.is_empty() {
        Vec::new()
    } else {
        reload(reloads).await
    }
}

/// A receiver's purges and list reloads, off the main thread: run, then the rewrites applied.
pub async fn later(acts: Vec<Action>) {
    let writes = run_later(acts).await;
    if !writes.is_empty() {
        store::with_gil(move |gil: &Gil| {
            let changed = apply_actions(&mut RedisCache(gil), databases(), &writes);
            counters::add(&counters::INVALIDATIONS, changed);
        })
        .await;
    }
}

/// `refresh` mode for `many` lists: each list key cached in some DB is queried again and
/// rewritten where cached; one whose query fails is deleted (never left stale). A list cached
/// nowhere costs MongoDB nothing.
async fn reload(keys: Vec<String>) -> Vec<Action> {
    let dbs = databases();
    let cached = store::with_gil(move |gil: &Gil| {
        let mut cache = RedisCache(gil);
        keys.into_iter()
            .filter(|k| (0..dbs).any(|db| cache.holds(db, k.as_bytes())))
            .collect::<Vec<_>>()
    })
    .await
    .unwrap_or_default();
    let mut out = Vec::with_capacity(cached.len());
    for key in cached {
        let target = settings::resolve(key.as_bytes()).ok();
        let Some(target) = target.filter(|t| t.mapping.many.is_some()) else {
            out.push(Action::Delete(key));
            continue;
        };
        let deadline = Deadline::after_ms(settings::timeout_ms() as u64);
        match queries::find_list(&target, deadline).await {
            Ok(docs) => out.push(Action::Set(key, list_value_of(&target.mapping, docs))),
            Err(_) => out.push(Action::Delete(key)),
        }
    }
    out
}

/// Under the GIL: applies the key actions in every DB, sends other masters theirs, and saves
/// the resume token, in that order (a saved token means every message before it was sent).
/// Returns whether the token was saved.
fn apply(gil: &Gil, ns: &str, acts: &[Action], outbox: Outbox, token: Option<String>) -> bool {
    let changed = apply_actions(&mut RedisCache(gil), databases(), acts);
    counters::add(&counters::INVALIDATIONS, changed);
    if !outbox.is_empty() {
        outbox.send(gil, ns);
    }
    token.is_none_or(|token| tokens::save_token(gil, ns, &token))
}

/// Applies key actions in DBs `0..dbs`: deletes, rewrites where cached (`XX`), forgotten
/// negative entries. A load in flight of a changed key is marked stale, so what it read before
/// the change is answered but not stored. Returns how many keys were deleted or rewritten.
pub fn apply_actions(cache: &mut impl Cache, dbs: i32, acts: &[Action]) -> u64 {
    let mut changed = 0u64;
    for db in 0..dbs {
        for a in acts {
            match a {
                Action::Delete(key) => {
                    cache_state::mark_stale((db, key.as_bytes().to_vec()));
                    changed += cache.del(db, &[key.as_bytes()]).unwrap_or(0) as u64;
                }
                Action::Set(key, value) => {
                    cache_state::mark_stale((db, key.as_bytes().to_vec()));
                    let written = cache.set(db, key.as_bytes(), value, Some(Only::Present));
                    changed += u64::from(written == Some(true));
                }
                Action::Forget(key) => {
                    cache_state::forget_absent(db, key.as_bytes());
                }
                Action::Purge(_) | Action::Reload(_) => {}
            }
        }
    }
    changed
}

/// Removes every key with `prefix` in every DB, one `SCAN ... COUNT 500` step per GIL hold,
/// and the prefix's negative entries.
pub async fn purge(prefix: &str) {
    PURGES.fetch_add(1, Ordering::Relaxed);
    cache_state::forget_absent_prefix(prefix.as_bytes());
    purge_where(prefix, None).await;
}

/// In a cluster, after this master gained `slots` from another: removes the mapped keys it
/// holds in them (changes to them were sent to their former owner).
pub async fn purge_slots(slots: Vec<u16>) {
    PURGES.fetch_add(1, Ordering::Relaxed);
    let mut within = vec![false; SLOTS];
    for s in slots {
        within[s as usize] = true;
    }
    let within = Arc::new(within);
    let prefixes: Vec<String> = settings::mappings()
        .iter()
        .map(|m| m.prefix.clone())
        .collect();
    for p in prefixes {
        purge_where(&p, Some(Arc::clone(&within))).await;
    }
}

/// The `SCAN` loop of a purge: every key of `prefix`'s own mapping, or only those in `slots`.
async fn purge_where(prefix: &str, slots: Option<Arc<Vec<bool>>>) {
    let pattern = glob_escape(prefix);
    for db in 0..databases() {
        let mut cursor = "0".to_owned();
        loop {
            let (pat, cur, pre) = (pattern.clone(), cursor.clone(), prefix.to_owned());
            let slots = slots.clone();
            let step = store::with_gil(move |gil: &Gil| {
                scan_step(gil, db, &cur, &pre, &pat, slots.as_deref())
            })
            .await;
            match step.flatten() {
                Some(next) if next != "0" => cursor = next,
                _ => break,
            }
        }
    }
}

/// One `SCAN` step in `db`; deletes what it found (in `slots`, if given); the next cursor.
fn scan_step(
    gil: &Gil,
    db: i32,
    cursor: &str,
    prefix: &str,
    pattern: &str,
    slots: Option<&Vec<bool>>,
) -> Option<String> {
    let args: [&[u8]; 5] = [
        cursor.as_bytes(),
        b"MATCH",
        pattern.as_bytes(),
        b"COUNT",
        b"500",
    ];
    let (next, mut keys) = write::call_read(gil, db, "SCAN", &args, |r| {
        let CallReply::Array(a) = r else {
            return None;
        };
        let next = match a.get(0) {
            Some(Ok(CallReply::String(s))) => s.to_string()?,
            _ => return None,
        };
        let mut keys = Vec::new();
        if let Some(Ok(CallReply::Array(ks))) = a.get(1) {
            for k in ks.iter().flatten() {
                if let CallReply::String(s) = k {
                    keys.push(s.as_bytes().to_vec());
                }
            }
        }
        Some((next, keys))
    })
    .flatten()?;
    // Only the keys of this prefix's own mapping: not those a longer prefix maps elsewhere, and,
    // for the empty prefix, not the module's own keys.
    let mappings = settings::mappings();
    keys.retain(|k| mappings.find(k).is_some_and(|m| m.prefix == prefix));
    if let Some(slots) = slots {
        keys.retain(|k| slots[key_slot(k) as usize]);
    }
    // In a cluster one DEL may only name keys of one slot.
    let mut slotted: Vec<(u16, &[u8])> = keys
        .iter()
        .map(|k| (if is_cluster() { key_slot(k) } else { 0 }, k.as_slice()))
        .collect();
    slotted.sort_unstable_by_key(|(slot, _)| *slot);
    let groups = slotted
        .chunk_by(|a, b| a.0 == b.0)
        .map(|g| g.iter().map(|(_, k)| *k).collect::<Vec<&[u8]>>());
    for refs in groups {
        let n = RedisCache(gil).del(db, &refs);
        counters::add(&counters::INVALIDATIONS, n.unwrap_or(0) as u64);
    }
    Some(next)
}

/// The driver's operation type as the core's `Op`.
fn op_of(t: &OperationType) -> Op {
    match t {
        OperationType::Insert => Op::Insert,
        OperationType::Update => Op::Update,
        OperationType::Replace => Op::Replace,
        OperationType::Delete => Op::Delete,
        OperationType::Drop
        | OperationType::Rename
        | OperationType::DropDatabase
        | OperationType::Invalidate => Op::Gone,
        _ => Op::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::format::Value;
    use crate::engine::cache::MemCache;

    #[test]
    fn actions_apply_in_every_db_and_rewrite_only_cached_keys() {
        let mut cache = MemCache::default();
        cache.put(0, "todo:1", "old");
        cache.put(2, "todo:1", "old");
        cache.put(1, "todo:2", "old");
        let acts = [
            Action::Delete("todo:1".into()),
            Action::Set("todo:2".into(), Value::String("new".into()).into()),
            Action::Set("todo:3".into(), Value::String("never cached".into()).into()),
        ];
        assert_eq!(apply_actions(&mut cache, 3, &acts), 3);
        assert_eq!(cache.get(0, "todo:1"), None);
        assert_eq!(cache.get(2, "todo:1"), None);
        assert_eq!(cache.get(1, "todo:2"), Some("new"));
        assert_eq!(cache.get(0, "todo:2"), None, "XX: not filled where absent");
        assert_eq!(cache.get(1, "todo:3"), None);
    }

    #[test]
    fn a_collection_gone_is_one_op_and_what_the_cache_ignores_is_other() {
        for t in [
            OperationType::Drop,
            OperationType::Rename,
            OperationType::DropDatabase,
            OperationType::Invalidate,
        ] {
            assert_eq!(op_of(&t), Op::Gone, "{t:?}");
        }
        assert_eq!(op_of(&OperationType::Insert), Op::Insert);
        assert_eq!(op_of(&OperationType::Delete), Op::Delete);
        assert_eq!(op_of(&OperationType::Other("modify".into())), Op::Other);
    }
}
