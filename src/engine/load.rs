//! One load: join the single-flight table on the main thread, run the MongoDB query on the
//! background runtime, hand the outcome to the store step.
//!
//! A load always ends: the query is bounded by `readthrough.timeout`, and a task that dies
//! before it has an outcome (a panic) still completes its key with an internal error through
//! `Completion`'s drop, so no waiter is left blocked and no key stays "in flight" for ever.

use crate::core::counters;
use crate::core::deadline::Deadline;
use crate::core::error::{Error, Outcome};
use crate::core::mapping::Target;
use crate::core::settings;
use crate::core::single_flight::Join;
use crate::engine::cache_state::{self, LoadKey};
use crate::engine::store::{self, Kind};
use crate::mongo::{runtime, shared_queries};
use crate::redis::blocking::{Answer, Waiter, TIMEOUT_SAFETY_MS};
use crate::redis::keys::cannot_block;
use redis_module::{Context, RedisResult, RedisValue};
use std::sync::Arc;
use std::time::Instant;

/// Main thread: starts a background load of a mapped `key` nobody waits on, unless it is
/// loading already, known absent, or unmapped (then nothing happens).
pub fn prefetch(db: i32, key: &[u8]) {
    let Ok(target) = settings::resolve(key) else {
        return;
    };
    if cache_state::is_loading(&(db, key.to_vec())) || cache_state::known_absent(db, key) {
        return;
    }
    if start(db, key, target, None, Kind::Fill) {
        counters::count(&counters::PREFETCHES);
    }
}

/// Main thread: joins the load of `key` or starts one. `waiter` is `None` for a background
/// load nobody waits on. Beyond `readthrough.max-inflight` loads the waiter gets `BUSY`.
/// Returns false if the load was refused for `BUSY`.
pub fn start(db: i32, key: &[u8], target: Target, waiter: Option<Waiter>, kind: Kind) -> bool {
    let max = settings::max_inflight();
    let lkey: LoadKey = (db, key.to_vec());
    let waits = waiter.is_some();
    let joined = cache_state::join(lkey.clone(), waiter, max);
    match joined {
        Join::Leader => runtime::spawn(run(lkey, target, kind, cache_state::epoch())),
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

async fn run(key: LoadKey, target: Target, kind: Kind, epoch: u64) {
    let completion = Completion(Some((key, kind, epoch)));
    let _busy = runtime::Busy::start();
    let deadline = Deadline::after_ms(settings::timeout_ms() as u64);
    let started = Instant::now();
    // The deadline bounds a miss queued for a shared query too, not only the query itself.
    let outcome =
        tokio::time::timeout_at(deadline.at.into(), shared_queries::load(target, deadline))
            .await
            .unwrap_or(Err(Error::Timeout(deadline.timeout_ms)));
    counters::record_load_us(started.elapsed().as_micros() as u64);
    match &outcome {
        Ok(Some(_)) => counters::count(&counters::LOADS),
        Ok(None) => counters::count(&counters::NOT_FOUND),
        Err(_) => counters::count(&counters::LOAD_ERRORS),
    }
    completion.finish(outcome);
}

/// Blocks the client on a load of `key` (joining one in flight) to be answered as `answer`
/// says, or, where it cannot block, starts the load in the background and replies `NOBLOCK`.
pub fn load_for_client(
    ctx: &Context,
    db: i32,
    key: &[u8],
    target: Target,
    kind: Kind,
    answer: Answer,
) -> RedisResult {
    if cannot_block(ctx) {
        counters::count(&counters::PREFETCHES);
        start(db, key, target, None, kind);
        return Err(Error::NoBlock.into());
    }
    let waiter = Waiter::block(ctx, settings::timeout_ms() + TIMEOUT_SAFETY_MS, answer);
    start(db, key, target, Some(waiter), kind);
    Ok(RedisValue::NoReply)
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
