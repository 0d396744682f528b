//! `RT.MGET key [key ...]`: the values in order; misses loaded with one query per mapping.

use crate::core::error::Error;
use crate::core::{counters, settings};
use crate::engine::cache_state;
use crate::engine::mget::{start_batch, BatchMiss};
use crate::redis::args::Args;
use crate::redis::blocking::{Waiter, TIMEOUT_SAFETY_MS};
use crate::redis::keys::{cannot_block, read_cached, selected_db};
use crate::redis::reply::reply_values;
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
        settings::check(args.bytes(i))?;
    }
    let db = selected_db(ctx);
    let mut values = Vec::with_capacity(args.len() - 1);
    let mut misses = Vec::new();
    for i in 1..args.len() {
        let key = args.bytes(i);
        match read_cached(ctx, args, i) {
            Ok(Some(v)) => {
                counters::count_main(&counters::HITS);
                values.push(Some(v));
            }
            // Like MGET, a key of another type reads as nil.
            Err(Error::WrongType) => values.push(None),
            Err(e) => return Err(e.into()),
            Ok(None) if cache_state::known_absent(db, key) => {
                counters::count(&counters::NEGATIVE_HITS);
                values.push(None);
            }
            Ok(None) => {
                counters::count(&counters::MISSES);
                let target = settings::resolve(key)?;
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
        reply_values(ctx, &values);
        return Ok(RedisValue::NoReply);
    }
    if cannot_block(ctx) {
        counters::count(&counters::PREFETCHES);
        if transparent {
            reply_values(ctx, &values);
            start_batch(db, misses, values, None);
            return Ok(RedisValue::NoReply);
        }
        start_batch(db, misses, values, None);
        return Err(Error::NoBlock.into());
    }
    let max = settings::max_inflight();
    if cache_state::inflight_len() >= max {
        counters::count(&counters::BUSY_REJECTIONS);
        return Err(Error::Busy(max).into());
    }
    let waiter = Waiter::block(ctx, settings::timeout_ms() + TIMEOUT_SAFETY_MS);
    start_batch(db, misses, values, Some(waiter));
    Ok(RedisValue::NoReply)
}
