//! The pure core: no Redis, no tokio, no I/O. Mapping keys to documents, encoding them,
//! policies, the single-flight table and negative cache as data structures, what a change event
//! does, the settings snapshot, the counters, the errors. Everything here is unit-tested in
//! place.

pub mod acl_rules;
pub mod codec;
pub mod config_redaction;
pub mod counters;
pub mod deadline;
pub mod error;
pub mod fault;
pub mod format;
pub mod fuzzing;
pub mod id_index;
pub mod invalidation;
pub mod mapping;
pub mod negative_cache;
pub mod policy;
pub mod projection;
pub mod read_policy;
pub mod resume_token;
pub mod rewrite;
pub mod settings;
pub mod single_flight;
pub mod unanswered;
pub mod uri;
pub mod wire;
