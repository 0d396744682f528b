//! A load's life, in one place: a miss joins the single-flight table on the main thread
//! (`start`); its leader runs the MongoDB query inline (`inline.rs`: the main thread sends and
//! reads it, at low load) or on the loader thread by the driver (`driver.rs`), bounded by
//! `readthrough.timeout` either way; then the store step writes the result and answers the
//! waiters (`engine/store.rs`). An `RT.MGET`'s misses are one batch instead (`batch.rs`).
//!
//! One guard holds a load from its start to its end, on every path: `Loading`. It ends the load
//! exactly once, with its outcome, or, dropped first (a panic, a task that stopped), with an
//! internal error, so no waiter is left blocked and no key stays "in flight" for ever.

pub mod batch;
mod driver;
pub mod inline;
pub mod main_driver;

use crate::core::deadline::Deadline;
use crate::core::error::{Error, Outcome};
use crate::core::format::Loaded;
use crate::core::mapping::{Mapping, Target};
use crate::core::single_flight::Join;
use crate::engine::cache_state::{self, LoadKey};
use crate::engine::store::{self, Kind};
use crate::redis::blocking::Waiter;
use crate::redis::main_thread::MainThread;
use crate::state::counters;
use crate::state::{id_index, settings};
use mongodb::bson::Document;
use redis_module::Context;
use std::sync::Arc;
use std::time::Instant;

/// What a found document becomes, on every path (inline, driver, batch, so in one place): the
/// value in the mapping's format; its `_id` is remembered for change events that carry no more
/// (`state/id_index.rs`).
pub fn value_of(m: &Mapping, doc: Document) -> Loaded {
    id_index::remember(m, &doc);
    m.encode(doc)
}

/// What the documents of a `many` mapping's query become: the array value; each document's
/// `_id` is remembered for change events that carry no more.
pub fn list_value_of(m: &Mapping, docs: Vec<Document>) -> Loaded {
    for d in &docs {
        id_index::remember(m, d);
    }
    m.encode_list(docs)
}

/// One started load: which key, what to query, what to do with the result, and by when.
pub struct Load {
    pub key: LoadKey,
    pub target: Target,
    pub kind: Kind,
    /// `cache_state::epoch()` when the load started.
    pub epoch: u64,
    pub deadline: Deadline,
    pub started: Instant,
}

/// Main thread: starts a background load of a mapped `key` nobody waits on, unless it is
/// loading already, known absent, or unmapped (then nothing happens). The key-miss hook's
/// prefetch.
pub fn prefetch(mt: MainThread, db: i32, key: &[u8]) {
    let Ok(target) = settings::resolve(key) else {
        return;
    };
    if cache_state::is_loading(&(db, key.to_vec())) || cache_state::known_absent(db, key) {
        return;
    }
    if start(mt, db, key, target, None, Kind::Fill) {
        counters::count(&counters::PREFETCHES);
    }
}

/// Main thread: joins the load of `key` or starts one. `waiter` is `None` for a background
/// load nobody waits on. Beyond `readthrough.max-inflight` keys loading the waiter gets `BUSY`.
/// Returns false if the load was refused for `BUSY`.
pub fn start(
    mt: MainThread,
    db: i32,
    key: &[u8],
    target: Target,
    waiter: Option<Waiter>,
    kind: Kind,
) -> bool {
    let max = settings::max_inflight();
    let lkey: LoadKey = (db, key.to_vec());
    let waits = waiter.is_some();
    match cache_state::join(lkey.clone(), waiter, max) {
        Join::Leader => {
            let loading = Loading(Some(Load {
                key: lkey,
                target,
                kind,
                epoch: cache_state::epoch(),
                deadline: Deadline::after_ms(settings::timeout_ms() as u64),
                started: Instant::now(),
            }));
            if let Err(loading) = inline::try_start(mt, loading) {
                if let Err(loading) = main_driver::try_start(mt, loading) {
                    driver::spawn(loading);
                }
            }
        }
        Join::Follower if waits => counters::count(&counters::COALESCED),
        Join::Follower => {}
        Join::Full(waiter) => {
            counters::count(&counters::BUSY_REJECTIONS);
            if let Some(w) = waiter {
                w.finish(Arc::new(Err(Error::Busy(max))));
            }
            return false;
        }
    }
    true
}

/// A started load, from its start to its end: the one way a load reaches the store step.
pub struct Loading(Option<Load>);

impl Loading {
    pub fn load(&self) -> &Load {
        self.0
            .as_ref()
            .expect("emptied only by `end`, which consumes")
    }

    /// Ends the load with `outcome`: the store step writes it when Redis's lock is free, and
    /// answers the waiters.
    pub fn finish(self, outcome: Outcome) {
        let load = self.end(&outcome);
        store::submit(load.key, load.kind, outcome, load.epoch);
    }

    /// Main thread, inside a callback Redis gave `ctx`: ends the load with `outcome` here, with
    /// no thread hop.
    pub fn finish_here(self, ctx: &Context, outcome: Outcome) {
        let load = self.end(&outcome);
        store::finish_here(ctx, load.key, load.kind, outcome, load.epoch);
    }

    /// Counts the load's outcome and its time, and disarms the guard.
    fn end(mut self, outcome: &Outcome) -> Load {
        let load = self.0.take().expect("ended once");
        counters::record_load_us(load.started.elapsed().as_micros() as u64);
        counters::count(match outcome {
            Ok(Some(_)) => &counters::LOADS,
            Ok(None) => &counters::NOT_FOUND,
            Err(_) => &counters::LOAD_ERRORS,
        });
        load
    }
}

impl Drop for Loading {
    fn drop(&mut self) {
        if let Some(l) = self.0.take() {
            let e = Error::Internal("the load stopped".into());
            store::submit(l.key, l.kind, Err(e), l.epoch);
        }
    }
}
