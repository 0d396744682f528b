//! The one place that writes to Redis from a background thread.
//!
//! A finished load is written at once by the loader thread when the Redis GIL is free (Redis
//! idle: no extra thread hop). Otherwise it goes on a channel, and one thread takes the GIL once
//! per batch. Either way each found document is written with `SET key value PX ttl NX`
//! (replicated to replicas and the AOF, refused under OOM), the key leaves the single-flight
//! table, the GIL is released, and only then are the waiters unblocked. Batching keeps lock
//! traffic low when many loads end together.

use crate::core::error::{Error, Outcome};
use crate::core::format::{Loaded, Slot};
use crate::engine::cache::{Cache, RedisCache};
use crate::engine::cache_state::{self, LoadKey};
use crate::redis::blocking::Waiter;
use crate::redis::gil::Gil;
use crate::redis::write::Only;
use crate::state::counters;
use once_cell::sync::OnceCell;
use redis_module::Context;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;

/// What a load does with its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A miss: store the value unless one appeared meanwhile (`SET ... NX`).
    Fill,
    /// `RT.REFRESH` or a read in the grace window: overwrite the value, delete it if the
    /// document is gone.
    Refresh,
}

struct Finished {
    key: LoadKey,
    kind: Kind,
    outcome: Outcome,
    /// `cache_state::epoch()` when the load started.
    epoch: u64,
}

/// The result of one `RT.MGET`'s loads.
pub struct BatchDone {
    pub db: i32,
    /// Keys found, with their values.
    pub found: Vec<(Vec<u8>, Loaded)>,
    /// Keys MongoDB has no document for.
    pub absent: Vec<Vec<u8>>,
    pub waiter: Option<Waiter>,
    pub reply: Result<Vec<Slot>, Error>,
    /// `cache_state::epoch()` when the batch started.
    pub epoch: u64,
    /// Its keys count as loading until it is stored and answered.
    pub _slots: cache_state::BatchSlots,
}

/// Work for the store thread under the GIL, from a background task (change streams, warm-up).
type Job = Box<dyn FnOnce(&Gil) + Send>;

enum Msg {
    One(Finished),
    Batch(Box<BatchDone>),
    Job(Job),
}

static SENDER: OnceCell<Sender<Msg>> = OnceCell::new();

const BATCH: usize = 256;

pub fn start_thread() -> Result<(), String> {
    let (tx, rx) = channel();
    std::thread::Builder::new()
        .name("readthrough-store".into())
        .spawn(move || run(rx))
        .map_err(|e| format!("cannot start the store thread: {e}"))?;
    SENDER
        .set(tx)
        .map_err(|_| "store thread started twice".to_owned())
}

/// Hands a finished load to the store thread.
pub fn submit(key: LoadKey, kind: Kind, outcome: Outcome, epoch: u64) {
    let msg = Msg::One(Finished {
        key,
        kind,
        outcome,
        epoch,
    });
    // Fast path: Redis is idle (the main thread is waiting for events), so write here and
    // save the hop to the store thread.
    if let Some(gil) = Gil::try_lock() {
        process(gil, vec![msg]);
        return;
    }
    let sent = SENDER.get().map(|tx| tx.send(msg));
    if let Some(Err(std::sync::mpsc::SendError(Msg::One(Finished { key, .. })))) = sent {
        // The store thread is gone (it never should be): still answer every waiter.
        let err = Arc::new(Err(Error::Internal("store thread stopped".into())));
        for w in cache_state::complete(&key) {
            w.finish(Arc::clone(&err));
        }
    }
}

/// Main thread, inside a callback Redis gave `ctx` (an inline load's timer): writes one load's
/// result and answers its waiters there, with no thread hop.
pub fn finish_here(ctx: &Context, key: LoadKey, kind: Kind, outcome: Outcome, epoch: u64) {
    let msg = Msg::One(Finished {
        key,
        kind,
        outcome,
        epoch,
    });
    process(Gil::held_by(ctx), vec![msg]);
}

/// Hands a finished `RT.MGET` to the store thread.
pub fn submit_batch(done: BatchDone) {
    let msg = Msg::Batch(Box::new(done));
    if let Some(tx) = SENDER.get() {
        // If the thread is gone the message, and with it the waiter, is dropped: the waiter
        // then replies an internal error.
        let _ = tx.send(msg);
    }
}

/// Runs `f` under the Redis GIL on the store thread (batched with other writes: one short
/// lock hold) and resolves to its result; `None` if the store thread is gone or `f` panicked.
pub async fn with_gil<R: Send + 'static>(f: impl FnOnce(&Gil) -> R + Send + 'static) -> Option<R> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move |gil| {
        if let Ok(r) = catch_unwind(AssertUnwindSafe(|| f(gil))) {
            let _ = tx.send(r);
        }
    });
    SENDER.get()?.send(Msg::Job(job)).ok()?;
    rx.await.ok()
}

fn run(rx: Receiver<Msg>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(f) => batch.push(f),
                Err(_) => break,
            }
        }
        process(Gil::lock(), batch);
    }
}

/// Writes a batch under `gil`, releases it, then answers the waiters.
fn process(gil: Gil, batch: Vec<Msg>) {
    let mut replies: Vec<(Vec<Waiter>, Arc<Outcome>)> = Vec::with_capacity(batch.len());
    let mut batches = Vec::new();
    {
        let mut cache = RedisCache(&gil);
        for msg in batch {
            match msg {
                Msg::One(f) => replies.push(finish_one(&mut cache, f)),
                Msg::Batch(b) => {
                    // A panic here must not lose the batch's waiter: it is answered below.
                    let stored = catch_unwind(AssertUnwindSafe(|| finish_batch(&mut cache, &b)));
                    if stored.is_err() {
                        log_panic("storing an RT.MGET batch");
                    }
                    batches.push(b);
                }
                Msg::Job(job) => job(&gil),
            }
        }
    }
    drop(gil);
    for b in batches {
        if let Some(w) = b.waiter {
            w.finish_many(b.reply);
        }
    }
    for (waiters, outcome) in replies {
        for w in waiters {
            w.finish(Arc::clone(&outcome));
        }
    }
}

fn log_panic(what: &str) {
    redis_module::logging::log_warning(format!("readthrough: caught a panic {what}").as_str());
}

/// Under the GIL: writes one load's result, updates the negative cache, ends the load.
fn finish_one(cache: &mut impl Cache, f: Finished) -> (Vec<Waiter>, Arc<Outcome>) {
    // The document changed in MongoDB while it loaded (a change stream said so), or Redis was
    // flushed meanwhile: the waiters get what was read, but it is not cached.
    let changed = cache_state::take_stale(&f.key);
    let stale = changed || f.epoch != cache_state::epoch();
    let found = matches!(f.outcome, Ok(Some(_)));
    if stale || !cache.writable() {
        if found {
            counters::count(&counters::STORE_SKIPPED);
        }
    } else {
        let ok = catch_unwind(AssertUnwindSafe(|| apply(cache, &f))).unwrap_or_else(|_| {
            log_panic("storing a loaded value");
            false
        });
        if found {
            counters::count(if ok {
                &counters::STORES
            } else {
                &counters::STORE_SKIPPED
            });
        }
    }
    if f.kind == Kind::Refresh {
        let c = if f.outcome.is_ok() {
            &counters::REFRESHES
        } else {
            &counters::REFRESH_ERRORS
        };
        counters::count(c);
    }
    match &f.outcome {
        Ok(found) if !stale => cache_state::set_absent(&f.key, found.is_none()),
        _ => {}
    }
    (cache_state::complete(&f.key), Arc::new(f.outcome))
}

/// Under the GIL: stores the documents an `RT.MGET` found (`SET ... NX`), remembers the absent.
fn finish_batch(cache: &mut impl Cache, b: &BatchDone) {
    if b.epoch != cache_state::epoch() {
        // Redis was flushed while the batch loaded: answer it, store nothing.
        counters::add(&counters::STORE_SKIPPED, b.found.len() as u64);
        return;
    }
    let writable = cache.writable();
    for (key, value) in &b.found {
        let ok = writable && cache.set(b.db, key, value, Some(Only::Absent)) == Some(true);
        counters::count(if ok {
            &counters::STORES
        } else {
            &counters::STORE_SKIPPED
        });
        cache_state::set_absent(&(b.db, key.clone()), false);
    }
    for key in &b.absent {
        cache_state::set_absent(&(b.db, key.clone()), true);
    }
}

/// Writes the result of one load in its key's DB: a fill stores the document with
/// `SET key json [PX ttl] NX` or its format's equivalent (a value written meanwhile by someone
/// else wins); a refresh overwrites it (unless the key holds another type), or deletes the key
/// when the document is gone. A failed load writes nothing, so a stale value keeps being served
/// until it expires.
fn apply(cache: &mut impl Cache, f: &Finished) -> bool {
    let (db, key) = &f.key;
    let value = match (&f.outcome, f.kind) {
        (Ok(Some(value)), _) => value,
        (Ok(None), Kind::Refresh) => return cache.del(*db, &[key.as_slice()]).is_some(),
        _ => return true,
    };
    let only = (f.kind == Kind::Fill).then_some(Only::Absent);
    cache.set(*db, key, value, only) == Some(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::format::Value;
    use crate::engine::cache::MemCache;

    fn s(text: &str) -> Option<Loaded> {
        Some(Value::String(text.into()).into())
    }

    fn finished(key: &str, kind: Kind, outcome: Outcome) -> Finished {
        Finished {
            key: (0, key.as_bytes().to_vec()),
            kind,
            outcome,
            epoch: cache_state::epoch(),
        }
    }

    #[test]
    fn a_fill_never_overwrites_and_a_refresh_overwrites_or_deletes() {
        let mut cache = MemCache::default();
        cache.put(0, "t:1", "mine");
        let (_, out) = finish_one(&mut cache, finished("t:1", Kind::Fill, Ok(s("db"))));
        assert_eq!(
            cache.get(0, "t:1"),
            Some("mine"),
            "NX: a value written meanwhile wins"
        );
        assert_eq!(*out, Ok(s("db")), "the waiters get what was read");
        finish_one(&mut cache, finished("t:1", Kind::Refresh, Ok(s("new"))));
        assert_eq!(cache.get(0, "t:1"), Some("new"));
        finish_one(&mut cache, finished("t:1", Kind::Refresh, Ok(None)));
        assert_eq!(
            cache.get(0, "t:1"),
            None,
            "a refresh of a gone document deletes"
        );
        let e = Err(Error::Timeout(5));
        cache.put(0, "t:2", "stale");
        finish_one(&mut cache, finished("t:2", Kind::Refresh, e));
        assert_eq!(
            cache.get(0, "t:2"),
            Some("stale"),
            "a failed load writes nothing"
        );
    }

    #[test]
    fn nothing_is_stored_on_a_replica_or_after_a_flush_and_absence_is_remembered() {
        let mut replica = MemCache {
            replica: true,
            ..Default::default()
        };
        finish_one(&mut replica, finished("r:1", Kind::Fill, Ok(s("v"))));
        assert!(replica.values.is_empty());
        let mut cache = MemCache::default();
        let mut old = finished("f:1", Kind::Fill, Ok(s("v")));
        old.epoch = cache_state::epoch().wrapping_sub(1);
        finish_one(&mut cache, old);
        assert!(
            cache.values.is_empty(),
            "a load from before a flush is not stored"
        );
        finish_one(&mut cache, finished("n:1", Kind::Fill, Ok(None)));
        assert!(cache_state::known_absent(0, b"n:1"));
        finish_one(&mut cache, finished("n:1", Kind::Fill, Ok(s("v"))));
        assert!(
            !cache_state::known_absent(0, b"n:1"),
            "found again: forgotten"
        );
    }

    #[test]
    fn a_key_of_another_type_is_never_overwritten() {
        let mut cache = MemCache::default();
        cache.put(0, "h:1", "a string");
        let hash: Loaded = Value::Hash(vec![("a".into(), "b".into())]).into();
        finish_one(
            &mut cache,
            finished("h:1", Kind::Refresh, Ok(Some(hash.clone()))),
        );
        finish_one(
            &mut cache,
            finished("h:1", Kind::Fill, Ok(Some(hash.clone()))),
        );
        assert_eq!(cache.get(0, "h:1"), Some("a string"));
        finish_one(
            &mut cache,
            finished("h:2", Kind::Fill, Ok(Some(hash.clone()))),
        );
        assert_eq!(cache.values.get(&(0, b"h:2".to_vec())), Some(&hash.value));
    }
}
