//! A load run on the loader thread by the driver: the query (shared with others when many
//! misses queue up), bounded by the load's deadline, then handed to the store step.
//!
//! A load always ends: a task that dies before it has an outcome (a panic) still completes its
//! key with an internal error through `Completion`'s drop, so no waiter is left blocked and no
//! key stays "in flight" for ever.

use crate::core::counters;
use crate::core::deadline::Deadline;
use crate::core::error::{Error, Outcome};
use crate::core::mapping::Target;
use crate::engine::cache_state::LoadKey;
use crate::engine::store::{self, Kind};
use crate::mongo::{runtime, shared_queries};
use std::time::Instant;

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

/// Runs `load` on the loader thread, with what is left of its deadline.
pub fn spawn(load: Load) {
    runtime::spawn(run(load));
}

async fn run(load: Load) {
    let completion = Completion(Some((load.key, load.kind, load.epoch)));
    let _busy = runtime::Busy::start();
    let deadline = load.deadline;
    // The deadline bounds a miss queued for a shared query too, not only the query itself.
    let outcome = tokio::time::timeout_at(
        deadline.at.into(),
        shared_queries::load(load.target, deadline),
    )
    .await
    .unwrap_or(Err(Error::Timeout(deadline.timeout_ms)));
    record(&outcome, load.started);
    completion.finish(outcome);
}

/// Counts a load's outcome and its time.
pub fn record(outcome: &Outcome, started: Instant) {
    counters::record_load_us(started.elapsed().as_micros() as u64);
    match outcome {
        Ok(Some(_)) => counters::count(&counters::LOADS),
        Ok(None) => counters::count(&counters::NOT_FOUND),
        Err(_) => counters::count(&counters::LOAD_ERRORS),
    }
}

/// A started load held outside a task (an inline query in flight): dropped before `take`
/// (a panic), it still completes its key with an internal error.
pub struct Guarded(Option<Load>);

impl Guarded {
    pub fn new(load: Load) -> Guarded {
        Guarded(Some(load))
    }

    pub fn get(&self) -> &Load {
        self.0
            .as_ref()
            .expect("taken only by `take`, which consumes")
    }

    pub fn take(mut self) -> Load {
        self.0.take().expect("taken once")
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        if let Some(l) = self.0.take() {
            let e = Error::Internal("the inline load stopped".into());
            store::submit(l.key, l.kind, Err(e), l.epoch);
        }
    }
}

/// Guarantees that a started load reaches the store thread exactly once.
struct Completion(Option<(LoadKey, Kind, u64)>);

impl Completion {
    fn finish(mut self, outcome: Outcome) {
        if let Some((key, kind, epoch)) = self.0.take() {
            store::submit(key, kind, outcome, epoch);
        }
    }
}

impl Drop for Completion {
    fn drop(&mut self) {
        if let Some((key, kind, epoch)) = self.0.take() {
            let e = Error::Internal("the load task stopped".into());
            store::submit(key, kind, Err(e), epoch);
        }
    }
}
