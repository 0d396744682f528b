//! A load run on the loader thread by the MongoDB driver: the query (shared with others when
//! many misses queue up, `mongo/shared_queries.rs`; a `many` mapping's query is its own),
//! bounded by the load's deadline. The `Loading` guard it holds ends the load even if the task
//! stops first.

use crate::core::deadline::Deadline;
use crate::core::error::{Error, Outcome};
use crate::core::mapping::Target;
use crate::engine::load::{list_value_of, value_of, Loading};
use crate::mongo::{queries, runtime, shared_queries};

/// Runs the load on the loader thread, with what is left of its deadline.
pub fn spawn(loading: Loading) {
    runtime::spawn(run(loading));
}

async fn run(loading: Loading) {
    let _busy = runtime::Busy::start();
    let load = loading.load();
    let deadline = load.deadline;
    // The deadline bounds a miss queued for a shared query too, not only the query itself.
    let outcome = tokio::time::timeout_at(deadline.at.into(), query(&load.target, deadline))
        .await
        .unwrap_or(Err(Error::Timeout(deadline.timeout_ms)));
    loading.finish(outcome);
}

/// The load's query and its value: a document (or none), or a `many` mapping's list (never
/// none: an empty result is an empty array).
pub async fn query(target: &Target, deadline: Deadline) -> Outcome {
    let m = &target.mapping;
    if m.many.is_some() {
        let docs = queries::find_list(target, deadline).await?;
        return Ok(Some(list_value_of(m, docs)));
    }
    let doc = shared_queries::load(target.clone(), deadline).await?;
    Ok(doc.map(|d| value_of(m, d)))
}
