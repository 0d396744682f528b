//! `RT.MGET key [key ...]`: the values in order; misses loaded with one query per mapping.

use crate::core::error::{show_key, Error};
use crate::core::format::{Format, Slot};
use crate::core::{counters, settings};
use crate::engine::cache_state;
use crate::engine::mget::{start_batch, BatchMiss};
use crate::redis::acl;
use crate::redis::answer::reply_slots;
use crate::redis::args::Args;
use crate::redis::blocking::{Answer, Waiter, TIMEOUT_SAFETY_MS};
use crate::redis::keys::{cannot_block, probe, read_cached, selected_db, Held};
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
    let mut formats = Vec::with_capacity(args.len() - 1);
    for i in 1..args.len() {
        formats.push(settings::check_format(args.bytes(i))?);
    }
    let db = selected_db(ctx);
    let mut values = Vec::with_capacity(args.len() - 1);
    let mut misses = Vec::new();
    for i in 1..args.len() {
        let key = args.bytes(i);
        match cached(ctx, args, i, formats[i - 1]) {
            Ok(Some(v)) => {
                counters::count_main(&counters::HITS);
                values.push(v);
            }
            // Like MGET, a key of another type reads as nil.
            Err(Error::WrongType) => values.push(Slot::Nil),
            Err(e) => return Err(e.into()),
            Ok(None) if cache_state::known_absent(db, key) => {
                counters::count(&counters::NEGATIVE_HITS);
                values.push(Slot::Nil);
            }
            Ok(None) if !acl::may_write(ctx, key) => {
                // A load would store the key on this user's behalf. A plain MGET answers as
                // without the module; nothing is loaded for a refused RT.MGET.
                counters::count(&counters::MISSES);
                if !transparent {
                    return Err(Error::NoWrite(show_key(key)).into());
                }
                values.push(Slot::Nil);
            }
            Ok(None) => {
                counters::count(&counters::MISSES);
                let target = settings::resolve(key)?;
                misses.push(BatchMiss {
                    index: values.len(),
                    key: key.to_vec(),
                    target,
                });
                values.push(Slot::Nil);
            }
        }
    }
    let keys: Vec<Vec<u8>> = (1..args.len()).map(|i| args.bytes(i).to_vec()).collect();
    if misses.is_empty() {
        reply_slots(ctx, &keys, &formats, &values);
        return Ok(RedisValue::NoReply);
    }
    if cannot_block(ctx) {
        counters::count(&counters::PREFETCHES);
        if transparent {
            reply_slots(ctx, &keys, &formats, &values);
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
    let answer = Answer::Values(keys, formats);
    let waiter = Waiter::block(ctx, settings::timeout_ms() + TIMEOUT_SAFETY_MS, answer);
    start_batch(db, misses, values, Some(waiter));
    Ok(RedisValue::NoReply)
}

/// The cached value of the key at argument `i` as a reply slot: a string copied, a JSON
/// document or hash to be read natively when replying. `None` on a miss; `WRONGTYPE` when the
/// key holds another type than its format's.
fn cached(ctx: &Context, args: &Args, i: usize, format: Format) -> Result<Option<Slot>, Error> {
    if format == Format::String {
        return Ok(read_cached(ctx, args, i)?.map(Slot::Bytes));
    }
    match probe(ctx, args.bytes(i), false).0 {
        Held::Nothing => Ok(None),
        held if held.fits(format) => Ok(Some(Slot::Cached)),
        _ => Err(Error::WrongType),
    }
}
