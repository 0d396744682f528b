//! The receiving side in Redis Cluster: a master that is not a collection's home applies what
//! the home's watcher sends it for its slots. The cluster bus drops messages when a link is
//! down, so each message is checked against the last one heard (`core/bus_sequence.rs`): a
//! gap, or a sender not heard before (a failover, a restart, this node's own start), purges
//! the collection's mapped keys here, since a change to any of them may have been missed.
//! Runs on the main thread, with the lock held (Redis calls it there).

use super::{apply, mappings_of, EVENTS};
use crate::core::bus_message::{decode, Body};
use crate::core::bus_sequence::{accept, Heard, Verdict};
use crate::core::invalidation::{actions, Action, Change, Op};
use crate::engine::cache::RedisCache;
use crate::mongo::runtime;
use crate::redis::gil::Gil;
use crate::state::{counters, id_index, settings};
use mongodb::bson::Document;
use once_cell::sync::Lazy;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Messages and ticks received, for INFO.
pub static RECEIVED: AtomicU64 = AtomicU64::new(0);
/// Purges for a dropped message.
pub static GAPS: AtomicU64 = AtomicU64::new(0);
/// Purges for a sender not heard before.
pub static NEW_SENDERS: AtomicU64 = AtomicU64::new(0);
/// Messages that did not decode (a different build on another node).
pub static UNREADABLE: AtomicU64 = AtomicU64::new(0);

static HEARD: Lazy<Mutex<HashMap<String, Heard>>> = Lazy::new(Default::default);

/// The last message heard for `ns`, for INFO.
pub fn heard(ns: &str) -> Option<Heard> {
    HEARD
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(ns)
        .cloned()
}

/// After a role change: forgets who was heard, so the next message from anyone purges.
pub fn forget_all() {
    HEARD.lock().unwrap_or_else(|p| p.into_inner()).clear();
}

/// A message from `sender`.
pub fn on_message(gil: &Gil, sender: &str, bytes: &[u8]) {
    RECEIVED.fetch_add(1, Ordering::Relaxed);
    let msg = match decode(bytes) {
        Ok(m) => m,
        Err(e) => {
            if UNREADABLE.fetch_add(1, Ordering::Relaxed) == 0 {
                redis_module::logging::log_warning(
                    format!(
                        "readthrough: a cluster bus message from {sender} did not decode ({e})"
                    )
                    .as_str(),
                );
            }
            return;
        }
    };
    let maps = mappings_of(&msg.ns);
    if maps.is_empty() || settings::mode() == crate::core::invalidation::Mode::Off {
        return;
    }
    let tick = matches!(msg.body, Body::Tick);
    let verdict = {
        let mut heard = HEARD.lock().unwrap_or_else(|p| p.into_inner());
        let mut h = heard.remove(&msg.ns);
        let v = accept(&mut h, sender, msg.epoch, msg.seq, tick);
        if let Some(h) = h {
            heard.insert(msg.ns.clone(), h);
        }
        v
    };
    if matches!(verdict, Verdict::Gap | Verdict::NewSender) {
        let counter = if verdict == Verdict::Gap {
            &GAPS
        } else {
            &NEW_SENDERS
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let prefixes: Vec<String> = maps.iter().map(|m| m.prefix.clone()).collect();
        runtime::spawn(async move {
            for p in prefixes {
                apply::purge(&p).await;
            }
        });
    }
    let Body::Changes { acts, unplaced } = msg.body else {
        return;
    };
    EVENTS.fetch_add(1, Ordering::Relaxed);
    let mut writes = Vec::new();
    let mut later = Vec::new();
    for a in acts {
        match a {
            // A late rewrite may be older than what is cached: delete instead.
            Action::Set(k, _) | Action::Reload(k) if verdict == Verdict::Late => {
                writes.push(Action::Delete(k))
            }
            Action::Purge(_) | Action::Reload(_) => later.push(a),
            a => writes.push(a),
        }
    }
    if let Some(id) = unplaced.and_then(|b| Document::from_reader(&mut b.as_slice()).ok()) {
        let change = Change {
            op: Op::Delete,
            full: None,
            before: None,
            id: id.get("_id"),
            changed: None,
        };
        writes.extend(actions(&maps, &change, settings::mode(), &id_index::known));
        id_index::update(&maps, &change);
    }
    let changed = apply::apply_actions(&mut RedisCache(gil), 1, &writes);
    counters::add(&counters::INVALIDATIONS, changed);
    if !later.is_empty() {
        runtime::spawn(apply::later(later));
    }
}
