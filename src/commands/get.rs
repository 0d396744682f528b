//! `RT.GET key`: the cached value at once, or the document loaded from MongoDB, answered as its
//! format is read (string: the JSON text; json: `JSON.GET key`; hash: `HGETALL key`).

use crate::commands::read::{load_one, not_cached, NotCached};
use crate::core::error::{show_key, Error};
use crate::core::format::Format;
use crate::core::policy;
use crate::engine::load;
use crate::engine::store::Kind;
use crate::redis::acl;
use crate::redis::answer::{forward_raw, native_read};
use crate::redis::args::Args;
use crate::redis::blocking::Answer;
use crate::redis::keys::{probe_raw, reply_cached, selected_db, Held};
use crate::redis::main_thread::MainThread;
use crate::state::{counters, settings};
use redis_module::{Context, RedisError, RedisResult, RedisValue};

pub fn rt_get(ctx: &Context, args: &Args, mt: MainThread) -> RedisResult {
    get(ctx, args, mt, false)
}

/// A plain `GET` rewritten by the command filter: where it cannot block, a miss answers nil
/// as GET would, and the key is loaded in the background.
pub fn rt_tget(ctx: &Context, args: &Args, mt: MainThread) -> RedisResult {
    get(ctx, args, mt, true)
}

fn get(ctx: &Context, args: &Args, mt: MainThread, transparent: bool) -> RedisResult {
    if args.len() != 2 {
        return Err(RedisError::WrongArity);
    }
    let key = args.bytes(1);
    let (format, grace) = settings::check_read(key)?;
    if let Some(pttl) = reply_hit(ctx, args, format, grace > 0)? {
        counters::count_main(&counters::HITS);
        if policy::in_grace(pttl, grace) && acl::may_write(ctx, key) {
            // Served stale-while-revalidate: one background refresh per key.
            let target = settings::resolve(key)?;
            load::start(mt, selected_db(ctx), key, target, None, Kind::Refresh);
        }
        return Ok(RedisValue::NoReply);
    }
    let db = selected_db(ctx);
    match not_cached(ctx, db, key) {
        NotCached::KnownAbsent => return Ok(RedisValue::Null),
        // A plain GET answers as without the module.
        NotCached::NotAllowed if transparent => return Ok(RedisValue::Null),
        NotCached::NotAllowed => return Err(Error::NoWrite(show_key(key)).into()),
        NotCached::Miss => {}
    }
    let target = settings::resolve(key)?;
    let answer = || Answer::Value(key.to_vec());
    let nil = || Ok(RedisValue::Null);
    load_one(
        ctx,
        mt,
        transparent,
        (db, key, target, Kind::Fill),
        answer,
        nil,
    )
}

/// Replies with the cached value if there is one and returns `Some(ms left)` (see
/// `reply_cached`); `None` on a miss; `WRONGTYPE` when the key holds another type than the
/// format's. A string is replied straight from Redis's buffer; a JSON document or hash by its
/// native read.
fn reply_hit(
    ctx: &Context,
    args: &Args,
    format: Format,
    want_ttl: bool,
) -> Result<Option<i64>, Error> {
    if format == Format::String {
        return reply_cached(ctx, args, 1, want_ttl);
    }
    match probe_raw(ctx, args.raw(1), want_ttl) {
        (Held::Nothing, _) => Ok(None),
        (held, pttl) if held.fits(format) => {
            forward_raw(ctx, native_read(format), &args.raw_from(1)[..1], false);
            Ok(Some(pttl))
        }
        _ => Err(Error::WrongType),
    }
}
