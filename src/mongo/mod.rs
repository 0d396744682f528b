//! The MongoDB side: the background runtime, the shared client, finds, shared queries, and the
//! inline loads' own connection.
//! Knows nothing of Redis.

pub mod client;
pub mod inline_conn;
pub mod queries;
pub mod runtime;
pub mod shared_queries;
