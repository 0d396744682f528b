//! `RT.GET key`: the cached value at once, or the document loaded from MongoDB.

use crate::core::{counters, policy, settings};
use crate::engine::cache_state;
use crate::engine::load::{self, load_for_client};
use crate::engine::store::Kind;
use crate::redis::args::Args;
use crate::redis::keys::{cannot_block, is_replica, reply_cached, selected_db};
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
    settings::check(key)?;
    let grace = settings::grace_s();
    if let Some(pttl) = reply_cached(ctx, args, 1, grace > 0)? {
        counters::count_main(&counters::HITS);
        if policy::in_grace(pttl, grace) {
            // Served stale-while-revalidate: one background refresh per key.
            let target = settings::resolve(key)?;
            load::start(selected_db(ctx), key, target, None, Kind::Refresh);
        }
        return Ok(RedisValue::NoReply);
    }
    let db = selected_db(ctx);
    if cache_state::known_absent(db, key) {
        counters::count(&counters::NEGATIVE_HITS);
        return Ok(RedisValue::Null);
    }
    counters::count(&counters::MISSES);
    if transparent && cannot_block(ctx) {
        if !is_replica(ctx) {
            load::prefetch(db, key);
        }
        return Ok(RedisValue::Null);
    }
    let target = settings::resolve(key)?;
    load_for_client(ctx, db, key, target, Kind::Fill)
}
