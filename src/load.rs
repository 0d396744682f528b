//! One load: join the single-flight table on the main thread, run the MongoDB query on the
//! loader runtime, hand the outcome to the store thread.
//!
//! A load always ends: the query is bounded by `readthrough.timeout`, and a task that dies
//! before it has an outcome (a panic) still completes its key with an internal error through
//! `Completion`'s drop, so no waiter is left blocked and no key stays "in flight" for ever.

use crate::error::Error;
use crate::ffi::{Outcome, Waiter};
use crate::inflight::{InFlight, Join};
use crate::mapping::Target;
use crate::{config, loader, stats, store};
use once_cell::sync::Lazy;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// A load is identified by the client's DB and the key.
pub type LoadKey = (i32, Vec<u8>);

static INFLIGHT: Lazy<Mutex<InFlight<LoadKey, Waiter>>> = Lazy::new(Default::default);

fn table() -> MutexGuard<'static, InFlight<LoadKey, Waiter>> {
    INFLIGHT.lock().unwrap_or_else(|p| p.into_inner())
}

pub fn inflight_len() -> usize {
    table().len()
}

/// Removes `key` from the table and returns its waiters. Called by the store thread under the
/// Redis GIL, right after the value is written, so no command can see neither the value nor
/// the load.
pub fn complete(key: &LoadKey) -> Vec<Waiter> {
    table().complete(key)
}

/// Main thread: joins the load of `key` or starts one. `waiter` is `None` for a background
/// load nobody waits on. Beyond `readthrough.max-inflight` loads the waiter gets `BUSY`.
pub fn start(db: i32, key: &[u8], target: Target, waiter: Option<Waiter>) {
    let max = config::max_inflight();
    let lkey: LoadKey = (db, key.to_vec());
    let joined = table().join(lkey.clone(), waiter, max);
    match joined {
        Join::Leader => loader::spawn(run(lkey, target)),
        Join::Follower => stats::count(&stats::COALESCED),
        Join::Full(waiter) => {
            stats::count(&stats::BUSY_REJECTIONS);
            if let Some(w) = waiter {
                w.finish(Arc::new(Err(Error::Busy(max))));
            }
        }
    }
}

async fn run(key: LoadKey, target: Target) {
    let completion = Completion(Some(key));
    let ms = config::timeout_ms() as u64;
    let started = Instant::now();
    let outcome =
        match tokio::time::timeout(Duration::from_millis(ms), loader::find_one(&target)).await {
            Ok(r) => r,
            Err(_) => Err(Error::Timeout(ms)),
        };
    stats::record_load_us(started.elapsed().as_micros() as u64);
    match &outcome {
        Ok(Some(_)) => stats::count(&stats::LOADS),
        Ok(None) => stats::count(&stats::NOT_FOUND),
        Err(_) => stats::count(&stats::LOAD_ERRORS),
    }
    completion.finish(outcome);
}

/// Guarantees that a started load reaches the store thread exactly once.
struct Completion(Option<LoadKey>);

impl Completion {
    fn finish(mut self, outcome: Outcome) {
        if let Some(key) = self.0.take() {
            store::submit(key, outcome);
        }
    }
}

impl Drop for Completion {
    fn drop(&mut self) {
        if let Some(key) = self.0.take() {
            store::submit(key, Err(Error::Internal("the load task stopped".into())));
        }
    }
}
