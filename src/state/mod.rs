//! The module's process-wide state, each piece with one owner: the settings in force
//! (`settings.rs`, written only by the Redis side's config setters), the counters INFO shows,
//! the `_id -> id` index the change streams read, the pending credential redactions, fault
//! injection for tests, and the random source. Every layer above the core reads it; it knows
//! nothing of Redis, MongoDB's client or the engine, and holds no I/O.

pub mod config_redaction;
pub mod counters;
pub mod fault;
pub mod id_index;
pub mod random;
pub mod settings;
