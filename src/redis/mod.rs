//! The Redis side: every `unsafe` call into the Redis module API lives here, each with a
//! `SAFETY:` comment. Blocking clients, the lock (GIL) and writes under it, replies, command
//! and config registration, server events, the command filter and key-miss hook. Every entry
//! from Redis into Rust catches panics (`panic_guard`). It never names the engine: it calls
//! what `callbacks` was given.

pub mod acl;
pub mod answer;
pub mod args;
pub mod blocking;
pub mod callbacks;
pub mod cluster_bus;
pub mod command_table;
pub mod configs;
pub mod event_loop;
pub mod events;
pub mod gil;
pub mod keys;
pub mod main_thread;
pub mod mongo_uri;
pub mod panic_guard;
pub mod reply;
pub mod server_commands;
pub mod transparent_hooks;
pub mod write;
