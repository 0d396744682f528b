//! `RT.MGET key [key ...]`: the values in order; misses loaded with one query per mapping.

use crate::commands::read::{load_batch, not_cached, NotCached};
use crate::core::error::{show_key, Error};
use crate::core::format::{Format, Slot};
use crate::engine::load::batch::BatchMiss;
use crate::redis::answer::reply_slots;
use crate::redis::args::Args;
use crate::redis::blocking::Answer;
use crate::redis::keys::{probe, read_cached, selected_db, Held};
use crate::redis::main_thread::MainThread;
use crate::state::{counters, settings};
use redis_module::{Context, RedisError, RedisResult, RedisValue};

pub fn rt_mget(ctx: &Context, args: &Args, _: MainThread) -> RedisResult {
    mget(ctx, args, false)
}

/// A plain `MGET` rewritten by the command filter: where it cannot block, misses answer nil as
/// MGET would, and are loaded in the background.
pub fn rt_tmget(ctx: &Context, args: &Args, _: MainThread) -> RedisResult {
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
        let cached = match cached(ctx, args, i, formats[i - 1]) {
            // Like MGET, a key of another type reads as nil.
            Err(Error::WrongType) => Some(Slot::Nil),
            other => other?,
        };
        if let Some(v) = cached {
            counters::count_main(&counters::HITS);
            values.push(v);
            continue;
        }
        match not_cached(ctx, db, key) {
            NotCached::KnownAbsent => {}
            // A plain MGET answers as without the module; nothing is loaded for a refused
            // RT.MGET.
            NotCached::NotAllowed if transparent => {}
            NotCached::NotAllowed => return Err(Error::NoWrite(show_key(key)).into()),
            NotCached::Miss => misses.push(BatchMiss {
                index: values.len(),
                key: key.to_vec(),
                target: settings::resolve(key)?,
            }),
        }
        values.push(Slot::Nil);
    }
    let keys: Vec<Vec<u8>> = (1..args.len()).map(|i| args.bytes(i).to_vec()).collect();
    let reply_now = |values: &[Slot]| {
        reply_slots(ctx, &keys, &formats, values);
        Ok(RedisValue::NoReply)
    };
    if misses.is_empty() {
        return reply_now(&values);
    }
    let answer = || Answer::Values(keys.clone(), formats.clone());
    load_batch(ctx, transparent, db, (misses, values), answer, reply_now)
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
