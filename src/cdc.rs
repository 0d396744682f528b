//! Change-stream invalidation (`readthrough.invalidation off|delete|refresh`).
//!
//! One watcher task per mapped collection, on the loader runtime, only on a master. Each
//! change event becomes a few actions on the keys of the mappings of that collection (`actions`,
//! pure): an update or replace deletes the key (`delete`) or rewrites it from the full document
//! (`refresh`, only where the key is cached: `SET ... XX`); a delete deletes it; an insert
//! forgets a negative entry; a drop, rename or invalidate removes the whole prefix with `SCAN`
//! in small steps. Every DB is covered, since values land in the DB of the client that read
//! them. Actions and the event's resume token are written together in one short GIL hold on
//! the store thread; the token lives in the key `__readthrough__:resume:DB.COLL` (DB 0), so it
//! is in the AOF/RDB and on replicas: a restarted or promoted node resumes where it stopped.
//! A token MongoDB can no longer resume from purges the mapped prefixes (logged).
//!
//! Finding the key of a deleted document: a delete event carries only `{_id}`. For a mapping
//! on `_id` that is the key. For another field the watcher uses the pre-image when the
//! collection has `changeStreamPreAndPostImages` enabled (asked for with `whenAvailable`, the
//! module never changes collection settings), else an index `_id → id` of the documents this
//! node loaded (bounded; a delete it cannot place is counted in `cdc_unplaced_deletes`).

use crate::codec;
use crate::config;
use crate::ffi::Gil;
use crate::mapping::{self, Mapping};
use crate::{load, loader, stats, store};
use futures_util::FutureExt;
use mongodb::bson::{self, Bson, Document};
use mongodb::change_stream::event::{ChangeStreamEvent, OperationType, ResumeToken};
use mongodb::options::{FullDocumentBeforeChangeType, FullDocumentType};
use once_cell::sync::Lazy;
use redis_module::CallReply;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Off,
    Delete,
    Refresh,
}

impl Mode {
    pub fn parse(s: &str) -> Result<Mode, String> {
        match s.to_ascii_lowercase().as_str() {
            "off" => Ok(Mode::Off),
            "delete" => Ok(Mode::Delete),
            "refresh" => Ok(Mode::Refresh),
            _ => Err(format!(
                "readthrough.invalidation must be off, delete or refresh, not '{}'",
                crate::error::show_key(s.as_bytes())
            )),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Mode::Off => "off",
            Mode::Delete => "delete",
            Mode::Refresh => "refresh",
        }
    }
}

static MODE: AtomicU8 = AtomicU8::new(1);
/// Bumped whenever what the watchers should do changes (mode, mappings, URI, role).
static GEN: AtomicU64 = AtomicU64::new(1);
static MASTER: AtomicBool = AtomicBool::new(true);
/// Number of Redis DBs (`databases`), read at load time.
static DBS: AtomicI64 = AtomicI64::new(16);

pub static EVENTS: AtomicU64 = AtomicU64::new(0);
pub static LAG_MS: AtomicI64 = AtomicI64::new(0);
pub static PURGES: AtomicU64 = AtomicU64::new(0);
pub static UNPLACED_DELETES: AtomicU64 = AtomicU64::new(0);
pub static RESUME_FAILURES: AtomicU64 = AtomicU64::new(0);

pub fn mode() -> Mode {
    match MODE.load(Ordering::Relaxed) {
        0 => Mode::Off,
        2 => Mode::Refresh,
        _ => Mode::Delete,
    }
}

pub fn set_mode(m: Mode) {
    MODE.store(m as u8, Ordering::Relaxed);
    reconfigure();
}

/// Something the watchers depend on changed: the running ones stop, the supervisor starts
/// the right ones.
pub fn reconfigure() {
    GEN.fetch_add(1, Ordering::SeqCst);
}

pub fn set_master(master: bool) {
    if MASTER.swap(master, Ordering::SeqCst) != master {
        reconfigure();
    }
}

pub fn is_master() -> bool {
    MASTER.load(Ordering::SeqCst)
}

pub fn set_databases(n: i64) {
    DBS.store(n.max(1), Ordering::Relaxed);
}

/// Set at load when Redis runs in cluster mode.
static CLUSTER: AtomicBool = AtomicBool::new(false);

pub fn set_cluster() {
    CLUSTER.store(true, Ordering::Relaxed);
}

fn databases() -> i32 {
    DBS.load(Ordering::Relaxed).min(i32::MAX as i64) as i32
}

/// What one change event does to the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Delete the key in every DB.
    Delete(String),
    /// Overwrite the key where it is cached (`SET ... XX`), in every DB.
    Set(String, String),
    /// Forget a negative entry (the document exists now).
    Forget(String),
    /// Remove every key with this prefix (the collection is gone or renamed).
    Purge(String),
}

/// The parts of a change event `actions` looks at.
pub struct Change<'a> {
    pub op: &'a OperationType,
    pub full: Option<&'a Document>,
    pub before: Option<&'a Document>,
    /// `documentKey._id`.
    pub id: Option<&'a Bson>,
}

/// The key a document has under mapping `m`, if its field holds an id.
pub fn key_of(m: &Mapping, doc: &Document) -> Option<String> {
    mapping::field_value(doc, &m.field)
        .and_then(mapping::id_of_value)
        .map(|id| format!("{}{}", m.prefix, id))
}

/// The cache actions for one event on the collection of `mappings`. `known` gives the id (the
/// mapping field's value) this node last saw for a document `_id` under a mapping. Pure.
pub fn actions(
    mappings: &[Arc<Mapping>],
    ev: &Change,
    mode: Mode,
    known: &dyn Fn(&Mapping, &Bson) -> Option<String>,
) -> Vec<Action> {
    let mut out = Vec::new();
    for m in mappings {
        let old = || -> Option<String> {
            if m.field == "_id" {
                return ev
                    .id
                    .and_then(mapping::id_of_value)
                    .map(|id| format!("{}{id}", m.prefix));
            }
            ev.before.and_then(|d| key_of(m, d)).or_else(|| {
                ev.id
                    .and_then(|id| known(m, id))
                    .map(|id| format!("{}{id}", m.prefix))
            })
        };
        match ev.op {
            OperationType::Insert => {
                if let Some(key) = ev.full.and_then(|d| key_of(m, d)) {
                    out.push(Action::Forget(key));
                }
            }
            OperationType::Update | OperationType::Replace => {
                let new = ev.full.and_then(|d| key_of(m, d));
                let old = old();
                if let (Some(key), Some(doc)) = (&new, ev.full) {
                    out.push(match mode {
                        Mode::Refresh => Action::Set(key.clone(), codec::to_json(doc.clone())),
                        _ => Action::Delete(key.clone()),
                    });
                    out.push(Action::Forget(key.clone()));
                }
                if let Some(old) = old.filter(|o| Some(o) != new.as_ref()) {
                    out.push(Action::Delete(old));
                }
            }
            OperationType::Delete => {
                if let Some(old) = old() {
                    out.push(Action::Delete(old));
                }
            }
            OperationType::Drop
            | OperationType::Rename
            | OperationType::DropDatabase
            | OperationType::Invalidate => out.push(Action::Purge(m.prefix.clone())),
            _ => {}
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// `_id → id` index of the documents loaded by this node, for mappings not on `_id`.

const INDEX_MAX: usize = 2_000_000;

type Index = HashMap<(String, String), String>;
static INDEX: Lazy<Mutex<Index>> = Lazy::new(Default::default);

fn index() -> std::sync::MutexGuard<'static, Index> {
    INDEX.lock().unwrap_or_else(|p| p.into_inner())
}

fn id_key(id: &Bson) -> String {
    id.clone().into_relaxed_extjson().to_string()
}

/// A document was loaded for mapping `m`: remember its `_id → id` (only needed when the
/// mapping is not on `_id` and invalidation is on).
pub fn remember(m: &Mapping, doc: &Document) {
    if m.field == "_id" || mode() == Mode::Off {
        return;
    }
    let (Some(id), Some(v)) = (
        doc.get("_id"),
        mapping::field_value(doc, &m.field).and_then(mapping::id_of_value),
    ) else {
        return;
    };
    let mut ix = index();
    if ix.len() < INDEX_MAX {
        ix.insert((m.prefix.clone(), id_key(id)), v);
    }
}

fn known(m: &Mapping, id: &Bson) -> Option<String> {
    index().get(&(m.prefix.clone(), id_key(id))).cloned()
}

fn update_index(mappings: &[Arc<Mapping>], ev: &Change) {
    let Some(id) = ev.id else { return };
    for m in mappings.iter().filter(|m| m.field != "_id") {
        let k = (m.prefix.clone(), id_key(id));
        match (
            ev.op,
            ev.full.and_then(|d| mapping::field_value(d, &m.field)),
        ) {
            (OperationType::Delete, _) | (_, None) => {
                index().remove(&k);
            }
            (_, Some(v)) => {
                if let Some(v) = mapping::id_of_value(v) {
                    let mut ix = index();
                    if ix.len() < INDEX_MAX || ix.contains_key(&k) {
                        ix.insert(k, v);
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Watchers.

/// What `INFO` shows of one watcher.
pub struct Watcher {
    pub ns: String,
    pub prefixes: String,
    pub state: Mutex<&'static str>,
    pub events: AtomicU64,
    pub lag_ms: AtomicI64,
}

impl Watcher {
    fn set(&self, s: &'static str) {
        *self.state.lock().unwrap_or_else(|p| p.into_inner()) = s;
    }
}

static WATCHERS: Lazy<Mutex<Vec<Arc<Watcher>>>> = Lazy::new(Default::default);

/// `INFO` lines, one per watcher: `watcher_N:ns=...,prefixes=...,state=...,events=...,lag_ms=...`.
pub fn info_lines() -> Vec<(String, String)> {
    let mut out = vec![("invalidation".to_owned(), mode().name().to_owned())];
    for (i, w) in WATCHERS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .enumerate()
    {
        out.push((
            format!("watcher_{i}"),
            format!(
                "ns={},prefixes={},state={},events={},lag_ms={}",
                w.ns,
                w.prefixes,
                w.state.lock().unwrap_or_else(|p| p.into_inner()),
                w.events.load(Ordering::Relaxed),
                w.lag_ms.load(Ordering::Relaxed)
            ),
        ));
    }
    out
}

fn current(gen: u64) -> bool {
    GEN.load(Ordering::SeqCst) == gen
}

/// Starts the supervisor: it (re)starts the watchers whenever their configuration changes.
pub fn start() {
    loader::spawn(async {
        let mut seen = 0;
        loop {
            let gen = GEN.load(Ordering::SeqCst);
            if gen != seen {
                seen = gen;
                let watchers = plan();
                *WATCHERS.lock().unwrap_or_else(|p| p.into_inner()) =
                    watchers.iter().map(|(w, _)| Arc::clone(w)).collect();
                for (w, maps) in watchers {
                    loader::spawn(watch(w, maps, gen));
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
}

/// One watcher per mapped collection, with the mappings on it; none when off or a replica.
fn plan() -> Vec<(Arc<Watcher>, Vec<Arc<Mapping>>)> {
    let mut by_ns: BTreeMap<(String, String), Vec<Arc<Mapping>>> = BTreeMap::new();
    for m in config::mappings().iter() {
        by_ns
            .entry((m.db.clone(), m.collection.clone()))
            .or_default()
            .push(Arc::clone(m));
    }
    let active = mode() != Mode::Off && is_master();
    by_ns
        .into_iter()
        .map(|((db, coll), maps)| {
            let w = Watcher {
                ns: format!("{db}.{coll}"),
                prefixes: maps
                    .iter()
                    .map(|m| m.prefix.as_str())
                    .collect::<Vec<_>>()
                    .join(" "),
                state: Mutex::new(if mode() == Mode::Off {
                    "off"
                } else if active {
                    "starting"
                } else {
                    "replica"
                }),
                events: AtomicU64::new(0),
                lag_ms: AtomicI64::new(0),
            };
            (Arc::new(w), maps)
        })
        .map(|(w, maps)| (w, if active { maps } else { Vec::new() }))
        .collect()
}

/// Marks a saved token to be used with `startAfter` (it is an invalidate event's).
const START: &str = "startAfter:";

const TOKEN_PREFIX: &str = "__readthrough__:resume:";

/// The cluster hash tag this node keeps its tokens under, once found.
static TAG: Mutex<Option<String>> = Mutex::new(None);

/// The key of `ns`'s saved resume token; `None` if this node serves no slot. In Redis Cluster a
/// node can only write keys of the slots it serves (and every master runs its own watchers), so
/// each master keeps its tokens under a hash tag of its own: the first `{N}` whose slot it
/// serves, found by asking Redis and kept until a write to it is refused.
fn token_key(gil: &Gil, ns: &str) -> Option<String> {
    if !CLUSTER.load(Ordering::Relaxed) {
        return Some(format!("{TOKEN_PREFIX}{ns}"));
    }
    let mut tag = TAG.lock().unwrap_or_else(|p| p.into_inner());
    if tag.is_none() {
        *tag = (0..4096).map(|n| format!("{{{n}}}")).find(|t| {
            let probe = format!("{TOKEN_PREFIX}{t}");
            store::call_read(gil, 0, "EXISTS", &[probe.as_bytes()], |_| ()).is_some()
        });
    }
    tag.as_ref().map(|t| format!("{TOKEN_PREFIX}{t}:{ns}"))
}

fn forget_tag() {
    *TAG.lock().unwrap_or_else(|p| p.into_inner()) = None;
}

fn token_text(t: &ResumeToken) -> Option<String> {
    bson::to_bson(t)
        .ok()
        .map(|b| b.into_relaxed_extjson().to_string())
}

fn token_parse(s: &str) -> Option<ResumeToken> {
    let v: serde_json::Value = serde_json::from_str(s).ok()?;
    let b = Bson::try_from(v).ok()?;
    bson::from_bson(b).ok()
}

async fn read_token(ns: &str) -> Option<String> {
    let ns = ns.to_owned();
    store::with_gil(move |gil: &Gil| {
        let key = token_key(gil, &ns)?;
        store::call_read(gil, 0, "GET", &[key.as_bytes()], |r| match r {
            CallReply::String(s) => s.to_string(),
            _ => None,
        })
        .flatten()
    })
    .await
    .flatten()
}

async fn watch(w: Arc<Watcher>, maps: Vec<Arc<Mapping>>, gen: u64) {
    if maps.is_empty() {
        return;
    }
    let (db, coll) = (maps[0].db.clone(), maps[0].collection.clone());
    let mut backoff = Duration::from_millis(100);
    let mut logged = false;
    while current(gen) {
        w.set("connecting");
        let client = match loader::client().await {
            Ok(c) => c,
            Err(e) => {
                log_once(&mut logged, &format!("watcher {}: {e}", w.ns));
                w.set("reconnecting");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        // After an invalidate event the stream can only be restarted with `startAfter`.
        let saved = read_token(&w.ns).await;
        let (start_after, saved) = match saved.as_deref().and_then(|s| s.strip_prefix(START)) {
            Some(rest) => (true, Some(rest.to_owned())),
            None => (false, saved),
        };
        let token = saved.as_deref().and_then(token_parse);
        let c = client.database(&db).collection::<Document>(&coll);
        let mut watch = c
            .watch()
            .full_document(FullDocumentType::UpdateLookup)
            .full_document_before_change(FullDocumentBeforeChangeType::WhenAvailable)
            .max_await_time(Duration::from_millis(500));
        watch = match (&token, start_after) {
            (Some(t), true) => watch.start_after(t.clone()),
            (t, _) => watch.resume_after(t.clone()),
        };
        let opened = watch.await;
        let mut stream = match opened {
            Ok(s) => s,
            Err(e)
                if token.is_some() && matches!(*e.kind, mongodb::error::ErrorKind::Command(_)) =>
            {
                // MongoDB refuses the saved token (history rolled off the oplog, a new
                // collection): events may have been missed, so nothing cached can be trusted.
                RESUME_FAILURES.fetch_add(1, Ordering::Relaxed);
                log(&format!(
                    "watcher {}: cannot resume the change stream ({}); removing the cached keys of {} and starting afresh",
                    w.ns,
                    loader::redact_error(&e),
                    w.prefixes
                ));
                for m in &maps {
                    purge(&m.prefix).await;
                }
                let ns = w.ns.clone();
                store::with_gil(move |gil: &Gil| {
                    let key = token_key(gil, &ns)?;
                    store::call_read(gil, 0, "DEL", &[key.as_bytes()], |_| ())
                })
                .await;
                continue;
            }
            Err(e) => {
                log_once(
                    &mut logged,
                    &format!("watcher {}: {}", w.ns, loader::redact_error(&e)),
                );
                w.set("reconnecting");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        if logged {
            log(&format!("watcher {}: connected again", w.ns));
        }
        logged = false;
        backoff = Duration::from_millis(100);
        w.set("watching");
        while current(gen) {
            let next = std::panic::AssertUnwindSafe(stream.next_if_any())
                .catch_unwind()
                .await;
            match next {
                Ok(Ok(Some(ev))) => {
                    let invalidated = ev.operation_type == OperationType::Invalidate;
                    if !current(gen) {
                        break; // reconfigured: this event is for the next watcher
                    }
                    handle(&w, &maps, ev, gen).await;
                    if invalidated {
                        break; // the stream is closed; open a new one
                    }
                }
                Ok(Ok(None)) if stream.is_alive() => {}
                Ok(Ok(None)) => break,
                Ok(Err(e)) => {
                    log_once(
                        &mut logged,
                        &format!(
                            "watcher {}: change stream lost ({}); reconnecting",
                            w.ns,
                            loader::redact_error(&e)
                        ),
                    );
                    w.set("reconnecting");
                    tokio::time::sleep(backoff).await;
                    break;
                }
                Err(_) => {
                    log(&format!("watcher {}: caught a panic; restarting", w.ns));
                    tokio::time::sleep(backoff).await;
                    break;
                }
            }
        }
    }
}

fn log(msg: &str) {
    redis_module::logging::log_warning(format!("readthrough: {msg}").as_str());
}

fn log_once(logged: &mut bool, msg: &str) {
    if !*logged {
        log(msg);
        *logged = true;
    }
}

async fn handle(w: &Watcher, maps: &[Arc<Mapping>], ev: ChangeStreamEvent<Document>, gen: u64) {
    EVENTS.fetch_add(1, Ordering::Relaxed);
    w.events.fetch_add(1, Ordering::Relaxed);
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let at_ms = ev
        .wall_time
        .map(|t| t.timestamp_millis())
        .or(ev.cluster_time.map(|t| t.time as i64 * 1000));
    if let Some(at) = at_ms {
        let lag = (now_ms - at).max(0);
        LAG_MS.store(lag, Ordering::Relaxed);
        w.lag_ms.store(lag, Ordering::Relaxed);
    }
    let id = ev.document_key.as_ref().and_then(|d| d.get("_id"));
    let change = Change {
        op: &ev.operation_type,
        full: ev.full_document.as_ref(),
        before: ev.full_document_before_change.as_ref(),
        id,
    };
    let acts = actions(maps, &change, mode(), &known);
    update_index(maps, &change);
    if ev.operation_type == OperationType::Delete && acts.len() < maps.len() {
        UNPLACED_DELETES.fetch_add(1, Ordering::Relaxed);
    }
    let mut writes = Vec::new();
    for a in acts {
        match a {
            Action::Purge(prefix) if current(gen) => purge(&prefix).await,
            Action::Purge(_) => {}
            a => writes.push(a),
        }
    }
    let after = if ev.operation_type == OperationType::Invalidate {
        START
    } else {
        ""
    };
    let token = token_text(&ev.id).map(|t| (w.ns.clone(), format!("{after}{t}")));
    store::with_gil(move |gil: &Gil| {
        // Checked under the GIL, where CONFIG SET runs: no event is applied after a change
        // of mode or mappings; its token is not saved, so the next watcher sees it again.
        if current(gen) {
            apply(gil, &writes, token)
        }
    })
    .await;
}

/// Under the GIL: applies the key actions in every DB and saves the resume token (namespace,
/// token text).
fn apply(gil: &Gil, acts: &[Action], token: Option<(String, String)>) {
    let mut changed = 0u64;
    for db in 0..databases() {
        for a in acts {
            match a {
                Action::Delete(key) => {
                    load::mark_stale((db, key.as_bytes().to_vec()));
                    let n = store::call_read(gil, db, "DEL", &[key.as_bytes()], int).flatten();
                    changed += n.unwrap_or(0) as u64;
                }
                Action::Set(key, json) => {
                    load::mark_stale((db, key.as_bytes().to_vec()));
                    let only = Some(store::Only::Present);
                    let written = store::set_value(gil, db, key.as_bytes(), json, only);
                    changed += u64::from(written == Some(true));
                }
                Action::Forget(key) => {
                    load::forget_absent(db, key.as_bytes());
                }
                Action::Purge(_) => {}
            }
        }
    }
    stats::add(&stats::INVALIDATIONS, changed);
    if let Some((ns, token)) = token {
        let saved = token_key(gil, &ns).and_then(|key| {
            store::call_read(gil, 0, "SET", &[key.as_bytes(), token.as_bytes()], |_| ())
        });
        if saved.is_none() {
            forget_tag(); // the slot may have moved to another node: look again next time
        }
    }
}

fn int(r: &CallReply) -> Option<i64> {
    match r {
        CallReply::I64(n) => Some(n.to_i64()),
        _ => None,
    }
}

/// Escapes glob characters so `SCAN MATCH` takes the prefix literally.
pub fn glob_escape(prefix: &str) -> String {
    let mut s = String::with_capacity(prefix.len() + 2);
    for c in prefix.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            s.push('\\');
        }
        s.push(c);
    }
    s.push('*');
    s
}

/// Removes every key with `prefix` in every DB, one `SCAN ... COUNT 500` step per GIL hold,
/// and the prefix's negative entries.
pub async fn purge(prefix: &str) {
    PURGES.fetch_add(1, Ordering::Relaxed);
    load::forget_absent_prefix(prefix.as_bytes());
    let pattern = glob_escape(prefix);
    for db in 0..databases() {
        let mut cursor = "0".to_owned();
        loop {
            let (pat, cur) = (pattern.clone(), cursor.clone());
            let step = store::with_gil(move |gil: &Gil| scan_step(gil, db, &cur, &pat)).await;
            match step.flatten() {
                Some(next) if next != "0" => cursor = next,
                _ => break,
            }
        }
    }
}

/// One `SCAN` step in `db`; deletes what it found; the next cursor.
fn scan_step(gil: &Gil, db: i32, cursor: &str, pattern: &str) -> Option<String> {
    let args: [&[u8]; 5] = [
        cursor.as_bytes(),
        b"MATCH",
        pattern.as_bytes(),
        b"COUNT",
        b"500",
    ];
    let (next, keys) = store::call_read(gil, db, "SCAN", &args, |r| {
        let CallReply::Array(a) = r else {
            return None;
        };
        let next = match a.get(0) {
            Some(Ok(CallReply::String(s))) => s.to_string()?,
            _ => return None,
        };
        let mut keys = Vec::new();
        if let Some(Ok(CallReply::Array(ks))) = a.get(1) {
            for k in ks.iter().flatten() {
                if let CallReply::String(s) = k {
                    keys.push(s.as_bytes().to_vec());
                }
            }
        }
        Some((next, keys))
    })
    .flatten()?;
    if !keys.is_empty() {
        let refs: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
        let n = store::call_read(gil, db, "DEL", &refs, int).flatten();
        stats::add(&stats::INVALIDATIONS, n.unwrap_or(0) as u64);
    }
    Some(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::doc;

    fn maps(spec: &str) -> Vec<Arc<Mapping>> {
        mapping::Mappings::parse(spec)
            .unwrap()
            .iter()
            .cloned()
            .collect()
    }

    fn none(_: &Mapping, _: &Bson) -> Option<String> {
        None
    }

    #[test]
    fn update_deletes_or_refreshes_the_key_of_the_mapping_field() {
        let m = maps("todo:=test.todos:id");
        let full = doc! {"_id": 7, "id": "42", "name": "n"};
        let ev = Change {
            op: &OperationType::Update,
            full: Some(&full),
            before: None,
            id: Some(&Bson::Int32(7)),
        };
        assert_eq!(
            actions(&m, &ev, Mode::Delete, &none),
            vec![
                Action::Delete("todo:42".into()),
                Action::Forget("todo:42".into())
            ]
        );
        let a = actions(&m, &ev, Mode::Refresh, &none);
        assert_eq!(
            a[0],
            Action::Set("todo:42".into(), r#"{"_id":7,"id":"42","name":"n"}"#.into())
        );
    }

    #[test]
    fn an_id_change_also_deletes_the_old_key() {
        let m = maps("todo:=test.todos:id");
        let full = doc! {"_id": 7, "id": "43"};
        let ev = Change {
            op: &OperationType::Replace,
            full: Some(&full),
            before: None,
            id: Some(&Bson::Int32(7)),
        };
        let known = |_: &Mapping, _: &Bson| Some("42".to_owned());
        let a = actions(&m, &ev, Mode::Delete, &known);
        assert!(a.contains(&Action::Delete("todo:43".into())));
        assert!(a.contains(&Action::Delete("todo:42".into())));
    }

    #[test]
    fn deletes_are_placed_by_id_pre_image_or_index() {
        let on_id = maps("user:=app.users");
        let oid = mongodb::bson::oid::ObjectId::parse_str("64b7f1a2c3d4e5f601234567").unwrap();
        let id = Bson::ObjectId(oid);
        let ev = Change {
            op: &OperationType::Delete,
            full: None,
            before: None,
            id: Some(&id),
        };
        assert_eq!(
            actions(&on_id, &ev, Mode::Delete, &none),
            vec![Action::Delete("user:64b7f1a2c3d4e5f601234567".into())]
        );
        let on_field = maps("todo:=test.todos:id");
        assert!(actions(&on_field, &ev, Mode::Delete, &none).is_empty());
        let known = |_: &Mapping, _: &Bson| Some("5".to_owned());
        assert_eq!(
            actions(&on_field, &ev, Mode::Delete, &known),
            vec![Action::Delete("todo:5".into())]
        );
        let before = doc! {"_id": id.clone(), "id": 6};
        let ev = Change {
            before: Some(&before),
            ..ev
        };
        assert_eq!(
            actions(&on_field, &ev, Mode::Delete, &known),
            vec![Action::Delete("todo:6".into())]
        );
    }

    #[test]
    fn insert_forgets_negative_and_drop_purges_every_prefix() {
        let m = maps("todo:=test.todos:id t:=test.todos");
        let full = doc! {"_id": "a", "id": "1"};
        let ev = Change {
            op: &OperationType::Insert,
            full: Some(&full),
            before: None,
            id: Some(&Bson::String("a".into())),
        };
        let mut a = actions(&m, &ev, Mode::Delete, &none);
        a.sort_by_key(|x| format!("{x:?}"));
        assert_eq!(
            a,
            vec![
                Action::Forget("t:a".into()),
                Action::Forget("todo:1".into())
            ]
        );
        for op in [
            OperationType::Drop,
            OperationType::Rename,
            OperationType::DropDatabase,
            OperationType::Invalidate,
        ] {
            let ev = Change {
                op: &op,
                full: None,
                before: None,
                id: None,
            };
            let mut a = actions(&m, &ev, Mode::Refresh, &none);
            a.sort_by_key(|x| format!("{x:?}"));
            assert_eq!(
                a,
                vec![Action::Purge("t:".into()), Action::Purge("todo:".into())]
            );
        }
    }

    #[test]
    fn a_document_without_the_field_has_no_key() {
        let m = maps("todo:=test.todos:meta.sku");
        assert_eq!(
            key_of(&m[0], &doc! {"meta": {"sku": 5}}),
            Some("todo:5".into())
        );
        assert_eq!(key_of(&m[0], &doc! {"meta": 1}), None);
        assert_eq!(key_of(&m[0], &doc! {"meta": {"sku": 1.5}}), None);
    }

    #[test]
    fn modes_parse_and_glob_escapes() {
        assert_eq!(Mode::parse("REFRESH"), Ok(Mode::Refresh));
        assert!(Mode::parse("sometimes")
            .unwrap_err()
            .contains("off, delete or refresh"));
        assert_eq!(glob_escape("a*b?[c]\\:"), "a\\*b\\?\\[c\\]\\\\:*");
    }

    #[test]
    fn resume_tokens_round_trip_through_text() {
        let t: ResumeToken = bson::from_bson(Bson::Document(doc! {"_data": "82AB01"})).unwrap();
        let s = token_text(&t).unwrap();
        assert_eq!(token_parse(&s), Some(t));
        assert_eq!(token_parse("not json"), None);
    }
}
