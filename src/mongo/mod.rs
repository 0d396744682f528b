//! The MongoDB side: the background runtime, the shared client, finds, and shared queries.
//! Knows nothing of Redis.

pub mod client;
pub mod queries;
pub mod runtime;
pub mod shared_queries;
