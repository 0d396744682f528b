//! The one place that writes to Redis from a background thread.
//!
//! Finished loads arrive on a channel; one thread takes the Redis GIL once per batch, writes
//! each found document with `SET key value PX ttl NX` (replicated to replicas and the AOF,
//! refused under OOM), removes the key from the single-flight table, releases the GIL and only
//! then unblocks the waiters. Batching keeps lock traffic low when many loads end together.

use crate::error::Error;
use crate::ffi::{Gil, Outcome, Waiter};
use crate::load::{self, Kind, LoadKey};
use crate::{config, stats};
use once_cell::sync::OnceCell;
use redis_module::{CallOptionsBuilder, CallResult, ContextFlags};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;

struct Finished {
    key: LoadKey,
    kind: Kind,
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
pub fn submit(key: LoadKey, kind: Kind, outcome: Outcome) {
    let sent = SENDER.get().map(|tx| {
        tx.send(Finished { key, kind, outcome })
            .map_err(|e| e.0.key)
    });
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
                if writable {
                    let ok = catch_unwind(AssertUnwindSafe(|| apply(&gil, &f))).unwrap_or(false);
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
                if let Ok(found) = &f.outcome {
                    load::set_absent(&f.key, found.is_none());
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
    let ttl = config::store_ttl_ms().map(|ms| ms.to_string());
    let mut args: Vec<&[u8]> = vec![key.as_slice(), json.as_bytes()];
    if let Some(ttl) = &ttl {
        args.extend([&b"PX"[..], ttl.as_bytes()]);
    }
    if f.kind == Kind::Fill {
        args.push(b"NX");
    }
    call(gil, *db, "SET", &args)
}

/// Runs a write command in `db`, replicated to replicas and the AOF, refused under OOM.
fn call(gil: &Gil, db: i32, cmd: &str, args: &[&[u8]]) -> bool {
    if !gil.select_db(db) {
        return false;
    }
    let ctx = gil.context();
    let opts = CallOptionsBuilder::new()
        .replicate()
        .errors_as_replies()
        .verify_oom()
        .build();
    let res: CallResult = ctx.call_ext(cmd, &opts, args);
    match res {
        Ok(_) => true,
        Err(e) => {
            ctx.log_warning(&format!(
                "readthrough: could not write a loaded value ({cmd}): {}",
                e.to_utf8_string().unwrap_or_default()
            ));
            false
        }
    }
}
