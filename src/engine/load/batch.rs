//! The misses of one `RT.MGET` (or of a transparent read of many keys): loaded with one `$in`
//! query per mapping (one query per key for a `many` mapping), stored, and answered in key order. Batches do not join the single-flight
//! table; their keys count against `readthrough.max-inflight` while they load.

use crate::core::deadline::Deadline;
use crate::core::error::Error;
use crate::core::format::{Loaded, Slot};
use crate::core::mapping::{Mapping, Target};
use crate::engine::cache_state::{self, BatchSlots};
use crate::engine::store::{self, BatchDone};
use crate::mongo::{queries, runtime};
use crate::redis::blocking::Waiter;
use crate::state::counters;
use crate::state::settings;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

/// One key of an `RT.MGET` that missed: its position in the reply, the key, its target.
pub struct BatchMiss {
    pub index: usize,
    pub key: Vec<u8>,
    pub target: Target,
}

/// Main thread: loads the misses of one `RT.MGET` with one query per mapping, then answers
/// `waiter` (if any) with `values` completed. Batches do not join the single-flight table.
pub fn start_batch(db: i32, misses: Vec<BatchMiss>, values: Vec<Slot>, waiter: Option<Waiter>) {
    let slots = BatchSlots::new(misses.len());
    runtime::spawn(run_batch(
        db,
        misses,
        values,
        waiter,
        cache_state::epoch(),
        slots,
    ));
}

async fn run_batch(
    db: i32,
    misses: Vec<BatchMiss>,
    mut values: Vec<Slot>,
    waiter: Option<Waiter>,
    epoch: u64,
    slots: BatchSlots,
) {
    // Group by mapping, keeping the order of first appearance.
    let mut groups: Vec<(Arc<Mapping>, Vec<&BatchMiss>)> = Vec::new();
    for m in &misses {
        match groups
            .iter_mut()
            .find(|(g, _)| Arc::ptr_eq(g, &m.target.mapping))
        {
            Some((_, v)) => v.push(m),
            None => groups.push((Arc::clone(&m.target.mapping), vec![m])),
        }
    }
    let deadline = Deadline::after_ms(settings::timeout_ms() as u64);
    let started = Instant::now();
    let queries = groups.iter().map(|(mapping, items)| {
        let ids: Vec<&str> = items.iter().map(|m| m.target.id.as_str()).collect();
        async move { values_of(mapping, items, &ids, deadline).await }
    });
    let results = futures_util::future::join_all(queries).await;
    counters::record_load_us(started.elapsed().as_micros() as u64);
    let mut found = Vec::new();
    let mut absent = Vec::new();
    let mut error = None;
    for ((mapping, items), result) in groups.iter().zip(results) {
        match result {
            Ok(docs) => {
                for m in items {
                    match docs.get(mapping.key.canonical(&m.target.id).as_ref()) {
                        Some(value) => {
                            counters::count(&counters::LOADS);
                            values[m.index] = Slot::Loaded(value.value.clone());
                            found.push((m.key.clone(), value.clone()));
                        }
                        None => {
                            counters::count(&counters::NOT_FOUND);
                            absent.push(m.key.clone());
                        }
                    }
                }
            }
            Err(e) => {
                counters::count(&counters::LOAD_ERRORS);
                error = Some(e);
            }
        }
    }
    let reply = match error {
        Some(e) => Err(e),
        None => Ok(values),
    };
    store::submit_batch(BatchDone {
        db,
        found,
        absent,
        waiter,
        reply,
        epoch,
        _slots: slots,
    });
}

/// The values found for one mapping's misses, by canonical id. A single-document mapping: one
/// query (`queries::find_many`), each found document a value once however many keys ask for
/// it. A `many` mapping: one query per key, at once (each key is its own query).
async fn values_of(
    mapping: &Arc<Mapping>,
    items: &[&BatchMiss],
    ids: &[&str],
    deadline: Deadline,
) -> Result<HashMap<String, Loaded>, Error> {
    if mapping.many.is_none() {
        let docs = queries::find_many(mapping, ids, deadline).await?;
        return Ok(docs
            .into_iter()
            .map(|(id, d)| (id, super::value_of(mapping, d)))
            .collect());
    }
    let lists = items.iter().map(|m| async move {
        let docs = queries::find_list(&m.target, deadline).await?;
        let id = mapping.key.canonical(&m.target.id).into_owned();
        Ok::<_, Error>((id, super::list_value_of(mapping, docs)))
    });
    futures_util::future::try_join_all(lists)
        .await
        .map(|all| all.into_iter().collect())
}
