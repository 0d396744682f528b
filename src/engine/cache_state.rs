//! The cache state the module keeps beside Redis, and its one owner: the single-flight table
//! (loads in flight and their waiters), the negative cache, the loads whose document changed
//! meanwhile, and the flush epoch. Every function takes its lock briefly; none waits on I/O.

use crate::core::negative_cache::NegativeCache;
use crate::core::single_flight::{InFlight, Join};
use crate::redis::blocking::Waiter;
use crate::state::settings;
use once_cell::sync::Lazy;
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

/// A load is identified by the client's DB and the key.
pub type LoadKey = (i32, Vec<u8>);

static INFLIGHT: Lazy<Mutex<InFlight<LoadKey, Waiter>>> = Lazy::new(Default::default);
static NEGATIVE: Lazy<Mutex<NegativeCache<LoadKey>>> = Lazy::new(Default::default);
/// Loads in flight whose document changed meanwhile: their result must not be cached.
static STALE: Lazy<Mutex<HashSet<LoadKey>>> = Lazy::new(Default::default);

fn negative() -> MutexGuard<'static, NegativeCache<LoadKey>> {
    NEGATIVE.lock().unwrap_or_else(|p| p.into_inner())
}

/// Main thread: true if `key` is remembered as absent from MongoDB.
pub fn known_absent(db: i32, key: &[u8]) -> bool {
    negative().contains(&(db, key.to_vec()), Instant::now())
}

/// Store thread: remember or forget that `key` is absent.
pub fn set_absent(key: &LoadKey, absent: bool) {
    let mut n = negative();
    if absent {
        let ttl = settings::negative_ttl(&key.1);
        if !ttl.is_zero() {
            n.insert(key.clone(), ttl, Instant::now(), settings::negative_max());
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
static FLUSHES: AtomicU64 = AtomicU64::new(0);

pub fn epoch() -> u64 {
    FLUSHES.load(Ordering::SeqCst)
}

/// Main thread, under the GIL, after FLUSHALL or FLUSHDB.
pub fn flushed() {
    FLUSHES.fetch_add(1, Ordering::SeqCst);
    forget_all_absent();
}

/// Forgets every negative entry (FLUSHALL, FLUSHDB).
pub fn forget_all_absent() {
    negative().clear();
}

fn table() -> MutexGuard<'static, InFlight<LoadKey, Waiter>> {
    INFLIGHT.lock().unwrap_or_else(|p| p.into_inner())
}

/// Keys loading now: in single-flight loads and in `RT.MGET` batches (`readthrough.max-inflight`
/// bounds both).
pub fn loads_in_flight() -> usize {
    table().len() + BATCHED.load(Ordering::Relaxed)
}

/// Keys loading in `RT.MGET` batches, which do not join the single-flight table.
static BATCHED: AtomicUsize = AtomicUsize::new(0);

/// The keys of one batch in flight: counted from `new` to drop (also when the batch's task
/// stops first).
pub struct BatchSlots(usize);

impl BatchSlots {
    pub fn new(keys: usize) -> BatchSlots {
        BATCHED.fetch_add(keys, Ordering::Relaxed);
        BatchSlots(keys)
    }
}

impl Drop for BatchSlots {
    fn drop(&mut self) {
        BATCHED.fetch_sub(self.0, Ordering::Relaxed);
    }
}

/// Removes `key` from the table and returns its waiters. Called by the store thread under the
/// Redis GIL, right after the value is written, so no command can see neither the value nor
/// the load.
pub fn complete(key: &LoadKey) -> Vec<Waiter> {
    table().complete(key)
}

/// Main thread: joins the load of `key` or leads a new one (at most `max` keys loading,
/// batches included).
pub fn join(key: LoadKey, waiter: Option<Waiter>, max: usize) -> Join<Waiter> {
    let room = max.saturating_sub(BATCHED.load(Ordering::Relaxed));
    table().join(key, waiter, room)
}

/// True while a load of `key` is in flight.
pub fn is_loading(key: &LoadKey) -> bool {
    table().is_loading(key)
}
