//! The one place that writes to Redis from a background thread.
//!
//! Finished loads arrive on a channel; one thread takes the Redis GIL once per batch, writes
//! each found document with `SET key value PX ttl NX` (replicated to replicas and the AOF,
//! refused under OOM), removes the key from the single-flight table, releases the GIL and only
//! then unblocks the waiters. Batching keeps lock traffic low when many loads end together.

use crate::error::Error;
use crate::ffi::{Gil, Outcome, Waiter};
use crate::load::{self, LoadKey};
use crate::{config, stats};
use once_cell::sync::OnceCell;
use redis_module::{CallOptionsBuilder, CallResult, ContextFlags};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;

struct Finished {
    key: LoadKey,
    outcome: Outcome,
}

static SENDER: OnceCell<Sender<Finished>> = OnceCell::new();

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

pub fn inflight_len() -> usize {
    load::inflight_len()
}

/// Hands a finished load to the store thread.
pub fn submit(key: LoadKey, outcome: Outcome) {
    let sent = SENDER
        .get()
        .map(|tx| tx.send(Finished { key, outcome }).map_err(|e| e.0.key));
    if let Some(Err(key)) = sent {
        // The store thread is gone (it never should be): still answer every waiter.
        let err = Arc::new(Err(Error::Internal("store thread stopped".into())));
        for w in load::complete(&key) {
            w.finish(Arc::clone(&err));
        }
    }
}

fn run(rx: Receiver<Finished>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(f) => batch.push(f),
                Err(_) => break,
            }
        }
        let mut replies: Vec<(Vec<Waiter>, Arc<Outcome>)> = Vec::with_capacity(batch.len());
        {
            let gil = Gil::lock();
            let writable = !gil.context().get_flags().contains(ContextFlags::SLAVE);
            for f in batch {
                if let Ok(Some(json)) = &f.outcome {
                    let written = writable
                        && catch_unwind(AssertUnwindSafe(|| write(&gil, &f.key, json)))
                            .unwrap_or(false);
                    stats::count(if written {
                        &stats::STORES
                    } else {
                        &stats::STORE_SKIPPED
                    });
                }
                replies.push((load::complete(&f.key), Arc::new(f.outcome)));
            }
        }
        for (waiters, outcome) in replies {
            if matches!(*outcome, Err(Error::Timeout(_))) {
                stats::add(&stats::TIMEOUTS, waiters.len() as u64);
            }
            for w in waiters {
                w.finish(Arc::clone(&outcome));
            }
        }
    }
}

/// `SET key json [PX ttl] NX` in the key's DB: a value written meanwhile by someone else wins.
fn write(gil: &Gil, (db, key): &LoadKey, json: &str) -> bool {
    if !gil.select_db(*db) {
        return false;
    }
    let ctx = gil.context();
    let opts = CallOptionsBuilder::new()
        .replicate()
        .errors_as_replies()
        .verify_oom()
        .build();
    let ttl_ms = config::ttl_ms();
    let ttl = ttl_ms.to_string();
    let res: CallResult = if ttl_ms > 0 {
        ctx.call_ext(
            "SET",
            &opts,
            &[
                key.as_slice(),
                json.as_bytes(),
                b"PX",
                ttl.as_bytes(),
                b"NX",
            ][..],
        )
    } else {
        ctx.call_ext("SET", &opts, &[key.as_slice(), json.as_bytes(), b"NX"][..])
    };
    match res {
        Ok(_) => true,
        Err(e) => {
            ctx.log_warning(&format!(
                "readthrough: could not store a loaded value: {}",
                e.to_utf8_string().unwrap_or_default()
            ));
            false
        }
    }
}
