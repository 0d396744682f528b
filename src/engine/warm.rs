//! Warm-up: `RT.WARM prefix [LIMIT n]` and `readthrough.warm-on-load`.
//!
//! A background task reads the mapping's collection through one cursor and writes the
//! documents in chunks of `CHUNK` keys, one short GIL hold per chunk on the store thread, with
//! `SET ... PX ttl NX` (a value cached meanwhile wins). The next chunk is read only when the
//! previous one is written, so MongoDB's pace sets the rate and Redis never queues work.
//! Progress is in `INFO readthrough` (`warm_N:` lines).

use crate::core::error::{show_key, Error};
use crate::core::invalidation::key_of;
use crate::core::mapping::Mapping;
use crate::engine::cache::{Cache, RedisCache};
use crate::engine::{cache_state, changes, store};
use crate::mongo::client::{client, redact_error};
use crate::mongo::runtime;
use crate::redis::gil::Gil;
use crate::redis::write::Only;
use crate::state::{fault, id_index, settings};
use futures_util::{FutureExt, TryStreamExt};
use mongodb::action::Action;
use mongodb::bson::{doc, Document};
use once_cell::sync::Lazy;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

const CHUNK: usize = 500;

pub struct Warm {
    prefix: String,
    db: i32,
    loaded: AtomicU64,
    skipped: AtomicU64,
    /// Written: not already cached, and (in Redis Cluster) of a slot this node serves.
    stored: AtomicU64,
    total: AtomicU64,
    running: AtomicBool,
    error: Mutex<Option<String>>,
    started: Instant,
    millis: AtomicU64,
}

static WARMS: Lazy<Mutex<Vec<Arc<Warm>>>> = Lazy::new(Default::default);

fn warms() -> std::sync::MutexGuard<'static, Vec<Arc<Warm>>> {
    WARMS.lock().unwrap_or_else(|p| p.into_inner())
}

/// Starts warming the mapping with `prefix` into `db`. Refused for an unknown prefix, a `many`
/// mapping, and while a warm-up of the same prefix runs.
pub fn start(prefix: &str, limit: Option<u64>, db: i32) -> Result<(), Error> {
    let mappings = settings::mappings();
    let Some(mapping) = mappings.by_prefix(prefix) else {
        return Err(Error::NoPrefix(show_key(prefix.as_bytes())));
    };
    if mapping.many.is_some() {
        return Err(Error::BadKey(format!(
            "RT.WARM: mapping '{}' holds query results ('many'): it has no finite set of keys \
             to warm",
            show_key(prefix.as_bytes())
        )));
    }
    let w = {
        let mut all = warms();
        if all
            .iter()
            .any(|w| w.prefix == prefix && w.running.load(Ordering::SeqCst))
        {
            return Err(Error::WarmRunning(show_key(prefix.as_bytes())));
        }
        all.retain(|w| w.prefix != prefix);
        let w = Arc::new(Warm {
            prefix: prefix.to_owned(),
            db,
            loaded: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            stored: AtomicU64::new(0),
            total: AtomicU64::new(0),
            running: AtomicBool::new(true),
            error: Mutex::new(None),
            started: Instant::now(),
            millis: AtomicU64::new(0),
        });
        all.push(Arc::clone(&w));
        w
    };
    let mapping = Arc::clone(mapping);
    // Now, on the main thread where flushes happen: a flush at any later moment (even while
    // MongoDB is still answering the first query) stops this warm-up.
    let epoch = cache_state::epoch();
    runtime::spawn(async move {
        let _done = Done(Arc::clone(&w));
        // A panic ends this warm-up with an error line in INFO; `Done` marks it finished, so
        // the next RT.WARM of the prefix is not refused as BUSY.
        let result = AssertUnwindSafe(run(&w, &mapping, limit, epoch))
            .catch_unwind()
            .await
            .unwrap_or_else(|_| Err(Error::Internal("a panic in the warm-up".into())));
        if let Err(e) = result {
            redis_module::logging::log_warning(
                format!("readthrough: warm-up of {} stopped: {e}", w.prefix).as_str(),
            );
            *w.error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
        }
    });
    Ok(())
}

/// Marks a warm-up finished when its task ends, however it ends.
struct Done(Arc<Warm>);

impl Drop for Done {
    fn drop(&mut self) {
        let w = &self.0;
        w.millis
            .store(w.started.elapsed().as_millis() as u64, Ordering::Relaxed);
        w.running.store(false, Ordering::SeqCst);
    }
}

/// `epoch`: the flush count when the warm-up was asked for.
async fn run(w: &Warm, m: &Mapping, limit: Option<u64>, epoch: u64) -> Result<(), Error> {
    fault::maybe_panic("warm-up");
    let client = client().await?;
    let coll = client.database(&m.db).collection::<Document>(&m.collection);
    let count = coll
        .estimated_document_count()
        .await
        .map_err(|e| Error::Backend(redact_error(&e)))?;
    w.total
        .store(limit.map_or(count, |l| l.min(count)), Ordering::Relaxed);
    let mut find = coll
        .find(doc! {})
        .batch_size(1000)
        .optional(m.projection(), |f, p| f.projection(p));
    if let Some(l) = limit {
        find = find.limit(l.min(i64::MAX as u64) as i64);
    }
    let mut cursor = find.await.map_err(|e| Error::Backend(redact_error(&e)))?;
    let mut chunk = Vec::with_capacity(CHUNK);
    // The chunk before this one, encoding and being stored while this one is read.
    let mut pending: Option<tokio::task::JoinHandle<Result<(u64, u64), Error>>> = None;
    loop {
        let doc = cursor
            .try_next()
            .await
            .map_err(|e| Error::Backend(redact_error(&e)))?;
        let end = doc.is_none();
        if let Some(doc) = doc {
            match key_of(m, &doc) {
                Some(key) => {
                    id_index::remember(m, &doc);
                    chunk.push((key, doc));
                }
                None => {
                    w.skipped.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        if chunk.len() >= CHUNK || (end && !chunk.is_empty()) {
            if let Some(previous) = pending.take() {
                count_stored(w, previous.await)?;
            }
            let docs = std::mem::take(&mut chunk);
            let job = encode_and_store(m.clone(), docs, w.db, epoch);
            pending = Some(runtime::handle().spawn(job));
        }
        if end {
            if let Some(previous) = pending.take() {
                count_stored(w, previous.await)?;
            }
            return Ok(());
        }
    }
}

/// Adds a stored chunk to the warm-up's progress, or ends the warm-up with its error.
fn count_stored(
    w: &Warm,
    done: Result<Result<(u64, u64), Error>, tokio::task::JoinError>,
) -> Result<(), Error> {
    let (stored, n) = done.map_err(|_| Error::Internal("a warm-up chunk stopped".into()))??;
    w.stored.fetch_add(stored, Ordering::Relaxed);
    w.loaded.fetch_add(n, Ordering::Relaxed);
    Ok(())
}

/// Encodes a chunk in the mapping's format on a blocking thread (CPU work, off the loader
/// thread that serves misses), then stores what is absent in one hold of the Redis lock.
/// `(stored, documents)`.
async fn encode_and_store(
    m: Mapping,
    docs: Vec<(String, Document)>,
    db: i32,
    epoch: u64,
) -> Result<(u64, u64), Error> {
    let n = docs.len() as u64;
    let batch = tokio::task::spawn_blocking(move || {
        docs.into_iter()
            .map(|(key, doc)| (key, m.encode(doc)))
            .collect::<Vec<_>>()
    })
    .await
    .map_err(|_| Error::Internal("a panic while encoding a warm-up chunk".into()))?;
    let written = store::with_gil(move |gil: &Gil| {
        let mut cache = RedisCache(gil);
        if !cache.writable() {
            return Err("this node became a replica");
        }
        if cache_state::epoch() != epoch {
            return Err("stopped by FLUSHALL/FLUSHDB");
        }
        let mut stored = 0;
        for (key, value) in &batch {
            let only = Some(Only::Absent);
            stored += u64::from(cache.set(db, key.as_bytes(), value, only) == Some(true));
        }
        Ok(stored)
    })
    .await;
    match written {
        Some(Ok(stored)) => Ok((stored, n)),
        Some(Err(why)) => Err(Error::Stopped(why.into())),
        None => Err(Error::Internal("the store thread stopped".into())),
    }
}

/// At module load: starts the warm-ups `readthrough.warm-on-load` asks for (DB 0), on a master.
pub fn on_load() {
    let text = settings::WARM_ON_LOAD.get();
    let words: Vec<String> = text.split_whitespace().map(str::to_owned).collect();
    if words.is_empty() || !changes::is_master() {
        return;
    }
    let prefixes: Vec<String> = if words == ["*"] {
        settings::mappings()
            .iter()
            .filter(|m| m.many.is_none())
            .map(|m| m.prefix.clone())
            .collect()
    } else {
        words
    };
    for p in prefixes {
        match start(&p, None, 0) {
            Ok(()) => redis_module::logging::log_notice(
                format!("readthrough: warming {p} (readthrough.warm-on-load)").as_str(),
            ),
            Err(e) => redis_module::logging::log_warning(
                format!("readthrough: readthrough.warm-on-load: {e}").as_str(),
            ),
        }
    }
}

/// `INFO` lines: `warm_N:prefix=...,running=0|1,loaded=...,stored=...,total=...,skipped=...,
/// seconds=...`.
pub fn info_lines() -> Vec<(String, String)> {
    warms()
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let running = w.running.load(Ordering::SeqCst);
            let ms = if running {
                w.started.elapsed().as_millis() as u64
            } else {
                w.millis.load(Ordering::Relaxed)
            };
            let mut v = format!(
                "prefix={},db={},running={},loaded={},stored={},total={},skipped={},seconds={:.1}",
                w.prefix,
                w.db,
                u8::from(running),
                w.loaded.load(Ordering::Relaxed),
                w.stored.load(Ordering::Relaxed),
                w.total.load(Ordering::Relaxed),
                w.skipped.load(Ordering::Relaxed),
                ms as f64 / 1000.0
            );
            if let Some(e) = &*w.error.lock().unwrap_or_else(|p| p.into_inner()) {
                // INFO values are one line without commas.
                v.push_str(",error=");
                v.push_str(&e.replace([',', '\r', '\n'], " "));
            }
            (format!("warm_{i}"), v)
        })
        .collect()
}
