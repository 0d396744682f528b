//! Where a watcher keeps its resume token: the key `__readthrough__:resume:DB.COLL` in DB 0
//! (replicated, in the AOF/RDB), so a restarted or promoted node resumes where it stopped.

use crate::engine::store;
use crate::redis::gil::Gil;
use crate::redis::write;
use redis_module::CallReply;
use std::sync::Mutex;

const TOKEN_PREFIX: &str = "__readthrough__:resume:";

/// The cluster hash tag this node keeps its tokens under, once found.
static TAG: Mutex<Option<String>> = Mutex::new(None);

/// The key of `ns`'s saved resume token; `None` if this node serves no slot. In Redis Cluster a
/// node can only write keys of the slots it serves (and every master runs its own watchers), so
/// each master keeps its tokens under a hash tag of its own: the first `{N}` whose slot it
/// serves, found by asking Redis and kept until a write to it is refused.
pub fn token_key(gil: &Gil, ns: &str) -> Option<String> {
    if !super::is_cluster() {
        return Some(format!("{TOKEN_PREFIX}{ns}"));
    }
    let mut tag = TAG.lock().unwrap_or_else(|p| p.into_inner());
    if tag.is_none() {
        *tag = (0..4096).map(|n| format!("{{{n}}}")).find(|t| {
            let probe = format!("{TOKEN_PREFIX}{t}");
            write::call_read(gil, 0, "EXISTS", &[probe.as_bytes()], |_| ()).is_some()
        });
    }
    tag.as_ref().map(|t| format!("{TOKEN_PREFIX}{t}:{ns}"))
}

pub fn forget_tag() {
    *TAG.lock().unwrap_or_else(|p| p.into_inner()) = None;
}

pub async fn read_token(ns: &str) -> Option<String> {
    let ns = ns.to_owned();
    store::with_gil(move |gil: &Gil| {
        let key = token_key(gil, &ns)?;
        write::call_read(gil, 0, "GET", &[key.as_bytes()], |r| match r {
            CallReply::String(s) => s.to_string(),
            _ => None,
        })
        .flatten()
    })
    .await
    .flatten()
}

/// Removes `ns`'s saved token (MongoDB refused it).
pub async fn forget_token(ns: &str) {
    let ns = ns.to_owned();
    store::with_gil(move |gil: &Gil| {
        let key = token_key(gil, &ns)?;
        write::call_read(gil, 0, "DEL", &[key.as_bytes()], |_| ())
    })
    .await;
}
