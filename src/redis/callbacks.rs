//! What the Redis side calls back into: the engine's answers to Redis's events, handed over
//! once at load by `lib.rs`. This keeps the imports one way: the Redis side never names the
//! engine, it calls what it was given.

use crate::redis::gil::Gil;
use crate::redis::main_thread::MainThread;
use once_cell::sync::OnceCell;

/// A config whose new value the engine must act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Changed {
    MongoUri(String),
    TimeoutMs(i64),
    Mappings,
    Invalidation,
}

/// The `INFO readthrough` section: numeric fields, then text fields.
pub type InfoFields = (Vec<(&'static str, u64)>, Vec<(String, String)>);

pub struct Callbacks {
    /// Main thread, after FLUSHALL or FLUSHDB.
    pub flushed: fn(),
    /// The replication role changed: true when this node is now a master.
    pub role_changed: fn(bool),
    /// Main thread: a read command missed this key in this DB (never blocks, never writes).
    pub key_missed: fn(MainThread, i32, &[u8]),
    /// The `INFO readthrough` section: numeric fields, then text fields.
    pub info: fn() -> InfoFields,
    /// A config was accepted (main thread, where CONFIG SET runs).
    pub config_changed: fn(Changed),
    /// Main thread: a message of the module's from another node of the cluster (its id).
    pub bus_message: fn(&Gil, &str, &[u8]),
    /// Main thread, at each pass of Redis's cron (`hz` times a second).
    pub cron: fn(MainThread),
}

static CALLBACKS: OnceCell<Callbacks> = OnceCell::new();

/// Hands the callbacks over (once, at load).
pub fn set(c: Callbacks) {
    let _ = CALLBACKS.set(c);
}

fn nothing<T>(_: T) {}

const NONE: Callbacks = Callbacks {
    flushed: || {},
    role_changed: nothing,
    key_missed: |_, _, _| {},
    info: || (Vec::new(), Vec::new()),
    config_changed: nothing,
    bus_message: |_, _, _| {},
    cron: nothing,
};

/// The callbacks; before `set` (configs applied while loading), ones that do nothing.
pub fn get() -> &'static Callbacks {
    CALLBACKS.get().unwrap_or(&NONE)
}
