//! `RT.GET key`: the cached value at once, or the document loaded from MongoDB.

use crate::error::Error;
use crate::ffi::{self, Waiter};
use crate::{config, load, stats};
use redis_module::{Context, KeyType, RedisError, RedisResult, RedisString, RedisValue};

pub fn rt_get(ctx: &Context, args: &[RedisString]) -> RedisResult {
    let [_, key] = args else {
        return Err(RedisError::WrongArity);
    };
    let target = config::resolve(key.as_slice())?;
    if reply_hit(ctx, key)? {
        return Ok(RedisValue::NoReply);
    }
    stats::count(&stats::MISSES);
    let db = ffi::selected_db(ctx);
    if ffi::cannot_block(ctx) {
        // Cannot wait here: load in the background so that a retry outside hits.
        stats::count(&stats::PREFETCHES);
        load::start(db, key.as_slice(), target, None);
        return Err(Error::NoBlock.into());
    }
    let waiter = Waiter::block(ctx, config::timeout_ms() + ffi::TIMEOUT_SAFETY_MS);
    load::start(db, key.as_slice(), target, Some(waiter));
    Ok(RedisValue::NoReply)
}

/// Replies with the cached string if the key holds one; `WRONGTYPE` for other types.
pub fn reply_hit(ctx: &Context, key: &RedisString) -> Result<bool, Error> {
    let k = ctx.open_key(key);
    match k.key_type() {
        KeyType::Empty => Ok(false),
        KeyType::String => match k.read() {
            Ok(Some(value)) => {
                ffi::reply_bulk(ctx, value);
                stats::count(&stats::HITS);
                Ok(true)
            }
            _ => Ok(false),
        },
        _ => Err(Error::WrongType),
    }
}
