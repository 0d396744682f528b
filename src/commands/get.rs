//! `RT.GET key`: the cached value at once, or the document loaded from MongoDB.

use crate::error::Error;
use crate::ffi::{self, Args, Waiter};
use crate::{config, load, stats};
use redis_module::{Context, RedisError, RedisResult, RedisValue};

pub fn rt_get(ctx: &Context, args: &Args) -> RedisResult {
    if args.len() != 2 {
        return Err(RedisError::WrongArity);
    }
    let key = args.bytes(1);
    config::check(key)?;
    if ffi::reply_cached(ctx, args, 1)? {
        stats::count_main(&stats::HITS);
        return Ok(RedisValue::NoReply);
    }
    stats::count(&stats::MISSES);
    let target = config::resolve(key)?;
    let db = ffi::selected_db(ctx);
    if ffi::cannot_block(ctx) {
        // Cannot wait here: load in the background so that a retry outside hits.
        stats::count(&stats::PREFETCHES);
        load::start(db, key, target, None);
        return Err(Error::NoBlock.into());
    }
    let waiter = Waiter::block(ctx, config::timeout_ms() + ffi::TIMEOUT_SAFETY_MS);
    load::start(db, key, target, Some(waiter));
    Ok(RedisValue::NoReply)
}
