//! `RT.GET key`: the cached value at once, or the document loaded from MongoDB.

use crate::error::Error;
use crate::ffi::{self, Args, Waiter};
use crate::load::{self, Kind};
use crate::{config, policy, stats};
use redis_module::{Context, RedisError, RedisResult, RedisValue};

pub fn rt_get(ctx: &Context, args: &Args) -> RedisResult {
    get(ctx, args, false)
}

/// A plain `GET` rewritten by the command filter: where it cannot block, a miss answers nil
/// as GET would, and the key is loaded in the background.
pub fn rt_tget(ctx: &Context, args: &Args) -> RedisResult {
    get(ctx, args, true)
}

fn get(ctx: &Context, args: &Args, transparent: bool) -> RedisResult {
    if args.len() != 2 {
        return Err(RedisError::WrongArity);
    }
    let key = args.bytes(1);
    config::check(key)?;
    let grace = config::grace_s();
    if let Some(pttl) = ffi::reply_cached(ctx, args, 1, grace > 0)? {
        stats::count_main(&stats::HITS);
        if policy::in_grace(pttl, grace) {
            // Served stale-while-revalidate: one background refresh per key.
            let target = config::resolve(key)?;
            load::start(ffi::selected_db(ctx), key, target, None, Kind::Refresh);
        }
        return Ok(RedisValue::NoReply);
    }
    let db = ffi::selected_db(ctx);
    if load::known_absent(db, key) {
        stats::count(&stats::NEGATIVE_HITS);
        return Ok(RedisValue::Null);
    }
    stats::count(&stats::MISSES);
    if transparent && ffi::cannot_block(ctx) {
        if !ffi::is_replica(ctx) {
            load::prefetch(db, key);
        }
        return Ok(RedisValue::Null);
    }
    let target = config::resolve(key)?;
    load_for_client(ctx, db, key, target, Kind::Fill)
}

/// Blocks the client on a load of `key` (joining one in flight), or, where it cannot block,
/// starts the load in the background and replies `NOBLOCK`.
pub fn load_for_client(
    ctx: &Context,
    db: i32,
    key: &[u8],
    target: crate::mapping::Target,
    kind: Kind,
) -> RedisResult {
    if ffi::cannot_block(ctx) {
        stats::count(&stats::PREFETCHES);
        load::start(db, key, target, None, kind);
        return Err(Error::NoBlock.into());
    }
    let waiter = Waiter::block(ctx, config::timeout_ms() + ffi::TIMEOUT_SAFETY_MS);
    load::start(db, key, target, Some(waiter), kind);
    Ok(RedisValue::NoReply)
}
