//! The engine: between the MongoDB side and the Redis side. Loads (single-flight, query,
//! store, unblock), `RT.MGET` batches, change streams and warm-ups; the cache state they share;
//! and what the engine does when Redis tells it something (`on_*`).

pub mod cache;
pub mod cache_state;
pub mod changes;
pub mod info;
pub mod load;
pub mod store;
pub mod warm;

use crate::mongo::client;
use crate::redis::callbacks::{Callbacks, Changed};
use crate::state::settings;

/// What the Redis side calls back into (handed over by `lib.rs` at load).
pub fn callbacks() -> Callbacks {
    Callbacks {
        flushed: cache_state::flushed,
        role_changed: changes::set_master,
        key_missed: load::prefetch,
        info: info::fields,
        config_changed: on_config_changed,
        bus_message: changes::bus_message,
        cron: load::main_driver::on_cron,
    }
}

/// A config was accepted: the MongoDB client and the watchers follow it.
fn on_config_changed(change: Changed) {
    match change {
        Changed::MongoUri(uri) => {
            client::configure(Some(&uri), None);
            changes::reconfigure();
        }
        Changed::TimeoutMs(ms) => client::configure(None, Some(settings::server_selection(ms))),
        Changed::Mappings | Changed::Invalidation => changes::reconfigure(),
    }
}
