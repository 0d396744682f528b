//! One load: join the single-flight table on the main thread, run the MongoDB query on the
//! loader runtime, hand the outcome to the store thread.
//!
//! A load always ends: the query is bounded by `readthrough.timeout`, and a task that dies
//! before it has an outcome (a panic) still completes its key with an internal error through
//! `Completion`'s drop, so no waiter is left blocked and no key stays "in flight" for ever.

use crate::deadline::Deadline;
use crate::error::Error;
use crate::ffi::{Outcome, Waiter};
use crate::inflight::{InFlight, Join};
use crate::mapping::Target;
use crate::negative::NegativeCache;
use crate::{config, loader, stats, store};
use once_cell::sync::Lazy;
use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// A load is identified by the client's DB and the key.
pub type LoadKey = (i32, Vec<u8>);

static INFLIGHT: Lazy<Mutex<InFlight<LoadKey, Waiter>>> = Lazy::new(Default::default);
static NEGATIVE: Lazy<Mutex<NegativeCache<LoadKey>>> = Lazy::new(Default::default);
/// Loads in flight whose document changed meanwhile: their result must not be cached.
static STALE: Lazy<Mutex<HashSet<LoadKey>>> = Lazy::new(Default::default);

/// What a load does with its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A miss: store the value unless one appeared meanwhile (`SET ... NX`).
    Fill,
    /// `RT.REFRESH` or a read in the grace window: overwrite the value, delete it if the
    /// document is gone.
    Refresh,
}

fn negative() -> MutexGuard<'static, NegativeCache<LoadKey>> {
    NEGATIVE.lock().unwrap_or_else(|p| p.into_inner())
}

/// Main thread: true if `key` is remembered as absent from MongoDB.
pub fn known_absent(db: i32, key: &[u8]) -> bool {
    negative().contains(&(db, key.to_vec()), std::time::Instant::now())
}

/// Store thread: remember or forget that `key` is absent.
pub fn set_absent(key: &LoadKey, absent: bool) {
    let mut n = negative();
    if absent {
        let ttl = config::negative_ttl();
        if !ttl.is_zero() {
            n.insert(
                key.clone(),
                ttl,
                std::time::Instant::now(),
                config::negative_max(),
            );
        }
    } else {
        n.remove(key);
    }
}

/// Forgets a negative entry; true if there was one.
pub fn forget_absent(db: i32, key: &[u8]) -> bool {
    negative().remove(&(db, key.to_vec()))
}

/// Forgets the negative entries of every key that starts with `prefix`, in every DB.
pub fn forget_absent_prefix(prefix: &[u8]) -> usize {
    negative().remove_where(|(_, k)| k.starts_with(prefix))
}

/// Under the GIL: the document of `key` changed; a load of it in flight read it before the
/// change, so its result will be answered but not stored.
pub fn mark_stale(key: LoadKey) {
    if table().is_loading(&key) {
        STALE.lock().unwrap_or_else(|p| p.into_inner()).insert(key);
    }
}

/// Under the GIL, when a load ends: true if it was marked stale (and forgets the mark).
pub fn take_stale(key: &LoadKey) -> bool {
    let mut s = STALE.lock().unwrap_or_else(|p| p.into_inner());
    !s.is_empty() && s.remove(key)
}

/// Flushes so far (FLUSHALL, FLUSHDB). A load remembers the count when it starts; one that
/// started before a flush is answered but not stored, so it cannot bring back flushed data.
static FLUSHES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

pub fn epoch() -> u64 {
    FLUSHES.load(std::sync::atomic::Ordering::SeqCst)
}

/// Main thread, under the GIL, after FLUSHALL or FLUSHDB.
pub fn flushed() {
    FLUSHES.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    forget_all_absent();
}

/// Forgets every negative entry (FLUSHALL, FLUSHDB).
pub fn forget_all_absent() {
    negative().clear();
}

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

/// Main thread: starts a background load of a mapped `key` nobody waits on, unless it is
/// loading already, known absent, or unmapped (then nothing happens).
pub fn prefetch(db: i32, key: &[u8]) {
    let Ok(target) = config::resolve(key) else {
        return;
    };
    if table().is_loading(&(db, key.to_vec())) || known_absent(db, key) {
        return;
    }
    if start(db, key, target, None, Kind::Fill) {
        stats::count(&stats::PREFETCHES);
    }
}

/// Main thread: joins the load of `key` or starts one. `waiter` is `None` for a background
/// load nobody waits on. Beyond `readthrough.max-inflight` loads the waiter gets `BUSY`.
/// Returns false if the load was refused for `BUSY`.
pub fn start(db: i32, key: &[u8], target: Target, waiter: Option<Waiter>, kind: Kind) -> bool {
    let max = config::max_inflight();
    let lkey: LoadKey = (db, key.to_vec());
    let waits = waiter.is_some();
    let joined = table().join(lkey.clone(), waiter, max);
    match joined {
        Join::Leader => loader::spawn(run(lkey, target, kind, epoch())),
        Join::Follower if waits => stats::count(&stats::COALESCED),
        Join::Follower => {}
        Join::Full(waiter) => {
            stats::count(&stats::BUSY_REJECTIONS);
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
    let ms = config::timeout_ms() as u64;
    let started = Instant::now();
    let outcome =
        match tokio::time::timeout(Duration::from_millis(ms), crate::batch::load(target)).await {
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

/// One key of an `RT.MGET` that missed: its position in the reply, the key, its target.
pub struct BatchMiss {
    pub index: usize,
    pub key: Vec<u8>,
    pub target: Target,
}

/// Main thread: loads the misses of one `RT.MGET` with one query per mapping, then answers
/// `waiter` (if any) with `values` completed. Batches do not join the single-flight table.
pub fn start_batch(
    db: i32,
    misses: Vec<BatchMiss>,
    values: Vec<Option<Vec<u8>>>,
    waiter: Option<Waiter>,
) {
    loader::spawn(run_batch(db, misses, values, waiter, epoch()));
}

async fn run_batch(
    db: i32,
    misses: Vec<BatchMiss>,
    mut values: Vec<Option<Vec<u8>>>,
    waiter: Option<Waiter>,
    epoch: u64,
) {
    // Group by mapping, keeping the order of first appearance.
    let mut groups: Vec<(Arc<crate::mapping::Mapping>, Vec<&BatchMiss>)> = Vec::new();
    for m in &misses {
        match groups
            .iter_mut()
            .find(|(g, _)| Arc::ptr_eq(g, &m.target.mapping))
        {
            Some((_, v)) => v.push(m),
            None => groups.push((Arc::clone(&m.target.mapping), vec![m])),
        }
    }
    let deadline = Deadline::after_ms(config::timeout_ms() as u64);
    let started = Instant::now();
    let queries = groups.iter().map(|(mapping, items)| {
        let ids: Vec<&str> = items.iter().map(|m| m.target.id.as_str()).collect();
        async move { loader::find_many(mapping, &ids, deadline).await }
    });
    let results = futures_util::future::join_all(queries).await;
    stats::record_load_us(started.elapsed().as_micros() as u64);
    let mut found = Vec::new();
    let mut absent = Vec::new();
    let mut error = None;
    for ((_, items), result) in groups.iter().zip(results) {
        match result {
            Ok(docs) => {
                for m in items {
                    match docs.get(crate::mapping::canonical_id(&m.target.id).as_ref()) {
                        Some(json) => {
                            stats::count(&stats::LOADS);
                            values[m.index] = Some(json.clone().into_bytes());
                            found.push((m.key.clone(), json.clone()));
                        }
                        None => {
                            stats::count(&stats::NOT_FOUND);
                            absent.push(m.key.clone());
                        }
                    }
                }
            }
            Err(e) => {
                stats::count(&stats::LOAD_ERRORS);
                error = Some(e);
            }
        }
    }
    let reply = match error {
        Some(e) => Err(e),
        None => Ok(values),
    };
    store::submit_batch(store::BatchDone {
        db,
        found,
        absent,
        waiter,
        reply,
        epoch,
    });
}
