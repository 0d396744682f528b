//! The pure core: no Redis, no tokio, no I/O, no global state. Mapping keys to documents,
//! encoding them, the read and expiry policies, the single-flight table and negative cache as
//! data structures, what a change event does, the errors. Everything here is unit-tested in
//! place. The state the layers share (settings in force, counters) is in `state/`.

pub mod acl_rules;
pub mod bus_message;
pub mod bus_sequence;
pub mod cluster_slots;
pub mod codec;
pub mod deadline;
pub mod error;
pub mod format;
pub mod fuzzing;
pub mod invalidation;
pub mod key_id;
pub mod many;
pub mod mapping;
pub mod negative_cache;
pub mod policy;
pub mod projection;
pub mod read_policy;
pub mod resume_token;
pub mod rewrite;
pub mod single_flight;
pub mod unanswered;
pub mod uri;
pub mod wire;
