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
//!
//! In Redis Cluster a collection has one watcher in the whole cluster, on the master serving
//! the slot of its resume-token key (`topology.rs`); it sends other masters the actions for
//! their slots over the cluster bus (`forward.rs`), and they apply them (`receive.rs`),
//! purging the collection's keys when a message may have been dropped. Every other master
//! shows the watcher as `state=remote`.
//!
//! Files: this one holds the node's state and the supervisor; `watch.rs` the loop of one
//! watcher, `apply.rs` what an event does under the Redis lock, `tokens.rs` where resume
//! tokens are kept; `topology.rs`, `forward.rs` and `receive.rs` the cluster's share. The
//! decisions themselves are pure (`core/invalidation.rs`, `core/bus_*.rs`).

mod apply;
mod forward;
mod receive;
mod tokens;
mod topology;
mod watch;

pub use forward::{SENT as BUS_SENT, TICKS as BUS_TICKS};
pub use receive::on_message as bus_message;
pub use receive::{GAPS as BUS_GAPS, NEW_SENDERS as BUS_NEW_SENDERS, RECEIVED as BUS_RECEIVED};

use crate::core::invalidation::Mode;
use crate::core::mapping::Mapping;
use crate::mongo::runtime;
use crate::state::settings;
use once_cell::sync::Lazy;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Bumped whenever what the watchers should do changes (mode, mappings, URI, role).
static GEN: AtomicU64 = AtomicU64::new(1);
static MASTER: AtomicBool = AtomicBool::new(true);
/// Number of Redis DBs (`databases`), read at load time.
static DBS: AtomicI64 = AtomicI64::new(16);
/// Set at load when Redis runs in cluster mode.
static CLUSTER: AtomicBool = AtomicBool::new(false);

pub static EVENTS: AtomicU64 = AtomicU64::new(0);
pub static LAG_MS: AtomicI64 = AtomicI64::new(0);
pub static PURGES: AtomicU64 = AtomicU64::new(0);
pub static UNPLACED_DELETES: AtomicU64 = AtomicU64::new(0);
pub static RESUME_FAILURES: AtomicU64 = AtomicU64::new(0);

/// Something the watchers depend on changed: the running ones stop, the supervisor starts
/// the right ones.
pub fn reconfigure() {
    GEN.fetch_add(1, Ordering::SeqCst);
}

pub fn set_master(master: bool) {
    if MASTER.swap(master, Ordering::SeqCst) != master {
        // What this node heard as a master before says nothing about the data it holds now.
        receive::forget_all();
        reconfigure();
    }
}

pub fn is_master() -> bool {
    MASTER.load(Ordering::SeqCst)
}

/// The node's shape, read once at load: its number of DBs, and whether it is a cluster node
/// (DB 0 only; tokens under a hash tag of the node's own slots).
pub fn set_node(databases: i64, cluster: bool) {
    DBS.store(
        if cluster { 1 } else { databases.max(1) },
        Ordering::Relaxed,
    );
    CLUSTER.store(cluster, Ordering::Relaxed);
}

fn databases() -> i32 {
    DBS.load(Ordering::Relaxed).min(i32::MAX as i64) as i32
}

fn is_cluster() -> bool {
    CLUSTER.load(Ordering::Relaxed)
}

fn current(gen: u64) -> bool {
    GEN.load(Ordering::SeqCst) == gen
}

// ---------------------------------------------------------------------------------------
// Watchers.

/// What `INFO` shows of one watcher.
pub struct Watcher {
    pub ns: String,
    /// In a cluster: another master runs this collection's watcher.
    pub remote: bool,
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
    let mut out = vec![(
        "invalidation".to_owned(),
        settings::mode().name().to_owned(),
    )];
    for (i, w) in WATCHERS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .enumerate()
    {
        let mut line = format!(
            "ns={},prefixes={},state={},events={},lag_ms={}",
            w.ns,
            w.prefixes,
            w.state.lock().unwrap_or_else(|p| p.into_inner()),
            w.events.load(Ordering::Relaxed),
            w.lag_ms.load(Ordering::Relaxed)
        );
        if w.remote {
            // The master running it (as the slot map says), and the last message heard.
            let heard = receive::heard(&w.ns);
            line.push_str(&format!(
                ",home={},seq={}",
                topology::home_of(&w.ns).as_deref().unwrap_or("none"),
                heard.map_or("none".to_owned(), |h| h.last.to_string())
            ));
        }
        out.push((format!("watcher_{i}"), line));
    }
    out
}

/// Starts the supervisor: it (re)starts the watchers whenever their configuration changes; in
/// a cluster it reads the slot map every second first.
pub fn start() {
    runtime::spawn(async {
        let mut seen = 0;
        let mut map_read = std::time::Instant::now() - topology::PERIOD;
        loop {
            if is_cluster() && map_read.elapsed() >= topology::PERIOD {
                map_read = std::time::Instant::now();
                topology::refresh().await;
            }
            let gen = GEN.load(Ordering::SeqCst);
            if gen != seen {
                seen = gen;
                let watchers = plan();
                *WATCHERS.lock().unwrap_or_else(|p| p.into_inner()) =
                    watchers.iter().map(|(w, _)| Arc::clone(w)).collect();
                for (w, maps) in watchers {
                    runtime::spawn(watch::watch(w, maps, gen));
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
}

/// The mappings on collection `ns` (`DB.COLL`).
fn mappings_of(ns: &str) -> Vec<Arc<Mapping>> {
    settings::mappings()
        .iter()
        // A database name has no dot: the first one ends it.
        .filter(|m| ns.split_once('.') == Some((m.db.as_str(), m.collection.as_str())))
        .map(Arc::clone)
        .collect()
}

/// One watcher per mapped collection, with the mappings on it; none when off or a replica, and
/// in a cluster none where another master is the collection's home.
fn plan() -> Vec<(Arc<Watcher>, Vec<Arc<Mapping>>)> {
    let mut by_ns: BTreeMap<(String, String), Vec<Arc<Mapping>>> = BTreeMap::new();
    for m in settings::mappings().iter() {
        by_ns
            .entry((m.db.clone(), m.collection.clone()))
            .or_default()
            .push(Arc::clone(m));
    }
    let active = settings::mode() != Mode::Off && is_master();
    by_ns
        .into_iter()
        .map(|((db, coll), maps)| {
            let ns = format!("{db}.{coll}");
            let remote = active && !topology::is_home(&ns);
            let w = Watcher {
                ns,
                remote,
                prefixes: maps
                    .iter()
                    .map(|m| m.prefix.as_str())
                    .collect::<Vec<_>>()
                    .join(" "),
                state: Mutex::new(if settings::mode() == Mode::Off {
                    "off"
                } else if remote {
                    "remote"
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
        .map(|(w, maps)| {
            let run = active && !w.remote;
            (w, if run { maps } else { Vec::new() })
        })
        .collect()
}
