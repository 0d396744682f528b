//! Which master runs each collection's watcher in Redis Cluster: the one serving the slot of
//! the collection's resume-token key (its home slot), so MongoDB sees one change stream per
//! collection whatever the number of masters. Read from the node's cluster config file every
//! second (`redis/cluster_bus.rs` says why not `CLUSTER SLOTS`); when
//! the set of collections this node is home for changes, the watchers are started again.
//! A node that gained slots from another master (resharding) purges the mapped keys it holds
//! in them: changes to those keys were sent to their former owner. It purges them again
//! `SETTLE` later, by when every watcher's own map routes those keys here: a key loaded in
//! between may have missed a change sent to the former owner.

use super::{apply, is_master, reconfigure, tokens};
use crate::core::cluster_slots::{key_slot, parse_nodes_conf, SlotMap};
use crate::engine::store;
use crate::mongo::runtime;
use crate::redis::cluster_bus;
use crate::redis::gil::Gil;
use crate::state::settings;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

struct Known {
    map: Arc<SlotMap>,
    /// Whether this node was a master when the map was read.
    master: bool,
    /// The collections whose home slot this node serves.
    homes: BTreeSet<String>,
}

static KNOWN: Mutex<Option<Known>> = Mutex::new(None);

/// How often every master reads its map (the supervisor's period), and how long after a slot
/// move every master has surely read it: three periods.
pub const PERIOD: Duration = Duration::from_secs(1);
const SETTLE: Duration = Duration::from_secs(3);

fn known() -> std::sync::MutexGuard<'static, Option<Known>> {
    KNOWN.lock().unwrap_or_else(|p| p.into_inner())
}

/// The slot map last read; `None` outside a cluster or before the first read.
pub fn current() -> Option<Arc<SlotMap>> {
    known().as_ref().map(|k| Arc::clone(&k.map))
}

/// Whether this node runs `ns`'s watcher: always outside a cluster; in a cluster, when it is a
/// master serving `ns`'s home slot.
pub fn is_home(ns: &str) -> bool {
    if !super::is_cluster() {
        return true;
    }
    known()
        .as_ref()
        .is_some_and(|k| k.master && k.homes.contains(ns))
}

/// The master serving `ns`'s home slot, as last read.
pub fn home_of(ns: &str) -> Option<String> {
    let slot = key_slot(tokens::token_key(ns).as_bytes());
    known()
        .as_ref()
        .and_then(|k| k.map.owner(slot).map(str::to_owned))
}

/// The path of the cluster config file, asked once.
static CONFIG_FILE: Mutex<Option<String>> = Mutex::new(None);

/// This node's view of the cluster, from its config file (Redis rewrites it on every change).
async fn read_map() -> Option<SlotMap> {
    let known = CONFIG_FILE
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let path = match known {
        Some(p) => p,
        None => {
            let p = store::with_gil(|gil: &Gil| cluster_bus::config_file(gil))
                .await
                .flatten()?;
            *CONFIG_FILE.lock().unwrap_or_else(|p| p.into_inner()) = Some(p.clone());
            p
        }
    };
    let text = std::fs::read_to_string(&path).ok()?; // a few KB, read in microseconds
    let (me, ranges) = parse_nodes_conf(&text).ok()?;
    Some(SlotMap::new(&me, &ranges))
}

/// Reads the slot map again (cluster only); starts the watchers again if this node's homes
/// changed, and purges the slots it gained from another master.
pub async fn refresh() {
    let Some(map) = read_map().await else {
        return;
    };
    let master = is_master();
    let namespaces: BTreeSet<String> = settings::mappings()
        .iter()
        .map(|m| format!("{}.{}", m.db, m.collection))
        .collect();
    let homes: BTreeSet<String> = namespaces
        .into_iter()
        .filter(|ns| map.is_mine(key_slot(tokens::token_key(ns).as_bytes())))
        .collect();
    let (changed, gained) = {
        let mut k = known();
        let changed = k
            .as_ref()
            .is_none_or(|k| k.homes != homes || k.master != master);
        let gained = match k.as_ref() {
            Some(before) if before.master && master && before.map.me() == map.me() => {
                map.gained_since(&before.map)
            }
            _ => Vec::new(),
        };
        *k = Some(Known {
            map: Arc::new(map),
            master,
            homes,
        });
        (changed, gained)
    };
    if !gained.is_empty() {
        apply::purge_slots(gained.clone()).await;
        runtime::spawn(async move {
            tokio::time::sleep(SETTLE).await;
            apply::purge_slots(gained).await;
        });
    }
    if changed {
        reconfigure();
    }
}
