//! `RT.MGET key [key ...]`: the values in order; misses loaded with one query per mapping.

use crate::error::Error;
use crate::ffi::{self, Args, Waiter};
use crate::load::{self, BatchMiss};
use crate::{config, stats};
use redis_module::{Context, RedisError, RedisResult, RedisValue};

pub fn rt_mget(ctx: &Context, args: &Args) -> RedisResult {
    mget(ctx, args, false)
}

/// A plain `MGET` rewritten by the command filter: where it cannot block, misses answer nil as
/// MGET would, and are loaded in the background.
pub fn rt_tmget(ctx: &Context, args: &Args) -> RedisResult {
    mget(ctx, args, true)
}

fn mget(ctx: &Context, args: &Args, transparent: bool) -> RedisResult {
    if args.len() < 2 {
        return Err(RedisError::WrongArity);
    }
    for i in 1..args.len() {
        config::check(args.bytes(i))?;
    }
    let db = ffi::selected_db(ctx);
    let mut values = Vec::with_capacity(args.len() - 1);
    let mut misses = Vec::new();
    for i in 1..args.len() {
        let key = args.bytes(i);
        match ffi::read_cached(ctx, args, i) {
            Ok(Some(v)) => {
                stats::count_main(&stats::HITS);
                values.push(Some(v));
            }
            // Like MGET, a key of another type reads as nil.
            Err(Error::WrongType) => values.push(None),
            Err(e) => return Err(e.into()),
            Ok(None) if load::known_absent(db, key) => {
                stats::count(&stats::NEGATIVE_HITS);
                values.push(None);
            }
            Ok(None) => {
                stats::count(&stats::MISSES);
                let target = config::resolve(key)?;
                misses.push(BatchMiss {
                    index: values.len(),
                    key: key.to_vec(),
                    target,
                });
                values.push(None);
            }
        }
    }
    if misses.is_empty() {
        ffi::reply_values(ctx, &values);
        return Ok(RedisValue::NoReply);
    }
    if ffi::cannot_block(ctx) {
        stats::count(&stats::PREFETCHES);
        if transparent {
            ffi::reply_values(ctx, &values);
            load::start_batch(db, misses, values, None);
            return Ok(RedisValue::NoReply);
        }
        load::start_batch(db, misses, values, None);
        return Err(Error::NoBlock.into());
    }
    let max = config::max_inflight();
    if load::inflight_len() >= max {
        stats::count(&stats::BUSY_REJECTIONS);
        return Err(Error::Busy(max).into());
    }
    let waiter = Waiter::block(ctx, config::timeout_ms() + ffi::TIMEOUT_SAFETY_MS);
    load::start_batch(db, misses, values, Some(waiter));
    Ok(RedisValue::NoReply)
}
