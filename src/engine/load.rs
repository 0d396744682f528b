//! One load: join the single-flight table on the main thread, then run the MongoDB query
//! inline (`inline.rs`: the main thread sends and reads it, at low load) or on the loader
//! thread (`loader_task.rs`), bounded by `readthrough.timeout` either way.

use crate::core::counters;
use crate::core::deadline::Deadline;
use crate::core::error::Error;
use crate::core::mapping::Target;
use crate::core::settings;
use crate::core::single_flight::Join;
use crate::engine::cache_state::{self, LoadKey};
use crate::engine::inline;
use crate::engine::loader_task::{self, Load};
use crate::engine::store::Kind;
use crate::redis::blocking::{Answer, Waiter, TIMEOUT_SAFETY_MS};
use crate::redis::keys::cannot_block;
use redis_module::{Context, RedisResult, RedisValue};
use std::sync::Arc;
use std::time::Instant;

/// Main thread: starts a background load of a mapped `key` nobody waits on, unless it is
/// loading already, known absent, or unmapped (then nothing happens).
pub fn prefetch(db: i32, key: &[u8]) {
    let Ok(target) = settings::resolve(key) else {
        return;
    };
    if cache_state::is_loading(&(db, key.to_vec())) || cache_state::known_absent(db, key) {
        return;
    }
    if start(db, key, target, None, Kind::Fill) {
        counters::count(&counters::PREFETCHES);
    }
}

/// Main thread: joins the load of `key` or starts one. `waiter` is `None` for a background
/// load nobody waits on. Beyond `readthrough.max-inflight` loads the waiter gets `BUSY`.
/// Returns false if the load was refused for `BUSY`.
pub fn start(db: i32, key: &[u8], target: Target, waiter: Option<Waiter>, kind: Kind) -> bool {
    let max = settings::max_inflight();
    let lkey: LoadKey = (db, key.to_vec());
    let waits = waiter.is_some();
    let joined = cache_state::join(lkey.clone(), waiter, max);
    match joined {
        Join::Leader => {
            let load = Load {
                key: lkey,
                target,
                kind,
                epoch: cache_state::epoch(),
                deadline: Deadline::after_ms(settings::timeout_ms() as u64),
                started: Instant::now(),
            };
            if let Err(load) = inline::try_start(load) {
                loader_task::spawn(load);
            }
        }
        Join::Follower if waits => counters::count(&counters::COALESCED),
        Join::Follower => {}
        Join::Full(waiter) => {
            counters::count(&counters::BUSY_REJECTIONS);
            if let Some(w) = waiter {
                w.finish(Arc::new(Err(Error::Busy(max))));
            }
            return false;
        }
    }
    true
}

/// Blocks the client on a load of `key` (joining one in flight) to be answered as `answer`
/// says, or, where it cannot block, starts the load in the background and replies `NOBLOCK`.
pub fn load_for_client(
    ctx: &Context,
    db: i32,
    key: &[u8],
    target: Target,
    kind: Kind,
    answer: Answer,
) -> RedisResult {
    if cannot_block(ctx) {
        counters::count(&counters::PREFETCHES);
        start(db, key, target, None, kind);
        return Err(Error::NoBlock.into());
    }
    let waiter = Waiter::block(ctx, settings::timeout_ms() + TIMEOUT_SAFETY_MS, answer);
    start(db, key, target, Some(waiter), kind);
    Ok(RedisValue::NoReply)
}
