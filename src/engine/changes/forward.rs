//! The sending side in Redis Cluster: a collection's watcher runs on one master (its home) and
//! sends the key actions for other masters' slots to them over the cluster bus, one message
//! per event and receiver, numbered per collection and receiver. Every second it also sends
//! each other master a tick with the last number sent, so a receiver notices a dropped
//! message even when nothing follows it (`receive.rs` purges on a gap). The numbers live as
//! long as the process: a watcher started again (new mappings, MongoDB back) continues them.

use crate::core::bus_message::{encode, Body, Message};
use crate::core::cluster_slots::SlotMap;
use crate::core::invalidation::Action;
use crate::redis::cluster_bus;
use crate::redis::gil::Gil;
use crate::state::random;
use once_cell::sync::Lazy;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Messages sent, for INFO.
pub static SENT: AtomicU64 = AtomicU64::new(0);
/// Ticks sent, for INFO.
pub static TICKS: AtomicU64 = AtomicU64::new(0);

/// This process's epoch: a receiver that hears a new one purges, since what a previous
/// process sent last may never have arrived.
static EPOCH: Lazy<u64> = Lazy::new(|| random::random() ^ u64::from(std::process::id()));

/// The last number sent, per (collection, receiver).
static SEQ: Lazy<Mutex<HashMap<(String, String), u64>>> = Lazy::new(Default::default);

/// What one event sends to other masters.
#[derive(Default)]
pub struct Outbox {
    per_node: BTreeMap<String, Vec<Action>>,
    unplaced: Option<Vec<u8>>,
}

impl Outbox {
    /// Keeps `a` for the master serving its key, or gives it back when that is this node (or
    /// nobody): apply it here. A purge goes to every other master and is also given back.
    pub fn route(&mut self, map: &SlotMap, a: Action) -> Option<Action> {
        let key = match &a {
            Action::Delete(k) | Action::Set(k, _) | Action::Forget(k) | Action::Reload(k) => k,
            Action::Purge(_) => {
                for node in map.others() {
                    self.per_node
                        .entry(node.to_owned())
                        .or_default()
                        .push(a.clone());
                }
                return Some(a);
            }
        };
        match map.owner_of_key(key.as_bytes()) {
            Some(owner) if owner != map.me() => {
                self.per_node.entry(owner.to_owned()).or_default().push(a);
                None
            }
            // Here, or a slot nobody serves (nothing is cached there).
            _ => Some(a),
        }
    }

    /// A delete this node could not place (its `{_id}` as BSON): every master looks it up in
    /// its own index of what it loaded.
    pub fn unplaced(&mut self, map: &SlotMap, id: Vec<u8>) {
        for node in map.others() {
            self.per_node.entry(node.to_owned()).or_default();
        }
        self.unplaced = Some(id);
    }

    pub fn is_empty(&self) -> bool {
        self.per_node.is_empty()
    }

    /// Under the GIL, before the event's token is saved: numbers and sends each message.
    pub fn send(self, gil: &Gil, ns: &str) {
        let mut seq = SEQ.lock().unwrap_or_else(|p| p.into_inner());
        for (node, acts) in self.per_node {
            let n = seq.entry((ns.to_owned(), node.clone())).or_insert(0);
            *n += 1;
            let msg = Message {
                ns: ns.to_owned(),
                epoch: *EPOCH,
                seq: *n,
                body: Body::Changes {
                    acts,
                    unplaced: self.unplaced.clone(),
                },
            };
            cluster_bus::send(gil, &node, &encode(&msg));
            SENT.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Under the GIL: tells every other master how many messages of `ns` it was sent.
pub fn tick(gil: &Gil, map: &SlotMap, ns: &str) {
    let seq = SEQ.lock().unwrap_or_else(|p| p.into_inner());
    for node in map.others() {
        let msg = Message {
            ns: ns.to_owned(),
            epoch: *EPOCH,
            seq: seq
                .get(&(ns.to_owned(), node.to_owned()))
                .copied()
                .unwrap_or(0),
            body: Body::Tick,
        };
        cluster_bus::send(gil, node, &encode(&msg));
        TICKS.fetch_add(1, Ordering::Relaxed);
    }
}
