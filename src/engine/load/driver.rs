//! A load run on the loader thread by the MongoDB driver: the query (shared with others when
//! many misses queue up, `mongo/shared_queries.rs`), bounded by the load's deadline. The
//! `Loading` guard it holds ends the load even if the task stops first.

use crate::core::error::Error;
use crate::engine::load::{value_of, Loading};
use crate::mongo::{runtime, shared_queries};

/// Runs the load on the loader thread, with what is left of its deadline.
pub fn spawn(loading: Loading) {
    runtime::spawn(run(loading));
}

async fn run(loading: Loading) {
    let _busy = runtime::Busy::start();
    let load = loading.load();
    let deadline = load.deadline;
    // The deadline bounds a miss queued for a shared query too, not only the query itself.
    let outcome = tokio::time::timeout_at(
        deadline.at.into(),
        shared_queries::load(load.target.clone(), deadline),
    )
    .await
    .unwrap_or(Err(Error::Timeout(deadline.timeout_ms)))
    .map(|doc| doc.map(|d| value_of(&load.target.mapping, d)));
    loading.finish(outcome);
}
