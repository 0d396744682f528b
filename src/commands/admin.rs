//! `RT.INVALIDATE key [key ...]`, `RT.REFRESH key` and `RT.WARM prefix [LIMIT n]`.

use super::get::load_for_client;
use crate::ffi::{self, Args};
use crate::load::{self, Kind};
use crate::{config, stats};
use redis_module::{
    CallOptionsBuilder, CallReply, CallResult, Context, RedisError, RedisResult, RedisValue,
};

/// Removes the cached value and the negative entry of each key; replies how many keys had
/// either. The deletes are replicated. Every key must be mapped, else nothing is removed.
pub fn rt_invalidate(ctx: &Context, args: &Args) -> RedisResult {
    if args.len() < 2 {
        return Err(RedisError::WrongArity);
    }
    for i in 1..args.len() {
        config::check(args.bytes(i))?;
    }
    let db = ffi::selected_db(ctx);
    let opts = CallOptionsBuilder::new()
        .replicate()
        .errors_as_replies()
        .build();
    let mut removed = 0;
    for i in 1..args.len() {
        let key = args.bytes(i);
        let res: CallResult = ctx.call_ext("DEL", &opts, &[key][..]);
        let deleted = matches!(res, Ok(CallReply::I64(n)) if n.to_i64() > 0);
        let forgot = load::forget_absent(db, key);
        if deleted || forgot {
            removed += 1;
        }
    }
    stats::add(&stats::INVALIDATIONS, removed as u64);
    Ok(RedisValue::Integer(removed))
}

/// Reloads the key from MongoDB now, stores the new value (or deletes the key if the document
/// is gone) and replies it.
pub fn rt_refresh(ctx: &Context, args: &Args) -> RedisResult {
    if args.len() != 2 {
        return Err(RedisError::WrongArity);
    }
    let key = args.bytes(1);
    let target = config::resolve(key)?;
    let db = ffi::selected_db(ctx);
    load_for_client(ctx, db, key, target, Kind::Refresh)
}

/// Starts a background warm-up of the mapping with this prefix into the client's DB; replies
/// at once. Progress in `INFO readthrough`.
pub fn rt_warm(ctx: &Context, args: &Args) -> RedisResult {
    if args.len() != 2 && args.len() != 4 {
        return Err(RedisError::WrongArity);
    }
    let prefix = std::str::from_utf8(args.bytes(1))
        .map_err(|_| RedisError::Str("ERR the prefix is not valid UTF-8"))?;
    let limit = if args.len() == 4 {
        if !args.bytes(2).eq_ignore_ascii_case(b"LIMIT") {
            return Err(RedisError::Str(
                "ERR syntax error, expected RT.WARM prefix [LIMIT n]",
            ));
        }
        let n = std::str::from_utf8(args.bytes(3))
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .filter(|n| *n > 0)
            .ok_or(RedisError::Str("ERR LIMIT must be a positive integer"))?;
        Some(n)
    } else {
        None
    };
    crate::warm::start(prefix, limit, ffi::selected_db(ctx))?;
    Ok(RedisValue::SimpleStringStatic("OK"))
}
