//! What every read command shares (`RT.GET`, `RT.MGET`, `RT.REFRESH` and the transparent
//! reads): what a mapped key that is not in Redis is, counted the same way everywhere, and the
//! plan for a read's misses (`core/read_policy.rs`, the rules in one place).

use crate::core::error::Error;
use crate::core::format::Slot;
use crate::core::mapping::Target;
use crate::core::read_policy::{self, Plan};
use crate::engine::cache_state;
use crate::engine::load;
use crate::engine::load::batch::{start_batch, BatchMiss};
use crate::engine::store::Kind;
use crate::redis::acl;
use crate::redis::blocking::{Answer, Waiter, TIMEOUT_SAFETY_MS};
use crate::redis::keys::{cannot_block, is_replica};
use crate::redis::main_thread::MainThread;
use crate::state::counters;
use crate::state::settings;
use redis_module::{Context, RedisResult, RedisValue};

/// A mapped key that is not in Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotCached {
    /// MongoDB had no document for it a moment ago (the negative cache).
    KnownAbsent,
    /// The user may not write the key: a load would store it on the user's behalf.
    NotAllowed,
    /// To be loaded.
    Miss,
}

/// What a mapped key that is not in Redis is; counted as a negative hit or a miss.
pub fn not_cached(ctx: &Context, db: i32, key: &[u8]) -> NotCached {
    if cache_state::known_absent(db, key) {
        counters::count(&counters::NEGATIVE_HITS);
        return NotCached::KnownAbsent;
    }
    counters::count(&counters::MISSES);
    if acl::may_write(ctx, key) {
        NotCached::Miss
    } else {
        NotCached::NotAllowed
    }
}

/// The plan for a read that waits for `misses` keys, `new_loads` of them not loading yet.
/// Counts refusals (`busy_rejections`) and background loads (`prefetches`). A replica cannot
/// store what it would load: there a transparent read that cannot block loads nothing.
fn plan(ctx: &Context, transparent: bool, misses: usize, new_loads: usize) -> Plan {
    let can_block = !cannot_block(ctx);
    let plan = read_policy::plan(read_policy::Read {
        transparent,
        can_block,
        misses,
        new_loads,
        in_flight: cache_state::loads_in_flight(),
        max: settings::max_inflight(),
    });
    match plan {
        Plan::AnswerAndLoad if is_replica(ctx) => Plan::AnswerOnly,
        Plan::Busy | Plan::AnswerOnly => {
            counters::count(&counters::BUSY_REJECTIONS);
            plan
        }
        Plan::AnswerAndLoad | Plan::NoBlock => {
            counters::count(&counters::PREFETCHES);
            plan
        }
        Plan::Answer | Plan::Block => plan,
    }
}

/// The `BUSY` error of a plan that says so.
fn busy() -> Error {
    Error::Busy(settings::max_inflight())
}

/// 1 if no load of `key` is running (a read would start one), else 0.
fn new_load(db: i32, key: &[u8]) -> usize {
    usize::from(!cache_state::is_loading(&(db, key.to_vec())))
}

/// Carries out the plan for a read that waits for one key: blocks the client on its load
/// (joining one in flight) to be answered as `answer` says, or answers at once (`answer_now`,
/// for a transparent read: what the native command answers), `NOBLOCK` or `BUSY`.
pub fn load_one(
    ctx: &Context,
    mt: MainThread,
    transparent: bool,
    // The key, its database, mapping and what its load is for.
    (db, key, target, kind): (i32, &[u8], Target, Kind),
    answer: impl FnOnce() -> Answer,
    answer_now: impl FnOnce() -> RedisResult,
) -> RedisResult {
    match plan(ctx, transparent, 1, new_load(db, key)) {
        Plan::Answer | Plan::AnswerOnly => answer_now(),
        Plan::AnswerAndLoad => {
            load::start(mt, db, key, target, None, kind);
            answer_now()
        }
        Plan::NoBlock => {
            load::start(mt, db, key, target, None, kind);
            Err(Error::NoBlock.into())
        }
        Plan::Busy => Err(busy().into()),
        Plan::Block => {
            let waiter = Waiter::block(ctx, settings::timeout_ms() + TIMEOUT_SAFETY_MS, answer());
            load::start(mt, db, key, target, Some(waiter), kind);
            Ok(RedisValue::NoReply)
        }
    }
}

/// Carries out the plan for a read that waits for many keys, loaded as one batch (one query
/// per mapping): `values` are the reply's slots, the misses' still nil.
pub fn load_batch(
    ctx: &Context,
    transparent: bool,
    db: i32,
    (misses, values): (Vec<BatchMiss>, Vec<Slot>),
    answer: impl FnOnce() -> Answer,
    answer_now: impl FnOnce(&[Slot]) -> RedisResult,
) -> RedisResult {
    match plan(ctx, transparent, misses.len(), misses.len()) {
        Plan::Answer | Plan::AnswerOnly => answer_now(&values),
        Plan::AnswerAndLoad => {
            let now = answer_now(&values);
            start_batch(db, misses, values, None);
            now
        }
        Plan::NoBlock => {
            start_batch(db, misses, values, None);
            Err(Error::NoBlock.into())
        }
        Plan::Busy => Err(busy().into()),
        Plan::Block => {
            let waiter = Waiter::block(ctx, settings::timeout_ms() + TIMEOUT_SAFETY_MS, answer());
            start_batch(db, misses, values, Some(waiter));
            Ok(RedisValue::NoReply)
        }
    }
}
