//! Where a watcher keeps its resume token: the key `__readthrough__:resume:DB.COLL` in DB 0
//! (replicated, in the AOF/RDB), so a restarted or promoted node resumes where it stopped. In
//! Redis Cluster the key is `__readthrough__:resume:{DB.COLL}`: its slot is the collection's
//! home slot, and the master serving it runs the collection's only watcher (`topology.rs`).

use crate::engine::store;
use crate::redis::gil::Gil;
use crate::redis::write;
use redis_module::CallReply;

const TOKEN_PREFIX: &str = "__readthrough__:resume:";

/// The key of `ns`'s saved resume token.
pub fn token_key(ns: &str) -> String {
    if super::is_cluster() {
        format!("{TOKEN_PREFIX}{{{ns}}}")
    } else {
        format!("{TOKEN_PREFIX}{ns}")
    }
}

/// `ns`'s saved token (`Ok(None)`: none saved); `Err` when Redis refused the read (a cluster
/// that is down): the stream must not be opened from "now" then.
pub async fn read_token(ns: &str) -> Result<Option<String>, ()> {
    let key = token_key(ns);
    store::with_gil(move |gil: &Gil| {
        write::call_read(gil, 0, "GET", &[key.as_bytes()], |r| match r {
            CallReply::String(s) => s.to_string(),
            _ => None,
        })
    })
    .await
    .flatten()
    .ok_or(())
}

/// Removes `ns`'s saved token (MongoDB refused it).
pub async fn forget_token(ns: &str) {
    let key = token_key(ns);
    store::with_gil(move |gil: &Gil| write::call_read(gil, 0, "DEL", &[key.as_bytes()], |_| ()))
        .await;
}

/// Saves `ns`'s token; false if Redis refused (in a cluster: the home slot moved away).
pub fn save_token(gil: &Gil, ns: &str, token: &str) -> bool {
    let key = token_key(ns);
    write::call_read(gil, 0, "SET", &[key.as_bytes(), token.as_bytes()], |_| ()).is_some()
}
