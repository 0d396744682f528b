//! Misses of different keys of one mapping share a query when MongoDB is busy.
//!
//! Each mapping has at most `MAX_QUERIES` queries in flight. A load that finds a free slot runs
//! its own `find_one` at once (no added latency when MongoDB keeps up). Otherwise it waits in
//! the mapping's queue, and the next query to start takes up to `MAX_BATCH` waiting ids in one
//! `$in`. So the busier MongoDB is, the fewer queries it gets: this is what lets the module
//! outrun application cache-aside under concurrency, where every miss is its own query.
//! Every query is bounded by `readthrough.timeout`, so a stalled MongoDB cannot hold a slot for
//! ever; a query that fails with an error the driver retried hands it to the misses queued
//! behind it.

use crate::core::deadline::Deadline;
use crate::core::error::Error;
use crate::core::mapping::{Mapping, Target};
use crate::mongo::queries::{self, Failed};
use crate::mongo::runtime;
use crate::state::counters;
use futures_util::FutureExt;
use mongodb::bson::Document;
use once_cell::sync::Lazy;
use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::oneshot;

/// Queries in flight per mapping before misses start to queue and share queries.
pub const MAX_QUERIES: usize = 4;
/// Most ids in one shared query.
pub const MAX_BATCH: usize = 500;

type Found = Result<Option<Document>, Error>;
type Waiting = (String, Deadline, oneshot::Sender<Found>);

#[derive(Default)]
struct Queue {
    /// Queued misses: the id, its load's deadline, where the answer goes.
    waiting: Vec<Waiting>,
    running: usize,
}

static QUEUES: Lazy<Mutex<HashMap<Mapping, Queue>>> = Lazy::new(Default::default);

fn queues() -> MutexGuard<'static, HashMap<Mapping, Queue>> {
    QUEUES.lock().unwrap_or_else(|p| p.into_inner())
}

/// Loads the document of `target`: at once if a query slot is free (in this task, no extra
/// hop), else in the next shared query.
pub async fn load(target: Target, deadline: Deadline) -> Found {
    let (tx, rx) = oneshot::channel();
    let queued = {
        let mut qs = queues();
        let q = qs.entry((*target.mapping).clone()).or_default();
        if q.running < MAX_QUERIES {
            q.running += 1;
            None
        } else {
            q.waiting.push((target.id.clone(), deadline, tx));
            Some(())
        }
    };
    if queued.is_some() {
        return rx
            .await
            .unwrap_or_else(|_| Err(Error::Internal("the query task stopped".into())));
    }
    // This task holds a slot. The guard hands it on (to the queued misses) or gives it back,
    // also when this future is dropped on timeout or unwinds.
    let _slot = Slot(Arc::clone(&target.mapping));
    let found = queries::find_one(&target, deadline).await;
    fail_queued_after(&target.mapping, found.as_ref().err());
    found.map_err(Error::from)
}

/// After a query of mapping `m` failed with an error the driver had already tried again, the
/// misses queued behind it get that error at once: their own query would meet the fault late
/// in their deadline and answer `TIMEOUT`, where a lone miss answers `BACKEND`. Any other
/// failure is not handed on: an error the driver does not retry may be one query's alone
/// (each queued miss tries its own), and a `TIMEOUT` keeps each miss's own deadline.
fn fail_queued_after(m: &Mapping, failed: Option<&queries::Failed>) {
    let Some(Failed {
        error: e @ Error::Backend(_),
        retried: true,
    }) = failed
    else {
        return;
    };
    let queued = match queues().get_mut(m) {
        Some(q) => std::mem::take(&mut q.waiting),
        None => return,
    };
    for (_, _, tx) in queued {
        let _ = tx.send(Err(e.clone()));
    }
}

/// A held query slot of a mapping.
struct Slot(Arc<Mapping>);

impl Drop for Slot {
    fn drop(&mut self) {
        let mut qs = queues();
        let Some(q) = qs.get_mut(&*self.0) else {
            return;
        };
        if q.waiting.is_empty() {
            q.running -= 1;
            if q.running == 0 {
                qs.remove(&*self.0);
            }
        } else {
            drop(qs);
            runtime::spawn(drain(Arc::clone(&self.0)));
        }
    }
}

/// Holds a slot: runs shared queries until the mapping's queue is empty, then gives it back.
async fn drain(m: Arc<Mapping>) {
    let _slot = Slot(Arc::clone(&m));
    loop {
        let batch: Vec<Waiting> = {
            let mut qs = queues();
            let Some(q) = qs.get_mut(&*m) else { return };
            if q.waiting.is_empty() {
                return; // the slot's drop gives it back
            }
            let n = q.waiting.len().min(MAX_BATCH);
            q.waiting.drain(..n).collect()
        };
        // A panic drops the senders: those waiters get an internal error, the slot goes on.
        let _ = AssertUnwindSafe(query(&m, batch)).catch_unwind().await;
    }
}

/// Runs one query for a batch of queued misses: a `find_one` for one, a shared `$in` for many,
/// bounded by the earliest deadline among them.
async fn query(m: &Arc<Mapping>, batch: Vec<Waiting>) {
    if batch.len() == 1 {
        let (id, deadline, tx) = batch.into_iter().next().expect("one");
        let target = Target {
            mapping: Arc::clone(m),
            id,
        };
        let found = queries::find_one(&target, deadline).await;
        fail_queued_after(m, found.as_ref().err());
        let _ = tx.send(found.map_err(Error::from));
        return;
    }
    counters::add(&counters::BATCHED, batch.len() as u64);
    let deadline = batch
        .iter()
        .map(|(_, d, _)| *d)
        .min_by_key(|d| d.at)
        .expect("a batch is never empty");
    let ids: Vec<&str> = batch.iter().map(|(id, _, _)| id.as_str()).collect();
    let r = queries::find_many(m, &ids, deadline).await;
    fail_queued_after(m, r.as_ref().err());
    for (id, _, tx) in batch {
        let _ = tx.send(match &r {
            Ok(found) => Ok(found.get(m.key.canonical(&id).as_ref()).cloned()),
            Err(e) => Err(e.error.clone()),
        });
    }
}
