//! The MongoDB side: the background runtime, the shared client, finds, shared queries, the
//! inline loads' own connection, and the main thread's runtime with its client.
//! Knows nothing of Redis.

pub mod client;
pub mod inline_conn;
pub mod main_runtime;
pub mod queries;
pub mod runtime;
pub mod shared_queries;
