//! The one place that writes to Redis from a background thread.
//!
//! A finished load is written at once by the loader thread when the Redis GIL is free (Redis
//! idle: no extra thread hop). Otherwise it goes on a channel, and one thread takes the GIL once
//! per batch. Either way each found document is written with `SET key value PX ttl NX`
//! (replicated to replicas and the AOF, refused under OOM), the key leaves the single-flight
//! table, the GIL is released, and only then are the waiters unblocked. Batching keeps lock
//! traffic low when many loads end together.

use crate::error::Error;
use crate::ffi::{Gil, Outcome, Waiter};
use crate::load::{self, Kind, LoadKey};
use crate::{config, stats};
use once_cell::sync::OnceCell;
use redis_module::{CallOptionsBuilder, CallReply, CallResult};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;

struct Finished {
    key: LoadKey,
    kind: Kind,
    outcome: Outcome,
    /// `load::epoch()` when the load started.
    epoch: u64,
}

/// The result of one `RT.MGET`'s loads.
pub struct BatchDone {
    pub db: i32,
    /// Keys found, with their JSON.
    pub found: Vec<(Vec<u8>, String)>,
    /// Keys MongoDB has no document for.
    pub absent: Vec<Vec<u8>>,
    pub waiter: Option<Waiter>,
    pub reply: Result<Vec<Option<Vec<u8>>>, Error>,
    /// `load::epoch()` when the batch started.
    pub epoch: u64,
}

/// Work for the store thread under the GIL, from a background task (change streams, warm-up).
type Job = Box<dyn FnOnce(&Gil) + Send>;

enum Msg {
    One(Finished),
    Batch(BatchDone),
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
        for w in load::complete(&key) {
            w.finish(Arc::clone(&err));
        }
    }
}

/// Hands a finished `RT.MGET` to the store thread.
pub fn submit_batch(done: BatchDone) {
    let msg = Msg::Batch(done);
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
    let writable = !crate::ffi::is_replica(&gil.context());
    for msg in batch {
        match msg {
            Msg::One(f) => replies.push(finish_one(&gil, writable, f)),
            Msg::Batch(b) => {
                finish_batch(&gil, writable, &b);
                batches.push(b);
            }
            Msg::Job(job) => job(&gil),
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

/// Under the GIL: writes one load's result, updates the negative cache, ends the load.
fn finish_one(gil: &Gil, writable: bool, f: Finished) -> (Vec<Waiter>, Arc<Outcome>) {
    // The document changed in MongoDB while it loaded (a change stream said so), or Redis was
    // flushed meanwhile: the waiters get what was read, but it is not cached.
    let changed = load::take_stale(&f.key);
    let stale = changed || f.epoch != load::epoch();
    if stale {
        if matches!(f.outcome, Ok(Some(_))) {
            stats::count(&stats::STORE_SKIPPED);
        }
    } else if writable {
        let ok = catch_unwind(AssertUnwindSafe(|| apply(gil, &f))).unwrap_or(false);
        if matches!(f.outcome, Ok(Some(_))) {
            stats::count(if ok {
                &stats::STORES
            } else {
                &stats::STORE_SKIPPED
            });
        }
    } else if matches!(f.outcome, Ok(Some(_))) {
        stats::count(&stats::STORE_SKIPPED);
    }
    if f.kind == Kind::Refresh {
        let c = if f.outcome.is_ok() {
            &stats::REFRESHES
        } else {
            &stats::REFRESH_ERRORS
        };
        stats::count(c);
    }
    match &f.outcome {
        Ok(found) if !stale => load::set_absent(&f.key, found.is_none()),
        _ => {}
    }
    (load::complete(&f.key), Arc::new(f.outcome))
}

/// Under the GIL: stores the documents an `RT.MGET` found (`SET ... NX`), remembers the absent.
fn finish_batch(gil: &Gil, writable: bool, b: &BatchDone) {
    if b.epoch != load::epoch() {
        // Redis was flushed while the batch loaded: answer it, store nothing.
        stats::add(&stats::STORE_SKIPPED, b.found.len() as u64);
        return;
    }
    for (key, json) in &b.found {
        let ok = writable
            && catch_unwind(AssertUnwindSafe(|| {
                set_value(gil, b.db, key, json, Some(Only::Absent)).is_some()
            }))
            .unwrap_or(false);
        stats::count(if ok {
            &stats::STORES
        } else {
            &stats::STORE_SKIPPED
        });
        load::set_absent(&(b.db, key.clone()), false);
    }
    for key in &b.absent {
        load::set_absent(&(b.db, key.clone()), true);
    }
}

/// Writes the result of one load in its key's DB: a fill stores the document with
/// `SET key json [PX ttl] NX` (a value written meanwhile by someone else wins); a refresh
/// overwrites it, or deletes the key when the document is gone. A failed load writes nothing,
/// so a stale value keeps being served until it expires.
fn apply(gil: &Gil, f: &Finished) -> bool {
    let (db, key) = &f.key;
    let json = match (&f.outcome, f.kind) {
        (Ok(Some(json)), _) => json,
        (Ok(None), Kind::Refresh) => return call(gil, *db, "DEL", &[key.as_slice()]),
        _ => return true,
    };
    let only = (f.kind == Kind::Fill).then_some(Only::Absent);
    set_value(gil, *db, key, json, only).is_some()
}

/// The condition of a `SET`.
#[derive(Clone, Copy)]
pub enum Only {
    /// `NX`: a value written meanwhile by someone else wins.
    Absent,
    /// `XX`: only where the key is cached.
    Present,
}

/// `SET key json [PX ttl] [NX|XX]` with the TTL policy applied. `Some(written)` (false when
/// the condition did not hold), `None` if the command failed.
pub fn set_value(gil: &Gil, db: i32, key: &[u8], json: &str, only: Option<Only>) -> Option<bool> {
    let ttl = config::store_ttl_ms().map(|ms| ms.to_string());
    let mut args: Vec<&[u8]> = vec![key, json.as_bytes()];
    if let Some(ttl) = &ttl {
        args.extend([&b"PX"[..], ttl.as_bytes()]);
    }
    match only {
        Some(Only::Absent) => args.push(b"NX"),
        Some(Only::Present) => args.push(b"XX"),
        None => {}
    }
    call_read(gil, db, "SET", &args, |r| !matches!(r, CallReply::Null(_)))
}

/// Runs a write command in `db`, replicated to replicas and the AOF, refused under OOM.
fn call(gil: &Gil, db: i32, cmd: &str, args: &[&[u8]]) -> bool {
    call_read(gil, db, cmd, args, |_| ()).is_some()
}

/// `call`, and `read` turns the reply into a result; `None` if the command failed.
pub fn call_read<R>(
    gil: &Gil,
    db: i32,
    cmd: &str,
    args: &[&[u8]],
    read: impl FnOnce(&CallReply) -> R,
) -> Option<R> {
    if !gil.select_db(db) {
        return None;
    }
    let ctx = gil.context();
    let opts = CallOptionsBuilder::new()
        .replicate()
        .errors_as_replies()
        .verify_oom()
        .build();
    let res: CallResult = ctx.call_ext(cmd, &opts, args);
    match res {
        Ok(reply) => Some(read(&reply)),
        Err(e) => {
            let msg = e.to_utf8_string().unwrap_or_default();
            // In Redis Cluster, keys of slots another node serves are that node's business
            // (change streams and warm-ups run on every master): expected, not worth a log line.
            if !msg.contains("non local key") {
                ctx.log_warning(&format!("readthrough: could not write ({cmd}): {msg}"));
            }
            None
        }
    }
}
